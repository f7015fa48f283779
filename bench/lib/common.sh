# Shared by the bench scripts (source it): server start/stop on a pinned CPU, free ports, and
# h2load's summary turned into "req/s p50 p99 errors". Callers set WORK (a work directory) and
# SERVER_CPU, and define log().

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start NAME PORT CMD...: runs CMD pinned to the server CPU (environment as set by the caller),
# output to /dev/null, and waits until PORT answers HTTP. Sets server_pid. Exits the script,
# showing CMD's stderr, when CMD exits first or never answers.
start() {
  try_start "$@" && return
  if kill -0 "$server_pid" 2>/dev/null; then
    log "$1 did not answer on port $2"
  else
    log "$1 exited at start:"
    cat "$WORK/$1.stderr" >&2
  fi
  exit 1
}

# try_start NAME PORT CMD...: start, but returns 1 instead when CMD exits first (its stderr is in
# $WORK/NAME.stderr) or never answers.
try_start() {
  local name=$1 port=$2
  shift 2
  taskset -c "$SERVER_CPU" "$@" >/dev/null 2>"$WORK/$name.stderr" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" 2>/dev/null || true
      return 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/") != 000 ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

stop() { # PID
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# h2load_summary TEXT_OUTPUT TSV_LOG: prints "req/s<TAB>p50 ms<TAB>p99 ms<TAB>errors".
h2load_summary() {
  python3 - "$1" "$2" <<'PY'
import re, sys
text, tsv = open(sys.argv[1]).read(), sys.argv[2]
rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
req = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
# Errors: failed requests (non-2xx, or the stream broke) and timeouts.
# (A request in flight when the warm-up ends is logged with status 0 and counted in neither.)
bad_status = sum(int(codes.group(i)) for i in (2, 3, 4))
errors = max(int(req.group(4)), bad_status) + int(req.group(6))
lat = sorted(int(l.split("\t")[2]) for l in open(tsv) if l.strip())
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000 if lat else float("nan")
print(f"{rps:.0f}\t{pct(0.50):.2f}\t{pct(0.99):.2f}\t{errors}")
PY
}

# The median of each column of "req/s p50 p99 errors" lines on stdin (errors summed).
median_row() {
  python3 -c '
import statistics, sys
rows = [l.split("\t") for l in sys.stdin.read().split("\n") if l.strip()]
col = lambda i: statistics.median(float(r[i]) for r in rows)
print(f"{col(0):.0f} {col(1):.2f} {col(2):.2f} {sum(int(r[3]) for r in rows)}")'
}
