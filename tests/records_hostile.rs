#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! Hostile and corrupt record pastes: keys given twice, broken base64,
//! and the error messages they give.

mod common;

use base64::Engine;
use common::{cbr, records_dir};
use serde_json::Value;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The backup_url of a fixture export, as written in the file.
fn fixture_url(stem: &str) -> String {
    let path = records_dir().join(format!("{stem}.export.json"));
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["backup_url"].as_str().unwrap().to_string()
}

/// The JSON text inside a fixture's backup_url, byte for byte.
fn fixture_json(stem: &str) -> String {
    let compact: String = fixture_url(stem)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .unwrap(),
    )
    .unwrap()
}

/// full-zlib's record with `"status"` given twice and `metadata` holding
/// the key `owner` twice.
fn record_with_duplicate_keys() -> String {
    let json = fixture_json("full-zlib");
    assert!(json.contains("\"status\": \"available\", "));
    assert!(json.contains("\"metadata\": {}"));
    json.replacen(
        "\"status\": \"available\", ",
        "\"status\": \"available\", \"status\": \"error\", ",
        1,
    )
    .replacen(
        "\"metadata\": {}",
        "\"metadata\": {\"owner\": \"a\", \"owner\": \"b\"}",
        1,
    )
}

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = cbr().args(args).write_stdin(stdin).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn duplicate_key_is_a_lint_error_and_encode_refuses_it() {
    let json = record_with_duplicate_keys();
    let export = format!(
        "{{\"backup_service\": \"cinder.backup.drivers.nfs.NFSBackupDriver\", \"backup_url\": \"{}\"}}\n",
        b64(json.as_bytes())
    );
    // As base64 in an export, and as the decoded JSON pasted itself.
    for (name, input) in [("export", export), ("record-json", json.clone())] {
        let (code, out, err) = run(&["lint", "--json"], &input);
        assert_eq!(code, 1, "{name}: lint exit: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        let dups: Vec<&Value> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "duplicate-key")
            .collect();
        assert_eq!(dups.len(), 2, "{name}: {out}");
        assert!(dups.iter().all(|f| f["severity"] == "error"), "{name}");
        let messages: Vec<&str> = dups
            .iter()
            .map(|f| f["message"].as_str().unwrap())
            .collect();
        assert!(messages[0].contains("\"status\""), "{name}: {messages:?}");
        assert!(
            messages[1].contains("metadata.owner"),
            "{name}: {messages:?}"
        );
        assert!(
            dups.iter()
                .all(|f| f["backup_id"] == "a0f6583f-d913-426d-a8e2-d262262a433b"),
            "{name}"
        );

        for cmd in [
            vec!["encode"],
            vec!["encode", "--emit", "cinder"],
            vec![
                "rewrite",
                "--project-id",
                "bcae33bdf5b84dc9ab9ca6518a438561",
            ],
        ] {
            let (code, out, err) = run(&cmd, &input);
            assert_eq!(code, 2, "{name} {cmd:?}: {err}");
            assert!(out.is_empty(), "{name} {cmd:?} printed {out}");
            assert!(err.contains("\"status\""), "{name} {cmd:?}: {err}");
            assert!(!err.contains("panicked"), "{name} {cmd:?}: {err}");
        }

        // decode still prints the record, and warns about each key.
        let (code, out, err) = run(&["decode"], &input);
        assert_eq!(code, 0, "{name}: {err}");
        let rec: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(rec["status"], "error", "{name}: the last value is kept");
        assert!(err.contains("warning"), "{name}: {err}");
        assert!(err.contains("\"status\""), "{name}: {err}");
        assert!(err.contains("metadata.owner"), "{name}: {err}");
    }
}

#[test]
fn a_record_without_duplicate_keys_has_no_duplicate_key_finding() {
    let input = b64(fixture_json("full-zlib").as_bytes());
    let (code, out, err) = run(&["lint", "--json"], &input);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("duplicate-key"), "{out}");
    let (code, _, err) = run(&["decode"], &input);
    assert_eq!(code, 0);
    assert!(err.is_empty(), "{err}");
}

#[test]
fn duplicated_backup_url_in_an_export_json_is_refused() {
    let url = b64(fixture_json("full-zlib").as_bytes());
    let input = format!("{{\"backup_url\": \"{url}\", \"backup_url\": \"{url}\"}}\n");
    let (code, out, err) = run(&["decode"], &input);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("\"backup_url\""), "{err}");
}

