//! Walking a share into a model: backups (by their `_metadata` files),
//! their chunk files, chains, and findings about what does not fit.
//!
//! The walk goes through [`super::access`] only: directories are listed
//! through handles, links are reported and never followed, and what the
//! walk refuses (a link, a FIFO, a device) no later reader opens either,
//! because every reader opens through the same gate.

use super::ShareDir;
pub use super::access::EntryKind;
use super::metadata::{BackupMetadata, ReadError};
use super::source::{Entry, join};
use super::{AccessError, FileId, Share};
use crate::findings::{Finding, Findings};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ScanError {
    #[error("the share root cannot be read: {0}")]
    Root(#[from] AccessError),
    #[error("no backup with id {0} on the share")]
    NotFound(String),
    #[error("backup {id} is on the share, but its files were refused: {why}")]
    Refused { id: String, why: String },
    #[error("{id} is ambiguous: it matches {matches}")]
    Ambiguous { id: String, matches: String },
}

/// The largest `_metadata` file cbr reads (a 10 TiB volume in 64 MiB
/// chunks lists 160,000 objects, about 30 MB).
pub use super::metadata::METADATA_LIMIT;

/// Directories deeper than this below the root are not walked (Cinder's
/// layout is three deep).
pub const MAX_DEPTH: usize = 32;

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
    /// Size of the `_metadata` file.
    pub metadata_bytes: u64,
    /// Identity of the `_metadata` file whose bytes were parsed.
    pub metadata_id: Option<super::FileId>,
    /// Identity of the `_sha256file` a verification read (set by verify
    /// from the handle it hashed against; None from the scan).
    pub sha256_id: Option<super::FileId>,
    /// Share-relative path of the `_sha256file`, when it is a regular file.
    pub sha256_path: Option<String>,
    /// Size of the `_sha256file`.
    pub sha256_bytes: u64,
    /// Entries in the container named `<prefix>-NNNNN`, sorted by name.
    pub chunk_files: Vec<ChunkFile>,
}

impl BackupEntry {
    /// Share-relative path of an object in this backup's container.
    pub fn rel(&self, name: &str) -> String {
        join(&self.container, name)
    }
    /// Open one of this backup's objects (through the share's one gate).
    pub fn open(&self, share: &Share, name: &str) -> Result<super::ShareFile, AccessError> {
        share.open_file(&self.rel(name))
    }
    /// Open this backup's sha256file.
    pub fn open_sha256(
        &self,
        share: &Share,
    ) -> Result<super::Sha256File, super::sha256file::Sha256Error> {
        let rel = self
            .sha256_path
            .clone()
            .unwrap_or_else(|| self.rel(&format!("{}_sha256file", self.prefix)));
        super::Sha256File::open(share, &rel)
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
            .fold(0u64, |a, c| a.saturating_add(c.size))
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

/// What a chain walk needs of a backup, without its object list: its id,
/// its parent, where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: String,
    pub parent_id: Option<String>,
    /// The share-relative container directory.
    pub container: String,
    /// The object prefix.
    pub prefix: String,
    /// Share-relative path of the `_sha256file`, when it is a regular file.
    pub sha256_path: Option<String>,
}

impl Link {
    pub fn of(b: &BackupEntry) -> Link {
        Link {
            id: b.id.clone(),
            parent_id: b.metadata.parent_id.clone(),
            container: b.container.clone(),
            prefix: b.prefix.clone(),
            sha256_path: b.sha256_path.clone(),
        }
    }
    /// Share-relative path of an object in this backup's container.
    pub fn rel(&self, name: &str) -> String {
        join(&self.container, name)
    }
    /// Open this backup's sha256file.
    pub fn open_sha256(
        &self,
        share: &Share,
    ) -> Result<super::Sha256File, super::sha256file::Sha256Error> {
        let rel = self
            .sha256_path
            .clone()
            .unwrap_or_else(|| self.rel(&format!("{}_sha256file", self.prefix)));
        super::Sha256File::open(share, &rel)
    }
}

/// Backups by id, as the work on one backup needs its neighbours: the
/// whole share's index (which loads a backup from its directory when asked)
/// or the few backups around one (`check`, `show`). Per-backup code
/// (structure, verdict, restore, recover) asks through this, so that it
/// never needs the whole share in memory.
pub trait Backups: Sync {
    /// The backup with exactly this id, in full (objects, chunk files);
    /// None when no backup on the share has it. With repeated ids, the
    /// first in the order of backups.
    fn get(&self, id: &str) -> Option<Arc<BackupEntry>>;

