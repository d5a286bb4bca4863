//! `<prefix>_metadata`: which chunk object holds which bytes of the volume.

use serde::Deserialize;
use std::fmt;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("object #{index} in \"objects\" is not a one-key object {{name: {{...}}}}")]
    BadObjectEntry { index: usize },
    #[error(
        "object #{index} is named {name:?}, which is not a file name in the container: {reason}"
    )]
    BadName {
        index: usize,
        name: String,
        reason: &'static str,
    },
    #[error("object {name}: {what}")]
    OutOfRange { name: String, what: String },
}

impl MetadataError {
    /// The stable finding code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            MetadataError::BadName { .. } => "name-invalid",
            MetadataError::OutOfRange { .. } => "value-out-of-range",
            _ => "metadata-invalid",
        }
    }
}

/// The largest volume offset cbr accepts: a file offset (`off_t`) is signed.
pub const MAX_VOLUME_BYTES: u64 = i64::MAX as u64;

/// How one chunk is stored (`compression` in the metadata).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    None,
    /// `zlib` or `gzip` (Cinder writes a zlib stream for both).
    Zlib,
    /// `bz2` or `bzip2`.
    Bz2,
    Zstd,
    /// A name no release writes; reading such a chunk fails with a finding.
    Other(String),
}

impl Compression {
    pub fn parse(s: Option<&str>) -> Compression {
        match s.map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("none") | Some("") => Compression::None,
            Some("zlib") | Some("gzip") => Compression::Zlib,
            Some("bz2") | Some("bzip2") => Compression::Bz2,
            Some("zstd") => Compression::Zstd,
            Some(_) => Compression::Other(s.unwrap_or_default().to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Bz2 => "bz2",
            Compression::Zstd => "zstd",
            Compression::Other(s) => s,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chunk object listed in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkObject {
    /// The object (file) name, e.g. `volume_…_backup_…-00001` or `backup-00001`.
    pub name: String,
    /// Where the chunk's uncompressed bytes go in the volume.
    pub offset: u64,
    /// Uncompressed length.
    pub length: u64,
    /// Hex md5 of the uncompressed bytes.
    pub md5: String,
    pub compression: Compression,
    /// The compression name exactly as written.
    pub compression_raw: Option<String>,
}

impl ChunkObject {
    /// The volume offset just past this chunk's data (validated not to
    /// overflow when the metadata was parsed).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// A parsed `<prefix>_metadata` file.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupMetadata {
    pub backup_id: String,
    pub volume_id: Option<String>,
    pub backup_name: Option<String>,
    pub backup_description: Option<String>,
    pub created_at: Option<String>,
    pub parent_id: Option<String>,
    pub version: Option<String>,
    /// JSON text (a string inside the JSON), as written.
    pub volume_meta: Option<String>,
    pub extra_metadata: Option<serde_json::Value>,
    pub objects: Vec<ChunkObject>,
}

#[derive(Deserialize)]
struct RawMetadata {
    backup_id: String,
    #[serde(default)]
    volume_id: Option<String>,
    #[serde(default)]
    backup_name: Option<String>,
    #[serde(default)]
    backup_description: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    volume_meta: Option<String>,
    #[serde(default)]
    extra_metadata: Option<serde_json::Value>,
    objects: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawObject {
    offset: u64,
    length: u64,
    md5: String,
    #[serde(default)]
    compression: Option<String>,
}

impl BackupMetadata {
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        let raw: RawMetadata = serde_json::from_slice(bytes)?;
        let mut objects = Vec::with_capacity(raw.objects.len());
        for (index, entry) in raw.objects.into_iter().enumerate() {
            if entry.len() != 1 {
                return Err(MetadataError::BadObjectEntry { index });
            }
            let Some((name, value)) = entry.into_iter().next() else {
                return Err(MetadataError::BadObjectEntry { index });
            };
            if let Err(reason) = crate::share::access::check_name(&name) {
                return Err(MetadataError::BadName {
                    index,
                    name,
                    reason,
                });
            }
            let o: RawObject = serde_json::from_value(value)?;
            let out_of_range = |what: String| MetadataError::OutOfRange {
                name: name.clone(),
                what,
            };
            if o.length == 0 {
                return Err(out_of_range(
                    "length is 0: Cinder never writes an empty chunk".into(),
                ));
            }
            match o.offset.checked_add(o.length) {
                Some(end) if end <= MAX_VOLUME_BYTES => {}
                _ => {
                    return Err(out_of_range(format!(
                        "offset {} + length {} lies beyond any volume (the largest offset is {MAX_VOLUME_BYTES})",
                        o.offset, o.length
                    )));
                }
            }
            objects.push(ChunkObject {
                name,
                offset: o.offset,
                length: o.length,
                md5: o.md5,
                compression: Compression::parse(o.compression.as_deref()),
                compression_raw: o.compression,
            });
        }
        Ok(BackupMetadata {
            backup_id: raw.backup_id,
            volume_id: raw.volume_id,
            backup_name: raw.backup_name,
            backup_description: raw.backup_description,
            created_at: raw.created_at,
            parent_id: raw.parent_id,
            version: raw.version,
            volume_meta: raw.volume_meta,
            extra_metadata: raw.extra_metadata,
            objects,
        })
    }

    /// Sum of the chunks' uncompressed lengths.
    pub fn data_bytes(&self) -> u64 {
        self.objects
            .iter()
            .fold(0u64, |a, o| a.saturating_add(o.length))
    }

    /// The distinct compressions used, sorted.
    pub fn compressions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .objects
            .iter()
            .map(|o| o.compression.as_str().to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixture_metadata() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/cinder-29/share/96/12/96128a75-e143-4d8a-9b93-e246af8e6a7d/backup_metadata"
        );
        #[allow(clippy::disallowed_methods)] // a test reads a fixture file directly
        let m = BackupMetadata::parse(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(m.backup_id, "96128a75-e143-4d8a-9b93-e246af8e6a7d");
        assert!(!m.objects.is_empty());
        assert_eq!(m.objects[0].offset, 0);
    }

    #[test]
    fn names_and_ranges_are_validated() {
        let obj = |name: &str, offset: &str, length: &str| {
            format!(
                r#"{{"backup_id": "x", "objects": [{{"{name}": {{"offset": {offset}, "length": {length}, "md5": ""}}}}]}}"#
            )
        };
        let code = |j: String| {
            BackupMetadata::parse(j.as_bytes())
                .map(|_| ())
                .map_err(|e| e.code())
        };
        assert_eq!(code(obj("backup-00001", "0", "1")), Ok(()));
        assert_eq!(code(obj("../x", "0", "1")), Err("name-invalid"));
        assert_eq!(code(obj("/etc/passwd", "0", "1")), Err("name-invalid"));
        assert_eq!(code(obj("", "0", "1")), Err("name-invalid"));
        assert_eq!(
            code(obj("b-00001", "18446744073709551615", "1")),
            Err("value-out-of-range")
        );
        assert_eq!(
            code(obj("b-00001", "9223372036854775807", "1")),
            Err("value-out-of-range")
        );
        assert_eq!(code(obj("b-00001", "0", "0")), Err("value-out-of-range"));
        assert_eq!(code(obj("b-00001", "-1", "1")), Err("metadata-invalid"));
        assert_eq!(code(obj("b-00001", "0", "1e3")), Err("metadata-invalid"));
    }

    #[test]
    fn rejects_multi_key_object_entries() {
        let j = br#"{"backup_id": "x", "objects": [{"a": {"offset": 0, "length": 1, "md5": ""}, "b": {}}]}"#;
        assert!(matches!(
            BackupMetadata::parse(j),
            Err(MetadataError::BadObjectEntry { index: 0 })
        ));
    }
}
