#!/usr/bin/env bash
# The whole test suite: the Rust tests (unit, integration, property), then
# the interop suite against the real Cinder (skipped, visibly, where Python
# or the package registry is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --release
if [ -x tests/interop/run.sh ]; then
  bash tests/interop/run.sh
fi
