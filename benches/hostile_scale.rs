#![allow(clippy::disallowed_methods)] // benchmarks build shares directly
//! Hostile-scale benchmarks (issue 10), each a ratio measured in one run:
//!
//! 1. Per-backup checks are linear in the number of chunks: `verify ID`
//!    (no --deep) and `show --json ID` of one backup of 10,000 and of
//!    40,000 chunks; the time per chunk at 40k over that at 10k is ~1 when
//!    linear (it was ~4 when the checks were quadratic).
//! 2. Memory stays flat whatever the metadata claims: `verify --deep` of a
//!    backup whose one object claims 256 GiB (8.4 million sha256 entries,
//!    a 600 MB sha256file) against the same command on a normal 1 MiB
//!    backup.
//!
//! `cargo bench --bench hostile_scale` (`cargo bench --bench scale` is the
//! share of a million tiny backups, issue 25)

mod common;
use common::*;
use std::io::Write;

fn synth(share: &std::path::Path, id: u64, chunks: u64, block: u64) -> String {
    let b = cbr::synth::SynthBackup {
        id: cbr::synth::uuid_from(id, 9),
        volume_id: cbr::synth::uuid_from(id, 10),
        container: None,
        legacy_prefix: false,
        timestamp: format!("20261125{:06}", id),
        name: Some(format!("scale-{id}")),
        description: None,
        size: chunks * block,
        object_size: block,
        block,
        compression: "none".into(),
        parent: None,
    };
    cbr::synth::write_backup(share, &b, &mut |off, buf| buf.fill((off % 251) as u8 | 1))
        .expect("write");
    b.id
}

/// Seconds and peak RSS (KiB) of a run that may exit 0 or 1.
fn rss(args: &[&str]) -> (f64, u64) {
    let (secs, kib, code) = run_rss_code(args);
    assert!(matches!(code, Some(0 | 1)), "{args:?}: exit {code:?}");
    (secs, kib)
}

fn main() {
    let dir = tempfile::tempdir().expect("tmp");
    // 1. Linear per-backup checks.
    let mut per_chunk = Vec::new();
    for (i, n) in [10_000u64, 40_000].into_iter().enumerate() {
        let share = dir.path().join(format!("lin{n}"));
        let id = synth(&share, i as u64, n, 4096);
        let s = share.to_str().expect("utf8");
        let t_verify = median(3, || {
            let o = cbr()
                .args(["verify", "--share", s, &id])
                .output()
                .expect("run");
            assert!(o.status.success(), "{o:?}");
        });
        let t_show = median(3, || {
            let o = cbr()
                .args(["show", "--json", "--share", s, &id])
                .output()
                .expect("run");
            assert!(o.status.success(), "{o:?}");
        });
        println!(
            "{n:>6} chunks: verify {:.3}s  show {:.3}s",
            t_verify.as_secs_f64(),
            t_show.as_secs_f64()
        );
        per_chunk.push((
            t_verify.as_secs_f64() / n as f64,
            t_show.as_secs_f64() / n as f64,
        ));
    }
    println!(
        "time per chunk, 40k vs 10k chunks: verify {:.2}x, show {:.2}x (1 = linear, 4 = quadratic)",
        per_chunk[1].0 / per_chunk[0].0,
        per_chunk[1].1 / per_chunk[0].1
    );

    // 2. Flat memory whatever the metadata claims.
    let share = dir.path().join("claims");
    let normal = synth(&share, 100, 32, 32768);
    let liar = synth(&share, 101, 32, 32768);
    let s = share.to_str().expect("utf8");
    let container = share.join(cbr::share::default_container(&liar));
    let meta_path = std::fs::read_dir(&container)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .find(|p| p.to_string_lossy().ends_with("_metadata"))
        .expect("metadata");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).expect("read")).expect("json");
    // Keep one object; make it claim the whole 256 GiB volume.
    let claim: u64 = 256 << 30;
    let objs = meta["objects"].as_array_mut().expect("objects");
    objs.truncate(1);
    if let Some(info) = objs[0].as_object_mut().and_then(|o| o.values_mut().next()) {
        info["length"] = serde_json::json!(claim);
    }
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).expect("json")).expect("write");
    let sha_path = meta_path.with_file_name(
        meta_path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .replace("_metadata", "_sha256file"),
    );
    let entries = claim / 32768;
    let mut w = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&sha_path).expect("create"),
    );
    write!(
        w,
        "{{\n  \"backup_id\": \"{liar}\",\n  \"chunk_size\": 32768,\n  \"sha256s\": [\n"
    )
    .expect("w");
    let hex = cbr::share::sha256file::to_hex(&cbr::verify::zero_block_sha(32768));
    for i in 0..entries {
        writeln!(w, "    \"{hex}\"{}", if i + 1 < entries { "," } else { "" }).expect("w");
    }
    write!(w, "  ],\n  \"version\": \"1.0.0\"\n}}").expect("w");
    w.flush().expect("flush");
    drop(w);
    let (t0, base) = rss(&["verify", "--deep", "--jobs", "2", "--share", s, &normal]);
    let (t1, big) = rss(&["verify", "--deep", "--jobs", "2", "--share", s, &liar]);
    println!(
        "verify --deep peak RSS: normal 1 MiB backup {base} KiB ({t0:.2}s); one object claiming 256 GiB over {entries} sha256 entries {big} KiB ({t1:.2}s): {:.2}x (goal: flat, < 2x)",
        big as f64 / base.max(1) as f64
    );
}
