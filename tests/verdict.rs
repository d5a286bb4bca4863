#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! Issue 22: verdicts that say what Cinder 29 will really do, findings that
//! name their backup, batches everywhere, `--layout keep` for record JSON,
//! scrub metrics for Prometheus, packaging in view.

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const FULL: &str = "a0f6583f-d913-426d-a8e2-d262262a433b";
const INCR1: &str = "240eb01b-43db-412c-88fa-80f724cb2c2c";
const BZ2: &str = "daa0e87d-2b85-42ab-a96f-9fcdd67c2fc3";

fn export(stem: &str) -> PathBuf {
    records_dir().join(format!("{stem}.export.json"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Chunk `n` of backup `id`: its bytes changed (first byte of its data
/// flipped) and zlib-compressed again, so it still decompresses.
fn recompress_changed(share: &Path, id: &str, n: u32) {
    let p = find_file(share, id, &format!("-{n:05}"));
    let mut data = Vec::new();
    flate2::read::ZlibDecoder::new(&std::fs::read(&p).unwrap()[..])
        .read_to_end(&mut data)
        .unwrap();
    data[0] ^= 0x5a;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&data).unwrap();
    std::fs::write(&p, z.finish().unwrap()).unwrap();
}

/// Chunk `n` of backup `id` cut to half its bytes: it no longer decompresses.
fn truncate_chunk(share: &Path, id: &str, n: u32) {
    let p = find_file(share, id, &format!("-{n:05}"));
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
}

fn check(share: &Path, extra: &[&str], inputs: &[&Path]) -> (i32, String, String) {
    let mut args = vec!["check", "--share", s(share)];
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(|p| s(p)));
    run(&args)
}

#[test]
fn deep_check_of_a_changed_chunk_that_decompresses_says_cinder_restores_it_corrupted() {
    let (_t, share) = share_copy();
    recompress_changed(&share, FULL, 1);
    let (code, out, err) = check(&share, &["--deep", "-q"], &[&export("full-zlib")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "verdict: Cinder would restore this without an error and write corrupted data: do not import it as it is"
        ),
        "{out}"
    );
    assert!(!out.contains("will fail"), "{out}");
    // What to do: another copy of the chunk, a new backup, or the loss of its bytes.
    assert!(
        out.contains("to do: put back a good copy of chunk"),
        "{out}"
    );
    assert!(
        out.contains("take a new backup of the volume on the source"),
        "{out}"
    );
    assert!(out.contains("accept the loss of volume bytes 0.."), "{out}");
    let (code, v) = run_json(&[
        "check",
        "--deep",
        "-q",
        "--json",
        "--share",
        s(&share),
        s(&export("full-zlib")),
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "restores-corrupted", "{v}");
    assert_eq!(v["data_read"], true, "{v}");
    assert_eq!(v["ok"], false);
}

#[test]
fn deep_check_of_a_chunk_that_does_not_decompress_says_will_fail() {
    let (_t, share) = share_copy();
    truncate_chunk(&share, FULL, 2);
    let (code, v) = run_json(&[
        "check",
        "--deep",
        "-q",
        "--json",
        "--share",
        s(&share),
        s(&export("full-zlib")),
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "will-fail", "{v}");
    let advice = v["advice"].to_string();
    assert!(advice.contains("-00002 (volume bytes"), "{advice}");
    let (_, out, _) = check(&share, &["--deep", "-q"], &[&export("full-zlib")]);
    assert!(out.contains("verdict: will fail because chunk"), "{out}");
}

#[test]
fn an_empty_bz2_chunk_restores_corrupted_an_empty_zlib_chunk_fails() {
    // Python: bz2.decompress(b'') is b'' (nothing written), zlib raises.
    let (_t, share) = share_copy();
    std::fs::write(find_file(&share, BZ2, "-00001"), b"").unwrap();
    std::fs::write(find_file(&share, FULL, "-00003"), b"").unwrap();
    for (stem, want) in [
        ("full-bz2", "restores-corrupted"),
        ("full-zlib", "will-fail"),
    ] {
        let (_, v) = run_json(&["check", "--json", "--share", s(&share), s(&export(stem))]);
        assert_eq!(v["verdict"], want, "{stem}: {v}");
    }
}

#[test]
fn check_without_deep_says_it_read_no_data() {
    let (_t, share) = share_copy();
    recompress_changed(&share, FULL, 1);
    let (code, out, err) = check(&share, &[], &[&export("full-zlib")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("verdict: ready to import; structure checked; data not read (add --deep to read every chunk)"),
        "{out}"
    );
    let (_, v) = run_json(&[
        "check",
        "--json",
        "--share",
        s(&share),
        s(&export("full-zlib")),
    ]);
    assert_eq!(v["verdict"], "ready");
    assert_eq!(v["data_read"], false);
    // Deep on an intact copy: no such caveat.
    let (_t2, good) = share_copy();
    let (code, out, _) = check(&good, &["--deep", "-q"], &[&export("full-zlib")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: ready to import\n"), "{out}");
    assert!(!out.contains("data not read"), "{out}");
}

#[test]
fn check_takes_many_inputs_and_directories() {
    let (_t, share) = share_copy();
    let (code, out, err) = check(&share, &[], &[&export("full-zlib"), &export("incr1-zlib")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("backup {FULL} (line ")), "{out}");
    assert!(out.contains(&format!("backup {INCR1} (line ")), "{out}");
    assert!(out.contains("full-zlib.export.json)"), "{out}");
    assert!(out.contains("2 of 2 record(s) ready to import"), "{out}");
    // A finding line names the record's backup and where it was read.
    assert!(
        out.contains(&format!(
            "backup {INCR1} (line 3 of {}): incremental of {FULL}",
            export("incr1-zlib").display()
        )),
        "{out}"
    );
    // A directory: every file in it, by name.
    let dir = tempfile::tempdir().unwrap();
    for stem in ["incr1-zlib", "full-zlib"] {
        std::fs::copy(export(stem), dir.path().join(format!("{stem}.json"))).unwrap();
    }
    let (code, v) = run_json(&["check", "--json", "--share", s(&share), s(dir.path())]);
    assert_eq!(code, 0, "{v}");
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backup_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [FULL, INCR1], "sorted by file name");
}

#[test]
fn rewrite_takes_many_inputs_and_directories_one_output_per_record() {
    let dir = tempfile::tempdir().unwrap();
    for stem in ["full-zlib", "incr1-zlib", "full-bz2"] {
        std::fs::copy(export(stem), dir.path().join(format!("{stem}.json"))).unwrap();
    }
    let p = "0123456789abcdef0123456789abcdef";
    let (code, out, err) = run(&[
        "rewrite",
        "-q",
        "--project-id",
        p,
        s(&export("full-zlib")),
        s(dir.path()),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    let mut c = cbr();
    let got = c
        .args(["decode", "--field", "project_id"])
        .write_stdin(out)
        .output()
        .unwrap();
    let got = String::from_utf8(got.stdout).unwrap();
    assert_eq!(got.lines().collect::<Vec<_>>(), [p; 4]);
}

#[test]
fn lint_lines_name_the_backup_and_where_its_record_was_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(export("incr1-zlib"), dir.path().join("b.json")).unwrap();
    std::fs::copy(export("full-bz2"), dir.path().join("a.json")).unwrap();
    let (code, out, err) = run(&["lint", s(dir.path())]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("parent-must-be-imported"))
        .unwrap_or_else(|| panic!("{out}"));
    let b = dir.path().join("b.json");
    assert!(
        line.contains(&format!(
            "backup {INCR1} (line 3 of {}): incremental of {FULL}",
            b.display()
        )),
        "{line}"
    );
}

#[test]
fn verify_failed_line_names_the_affected_backups() {
    let (_t, share) = share_copy();
    truncate_chunk(&share, FULL, 2);
    truncate_chunk(&share, BZ2, 1);
    let (code, out, err) = run(&["verify", "--deep", "-q", "--share", s(&share)]);
    assert_eq!(code, 1, "{out}{err}");
    let failed = out
        .lines()
        .find(|l| l.starts_with("FAILED:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(failed.contains(FULL), "{failed}");
    assert!(failed.contains(BZ2), "{failed}");
    // The chain of the full (its incrementals) is damaged with it.
    assert!(failed.contains("backup(s): "), "{failed}");
    // Every finding line names its backup.
    for l in out.lines().filter(|l| l.contains("decompress-failed")) {
        assert!(l.contains("backup "), "{l}");
    }
}

#[test]
fn verify_failed_line_names_five_backups_and_counts_the_rest() {
    let (_t, share) = share_copy();
    // Damage every backup: a chunk-named file its metadata does not list.
    let metas: Vec<PathBuf> = walkdir::WalkDir::new(&share)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_metadata"))
        .map(|e| e.into_path())
        .collect();
    assert!(metas.len() > 5);
    for m in &metas {
        let n = m
            .to_string_lossy()
            .trim_end_matches("_metadata")
            .to_string();
        std::fs::write(format!("{n}-00099"), b"x").unwrap();
    }
    let (code, out, _) = run(&["verify", "-q", "--share", s(&share)]);
    assert_eq!(code, 1, "{out}");
    let failed = out.lines().find(|l| l.starts_with("FAILED:")).unwrap();
    assert!(
        failed.contains(&format!("and {} more", metas.len() - 5)),
        "{failed}"
    );
}

#[test]
fn layout_keep_keeps_a_compact_record_json_input_byte_for_byte() {
    // A record as another tool writes it: compact, given as JSON.
    let (_, pretty, _) = run(&["decode", s(&export("full-zlib"))]);
    let rec: Value = serde_json::from_str(&pretty).unwrap();
    let compact = serde_json::to_string(&rec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rec.json");
    std::fs::write(&f, &compact).unwrap();
    let json_of = |url: &str| {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(url.trim())
                .unwrap(),
        )
        .unwrap()
    };
    let (code, url, err) = run(&["encode", s(&f)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&url), compact);
    // An edit changes only the bytes it must.
    let (code, url, err) = run(&["rewrite", "-q", "--set", "display_name=x", s(&f)]);
    assert_eq!(code, 0, "{err}");
    let old = format!("\"display_name\":{}", rec["display_name"]);
    assert_eq!(
        json_of(&url),
        compact.replace(&old, "\"display_name\":\"x\"")
    );
    // decode's own pretty output still re-encodes to Cinder's bytes.
    let (_, want, _) = run(&["encode", s(&export("full-zlib"))]);
    let got = cbr().arg("encode").write_stdin(pretty).output().unwrap();
    assert_eq!(String::from_utf8(got.stdout).unwrap(), want);
}

/// A python with prometheus_client: $CBR_PROM_PYTHON, else a venv in
/// target/prom-venv made here (None, and the test says SKIPPED, when pip
/// cannot reach the registry).
fn prometheus_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CBR_PROM_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/prom-venv");
    let py = venv.join("bin/python");
    let has = |py: &Path| {
        std::process::Command::new(py)
            .args(["-c", "import prometheus_client.parser"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has(&py) {
        return Some(py);
    }
    let made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "prometheus-client"])
            .status()
            .is_ok_and(|s| s.success());
    (made && has(&py)).then_some(py)
}

#[test]
fn journal_report_openmetrics_parses_with_prometheus_client() {
    let (t, share) = share_copy();
    let j = t.path().join("scrub.sqlite");
    recompress_changed(&share, FULL, 1);
    let (code, _, err) = run(&[
        "verify",
        "--deep",
        "-q",
        "--share",
        s(&share),
        "--journal",
        s(&j),
        INCR1,
    ]);
    assert_eq!(code, 1, "{err}");
    let (code, text, err) = run(&[
        "journal",
        "report",
        "--journal",
        s(&j),
        "--share",
        s(&share),
        "--format",
        "openmetrics",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    for name in [
        "cbr_backup_last_proven_timestamp_seconds",
        "cbr_backup_failed",
        "cbr_backup_chunks_proven",
        "cbr_backup_chunks",
        "cbr_share_backups_overdue",
        "cbr_share_backups_never_proven",
        "cbr_share_last_run_timestamp_seconds",
        "cbr_share_last_run_bytes",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} gauge\n")),
            "{name}: {text}"
        );
    }
    let Some(py) = prometheus_python() else {
        eprintln!(
            "SKIPPED: the metrics were not parsed: no prometheus_client (pip could not reach the registry)"
        );
        return;
    };
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(out))
"#;
    let o = std::process::Command::new(py)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let value = |name: &str, id: &str| -> f64 {
        v[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {v}"))
            .iter()
            .find(|s| s[0]["backup_id"] == id)
            .unwrap_or_else(|| panic!("{name} {id}: {v}"))[1]
            .as_f64()
            .unwrap()
    };
    assert_eq!(value("cbr_backup_failed", FULL), 1.0);
    assert_eq!(value("cbr_backup_failed", INCR1), 0.0);
    assert_eq!(value("cbr_backup_chunks", FULL), 16.0);
    assert_eq!(value("cbr_backup_chunks_proven", FULL), 15.0);
    assert!(value("cbr_backup_last_proven_timestamp_seconds", INCR1) > 1.7e9);
    let share_value = |name: &str| v[name][0][1].as_f64().unwrap();
    // 9 backups: the chain of incr1 (2) checked, 7 never.
    assert_eq!(share_value("cbr_share_backups_never_proven"), 7.0);
    assert!(share_value("cbr_share_last_run_bytes") > 0.0);
    assert!(share_value("cbr_share_last_run_timestamp_seconds") > 1.7e9);
}

#[test]
fn man_synopses_show_repeated_inputs_and_th_carries_version_and_date() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for page in [
        "cbr-check.1",
        "cbr-rewrite.1",
        "cbr-decode.1",
        "cbr-lint.1",
        "cbr-plan.1",
    ] {
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(text.contains("[\\fIINPUT\\fR]..."), "{page}");
    }
    let verify = std::fs::read_to_string(man.join("cbr-verify.1")).unwrap();
    assert!(verify.contains("[\\fIID\\fR]..."));
    let check = std::fs::read_to_string(man.join("cbr-check.1")).unwrap();
    let th = check.lines().find(|l| l.starts_with(".TH ")).unwrap();
    assert!(th.contains(env!("CARGO_PKG_VERSION")), "{th}");
    assert!(
        th.split(['"', ' '])
            .any(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-'),
        "no YYYY-MM-DD date in {th}"
    );
}

#[test]
fn packages_carry_the_format_doc_and_the_readme_says_how_to_build_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let deb = cargo.split("[package.metadata.deb]").nth(1).unwrap();
    let rpm = cargo
        .split("[package.metadata.generate-rpm]")
        .nth(1)
        .unwrap();
    let deb = deb.split("[package.metadata.generate-rpm]").next().unwrap();
    // Every doc cli.md or the guide refers to is packaged, and exists.
    for doc in [
        "docs/cinder-backup-format.md",
        "docs/cli.md",
        "docs/guide.md",
    ] {
        assert!(root.join(doc).is_file(), "{doc}");
        assert!(deb.contains(&format!("\"{doc}\"")), "deb lacks {doc}");
        assert!(rpm.contains(&format!("\"{doc}\"")), "rpm lacks {doc}");
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("scripts/package.sh"));
    assert!(readme.contains("dpkg -i"));
}
