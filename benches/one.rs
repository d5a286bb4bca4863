#![allow(clippy::disallowed_methods)] // benchmarks build shares directly
//! `show ID` and `check RECORD` on a large share against the same command
//! on a share holding only that backup's chain (issue 25): both read one
//! backup and its parents, so the ratios are ~1 whatever the share's size.
//!
//! The large share: `CBR_ONE_SHARE=DIR` (used read-only, e.g.
//! /work/scale-cache/1000000/share), else `CBR_ONE_BACKUPS` (default 20000)
//! tiny backups generated once under target/one-bench/N, plus a chain of
//! three. Goals at 1,000,000 backups: each under 1 s and 64 MiB.
//!
//! `cargo bench --bench one`

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn tiny(n: u64, parent: Option<(String, Vec<[u8; 32]>)>) -> cbr::synth::SynthBackup {
    cbr::synth::SynthBackup {
        id: cbr::synth::uuid_from(n, 25),
        volume_id: cbr::synth::uuid_from(n, 26),
        container: None,
        legacy_prefix: false,
        timestamp: format!("20261201{:06}", n % 1_000_000),
        name: None,
        description: None,
        size: 65536,
        object_size: 65536,
        block: 32768,
        compression: "none".into(),
        parent,
    }
}

/// The large share, generated once (a stamp written last).
fn generated(n: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/one-bench")
        .join(n.to_string());
    let share = dir.join("share");
    if dir.join("stamp").exists() {
        return share;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let t = std::time::Instant::now();
    let mut fill = |o: u64, b: &mut [u8]| b.fill((o % 251) as u8 | 1);
    for i in 0..n {
        cbr::synth::write_backup(&share, &tiny(i, None), &mut fill).expect("write");
    }
    std::fs::write(dir.join("stamp"), "1").expect("stamp");
    eprintln!("generated {n} backups in {:.1}s", t.elapsed().as_secs_f64());
    share
}

/// A chain of three under `share` (once): its top id.
fn chain(share: &Path) -> String {
    let ids: Vec<String> = (0..3)
        .map(|i| cbr::synth::uuid_from(9_000_000 + i, 25))
        .collect();
    if share.join(cbr::share::default_container(&ids[2])).exists() {
        return ids[2].clone();
    }
    let mut parent = None;
    for (i, _) in ids.iter().enumerate() {
        let mut fill = |o: u64, b: &mut [u8]| b.fill((o % 13) as u8 + i as u8);
        let b = tiny(9_000_000 + i as u64, parent.take());
        let w = cbr::synth::write_backup(share, &b, &mut fill).expect("write");
        parent = Some((b.id, w.sha256s));
    }
    ids[2].clone()
}

/// A backup in Cinder's layout in the middle of a share: `ab/cd/<id>`.
fn middle_id(share: &Path) -> String {
    let pick = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v[v.len() / 2].clone()
    };
    let id = pick(&pick(&pick(share)));
    id.file_name().expect("name").to_string_lossy().into_owned()
}

/// Copy the default containers of `id` and its parents from `from` to `to`.
fn copy_chain(from: &Path, to: &Path, id: &str) {
    let mut cur = Some(id.to_string());
    while let Some(id) = cur {
        let rel = cbr::share::default_container(&id);
        let (src, dst) = (from.join(&rel), to.join(&rel));
        std::fs::create_dir_all(&dst).expect("mkdir");
        cur = None;
        for e in std::fs::read_dir(&src).expect("dir") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_owned();
            std::fs::copy(&p, dst.join(&name)).expect("copy");
            if name.to_string_lossy().ends_with("_metadata") {
                let m: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
                cur = m["parent_id"].as_str().map(str::to_owned);
            }
        }
    }
}

fn main() {
    let big = match std::env::var_os("CBR_ONE_SHARE") {
        Some(s) => PathBuf::from(s),
        None => {
            let n = std::env::var("CBR_ONE_BACKUPS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20_000);
            let share = generated(n);
            chain(&share);
            share
        }
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let mut ids = vec![("middle", middle_id(&big))];
    let top = cbr::synth::uuid_from(9_000_002, 25);
    if big.join(cbr::share::default_container(&top)).exists() {
        ids.push(("chain of 3", top));
    }
    let b: &'static str = big.to_str().expect("utf8").to_owned().leak();
    println!("share {b}");
    println!(
        "{:<12} {:<6} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7}  goal (<1 s, <=64 MiB)",
        "backup", "cmd", "small s", "large s", "ratio", "small MiB", "large MiB", "ratio"
    );
    for (what, id) in ids {
        let small = tmp.path().join(&id);
        copy_chain(&big, &small, &id);
        let s: &'static str = small.to_str().expect("utf8").to_owned().leak();
        let rec = tmp.path().join(format!("{id}.json"));
        let out = cbr()
            .args(["recover", "-q", "--share", s, &id, "--emit", "export-json"])
            .output()
            .expect("recover");
        assert!(out.status.success(), "{out:?}");
        std::fs::write(&rec, &out.stdout).expect("record");
        let r = rec.to_str().expect("utf8");
        for name in ["show", "check"] {
            let args = |sh: &'static str| -> Vec<String> {
                let v: Vec<&str> = if name == "show" {
                    vec!["show", "--json", "-q", "--share", sh, &id]
                } else {
                    vec!["check", "--json", "-q", "--share", sh, r]
                };
                v.into_iter().map(str::to_owned).collect()
            };
            // Warm the cache, then the best of three.
            let best = |sh: &'static str| {
                let a = args(sh);
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                run_rss_code(&a);
                (0..3)
                    .map(|_| run_rss_code(&a))
                    .inspect(|r| assert!(matches!(r.2, Some(0 | 1)), "{a:?}: exit {:?}", r.2))
                    .fold((f64::MAX, 0u64), |(t, m), r| (t.min(r.0), m.max(r.1)))
            };
            let (ts, ms) = best(s);
            let (tl, ml) = best(b);
            let pass = tl < 1.0 && ml <= 64 * 1024;
            println!(
                "{what:<12} {name:<6} {ts:>9.3} {tl:>9.3} {:>6.2}x {:>9.1} {:>9.1} {:>6.2}x  {}",
                tl / ts,
                ms as f64 / 1024.0,
                ml as f64 / 1024.0,
                ml as f64 / ms.max(1) as f64,
                if pass { "PASS" } else { "MISS" }
            );
        }
    }
}
