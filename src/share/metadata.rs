//! `<prefix>_metadata`: which chunk object holds which bytes of the volume.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use thiserror::Error;

use super::FileId;
use super::{AccessError, ShareDir};

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
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
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

/// The largest `_metadata` cbr reads. Its objects take at most about
/// 2.6 times the file in memory (the smallest entry, 40 bytes, becomes a
/// 72-byte [`ChunkObject`] and a name), so a hostile file of this size
/// stays under 256 MiB of RSS (`benches/metadata_rss.sh`). A real entry is
/// about 200 bytes: this is 335,000 chunks, a 600 TiB volume in Cinder's
/// default 1.86 GiB chunks, 10 TiB in 32 MiB ones.
pub const METADATA_LIMIT: u64 = 64 << 20;

/// Files up to this size are read whole and parsed from memory (faster);
/// larger ones are parsed as they are read.
const READ_WHOLE: u64 = 4 << 20;

/// Why a `_metadata` could not be had.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Parse(#[from] MetadataError),
}

/// Open `name` in `dir` through the share's gate and parse it, refusing a
/// file over [`METADATA_LIMIT`] bytes.
pub fn read_in(dir: &ShareDir, name: &str) -> Result<BackupMetadata, ReadError> {
    read_in_with_id(dir, name).map(|(m, _)| m)
}

/// [`read_in`], with the identity of the very handle whose bytes were
/// parsed (what a journal's proof is keyed to).
pub fn read_in_with_id(dir: &ShareDir, name: &str) -> Result<(BackupMetadata, FileId), ReadError> {
    let f = dir.open_file(name)?;
    let id = f.id();
    let limit = METADATA_LIMIT;
    if f.size > limit {
        return Err(AccessError::TooLarge {
            path: f.rel,
            size: f.size,
            limit,
        }
        .into());
    }
    if f.size <= READ_WHOLE {
        let bytes = f.read_to_end(READ_WHOLE.min(limit))?;
        return Ok((BackupMetadata::parse(&bytes)?, id));
    }
    // Never more than the limit, even if the file grows as it is read
    // (the JSON then ends early: an error).
    Ok((BackupMetadata::parse_reader(f.take(limit))?, id))
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
    Other(Box<str>),
}

impl Compression {
    pub fn parse(s: Option<&str>) -> Compression {
        match s.map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("none") | Some("") => Compression::None,
            Some("zlib") | Some("gzip") => Compression::Zlib,
            Some("bz2") | Some("bzip2") => Compression::Bz2,
            Some("zstd") => Compression::Zstd,
            Some(_) => Compression::Other(s.unwrap_or_default().into()),
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
    /// Hex md5 of the uncompressed bytes (a box, not a `String`: a
    /// `_metadata` may list millions of objects, see [`BackupMetadata::parse_reader`]).
    pub md5: Box<str>,
    pub compression: Compression,
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
    pub objects: std::sync::Arc<Vec<ChunkObject>>,
}

/// The top-level keys cbr reads; any other key is skipped.
const FIELDS: &[&str] = &[
    "backup_id",
    "volume_id",
    "backup_name",
    "backup_description",
    "created_at",
    "parent_id",
    "version",
    "volume_meta",
    "extra_metadata",
    "objects",
];

#[derive(Deserialize)]
struct RawObject {
    offset: u64,
    length: u64,
    md5: String,
    #[serde(default)]
    compression: Option<String>,
}

/// The first error found in an object entry: kept aside, since serde's
/// error type carries a message only, not the finding code.
type Found = RefCell<Option<MetadataError>>;

/// The `_metadata` document, read straight into [`BackupMetadata`].
struct Doc<'f>(&'f Found);
/// `"objects"`: each entry checked and kept as a [`ChunkObject`] as it is
/// read, never as a JSON value tree.
struct Objects<'f>(&'f Found);
/// One `{name: {offset, length, md5, compression}}` entry.
struct Entry<'f> {
    found: &'f Found,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for Doc<'_> {
    type Value = BackupMetadata;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<BackupMetadata, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Doc<'_> {
    type Value = BackupMetadata;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a backup metadata object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BackupMetadata, A::Error> {
        let mut backup_id: Option<String> = None;
        let mut objects: Option<Vec<ChunkObject>> = None;
        let mut m = BackupMetadata {
            backup_id: String::new(),
            volume_id: None,
            backup_name: None,
            backup_description: None,
            created_at: None,
            parent_id: None,
            version: None,
            volume_meta: None,
            extra_metadata: None,
            objects: Default::default(),
        };
        let mut seen = [false; FIELDS.len()];
        while let Some(key) = map.next_key::<String>()? {
            let Some(k) = FIELDS.iter().position(|f| *f == key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut seen[k], true) {
                return Err(de::Error::duplicate_field(FIELDS[k]));
            }
            match FIELDS[k] {
                "backup_id" => backup_id = Some(map.next_value()?),
                "volume_id" => m.volume_id = map.next_value()?,
                "backup_name" => m.backup_name = map.next_value()?,
                "backup_description" => m.backup_description = map.next_value()?,
                "created_at" => m.created_at = map.next_value()?,
                "parent_id" => m.parent_id = map.next_value()?,
                "version" => m.version = map.next_value()?,
                "volume_meta" => m.volume_meta = map.next_value()?,
                "extra_metadata" => m.extra_metadata = map.next_value()?,
                _ => objects = Some(map.next_value_seed(Objects(self.0))?),
            }
        }
        m.backup_id = backup_id.ok_or_else(|| de::Error::missing_field("backup_id"))?;
        m.objects =
            std::sync::Arc::new(objects.ok_or_else(|| de::Error::missing_field("objects"))?);
        Ok(m)
    }
}

