//! `cbr ls`: every backup on the share.

use super::{Global, Outcome, human_bytes, print_findings, resolve_share};
use crate::cli::LsArgs;
use anyhow::Result;
use cbr::escape::terminal as t;
use cbr::share::Share;
use cbr::share::scan::{BackupEntry, ShareScan, scan};
use serde::Serialize;
use std::io::Write;

/// One backup as `ls --json` lists it (keys are the contract).
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    volume_id: Option<&'a str>,
    container: &'a str,
    prefix: &'a str,
    created_at: Option<&'a str>,
    name: Option<&'a str>,
    description: Option<&'a str>,
    parent_id: Option<&'a str>,
    kind: &'static str,
    chunks: usize,
    stored_bytes: u64,
    data_bytes: u64,
    compression: Vec<String>,
    sha_block_size: Option<u64>,
    /// Volume size the sha256file covers (entries × block size).
    size_bytes: Option<u64>,
    complete: bool,
}

fn row<'a>(share: &Share, b: &'a BackupEntry) -> Row<'a> {
    let sha = b
        .sha256_path
        .as_ref()
        .and_then(|_| b.open_sha256(share).ok());
    Row {
        id: &b.id,
        volume_id: b.metadata.volume_id.as_deref(),
        container: &b.container,
        prefix: &b.prefix,
        created_at: b.metadata.created_at.as_deref(),
        name: b.metadata.backup_name.as_deref(),
        description: b.metadata.backup_description.as_deref(),
        parent_id: b.parent_id(),
        kind: if b.parent_id().is_some() {
            "incremental"
        } else {
            "full"
        },
        chunks: b.metadata.objects.len(),
        stored_bytes: b.stored_bytes(),
        data_bytes: b.metadata.data_bytes(),
        compression: b.metadata.compressions(),
        sha_block_size: sha.as_ref().map(|s| s.block_size()),
        size_bytes: sha.as_ref().map(|s| s.covered_bytes()),
        complete: b.complete(),
    }
}

pub fn run(g: &Global, args: LsArgs) -> Result<Outcome> {
    let share = resolve_share(g, &args.share)?;
    let found = scan(&share)?;
    let last = super::journal::last_by_backup(&args.journal, &share)?;
    let outcome = if found.findings.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Ok
    };
    if args.json {
        use rayon::prelude::*;
        // Reading each sha256file's header is the costly part: in parallel.
        let rows: Vec<Row> = found.backups.par_iter().map(|b| row(&share, b)).collect();
        let mut doc = serde_json::json!({
            "backups": rows,
            "findings": found.findings,
        });
        // With --journal: each backup's last verification (null: never).
        if let (Some(last), Some(list)) = (&last, doc["backups"].as_array_mut()) {
            for (r, b) in list.iter_mut().zip(&found.backups) {
                r["last_verified"] = match last.get(&b.id) {
                    Some(l) => serde_json::json!({
                        "oldest_ok_at": l.oldest_ok_at,
                        "last_at": l.last_at,
                        "failed": l.failed,
                        "chunks": l.chunks,
                    }),
                    None => serde_json::Value::Null,
                };
            }
        }
        super::print_json(&doc)?;
        return Ok(outcome);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.tree {
        print_tree(&mut out, &share, &found)?;
    } else {
        print_table(&mut out, &found)?;
    }
    if let Some(last) = &last {
        writeln!(out, "\nlast verification (journal):")?;
        for b in &found.backups {
            let s = match last.get(&b.id) {
                None => "never".to_string(),
                Some(l) if l.failed => format!("FAILED ({})", super::journal::when(l.last_at)),
                Some(l) => format!(
                    "ok, every chunk proven since {}",
                    l.oldest_ok_at.map_or("-".into(), super::journal::when)
                ),
            };
            writeln!(out, "  {}  {s}", t(&b.id))?;
        }
    }
    if !found.findings.is_empty() {
        writeln!(out)?;
        print_findings(&mut out, &found.findings)?;
    }
    out.flush()?;
    Ok(outcome)
}

/// The creation time as shown (the metadata's text: escaped).
fn created(b: &BackupEntry) -> String {
    b.metadata
        .created_at
        .as_deref()
        .map(|c| t(c.get(..19).unwrap_or(c)).replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

/// An optional string from the share, as a terminal should show it.
fn shown(s: Option<&str>) -> std::borrow::Cow<'_, str> {
    s.map_or("-".into(), t)
}

fn print_table(out: &mut dyn Write, found: &ShareScan) -> Result<()> {
    writeln!(
        out,
        "{:<36}  {:<36}  {:<19}  {:<20}  {:<20}  {:>6}  {:>10}  {:>10}  COMPRESSION",
        "ID", "VOLUME", "CREATED", "NAME", "KIND", "CHUNKS", "STORED", "DATA"
    )?;
    for b in &found.backups {
        let kind = match b.parent_id() {
            Some(p) => format!("incr of {}", t(p.get(..8).unwrap_or(p))),
            None => "full".into(),
        };
        writeln!(
            out,
            "{:<36}  {:<36}  {:<19}  {:<20}  {:<20}  {:>6}  {:>10}  {:>10}  {}{}",
            t(&b.id),
            shown(b.metadata.volume_id.as_deref()),
            created(b),
            shown(b.metadata.backup_name.as_deref()),
            kind,
            b.metadata.objects.len(),
            human_bytes(b.stored_bytes()),
            human_bytes(b.metadata.data_bytes()),
            t(&b.metadata.compressions().join(",")),
            if b.complete() { "" } else { "  (incomplete)" },
        )?;
    }
    writeln!(out, "{} backup(s)", found.backups.len())?;
    Ok(())
}

fn print_tree(out: &mut dyn Write, _share: &Share, found: &ShareScan) -> Result<()> {
    fn node(
        out: &mut dyn Write,
        found: &ShareScan,
        b: &BackupEntry,
        indent: &str,
        last: bool,
        root: bool,
        seen: &mut Vec<String>,
    ) -> Result<()> {
        if seen.contains(&b.id) {
            return Ok(());
        }
        seen.push(b.id.clone());
        let branch = if root {
            ""
        } else if last {
            "└── "
        } else {
            "├── "
        };
        writeln!(
            out,
            "{indent}{branch}{}  {}  {}  {} chunks, {}",
            t(&b.id),
            created(b),
            shown(b.metadata.backup_name.as_deref()),
            b.metadata.objects.len(),
            human_bytes(b.metadata.data_bytes())
        )?;
        let kids = b.dependants(found);
        let child_indent = if root {
            indent.to_string()
        } else {
            format!("{indent}{}", if last { "    " } else { "│   " })
        };
        for (i, k) in kids.iter().enumerate() {
            node(
                out,
                found,
                k,
                &child_indent,
                i + 1 == kids.len(),
                false,
                seen,
            )?;
        }
        Ok(())
    }
    let mut seen = Vec::new();
    // Roots: full backups, and incrementals whose parent is not on the share.
    for b in &found.backups {
        let orphan = b
            .parent_id()
            .is_some_and(|p| !found.backups.iter().any(|x| x.id == p));
        if b.parent_id().is_none() || orphan {
            if orphan {
                writeln!(
                    out,
                    "(parent {} not on the share)",
                    t(b.parent_id().unwrap_or("?"))
                )?;
            }
            node(out, found, b, "", true, true, &mut seen)?;
        }
    }
    Ok(())
}
