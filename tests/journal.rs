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
    // Stopped by its budget: not everything proven, so not "ok" (exit 1).
    let (code, v) = verify_j(&share, &j, &["--max-bytes", "1", "--jobs", "1"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["ok"], false);
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

// ---- A journal that vouches only for what it proved (issue 20) ----

fn id_of(stem: &str) -> String {
    manifest().into_iter().find(|m| m.1 == stem).unwrap().0
}

/// The `journal report --json` row of backup `id`.
fn report_row(journal: &Path, share: &Path, id: &str) -> (i32, Value) {
    let (code, v) = run_json(&[
        "journal",
        "report",
        "--json",
        "--journal",
        journal.to_str().unwrap(),
        "--share",
        share.to_str().unwrap(),
    ]);
    let row = v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backup_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {v}"));
    (code, row)
}

#[test]
fn a_changed_sha256file_gets_its_chunks_checked_again_and_the_backup_is_not_fresh() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    assert_eq!(verify_j(&share, &j, &[]).0, 0);
    let id = id_of("full-zlib");
    let sha = find_file(&share, &id, "_sha256file");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&sha).unwrap()).unwrap();
    let e = v["sha256s"][0].as_str().unwrap().to_string();
    let flipped = if e.starts_with('0') { "1" } else { "0" };
    v["sha256s"][0] = Value::String(format!("{flipped}{}", &e[1..]));
    std::fs::write(&sha, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    // The report does not call it fresh: its proofs were against another file.
    let (code, row) = report_row(&j, &share, &id);
    assert_eq!(code, 1, "{row}");
    assert_ne!(row["status"], "fresh", "{row}");
    // The rolling scrub reads its chunks again and finds what verify finds.
    let (code, v) = verify_j(&share, &j, &["--older-than", "30d"]);
    assert_eq!(code, 1, "{v}");
    assert!(
        codes(&v, "error").contains(&"sha256-mismatch".to_string()),
        "{v}"
    );
    assert_eq!(v["chunks_checked"], 16, "{v}");
}

#[test]
fn a_chunk_swapped_between_look_and_read_is_recorded_as_the_file_read() {
    use cbr::share::{ChunkObject, Share, scan::index};
    use cbr::verify::{ChunkOutcome, FileId, VerifyHooks, VerifyOptions, verify_with};
    use std::os::unix::fs::MetadataExt;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (t, share) = share_copy();
    let id = id_of("full-zlib");
    let chunk = find_file(&share, &id, "-00001");
    let good = chunk.with_file_name("good-copy");
    std::fs::copy(&chunk, &good).unwrap();
    let good_ino = std::fs::metadata(&good).unwrap().ino();
    // The file at the chunk's name is bad, until the swap.
    let mut bad = std::fs::read(&chunk).unwrap();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&chunk, &bad).unwrap();
    let keep_bad = t.path().join("bad-copy");
    std::fs::hard_link(&chunk, &keep_bad).unwrap();
    let s = Share::open(&share).unwrap();
    let found = index(&s, Default::default()).unwrap();
    let b = found.load(&s, found.find(&id).unwrap()).unwrap();
    let b = &b;
    let swapped = AtomicBool::new(false);
    let skip = |_: &cbr::share::BackupEntry, o: &ChunkObject, _: Option<FileId>| {
        if o.name.ends_with("-00001") && !swapped.swap(true, Ordering::SeqCst) {
            std::fs::rename(&good, &chunk).unwrap();
        }
        false
    };
    let recorded: Mutex<Vec<(String, Option<FileId>, bool)>> = Mutex::new(Vec::new());
    let done = |c: &ChunkOutcome<'_>| {
        recorded
            .lock()
            .unwrap()
            .push((c.object.name.clone(), c.file, !c.findings.has_errors()))
    };
    let hooks = VerifyHooks {
        skip: Some(&skip),
        stop: None,
        done: Some(&done),
    };
    let opts = VerifyOptions {
        deep: true,
        jobs: 1,
        sample: None,
        md5: false,
    };
    verify_with(
        &s,
        &found.on(&s),
        &[b],
        &opts,
        &cbr::progress::NoProgress,
        &hooks,
    );
    assert!(swapped.load(Ordering::SeqCst));
    let rec = recorded.into_inner().unwrap();
    let (_, file, ok) = rec.iter().find(|r| r.0.ends_with("-00001")).unwrap();
    assert!(*ok, "the good file was the one read");
    assert_eq!(
        file.map(|f| f.inode),
        Some(good_ino),
        "the proof is keyed to the file that was read, not to the one looked at before"
    );
}

