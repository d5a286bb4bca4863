#![allow(clippy::disallowed_methods)] // tests build and inspect shares directly
//! The verification journal (issue 14): resumable after kill -9, rolling
//! (--older-than), changed files re-checked, damaged journals refused,
//! shard journals merged.

mod common;
use common::*;
use rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn verify_j(share: &Path, journal: &Path, extra: &[&str]) -> (i32, Value) {
    let mut a = vec![
        "verify",
        "--deep",
        "--json",
        "--share",
        share.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    run_json(&a)
}

/// (backup, chunk, verdict) of every check in a journal.
fn checks(journal: &Path) -> Vec<(String, String, String)> {
    let c = Connection::open(journal).unwrap();
    let mut st = c
        .prepare("SELECT backup_id, chunk, verdict FROM checks ORDER BY backup_id, chunk")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn journal_run_over_the_fixture_share_records_every_chunk() {
    let (t, share) = share_copy();
    let j = t.path().join("state/journal.sqlite");
    let (code, v) = verify_j(&share, &j, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chunks_checked"], 53);
    assert_eq!(v["chunks_skipped"], 0);
    let c = checks(&j);
    assert_eq!(c.len(), 53);
    assert!(c.iter().all(|x| x.2 == "ok"));
    // A second run with --older-than skips them all, and says so.
    let (code, v) = verify_j(&share, &j, &["--older-than", "30d"]);
    assert_eq!(code, 0);
    assert_eq!(v["chunks_checked"], 0);
    assert_eq!(v["chunks_skipped"], 53);
    // ls and show tell the last verification.
    let (_, ls) = run_json(&[
        "ls",
        "--json",
        "--share",
        share.to_str().unwrap(),
        "--journal",
        j.to_str().unwrap(),
    ]);
    for b in ls["backups"].as_array().unwrap() {
        assert_eq!(b["last_verified"]["failed"], false, "{b}");
        assert!(b["last_verified"]["oldest_ok_at"].is_i64());
    }
    let (code, out, _) = run(&[
        "journal",
        "report",
        "--journal",
        j.to_str().unwrap(),
        "--share",
        share.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("9 fresh"), "{out}");
}

#[test]
fn older_than_skips_what_is_fresh_and_takes_what_is_stale() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    assert_eq!(verify_j(&share, &j, &[]).0, 0);
    let id = manifest()
        .into_iter()
        .find(|m| m.1 == "full-zlib")
        .unwrap()
        .0;
    let c = Connection::open(&j).unwrap();
    let aged = c
        .execute(
            "UPDATE checks SET checked_at = checked_at - 40 * 86400 WHERE backup_id = ?1",
            [&id],
        )
        .unwrap();
    drop(c);
    assert_eq!(aged, 16);
    let (code, v) = verify_j(&share, &j, &["--older-than", "30d"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chunks_checked"], 16);
    assert_eq!(v["chunks_skipped"], 37);
    let (code, out, _) = run(&["journal", "report", "--journal", j.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_chunk_whose_file_changed_is_checked_again() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    assert_eq!(verify_j(&share, &j, &[]).0, 0);
    let id = manifest()
        .into_iter()
        .find(|m| m.1 == "full-bz2")
        .unwrap()
        .0;
    let chunk = find_file(&share, &id, "-00001");
    // Same bytes, new file (new inode and mtime): not the file proven.
    let tmp = chunk.with_extension("tmp");
    std::fs::copy(&chunk, &tmp).unwrap();
    std::fs::rename(&tmp, &chunk).unwrap();
    let (code, v) = verify_j(&share, &j, &["--older-than", "30d"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chunks_checked"], 1, "{v}");
}

#[test]
fn a_damaged_journal_is_an_error_naming_it_not_a_restart() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    assert_eq!(verify_j(&share, &j, &[]).0, 0);
    // Garble the SQLite header.
    let mut b = std::fs::read(&j).unwrap();
    for x in b.iter_mut().take(64) {
        *x = b'#';
    }
    std::fs::write(&j, &b).unwrap();
    let (code, out, err) = run(&[
        "verify",
        "--deep",
        "--share",
        share.to_str().unwrap(),
        "--journal",
        j.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.is_empty());
    assert!(err.contains(j.to_str().unwrap()), "{err}");
    assert!(err.contains("not a cbr journal"), "{err}");
    // Another program's SQLite database is not a journal either.
    let other = t.path().join("other.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE x(a); INSERT INTO x VALUES (1);")
        .unwrap();
    let (code, _, err) = run(&[
        "verify",
        "--deep",
        "--share",
        share.to_str().unwrap(),
        "--journal",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a cbr journal"), "{err}");
}

#[test]
fn merged_shard_journals_equal_one_full_journal() {
    let (t, share) = share_copy();
    let (a, b, full, merged) = (
        t.path().join("a.sqlite"),
        t.path().join("b.sqlite"),
        t.path().join("full.sqlite"),
        t.path().join("merged.sqlite"),
    );
    assert_eq!(verify_j(&share, &a, &["--shard", "1/2"]).0, 0);
    assert_eq!(verify_j(&share, &b, &["--shard", "2/2"]).0, 0);
    assert_eq!(verify_j(&share, &full, &[]).0, 0);
    let (code, _, err) = run(&[
        "journal",
        "merge",
        "--into",
        merged.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (ca, cb) = (checks(&a), checks(&b));
    assert!(!ca.is_empty() && !cb.is_empty(), "both shards did work");
    let m: BTreeSet<_> = checks(&merged).into_iter().collect();
    let f: BTreeSet<_> = checks(&full).into_iter().collect();
    assert_eq!(m, f);
    assert_eq!(checks(&merged).len(), 53);
}

/// A share slow enough to kill part-way: 600 chunks of 64 KiB of
/// incompressible data in bz2.
fn slow_share(root: &Path) {
    use cbr::synth::{SynthBackup, uuid_from, write_backup};
    for k in 0..2u64 {
        let b = SynthBackup {
            id: uuid_from(k, 99),
            volume_id: uuid_from(k, 98),
            container: None,
            legacy_prefix: false,
            timestamp: format!("2026112500000{k}"),
            name: None,
            description: None,
            size: 300 * 65536,
            object_size: 65536,
            block: 32768,
            compression: "bz2".into(),
            parent: None,
        };
        write_backup(root, &b, &mut |off, buf| {
            let mut x = off | 1;
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
        })
        .unwrap();
    }
}

#[test]
fn a_run_killed_part_way_and_resumed_checks_every_chunk_exactly_once() {
    let t = tempfile::tempdir().unwrap();
    let share = t.path().join("share");
    slow_share(&share);
    let j = t.path().join("j.sqlite");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("cbr"))
        .args(["verify", "--deep", "--jobs", "1", "--share"])
        .arg(&share)
        .arg("--journal")
        .arg(&j)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a couple of batches are in, then kill -9.
    let start = Instant::now();
    loop {
        let n: i64 = Connection::open(&j)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM checks", [], |r| r.get(0)))
            .unwrap_or(0);
        if n >= 40 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill: make it slower"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let first = checks(&j).len();
    assert!(first < 600, "{first}");
    let (code, v) = verify_j(&share, &j, &["--resume"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chunks_skipped"].as_u64().unwrap() as usize, first);
    // Every chunk exactly once, counted from the journal, in one run.
    let c = Connection::open(&j).unwrap();
    let (rows, distinct, runs): (i64, i64, i64) = c
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT backup_id || '/' || chunk), COUNT(DISTINCT run) FROM checks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((rows, distinct, runs), (600, 600, 1));
    let finished: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE finished IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(finished, 1);
}

#[test]
fn budget_and_max_bytes_stop_cleanly_and_the_next_slice_goes_on() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    let (code, v) = verify_j(&share, &j, &["--max-bytes", "1", "--jobs", "1"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chunks_checked"], 1);
    assert_eq!(v["chunks_deferred"], 52);
    // The next night: what is fresh is skipped, the rest is taken.
    let (code, v) = verify_j(&share, &j, &["--older-than", "30d"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chunks_skipped"], 1);
    assert_eq!(v["chunks_checked"], 52);
}

#[test]
fn merging_twice_changes_nothing_and_a_missing_or_self_input_is_refused() {
    let (t, share) = share_copy();
    let (a, m) = (t.path().join("a.sqlite"), t.path().join("m.sqlite"));
    assert_eq!(verify_j(&share, &a, &[]).0, 0);
    for _ in 0..2 {
        let (code, _, err) = run(&[
            "journal",
            "merge",
            "--into",
            m.to_str().unwrap(),
            a.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(checks(&m).len(), 53);
    }
    let typo = t.path().join("typo/shard-9.sqlite");
    let (code, _, err) = run(&[
        "journal",
        "merge",
        "--into",
        m.to_str().unwrap(),
        typo.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!typo.exists() && !typo.parent().unwrap().exists());
    let (code, _, _) = run(&[
        "journal",
        "merge",
        "--into",
        m.to_str().unwrap(),
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(checks(&m).len(), 53);
}
