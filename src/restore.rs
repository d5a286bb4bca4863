//! Restore: a full backup and its incrementals, oldest first, to a raw
//! image — what Cinder's restore writes, verified as it goes.
//!
//! The chain is planned first: walking from the newest backup down, each
//! chunk keeps only the block ranges no later backup overwrites (its live
//! ranges). Every chunk with live data is decompressed once (md5 and length
//! checked), its live blocks hashed against the top backup's sha256file and
//! written at their offsets; zero blocks are skipped on a fresh file, which
//! stays sparse. Chunks that later backups overwrite entirely are not read.

use crate::findings::{Finding, Findings};
use crate::progress::Progress;
use crate::proof::{
    BadBlocks, HASH_BATCH, Pending, blocks_match, is_zero, stream_chunk, stream_findings,
    zero_block_sha,
};
use crate::share::metadata::ChunkObject;
use crate::share::scan::Backups;
use crate::share::sha256file::Window;
use crate::share::{BackupEntry, Sha256File, Share};
use std::fs::File;
use std::os::unix::fs::FileExt;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RestoreError {
    #[error("backup {0} has no sha256file: its volume size and block hashes are unknown")]
    NoSha256(String),
    #[error(transparent)]
    Sha256(#[from] crate::share::sha256file::Sha256Error),
    #[error("writing the image: {0}")]
    Write(std::io::Error),
}

/// One piece of a plan: bytes `[start, end)` of the volume come from
/// `chunk` of `backup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
}

/// What restoring one chunk does.
#[derive(Debug, Clone)]
pub struct ChunkPlan<'a> {
    pub backup: &'a BackupEntry,
    pub object: &'a ChunkObject,
    /// Volume ranges this chunk still provides in the final image.
    pub live: Vec<Piece>,
}

/// The plan of a restore.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The chain, full backup first.
    pub chain: Vec<&'a BackupEntry>,
    pub chunks: Vec<ChunkPlan<'a>>,
    /// Volume size in bytes (top backup's sha256 entries × block size).
    pub size: u64,
    pub block: u64,
    /// Volume ranges no chunk covers (they restore as zeros).
    pub uncovered: Vec<Piece>,
    /// What the share-level checks of every backup of the chain found
    /// (the checks of `verify`): a restore with errors here is refused.
    pub findings: Findings,
}

/// Subtract `cover` (sorted, disjoint) from `[start, end)`.
fn subtract(start: u64, end: u64, cover: &std::collections::BTreeMap<u64, u64>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut pos = start;
    // Intervals that may overlap: those starting before `end`.
    for (&s, &e) in cover.range(..end) {
        if e <= pos {
            continue;
        }
        if s > pos {
            out.push(Piece {
                start: pos,
                end: s.min(end),
            });
        }
        pos = pos.max(e);
        if pos >= end {
            break;
        }
    }
    if pos < end {
        out.push(Piece { start: pos, end });
    }
    out
}

/// Add `[start, end)` to a set of disjoint intervals, merging.
fn add(cover: &mut std::collections::BTreeMap<u64, u64>, mut start: u64, mut end: u64) {
    let overlapping: Vec<(u64, u64)> = cover
        .range(..=end)
        .filter(|(_, e)| **e >= start)
        .map(|(s, e)| (*s, *e))
        .collect();
    for (s, e) in overlapping {
        cover.remove(&s);
        start = start.min(s);
        end = end.max(e);
    }
    cover.insert(start, end);
}

/// Plan the restore of the top of `chain` (full backup first, as
/// [`Backups::chain`] gives it, loaded by the caller): live ranges per chunk, and the
/// findings of every backup of the chain (the caller refuses to restore
/// when they hold an error: the chunks, sha256files and metadata disagree).
pub fn plan<'a>(
    share: &Share,
    scan: &dyn Backups,
    chain: Vec<&'a BackupEntry>,
) -> Result<Plan<'a>, RestoreError> {
    let Some(&top) = chain.last() else {
        return Ok(Plan {
            chain,
            chunks: Vec::new(),
            size: 0,
            block: 0,
            uncovered: Vec::new(),
            findings: Findings::new(),
        });
    };
    // The share-level checks first: a missing parent, a bad sha256file or
    // sizes that disagree are findings, and nothing is planned.
    let mut findings = Findings::new();
    for b in &chain {
        findings.extend(crate::structure::backup_findings(share, scan, b));
    }
    let refused = |chain, findings| Plan {
        chain,
        chunks: Vec::new(),
        size: 0,
        block: 0,
        uncovered: Vec::new(),
        findings,
    };
    if findings.has_errors() {
        return Ok(refused(chain, findings));
    }
    let sha = match top.open_sha256(share) {
        Ok(s) => s,
        Err(e) => {
            findings.push(Finding::error(e.code(), e.to_string()).backup(top.id.clone()));
            return Ok(refused(chain, findings));
        }
    };
    let size = sha.covered_bytes();
    let block = sha.block_size();
    let (chunks, uncovered) = live_ranges(&chain, size);
    Ok(Plan {
        chain,
        chunks,
        size,
        block,
        uncovered,
        findings,
    })
}

