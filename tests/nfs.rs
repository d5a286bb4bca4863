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
