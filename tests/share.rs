#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! The share model: `cbr ls` and `cbr show` (issue 4).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn ls(share: &Path) -> (i32, Value) {
    run_json(&["ls", "--json", "--share", share.to_str().unwrap()])
}

#[test]
fn ls_json_lists_exactly_the_manifest_backups_as_their_metadata_says() {
    let (_t, share) = share_copy();
    let before = tree_hash(&share);
    let (code, v) = ls(&share);
    assert_eq!(code, 0);
    let backups = v["backups"].as_array().unwrap();
    let mut ids: Vec<&str> = backups.iter().map(|b| b["id"].as_str().unwrap()).collect();
    let mut want: Vec<String> = manifest().into_iter().map(|m| m.0).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    for b in backups {
        let id = b["id"].as_str().unwrap();
        let meta_path = share
            .join(b["container"].as_str().unwrap())
            .join(format!("{}_metadata", b["prefix"].as_str().unwrap()));
        let m: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
        assert_eq!(m["backup_id"], id);
        assert_eq!(b["volume_id"], m["volume_id"], "{id}");
        assert_eq!(b["parent_id"], m["parent_id"], "{id}");
        let objs = m["objects"].as_array().unwrap();
        assert_eq!(b["chunks"].as_u64().unwrap(), objs.len() as u64, "{id}");
        let data: u64 = objs
            .iter()
            .map(|o| {
                o.as_object().unwrap().values().next().unwrap()["length"]
                    .as_u64()
                    .unwrap()
            })
            .sum();
        assert_eq!(b["data_bytes"].as_u64().unwrap(), data, "{id}");
        let mut comp: Vec<String> = objs
            .iter()
            .map(|o| {
                o.as_object().unwrap().values().next().unwrap()["compression"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        comp.sort();
        comp.dedup();
        let got: Vec<String> = b["compression"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, comp, "{id}");
        assert_eq!(b["complete"], true);
        assert_eq!(b["sha_block_size"], 32768);
        for k in [
            "container",
            "prefix",
            "created_at",
            "name",
            "description",
            "stored_bytes",
        ] {
            assert!(b.get(k).is_some(), "key {k}");
        }
    }
    // The manifest's parents are the metadata's.
    for (id, _, _, chain) in manifest() {
        let b = backups.iter().find(|b| b["id"] == id.as_str()).unwrap();
        let parent = chain.len().checked_sub(2).map(|i| chain[i].clone());
        assert_eq!(b["parent_id"].as_str().map(str::to_owned), parent);
    }
    assert!(
        v["findings"].as_array().unwrap().is_empty(),
        "{}",
        v["findings"]
    );
    assert_eq!(tree_hash(&share), before, "ls changed the share");
}

#[test]
fn named_container_holds_two_backups_and_legacy_prefix_is_read() {
    let (_t, share) = share_copy();
    let (_, v) = ls(&share);
    let in_named: Vec<&Value> = v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["container"] == "migration-batch-1")
        .collect();
    assert_eq!(in_named.len(), 2);
    assert_ne!(in_named[0]["prefix"], in_named[1]["prefix"]);
    let legacy: Vec<&Value> = v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["prefix"] == "backup")
        .collect();
    assert_eq!(legacy.len(), 2);
}

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

#[test]
fn missing_sha256file_is_a_finding_and_the_backup_incomplete() {
    let (_t, share) = share_copy();
    let id = id_of("full-bz2");
    std::fs::remove_file(find_file(&share, &id, "_sha256file")).unwrap();
    let (code, v) = ls(&share);
    assert_eq!(code, 1);
    assert_eq!(codes(&v, "error"), vec!["sha256file-missing"]);
    let b = v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id.as_str())
        .unwrap();
    assert_eq!(b["complete"], false);
    assert_eq!(v["backups"].as_array().unwrap().len(), 9);
}

