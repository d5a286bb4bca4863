//! What one backup's files say about themselves: metadata against chunk
//! files, the sha256file, coverage, alignment, sizes, the chain of parents
//! and the blocks an incremental inherits — no record needed, no chunk read.
//!
//! [`backup_findings`] is a sequence of named steps, each pushing findings;
//! `check`, `verify` and `restore` all start from it. Everything read from
//! the share goes through [`crate::share::access`].

use crate::findings::{Finding, Findings};
use crate::proof::BadBlocks;
use crate::share::metadata::MAX_VOLUME_BYTES;
use crate::share::scan::{Backups, Link};
use crate::share::sha256file::Window;
use crate::share::{BackupEntry, BackupMetadata, Sha256File, Share};
use std::collections::HashSet;

const GIB: u64 = 1 << 30;

/// Findings of one code listed for one backup; past this many, they are
/// counted and summed up in one more finding, so that a hostile
/// `_metadata` listing a million chunks does not make a million findings
/// (and their memory).
pub const PER_CODE: u64 = 100;

/// Findings about one backup, each with its id.
struct Out<'a> {
    findings: Findings,
    backup: &'a BackupEntry,
    /// Per code: how many were found, and whether they are errors.
    counts: Vec<(&'static str, u64, bool)>,
}

impl<'a> Out<'a> {
    fn new(backup: &'a BackupEntry) -> Self {
        Out {
            findings: Findings::new(),
            backup,
            counts: Vec::new(),
        }
    }
    /// Count one more `code`: whether it is still listed.
    fn keep(&mut self, code: &'static str, error: bool) -> bool {
        let n = match self.counts.iter_mut().find(|c| c.0 == code) {
            Some(c) => {
                c.1 += 1;
                c.1
            }
            None => {
                self.counts.push((code, 1, error));
                1
            }
        };
        n <= PER_CODE
    }
    fn error(&mut self, code: &'static str, msg: String, path: String) {
        if !self.keep(code, true) {
            return;
        }
        let f = Finding::error(code, msg).backup(self.backup.id.clone());
        self.findings
            .push(if path.is_empty() { f } else { f.path(path) });
    }
    fn warning(&mut self, code: &'static str, msg: String, path: String) {
        if !self.keep(code, false) {
            return;
        }
        let f = Finding::warning(code, msg).backup(self.backup.id.clone());
        self.findings.push(f.path(path));
    }
    /// The findings, with one more per code found more than [`PER_CODE`] times.
    fn finish(mut self) -> Findings {
        for (code, n, error) in std::mem::take(&mut self.counts) {
            if n <= PER_CODE {
                continue;
            }
            let msg = format!(
                "{} more {code} finding(s) for this backup are not listed (the first {PER_CODE} are)",
                n - PER_CODE
            );
            let f = if error {
                Finding::error(code, msg)
            } else {
                Finding::warning(code, msg)
            };
            self.findings.push(f.backup(self.backup.id.clone()));
        }
        self.findings
    }
}

/// The checks of one backup on the share that need no record: metadata vs
/// chunk files, sha256file, coverage, alignment, sizes, parents and the
/// blocks an incremental inherits. Used by `check` (after the record
/// checks), by `verify` (deep or not) and by `restore` (which refuses on
/// an error). Linear in the number of chunks.
pub fn backup_findings(share: &Share, scan: &dyn Backups, backup: &BackupEntry) -> Findings {
    let mut out = Out::new(backup);
    chunk_files_against_metadata(&mut out);
    if let Some(sha) = open_sha256(share, &mut out) {
        sha256_header(&mut out, &sha);
        sizes(&mut out, &sha);
        if backup.parent_id().is_none() {
            coverage(&mut out, sha.covered_bytes());
        }
        parent_chain(share, scan, &mut out, Some(&sha));
    } else {
        parent_chain(share, scan, &mut out, None);
    }
    out.finish()
}

/// Step: every listed chunk is a non-empty regular file, every chunk file
/// is listed, no chunk is listed twice (as Cinder's restore compares them).
fn chunk_files_against_metadata(out: &mut Out) {
    let b = out.backup;
    let mut listed: HashSet<&str> = HashSet::with_capacity(b.metadata.objects.len());
    for o in b.metadata.objects.iter() {
        if !listed.insert(o.name.as_str()) {
            out.error(
                "metadata-invalid",
                format!("chunk {} is listed twice in the metadata", o.name),
                b.rel(&o.name),
            );
            continue;
        }
        match b.chunk_file(&o.name) {
            None => out.error(
                "object-missing",
                format!(
                    "chunk {} listed in the metadata is not in the container: restore will fail",
                    o.name
                ),
                b.rel(&o.name),
            ),
            Some(c) if !c.is_file => out.error(
                "read-failed",
                format!(
                    "chunk {} is {}, not a file: it cannot be read",
                    o.name,
                    c.kind.describe()
                ),
                b.rel(&o.name),
            ),
            Some(c) if c.size == 0 => out.error(
                "chunk-empty",
                format!(
                    "chunk {} is an empty file: its {} bytes of data are lost",
                    o.name, o.length
                ),
                b.rel(&o.name),
            ),
            Some(_) => {}
        }
    }
    for c in &b.chunk_files {
        if !listed.contains(c.name.as_str()) {
            out.error(
                "object-unlisted",
                format!(
                    "{} has the backup's prefix but the metadata does not list it: Cinder's restore \
                     refuses a container whose objects differ from the metadata; move it away",
                    c.name
                ),
                b.rel(&c.name),
            );
        }
    }
}

