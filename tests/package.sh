#!/usr/bin/env bash
# Packaging check (CI): build the .deb and .rpm with scripts/package.sh,
# install the .deb with dpkg, and check that the installed cbr runs, that
# man finds its pages, and that the bash completion is where
# bash-completion looks. Needs root (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/package.sh
deb=$(ls -t target/debian/cbr_*.deb | head -1)
rpm=$(ls -t target/generate-rpm/cbr-*.rpm | head -1)
[ -s "$rpm" ] || { echo "package: no .rpm"; exit 1; }
dpkg -i "$deb"
pass=0 fail=0
ok() { echo "package: ok   $1"; pass=$((pass + 1)); }
bad() { echo "package: FAIL $1"; fail=$((fail + 1)); }
/usr/bin/cbr --version | grep -q "^cbr " && ok "cbr --version: $(/usr/bin/cbr --version)" || bad "cbr --version"
command -v man >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends man-db >/dev/null
}
page=$(man -w cbr-verify 2>/dev/null || true)
[ -n "$page" ] && ok "man -w cbr-verify: $page" || bad "man -w cbr-verify"
# Where bash-completion looks for completions loaded on demand.
dir=/usr/share/bash-completion/completions
if command -v pkg-config >/dev/null && pkg-config --exists bash-completion 2>/dev/null; then
  dir=$(pkg-config --variable=completionsdir bash-completion)
fi
grep -q "_cbr" "$dir/cbr" && ok "bash completion in $dir/cbr" || bad "bash completion in $dir/cbr"
[ -f /usr/share/doc/cbr/guide.md ] && ok "guide in /usr/share/doc/cbr" || bad "guide in /usr/share/doc/cbr"
[ -f /usr/share/doc/cbr/cinder-backup-format.md ] && ok "format doc (cli.md refers to it) in /usr/share/doc/cbr" || bad "cinder-backup-format.md in /usr/share/doc/cbr"
[ -f /usr/share/zsh/vendor-completions/_cbr ] && ok "zsh completion" || bad "zsh completion"
echo "package: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
