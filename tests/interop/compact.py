"""Re-encode an export record the way other tools (a Go SDK) write it.

usage: python compact.py IN_EXPORT_JSON OUT_EXPORT_JSON [KEEP_NULL_FIELD...]

Decodes IN's backup_url (base64 of JSON), replaces every null id-like field
(ID_FIELDS) by "" except the KEEP_NULL_FIELDs, and re-encodes it with
compact separators, json.dumps(rec, separators=(",", ":")), as one line of
base64. Writes {"backup_service": ..., "backup_url": ...} to OUT and prints
the names of the fields it emptied, space separated, on stdout.
Plain python3, no Cinder needed.
"""
import base64
import json
import sys

ID_FIELDS = ("parent_id", "snapshot_id", "restore_volume_id",
             "encryption_key_id", "temp_volume_id", "temp_snapshot_id")


def compact(export, keep_null=()):
    rec = json.loads(base64.b64decode(export["backup_url"]))
    emptied = []
    for k in ID_FIELDS:
        if k in rec and rec[k] is None and k not in keep_null:
            rec[k] = ""
            emptied.append(k)
    raw = json.dumps(rec, separators=(",", ":")).encode()
    return ({"backup_service": export["backup_service"],
             "backup_url": base64.b64encode(raw).decode()}, emptied)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    keep = set(sys.argv[3:])
    bad = keep - set(ID_FIELDS)
    if bad:
        sys.exit("compact.py: not an id field: %s" % " ".join(sorted(bad)))
    with open(src) as f:
        export = json.load(f)
    out, emptied = compact(export, keep)
    with open(dst, "w") as f:
        json.dump(out, f)
    print(" ".join(emptied))


if __name__ == "__main__":
    main()
