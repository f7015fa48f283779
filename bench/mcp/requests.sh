# shellcheck shell=bash
# The tools/call echo requests both MCP benchmarks send (run.sh: req/s; callgrind.sh:
# instructions), and the check that a server really answered one. Sourced after WORK (the work
# directory) and log() are set.

# The bodies: 2026-07-28 (its metadata in _meta), the legacy era, and one gRPC message frame
# (uncompressed, 23-byte length prefix) holding mcp.CallToolRequest {name: "echo", arguments:
# {"text": {string_value: "hello"}}}.
printf '%s' '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' \
  >"$WORK/modern.json"
printf '%s' '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}' \
  >"$WORK/legacy.json"
printf '\x00\x00\x00\x00\x17\x0a\x04echo\x12\x0f\x0a\x04text\x12\x07\x0a\x05hello' >"$WORK/grpc.bin"

JSON_HEADERS=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
# shellcheck disable=SC2034 # used by the scripts that source this
MODERN_HEADERS=("${JSON_HEADERS[@]}" -H 'mcp-protocol-version: 2026-07-28'
  -H 'mcp-method: tools/call' -H 'mcp-name: echo')
# shellcheck disable=SC2034
LEGACY_HEADERS=("${JSON_HEADERS[@]}" -H 'mcp-protocol-version: 2025-06-18')
GRPC_HEADERS=(-H 'content-type: application/grpc' -H 'te: trailers')

# verify_echo NAME URL BODY HEADERS...: one request must return a real echo result (exits
# otherwise). Load generators check HTTP status codes only, and a JSON-RPC error or a gRPC
# status travels inside a 200.
verify_echo() {
  local name=$1 url=$2 body=$3 response
  shift 3
  if [[ $body == *grpc.bin ]]; then
    curl -sS --http2-prior-knowledge "${GRPC_HEADERS[@]}" --data-binary @"$body" \
      -D "$WORK/grpc.headers" -o "$WORK/grpc.response" "$url"
    grep -qi '^grpc-status: 0' "$WORK/grpc.headers" && grep -q hello "$WORK/grpc.response" && return
    response=$(cat "$WORK/grpc.headers")
  else
    response=$(curl -sS --fail-with-body "$@" --data-binary @"$body" "$url") || {
      log "$name: request failed: $response"
      exit 1
    }
    grep -q '"text":"hello"' <<<"$response" && ! grep -q '"error"\|"isError":true' <<<"$response" && return
  fi
  log "$name: not an echo result: $response"
  exit 1
}

# legacy_session URL: initializes a 2025-06-18 session on the rmcp reference (its default
# configuration gives legacy clients one) and prints the session id.
legacy_session() {
  local url=$1 id
  curl -sS -D "$WORK/init.headers" -o /dev/null "${JSON_HEADERS[@]}" \
    --data-binary '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}' \
    "$url"
  id=$(awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }' "$WORK/init.headers" | tr -d '\r')
  [[ -n $id ]] || { log "the reference gave no session:"; cat "$WORK/init.headers" >&2; exit 1; }
  curl -sS -o /dev/null "${JSON_HEADERS[@]}" -H "mcp-session-id: $id" \
    -H 'mcp-protocol-version: 2025-06-18' \
    --data-binary '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$url"
  echo "$id"
}
