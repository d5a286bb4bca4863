#!/usr/bin/env bash
# The long fuzz run: tests/fuzz.rs with many cases per target (default 500;
# the test suite's default is 8). Usage, from anywhere in the repository:
#
#   scripts/fuzz.sh [CASES] [cargo test filter/args...]
#   scripts/fuzz.sh 2000 fuzz_chunks          # one target
#   CBR_FUZZ_SEED=0x1234 scripts/fuzz.sh      # another reproducible stream
#   CBR_FUZZ_STRICT=1 scripts/fuzz.sh         # known bugs fail the run too
#
# Each target prints every failing run: the mutation, the command, the exit
# status / panic / hang, and a directory under $TMPDIR/cbr-fuzz/ holding the
# mutated file and a replay.sh. CBR_FUZZ_ONLY=N replays case N of a seed;
# CBR_FUZZ_VERBOSE=1 logs every run; CBR_FUZZ_TIMEOUT=S changes the per-run
# limit (default 20 s). See the comment at the top of tests/fuzz.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
CBR_FUZZ_CASES=${1:-500} exec cargo test --locked --release --test fuzz "${@:2}" -- --nocapture
