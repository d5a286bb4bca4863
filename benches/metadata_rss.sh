#!/usr/bin/env bash
# Peak memory of cbr on a hostile `_metadata`: a list of the smallest object
# entries `{"a":{"offset":0,"length":1,"md5":""}}` (40 bytes each, the most
# objects a file of that size can hold), the file exactly as large as cbr
# accepts (METADATA_LIMIT, 64 MiB). Goal: peak RSS at most 256 MiB for
# `ls`, `verify` (the metadata checks), `verify --deep`, `show` and `restore`
# (every chunk is missing: each command says so and exits 1). Then the same
# shape at 133 MB (over the limit: refused, with the RSS of refusing it).
#
# Usage: benches/metadata_rss.sh [SIZE_BYTES...]   (default: 67108864 133000000)
# Builds with `cargo build --release` (honours CARGO_TARGET_DIR).
set -euo pipefail

cd "$(dirname "$0")/.."
cargo build --release --quiet
target=${CARGO_TARGET_DIR:-target}
cbr="$target/release/cbr"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || set -- $((64 << 20)) 133000000
id=0bad0bad-0000-4000-8000-000000000001
goal=$((256 * 1024))

head="{\"backup_id\": \"$id\", \"objects\": ["
entry='{"a":{"offset":0,"length":1,"md5":""}}'
# How many entries fit in $1 bytes with the head and "]}".
count() { echo $((($1 - ${#head} - 2 + 1) / (${#entry} + 1))); }

# A _metadata of exactly $1 bytes: the head, N entries, padding spaces, "]}".
metadata() {
    local size=$1
    local n
    n=$(count "$size")
    local pad=$((size - ${#head} - 2 - n * (${#entry} + 1) + 1))
    printf '%s' "$head"
    printf '%s' "$entry"
    { yes ",$entry" || true; } | head -n $((n - 1)) | tr -d '\n'
    head -c "$pad" /dev/zero | tr '\0' ' '
    printf ']}'
}

printf '%-11s %12s %10s %12s %12s %7s %s\n' command input_bytes objects peak_kib goal_kib ratio exit
for size in "$@"; do
    share="$tmp/share-$size"
    dir="$share/0b/ad/$id"
    mkdir -p "$dir"
    metadata "$size" >"$dir/backup_metadata"
    got=$(stat -c %s "$dir/backup_metadata")
    [ "$got" -eq "$size" ] || { echo "generated $got bytes, not $size" >&2; exit 1; }
    objects=$(count "$size")
    for cmd in ls verify verify-deep show restore; do
        case $cmd in
            ls | verify) args=("$cmd" --share "$share") ;;
            verify-deep) args=(verify --deep --share "$share" "$id") ;;
            show) args=(show --share "$share" "$id") ;;
            restore) args=(restore --share "$share" "$id" --output "$tmp/img") ;;
        esac
        code=0
        CBR_REPORT_RSS=1 "$cbr" "${args[@]}" >/dev/null 2>"$tmp/err" || code=$?
        peak=$(sed -n 's/^cbr: peak RSS \([0-9]*\) kB$/\1/p' "$tmp/err")
        ratio=$(awk -v p="$peak" -v g="$goal" 'BEGIN { printf "%.2f", p / g }')
        printf '%-11s %12d %10d %12d %12d %7s %s\n' "$cmd" "$size" "$objects" "$peak" "$goal" "$ratio" "$code"
    done
    rm -rf "$share"
done
