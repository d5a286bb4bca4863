#!/usr/bin/env bash
# Interop suite: cbr against the real Cinder 29.0.0 (see README.md here).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LAB=$ROOT/tests/interop
CBR=$ROOT/target/release/cbr
FIX=$ROOT/fixtures/cinder-29
skip() { echo "interop: SKIPPED: $*"; exit 0; }
[ -x "$CBR" ] || cargo build --release --locked -q || { echo "interop: cannot build cbr"; exit 1; }
command -v python3 >/dev/null || skip "no python3 on this machine"
VENV=$ROOT/target/interop-venv
if ! "$VENV/bin/python" -c 'import cinder, zstd, yaml' 2>/dev/null; then
  echo "interop: installing cinder==29.0.0 into $VENV (about a minute)"
  python3 -m venv "$VENV" || skip "python3 -m venv failed"
  "$VENV/bin/pip" install -q cinder==29.0.0 zstd python-cinderclient cliff pyyaml \
    || skip "pip could not install cinder==29.0.0 (no package registry?)"
fi
PY=$VENV/bin/python
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0; fail=0
ok() { echo "interop: ok   $*"; pass=$((pass + 1)); }
bad() { echo "interop: FAIL $*"; fail=$((fail + 1)); }

# manifest_sha MANIFEST ID
manifest_sha() { python3 -c 'import json,sys; print(next(b["volume_sha256"] for b in json.load(open(sys.argv[1]))["backups"] if b["id"]==sys.argv[2]))' "$1" "$2"; }
# import_and_restore SHARE WANT_SHA LABEL RECORD...
import_and_restore() {
  local share=$1 want=$2 label=$3; shift 3
  local out
  out=$("$PY" "$LAB/import_check.py" "$share" "$@" 2>"$WORK/import.err")
  local got err
  got=$(printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("restored_sha256") or "")' 2>/dev/null)
  err=$(printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("error") or "")' 2>/dev/null)
  if [ -n "$got" ] && [ "$got" = "$want" ] && [ -z "$err" ]; then
    ok "$label: imported by Cinder 29 and restored to $want"
  else
    bad "$label: import/restore gave '${got:-nothing}' (want $want) ${err:+error: $err}"
    tail -5 "$WORK/import.err" 2>/dev/null
  fi
}

echo "== 1. rewritten fixture records into the real Cinder"
cp -r "$FIX/share" "$WORK/share1"
P=44444444444444444444444444444444; U=55555555555555555555555555555555
recs=()
for stem in full-zlib incr1-zlib incr2-zlib; do
  "$CBR" rewrite -q --project-id $P --user-id $U --emit export-json "$FIX/records/$stem.export.json" > "$WORK/$stem.json" \
    || bad "rewrite $stem"
  recs+=("$WORK/$stem.json")
done
import_and_restore "$WORK/share1" "$(manifest_sha "$FIX/manifest.json" 5e3d24d4-0659-43cf-b107-c4e9be24598c)" "rewritten full+incr1+incr2" "${recs[@]}"
"$CBR" rewrite -q --project-id $P --user-id $U --emit export-json "$FIX/records/seed-kilo-share.export.json" > "$WORK/kilo.json"
import_and_restore "$WORK/share1" "$(manifest_sha "$FIX/manifest.json" 96128a75-e143-4d8a-9b93-e246af8e6a7d)" "rewritten Kilo record" "$WORK/kilo.json"

SEED=${CBR_INTEROP_SEED:-$RANDOM}
echo "== 2. a fresh share from the real NFS driver (seed $SEED)"
GEN=$WORK/gen
if ! "$PY" "$LAB/generate.py" "$GEN" "$SEED" > "$WORK/gen.log" 2>&1; then
  bad "generate.py failed (seed $SEED)"; tail -20 "$WORK/gen.log"
else
  n=0; dfail=0
  for f in "$GEN"/records/*; do
    case $f in *.export.json) continue ;; esac
    stem=$(basename "$f"); stem=${stem%%.*}
    want=$("$CBR" decode --field id "$GEN/records/$stem.export.json" 2>/dev/null)
    got=$("$CBR" decode --field id "$f" 2>&1)
    n=$((n + 1))
    [ "$got" = "$want" ] || { dfail=$((dfail + 1)); echo "  decode $f: $got"; }
  done
  [ $dfail -eq 0 ] && ok "decode of all $n renderings" || bad "decode: $dfail of $n renderings"
  cfail=0
  for f in "$GEN"/records/*.export.json; do
    "$CBR" check -q --share "$GEN/share" "$f" > "$WORK/check.out" 2>&1 || { cfail=$((cfail + 1)); cat "$WORK/check.out"; }
  done
  [ $cfail -eq 0 ] && ok "check of every export" || bad "check: $cfail exports not ready"
  if "$CBR" verify -q --deep --share "$GEN/share" > "$WORK/verify.out" 2>&1; then ok "verify --deep"; else bad "verify --deep"; cat "$WORK/verify.out"; fi
  ids=$(python3 -c 'import json,sys; [print(b["id"]) for b in json.load(open(sys.argv[1]))["backups"]]' "$GEN/manifest.json")
  for id in $ids; do
    want=$(manifest_sha "$GEN/manifest.json" "$id")
    rm -f "$WORK/img"
    if "$CBR" restore -q --share "$GEN/share" "$id" -o "$WORK/img" && [ "$(sha256sum "$WORK/img" | cut -c1-64)" = "$want" ]; then
      ok "restore $id"
    else
      bad "restore $id"
    fi
    rm -f "$WORK/img"
  done
  echo "== 3. recovered records into the real Cinder"
  for id in $ids; do
    want=$(manifest_sha "$GEN/manifest.json" "$id")
    rm -f "$WORK"/rec-*.json
    i=0
    while IFS= read -r url; do
      i=$((i + 1))
      python3 -c 'import json,sys; print(json.dumps({"backup_service": sys.argv[1], "backup_url": sys.argv[2]}))' \
        cinder.backup.drivers.nfs.NFSBackupDriver "$url" > "$WORK/rec-$(printf %02d $i).json"
    done < <("$CBR" recover -q --chain --share "$GEN/share" "$id")
    cp -r "$GEN/share" "$WORK/share3"
    import_and_restore "$WORK/share3" "$want" "recover --chain $id" "$WORK"/rec-*.json
    rm -rf "$WORK/share3"
  done
fi
echo "interop: $pass passed, $fail failed"
[ $fail -eq 0 ]
