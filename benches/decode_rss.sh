#!/usr/bin/env bash
# Peak memory of the commands that read records (decode, encode, rewrite,
# check, plan) on big pastes. Goal: peak RSS under 3 x input size + 64 MiB.
#
# Generates (in a temp dir, coreutils only):
#   wrap76   a valid `-f value` export paste (service line + base64 wrapped at
#            76 columns) of a record with a huge display_description, ~83 MB
#   lines4   the same record shape, base64 as 4-character lines, ~30 MB
#   garbage  4-character lines of random base64 (no record in it), ~30 MB
#
# Usage: benches/decode_rss.sh [SIZE_MB_WRAP76 [SIZE_MB_LINES4]]
# Builds with `cargo build --release` (honours CARGO_TARGET_DIR).
set -euo pipefail

cd "$(dirname "$0")/.."
big=${1:-83}
small=${2:-30}
cargo build --release --quiet
target=${CARGO_TARGET_DIR:-target}
cbr="$target/release/cbr"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A current-era record whose description makes the base64 `b64len` bytes long.
record() {
    local b64len=$1
    local head='{"driver_info": {}, "id": "a0f6583f-d913-426d-a8e2-d262262a433b", "user_id": "a65349759b6f4ec5a0bb0cc3feb1e9fa", "project_id": "bcae33bdf5b84dc9ab9ca6518a438561", "volume_id": "cd613e30-d8f1-4adf-91b7-584a2265b1f5", "container": "a0/f6/a0f6583f-d913-426d-a8e2-d262262a433b", "parent_id": null, "status": "available", "size": 1, "display_name": "big", "display_description": "'
    local tail='", "service_metadata": "volume_cd613e30-d8f1-4adf-91b7-584a2265b1f5_20261124060919_backup_a0f6583f-d913-426d-a8e2-d262262a433b", "service": "cinder.backup.drivers.nfs.NFSBackupDriver", "object_count": 16, "snapshot_id": null, "data_timestamp": "2026-11-24T06:09:19Z", "metadata": {}, "encryption_key_id": null}'
    local json_len=$((b64len * 3 / 4))
    local fill=$((json_len - ${#head} - ${#tail}))
    printf '%s' "$head"
    head -c "$fill" /dev/zero | tr '\0' 'x'
    printf '%s' "$tail"
}

# Valid pastes: service line, then the base64 wrapped at $2 columns.
paste() {
    local total=$1 width=$2
    local b64len=$((total * width / (width + 1)))
    echo "cinder.backup.drivers.nfs.NFSBackupDriver"
    record "$b64len" | base64 -w "$width"
}

paste $((big * 1000000)) 76 >"$tmp/wrap76"
paste $((small * 1000000)) 4 >"$tmp/lines4"
head -c $((small * 1000000 * 3 / 5)) /dev/urandom | base64 -w 4 >"$tmp/garbage"

# Every command that reads records, on each shape.
dst=0123456789abcdef0123456789abcdef
commands=(
    "decode"
    "encode"
    "rewrite --project-id $dst"
    "check --share fixtures/cinder-29/share"
    "plan --format json --default-project $dst"
)
printf '%-8s %-9s %12s %12s %12s %7s %s\n' shape command input_bytes peak_kib goal_kib ratio exit
for shape in wrap76 lines4 garbage; do
    f="$tmp/$shape"
    size=$(stat -c %s "$f")
    goal=$((size * 3 / 1024 + 64 * 1024))
    for c in "${commands[@]}"; do
        read -r -a args <<<"$c"
        code=0
        CBR_REPORT_RSS=1 "$cbr" "${args[@]}" "$f" >/dev/null 2>"$tmp/err" || code=$?
        peak=$(sed -n 's/^cbr: peak RSS \([0-9]*\) kB$/\1/p' "$tmp/err")
        ratio=$(awk -v p="$peak" -v g="$goal" 'BEGIN { printf "%.2f", p / g }')
        printf '%-8s %-9s %12d %12d %12d %7s %s\n' "$shape" "${args[0]}" "$size" "$peak" "$goal" "$ratio" "$code"
    done
done
