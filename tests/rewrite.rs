#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr rewrite`, `cbr lint` (issue 3) and `cbr recover` (issue 7).

mod common;
use base64::Engine;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

const P: &str = "22222222222222222222222222222222";
const U: &str = "33333333333333333333333333333333";

fn all_records() -> Vec<PathBuf> {
    all_renderings()
}

fn decode_pairs(url: &str) -> Vec<(String, Value)> {
    let compact: String = url.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap();
    let m: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
    m.into_iter().collect()
}

fn decoded_url(path: &std::path::Path) -> String {
    let out = cbr().args(["encode"]).arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn rewrite_changes_exactly_project_and_user_ids_of_every_fixture_record() {
    for p in all_records() {
        let before = decoded_url(&p);
        let out = cbr()
            .args(["rewrite", "-q", "--project-id", P, "--user-id", U])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let after = String::from_utf8(out.stdout).unwrap();
        let (a, b) = (decode_pairs(&before), decode_pairs(&after));
        assert_eq!(a.len(), b.len(), "{}", p.display());
        for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
            assert_eq!(ka, kb, "{}: key order", p.display());
            match ka.as_str() {
                "project_id" => assert_eq!(vb, P),
                "user_id" => assert_eq!(vb, U),
                _ => assert_eq!(va, vb, "{}: {ka}", p.display()),
            }
        }
        // Same wrapping as the input.
        assert_eq!(
            before.contains('\n') && before.trim_end().contains('\n'),
            after.trim_end().contains('\n'),
            "{}",
            p.display()
        );
        // Rewriting back to the original ids gives the original bytes.
        let orig: std::collections::HashMap<String, Value> = a.into_iter().collect();
        let back = cbr()
            .args([
                "rewrite",
                "-q",
                "--project-id",
                orig["project_id"].as_str().unwrap(),
                "--user-id",
                orig["user_id"].as_str().unwrap(),
            ])
            .write_stdin(after)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(back.stdout).unwrap(),
            before,
            "{}",
            p.display()
        );
    }
}

#[test]
fn rewrite_to_the_same_values_re_encodes_identically() {
    let p = records_dir().join("legacy-liberty.cinderclient.txt");
    let out = cbr()
        .args([
            "rewrite",
            "-q",
            "--project-id",
            "bcae33bdf5b84dc9ab9ca6518a438561",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), decoded_url(&p));
}

#[test]
fn bad_ids_exit_2_naming_the_field_and_print_nothing() {
    let p = records_dir().join("full-zlib.export.json");
    for (args, field) in [
        (vec!["--project-id", "nothex"], "project_id"),
        (vec!["--user-id", "1234"], "user_id"),
        (vec!["--set", "parent_id=\"xyz\""], "parent_id"),
        (vec!["--set", "volume_id=12"], "volume_id"),
    ] {
        let out = cbr().arg("rewrite").args(&args).arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(field),
            "{args:?}"
        );
    }
}

