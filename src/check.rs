//! A record against the share, before import: will the target Cinder find
//! and restore this backup? (format doc, sections 2-7)
//!
//! [`backup_findings`] holds the checks of one backup that need no record
//! (shared with `verify`); [`check_record`] adds what the record says.

use crate::findings::{Finding, Findings};
use crate::record::{Decoded, Era, Record};
use crate::share::scan::is_chunk_of;
use crate::share::{BackupEntry, BackupMetadata, Sha256File, Share, ShareScan};
use std::path::{Component, Path, PathBuf};

const GIB: u64 = 1 << 30;

/// The checks of one backup on the share that need no record: metadata vs
/// chunk files, sha256file, coverage, alignment, sizes, parents. Used by
/// `check` (after the record checks) and by `verify` without `--deep`.
pub fn backup_findings(_share: &Share, scan: &ShareScan, backup: &BackupEntry) -> Findings {
    let mut out = Findings::new();
    let id = backup.id.clone();
    let err = |code: &'static str, msg: String, path: String| {
        Finding::error(code, msg).backup(id.clone()).path(path)
    };
    let warning = |code: &'static str, msg: String, path: String| {
        Finding::warning(code, msg).backup(id.clone()).path(path)
    };
    let m = &backup.metadata;
    // Chunk files against the metadata, as Cinder's restore compares them.
    for o in &m.objects {
        match backup.chunk_files.iter().find(|c| c.name == o.name) {
            None => out.push(err(
                "object-missing",
                format!(
                    "chunk {} listed in the metadata is not in the container: restore will fail",
                    o.name
                ),
                backup.rel(&o.name),
            )),
            Some(c) if !c.is_file => out.push(err(
                "read-failed",
                format!(
                    "chunk {} is {}, not a file: it cannot be read",
                    o.name,
                    c.kind.describe()
                ),
                backup.rel(&o.name),
            )),
            Some(c) if c.size == 0 => out.push(err(
                "chunk-empty",
                format!(
                    "chunk {} is an empty file: its {} bytes of data are lost",
                    o.name, o.length
                ),
                backup.rel(&o.name),
            )),
            Some(_) => {}
        }
    }
    for c in &backup.chunk_files {
        if !m.objects.iter().any(|o| o.name == c.name) {
            out.push(err(
                "object-unlisted",
                format!(
                    "{} has the backup's prefix but the metadata does not list it: Cinder's restore \
                     refuses a container whose objects differ from the metadata; move it away",
                    c.name
                ),
                backup.rel(&c.name),
            ));
        }
    }
    // The sha256file.
    let sha_rel = backup.rel(&format!("{}_sha256file", backup.prefix));
    let sha = match &backup.sha256_path {
        None => {
            out.push(err(
                "sha256file-missing",
                format!("{}_sha256file is missing: incrementals of this backup and verification need it", backup.prefix),
                sha_rel.clone(),
            ));
            None
        }
        Some(p) => match Sha256File::open(p) {
            Ok(s) => Some(s),
            Err(e) => {
                out.push(err("sha256file-invalid", e.to_string(), sha_rel.clone()));
                None
            }
        },
    };
    if let Some(s) = &sha {
        if s.header()
            .backup_id
            .as_deref()
            .is_some_and(|b| b != backup.id)
        {
            out.push(err(
                "id-mismatch",
                format!(
                    "the sha256file names backup {}, the metadata {}",
                    s.header().backup_id.as_deref().unwrap_or("?"),
                    backup.id
                ),
                sha_rel.clone(),
            ));
        }
        let block = s.block_size();
        for o in &m.objects {
            if o.offset % block != 0 {
                out.push(err(
                    "offset-unaligned",
                    format!(
                        "chunk {} starts at {}, not a multiple of the hash block size {block}",
                        o.name, o.offset
                    ),
                    backup.rel(&o.name),
                ));
            }
        }
        if s.covered_bytes() % GIB != 0 {
            out.push(warning(
                "size-mismatch",
                format!(
                    "the sha256file covers {} bytes ({} blocks of {block}), not a whole number of GiB as a Cinder volume is",
                    s.covered_bytes(),
                    s.len()
                ),
                sha_rel.clone(),
            ));
        }
        let end = m
            .objects
            .iter()
            .map(|o| o.offset + o.length)
            .max()
            .unwrap_or(0);
        if end > s.covered_bytes() {
            out.push(err(
                "size-mismatch",
                format!(
                    "the chunks reach byte {end}, beyond the {} bytes the sha256file covers",
                    s.covered_bytes()
                ),
                sha_rel.clone(),
            ));
        }
        if backup.parent_id().is_none() {
            coverage(&mut out, backup, s.covered_bytes());
        }
    }
    // The chain down to the full backup.
    let mut cur = backup;
    let mut seen = vec![backup.id.clone()];
    while let Some(pid) = cur.parent_id() {
        let Some(parent) = scan.backups.iter().find(|b| b.id == pid) else {
            out.push(err(
                "parent-missing",
                format!(
                    "backup {} needs its parent {pid}, which is not on the share: the chain cannot be restored",
                    cur.id
                ),
                cur.rel(&format!("{}_metadata", cur.prefix)),
            ));
            break;
        };
        if seen.contains(&parent.id) {
            out.push(err(
                "parent-missing",
                format!("the chain of {} loops at {pid}", backup.id),
                String::new(),
            ));
            break;
        }
        seen.push(parent.id.clone());
        if let (Some(s), Some(pp)) = (&sha, parent.sha256_path.as_deref())
            && cur.id == backup.id
            && let Ok(ps) = Sha256File::open(pp)
        {
            if ps.block_size() != s.block_size() {
                out.push(err(
                    "parent-mismatch",
                    format!("parent {pid} hashes blocks of {}, this backup of {}: Cinder cannot restore the chain", ps.block_size(), s.block_size()),
                    sha_rel.clone(),
                ));
            } else if ps.covered_bytes() < s.covered_bytes() {
                out.push(err(
                    "parent-mismatch",
                    format!("parent {pid} is of a smaller volume ({} bytes) than this backup ({} bytes)", ps.covered_bytes(), s.covered_bytes()),
                    sha_rel.clone(),
                ));
            }
        }
        cur = parent;
    }
    out
}

