#!/usr/bin/env bash
# tools/call of `echo` (MCP HTTP 2026-07-28) on mcp-tool with no idle connections and with 1,000
# idle keep-alive connections held open, in the same run: throughput, p50/p99 latency and RSS.
# Targets: throughput within 10 %, RSS growth under 20 MiB per 1,000 idle connections.
#
# Usage: bench/idle/run.sh [--idle N] [--duration S] [--warmup S] [--rounds N] [--no-build]
# Prints a Markdown table on stdout; progress goes to stderr. Work files: .cache/bench-idle/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

IDLE=1000
DURATION=10
WARMUP=2
CONCURRENCY=32
ROUNDS=3
BUILD=true
while (($#)); do
  case $1 in
    --idle) IDLE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-build) BUILD=false; shift ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

SERVER_CPU=0
LOAD_CPU=1
OURS=target/release/mcp-tool
WORK=.cache/bench-idle
mkdir -p "$WORK"
log() { echo "bench/idle: $*" >&2; }
# shellcheck source=../lib/common.sh
source bench/lib/common.sh

if ! command -v h2load >/dev/null 2>&1; then
  log "installing h2load (nghttp2-client)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client >/dev/null
fi
if $BUILD; then
  log "building mcp-tool (release)"
  cargo build --release -p mcp-tool >&2
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

printf '%s' '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' \
  >"$WORK/modern.json"
HEADERS=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream'
  -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: echo')

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

declare -A RESULTS RSS_BEFORE RSS_AFTER
for round in $(seq 1 "$ROUNDS"); do
  for idle in 0 "$IDLE"; do
    log "round $round of $ROUNDS, $idle idle connections"
    port=$(free_port)
    PORT=$port HOST=127.0.0.1 LOG_LEVEL=info LOG_FORMAT=json TOKIO_WORKER_THREADS=1 \
      MAX_CONNECTIONS=$((IDLE + 1024)) start mcp-tool "$port" "$OURS"
    pid=$server_pid
    # Warm the MCP path so the baseline RSS holds its buffers.
    curl -sS "${HEADERS[@]}" --data-binary @"$WORK/modern.json" "http://127.0.0.1:$port/mcp" >/dev/null
    before=$(rss_kib "$pid")
    holder=
    if ((idle > 0)); then
      coproc HOLD { taskset -c "$LOAD_CPU" python3 bench/idle/hold.py "$port" "$idle"; }
      holder=$HOLD_PID
      read -r ready <&"${HOLD[0]}" || { log "holder failed"; exit 1; }
      log "  $ready"
    fi
    after=$(rss_kib "$pid")
    out="$WORK/r$round-$idle"
    rm -f "$out.tsv"
    taskset -c "$LOAD_CPU" h2load -t 1 -c "$CONCURRENCY" -m 1 -D "$DURATION" \
      --warm-up-time "$WARMUP" -d "$WORK/modern.json" --log-file "$out.tsv" --h1 "${HEADERS[@]}" \
      "http://127.0.0.1:$port/mcp" >"$out.txt"
    line=$(h2load_summary "$out.txt" "$out.tsv")
    log "  req/s, p50 ms, p99 ms, errors: ${line//$'\t'/, }; RSS ${before} -> ${after} KiB"
    RESULTS[$idle]+="$line"$'\n'
    RSS_BEFORE[$idle]+="$before "
    RSS_AFTER[$idle]+="$after "
    if [[ -n $holder ]]; then
      eval "exec ${HOLD[1]}>&-"
      wait "$holder" 2>/dev/null || true
    fi
    stop "$pid"
  done
done

median() { python3 -c 'import statistics,sys;print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
echo "## mcp-tool tools/call with idle connections open ($(date -u +%F), $(nproc) CPUs)"
echo
echo "Server pinned to CPU $SERVER_CPU with one runtime thread; h2load on CPU $LOAD_CPU, $CONCURRENCY"
echo "connections, MCP HTTP 2026-07-28 over HTTP/1.1 keep-alive; ${WARMUP}s warm-up, ${DURATION}s"
echo "measured; $ROUNDS rounds, medians. Idle connections: HTTP/1.1 keep-alive, each served once."
echo
echo "| idle connections | req/s | p50 ms | p99 ms | errors | RSS before (MiB) | RSS with idle open (MiB) |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
declare -A RPS GROWTH
for idle in 0 "$IDLE"; do
  read -r rps p50 p99 errors < <(printf '%s' "${RESULTS[$idle]}" | median_row)
  # shellcheck disable=SC2086
  b=$(median ${RSS_BEFORE[$idle]})
  # shellcheck disable=SC2086
  a=$(median ${RSS_AFTER[$idle]})
  RPS[$idle]=$rps
  GROWTH[$idle]=$(python3 -c "print(f'{($a - $b) / 1024:.1f}')")
  echo "| $idle | $rps | $p50 | $p99 | $errors | $(python3 -c "print(f'{$b/1024:.1f}')") | $(python3 -c "print(f'{$a/1024:.1f}')") |"
done
echo
echo "- throughput with $IDLE idle: $(python3 -c "print(f'{${RPS[$IDLE]} / ${RPS[0]}:.3f}')")x the same with none (target >= 0.90)"
echo "- RSS growth for $IDLE idle connections: ${GROWTH[$IDLE]} MiB (target < 20 MiB)"
