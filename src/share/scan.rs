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

/// What a directory entry is, without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

impl EntryKind {
    fn of(ft: std::fs::FileType) -> Self {
        if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_file() {
            EntryKind::File
        } else if ft.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::Other
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::File => "a file",
            EntryKind::Dir => "a directory",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Other => "a special file",
        }
    }
}

/// A chunk file found on disk beside a backup's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkFile {
    pub name: String,
    /// Size on disk (bytes), for regular files.
    pub size: u64,
    /// Whether it is a regular file (not a directory, link, socket…).
    pub is_file: bool,
    pub kind: EntryKind,
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
    /// Absolute path of the `_sha256file`, when it exists as a file.
    pub sha256_path: Option<PathBuf>,
    /// Entries in the container named `<prefix>-NNNNN`, sorted by name.
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
    /// The children of this backup on the share (backups whose parent it is).
    pub fn dependants<'a>(&self, scan: &'a ShareScan) -> Vec<&'a BackupEntry> {
        scan.backups
            .iter()
            .filter(|b| b.parent_id() == Some(self.id.as_str()))
            .collect()
    }
    /// Bytes on disk of the chunk files the metadata lists.
    pub fn stored_bytes(&self) -> u64 {
        self.metadata
            .objects
            .iter()
            .filter_map(|o| self.chunk_file(&o.name))
            .map(|c| c.size)
            .sum()
    }
    /// The chunk file of this name (`chunk_files` is sorted by name).
    pub fn chunk_file(&self, name: &str) -> Option<&ChunkFile> {
        self.chunk_files
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.chunk_files.get(i))
    }
    pub fn parent_id(&self) -> Option<&str> {
        self.metadata.parent_id.as_deref()
    }
    /// Whether metadata, sha256file and every listed chunk file are present.
    pub fn complete(&self) -> bool {
        self.sha256_path.is_some()
            && self
                .metadata
                .objects
                .iter()
                .all(|o| self.chunk_file(&o.name).is_some_and(|c| c.is_file))
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

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    kind: EntryKind,
}

