#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! `cbr decode` and `cbr encode` over every record rendering in fixtures/.

use assert_cmd::Command;
use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn cbr() -> Command {
    Command::cargo_bin("cbr").unwrap()
}

/// The record inside an export JSON, by plain base64 + JSON decoding, as
/// (key, value) pairs in order.
fn plain_decode(export: &Path) -> (String, Vec<(String, Value)>) {
    let v: Value = serde_json::from_slice(&std::fs::read(export).unwrap()).unwrap();
    let url = v["backup_url"].as_str().unwrap().to_string();
    let compact: String = url.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap();
    let rec: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
    (url, rec.into_iter().collect())
}

fn decode_json(path: &Path) -> Value {
    let out = cbr()
        .arg("decode")
        .arg("--json")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decode {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn renderings() -> Vec<(String, PathBuf)> {
    let dir = fixtures().join("cinder-29/records");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name.split('.').next().unwrap().to_string();
            (stem, p)
        })
        .collect();
    v.sort();
    assert!(v.len() >= 80, "expected every rendering, found {}", v.len());
    v
}

#[test]
fn every_rendering_decodes_to_the_export_record() {
    for (stem, path) in renderings() {
        let (_, want) =
            plain_decode(&fixtures().join(format!("cinder-29/records/{stem}.export.json")));
        let got = decode_json(&path);
        let records = got["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{}", path.display());
        let rec: Vec<(String, Value)> = records[0]["record"]
            .as_object()
            .unwrap()
            .clone()
            .into_iter()
            .collect();
        assert_eq!(rec, want, "{}", path.display());
        let era = records[0]["source"]["era"].as_str().unwrap();
        let want_era = match stem.as_str() {
            "legacy-liberty" => "liberty",
            "seed-kilo-share" => "kilo",
            _ => "current",
        };
        assert_eq!(era, want_era, "{}", path.display());
    }
}

#[test]
fn every_rendering_encodes_to_the_original_backup_url() {
    for (stem, path) in renderings() {
        let (url, _) =
            plain_decode(&fixtures().join(format!("cinder-29/records/{stem}.export.json")));
        let out = cbr().arg("encode").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", path.display());
        let got = String::from_utf8(out.stdout).unwrap();
        let want = if url.ends_with('\n') {
            url.clone()
        } else {
            format!("{url}\n")
        };
        assert_eq!(got, want, "{}", path.display());
        // And as one line, and wrapped at 76 as Kilo/Liberty.
        let one = cbr()
            .args(["encode", "--wrap", "0"])
            .arg(&path)
            .output()
            .unwrap();
        let one = String::from_utf8(one.stdout).unwrap();
        let compact: String = url.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(one, format!("{compact}\n"));
        let wrapped = cbr()
            .args(["encode", "--wrap", "76"])
            .arg(&path)
            .output()
            .unwrap();
        let wrapped = String::from_utf8(wrapped.stdout).unwrap();
        assert_eq!(wrapped.replace('\n', ""), compact);
        assert!(wrapped.lines().all(|l| l.len() <= 76));
    }
}

#[test]
fn decoded_record_json_re_encodes_byte_exactly() {
    for (stem, path) in renderings() {
        if !path.to_string_lossy().ends_with(".export.json") {
            continue;
        }
        let (url, _) = plain_decode(&path);
        let rec = cbr().args(["decode"]).arg(&path).output().unwrap();
        assert!(rec.status.success());
        let wrap = if url.contains('\n') { "76" } else { "0" };
        let enc = cbr()
            .args(["encode", "--wrap", wrap])
            .write_stdin(rec.stdout)
            .output()
            .unwrap();
        assert!(enc.status.success(), "{stem}");
        let got = String::from_utf8(enc.stdout).unwrap();
        assert_eq!(
            got.trim_end_matches('\n'),
            url.trim_end_matches('\n'),
            "{stem}"
        );
    }
}

const SEED_ID: &str = "96128a75-e143-4d8a-9b93-e246af8e6a7d";

#[test]
fn seed_2015_pastes_decode_to_the_articles_record() {
    for name in [
        "backup-export.txt",
        "metadata.txt",
        "backup-import-command.txt",
    ] {
        let got = decode_json(&fixtures().join("seed-2015").join(name));
        let r = &got["records"][0];
        assert_eq!(r["record"]["id"], SEED_ID, "{name}");
        assert_eq!(r["source"]["era"], "kilo", "{name}");
    }
}