    /// [`Link`] of the backup with exactly this id, without loading its
    /// object list: what a chain walk needs.
    fn link(&self, id: &str) -> Option<Link> {
        self.get(id).map(|b| Link::of(&b))
    }

    /// The chain of a backup, full backup first, the backup itself last,
    /// each in full. Stops (returning what it has) when a parent is missing
    /// or on a cycle; the caller compares the first entry's parent_id to
    /// None.
    fn chain(&self, backup: Arc<BackupEntry>) -> Vec<Arc<BackupEntry>> {
        let mut seen = std::collections::HashSet::from([backup.id.clone()]);
        let mut chain = vec![backup];
        while let Some(pid) = chain.last().and_then(|c| c.parent_id().map(str::to_owned)) {
            match self.get(&pid) {
                Some(p) if !seen.contains(&p.id) => {
                    seen.insert(p.id.clone());
                    chain.push(p);
                }
                _ => break,
            }
        }
        chain.reverse();
        chain
    }
}

impl Backups for ShareScan {
    fn get(&self, id: &str) -> Option<Arc<BackupEntry>> {
        ShareScan::get(self, id).map(|b| Arc::new(b.clone()))
    }
    fn link(&self, id: &str) -> Option<Link> {
        ShareScan::get(self, id).map(Link::of)
    }
}

/// Everything found on a share.
#[derive(Debug, Default)]
pub struct ShareScan {
    pub backups: Vec<BackupEntry>,
    pub findings: Findings,
    /// backup id -> index in `backups` (the first, if ids repeat).
    index: HashMap<String, usize>,
}

/// Whether `name` is a chunk object name of `prefix`: `<prefix>-<digits>`.
pub fn is_chunk_of(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A `_metadata` file parsed, with the identity of the handle read; or
/// the finding that refused it.
type Parsed = Result<(BackupMetadata, FileId), Finding>;

/// One directory as the walk saw it, already worked on: its entry list
/// is dropped as soon as its backups are made.
struct DirDone {
    rel: String,
    backups: Vec<BackupEntry>,
    /// What its backups' files and its unclaimed files say.
    findings: Findings,
}

/// What one directory holds: its backups in full, the findings its
/// backups and unclaimed files make (`own`), the findings of the walk
/// itself (links, bad names, too deep: `walk`), and its subdirectories.
struct DirWork {
    backups: Vec<BackupEntry>,
    own: Findings,
    walk: Vec<Finding>,
    subdirs: Vec<String>,
}

/// Read the entries of `dir` (at `depth` below the root), parse its
/// `_metadata` files, claim chunk files, and make its findings. The entry
/// list lives only for this call.
fn work_dir(dir: &ShareDir, depth: usize) -> Result<DirWork, AccessError> {
    let entries = dir.entries()?;
    let rel = &dir.rel;
    let mut walk = Vec::new();
    let mut subdirs = Vec::new();
    let mut metas = Vec::new();
    for e in &entries {
        let path = join(rel, &e.name);
        match e.kind {
            EntryKind::Dir if !e.lossy => {
                if depth >= MAX_DEPTH {
                    walk.push(Finding::warning(
                        "too-deep",
                        format!("{path} is more than {MAX_DEPTH} directories deep: not walked (Cinder's layout is three deep)"),
                    ).path(path));
                } else {
                    subdirs.push(path);
                }
            }
            EntryKind::Symlink => walk.push(link_finding(dir, e, path)),
            EntryKind::File if e.name.ends_with("_metadata") && !e.lossy => {
                let parsed = read_metadata(dir, &e.name);
                metas.push((e.name.clone(), e.size, parsed));
            }
            _ if e.lossy => walk.push(
                Finding::warning(
                    "name-invalid",
                    format!("{path:?} is not a UTF-8 name: Cinder never writes one, and cbr does not open it"),
                )
                .path(path),
            ),
            _ => {}
        }
    }
    let mut own = Findings::new();
    let mut backups = Vec::new();
    let mut claimed = vec![false; entries.len()];
    for (name, size, result) in metas {
        if let Some(b) = backup_of(rel, &entries, &name, size, result, &mut claimed, &mut own) {
            backups.push(b);
        }
    }
    unclaimed(rel, &entries, &claimed, &mut own);
    Ok(DirWork {
        backups,
        own,
        walk,
        subdirs,
    })
}

/// Read ONE directory of the share (share-relative, `/`-separated; "" for
/// the root) into its backups, in full, with the findings a walk of the
/// whole share makes for that directory (its backups' files, unclaimed
/// files, links, bad names; not the share-wide ones: chains, root hints).
/// Subdirectories are not read. Backups come sorted by (created_at, id).
pub fn backups_in_dir(
    share: &Share,
    rel: &str,
) -> Result<(Vec<BackupEntry>, Findings), AccessError> {
    let depth = super::source::components(rel)?.len();
    let dir = share.open_dir(rel)?;
    let w = work_dir(&dir, depth)?;
    let mut findings = Findings::new();
    let mut walk = w.walk;
    walk.sort_by(|a, b| a.path.cmp(&b.path));
    findings.extend(walk);
    findings.extend(w.own.0);
    let mut backups = w.backups;
    sort_backups(&mut backups);
    Ok((backups, findings))
}

/// The order of backups everywhere: by creation time, then id.
fn sort_backups(backups: &mut [BackupEntry]) {
    backups.sort_by(|a, b| {
        (a.metadata.created_at.as_deref(), &a.id).cmp(&(b.metadata.created_at.as_deref(), &b.id))
    });
}

/// Walk one directory (by its share-relative path), then its subdirectories
/// in parallel. Only one handle is open per task.
fn walk<'s>(
    share: &'s Share,
    rel: String,
    depth: usize,
    scope: &rayon::Scope<'s>,
    out: &'s Mutex<Vec<DirDone>>,
    findings: &'s Mutex<Findings>,
) {
    let push = |f: Vec<Finding>| match findings.lock() {
        Ok(mut g) => g.extend(f),
        Err(p) => p.into_inner().extend(f),
    };
    let dir = match share.open_dir(&rel) {
        Ok(d) => d,
        Err(e) => return push(vec![Finding::error(e.code(), e.to_string()).path(rel)]),
    };
    let w = match work_dir(&dir, depth) {
        Ok(w) => w,
        Err(e) => return push(vec![Finding::error("read-failed", e.to_string()).path(rel)]),
    };
    drop(dir);
    for path in w.subdirs {
        scope.spawn(move |s| walk(share, path, depth + 1, s, out, findings));
    }
    if !w.walk.is_empty() {
        push(w.walk);
    }
    if w.backups.is_empty() && w.own.is_empty() {
        return;
    }
    let d = DirDone {
        rel,
        backups: w.backups,
        findings: w.own,
    };
    match out.lock() {
        Ok(mut g) => g.push(d),
        Err(p) => p.into_inner().push(d),
    }
}

fn read_metadata(dir: &ShareDir, name: &str) -> Parsed {
    let path = join(&dir.rel, name);
    super::metadata::read_in_with_id(dir, name).map_err(|e| match e {
        ReadError::Access(e) => Finding::error(e.code(), e.to_string()).path(path.clone()),
        ReadError::Parse(e) => {
            Finding::error(e.code(), format!("{name} is not valid metadata: {e}"))
                .path(path.clone())
        }
    })
}

/// A link on the share: never followed. One that leads to a directory or
/// stands for a `_metadata` file hides backups from every check: an error.
fn link_finding(dir: &ShareDir, e: &Entry, path: String) -> Finding {
    let target = dir.link_target(&e.name).unwrap_or_else(|| "?".into());
    if dir.link_is_dir(&e.name) {
        Finding::error(
            "symlink-refused",
            format!(
                "{path} is a symbolic link to the directory {target}: cbr does not follow links, so \
                 whatever backups are behind it are NOT checked (Cinder never writes links)"
            ),
        )
        .path(path)
    } else if e.name.ends_with("_metadata") {
        Finding::error(
            "symlink-refused",
            format!(
                "{path} is a symbolic link (to {target}) in place of a backup's metadata: that backup \
                 is NOT checked (Cinder never writes links)"
            ),
        )
        .path(path)
    } else {
        Finding::warning(
            "symlink-refused",
            format!(
                "a symbolic link (to {target}) is not followed: Cinder never writes links, \
                 and cbr does not leave the share"
            ),
        )
        .path(path)
    }
}

/// Walk the share and build the model. Never follows symbolic links and
/// never writes; what cannot be read becomes a finding.
pub fn scan(share: &Share) -> Result<ShareScan, ScanError> {
    // The root must be readable: that is an error of the run, not a finding.
    share.root_dir()?.entries()?;
    let out = Mutex::new(Vec::new());
    let found = Mutex::new(Findings::new());
    walk_pool(share).scope(|s| walk(share, String::new(), 0, s, &out, &found));
    let mut dirs = out.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut findings = found.into_inner().unwrap_or_else(|p| p.into_inner());
    dirs.sort_by(|a, b| a.rel.cmp(&b.rel));
    findings.0.sort_by(|a, b| a.path.cmp(&b.path));

    let mut backups = Vec::new();
    for d in dirs {
        backups.extend(d.backups);
        findings.extend(d.findings.0);
    }
    sort_backups(&mut backups);
    findings.extend(root_hints(share, &backups));
    let mut index = HashMap::with_capacity(backups.len());
    for (i, b) in backups.iter().enumerate() {
        index.entry(b.id.clone()).or_insert(i);
    }
    Ok(ShareScan {
        backups,
        findings,
        index,
    })
}

/// The walk's own pool, sized by the share's source
/// ([`Share::walk_concurrency`]): a remote walk is bound by round trips
/// and asks for more threads than there are CPUs.
fn walk_pool(share: &Share) -> rayon::ThreadPool {
    let n = share.walk_concurrency();
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("cbr-walk-{i}"))
        .build()
        .unwrap_or_else(|_| {
            // Threads could not be made: walk on this one.
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .use_current_thread()
                .build()
                .expect("a pool on the current thread")
        })
}

