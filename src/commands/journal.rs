//! `cbr journal report|merge`, and the journal plumbing of verify/ls/show.

use super::{Global, Outcome, resolve_share};
use crate::cli::{JournalArg, JournalCommand, JournalMergeArgs, JournalReportArgs, ReportFormat};
use anyhow::{Context, Result};
use cbr::journal::{BackupLast, Last, by_backup, last_checks, merge, now, open_read, shares};
use cbr::share::Share;
use cbr::share::out::Gate;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The journal file `--journal [FILE]` names (None: no journal).
pub fn path_of(arg: &JournalArg) -> Option<PathBuf> {
    arg.journal.as_ref().map(|p| {
        if p.as_os_str().is_empty() {
            cbr::journal::default_path()
        } else {
            p.clone()
        }
    })
}

/// The identity a journal knows a share by: its root's canonical path.
#[allow(clippy::disallowed_methods)] // the root itself, which the operator named
pub fn share_id(share: &Share) -> String {
    std::fs::canonicalize(&share.root)
        .unwrap_or_else(|_| share.root.clone())
        .display()
        .to_string()
}

/// A gate guarding `share` and every share the journal at `path` names
/// (read-only, through a gate that knows none yet): a journal inside any
/// of them is refused before it is used.
fn gate_for(share: Option<&Share>, path: &Path) -> Result<Gate> {
    let mut gate = share.map_or_else(Gate::none, Gate::new);
    if let Ok(conn) = open_read(&Gate::none(), path)
        && let Ok(ids) = shares(&conn, path)
    {
        for id in ids {
            if let Ok(s) = Share::open(&id) {
                gate.add(s);
            }
        }
    }
    Ok(gate)
}

/// Each backup's last verification, from the journal (for ls/show),
/// read-only.
pub fn last_by_backup(
    arg: &JournalArg,
    share: &Share,
) -> Result<Option<HashMap<String, BackupLast>>> {
    let Some(path) = path_of(arg) else {
        return Ok(None);
    };
    let conn = open_read(&gate_for(Some(share), &path)?, &path)?;
    Ok(Some(by_backup(&conn, &path, &share_id(share))?))
}

/// `2026-11-25 16:40:00 UTC` of a unix time.
pub fn when(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub fn run(g: &Global, cmd: JournalCommand) -> Result<Outcome> {
    match cmd {
        JournalCommand::Report(a) => report(g, a),
        JournalCommand::Merge(a) => merge_cmd(g, a),
    }
}

/// One backup's state in the journal, as `journal report` says it.
#[derive(serde::Serialize)]
struct Row {
    share: String,
    backup_id: String,
    /// `fresh` (every chunk proven within the window, against the files
    /// as they are), `partial`, `overdue`, `failed` or `never`.
    status: &'static str,
    last_ok_at: Option<i64>,
    /// Chunks the backup has.
    chunks: u64,
    /// Of them, proven OK within the window.
    chunks_proven: u64,
}

/// The status of a backup of `total` chunks, `proven` of them within the
/// window, given whether any check failed and whether any was ever OK.
fn status(total: u64, proven: u64, failed: bool, seen: bool) -> &'static str {
    if failed {
        "failed"
    } else if !seen {
        "never"
    } else if proven >= total {
        "fresh"
    } else if proven > 0 {
        "partial"
    } else {
        "overdue"
    }
}

