#!/usr/bin/env bash
# The orchestrator's own overhead per run: a react run with one tool call (model call 1 asks for
# mcp-tool's echo, model call 2 answers "done") against a loopback model server with a fixed
# latency, at p50 and p99, concurrency 1 and 80, next to the same model and tool calls made
# directly by the load generator; memory per in-flight run; and, side by side, the same agent on
# Google's ADK (api_server, LiteLLM, MCP toolset on the same mcp-tool): cold start and overhead.
# Targets: under 1 ms added at p50; cold start and per-run overhead each >= 10x better than ADK's.
#
# Usage: bench/orchestrate/run.sh [--runs N] [--latency-ms MS] [--cold-starts N] [--rounds N]
#                                 [--no-adk] [--no-build] [--smoke] [--baseline PATH]
# --baseline PATH: another orchestrate binary (an earlier commit's release build) measured in the
# same rounds, interleaved, with rows of its own and the difference: a change's cost, before and
# after, in one run.
# Prints a Markdown table on stdout; progress goes to stderr. Work files: .cache/bench-orchestrate/.
# --smoke: a check that the benchmark still runs (CI runs it after `cargo test --workspace`): the
# debug binaries that command built, a handful of runs, no ADK, under a minute; it fails on any
# failed run. Its numbers are not a measurement. Flags after it override its settings.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

RUNS=300      # measured runs per row at concurrency 1; 10x that at concurrency 80
LATENCY_MS=20 # the model's latency before its first byte, per call
COLD=10       # cold starts of orchestrate (ADK: a third of it, at least 2)
ROUNDS=5     # chunks the runs of each path and concurrency are split into, interleaved
ADK=true
BUILD=true
SMOKE=false
HIGH=80      # the high concurrency
SLOW_MS=2000 # the model's latency while runs pile up for the memory reading
BIN=target/release
BASELINE=
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --latency-ms) LATENCY_MS=$2; shift 2 ;;
    --cold-starts) COLD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-adk) ADK=false; shift ;;
    --no-build) BUILD=false; shift ;;
    --smoke) SMOKE=true RUNS=20 COLD=2 ROUNDS=1 ADK=false BUILD=false HIGH=8 SLOW_MS=300 BIN=target/debug; shift ;;
    --baseline) BASELINE=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

SERVER_CPU=0 # orchestrate, ADK, the model server and mcp-tool (one runtime thread each)
LOAD_CPU=1   # orchestrate-load, one thread
ORCHESTRATE=$BIN/orchestrate
MCP_TOOL=$BIN/mcp-tool
MODEL=$BIN/bench-model
LOAD=$BIN/orchestrate-load
VENV=.cache/bench-adk-venv
WORK=.cache/bench-orchestrate
mkdir -p "$WORK"

log() { echo "bench/orchestrate: [${SECONDS}s] $*" >&2; }
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
# shellcheck source=lib.sh
source bench/orchestrate/lib.sh

# --- Tools: curl, taskset; ADK and LiteLLM in a venv. -------------------------------------------
for tool in curl taskset python3; do
  command -v "$tool" >/dev/null || { log "$tool is required"; exit 1; }
done
if [[ $(nproc) -lt 2 ]]; then
  if ! $SMOKE; then
    log "needs 2 CPUs (servers on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU)"
    exit 1
  fi
  LOAD_CPU=0
fi
if $ADK; then adk_install; fi
if $BUILD; then
  log "building orchestrate, mcp-tool, bench-model and orchestrate-load (release)"
  cargo build --release -p orchestrate -p mcp-tool -p bench >&2
