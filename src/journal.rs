//! The verification journal: which chunk of which backup was proven good
//! (or found bad), when, by which hashes, and whether its file has changed
//! since — in SQLite (WAL, batched writes), never on the share.
//!
//! It makes a deep scrub of a large share resumable (`--resume` continues
//! an interrupted run without reading any chunk twice), rolling
//! (`--older-than 30d` reads only what was not proven in that window) and
//! mergeable across hosts (`cbr journal merge` of `--shard K/N` runs).
//!
//! A proof is keyed to what it was proven against: the `fstat` of the very
//! handle whose bytes were hashed, and the identities of the backup's
//! `_metadata` and `_sha256file` handles; any change and the chunk is
//! checked again. Rows are committed by a thread of their own every second
//! (or every [`BATCH`] rows), so a `kill -9` loses at most the chunks in
//! flight and a second of results, however slow one chunk is. The file is
//! opened only through [`crate::share::out`]: never in the share, readers
//! read-only.

use crate::share::out::{Gate, JournalPath, OutError};
use crate::verify::{ChunkOutcome, FileId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// What `meta.schema` holds in a journal of this layout.
pub const SCHEMA: &str = "cbr-journal/1";

/// Chunks recorded per transaction at most.
pub const BATCH: usize = 32;

/// Pending rows are committed at least this often.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// The longest window or budget accepted (seconds; a larger one would
/// wrap as a signed time).
pub const MAX_SECONDS: u64 = i64::MAX as u64 / 2;

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("{path} is not a cbr journal ({why}): move it away or give another --journal")]
    NotAJournal { path: PathBuf, why: String },
    #[error("journal {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Out(#[from] OutError),
    #[error(
        "no journal at {path}: run `cbr verify --deep --journal` first (a reader never creates one)"
    )]
    Missing { path: PathBuf },
    /// A `-wal` without its `-shm`: SQLite would create the `-shm` to read it.
    #[error(
        "journal {path} has a write-ahead log but no {}: reading it would make SQLite create that \
         file, and a reader creates nothing. Copy the -shm along with the journal and its -wal, or \
         allow it (`touch {}`: SQLite rebuilds it), then run this again",
        shm.display(),
        shm.display()
    )]
    WalWithoutShm { path: PathBuf, shm: PathBuf },
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `30d`, `12h`, `45m`, `90s`, `2w` (a bare number is seconds); None
/// when it is not one or exceeds [`MAX_SECONDS`].
pub fn parse_duration(s: &str) -> Option<u64> {
    parse_window(s).ok()
}

/// [`parse_duration`], saying what is wrong.
pub fn parse_window(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let mul = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration: expected e.g. 30d, 12h, 45m"
            ));
        }
    };
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a duration: expected e.g. 30d, 12h, 45m"
        ));
    }
    let too_large = || format!("{s:?} is too large: at most {MAX_SECONDS} seconds");
    let n: u64 = num.parse().map_err(|_| too_large())?;
    match n.checked_mul(mul) {
        Some(v) if v <= MAX_SECONDS => Ok(v),
        _ => Err(too_large()),
    }
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

/// The last verification of one chunk, and what it was proven against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last {
    pub file: FileId,
    pub ok: bool,
    pub at: i64,
    /// Stamp (`size:mtime_ns:inode`) of the backup's `_metadata`.
    pub meta: Option<String>,
    /// Stamp of the backup's `_sha256file`.
    pub sha: Option<String>,
    /// How many chunks the backup's metadata listed.
    pub of_chunks: Option<u64>,
}

