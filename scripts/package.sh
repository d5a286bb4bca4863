#!/usr/bin/env bash
# Build the .deb and the .rpm of cbr into target/debian/ and
# target/generate-rpm/: the binary, every man page, bash/zsh/fish
# completions, README, the guide, the CLI contract and the format doc it
# refers to. Installs cargo-deb and cargo-generate-rpm (from crates.io)
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
command -v cargo-generate-rpm >/dev/null || cargo install --locked cargo-generate-rpm
cargo build --release --locked
mkdir -p target/assets
target/release/cbr completions bash > target/assets/cbr.bash
target/release/cbr completions zsh > target/assets/_cbr
target/release/cbr completions fish > target/assets/cbr.fish
cargo deb --no-build --locked
cargo generate-rpm
ls -l target/debian/*.deb target/generate-rpm/*.rpm