fi
for bin in "$ORCHESTRATE" "$MCP_TOOL" "$MODEL" "$LOAD" ${BASELINE:+"$BASELINE"}; do
  if [[ ! -x $bin ]]; then
    # (`cargo test --workspace` builds bench's binaries too: bench/tests/ starts them.)
    log "$bin is missing: build it ($($SMOKE && echo 'cargo test --workspace, or cargo build --workspace --bins' || echo 'drop --no-build'))"
    exit 1
  fi
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- The loopback model and mcp-tool, for the whole run. ----------------------------------------
model_port=$(free_port)
start bench-model "$model_port" "$MODEL" --port "$model_port" --latency-ms "$LATENCY_MS"
MODEL_BASE="http://127.0.0.1:$model_port/v1"
set_latency() { curl -sS --fail -o /dev/null --data-binary "$1" "http://127.0.0.1:$model_port/admin/latency"; }

tool_port=$(free_port)
PORT=$tool_port HOST=127.0.0.1 LOG_LEVEL=warn LOG_FORMAT=json TOKIO_WORKER_THREADS=1 \
  start mcp-tool "$tool_port" "$MCP_TOOL"
TOOLS_BASE="http://127.0.0.1:$tool_port"

PROMPT="Use the echo tool when asked to say something. Answer briefly."
config() { # TRANSPORT: the configuration file's path
  local file="$WORK/orchestrate-$1.yaml" where
  if [[ $1 == grpc ]]; then where="address: $TOOLS_BASE"; else where="url: $TOOLS_BASE/mcp"; fi
  cat >"$file" <<YAML
mcp_servers:
  - name: tools
    transport: $1
    $where
    tools: [echo]
model_services:
  - name: loopback
    provider: openai_compatible
    model: bench
    config: {address: $MODEL_BASE}
agents:
  - name: assistant
    role: react
    model: loopback
    prompt: "$PROMPT"
    mcp_servers: [tools]
YAML
  echo "$file"
}
GRPC_CONFIG=$(config grpc)
HTTP_CONFIG=$(config http)

start_orchestrate() { # NAME CONFIG [BINARY]: sets server_pid and port
  port=$(free_port)
  PORT=$port HOST=127.0.0.1 LOG_LEVEL=warn LOG_FORMAT=json TOKIO_WORKER_THREADS=1 \
    ORCHESTRATE_CONFIG=$2 start "$1" "$port" "${3:-$ORCHESTRATE}"
}