/// Walk the share and build the model. Never follows symbolic links and
/// never writes; what cannot be read becomes a finding.
pub fn scan(share: &Share) -> Result<ShareScan, ScanError> {
    use rayon::prelude::*;
    if !share.root.is_dir() {
        return Err(ScanError::NotADirectory(share.root.clone()));
    }
    let mut findings = Findings::new();
    // directory -> (entry name -> entry)
    let mut dirs: BTreeMap<PathBuf, BTreeMap<String, Entry>> = BTreeMap::new();
    for entry in WalkDir::new(&share.root).follow_links(false) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let mut f = Finding::error("read-failed", format!("cannot read: {e}"));
                f.path = e.path().map(|p| rel_path(&share.root, p));
                findings.push(f);
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let kind = EntryKind::of(entry.file_type());
        if kind == EntryKind::Symlink {
            let target = std::fs::read_link(entry.path())
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            findings.push(
                Finding::warning(
                    "symlink-refused",
                    format!(
                        "a symbolic link (to {target}) is not followed: Cinder never writes links, \
                         and cbr does not leave the share"
                    ),
                )
                .path(rel_path(&share.root, entry.path())),
            );
        }
        let Some(parent) = entry.path().parent() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let size = if kind == EntryKind::File {
            match entry.metadata() {
                Ok(m) => m.len(),
                Err(e) => {
                    findings.push(
                        Finding::error("read-failed", format!("cannot stat: {e}"))
                            .path(rel_path(&share.root, entry.path())),
                    );
                    0
                }
            }
        } else {
            0
        };
        dirs.entry(parent.to_path_buf())
            .or_default()
            .insert(name, Entry { size, kind });
    }

    // Backups: every `<prefix>_metadata` file (parsed in parallel).
    let metas: Vec<(&PathBuf, &String)> = dirs
        .iter()
        .flat_map(|(dir, files)| {
            files
                .iter()
                .filter(|(n, e)| n.ends_with("_metadata") && e.kind == EntryKind::File)
                .map(move |(n, _)| (dir, n))
        })
        .collect();
    let parsed: Vec<(&PathBuf, &String, Result<BackupMetadata, String>)> = metas
        .par_iter()
        .map(|(dir, name)| {
            let r = std::fs::read(dir.join(name))
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|b| {
                    BackupMetadata::parse(&b).map_err(|e| format!("not valid metadata: {e}"))
                });
            (*dir, *name, r)
        })
        .collect();

    let mut backups = Vec::new();
    let mut claimed: std::collections::HashSet<(&Path, &str)> = Default::default();
    for (dir, name, result) in parsed {
        let prefix = name.strip_suffix("_metadata").unwrap_or(name);
        let rel = rel_path(&share.root, &dir.join(name));
        let files = &dirs[dir];
        claimed.insert((dir.as_path(), name.as_str()));
        let sha_name = format!("{prefix}_sha256file");
        // Names `<prefix>-…` sort together: look only there.
        let dash = format!("{prefix}-");
        let chunk_files: Vec<ChunkFile> = files
            .range::<str, _>((
                std::ops::Bound::Included(dash.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(n, _)| n.starts_with(&dash))
            .filter(|(n, _)| is_chunk_of(n, prefix))
            .map(|(n, e)| ChunkFile {
                name: n.clone(),
                size: e.size,
                is_file: e.kind == EntryKind::File,
                kind: e.kind,
            })
            .collect();
        for (n, _) in files
            .range::<str, _>((
                std::ops::Bound::Included(dash.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(n, _)| n.starts_with(&dash))
            .filter(|(n, _)| is_chunk_of(n, prefix))
        {
            claimed.insert((dir.as_path(), n.as_str()));
        }
        if let Some((n, _)) = files.get_key_value(&sha_name) {
            claimed.insert((dir.as_path(), n.as_str()));
        }
        let metadata = match result {
            Ok(m) => m,
            Err(e) => {
                findings.push(Finding::error("metadata-invalid", format!("{name}: {e}")).path(rel));
                continue;
            }
        };
        let sha_entry = files.get(&sha_name);
        if sha_entry.is_none() {
            findings.push(
                Finding::error(
                    "sha256file-missing",
                    format!("{prefix}_sha256file is missing: restore needs it for incrementals and cbr for verification"),
                )
                .backup(metadata.backup_id.clone())
                .path(rel_path(&share.root, &dir.join(&sha_name))),
            );
        }
        for c in chunk_files.iter().filter(|c| !c.is_file) {
            findings.push(
                Finding::error(
                    "read-failed",
                    format!(
                        "chunk {} is {}, not a file: it cannot be read",
                        c.name,
                        c.kind.describe()
                    ),
                )
                .backup(metadata.backup_id.clone())
                .path(rel_path(&share.root, &dir.join(&c.name))),
            );
        }
        backups.push(BackupEntry {
            id: metadata.backup_id.clone(),
            container: rel_path(&share.root, dir),
            prefix: prefix.to_string(),
            sha256_path: sha_entry
                .filter(|e| e.kind == EntryKind::File)
                .map(|_| dir.join(&sha_name)),
            metadata,
            metadata_path: dir.join(name),
            chunk_files,
        });
    }

    // What no backup claims: orphan chunks and sha256files, stray files.
    for (dir, files) in &dirs {
        let mut orphans: BTreeMap<String, usize> = BTreeMap::new();
        for (name, e) in files {
            if e.kind == EntryKind::Dir || e.kind == EntryKind::Symlink {
                continue;
            }
            if claimed.contains(&(dir.as_path(), name.as_str())) {
                continue;
            }
            let rel = rel_path(&share.root, &dir.join(name));
            if let Some(prefix) = chunk_prefix(name) {
                *orphans.entry(prefix.to_string()).or_default() += 1;
            } else if let Some(prefix) = name.strip_suffix("_sha256file") {
                findings.push(
                    Finding::warning(
                        "metadata-missing",
                        format!("{name} has no {prefix}_metadata beside it: the backup cannot be restored"),
                    )
                    .path(rel),
                );
            } else {
                findings.push(
                    Finding::info(
                        "stray-file",
                        format!("{name} is not a file Cinder's backup driver writes"),
                    )
                    .path(rel),
                );
            }
        }
        for (prefix, n) in orphans {
            findings.push(
                Finding::warning(
                    "orphan-chunks",
                    format!(
                        "{n} chunk file(s) {prefix}-NNNNN have no {prefix}_metadata: left over from a \
                         deleted or failed backup, they belong to no backup"
                    ),
                )
                .path(rel_path(&share.root, &dir.join(format!("{prefix}-*")))),
            );
        }
    }

    backups.sort_by(|a, b| {
        (a.metadata.created_at.as_deref(), &a.id).cmp(&(b.metadata.created_at.as_deref(), &b.id))
    });
    Ok(ShareScan { backups, findings })
}

/// The prefix of a chunk object name `<prefix>-NNNNN`.
pub fn chunk_prefix(name: &str) -> Option<&str> {
    let (prefix, num) = name.rsplit_once('-')?;
    (num.len() >= 5 && num.bytes().all(|b| b.is_ascii_digit()) && !prefix.is_empty())
        .then_some(prefix)
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