impl Last {
    /// Whether this is an OK proof against exactly these files.
    pub fn proves(&self, file: FileId, meta: Option<FileId>, sha: Option<FileId>) -> bool {
        self.ok
            && self.file == file
            && meta.is_some_and(|m| self.meta.as_deref() == Some(m.stamp().as_str()))
            && sha.is_some_and(|m| self.sha.as_deref() == Some(m.stamp().as_str()))
    }
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

#[derive(Default)]
struct Pending {
    rows: Vec<Row>,
    /// When the oldest pending row came.
    since: Option<Instant>,
    stop: bool,
    /// The committer's first error (reported by the next record/finish).
    error: Option<JournalError>,
}

struct Row {
    backup: String,
    chunk: String,
    file: Option<FileId>,
    ok: bool,
    codes: String,
    proven: String,
    at: i64,
    meta: Option<String>,
    sha: Option<String>,
    of_chunks: u64,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    pending: Mutex<Pending>,
    wake: Condvar,
    share: String,
    run: i64,
}

/// An open journal (a writer): rows are committed by a committer thread.
pub struct Journal {
    inner: Arc<Inner>,
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub share: String,
    pub run: i64,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
    move |source| JournalError::Sql {
        path: path.to_owned(),
        source,
    }
}

fn check_schema(conn: &Connection, path: &Path, quick: bool) -> Result<(), JournalError> {
    let not = |why: String| JournalError::NotAJournal {
        path: path.to_owned(),
        why,
    };
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
    if quick {
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| not(e.to_string()))?;
        if check != "ok" {
            return Err(not(format!("SQLite finds it damaged: {check}")));
        }
    }
    Ok(())
}

/// Columns added after the first layout (NULL in older rows: such a proof
/// matches nothing, so its chunk is checked again).
const ADDED: [(&str, &str); 3] = [
    ("meta_id", "TEXT"),
    ("sha_id", "TEXT"),
    ("of_chunks", "INTEGER"),
];

fn has_column(conn: &Connection, col: &str) -> bool {
    conn.prepare("SELECT name FROM pragma_table_info('checks') WHERE name = ?1")
        .and_then(|mut st| st.exists([col]))
        .unwrap_or(false)
}

/// Open (or create) a journal for writing, refusing one that is not a
/// journal. The path has been vetted by the gate out.
pub fn open_writer(jp: &JournalPath) -> Result<Connection, JournalError> {
    let path = &jp.shown;
    let not = |why: String| JournalError::NotAJournal {
        path: path.to_owned(),
        why,
    };
    let conn = jp.open_rw().map_err(|e| not(e.to_string()))?;
    let empty = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| not(e.to_string()))?
        == 0;
    if !empty {
        check_schema(&conn, path, true)?;
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
    for (col, ty) in ADDED {
        if !has_column(&conn, col) {
            conn.execute_batch(&format!("ALTER TABLE checks ADD COLUMN {col} {ty}"))
                .map_err(sql(path))?;
        }
    }
    Ok(conn)
}

