#!/usr/bin/env bash
# Builds every release binary, then measures them against the std-only floor.
# Arguments go to startup-bench: [--runs N] [NAME=PATH ...].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --workspace --bins
target/release/startup-bench "$@"
