#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr check RECORD --share DIR` (issue 5).

mod common;
use base64::Engine;
use common::*;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

fn record_of(stem: &str) -> Map<String, Value> {
    let v: Value = serde_json::from_slice(
        &std::fs::read(records_dir().join(format!("{stem}.export.json"))).unwrap(),
    )
    .unwrap();
    let url: String = v["backup_url"]
        .as_str()
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(url)
            .unwrap(),
    )
    .unwrap()
}

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

fn check_json(share: &Path, input: &Path) -> (i32, Value) {
    run_json(&[
        "check",
        "--json",
        "--share",
        share.to_str().unwrap(),
        input.to_str().unwrap(),
    ])
}

#[test]
fn every_rendering_checks_clean_with_legacy_count_only_for_kilo_and_liberty() {
    let (_t, share) = share_copy();
    let before = tree_hash(&share);
    let inputs = all_renderings();
    for p in inputs {
        let (code, v) = check_json(&share, &p);
        assert_eq!(code, 0, "{}: {v}", p.display());
        assert_eq!(v["ok"], true);
        let name = p.to_string_lossy();
        let legacy = name.contains("legacy-liberty")
            || name.contains("seed-kilo-share")
            || name.contains("seed-2015");
        let infos = codes(&v, "info");
        assert_eq!(
            infos.contains(&"object-count-legacy".to_string()),
            legacy,
            "{name}: {v}"
        );
        assert!(codes(&v, "warning").is_empty(), "{name}: {v}");
    }
    assert_eq!(tree_hash(&share), before, "check changed the share");
}

enum Fault {
    Share(fn(&Path)),
    Record(fn(&mut Map<String, Value>)),
}

fn prefix(share: &Path, id: &str) -> (PathBuf, String) {
    let m = find_file(share, id, "_metadata");
    let name = m.file_name().unwrap().to_string_lossy().into_owned();
    (
        m.parent().unwrap().to_path_buf(),
        name.trim_end_matches("_metadata").to_string(),
    )
}

fn full_zlib(share: &Path) -> (PathBuf, String) {
    prefix(share, &id_of("full-zlib"))
}