#[test]
fn a_backup_with_some_of_its_chunks_proven_is_partial_not_fresh() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    let id = id_of("full-zlib");
    let (_, v) = verify_j(&share, &j, &["--max-bytes", "1", "--jobs", "1", &id]);
    assert_eq!(v["chunks_checked"], 1, "{v}");
    let (code, row) = report_row(&j, &share, &id);
    assert_eq!(code, 1, "{row}");
    assert_eq!(row["status"], "partial", "{row}");
    assert_eq!(row["chunks"], 16, "{row}");
    assert_eq!(row["chunks_proven"], 1, "{row}");
    let (_, out, _) = run(&[
        "journal",
        "report",
        "--journal",
        j.to_str().unwrap(),
        "--share",
        share.to_str().unwrap(),
    ]);
    assert!(out.contains("PARTIAL") && out.contains("1 of 16"), "{out}");
}

#[test]
fn rows_are_committed_on_time_while_a_slow_chunk_runs() {
    use cbr::share::{Share, scan::index};
    use cbr::verify::{ChunkOutcome, FileId};
    let (t, share) = share_copy();
    let s = Share::open(&share).unwrap();
    let found = index(&s, Default::default()).unwrap();
    let b = found
        .load(&s, found.find(&id_of("full-zlib")).unwrap())
        .unwrap();
    let b = &b;
    let j = t.path().join("j.sqlite");
    let journal = cbr::journal::Journal::open(&j, "s", None, false).unwrap();
    let none = cbr::findings::Findings::new();
    for o in b.metadata.objects.iter().take(3) {
        journal
            .record(&ChunkOutcome {
                backup: b,
                object: o,
                file: Some(FileId {
                    size: 1,
                    mtime_ns: 1,
                    inode: 1,
                }),
                findings: &none,
                proven: Default::default(),
                stored_bytes: 0,
            })
            .unwrap();
    }
    // The next chunk takes long: what was proven before must not wait for
    // it. The committer thread writes them on its own (every second); no
    // further call is made here. Polled, not timed: a loaded machine may be
    // slow, but rows that only a later record() or drop() would write never
    // appear, and the test fails after 30 s.
    let count = || -> i64 {
        Connection::open(&j)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM checks", [], |r| r.get(0))
            .unwrap()
    };
    let start = std::time::Instant::now();
    let mut n = count();
    while n < 3 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
        n = count();
    }
    assert_eq!(
        n, 3,
        "rows proven before a slow chunk still not committed after 30 s"
    );
    drop(journal);
}

#[test]
fn resume_after_a_budget_stop_continues_where_it_stopped() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    let (_, v) = verify_j(&share, &j, &["--max-bytes", "1", "--jobs", "1"]);
    assert_eq!(v["chunks_checked"], 1, "{v}");
    let (code, v) = verify_j(&share, &j, &["--resume"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chunks_skipped"], 1, "{v}");
    assert_eq!(v["chunks_checked"], 52, "{v}");
}

#[test]
fn windows_that_would_wrap_are_refused() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    let s = share.to_str().unwrap();
    let js = j.to_str().unwrap();
    for w in [
        "9223372036854775808",
        "106751991167301d",
        "99999999999999999999",
    ] {
        for a in [
            vec![
                "verify",
                "--deep",
                "--share",
                s,
                "--journal",
                js,
                "--older-than",
                w,
            ],
            vec!["verify", "--deep", "--share", s, "--budget", w],
            vec!["journal", "report", "--journal", js, "--older-than", w],
        ] {
            let (code, out, err) = run(&a);
            assert_eq!(code, 2, "{a:?}: {out}{err}");
            assert!(out.is_empty());
            assert!(err.contains(w) && err.contains("too large"), "{a:?}: {err}");
        }
    }
}

#[test]
fn a_budget_that_reads_nothing_on_a_corrupt_share_does_not_say_ok() {
    let (_t, share) = share_copy();
    let chunk = find_file(&share, &id_of("full-zlib"), "-00003");
    let mut b = std::fs::read(&chunk).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&chunk, &b).unwrap();
    let (code, out, _) = run(&[
        "verify",
        "--deep",
        "--json",
        "--share",
        share.to_str().unwrap(),
        "--budget",
        "0s",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["complete"], false, "{v}");
    assert_eq!(v["chunks_deferred"], 53, "{v}");
    assert_eq!(code, 1, "{v}");
    let (_, out, _) = run(&[
        "verify",
        "--deep",
        "--share",
        share.to_str().unwrap(),
        "--budget",
        "0s",
    ]);
    assert!(
        out.contains("INCOMPLETE") && out.contains("53 chunk(s) not read"),
        "{out}"
    );
}