#[test]
fn orphan_chunks_and_stray_files_are_findings() {
    let (_t, share) = share_copy();
    let id = id_of("full-zstd");
    std::fs::remove_file(find_file(&share, &id, "_metadata")).unwrap();
    std::fs::write(share.join("notes.txt"), "hello").unwrap();
    let (code, v) = ls(&share);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["backups"].as_array().unwrap().len(), 8);
    let w = codes(&v, "warning");
    assert!(w.contains(&"orphan-chunks".to_string()), "{w:?}");
    assert!(w.contains(&"metadata-missing".to_string()), "{w:?}");
    assert_eq!(codes(&v, "info"), vec!["stray-file"]);
}

#[test]
fn symlink_out_of_the_share_is_refused_and_not_followed() {
    let (t, share) = share_copy();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    // A would-be backup outside: if the link were followed, it would be listed.
    copy_tree(&share.join("96/12"), &outside);
    std::os::unix::fs::symlink(&outside, share.join("escape")).unwrap();
    let (code, v) = ls(&share);
    assert_eq!(v["backups"].as_array().unwrap().len(), 9);
    // Backups behind a directory link are not checked: an error, exit 1.
    assert_eq!(code, 1);
    assert_eq!(codes(&v, "error"), vec!["symlink-refused"]);
}

#[test]
fn directory_or_dangling_link_in_place_of_a_chunk_is_read_failed_and_others_still_listed() {
    let (_t, share) = share_copy();
    let id = id_of("full-zlib");
    let chunk = find_file(&share, &id, "-00003");
    std::fs::remove_file(&chunk).unwrap();
    std::fs::create_dir(&chunk).unwrap();
    let id2 = id_of("full-zstd");
    let chunk2 = find_file(&share, &id2, "-00001");
    std::fs::remove_file(&chunk2).unwrap();
    std::os::unix::fs::symlink("/nonexistent/x", &chunk2).unwrap();
    let (code, v) = ls(&share);
    assert_eq!(code, 1);
    assert_eq!(v["backups"].as_array().unwrap().len(), 9);
    let e = codes(&v, "error");
    assert_eq!(e, vec!["read-failed", "read-failed"], "{v}");
    assert!(codes(&v, "warning").contains(&"symlink-refused".to_string()));
}

#[test]
fn ten_thousand_backups_list_correctly() {
    use cbr::synth::{SynthBackup, uuid_from, write_backup};
    let dir = tempfile::tempdir().unwrap();
    let n = 10_000u64;
    for i in 0..n {
        let b = SynthBackup {
            id: uuid_from(i, 7),
            volume_id: uuid_from(i / 4, 8),
            container: (i % 10 == 0).then(|| "shared".to_string()),
            legacy_prefix: false,
            timestamp: format!("2026{:010}", i),
            name: Some(format!("b{i}")),
            description: None,
            size: 65536,
            object_size: 65536,
            block: 32768,
            compression: "none".into(),
            parent: None,
        };
        write_backup(dir.path(), &b, &mut |_, buf| buf.fill((i % 251) as u8)).unwrap();
    }
    let (code, v) = ls(dir.path());
    assert_eq!(code, 0);
    let backups = v["backups"].as_array().unwrap();
    assert_eq!(backups.len(), n as usize);
    let ids: std::collections::HashSet<&str> =
        backups.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert!((0..n).all(|i| ids.contains(uuid_from(i, 7).as_str())));
    assert!(
        backups
            .iter()
            .all(|b| b["chunks"] == 1 && b["data_bytes"] == 65536)
    );
    assert_eq!(
        backups
            .iter()
            .filter(|b| b["container"] == "shared")
            .count(),
        1000
    );
}

#[test]
fn show_by_unique_prefix_and_refuses_ambiguous_or_unknown() {
    let (_t, share) = share_copy();
    let s = share.to_str().unwrap();
    let (code, v) = run_json(&["show", "--json", "--share", s, "5e3d"]);
    assert_eq!(code, 0);
    assert_eq!(v["chain"].as_array().unwrap().len(), 3);
    assert_eq!(v["chunks"].as_array().unwrap().len(), 4);
    assert_eq!(v["record"]["object_count"], 4);
    assert_eq!(v["record"]["size"], 1);
    let (code, out, _) = run(&["show", "--share", s, "5e3d"]);
    assert_eq!(code, 0);
    assert!(out.contains("chain (full first)") && out.contains("MD5"));
    let (code, _, err) = run(&["show", "--share", s, "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no backup"));
    // Both ids starting with "9" and "96"? only one starts with 96; "" is refused.
    let (code, _, _) = run(&["show", "--share", s, ""]);
    assert_eq!(code, 2);
}