/// Whether `c` is the default container of backup `id`: `ab/cd/<id>`.
fn is_default_container(c: &str, id: &str) -> bool {
    c == super::default_container(id)
}

/// Guard rails: a `--share` one level above the share (every backup sits
/// under one directory, in Cinder's layout below it) or at one backup's own
/// directory. Records name containers relative to the real root, so
/// nothing would match from here: say so, and name the root.
fn root_hints(share: &Share, backups: &[BackupEntry]) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(first) = backups.first() else {
        return out;
    };
    // Too high: a common first component, Cinder's layout under it.
    if let Some((top, _)) = first.container.split_once('/') {
        let under = |b: &BackupEntry| {
            b.container
                .strip_prefix(top)
                .and_then(|r| r.strip_prefix('/'))
                .map(str::to_owned)
        };
        let all_under = backups.iter().all(|b| under(b).is_some());
        let layout = backups
            .iter()
            .filter_map(|b| under(b).map(|c| is_default_container(&c, &b.id)))
            .filter(|x| *x)
            .count();
        if all_under && layout * 2 >= backups.len() {
            let root = share.root.join(top);
            out.push(
                Finding::warning(
                    "share-root-suspect",
                    format!(
                        "every backup here sits under {top}/, in Cinder's layout below it: the share root is \
                         probably {} (give --share {}); records name containers from the real root and \
                         will not match from here",
                        root.display(),
                        root.display()
                    ),
                )
                .path(top.to_string()),
            );
        }
    }
    // Too low: the backups' files right at the root, which is named like
    // a backup's default container.
    let at_root: Vec<&BackupEntry> = backups.iter().filter(|b| b.container.is_empty()).collect();
    if let [b] = at_root.as_slice() {
        let path = share.root.to_string_lossy().replace('\\', "/");
        let tail = super::default_container(&b.id);
        if path.trim_end_matches('/').ends_with(&tail) {
            let root = share
                .root
                .ancestors()
                .nth(3)
                .map_or_else(|| share.root.join("../../.."), |p| p.to_path_buf());
            out.push(
                Finding::warning(
                    "share-root-suspect",
                    format!(
                        "this is the directory of backup {} ({tail}), not a share root: the share root is \
                         probably {} (give --share {})",
                        b.id,
                        root.display(),
                        root.display()
                    ),
                )
                .backup(b.id.clone()),
            );
        }
    }
    out
}

