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
#   - cbr over nfs:// against cbr on the local directory Ganesha exports:
#     ls, show, check, verify --deep (--json) give the same exit and stdout,
#     restore the manifest's image; a damaged chunk is found, a chunk
#     replaced by a symlink is refused (symlink-refused), a server restart
#     mid-verify is retried (exit 0, no finding), a server stopped for good
#     mid-verify gives exit 2;
#   - read-only: every RPC the server logged (DISPATCH at full debug names
#     program, version and function) is one of MOUNT MNT/UMNT/NULL or NFS
#     NULL/GETATTR/LOOKUP/READ/READDIRPLUS/FSINFO; none writes, none is
#     READLINK; and the export itself is Access_Type = RO.
#
#   - a directory of 10,000 backups (written by tests/nfs.rs's generator
#     before the server starts) is listed over nfs:// as locally (ls --json).
#
# Serve mode, for the benchmark (benches/nfs.rs) and by hand:
#   nfs.sh serve DIR -- CMD [ARGS...]
# exports DIR (read-only, as /export; it must be world-readable: the
# export squashes root) with the same Ganesha in a namespace of its own,
# runs CMD in that namespace with CBR_NFS_URL=nfs://127.0.0.1/export, and
# exits with CMD's status. With CBR_NFS_DELAY_MS=N it also starts
# examples/delay_proxy.rs (N ms each way; built here with cargo;
# CBR_NFS_PROXY=python: tests/interop/delay_proxy.py, the slower one it
# replaced) in front of the NFS port:
# CBR_NFS_DELAYED_URL names the export through it, and
# CBR_NFS_PROXY_CONTROL=HOST:PORT answers "calls N" (RPCs forwarded; the
# Rust proxy adds a line per procedure, "READ N").
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
SERVE=
if [ "${1:-}" = serve ]; then
  SERVE=$(realpath -e "${2:?nfs.sh serve DIR -- CMD}") || exit 2
  shift 2
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || { echo "nfs.sh serve DIR -- CMD [ARGS...]" >&2; exit 2; }
fi

skip() {
  echo "nfs: SKIPPED ($1)"
  exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root for a network namespace and rpcbind"
for t in ip unshare nsenter ss; do
  command -v "$t" >/dev/null || skip "no $t(8) for the namespaces"
done
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
PPID_PROXY=
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
  stop_pid "$PPID_PROXY"
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

mkdir -p "$W/recovery"
if [ -n "$SERVE" ]; then
  EXPORT=$SERVE
  # The bench measures the server, not its debug log.
  LOGCOMP=
else
  EXPORT=$W/export
  LOGCOMP='Components { DISPATCH = FULL_DEBUG; }'
  # The export: the share copy, a directory of traps beside it, and
  # 10,000 backups (written before the server starts: no cache of its
  # can hide them).
  mkdir -p "$W/export/traps"
  cp -r "$FIX" "$W/export/share"
  ln -s /etc "$W/export/traps/etc"
  ln -s ../share "$W/export/traps/share-link"
  mkfifo "$W/export/traps/fifo"
  echo hi >"$W/export/traps/plain"
  mkdir -p "$W/export/many"
  t0=$SECONDS
  CBR_NFS_WRITE_MANY=$W/export/many CARGO_NET_OFFLINE=true \
    cargo test --release --locked -q --test nfs -- --ignored --exact write_many_backups_for_the_harness >"$W/many.log" 2>&1 \
    || { echo "nfs: FAIL writing the 10,000 backups"; tail -20 "$W/many.log"; exit 1; }
  echo "nfs: wrote 10,000 backups in $((SECONDS - t0)) s"
  chmod -R a+rX "$W"
fi

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
  Path = $EXPORT;
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
  $LOGCOMP
}
CONF

# rpcbind must answer on 111 while Ganesha starts (it registers there,
# through /run/rpcbind.sock): both run in a mount namespace of their own
# with a private /run, so that an rpcbind of the host is left alone.
ip netns exec "$NS" unshare -m --propagation private \
  sh -c 'mount -t tmpfs cbr-nfs-run /run && mkdir -p /run/rpcbind && exec rpcbind -f -w' &
RPID=$!
for _ in $(seq 1 50); do
  ip netns exec "$NS" ss -ltn 2>/dev/null | grep -q ':111 ' && break
  sleep 0.1
