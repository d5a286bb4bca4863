//! The verification journal: which chunk of which backup was proven good
//! (or found bad), when, by which hashes, and whether its file has changed
//! since — in SQLite (WAL, batched writes), never on the share.
//!
//! It makes a deep scrub of a large share resumable (`--resume` continues
//! an interrupted run without reading any chunk twice), rolling
//! (`--older-than 30d` reads only what was not proven in that window) and
//! mergeable across hosts (`cbr journal merge` of `--shard K/N` runs).
#![allow(clippy::disallowed_methods)] // the journal file, never the share

use crate::verify::{ChunkOutcome, FileId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// What `meta.schema` holds in a journal of this layout.
pub const SCHEMA: &str = "cbr-journal/1";

/// Chunks recorded per transaction (a `kill -9` loses at most these).
pub const BATCH: usize = 32;

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("{path} is not a cbr journal ({why}): move it away or give another --journal")]
    NotAJournal { path: PathBuf, why: String },
    #[error("journal {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the directory of journal {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `30d`, `12h`, `45m`, `90s`, `2w` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let mul = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// The default journal: `$XDG_STATE_HOME/cbr/journal.sqlite` (or
/// `~/.local/state/cbr/journal.sqlite`).
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("cbr").join("journal.sqlite")
}

/// The last verification of one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last {
    pub file: FileId,
    pub ok: bool,
    pub at: i64,
}

/// The last verification of one backup: when its least recently proven
/// chunk was proven, and whether any chunk's last check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BackupLast {
    pub oldest_ok_at: Option<i64>,
    pub last_at: i64,
    pub failed: bool,
    pub chunks: u64,
}

struct Pending {
    rows: Vec<Row>,
    flushed: Instant,
}

struct Row {
    backup: String,
    chunk: String,
    file: Option<FileId>,
    ok: bool,
    codes: String,
    proven: String,
    at: i64,
}

/// An open journal.
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
    pending: Mutex<Pending>,
    pub share: String,
    pub run: i64,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
    move |source| JournalError::Sql {
        path: path.to_owned(),
        source,
    }
}

/// Open (or create) the journal file, refusing one that is not a journal.
pub fn open_conn(path: &Path) -> Result<Connection, JournalError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Dir {
            path: path.to_owned(),
            source,
        })?;
    }
    let existed = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    let not = |why: String| JournalError::NotAJournal {
        path: path.to_owned(),
        why,
    };
    let conn = Connection::open(path).map_err(|e| not(e.to_string()))?;
    if existed {
        let schema: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| not(e.to_string()))?;
        match schema.as_deref() {
            Some(SCHEMA) => {}
            Some(other) => return Err(not(format!("its schema is {other:?}, not {SCHEMA:?}"))),
            None => return Err(not("it has no schema mark".into())),
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| not(e.to_string()))?;
        if check != "ok" {
            return Err(not(format!("SQLite finds it damaged: {check}")));
        }
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| not(e.to_string()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql(path))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT OR IGNORE INTO meta VALUES ('schema', 'cbr-journal/1');
         CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY, share TEXT NOT NULL,
             host TEXT, shard TEXT, started INTEGER NOT NULL, finished INTEGER);
         CREATE TABLE IF NOT EXISTS checks(run INTEGER NOT NULL, share TEXT NOT NULL,
             backup_id TEXT NOT NULL, chunk TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,
             inode INTEGER, verdict TEXT NOT NULL, codes TEXT NOT NULL, proven TEXT NOT NULL,
             checked_at INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS checks_chunk ON checks(share, backup_id, chunk, checked_at);
         CREATE INDEX IF NOT EXISTS checks_run ON checks(run);",
    )
    .map_err(sql(path))?;
    Ok(conn)
}