/// Step: walking from the newest backup down, each chunk keeps the
/// ranges no later backup overwrites; and what no chunk covers.
fn live_ranges<'a>(chain: &[&'a BackupEntry], size: u64) -> (Vec<ChunkPlan<'a>>, Vec<Piece>) {
    let mut cover = std::collections::BTreeMap::new();
    let mut chunks = Vec::new();
    for b in chain.iter().rev() {
        // Within one backup, chunks do not overlap; later backups win.
        let mut mine = Vec::new();
        for o in b.metadata.objects.iter() {
            let end = o.end().min(size);
            if o.offset >= end {
                continue;
            }
            let live = subtract(o.offset, end, &cover);
            mine.push(ChunkPlan {
                backup: b,
                object: o,
                live,
            });
        }
        for c in &mine {
            add(&mut cover, c.object.offset, c.object.end().min(size));
        }
        chunks.extend(mine);
    }
    chunks.reverse();
    (chunks, subtract(0, size, &cover))
}

/// How to write.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The target is a fresh (all-zero, sparse) file: zero blocks are skipped.
    pub fresh: bool,
    pub jobs: usize,
    /// Also compute every chunk's md5 (every written block is proven by
    /// the sha256file either way).
    pub md5: bool,
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct RestoreReport {
    pub findings: Findings,
    pub chunks_read: u64,
    pub bytes_written: u64,
    pub data_bytes: u64,
}

/// Write the image of `plan` into `out` (already sized to `plan.size` when
/// fresh). Every live block's sha256 is checked against the top backup's
/// sha256file; md5 and length of every chunk read.
pub fn restore(
    share: &Share,
    plan: &Plan<'_>,
    out: &File,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport, RestoreError> {
    let top = plan
        .chain
        .last()
        .copied()
        .ok_or_else(|| RestoreError::NoSha256(String::new()))?;
    let sha = top.open_sha256(share)?;
    let work: Vec<&ChunkPlan> = plan.chunks.iter().filter(|c| !c.live.is_empty()).collect();
    let data_bytes = work
        .iter()
        .fold(0u64, |a, c| a.saturating_add(c.object.length));
    let writer = Writer {
        share,
        sha: &sha,
        top,
        block: plan.block as usize,
        out,
        opts,
        progress,
    };
    progress.start(data_bytes);
    let results = writer.all_chunks(&work);
    progress.finish();
    let mut report = RestoreReport::default();
    for done in results {
        if let Some(e) = done.write_err {
            return Err(RestoreError::Write(e));
        }
        report.findings.extend(done.findings);
        report.bytes_written += done.written;
        report.chunks_read += 1;
    }
    report.data_bytes = data_bytes;
    let gaps = uncovered_zeros(plan, &sha, out, opts.fresh, &top.id)?;
    report.findings.extend(gaps);
    Ok(report)
}

/// What restoring one chunk did.
struct ChunkDone {
    findings: Findings,
    written: u64,
    write_err: Option<std::io::Error>,
}

/// A restore under way: where its chunks come from, the top backup's
/// sha256file that proves every block, where they go.
struct Writer<'a> {
    share: &'a Share,
    sha: &'a Sha256File,
    top: &'a BackupEntry,
    block: usize,
    out: &'a File,
    opts: &'a RestoreOptions,
    progress: &'a dyn Progress,
}

