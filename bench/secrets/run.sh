#!/usr/bin/env bash
# Start-up cost of sm:// secrets: exec to the first 200 from GET /health/ready of a release
# binary (default `health`) with three sm:// values served by a loopback fake metadata server +
# Secret Manager (bench/secrets/fake_google.py, LATENCY_MS on every answer), next to the same
# binary with no secrets, interleaved in one run. Prints a Markdown table: both medians, the
# difference, and the difference in round trips (difference / latency).
#
#   bench/secrets/run.sh [--runs N] [--latency-ms MS] [--metadata-latency-ms MS] [--bin PATH]
# (metadata latency defaults to --latency-ms: the token is one round trip before the secrets,
# so overlapping fetches cost 2 round trips in all; --metadata-latency-ms 0 isolates the secrets.)
# Without --bin: cargo build --release -p health, then target/release/health.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=21 latency=50 meta_latency= bin=
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --latency-ms) latency=$2; shift 2 ;;
    --metadata-latency-ms) meta_latency=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--latency-ms MS] [--metadata-latency-ms MS] [--bin PATH]" >&2; exit 2 ;;
  esac
done
log() { echo "secrets-bench: $*" >&2; }
WORK=$(mktemp -d)
SERVER_CPU=${SERVER_CPU:-0}
# shellcheck source=../lib/common.sh
source "$root/bench/lib/common.sh"
trap 'cleanup; rm -rf "$WORK"' EXIT
if [[ -z $bin ]]; then
  log "building release health"
  (cd "$root" && cargo build --release -q -p health)
  bin=${CARGO_TARGET_DIR:-$root/target}/release/health
fi
fake_port=$(free_port)
meta_latency=${meta_latency:-$latency}
PORT=$fake_port LATENCY_MS=$latency METADATA_LATENCY_MS=$meta_latency python3 "$here/fake_google.py" 2>"$WORK/fake.stderr" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$fake_port/" && break
  sleep 0.05
done
python3 - "$bin" "$fake_port" "$runs" "$latency" "$meta_latency" <<'PY'
import os, socket, statistics, subprocess, sys, time
binary, fake, runs, latency, meta = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(secrets):
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
           "PATH": "/usr/bin:/bin"}
    if secrets:
        env.update({"GCE_METADATA_HOST": f"127.0.0.1:{fake}",
                    "SECRET_MANAGER_ENDPOINT": f"http://127.0.0.1:{fake}"})
        for i in range(1, 4):
            env[f"BENCH_SECRET_{i}"] = f"sm://projects/bench-project/secrets/bench-{i}"
    request = f"GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    t0 = time.perf_counter()
    child = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if time.perf_counter() - t0 > 10:
                raise SystemExit(f"{binary} not ready within 10 s")
            if child.poll() is not None:
                raise SystemExit(f"{binary} exited: {child.stderr.read().decode()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(request)
                    if s.recv(16).startswith(b"HTTP/1.1 200"):
                        return (time.perf_counter() - t0) * 1000
            except OSError:
                pass
    finally:
        child.kill(); child.wait()

plain, secret = [], []
for _ in range(runs):
    plain.append(start(False))
    secret.append(start(True))
a, b = statistics.median(plain), statistics.median(secret)
print(f"nproc {os.cpu_count()}, {runs} runs each, interleaved, Secret Manager {latency} ms / metadata {meta} ms per answer, {os.path.basename(binary)}, {time.strftime('%F %H:%M')}\n")
print("| start-up (exec to first 200 /health/ready) | median ms |")
print("|---|---:|")
print(f"| no secrets | {a:.1f} |")
print(f"| three sm:// secrets | {b:.1f} |")
print(f"| difference | {b - a:.1f} |")
print(f"| difference in round trips ({latency} ms) | {(b - a) / latency:.2f} |")
PY
