//! A record against the share, before import: will the target Cinder find
//! and restore this backup? (format doc, sections 2-7)
//!
//! [`check_record`] adds what the record says to what the backup's files
//! say about themselves ([`crate::structure`], shared with `verify` and
//! `restore`), in a sequence of named steps, each pushing findings.
//! Everything read from the share goes through [`crate::share::access`].

use crate::findings::{Finding, Findings};
use crate::record::{Decoded, Era, Record};
use crate::share::ShareDir;
use crate::share::metadata::MAX_VOLUME_BYTES;
use crate::share::metadata::ReadError;
use crate::share::scan::{Backups, MAX_DEPTH, backups_in_dir, is_chunk_of};
use crate::share::source::{check_name, components, join};
use crate::share::{AccessError, BackupEntry, BackupMetadata, Share};
use std::collections::HashSet;
use std::sync::Arc;

const GIB: u64 = 1 << 30;

pub use crate::structure::{PER_CODE, backup_findings};

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
    /// What Cinder 29 will do with it, why, and what to do
    /// ([`crate::verdict`]): `verdict`, `data_read`, `advice`.
    #[serde(flatten)]
    pub judgement: crate::verdict::Judgement,
    pub findings: Findings,
}

impl CheckReport {
    /// Judge the findings again (after more were added, e.g. by `--deep`).
    pub fn rejudge(&mut self, scan: &dyn Backups, data_read: bool) {
        self.ok = !self.findings.has_errors();
        self.judgement = crate::verdict::judge(&self.findings, scan, data_read);
    }
}

fn str_field<'a>(r: &'a Record, k: &str) -> Option<&'a str> {
    r.get(k).and_then(|v| v.as_str())
}

/// Resolve a record's container inside the share, refusing escapes
/// (absolute, `..`, links). `Ok(None)` when it does not exist.
fn resolve_container(share: &Share, container: &str) -> Result<Option<ShareDir>, String> {
    if let Err(e) = components(container) {
        return Err(format!(
            "container {container:?}: {}",
            match e {
                AccessError::BadName { reason, .. } => reason.to_string(),
                e => e.to_string(),
            }
        ));
    }
    match share.open_dir(container) {
        Ok(d) => Ok(Some(d)),
        Err(AccessError::NotFound { .. }) | Err(AccessError::NotDirectory { .. }) => Ok(None),
        Err(AccessError::Symlink { path }) => Err(format!(
            "container {container:?} goes through the symbolic link {path}: cbr does not follow links out of (or within) the share"
        )),
        Err(e) => Err(format!("container {container:?}: {e}")),
    }
}

/// One record being checked: what it says, and the findings so far.
struct RecordCheck<'a> {
    d: &'a Decoded,
    id: Option<String>,
    out: Findings,
}

impl RecordCheck<'_> {
    fn rec(&self) -> &Record {
        &self.d.record
    }
    fn error(&mut self, code: &'static str, msg: String) -> &mut Finding {
        self.out
            .push(Finding::error(code, msg).maybe_backup(self.id.as_deref()));
        let n = self.out.0.len() - 1;
        &mut self.out.0[n]
    }
    fn error_at(&mut self, code: &'static str, msg: String, path: String) {
        self.error(code, msg).path = Some(path);
    }
}

/// Check one decoded record against the share. `batch` holds the records
/// of the same input (parents among them count as imported). `scan`
/// answers for backups by id (its parents, where it really is): the whole
/// share's index, or the few backups around this one
/// ([`crate::share::one::Near`], which walks the share only when a backup
/// is not where Cinder's layout puts it).
pub fn check_record(
    share: &Share,
    scan: &dyn Backups,
    d: &Decoded,
    batch: &crate::record::lint::Batch<'_>,
    opts: &CheckOptions,
) -> CheckReport {
    let id = str_field(&d.record, "id").map(str::to_owned);
    let mut c = RecordCheck {
        d,
        id: id.clone(),
        out: crate::record::lint::lint_decoded(d, batch),
    };
    target_service(&mut c, opts);
    against_share(&mut c, share, scan);
    CheckReport {
        backup_id: id,
        ok: !c.out.has_errors(),
        judgement: crate::verdict::judge(&c.out, scan, false),
        findings: c.out,
    }
}

/// Step: would the target's backup service take it?
fn target_service(c: &mut RecordCheck, opts: &CheckOptions) {
    let service =
        c.d.backup_service
            .as_deref()
            .or_else(|| str_field(c.rec(), "service"))
            .map(str::to_owned);
    if let Some(s) = service
        && !opts.target_service.starts_with(&s)
    {
        c.error(
            "service-not-accepted",
            format!(
                "the record's backup_service {s:?} is not a prefix of the target's {:?}: import will refuse it",
                opts.target_service
            ),
        );
    }
}

