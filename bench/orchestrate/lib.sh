# Shared by bench/orchestrate/run.sh and workflows.sh (source it after bench/lib/common.sh): Google's
# ADK in a virtualenv and its api_server; chunks of runs made by orchestrate-load, with their
# latencies and CPU, and their summaries; the report's number formatting. Callers set WORK, VENV,
# ADK, LOAD (orchestrate-load), LOAD_CPU and SERVER_CPU, and define log().

# --- ADK. --------------------------------------------------------------------------------------
# adk_install: google-adk 2.13 (with its MCP extra) and LiteLLM in $VENV, unless there already.
adk_install() {
  # (Checked by metadata: importing LiteLLM takes seconds.)
  if ! "$VENV/bin/python" -c 'import importlib.metadata as m; [m.version(p) for p in ("google-adk", "litellm", "mcp")]' 2>/dev/null; then
    # ADK's own declared range for LiteLLM (its "extensions" extra), and its MCP extra.
    log "installing google-adk[mcp] and LiteLLM into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'google-adk[mcp]==2.13.0' 'litellm>=1.84,<1.106.3'
  fi
}

adk_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("google-adk"), "/ LiteLLM", m.version("litellm"), "/ mcp", m.version("mcp"))'
}

# adk_prepare APP...: copies those apps of bench/orchestrate/adk/ to $WORK/adk (api_server may
# write there) and sets ADK_APPS and ADK_CMD: api_server with in-memory sessions and artifacts.
# LiteLLM reads its bundled model cost map instead of fetching it at import; ADK's MCP client skips
# its mTLS probe for Google credentials (GOOGLE_API_USE_CLIENT_CERTIFICATE) and google-auth its GCE
# metadata check (NO_GCE_CHECK): with no metadata server here they cost the first run seconds of
# timeouts, which a deployment on Cloud Run would not pay. The apps read BENCH_MODEL_BASE (and
# bench_agent BENCH_MCP_URL) from the environment: export them first.
adk_prepare() {
  local app
  ADK_APPS=$WORK/adk
  rm -rf "$ADK_APPS"
  mkdir -p "$ADK_APPS"
  for app in "$@"; do cp -r "bench/orchestrate/adk/$app" "$ADK_APPS/"; done
  find "$ADK_APPS" -name __pycache__ -prune -exec rm -rf {} +
  export LITELLM_LOCAL_MODEL_COST_MAP=True GOOGLE_API_USE_CLIENT_CERTIFICATE=false NO_GCE_CHECK=True
  ADK_CMD=("$VENV/bin/adk" api_server --no-reload --host 127.0.0.1 --log_level warning
    --session_service_uri memory:// --artifact_service_uri memory://)
}

start_adk() { # sets server_pid and port
  port=$(free_port)
  start adk "$port" "${ADK_CMD[@]}" --port "$port" "$ADK_APPS"
}

# --- Measurement. ------------------------------------------------------------------------------
# Per "KEY,CONCURRENCY": R = "runs/s p50 p99 errors" (runs/s the median of the chunks, p50 and p99
# over every run of every chunk, errors summed), CPU = µs per run; the rest accumulate chunks.
declare -A R CPU RPS ERRS CPU_US CPU_RUNS
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime

# load KEY CONCURRENCY RUNS WARMUP PID MODE ARGS...: one chunk of runs, after WARMUP unmeasured
# ones; its latencies go to $WORK/KEY-CONCURRENCY.lat. CPU: the process PID's time over the chunk
# (warm-up included), or with PID "-" the load generator's own over the measured runs (for
# direct, the client side of the same calls).
load() {
  local key=$1 c=$2 n=$3 warm=$4 pid=$5 line before own cpu runs
  shift 5
  [[ $pid == - ]] || before=$(cpu_ticks "$pid")
  line=$(taskset -c "$LOAD_CPU" "$LOAD" "$@" --concurrency "$c" --runs "$n" --warmup "$warm" \
    --latencies "$WORK/$key-$c.lat")
  read -r rps p50 p99 errors _ own <<<"$line"
  if [[ $pid == - ]]; then
    cpu=$((own * n)) runs=$n
  else
    cpu=$((($(cpu_ticks "$pid") - before) * TICK_US)) runs=$((n + warm))
  fi
  CPU_US[$key,$c]=$((${CPU_US[$key,$c]:-0} + cpu))
  CPU_RUNS[$key,$c]=$((${CPU_RUNS[$key,$c]:-0} + runs))
  ERRS[$key,$c]=$((${ERRS[$key,$c]:-0} + errors))
  RPS[$key,$c]+="$rps "
  log "  $key, c=$c: $n runs (+$warm warm-up): runs/s $rps, p50 $p50 ms, p99 $p99 ms, errors $errors"
}

summarize() { # KEY CONCURRENCY
  local key=$1 c=$2
  # shellcheck disable=SC2086
  R[$key,$c]=$(python3 - "$WORK/$key-$c.lat" ${RPS[$key,$c]} <<'PY'
import statistics, sys
lat = sorted(float(l) for l in open(sys.argv[1]) if l.strip())
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
rps = statistics.median(float(x) for x in sys.argv[2:])
print(f"{rps:.1f}\t{pct(0.50):.3f}\t{pct(0.99):.3f}", end="")
PY
  )$'\t'${ERRS[$key,$c]}
  CPU[$key,$c]=$((CPU_US[$key,$c] / CPU_RUNS[$key,$c]))
}

# --- Report. -----------------------------------------------------------------------------------
col() { cut -f"$2" <<<"$1"; } # LINE FIELD
minus() { python3 -c "import sys;print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$1" "$2"; }
ratio() { python3 -c "import sys;a,b=float(sys.argv[1]),float(sys.argv[2]);print(f'{a/b:.1f}' if b > 0 else 'n/a')" "$1" "$2"; }
ms() { python3 -c "import sys;print(f'{float(sys.argv[1]):.2f}')" "$1"; }
mib() { python3 -c "import sys;print(f'{float(sys.argv[1]) / 1024:.1f}')" "$1"; }
pair() { echo "$(ms "$(col "$1" 2)") / $(ms "$(col "$1" 3)")"; } # LINE: "p50 / p99"
over() { echo "$(minus "$(col "$1" 2)" "$(col "$2" 2)") / $(minus "$(col "$1" 3)" "$(col "$2" 3)")"; }
verdict() { python3 -c "import sys;print('met' if float(sys.argv[1]) $2 else 'NOT met')" "$1"; }
# overhead_ratio THEIRS OURS: THEIRS / OURS rounded, "inf" when ours is not above 0 (within the
# noise: it counts as met).
overhead_ratio() { python3 -c "import sys;a,b=float(sys.argv[1]),float(sys.argv[2]);print(f'{a/b:.0f}' if b > 0 else 'inf')" "$1" "$2"; }