impl Writer<'_> {
    /// Every chunk with live data, read in parallel.
    fn all_chunks(&self, work: &[&ChunkPlan]) -> Vec<ChunkDone> {
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.opts.jobs.max(1))
            .build();
        let run = || -> Vec<ChunkDone> {
            work.par_iter()
                .with_max_len(1)
                .map(|c| self.chunk(c))
                .collect()
        };
        match pool {
            Ok(p) => p.install(run),
            Err(_) => run(),
        }
    }

    /// One chunk streamed: its live blocks proven and written; what the
    /// stream and the blocks found.
    fn chunk(&self, c: &ChunkPlan) -> ChunkDone {
        let (b, o) = (c.backup, c.object);
        let mut blocks = LiveBlocks {
            live: &c.live,
            out: self.out,
            block: self.block,
            zero: zero_block_sha(self.block),
            fresh: self.opts.fresh,
            window: Window::new(self.sha),
            bad: BadBlocks::default(),
            sha_problem: None,
            written: 0,
            write_err: None,
        };
        let mut sink = |off: u64, data: &[u8]| -> Result<(), String> {
            blocks.take(o.offset + off, data)?;
            self.progress.advance(data.len() as u64, &b.id);
            Ok(())
        };
        let streamed = stream_chunk(self.share, b, o, self.block, self.opts.md5, &mut sink);
        let mut findings = Findings::new();
        let rel = b.rel(&o.name);
        let mut push = |code: &'static str, msg: String| {
            findings.push(
                Finding::error(code, msg)
                    .backup(b.id.clone())
                    .path(rel.clone()),
            )
        };
        stream_findings(&streamed, o, &mut push);
        blocks.findings(&o.name, &self.top.id, &mut push);
        ChunkDone {
            findings,
            written: blocks.written,
            write_err: blocks.write_err,
        }
    }
}

/// Consecutive blocks to write in one pwrite: (volume offset, data from,
/// data to). Fewer syscalls, less contention on the image's inode lock.
type Run = Option<(u64, usize, usize)>;

/// One chunk's live blocks as they stream by: proven against the top
/// backup's sha256file, then written at their offsets.
struct LiveBlocks<'a> {
    /// Volume ranges this chunk still provides.
    live: &'a [Piece],
    out: &'a File,
    block: usize,
    zero: [u8; 32],
    /// Zero blocks are skipped (the image is a fresh, sparse file).
    fresh: bool,
    window: Window<'a>,
    bad: BadBlocks,
    sha_problem: Option<String>,
    written: u64,
    write_err: Option<std::io::Error>,
}

impl LiveBlocks<'_> {
    /// Take `data`, which starts at volume offset `vol`, in groups of at
    /// most HASH_BATCH blocks (memory bounded whatever the block size):
    /// first prove the live blocks, hashing several at a time, then write
    /// them.
    fn take(&mut self, vol: u64, data: &[u8]) -> Result<(), String> {
        let mut run: Run = None;
        for (g, group) in data
            .chunks(self.block.saturating_mul(HASH_BATCH))
            .enumerate()
        {
            let (live, failed) = self.prove_group(vol, g, group);
            self.write_live(&mut run, vol, data, &live)?;
            if let Some(m) = failed {
                self.flush(&mut run, data)?;
                return Err(m);
            }
        }
        self.flush(&mut run, data)
    }

    /// Step: the live blocks of group `g` (block in data, all zero), each
    /// proven or counted bad; a message when the sha256file failed.
    fn prove_group(
        &mut self,
        vol: u64,
        g: usize,
        group: &[u8],
    ) -> (Vec<(usize, bool)>, Option<String>) {
        let block = self.block;
        let mut live: Vec<(usize, bool)> = Vec::with_capacity(HASH_BATCH);
        let mut todo: Vec<Pending<'_>> = Vec::with_capacity(HASH_BATCH);
        let mut wrong: Vec<u64> = Vec::new();
        let mut failed: Option<String> = None;
        for (j, piece) in group.chunks(block).enumerate() {
            let k = g * HASH_BATCH + j;
            let p_start = vol + (k * block) as u64;
            let p_end = p_start + piece.len() as u64;
            if !self.live.iter().any(|l| l.start < p_end && p_start < l.end) {
                continue;
            }
            let idx = p_start / block as u64;
            let all_zero = is_zero(piece);
            match self.window.get(idx) {
                Ok(Some(want)) if all_zero && piece.len() == block => {
                    if want != self.zero {
                        wrong.push(idx);
                    }
                }
                Ok(Some(want)) => todo.push((idx, piece, want)),
                // The plan stops at the sha256file's end; a block
                // past it is proven by nothing: refuse it.
                Ok(None) => wrong.push(idx),
                Err(e) => {
                    self.sha_problem = Some(e.to_string());
                    failed = Some(format!("cannot read the sha256file: {e}"));
                    break;
                }
            }
            live.push((k, all_zero));
        }
        wrong.extend(
            todo.iter()
                .zip(blocks_match(&todo))
                .filter(|(_, ok)| !ok)
                .map(|(t, _)| t.0),
        );
        wrong.sort_unstable();
        for idx in wrong {
            self.bad.push(idx);
        }
        (live, failed)
    }

    /// Step: the live blocks into runs of consecutive writes (zero blocks
    /// left out of a fresh image).
    fn write_live(
        &mut self,
        run: &mut Run,
        vol: u64,
        data: &[u8],
        live: &[(usize, bool)],
    ) -> Result<(), String> {
        for &(k, all_zero) in live {
            if self.fresh && all_zero {
                self.flush(run, data)?;
                continue;
            }
            let from = k * self.block;
            let to = (from + self.block).min(data.len());
            match run {
                Some((_, _, end)) if *end == from => *end = to,
                _ => {
                    self.flush(run, data)?;
                    *run = Some((vol + from as u64, from, to));
                }
            }
        }
        Ok(())
    }

    /// Write the run so far.
    fn flush(&mut self, run: &mut Run, data: &[u8]) -> Result<(), String> {
        if let Some((at, from, to)) = run.take() {
            if let Err(e) = self.out.write_all_at(&data[from..to], at) {
                let msg = format!("cannot write the image at {at}: {e}");
                self.write_err = Some(e);
                return Err(msg);
            }
            self.written += (to - from) as u64;
        }
        Ok(())
    }

    /// The findings of the blocks: a sha256file that could not be read,
    /// blocks that differ from the top backup's (`top`) list.
    fn findings(&self, chunk: &str, top: &str, push: &mut dyn FnMut(&'static str, String)) {
        if let Some(p) = &self.sha_problem {
            push("sha256file-invalid", p.clone());
        }
        if self.bad.more > 0 {
            push(
                "sha256-mismatch",
                format!(
                    "{} more restored hash blocks from chunk {chunk} differ from the sha256file",
                    self.bad.more
                ),
            );
        }
        let block = self.block as u64;
        for (a, z) in self.bad.ranges() {
            push(
                "sha256-mismatch",
                format!(
                    "restored hash block{} {a}{} (volume bytes {}..{}) from chunk {chunk} differ from backup {top}'s sha256file",
                    if a == z { "" } else { "s" },
                    if a == z {
                        String::new()
                    } else {
                        format!("..={z}")
                    },
                    a * block,
                    (z + 1) * block,
                ),
            );
        }
    }
}