#[test]
fn several_records_in_one_terminal_log_in_order() {
    let mut log = String::from("$ for b in $BACKUPS; do cinder backup-export $b; done\r\n");
    let stems = ["full-zlib", "legacy-liberty", "full-zstd"];
    for s in stems {
        let t = std::fs::read_to_string(
            fixtures().join(format!("cinder-29/records/{s}.cinderclient.txt")),
        )
        .unwrap();
        log.push_str(&t.replace('\n', "\r\n"));
        log.push_str("[root@controller ~]# \r\n");
    }
    let out = cbr()
        .args(["decode", "--field", "display_name"])
        .write_stdin(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<Value> = stems
        .iter()
        .map(|s| {
            let (_, rec) =
                plain_decode(&fixtures().join(format!("cinder-29/records/{s}.export.json")));
            rec.into_iter()
                .find(|(k, _)| k == "display_name")
                .unwrap()
                .1
        })
        .collect();
    let want: String = names
        .iter()
        .map(|v| match v {
            Value::String(s) => format!("{s}\n"),
            other => format!("{other}\n"),
        })
        .collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
}

/// Each bad input: exit 2, no panic, nothing on stdout, key words in the message.
#[test]
fn bad_inputs_are_refused_with_a_clear_message() {
    let good = plain_decode(&fixtures().join("cinder-29/records/full-zlib.export.json")).0;
    let stray = format!("{}*{}", &good[..40], &good[41..]);
    let not_json = base64::engine::general_purpose::STANDARD.encode(b"{\"hello world, not json");
    let not_utf8 =
        base64::engine::general_purpose::STANDARD.encode([b'{', b'"', 0xff, 0xfe, b'"', b'}']);
    let not_object = base64::engine::general_purpose::STANDARD.encode(b"[\"a\", \"b\"]");
    let table = std::fs::read_to_string(fixtures().join("cinder-29/records/full-zlib.osc.w80.txt"))
        .unwrap();
    let cut: String = table.lines().take(8).map(|l| format!("{l}\n")).collect();
    let elided =
        std::fs::read_to_string(fixtures().join("seed-2015/backup-list-elided.txt")).unwrap();
    let list = "+------+-----------+-----------+\n| ID   | Volume ID | Status    |\n+------+-----------+-----------+\n| 1234 | 5678      | available |\n+------+-----------+-----------+\n";
    let cmd = |u: &str| format!("cinder backup-import cinder.backup.drivers.nfs {u}\n");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("empty", String::new(), vec!["empty"]),
        ("blank", " \n\t\r\n".into(), vec!["empty"]),
        ("chatter", "hello\nthere\n".into(), vec!["no export record"]),
        (
            "stray",
            format!("junk\n{stray}\n"),
            vec!["stray character", "'*'", "line 2", "column 41"],
        ),
        ("not-utf8", cmd(&not_utf8), vec!["not UTF-8", "line 1"]),
        ("not-json", not_json, vec!["not JSON", "hello world"]),
        (
            "not-object",
            cmd(&not_object),
            vec!["not an object but an array"],
        ),
        ("json-array", "[1, 2, 3]\n".into(), vec!["no export record"]),
        (
            "json-not-record",
            "{\"a\": 1}\n".into(),
            vec!["line 1", "not an export"],
        ),
        ("elided", elided, vec!["elided", "lost data"]),
        ("cut-off", cut, vec!["cut off"]),
        (
            "backup-list",
            list.into(),
            vec!["backup-list", "not a backup export", "Volume ID"],
        ),
        (
            "unexpanded",
            "cinder backup-import cinder.backup.drivers.nfs \"$(tr -d '\\n' < url.txt)\"\n".into(),
            vec!["never expanded", "$(tr"],
        ),
    ];
    for (name, input, words) in cases {
        let out = cbr().arg("decode").write_stdin(input).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: printed something");
        assert!(!err.contains("panicked"), "{name}: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: {w:?} not in {err}");
        }
    }
}

#[test]
fn base64_of_a_json_array_says_it_is_not_an_object() {
    let arr = base64::engine::general_purpose::STANDARD.encode(b"[\"a\", 1]");
    let out = cbr()
        .args(["decode"])
        .write_stdin(format!(
            "cinder backup-import cinder.backup.drivers.nfs {arr}\n"
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an object but an array"));
}

/// Regression: tables pasted back to back (no line between) were read as
/// one table, losing every record but the first.
#[test]
fn adjacent_tables_without_a_blank_line_are_separate_records() {
    let mut log = String::new();
    for s in ["full-zlib", "incr1-zlib", "legacy-liberty"] {
        log.push_str(
            &std::fs::read_to_string(fixtures().join(format!("cinder-29/records/{s}.osc.w80.txt")))
                .unwrap(),
        );
    }
    let out = cbr()
        .args(["decode", "--field", "id"])
        .write_stdin(log)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
}
