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
use std::borrow::Cow;
use std::collections::BTreeMap;
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

/// Whether `name` is a chunk object name of `prefix`: `<prefix>-<digits>`.
pub fn is_chunk_of(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A `_metadata` file parsed, with the identity of the handle read; or
/// the finding that refused it.
type Parsed = Result<(BackupMetadata, FileId), Finding>;

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
fn root_hints<'a, I>(share: &Share, all: impl Fn() -> I) -> Vec<Finding>
where
    I: Iterator<Item = (&'a str, Cow<'a, str>)>,
{
    let mut out = Vec::new();
    let Some((_, first)) = all().next() else {
        return out;
    };
    // Too high: a common first component, Cinder's layout under it.
    if let Some((top, _)) = first.split_once('/') {
        let under = |c: &str| {
            c.strip_prefix(top)
                .and_then(|r| r.strip_prefix('/'))
                .map(str::to_owned)
        };
        let (mut n, mut all_under, mut layout) = (0usize, true, 0usize);
        for (id, c) in all() {
            n += 1;
            match under(&c) {
                Some(c) => layout += usize::from(is_default_container(&c, id)),
                None => all_under = false,
            }
        }
        if all_under && layout * 2 >= n {
            let root = below_root(share, top);
            out.push(
                Finding::warning(
                    "share-root-suspect",
                    format!(
                        "every backup here sits under {top}/, in Cinder's layout below it: the share root is \
                         probably {root} (give --share {root}); records name containers from the real root and \
                         will not match from here"
                    ),
                )
                .path(top.to_string()),
            );
        }
    }
    // Too low: the backups' files right at the root, which is named like
    // a backup's default container.
    let mut at_root = all().filter(|(_, c)| c.is_empty()).map(|(id, _)| id);
    if let (Some(id), None) = (at_root.next(), at_root.next()) {
        let path = share.root.to_string_lossy().replace('\\', "/");
        let tail = super::default_container(id);
        if path.trim_end_matches('/').ends_with(&tail) {
            let root = three_up(share);
            out.push(
                Finding::warning(
                    "share-root-suspect",
                    format!(
                        "this is the directory of backup {id} ({tail}), not a share root: the share root is \
                         probably {root} (give --share {root})"
                    ),
                )
                .backup(id.to_string()),
            );
        }
    }
    out
}

/// The share root with `top` below it, as the user would give it: a path
/// joined, or for a remote share its URL with `/top` appended to the path.
fn below_root(share: &Share, top: &str) -> String {
    match share.local_root() {
        Some(_) => share.root.join(top).display().to_string(),
        None => {
            let url = share.root.to_string_lossy();
            format!("{}/{top}", url.trim_end_matches('/'))
        }
    }
}

/// Three directories above the share root: a path, or a remote share's
/// URL with its last three path components taken off.
fn three_up(share: &Share) -> String {
    match share.local_root() {
        Some(_) => share
            .root
            .ancestors()
            .nth(3)
            .map_or_else(|| share.root.join("../../.."), |p| p.to_path_buf())
            .display()
            .to_string(),
        None => {
            let url = share.root.to_string_lossy();
            let mut u = url.trim_end_matches('/');
            // Never above the server: `nfs://host` keeps its host.
            let host_end = u.find("://").map_or(0, |i| i + 3);
            for _ in 0..3 {
                match u.rfind('/').filter(|&i| i >= host_end) {
                    Some(i) => u = &u[..i],
                    None => break,
                }
            }
            u.to_string()
        }
    }
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

// ---------------------------------------------------------------------
// The share index: a compact summary per backup, for whole-share runs.
// ---------------------------------------------------------------------

/// What a whole-share run keeps of one backup: ids, parent, sizes,
/// counts and a few small fields — never its object list. Its text fields
/// share one allocation; the default container (`ab/cd/<id>`) and
/// Cinder's prefix (`volume_<volume>_<timestamp>_backup_<id>`) are kept as
/// a flag and a timestamp.
#[derive(Debug, Clone)]
pub struct Summary {
    /// id, container, prefix, volume_id, created_at, name, description,
    /// parent_id, compressions (joined by `,`), one after the other.
    text: Box<str>,
    ends: [u32; 9],
    /// Bit i: field i is present (optional fields); bit 16: the container
    /// is the default one; bit 17: the prefix is Cinder's, only its
    /// timestamp kept.
    flags: u32,
    pub chunks: u64,
    pub stored_bytes: u64,
    pub data_bytes: u64,
    /// Metadata, sha256file and every listed chunk file are present.
    pub complete: bool,
    /// The `_sha256file` is a regular file.
    pub has_sha256: bool,
    /// From the sha256file's header when the walk was asked to read it:
    /// hash block size and the volume bytes it covers.
    pub sha: Option<(u64, u64)>,
}

const F_ID: usize = 0;
const F_CONTAINER: usize = 1;
const F_PREFIX: usize = 2;
const F_VOLUME: usize = 3;
const F_CREATED: usize = 4;
const F_NAME: usize = 5;
const F_DESCRIPTION: usize = 6;
const F_PARENT: usize = 7;
const F_COMPRESSIONS: usize = 8;
const DEFAULT_CONTAINER: u32 = 1 << 16;
const CINDER_PREFIX: u32 = 1 << 17;

impl Summary {
    /// The summary of a backup read in full (`sha`: its sha256file's header).
    pub fn of(b: &BackupEntry, sha: Option<(u64, u64)>) -> Summary {
        let m = &b.metadata;
        let mut flags = 0u32;
        let container = if is_default_container(&b.container, &b.id) {
            flags |= DEFAULT_CONTAINER;
            ""
        } else {
            b.container.as_str()
        };
        let prefix = match (m.volume_id.as_deref(), cinder_timestamp(b)) {
            (Some(_), Some(ts)) => {
                flags |= CINDER_PREFIX;
                ts
            }
            _ => b.prefix.as_str(),
        };
        let compressions = m.compressions().join(",");
        let fields: [Option<&str>; 9] = [
            Some(&b.id),
            Some(container),
            Some(prefix),
            m.volume_id.as_deref(),
            m.created_at.as_deref(),
            m.backup_name.as_deref(),
            m.backup_description.as_deref(),
            m.parent_id.as_deref(),
            Some(&compressions),
        ];
        let mut text = String::new();
        let mut ends = [0u32; 9];
        for (i, f) in fields.iter().enumerate() {
            if let Some(f) = f {
                flags |= 1 << i;
                text.push_str(f);
            }
            // A `_metadata` is at most 64 MiB: every end fits.
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Summary {
            text: text.into_boxed_str(),
            ends,
            flags,
            chunks: m.objects.len() as u64,
            stored_bytes: b.stored_bytes(),
            data_bytes: m.data_bytes(),
            complete: b.complete(),
            has_sha256: b.sha256_path.is_some(),
            sha,
        }
    }
    fn field(&self, i: usize) -> Option<&str> {
        if self.flags & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }
    pub fn id(&self) -> &str {
        self.field(F_ID).unwrap_or_default()
    }
    /// The share-relative container directory.
    pub fn container(&self) -> Cow<'_, str> {
        if self.flags & DEFAULT_CONTAINER != 0 {
            super::default_container(self.id()).into()
        } else {
            self.field(F_CONTAINER).unwrap_or_default().into()
        }
    }
    /// The object prefix.
    pub fn prefix(&self) -> Cow<'_, str> {
        let p = self.field(F_PREFIX).unwrap_or_default();
        if self.flags & CINDER_PREFIX != 0 {
            format!(
                "volume_{}_{p}_backup_{}",
                self.volume_id().unwrap_or_default(),
                self.id()
            )
            .into()
        } else {
            p.into()
        }
    }
    pub fn volume_id(&self) -> Option<&str> {
        self.field(F_VOLUME)
    }
    pub fn created_at(&self) -> Option<&str> {
        self.field(F_CREATED)
    }
    pub fn name(&self) -> Option<&str> {
        self.field(F_NAME)
    }
    pub fn description(&self) -> Option<&str> {
        self.field(F_DESCRIPTION)
    }
    pub fn parent_id(&self) -> Option<&str> {
        self.field(F_PARENT)
    }
    /// The distinct compressions of its chunks, sorted.
    pub fn compressions(&self) -> Vec<String> {
        match self.field(F_COMPRESSIONS) {
            Some("") | None => Vec::new(),
            Some(c) => c.split(',').map(str::to_owned).collect(),
        }
    }
    /// What a chain walk needs of it.
    pub fn link(&self) -> Link {
        let container = self.container().into_owned();
        let prefix = self.prefix().into_owned();
        Link {
            id: self.id().to_owned(),
            parent_id: self.parent_id().map(str::to_owned),
            sha256_path: self
                .has_sha256
                .then(|| join(&container, &format!("{prefix}_sha256file"))),
            container,
            prefix,
        }
    }
}

/// The timestamp of Cinder's prefix `volume_<volume>_<timestamp>_backup_<id>`,
/// when the backup's prefix is exactly that.
fn cinder_timestamp(b: &BackupEntry) -> Option<&str> {
    let vol = b.metadata.volume_id.as_deref()?;
    let rest = b
        .prefix
        .strip_prefix("volume_")?
        .strip_prefix(vol)?
        .strip_prefix('_')?;
    let ts = rest.strip_suffix(b.id.as_str())?.strip_suffix("_backup_")?;
    // The prefix must come back the same: no separator hides in the timestamp.
    (!ts.is_empty() && ts.bytes().all(|c| c.is_ascii_digit())).then_some(ts)
}

/// What a whole-share walk asks of each backup beyond its summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexOptions {
    /// Read each sha256file's header (block size, volume size: `ls`).
    pub sha_header: bool,
}

