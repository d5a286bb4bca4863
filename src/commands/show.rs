//! `cbr show`: everything the share tells about one backup.

use super::{Global, Outcome, human_bytes, resolve_share};
use crate::cli::ShowArgs;
use anyhow::Result;
use cbr::escape::terminal as t;
use cbr::journal::BackupLast;
use cbr::share::Sha256File;
use cbr::share::one::Near;
use cbr::share::scan::{BackupEntry, Backups};
use std::io::Write;
use std::sync::Arc;

pub fn run(g: &Global, args: ShowArgs) -> Result<Outcome> {
    let share = resolve_share(g, &args.share)?;
    // One backup: its own directory and its parents', not a walk of the
    // share (issue 25); a walk only where Cinder's layout does not hold.
    let near = Near::new(&share)?.on_walk(super::check::walk_note(g.quiet));
    let b = near.find(&args.id)?;
    let chain = near.chain(b.clone());
    if args.dependants {
        near.walk(&format!(
            "--dependants: reading the whole share for the backups whose parent is {}",
            b.id
        ))?;
    }
    let (dependants, dependants_complete) = near.dependants(&b);
    if let Some(e) = near.walk_error() {
        anyhow::bail!("the share could not be read: {e}");
    }
    let sha = b
        .sha256_path
        .as_ref()
        .map(|_| b.open_sha256(&share))
        .transpose();
    let (sha, sha_err) = match sha {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let size_gib = sha.as_ref().map(|s| s.covered_bytes().div_ceil(1 << 30));
    let record = serde_json::json!({
        "id": b.id,
        "volume_id": b.metadata.volume_id,
        "container": b.container,
        "service_metadata": b.prefix,
        "object_count": b.metadata.objects.len(),
        "size": size_gib,
        "parent_id": b.parent_id(),
        "display_name": b.metadata.backup_name,
        "display_description": b.metadata.backup_description,
        "created_at": b.metadata.created_at,
    });
    let last =
        super::journal::last_by_backup(&args.journal, &share)?.map(|m| m.get(&b.id).copied());
    let shown = Shown {
        chain_complete: chain.first().is_some_and(|c| c.parent_id().is_none()),
        b: &b,
        chain,
        dependants,
        dependants_complete,
        sha,
        sha_err,
        record,
        last,
    };
    if args.json {
        render_json(&shown)?;
    } else {
        render_human(&shown)?;
    }
    Ok(Outcome::Ok)
}

/// What `show` tells about one backup.
struct Shown<'a> {
    b: &'a BackupEntry,
    /// Full first.
    chain: Vec<Arc<BackupEntry>>,
    chain_complete: bool,
    /// Backups whose parent it is: in the directories read, or (after a
    /// walk) on the whole share.
    dependants: Vec<String>,
    /// Whether `dependants` lists every one on the share (the share was walked).
    dependants_complete: bool,
    sha: Option<Sha256File>,
    /// Why the `_sha256file` could not be read.
    sha_err: Option<String>,
    /// What a record for it must contain.
    record: serde_json::Value,
    /// With `--journal`: its last verification, if any.
    last: Option<Option<BackupLast>>,
}

/// `show --json`: written as it is serialized, never as a tree: a
/// `_metadata` may list millions of chunks.
fn render_json(s: &Shown<'_>) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        id: &'a str,
        container: &'a str,
        prefix: &'a str,
        files: serde_json::Value,
        chunks: Chunks<'a>,
        chain: Vec<&'a str>,
        chain_complete: bool,
        dependants: &'a [String],
        dependants_complete: bool,
        record: &'a serde_json::Value,
        complete: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_verified: Option<serde_json::Value>,
    }
    let (b, sha) = (s.b, &s.sha);
    let doc = Doc {
        id: &b.id,
        container: &b.container,
        prefix: &b.prefix,
        files: serde_json::json!({
            "metadata": { "path": b.rel(&format!("{}_metadata", b.prefix)), "bytes": b.metadata_bytes },
            "sha256file": b.sha256_path.as_deref().map(|_| serde_json::json!({
                "path": b.rel(&format!("{}_sha256file", b.prefix)), "bytes": b.sha256_bytes,
                "entries": sha.as_ref().map(|s| s.len()),
                "block_size": sha.as_ref().map(|s| s.block_size()),
            })),
        }),
        chunks: Chunks(b),
        chain: s.chain.iter().map(|c| c.id.as_str()).collect(),
        chain_complete: s.chain_complete,
        dependants: &s.dependants,
        dependants_complete: s.dependants_complete,
        record: &s.record,
        complete: b.complete(),
        last_verified: s.last.map(serde_json::to_value).transpose()?,
    };
    super::print_json(&doc)
}

/// Every string below came from the share: shown through the terminal
/// escaper (the JSON is escaped by its serialiser).
fn opt(s: Option<&str>) -> std::borrow::Cow<'_, str> {
    s.map_or("-".into(), t)
}

