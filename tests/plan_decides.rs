#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr plan` decides nothing silently (issue 21): conflicting mappings and
//! records, the target's list and its statuses, damaged data, exclusions,
//! refusals that say what to do, per-project files, directories as input.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const SRC: &str = "bcae33bdf5b84dc9ab9ca6518a438561";
const DST: &str = "0123456789abcdef0123456789abcdef";
const DST2: &str = "22222222222222222222222222222222";
const FIN: &str = "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1";
const USER: &str = "fedcba9876543210fedcba9876543210";

fn rec(stem: &str) -> String {
    records_dir()
        .join(format!("{stem}.export.json"))
        .to_string_lossy()
        .into_owned()
}

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn plan_json(args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["plan", "--format", "json"];
    a.extend_from_slice(args);
    let (code, out, err) = run(&a);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

fn step_ids(v: &Value) -> Vec<String> {
    v["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["backup_id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The reason a backup is listed under `list` ("skipped", "refused").
fn reason(v: &Value, list: &str, id: &str) -> String {
    v[list]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["backup_id"] == id))
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{id} is not {list}: {v}"))
}

/// A fixture record rewritten to another project, as an export-json file.
fn moved(dir: &Path, stem: &str, project: &str) -> PathBuf {
    let (code, out, err) = run(&[
        "rewrite",
        "-q",
        "--project-id",
        project,
        "--emit",
        "export-json",
        &rec(stem),
    ]);
    assert_eq!(code, 0, "{err}");
    let p = dir.join(format!("{stem}.{project}.json"));
    std::fs::write(&p, out).unwrap();
    p
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_source_mapped_to_two_targets_anywhere_is_refused_listing_every_conflict() {
    let t = tempfile::tempdir().unwrap();
    let map = write(t.path(), "map.csv", &format!("{SRC},{DST2}\n{FIN},{DST}\n"));
    let (code, out, err) = run(&[
        "plan",
        "--map-project",
        &format!("{SRC}={DST}"),
        "--map-project",
        &format!("{FIN}={DST2}"),
        "--map",
        s(&map),
        &rec("full-zlib"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("2 source(s) mapped to two different targets"),
        "{err}"
    );
    assert!(err.contains(&format!("--map-project {SRC}={DST}")), "{err}");
    assert!(
        err.contains("map.csv line 1") && err.contains("map.csv line 2"),
        "{err}"
    );
    // --map-project twice for one project.
    let (code, _, err) = run(&[
        "plan",
        "--map-project",
        &format!("{SRC}={DST}"),
        "--map-project",
        &format!("{SRC}={DST2}"),
        &rec("full-zlib"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(DST) && err.contains(DST2), "{err}");
    // The same mapping twice is no conflict.
    let (code, _, err) = plan_json(&[
        "--map-project",
        &format!("{SRC}={DST}"),
        "--map",
        s(&write(t.path(), "same.csv", &format!("{SRC},{DST}\n"))),
        &rec("full-zlib"),
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn two_different_records_for_one_backup_id_are_refused_naming_both() {
    let t = tempfile::tempdir().unwrap();
    let other = moved(t.path(), "full-zlib", FIN);
    let (code, out, err) = run(&[
        "plan",
        "--default-project",
        DST,
        &rec("full-zlib"),
        s(&other),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains(&id_of("full-zlib")), "{err}");
    assert!(
        err.contains("full-zlib.export.json line") && err.contains(".json line"),
        "{err}"
    );
    assert!(err.contains("project_id"), "{err}");
    // The same record twice (two formats of one export) is a note.
    let (code, v, err) = plan_json(&[
        "--default-project",
        DST,
        &rec("full-zlib"),
        records_dir().join("full-zlib.osc.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step_ids(&v), vec![id_of("full-zlib")]);
    assert!(err.contains("given twice, the same record"), "{err}");
}

#[test]
fn every_unmapped_project_is_listed_with_its_fix() {
    let t = tempfile::tempdir().unwrap();
    let fin = moved(t.path(), "full-bz2", FIN);
    let (code, _, err) = run(&["plan", &rec("full-zlib"), s(&fin)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("2 source project(s) have no mapping"), "{err}");
    for p in [SRC, FIN] {
        assert!(err.contains(&format!("--map-project {p}=TARGET")), "{err}");
    }
}

#[test]
fn a_spreadsheet_csv_map_is_read_by_plan_and_rewrite_alike() {
    let t = tempfile::tempdir().unwrap();
    let csv = format!(
        "\u{feff}# exported from the migration sheet\r\n\"Source project\",\"Target project\",\"User\"\r\n\"{SRC}\",\"{DST}\",\"{USER}\"\r\n"
    );
    let map = write(t.path(), "map.csv", &csv);
    let (code, v, err) = plan_json(&["--map", s(&map), &rec("full-zlib")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["steps"][0]["target_project"], DST);
    assert_eq!(v["steps"][0]["target_user"], USER);
    // rewrite reads the same file (and still the old `old new` pairs).
    let (code, out, err) = run(&[
        "rewrite",
        "-q",
        "--map",
        s(&map),
        "--emit",
        "record",
        &rec("full-zlib"),
    ]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["project_id"], DST);
    assert_eq!(r["user_id"], USER);
    let pairs = write(t.path(), "pairs", &format!("{SRC} {DST}\n"));
    let (code, v, err) = plan_json(&["--map", s(&pairs), &rec("full-zlib")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["steps"][0]["target_project"], DST);
    // A project name is refused, with the command that lists the ids.
    let names = write(t.path(), "names.csv", &format!("{SRC},finance-prod\n"));
    for cmd in ["plan", "rewrite"] {
        let (code, _, err) = run(&[cmd, "--map", s(&names), &rec("full-zlib")]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(
            err.contains("openstack project list -f value -c ID -c Name"),
            "{cmd}: {err}"
        );
        assert!(err.contains("names.csv line 1"), "{cmd}: {err}");
    }
}

#[test]
fn a_target_list_that_is_no_backup_list_is_refused_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "401.txt",
            "The request you have made requires authentication. (HTTP 401)\n",
        ),
        ("empty.json", ""),
    ] {
        let f = write(t.path(), name, text);
        let (code, out, err) = run(&[
            "plan",
            "--default-project",
            DST,
            "--target-backups",
            s(&f),
            &rec("full-zlib"),
        ]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(out.is_empty());
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn a_backup_in_error_on_the_target_is_refused_not_skipped_and_so_are_its_dependants() {
    let t = tempfile::tempdir().unwrap();
    let (full, incr1) = (id_of("full-zlib"), id_of("incr1-zlib"));
    // openstack -f value: ID Name Description Status Size Incremental Created At
    let list = write(
        t.path(),
        "target.txt",
        &format!("{full} db-data-full None error 1 False 2026-11-24T06:09:19.000000\n"),
    );
    let (code, v, err) = plan_json(&[
        "--default-project",
        DST,
        "--target-backups",
        s(&list),
        &rec("full-zlib"),
        &rec("incr1-zlib"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(step_ids(&v).is_empty(), "{v}");
    let why = reason(&v, "refused", &full);
    assert!(
        why.contains("status error") && why.contains("delete"),
        "{why}"
    );
    assert!(reason(&v, "refused", &incr1).contains(&full));
    // Under another project (a listing with a project column): refused.
    let json = write(
        t.path(),
        "target.json",
        &format!(r#"[{{"ID": "{full}", "Status": "available", "Project": "{DST2}"}}]"#),
    );
    let (code, v, err) = plan_json(&[
        "--default-project",
        DST,
        "--target-backups",
        s(&json),
        &rec("full-zlib"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(reason(&v, "refused", &full).contains(DST2));
    // Available: skipped as done.
    let ok = write(
        t.path(),
        "ok.json",
        &format!(r#"[{{"ID": "{full}", "Status": "available"}}]"#),
    );
    let (code, v, err) = plan_json(&[
        "--default-project",
        DST,
        "--target-backups",
        s(&ok),
        &rec("full-zlib"),
        &rec("incr1-zlib"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step_ids(&v), vec![incr1]);
}

/// Flip one byte in the middle of a chunk file, keeping its size (and,
/// with `keep_mtime`, its mtime: the file looks unchanged to a journal).
fn damage(path: &Path, keep_mtime: bool) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    let at = len / 2;
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x55]).unwrap();
    if keep_mtime {
        f.set_modified(mtime).unwrap();
    }
}

#[test]
fn deep_plan_refuses_a_damaged_backup_and_its_dependants() {
    let (_t, share) = share_copy();
    let (full, incr1, incr2) = (id_of("full-zlib"), id_of("incr1-zlib"), id_of("incr2-zlib"));
    damage(&find_file(&share, &full, "-00001"), false);
    let before = tree_hash(&share);
    let args = [
        "--share",
        s(&share),
        "--default-project",
        DST,
        &rec("full-zlib"),
        &rec("incr1-zlib"),
        &rec("incr2-zlib"),
        &rec("full-bz2"),
    ];
    // Without --deep the damage is not seen.
    let (code, v, err) = plan_json(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step_ids(&v).len(), 4);
    let mut deep = vec!["--deep"];
    deep.extend_from_slice(&args);
    let (code, v, err) = plan_json(&deep);
    assert_eq!(code, 1, "{err}");
    assert_eq!(step_ids(&v), vec![id_of("full-bz2")]);
    assert!(reason(&v, "refused", &full).contains("--deep"), "{v}");
    for child in [&incr1, &incr2] {
        assert!(reason(&v, "refused", child).contains("parent"), "{v}");
    }
    // The runbook's checks read the data too.
    let check = v["steps"][0]["commands"]["check"].as_str().unwrap();
    assert!(check.contains(" --deep "), "{check}");
    assert_eq!(tree_hash(&share), before);
}

#[test]
fn deep_plan_accepts_chunks_a_recent_journal_proved() {
    let (t, share) = share_copy();
    let journal = t.path().join("journal.sqlite");
    let full = id_of("full-zlib");
    let (code, _, err) = run(&[
        "verify",
        "-q",
        "--deep",
        "--share",
        s(&share),
        "--journal",
        s(&journal),
        &full,
    ]);
    assert_eq!(code, 0, "{err}");
    // Damaged since, the file looking unchanged: a journal window accepts
    // the proof without reading; without the window it is read again.
    damage(&find_file(&share, &full, "-00001"), true);
    let base = [
        "--deep",
        "--share",
        s(&share),
        "--default-project",
        DST,
        "--journal",
        s(&journal),
    ];
    let full_rec = rec("full-zlib");
    let mut a = base.to_vec();
    a.extend(["--older-than", "1d", &full_rec]);
    let (code, v, err) = plan_json(&a);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step_ids(&v), vec![full.clone()]);
    assert!(err.contains("accepted from the journal"), "{err}");
    let mut a = base.to_vec();
    a.push(&full_rec);
    let (code, v, err) = plan_json(&a);
    assert_eq!(code, 1, "{err}");
    assert!(reason(&v, "refused", &full).contains("--deep"));
}

#[test]
fn excluded_backups_are_skipped_by_hand_and_their_dependants_refused() {
    let t = tempfile::tempdir().unwrap();
    let (full, incr1, incr2) = (id_of("full-zlib"), id_of("incr1-zlib"), id_of("incr2-zlib"));
    let list = write(
        t.path(),
        "exclude.txt",
        &format!("# bad\n{}  scrub 2026-11-20\n", &full[..8]),
    );
    let recs: Vec<String> = ["full-zlib", "incr1-zlib", "incr2-zlib", "full-bz2"]
        .iter()
        .map(|x| rec(x))
        .collect();
    for how in [
        vec!["--exclude", full.as_str()],
        vec!["--exclude-from", s(&list)],
    ] {
        let mut a = how.clone();
        a.extend(["--default-project", DST]);
        a.extend(recs.iter().map(String::as_str));
        let (code, v, err) = plan_json(&a);
        assert_eq!(code, 1, "{err}");
        assert_eq!(step_ids(&v), vec![id_of("full-bz2")]);
        assert_eq!(reason(&v, "skipped", &full), "excluded by hand (--exclude)");
        for child in [&incr1, &incr2] {
            let why = reason(&v, "refused", child);
            assert!(
                why.contains("excluded by hand") || why.contains("refused"),
                "{why}"
            );
        }
        assert!(reason(&v, "refused", &incr1).contains("excluded by hand"));
    }
}

#[test]
fn a_missing_parent_on_the_share_names_the_recover_command() {
    let (_t, share) = share_copy();
    let full = id_of("full-zlib");
    let (code, v, err) = plan_json(&[
        "--share",
        s(&share),
        "--default-project",
        DST,
        &rec("incr1-zlib"),
    ]);
    assert_eq!(code, 1, "{err}");
    let why = reason(&v, "refused", &id_of("incr1-zlib"));
    assert!(
        why.contains(&format!("cbr recover --share {}", share.display()))
            && why.contains(&format!("{full} --emit export-json > {full}.json")),
        "{why}"
    );
    // Without a share: how to get the record.
    let (_, v, _) = plan_json(&["--default-project", DST, &rec("incr1-zlib")]);
    let why = reason(&v, "refused", &id_of("incr1-zlib"));
    assert!(
        why.contains("cbr recover") && why.contains("--from-share"),
        "{why}"
    );
}

#[test]
fn a_share_one_level_too_high_is_named_and_no_container_edit_is_advised() {
    let (t, share) = share_copy();
    let high = t.path();
    let (code, v, err) = plan_json(&[
        "--share",
        s(high),
        "--default-project",
        DST,
        &rec("full-zlib"),
    ]);
    assert_eq!(code, 1, "{err}");
    let why = reason(&v, "refused", &id_of("full-zlib"));
    assert!(!why.contains("set container"), "{why}");
    assert!(
        why.contains(&format!("--share {}", share.display())),
        "{why}"
    );
    assert!(err.contains("share root is probably"), "{err}");
    let (_, out, _) = run(&["check", "--share", s(high), &rec("full-zlib")]);
    assert!(!out.contains("set container"), "{out}");
    assert!(
        out.contains(&format!("--share {}", share.display())),
        "{out}"
    );
}

#[test]
fn without_a_share_the_summary_says_nothing_was_checked_against_one() {
    let (code, _, err) = run(&["plan", "--default-project", DST, &rec("full-zlib")]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not checked against any share"), "{err}");
}

#[test]
fn per_project_files_carry_only_their_own_steps_skips_and_refusals() {
    let t = tempfile::tempdir().unwrap();
    // finance: full-bz2 (excluded) and incr2 (its parent goes elsewhere).
    let bz2 = moved(t.path(), "full-bz2", FIN);
    let incr2 = moved(t.path(), "incr2-zlib", FIN);
    let dir = t.path().join("plans");
    let (code, _, err) = run(&[
        "plan",
        "--map-project",
        &format!("{SRC}={DST}"),
        "--map-project",
        &format!("{FIN}={DST2}"),
        "--exclude",
        &id_of("full-bz2"),
        "--per-project",
        s(&dir),
        &rec("full-zlib"),
        &rec("incr1-zlib"),
        s(&incr2),
        s(&bz2),
    ]);
    assert_eq!(code, 1, "{err}");
    let main = std::fs::read_to_string(dir.join(format!("{DST}.sh"))).unwrap();
    let fin = std::fs::read_to_string(dir.join(format!("{DST2}.sh")))
        .expect("finance, all skipped or refused, still gets its file");
    assert!(!main.contains(&id_of("full-bz2")), "{main}");
    assert!(
        fin.contains(&format!("skipped {}: excluded by hand", id_of("full-bz2"))),
        "{fin}"
    );
    // The chain across projects: refused in both files.
    let refusal = format!("REFUSED {}", id_of("incr2-zlib"));
    assert!(
        main.contains(&refusal) && fin.contains(&refusal),
        "{main}\n{fin}"
    );
    assert!(fin.contains("# backups: 0"), "{fin}");
    assert!(main.contains("# backups: 2"), "{main}");
}

#[test]
fn a_directory_input_is_every_file_in_it_and_input_order_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("exports");
    std::fs::create_dir(&dir).unwrap();
    let stems = [
        "incr2-zlib",
        "full-bz2",
        "full-zlib",
        "incr1-zlib",
        "container-1",
    ];
    for (i, stem) in stems.iter().enumerate() {
        std::fs::copy(rec(stem), dir.join(format!("{}-{stem}.json", 9 - i))).unwrap();
    }
    let (code, v, err) = plan_json(&["--default-project", DST, s(&dir)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step_ids(&v).len(), 5, "{v}");
    // Every order of the same files: the same plan, byte for byte.
    let files: Vec<String> = stems.iter().map(|x| rec(x)).collect();
    let mut outs = Vec::new();
    for rot in 0..files.len() {
        let mut order = files.clone();
        order.rotate_left(rot);
        if rot % 2 == 1 {
            order.reverse();
        }
        let mut a = vec!["plan", "-q", "--format", "json", "--default-project", DST];
        a.extend(order.iter().map(String::as_str));
        let (code, out, err) = run(&a);
        assert_eq!(code, 0, "{err}");
        outs.push(out);
    }
    let (_, from_dir, _) = run(&[
        "plan",
        "-q",
        "--format",
        "json",
        "--default-project",
        DST,
        s(&dir),
    ]);
    assert!(outs.iter().all(|o| *o == outs[0] && *o == from_dir));
}

#[test]
fn md_plan_shows_name_volume_created_and_gib_per_target_project() {
    let (code, out, err) = run(&[
        "plan",
        "--format",
        "md",
        "--default-project",
        DST,
        &rec("full-zlib"),
        &rec("incr1-zlib"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("| incremental of | name | source volume | created |"),
        "{out}"
    );
    assert!(
        out.contains("db\\-data\\-full") || out.contains("db-data-full"),
        "{out}"
    );
    assert!(
        out.contains("cd613e30-d8f1-4adf-91b7-584a2265b1f5"),
        "{out}"
    );
    assert!(out.contains("2026-11-24"), "{out}");
    assert!(out.contains(&format!("| {DST} | 2 | 2 |")), "{out}");
}
