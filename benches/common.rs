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

/// Run cbr with CBR_REPORT_RSS and return (seconds, peak RSS in KiB),
/// asserting success.
pub fn run_rss(args: &[&str]) -> (f64, u64) {
    let (secs, kib, code) = run_rss_code(args);
    assert_eq!(code, Some(0), "cbr {args:?} failed");
    (secs, kib)
}

/// Run cbr with CBR_REPORT_RSS: (seconds, peak RSS in KiB, exit status).
pub fn run_rss_code(args: &[&str]) -> (f64, u64, Option<i32>) {
    let t = Instant::now();
    let out = cbr()
        .args(args)
        .env("CBR_REPORT_RSS", "1")
        .output()
        .expect("run cbr");
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    let kib = err
        .lines()
        .find_map(|l| l.strip_prefix("cbr: peak RSS "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (secs, kib, out.status.code())
}

/// Deterministic volume content (see [`cbr::synth::thin_volume`]).
pub fn thin_volume(seed: u64) -> impl FnMut(u64, &mut [u8]) {
    cbr::synth::thin_volume(seed)
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
