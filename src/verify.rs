//! Chunk integrity: read every chunk, decompress per its own compression,
//! check length, md5 and the sha256 of every hash block.
//!
//! [`stream_chunk`] is the one pipeline that reads a chunk (shared with
//! restore): a streaming decoder, bounded to the declared length (a
//! decompression bomb stops there), feeding md5 and the caller's per-block
//! sink, in a fixed buffer whatever the chunk size.

mod bz2;

use crate::findings::{Finding, Findings};
use crate::progress::Progress;
use crate::share::metadata::{ChunkObject, Compression};
use crate::share::sha256file::Window;
use crate::share::{AccessError, BackupEntry, Sha256File, Share, ShareScan};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Size of the buffer a worker decompresses into (a multiple of any
/// sensible hash block size).
const BUF: usize = 1 << 20;

/// How reading one chunk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkEnd {
    /// All `length` bytes came out and the stream ended there.
    Complete,
    /// The stream ended early, after this many bytes.
    Short(u64),
    /// The stream had more than `length` bytes (reading stopped there).
    Long,
}

/// The outcome of streaming one chunk.
#[derive(Debug)]
pub struct Streamed {
    pub end: ChunkEnd,
    /// Whether the md5 was computed at all.
    pub md5_checked: bool,
    /// The md5 of the bytes that came out (up to `length`), when checked.
    pub md5_ok: bool,
    pub md5_hex: String,
    /// Bytes read from the file.
    pub stored_bytes: u64,
    /// The identity (`fstat`) of the very handle whose bytes were read.
    pub file: FileId,
}

/// Why a chunk could not be streamed at all.
#[derive(Debug)]
pub enum StreamError {
    /// The share's gate refused or could not open the file (missing, a
    /// link, not a regular file…).
    Open(AccessError),
    /// Reading the file failed.
    Read(std::io::Error),
    /// The decoder refused the data, after `at` bytes of output.
    Decompress { reason: String, at: u64 },
    /// A compression no release writes.
    Unknown(String),
    /// The sink asked to stop.
    Stopped(String),
}

struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<AtomicU64>,
}

impl<R: std::io::Seek> std::io::Seek for CountingReader<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Receives decompressed data with its offset inside the chunk; an `Err`
/// stops the stream.
pub type ChunkSink<'a> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 'a;

/// Chunks at least this long are decompressed on a thread of their own
/// while the caller's thread hashes (and writes) what came out before: a
/// backup of a few large chunks (Cinder's default object is 1.86 GiB) then
/// uses two cores, not one.
const PIPELINE_MIN: u64 = 16 << 20;

/// Buffers in flight between the decompressing and the hashing thread.
const IN_FLIGHT: usize = 3;

/// The decoding side of a chunk: fills buffers, bounded to the declared
/// length, and tells how the stream ended.
struct Filler {
    decoder: Box<dyn Read + Send>,
    length: u64,
    done: u64,
    plain: bool,
}

/// One buffer's worth: how much came out, and the end if this is the last.
struct Fill {
    filled: usize,
    end: Option<ChunkEnd>,
}

impl Filler {
    fn next(&mut self, buf: &mut [u8]) -> Result<Fill, StreamError> {
        let want = (buf.len() as u64).min(self.length - self.done) as usize;
        let mut filled = 0;
        while filled < want {
            match self.decoder.read(&mut buf[filled..want]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(if self.plain {
                        StreamError::Read(e)
                    } else {
                        StreamError::Decompress {
                            reason: e.to_string(),
                            at: self.done + filled as u64,
                        }
                    });
                }
            }
        }
        self.done += filled as u64;
        let end = if self.done == self.length {
            // Anything more is a stream longer than declared.
            let mut probe = [0u8; 1];
            let more = loop {
                match self.decoder.read(&mut probe) {
                    Ok(n) => break n > 0,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(StreamError::Decompress {
                            reason: e.to_string(),
                            at: self.done,
                        });
                    }
                }
            };
            Some(if more {
                ChunkEnd::Long
            } else {
                ChunkEnd::Complete
            })
        } else if filled < want {
            Some(ChunkEnd::Short(self.done))
        } else {
            None
        };
        Ok(Fill { filled, end })
    }
}