fn sha_rel(b: &BackupEntry) -> String {
    b.rel(&format!("{}_sha256file", b.prefix))
}

/// Step: open the sha256file (its absence or a bad value is a finding).
fn open_sha256(share: &Share, out: &mut Out) -> Option<Sha256File> {
    let b = out.backup;
    if b.sha256_path.is_none() {
        out.error(
            "sha256file-missing",
            format!(
                "{}_sha256file is missing: incrementals of this backup and verification need it",
                b.prefix
            ),
            sha_rel(b),
        );
        return None;
    }
    match b.open_sha256(share) {
        Ok(s) => Some(s),
        Err(e) => {
            out.error(e.code(), e.to_string(), sha_rel(b));
            None
        }
    }
}

/// Step: the sha256file's header against the metadata: id, alignment.
fn sha256_header(out: &mut Out, s: &Sha256File) {
    let b = out.backup;
    if let Some(other) = s.header().backup_id.as_deref().filter(|x| *x != b.id) {
        out.error(
            "id-mismatch",
            format!("the sha256file names backup {other}, the metadata {}", b.id),
            sha_rel(b),
        );
    }
    let block = s.block_size();
    for o in b.metadata.objects.iter().filter(|o| o.offset % block != 0) {
        out.error(
            "offset-unaligned",
            format!(
                "chunk {} starts at {}, not a multiple of the hash block size {block}",
                o.name, o.offset
            ),
            b.rel(&o.name),
        );
    }
}

/// The volume size recorded in the metadata's `volume_meta`, in GiB.
fn volume_meta_size(m: &BackupMetadata) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(m.volume_meta.as_deref()?).ok()?;
    v.get("volume-base-metadata")?.get("size")?.as_u64()
}

/// Step: the volume size as the chunks, the sha256file and the metadata's
/// `volume_meta` see it must agree.
fn sizes(out: &mut Out, s: &Sha256File) {
    let b = out.backup;
    let covered = s.covered_bytes();
    if !covered.is_multiple_of(GIB) {
        out.warning(
            "size-mismatch",
            format!(
                "the sha256file covers {covered} bytes ({} blocks of {}), not a whole number of GiB as a Cinder volume is",
                s.len(),
                s.block_size()
            ),
            sha_rel(b),
        );
    }
    let end = b
        .metadata
        .objects
        .iter()
        .map(|o| o.end())
        .max()
        .unwrap_or(0);
    if end > covered {
        out.error(
            "size-mismatch",
            format!(
                "the chunks reach byte {end}, beyond the {covered} bytes the sha256file covers \
                 (its list of hashes may be cut short)"
            ),
            sha_rel(b),
        );
    }
    if let Some(gib) = volume_meta_size(&b.metadata) {
        match gib.checked_mul(GIB).filter(|n| *n <= MAX_VOLUME_BYTES) {
            Some(n) if n == covered => {}
            Some(n) => out.error(
                "size-mismatch",
                format!(
                    "the metadata's volume_meta says the volume was {gib} GiB ({n} bytes), the sha256file covers {covered} bytes"
                ),
                sha_rel(b),
            ),
            None => out.error(
                "value-out-of-range",
                format!("the metadata's volume_meta gives a volume size of {gib} GiB, larger than any volume"),
                b.rel(&format!("{}_metadata", b.prefix)),
            ),
        }
    }
}

/// Step (full backups): the chunks must cover `0 .. size` contiguously.
fn coverage(out: &mut Out, size: u64) {
    let b = out.backup;
    let mut objs: Vec<_> = b.metadata.objects.iter().collect();
    objs.sort_by_key(|o| o.offset);
    let mut pos = 0u64;
    for o in objs {
        if o.offset > pos {
            out.error(
                "coverage-gap",
                format!("no chunk covers volume bytes {pos}..{} before chunk {}: a full backup must cover the whole volume", o.offset, o.name),
                b.rel(&o.name),
            );
        } else if o.offset < pos {
            out.error(
                "coverage-gap",
                format!(
                    "chunk {} starts at {} inside the previous chunk (which ends at {pos})",
                    o.name, o.offset
                ),
                b.rel(&o.name),
            );
        }
        pos = pos.max(o.end());
    }
    if pos < size {
        out.error(
            "coverage-gap",
            format!("the chunks end at byte {pos}, the volume at {size}: the end of the volume is not backed up"),
            b.rel(&format!("{}_metadata", b.prefix)),
        );
    }
}

