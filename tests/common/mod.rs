#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! Helpers shared by the integration tests: the binary, fixture paths,
//! temp copies of the fixture share, and a hash of a whole tree.
#![allow(dead_code)]

use assert_cmd::Command;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub fn cbr() -> Command {
    let mut c = Command::cargo_bin("cbr").expect("binary");
    c.env_remove("CBR_SHARE");
    c
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn records_dir() -> PathBuf {
    fixtures().join("cinder-29/records")
}

/// Copy a directory tree (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk");
        let rel = e.path().strip_prefix(from).expect("rel");
        let dst = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// A temp copy of `fixtures/cinder-29/share`; the share is `dir/share`.
pub fn share_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    copy_tree(&fixtures().join("cinder-29/share"), &share);
    (dir, share)
}

/// A hash of a whole tree: names, kinds, link targets and contents.
pub fn tree_hash(root: &Path) -> String {
    let mut h = Sha256::new();
    let mut entries: Vec<_> = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.expect("walk"))
        .collect();
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    for e in entries {
        let rel = e
            .path()
            .strip_prefix(root)
            .expect("rel")
            .to_string_lossy()
            .into_owned();
        h.update(rel.as_bytes());
        let ft = e.file_type();
        if ft.is_symlink() {
            h.update(b"L");
            h.update(
                std::fs::read_link(e.path())
                    .expect("link")
                    .to_string_lossy()
                    .as_bytes(),
            );
        } else if ft.is_file() {
            h.update(b"F");
            h.update(std::fs::read(e.path()).expect("read"));
        } else {
            h.update(b"D");
        }
    }
    format!("{:x}", h.finalize())
}

/// The manifest's backups: (id, stem, volume_sha256, chain).
pub fn manifest() -> Vec<(String, String, String, Vec<String>)> {
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("cinder-29/manifest.json")).expect("manifest"),
    )
    .expect("json");
    v["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| {
            (
                b["id"].as_str().expect("id").to_string(),
                b["stem"].as_str().expect("stem").to_string(),
                b["volume_sha256"].as_str().expect("sha").to_string(),
                b["chain"]
                    .as_array()
                    .expect("chain")
                    .iter()
                    .map(|c| c.as_str().expect("c").to_string())
                    .collect(),
            )
        })
        .collect()
}

/// Absolute path of the (only) file under `share` whose name ends with `suffix`
/// inside the container of backup `id` (searching the whole share).
pub fn find_file(share: &Path, id: &str, suffix: &str) -> PathBuf {
    let mut hits: Vec<PathBuf> = walkdir::WalkDir::new(share)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy();
            n.ends_with(suffix) && (n.contains(id) || e.path().to_string_lossy().contains(id))
        })
        .map(|e| e.into_path())
        .collect();
    hits.sort();
    assert_eq!(hits.len(), 1, "looking for {suffix} of {id}: {hits:?}");
    hits.remove(0)
}

/// Run cbr, return (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = cbr().args(args).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run cbr with JSON output and parse it.
pub fn run_json(args: &[&str]) -> (i32, serde_json::Value) {
    let (code, out, err) = run(args);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v)
}

/// The finding codes of a JSON document's "findings" of a severity.
pub fn codes(v: &serde_json::Value, severity: &str) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["severity"] == severity)
                .map(|f| f["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every record rendering in fixtures/: cinder-29's and the seed-2015 pastes
/// (not the elided backup-list).
pub fn all_renderings() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(records_dir())
        .expect("records")
        .map(|e| e.expect("entry").path())
        .collect();
    for n in [
        "backup-export.txt",
        "metadata.txt",
        "backup-import-command.txt",
    ] {
        v.push(fixtures().join("seed-2015").join(n));
    }
    v.sort();
    v
}
