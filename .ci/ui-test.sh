#!/usr/bin/env bash
# The dev console (/ui) in headless Chromium with Playwright (.ci/ui-test.mjs) against a real
# orchestrate on the scripted model (.ci/scripted-orchestrate.sh). Installs Debian's chromium
# when missing and playwright-core into .cache/ui-test/ (no browser download: it drives
# /usr/bin/chromium). The screenshot is kept at .cache/ui-screenshot.png.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=.cache/ui-test
PLAYWRIGHT=playwright-core@1.65.1
mkdir -p "$WORK"
log() { echo "ui-test: [${SECONDS}s] $*" >&2; }
# shellcheck source=scripted-orchestrate.sh
source .ci/scripted-orchestrate.sh

if ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [[ $(node -p "require('./$WORK/node_modules/playwright-core/package.json').version" 2>/dev/null) != "${PLAYWRIGHT#*@}" ]]; then
  log "installing $PLAYWRIGHT into $WORK"
  npm install --prefix "$WORK" --no-save --no-audit --no-fund --silent "$PLAYWRIGHT"
fi

start_scripted_orchestrate
log "$(chromium --version 2>/dev/null || echo chromium), node $(node --version)"
# The test module resolves playwright-core from its own directory's node_modules.
cp .ci/ui-test.mjs "$WORK/ui-test.mjs"
ORCHESTRATE_URL=$ORCHESTRATE_URL MODEL_URL=$MODEL_URL SCREENSHOT=.cache/ui-screenshot.png \
  node "$WORK/ui-test.mjs"
