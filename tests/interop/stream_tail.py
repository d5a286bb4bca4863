"""Append to a chunk file what a damaged or hand-made chunk may carry after
its compressed stream, built with the very modules Cinder 29 decompresses
with (zlib, bz2, zstd: chunkeddriver's `decompressor.decompress(body)`).

usage: python stream_tail.py CHUNK_FILE CASE
       python stream_tail.py --cases      (one "CASE COMPRESSION" a line)
"""
import bz2
import sys
import zlib

import zstd

TAIL = b"X" * 4096  # not zeros: Cinder's restore skips writing zero runs


def damaged_bz2():
    s = bytearray(bz2.compress(TAIL))
    s[len(s) // 2] ^= 0x55
    return bytes(s)


CASES = {
    # case: (compression of the chunk, bytes appended)
    "bz2-whole-second-stream": ("bz2", lambda: bz2.compress(TAIL)),
    "bz2-cut-second-stream": ("bz2", lambda: bz2.compress(TAIL)[:30]),
    "bz2-damaged-second-stream": ("bz2", damaged_bz2),
    "bz2-trailing-garbage": ("bz2", lambda: b"garbage\n"),
    "zlib-second-stream": ("zlib", lambda: zlib.compress(TAIL)),
    "zlib-trailing-garbage": ("zlib", lambda: b"garbage\n"),
    "zstd-second-frame": ("zstd", lambda: zstd.compress(TAIL)),
    "zstd-cut-second-frame": ("zstd", lambda: zstd.compress(TAIL)[:10]),
    "zstd-trailing-garbage": ("zstd", lambda: b"garbage\n"),
}


def main():
    if sys.argv[1:] == ["--cases"]:
        for name, (comp, _) in CASES.items():
            print(name, comp)
        return
    path, case = sys.argv[1], sys.argv[2]
    with open(path, "ab") as f:
        f.write(CASES[case][1]())


if __name__ == "__main__":
    main()
