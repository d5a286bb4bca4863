//! A chunk streamed: its file read once through its decoder, bounded to
//! the declared length, md5 computed on the way, every piece handed to the
//! caller's sink (verify hashes it, restore also writes it).
//!
//! [`stream_chunk`] is the one pipeline that reads a chunk: a streaming
//! decoder, bounded to the declared length (a decompression bomb stops
//! there), feeding md5 and the caller's per-block sink, in a fixed buffer
//! whatever the chunk size. [`stream_findings`] says how it ended, alike
//! for every reader.

use super::bz2;
use crate::share::metadata::{ChunkObject, Compression};
use crate::share::{AccessError, BackupEntry, FileId, Share};
use md5::{Digest, Md5};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

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
    let decoder = decoder_for(raw, &obj.compression)?;
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
        in_turn(
            &mut filler,
            cap.min(obj.length.max(1) as usize),
            &mut consume,
        )?
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

/// The decoder of a chunk's compression, reading `raw`.
fn decoder_for<R>(raw: R, compression: &Compression) -> Result<Box<dyn Read + Send>, StreamError>
where
    R: std::io::BufRead + std::io::Seek + Send + 'static,
{
    Ok(match compression {
        Compression::None => Box::new(raw),
        Compression::Zlib => Box::new(flate2::bufread::ZlibDecoder::new(raw)),
        Compression::Bz2 => Box::new(bz2::PyBz2::new(raw)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(raw).map_err(StreamError::Read)?)
        }
        Compression::Other(name) => return Err(StreamError::Unknown(name.to_string())),
    })
}

/// Decompress and consume in turn, on this thread, in one buffer of `len`
/// bytes (a chunk too small to gain from two threads).
fn in_turn(
    filler: &mut Filler,
    len: usize,
    consume: &mut dyn FnMut(&[u8]) -> Result<(), StreamError>,
) -> Result<ChunkEnd, StreamError> {
    let mut buf = vec![0u8; len];
    loop {
        let f = filler.next(&mut buf)?;
        consume(&buf[..f.filled])?;
        if let Some(end) = f.end {
            return Ok(end);
        }
    }
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
