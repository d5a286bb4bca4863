#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr verify --deep` throughput, as ratios measured in the same run:
//! - against cores x the single-core md5 + per-block sha256 rate on the
//!   same data (goal >= 2.0: each byte is proven once, by sha256);
//! - against a decompress-only pass over the same chunks with the same
//!   libraries on all cores (the ceiling of this design; goal >= 0.8);
//! - a few-chunk backup (Cinder's default 1,999,994,880-byte object: one
//!   1.86 GiB zlib chunk and a small one) against the two-core md5+sha256
//!   rate (goal >= 0.8);
//! - `--md5` (every chunk's md5 too) for reference;
//! - peak RSS at 1 GiB and 16 GiB volume sizes.
//!
//! Run: cargo bench --bench verify
//! (CBR_BENCH_GIB sets the size of each of the two main volumes; default 2.)

#[path = "common.rs"]
mod common;
use common::*;
use md5::Digest;
use std::io::Read;

/// Seconds to decompress every chunk of the share (output discarded), on
/// all cores, with the libraries cbr uses; with `prove`, also the least
/// proof there is: each non-zero 32 KiB block hashed (four at a time, as
/// cbr does), each zero block found zero. No sha256file is read, nothing
/// compared, nothing reported: the floor of any verify that proves bytes.
fn decompress_only(share: &std::path::Path, prove: bool) -> f64 {
    use rayon::prelude::*;
    let mut chunks: Vec<(std::path::PathBuf, String)> = Vec::new();
    for e in walkdir::WalkDir::new(share) {
        let e = e.expect("walk");
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with("_metadata") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path()).expect("read")).expect("json");
        for o in v["objects"].as_array().expect("objects") {
            let (n, info) = o.as_object().expect("o").iter().next().expect("one");
            let comp = info["compression"].as_str().unwrap_or("none").to_string();
            chunks.push((e.path().with_file_name(n), comp));
        }
    }
    let t = std::time::Instant::now();
    chunks.par_iter().with_max_len(1).for_each(|(p, comp)| {
        let f = std::io::BufReader::with_capacity(1 << 18, std::fs::File::open(p).expect("open"));
        let mut r: Box<dyn Read> = match comp.as_str() {
            "zlib" => Box::new(flate2::bufread::ZlibDecoder::new(f)),
            "zstd" => Box::new(zstd::stream::read::Decoder::new(f).expect("zstd")),
            "bz2" => Box::new(bzip2::read::BzDecoder::new(f)),
            _ => Box::new(f),
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut sums = vec![[0u8; 32]; 32];
        loop {
            // Whole 1 MiB pieces, as cbr hands them to its hashing.
            let mut n = 0;
            while n < buf.len() {
                match r.read(&mut buf[n..]).expect("read") {
                    0 => break,
                    k => n += k,
                }
            }
            if n == 0 {
                break;
            }
            if prove {
                let todo: Vec<&[u8]> = buf[..n]
                    .chunks(32768)
                    .filter(|b| !cbr::verify::is_zero(b))
                    .collect();
                cbr::sha256_lanes::digest_many(&todo, &mut sums[..todo.len()]);
                std::hint::black_box(&sums);
            }
        }
    });
    t.elapsed().as_secs_f64()
}

