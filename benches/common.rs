#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! Shared by the benchmarks: timing, the binary, generated shares.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn cbr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cbr"))
}

/// Median of `n` timed runs of `f`.
pub fn median(n: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[n / 2]
}

/// Run cbr with CBR_REPORT_RSS and return (seconds, peak RSS in KiB).
pub fn run_rss(args: &[&str]) -> (f64, u64) {
    let t = Instant::now();
    let out = cbr()
        .args(args)
        .env("CBR_REPORT_RSS", "1")
        .output()
        .expect("run cbr");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "cbr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let kib = err
        .lines()
        .find_map(|l| l.strip_prefix("cbr: peak RSS "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (secs, kib)
}

/// Deterministic volume content: ~70% zero blocks, ~20% text-like
/// (compressible), ~10% random, decided per 32 KiB block.
pub fn thin_volume(seed: u64) -> impl FnMut(u64, &mut [u8]) {
    move |offset: u64, buf: &mut [u8]| {
        const B: usize = 32768;
        for (k, block) in buf.chunks_mut(B).enumerate() {
            let idx = offset / B as u64 + k as u64;
            let r = cbr::verify::stable_hash(&[&seed.to_le_bytes(), &idx.to_le_bytes()]);
            match r % 10 {
                0..=6 => block.fill(0),
                7 | 8 => {
                    let words: [&[u8]; 8] = [
                        b"backup ",
                        b"volume ",
                        b"cinder ",
                        b"chunk ",
                        b"nfs ",
                        b"2026-11-24 ",
                        b"ERROR ",
                        b"INFO ",
                    ];
                    let mut x = r;
                    let mut i = 0;
                    while i < block.len() {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let w = words[(x % 8) as usize];
                        let n = w.len().min(block.len() - i);
                        block[i..i + n].copy_from_slice(&w[..n]);
                        i += n;
                    }
                }
                _ => {
                    let mut x = r | 1;
                    for c in block.chunks_mut(8) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let b = x.to_le_bytes();
                        c.copy_from_slice(&b[..c.len()]);
                    }
                }
            }
        }
    }
}

pub fn gib(n: u64) -> u64 {
    n << 30
}

pub fn write_full(
    share: &Path,
    id: u64,
    size: u64,
    object: u64,
    comp: &str,
    seed: u64,
) -> cbr::synth::Written {
    let b = cbr::synth::SynthBackup {
        id: cbr::synth::uuid_from(id, seed),
        volume_id: cbr::synth::uuid_from(id, seed + 1),
        container: None,
        legacy_prefix: false,
        timestamp: format!("20261124{:06}", id),
        name: Some(format!("bench-{id}")),
        description: None,
        size,
        object_size: object,
        block: 32768,
        compression: comp.into(),
        parent: None,
    };
    cbr::synth::write_backup(share, &b, &mut thin_volume(seed)).expect("write backup")
}