/// A full backup's chunks must cover `0 .. size` contiguously.
fn coverage(out: &mut Findings, backup: &BackupEntry, size: u64) {
    let mut objs: Vec<_> = backup.metadata.objects.iter().collect();
    objs.sort_by_key(|o| o.offset);
    let mut pos = 0u64;
    for o in objs {
        if o.offset > pos {
            out.push(
                Finding::error(
                    "coverage-gap",
                    format!("no chunk covers volume bytes {pos}..{} before chunk {}: a full backup must cover the whole volume", o.offset, o.name),
                )
                .backup(backup.id.clone())
                .path(backup.rel(&o.name)),
            );
        } else if o.offset < pos {
            out.push(
                Finding::error(
                    "coverage-gap",
                    format!(
                        "chunk {} starts at {} inside the previous chunk (which ends at {pos})",
                        o.name, o.offset
                    ),
                )
                .backup(backup.id.clone())
                .path(backup.rel(&o.name)),
            );
        }
        pos = pos.max(o.offset + o.length);
    }
    if pos < size {
        out.push(
            Finding::error(
                "coverage-gap",
                format!("the chunks end at byte {pos}, the volume at {size}: the end of the volume is not backed up"),
            )
            .backup(backup.id.clone())
            .path(backup.rel(&format!("{}_metadata", backup.prefix))),
        );
    }
}

/// What to check a record for.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The backup service of the target cloud.
    pub target_service: String,
}

/// The verdict on one record (`check --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub backup_id: Option<String>,
    pub ok: bool,
    pub findings: Findings,
}

fn str_field<'a>(r: &'a Record, k: &str) -> Option<&'a str> {
    r.get(k).and_then(|v| v.as_str())
}