#[test]
fn share_found_from_cinder_conf_and_env() {
    let (t, share) = share_copy();
    let conf = t.path().join("cinder.conf");
    std::fs::write(
        &conf,
        format!("[DEFAULT]\nbackup_driver = cinder.backup.drivers.posix.PosixBackupDriver\nbackup_posix_path = {}\n", share.display()),
    )
    .unwrap();
    let (code, out, err) = run(&["ls", "--cinder-conf", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("9 backup(s)"));
    assert!(err.contains("backup_posix_path"));
    let out = cbr()
        .args(["ls"])
        .env("CBR_SHARE", &share)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, _, err) = run(&["ls", "--share", "/nonexistent/share"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a directory"));
}

#[test]
fn share_given_one_level_too_high_is_warned_with_the_root_to_use() {
    let (t, _share) = share_copy();
    let (code, v) = ls(t.path());
    assert_eq!(code, 0, "{v}");
    let f: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "share-root-suspect")
        .collect();
    assert_eq!(f.len(), 1, "{v}");
    let msg = f[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("--share {}", t.path().join("share").display())),
        "{msg}"
    );
    // The real root gets no such warning.
    let (_, v) = ls(&t.path().join("share"));
    assert!(
        !codes(&v, "warning").contains(&"share-root-suspect".to_string()),
        "{v}"
    );
}

#[test]
fn share_given_at_one_backups_directory_is_warned_with_the_root_to_use() {
    let (_t, share) = share_copy();
    let dir = share.join("96/12/96128a75-e143-4d8a-9b93-e246af8e6a7d");
    let (_, v) = ls(&dir);
    let w = codes(&v, "warning");
    assert_eq!(w, vec!["share-root-suspect"], "{v}");
    let msg = v["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("--share {}", share.display())),
        "{msg}"
    );
}

#[test]
fn man_page_of_cbr_lists_every_finding_code_and_the_exit_statuses() {
    let page = std::fs::read_to_string(fixtures().join("../man/cbr.1")).unwrap();
    for (code, _) in cbr::findings::CODES {
        // roff writes '-' as '\-'.
        assert!(
            page.contains(&code.replace('-', "\\-")),
            "man/cbr.1 lacks {code}"
        );
    }
    assert!(page.contains("Exit status"));
    let verify = std::fs::read_to_string(fixtures().join("../man/cbr-verify.1")).unwrap();
    assert!(verify.contains("Examples"), "cbr-verify.1 has no examples");
}

/// `ls --json-lines` carries exactly what `ls --json` does, one object a
/// line (backups, then findings), for pipelines.
#[test]
fn ls_json_lines_holds_the_json_documents_backups_and_findings() {
    let (_t, share) = share_copy();
    // A finding too: an orphan chunk.
    std::fs::write(share.join("volume_x_backup_y-00001"), b"x").unwrap();
    let s = share.to_str().unwrap();
    let (code, doc) = run_json(&["ls", "--json", "--share", s]);
    let (code2, out, _) = run(&["ls", "--json-lines", "--share", s]);
    assert_eq!(code, code2);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let backups: Vec<&Value> = lines.iter().filter_map(|l| l.get("backup")).collect();
    let findings: Vec<&Value> = lines.iter().filter_map(|l| l.get("finding")).collect();
    assert_eq!(backups.len() + findings.len(), lines.len());
    let want: Vec<&Value> = doc["backups"].as_array().unwrap().iter().collect();
    assert_eq!(backups, want);
    let want: Vec<&Value> = doc["findings"].as_array().unwrap().iter().collect();
    assert!(!want.is_empty());
    assert_eq!(findings, want);
}
