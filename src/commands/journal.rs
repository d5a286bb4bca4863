//! `cbr journal report|merge`, and the journal plumbing of verify/ls/show.

use super::{Global, Outcome, resolve_share};
use crate::cli::{JournalArg, JournalCommand, JournalMergeArgs, JournalReportArgs};
use anyhow::{Context, Result, bail};
use cbr::journal::{BackupLast, by_backup, merge, now, open_conn, parse_duration, shares};
use cbr::share::Share;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

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

/// Refuse a journal inside the share: cbr never writes there.
pub fn refuse_inside(share: &Share, path: &std::path::Path) -> Result<()> {
    if share.contains(path) {
        bail!(
            "--journal {} is inside the share {}: cbr never writes to the share; keep the journal elsewhere",
            path.display(),
            share.root.display()
        );
    }
    Ok(())
}

/// The identity a journal knows a share by: its root's canonical path.
#[allow(clippy::disallowed_methods)] // the root itself, which the operator named
pub fn share_id(share: &Share) -> String {
    std::fs::canonicalize(&share.root)
        .unwrap_or_else(|_| share.root.clone())
        .display()
        .to_string()
}

/// Each backup's last verification, from the journal (for ls/show).
pub fn last_by_backup(
    arg: &JournalArg,
    share: &Share,
) -> Result<Option<HashMap<String, BackupLast>>> {
    let Some(path) = path_of(arg) else {
        return Ok(None);
    };
    let conn = open_conn(&path)?;
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

#[allow(clippy::disallowed_methods)] // the journal file, not the share
fn report(g: &Global, a: JournalReportArgs) -> Result<Outcome> {
    let window = parse_duration(&a.older_than).ok_or_else(|| {
        anyhow::anyhow!(
            "--older-than {:?}: expected e.g. 30d, 12h, 45m",
            a.older_than
        )
    })?;
    let path = path_of(&a.journal).unwrap_or_else(cbr::journal::default_path);
    if !path.exists() {
        bail!(
            "no journal at {}: run `cbr verify --deep --journal` first",
            path.display()
        );
    }
    let conn = open_conn(&path)?;
    let share = if a.share.share.is_some() || a.share.cinder_conf.is_some() {
        Some(resolve_share(g, &a.share)?)
    } else {
        None
    };
    let ids: Vec<String> = match &share {
        Some(s) => vec![share_id(s)],
        None => shares(&conn, &path)?,
    };
    let cutoff = now().saturating_sub(window as i64);
    #[derive(serde::Serialize)]
    struct Row {
        share: String,
        backup_id: String,
        status: &'static str,
        last_ok_at: Option<i64>,
        chunks: u64,
    }
    let mut rows = Vec::new();
    for sid in &ids {
        let last = by_backup(&conn, &path, sid)?;
        let mut names: Vec<&String> = last.keys().collect();
        names.sort();
        for b in names {
            let l = last[b];
            let status = if l.failed {
                "failed"
            } else if l.oldest_ok_at.is_none_or(|t| t < cutoff) {
                "overdue"
            } else {
                "fresh"
            };
            rows.push(Row {
                share: sid.clone(),
                backup_id: b.clone(),
                status,
                last_ok_at: l.oldest_ok_at,
                chunks: l.chunks,
            });
        }
        if let Some(s) = &share {
            let found = cbr::share::scan::scan(s)?;
            for b in &found.backups {
                if !last.contains_key(&b.id) {
                    rows.push(Row {
                        share: sid.clone(),
                        backup_id: b.id.clone(),
                        status: "never",
                        last_ok_at: None,
                        chunks: 0,
                    });
                }
            }
        }
    }
    let bad = rows.iter().filter(|r| r.status != "fresh").count();
    if a.json {
        super::print_json(&serde_json::json!({ "backups": rows }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for r in rows.iter().filter(|r| r.status != "fresh") {
            writeln!(
                out,
                "{:<8} {}  last proven {}",
                r.status.to_uppercase(),
                cbr::escape::terminal(&r.backup_id),
                r.last_ok_at.map_or("never".into(), when)
            )?;
        }
        writeln!(
            out,
            "{} backup(s): {} fresh (proven within {}), {} overdue, failed or never proven",
            rows.len(),
            rows.len() - bad,
            a.older_than,
            bad
        )?;
    }
    Ok(if bad == 0 {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

fn merge_cmd(g: &Global, a: JournalMergeArgs) -> Result<Outcome> {
    let n =
        merge(&a.into, &a.inputs).with_context(|| format!("merging into {}", a.into.display()))?;
    if !g.quiet {
        eprintln!(
            "cbr: merged {} journal(s) into {}: {n} chunk check(s) added",
            a.inputs.len(),
            a.into.display()
        );
    }
    Ok(Outcome::Ok)
}