impl Journal {
    /// Open the journal for a run over `share` (its identity: the share
    /// root's canonical path). With `resume`, continue the latest
    /// unfinished run of that share, else start a new one.
    pub fn open(
        path: &Path,
        share: &str,
        shard: Option<&str>,
        resume: bool,
    ) -> Result<Self, JournalError> {
        let conn = open_conn(path)?;
        let e = sql(path);
        let unfinished: Option<i64> = if resume {
            conn.query_row(
                "SELECT id FROM runs WHERE share = ?1 AND shard IS ?2 AND finished IS NULL
                 ORDER BY id DESC LIMIT 1",
                params![share, shard],
                |r| r.get(0),
            )
            .optional()
            .map_err(&e)?
        } else {
            None
        };
        let run = match unfinished {
            Some(r) => r,
            None => {
                let host = std::env::var("HOSTNAME").ok();
                conn.execute(
                    "INSERT INTO runs(share, host, shard, started) VALUES (?1, ?2, ?3, ?4)",
                    params![share, host, shard, now()],
                )
                .map_err(&e)?;
                conn.last_insert_rowid()
            }
        };
        Ok(Journal {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            pending: Mutex::new(Pending {
                rows: Vec::new(),
                flushed: Instant::now(),
            }),
            share: share.to_string(),
            run,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Chunks proven OK in this run so far (for `--resume`).
    pub fn proven_in_run(&self) -> Result<HashMap<(String, String), FileId>, JournalError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT backup_id, chunk, size, mtime_ns, inode FROM checks
                 WHERE run = ?1 AND share = ?2 AND verdict = 'ok'",
            )
            .map_err(sql(&self.path))?;
        let rows = st
            .query_map(params![self.run, self.share], |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    file_of(r.get(2)?, r.get(3)?, r.get(4)?),
                ))
            })
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// The last check of every chunk of this share (any run).
    pub fn last_checks(&self) -> Result<HashMap<(String, String), Last>, JournalError> {
        last_checks(&self.conn(), &self.path, &self.share)
    }

    /// Record one chunk verified (batched; see [`BATCH`]).
    pub fn record(&self, o: &ChunkOutcome<'_>) -> Result<(), JournalError> {
        let mut codes: Vec<&str> = o.findings.iter().map(|f| f.code).collect();
        codes.sort_unstable();
        codes.dedup();
        let p = o.proven;
        let proven = format!(
            "sha256={} zero={} md5_only={} md5_also={}",
            p.sha256, p.zero_compare, p.md5_only, p.md5_also
        );
        let row = Row {
            backup: o.backup.id.clone(),
            chunk: o.object.name.clone(),
            file: o.file,
            ok: !o.findings.has_errors(),
            codes: codes.join(","),
            proven,
            at: now(),
        };
        let flush = {
            let mut pend = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pend.rows.push(row);
            pend.rows.len() >= BATCH || pend.flushed.elapsed().as_secs() >= 2
        };
        if flush { self.flush() } else { Ok(()) }
    }

    /// Write what is pending, in one transaction.
    pub fn flush(&self) -> Result<(), JournalError> {
        let rows = {
            let mut pend = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pend.flushed = Instant::now();
            std::mem::take(&mut pend.rows)
        };
        if rows.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let e = sql(&self.path);
        let tx = conn.transaction().map_err(&e)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO checks(run, share, backup_id, chunk, size, mtime_ns, inode,
                         verdict, codes, proven, checked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(&e)?;
            for r in &rows {
                st.execute(params![
                    self.run,
                    self.share,
                    r.backup,
                    r.chunk,
                    r.file.map(|f| f.size as i64),
                    r.file.map(|f| f.mtime_ns as i64),
                    r.file.map(|f| f.inode as i64),
                    if r.ok { "ok" } else { "bad" },
                    r.codes,
                    r.proven,
                    r.at
                ])
                .map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)
    }

    /// Flush and mark the run finished.
    pub fn finish(&self) -> Result<(), JournalError> {
        self.flush()?;
        self.conn()
            .execute(
                "UPDATE runs SET finished = ?1 WHERE id = ?2",
                params![now(), self.run],
            )
            .map_err(sql(&self.path))?;
        Ok(())
    }
}