/// Steps that need the share: container, metadata, ids, object count,
/// prefix files, size, parents.
fn against_share(c: &mut RecordCheck, share: &Share, scan: &dyn Backups) {
    let Some(container) = str_field(c.rec(), "container").map(str::to_owned) else {
        return;
    };
    let Some(dir) = container_dir(c, share, scan, &container) else {
        return;
    };
    let Some(prefix) = str_field(c.rec(), "service_metadata").map(str::to_owned) else {
        return;
    };
    if let Err(reason) = check_name(&format!("{prefix}_metadata")) {
        c.error_at(
            "name-invalid",
            format!("service_metadata {prefix:?} (the object prefix) is not a file name in the container: {reason}"),
            container.clone(),
        );
        return;
    }
    let rel = |name: &str| join(dir.rel.as_str(), name);
    let Some(meta) = record_metadata(c, &dir, &prefix) else {
        return;
    };
    identity(c, &meta, &rel(&format!("{prefix}_metadata")));
    object_count(c, &meta, &prefix);
    prefix_files(c, &dir, &meta, &prefix);
    // The backup of that metadata in that container: by its id (one
    // look-up), else from the container itself (ids repeated elsewhere).
    let entry = scan
        .get(&meta.backup_id)
        .filter(|b| b.prefix == prefix && b.container == dir.rel)
        .or_else(|| in_dir(share, &dir.rel, &prefix));
    match entry {
        Some(b) => {
            record_size(c, share, &b);
            c.out.extend(backup_findings(share, scan, &b));
        }
        None => {
            c.error(
                "metadata-invalid",
                format!("{prefix}_metadata is not a backup the share scan could read"),
            );
        }
    }
    parents(c, scan, &meta);
}

/// The backup of object prefix `prefix` in directory `rel`, as a walk
/// finds it there (a walk reads no deeper than [`MAX_DEPTH`]).
fn in_dir(share: &Share, rel: &str, prefix: &str) -> Option<Arc<BackupEntry>> {
    if components(rel).ok()?.len() > MAX_DEPTH {
        return None;
    }
    let (backups, _) = backups_in_dir(share, rel).ok()?;
    backups
        .into_iter()
        .find(|b| b.prefix == prefix)
        .map(Arc::new)
}

/// Step: the container, resolved without leaving the share.
fn container_dir(
    c: &mut RecordCheck,
    share: &Share,
    scan: &dyn Backups,
    container: &str,
) -> Option<ShareDir> {
    match resolve_container(share, container) {
        Ok(Some(d)) => Some(d),
        Err(msg) => {
            if !c.out.iter().any(|f| f.code == "container-escapes-share") {
                c.error_at("container-escapes-share", msg, container.to_string());
            }
            None
        }
        Ok(None) => {
            let hint = match c.id.as_deref().and_then(|i| scan.get(i)) {
                // Found one level down, under the record's container: the
                // record is right and --share is one level too high.
                Some(b) if b.container.ends_with(&format!("/{container}")) => {
                    let top = &b.container[..b.container.len() - container.len() - 1];
                    let root = share.root.join(top);
                    format!(
                        "; backup {} is on the share in {:?}, below {top}/: the share root is probably {} \
                         (give --share {}); the record is right, do not edit it",
                        b.id,
                        b.container,
                        root.display(),
                        root.display()
                    )
                }
                Some(b) => format!(
                    "; backup {} is on the share in {:?}: the record may have been edited — set container to that",
                    b.id, b.container
                ),
                None => String::new(),
            };
            c.error_at(
                "container-missing",
                format!("container {container:?} is not on the share{hint}"),
                container.to_string(),
            );
            None
        }
    }
}

/// Step: exactly `<container>/<service_metadata>_metadata`, as Cinder reads it.
fn record_metadata(c: &mut RecordCheck, dir: &ShareDir, prefix: &str) -> Option<BackupMetadata> {
    let name = format!("{prefix}_metadata");
    let path = join(&dir.rel, &name);
    match crate::share::metadata::read_in(dir, &name) {
        Err(ReadError::Access(e)) if e.is_not_found() => {
            c.error_at(
                "metadata-missing",
                format!("{name} is not in the container: the object prefix (service_metadata) names no backup there"),
                path,
            );
            None
        }
        Err(ReadError::Access(e)) => {
            c.error_at(e.code(), e.to_string(), path);
            None
        }
        Err(ReadError::Parse(e)) => {
            c.error_at(e.code(), format!("{name} cannot be read: {e}"), path);
            None
        }
        Ok(m) => Some(m),
    }
}

