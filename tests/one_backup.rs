#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `show ID` and `check RECORD` read one backup and its chain, not the
//! share (issue 25): the backup's own directory where Cinder's layout puts
//! it, a walk of the share only where it does not (said on stderr).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// What cbr says on stderr before it walks the whole share.
const WALK_NOTE: &str = "reading the whole share";

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

fn show(share: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["show", "--json", "--share", share.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v, err)
}

fn check(share: &Path, record: &Path) -> (i32, Value, String) {
    let (code, out, err) = run(&[
        "check",
        "--json",
        "--share",
        share.to_str().unwrap(),
        record.to_str().unwrap(),
    ]);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v, err)
}

fn record(stem: &str) -> std::path::PathBuf {
    records_dir().join(format!("{stem}.export.json"))
}

#[test]
fn show_in_cinders_layout_does_not_walk_the_share() {
    let (_t, share) = share_copy();
    let incr2 = id_of("incr2-zlib");
    for id in [incr2.as_str(), "5e3d"] {
        let (code, v, err) = show(&share, &[id]);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains(WALK_NOTE), "{id}: {err}");
        assert_eq!(v["id"], incr2.as_str());
        assert_eq!(v["chain"].as_array().unwrap().len(), 3);
        assert_eq!(v["chain_complete"], true);
        assert_eq!(v["dependants_complete"], false);
    }
}

#[test]
fn show_without_a_walk_says_what_a_walk_says_but_for_dependants() {
    let (_t, share) = share_copy();
    for (id, ..) in manifest() {
        let (code, mut near, _) = show(&share, &[&id]);
        assert_eq!(code, 0, "{id}");
        let (code, mut all, err) = show(&share, &[&id, "--dependants"]);
        assert_eq!(code, 0, "{id}");
        assert!(err.contains(WALK_NOTE), "--dependants walks: {err}");
        assert_eq!(all["dependants_complete"], true, "{id}");
        // What the containers read hold is a part of the whole list.
        let whole: Vec<Value> = all["dependants"].as_array().unwrap().clone();
        for d in near["dependants"].as_array().unwrap() {
            assert!(whole.contains(d), "{id}: {d} not among {whole:?}");
        }
        for v in [&mut near, &mut all] {
            let o = v.as_object_mut().unwrap();
            o.remove("dependants");
            o.remove("dependants_complete");
        }
        assert_eq!(near, all, "{id}");
    }
}

#[test]
fn show_dependants_flag_lists_children_in_other_containers() {
    let (_t, share) = share_copy();
    let full = id_of("full-zlib");
    let (_, v, _) = show(&share, &[&full]);
    assert_eq!(v["dependants"], serde_json::json!([]));
    assert_eq!(v["dependants_complete"], false);
    let (code, v, _) = show(&share, &[&full, "--dependants"]);
    assert_eq!(code, 0);
    assert_eq!(v["dependants"], serde_json::json!([id_of("incr1-zlib")]));
    // A person is told how to get the full list.
    let (code, out, _) = run(&["show", "--share", share.to_str().unwrap(), &full]);
    assert_eq!(code, 0);
    assert!(out.contains("cbr show --dependants"), "{out}");
}

#[test]
fn show_of_a_backup_in_a_custom_container_falls_back_to_a_walk() {
    let (_t, share) = share_copy();
    let id = id_of("container-1");
    let (code, v, err) = show(&share, &[&id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["container"], "migration-batch-1");
    assert!(err.contains(WALK_NOTE), "{err}");
    // Quiet: no note, same answer.
    let (code, out, err) = run(&["-q", "show", "--share", share.to_str().unwrap(), &id]);
    assert_eq!(code, 0);
    assert!(out.contains("migration-batch-1"));
    assert!(!err.contains(WALK_NOTE), "{err}");
}

#[test]
fn show_prefix_ambiguous_in_cinders_layout_is_refused() {
    let (_t, share) = share_copy();
    let id = id_of("incr2-zlib");
    let other = format!("{}-0000-0000-0000-000000000000", &id[..8]);
    let from = share.join("5e/3d").join(&id);
    let to = share.join("5e/3d").join(&other);
    copy_tree(&from, &to);
    let meta = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_metadata"))
        .unwrap();
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace(&id, &other)).unwrap();
    let (code, _, err) = run(&["show", "--share", share.to_str().unwrap(), &id[..6]]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ambiguous") && err.contains(&other), "{err}");
    // The whole id still names one.
    let (code, v, _) = show(&share, &[&other]);
    assert_eq!(code, 0);
    assert_eq!(v["id"], other.as_str());
}

#[test]
fn show_unknown_id_walks_then_says_no_backup() {
    let (_t, share) = share_copy();
    let (code, _, err) = run(&[
        "show",
        "--share",
        share.to_str().unwrap(),
        "0123abcd-0000-0000-0000-000000000000",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains(WALK_NOTE) && err.contains("no backup"),
        "{err}"
    );
}

#[test]
fn check_of_records_in_cinders_layout_does_not_walk_the_share() {
    let (_t, share) = share_copy();
    for stem in ["full-zlib", "incr1-zlib", "incr2-zlib", "legacy-liberty"] {
        let (code, v, err) = check(&share, &record(stem));
        assert_eq!(code, 0, "{stem}: {v}");
        assert_eq!(v["verdict"], "ready", "{stem}");
        assert!(!err.contains(WALK_NOTE), "{stem}: {err}");
    }
}

#[test]
fn check_of_a_record_in_a_custom_container_reads_that_container_only() {
    let (_t, share) = share_copy();
    for stem in ["container-1", "container-2"] {
        let (code, v, err) = check(&share, &record(stem));
        assert_eq!(code, 0, "{stem}: {v}");
        assert!(!err.contains(WALK_NOTE), "{stem}: {err}");
    }
}

#[test]
fn check_finds_a_parent_outside_cinders_layout_by_walking() {
    let (_t, share) = share_copy();
    let full = id_of("full-zlib");
    let home = share.join("a0/f6").join(&full);
    let away = share.join("elsewhere").join(&full);
    std::fs::create_dir_all(away.parent().unwrap()).unwrap();
    std::fs::rename(&home, &away).unwrap();
    let (code, v, err) = check(&share, &record("incr2-zlib"));
    assert_eq!(code, 0, "the chain is on the share: {v}");
    assert!(err.contains(WALK_NOTE) && err.contains(&full), "{err}");
    // Gone from the share: the walk proves it missing.
    std::fs::remove_dir_all(&away).unwrap();
    let (code, v, _) = check(&share, &record("incr2-zlib"));
    assert_eq!(code, 1);
    assert!(
        codes(&v, "error").contains(&"parent-missing".to_string()),
        "{v}"
    );
    assert_eq!(v["verdict"], "will-fail");
}
