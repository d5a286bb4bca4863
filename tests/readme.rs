#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! README.md cannot go stale: every `cbr` command it prints — the lines of
//! its code blocks and the backticked one-liners (the sharding recipes) —
//! is run with its placeholders filled in, in a scratch directory holding
//! a copy of the fixture share and the files the commands name. GNU
//! parallel, Slurm and Kubernetes lines run their inner `cbr` command
//! (with `{}`, `$SLURM_ARRAY_TASK_ID`, `$JOB_COMPLETION_INDEX` set).
//!
//! A command passes when it exits 0 and prints no usage error (the
//! fixture share is sound: every check passes).

mod common;
use common::*;
use std::path::Path;

const ID: &str = "a0f6583f-d913-426d-a8e2-d262262a433b";
/// The fixture records' project, and one to map it to.
const SRC: &str = "bcae33bdf5b84dc9ab9ca6518a438561";
const DST: &str = "0123456789abcdef0123456789abcdef";
const USER: &str = "fedcba9876543210fedcba9876543210";

/// The `cbr` commands of README.md, in order: (line number, command as
/// printed).
fn commands(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            // A comment after the command: `  # …`.
            let cmd = l.split("  #").next().unwrap_or("").trim();
            let cmd = cmd
                .strip_prefix("cargo run --release --locked -- ")
                .map_or(cmd.to_string(), |rest| format!("cbr {rest}"));
            if cmd.starts_with("cbr ") {
                out.push((i + 1, cmd));
            }
            continue;
        }
        for (k, span) in l.split('`').enumerate() {
            if k % 2 == 1 && (span.starts_with("cbr ") || span.starts_with("parallel cbr ")) {
                out.push((i + 1, span.to_string()));
            }
        }
    }
    out
}

/// A printed command made runnable: placeholders replaced (whole words),
/// absolute example paths moved into the scratch directory.
fn fill(cmd: &str, dir: &Path) -> String {
    let share = dir.join("share");
    let share = share.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let cmd = cmd
        .replace("/var/lib/cinder/backup_mount/<md5>", share)
        .replace("--share /share", &format!("--share {share}"))
        .replace("/scratch/cbr/", &format!("{d}/scratch/cbr/"))
        .replace("/journals/", &format!("{d}/journals/"));
    cmd.split(' ')
        .map(|w| match w {
            "DIR" => share.to_string(),
            "ID" => ID.to_string(),
            "P" => DST.to_string(),
            "U" => USER.to_string(),
            "SRC=DST" => format!("{SRC}={DST}"),
            "SHELL" => "bash".to_string(),
            w => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The scratch directory: `share/` and every file the README names.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    copy_tree(&fixtures().join("cinder-29/share"), &p.join("share"));
    copy_tree(
        &fixtures().join("cinder-29/share"),
        &p.join("fixtures/cinder-29/share"),
    );
    let rec = |stem: &str| records_dir().join(format!("{stem}.cinderclient.txt"));
    std::fs::copy(rec("full-zlib"), p.join("export.txt")).unwrap();
    std::fs::create_dir(p.join("exports")).unwrap();
    // plan's --map and --target-backups (a target that holds no backup yet).
    std::fs::write(p.join("map.csv"), format!("source,target\n{SRC},{DST}\n")).unwrap();
    std::fs::write(p.join("target.json"), "[]\n").unwrap();
    for stem in ["full-zlib", "incr1-zlib", "incr2-zlib"] {
        std::fs::copy(rec(stem), p.join("exports").join(format!("{stem}.txt"))).unwrap();
    }
    let (code, record, err) = run(&["decode", rec("full-zlib").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(p.join("record.json"), record).unwrap();
    std::fs::create_dir_all(p.join("scratch/cbr")).unwrap();
    std::fs::create_dir_all(p.join("journals")).unwrap();
    dir
}

/// The shell runs of one printed command: GNU parallel's inner command
/// once per argument, Slurm's and Kubernetes' with their variables set.
fn runs(cmd: &str) -> Vec<(String, Vec<(&'static str, String)>)> {
    if let Some(rest) = cmd.strip_prefix("parallel ") {
        let (inner, args) = rest.split_once(" ::: ").expect("parallel … ::: args");
        return args
            .split(' ')
            .map(|a| (inner.replace("{}", a), vec![]))
            .collect();
    }
    let mut env = vec![];
    if cmd.contains("$SLURM_ARRAY_TASK_ID") {
        env.push(("SLURM_ARRAY_TASK_ID", "3".to_string()));
    }
    if cmd.contains("$JOB_COMPLETION_INDEX") || cmd.contains("JOB_COMPLETION_INDEX+1") {
        env.push(("JOB_COMPLETION_INDEX", "2".to_string()));
    }
    vec![(cmd.to_string(), env)]
}

#[test]
fn every_cbr_command_of_the_readme_runs_as_printed() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let mut cmds = commands(&text);
    assert!(cmds.len() >= 20, "the README shows {} commands", cmds.len());
    // Readers of journals (report, merge) run after the commands that
    // write them (the README names some of them first).
    cmds.sort_by_key(|(_, c)| c.starts_with("cbr journal "));
    let dir = scratch();
    let bin = assert_cmd::cargo::cargo_bin("cbr");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    for (line, printed) in &cmds {
        for (cmd, env) in runs(&fill(printed, dir.path())) {
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(&cmd)
                .current_dir(dir.path())
                .env("PATH", &path)
                .env_remove("CBR_SHARE")
                .env("HOME", dir.path())
                .env("XDG_STATE_HOME", dir.path().join("state"))
                .envs(env)
                .output()
                .unwrap();
            let code = out.status.code().unwrap_or(-1);
            let err = String::from_utf8_lossy(&out.stderr);
            let usage = err.contains("Usage:") || err.contains("unexpected argument");
            if code != 0 || usage {
                failures.push(format!(
                    "README.md:{line}: `{printed}`\n  ran: {cmd}\n  exit {code}\n{err}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn readme_commands_are_found_in_blocks_and_backticks() {
    let text = "```sh\ncbr ls --share DIR   # list\nbash x\n```\nand `cbr journal merge --into a b`, \
                `parallel cbr verify --shard {}/2 ::: 1 2`; `other`\n";
    let c: Vec<String> = commands(text).into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        c,
        [
            "cbr ls --share DIR",
            "cbr journal merge --into a b",
            "parallel cbr verify --shard {}/2 ::: 1 2"
        ]
    );
    let r = runs("parallel cbr verify --shard {}/2 ::: 1 2");
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].0, "cbr verify --shard 2/2");
}