# ADK's api_server on a copy of the agent's directory (see lib.sh).
export BENCH_MODEL_BASE=$MODEL_BASE BENCH_MCP_URL=$TOOLS_BASE/mcp
adk_prepare bench_agent
rm -f "$WORK"/*.lat

# rss_per_run PID LOAD_ARGS...: idle VmRSS (after a short warm-up at concurrency 1), then the peak
# while $HIGH runs are in flight at once (the model holding each call $SLOW_MS ms): prints
# "idle KiB<TAB>KiB per in-flight run".
rss_per_run() {
  local pid=$1 idle line errors peak
  shift
  taskset -c "$LOAD_CPU" "$LOAD" "$@" --concurrency 1 --runs 20 >/dev/null
  sleep 0.5
  idle=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
  set_latency "$SLOW_MS"
  line=$(taskset -c "$LOAD_CPU" "$LOAD" "$@" --concurrency "$HIGH" --runs "$HIGH" --watch-pid "$pid")
  set_latency "$LATENCY_MS"
  read -r _ _ _ errors peak _ <<<"$line"
  ((errors == 0)) || log "  $errors of the $HIGH runs failed"
  log "  RSS idle $idle KiB, peak with $HIGH runs in flight $peak KiB"
  printf '%s\t%s\n' "$idle" "$(((peak - idle) / HIGH))"
}

start_orchestrate orchestrate-grpc "$GRPC_CONFIG"
GRPC_URL="http://127.0.0.1:$port/v1/run"
grpc_pid=$server_pid
log "memory per in-flight run: orchestrate (gRPC tools), on a fresh instance"
read -r ORCH_IDLE ORCH_PER_RUN < <(rss_per_run "$grpc_pid" run --url "$GRPC_URL")
start_orchestrate orchestrate-http "$HTTP_CONFIG"
HTTP_URL="http://127.0.0.1:$port/v1/run"
http_pid=$server_pid
# Rounds interleave the four paths in short chunks, so a change in the machine's other load lands
# on all of them alike. The first chunk of each is warmed up with a fifth of its runs, later ones
# just enough to open their connections again (the load generator is a new process each time).
KEYS=(direct-grpc orchestrate-grpc direct-http orchestrate-http)
if [[ -n $BASELINE ]]; then
  start_orchestrate baseline-grpc "$GRPC_CONFIG" "$BASELINE"
  BASE_GRPC_URL="http://127.0.0.1:$port/v1/run" base_grpc_pid=$server_pid
  start_orchestrate baseline-http "$HTTP_CONFIG" "$BASELINE"
  BASE_HTTP_URL="http://127.0.0.1:$port/v1/run" base_http_pid=$server_pid
  KEYS+=(baseline-grpc baseline-http)
fi
for c in 1 "$HIGH"; do
  total=$RUNS
  ((c == 1)) || total=$((RUNS * 10))
  n=$(((total + ROUNDS - 1) / ROUNDS))
  log "concurrency $c: $ROUNDS rounds of $n runs per path"
  for round in $(seq 1 "$ROUNDS"); do
    warm=$((total / 5))
    ((round == 1)) || warm=$((c == 1 ? 5 : c))
    load direct-grpc "$c" "$n" "$warm" - direct --model "$MODEL_BASE" --mcp "$TOOLS_BASE" --transport grpc
    load orchestrate-grpc "$c" "$n" "$warm" "$grpc_pid" run --url "$GRPC_URL"
    load direct-http "$c" "$n" "$warm" - direct --model "$MODEL_BASE" --mcp "$TOOLS_BASE" --transport http
    load orchestrate-http "$c" "$n" "$warm" "$http_pid" run --url "$HTTP_URL"
    if [[ -n $BASELINE ]]; then
      load baseline-grpc "$c" "$n" "$warm" "$base_grpc_pid" run --url "$BASE_GRPC_URL"
      load baseline-http "$c" "$n" "$warm" "$base_http_pid" run --url "$BASE_HTTP_URL"
    fi
  done
  for key in "${KEYS[@]}"; do summarize "$key" "$c"; done
done
stop "$grpc_pid"
stop "$http_pid"
[[ -z $BASELINE ]] || { stop "$base_grpc_pid"; stop "$base_http_pid"; }

log "cold starts: orchestrate ($COLD)"
ORCH_COLD=$(HOST=127.0.0.1 LOG_LEVEL=warn LOG_FORMAT=json ORCHESTRATE_CONFIG=$GRPC_CONFIG \
  taskset -c "$LOAD_CPU" "$LOAD" coldstart --ready /health/ready --first orchestrate --runs "$COLD" \
  --log "$WORK/orchestrate-cold.stderr" -- taskset -c "$SERVER_CPU" "$ORCHESTRATE")

if $ADK; then
  ADK_VERSION=$(adk_version)
  adk_cold=$((COLD / 3))
  ((adk_cold >= 2)) || adk_cold=2
  log "cold starts: ADK ($adk_cold)"
  ADK_COLD=$(taskset -c "$LOAD_CPU" "$LOAD" coldstart --ready /list-apps \
    --first adk:bench_agent --runs "$adk_cold" --log "$WORK/adk-cold.stderr" -- \
    taskset -c "$SERVER_CPU" "${ADK_CMD[@]}" --port '{port}' "$ADK_APPS")

  start_adk
  ADK_URL="http://127.0.0.1:$port"
  log "memory per in-flight run: ADK, on a fresh instance"
  read -r ADK_IDLE ADK_PER_RUN < <(rss_per_run "$server_pid" adk --url "$ADK_URL" --app bench_agent)
  load adk 1 $((RUNS / 3)) $((RUNS / 15)) "$server_pid" adk --url "$ADK_URL" --app bench_agent
  load adk "$HIGH" $((RUNS / 2)) $((RUNS / 10)) "$server_pid" adk --url "$ADK_URL" --app bench_agent
  summarize adk 1
  summarize adk "$HIGH"
  stop "$server_pid"
fi

# --- Report. -----------------------------------------------------------------------------------
row() { # LABEL TRANSPORT KEY [DIRECT_KEY]
  local label=$1 transport=$2 key=$3 base=${4:-} o1=- o80=-
  local one=${R[$key,1]} high=${R[$key,$HIGH]}
  if [[ -n $base ]]; then
    o1=$(over "$one" "${R[$base,1]}")
    o80=$(over "$high" "${R[$base,$HIGH]}")
  fi
  echo "| $label | $transport | $(pair "$one") | $o1 | $(pair "$high") | $o80 | $(col "$high" 1) | ${CPU[$key,1]} / ${CPU[$key,$HIGH]} | $(($(col "$one" 4) + $(col "$high" 4))) |"
}

if $SMOKE; then
  echo "## orchestrate benchmark, smoke run: debug builds, a handful of runs (not a measurement)"
else
  echo "## orchestrate: overhead per run ($(date -u +%F), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
fi
echo
echo "One react run: model call 1 (streamed; asks for echo) -> echo on mcp-tool -> model call 2"
echo "(streamed; answers \"done\"). Loopback OpenAI-compatible model (bench-model) holding each call"
echo "$LATENCY_MS ms before its first byte; the real mcp-tool. orchestrate, ADK, the model and mcp-tool"
echo "pinned to CPU $SERVER_CPU (one runtime thread each); orchestrate-load on CPU $LOAD_CPU, one thread."
echo "direct: the same calls made by orchestrate-load itself. Overhead: latency minus direct's at the"
echo "same percentile and concurrency (ADK: against direct over MCP HTTP, the transport it uses)."
echo "Runs per row: $RUNS at c=1, $((RUNS * 10)) at c=$HIGH, in $ROUNDS interleaved chunks (runs/s: their"
echo "median), after a warm-up of a fifth as many; ADK: $((RUNS / 3)) and $((RUNS / 2)) in one chunk,"
echo "session creation not timed. CPU per run: user + system time of the orchestrate or ADK process"
echo "over the runs and their warm-up; direct rows: the load generator's own over its runs, i.e. the"
echo "client side of the same three calls."
echo
echo "| path | tools | c=1 p50 / p99 ms | c=1 overhead p50 / p99 ms | c=$HIGH p50 / p99 ms | c=$HIGH overhead p50 / p99 ms | runs/s c=$HIGH | CPU per run µs c=1 / c=$HIGH | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
row orchestrate "gRPC" orchestrate-grpc direct-grpc
row orchestrate "MCP HTTP 2026-07-28" orchestrate-http direct-http
if [[ -n $BASELINE ]]; then
  row "baseline ($BASELINE)" "gRPC" baseline-grpc direct-grpc
  row "baseline ($BASELINE)" "MCP HTTP 2026-07-28" baseline-http direct-http
fi
row direct "gRPC" direct-grpc
row direct "MCP HTTP 2026-07-28" direct-http
if $ADK; then
  row "ADK $ADK_VERSION" "MCP HTTP (ADK's McpToolset)" adk direct-http
fi
echo
echo "| | exec -> ready median (p90) ms | exec -> first run done median ms | idle RSS MiB | RSS per in-flight run KiB |"
echo "|---|---:|---:|---:|---:|"
echo "| orchestrate | $(col "$ORCH_COLD" 1) ($(col "$ORCH_COLD" 2)) | $(col "$ORCH_COLD" 3) | $(mib "$ORCH_IDLE") | $ORCH_PER_RUN |"
if $ADK; then
  echo "| ADK | $(col "$ADK_COLD" 1) ($(col "$ADK_COLD" 2)) | $(col "$ADK_COLD" 3) | $(mib "$ADK_IDLE") | $ADK_PER_RUN |"
  echo "| ADK / orchestrate | $(ratio "$(col "$ADK_COLD" 1)" "$(col "$ORCH_COLD" 1)")x | $(ratio "$(col "$ADK_COLD" 3)" "$(col "$ORCH_COLD" 3)")x | $(ratio "$ADK_IDLE" "$ORCH_IDLE")x | $(ratio "$ADK_PER_RUN" "$ORCH_PER_RUN")x |"
fi
echo
echo "Cold starts: $COLD for orchestrate$($ADK && echo ", $adk_cold for ADK") (exec through \`taskset\`; ready: \`GET /health/ready\`,"
echo "ADK's \`GET /list-apps\`; first run: one run as above, ADK's session included). Memory: peak VmRSS"
echo "with $HIGH runs in flight (model latency raised to $SLOW_MS ms) minus idle VmRSS after 20 runs, / $HIGH."
echo
if $SMOKE; then
  failed=0
  for key in "${!ERRS[@]}"; do failed=$((failed + ERRS[$key])); done
  failed=$((failed + $(col "$ORCH_COLD" 4))) # cold starts that never completed a run
  if ((failed > 0)); then
    log "smoke: $failed runs failed (see the samples above)"
    exit 1
  fi
  log "smoke: every run succeeded"
  exit 0
fi
p50_grpc=$(minus "$(col "${R[orchestrate-grpc,1]}" 2)" "$(col "${R[direct-grpc,1]}" 2)")
p50_http=$(minus "$(col "${R[orchestrate-http,1]}" 2)" "$(col "${R[direct-http,1]}" 2)")
echo "- overhead at p50, c=1 (target < 1 ms): $p50_grpc ms with gRPC tools ($(verdict "$p50_grpc" '< 1')), $p50_http ms" \
  "with MCP HTTP tools ($(verdict "$p50_http" '< 1'))"
if [[ -n $BASELINE ]]; then
  for t in grpc http; do
    echo "- against the baseline, $t tools: p50 c=1 $(minus "$(col "${R[orchestrate-$t,1]}" 2)" "$(col "${R[baseline-$t,1]}" 2)") ms," \
      "p50 c=$HIGH $(minus "$(col "${R[orchestrate-$t,$HIGH]}" 2)" "$(col "${R[baseline-$t,$HIGH]}" 2)") ms," \
      "CPU per run c=1 $((CPU[orchestrate-$t,1] - CPU[baseline-$t,1])) µs, c=$HIGH $((CPU[orchestrate-$t,$HIGH] - CPU[baseline-$t,$HIGH])) µs" \
      "(this build minus the baseline's)"
  done
fi
if $ADK; then
  p50_adk=$(minus "$(col "${R[adk,1]}" 2)" "$(col "${R[direct-http,1]}" 2)")
  cold_ratio=$(ratio "$(col "$ADK_COLD" 1)" "$(col "$ORCH_COLD" 1)")
  # A non-positive overhead of ours cannot be divided by: it counts as met.
  run_ratio=$(overhead_ratio "$p50_adk" "$p50_http")
  shown_ratio="${run_ratio}x"
  [[ $run_ratio != inf ]] || shown_ratio="no ratio (ours is not above 0, within the noise)"
  echo "- cold start (exec -> ready): ADK's is ${cold_ratio}x orchestrate's (target >= 10x:" \
    "$(verdict "$cold_ratio" '>= 10'))"
  echo "- overhead per run at p50, c=1, both over MCP HTTP: ADK $p50_adk ms, orchestrate $p50_http ms:" \
    "$shown_ratio (target >= 10x: $(verdict "$run_ratio" '>= 10'))"
fi