impl<'de> DeserializeSeed<'de> for Objects<'_> {
    type Value = Vec<ChunkObject>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<ChunkObject>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Objects<'_> {
    type Value = Vec<ChunkObject>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<ChunkObject>, A::Error> {
        let mut out = Vec::new();
        while let Some(o) = seq.next_element_seed(Entry {
            found: self.0,
            index: out.len(),
        })? {
            out.push(o);
        }
        out.shrink_to_fit();
        Ok(out)
    }
}

impl<'de> DeserializeSeed<'de> for Entry<'_> {
    type Value = ChunkObject;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<ChunkObject, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Entry<'_> {
    type Value = ChunkObject;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object {name: {offset, length, md5}}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChunkObject, A::Error> {
        let index = self.index;
        let fail = |e: MetadataError| -> A::Error {
            let msg = e.to_string();
            *self.found.borrow_mut() = Some(e);
            de::Error::custom(msg)
        };
        let Some(name) = map.next_key::<String>()? else {
            return Err(fail(MetadataError::BadObjectEntry { index }));
        };
        // Held as a value (one entry at a time) until the entry is known
        // to have one key: the same verdict whatever its fields.
        let value: serde_json::Value = map.next_value()?;
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(fail(MetadataError::BadObjectEntry { index }));
        }
        if let Err(reason) = crate::share::source::check_name(&name) {
            return Err(fail(MetadataError::BadName {
                index,
                name,
                reason,
            }));
        }
        let o: RawObject = serde_json::from_value(value).map_err(de::Error::custom)?;
        let out_of_range = |what: String| MetadataError::OutOfRange {
            name: name.clone(),
            what,
        };
        if o.length == 0 {
            return Err(fail(out_of_range(
                "length is 0: Cinder never writes an empty chunk".into(),
            )));
        }
        match o.offset.checked_add(o.length) {
            Some(end) if end <= MAX_VOLUME_BYTES => {}
            _ => {
                return Err(fail(out_of_range(format!(
                    "offset {} + length {} lies beyond any volume (the largest offset is {MAX_VOLUME_BYTES})",
                    o.offset, o.length
                ))));
            }
        }
        Ok(ChunkObject {
            name,
            offset: o.offset,
            length: o.length,
            md5: o.md5.into_boxed_str(),
            compression: Compression::parse(o.compression.as_deref()),
        })
    }
}

impl BackupMetadata {
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        Self::parse_with(serde_json::Deserializer::from_slice(bytes))
    }

    /// Parse from a reader, streaming: no copy of the file is held, and
    /// each object entry becomes a [`ChunkObject`] as it is read (no JSON
    /// value tree of the whole list, as in both ways of parsing), so
    /// memory is the objects' own: at most about 2.6 times the file, for
    /// a list of the smallest entries (see `benches/metadata_rss.sh`).
    pub fn parse_reader<R: Read>(r: R) -> Result<Self, MetadataError> {
        Self::parse_with(serde_json::Deserializer::from_reader(
            std::io::BufReader::with_capacity(1 << 16, r),
        ))
    }

    fn parse_with<'de, R: serde_json::de::Read<'de>>(
        mut de: serde_json::Deserializer<R>,
    ) -> Result<Self, MetadataError> {
        let found: Found = RefCell::new(None);
        let parsed = Doc(&found)
            .deserialize(&mut de)
            .and_then(|m| de.end().map(|()| m));
        parsed.map_err(|e| match found.into_inner() {
            Some(mine) => mine,
            None if e.is_io() => MetadataError::Read(std::io::Error::other(e)),
            None => MetadataError::Json(e),
        })
    }

    /// Sum of the chunks' uncompressed lengths.
    pub fn data_bytes(&self) -> u64 {
        self.objects
            .iter()
            .fold(0u64, |a, o| a.saturating_add(o.length))
    }

    /// The distinct compressions used, sorted (gathered as a set: a
    /// `_metadata` may list millions of chunks).
    pub fn compressions(&self) -> Vec<String> {
        let set: std::collections::BTreeSet<&str> = self
            .objects
            .iter()
            .map(|o| o.compression.as_str())
            .collect();
        set.into_iter().map(str::to_string).collect()
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