/// No line of an error message repeats what an earlier line said.
#[test]
fn error_causes_are_printed_once_each() {
    let cmd = |u: &str| format!("cinder backup-import cinder.backup.drivers.nfs {u}\n");
    let cases = [
        ("not-json", cmd(&b64(b"{\"hello world, not json"))),
        ("not-object", cmd(&b64(b"[\"a\", \"b\"]"))),
        ("not-utf8", cmd(&b64(&[b'{', b'"', 0xff, 0xfe, b'"', b'}']))),
        ("padding", "eyJhIjoxfR\n".to_string()),
        ("bad-length", "eyJhIjoxfQ\nQUFBQ\n".to_string()),
        ("stray", format!("{}*\n", b64(b"{\"a\": 1, \"b\": 22}"))),
    ];
    for (name, input) in cases {
        let (code, out, err) = run(&["decode"], &input);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(out.is_empty(), "{name}");
        let lines: Vec<&str> = err
            .lines()
            .map(|l| {
                l.trim_start()
                    .trim_start_matches("cbr: error: ")
                    .trim_start_matches("caused by: ")
            })
            .collect();
        assert!(!lines.is_empty(), "{name}");
        for (i, l) in lines.iter().enumerate() {
            assert!(
                !lines[..i].iter().any(|before| before.contains(l)),
                "{name}: {l:?} repeats an earlier line:\n{err}"
            );
        }
    }
}

/// Replace the byte at 0-based (`line`, `column`) of `text` with `ch`.
fn poison(text: &str, line: usize, column: usize, ch: char) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                format!("{}{ch}{}", &l[..column], &l[column + 1..])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_names_place(name: &str, input: &str, ch: &str, line: usize, column: usize) {
    let (code, out, err) = run(&["decode"], input);
    assert_eq!(code, 2, "{name}: {err}");
    assert!(out.is_empty(), "{name}");
    let want = format!("stray character {ch} at line {line}, column {column}");
    assert!(err.contains(&want), "{name}: {want:?} not in {err}");
    assert!(!err.contains("Invalid symbol"), "{name}: {err}");
    assert!(!err.contains("offset"), "{name}: {err}");
}

#[test]
fn base64_errors_name_the_character_line_and_column() {
    // Bare base64 wrapped at 76 after a line of chatter: '=' on the third
    // base64 line (line 4 of the input), 12th column.
    let url = fixture_url("legacy-liberty");
    assert!(url.contains('\n'));
    let bare = format!("$ cat url.txt\n{url}");
    assert_names_place("bare", &poison(&bare, 3, 11, '='), "'='", 4, 12);
    // A character outside the alphabet, printed escaped.
    assert_names_place(
        "bare-control",
        &poison(&bare, 3, 11, '\u{1}'),
        "'\\u{1}'",
        4,
        12,
    );

    // A cinderclient table: the third row of the url's cell.
    let table =
        std::fs::read_to_string(records_dir().join("legacy-liberty.cinderclient.txt")).unwrap();
    let (row, text) = table
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("| backup_url") || l.starts_with("|      "))
        .nth(2)
        .unwrap();
    // The value cell starts after the second `| `.
    let cell = text[1..].find("| ").unwrap() + 3;
    assert_names_place(
        "table",
        &poison(&table, row, cell + 5, '='),
        "'='",
        row + 1,
        cell + 6,
    );

    // An export JSON whose url has `\n` escapes: the third piece, on the
    // url's line, after two escapes.
    let export = std::fs::read_to_string(records_dir().join("legacy-liberty.export.json")).unwrap();
    let (row, text) = export
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("\"backup_url\""))
        .unwrap();
    let third = text.match_indices("\\n").nth(1).unwrap().0 + 2;
    assert_names_place(
        "export-json",
        &poison(&export, row, third + 3, '='),
        "'='",
        row + 1,
        third + 4,
    );
}

#[test]
fn a_cut_base64_names_where_it_ends() {
    // One character short: the length is wrong; the message says where it ends.
    let url = fixture_url("full-zlib");
    let cut = &url[..url.len() - 1];
    let (code, _, err) = run(&["decode"], &format!("{cut}\n"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 1"), "{err}");
    assert!(!err.contains("Invalid"), "{err}");
}
