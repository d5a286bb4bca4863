#![allow(clippy::disallowed_methods)] // tests read fixtures directly
//! Records written by other tools (issue 11): a Go SDK's compact export
//! with `""` for null ids, and the API reference's cut-short sample.

mod common;
use base64::Engine;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

fn go_export() -> PathBuf {
    fixtures().join("other-tools/go-sdk-export.json")
}

fn go_url() -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(go_export()).unwrap()).unwrap();
    v["backup_url"].as_str().unwrap().to_string()
}

fn json_of(url: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD
        .decode(url.trim())
        .unwrap();
    String::from_utf8(b).unwrap()
}

#[test]
fn compact_empty_id_record_decodes_with_its_values() {
    let (code, out, err) = run(&["decode", go_export().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["parent_id"], "");
    assert_eq!(v["encryption_key_id"], "");
    assert_eq!(v["display_description"], "nightly full — über <db> & co");
}

#[test]
fn empty_ids_are_a_note_not_an_error() {
    let (code, out, err) = run(&["lint", "--json", go_export().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let all: Vec<&Value> = match &v {
        Value::Array(a) => a
            .iter()
            .flat_map(|r| r["findings"].as_array().unwrap())
            .collect(),
        _ => v["findings"].as_array().unwrap().iter().collect(),
    };
    let codes: Vec<(&str, &str)> = all
        .iter()
        .map(|f| (f["severity"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(codes, vec![("info", "empty-id")], "{out}");
}

#[test]
fn encode_of_a_compact_record_is_byte_exact() {
    let (code, out, err) = run(&["encode", go_export().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), go_url());
}

#[test]
fn rewrite_changes_only_the_two_id_values() {
    let (p, u) = (
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
    );
    let (code, out, err) = run(&[
        "rewrite",
        "-q",
        "--project-id",
        p,
        "--user-id",
        u,
        go_export().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let before = json_of(&go_url());
    let after = json_of(&out);
    let want = before
        .replace("bcae33bdf5b84dc9ab9ca6518a438561", p)
        .replace("a65349759b6f4ec5a0bb0cc3feb1e9fa", u);
    assert_ne!(before, want, "the fixture holds both ids");
    assert_eq!(after, want);
    // And back again: the very bytes of the input.
    let back = std::env::temp_dir().join(format!("cbr-other-tools-{}.txt", std::process::id()));
    std::fs::write(&back, &out).unwrap();
    let (code, out2, err) = run(&[
        "rewrite",
        "-q",
        "--project-id",
        "bcae33bdf5b84dc9ab9ca6518a438561",
        "--user-id",
        "a65349759b6f4ec5a0bb0cc3feb1e9fa",
        back.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&back);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out2.trim_end(), go_url());
}

#[test]
fn layout_cinder_normalises_to_python_separators() {
    let (code, out, err) = run(&[
        "encode",
        "--layout",
        "cinder",
        go_export().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let j = json_of(&out);
    assert!(j.starts_with("{\"driver_info\": {}, \"id\": "), "{j}");
    assert!(j.contains("\\u00fcber <db> & co"), "{j}");
    assert!(j.is_ascii());
}

#[test]
fn compact_empty_id_record_checks_ready_against_the_share() {
    let (_t, share) = share_copy();
    let (code, out, err) = run(&[
        "check",
        "--json",
        "--share",
        share.to_str().unwrap(),
        go_export().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "{out}");
}

#[test]
fn cut_short_paste_says_it_was_cut() {
    let (code, out, err) = run(&[
        "decode",
        fixtures()
            .join("other-tools/api-ref-cut-short.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("cut short"), "{err}");
    assert!(err.contains("8 characters"), "{err}");
    assert!(err.contains("{\\\"stat"), "{err}");
    // One line per cause, none repeated.
    assert_eq!(err.matches("cut short").count(), 1, "{err}");
}