/// The share as whole-share runs hold it: a summary per backup (sorted
/// by creation time, then id), the findings of the walk, an index by id
/// and one by parent. A backup's files are read again, in full, only when
/// it is worked on ([`ShareIndex::load`], or [`Backups`] through
/// [`ShareIndex::on`]).
#[derive(Debug, Default)]
pub struct ShareIndex {
    pub backups: Vec<Summary>,
    pub findings: Findings,
    /// Positions in `backups`, sorted by id (then position).
    by_id: Vec<u32>,
    /// Positions of backups with a parent, sorted by parent id (then position).
    by_parent: Vec<u32>,
}

/// The findings a directory's backups and files made, keyed to put them
/// in the order of a walk: by directory, then as made.
type DirFindings = Vec<(String, Findings)>;

fn walk_index<'s>(
    share: &'s Share,
    rel: String,
    depth: usize,
    opts: IndexOptions,
    scope: &rayon::Scope<'s>,
    out: &'s Mutex<(Vec<Summary>, DirFindings)>,
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
    for path in w.subdirs {
        scope.spawn(move |s| walk_index(share, path, depth + 1, opts, s, out, findings));
    }
    if !w.walk.is_empty() {
        push(w.walk);
    }
    // A sha256file in this directory is opened through its handle (over
    // nfs:// a round trip fewer than a lookup from the root).
    let header = |b: &BackupEntry| -> Option<(u64, u64)> {
        let p = b.sha256_path.as_deref()?;
        let s = match p.rsplit_once('/') {
            Some((d, name)) if d == dir.rel => super::Sha256File::open_in(&dir, name),
            None if dir.rel.is_empty() => super::Sha256File::open_in(&dir, p),
            _ => b.open_sha256(share),
        };
        s.ok().map(|s| (s.block_size(), s.covered_bytes()))
    };
    let summaries: Vec<Summary> = w
        .backups
        .iter()
        .map(|b| Summary::of(b, opts.sha_header.then(|| header(b)).flatten()))
        .collect();
    drop(dir);
    drop(w.backups);
    if summaries.is_empty() && w.own.is_empty() {
        return;
    }
    let mut g = match out.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    g.0.extend(summaries);
    if !w.own.is_empty() {
        g.1.push((rel, w.own));
    }
}