/// Resolve a record's container inside the share, refusing escapes.
/// `Ok(None)` when it does not exist.
fn resolve_container(share: &Share, container: &str) -> Result<Option<PathBuf>, String> {
    let p = Path::new(container);
    if p.is_absolute() {
        return Err(format!(
            "container {container:?} is an absolute path: containers are relative to the share"
        ));
    }
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "container {container:?} climbs out of the share with '..'"
        ));
    }
    let mut cur = share.root.clone();
    for c in p.components() {
        match c {
            Component::Normal(n) => cur.push(n),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "container {container:?} climbs out of the share with '..'"
                ));
            }
        }
        match std::fs::symlink_metadata(&cur) {
            Err(_) => return Ok(None),
            Ok(m) if m.file_type().is_symlink() => {
                let real = std::fs::canonicalize(&cur).map_err(|e| {
                    format!("container {container:?} goes through a broken link: {e}")
                })?;
                let root = std::fs::canonicalize(&share.root).map_err(|e| e.to_string())?;
                if !real.starts_with(&root) {
                    return Err(format!(
                        "container {container:?} goes through a symbolic link to {}, outside the share",
                        real.display()
                    ));
                }
            }
            Ok(_) => {}
        }
    }
    Ok(cur.is_dir().then_some(cur))
}