/// Stream one chunk file through its decoder, md5 and `sink`, which gets
/// each piece of decompressed data with its offset inside the chunk. Pieces
/// are whole hash blocks (`block` bytes) except possibly the last one.
pub fn stream_chunk(
    share: &Share,
    backup: &BackupEntry,
    obj: &ChunkObject,
    block: usize,
    with_md5: bool,
    sink: &mut ChunkSink<'_>,
) -> Result<Streamed, StreamError> {
    let opened = backup.open(share, &obj.name).map_err(StreamError::Open)?;
    let file_id = opened.id();
    let file = opened;
    let count = std::sync::Arc::new(AtomicU64::new(0));
    // One buffer between the file and the decoder (zlib's decoder takes
    // its input straight from it); counted as it is filled.
    let raw = std::io::BufReader::with_capacity(
        1 << 18,
        CountingReader {
            inner: file,
            count: count.clone(),
        },
    );
    let decoder: Box<dyn Read + Send> = match &obj.compression {
        Compression::None => Box::new(raw),
        Compression::Zlib => Box::new(flate2::bufread::ZlibDecoder::new(raw)),
        Compression::Bz2 => Box::new(bz2::PyBz2::new(raw)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(raw).map_err(StreamError::Read)?)
        }
        Compression::Other(name) => return Err(StreamError::Unknown(name.to_string())),
    };
    let block = block.clamp(1, crate::share::sha256file::MAX_BLOCK as usize);
    let cap = (BUF / block).max(1) * block;
    let mut filler = Filler {
        decoder,
        length: obj.length,
        done: 0,
        plain: matches!(obj.compression, Compression::None),
    };
    let mut md5 = Md5::new();
    let mut done: u64 = 0;
    let mut consume = |buf: &[u8]| -> Result<(), StreamError> {
        if buf.is_empty() {
            return Ok(());
        }
        if with_md5 {
            md5.update(buf);
        }
        sink(done, buf).map_err(StreamError::Stopped)?;
        done += buf.len() as u64;
        Ok(())
    };
    let end = if obj.length >= PIPELINE_MIN {
        pipelined(&mut filler, cap, &mut consume)?
    } else {
        let mut buf = vec![0u8; cap.min(obj.length.max(1) as usize)];
        loop {
            let f = filler.next(&mut buf)?;
            consume(&buf[..f.filled])?;
            if let Some(end) = f.end {
                break end;
            }
        }
    };
    let md5_hex = if with_md5 {
        crate::share::sha256file::to_hex(&md5.finalize())
    } else {
        String::new()
    };
    Ok(Streamed {
        md5_checked: with_md5,
        md5_ok: !with_md5 || md5_hex.eq_ignore_ascii_case(&obj.md5),
        md5_hex,
        end,
        stored_bytes: count.load(Ordering::Relaxed),
        file: file_id,
    })
}

/// Decompress on a scoped thread, consume on this one; buffers go round
/// between the two (at most [`IN_FLIGHT`] of them), so memory stays flat.
fn pipelined(
    filler: &mut Filler,
    cap: usize,
    consume: &mut dyn FnMut(&[u8]) -> Result<(), StreamError>,
) -> Result<ChunkEnd, StreamError> {
    use std::sync::mpsc::{channel, sync_channel};
    let (full_tx, full_rx) = sync_channel::<Result<(Vec<u8>, Fill), StreamError>>(IN_FLIGHT);
    let (free_tx, free_rx) = channel::<Vec<u8>>();
    for _ in 0..IN_FLIGHT {
        let _ = free_tx.send(vec![0u8; cap]);
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            // Ends when the stream ends, fails, or the consumer hangs up.
            while let Ok(mut buf) = free_rx.recv() {
                let r = filler.next(&mut buf);
                let last = !matches!(&r, Ok(f) if f.end.is_none());
                if full_tx.send(r.map(|f| (buf, f))).is_err() || last {
                    break;
                }
            }
        });
        // Both ends of this side are dropped before the scope joins the
        // thread, so a consumer that stops early never leaves it blocked.
        let (full_rx, free_tx) = (full_rx, free_tx);
        let result = loop {
            let Ok(item) = full_rx.recv() else {
                break Err(StreamError::Stopped(
                    "the decompressing thread ended".into(),
                ));
            };
            let (buf, f) = match item {
                Ok(x) => x,
                Err(e) => break Err(e),
            };
            if let Err(e) = consume(&buf[..f.filled]) {
                break Err(e);
            }
            if let Some(end) = f.end {
                break Ok(end);
            }
            let _ = free_tx.send(buf);
        };
        drop(full_rx);
        drop(free_tx);
        result
    })
}