fn main() {
    let per: u64 = std::env::var("CBR_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    eprintln!(
        "writing 2 x {per} GiB thin volumes (70% zero, 20% text, 10% random), zlib and zstd..."
    );
    write_full(&share, 1, gib(per), 64 << 20, "zlib", 11);
    write_full(&share, 2, gib(per), 64 << 20, "zstd", 12);
    let s = share.to_str().expect("utf8");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Warm the page cache, then measure.
    let _ = run_rss(&["verify", "--deep", "-q", "--share", s]);
    let (secs, _) = run_rss(&["verify", "--deep", "-q", "--share", s]);
    let data = gib(2 * per) as f64;
    let tput = data / secs;
    // Baseline: one core, one pass of md5 and sha256 over the same kind of data.
    let mut buf = vec![0u8; 64 << 20];
    let mut fill = thin_volume(11);
    fill(0, &mut buf);
    let t = std::time::Instant::now();
    let mut done = 0u64;
    while (done as f64) < data.min(4.0 * (1u64 << 30) as f64) {
        for piece in buf.chunks(32768) {
            std::hint::black_box(sha2::Sha256::digest(piece));
        }
        std::hint::black_box(md5::Md5::digest(&buf));
        done += buf.len() as u64;
    }
    let rate = done as f64 / t.elapsed().as_secs_f64();
    let mib = |x: f64| x / (1u64 << 20) as f64;
    println!(
        "verify --deep: {:.0} MiB/s over {} GiB; single-pass md5+sha256: {:.0} MiB/s per core x {cores} cores = {:.0} MiB/s; ratio {:.2} (goal >= 2.0)",
        mib(tput),
        2 * per,
        mib(rate),
        mib(rate * cores as f64),
        tput / (rate * cores as f64)
    );
    // The journal's cost: the same run recording every chunk (best of 2 each).
    let best = |args: &[&str]| (0..2).map(|_| run_rss(args).0).fold(f64::MAX, f64::min);
    let plain = best(&["verify", "--deep", "-q", "--share", s]);
    let jdir = dir.path().join("journals");
    let mut k = 0;
    let journaled = (0..2)
        .map(|_| {
            k += 1;
            let j = jdir.join(format!("j{k}.sqlite"));
            run_rss(&[
                "verify",
                "--deep",
                "-q",
                "--share",
                s,
                "--journal",
                j.to_str().expect("utf8"),
            ])
            .0
        })
        .fold(f64::MAX, f64::min);
    println!(
        "verify --deep --journal: {:.0} MiB/s against {:.0} MiB/s without: the journal costs {:.1}% (goal < 5%)",
        mib(data / journaled),
        mib(data / plain),
        (journaled / plain - 1.0) * 100.0
    );
    let vsecs = secs.min(plain); // best of three runs
    let dsecs = (0..2)
        .map(|_| decompress_only(&share, false))
        .fold(f64::MAX, f64::min);
    println!(
        "verify --deep vs a decompress-only pass on {cores} cores ({:.0} MiB/s): ratio {:.2} (goal >= 0.8)",
        mib(data / dsecs),
        dsecs / vsecs
    );
    let psecs = (0..2)
        .map(|_| decompress_only(&share, true))
        .fold(f64::MAX, f64::min);
    println!(
        "  the floor of proving: decompress + sha256 of the non-zero blocks + zero test, in-process on {cores} cores ({:.0} MiB/s), is itself {:.2} of decompress-only; verify --deep is {:.2} of it",
        mib(data / psecs),
        dsecs / psecs,
        psecs / vsecs
    );
    let (msecs, _) = run_rss(&["verify", "--deep", "--md5", "-q", "--share", s]);
    println!(
        "verify --deep --md5 (every chunk's md5 too): {:.0} MiB/s, ratio {:.2} of the md5+sha256 rate on {cores} cores",
        mib(data / msecs),
        (data / msecs) / (rate * cores as f64)
    );
    // Few large chunks: Cinder's default object size.
    let few = dir.path().join("few");
    write_full(&few, 3, gib(2), 1_999_994_880, "zlib", 13);
    let f = few.to_str().expect("utf8");
    let _ = run_rss(&["verify", "--deep", "-q", "--share", f]);
    let (fsecs, _) = run_rss(&["verify", "--deep", "-q", "--share", f]);
    let two = rate * 2.0;
    println!(
        "verify --deep of one 2 GiB volume in Cinder's default objects (a 1.86 GiB zlib chunk + a small one): {:.0} MiB/s, ratio {:.2} of the two-core md5+sha256 rate {:.0} MiB/s (goal >= 0.8)",
        mib(gib(2) as f64 / fsecs),
        (gib(2) as f64 / fsecs) / two,
        mib(two)
    );
    // Peak RSS against volume size.
    for size in [1u64, 16] {
        let d = tempfile::tempdir().expect("tempdir");
        let sh = d.path().join("share");
        // Mostly zeros so 16 GiB is quick to write; default object size.
        let b = cbr::synth::SynthBackup {
            id: cbr::synth::uuid_from(size, 5),
            volume_id: cbr::synth::uuid_from(size, 6),
            container: None,
            legacy_prefix: false,
            timestamp: "20261124000000".into(),
            name: None,
            description: None,
            size: gib(size),
            object_size: 1_999_994_880,
            block: 32768,
            compression: "zstd".into(),
            parent: None,
        };
        cbr::synth::write_backup(&sh, &b, &mut |o, buf| {
            buf.fill(0);
            if let Some(x) = buf.first_mut() {
                *x = (o % 251) as u8;
            }
        })
        .expect("write");
        let (secs, kib) = run_rss(&[
            "verify",
            "--deep",
            "-q",
            "--share",
            sh.to_str().expect("utf8"),
        ]);
        println!(
            "verify --deep of a {size} GiB volume: {secs:.1}s, peak RSS {:.1} MiB (goal <= 64 MiB + 8 MiB per job, flat)",
            kib as f64 / 1024.0
        );
    }
}
