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
use crate::share::metadata::ChunkObject;
use crate::share::sha256file::Window;
use crate::share::{BackupEntry, Share, ShareScan};
use crate::verify::{
    BadBlocks, HASH_BATCH, Pending, blocks_match, is_zero, stream_chunk, stream_findings,
    zero_block_sha,
};
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

/// Plan the restore of `top`: chain, live ranges per chunk, and the
/// findings of every backup of the chain (the caller refuses to restore
/// when they hold an error: the chunks, sha256files and metadata disagree).
pub fn plan<'a>(
    share: &Share,
    scan: &'a ShareScan,
    top: &'a BackupEntry,
) -> Result<Plan<'a>, RestoreError> {
    let chain = scan.chain(top);
    // The share-level checks first: a missing parent, a bad sha256file or
    // sizes that disagree are findings, and nothing is planned.
    let mut findings = Findings::new();
    for b in &chain {
        findings.extend(crate::check::backup_findings(share, scan, b));
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
    let mut cover = std::collections::BTreeMap::new();
    let mut chunks = Vec::new();
    for b in chain.iter().rev() {
        // Within one backup, chunks do not overlap; later backups win.
        let mut mine = Vec::new();
        for o in &b.metadata.objects {
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
    let uncovered = subtract(0, size, &cover);
    Ok(Plan {
        chain,
        chunks,
        size,
        block,
        uncovered,
        findings,
    })
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
    use rayon::prelude::*;
    let top = plan
        .chain
        .last()
        .copied()
        .ok_or_else(|| RestoreError::NoSha256(String::new()))?;
    let sha = top.open_sha256(share)?;
    let block = plan.block as usize;
    let zero = zero_block_sha(block);
    let work: Vec<&ChunkPlan> = plan.chunks.iter().filter(|c| !c.live.is_empty()).collect();
    progress.start(
        work.iter()
            .fold(0u64, |a, c| a.saturating_add(c.object.length)),
    );
    let do_chunk = |c: &ChunkPlan| -> (Findings, u64, Option<std::io::Error>) {
        let mut findings = Findings::new();
        let b = c.backup;
        let o = c.object;
        let rel = b.rel(&o.name);
        let err = |code: &'static str, msg: String| {
            Finding::error(code, msg)
                .backup(b.id.clone())
                .path(rel.clone())
        };
        let mut written = 0u64;
        let mut write_err: Option<std::io::Error> = None;
        let mut bad = BadBlocks::default();
        let mut window = Window::new(&sha);
        let mut sha_problem: Option<String> = None;
        let streamed = {
            let mut sink = |off: u64, data: &[u8]| -> Result<(), String> {
                let vol = o.offset + off;
                // Consecutive blocks to write go out in one pwrite: fewer
                // syscalls, less contention on the image's inode lock.
                let mut run: Option<(u64, usize, usize)> = None; // (volume offset, data from, data to)
                let mut flush = |run: &mut Option<(u64, usize, usize)>| -> Result<(), String> {
                    if let Some((at, from, to)) = run.take() {
                        if let Err(e) = out.write_all_at(&data[from..to], at) {
                            let msg = format!("cannot write the image at {at}: {e}");
                            write_err = Some(e);
                            return Err(msg);
                        }
                        written += (to - from) as u64;
                    }
                    Ok(())
                };
                // In groups of at most HASH_BATCH blocks (memory bounded
                // whatever the block size): first prove the live blocks,
                // hashing several at a time, then write them.
                let mut failed: Option<String> = None;
                for (g, group) in data.chunks(block.saturating_mul(HASH_BATCH)).enumerate() {
                    let mut live: Vec<(usize, bool)> = Vec::with_capacity(HASH_BATCH); // (block in data, all zero)
                    let mut todo: Vec<Pending<'_>> = Vec::with_capacity(HASH_BATCH);
                    let mut wrong: Vec<u64> = Vec::new();
                    for (j, piece) in group.chunks(block).enumerate() {
                        let k = g * HASH_BATCH + j;
                        let p_start = vol + (k * block) as u64;
                        let p_end = p_start + piece.len() as u64;
                        if !c.live.iter().any(|l| l.start < p_end && p_start < l.end) {
                            continue;
                        }
                        let idx = p_start / block as u64;
                        let all_zero = is_zero(piece);
                        match window.get(idx) {
                            Ok(Some(want)) if all_zero && piece.len() == block => {
                                if want != zero {
                                    wrong.push(idx);
                                }
                            }
                            Ok(Some(want)) => todo.push((idx, piece, want)),
                            // The plan stops at the sha256file's end; a block
                            // past it is proven by nothing: refuse it.
                            Ok(None) => wrong.push(idx),
                            Err(e) => {
                                sha_problem = Some(e.to_string());
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
                        bad.push(idx);
                    }
                    for (k, all_zero) in live {
                        if opts.fresh && all_zero {
                            flush(&mut run)?;
                            continue;
                        }
                        let from = k * block;
                        let to = (from + block).min(data.len());
                        match &mut run {
                            Some((_, _, end)) if *end == from => *end = to,
                            _ => {
                                flush(&mut run)?;
                                run = Some((vol + from as u64, from, to));
                            }
                        }
                    }
                    if let Some(m) = failed {
                        flush(&mut run)?;
                        return Err(m);
                    }
                }
                flush(&mut run)?;
                progress.advance(data.len() as u64, &b.id);
                Ok(())
            };
            stream_chunk(share, b, o, block, opts.md5, &mut sink)
        };
        stream_findings(&streamed, o, &mut |code, msg| findings.push(err(code, msg)));
        if let Some(p) = sha_problem {
            findings.push(err("sha256file-invalid", p));
        }
        if bad.more > 0 {
            findings.push(err(
                "sha256-mismatch",
                format!(
                    "{} more restored hash blocks from chunk {} differ from the sha256file",
                    bad.more, o.name
                ),
            ));
        }
        for (a, z) in bad.ranges() {
            findings.push(err(
                "sha256-mismatch",
                format!(
                    "restored hash block{} {a}{} (volume bytes {}..{}) from chunk {} differ from backup {}'s sha256file",
                    if a == z { "" } else { "s" },
                    if a == z { String::new() } else { format!("..={z}") },
                    a * block as u64,
                    (z + 1) * block as u64,
                    o.name,
                    top.id
                ),
            ));
        }
        (findings, written, write_err)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build();
    let run = || -> Vec<(Findings, u64, Option<std::io::Error>)> {
        work.par_iter()
            .with_max_len(1)
            .map(|c| do_chunk(c))
            .collect()
    };
    let results = match pool {
        Ok(p) => p.install(run),
        Err(_) => run(),
    };
    progress.finish();
    let mut report = RestoreReport::default();
    for (f, w, e) in results {
        if let Some(e) = e {
            return Err(RestoreError::Write(e));
        }
        report.findings.extend(f);
        report.bytes_written += w;
        report.chunks_read += 1;
    }
    report.data_bytes = work
        .iter()
        .fold(0u64, |a, c| a.saturating_add(c.object.length));
    // Blocks no chunk provides are zeros: they must hash as zeros too.
    let mut bad = BadBlocks::default();
    let mut window = Window::new(&sha);
    for u in &plan.uncovered {
        let first = u.start / plan.block;
        let last = u.end.div_ceil(plan.block);
        for i in first..last {
            match window.get(i)? {
                Some(want) if want == zero => {}
                _ => bad.push(i),
            }
        }
        if !opts.fresh {
            let zeros = vec![0u8; 1 << 20];
            let mut pos = u.start;
            while pos < u.end {
                let n = ((u.end - pos) as usize).min(zeros.len());
                out.write_all_at(&zeros[..n], pos)
                    .map_err(RestoreError::Write)?;
                pos += n as u64;
            }
        }
    }
    for (a, z) in bad.ranges() {
        report.findings.push(
            Finding::error(
                "coverage-gap",
                format!(
                    "no chunk of the chain covers hash blocks {a}..={z} (volume bytes {}..{}), and the sha256file says they are not zeros",
                    a * plan.block,
                    (z + 1) * plan.block
                ),
            )
            .backup(top.id.clone()),
        );
    }
    Ok(report)
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
