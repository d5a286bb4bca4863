#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! docs/guide.md cannot go stale: every ```console block in it is run, in
//! order, in a scratch directory holding `share/` (a copy of the fixture
//! share), `seed-2015/` and `records/`, with `cbr` on PATH. A line starting
//! with `$ ` is a command (bash); the lines after it, up to the next
//! command or the end of the block, are its output (stdout then stderr).
//! In expected output, a line `...` matches any number of lines, `[..]`
//! any text within a line, and a last line `[exit: N]` the exit status
//! (default 0). `CBR_UPDATE_GUIDE=1` rewrites the outputs from a run.

mod common;
use common::*;
use std::path::Path;

struct Cmd {
    line: usize,
    cmd: String,
    expected: Vec<String>,
}

fn parse(text: &str) -> Vec<Cmd> {
    let mut out: Vec<Cmd> = Vec::new();
    let mut in_block = false;
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            in_block = !in_block && l.trim() == "```console";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(c) = l.strip_prefix("$ ") {
            out.push(Cmd {
                line: i + 1,
                cmd: c.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(last) = out.last_mut() {
            last.expected.push(l.to_string());
        }
    }
    out
}

fn line_matches(pat: &str, got: &str) -> bool {
    let parts: Vec<&str> = pat.split("[..]").collect();
    if parts.len() == 1 {
        return pat == got;
    }
    let mut rest = got;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            let Some(at) = rest.find(p) else { return false };
            rest = &rest[at + p.len()..];
        }
    }
    true
}

fn lines_match(pat: &[String], got: &[&str]) -> bool {
    match pat.split_first() {
        None => got.is_empty(),
        Some((p, rest)) if p == "..." => (0..=got.len()).any(|k| lines_match(rest, &got[k..])),
        Some((p, rest)) => {
            got.first().is_some_and(|g| line_matches(p, g)) && lines_match(rest, &got[1..])
        }
    }
}

#[test]
fn every_command_of_the_guide_runs_and_prints_what_the_guide_shows() {
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide.md");
    let text = std::fs::read_to_string(&guide).unwrap();
    let cmds = parse(&text);
    assert!(cmds.len() >= 10, "the guide runs {} commands", cmds.len());
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &fixtures().join("cinder-29/share"),
        &dir.path().join("share"),
    );
    copy_tree(&fixtures().join("seed-2015"), &dir.path().join("seed-2015"));
    copy_tree(&records_dir(), &dir.path().join("records"));
    let bin = assert_cmd::cargo::cargo_bin("cbr");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    let mut updated = text.clone();
    for c in &cmds {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&c.cmd)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("CBR_SHARE")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
        all.push_str(&String::from_utf8_lossy(&out.stderr));
        let mut got: Vec<&str> = all.lines().collect();
        while got.last().is_some_and(|l| l.trim().is_empty()) {
            got.pop();
        }
        let mut pat = c.expected.clone();
        while pat.last().is_some_and(|l| l.trim().is_empty()) {
            pat.pop();
        }
        let want_code = match pat.last().and_then(|l| l.strip_prefix("[exit: ")) {
            Some(n) => {
                let n = n.trim_end_matches(']').parse().unwrap_or(0);
                pat.pop();
                n
            }
            None => 0,
        };
        if code != want_code || !lines_match(&pat, &got) {
            failures.push(format!(
                "docs/guide.md:{}: $ {}\n--- expected (exit {want_code}):\n{}\n--- got (exit {code}):\n{}",
                c.line,
                c.cmd,
                pat.join("\n"),
                all
            ));
            if std::env::var_os("CBR_UPDATE_GUIDE").is_some()
                && !pat.iter().any(|l| l.contains("[..]") || l == "...")
            {
                let old = format!("$ {}\n{}", c.cmd, c.expected.join("\n"));
                let mut new = format!("$ {}\n{}", c.cmd, all.trim_end());
                if code != 0 {
                    new.push_str(&format!("\n[exit: {code}]"));
                }
                updated = updated.replacen(old.trim_end(), &new, 1);
            }
        }
    }
    if std::env::var_os("CBR_UPDATE_GUIDE").is_some() {
        std::fs::write(&guide, updated).unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn wildcards_match_as_documented() {
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&p(&["a", "...", "z"]), &["a", "b", "c", "z"]));
    assert!(lines_match(&p(&["a[..]c"]), &["abbbc"]));
    assert!(!lines_match(&p(&["a[..]c"]), &["abbbd"]));
    assert!(!lines_match(&p(&["a", "z"]), &["a", "b", "z"]));
}