/// The backup of one `<prefix>_metadata` file in `d`, marking the entries
/// it claims.
fn backup_of(
    rel: &str,
    entries: &[Entry],
    name: &str,
    size: u64,
    result: Parsed,
    claimed: &mut [bool],
    findings: &mut Findings,
) -> Option<BackupEntry> {
    let prefix = name.strip_suffix("_metadata").unwrap_or(name);
    let pos = |n: &str| entries.binary_search_by(|e| e.name.as_str().cmp(n)).ok();
    if let Some(i) = pos(name) {
        claimed[i] = true;
    }
    let sha_name = format!("{prefix}_sha256file");
    let sha_pos = pos(&sha_name);
    if let Some(i) = sha_pos {
        claimed[i] = true;
    }
    // Names `<prefix>-…` sort together: look only there.
    let dash = format!("{prefix}-");
    let from = entries.partition_point(|e| e.name.as_str() < dash.as_str());
    let mut chunk_files = Vec::new();
    for (i, e) in entries.iter().enumerate().skip(from) {
        if !e.name.starts_with(&dash) {
            break;
        }
        if is_chunk_of(&e.name, prefix) {
            claimed[i] = true;
            chunk_files.push(ChunkFile {
                name: e.name.clone(),
                size: e.size,
                is_file: e.kind == EntryKind::File,
                kind: e.kind,
            });
        }
    }
    let (metadata, metadata_id) = match result {
        Ok(m) => m,
        Err(f) => {
            findings.push(f);
            return None;
        }
    };
    let id = metadata.backup_id.clone();
    let sha_rel = join(rel, &sha_name);
    let sha_entry = sha_pos.and_then(|i| entries.get(i));
    match sha_entry {
        None => findings.push(
            Finding::error(
                "sha256file-missing",
                format!("{sha_name} is missing: restore needs it for incrementals and cbr for verification"),
            )
            .backup(id.clone())
            .path(sha_rel.clone()),
        ),
        Some(e) if e.kind != EntryKind::File => findings.push(
            Finding::error(
                "read-failed",
                format!("{sha_name} is {}, not a file: it cannot be read", e.kind.describe()),
            )
            .backup(id.clone())
            .path(sha_rel.clone()),
        ),
        Some(_) => {}
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
            .backup(id.clone())
            .path(join(rel, &c.name)),
        );
    }
    let sha_file = sha_entry.filter(|e| e.kind == EntryKind::File);
    Some(BackupEntry {
        id,
        container: rel.to_string(),
        prefix: prefix.to_string(),
        sha256_path: sha_file.map(|_| sha_rel),
        sha256_bytes: sha_file.map_or(0, |e| e.size),
        metadata,
        metadata_bytes: size,
        metadata_id: Some(metadata_id),
        sha256_id: None,
        chunk_files,
    })
}

