#!/usr/bin/env bash
# Instructions per tools/call of `echo`, under valgrind's callgrind, for mcp-tool (HTTP
# 2026-07-28, legacy HTTP 2025-06-18, gRPC) and the rmcp reference (2026-07-28, and 2025-06-18
# on its session path), with the cost broken down by layer. Unlike req/s, instruction counts
# do not move with other load on the machine. See bench/mcp/README.md.
#
# Usage: bench/mcp/callgrind.sh [--requests N] [--warmup N] [--no-build] [--only ours|reference]
# Prints Markdown tables on stdout; progress on stderr. Work files: .cache/bench-mcp/callgrind/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

REQUESTS=2000
WARMUP=300
BUILD=true
ONLY=
while (($#)); do
  case $1 in
    --requests) REQUESTS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --no-build) BUILD=false; shift ;;
    --only) ONLY=$2; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# Release builds as shipped (same profile, same optimisation) but with symbols and line tables,
# in their own target directories, so the shipped binaries stay as they are.
OURS=${MCP_TOOL_BIN:-target/callgrind/release/mcp-tool}
REFERENCE=${RMCP_REFERENCE_BIN:-target/callgrind-rmcp/release/rmcp-reference}
WORK=.cache/bench-mcp/callgrind
SERVER_CPU=0
mkdir -p "$WORK"
log() { echo "bench/mcp/callgrind: $*" >&2; }

for tool in valgrind callgrind_control h2load curl python3; do
  command -v "$tool" >/dev/null || { log "$tool is required (apt-get install valgrind nghttp2-client)"; exit 1; }
done

if $BUILD; then
  log "building mcp-tool and the rmcp reference (release, with symbols and line tables)"
  symbols=(--config 'profile.release.strip=false' --config 'profile.release.debug="line-tables-only"')
  cargo build --release -p mcp-tool --target-dir target/callgrind "${symbols[@]}" \
    --config 'profile.release.package.mcp-tool.strip=false' >&2
  cargo build --release --manifest-path bench/mcp/rmcp-reference/Cargo.toml \
    --target-dir target/callgrind-rmcp "${symbols[@]}" >&2
fi

# shellcheck source=../lib/common.sh
source bench/lib/common.sh

# --- Requests, and the echo check. ------------------------------------------------------------
# shellcheck source=requests.sh
source bench/mcp/requests.sh

# One connection, one request at a time: the same work per request for every server (the
# reference's legacy session would lose concurrent calls that share a JSON-RPC id).
load() { # N URL BODY H2LOAD_ARGS...
  local n=$1 url=$2 body=$3
  shift 3
  h2load -t 1 -c 1 -m 1 -n "$n" -d "$body" "$@" "$url" >"$WORK/h2load.txt"
  if ! grep -q "$n succeeded, 0 failed" "$WORK/h2load.txt"; then
    log "requests failed:"
    cat "$WORK/h2load.txt" >&2
    exit 1
  fi
}

# measure KEY SERVER_CMD... -- CASES: starts the server under callgrind, and for each case
# "label|path|body|header set" warms up, zeroes the counters, sends REQUESTS, dumps.
declare -A TOTAL
keys=()
measure_case() { # PID KEY URL BODY ARGS...
  local pid=$1 key=$2 url=$3 body=$4
  shift 4
  verify_echo "$key" "$url" "$body" "$@"
  local load_args=("$@")
  [[ $body == *grpc.bin ]] || load_args=(--h1 "$@")
  load "$WARMUP" "$url" "$body" "${load_args[@]}"
  # valgrind names its control pipes after $HOST, which every server here is given.
  HOST=127.0.0.1 callgrind_control --zero "$pid" >/dev/null
  load "$REQUESTS" "$url" "$body" "${load_args[@]}"
  rm -f "$WORK/$key.out"
  local before
  before=$(find "$WORK" -name "cg.$pid.out.*" | wc -l)
  HOST=127.0.0.1 callgrind_control --dump="$key" "$pid" >/dev/null
  # The dump is written by the server's next instrumented instruction: wait for it.
  for _ in $(seq 1 100); do
    (($(find "$WORK" -name "cg.$pid.out.*" | wc -l) > before)) && break
    sleep 0.1
  done
  local dump
  dump=$(grep -l "^desc: Trigger: .*$key" "$WORK"/cg."$pid".out.* | tail -1)
  mv "$dump" "$WORK/$key.out"
  python3 bench/mcp/callgrind_layers.py "$WORK/$key.out" "$REQUESTS" >"$WORK/$key.json"
  keys+=("$key")
  log "$key: $(python3 -c 'import json,sys;print(format(json.load(open(sys.argv[1]))["total"], ",.0f"))' "$WORK/$key.json") instructions per request"
}