fn report(g: &Global, a: JournalReportArgs) -> Result<Outcome> {
    let window = cbr::journal::parse_window(&a.older_than)
        .map_err(|e| anyhow::anyhow!("--older-than {e}"))?;
    let path = path_of(&a.journal).unwrap_or_else(cbr::journal::default_path);
    let share = if a.share.share.is_some() || a.share.cinder_conf.is_some() {
        Some(resolve_share(g, &a.share)?)
    } else {
        None
    };
    let conn = open_read(&gate_for(share.as_ref(), &path)?, &path)?;
    let ids: Vec<String> = match &share {
        Some(s) => vec![share_id(s)],
        None => shares(&conn, &path)?,
    };
    let cutoff = now().saturating_sub(window as i64);
    let found = match &share {
        Some(s) => Some(cbr::share::scan::index(
            s,
            cbr::share::scan::IndexOptions::default(),
        )?),
        None => None,
    };
    let format = match (a.json, a.format) {
        (true, _) => ReportFormat::Json,
        (false, f) => f.unwrap_or(ReportFormat::Human),
    };
    let mut rows = Vec::new();
    for sid in &ids {
        let last = last_checks(&conn, &path, sid)?;
        let mut per: PerBackup = HashMap::new();
        for ((b, c), l) in &last {
            per.entry(b.as_str()).or_default().push((c.as_str(), l));
        }
        match (&share, &found) {
            (Some(s), Some(found)) => rows_on_share(&mut rows, s, found, sid, &per, cutoff),
            _ => rows_from_journal(&mut rows, sid, &per, cutoff),
        }
    }
    if format == ReportFormat::Openmetrics {
        let mut runs = Vec::new();
        for sid in &ids {
            runs.push((sid.as_str(), cbr::journal::last_run(&conn, &path, sid)?));
        }
        render_openmetrics(&rows, &runs)?;
        return Ok(Outcome::Ok);
    }
    if format == ReportFormat::Json {
        super::print_json(&serde_json::json!({ "backups": rows }))?;
    } else {
        render_human(&rows, &a.older_than)?;
    }
    Ok(if rows.iter().all(|r| r.status == "fresh") {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// A share's chunk checks by backup id: (chunk name, its last check).
type PerBackup<'a> = HashMap<&'a str, Vec<(&'a str, &'a Last)>>;

/// The rows of share `sid` against the share as it is: every chunk its
/// metadata lists, proven against this _metadata and this _sha256file.
fn rows_on_share(
    rows: &mut Vec<Row>,
    s: &Share,
    found: &cbr::share::scan::ShareIndex,
    sid: &str,
    per: &PerBackup<'_>,
    cutoff: i64,
) {
    // One backup read in full at a time (its objects and file identities).
    for summary in &found.backups {
        let Some(b) = found.load(s, summary) else {
            continue;
        };
        let b = &b;
        let meta = b.metadata_id.map(|f| f.stamp());
        let sha = b
            .sha256_path
            .as_ref()
            .and_then(|p| s.open_file(p).ok())
            .map(|f| f.id().stamp());
        let mine = per.get(b.id.as_str());
        let of = |name: &str| mine.and_then(|v| v.iter().find(|(c, _)| *c == name));
        let mut proven = 0u64;
        let mut oldest: Option<i64> = None;
        for o in b.metadata.objects.iter() {
            if let Some((_, l)) = of(&o.name)
                && l.ok
                && l.at >= cutoff
                && meta.is_some()
                && l.meta == meta
                && sha.is_some()
                && l.sha == sha
            {
                proven += 1;
                oldest = Some(oldest.map_or(l.at, |x| x.min(l.at)));
            }
        }
        let failed = mine.is_some_and(|v| v.iter().any(|(_, l)| !l.ok));
        let total = b.metadata.objects.len() as u64;
        rows.push(Row {
            share: sid.to_string(),
            backup_id: b.id.clone(),
            status: status(total, proven, failed, mine.is_some()),
            last_ok_at: oldest,
            chunks: total,
            chunks_proven: proven,
        });
    }
}

/// The rows of share `sid` from the journal alone: proofs against each
/// backup's latest _metadata and _sha256file, of as many chunks as it
/// listed.
fn rows_from_journal(rows: &mut Vec<Row>, sid: &str, per: &PerBackup<'_>, cutoff: i64) {
    let mut names: Vec<&&str> = per.keys().collect();
    names.sort();
    for b in names {
        let v = &per[*b];
        let Some((_, newest)) = v.iter().max_by_key(|(_, l)| l.at) else {
            continue;
        };
        let total = v
            .iter()
            .filter_map(|(_, l)| l.of_chunks)
            .max()
            .unwrap_or(v.len() as u64);
        let current = v
            .iter()
            .filter(|(_, l)| l.meta == newest.meta && l.sha == newest.sha);
        let fresh: Vec<i64> = current
            .filter(|(_, l)| l.ok && l.at >= cutoff && l.sha.is_some())
            .map(|(_, l)| l.at)
            .collect();
        let failed = v.iter().any(|(_, l)| !l.ok);
        rows.push(Row {
            share: sid.to_string(),
            backup_id: (*b).to_string(),
            status: status(total, fresh.len() as u64, failed, true),
            last_ok_at: fresh.iter().min().copied(),
            chunks: total,
            chunks_proven: fresh.len() as u64,
        });
    }
}

/// `--format openmetrics`: the rows, share by share, and each share's last
/// run, on stdout.
fn render_openmetrics(
    rows: &[Row],
    runs: &[(&str, Option<cbr::journal::RunSummary>)],
) -> Result<()> {
    let mut backups = Vec::new();
    for (sid, _) in runs {
        for r in rows.iter().filter(|r| r.share == *sid) {
            backups.push(MetricBackup {
                share: sid,
                backup_id: &r.backup_id,
                status: r.status,
                last_ok_at: r.last_ok_at,
                chunks_proven: r.chunks_proven,
                chunks: r.chunks,
            });
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(openmetrics(&backups, runs).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The report for a person: every backup not fresh, then the counts.
fn render_human(rows: &[Row], older_than: &str) -> Result<()> {
    let bad = rows.iter().filter(|r| r.status != "fresh").count();
    let mut out = std::io::stdout().lock();
    for r in rows.iter().filter(|r| r.status != "fresh") {
        writeln!(
            out,
            "{:<8} {}  {} of {} chunk(s) proven within {}; oldest proof {}",
            r.status.to_uppercase(),
            cbr::escape::terminal(&r.backup_id),
            r.chunks_proven,
            r.chunks,
            older_than,
            r.last_ok_at.map_or("none".into(), when)
        )?;
    }
    let partial = rows.iter().filter(|r| r.status == "partial").count();
    writeln!(
        out,
        "{} backup(s): {} fresh (every chunk proven within {}), {} partial, {} overdue, failed or never proven",
        rows.len(),
        rows.len() - bad,
        older_than,
        partial,
        bad - partial
    )?;
    Ok(())
}

fn merge_cmd(g: &Global, a: JournalMergeArgs) -> Result<Outcome> {
    // Guard every share the inputs (and the journal merged into) name.
    let mut gate = Gate::none();
    for p in a.inputs.iter().chain([&a.into]) {
        if let Ok(conn) = open_read(&Gate::none(), p)
            && let Ok(ids) = shares(&conn, p)
        {
            for id in ids {
                if let Ok(s) = Share::open(&id) {
                    gate.add(s);
                }
            }
        }
    }
    let n = merge(&gate, &a.into, &a.inputs)
        .with_context(|| format!("merging into {}", a.into.display()))?;
    if !g.quiet {
        eprintln!(
            "cbr: merged {} journal(s) into {}: {n} chunk check(s) added",
            a.inputs.len(),
            a.into.display()
        );
    }
    Ok(Outcome::Ok)
}

/// One backup's line of the metrics.
struct MetricBackup<'a> {
    share: &'a str,
    backup_id: &'a str,
    /// `fresh`, `overdue`, `failed` or `never`.
    status: &'static str,
    last_ok_at: Option<i64>,
    chunks_proven: u64,
    chunks: u64,
}

/// A label value in the text exposition format: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The journal report as Prometheus text (OpenMetrics-compatible: gauges
/// only, `# EOF` last), for node_exporter's textfile collector. Per backup
/// (labels `share`, `backup_id`): when it was last proven, whether it
/// failed, chunks proven and listed; per share: backups overdue, never
/// proven and failed, and the last run's time, duration, chunks and bytes.
fn openmetrics(
    backups: &[MetricBackup],
    runs: &[(&str, Option<cbr::journal::RunSummary>)],
) -> String {
    let mut s = String::new();
    backup_metrics(&mut s, backups);
    share_metrics(&mut s, backups, runs);
    run_metrics(&mut s, runs);
    s.push_str("# EOF\n");
    s
}

/// A metric family's header: its type, unit and help.
fn family(s: &mut String, name: &str, help: &str, unit: Option<&str>) {
    use std::fmt::Write as _;
    let _ = writeln!(s, "# TYPE {name} gauge");
    if let Some(u) = unit {
        let _ = writeln!(s, "# UNIT {name} {u}");
    }
    let _ = writeln!(s, "# HELP {name} {help}");
}

/// The per-backup families (labels `share`, `backup_id`).
fn backup_metrics(s: &mut String, backups: &[MetricBackup]) {
    use std::fmt::Write as _;
    type Of = fn(&MetricBackup) -> String;
    let per_backup: [(&str, &str, Option<&str>, Of); 4] = [
        (
            "cbr_backup_last_proven_timestamp_seconds",
            "When the backup's least recently proven chunk was last proven (0: never)",
            Some("seconds"),
            |b| b.last_ok_at.unwrap_or(0).to_string(),
        ),
        (
            "cbr_backup_failed",
            "1 if the last check of any chunk of the backup failed",
            None,
            |b| u8::from(b.status == "failed").to_string(),
        ),
        (
            "cbr_backup_chunks_proven",
            "Chunks of the backup whose last check proved them",
            None,
            |b| b.chunks_proven.to_string(),
        ),
        (
            "cbr_backup_chunks",
            "Chunks of the backup (listed in its metadata with --share, else known to the journal)",
            None,
            |b| b.chunks.to_string(),
        ),
    ];
    for (name, help, unit, value) in per_backup {
        family(s, name, help, unit);
        for b in backups {
            let _ = writeln!(
                s,
                "{name}{{share=\"{}\",backup_id=\"{}\"}} {}",
                label(b.share),
                label(b.backup_id),
                value(b)
            );
        }
    }
}

/// The per-share counts of backups (all, overdue, never proven, failed).
fn share_metrics(
    s: &mut String,
    backups: &[MetricBackup],
    runs: &[(&str, Option<cbr::journal::RunSummary>)],
) {
    use std::fmt::Write as _;
    let count = |share: &str, status: &str| {
        backups
            .iter()
            .filter(|b| b.share == share && b.status == status)
            .count()
    };
    let per_share_counts = [
        ("cbr_share_backups", "Backups the report covers", ""),
        (
            "cbr_share_backups_overdue",
            "Backups not proven within the --older-than window",
            "overdue",
        ),
        (
            "cbr_share_backups_never_proven",
            "Backups on the share the journal has never proven (needs --share)",
            "never",
        ),
        (
            "cbr_share_backups_failed",
            "Backups whose last check of a chunk failed",
            "failed",
        ),
    ];
    for (name, help, status) in per_share_counts {
        family(s, name, help, None);
        for (share, _) in runs {
            let n = if status.is_empty() {
                backups.iter().filter(|b| b.share == *share).count()
            } else {
                count(share, status)
            };
            let _ = writeln!(s, "{name}{{share=\"{}\"}} {n}", label(share));
        }
    }
}

/// Each share's last run: its time, duration, chunks and bytes.
fn run_metrics(s: &mut String, runs: &[(&str, Option<cbr::journal::RunSummary>)]) {
    use std::fmt::Write as _;
    type Run = fn(&cbr::journal::RunSummary) -> String;
    let per_run: [(&str, &str, Option<&str>, Run); 4] = [
        (
            "cbr_share_last_run_timestamp_seconds",
            "When the last verification run of the share ended (or started, if unfinished)",
            Some("seconds"),
            |r| r.finished.unwrap_or(r.started).to_string(),
        ),
        (
            "cbr_share_last_run_duration_seconds",
            "How long the last verification run of the share took (0 if unfinished)",
            Some("seconds"),
            |r| {
                r.finished
                    .map_or(0, |f| f.saturating_sub(r.started))
                    .to_string()
            },
        ),
        (
            "cbr_share_last_run_chunks",
            "Chunks the last verification run of the share checked",
            None,
            |r| r.chunks.to_string(),
        ),
        (
            "cbr_share_last_run_bytes",
            "Uncompressed bytes the last verification run of the share proved",
            Some("bytes"),
            |r| r.bytes.to_string(),
        ),
    ];
    for (name, help, unit, value) in per_run {
        family(s, name, help, unit);
        for (share, run) in runs {
            if let Some(r) = run {
                let _ = writeln!(s, "{name}{{share=\"{}\"}} {}", label(share), value(r));
            }
        }
    }
}
