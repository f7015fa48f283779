#!/usr/bin/env bash
# tools/call of `echo` on one server core: throughput and p50/p99 latency of mcp-tool over modern
# HTTP (2026-07-28), legacy HTTP (2025-06-18) and gRPC, next to an rmcp reference server (both
# eras; legacy on its session path) and the Python SDK's FastMCP, all measured in the same run.
# Instructions per request: bench/mcp/callgrind.sh. See bench/mcp/README.md.
#
# Binaries: MCP_TOOL_BIN and RMCP_REFERENCE_BIN override the release builds (as in callgrind.sh).
# Usage: bench/mcp/run.sh [--duration S] [--warmup S] [--concurrency N] [--rounds N] [--no-build]
# Prints a Markdown table on stdout; progress goes to stderr. Work files: .cache/bench-mcp/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DURATION=10
WARMUP=2
CONCURRENCY=32
ROUNDS=3
BUILD=true
while (($#)); do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-build) BUILD=false; shift ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

SERVER_CPU=0 # every server, with its runtime limited to one worker thread
LOAD_CPU=1   # h2load, one thread
OURS=${MCP_TOOL_BIN:-target/release/mcp-tool}
REFERENCE=${RMCP_REFERENCE_BIN:-target/bench-rmcp/release/rmcp-reference}
VENV=.cache/bench-venv
WORK=.cache/bench-mcp
mkdir -p "$WORK"

log() { echo "bench/mcp: $*" >&2; }

# --- Tools: h2load (Debian nghttp2-client), curl, taskset; FastMCP in a venv. -----------------
if ! command -v h2load >/dev/null 2>&1; then
  log "installing h2load (nghttp2-client)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client >/dev/null
fi
for tool in curl taskset python3; do
  command -v "$tool" >/dev/null || { log "$tool is required"; exit 1; }
done
if ! "$VENV/bin/python" -c 'import mcp.server.fastmcp' 2>/dev/null; then
  log "installing the Python MCP SDK (mcp<2) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'mcp<2'
fi
if [[ $(nproc) -lt 2 ]]; then
  log "needs 2 CPUs (server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU)"
  exit 1
fi

if $BUILD; then
  log "building mcp-tool and the rmcp reference (release)"
  cargo build --release -p mcp-tool >&2
  cargo build --release --manifest-path bench/mcp/rmcp-reference/Cargo.toml \
    --target-dir target/bench-rmcp >&2
fi

# --- Request bodies, headers and the echo check. --------------------------------------------------
# shellcheck source=requests.sh
source bench/mcp/requests.sh

# --- Servers. ----------------------------------------------------------------------------------
# shellcheck source=../lib/common.sh
source bench/lib/common.sh

# Tool calls of echo that did not succeed, from mcp-tool's own metrics.
tool_failures() { # PORT
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^aixgo_mcp_tool_calls_total\{/ && /tool="echo"/ && !/status="success"/ { n += $NF } END { print n + 0 }'
}

# --- Measurement. ------------------------------------------------------------------------------
# Per case: its label, and one "req/s p50 p99 errors" line per round.
keys=()
declare -A LABEL RESULTS RPS

# case_ SERVER TRANSPORT KEY URL BODY HEADERS...: checks one call, measures, checks again.
case_() {
  local server=$1 transport=$2 key=$3 url=$4 body=$5
  shift 5
  local load=(--h1 "$@")
  [[ $body != *grpc.bin ]] || load=("$@")
  verify_echo "$server, $transport" "$url" "$body" "$@"
  measure "$server" "$transport" "$key" "$url" "$body" "${load[@]}"
  verify_echo "$server, $transport" "$url" "$body" "$@"
}

# measure SERVER TRANSPORT KEY URL BODY H2LOAD_ARGS...
measure() {
  local server=$1 transport=$2 key=$3 url=$4 body=$5 out="$WORK/$3"
  shift 5
  log "$server, $transport: ${WARMUP}s warm-up, ${DURATION}s at $CONCURRENCY connections"
  rm -f "$out.tsv" # h2load appends to its log file
  taskset -c "$LOAD_CPU" h2load -t 1 -c "$CONCURRENCY" -m 1 -D "$DURATION" \
    --warm-up-time "$WARMUP" -d "$body" --log-file "$out.tsv" "$@" "$url" >"$out.txt"
  local line
  line=$(h2load_summary "$out.txt" "$out.tsv")
  log "  req/s, p50 ms, p99 ms, errors: ${line//$'\t'/, }"
  [[ -v LABEL[$key] ]] || keys+=("$key")
  LABEL[$key]="| $server | $transport"
  RESULTS[$key]+="$line"$'\n'
}

# measure_sessions SERVER TRANSPORT KEY URL: the reference's legacy path. Within a session
# JSON-RPC ids must be unique, and h2load repeats one body, so each connection gets a session
# of its own: one single-connection h2load per session, all started together on the load CPU,
# their req/s summed and their latency logs merged.
measure_sessions() {
  local server=$1 transport=$2 key=$3 url=$4 out="$WORK/$3" i session
  local gens=()
  log "$server, $transport: ${WARMUP}s warm-up, ${DURATION}s at $CONCURRENCY connections (one session each)"
  for i in $(seq 1 "$CONCURRENCY"); do
    session=$(legacy_session "$url")
    verify_echo "$server, $transport" "$url" "$WORK/legacy.json" "${LEGACY_HEADERS[@]}" \
      -H "mcp-session-id: $session"
    rm -f "$out.$i.tsv"
    taskset -c "$LOAD_CPU" h2load -t 1 -c 1 -m 1 -D "$DURATION" --warm-up-time "$WARMUP" \
      -d "$WORK/legacy.json" --log-file "$out.$i.tsv" --h1 "${LEGACY_HEADERS[@]}" \
      -H "mcp-session-id: $session" "$url" >"$out.$i.txt" &
    gens+=($!)
  done
  for i in "${gens[@]}"; do wait "$i"; done
  local line
  line=$(for i in $(seq 1 "$CONCURRENCY"); do h2load_summary "$out.$i.txt" "$out.$i.tsv"; done |
    python3 -c '
import sys
rows = [l.split("\t") for l in sys.stdin.read().split("\n") if l.strip()]
print(f"{sum(float(r[0]) for r in rows):.0f}", end="\t")' )
  # Latency percentiles over all the sessions' requests.
  cat "$out".[0-9]*.tsv >"$out.tsv"
  line+=$(h2load_summary <(echo "finished in 1s, 0 req/s"; grep -h "^requests:\|^status codes:" "$out".1.txt) "$out.tsv" | cut -f2-)
  # Errors: summed over the sessions.
  local errors=0 e
  for i in $(seq 1 "$CONCURRENCY"); do
    e=$(h2load_summary "$out.$i.txt" "$out.$i.tsv" | cut -f4)
    errors=$((errors + e))
  done
  line="$(cut -f1-3 <<<"$line")"$'\t'"$errors"
  log "  req/s, p50 ms, p99 ms, errors: ${line//$'\t'/, }"
  [[ -v LABEL[$key] ]] || keys+=("$key")
  LABEL[$key]="| $server | $transport"
  RESULTS[$key]+="$line"$'\n'
}

# One round measures every case once; rounds interleave, so a burst of other load on the machine
# spreads over all servers instead of landing on one.
tool_errors=0
for round in $(seq 1 "$ROUNDS"); do
  # The machine's load when the round starts: other work on the two cores moves every number.
  log "round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  # mcp-tool, at the default LOG_LEVEL=info (a request log line and a tool-call log line per call)
  # and at warn. Log lines go to /dev/null: formatted and written, not stored.
  for level in info warn; do
    port=$(free_port)
    PORT=$port HOST=127.0.0.1 LOG_LEVEL=$level LOG_FORMAT=json TOKIO_WORKER_THREADS=1 \
      start "mcp-tool-$level" "$port" "$OURS"
    pid=$server_pid
    name="mcp-tool (LOG_LEVEL=$level)"
    url="http://127.0.0.1:$port/mcp"
    before=$(tool_failures "$port")
    case_ "$name" "HTTP 2026-07-28" "ours-$level-modern" "$url" "$WORK/modern.json" \
      "${MODERN_HEADERS[@]}"
    case_ "$name" "HTTP 2025-06-18" "ours-$level-legacy" "$url" "$WORK/legacy.json" \
      "${LEGACY_HEADERS[@]}"
    case_ "$name" "gRPC (h2c)" "ours-$level-grpc" "http://127.0.0.1:$port/mcp.MCPService/CallTool" \
      "$WORK/grpc.bin" "${GRPC_HEADERS[@]}"
    # The server's own count of echo calls that did not succeed (a gRPC status or a JSON-RPC
    # error rides in a 200, which h2load counts as a success).
    failed=$(($(tool_failures "$port") - before))
    if ((failed > 0)); then
      log "mcp-tool counted $failed echo calls that did not succeed (LOG_LEVEL=$level)"
      tool_errors=$((tool_errors + failed))
    fi
    stop "$pid"
  done

  # The rmcp reference, on the 2026-07-28 path (stateless in rmcp whatever the configuration)
  # and on the legacy path, where its default configuration gives each client a session.
  port=$(free_port)
  PORT=$port TOKIO_WORKER_THREADS=1 start rmcp-reference "$port" "$REFERENCE"
  pid=$server_pid
  case_ "rmcp reference" "HTTP 2026-07-28" ref-modern "http://127.0.0.1:$port/mcp" \
    "$WORK/modern.json" "${MODERN_HEADERS[@]}"
  measure_sessions "rmcp reference" "HTTP 2025-06-18 (sessions)" ref-legacy \
    "http://127.0.0.1:$port/mcp"
  stop "$pid"

  # FastMCP (Python SDK 1.x; it knows no 2026-07-28): stateless, JSON responses, one process.
  port=$(free_port)
  PORT=$port start fastmcp "$port" "$VENV/bin/python" bench/mcp/fastmcp_server.py
  pid=$server_pid
  version=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')
  case_ "FastMCP (mcp $version)" "HTTP 2025-06-18 (stateless)" fastmcp "http://127.0.0.1:$port/mcp" \
    "$WORK/legacy.json" "${LEGACY_HEADERS[@]}"
  stop "$pid"
done

# --- Report. -----------------------------------------------------------------------------------
ratio() { python3 -c "import sys;a,b=float(sys.argv[1]),float(sys.argv[2]);print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }
echo "## MCP tools/call echo, one server core ($(date -u +%F), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "Each server pinned to CPU $SERVER_CPU with one runtime thread; h2load on CPU $LOAD_CPU, one"
echo "thread, $CONCURRENCY connections, HTTP/1.1 keep-alive for MCP (gRPC: h2c, one stream each);"
echo "${WARMUP}s warm-up, then ${DURATION}s measured; $ROUNDS rounds, each column the median of the"
echo "rounds (errors: the sum). Latency from h2load's per-request log."
echo
echo "| server | transport | req/s | p50 ms | p99 ms | errors |"
echo "|---|---|---:|---:|---:|---:|"
for key in "${keys[@]}"; do
  # The median of the rounds for each column; errors are summed.
  read -r rps p50 p99 errors < <(printf '%s' "${RESULTS[$key]}" | median_row)
  RPS[$key]=$rps
  echo "${LABEL[$key]} | $rps | $p50 | $p99 | $errors |"
done
if ((tool_errors > 0)); then
  echo
  echo "mcp-tool's /metrics counted $tool_errors echo calls that did not succeed."
fi
echo
echo "mcp-tool's req/s over the rmcp reference's, same era, same run (targets: >= 1.0 at warn,"
echo ">= 0.9 at info; gRPC has no reference: its cost per call is in bench/mcp/callgrind.sh):"
echo
echo "| LOG_LEVEL | HTTP 2026-07-28 | HTTP 2025-06-18 (reference: sessions) | HTTP 2025-06-18 vs FastMCP (target >= 10) |"
echo "|---|---:|---:|---:|"
for level in warn info; do
  echo "| $level | $(ratio "${RPS[ours-$level-modern]}" "${RPS[ref-modern]}")x" \
    "| $(ratio "${RPS[ours-$level-legacy]}" "${RPS[ref-legacy]}")x" \
    "| $(ratio "${RPS[ours-$level-legacy]}" "${RPS[fastmcp]}")x |"
done
