#![allow(clippy::disallowed_methods)] // the test reads the local copy of the export directly
//! The NFSv3 client against a real server (issue 24). Run by
//! `tests/interop/nfs.sh`, which serves a copy of the fixture share with
//! NFS-Ganesha in a network namespace and sets:
//! - `CBR_NFS_URL`: the share over `nfs://`;
//! - `CBR_NFS_LOCAL`: the same directory, local;
//! - `CBR_NFS_TRAPS`: an export directory with links, a FIFO and a file.
//!
//! Without them (a plain `cargo test`) each test says so and passes.

use cbr::share::nfs::proto::Ftype;
use cbr::share::nfs::{NfsError, NfsShare};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

fn env(name: &str) -> Option<String> {
    let v = std::env::var(name).ok();
    if v.is_none() {
        eprintln!("{name} unset: run by tests/interop/nfs.sh against NFS-Ganesha");
    }
    v
}

fn walk(nfs: &NfsShare, local: &Path, rel: &str, files: &mut usize, bytes: &mut u64) {
    let dir = nfs.open_dir(rel).unwrap();
    let got = nfs.entries(&dir, rel).unwrap();
    let mut want: Vec<_> = std::fs::read_dir(local.join(rel))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    want.sort_by_key(|e| e.file_name());
    let names: Vec<_> = got.iter().map(|e| e.name.clone()).collect();
    let want_names: Vec<_> = want
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, want_names, "{rel}");
    for e in &got {
        let r = if rel.is_empty() {
            e.name.clone()
        } else {
            format!("{rel}/{}", e.name)
        };
        let m = std::fs::symlink_metadata(local.join(&r)).unwrap();
        if m.is_dir() {
            assert_eq!(e.ftype, Ftype::Dir, "{r}");
            walk(nfs, local, &r, files, bytes);
        } else if m.is_file() {
            assert_eq!(e.ftype, Ftype::Reg, "{r}");
            assert_eq!(e.size, m.len(), "{r}");
            let f = nfs.open_file(&r).unwrap();
            assert_eq!(f.size, m.len());
            let mut h = Sha256::new();
            let mut rd = nfs.reader(&f, 0);
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0u64;
            loop {
                let k = rd.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                n += k as u64;
            }
            assert_eq!(n, m.len(), "{r}");
            let want = Sha256::digest(std::fs::read(local.join(&r)).unwrap());
            assert_eq!(h.finalize(), want, "{r}");
            *files += 1;
            *bytes += n;
        }
    }
}

#[test]
fn the_export_reads_as_the_local_directory() {
    let (Some(url), Some(local)) = (env("CBR_NFS_URL"), env("CBR_NFS_LOCAL")) else {
        return;
    };
    let nfs = NfsShare::open(&url).unwrap();
    assert!(nfs.rsize() >= 4096);
    let (mut files, mut bytes) = (0, 0);
    let t = std::time::Instant::now();
    walk(&nfs, Path::new(&local), "", &mut files, &mut bytes);
    eprintln!(
        "nfs: walked and read {files} files, {bytes} bytes in {:?} (rsize {})",
        t.elapsed(),
        nfs.rsize()
    );
    assert!(files > 10);
}

#[test]
fn ranges_read_as_the_local_file() {
    let (Some(url), Some(local)) = (env("CBR_NFS_URL"), env("CBR_NFS_LOCAL")) else {
        return;
    };
    let nfs = NfsShare::open(&url).unwrap();
    // The largest file of the share.
    let big = largest_file(&nfs);
    let whole = std::fs::read(Path::new(&local).join(&big.1)).unwrap();
    let f = nfs.open_file(&big.1).unwrap();
    let size = whole.len() as u64;
    for (off, len) in [
        (0, 1),
        (1, 100_000),
        (size / 3, 1 << 20),
        (size - 1, 10),
        (size, 5),
    ] {
        let got = nfs.read_at(&f, off, len).unwrap();
        let end = (off as usize + len).min(whole.len());
        assert_eq!(got, &whole[off as usize..end], "{off}+{len}");
    }
}

