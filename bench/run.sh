#!/usr/bin/env bash
# Builds the release binaries, then measures them against the std-only floor.
# Arguments go to startup-bench: [--runs N] [NAME=PATH ...].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The functions are built on their own, as the Dockerfile builds them: in one build with the
# test and bench packages, Cargo would unify those packages' dependency features into the
# functions' and measure binaries that never ship.
cargo build --release -p orchestrate -p mcp-tool -p health
cargo build --release -p bench --bin startup-bench --bin floor
# orchestrate starts on the configuration it is deployed with (tools over gRPC; the default
# build has no local tools for the bundled example). Nothing is dialled before the port opens.
export ORCHESTRATE_CONFIG=${ORCHESTRATE_CONFIG:-knative/base/orchestrate-config.yaml}
export MCP_TOOL_URL=${MCP_TOOL_URL:-http://127.0.0.1:9}
target/release/startup-bench "$@"
