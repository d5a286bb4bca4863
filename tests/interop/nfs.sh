#!/usr/bin/env bash
# The NFS harness (issue 24): cbr's own NFSv3 client against the real
# NFS-Ganesha from Debian, in a network namespace of its own (loopback
# only), serving a copy of the fixture share read-only.
#
# What it checks:
#   - tests/nfs.rs inside the namespace: the export walked and read over
#     nfs:// equals the local copy (names, types, sizes, sha256 of every
#     file, ranges); links (to /etc, to the share) are refused and never
#     followed, a FIFO is refused, `..` is refused;
#   - read-only: every RPC the server logged (DISPATCH at full debug names
#     program, version and function) is one of MOUNT MNT/UMNT/NULL or NFS
#     NULL/GETATTR/LOOKUP/READ/READDIRPLUS/FSINFO; none writes, none is
#     READLINK; and the export itself is Access_Type = RO.
#
# Needs root (network namespaces, rpcbind on 111). Prints
# "nfs: SKIPPED (reason)" and exits 0 where it cannot run (not root, no
# netns, the packages cannot be installed).
#
# env: CBR_NFS_KEEP=1  keep the work directory (server log, config) and say where
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
FIX=$ROOT/fixtures/cinder-29/share

skip() {
  echo "nfs: SKIPPED ($1)"
  exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root for a network namespace and rpcbind"
command -v ip >/dev/null || skip "no ip(8) for a network namespace"
have_server() {
  command -v ganesha.nfsd >/dev/null && command -v rpcbind >/dev/null \
    && ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1
}
if ! have_server; then
  export DEBIAN_FRONTEND=noninteractive
  { timeout 300 apt-get install -y -q nfs-ganesha nfs-ganesha-vfs rpcbind \
      || { timeout 300 apt-get update -q && timeout 300 apt-get install -y -q nfs-ganesha nfs-ganesha-vfs rpcbind; }
  } >/dev/null 2>&1 || skip "nfs-ganesha, nfs-ganesha-vfs and rpcbind cannot be installed (apt unreachable?)"
fi
have_server || skip "Ganesha or its VFS backend missing after install"

W=$(mktemp -d /tmp/cbr-nfs.XXXXXX)
NS=cbrnfs$$
GPID=
RPID=
stop_pid() { # TERM, up to 5 s, then KILL; only the processes this script started
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
cleanup() {
  stop_pid "$GPID"
  stop_pid "$RPID"
  ip netns del "$NS" 2>/dev/null
  if [ "${CBR_NFS_KEEP:-}" = 1 ]; then
    echo "nfs: work directory kept: $W"
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
ip netns add "$NS" 2>/dev/null || skip "cannot make a network namespace"
ip netns exec "$NS" ip link set lo up

# The export: the share copy, and a directory of traps beside it.
mkdir -p "$W/export/traps" "$W/recovery"
cp -r "$FIX" "$W/export/share"
ln -s /etc "$W/export/traps/etc"
ln -s ../share "$W/export/traps/share-link"
mkfifo "$W/export/traps/fifo"
echo hi >"$W/export/traps/plain"
chmod -R a+rX "$W"

cat >"$W/ganesha.conf" <<CONF
NFS_CORE_PARAM {
  Protocols = 3;
  Mount_Path_Pseudo = true;
  NFS_Port = 2049;
  MNT_Port = 20048;
  Enable_NLM = false;
  Enable_RQUOTA = false;
}
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = $W/recovery; }
EXPORT {
  Export_Id = 1;
  Path = $W/export;
  Pseudo = /export;
  Protocols = 3;
  Transports = TCP;
  Access_Type = RO;
  Squash = Root_Squash;
  SecType = sys;
  FSAL { Name = VFS; }
}
LOG {
  Default_Log_Level = EVENT;
  Components { DISPATCH = FULL_DEBUG; }
}
CONF

# rpcbind must answer on 111 while Ganesha starts (it registers there).
mkdir -p /run/rpcbind
ip netns exec "$NS" rpcbind -f -w &
RPID=$!
sleep 0.5
start_ganesha() {
  ip netns exec "$NS" ganesha.nfsd -F -f "$W/ganesha.conf" -L "$W/ganesha.log" -p "$W/ganesha.pid" &
  GPID=$!
  for _ in $(seq 1 100); do
    ip netns exec "$NS" ss -ltn 2>/dev/null | grep -q ':2049 ' && return 0
    sleep 0.2
  done
  echo "nfs: FAIL Ganesha did not listen on 2049; its log:"
  tail -20 "$W/ganesha.log"
  exit 1
}
start_ganesha

FAILS=0
PASSES=0
result() { # result NAME STATUS
  if [ "$2" = 0 ]; then
    PASSES=$((PASSES + 1))
    echo "nfs: ok   $1"
  else
    FAILS=$((FAILS + 1))
    echo "nfs: FAIL $1"
  fi
}

URL=nfs://127.0.0.1/export/share
TRAPS=nfs://127.0.0.1/export/traps
ip netns exec "$NS" env CBR_NFS_URL="$URL" CBR_NFS_LOCAL="$W/export/share" CBR_NFS_TRAPS="$TRAPS" \
  CARGO_NET_OFFLINE=true cargo test --release --locked --test nfs -- --nocapture
result "client: export equals the local copy; links and FIFOs refused" $?

# Read-only: every call the server saw is a read procedure.
calls=$(grep -o 'Program 10000[35], Version [0-9]*, Function [0-9]*' "$W/ganesha.log" | sort | uniq -c)
echo "$calls" | sed 's/^/nfs:   server saw /'
bad=$(echo "$calls" | grep -v -E 'Program 100003, Version 3, Function (0|1|3|6|17|19)$|Program 100005, Version 3, Function (0|1|3)$' | grep . || true)
reads=$(echo "$calls" | grep -c 'Program 100003, Version 3, Function 6$' || true)
[ -z "$bad" ] && [ "$reads" -gt 0 ]
result "read-only: only MNT/UMNT/NULL/GETATTR/LOOKUP/READ/READDIRPLUS/FSINFO sent (no write, no READLINK)" $?

echo "nfs: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
