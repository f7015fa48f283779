#!/usr/bin/env bash
# Multi-agent workflows on orchestrate and on Google's ADK 2.x, side by side in the same run: a
# router (a classifier's structured answer picks one of two specialists) and a parallel fan-out
# (three agents at once, then a consensus agent), against a loopback model with a fixed latency.
# Per-run overhead at p50 and p99 (latency minus that of the same model calls made directly by
# the load generator) and cold start (exec -> ready, exec -> first run done), for each workflow.
# Targets: overhead and cold start each >= 10x better than ADK's.
#
# Usage: bench/orchestrate/workflows.sh [--runs N] [--latency-ms MS] [--cold-starts N] [--rounds N]
#                                       [--no-adk] [--no-build] [--smoke]
# Prints a Markdown table on stdout; progress goes to stderr. Work files: .cache/bench-workflows/.
# --smoke: a check that it still runs (CI runs it after `cargo test --workspace`): the debug
# binaries, 20 runs per path, 2 cold starts, no ADK; fails on any failed run. Not a measurement.
# orchestrate runs bench/orchestrate/router.yaml and parallel.yaml; ADK the apps bench_router and
# bench_parallel of bench/orchestrate/adk/. A configuration orchestrate refuses is reported with
# its error (and the script exits 1 after the table), not measured.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

RUNS=200      # measured runs per workflow and path, at concurrency 1
LATENCY_MS=20 # the model's latency before its first byte, per call
COLD=10       # cold starts of orchestrate per workflow (ADK: a third of it, at least 2)
ROUNDS=4      # chunks the runs of each path are split into, interleaved
ADK=true
BUILD=true
SMOKE=false
BIN=target/release
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --latency-ms) LATENCY_MS=$2; shift 2 ;;
    --cold-starts) COLD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-adk) ADK=false; shift ;;
    --no-build) BUILD=false; shift ;;
    --smoke) SMOKE=true RUNS=20 COLD=2 ROUNDS=1 ADK=false BUILD=false BIN=target/debug; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

