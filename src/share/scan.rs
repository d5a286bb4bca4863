//! Walking a share into a model: backups (by their `_metadata` files),
//! their chunk files, chains, and findings about what does not fit.

use super::Share;
use super::metadata::BackupMetadata;
use crate::findings::{Finding, Findings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;
use walkdir::WalkDir;

#[derive(Debug, Error)]
pub enum ScanError {
    #[error("the share {0} does not exist or is not a directory")]
    NotADirectory(PathBuf),
    #[error("no backup with id {0} on the share")]
    NotFound(String),
    #[error("{id} is ambiguous: it matches {matches}")]
    Ambiguous { id: String, matches: String },
}

/// A chunk file found on disk beside a backup's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkFile {
    pub name: String,
    /// Size on disk (bytes), for regular files.
    pub size: u64,
    /// Whether it is a regular file (not a directory, link, socket…).
    pub is_file: bool,
}

/// One backup found on the share.
#[derive(Debug, Clone)]
pub struct BackupEntry {
    /// `backup_id` from the metadata.
    pub id: String,
    /// The share-relative container directory, `/`-separated.
    pub container: String,
    /// The object prefix (`volume_…_backup_…` or `backup`).
    pub prefix: String,
    pub metadata: BackupMetadata,
    /// Absolute path of the `_metadata` file.
    pub metadata_path: PathBuf,
    /// Absolute path of the `_sha256file`, when it exists.
    pub sha256_path: Option<PathBuf>,
    /// Files in the container named `<prefix>-NNNNN`, sorted by name.
    pub chunk_files: Vec<ChunkFile>,
}

impl BackupEntry {
    /// Absolute directory of the container.
    pub fn dir(&self, share: &Share) -> PathBuf {
        share.root.join(&self.container)
    }
    /// Share-relative path of an object in this backup's container.
    pub fn rel(&self, name: &str) -> String {
        if self.container.is_empty() {
            name.to_string()
        } else {
            format!("{}/{}", self.container, name)
        }
    }
    /// Bytes on disk of the chunk files the metadata lists.
    pub fn stored_bytes(&self) -> u64 {
        self.metadata
            .objects
            .iter()
            .filter_map(|o| self.chunk_files.iter().find(|c| c.name == o.name))
            .map(|c| c.size)
            .sum()
    }
    pub fn parent_id(&self) -> Option<&str> {
        self.metadata.parent_id.as_deref()
    }
}

/// Everything found on a share.
#[derive(Debug, Default)]
pub struct ShareScan {
    pub backups: Vec<BackupEntry>,
    pub findings: Findings,
}

/// Whether `name` is a chunk object name of `prefix`: `<prefix>-<digits>`.
pub fn is_chunk_of(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn rel_path(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace(std::path::MAIN_SEPARATOR, "/")
}

/// Walk the share and build the model.
pub fn scan(share: &Share) -> Result<ShareScan, ScanError> {
    if !share.root.is_dir() {
        return Err(ScanError::NotADirectory(share.root.clone()));
    }
    let mut out = ShareScan::default();
    // directory -> (file name -> (size, is_file))
    let mut dirs: BTreeMap<PathBuf, BTreeMap<String, (u64, bool)>> = BTreeMap::new();
    for entry in WalkDir::new(&share.root).follow_links(false) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(|p| rel_path(&share.root, p));
                let mut f = Finding::error("read-failed", format!("cannot read: {e}"));
                f.path = path;
                out.findings.push(f);
                continue;
            }
        };
        if entry.depth() == 0 || entry.file_type().is_dir() {
            continue;
        }
        let Some(parent) = entry.path().parent() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_file();
        let size = if is_file {
            entry.metadata().map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        dirs.entry(parent.to_path_buf())
            .or_default()
            .insert(name, (size, is_file));
    }
    for (dir, files) in &dirs {
        for name in files.keys() {
            let Some(prefix) = name.strip_suffix("_metadata") else {
                continue;
            };
            let path = dir.join(name);
            let rel = rel_path(&share.root, &path);
            let metadata = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| BackupMetadata::parse(&b).map_err(|e| e.to_string()))
            {
                Ok(m) => m,
                Err(e) => {
                    out.findings.push(
                        Finding::error("metadata-invalid", format!("cannot parse metadata: {e}"))
                            .path(rel),
                    );
                    continue;
                }
            };
            let sha_name = format!("{prefix}_sha256file");
            let sha256_path = files.contains_key(&sha_name).then(|| dir.join(&sha_name));
            let chunk_files = files
                .iter()
                .filter(|(n, _)| is_chunk_of(n, prefix))
                .map(|(n, (size, is_file))| ChunkFile {
                    name: n.clone(),
                    size: *size,
                    is_file: *is_file,
                })
                .collect();
            out.backups.push(BackupEntry {
                id: metadata.backup_id.clone(),
                container: rel_path(&share.root, dir),
                prefix: prefix.to_string(),
                metadata,
                metadata_path: path,
                sha256_path,
                chunk_files,
            });
        }
    }
    out.backups.sort_by(|a, b| {
        (a.metadata.created_at.as_deref(), &a.id).cmp(&(b.metadata.created_at.as_deref(), &b.id))
    });
    Ok(out)
}

impl ShareScan {
    /// The backup with this id, or the only one whose id starts with it.
    pub fn find(&self, id: &str) -> Result<&BackupEntry, ScanError> {
        if let Some(b) = self.backups.iter().find(|b| b.id == id) {
            return Ok(b);
        }
        let matches: Vec<&BackupEntry> = self
            .backups
            .iter()
            .filter(|b| b.id.starts_with(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(ScanError::NotFound(id.to_string())),
            many => Err(ScanError::Ambiguous {
                id: id.to_string(),
                matches: many
                    .iter()
                    .map(|b| b.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The chain of a backup, full backup first, the backup itself last.
    /// Stops (returning what it has) when a parent is missing or on a cycle;
    /// the caller compares the first entry's parent_id to None.
    pub fn chain<'a>(&'a self, backup: &'a BackupEntry) -> Vec<&'a BackupEntry> {
        let mut chain = vec![backup];
        let mut cur = backup;
        while let Some(pid) = cur.parent_id() {
            match self.backups.iter().find(|b| b.id == pid) {
                Some(p) if !chain.iter().any(|c| c.id == p.id) => {
                    chain.push(p);
                    cur = p;
                }
                _ => break,
            }
        }
        chain.reverse();
        chain
    }
}
