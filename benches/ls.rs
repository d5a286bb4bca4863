#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr ls` on 10,000 backups against a bare walkdir walk of the same tree,
//! and the sha256file reader's memory on 33.5 million entries.
//! Run: cargo bench --bench ls

#[path = "common.rs"]
mod common;
use common::*;
use std::io::Write;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path();
    eprintln!("writing 10,000 backups...");
    for i in 0..10_000u64 {
        let b = cbr::synth::SynthBackup {
            id: cbr::synth::uuid_from(i, 1),
            volume_id: cbr::synth::uuid_from(i / 3, 2),
            container: None,
            legacy_prefix: false,
            timestamp: format!("2026{:010}", i),
            name: Some(format!("b{i}")),
            description: None,
            size: 4 * 32768,
            object_size: 2 * 32768,
            block: 32768,
            compression: "zlib".into(),
            parent: None,
        };
        cbr::synth::write_backup(share, &b, &mut |o, buf| buf.fill((o % 7) as u8)).expect("write");
    }
    let walk = || {
        let mut n = 0u64;
        for e in walkdir::WalkDir::new(share) {
            let e = e.expect("walk");
            if e.file_type().is_file() {
                n += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        std::hint::black_box(n);
    };
    walk();
    let bare = median(5, walk);
    let s = share.to_str().expect("utf8");
    let ls = median(5, || {
        let out = cbr()
            .args(["ls", "--json", "--share", s])
            .output()
            .expect("ls");
        assert!(out.status.success());
    });
    println!(
        "ls 10,000 backups: {:.3}s; bare walkdir walk (with stat): {:.3}s; ratio {:.2}x (goal <= 3x)",
        ls.as_secs_f64(),
        bare.as_secs_f64(),
        ls.as_secs_f64() / bare.as_secs_f64()
    );

    // A 1 TiB volume's sha256file: 33,554,432 entries in the canonical layout.
    let n: u64 = 33_554_432;
    let path = dir.path().join("big_sha256file");
    eprintln!("writing a {n}-entry sha256file...");
    {
        let mut w = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&path).expect("create"),
        );
        write!(w, "{{\n  \"backup_description\": null,\n  \"backup_id\": \"x\",\n  \"backup_name\": null,\n  \"chunk_size\": 32768,\n  \"created_at\": \"2026-11-24 06:10:32.169388+00:00\",\n  \"sha256s\": [").expect("w");
        for i in 0..n {
            let h = cbr::verify::stable_hash(&[&i.to_le_bytes()]);
            write!(
                w,
                "{}\n    \"{:016x}{:016x}{:016x}{:016x}\"",
                if i == 0 { "" } else { "," },
                h,
                h,
                h,
                i
            )
            .expect("w");
        }
        write!(
            w,
            "\n  ],\n  \"version\": \"1.0.0\",\n  \"volume_id\": \"v\"\n}}"
        )
        .expect("w");
    }
    let t = std::time::Instant::now();
    let sh = cbr::share::Share::open(path.parent().expect("dir")).expect("share");
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let f = cbr::share::Sha256File::open(&sh, &name).expect("open");
    assert_eq!(f.len(), n);
    let mut buf = Vec::new();
    let mut start = 0;
    while start < n {
        let c = (n - start).min(65536);
        buf.clear();
        f.read_range(start, c, &mut buf).expect("range");
        start += c;
    }
    let last = f.get(n - 1).expect("last");
    assert_eq!(&last[24..], &(n - 1).to_be_bytes());
    let secs = t.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: ?")
        .to_string();
    println!(
        "sha256file of {n} entries ({:.1} GB): opened and read through in {secs:.1}s; process peak RSS {} (goal < 64 MiB)",
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e9,
        hwm.trim_start_matches("VmHWM:").trim()
    );
}