/// Open an existing journal read-only (ls/show, report, merge inputs):
/// never created, never changed, its `-wal`/`-shm` left alone.
pub fn open_reader(jp: &JournalPath) -> Result<Connection, JournalError> {
    let path = &jp.shown;
    if !jp.exists {
        return Err(JournalError::Missing {
            path: path.to_owned(),
        });
    }
    if let Some(shm) = jp.shm_a_reader_would_create() {
        return Err(JournalError::WalWithoutShm {
            path: path.to_owned(),
            shm,
        });
    }
    let conn = jp.open_ro().map_err(|e| JournalError::NotAJournal {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    check_schema(&conn, path, false)?;
    Ok(conn)
}

/// Vet `path` with `gate` and open it for reading.
pub fn open_read(gate: &Gate, path: &Path) -> Result<Connection, JournalError> {
    let jp = gate.journal(path, false).map_err(|e| match e {
        OutError::Missing { .. } => JournalError::Missing {
            path: path.to_owned(),
        },
        e => e.into(),
    })?;
    open_reader(&jp)
}

impl Inner {
    fn write(&self, rows: &[Row]) -> Result<(), JournalError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let e = sql(&self.path);
        let tx = conn.transaction().map_err(&e)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO checks(run, share, backup_id, chunk, size, mtime_ns, inode,
                         verdict, codes, proven, checked_at, meta_id, sha_id, of_chunks)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(&e)?;
            for r in rows {
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
                    r.at,
                    r.meta,
                    r.sha,
                    r.of_chunks as i64
                ])
                .map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The committer: commit pending rows every [`COMMIT_EVERY`] or
    /// [`BATCH`] rows, until stopped.
    fn commit_loop(&self) {
        loop {
            let mut p = self.lock();
            loop {
                let due = p.rows.len() >= BATCH
                    || p.since.is_some_and(|t| t.elapsed() >= COMMIT_EVERY)
                    || p.stop;
                if due {
                    break;
                }
                let wait = p
                    .since
                    .map_or(Duration::from_secs(60), |t| {
                        COMMIT_EVERY.saturating_sub(t.elapsed())
                    })
                    .max(Duration::from_millis(1));
                p = self
                    .wake
                    .wait_timeout(p, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            let rows = std::mem::take(&mut p.rows);
            p.since = None;
            let stop = p.stop;
            drop(p);
            if let Err(e) = self.write(&rows) {
                self.lock().error.get_or_insert(e);
            }
            if stop {
                return;
            }
        }
    }
}

impl Journal {
    /// Open the journal at `path` (vetted by a gate that knows no share)
    /// for a run over `share`. See [`Journal::open_vetted`].
    pub fn open(
        path: &Path,
        share: &str,
        shard: Option<&str>,
        resume: bool,
    ) -> Result<Self, JournalError> {
        let jp = Gate::none().journal(path, true)?;
        Self::open_vetted(&jp, share, shard, resume)
    }

    /// Open the journal for a run over `share` (its identity: the share
    /// root's canonical path). With `resume`, continue the latest
    /// unfinished run of that share and shard, else start a new one.
    pub fn open_vetted(
        jp: &JournalPath,
        share: &str,
        shard: Option<&str>,
        resume: bool,
    ) -> Result<Self, JournalError> {
        let path = jp.shown.clone();
        let conn = open_writer(jp)?;
        let e = sql(&path);
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
        let inner = Arc::new(Inner {
            path: path.clone(),
            conn: Mutex::new(conn),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            share: share.to_string(),
            run,
        });
        let worker = inner.clone();
        let committer = std::thread::Builder::new()
            .name("cbr-journal".into())
            .spawn(move || worker.commit_loop())
            .map_err(|source| {
                JournalError::Out(OutError::Io {
                    what: "journal".into(),
                    path: inner.path.display().to_string(),
                    step: "start the thread that commits to",
                    source,
                })
            })?;
        Ok(Journal {
            inner,
            committer: Mutex::new(Some(committer)),
            share: share.to_string(),
            run,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Chunks checked in this run so far (for `--resume`).
    pub fn proven_in_run(&self) -> Result<HashMap<(String, String), Last>, JournalError> {
        checks_where(&self.conn(), &self.inner.path, &self.share, Some(self.run))
    }

    /// The last check of every chunk of this share (any run).
    pub fn last_checks(&self) -> Result<HashMap<(String, String), Last>, JournalError> {
        last_checks(&self.conn(), &self.inner.path, &self.share)
    }

    /// Record one chunk verified; the committer thread commits it within
    /// [`COMMIT_EVERY`]. Returns the committer's error, if it had one.
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
            // A chunk whose handle could not be stamped proves nothing.
            ok: !o.findings.has_errors() && o.file.is_some(),
            codes: codes.join(","),
            proven,
            at: now(),
            meta: o.backup.metadata_id.map(|f| f.stamp()),
            sha: o.backup.sha256_id.map(|f| f.stamp()),
            of_chunks: o.backup.metadata.objects.len() as u64,
        };
        let mut pend = self.inner.lock();
        if let Some(e) = pend.error.take() {
            return Err(e);
        }
        pend.rows.push(row);
        pend.since.get_or_insert_with(Instant::now);
        if pend.rows.len() >= BATCH {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Stop the committer and write what is pending.
    pub fn flush(&self) -> Result<(), JournalError> {
        let handle = self
            .committer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            self.inner.lock().stop = true;
            self.inner.wake.notify_one();
            let _ = h.join();
        }
        let rows = {
            let mut p = self.inner.lock();
            if let Some(e) = p.error.take() {
                return Err(e);
            }
            std::mem::take(&mut p.rows)
        };
        self.inner.write(&rows)
    }

    /// Flush, and mark the run finished — unless chunks were left
    /// (`complete` false: a budget stop), so that `--resume` continues it.
    pub fn finish_run(&self, complete: bool) -> Result<(), JournalError> {
        self.flush()?;
        if complete {
            self.conn()
                .execute(
                    "UPDATE runs SET finished = ?1 WHERE id = ?2",
                    params![now(), self.run],
                )
                .map_err(sql(&self.inner.path))?;
        }
        Ok(())
    }

    /// Flush and mark the run finished.
    pub fn finish(&self) -> Result<(), JournalError> {
        self.finish_run(true)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn file_of(size: Option<i64>, mtime: Option<i64>, inode: Option<i64>) -> FileId {
    FileId {
        size: size.unwrap_or(-1) as u64,
        mtime_ns: mtime.unwrap_or(-1) as i128,
        inode: inode.unwrap_or(-1) as u64,
    }
}

/// The last check of each chunk of `share` (in run `run`, or any).
fn checks_where(
    conn: &Connection,
    path: &Path,
    share: &str,
    run: Option<i64>,
) -> Result<HashMap<(String, String), Last>, JournalError> {
    let e = sql(path);
    let col = |c: &str| {
        if has_column(conn, c) {
            c.to_string()
        } else {
            "NULL".to_string()
        }
    };
    let q = format!(
        "SELECT backup_id, chunk, size, mtime_ns, inode, verdict, MAX(checked_at), {}, {}, {}
         FROM checks WHERE share = ?1 AND (?2 IS NULL OR run = ?2) GROUP BY backup_id, chunk",
        col("meta_id"),
        col("sha_id"),
        col("of_chunks")
    );
    let mut st = conn.prepare(&q).map_err(&e)?;
    let rows = st
        .query_map(params![share, run], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                Last {
                    file: file_of(r.get(2)?, r.get(3)?, r.get(4)?),
                    ok: r.get::<_, String>(5)? == "ok",
                    at: r.get(6)?,
                    meta: r.get(7)?,
                    sha: r.get(8)?,
                    of_chunks: r.get::<_, Option<i64>>(9)?.map(|n| n.max(0) as u64),
                },
            ))
        })
        .map_err(&e)?;
    rows.collect::<Result<_, _>>().map_err(e)
}

/// The last check of every chunk of `share`.
pub fn last_checks(
    conn: &Connection,
    path: &Path,
    share: &str,
) -> Result<HashMap<(String, String), Last>, JournalError> {
    checks_where(conn, path, share, None)
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

/// A row of `runs`: id, share, host, shard, started, finished.
type RunRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

/// One check as merge copies it (every column but `run`).
type CheckRow = (
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// Merge journals into `out` (created if missing). Inputs are opened
/// read-only (never created, changed or checkpointed: their rows are read
/// through their own read-only connection, not attached). A run is copied
/// once (matched by share, host, shard and start) and closed — a merged
/// journal is a record, not a run to resume; a check already there is not
/// copied again, so merging twice changes nothing. `gate` guards the
/// shares the journals name.
pub fn merge(gate: &Gate, out: &Path, inputs: &[PathBuf]) -> Result<u64, JournalError> {
    let srcs = open_inputs(gate, inputs)?;
    let out_jp = gate.journal(out, true)?;
    if let Some((input, _, _)) = srcs.iter().find(|(_, p, _)| *p == out_jp.path) {
        return Err(JournalError::NotAJournal {
            path: (*input).clone(),
            why: "it is the journal merged into".into(),
        });
    }
    let mut conn = open_writer(&out_jp)?;
    let mut added = 0u64;
    for (input, _, src) in &srcs {
        added += merge_one(&mut conn, out, input, src)?;
    }
    Ok(added)
}

/// Each input of a merge vetted and opened read-only: (as named, as
/// opened, connection).
fn open_inputs<'a>(
    gate: &Gate,
    inputs: &'a [PathBuf],
) -> Result<Vec<(&'a PathBuf, PathBuf, Connection)>, JournalError> {
    let mut srcs = Vec::new();
    for input in inputs {
        let jp = gate.journal(input, false).map_err(|e| match e {
            OutError::Missing { .. } => JournalError::NotAJournal {
                path: input.clone(),
                why: "it does not exist".into(),
            },
            e => e.into(),
        })?;
        srcs.push((input, jp.path.clone(), open_reader(&jp)?));
    }
    Ok(srcs)
}

/// Copy the runs and checks of the journal `src` (named `input`) into
/// `conn` (the journal `out`), in one transaction. Returns the checks added.
fn merge_one(
    conn: &mut Connection,
    out: &Path,
    input: &Path,
    src: &Connection,
) -> Result<u64, JournalError> {
    let e = sql(out);
    let runs = read_runs(src, input)?;
    let tx = conn.transaction().map_err(&e)?;
    let mut added = 0u64;
    for run in runs {
        let to = merged_run(&tx, &run, out)?;
        let rows = read_checks(src, input, run.0)?;
        added += insert_checks(&tx, to, rows, out)?;
    }
    tx.commit().map_err(&e)?;
    Ok(added)
}

/// Every run of a journal being merged.
fn read_runs(src: &Connection, input: &Path) -> Result<Vec<RunRow>, JournalError> {
    let se = sql(input);
    let mut st = src
        .prepare("SELECT id, share, host, shard, started, finished FROM runs")
        .map_err(&se)?;
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
        .map_err(&se)?;
    rows.collect::<Result<_, _>>().map_err(&se)
}

/// The id in the merged journal of `run`: the same run (share, host,
/// shard, start) if it is there, else a copy of it, closed.
fn merged_run(
    tx: &rusqlite::Transaction<'_>,
    run: &RunRow,
    out: &Path,
) -> Result<i64, JournalError> {
    let e = sql(out);
    let (_, share, host, shard, started, finished) = run;
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM runs WHERE share = ?1 AND host IS ?2 AND shard IS ?3
             AND started = ?4",
            params![share, host, shard, started],
            |r| r.get(0),
        )
        .optional()
        .map_err(&e)?;
    if let Some(x) = existing {
        return Ok(x);
    }
    tx.execute(
        "INSERT INTO runs(share, host, shard, started, finished)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![share, host, shard, started, finished.unwrap_or(*started)],
    )
    .map_err(&e)?;
    Ok(tx.last_insert_rowid())
}

/// The checks of run `run` in the journal `src` (a column an older
/// journal lacks read as NULL).
fn read_checks(src: &Connection, input: &Path, run: i64) -> Result<Vec<CheckRow>, JournalError> {
    let se = sql(input);
    let col = |c: &str| {
        if has_column(src, c) {
            c.to_string()
        } else {
            "NULL".to_string()
        }
    };
    let q = format!(
        "SELECT share, backup_id, chunk, size, mtime_ns, inode, verdict, codes, proven,
                checked_at, {}, {}, {} FROM checks WHERE run = ?1",
        col("meta_id"),
        col("sha_id"),
        col("of_chunks")
    );
    let mut st = src.prepare(&q).map_err(&se)?;
    let rows = st
        .query_map([run], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
            ))
        })
        .map_err(&se)?;
    rows.collect::<Result<_, _>>().map_err(&se)
}

/// Copy `rows` under the merged run `to`, each unless the same check
/// (share, backup, chunk, time, verdict) is there already. Returns how
/// many were added.
fn insert_checks(
    tx: &rusqlite::Transaction<'_>,
    to: i64,
    rows: Vec<CheckRow>,
    out: &Path,
) -> Result<u64, JournalError> {
    let e = sql(out);
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO checks(run, share, backup_id, chunk, size, mtime_ns, inode,
                 verdict, codes, proven, checked_at, meta_id, sha_id, of_chunks)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
             WHERE NOT EXISTS (SELECT 1 FROM checks m WHERE m.share = ?2
                 AND m.backup_id = ?3 AND m.chunk = ?4 AND m.checked_at = ?11
                 AND m.verdict = ?8)",
        )
        .map_err(&e)?;
    let mut added = 0u64;
    for r in rows {
        added += ins
            .execute(params![
                to, r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12
            ])
            .map_err(&e)? as u64;
    }
    Ok(added)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests write a file that is not a journal
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

/// Whether a chunk need not be read again: proven OK in this run (a
/// `--resume`), or within the window (`cutoff`), against this very chunk
/// file (`id`, the identity looked at), this `_metadata` and this
/// `_sha256file`. One rule for `verify` and `plan --deep`.
pub fn already_proven(
    in_run: &HashMap<(String, String), Last>,
    last: &HashMap<(String, String), Last>,
    cutoff: Option<i64>,
    b: &crate::share::BackupEntry,
    o: &crate::share::ChunkObject,
    id: Option<crate::share::FileId>,
) -> bool {
    let Some(id) = id else { return false };
    let key = (b.id.clone(), o.name.clone());
    let proves = |l: &Last| l.proves(id, b.metadata_id, b.sha256_id);
    in_run.get(&key).is_some_and(proves)
        || cutoff.is_some_and(|c| last.get(&key).is_some_and(|l| l.at >= c && proves(l)))
}