/// Walk the share into its index: each directory is read, its backups
/// parsed and summed up, and its entries and object lists dropped at once.
/// Never follows links, never writes; what cannot be read is a finding.
pub fn index(share: &Share, opts: IndexOptions) -> Result<ShareIndex, ScanError> {
    share.root_dir()?.entries()?;
    let out = Mutex::new((Vec::new(), Vec::new()));
    let found = Mutex::new(Findings::new());
    walk_pool(share).scope(|s| walk_index(share, String::new(), 0, opts, s, &out, &found));
    let (mut backups, mut dirs) = out.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut findings = found.into_inner().unwrap_or_else(|p| p.into_inner());
    findings.0.sort_by(|a, b| a.path.cmp(&b.path));
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, f) in dirs {
        findings.extend(f.0);
    }
    backups.sort_by(|a, b| (a.created_at(), a.id()).cmp(&(b.created_at(), b.id())));
    findings.extend(root_hints(share, || {
        backups.iter().map(|b| (b.id(), b.container()))
    }));
    Ok(ShareIndex::new(backups, findings))
}

impl ShareIndex {
    fn new(backups: Vec<Summary>, findings: Findings) -> ShareIndex {
        let n = u32::try_from(backups.len()).unwrap_or(u32::MAX);
        let mut by_id: Vec<u32> = (0..n).collect();
        by_id.sort_by(|&a, &b| (backups[a as usize].id(), a).cmp(&(backups[b as usize].id(), b)));
        let mut by_parent: Vec<u32> = (0..n)
            .filter(|&i| backups[i as usize].parent_id().is_some())
            .collect();
        by_parent.sort_by(|&a, &b| {
            (backups[a as usize].parent_id(), a).cmp(&(backups[b as usize].parent_id(), b))
        });
        ShareIndex {
            backups,
            findings,
            by_id,
            by_parent,
        }
    }