/// Whether a buffer is all zeros: OR-folds 512-byte runs (vectorised by
/// the compiler), stopping at the first run with a set bit.
pub fn is_zero(b: &[u8]) -> bool {
    b.chunks(512)
        .all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
}

/// The sha256 of a block of `n` zero bytes (computed once per size and
/// thread: an incremental has thousands of one-block chunks).
pub fn zero_block_sha(n: usize) -> [u8; 32] {
    thread_local! {
        static CACHE: std::cell::RefCell<Vec<(usize, [u8; 32])>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    CACHE.with(|c| {
        if let Some((_, h)) = c.borrow().iter().find(|(k, _)| *k == n) {
            return *h;
        }
        let h: [u8; 32] = Sha256::digest(vec![0u8; n]).into();
        let mut c = c.borrow_mut();
        if c.len() >= 8 {
            c.remove(0);
        }
        c.push((n, h));
        h
    })
}

/// Blocks gathered before they are hashed together: a bound on the
/// memory that gathering takes, whatever the block size (a hostile
/// sha256file may say 1 byte).
pub const HASH_BATCH: usize = 64;

/// A hash block waiting for its proof: (block index, its bytes, the
/// sha256 the sha256file lists for it).
pub type Pending<'a> = (u64, &'a [u8], [u8; 32]);

/// Hash the gathered blocks several at a time (see [`crate::sha256_lanes`]):
/// for each, whether its sha256 is the one wanted.
pub fn blocks_match(todo: &[Pending<'_>]) -> Vec<bool> {
    let pieces: Vec<&[u8]> = todo.iter().map(|t| t.1).collect();
    let mut sums = vec![[0u8; 32]; pieces.len()];
    crate::sha256_lanes::digest_many(&pieces, &mut sums);
    todo.iter().zip(&sums).map(|(t, got)| t.2 == *got).collect()
}

/// Merge sorted block indexes into inclusive ranges.
pub fn ranges(mut blocks: Vec<u64>) -> Vec<(u64, u64)> {
    blocks.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for b in blocks {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(b) || *end == b => *end = b,
            _ => out.push((b, b)),
        }
    }
    out
}

/// Block indexes that failed, kept as merged ranges (in the order they
/// come, which is ascending within a chunk), at most [`BadBlocks::MAX`]
/// of them: memory stays bounded however much of a chunk is wrong.
#[derive(Debug, Default)]
pub struct BadBlocks {
    ranges: Vec<(u64, u64)>,
    /// Blocks in ranges beyond the first `MAX`.
    pub more: u64,
}

impl BadBlocks {
    pub const MAX: usize = 256;
    pub fn push(&mut self, b: u64) {
        let full = self.ranges.len() >= Self::MAX;
        match self.ranges.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(b) || *end == b => *end = b,
            _ if full => self.more = self.more.saturating_add(1),
            _ => self.ranges.push((b, b)),
        }
    }
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        ranges_merge(&self.ranges)
    }
}