/// What no backup claims in `d`: orphan chunks and sha256files, stray files.
fn unclaimed(dir_rel: &str, entries: &[Entry], claimed: &[bool], findings: &mut Findings) {
    let mut orphans: BTreeMap<&str, usize> = BTreeMap::new();
    for (e, _) in entries.iter().zip(claimed).filter(|(_, c)| !**c) {
        if e.kind == EntryKind::Dir || e.kind == EntryKind::Symlink || e.lossy {
            continue;
        }
        let rel = join(dir_rel, &e.name);
        let name = &e.name;
        if let Some(prefix) = chunk_prefix(name) {
            *orphans.entry(prefix).or_default() += 1;
        } else if let Some(prefix) = name.strip_suffix("_sha256file") {
            findings.push(
                Finding::warning(
                    "metadata-missing",
                    format!(
                        "{name} has no {prefix}_metadata beside it: the backup cannot be restored"
                    ),
                )
                .path(rel),
            );
        } else if e.kind == EntryKind::Other {
            findings.push(
                Finding::warning(
                    "stray-file",
                    format!("{name} is {}: Cinder's backup driver never writes one, and cbr does not open it", e.kind.describe()),
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
            .path(join(dir_rel, &format!("{prefix}-*"))),
        );
    }
}

/// The prefix of a chunk object name `<prefix>-NNNNN`.
pub fn chunk_prefix(name: &str) -> Option<&str> {
    let (prefix, num) = name.rsplit_once('-')?;
    (num.len() >= 5 && num.bytes().all(|b| b.is_ascii_digit()) && !prefix.is_empty())
        .then_some(prefix)
}

impl ShareScan {
    /// The backup with exactly this id.
    pub fn get(&self, id: &str) -> Option<&BackupEntry> {
        self.index.get(id).and_then(|&i| self.backups.get(i))
    }

    /// The backup with this id, or the only one whose id starts with it.
    pub fn find(&self, id: &str) -> Result<&BackupEntry, ScanError> {
        if let Some(b) = self.get(id) {
            return Ok(b);
        }
        let matches: Vec<&BackupEntry> = self
            .backups
            .iter()
            .filter(|b| b.id.starts_with(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => {
                // A backup whose metadata the scan refused names its id in
                // the finding's path (container or object prefix).
                let refused = self
                    .findings
                    .errors()
                    .find(|f| id.len() >= 8 && f.path.as_deref().is_some_and(|p| p.contains(id)));
                Err(match refused {
                    Some(f) => ScanError::Refused {
                        id: id.to_string(),
                        why: format!("{} [{}]", f.message, f.code),
                    },
                    None => ScanError::NotFound(id.to_string()),
                })
            }
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
        let mut seen = std::collections::HashSet::from([backup.id.as_str()]);
        let mut cur = backup;
        while let Some(pid) = cur.parent_id() {
            match self.get(pid) {
                Some(p) if !seen.contains(p.id.as_str()) => {
                    seen.insert(p.id.as_str());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{SynthBackup, uuid_from, write_backup};

    fn tiny(n: u64, container: Option<&str>) -> SynthBackup {
        SynthBackup {
            id: uuid_from(n, 7),
            volume_id: uuid_from(n, 8),
            container: container.map(str::to_owned),
            legacy_prefix: false,
            timestamp: format!("202611240609{:02}", n),
            name: Some(format!("b{n}")),
            description: None,
            size: 1 << 16,
            object_size: 1 << 16,
            block: 1 << 15,
            compression: "none".into(),
            parent: None,
        }
    }

    /// `backups_in_dir` (what check and show read instead of a walk) must
    /// give a directory's backups and findings exactly as the whole walk does.
    #[test]
    #[allow(clippy::disallowed_methods)] // a test makes a share to read
    fn one_directory_reads_as_the_walk_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let a = write_backup(root, &tiny(1, Some("c/one")), &mut |_, b| b.fill(1)).unwrap();
        write_backup(root, &tiny(2, Some("c/one")), &mut |_, b| b.fill(2)).unwrap();
        write_backup(root, &tiny(3, None), &mut |_, b| b.fill(3)).unwrap();
        let one = root.join("c/one");
        std::fs::write(one.join("stray.txt"), b"x").unwrap();
        std::fs::write(one.join("gone_backup-00001"), b"x").unwrap();
        std::fs::remove_file(one.join(format!("{}_sha256file", a.prefix))).unwrap();
        std::os::unix::fs::symlink("/etc", one.join("elsewhere")).unwrap();
        std::fs::create_dir(one.join("sub")).unwrap();

        let share = Share::open(root).unwrap();
        let whole = scan(&share).unwrap();
        let (backups, findings) = backups_in_dir(&share, "c/one").unwrap();
        let ids: Vec<&str> = backups.iter().map(|b| b.id.as_str()).collect();
        let walked: Vec<&str> = whole
            .backups
            .iter()
            .filter(|b| b.container == "c/one")
            .map(|b| b.id.as_str())
            .collect();
        assert_eq!(ids, walked);
        assert_eq!(ids.len(), 2);
        for b in &backups {
            let w = whole.get(&b.id).unwrap();
            assert_eq!(b.chunk_files, w.chunk_files);
            assert_eq!(b.sha256_path, w.sha256_path);
        }
        let of_dir = |f: &&Finding| {
            f.path
                .as_deref()
                .is_some_and(|p| p.starts_with("c/one/") && !p["c/one/".len()..].contains('/'))
        };
        let walked: Vec<&Finding> = whole.findings.iter().filter(of_dir).collect();
        let mine: Vec<&Finding> = findings.iter().collect();
        assert_eq!(format!("{mine:?}"), format!("{walked:?}"));
        for code in [
            "sha256file-missing",
            "stray-file",
            "orphan-chunks",
            "symlink-refused",
        ] {
            assert!(
                findings.iter().any(|f| f.code == code),
                "{code}: {findings:?}"
            );
        }
        assert!(matches!(
            backups_in_dir(&share, "c/none"),
            Err(e) if e.is_not_found()
        ));
    }

    /// The share index answers the `Backups` questions per-backup code asks.
    #[test]
    fn backups_trait_walks_chains_by_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let full = write_backup(root, &tiny(1, None), &mut |_, b| b.fill(1)).unwrap();
        let mut inc = tiny(2, None);
        inc.parent = Some((uuid_from(1, 7), full.sha256s.clone()));
        write_backup(root, &inc, &mut |_, b| b.fill(2)).unwrap();
        let share = Share::open(root).unwrap();
        let s = scan(&share).unwrap();
        let all: &dyn Backups = &s;
        let top = all.get(&uuid_from(2, 7)).unwrap();
        let chain: Vec<String> = all.chain(top).iter().map(|b| b.id.clone()).collect();
        assert_eq!(chain, [uuid_from(1, 7), uuid_from(2, 7)]);
        let l = all.link(&uuid_from(2, 7)).unwrap();
        assert_eq!(l.parent_id.as_deref(), Some(uuid_from(1, 7).as_str()));
        assert!(all.link("nope").is_none());
    }
}