/// Through the share-source seam, a small file (read whole by its first
/// read, then served from that copy) and a large one (a reader streaming
/// or asked for a range) give the local bytes at any offset, in any order.
#[test]
fn files_read_through_the_source_as_the_local_file() {
    use cbr::share::source::Source;
    let (Some(url), Some(local)) = (env("CBR_NFS_URL"), env("CBR_NFS_LOCAL")) else {
        return;
    };
    let src = cbr::share::nfs::NfsSource::open(&url).unwrap();
    let mut small = 0;
    let mut large = 0;
    for e in walkdir::WalkDir::new(&local) {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e.path().strip_prefix(&local).unwrap().to_str().unwrap();
        let whole = std::fs::read(e.path()).unwrap();
        let size = whole.len();
        if size as u64 <= cbr::share::nfs::source::SMALL_FILE {
            small += 1;
        } else {
            large += 1;
        }
        let f = src.open_file(rel).unwrap();
        // Backwards, sideways, past the end, then the whole file in order.
        let mut reads = vec![
            (size.saturating_sub(71), 71),
            (0, 4096),
            (size / 2, 100),
            (size, 10),
            (size + 5, 1),
        ];
        reads.extend((0..size.div_ceil(1 << 20)).map(|i| (i << 20, 1 << 20)));
        for (off, len) in reads {
            let mut buf = vec![0u8; len];
            let mut got = 0;
            while got < len {
                match f.read_at(&mut buf[got..], (off + got) as u64).unwrap() {
                    0 => break,
                    k => got += k,
                }
            }
            let end = (off + len).min(size);
            let want = whole.get(off.min(size)..end).unwrap_or(&[]);
            assert_eq!(&buf[..got], want, "{rel} at {off}+{len}");
        }
    }
    assert!(
        small > 10 && large > 0,
        "{small} small files, {large} large"
    );
}

#[test]
fn links_and_special_files_are_refused_without_being_followed() {
    let Some(traps) = env("CBR_NFS_TRAPS") else {
        return;
    };
    let nfs = NfsShare::open(&traps).unwrap();
    let root = nfs.open_dir("").unwrap();
    let kinds: Vec<_> = nfs
        .entries(&root, "")
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.ftype))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("etc".to_string(), Ftype::Lnk),
            ("fifo".to_string(), Ftype::Fifo),
            ("plain".to_string(), Ftype::Reg),
            ("share-link".to_string(), Ftype::Lnk),
        ]
    );
    for (path, symlink) in [
        ("etc", true),
        ("etc/passwd", true),
        ("share-link", true),
        ("share-link/x", true),
        ("fifo", false),
    ] {
        match nfs.open_file(path) {
            Err(NfsError::Symlink { .. }) if symlink => {}
            Err(NfsError::NotRegular { .. }) if !symlink => {}
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(matches!(nfs.open_dir("etc"), Err(NfsError::Symlink { .. })));
    assert!(matches!(
        nfs.open_file("missing"),
        Err(NfsError::NotFound { .. })
    ));
    assert!(matches!(
        nfs.open_file("../x"),
        Err(NfsError::BadName { .. })
    ));
    let f = nfs.open_file("plain").unwrap();
    assert_eq!(nfs.read_at(&f, 0, 100).unwrap(), b"hi\n");
}

/// The largest regular file of the export: (size, share-relative path).
fn largest_file(nfs: &NfsShare) -> (u64, String) {
    let mut big = (0u64, String::new());
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = nfs.open_dir(&rel).unwrap();
        for e in nfs.entries(&dir, &rel).unwrap() {
            let r = if rel.is_empty() {
                e.name.clone()
            } else {
                format!("{rel}/{}", e.name)
            };
            match e.ftype {
                Ftype::Dir => stack.push(r),
                Ftype::Reg if e.size > big.0 => big = (e.size, r),
                _ => {}
            }
        }
    }
    big
}

