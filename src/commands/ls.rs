//! `cbr ls`: every backup on the share.

use super::{Global, JsonDoc, Outcome, human_bytes, print_findings, resolve_share};
use crate::cli::LsArgs;
use anyhow::Result;
use cbr::escape::terminal as t;
use cbr::share::scan::{IndexOptions, ShareIndex, Summary, index};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;

/// One backup as `ls --json` lists it (keys are the contract).
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    volume_id: Option<&'a str>,
    container: Cow<'a, str>,
    prefix: Cow<'a, str>,
    created_at: Option<&'a str>,
    name: Option<&'a str>,
    description: Option<&'a str>,
    parent_id: Option<&'a str>,
    kind: &'static str,
    chunks: u64,
    stored_bytes: u64,
    data_bytes: u64,
    compression: Vec<String>,
    sha_block_size: Option<u64>,
    /// Volume size the sha256file covers (entries × block size).
    size_bytes: Option<u64>,
    complete: bool,
}

fn row(b: &Summary) -> Row<'_> {
    Row {
        id: b.id(),
        volume_id: b.volume_id(),
        container: b.container(),
        prefix: b.prefix(),
        created_at: b.created_at(),
        name: b.name(),
        description: b.description(),
        parent_id: b.parent_id(),
        kind: if b.parent_id().is_some() {
            "incremental"
        } else {
            "full"
        },
        chunks: b.chunks,
        stored_bytes: b.stored_bytes,
        data_bytes: b.data_bytes,
        compression: b.compressions(),
        sha_block_size: b.sha.map(|s| s.0),
        size_bytes: b.sha.map(|s| s.1),
        complete: b.complete,
    }
}

/// A backup's row as JSON, with its last verification when a journal
/// was given (null: never).
fn row_json(b: &Summary, last: Option<&Last>) -> Result<serde_json::Value> {
    let mut r = serde_json::to_value(row(b))?;
    if let Some(last) = last {
        r["last_verified"] = match last.get(b.id()) {
            Some(l) => serde_json::json!({
                "oldest_ok_at": l.oldest_ok_at,
                "last_at": l.last_at,
                "failed": l.failed,
                "chunks": l.chunks,
            }),
            None => serde_json::Value::Null,
        };
    }
    Ok(r)
}

type Last = std::collections::HashMap<String, cbr::journal::BackupLast>;

pub fn run(g: &Global, args: LsArgs) -> Result<Outcome> {
    let share = resolve_share(g, &args.share)?;
    let json = args.json || args.json_lines;
    let found = index(&share, IndexOptions { sha_header: json })?;
    let last = super::journal::last_by_backup(&args.journal, &share)?;
    let outcome = if found.findings.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Ok
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json_lines {
        // One object per line: each backup, then each finding.
        for b in &found.backups {
            let line = serde_json::json!({ "backup": row_json(b, last.as_ref())? });
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        }
        for f in &found.findings {
            serde_json::to_writer(&mut out, &serde_json::json!({ "finding": f }))?;
            writeln!(out)?;
        }
        out.flush()?;
        return Ok(outcome);
    }
    if args.json {
        // {"backups": [...], "findings": [...]}, written row by row.
        let mut doc = JsonDoc::open(&mut out)?;
        doc.array("backups")?;
        for b in &found.backups {
            doc.item(&row_json(b, last.as_ref())?)?;
        }
        doc.close_array()?;
        doc.field("findings", &found.findings)?;
        doc.close()?;
        out.flush()?;
        return Ok(outcome);
    }
    if args.tree {
        print_tree(&mut out, &found)?;
    } else {
        print_table(&mut out, &found)?;
    }
    if let Some(last) = &last {
        writeln!(out, "\nlast verification (journal):")?;
        for b in &found.backups {
            let s = match last.get(b.id()) {
                None => "never".to_string(),
                Some(l) if l.failed => format!("FAILED ({})", super::journal::when(l.last_at)),
                Some(l) => format!(
                    "ok, every chunk proven since {}",
                    l.oldest_ok_at.map_or("-".into(), super::journal::when)
                ),
            };
            writeln!(out, "  {}  {s}", t(b.id()))?;
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
fn created(b: &Summary) -> String {
    b.created_at()
        .map(|c| t(c.get(..19).unwrap_or(c)).replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

/// An optional string from the share, as a terminal should show it.
fn shown(s: Option<&str>) -> std::borrow::Cow<'_, str> {
    s.map_or("-".into(), t)
}

fn print_table(out: &mut dyn Write, found: &ShareIndex) -> Result<()> {
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
            t(b.id()),
            shown(b.volume_id()),
            created(b),
            shown(b.name()),
            kind,
            b.chunks,
            human_bytes(b.stored_bytes),
            human_bytes(b.data_bytes),
            t(&b.compressions().join(",")),
            if b.complete { "" } else { "  (incomplete)" },
        )?;
    }
    writeln!(out, "{} backup(s)", found.backups.len())?;
    Ok(())
}

fn print_tree(out: &mut dyn Write, found: &ShareIndex) -> Result<()> {
    fn node<'a>(
        out: &mut dyn Write,
        found: &'a ShareIndex,
        b: &'a Summary,
        indent: &str,
        last: bool,
        root: bool,
        seen: &mut HashSet<&'a str>,
    ) -> Result<()> {
        if !seen.insert(b.id()) {
            return Ok(());
        }
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
            t(b.id()),
            created(b),
            shown(b.name()),
            b.chunks,
            human_bytes(b.data_bytes)
        )?;
        let kids: Vec<&Summary> = found.dependants(b.id()).collect();
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
    let mut seen = HashSet::new();
    // Roots: full backups, and incrementals whose parent is not on the share.
    for b in &found.backups {
        let orphan = b.parent_id().is_some_and(|p| found.summary(p).is_none());
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