#[test]
fn set_unset_map_diff_and_emit_openstack() {
    let t = tempfile::tempdir().unwrap();
    let map = t.path().join("map");
    std::fs::write(&map, "# source tenant -> target\nbcae33bdf5b84dc9ab9ca6518a438561 44444444444444444444444444444444\n\n").unwrap();
    let mut log = String::new();
    for s in ["full-zlib", "incr1-zlib", "legacy-liberty"] {
        log.push_str(
            &std::fs::read_to_string(records_dir().join(format!("{s}.cinderclient.txt"))).unwrap(),
        );
        log.push_str("$ \n");
    }
    let out = cbr()
        .args([
            "rewrite",
            "--map",
            map.to_str().unwrap(),
            "--set",
            "metadata.migrated=true",
            "--unset",
            "fail_reason",
            "--emit",
            "record",
        ])
        .write_stdin(log.clone())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("project_id") && err.contains("44444444444444444444444444444444"),
        "{err}"
    );
    assert!(err.contains("credentials"), "the ownership note: {err}");
    let text = String::from_utf8(out.stdout).unwrap();
    let recs: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_eq!(r["project_id"], "44444444444444444444444444444444");
        assert!(r.get("fail_reason").is_none());
        assert_eq!(r["metadata"]["migrated"], true);
    }
    let out = cbr()
        .args(["rewrite", "-q", "--project-id", P, "--emit", "openstack"])
        .arg(records_dir().join("full-zlib.osc.yaml"))
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with(&format!("openstack --os-project-id {P} volume backup record import cinder.backup.drivers.nfs.NFSBackupDriver ey")), "{line}");
    let bad = t.path().join("bad");
    std::fs::write(&bad, "onlyone\n").unwrap();
    let out = cbr()
        .args(["rewrite", "--map", bad.to_str().unwrap()])
        .arg(records_dir().join("full-zlib.export.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn scrub_source_replaces_the_tenant_elsewhere() {
    let out = cbr()
        .args([
            "rewrite",
            "--project-id",
            P,
            "--set",
            "metadata.owner=\"bcae33bdf5b84dc9ab9ca6518a438561\"",
            "--scrub-source",
            "--emit",
            "record",
        ])
        .arg(records_dir().join("full-zlib.export.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["metadata"]["owner"], P);
    assert!(String::from_utf8_lossy(&out.stderr).contains("metadata.owner"));
}

#[test]
fn fixture_records_lint_clean_and_errors_exit_1() {
    for p in all_records() {
        let (code, v) = run_json(&["lint", "--json", p.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {v}", p.display());
        assert!(
            codes(&v, "error").is_empty() && codes(&v, "warning").is_empty(),
            "{}: {v}",
            p.display()
        );
    }
    let bad = r#"{"id": "x", "status": "error", "container": "../up", "size": 1, "display_name": null, "display_description": null, "service_metadata": "backup", "object_count": 1}"#;
    let out = cbr()
        .args(["lint", "--json"])
        .write_stdin(bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = codes(&v, "error");
    for c in [
        "status-not-available",
        "container-escapes-share",
        "invalid-id",
    ] {
        assert!(e.contains(&c.to_string()), "{c}: {e:?}");
    }
}

#[test]
fn recovered_records_pass_check_for_all_nine_backups() {
    let (t, share) = share_copy();
    let s = share.to_str().unwrap();
    for (id, stem, _, chain) in manifest() {
        let out = cbr()
            .args(["recover", "--share", s, &id, "--emit", "export-json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{stem}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("size"),
            "derivations on stderr"
        );
        let f = t.path().join(format!("{stem}.json"));
        std::fs::write(&f, &out.stdout).unwrap();
        let (code, v) = run_json(&["check", "--json", "--share", s, f.to_str().unwrap()]);
        assert_eq!(code, 0, "{stem}: {v}");
        let rec = cbr().args(["decode", "--json"]).arg(&f).output().unwrap();
        let rv: Value = serde_json::from_slice(&rec.stdout).unwrap();
        let r = &rv["records"][0]["record"];
        assert_eq!(r["id"], id.as_str());
        assert_eq!(r["status"], "available");
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[..4], ["driver_info", "id", "user_id", "project_id"]);
        assert_eq!(keys.last(), Some(&"deleted"));
        // --chain: parents first.
        let out = cbr()
            .args(["recover", "-q", "--chain", "--share", s, &id])
            .output()
            .unwrap();
        let urls: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(urls.len(), chain.len(), "{stem}");
        let first = decode_pairs(&urls[0]);
        assert_eq!(
            first.iter().find(|(k, _)| k == "id").unwrap().1,
            chain[0].as_str()
        );
    }
}

/// `--emit cinder|openstack` print a line to be run: a `backup_service`
/// from the paste that holds shell syntax must stay one word (issue 20).
#[test]
fn emitted_import_lines_quote_a_hostile_backup_service() {
    let dir = tempfile::tempdir().unwrap();
    let url = String::from_utf8(
        cbr()
            .args(["encode", "--emit", "url"])
            .arg(records_dir().join("full-zlib.export.json"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let marker = dir.path().join("pwned");
    let service = format!(
        "nfs; touch {}; echo $(touch {0}) `touch {0}`",
        marker.display()
    );
    let paste = dir.path().join("export.json");
    std::fs::write(
        &paste,
        serde_json::json!({"backup_service": service, "backup_url": url.trim()}).to_string(),
    )
    .unwrap();
    let runs: [&[&str]; 4] = [
        &["encode", "--emit", "cinder"],
        &["encode", "--emit", "openstack"],
        &["rewrite", "-q", "--project-id", P, "--emit", "openstack"],
        &["rewrite", "-q", "--project-id", P, "--emit", "cinder"],
    ];
    for args in runs {
        let out = cbr().args(args).arg(&paste).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        // Run the line as an operator would, with the client replaced by a
        // function that prints its arguments one per line.
        let script = format!(
            "cinder() {{ printf '%s\\n' \"$@\"; }}\nopenstack() {{ printf '%s\\n' \"$@\"; }}\n{line}"
        );
        let ran = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(ran.status.success(), "{args:?}: {line}");
        assert!(
            !marker.exists(),
            "{args:?}: the emitted line ran the service's commands: {line}"
        );
        let words: Vec<String> = String::from_utf8(ran.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let n = words.len();
        assert!(n >= 3, "{args:?}: {words:?}");
        assert_eq!(
            words[n - 2],
            service,
            "{args:?}: the service is one word, as given"
        );
        assert!(words[n - 1].starts_with("ey"), "{args:?}: {words:?}");
    }
}