SERVER_CPU=0 # orchestrate, ADK and the model server (one runtime thread each)
LOAD_CPU=1   # orchestrate-load, one thread
ORCHESTRATE=$BIN/orchestrate
MODEL=$BIN/bench-model
LOAD=$BIN/orchestrate-load
VENV=.cache/bench-adk-venv
WORK=.cache/bench-workflows
WORKFLOWS=(router parallel)
mkdir -p "$WORK"
rm -f "$WORK"/*.lat "$WORK"/*.stderr

log() { echo "bench/workflows: [${SECONDS}s] $*" >&2; }
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
# shellcheck source=lib.sh
source bench/orchestrate/lib.sh

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
  log "building orchestrate, bench-model and orchestrate-load (release)"
  cargo build --release -p orchestrate -p bench >&2
fi
for bin in "$ORCHESTRATE" "$MODEL" "$LOAD"; do
  if [[ ! -x $bin ]]; then
    log "$bin is missing: build it ($($SMOKE && echo 'cargo test --workspace, or cargo build --workspace --bins' || echo 'drop --no-build'))"
    exit 1
  fi
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- The loopback model, for the whole run. -----------------------------------------------------
model_port=$(free_port)
start bench-model "$model_port" "$MODEL" --port "$model_port" --latency-ms "$LATENCY_MS"
MODEL_BASE="http://127.0.0.1:$model_port/v1"
# Read by orchestrate's configurations (`${BENCH_MODEL_BASE}`) and by the ADK apps.
export BENCH_MODEL_BASE=$MODEL_BASE

# --- The servers: orchestrate, one instance per workflow; ADK, one for both. -------------------
declare -A ORCH_PID ORCH_URL REFUSED ORCH_COLD ADK_COLD
refused="" # the workflows orchestrate refused (an empty associative array is "unbound" to set -u)
for w in "${WORKFLOWS[@]}"; do
  port=$(free_port)
  if PORT=$port HOST=127.0.0.1 LOG_LEVEL=warn LOG_FORMAT=json TOKIO_WORKER_THREADS=1 \
    ORCHESTRATE_CONFIG=bench/orchestrate/$w.yaml try_start "orchestrate-$w" "$port" "$ORCHESTRATE"; then
    ORCH_PID[$w]=$server_pid
    ORCH_URL[$w]="http://127.0.0.1:$port/v1/run"
  else
    # The configuration error is one line (file:line:column: what is wrong).
    REFUSED[$w]=$(grep -m1 . "$WORK/orchestrate-$w.stderr" || echo "exited at start, no message")
    refused+=" $w"
    log "orchestrate refuses bench/orchestrate/$w.yaml, so its $w rows are not measured: ${REFUSED[$w]}"
  fi
done
if $ADK; then
  adk_prepare bench_router bench_parallel
  start_adk
  ADK_PID=$server_pid
  ADK_URL="http://127.0.0.1:$port"
fi

# --- Per-run overhead. -------------------------------------------------------------------------
# One untimed run of each server's workflow first: ADK loads an app (and LiteLLM) on its first
# request, which is cold start, not per-run cost.
for w in "${WORKFLOWS[@]}"; do
  if [[ -n ${ORCH_PID[$w]:-} ]]; then
    "$LOAD" run --url "${ORCH_URL[$w]}" --workflow "$w" --runs 1 >/dev/null
  fi
  ! $ADK || "$LOAD" adk --url "$ADK_URL" --app "bench_$w" --workflow "$w" --runs 1 >/dev/null
done
# Rounds interleave the paths in short chunks, so a change in the machine's other load lands on all
# of them alike; the first chunk of each is warmed up with a fifth of all its runs, later ones with
# a few (the load generator is a new process each time).
n=$(((RUNS + ROUNDS - 1) / ROUNDS))
for round in $(seq 1 "$ROUNDS"); do
  warm=5
  ((round > 1)) || warm=$((RUNS / 5))
  log "round $round of $ROUNDS: $n runs per path and workflow"
  for w in "${WORKFLOWS[@]}"; do
    load "direct-$w" 1 "$n" "$warm" - direct-workflow --model "$MODEL_BASE" --workflow "$w"
    if [[ -n ${ORCH_PID[$w]:-} ]]; then
      load "orchestrate-$w" 1 "$n" "$warm" "${ORCH_PID[$w]}" run --url "${ORCH_URL[$w]}" --workflow "$w"
    fi
    if $ADK; then
      load "adk-$w" 1 "$n" "$warm" "$ADK_PID" adk --url "$ADK_URL" --app "bench_$w" --workflow "$w"
    fi
  done
done
for w in "${WORKFLOWS[@]}"; do
  summarize "direct-$w" 1
  [[ -z ${ORCH_PID[$w]:-} ]] || summarize "orchestrate-$w" 1
  ! $ADK || summarize "adk-$w" 1
done
for pid in "${ORCH_PID[@]}"; do stop "$pid"; done
! $ADK || stop "$ADK_PID"

# --- Cold starts: exec -> ready, exec -> first run done. ---------------------------------------
adk_cold=$((COLD / 3))
((adk_cold >= 2)) || adk_cold=2
for w in "${WORKFLOWS[@]}"; do
  if [[ -z ${REFUSED[$w]:-} ]]; then
    log "cold starts: orchestrate, $w ($COLD)"
    ORCH_COLD[$w]=$(HOST=127.0.0.1 LOG_LEVEL=warn LOG_FORMAT=json ORCHESTRATE_CONFIG=bench/orchestrate/$w.yaml \
      taskset -c "$LOAD_CPU" "$LOAD" coldstart --ready /health/ready --first orchestrate \
      --workflow "$w" --runs "$COLD" --log "$WORK/orchestrate-$w-cold.stderr" -- \
      taskset -c "$SERVER_CPU" "$ORCHESTRATE")
  fi
  if $ADK; then
    log "cold starts: ADK, $w ($adk_cold)"
    ADK_COLD[$w]=$(taskset -c "$LOAD_CPU" "$LOAD" coldstart --ready /list-apps \
      --first "adk:bench_$w" --workflow "$w" --runs "$adk_cold" --log "$WORK/adk-$w-cold.stderr" -- \
      taskset -c "$SERVER_CPU" "${ADK_CMD[@]}" --port '{port}' "$ADK_APPS")
  fi
done

# --- Report. -----------------------------------------------------------------------------------
errors() { echo "$(col "$1" 4)"; }
if $SMOKE; then
  echo "## orchestrate workflows benchmark, smoke run: debug builds, a handful of runs (not a measurement)"
else
  echo "## orchestrate and ADK: multi-agent workflows ($(date -u +%F), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
fi
echo
echo "router: a classifier (structured answer: category, confidence, reasoning, as an OpenAI"
echo "\`response_format\` json_schema) routes the input to one of two specialists; 2 model calls in a row."
echo "parallel: three agents answer at once, then a consensus agent answers from theirs; 4 model calls,"
echo "2 deep. Loopback OpenAI-compatible model (bench-model) holding each call $LATENCY_MS ms before its first"
echo "byte and answering \`done\` (a schema's first enum value for the classifier: every run takes the"
echo "billing branch). orchestrate, ADK and the model pinned to CPU $SERVER_CPU (one runtime thread each);"
echo "orchestrate-load on CPU $LOAD_CPU, one thread, one run at a time. direct: the same model calls made by"
echo "orchestrate-load itself; overhead: latency minus direct's at the same percentile. $RUNS runs per"
echo "row in $ROUNDS interleaved chunks, after a warm-up of a fifth as many; ADK's session creation not"
echo "timed. CPU per run: user + system time of the orchestrate or ADK process over the runs and their"
echo "warm-up (direct: the load generator's own)."
echo
adk_label="ADK"
! $ADK || adk_label="ADK $(adk_version) (graph Workflow)"
echo "| workflow | path | p50 / p99 ms | overhead p50 / p99 ms | CPU per run µs | errors |"
echo "|---|---|---:|---:|---:|---:|"
for w in "${WORKFLOWS[@]}"; do
  direct=${R[direct-$w,1]}
  echo "| $w | direct | $(pair "$direct") | - | ${CPU[direct-$w,1]} | $(errors "$direct") |"
  if [[ -n ${REFUSED[$w]:-} ]]; then
    echo "| $w | orchestrate | not run: orchestrate refuses its configuration | | | |"
  else
    line=${R[orchestrate-$w,1]}
    echo "| $w | orchestrate | $(pair "$line") | $(over "$line" "$direct") | ${CPU[orchestrate-$w,1]} | $(errors "$line") |"
  fi
  if $ADK; then
    line=${R[adk-$w,1]}
    echo "| $w | $adk_label | $(pair "$line") | $(over "$line" "$direct") | ${CPU[adk-$w,1]} | $(errors "$line") |"
  fi
done
echo
echo "| workflow | path | exec -> ready median (p90) ms | exec -> first run done median ms | failed cold starts |"
echo "|---|---|---:|---:|---:|"
for w in "${WORKFLOWS[@]}"; do
  if [[ -n ${ORCH_COLD[$w]:-} ]]; then
    c=${ORCH_COLD[$w]}
    echo "| $w | orchestrate | $(col "$c" 1) ($(col "$c" 2)) | $(col "$c" 3) | $(col "$c" 4) |"
  fi
  if $ADK; then
    c=${ADK_COLD[$w]}
    echo "| $w | ADK | $(col "$c" 1) ($(col "$c" 2)) | $(col "$c" 3) | $(col "$c" 4) |"
  fi
done
echo
echo "Cold starts: $COLD of orchestrate per workflow$($ADK && echo ", $adk_cold of ADK") (exec through \`taskset\`; ready: \`GET"
echo "/health/ready\`, ADK's \`GET /list-apps\`; first run: one run as above, ADK's session included)."
echo
for w in "${WORKFLOWS[@]}"; do
  if [[ -n ${REFUSED[$w]:-} ]]; then
    echo "- $w: orchestrate refuses bench/orchestrate/$w.yaml, saying: ${REFUSED[$w]}"
    continue
  fi
  $ADK || continue
  ours=$(minus "$(col "${R[orchestrate-$w,1]}" 2)" "$(col "${R[direct-$w,1]}" 2)")
  theirs=$(minus "$(col "${R[adk-$w,1]}" 2)" "$(col "${R[direct-$w,1]}" 2)")
  run_ratio=$(overhead_ratio "$theirs" "$ours")
  cold_ratio=$(ratio "$(col "${ADK_COLD[$w]}" 3)" "$(col "${ORCH_COLD[$w]}" 3)")
  shown="${run_ratio}x"
  [[ $run_ratio != inf ]] || shown="no ratio (ours is not above 0, within the noise)"
  echo "- $w: overhead at p50, ADK $theirs ms, orchestrate $ours ms: $shown (target >= 10x:" \
    "$(verdict "$run_ratio" '>= 10')); cold start to the first run done: ADK's is ${cold_ratio}x" \
    "orchestrate's (target >= 10x: $(verdict "$cold_ratio" '>= 10'))"
done
if [[ -n $refused ]]; then
  log "orchestrate refused$refused: those rows were not measured"
  exit 1
fi
if $SMOKE; then
  failed=0
  for key in "${!ERRS[@]}"; do failed=$((failed + ERRS[$key])); done
  for w in "${WORKFLOWS[@]}"; do failed=$((failed + $(col "${ORCH_COLD[$w]}" 4))); done
  if ((failed > 0)); then
    log "smoke: $failed runs failed (see the samples above)"
    exit 1
  fi
  log "smoke: every run succeeded"
fi
