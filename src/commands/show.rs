//! `cbr show`: everything the share tells about one backup.

use super::{Global, Outcome, human_bytes, resolve_share};
use crate::cli::ShowArgs;
use anyhow::Result;
use cbr::escape::terminal as t;
use cbr::share::scan::scan;
use std::io::Write;

pub fn run(g: &Global, args: ShowArgs) -> Result<Outcome> {
    let share = resolve_share(g, &args.share)?;
    let found = scan(&share)?;
    let b = found.find(&args.id)?;
    let chain = found.chain(b);
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
    let chain_ids: Vec<&str> = chain.iter().map(|c| c.id.as_str()).collect();
    let dependants: Vec<&str> = b.dependants(&found).iter().map(|c| c.id.as_str()).collect();
    let chain_complete = chain.first().is_some_and(|c| c.parent_id().is_none());
    let last =
        super::journal::last_by_backup(&args.journal, &share)?.map(|m| m.get(&b.id).copied());
    if args.json {
        // Written as it is serialized, never as a tree: a `_metadata` may
        // list millions of chunks.
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            id: &'a str,
            container: &'a str,
            prefix: &'a str,
            files: serde_json::Value,
            chunks: Chunks<'a>,
            chain: Vec<&'a str>,
            chain_complete: bool,
            dependants: Vec<&'a str>,
            record: serde_json::Value,
            complete: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            last_verified: Option<serde_json::Value>,
        }
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
            chain: chain_ids,
            chain_complete,
            dependants,
            record,
            complete: b.complete(),
            last_verified: last.map(serde_json::to_value).transpose()?,
        };
        super::print_json(&doc)?;
        return Ok(Outcome::Ok);
    }
    let mut out = std::io::stdout().lock();
    // Every string below came from the share: shown through the terminal
    // escaper (the JSON above is escaped by its serialiser).
    fn opt(s: Option<&str>) -> std::borrow::Cow<'_, str> {
        s.map_or("-".into(), t)
    }
    writeln!(out, "backup      {}", t(&b.id))?;
    if let Some(l) = last {
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
    match (&sha, &sha_err) {
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
    for o in &b.metadata.objects {
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
    writeln!(out, "\nchain (full first)")?;
    if !chain_complete {
        writeln!(
            out,
            "  parent {} is NOT on the share: the chain cannot be restored",
            t(chain.first().and_then(|c| c.parent_id()).unwrap_or("?"))
        )?;
    }
    for c in &chain {
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
    if !dependants.is_empty() {
        writeln!(out, "\ndependants: {}", t(&dependants.join(", ")))?;
    }
    writeln!(out, "\nwhat a record for it must contain")?;
    if let serde_json::Value::Object(m) = &record {
        for (k, v) in m {
            match v {
                serde_json::Value::String(s) => writeln!(out, "  {k:<20} \"{}\"", t(s))?,
                v => writeln!(out, "  {k:<20} {}", t(&v.to_string()))?,
            }
        }
    }
    out.flush()?;
    Ok(Outcome::Ok)
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
