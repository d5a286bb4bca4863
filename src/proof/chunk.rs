//! One chunk proven against its backup's sha256file: streamed once, every
//! hash block matched (zeros by comparison), the md5 where no sha256 entry
//! covers the bytes; what proved how many bytes, and the findings.

use super::blocks::{BadBlocks, HASH_BATCH, Pending, blocks_match, is_zero, zero_block_sha};
use super::stream::{ChunkEnd, StreamError, Streamed, stream_chunk, stream_findings};
use crate::findings::{Finding, Findings};
use crate::progress::Progress;
use crate::share::metadata::ChunkObject;
use crate::share::sha256file::Window;
use crate::share::{BackupEntry, FileId, Sha256File, Share};

/// Which hash proved how many (uncompressed) bytes: each byte is proven
/// once, by the strongest hash that covers it.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Proven {
    /// Bytes of non-zero blocks whose sha256 matched the sha256file.
    pub sha256: u64,
    /// Bytes of all-zero blocks whose sha256file entry is the zero block's
    /// hash (proven by comparison, without hashing).
    pub zero_compare: u64,
    /// Bytes proven by the chunk's md5 alone (no sha256 entry covers them).
    pub md5_only: u64,
    /// Bytes whose md5 was also computed (`--md5`).
    pub md5_also: u64,
}

impl Proven {
    pub fn add(&mut self, o: &Proven) {
        self.sha256 = self.sha256.saturating_add(o.sha256);
        self.zero_compare = self.zero_compare.saturating_add(o.zero_compare);
        self.md5_only = self.md5_only.saturating_add(o.md5_only);
        self.md5_also = self.md5_also.saturating_add(o.md5_also);
    }
}

/// What proving one chunk reports (its findings go to the caller's list).
#[derive(Debug, Clone, Copy)]
pub struct ChunkProof {
    /// Bytes read from the share (stored, compressed bytes).
    pub stored_bytes: u64,
    /// The chunk's declared (uncompressed) length.
    pub data_bytes: u64,
    pub proven: Proven,
    /// The identity of the handle whose bytes were hashed (None when it
    /// could not be opened).
    pub file: Option<FileId>,
}

/// Deep-check one chunk of `backup` against its sha256file (`sha`), md5
/// where no sha256 entry proves its bytes (or always, `always_md5`).
pub fn prove_chunk(
    share: &Share,
    backup: &BackupEntry,
    obj: &ChunkObject,
    sha: Option<&Sha256File>,
    always_md5: bool,
    findings: &mut Findings,
    progress: &dyn Progress,
) -> ChunkProof {
    let rel = backup.rel(&obj.name);
    let mut push = |code: &'static str, msg: String| {
        findings.push(
            Finding::error(code, msg)
                .backup(backup.id.clone())
                .path(rel.clone()),
        )
    };
    let mut blocks = BlockProof::new(sha, obj);
    let (block, with_md5) = (blocks.block, always_md5 || !blocks.covered);
    let mut sink = |off: u64, data: &[u8]| -> Result<(), String> {
        blocks.take(off, data);
        progress.advance(data.len() as u64, &backup.id);
        Ok(())
    };
    let streamed = stream_chunk(share, backup, obj, block, with_md5, &mut sink);
    let stored_bytes = stream_findings(&streamed, obj, &mut push);
    let md5 = md5_fallback(&streamed, obj, blocks.covered, &blocks.proven);
    let proven = Proven {
        md5_only: md5.md5_only,
        md5_also: md5.md5_also,
        ..blocks.proven
    };
    blocks.findings(obj, sha.map_or(0, |s| s.len()), &mut push);
    ChunkProof {
        stored_bytes,
        data_bytes: obj.length,
        proven,
        file: streamed.as_ref().ok().map(|s| s.file),
    }
}

/// Step: what the md5 proved, once the stream is done: the bytes no
/// sha256 entry proved, or (asked for though every byte is covered) all
/// of them again.
fn md5_fallback(
    streamed: &Result<Streamed, StreamError>,
    obj: &ChunkObject,
    covered: bool,
    by_blocks: &Proven,
) -> Proven {
    let mut p = Proven::default();
    if let Ok(s) = streamed
        && s.md5_checked
        && s.md5_ok
        && s.end == ChunkEnd::Complete
    {
        if covered {
            p.md5_also = obj.length;
        } else {
            let by_sha = by_blocks.sha256 + by_blocks.zero_compare;
            p.md5_only = obj.length.saturating_sub(by_sha);
        }
    }
    p
}