/// Step: the chain down to the full backup is on the share, without a
/// loop; the direct parent hashes the same blocks of the same volume, and
/// agrees on every block this backup inherits from it.
fn parent_chain(share: &Share, scan: &dyn Backups, out: &mut Out, sha: Option<&Sha256File>) {
    let backup = out.backup;
    let mut cur = Link::of(backup);
    let mut seen: HashSet<String> = HashSet::from([backup.id.clone()]);
    while let Some(pid) = cur.parent_id.clone() {
        let Some(parent) = scan.link(&pid) else {
            out.error(
                "parent-missing",
                format!(
                    "backup {} needs its parent {pid}, which is not on the share: the chain cannot be restored",
                    cur.id
                ),
                cur.rel(&format!("{}_metadata", cur.prefix)),
            );
            return;
        };
        if !seen.insert(parent.id.clone()) {
            out.error(
                "parent-missing",
                format!("the chain of {} loops at {pid}", backup.id),
                String::new(),
            );
            return;
        }
        if cur.id == backup.id
            && let Some(s) = sha
            && parent.sha256_path.is_some()
            && let Ok(ps) = parent.open_sha256(share)
        {
            parent_sha256(out, s, &parent.id, &ps);
        }
        cur = parent;
    }
}

/// The direct parent's sha256file against this backup's.
fn parent_sha256(out: &mut Out, s: &Sha256File, pid: &str, ps: &Sha256File) {
    let b = out.backup;
    if ps.block_size() != s.block_size() {
        out.error(
            "parent-mismatch",
            format!(
                "parent {pid} hashes blocks of {}, this backup of {}: Cinder cannot restore the chain",
                ps.block_size(),
                s.block_size()
            ),
            sha_rel(b),
        );
        return;
    }
    if ps.covered_bytes() < s.covered_bytes() {
        out.error(
            "parent-mismatch",
            format!(
                "parent {pid} is of a smaller volume ({} bytes) than this backup ({} bytes)",
                ps.covered_bytes(),
                s.covered_bytes()
            ),
            sha_rel(b),
        );
    } else if ps.covered_bytes() > s.covered_bytes() {
        out.error(
            "size-mismatch",
            format!(
                "this incremental's sha256file covers {} bytes, its parent {pid}'s {}: volumes do not shrink, so its list of hashes is cut short",
                s.covered_bytes(),
                ps.covered_bytes()
            ),
            sha_rel(b),
        );
    }
    inherited_blocks(out, s, pid, ps);
}

/// Every hash block an incremental does not store comes from its parent
/// on restore, so its sha256 entry must be the parent's (Cinder stores
/// exactly the blocks whose hash changed). Restore checks every block
/// against the top backup's list; this finds the same fault without
/// reading a chunk.
fn inherited_blocks(out: &mut Out, s: &Sha256File, pid: &str, ps: &Sha256File) {
    let b = out.backup;
    let block = s.block_size();
    if b.metadata.objects.iter().any(|o| o.offset % block != 0) {
        return; // offset-unaligned says it; blocks cannot be matched
    }
    let mut stored: Vec<(u64, u64)> = b
        .metadata
        .objects
        .iter()
        .map(|o| (o.offset / block, o.end().div_ceil(block)))
        .collect();
    stored.sort_unstable();
    let n = s.len().min(ps.len());
    let (mut mine, mut theirs) = (Window::new(s), Window::new(ps));
    let mut bad = BadBlocks::default();
    let mut next = stored.iter().peekable();
    let mut i = 0u64;
    while i < n {
        while next.peek().is_some_and(|(_, e)| *e <= i) {
            next.next();
        }
        if let Some(&&(a, e)) = next.peek()
            && a <= i
        {
            i = e;
            continue;
        }
        match (mine.get(i), theirs.get(i)) {
            (Ok(x), Ok(y)) if x == y => {}
            (Ok(_), Ok(_)) => bad.push(i),
            (Err(e), _) | (_, Err(e)) => {
                out.error("sha256file-invalid", e.to_string(), sha_rel(b));
                return;
            }
        }
        i += 1;
    }
    let shown = |(a, z): (u64, u64)| {
        if a == z {
            format!("{a}")
        } else {
            format!("{a}..={z}")
        }
    };
    let mut list: Vec<String> = bad.ranges().into_iter().map(shown).collect();
    if list.is_empty() {
        return;
    }
    if bad.more > 0 {
        list.push(format!("and {} more", bad.more));
    }
    out.error(
        "inherited-mismatch",
        format!(
            "hash blocks {} are not stored in this incremental, so restore takes them from parent {pid}, \
             but this backup's sha256file lists other hashes for them than the parent's: Cinder restores \
             the parent's bytes there without a check, which are not what this backup saw (cbr restore refuses)",
            list.join(", ")
        ),
        sha_rel(b),
    );
}