fn file_of(size: Option<i64>, mtime: Option<i64>, inode: Option<i64>) -> FileId {
    FileId {
        size: size.unwrap_or(-1) as u64,
        mtime_ns: mtime.unwrap_or(-1) as i128,
        inode: inode.unwrap_or(-1) as u64,
    }
}

/// The last check of every chunk of `share`.
pub fn last_checks(
    conn: &Connection,
    path: &Path,
    share: &str,
) -> Result<HashMap<(String, String), Last>, JournalError> {
    let e = sql(path);
    let mut st = conn
        .prepare(
            "SELECT backup_id, chunk, size, mtime_ns, inode, verdict, MAX(checked_at)
             FROM checks WHERE share = ?1 GROUP BY backup_id, chunk",
        )
        .map_err(&e)?;
    let rows = st
        .query_map(params![share], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                Last {
                    file: file_of(r.get(2)?, r.get(3)?, r.get(4)?),
                    ok: r.get::<_, String>(5)? == "ok",
                    at: r.get(6)?,
                },
            ))
        })
        .map_err(&e)?;
    rows.collect::<Result<_, _>>().map_err(e)
}

/// The last verification of each backup of `share`.
pub fn by_backup(
    conn: &Connection,
    path: &Path,
    share: &str,
) -> Result<HashMap<String, BackupLast>, JournalError> {
    let mut out: HashMap<String, BackupLast> = HashMap::new();
    for ((backup, _), l) in last_checks(conn, path, share)? {
        let e = out.entry(backup).or_insert(BackupLast {
            oldest_ok_at: None,
            last_at: l.at,
            failed: false,
            chunks: 0,
        });
        e.chunks += 1;
        e.last_at = e.last_at.max(l.at);
        if l.ok {
            e.oldest_ok_at = Some(e.oldest_ok_at.map_or(l.at, |x| x.min(l.at)));
        } else {
            e.failed = true;
        }
    }
    Ok(out)
}

/// The shares a journal knows.
pub fn shares(conn: &Connection, path: &Path) -> Result<Vec<String>, JournalError> {
    let mut st = conn
        .prepare("SELECT DISTINCT share FROM runs ORDER BY share")
        .map_err(sql(path))?;
    let rows = st.query_map([], |r| r.get(0)).map_err(sql(path))?;
    rows.collect::<Result<_, _>>().map_err(sql(path))
}

/// Merge journals into `out` (created if missing): runs get new ids, every
/// check is kept, so the merged journal answers as one that saw all runs.
/// A row of `runs`: id, share, host, shard, started, finished.
type RunRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

/// An existing journal, opened read-only (merge inputs are never changed
/// nor created).
fn open_existing(path: &Path) -> Result<Connection, JournalError> {
    let not = |why: String| JournalError::NotAJournal {
        path: path.to_owned(),
        why,
    };
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0) {
        return Err(not("it does not exist or is empty".into()));
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| not(e.to_string()))?;
    let schema: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| not(e.to_string()))?;
    if schema.as_deref() != Some(SCHEMA) {
        return Err(not(format!("its schema is {schema:?}, not {SCHEMA:?}")));
    }
    Ok(conn)
}

