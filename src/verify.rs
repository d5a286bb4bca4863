//! Chunk integrity: read every chunk, decompress per its own compression,
//! check length, md5 and the sha256 of every hash block.
//!
//! The reading and proving of one chunk is [`crate::proof`]'s (shared with
//! restore); this is the run over backups: their structural findings, the
//! chunks selected, read in parallel, journaled, counted.

use crate::findings::{Finding, Findings};
use crate::progress::Progress;
use crate::share::metadata::ChunkObject;
use crate::share::scan::{ShareIndex, Summary};
use crate::share::{BackupEntry, Sha256File, Share};
use crate::structure::PER_CODE;

pub use crate::proof::{
    BadBlocks, ChunkEnd, ChunkProof, ChunkSink, HASH_BATCH, Pending, Proven, StreamError, Streamed,
    blocks_match, is_zero, prove_chunk, ranges, stream_chunk, stream_findings, zero_block_sha,
};

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Read every chunk (decompress, length, md5, sha256 per block).
    pub deep: bool,
    /// Parallel chunk readers.
    pub jobs: usize,
    /// Verify only a random sample of chunks: (percent, seed).
    pub sample: Option<(f64, u64)>,
    /// Compute every chunk's md5, even where the sha256file proves its bytes.
    pub md5: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            deep: false,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            sample: None,
            md5: false,
        }
    }
}

/// The result of a verification (`verify --json` keys).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub backups_checked: usize,
    pub chunks_checked: u64,
    /// Bytes read from the share (stored, compressed bytes).
    pub bytes_read: u64,
    /// Uncompressed bytes checked.
    pub data_bytes: u64,
    /// Which hash proved how many bytes (`--deep`).
    pub proven_by: Proven,
    /// Chunks not read because a journal says they are already proven.
    pub chunks_skipped: u64,
    /// Chunks left for a later run (a budget ran out).
    pub chunks_deferred: u64,
    /// Every selected chunk was checked or skipped as already proven
    /// (false when a budget left some: `ok` is then false too).
    pub complete: bool,
    pub findings: Findings,
}

/// A stable 64-bit hash (FNV-1a) for sharding and sampling.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    // Final avalanche (splitmix64) so low bits are well mixed.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^ (h >> 31)
}

/// Whether backup `id` falls in shard `k` of `n` (1-based k).
pub fn in_shard(id: &str, k: u64, n: u64) -> bool {
    n == 0 || stable_hash(&[id.as_bytes()]) % n == k.saturating_sub(1)
}

/// Whether a chunk is in a `pct`% sample with `seed`.
pub fn in_sample(backup_id: &str, chunk: &str, pct: f64, seed: u64) -> bool {
    let h = stable_hash(&[&seed.to_le_bytes(), backup_id.as_bytes(), chunk.as_bytes()]);
    (h as f64 / u64::MAX as f64) * 100.0 < pct
}

/// A chunk file's identity: what a journal compares to know it unchanged.
pub use crate::share::FileId;

/// One chunk verified, for whoever records it. `backup.sha256_id` is the
/// identity of the sha256file handle its blocks were compared with, and
/// `file` that of the handle whose bytes were hashed.
#[derive(Debug)]
pub struct ChunkOutcome<'a> {
    pub backup: &'a BackupEntry,
    pub object: &'a ChunkObject,
    pub file: Option<FileId>,
    pub findings: &'a Findings,
    pub proven: Proven,
    pub stored_bytes: u64,
}

/// `true`: this chunk (whose file is as given, by a look that does not
/// open it) is already proven; the backup carries the identities of its
/// `_metadata` and `_sha256file`.
pub type SkipHook<'a> = dyn Fn(&BackupEntry, &ChunkObject, Option<FileId>) -> bool + Sync + 'a;

/// Hooks of a journaled verification: which chunks to skip, when to stop,
/// and who hears of each chunk verified (called from worker threads).
#[derive(Default)]
pub struct VerifyHooks<'a> {
    /// `true`: already proven, do not read it.
    pub skip: Option<&'a SkipHook<'a>>,
    /// `true`: the budget is spent, do not start this chunk (nor any later).
    pub stop: Option<&'a (dyn Fn(&ChunkObject) -> bool + Sync)>,
    pub done: Option<&'a (dyn Fn(&ChunkOutcome<'_>) + Sync)>,
}