/// Step: blocks no chunk provides are zeros: they must hash as zeros too
/// (and are written as zeros unless the image is fresh).
fn uncovered_zeros(
    plan: &Plan<'_>,
    sha: &Sha256File,
    out: &File,
    fresh: bool,
    top: &str,
) -> Result<Findings, RestoreError> {
    let zero = zero_block_sha(plan.block as usize);
    let mut bad = BadBlocks::default();
    let mut window = Window::new(sha);
    for u in &plan.uncovered {
        let first = u.start / plan.block;
        let last = u.end.div_ceil(plan.block);
        for i in first..last {
            match window.get(i)? {
                Some(want) if want == zero => {}
                _ => bad.push(i),
            }
        }
        if !fresh {
            write_zeros(out, u)?;
        }
    }
    let mut findings = Findings::new();
    for (a, z) in bad.ranges() {
        findings.push(
            Finding::error(
                "coverage-gap",
                format!(
                    "no chunk of the chain covers hash blocks {a}..={z} (volume bytes {}..{}), and the sha256file says they are not zeros",
                    a * plan.block,
                    (z + 1) * plan.block
                ),
            )
            .backup(top.to_string()),
        );
    }
    Ok(findings)
}

/// Zeros written over `u` (an image that was not fresh).
fn write_zeros(out: &File, u: &Piece) -> Result<(), RestoreError> {
    let zeros = vec![0u8; 1 << 20];
    let mut pos = u.start;
    while pos < u.end {
        let n = ((u.end - pos) as usize).min(zeros.len());
        out.write_all_at(&zeros[..n], pos)
            .map_err(RestoreError::Write)?;
        pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn subtract_and_add_intervals() {
        let mut c = BTreeMap::new();
        add(&mut c, 10, 20);
        add(&mut c, 30, 40);
        assert_eq!(
            subtract(0, 50, &c),
            vec![
                Piece { start: 0, end: 10 },
                Piece { start: 20, end: 30 },
                Piece { start: 40, end: 50 }
            ]
        );
        assert_eq!(subtract(12, 18, &c), vec![]);
        add(&mut c, 15, 35);
        assert_eq!(c.len(), 1);
        assert_eq!(
            subtract(0, 50, &c),
            vec![Piece { start: 0, end: 10 }, Piece { start: 40, end: 50 }]
        );
    }
}