fn edit_metadata(share: &Path, stem: &str, f: impl FnOnce(&mut Value)) {
    let p = find_file(share, &id_of(stem), "_metadata");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn each_injected_fault_gives_its_finding_and_no_other_error() {
    let cases: Vec<(&str, &str, Fault, &str)> = vec![
        (
            "chunk deleted",
            "full-zlib",
            Fault::Share(|s| {
                let (d, p) = full_zlib(s);
                std::fs::remove_file(d.join(format!("{p}-00005"))).unwrap();
            }),
            "object-missing",
        ),
        (
            "extra chunk with the prefix",
            "full-zlib",
            Fault::Share(|s| {
                let (d, p) = full_zlib(s);
                std::fs::write(d.join(format!("{p}-00017")), b"x").unwrap();
            }),
            "object-unlisted",
        ),
        (
            "metadata truncated",
            "full-zlib",
            Fault::Share(|s| {
                let (d, p) = full_zlib(s);
                let m = d.join(format!("{p}_metadata"));
                let b = std::fs::read(&m).unwrap();
                std::fs::write(&m, &b[..b.len() / 2]).unwrap();
            }),
            "metadata-invalid",
        ),
        (
            "metadata backup_id changed",
            "full-zlib",
            Fault::Share(|s| {
                edit_metadata(s, "full-zlib", |v| {
                    v["backup_id"] = json!("11111111-2222-3333-4444-555555555555")
                });
            }),
            "id-mismatch",
        ),
        (
            "object_count +1 (current)",
            "full-zlib",
            Fault::Record(|r| {
                let n = r["object_count"].as_u64().unwrap();
                r.insert("object_count".into(), json!(n + 1));
            }),
            "object-count-mismatch",
        ),
        (
            "object_count -1 (current)",
            "full-zlib",
            Fault::Record(|r| {
                let n = r["object_count"].as_u64().unwrap();
                r.insert("object_count".into(), json!(n - 1));
            }),
            "object-count-mismatch",
        ),
        (
            "object_count +1 (legacy)",
            "legacy-liberty",
            Fault::Record(|r| {
                let n = r["object_count"].as_u64().unwrap();
                r.insert("object_count".into(), json!(n + 1));
            }),
            "object-count-mismatch",
        ),
        (
            "object_count -2 (legacy: -1 is the current convention, which is fine)",
            "legacy-liberty",
            Fault::Record(|r| {
                let n = r["object_count"].as_u64().unwrap();
                r.insert("object_count".into(), json!(n - 2));
            }),
            "object-count-mismatch",
        ),
        (
            "container ../etc",
            "full-zlib",
            Fault::Record(|r| {
                r.insert("container".into(), json!("../etc"));
            }),
            "container-escapes-share",
        ),
        (
            "container absolute",
            "full-zlib",
            Fault::Record(|r| {
                r.insert("container".into(), json!("/etc"));
            }),
            "container-escapes-share",
        ),
        (
            "container missing",
            "full-zlib",
            Fault::Record(|r| {
                r.insert("container".into(), json!("no/such/container"));
            }),
            "container-missing",
        ),
        (
            "service_metadata changed",
            "full-zlib",
            Fault::Record(|r| {
                r.insert(
                    "service_metadata".into(),
                    json!("volume_x_20260101000000_backup_y"),
                );
            }),
            "metadata-missing",
        ),
        (
            "sha256file deleted",
            "full-zlib",
            Fault::Share(|s| {
                let (d, p) = full_zlib(s);
                std::fs::remove_file(d.join(format!("{p}_sha256file"))).unwrap();
            }),
            "sha256file-missing",
        ),
        (
            "chunk replaced by a directory",
            "full-zlib",
            Fault::Share(|s| {
                let (d, p) = full_zlib(s);
                let c = d.join(format!("{p}-00002"));
                std::fs::remove_file(&c).unwrap();
                std::fs::create_dir(&c).unwrap();
            }),
            "read-failed",
        ),
        (
            "parent of an incremental removed",
            "incr1-zlib",
            Fault::Share(|s| {
                let (d, _) = full_zlib(s);
                std::fs::remove_dir_all(d).unwrap();
            }),
            "parent-missing",
        ),
        (
            "gap in a full backup",
            "full-zlib",
            Fault::Share(|s| {
                edit_metadata(s, "full-zlib", |v| {
                    let o = v["objects"][7]
                        .as_object_mut()
                        .unwrap()
                        .values_mut()
                        .next()
                        .unwrap();
                    let off = o["offset"].as_u64().unwrap();
                    o["offset"] = json!(off + 32768);
                });
            }),
            "coverage-gap",
        ),
    ];
    for (name, stem, fault, want) in cases {
        let (t, share) = share_copy();
        let mut rec = record_of(stem);
        match fault {
            Fault::Share(f) => f(&share),
            Fault::Record(f) => f(&mut rec),
        }
        let input = t.path().join("record.json");
        std::fs::write(&input, serde_json::to_string(&rec).unwrap()).unwrap();
        let before = tree_hash(&share);
        let (code, v) = check_json(&share, &input);
        assert_eq!(code, 1, "{name}: {v}");
        assert_eq!(v["ok"], false, "{name}");
        let errors = codes(&v, "error");
        assert!(
            errors.contains(&want.to_string()),
            "{name}: want {want}, got {errors:?}"
        );
        assert!(
            errors.iter().all(|c| c == want),
            "{name}: other errors besides {want}: {errors:?}"
        );
        assert_eq!(tree_hash(&share), before, "{name}: check changed the share");
    }
}

#[test]
fn container_missing_says_where_the_backup_is() {
    let (t, share) = share_copy();
    let mut rec = record_of("full-zstd");
    rec.insert("container".into(), json!("moved/elsewhere"));
    let input = t.path().join("r.json");
    std::fs::write(&input, serde_json::to_string(&rec).unwrap()).unwrap();
    let (code, out, _) = run(&[
        "check",
        "--share",
        share.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("will fail because"), "{out}");
    assert!(out.contains("f9/53/f953a76b"), "{out}");
}

#[test]
fn several_records_get_a_verdict_each_and_parents_in_the_input_count() {
    let (t, share) = share_copy();
    let mut log = String::new();
    for s in ["full-zlib", "incr1-zlib", "incr2-zlib"] {
        log.push_str(
            &std::fs::read_to_string(records_dir().join(format!("{s}.cinderclient.txt"))).unwrap(),
        );
    }
    let input = t.path().join("log.txt");
    std::fs::write(&input, log).unwrap();
    let (code, v) = run_json(&[
        "check",
        "--json",
        "--share",
        share.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{v}");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    let incr = &arr[1]["findings"];
    assert!(incr.to_string().contains("in this input"), "{incr}");
    let (_, out, _) = run(&[
        "check",
        "--share",
        share.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(out.contains("3 of 3 record(s) ready to import"), "{out}");
}

#[test]
fn target_service_that_would_refuse_the_record() {
    let (_t, share) = share_copy();
    let (code, v) = run_json(&[
        "check",
        "--json",
        "--share",
        share.to_str().unwrap(),
        "--target-service",
        "cinder.backup.drivers.posix.PosixBackupDriver",
        records_dir()
            .join("full-zlib.export.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v, "error"), vec!["service-not-accepted"]);
}

#[test]
fn check_deep_finds_a_rotten_chunk_of_the_chain() {
    let (_t, share) = share_copy();
    let (d, p) = full_zlib(&share);
    let c = d.join(format!("{p}-00003"));
    let mut b = std::fs::read(&c).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&c, b).unwrap();
    let rec = records_dir().join("incr2-zlib.export.json");
    let (code, v) = run_json(&[
        "check",
        "--json",
        "--share",
        share.to_str().unwrap(),
        rec.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "shallow check cannot see inside chunks: {v}");
    let (code, v) = run_json(&[
        "check",
        "--deep",
        "--json",
        "--share",
        share.to_str().unwrap(),
        rec.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{v}");
    assert!(!codes(&v, "error").is_empty());
}

#[test]
fn unreadable_input_or_missing_share_exit_2() {
    let (code, _, err) = run(&[
        "check",
        "--share",
        "/nonexistent",
        records_dir()
            .join("full-zlib.export.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a directory"));
    let (_t, share) = share_copy();
    let out = cbr()
        .args(["check", "--share", share.to_str().unwrap()])
        .write_stdin("garbage\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