start_callgrind() { # NAME PORT BINARY (environment from the caller)
  local name=$1 port=$2 binary=$3
  rm -f "$WORK"/cg.*.out*
  # Symbols are read for the breakdown; the counters start at zero after the warm-up.
  try_start "$name" "$port" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p.out" \
    --dump-instr=no --compress-pos=no "$binary" || { log "$name did not start"; cat "$WORK/$name.stderr" >&2; exit 1; }
}

if [[ $ONLY != reference ]]; then
  for level in warn info; do
    port=$(free_port)
    PORT=$port HOST=127.0.0.1 LOG_LEVEL=$level LOG_FORMAT=json TOKIO_WORKER_THREADS=1 \
      start_callgrind "mcp-tool-$level" "$port" "$OURS"
    pid=$server_pid
    url="http://127.0.0.1:$port/mcp"
    log "mcp-tool (LOG_LEVEL=$level) under callgrind, pid $pid"
    measure_case "$pid" "ours-$level-modern" "$url" "$WORK/modern.json" "${MODERN_HEADERS[@]}"
    measure_case "$pid" "ours-$level-legacy" "$url" "$WORK/legacy.json" "${LEGACY_HEADERS[@]}"
    measure_case "$pid" "ours-$level-grpc" "http://127.0.0.1:$port/mcp.MCPService/CallTool" \
      "$WORK/grpc.bin" "${GRPC_HEADERS[@]}"
    stop "$pid"
  done
fi
if [[ $ONLY != ours ]]; then
  port=$(free_port)
  PORT=$port HOST=127.0.0.1 TOKIO_WORKER_THREADS=1 start_callgrind rmcp-reference "$port" "$REFERENCE"
  pid=$server_pid
  url="http://127.0.0.1:$port/mcp"
  log "rmcp reference under callgrind, pid $pid"
  measure_case "$pid" ref-modern "$url" "$WORK/modern.json" "${MODERN_HEADERS[@]}"
  session=$(legacy_session "$url")
  measure_case "$pid" ref-legacy "$url" "$WORK/legacy.json" "${LEGACY_HEADERS[@]}" \
    -H "mcp-session-id: $session"
  stop "$pid"
fi

# --- Report. -------------------------------------------------------------------------------
python3 - "$WORK" "$REQUESTS" "${keys[@]}" <<'PY'
import json, sys
work, requests, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
data = {k: json.load(open(f"{work}/{k}.json")) for k in keys}
names = {
    "modern": "HTTP 2026-07-28", "legacy": "HTTP 2025-06-18", "grpc": "gRPC (h2c)",
}
def label(k):
    parts = k.split("-")
    if parts[0] == "ref":
        return f"rmcp reference, {names[parts[1]]}" + (" (session)" if parts[1] == "legacy" else "")
    return f"mcp-tool (LOG_LEVEL={parts[1]}), {names[parts[2]]}"
print(f"## Instructions per tools/call echo (callgrind, {requests} requests after a warm-up, one connection)")
print()
print("| server, transport | instructions / request | vs reference, same era |")
print("|---|---:|---:|")
for k in keys:
    era = k.split("-")[-1]
    ref = data.get(f"ref-{era}")
    ratio = f"{data[k]['total'] / ref['total']:.2f}x" if ref and not k.startswith("ref") else ""
    print(f"| {label(k)} | {data[k]['total']:,.0f} | {ratio} |")
print()
print("By layer, instructions per request. **self**: instructions in the layer's own code (what")
print("fat LTO inlined into it included); **inclusive**: its functions and everything they call,")
print("which for wrappers (middleware futures, tracing's Instrumented) counts nested work again.")
print()
cols = [k for k in keys]
print("| layer | " + " | ".join(f"{label(k)} self / inclusive" for k in cols) + " |")
print("|---|" + "---:|" * len(cols))
layers = []
for k in cols:
    for r in data[k]["rows"]:
        if r["layer"] not in layers:
            layers.append(r["layer"])
for layer in layers:
    cells = []
    for k in cols:
        r = next((r for r in data[k]["rows"] if r["layer"] == layer), None)
        cells.append(f"{r['own']:,.0f} / {r['inclusive']:,.0f}" if r else "")
    print(f"| {layer} | " + " | ".join(cells) + " |")
PY
