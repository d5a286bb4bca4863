//! Findings about a record alone (no share): fields import requires,
//! status, era consistency, encryption key, parent, ids.

use super::{Era, Record, era_of};
use crate::findings::Severity::{self, Error, Info, Warning};
use crate::findings::{Finding, Findings};
use serde_json::Value;
use std::collections::HashMap;

/// The ids of the records given together (one input), counted, so that
/// "is this record's parent among the others?" is one lookup, not a scan
/// of the whole input per record (which made `plan` quadratic).
#[derive(Debug, Default)]
pub struct Batch<'a> {
    ids: HashMap<&'a str, usize>,
}

impl<'a> Batch<'a> {
    /// The batch of `records` (all of the input's, the one linted among them).
    pub fn of<I: IntoIterator<Item = &'a Record>>(records: I) -> Self {
        let mut ids: HashMap<&'a str, usize> = HashMap::new();
        for r in records {
            if let Some(id) = r.get("id").and_then(|v| v.as_str()) {
                *ids.entry(id).or_default() += 1;
            }
        }
        Batch { ids }
    }

    /// Whether a record of the batch other than `this` has the id `id`.
    pub fn others_have(&self, this: &Record, id: &str) -> bool {
        let n = self.ids.get(id).copied().unwrap_or(0);
        let me = usize::from(this.get("id").and_then(|v| v.as_str()) == Some(id));
        n.saturating_sub(me) > 0
    }
}

/// Backup services whose records a share-based target accepts (import
/// checks that the target driver's class path starts with the record's).
pub const SHARE_DRIVERS: &[&str] = &[
    "cinder.backup.drivers.nfs.NFSBackupDriver",
    "cinder.backup.drivers.posix.PosixBackupDriver",
    "cinder.backup.drivers.glusterfs.GlusterfsBackupDriver",
];

/// Whether `s` is a UUID (8-4-4-4-12 hex, any case).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether `s` is a keystone id: 32 hex digits, or a UUID.
pub fn is_keystone_id(s: &str) -> bool {
    (s.len() == 32 && s.bytes().all(|c| c.is_ascii_hexdigit())) || is_uuid(s)
}

/// The fields import needs, with the JSON types it takes.
const REQUIRED: &[(&str, &str)] = &[
    ("id", "string"),
    ("size", "integer"),
    ("display_name", "string or null"),
    ("display_description", "string or null"),
    ("container", "string"),
    ("service_metadata", "string"),
    ("object_count", "integer"),
];

/// Id fields Cinder's Backup object declares nullable: other tools (a Go
/// SDK) write `""` where Cinder writes `null`, and Cinder 29 imports that
/// as it is (an empty `parent_id` is falsy: a full backup).
pub const NULLABLE_IDS: &[&str] = &[
    "parent_id",
    "snapshot_id",
    "restore_volume_id",
    "encryption_key_id",
    "temp_volume_id",
    "temp_snapshot_id",
];

/// A record's id field as Cinder reads it: `None` for absent, `null` and
/// (for the nullable ids, and the tenant ids import replaces) `""`.
pub fn id_field<'a>(record: &'a Record, field: &str) -> Option<&'a str> {
    record
        .get(field)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

