//! Recover: an importable export record built from the share alone, for
//! the day the source cloud's database is gone.

use crate::record::Record;
use crate::share::{BackupEntry, Sha256File};
use serde_json::{Value, json};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecoverError {
    #[error(
        "backup {0} has no sha256file: its volume size cannot be known, so no record can be built"
    )]
    NoSha256(String),
    #[error(transparent)]
    Sha256(#[from] crate::share::sha256file::Sha256Error),
}

/// What the caller may set.
#[derive(Debug, Clone, Default)]
pub struct RecoverOptions {
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub service: String,
}

/// A recovered record and how each derived field was found.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub record: Record,
    /// (field, how it was derived), for stderr.
    pub derivations: Vec<(String, String)>,
}

/// `2026-11-24 05:53:19.265601+00:00` → `2026-11-24T05:53:19Z` (how
/// current Cinder exports datetimes).
pub fn export_datetime(s: &str) -> Option<String> {
    let t = s.trim().replace(' ', "T");
    let base = t.get(..19)?;
    let ok = base.len() == 19 && base.as_bytes()[10] == b'T';
    ok.then(|| format!("{base}Z"))
}

/// The source volume's row from `volume_meta` (JSON text), if any.
fn volume_base(meta: Option<&str>) -> Option<serde_json::Map<String, Value>> {
    let v: Value = serde_json::from_str(meta?).ok()?;
    v.get("volume-base-metadata")?.as_object().cloned()
}

/// Build the record of `b`, fields in the order Cinder 29 exports them;
/// `dependants`: how many backups on the share have it as their parent.
pub fn recover(
    share: &crate::share::Share,
    dependants: usize,
    b: &BackupEntry,
    opts: &RecoverOptions,
) -> Result<Recovered, RecoverError> {
    if b.sha256_path.is_none() {
        return Err(RecoverError::NoSha256(b.id.clone()));
    }
    let sha = b.open_sha256(share)?;
    let base = volume_base(b.metadata.volume_meta.as_deref());
    let from_base = |k: &str| {
        base.as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let mut how: Vec<(String, String)> = Vec::new();
    let found = Found {
        user_id: owner("user_id", &opts.user_id, from_base("user_id"), &mut how),
        project_id: owner(
            "project_id",
            &opts.project_id,
            from_base("project_id"),
            &mut how,
        ),
        size: sha.covered_bytes().div_ceil(1 << 30),
        key: from_base("encryption_key_id"),
    };
    how.extend(derivations(&sha, b, &found));
    Ok(Recovered {
        record: record_of(dependants, b, opts, found),
        derivations: how,
    })
}

/// What the share says beyond the metadata's own fields.
struct Found {
    user_id: Value,
    project_id: Value,
    /// GiB.
    size: u64,
    key: Option<String>,
}

/// Step: an owner field (`user_id`, `project_id`): given, else the source
/// volume's, else null — and how it was found.
fn owner(
    field: &str,
    given: &Option<String>,
    in_base: Option<String>,
    how: &mut Vec<(String, String)>,
) -> Value {
    if let Some(g) = given {
        how.push((field.into(), "given on the command line".into()));
        Value::String(g.clone())
    } else if let Some(v) = in_base {
        how.push((field.into(), "the source volume's, from volume_meta in the metadata (import ignores it: the importing credentials own the backup)".into()));
        Value::String(v)
    } else {
        how.push((field.into(), "unknown: null (import ignores it)".into()));
        Value::Null
    }
}

/// Step: how every other field was found.
fn derivations(sha: &Sha256File, b: &BackupEntry, found: &Found) -> Vec<(String, String)> {
    vec![
        (
            "size".into(),
            format!(
                "{} hash blocks × {} bytes in the sha256file = {} GiB",
                sha.len(),
                sha.block_size(),
                found.size
            ),
        ),
        (
            "object_count".into(),
            format!(
                "{} chunks listed in the metadata (current convention)",
                b.metadata.objects.len()
            ),
        ),
        (
            "container, service_metadata".into(),
            "where the metadata file lies and its prefix".into(),
        ),
        (
            "id, volume_id, parent_id, display_name, display_description".into(),
            "from the metadata".into(),
        ),
        (
            "created_at, data_timestamp, updated_at".into(),
            "the metadata's created_at".into(),
        ),
        (
            "encryption_key_id".into(),
            if found.key.is_some() {
                "from volume_meta".into()
            } else {
                "none in volume_meta: null".into()
            },
        ),
        (
            "host, availability_zone, service".into(),
            "set by the importing service (service: --service)".into(),
        ),
    ]
}

/// Step: the record itself, fields in Cinder 29's export order.
fn record_of(dependants: usize, b: &BackupEntry, opts: &RecoverOptions, found: Found) -> Record {
    let m = &b.metadata;
    let created = m.created_at.as_deref().and_then(export_datetime);
    let v = json!({
        "driver_info": {},
        "id": b.id,
        "user_id": found.user_id,
        "project_id": found.project_id,
        "volume_id": m.volume_id,
        "host": Value::Null,
        "availability_zone": Value::Null,
        "container": b.container,
        "parent_id": m.parent_id,
        "status": "available",
        "fail_reason": Value::Null,
        "size": found.size,
        "display_name": m.backup_name,
        "display_description": m.backup_description,
        "service_metadata": b.prefix,
        "service": opts.service,
        "object_count": m.objects.len(),
        "temp_volume_id": Value::Null,
        "temp_snapshot_id": Value::Null,
        "num_dependent_backups": dependants,
        "snapshot_id": Value::Null,
        "data_timestamp": created,
        "restore_volume_id": Value::Null,
        "metadata": {},
        "encryption_key_id": found.key,
        "created_at": created,
        "updated_at": created,
        "deleted_at": Value::Null,
        "deleted": false,
    });
    v.as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_in_export_form() {
        assert_eq!(
            export_datetime("2026-11-24 05:53:19.265601+00:00").unwrap(),
            "2026-11-24T05:53:19Z"
        );
        assert_eq!(
            export_datetime("2015-09-29T18:59:10.000000").unwrap(),
            "2015-09-29T18:59:10Z"
        );
        assert!(export_datetime("x").is_none());
    }
}