/// Check one decoded record against the share. `batch` holds the other
/// records of the same input (parents among them count as imported).
pub fn check_record(
    share: &Share,
    scan: &ShareScan,
    d: &Decoded,
    batch: &[&Record],
    opts: &CheckOptions,
) -> CheckReport {
    let rec = &d.record;
    let id = str_field(rec, "id").map(str::to_owned);
    let mut out = crate::record::lint::lint(rec, d.backup_service.as_deref(), batch);
    let err =
        |code: &'static str, msg: String| Finding::error(code, msg).maybe_backup(id.as_deref());
    // Would the target's backup service take it?
    let service = d
        .backup_service
        .as_deref()
        .or_else(|| str_field(rec, "service"));
    if let Some(s) = service
        && !opts.target_service.starts_with(s)
    {
        out.push(err(
            "service-not-accepted",
            format!(
                "the record's backup_service {s:?} is not a prefix of the target's {:?}: import will refuse it",
                opts.target_service
            ),
        ));
    }
    let finish = |out: Findings| CheckReport {
        backup_id: id.clone(),
        ok: !out.has_errors(),
        findings: out,
    };
    let Some(container) = str_field(rec, "container") else {
        return finish(out);
    };
    let dir = match resolve_container(share, container) {
        Err(msg) => {
            if !out.iter().any(|f| f.code == "container-escapes-share") {
                out.push(err("container-escapes-share", msg).path(container.to_string()));
            }
            return finish(out);
        }
        Ok(None) => {
            let elsewhere = id
                .as_deref()
                .and_then(|i| scan.backups.iter().find(|b| b.id == i));
            let hint = match elsewhere {
                Some(b) => format!(
                    "; backup {} is on the share in {:?}: the record may have been edited — set container to that",
                    b.id, b.container
                ),
                None => String::new(),
            };
            out.push(
                err(
                    "container-missing",
                    format!("container {container:?} is not on the share{hint}"),
                )
                .path(container.to_string()),
            );
            return finish(out);
        }
        Ok(Some(dir)) => dir,
    };
    let Some(prefix) = str_field(rec, "service_metadata") else {
        return finish(out);
    };
    let rel = |name: &str| format!("{}/{name}", container.trim_end_matches('/'));
    let meta_name = format!("{prefix}_metadata");
    let meta = match std::fs::read(dir.join(&meta_name)) {
        Err(_) => {
            out.push(err(
                "metadata-missing",
                format!("{meta_name} is not in the container: the object prefix (service_metadata) names no backup there"),
            ).path(rel(&meta_name)));
            return finish(out);
        }
        Ok(bytes) => match BackupMetadata::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                out.push(
                    err(
                        "metadata-invalid",
                        format!("{meta_name} cannot be read: {e}"),
                    )
                    .path(rel(&meta_name)),
                );
                return finish(out);
            }
        },
    };
    if let Some(i) = &id
        && &meta.backup_id != i
    {
        out.push(
            err(
                "id-mismatch",
                format!(
                    "the metadata belongs to backup {}, the record is {i}",
                    meta.backup_id
                ),
            )
            .path(rel(&meta_name)),
        );
    }
    if let (Some(rv), Some(mv)) = (str_field(rec, "volume_id"), meta.volume_id.as_deref())
        && rv != mv
    {
        out.push(
            err(
                "volume-id-mismatch",
                format!("the record's volume_id is {rv}, the metadata's {mv}"),
            )
            .path(rel(&meta_name)),
        );
    }
    for (field, mine) in [
        ("display_name", &meta.backup_name),
        ("display_description", &meta.backup_description),
    ] {
        let theirs = rec.get(field).and_then(|v| v.as_str());
        if rec.contains_key(field) && theirs != mine.as_deref() {
            out.push(
                Finding::warning(
                    "name-mismatch",
                    format!("the record's {field} is {theirs:?}, the metadata's {mine:?}"),
                )
                .maybe_backup(id.as_deref()),
            );
        }
    }
    // The backup as the scan saw it (the same container and prefix).
    let rel_dir = dir
        .strip_prefix(&share.root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entry = scan
        .backups
        .iter()
        .find(|b| b.prefix == prefix && b.container == rel_dir);
    let chunks = meta.objects.len() as u64;
    if let Some(count) = rec.get("object_count").and_then(|v| v.as_u64()) {
        let legacy = d.source.era != Era::Current || prefix == crate::share::LEGACY_PREFIX;
        if count == chunks {
        } else if count == chunks + 1 && legacy {
            out.push(
                Finding::info(
                    "object-count-legacy",
                    format!("object_count {count} is chunks + 1 ({chunks} chunks), the pre-Stein convention: current Cinder imports it fine"),
                )
                .maybe_backup(id.as_deref()),
            );
        } else if count == chunks + 1 {
            out.push(err(
                "object-count-mismatch",
                format!("object_count is {count}, the metadata lists {chunks} chunks: chunks + 1 is the pre-Stein convention, but this record is current"),
            ));
        } else {
            out.push(err(
                "object-count-mismatch",
                format!("object_count is {count}, the metadata lists {chunks} chunks"),
            ));
        }
    }
    // Files with the prefix, as Cinder lists them (not only NNNNN names).
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(prefix)
                && n != meta_name
                && n != format!("{prefix}_sha256file")
                && !is_chunk_of(&n, prefix)
                && !meta.objects.iter().any(|o| o.name == n)
            {
                out.push(err(
                    "object-unlisted",
                    format!("{n} starts with the object prefix but the metadata does not list it: Cinder's restore will refuse the container"),
                ).path(rel(&n)));
            }
        }
    }
    match entry {
        Some(b) => {
            let bf = backup_findings(share, scan, b);
            if let (Some(size), Some(sp)) = (
                rec.get("size").and_then(|v| v.as_u64()),
                b.sha256_path.as_deref(),
            ) && let Ok(s) = Sha256File::open(sp)
                && s.covered_bytes() != size * GIB
            {
                out.push(err(
                    "size-mismatch",
                    format!(
                        "the record says {size} GiB, the sha256file covers {} bytes ({} blocks of {})",
                        s.covered_bytes(),
                        s.len(),
                        s.block_size()
                    ),
                ));
            }
            out.extend(bf);
        }
        None => out.push(err(
            "metadata-invalid",
            format!("{meta_name} is not a backup the share scan could read"),
        )),
    }
    // parent_id: the record and the metadata must agree.
    let rp = rec.get("parent_id").and_then(|v| v.as_str());
    if rec.contains_key("parent_id") && rp != meta.parent_id.as_deref() {
        out.push(err(
            "parent-id-mismatch",
            format!(
                "the record's parent_id is {rp:?}, the metadata's {:?}: restore follows the record",
                meta.parent_id
            ),
        ));
    }
    if let Some(p) = rp
        && meta.parent_id.as_deref() != Some(p)
        && !scan.backups.iter().any(|b| b.id == p)
    {
        out.push(err(
            "parent-missing",
            format!("the parent {p} is not on the share"),
        ));
    }
    finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_escapes_are_refused() {
        let share = Share::new(env!("CARGO_MANIFEST_DIR"));
        assert!(resolve_container(&share, "/etc").is_err());
        assert!(resolve_container(&share, "a/../../etc").is_err());
        assert_eq!(resolve_container(&share, "no/such/dir").unwrap(), None);
        assert!(resolve_container(&share, "fixtures").unwrap().is_some());
    }
}