/// Merge journals into `out` (created if missing). A run is copied once
/// (matched by share, host, shard and start) and closed — a merged journal
/// is a record, not a run to resume; a check already there is not copied
/// again, so merging twice changes nothing.
pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<u64, JournalError> {
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    for input in inputs {
        drop(open_existing(input)?);
        if same(input, out) {
            return Err(JournalError::NotAJournal {
                path: input.clone(),
                why: "it is the journal merged into".into(),
            });
        }
    }
    let mut conn = open_conn(out)?;
    let mut added = 0u64;
    for input in inputs {
        let e = sql(out);
        let tx = conn.transaction().map_err(&e)?;
        tx.execute(
            "ATTACH DATABASE ?1 AS src",
            params![input.to_string_lossy()],
        )
        .map_err(&e)?;
        let runs: Vec<RunRow> = {
            let mut st = tx
                .prepare("SELECT id, share, host, shard, started, finished FROM src.runs")
                .map_err(&e)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .map_err(&e)?;
            rows.collect::<Result<_, _>>().map_err(&e)?
        };
        for (id, share, host, shard, started, finished) in runs {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM main.runs WHERE share = ?1 AND host IS ?2 AND shard IS ?3
                     AND started = ?4",
                    params![share, host, shard, started],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&e)?;
            let to = match existing {
                Some(x) => x,
                None => {
                    tx.execute(
                        "INSERT INTO main.runs(share, host, shard, started, finished)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![share, host, shard, started, finished.unwrap_or(started)],
                    )
                    .map_err(&e)?;
                    tx.last_insert_rowid()
                }
            };
            added += tx
                .execute(
                    "INSERT INTO main.checks
                     SELECT ?1, s.share, s.backup_id, s.chunk, s.size, s.mtime_ns, s.inode,
                            s.verdict, s.codes, s.proven, s.checked_at
                     FROM src.checks s WHERE s.run = ?2 AND NOT EXISTS (
                         SELECT 1 FROM main.checks m WHERE m.share = s.share
                         AND m.backup_id = s.backup_id AND m.chunk = s.chunk
                         AND m.checked_at = s.checked_at AND m.verdict = s.verdict)",
                    params![to, id],
                )
                .map_err(&e)? as u64;
        }
        tx.commit().map_err(&e)?;
        conn.execute("DETACH DATABASE src", []).map_err(sql(out))?;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Some(30 * 86400));
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("2w"), Some(14 * 86400));
        assert_eq!(parse_duration("1y"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("j.sqlite");
        std::fs::write(&p, b"this is not sqlite at all, not even close").unwrap();
        assert!(matches!(
            Journal::open(&p, "s", None, false),
            Err(JournalError::NotAJournal { .. })
        ));
        let p2 = t.path().join("new/j.sqlite");
        let j = Journal::open(&p2, "s", None, false).unwrap();
        j.finish().unwrap();
        drop(j);
        assert!(Journal::open(&p2, "s", None, true).is_ok());
    }
}

/// The latest verification run of a share (`journal report --format
/// openmetrics`): when it started and finished, the chunks it checked and
/// the uncompressed bytes they proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub started: i64,
    pub finished: Option<i64>,
    pub chunks: u64,
    pub bytes: u64,
}

/// The latest run of `share` (by start time), if any.
pub fn last_run(
    conn: &Connection,
    path: &Path,
    share: &str,
) -> Result<Option<RunSummary>, JournalError> {
    let e = sql(path);
    let run: Option<(i64, i64, Option<i64>)> = conn
        .query_row(
            "SELECT id, started, finished FROM runs WHERE share = ?1
             ORDER BY started DESC, id DESC LIMIT 1",
            params![share],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(&e)?;
    let Some((id, started, finished)) = run else {
        return Ok(None);
    };
    let mut st = conn
        .prepare("SELECT proven FROM checks WHERE run = ?1")
        .map_err(&e)?;
    let mut rows = st.query(params![id]).map_err(&e)?;
    let (mut chunks, mut bytes) = (0u64, 0u64);
    while let Some(r) = rows.next().map_err(&e)? {
        let proven: String = r.get(0).map_err(&e)?;
        chunks += 1;
        // "sha256=N zero=N md5_only=N md5_also=N": md5_also re-proves bytes.
        for (k, v) in proven
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
        {
            if k != "md5_also" {
                bytes = bytes.saturating_add(v.parse::<u64>().unwrap_or(0));
            }
        }
    }
    Ok(Some(RunSummary {
        started,
        finished,
        chunks,
        bytes,
    }))
}