/// `show` for a person, on stdout.
fn render_human(s: &Shown<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    render_about(&mut out, s)?;
    render_files(&mut out, s.b)?;
    render_chunks(&mut out, s.b)?;
    render_chain(&mut out, s)?;
    writeln!(out, "\nwhat a record for it must contain")?;
    if let serde_json::Value::Object(m) = &s.record {
        for (k, v) in m {
            match v {
                serde_json::Value::String(s) => writeln!(out, "  {k:<20} \"{}\"", t(s))?,
                v => writeln!(out, "  {k:<20} {}", t(&v.to_string()))?,
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The backup, its last verification, what its metadata says of it, and
/// the volume's size.
fn render_about(out: &mut dyn Write, s: &Shown<'_>) -> Result<()> {
    let b = s.b;
    writeln!(out, "backup      {}", t(&b.id))?;
    if let Some(l) = s.last {
        let s = match l {
            None => "never (not in the journal)".to_string(),
            Some(l) if l.failed => format!("FAILED at {}", super::journal::when(l.last_at)),
            Some(l) => format!(
                "ok, every chunk proven since {}",
                l.oldest_ok_at.map_or("-".into(), super::journal::when)
            ),
        };
        writeln!(out, "verified    {s}")?;
    }
    writeln!(out, "volume      {}", opt(b.metadata.volume_id.as_deref()))?;
    writeln!(
        out,
        "name        {}",
        opt(b.metadata.backup_name.as_deref())
    )?;
    writeln!(
        out,
        "description {}",
        opt(b.metadata.backup_description.as_deref())
    )?;
    writeln!(out, "created     {}", opt(b.metadata.created_at.as_deref()))?;
    writeln!(out, "container   {}", t(&b.container))?;
    writeln!(out, "prefix      {}", t(&b.prefix))?;
    match (&s.sha, &s.sha_err) {
        (Some(s), _) => writeln!(
            out,
            "volume size {} ({} hash blocks of {} bytes)",
            human_bytes(s.covered_bytes()),
            s.len(),
            s.block_size()
        )?,
        (None, Some(e)) => writeln!(out, "volume size unknown: {}", t(e))?,
        (None, None) => writeln!(out, "volume size unknown: no sha256file")?,
    }
    Ok(())
}

/// The backup's `_metadata` and `_sha256file`.
fn render_files(out: &mut dyn Write, b: &BackupEntry) -> Result<()> {
    writeln!(out, "\nfiles")?;
    writeln!(
        out,
        "  {:<10} {}",
        human_bytes(b.metadata_bytes),
        t(&b.rel(&format!("{}_metadata", b.prefix)))
    )?;
    match &b.sha256_path {
        Some(_) => writeln!(
            out,
            "  {:<10} {}",
            human_bytes(b.sha256_bytes),
            t(&b.rel(&format!("{}_sha256file", b.prefix)))
        )?,
        None => writeln!(out, "  {:<10} {}_sha256file (MISSING)", "-", t(&b.prefix))?,
    }
    Ok(())
}

/// The chunks table: each chunk as the metadata lists it and as stored.
fn render_chunks(out: &mut dyn Write, b: &BackupEntry) -> Result<()> {
    writeln!(
        out,
        "\nchunks ({}, {} of data)",
        b.metadata.objects.len(),
        human_bytes(b.metadata.data_bytes())
    )?;
    writeln!(
        out,
        "  {:<8} {:>14} {:>12} {:>10} {:<6} {:<32}",
        "OBJECT", "OFFSET", "LENGTH", "STORED", "COMP", "MD5"
    )?;
    for o in b.metadata.objects.iter() {
        let stored = b.chunk_file(&o.name).map_or("MISSING".to_string(), |c| {
            if c.is_file {
                human_bytes(c.size)
            } else {
                c.kind.describe().to_string()
            }
        });
        let short = o.name.rsplit('-').next().unwrap_or(&o.name);
        writeln!(
            out,
            "  {:<8} {:>14} {:>12} {:>10} {:<6} {}",
            t(short),
            o.offset,
            o.length,
            stored,
            t(o.compression.as_str()),
            t(&o.md5)
        )?;
    }
    Ok(())
}

/// The chain, full first, and the backups that depend on this one.
fn render_chain(out: &mut dyn Write, s: &Shown<'_>) -> Result<()> {
    writeln!(out, "\nchain (full first)")?;
    if !s.chain_complete {
        writeln!(
            out,
            "  parent {} is NOT on the share: the chain cannot be restored",
            t(s.chain.first().and_then(|c| c.parent_id()).unwrap_or("?"))
        )?;
    }
    for c in &s.chain {
        writeln!(
            out,
            "  {}  {}  {}",
            t(&c.id),
            opt(c.metadata.created_at.as_deref()),
            if c.parent_id().is_none() {
                "full"
            } else {
                "incremental"
            }
        )?;
    }
    let list = if s.dependants.is_empty() {
        "none".to_string()
    } else {
        t(&s.dependants.join(", ")).into_owned()
    };
    if s.dependants_complete {
        if !s.dependants.is_empty() {
            writeln!(out, "\ndependants: {list}")?;
        }
    } else {
        // Only a walk of the whole share finds them all: say how.
        writeln!(
            out,
            "\ndependants in the containers read (its own and its chain's): {list} (those elsewhere \
             on the share are not looked for: cbr show --dependants {} reads the whole share to \
             list them all)",
            t(&s.b.id)
        )?;
    }
    Ok(())
}

/// The `chunks` of `show --json`, one object per chunk, serialized from
/// the metadata as they are written.
struct Chunks<'a>(&'a cbr::share::BackupEntry);

impl serde::Serialize for Chunks<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            name: &'a str,
            offset: u64,
            length: u64,
            stored_bytes: Option<u64>,
            compression: &'a str,
            md5: &'a str,
        }
        let b = self.0;
        s.collect_seq(b.metadata.objects.iter().map(|o| Row {
            name: &o.name,
            offset: o.offset,
            length: o.length,
            stored_bytes: b.chunk_file(&o.name).filter(|c| c.is_file).map(|c| c.size),
            compression: o.compression.as_str(),
            md5: &o.md5,
        }))
    }
}
