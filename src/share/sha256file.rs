//! `<prefix>_sha256file`: the sha256 of every hash block of the volume.
//!
//! A 1 TiB volume has 33.5 million entries (~2.4 GB of JSON), so the file is
//! never held in memory: [`Sha256File`] keeps the header and gives random
//! access to entry `i`.

use serde::Deserialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Sha256Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid sha256file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("entry {index} is out of range: the sha256file has {len} entries")]
    OutOfRange { index: u64, len: u64 },
}

/// The fields of a sha256file other than the list of hashes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Sha256Header {
    #[serde(default)]
    pub backup_id: Option<String>,
    #[serde(default)]
    pub volume_id: Option<String>,
    #[serde(default)]
    pub backup_name: Option<String>,
    #[serde(default)]
    pub backup_description: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// The hash block size in bytes (`backup_sha_block_size_bytes`).
    pub chunk_size: u64,
    #[serde(default)]
    pub version: Option<String>,
}

/// Random access to the entries of a sha256file.
#[derive(Debug)]
pub struct Sha256File {
    path: PathBuf,
    header: Sha256Header,
    len: u64,
    store: Store,
}

#[derive(Debug)]
enum Store {
    /// Entries held decoded (small files; to be replaced by an on-disk index).
    Memory(Vec<[u8; 32]>),
    #[allow(dead_code)]
    /// Canonical indent-2 layout: entry i is at `first + i * 72`.
    Canonical { file: File, first: u64 },
}

#[derive(Deserialize)]
struct Whole {
    #[serde(flatten)]
    header: Sha256Header,
    sha256s: Vec<String>,
}

impl Sha256File {
    pub fn open(path: &Path) -> Result<Self, Sha256Error> {
        let bytes = std::fs::read(path).map_err(|source| Sha256Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| Sha256Error::Invalid {
            path: path.to_owned(),
            reason,
        };
        let whole: Whole = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if whole.header.chunk_size == 0 {
            return Err(invalid("chunk_size is 0".into()));
        }
        let mut entries = Vec::with_capacity(whole.sha256s.len());
        for (i, h) in whole.sha256s.iter().enumerate() {
            entries.push(
                parse_hex32(h).ok_or_else(|| invalid(format!("entry {i} is not 64 hex digits")))?,
            );
        }
        Ok(Sha256File {
            path: path.to_owned(),
            header: whole.header,
            len: entries.len() as u64,
            store: Store::Memory(entries),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn header(&self) -> &Sha256Header {
        &self.header
    }
    /// The hash block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.header.chunk_size
    }
    /// Number of entries (hash blocks).
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The volume size the entries cover: entries × block size.
    pub fn covered_bytes(&self) -> u64 {
        self.len.saturating_mul(self.header.chunk_size)
    }

    /// The sha256 of hash block `i`.
    pub fn get(&self, index: u64) -> Result<[u8; 32], Sha256Error> {
        if index >= self.len {
            return Err(Sha256Error::OutOfRange {
                index,
                len: self.len,
            });
        }
        match &self.store {
            Store::Memory(v) => Ok(v[index as usize]),
            Store::Canonical { file, first } => {
                use std::os::unix::fs::FileExt;
                let mut line = [0u8; 66];
                file.read_exact_at(&mut line, first + index * 72)
                    .map_err(|source| Sha256Error::Io {
                        path: self.path.clone(),
                        source,
                    })?;
                std::str::from_utf8(&line[1..65])
                    .ok()
                    .and_then(parse_hex32)
                    .ok_or_else(|| Sha256Error::Invalid {
                        path: self.path.clone(),
                        reason: format!("entry {index} is not 64 hex digits"),
                    })
            }
        }
    }
}

/// Parse 64 hex digits into 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}
