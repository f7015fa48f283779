#!/usr/bin/env bash
# The compose test, run by .ci/containers.sh once the images are built: validates compose.yaml
# (the Compose Specification's schema, podman-compose's own parse), then brings up its three
# functions with podman from the local images ($IMAGE_PREFIX/NAME:$IMAGE_TAG) through
# compose.test.yaml (host network, Ollama replaced by .ci/fake-ollama.py on loopback), and
# checks that health reports all of them ready and that a run goes orchestrate -> model ->
# mcp-tool and back. Expects the podman environment .ci/containers.sh exports.
set -euo pipefail
cd "$(dirname "$0")/.."

START=$(date +%s)
step() { printf '[compose %4ss] %s\n' "$(($(date +%s) - START))" "$*"; }

: "${CONTAINERS_CACHE:=.cache/containers}"
# Debian's podman-compose (1.0.3) has no `config` and can't put a service on the host network;
# PyPI's, in a virtualenv of its own.
VENV=$CONTAINERS_CACHE/compose-venv
if ! "$VENV/bin/podman-compose" version >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'podman-compose==1.6.0'
fi
COMPOSE=("$VENV/bin/podman-compose" -p aixrun-test -f compose.yaml -f compose.test.yaml)

step "check-jsonschema --builtin-schema vendor.compose-spec compose.yaml"
check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
step "podman-compose config"
"$VENV/bin/podman-compose" -f compose.yaml config >/dev/null
echo "  compose.yaml: $("$VENV/bin/podman-compose" -f compose.yaml config --services | tr '\n' ' ')"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export TEST_HEALTH_PORT=$(free_port) TEST_ORCHESTRATE_PORT=$(free_port)
export TEST_MCP_TOOL_PORT=$(free_port) TEST_MODEL_PORT=$(free_port)
export IMAGE_PREFIX=${IMAGE_PREFIX:-localhost/aixrun} IMAGE_TAG=${IMAGE_TAG:-test}

python3 .ci/fake-ollama.py "$TEST_MODEL_PORT" 2>/dev/null &
MODEL_PID=$!
cleanup() {
  "${COMPOSE[@]}" down -t 2 >/dev/null 2>&1 || true
  kill "$MODEL_PID" 2>/dev/null || true
}
trap cleanup EXIT

step "podman-compose up -d (health :$TEST_HEALTH_PORT, orchestrate :$TEST_ORCHESTRATE_PORT, mcp-tool :$TEST_MCP_TOOL_PORT, model :$TEST_MODEL_PORT)"
"${COMPOSE[@]}" up -d --no-build >/dev/null 2>"$CONTAINERS_CACHE/compose-up.log" || {
  cat "$CONTAINERS_CACHE/compose-up.log" >&2
  exit 1
}
"${COMPOSE[@]}" ps

ready=
for _ in $(seq 150); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$TEST_HEALTH_PORT/health/ready" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
if [[ -z $ready ]]; then
  echo "FAIL: health never reported every target ready" >&2
  curl -sS "http://127.0.0.1:$TEST_HEALTH_PORT/health" >&2 || true
  "${COMPOSE[@]}" logs >&2 || true
  exit 1
fi
step "health reports every target ready"
body=$(curl -fsS "http://127.0.0.1:$TEST_HEALTH_PORT/health")
python3 - "$body" <<'PY'
import json, sys
body = json.loads(sys.argv[1])
for name, check in sorted(body["checks"].items()):
    print(f"  {name:12} {check['status']:9} {check.get('message', '')}")
assert body["status"] == "healthy", body
assert {n for n, c in body["checks"].items() if c["status"] == "healthy"} >= {"orchestrate", "mcp-tool", "ollama"}, body
PY
echo "  probe inside health: $(podman exec aixrun-test_health_1 /app probe "http://127.0.0.1:$TEST_HEALTH_PORT" 2>/dev/null \
  || podman exec aixrun-test-health-1 /app probe "http://127.0.0.1:$TEST_HEALTH_PORT")"

step "a run: orchestrate -> model -> mcp-tool's echo -> model"
run=$(curl -fsS "http://127.0.0.1:$TEST_ORCHESTRATE_PORT/v1/run" -H 'Content-Type: application/json' \
  -d '{"input": "Repeat after me: hello from compose"}')
python3 - "$run" <<'PY'
import json, sys
run = json.loads(sys.argv[1])
calls = [c for s in run["steps"] for c in s.get("tool_calls", [])]
print(f"  status {run['status']}, output {run.get('output')!r}, tool calls {[c['name'] for c in calls]}")
assert run["status"] == "completed", run
assert calls and "hello from compose" in (calls[0].get("result") or ""), run
PY
step "down"