    /// The position of the (first) backup with exactly this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        let i = self
            .by_id
            .partition_point(|&p| self.backups[p as usize].id() < id);
        let p = *self.by_id.get(i)? as usize;
        (self.backups[p].id() == id).then_some(p)
    }

    /// The summary of the backup with exactly this id.
    pub fn summary(&self, id: &str) -> Option<&Summary> {
        self.position(id).map(|p| &self.backups[p])
    }

    /// The backups whose parent is `id`, in the order of backups.
    pub fn dependants<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Summary> + 'a {
        let from = self
            .by_parent
            .partition_point(|&p| self.backups[p as usize].parent_id() < Some(id));
        self.by_parent[from..]
            .iter()
            .map(|&p| &self.backups[p as usize])
            .take_while(move |b| b.parent_id() == Some(id))
    }

    /// The positions of every backup with exactly this id.
    pub fn positions_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = usize> + 'a {
        let from = self
            .by_id
            .partition_point(|&p| self.backups[p as usize].id() < id);
        self.by_id[from..]
            .iter()
            .map(|&p| p as usize)
            .take_while(move |&p| self.backups[p].id() == id)
    }

    /// The positions of backups whose id another backup has too (a
    /// backup directory copied within the share).
    pub fn repeated_ids(&self) -> std::collections::HashSet<u32> {
        self.by_id
            .windows(2)
            .filter(|w| self.backups[w[0] as usize].id() == self.backups[w[1] as usize].id())
            .flat_map(|w| [w[0], w[1]])
            .collect()
    }

    /// The backup with this id, or the only one whose id starts with it.
    pub fn find(&self, id: &str) -> Result<&Summary, ScanError> {
        if let Some(b) = self.summary(id) {
            return Ok(b);
        }
        let from = self
            .by_id
            .partition_point(|&p| self.backups[p as usize].id() < id);
        let matches: Vec<&Summary> = self.by_id[from..]
            .iter()
            .map(|&p| &self.backups[p as usize])
            .take_while(|b| b.id().starts_with(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => {
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
            many => {
                // The order of backups, as a whole walk lists them.
                let mut many = many.to_vec();
                many.sort_by(|a, b| (a.created_at(), a.id()).cmp(&(b.created_at(), b.id())));
                Err(ScanError::Ambiguous {
                    id: id.to_string(),
                    matches: many.iter().map(|b| b.id()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    }

    /// The chain of a backup by summaries, full backup first, the backup
    /// itself last; stops at a missing parent or a cycle.
    pub fn chain<'a>(&'a self, backup: &'a Summary) -> Vec<&'a Summary> {
        let mut chain = vec![backup];
        let mut seen = std::collections::HashSet::from([backup.id()]);
        let mut cur = backup;
        while let Some(pid) = cur.parent_id() {
            match self.summary(pid) {
                Some(p) if seen.insert(p.id()) => {
                    chain.push(p);
                    cur = p;
                }
                _ => break,
            }
        }
        chain.reverse();
        chain
    }

    /// Read one backup again, in full, from its directory (only its own
    /// files). None when its `_metadata` no longer reads as it did.
    pub fn load(&self, share: &Share, s: &Summary) -> Option<BackupEntry> {
        load_backup(share, &s.container(), &s.prefix())
            .ok()
            .flatten()
            .filter(|b| b.id == s.id())
    }

    /// This index as [`Backups`]: loading each backup asked for.
    pub fn on<'a>(&'a self, share: &'a Share) -> OnShare<'a> {
        OnShare { share, index: self }
    }
}

/// A [`ShareIndex`] with its share: [`Backups`] loading on demand.
pub struct OnShare<'a> {
    pub share: &'a Share,
    pub index: &'a ShareIndex,
}

impl Backups for OnShare<'_> {
    fn get(&self, id: &str) -> Option<Arc<BackupEntry>> {
        let s = self.index.summary(id)?;
        self.index.load(self.share, s).map(Arc::new)
    }
    fn link(&self, id: &str) -> Option<Link> {
        self.index.summary(id).map(Summary::link)
    }
}

/// Read ONE backup, in full, from its container: its `<prefix>_metadata`,
/// sha256file and chunk files, with the findings the walk makes about
/// them. `Ok(None)`: its metadata could not be read or parsed (the
/// finding says why).
pub fn load_backup(
    share: &Share,
    container: &str,
    prefix: &str,
) -> Result<Option<BackupEntry>, AccessError> {
    let dir = share.open_dir(container)?;
    let entries = dir.entries()?;
    let name = format!("{prefix}_metadata");
    let Some(e) = entries
        .iter()
        .find(|e| e.name == name && e.kind == EntryKind::File && !e.lossy)
    else {
        return Ok(None);
    };
    let parsed = read_metadata(&dir, &name);
    let mut claimed = vec![false; entries.len()];
    let mut findings = Findings::new();
    Ok(backup_of(
        container,
        &entries,
        &name,
        e.size,
        parsed,
        &mut claimed,
        &mut findings,
    ))
}

/// The whole share, walked into its index, each backup loaded in full
/// (for tests that compare a part with the whole).
#[cfg(test)]
pub(crate) fn whole(share: &Share) -> (ShareIndex, Vec<BackupEntry>) {
    let ix = index(share, IndexOptions::default()).expect("the share walks");
    let all = ix
        .backups
        .iter()
        .map(|b| ix.load(share, b).expect("each backup loads"))
        .collect();
    (ix, all)
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
        let (ix, loaded) = whole(&share);
        let (backups, findings) = backups_in_dir(&share, "c/one").unwrap();
        let ids: Vec<&str> = backups.iter().map(|b| b.id.as_str()).collect();
        let walked: Vec<&str> = loaded
            .iter()
            .filter(|b| b.container == "c/one")
            .map(|b| b.id.as_str())
            .collect();
        assert_eq!(ids, walked);
        assert_eq!(ids.len(), 2);
        for b in &backups {
            let w = loaded.iter().find(|w| w.id == b.id).unwrap();
            assert_eq!(b.chunk_files, w.chunk_files);
            assert_eq!(b.sha256_path, w.sha256_path);
        }
        let of_dir = |f: &&Finding| {
            f.path
                .as_deref()
                .is_some_and(|p| p.starts_with("c/one/") && !p["c/one/".len()..].contains('/'))
        };
        let walked: Vec<&Finding> = ix.findings.iter().filter(of_dir).collect();
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
        let ix = index(&share, IndexOptions::default()).unwrap();
        let on = ix.on(&share);
        let all: &dyn Backups = &on;
        let top = all.get(&uuid_from(2, 7)).unwrap();
        let chain: Vec<String> = all.chain(top).iter().map(|b| b.id.clone()).collect();
        assert_eq!(chain, [uuid_from(1, 7), uuid_from(2, 7)]);
        let l = all.link(&uuid_from(2, 7)).unwrap();
        assert_eq!(l.parent_id.as_deref(), Some(uuid_from(1, 7).as_str()));
        assert!(all.link("nope").is_none());
    }
}