/// Step: ids and names of the record against the metadata.
fn identity(c: &mut RecordCheck, meta: &BackupMetadata, meta_rel: &str) {
    if let Some(i) = c.id.clone()
        && meta.backup_id != i
    {
        c.error_at(
            "id-mismatch",
            format!(
                "the metadata belongs to backup {}, the record is {i}",
                meta.backup_id
            ),
            meta_rel.to_string(),
        );
    }
    if let (Some(rv), Some(mv)) = (str_field(c.rec(), "volume_id"), meta.volume_id.as_deref())
        && rv != mv
    {
        let msg = format!("the record's volume_id is {rv}, the metadata's {mv}");
        c.error_at("volume-id-mismatch", msg, meta_rel.to_string());
    }
    for (field, mine) in [
        ("display_name", &meta.backup_name),
        ("display_description", &meta.backup_description),
    ] {
        let theirs = str_field(c.rec(), field);
        if c.rec().contains_key(field) && theirs != mine.as_deref() {
            let f = Finding::warning(
                "name-mismatch",
                format!("the record's {field} is {theirs:?}, the metadata's {mine:?}"),
            )
            .maybe_backup(c.id.as_deref());
            c.out.push(f);
        }
    }
}

/// Step: object_count by era (chunks, or chunks + 1 before Stein).
fn object_count(c: &mut RecordCheck, meta: &BackupMetadata, prefix: &str) {
    let chunks = meta.objects.len() as u64;
    let Some(count) = c.rec().get("object_count").and_then(|v| v.as_u64()) else {
        return;
    };
    let legacy = c.d.source.era != Era::Current || prefix == crate::share::LEGACY_PREFIX;
    if count == chunks {
    } else if Some(count) == chunks.checked_add(1) && legacy {
        let f = Finding::info(
            "object-count-legacy",
            format!("object_count {count} is chunks + 1 ({chunks} chunks), the pre-Stein convention: current Cinder imports it fine"),
        )
        .maybe_backup(c.id.as_deref());
        c.out.push(f);
    } else if Some(count) == chunks.checked_add(1) {
        c.error(
            "object-count-mismatch",
            format!("object_count is {count}, the metadata lists {chunks} chunks: chunks + 1 is the pre-Stein convention, but this record is current"),
        );
    } else {
        c.error(
            "object-count-mismatch",
            format!("object_count is {count}, the metadata lists {chunks} chunks"),
        );
    }
}

/// Step: files with the prefix, as Cinder lists them (not only NNNNN names).
fn prefix_files(c: &mut RecordCheck, dir: &ShareDir, meta: &BackupMetadata, prefix: &str) {
    let Ok(entries) = dir.entries() else {
        return;
    };
    let listed: HashSet<&str> = meta.objects.iter().map(|o| o.name.as_str()).collect();
    let (meta_name, sha_name) = (format!("{prefix}_metadata"), format!("{prefix}_sha256file"));
    for e in entries {
        let n = &e.name;
        if n.starts_with(prefix)
            && *n != meta_name
            && *n != sha_name
            && !is_chunk_of(n, prefix)
            && !listed.contains(n.as_str())
        {
            c.error_at(
                "object-unlisted",
                format!("{n} starts with the object prefix but the metadata does not list it: Cinder's restore will refuse the container"),
                join(&dir.rel, n),
            );
        }
    }
}

/// Step: the record's size (GiB) against what the sha256file covers.
fn record_size(c: &mut RecordCheck, share: &Share, b: &BackupEntry) {
    let Some(size) = c.rec().get("size").and_then(|v| v.as_u64()) else {
        return;
    };
    let Some(bytes) = size.checked_mul(GIB).filter(|n| *n <= MAX_VOLUME_BYTES) else {
        c.error(
            "value-out-of-range",
            format!("the record's size is {size} GiB, larger than any volume can be"),
        );
        return;
    };
    if b.sha256_path.is_none() {
        return;
    }
    if let Ok(s) = b.open_sha256(share)
        && s.covered_bytes() != bytes
    {
        c.error(
            "size-mismatch",
            format!(
                "the record says {size} GiB, the sha256file covers {} bytes ({} blocks of {})",
                s.covered_bytes(),
                s.len(),
                s.block_size()
            ),
        );
    }
}

/// Step: parent_id — the record and the metadata must agree.
fn parents(c: &mut RecordCheck, scan: &dyn Backups, meta: &BackupMetadata) {
    // `""` is a full backup, as Cinder reads it.
    let rp = crate::record::lint::id_field(c.rec(), "parent_id").map(str::to_owned);
    if c.rec().contains_key("parent_id") && rp.as_deref() != meta.parent_id.as_deref() {
        c.error(
            "parent-id-mismatch",
            format!(
                "the record's parent_id is {rp:?}, the metadata's {:?}: restore follows the record",
                meta.parent_id
            ),
        );
    }
    if let Some(p) = rp
        && meta.parent_id.as_deref() != Some(p.as_str())
        && scan.get(&p).is_none()
    {
        c.error(
            "parent-missing",
            format!("the parent {p} is not on the share"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_escapes_are_refused() {
        let share = Share::open(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(resolve_container(&share, "/etc").is_err());
        assert!(resolve_container(&share, "a/../../etc").is_err());
        assert!(resolve_container(&share, "no/such/dir").unwrap().is_none());
        assert!(resolve_container(&share, "fixtures").unwrap().is_some());
    }
}