fn ranges_merge(r: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v = r.to_vec();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some((_, end)) if a <= end.saturating_add(1) => *end = (*end).max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The findings a stream outcome gives (every reader of chunks reports
/// alike); returns the stored bytes read.
pub fn stream_findings(
    streamed: &Result<Streamed, StreamError>,
    obj: &ChunkObject,
    push: &mut dyn FnMut(&'static str, String),
) -> u64 {
    match streamed {
        Err(StreamError::Open(e)) if e.is_not_found() => push(
            "object-missing",
            format!(
                "chunk {} listed in the metadata is missing: restore will fail",
                obj.name
            ),
        ),
        Err(StreamError::Open(e)) => push(e.code(), format!("chunk {}: {e}", obj.name)),
        Err(StreamError::Read(e)) => push(
            "read-failed",
            format!("cannot read chunk {}: {e}", obj.name),
        ),
        Err(StreamError::Decompress { reason, at }) => push(
            "decompress-failed",
            format!(
                "chunk {} does not decompress as {} (after {at} bytes): {reason}",
                obj.name, obj.compression
            ),
        ),
        Err(StreamError::Unknown(name)) => push(
            "decompress-failed",
            format!(
                "chunk {} has compression {name:?}, which no Cinder release writes",
                obj.name
            ),
        ),
        Err(StreamError::Stopped(m)) => push("read-failed", m.clone()),
        Ok(s) => {
            match s.end {
                ChunkEnd::Complete => {}
                ChunkEnd::Short(n) => push(
                    "length-mismatch",
                    format!(
                        "chunk {} decompresses to {n} bytes, the metadata says {}: it is truncated",
                        obj.name, obj.length
                    ),
                ),
                ChunkEnd::Long => push(
                    "length-mismatch",
                    format!(
                        "chunk {} decompresses to more than the {} bytes the metadata says (reading stopped there): Cinder's restore writes the extra bytes too, past the chunk's end",
                        obj.name, obj.length
                    ),
                ),
            }
            if s.md5_checked && !s.md5_ok && s.end == ChunkEnd::Complete {
                push(
                    "md5-mismatch",
                    format!(
                        "chunk {}: md5 of its data is {}, the metadata says {}",
                        obj.name, s.md5_hex, obj.md5
                    ),
                );
            }
            return s.stored_bytes;
        }
    }
    0
}

/// Deep-check one chunk of `backup` against its sha256file. Returns the
/// stored and data bytes, what proved them, and the identity of the handle
/// whose bytes were hashed (None when it could not be opened).
pub fn verify_chunk(
    share: &Share,
    backup: &BackupEntry,
    obj: &ChunkObject,
    sha: Option<&Sha256File>,
    always_md5: bool,
    findings: &mut Findings,
    progress: &dyn Progress,
) -> (u64, u64, Proven, Option<FileId>) {
    let rel = backup.rel(&obj.name);
    let err = |code: &'static str, msg: String| {
        Finding::error(code, msg)
            .backup(backup.id.clone())
            .path(rel.clone())
    };
    let block_u64 = sha.map_or(32768, |s| s.block_size());
    let block = block_u64 as usize;
    let zero = zero_block_sha(block);
    let first_block = obj.offset / block_u64;
    // An unaligned chunk is its own finding; its blocks cannot be matched.
    let mut window = sha
        .filter(|_| obj.offset.is_multiple_of(block_u64))
        .map(Window::new);
    // md5 only where no sha256 entry proves the bytes (or when asked).
    let covered = window.is_some()
        && sha
            .is_some_and(|s| first_block.saturating_add(obj.length.div_ceil(block_u64)) <= s.len());
    let with_md5 = always_md5 || !covered;
    let mut proven = Proven::default();
    let mut sha_problem = None;
    let mut beyond: Option<u64> = None;
    let mut bad = BadBlocks::default();
    let mut sink = |off: u64, data: &[u8]| -> Result<(), String> {
        for (g, group) in data.chunks(block.saturating_mul(HASH_BATCH)).enumerate() {
            let off = off + (g * block * HASH_BATCH) as u64;
            // Blocks to hash, gathered and then hashed several at a time.
            let mut todo: Vec<Pending<'_>> = Vec::with_capacity(HASH_BATCH);
            for (k, piece) in group.chunks(block).enumerate() {
                let idx = first_block + off / block_u64 + k as u64;
                // A short last piece before the declared end is a truncated
                // stream: length-mismatch says it, its hash would only repeat it.
                let piece_end = off + (k * block + piece.len()) as u64;
                if piece.len() < block && piece_end != obj.length {
                    continue;
                }
                let Some(w) = window.as_mut() else { continue };
                match w.get(idx) {
                    Ok(Some(want)) => {
                        if piece.len() == block && want == zero && is_zero(piece) {
                            proven.zero_compare += piece.len() as u64;
                        } else {
                            todo.push((idx, piece, want));
                        }
                    }
                    Ok(None) => {
                        beyond.get_or_insert(idx);
                    }
                    Err(e) => {
                        sha_problem = Some(e.to_string());
                        window = None;
                    }
                }
            }
            for ((idx, piece, _), ok) in todo.iter().zip(blocks_match(&todo)) {
                if ok {
                    proven.sha256 += piece.len() as u64;
                } else {
                    bad.push(*idx);
                }
            }
        }
        progress.advance(data.len() as u64, &backup.id);
        Ok(())
    };
    let streamed = stream_chunk(share, backup, obj, block, with_md5, &mut sink);
    let stored = stream_findings(&streamed, obj, &mut |code, msg| {
        findings.push(err(code, msg))
    });
    if let Ok(s) = &streamed
        && s.md5_checked
        && s.md5_ok
        && s.end == ChunkEnd::Complete
    {
        if covered {
            proven.md5_also = obj.length;
        } else {
            let by_sha = proven.sha256 + proven.zero_compare;
            proven.md5_only = obj.length.saturating_sub(by_sha);
        }
    }
    if let Some(p) = sha_problem {
        findings.push(err(
            "sha256file-invalid",
            format!("cannot check the blocks of chunk {}: {p}", obj.name),
        ));
    }
    if let Some(i) = beyond {
        findings.push(err(
            "size-mismatch",
            format!(
                "chunk {} holds hash block {i} and on, beyond the {} blocks the sha256file lists: those bytes are proven by nothing",
                obj.name,
                sha.map_or(0, |s| s.len())
            ),
        ));
    }
    if bad.more > 0 {
        findings.push(err(
            "sha256-mismatch",
            format!(
                "chunk {}: {} more hash blocks differ from the sha256file (not listed one by one)",
                obj.name, bad.more
            ),
        ));
    }
    for (a, b) in bad.ranges() {
        findings.push(err(
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
                a.saturating_mul(block_u64),
                b.saturating_add(1).saturating_mul(block_u64)
            ),
        ));
    }
    let id = streamed.as_ref().ok().map(|s| s.file);
    (stored, obj.length, proven, id)
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
/// recorded against (that is the handle [`verify_chunk`] hashed).
fn file_id(share: &Share, b: &BackupEntry, o: &ChunkObject) -> Option<FileId> {
    b.open(share, &o.name).ok().map(|f| f.id())
}

/// Chunks read in one parallel batch.
const BATCH: usize = 4096;

/// Chunk findings of one backup and code: the first
/// [`crate::check::PER_CODE`] are kept, the others counted and summed up
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
        if n.0 <= crate::check::PER_CODE {
            out.push(f);
        }
    }
    fn finish(self, out: &mut Findings) {
        let mut over: Vec<_> = self
            .counts
            .into_iter()
            .filter(|(_, (n, _))| *n > crate::check::PER_CODE)
            .collect();
        over.sort_by(|a, b| a.0.cmp(&b.0));
        for ((backup, code), (n, severity)) in over {
            let mut f = Finding::new(
                severity,
                code,
                format!(
                    "{} more {code} finding(s) in the chunks of this backup are not listed (the first {} are)",
                    n - crate::check::PER_CODE,
                    crate::check::PER_CODE
                ),
            );
            f.backup_id = backup;
            out.push(f);
        }
    }
}