/// The hash blocks of one chunk as they stream by: each matched against
/// the sha256file, what they proved, and what went wrong.
struct BlockProof<'s> {
    /// None when the chunk is unaligned (its own finding: its blocks
    /// cannot be matched) or the sha256file failed to read.
    window: Option<Window<'s>>,
    block: usize,
    block_u64: u64,
    first_block: u64,
    zero: [u8; 32],
    length: u64,
    /// Every block of the chunk has a sha256 entry.
    covered: bool,
    proven: Proven,
    bad: BadBlocks,
    sha_problem: Option<String>,
    /// The first block past the sha256file's end.
    beyond: Option<u64>,
}

impl<'s> BlockProof<'s> {
    fn new(sha: Option<&'s Sha256File>, obj: &ChunkObject) -> Self {
        let block_u64 = sha.map_or(32768, |s| s.block_size());
        let block = block_u64 as usize;
        let first_block = obj.offset / block_u64;
        let window = sha
            .filter(|_| obj.offset.is_multiple_of(block_u64))
            .map(Window::new);
        let covered = window.is_some()
            && sha.is_some_and(|s| {
                first_block.saturating_add(obj.length.div_ceil(block_u64)) <= s.len()
            });
        BlockProof {
            window,
            block,
            block_u64,
            first_block,
            zero: zero_block_sha(block),
            length: obj.length,
            covered,
            proven: Proven::default(),
            bad: BadBlocks::default(),
            sha_problem: None,
            beyond: None,
        }
    }

    /// Take decompressed `data` at `off` inside the chunk, in groups of at
    /// most [`HASH_BATCH`] blocks (memory bounded whatever the block size).
    fn take(&mut self, off: u64, data: &[u8]) {
        let step = self.block.saturating_mul(HASH_BATCH);
        for (g, group) in data.chunks(step).enumerate() {
            let off = off + (g * self.block * HASH_BATCH) as u64;
            let todo = self.gather(off, group);
            self.settle(&todo);
        }
    }

    /// The blocks of `group` to hash, with the sha256 each must have;
    /// zero blocks listed as zeros are proven here, by comparison.
    fn gather<'d>(&mut self, off: u64, group: &'d [u8]) -> Vec<Pending<'d>> {
        let mut todo: Vec<Pending<'d>> = Vec::with_capacity(HASH_BATCH);
        for (k, piece) in group.chunks(self.block).enumerate() {
            let idx = self.first_block + off / self.block_u64 + k as u64;
            // A short last piece before the declared end is a truncated
            // stream: length-mismatch says it, its hash would only repeat it.
            let piece_end = off + (k * self.block + piece.len()) as u64;
            if piece.len() < self.block && piece_end != self.length {
                continue;
            }
            let Some(w) = self.window.as_mut() else {
                continue;
            };
            match w.get(idx) {
                Ok(Some(want)) => {
                    if piece.len() == self.block && want == self.zero && is_zero(piece) {
                        self.proven.zero_compare += piece.len() as u64;
                    } else {
                        todo.push((idx, piece, want));
                    }
                }
                Ok(None) => {
                    self.beyond.get_or_insert(idx);
                }
                Err(e) => {
                    self.sha_problem = Some(e.to_string());
                    self.window = None;
                }
            }
        }
        todo
    }

    /// Hash the gathered blocks together: proven, or bad.
    fn settle(&mut self, todo: &[Pending<'_>]) {
        for ((idx, piece, _), ok) in todo.iter().zip(blocks_match(todo)) {
            if ok {
                self.proven.sha256 += piece.len() as u64;
            } else {
                self.bad.push(*idx);
            }
        }
    }

    /// The findings of the blocks: a sha256file that could not be read,
    /// blocks past its end, blocks that differ (as ranges).
    fn findings(&self, obj: &ChunkObject, listed: u64, push: &mut dyn FnMut(&'static str, String)) {
        if let Some(p) = &self.sha_problem {
            push(
                "sha256file-invalid",
                format!("cannot check the blocks of chunk {}: {p}", obj.name),
            );
        }
        if let Some(i) = self.beyond {
            push(
                "size-mismatch",
                format!(
                    "chunk {} holds hash block {i} and on, beyond the {listed} blocks the sha256file lists: those bytes are proven by nothing",
                    obj.name,
                ),
            );
        }
        if self.bad.more > 0 {
            push(
                "sha256-mismatch",
                format!(
                    "chunk {}: {} more hash blocks differ from the sha256file (not listed one by one)",
                    obj.name, self.bad.more
                ),
            );
        }
        for (a, b) in self.bad.ranges() {
            push(
                "sha256-mismatch",
                format!(
                    "chunk {}: hash block{} {}{} (volume bytes {}..{}) differ from the sha256file",
                    obj.name,
                    if a == b { "" } else { "s" },
                    a,
                    if a == b {
                        String::new()
                    } else {
                        format!("..={b}")
                    },
                    a.saturating_mul(self.block_u64),
                    b.saturating_add(1).saturating_mul(self.block_u64)
                ),
            );
        }
    }
}