/// A chunk file's identity, to decide a skip; never what a proof is
/// recorded against (that is the handle [`prove_chunk`] hashed).
fn file_id(share: &Share, b: &BackupEntry, o: &ChunkObject) -> Option<FileId> {
    b.open(share, &o.name).ok().map(|f| f.id())
}

/// Chunks read in one parallel batch.
const BATCH: usize = 4096;

/// Chunk findings of one backup and code: the first
/// [`PER_CODE`] are kept, the others counted and summed up
/// at the end (a `_metadata` of a million missing chunks makes a hundred
/// findings and a count, not a million).
#[derive(Default)]
struct Capped {
    counts:
        std::collections::HashMap<(Option<String>, &'static str), (u64, crate::findings::Severity)>,
}

impl Capped {
    fn push(&mut self, out: &mut Findings, f: Finding) {
        let n = self
            .counts
            .entry((f.backup_id.clone(), f.code))
            .or_insert((0, f.severity));
        n.0 += 1;
        if n.0 <= PER_CODE {
            out.push(f);
        }
    }
    fn finish(self, out: &mut Findings) {
        let mut over: Vec<_> = self
            .counts
            .into_iter()
            .filter(|(_, (n, _))| *n > PER_CODE)
            .collect();
        over.sort_by(|a, b| a.0.cmp(&b.0));
        for ((backup, code), (n, severity)) in over {
            let mut f = Finding::new(
                severity,
                code,
                format!(
                    "{} more {code} finding(s) in the chunks of this backup are not listed (the first {} are)",
                    n - PER_CODE,
                    PER_CODE
                ),
            );
            f.backup_id = backup;
            out.push(f);
        }
    }
}

/// What became of one work item.
enum Item {
    Checked(Findings, ChunkProof),
    Skipped,
    Deferred,
}

/// Verify `backups` (callers include the chains they want checked).
pub fn verify(
    share: &Share,
    scan: &dyn crate::share::scan::Backups,
    backups: &[&BackupEntry],
    opts: &VerifyOptions,
    progress: &dyn Progress,
) -> VerifyReport {
    verify_with(
        share,
        scan,
        backups,
        opts,
        progress,
        &VerifyHooks::default(),
    )
}

/// [`verify`] with a journal's hooks.
pub fn verify_with(
    share: &Share,
    scan: &dyn crate::share::scan::Backups,
    backups: &[&BackupEntry],
    opts: &VerifyOptions,
    progress: &dyn Progress,
    hooks: &VerifyHooks<'_>,
) -> VerifyReport {
    let mut report = VerifyReport {
        backups_checked: backups.len(),
        ..Default::default()
    };
    for b in backups {
        report
            .findings
            .extend(crate::structure::backup_findings(share, scan, b));
    }
    if opts.deep {
        let (seen, shas) = as_read(share, backups);
        let run = DeepRun {
            share,
            backups: seen.iter().collect(),
            shas,
            opts,
            progress,
            hooks,
        };
        run.all_chunks(&mut report);
    }
    // Deferred chunks are not proven: the report vouches for nothing it
    // did not check.
    report.complete = report.chunks_deferred == 0;
    report.ok = !report.findings.has_errors() && report.complete;
    report
}

/// Backups loaded and worked on at once by [`verify_stream`]: at most
/// this many, and at most [`WINDOW_CHUNKS`] chunks between them (a window
/// always holds at least one backup), so that what is held is bounded
/// whatever the number of backups on the share.
pub const WINDOW_BACKUPS: usize = 512;
pub const WINDOW_CHUNKS: u64 = 1 << 18;

/// Verify the backups `selected` of a share's index one window at a time:
/// each backup is read again in full from its directory when its window
/// comes, its structural findings (and with `deep` its chunks') are handed
/// to `emit` in the order of `selected`, and it is dropped. The report
/// holds the counts; its `findings` stay empty (they went to `emit`),
/// `ok` says whether any error was emitted. A run over fewer backups than
/// a window emits its findings in the order [`verify`] lists them.
pub fn verify_stream(
    share: &Share,
    index: &ShareIndex,
    selected: &[&Summary],
    opts: &VerifyOptions,
    progress: &dyn Progress,
    hooks: &VerifyHooks<'_>,
    emit: &mut dyn FnMut(Findings) -> std::io::Result<()>,
) -> std::io::Result<VerifyReport> {
    use rayon::prelude::*;
    let mut report = VerifyReport {
        backups_checked: selected.len(),
        ..Default::default()
    };
    // Loads are bound by the share (its walk's concurrency), chunks by
    // `--jobs`.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(share.walk_concurrency())
        .build()
        .ok();
    let readers = if opts.deep {
        rayon::ThreadPoolBuilder::new()
            .num_threads(opts.jobs.max(1))
            .build()
            .ok()
    } else {
        None
    };
    let on = index.on(share);
    if opts.deep {
        let total = selected
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.data_bytes));
        let total = match opts.sample {
            Some((pct, _)) => (total as f64 * pct / 100.0) as u64,
            None => total,
        };
        progress.start(total);
    }
    let mut errors = false;
    let mut rest = selected;
    while !rest.is_empty() {
        let mut n = 0;
        let mut chunks = 0u64;
        while n < rest.len() && n < WINDOW_BACKUPS && (n == 0 || chunks < WINDOW_CHUNKS) {
            chunks = chunks.saturating_add(rest[n].chunks);
            n += 1;
        }
        let (window, later) = rest.split_at(n);
        rest = later;
        let work = || -> Vec<(Option<BackupEntry>, Findings)> {
            window
                .par_iter()
                .with_max_len(1)
                .map(|s| match index.load(share, s) {
                    Some(b) => {
                        let f = crate::structure::backup_findings(share, &on, &b);
                        (Some(b), f)
                    }
                    None => (None, changed(s)),
                })
                .collect()
        };
        let done = match &pool {
            Some(p) => p.install(work),
            None => work(),
        };
        let mut found = Findings::new();
        let mut loaded = Vec::with_capacity(done.len());
        for (b, f) in done {
            found.extend(f.0);
            loaded.extend(b);
        }
        if opts.deep {
            let refs: Vec<&BackupEntry> = loaded.iter().collect();
            let (seen, shas) = as_read(share, &refs);
            let run = DeepRun {
                share,
                backups: seen.iter().collect(),
                shas,
                opts,
                progress,
                hooks,
            };
            let mut part = VerifyReport::default();
            run.chunks(&mut part, readers.as_ref());
            report.chunks_checked += part.chunks_checked;
            report.bytes_read = report.bytes_read.saturating_add(part.bytes_read);
            report.data_bytes = report.data_bytes.saturating_add(part.data_bytes);
            report.proven_by.add(&part.proven_by);
            report.chunks_skipped += part.chunks_skipped;
            report.chunks_deferred += part.chunks_deferred;
            found.extend(part.findings.0);
        }
        drop(loaded);
        errors |= found.has_errors();
        if !found.is_empty() {
            emit(found)?;
        }
    }
    if opts.deep {
        progress.finish();
    }
    report.complete = report.chunks_deferred == 0;
    report.ok = !errors && report.complete;
    Ok(report)
}

