#!/usr/bin/env bash
# Start-up cost of sm:// secrets: exec to the first 200 from GET /health/ready of a release
# binary (default `health`) with three sm:// values served by a loopback fake metadata server +
# Secret Manager (bench/secrets/fake_google.py, threaded: requests are served concurrently),
# next to the same binary with no secrets, interleaved in one run. Prints a Markdown table: both
# medians, the difference, and the difference in round trips (difference / Secret Manager's
# latency). With --before PATH, a second binary (an older build) is measured in the same
# interleaved loop, one row each, so before and after share the machine's conditions.
#
#   bench/secrets/run.sh [--runs N] [--latency-ms MS] [--metadata-latency-ms MS] [--bin PATH]
#                        [--before PATH]
# Latencies: Secret Manager answers after --latency-ms (default 50: a regional API from Cloud
# Run); the metadata server after --metadata-latency-ms (default 2). On Cloud Run and GKE the
# metadata server is local to the instance (about 1 ms), so its latency is a few ms, not a
# Secret Manager round trip: the number that matters is how many Secret Manager round trips
# start-up waits for (one, when the three fetches overlap).
# Without --bin: cargo build --release -p health, then target/release/health.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=21 latency=50 meta_latency=2 bin= before=
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --latency-ms) latency=$2; shift 2 ;;
    --metadata-latency-ms) meta_latency=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --before) before=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--latency-ms MS] [--metadata-latency-ms MS] [--bin PATH] [--before PATH]" >&2; exit 2 ;;
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
PORT=$fake_port LATENCY_MS=$latency METADATA_LATENCY_MS=$meta_latency python3 "$here/fake_google.py" 2>"$WORK/fake.stderr" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$fake_port/" && break
  sleep 0.05
done
python3 - "$bin" "$fake_port" "$runs" "$latency" "$meta_latency" "$before" <<'PY'
import os, socket, statistics, subprocess, sys, time
binary, fake, runs, latency, meta = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
before = sys.argv[6]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(binary, secrets):
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
           "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
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

bins = ([("before", before)] if before else []) + [("after" if before else os.path.basename(binary), binary)]
plain = {name: [] for name, _ in bins}
secret = {name: [] for name, _ in bins}
for _ in range(runs):
    for name, path in bins:
        plain[name].append(start(path, False))
        secret[name].append(start(path, True))
print(f"nproc {os.cpu_count()}, {runs} runs each, interleaved, Secret Manager {latency} ms / metadata {meta} ms per answer, {os.path.basename(binary)}, {time.strftime('%F %H:%M')}\n")
print("| binary | no secrets, median ms | three sm:// secrets, median ms | difference ms | difference in round trips (1 RT = {} ms) |".format(latency))
print("|---|---:|---:|---:|---:|")
for name, _ in bins:
    a, b = statistics.median(plain[name]), statistics.median(secret[name])
    print(f"| {name} | {a:.1f} | {b:.1f} | {b - a:.1f} | {(b - a) / latency:.2f} |")
PY