#[test]
fn the_readme_scrub_lines_run_with_journal_before_another_flag() {
    let (t, share) = share_copy();
    let state = t.path().join("state");
    let s = share.to_str().unwrap();
    for a in [
        vec![
            "verify",
            "--deep",
            "--share",
            s,
            "--journal",
            "--older-than",
            "30d",
            "--budget",
            "6h",
        ],
        vec!["verify", "--deep", "--share", s, "--journal", "--resume"],
        vec!["journal", "report", "--share", s, "--older-than", "30d"],
    ] {
        let out = cbr()
            .env("XDG_STATE_HOME", &state)
            .args(&a)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let proven: BTreeSet<(String, String)> = checks(&state.join("cbr/journal.sqlite"))
        .into_iter()
        .map(|c| (c.0, c.1))
        .collect();
    assert_eq!(proven.len(), 53);
}

#[test]
fn journal_readers_leave_the_journal_as_it_is() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    assert_eq!(verify_j(&share, &j, &[]).0, 0);
    let c = Connection::open(&j).unwrap();
    c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(c);
    let before = std::fs::read(&j).unwrap();
    let (s, js) = (share.to_str().unwrap(), j.to_str().unwrap());
    let m = t.path().join("m.sqlite");
    let id = id_of("full-zlib");
    for a in [
        vec!["ls", "--share", s, "--journal", js],
        vec!["show", "--share", s, "--journal", js, &id],
        vec!["journal", "report", "--journal", js],
        vec!["journal", "report", "--share", s, "--journal", js],
        vec!["journal", "merge", "--into", m.to_str().unwrap(), js],
    ] {
        let (code, _, err) = run(&a);
        assert!(code == 0 || code == 1, "{a:?}: {err}");
        assert!(
            std::fs::read(&j).unwrap() == before,
            "{a:?} changed the journal"
        );
        for x in ["-wal", "-shm"] {
            let p = format!("{js}{x}");
            assert!(!Path::new(&p).exists(), "{a:?} left {p}");
        }
    }
}

#[test]
fn journal_readers_refuse_a_wal_without_its_shm_and_create_none() {
    let (t, share) = share_copy();
    let j = t.path().join("j.sqlite");
    assert_eq!(verify_j(&share, &j, &[]).0, 0);
    // A copy taken while a writer has it open: the journal and its -wal,
    // without the -shm (as `scp journal.sqlite journal.sqlite-wal` makes).
    let c = Connection::open(&j).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    c.execute("UPDATE runs SET finished = COALESCE(finished, 0) + 1", [])
        .unwrap();
    let k = t.path().join("k.sqlite");
    let ks = k.to_str().unwrap();
    std::fs::copy(&j, &k).unwrap();
    std::fs::copy(format!("{}-wal", j.display()), format!("{ks}-wal")).unwrap();
    drop(c);
    let wal = std::fs::read(format!("{ks}-wal")).unwrap();
    assert!(!wal.is_empty());
    let shm = format!("{ks}-shm");
    let s = share.to_str().unwrap();
    let m = t.path().join("m.sqlite");
    let id = id_of("full-zlib");
    for a in [
        vec!["ls", "--share", s, "--journal", ks],
        vec!["show", "--share", s, "--journal", ks, &id],
        vec!["journal", "report", "--journal", ks],
        vec!["journal", "merge", "--into", m.to_str().unwrap(), ks],
    ] {
        let (code, _, err) = run(&a);
        assert_eq!(code, 2, "{a:?}: {err}");
        assert!(
            err.contains("k.sqlite-shm") && err.contains("touch"),
            "{a:?}: {err}"
        );
        assert!(!Path::new(&shm).exists(), "{a:?} created {shm}");
        assert_eq!(std::fs::read(format!("{ks}-wal")).unwrap(), wal, "{a:?}");
    }
    // Allowed by hand, as the message says: then it is read, -wal included.
    std::fs::write(&shm, b"").unwrap();
    let (code, _, err) = run(&["journal", "report", "--journal", ks]);
    assert!(code == 0 || code == 1, "{err}");
}