/// The finding for a backup the walk saw whose `_metadata` no longer
/// reads as it did when its turn came.
fn changed(s: &Summary) -> Findings {
    let mut f = Findings::new();
    f.push(
        Finding::error(
            "read-failed",
            format!(
                "{}_metadata changed on the share during the run (it no longer reads as backup {}): not verified",
                s.prefix(),
                s.id()
            ),
        )
        .backup(s.id().to_string())
        .path(crate::share::source::join(
            &s.container(),
            &format!("{}_metadata", s.prefix()),
        )),
    );
    f
}

/// Step: each backup's sha256file, opened once, and each backup as the
/// journal sees it: with the identity of the sha256file handle used.
fn as_read(share: &Share, backups: &[&BackupEntry]) -> (Vec<BackupEntry>, Vec<Option<Sha256File>>) {
    let shas: Vec<Option<Sha256File>> = backups
        .iter()
        .map(|b| {
            b.sha256_path
                .as_ref()
                .and_then(|_| b.open_sha256(share).ok())
        })
        .collect();
    let seen: Vec<BackupEntry> = backups
        .iter()
        .zip(&shas)
        .map(|(b, s)| BackupEntry {
            sha256_id: s.as_ref().and_then(|s| s.id),
            ..(*b).clone()
        })
        .collect();
    (seen, shas)
}

/// A deep verification under way: the backups as read, their
/// sha256files, and what the caller asked.
struct DeepRun<'a> {
    share: &'a Share,
    backups: Vec<&'a BackupEntry>,
    shas: Vec<Option<Sha256File>>,
    opts: &'a VerifyOptions,
    progress: &'a dyn Progress,
    hooks: &'a VerifyHooks<'a>,
}

