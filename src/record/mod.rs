//! Export records: the JSON object inside a `backup_url`, how people paste
//! it, how Cinder encodes it, and edits and lints of it.
//!
//! - [`paste`]: finds records in anything pasted (tables, json/yaml/value/
//!   shell, API JSON, bare base64, import command lines, decoded JSON).
//! - [`pyjson`]: the JSON serializer that writes what Python's `json.dumps`
//!   writes, so an untouched record re-encodes to the very same bytes.
//! - [`codec`]: base64 <-> record, with Kilo/Liberty wrapping.
//! - [`emit`]: printing records as url / import lines / export JSON.
//! - [`edit`]: rewriting fields (tenant ids, set/unset, maps).
//! - [`lint`]: findings about a record alone.

pub mod codec;
pub mod dupkeys;
pub mod edit;
pub mod emit;
pub mod layout;
pub mod lint;
pub mod paste;
pub mod pyjson;

pub use dupkeys::{DuplicateKey, duplicate_keys};
use serde::Serialize;
use std::borrow::Cow;

/// A decoded record: a JSON object, keys in their original order.
pub type Record = serde_json::Map<String, serde_json::Value>;

/// The backup service name current Cinder's NFS driver exports.
pub const NFS_SERVICE: &str = "cinder.backup.drivers.nfs.NFSBackupDriver";
/// The module name Kilo..Pike exported as backup_service.
pub const NFS_SERVICE_MODULE: &str = "cinder.backup.drivers.nfs";

/// Which release family produced a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Era {
    /// Kilo (2015.1): the database row, with `deleted`/`deleted_at`, no `driver_info`.
    Kilo,
    /// Liberty (2015.2): `driver_info` + Backup object fields, before Mitaka's additions.
    Liberty,
    /// Mitaka (8.0.0) and later.
    Current,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Kilo => "kilo",
            Era::Liberty => "liberty",
            Era::Current => "current",
        }
    }

    /// Whether this era counted object_count as chunks + 1 (Kilo..Rocky).
    /// Mitaka..Rocky records are `Current` by field set, so a `Current`
    /// record may still carry the legacy count; callers decide with the
    /// prefix too.
    pub fn is_legacy(self) -> bool {
        matches!(self, Era::Kilo | Era::Liberty)
    }
}

/// The paste format a record was found in (`source.format` in `decode --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SourceFormat {
    #[serde(rename = "cinderclient-table")]
    CinderclientTable,
    #[serde(rename = "openstack-table")]
    OpenstackTable,
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "api-json")]
    ApiJson,
    #[serde(rename = "yaml")]
    Yaml,
    #[serde(rename = "value")]
    Value,
    #[serde(rename = "shell")]
    Shell,
    #[serde(rename = "command")]
    Command,
    #[serde(rename = "base64")]
    Base64,
    #[serde(rename = "record-json")]
    RecordJson,
}

/// Where and how a record was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub format: SourceFormat,
    /// Whether the base64 was wrapped over several lines (Kilo/Liberty style).
    pub wrapped: bool,
    pub era: Era,
}

/// One record found in an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The backup_service printed beside the url, when the paste had one.
    pub backup_service: Option<String>,
    /// The decoded JSON object.
    pub record: Record,
    pub source: Source,
    /// The JSON text the backup_url held, or the record-json input's own
    /// text, exactly (`None` when that text is what `cbr decode` prints,
    /// and for records cbr built): edits patch it, so a record written by
    /// another tool keeps its layout.
    pub json: Option<String>,
    /// The wrap width of the original base64 (76 for Kilo/Liberty), `None` if one line.
    pub wrap: Option<usize>,
    /// 1-based line of the input where the record starts.
    pub line: usize,
    /// Keys the record's JSON has more than once in one object: `record`
    /// holds one value of each, so it is not what was written.
    pub duplicate_keys: Vec<DuplicateKey>,
}

impl Decoded {
    /// The JSON text to encode for `record` (this record, possibly
    /// edited): its own text patched ([`layout::patch`]), or Cinder's
    /// layout when `cinder_layout` or when it has no text of its own.
    pub fn json_text(&self, record: &Record, cinder_layout: bool) -> String {
        self.json_cow(record, cinder_layout).into_owned()
    }

    /// [`Decoded::json_text`], borrowing this record's own text when
    /// `record` is what it holds: an unedited record costs no copy.
    pub fn json_cow(&self, record: &Record, cinder_layout: bool) -> Cow<'_, str> {
        match (&self.json, cinder_layout) {
            (Some(t), false) => {
                layout::patch_cow(t, record).unwrap_or_else(|| pyjson::dumps_object(record).into())
            }
            _ => pyjson::dumps_object(record).into(),
        }
    }
}

/// Guess the era of a record from its fields and service name.
pub fn era_of(record: &Record, backup_service: Option<&str>) -> Era {
    let _ = backup_service;
    if record.contains_key("driver_info") {
        // Mitaka added these fields; Liberty has none of them.
        let mitaka = [
            "snapshot_id",
            "data_timestamp",
            "restore_volume_id",
            "metadata",
            "encryption_key_id",
        ];
        if mitaka.iter().any(|k| record.contains_key(*k)) {
            Era::Current
        } else {
            Era::Liberty
        }
    } else if record.contains_key("deleted") || record.contains_key("deleted_at") {
        Era::Kilo
    } else {
        Era::Current
    }
}

/// The backup_service name an era's Cinder exported for the NFS driver.
pub fn default_service(era: Era) -> &'static str {
    match era {
        Era::Current => NFS_SERVICE,
        Era::Kilo | Era::Liberty => NFS_SERVICE_MODULE,
    }
}