/// A reader dropped before the end of its file gives its connection back
/// to the pool when every READ it sent was answered, and closes it when
/// replies are still outstanding (they would land in another call's
/// stream).
#[test]
fn a_reader_dropped_mid_file_returns_a_clean_connection_to_the_pool() {
    let Some(url) = env("CBR_NFS_URL") else {
        return;
    };
    let nfs = NfsShare::open(&url).unwrap();
    let (size, rel) = largest_file(&nfs);
    let rsize = u64::from(nfs.rsize());
    assert!(size > 2 * rsize, "the largest file spans several READs");
    let f = nfs.open_file(&rel).unwrap();
    let idle = nfs.pooled();
    assert!(idle >= 1, "open and lookups leave a connection idle");
    // One READ (limited to one rsize), answered, a byte of it taken: clean.
    let mut r = nfs.reader(&f, 0);
    r.limit = Some(rsize);
    let mut b = [0u8; 1];
    assert_eq!(r.read(&mut b).unwrap(), 1);
    assert_eq!(nfs.pooled(), idle - 1, "the reader holds one");
    drop(r);
    assert_eq!(nfs.pooled(), idle, "clean: back in the pool");
    // Streaming: READs in flight beyond the first when it is dropped. The
    // server may answer them out of order, so whether a reply is still
    // outstanding is the reader's to say (its `clean`): outstanding, the
    // connection is closed (a late reply would land in another caller's
    // stream); all answered, it goes back.
    let mut r = nfs.reader(&f, 0);
    assert_eq!(r.read(&mut b).unwrap(), 1);
    let clean = r.clean();
    drop(r);
    let want = if clean { idle } else { idle - 1 };
    assert_eq!(
        nfs.pooled(),
        want,
        "clean {clean}: pooled iff nothing outstanding"
    );
    // The pool still serves: a whole read through it.
    let got = nfs.read_at(&f, 0, size as usize).unwrap();
    assert_eq!(got.len() as u64, size);
}

/// Many walkers at once (what `?concurrency=N` asks of the scan) each
/// take a connection of the pool: the same listing as one walker, and the
/// connections come back.
#[test]
fn walkers_at_once_list_what_one_walker_lists() {
    let Some(url) = env("CBR_NFS_URL") else {
        return;
    };
    let nfs = NfsShare::open(&format!("{url}?concurrency=8")).unwrap();
    assert_eq!(nfs.concurrency(), 8);
    let mut dirs = vec![String::new()];
    let mut i = 0;
    while i < dirs.len() {
        let rel = dirs[i].clone();
        let d = nfs.open_dir(&rel).unwrap();
        for e in nfs.entries(&d, &rel).unwrap() {
            if e.ftype == Ftype::Dir {
                dirs.push(if rel.is_empty() {
                    e.name
                } else {
                    format!("{rel}/{}", e.name)
                });
            }
        }
        i += 1;
    }
    let one: Vec<Vec<String>> = dirs
        .iter()
        .map(|rel| {
            let d = nfs.open_dir(rel).unwrap();
            nfs.entries(&d, rel)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect()
        })
        .collect();
    let many: Vec<Vec<String>> = std::thread::scope(|s| {
        let hs: Vec<_> = dirs
            .iter()
            .map(|rel| {
                let nfs = &nfs;
                s.spawn(move || {
                    let d = nfs.open_dir(rel).unwrap();
                    nfs.entries(&d, rel)
                        .unwrap()
                        .into_iter()
                        .map(|e| e.name)
                        .collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(one, many);
    assert!(nfs.pooled() >= 1);
    assert!(nfs.pooled() <= dirs.len());
}

/// Not a test: the harness' generator of the 10,000-backup share it lists
/// over nfs:// (`CBR_NFS_WRITE_MANY=DIR`, run before the server starts).
#[test]
#[ignore = "a generator run by tests/interop/nfs.sh"]
fn write_many_backups_for_the_harness() {
    let dir = std::env::var("CBR_NFS_WRITE_MANY").expect("CBR_NFS_WRITE_MANY=DIR");
    let n: u64 = std::env::var("CBR_NFS_MANY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    for i in 0..n {
        let b = cbr::synth::SynthBackup {
            id: cbr::synth::uuid_from(i, 1),
            volume_id: cbr::synth::uuid_from(i / 3, 2),
            container: None,
            legacy_prefix: false,
            timestamp: format!("2026{i:010}"),
            name: Some(format!("b{i}")),
            description: None,
            size: 2 * 4096,
            object_size: 4096,
            block: 4096,
            compression: "zlib".into(),
            parent: None,
        };
        cbr::synth::write_backup(Path::new(&dir), &b, &mut |o, buf| buf.fill((o % 7) as u8))
            .unwrap();
    }
}
