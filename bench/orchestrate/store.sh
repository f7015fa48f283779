#!/usr/bin/env bash
# What the run store costs a durable run: the same workflow (three react agents in a chain, one
# tool call each, on the scripted model, in process) submitted and executed through the run
# service on the memory store and on the Firestore emulator, interleaved, in one run. Prints
# Markdown tables: run time p50 / p90 and what Firestore adds, round trips, commits and writes
# per run, and per store operation (node boundary commit, event batch commit, lease, ...).
# Target: one commit per node boundary, events batched into it.
#
# Usage: bench/orchestrate/store.sh [--runs N] [--latencies MS,MS] [--no-build] [--smoke]
# Needs the Firestore emulator: uses FIRESTORE_EMULATOR_HOST when set, else starts it with
# scripts/emulators.sh (it keeps running: `bash scripts/emulators.sh stop`).
# --smoke: the debug binary `cargo test --workspace` built, 5 runs at 0 ms; fails unless every
# run completed and every node boundary took one commit (what CI runs). Not a measurement.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

RUNS=100
LATENCIES=0,100 # the scripted model's latency per call, one table row pair each
BUILD=true
SMOKE=false
BIN=target/release
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --latencies) LATENCIES=$2; shift 2 ;;
    --no-build) BUILD=false; shift ;;
    --smoke) SMOKE=true RUNS=5 LATENCIES=0 BUILD=false BIN=target/debug; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { echo "bench/store: [${SECONDS}s] $*" >&2; }

if [[ -z ${FIRESTORE_EMULATOR_HOST:-} ]]; then
  log "FIRESTORE_EMULATOR_HOST is unset: starting the emulators (scripts/emulators.sh)"
  emulators=$(bash scripts/emulators.sh)
  eval "$emulators"
fi
if $BUILD; then
  log "building orchestrate-store (release)"
  cargo build --release -p bench --bin orchestrate-store >&2
fi
STORE=$BIN/orchestrate-store
if [[ ! -x $STORE ]]; then
  log "$STORE is missing: build it ($($SMOKE && echo 'cargo test --workspace, or cargo build -p bench --bins' || echo 'drop --no-build'))"
  exit 1
fi
if $SMOKE; then
  echo "## run store benchmark, smoke run: debug build, a handful of runs (not a measurement)"
else
  echo "## run store: memory and Firestore ($(date -u +%F), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
fi
echo
args=(--runs "$RUNS" --latencies "$LATENCIES")
! $SMOKE || args+=(--smoke)
"$STORE" "${args[@]}"
! $SMOKE || log "smoke: every run completed, one commit per node boundary"