done
start_ganesha() {
  nsenter -t "$RPID" -m -n ganesha.nfsd -F -f "$W/ganesha.conf" -L "$W/ganesha.log" -p "$W/ganesha.pid" &
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

if [ -n "$SERVE" ]; then
  export CBR_NFS_URL=nfs://127.0.0.1/export
  if [ -n "${CBR_NFS_DELAY_MS:-}" ]; then
    # A proxy in Rust: the Python one it replaced (GIL, ~60k records each
    # way for 10,000 backups) was itself the bottleneck of the ls bench.
    # CBR_NFS_PROXY=python runs the old one, for comparison.
    if [ "${CBR_NFS_PROXY:-}" = python ]; then
      PROXY=(python3 "$ROOT/tests/interop/delay_proxy.py")
    else
      CARGO_NET_OFFLINE=true cargo build --release --locked -q --example delay_proxy \
        || { echo "nfs: FAIL building examples/delay_proxy.rs"; exit 1; }
      PROXY=("${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/delay_proxy")
    fi
    ip netns exec "$NS" "${PROXY[@]}" 3049 2049 "$CBR_NFS_DELAY_MS" 3050 &
    PPID_PROXY=$!
    for _ in $(seq 1 50); do
      ip netns exec "$NS" ss -ltn 2>/dev/null | grep -q ':3050 ' && break
      sleep 0.1
    done
    export CBR_NFS_DELAYED_URL='nfs://127.0.0.1:3049/export?mountport=20048'
    export CBR_NFS_PROXY_CONTROL=127.0.0.1:3050
  fi
  ip netns exec "$NS" "$@"
  exit $?
fi

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

# The cbr commands over nfs:// against the same commands on the local
# directory (the one Ganesha exports): same exit, same stdout (the share
# path replaced), same image.
CBR=${CBR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cbr}
[ -x "$CBR" ] || cargo build --release --locked -q
LOCAL=$W/export/share
FULL=a0f6583f-d913-426d-a8e2-d262262a433b     # full-zlib
INCR2=5e3d24d4-0659-43cf-b107-c4e9be24598c    # incr2-zlib (chain of three)
INCR2_SHA=a2cf32d8d4a6a21aecfdf5e8b2b348f72db7f30cb22a5994d21a3b096f33d539
BZ2=daa0e87d-2b85-42ab-a96f-9fcdd67c2fc3      # full-bz2, one chunk
ZSTD=f953a76b-dc56-43f9-8758-9be95e3dfd05     # full-zstd, one chunk
same() { # same NAME WANT_EXIT ARGS... (the pair compared: $LOCAL and $URL)
  local name=$1 want=$2
  shift 2
  "$CBR" "$@" --share "$LOCAL" >"$W/l.out" 2>"$W/l.err"
  local rl=$?
  ip netns exec "$NS" "$CBR" "$@" --share "$URL" >"$W/n.out" 2>"$W/n.err"
  local rn=$?
  sed "s#$LOCAL#SHARE#g" "$W/l.out" >"$W/l.norm"
  sed "s#$URL#SHARE#g" "$W/n.out" >"$W/n.norm"
  if [ "$rl" = "$want" ] && [ "$rn" = "$want" ] && [ -s "$W/l.norm" ] && cmp -s "$W/l.norm" "$W/n.norm"; then
    result "$name: exit $rn, same output as the local directory" 0
  else
    result "$name: exit local $rl, nfs $rn (want $want)" 1
    diff "$W/l.norm" "$W/n.norm" | head -20
    tail -5 "$W/n.err"
  fi
}
same "ls --json" 0 ls --json
same "show --json" 0 show "$FULL" --json
same "check --json" 0 check fixtures/cinder-29/records/full-zlib.cinderclient.txt --json
same "verify --deep --json" 0 verify --deep --json
# plan's runbook names the share in its cbr check steps: the URL as given,
# never made a local path ($PWD/nfs:/...).
same "plan --from-share (the runbook)" 0 plan --from-share --default-project 0123456789abcdef0123456789abcdef

# 10,000 backups listed over nfs:// (issue 24), as locally: every row of
# ls --json (the sha256file header of each read too).
t0=$SECONDS
LOCAL=$W/export/many URL=nfs://127.0.0.1/export/many same "ls --json, 10,000 backups" 0 ls --json
n=$(grep -c '"id":' "$W/n.out")
[ "$n" = 10000 ]
# shellcheck disable=SC2319 # the status of the test just above
result "ls over nfs:// lists the 10,000 backups ($n; local and nfs:// in $((SECONDS - t0)) s)" $?
ip netns exec "$NS" "$CBR" restore -q "$INCR2" --share "$URL" -o "$W/img.nfs"
r=$?
got=$(sha256sum "$W/img.nfs" 2>/dev/null | cut -d' ' -f1)
rm -f "$W/img.nfs"
[ "$r" = 0 ] && [ "$got" = "$INCR2_SHA" ]
# shellcheck disable=SC2319 # the status of the test just above
result "restore over nfs:// (incr2-zlib, chain of three): the manifest's sha256" $?

# A journal keyed by the URL: the second run skips what the first proved.
ip netns exec "$NS" "$CBR" verify --deep -q --share "$URL" "$FULL" --journal "$W/j.sqlite" >/dev/null 2>&1
ip netns exec "$NS" "$CBR" verify --deep -q --share "$URL" "$FULL" --journal "$W/j.sqlite" --older-than 30d >"$W/j.out" 2>&1
r=$?
[ "$r" = 0 ] && grep -q '16 chunk(s) skipped, already proven' "$W/j.out"
# shellcheck disable=SC2319 # the status of the test just above
result "verify --journal over nfs://: the second run skips the 16 proven chunks" $?

# A server restart mid-verify: retried on a new connection, same result.
stop_server_after() { # seconds, then restart (1) or not (0)
  sleep "$1"
  stop_pid "$GPID"
  GPID=
  [ "$2" = 1 ] && start_ganesha
}
ip netns exec "$NS" "$CBR" verify --deep --share "$URL" >"$W/v.out" 2>"$W/v.err" &
VPID=$!
stop_server_after 2 1
wait "$VPID"
r=$?
[ "$r" = 0 ] && grep -q '0 finding' "$W/v.err"
result "server restarted mid-verify: retried, exit $r, no finding" $?
tail -2 "$W/v.err"

# The server stopped for good mid-verify: exit 2, never an OK.
ip netns exec "$NS" "$CBR" verify --deep --share "$URL" >"$W/v.out" 2>"$W/v.err" &
VPID=$!
stop_server_after 2 0
wait "$VPID"
r=$?
[ "$r" = 2 ] && grep -q 'NFS server was lost' "$W/v.err"
result "server stopped mid-verify: exit $r (2), says so" $?
tail -2 "$W/v.err"

start_ganesha

# A damaged chunk is found (as locally).
chunk=$(ls "$LOCAL"/da/a0/$BZ2/*-00001)
printf '\xff\xff\xff\xff' | dd of="$chunk" bs=1 seek=4096 conv=notrunc status=none

# A symlink on the export is refused, not followed: the zstd chunk becomes
# a link to an intact copy of itself outside the share.
chunk=$(ls "$LOCAL"/f9/53/$ZSTD/*-00001)
mkdir -p "$W/outside"
mv "$chunk" "$W/outside/chunk"
ln -s "$W/outside/chunk" "$chunk"
# Changed behind the server's back: restart it so that no cache of its
# hides the change.
stop_pid "$GPID"
start_ganesha
same "verify --deep --json, a damaged chunk" 1 verify --deep --json "$BZ2"
grep -q '"code": "decompress-failed"' "$W/n.out"
result "the damaged chunk is found (decompress-failed)" $?
same "verify --deep --json, a chunk that is a symlink" 1 verify --deep --json "$ZSTD"
grep -q 'symlink-refused' "$W/n.out"
result "the linked chunk is refused as symlink-refused, never read" $?

# Read-only: every call the server saw in this whole run (the client
# tests and every command above) is a read procedure.
calls=$(grep -o 'Program 10000[35], Version [0-9]*, Function [0-9]*' "$W/ganesha.log" | sort | uniq -c)
# shellcheck disable=SC2001 # one prefix per line
echo "$calls" | sed 's/^/nfs:   server saw /'
bad=$(echo "$calls" | grep -v -E 'Program 100003, Version 3, Function (0|1|3|6|17|19)$|Program 100005, Version 3, Function (0|1|3)$' | grep . || true)
reads=$(echo "$calls" | grep -c 'Program 100003, Version 3, Function 6$' || true)
[ -z "$bad" ] && [ "$reads" -gt 0 ]
result "read-only: only MNT/UMNT/NULL/GETATTR/LOOKUP/READ/READDIRPLUS/FSINFO sent (no write, no READLINK)" $?

echo "nfs: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