impl DeepRun<'_> {
    /// Read every selected chunk, batch by batch, in order, so that what
    /// is held at once (every chunk's findings, before they are counted)
    /// stays bounded whatever the number of chunks a `_metadata` lists.
    fn all_chunks(&self, report: &mut VerifyReport) {
        let total: u64 = self
            .work_items()
            .iter()
            .fold(0u64, |a, (_, o)| a.saturating_add(o.length));
        self.progress.start(total);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.opts.jobs.max(1))
            .build()
            .ok();
        self.chunks(report, pool.as_ref());
        self.progress.finish();
    }

    /// [`DeepRun::all_chunks`] on a given pool, progress left to the caller.
    fn chunks(&self, report: &mut VerifyReport, pool: Option<&rayon::ThreadPool>) {
        use rayon::prelude::*;
        let items = self.work_items();
        let mut capped = Capped::default();
        for batch in items.chunks(BATCH) {
            let run = || -> Vec<Item> {
                batch
                    .par_iter()
                    .with_max_len(1)
                    .map(|(i, o)| self.one(*i, o))
                    .collect()
            };
            let results = match pool {
                Some(p) => p.install(run),
                None => run(),
            };
            tally(report, &mut capped, results);
        }
        capped.finish(&mut report.findings);
    }

    /// Work items in share order: backup by backup, chunk by chunk, so
    /// each worker reads one file front to back (only the sample's, when
    /// sampling).
    fn work_items(&self) -> Vec<(usize, &ChunkObject)> {
        let mut items: Vec<(usize, &ChunkObject)> = Vec::new();
        for (i, b) in self.backups.iter().enumerate() {
            for o in b.metadata.objects.iter() {
                if let Some((pct, seed)) = self.opts.sample
                    && !in_sample(&b.id, &o.name, pct, seed)
                {
                    continue;
                }
                items.push((i, o));
            }
        }
        items
    }

    /// One chunk: deferred (the budget is spent), skipped (the journal
    /// has it proven), or proven now and told to the journal.
    fn one(&self, i: usize, o: &ChunkObject) -> Item {
        let (b, hooks) = (self.backups[i], self.hooks);
        if hooks.stop.is_some_and(|stop| stop(o)) {
            return Item::Deferred;
        }
        // Looked at only to decide a skip: a proof is keyed to the handle read.
        let id = if hooks.skip.is_some() {
            file_id(self.share, b, o)
        } else {
            None
        };
        if hooks.skip.is_some_and(|skip| skip(b, o, id)) {
            self.progress.advance(o.length, &b.id);
            return Item::Skipped;
        }
        let mut f = Findings::new();
        let sha = self.shas[i].as_ref();
        let proof = prove_chunk(self.share, b, o, sha, self.opts.md5, &mut f, self.progress);
        if let Some(done) = hooks.done {
            done(&ChunkOutcome {
                backup: b,
                object: o,
                file: proof.file,
                findings: &f,
                proven: proof.proven,
                stored_bytes: proof.stored_bytes,
            });
        }
        Item::Checked(f, proof)
    }
}

/// Step: one batch's results counted into the report, findings capped.
fn tally(report: &mut VerifyReport, capped: &mut Capped, results: Vec<Item>) {
    for item in results {
        let (f, proof) = match item {
            Item::Checked(f, p) => (f, p),
            Item::Skipped => {
                report.chunks_skipped += 1;
                continue;
            }
            Item::Deferred => {
                report.chunks_deferred += 1;
                continue;
            }
        };
        report.proven_by.add(&proof.proven);
        for x in f {
            capped.push(&mut report.findings, x);
        }
        report.bytes_read = report.bytes_read.saturating_add(proof.stored_bytes);
        report.data_bytes = report.data_bytes.saturating_add(proof.data_bytes);
        report.chunks_checked += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_ids() {
        let ids: Vec<String> = (0..200).map(|i| format!("id-{i}")).collect();
        for id in &ids {
            let n = (1..=5).filter(|k| in_shard(id, *k, 5)).count();
            assert_eq!(n, 1);
        }
    }

    #[test]
    fn sample_is_reproducible_and_roughly_sized() {
        let picked: Vec<bool> = (0..1000)
            .map(|i| in_sample("b", &format!("c{i}"), 10.0, 7))
            .collect();
        let again: Vec<bool> = (0..1000)
            .map(|i| in_sample("b", &format!("c{i}"), 10.0, 7))
            .collect();
        assert_eq!(picked, again);
        let n = picked.iter().filter(|x| **x).count();
        assert!((50..150).contains(&n), "{n}");
    }
}