fn type_ok(v: &Value, want: &str) -> bool {
    match want {
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "string or null" => v.is_string() || v.is_null(),
        _ => true,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A finding about a record, before it is given the record's id.
type Note = (Severity, &'static str, String);

/// Lint one record. `backup_service` is the service printed with it (if
/// any); `batch` are the records given in the same input, so a parent
/// among them can be recognised.
pub fn lint(record: &Record, backup_service: Option<&str>, batch: &Batch<'_>) -> Findings {
    let mut notes: Vec<Note> = Vec::new();
    required_fields(record, &mut notes);
    notes.extend(status_not_available(record));
    notes.extend(empty_ids(record));
    notes.extend(encryption_key(record));
    notes.extend(parent(record, batch));
    notes.extend(container_escapes(record));
    notes.extend(era_inconsistent(record, backup_service));
    notes.extend(service_not_accepted(record, backup_service));
    invalid_ids(record, &mut notes);
    let id = record.get("id").and_then(|v| v.as_str());
    let mut out = Findings::new();
    for (sev, code, msg) in notes {
        out.push(Finding::new(sev, code, msg).maybe_backup(id));
    }
    out
}

/// Each field import needs: missing, or of a type import does not take.
fn required_fields(record: &Record, notes: &mut Vec<Note>) {
    for (field, want) in REQUIRED {
        match record.get(*field) {
            None => notes.push((
                Error,
                "record-field-missing",
                format!("{field} is missing: import needs it"),
            )),
            Some(v) if !type_ok(v, want) => notes.push((
                Error,
                "record-field-type",
                format!("{field} is {}, import needs {want}", kind(v)),
            )),
            _ => {}
        }
    }
}

/// Cinder exports only available backups.
fn status_not_available(record: &Record) -> Option<Note> {
    let status = record.get("status")?;
    (status.as_str() != Some("available")).then(|| {
        (
            Error,
            "status-not-available",
            format!("status is {status}: Cinder exports only available backups, so this record was edited or hand-made"),
        )
    })
}

/// Ids written `""` where Cinder writes null.
fn empty_ids(record: &Record) -> Option<Note> {
    let empty: Vec<&str> = NULLABLE_IDS
        .iter()
        .chain(["project_id", "user_id"].iter())
        .filter(|f| record.get(**f).and_then(|v| v.as_str()) == Some(""))
        .copied()
        .collect();
    if empty.is_empty() {
        return None;
    }
    Some((
        Info,
        "empty-id",
        format!(
            "{} {} \"\" where Cinder writes null (as other tools do): Cinder imports it as it is{}",
            empty.join(", "),
            if empty.len() == 1 { "is" } else { "are" },
            if empty.contains(&"parent_id") {
                "; an empty parent_id is a full backup"
            } else {
                ""
            }
        ),
    ))
}

/// An encrypted volume needs its key on the target.
fn encryption_key(record: &Record) -> Option<Note> {
    let k = record
        .get("encryption_key_id")
        .filter(|v| !v.is_null() && v.as_str() != Some(""))?;
    Some((
        Warning,
        "encryption-key",
        format!(
            "the volume is encrypted with key {k}: the target's key manager must hold that key, or the restored volume cannot be opened"
        ),
    ))
}

/// An incremental needs its parent imported first.
fn parent(record: &Record, batch: &Batch<'_>) -> Option<Note> {
    let p = id_field(record, "parent_id")?;
    let among = batch.others_have(record, p);
    Some((
        Info,
        "parent-must-be-imported",
        if among {
            format!("incremental of {p}: its record is in this input; import it first")
        } else {
            format!(
                "incremental of {p}: that backup's record must be imported too, before this one"
            )
        },
    ))
}

/// The container must be a path inside the share.
fn container_escapes(record: &Record) -> Option<Note> {
    let c = record.get("container").and_then(|v| v.as_str())?;
    let p = std::path::Path::new(c);
    let escapes = p.is_absolute()
        || p.components()
            .any(|x| matches!(x, std::path::Component::ParentDir));
    escapes.then(|| {
        (
            Error,
            "container-escapes-share",
            format!("container {c:?} is not a path inside the share (absolute or with '..')"),
        )
    })
}

/// The object prefix of one era in a record of another.
fn era_inconsistent(record: &Record, backup_service: Option<&str>) -> Option<Note> {
    let era = era_of(record, backup_service);
    let prefix = record.get("service_metadata").and_then(|v| v.as_str())?;
    let legacy_prefix = prefix == crate::share::LEGACY_PREFIX;
    if legacy_prefix
        && era == Era::Current
        && record.contains_key("encryption_key_id")
        && record.contains_key("data_timestamp")
    {
        // Fields of Mitaka on, prefix of before Pike: possible (Mitaka..Ocata), so only a note.
        Some((
            Warning,
            "era-inconsistent",
            "service_metadata is the pre-Pike prefix 'backup' in a record with current fields: fine for a Mitaka..Ocata backup, suspicious otherwise".into(),
        ))
    } else if !legacy_prefix && era != Era::Current && prefix.starts_with("volume_") {
        Some((
            Warning,
            "era-inconsistent",
            format!(
                "service_metadata {prefix:?} is a Pike-or-later prefix in a {} record",
                era.as_str()
            ),
        ))
    } else {
        None
    }
}

/// A share-based target accepts only a prefix of a share driver's name.
fn service_not_accepted(record: &Record, backup_service: Option<&str>) -> Option<Note> {
    let s = backup_service.or_else(|| record.get("service").and_then(|v| v.as_str()))?;
    (!SHARE_DRIVERS.iter().any(|d| d.starts_with(s))).then(|| {
        (
            Warning,
            "service-not-accepted",
            format!(
                "backup_service {s:?} is not accepted by a share-based target; it accepts a prefix of one of: {}",
                SHARE_DRIVERS.join(", ")
            ),
        )
    })
}

/// Ids that are not UUIDs, tenant ids that are not keystone ids.
fn invalid_ids(record: &Record, notes: &mut Vec<Note>) {
    for field in [
        "id",
        "volume_id",
        "parent_id",
        "snapshot_id",
        "restore_volume_id",
    ] {
        let nullable = NULLABLE_IDS.contains(&field);
        if let Some(v) = record.get(field).and_then(|v| v.as_str())
            && !(nullable && v.is_empty())
            && !is_uuid(v)
        {
            notes.push((Error, "invalid-id", format!("{field} {v:?} is not a UUID")));
        }
    }
    for field in ["project_id", "user_id"] {
        // Import replaces both with the importing credentials' ids.
        if let Some(v) = id_field(record, field)
            && !is_keystone_id(v)
        {
            notes.push((
                Error,
                "invalid-id",
                format!("{field} {v:?} is not a keystone id (32 hex digits or a UUID)"),
            ));
        }
    }
}

/// Lint a decoded record: [`lint`], and an error for each key its JSON
/// has more than once (the record holds one value of it, so it is not
/// what was written and cannot be re-encoded as it was).
pub fn lint_decoded(d: &super::Decoded, batch: &Batch<'_>) -> Findings {
    let mut out = duplicate_key_findings(d);
    out.extend(lint(&d.record, d.backup_service.as_deref(), batch));
    out
}

/// One `duplicate-key` error per key given twice in one object.
pub fn duplicate_key_findings(d: &super::Decoded) -> Findings {
    let mut out = Findings::new();
    let id = d.record.get("id").and_then(|v| v.as_str());
    for k in &d.duplicate_keys {
        out.push(
            Finding::error(
                "duplicate-key",
                format!(
                    "{k}: only one value was read, so the record is not what was written; \
                     remove all but the one meant"
                ),
            )
            .maybe_backup(id),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Record {
        json!({"id": "a0f6583f-d913-426d-a8e2-d262262a433b", "user_id": "a65349759b6f4ec5a0bb0cc3feb1e9fa",
               "project_id": "bcae33bdf5b84dc9ab9ca6518a438561", "volume_id": "cd613e30-d8f1-4adf-91b7-584a2265b1f5",
               "container": "a0/f6/a0f6583f-d913-426d-a8e2-d262262a433b", "parent_id": null, "status": "available",
               "size": 1, "display_name": "n", "display_description": null,
               "service_metadata": "volume_cd613e30-d8f1-4adf-91b7-584a2265b1f5_20261124060919_backup_a0f6583f-d913-426d-a8e2-d262262a433b",
               "service": "cinder.backup.drivers.nfs.NFSBackupDriver", "object_count": 16,
               "snapshot_id": null, "data_timestamp": "x", "metadata": {}, "encryption_key_id": null})
        .as_object()
        .cloned()
        .unwrap()
    }

    fn codes(r: &Record, svc: Option<&str>, batch: &[&Record]) -> Vec<&'static str> {
        lint(r, svc, &Batch::of(batch.iter().copied()))
            .iter()
            .map(|f| f.code)
            .collect()
    }

    fn with(k: &str, v: Value) -> Record {
        let mut r = good();
        r.insert(k.into(), v);
        r
    }

    #[test]
    fn good_record_is_clean() {
        assert!(
            codes(
                &good(),
                Some("cinder.backup.drivers.nfs.NFSBackupDriver"),
                &[]
            )
            .is_empty()
        );
    }

    #[test]
    fn each_rule_fires_on_its_case() {
        let mut r = good();
        r.remove("object_count");
        assert_eq!(codes(&r, None, &[]), vec!["record-field-missing"]);
        assert_eq!(
            codes(&with("size", json!("1")), None, &[]),
            vec!["record-field-type"]
        );
        assert_eq!(
            codes(&with("status", json!("creating")), None, &[]),
            vec!["status-not-available"]
        );
        assert_eq!(
            codes(&with("encryption_key_id", json!("k")), None, &[]),
            vec!["encryption-key"]
        );
        let child = with("parent_id", json!("240eb01b-43db-412c-88fa-80f724cb2c2c"));
        assert_eq!(codes(&child, None, &[]), vec!["parent-must-be-imported"]);
        let parent = with("id", json!("240eb01b-43db-412c-88fa-80f724cb2c2c"));
        assert!(
            lint(&child, None, &Batch::of([&child, &parent]))
                .iter()
                .next()
                .unwrap()
                .message
                .contains("in this input")
        );
        assert_eq!(
            codes(&with("container", json!("../etc")), None, &[]),
            vec!["container-escapes-share"]
        );
        assert_eq!(
            codes(&with("container", json!("/etc")), None, &[]),
            vec!["container-escapes-share"]
        );
        assert_eq!(
            codes(&with("service_metadata", json!("backup")), None, &[]),
            vec!["era-inconsistent"]
        );
        assert_eq!(
            codes(
                &good(),
                Some("cinder.backup.drivers.swift.SwiftBackupDriver"),
                &[]
            ),
            vec!["service-not-accepted"]
        );
        assert_eq!(
            codes(&with("volume_id", json!("nope")), None, &[]),
            vec!["invalid-id"]
        );
        assert_eq!(
            codes(&with("project_id", json!("xyz")), None, &[]),
            vec!["invalid-id"]
        );
    }

    #[test]
    fn module_service_names_are_accepted() {
        assert!(codes(&good(), Some("cinder.backup.drivers.nfs"), &[]).is_empty());
        assert!(codes(&good(), Some("cinder.backup.drivers.posix"), &[]).is_empty());
    }

    #[test]
    fn id_shapes() {
        assert!(is_uuid("a0f6583f-d913-426d-a8e2-d262262a433b"));
        assert!(!is_uuid("a0f6583fd913426da8e2d262262a433b"));
        assert!(is_keystone_id("a0f6583fd913426da8e2d262262a433b"));
        assert!(!is_keystone_id("a0f6583fd913426da8e2d262262a433"));
    }
}