/// What became of one work item.
enum Item {
    Checked(Findings, u64, u64, Proven),
    Skipped,
    Deferred,
}

/// Verify `backups` (callers include the chains they want checked).
pub fn verify(
    share: &Share,
    scan: &ShareScan,
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
    scan: &ShareScan,
    backups: &[&BackupEntry],
    opts: &VerifyOptions,
    progress: &dyn Progress,
    hooks: &VerifyHooks<'_>,
) -> VerifyReport {
    use rayon::prelude::*;
    let mut report = VerifyReport {
        backups_checked: backups.len(),
        ..Default::default()
    };
    for b in backups {
        report
            .findings
            .extend(crate::check::backup_findings(share, scan, b));
    }
    if opts.deep {
        // sha256files, opened once per backup; each backup as the journal
        // sees it: with the identity of the sha256file handle used.
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
        let backups: Vec<&BackupEntry> = seen.iter().collect();
        // Work items in share order: backup by backup, chunk by chunk, so
        // each worker reads one file front to back.
        let mut items: Vec<(usize, &ChunkObject)> = Vec::new();
        for (i, b) in backups.iter().enumerate() {
            for o in &b.metadata.objects {
                if let Some((pct, seed)) = opts.sample
                    && !in_sample(&b.id, &o.name, pct, seed)
                {
                    continue;
                }
                items.push((i, o));
            }
        }
        let total: u64 = items
            .iter()
            .fold(0u64, |a, (_, o)| a.saturating_add(o.length));
        progress.start(total);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.jobs.max(1))
            .build();
        // Looked at only to decide a skip: a proof is keyed to the handle read.
        let journaled = hooks.skip.is_some();
        let one = |(i, o): &(usize, &ChunkObject)| -> Item {
            let b = backups[*i];
            if hooks.stop.is_some_and(|stop| stop(o)) {
                return Item::Deferred;
            }
            let id = if journaled {
                file_id(share, b, o)
            } else {
                None
            };
            if hooks.skip.is_some_and(|skip| skip(b, o, id)) {
                progress.advance(o.length, &b.id);
                return Item::Skipped;
            }
            let mut f = Findings::new();
            let (stored, data, proven, read_id) =
                verify_chunk(share, b, o, shas[*i].as_ref(), opts.md5, &mut f, progress);
            if let Some(done) = hooks.done {
                done(&ChunkOutcome {
                    backup: b,
                    object: o,
                    file: read_id,
                    findings: &f,
                    proven,
                    stored_bytes: stored,
                });
            }
            Item::Checked(f, stored, data, proven)
        };
        // Batch by batch, in order, so that what is held at once (every
        // chunk's findings, before they are counted) stays bounded
        // whatever the number of chunks a `_metadata` lists.
        let mut capped = Capped::default();
        for batch in items.chunks(BATCH) {
            let run = || -> Vec<Item> { batch.par_iter().with_max_len(1).map(one).collect() };
            let results = match &pool {
                Ok(p) => p.install(run),
                Err(_) => run(),
            };
            for item in results {
                let (f, stored, data, proven) = match item {
                    Item::Checked(f, s, d, p) => (f, s, d, p),
                    Item::Skipped => {
                        report.chunks_skipped += 1;
                        continue;
                    }
                    Item::Deferred => {
                        report.chunks_deferred += 1;
                        continue;
                    }
                };
                report.proven_by.add(&proven);
                for x in f {
                    capped.push(&mut report.findings, x);
                }
                report.bytes_read = report.bytes_read.saturating_add(stored);
                report.data_bytes = report.data_bytes.saturating_add(data);
                report.chunks_checked += 1;
            }
        }
        progress.finish();
        capped.finish(&mut report.findings);
    }
    // Deferred chunks are not proven: the report vouches for nothing it
    // did not check.
    report.complete = report.chunks_deferred == 0;
    report.ok = !report.findings.has_errors() && report.complete;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_block_among_those_hashed_together_is_the_one_blamed() {
        let data: Vec<Vec<u8>> = (0..7u8).map(|k| vec![k + 1; 4096]).collect();
        let mut todo: Vec<Pending<'_>> = data
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u64, d.as_slice(), Sha256::digest(d).into()))
            .collect();
        assert!(blocks_match(&todo).iter().all(|&ok| ok));
        for wrong in [0, 2, 3, 5, 6] {
            let saved = todo[wrong].2;
            todo[wrong].2[7] ^= 1;
            let got = blocks_match(&todo);
            let bad: Vec<usize> = (0..7).filter(|&i| !got[i]).collect();
            assert_eq!(bad, vec![wrong]);
            todo[wrong].2 = saved;
        }
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0u8; 100]));
        let mut v = vec![0u8; 100];
        v[99] = 1;
        assert!(!is_zero(&v));
        v[99] = 0;
        v[3] = 1;
        assert!(!is_zero(&v));
    }

    #[test]
    fn ranges_merge_consecutive_blocks() {
        assert_eq!(ranges(vec![5, 1, 2, 3, 7]), vec![(1, 3), (5, 5), (7, 7)]);
    }

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
