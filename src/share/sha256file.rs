//! `<prefix>_sha256file`: the sha256 of every hash block of the volume.
//!
//! A 1 TiB volume has 33.5 million entries (~2.4 GB of JSON), so the file is
//! never held in memory: [`Sha256File`] keeps the header and gives random
//! access to entry `i`.

use crate::share::ShareFile;
use serde::Deserialize;
use std::fs::File;

use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Sha256Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid sha256file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("entry {index} is out of range: the sha256file has {len} entries")]
    OutOfRange { index: u64, len: u64 },
    #[error("{path}: {what}")]
    ValueOutOfRange { path: PathBuf, what: String },
    #[error(transparent)]
    Access(#[from] crate::share::AccessError),
}

impl Sha256Error {
    /// The stable finding code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Sha256Error::ValueOutOfRange { .. } => "value-out-of-range",
            Sha256Error::Access(e) if e.is_not_found() => "sha256file-missing",
            Sha256Error::Access(e) => e.code(),
            Sha256Error::Io { .. } => "read-failed",
            _ => "sha256file-invalid",
        }
    }
}

/// The largest hash block cbr accepts (Cinder's default is 32 KiB; a block
/// is held in memory whole while it is hashed).
pub const MAX_BLOCK: u64 = 64 << 20;

/// The fields of a sha256file other than the list of hashes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Sha256Header {
    #[serde(default)]
    pub backup_id: Option<String>,
    #[serde(default)]
    pub volume_id: Option<String>,
    #[serde(default)]
    pub backup_name: Option<String>,
    #[serde(default)]
    pub backup_description: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// The hash block size in bytes (`backup_sha_block_size_bytes`).
    pub chunk_size: u64,
    #[serde(default)]
    pub version: Option<String>,
}

/// Random access to the entries of a sha256file.
#[derive(Debug)]
pub struct Sha256File {
    path: PathBuf,
    header: Sha256Header,
    len: u64,
    store: Store,
    /// Identity of the handle read (set when opened on the share).
    pub id: Option<crate::share::FileId>,
}

#[derive(Debug)]
enum Store {
    /// Canonical indent-2 layout: entry i is the 64 hex digits at
    /// `first + i * 72 + 5`.
    Canonical { file: ShareFile, first: u64 },
    /// Any other layout: a binary index of 32 bytes an entry, built once
    /// by streaming the JSON, in an anonymous temporary file.
    Index { file: File },
}

/// One canonical entry line: `    "<64 hex>",\n`.
const LINE: u64 = 72;
const HEAD: &[u8] = b"\"sha256s\": [\n";

impl Sha256File {
    /// Open the sha256file at `rel` on the share; memory use is bounded
    /// whatever its size.
    pub fn open(share: &crate::share::Share, rel: &str) -> Result<Self, Sha256Error> {
        Self::opened(share.open_file(rel)?)
    }

    /// Open the sha256file `name` in the share directory `dir` (already
    /// open: no lookup from the root).
    pub fn open_in(dir: &crate::share::ShareDir, name: &str) -> Result<Self, Sha256Error> {
        Self::opened(dir.open_file(name)?)
    }

    /// A sha256file opened on the share, with the identity of its handle.
    fn opened(f: ShareFile) -> Result<Self, Sha256Error> {
        let id = f.id();
        let path = PathBuf::from(&f.rel);
        let mut s = Self::from_share_file(f, &path)?;
        s.id = Some(id);
        Ok(s)
    }

    /// Read a sha256file from an open (regular) file; `path` names it in
    /// messages.
    pub fn from_file(file: File, path: &Path) -> Result<Self, Sha256Error> {
        let f = ShareFile::from_std(file, path.display().to_string())?;
        Self::from_share_file(f, path)
    }

    fn from_share_file(file: ShareFile, path: &Path) -> Result<Self, Sha256Error> {
        let size = file.size;
        match Self::open_canonical(path, file, size)? {
            Ok(found) => Ok(found),
            Err(file) => Self::open_streaming(path, file),
        }
    }

    fn invalid(path: &Path, reason: impl Into<String>) -> Sha256Error {
        Sha256Error::Invalid {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// The fast path: header and trailer parsed, entry i at a fixed offset.
    /// Gives the file back when the layout is not the canonical one.
    fn open_canonical(
        path: &Path,
        file: ShareFile,
        size: u64,
    ) -> Result<Result<Self, ShareFile>, Sha256Error> {
        let io = |source| Sha256Error::Io {
            path: path.to_owned(),
            source,
        };
        // Small files (most incrementals of small volumes) are read once.
        let head_len = if size <= 16384 { size } else { size.min(4096) } as usize;
        let mut head = vec![0u8; head_len];
        file.read_exact_at(&mut head, 0).map_err(io)?;
        let Some(key) = find(&head, HEAD) else {
            return Ok(Err(file));
        };
        let first = (key + HEAD.len()) as u64;
        let tail_len = size.saturating_sub(first).min(4096);
        let tail = if head_len as u64 == size {
            head[(size - tail_len) as usize..].to_vec()
        } else {
            let mut t = vec![0u8; tail_len as usize];
            file.read_exact_at(&mut t, size - tail_len).map_err(io)?;
            t
        };
        let Some(close) = rfind(&tail, b"\n  ]") else {
            return Ok(Err(file));
        };
        // Offset of the `\n` that ends the last entry line.
        let close_abs = size - tail_len + close as u64;
        let region = close_abs + 1 - first;
        let len = if region == 0 {
            0
        } else if (region + 1).is_multiple_of(LINE) {
            (region + 1) / LINE
        } else {
            return Ok(Err(file));
        };
        // Spot-check the first and last lines' shape.
        for i in [0, len.saturating_sub(1)] {
            if len == 0 {
                break;
            }
            let mut line = [0u8; 71];
            file.read_exact_at(&mut line, first + i * LINE)
                .map_err(io)?;
            let ok = &line[..5] == b"    \""
                && line[5..69].iter().all(u8::is_ascii_hexdigit)
                && line[69] == b'"'
                && line[70] == if i + 1 == len { b'\n' } else { b',' };
            if !ok {
                return Ok(Err(file));
            }
        }
        // The header: everything but the list, parsed as JSON.
        let mut text = head[..key].to_vec();
        text.extend_from_slice(b"\"sha256s\": []");
        text.extend_from_slice(&tail[close + 4..]);
        let whole: Header = match serde_json::from_slice(&text) {
            Ok(h) => h,
            Err(_) => return Ok(Err(file)),
        };
        Self::check_header(path, &whole.header, len)?;
        Ok(Ok(Sha256File {
            id: None,
            path: path.to_owned(),
            header: whole.header,
            len,
            store: Store::Canonical { file, first },
        }))
    }

    fn check_header(path: &Path, h: &Sha256Header, len: u64) -> Result<(), Sha256Error> {
        let out_of_range = |what: String| Sha256Error::ValueOutOfRange {
            path: path.to_owned(),
            what,
        };
        if h.chunk_size == 0 || h.chunk_size > MAX_BLOCK {
            return Err(out_of_range(format!(
                "chunk_size (the hash block size) is {}: it must be 1..={MAX_BLOCK} bytes (Cinder writes 32768)",
                h.chunk_size
            )));
        }
        match len.checked_mul(h.chunk_size) {
            Some(n) if n <= crate::share::metadata::MAX_VOLUME_BYTES => Ok(()),
            _ => Err(out_of_range(format!(
                "{len} entries of {} bytes describe a volume larger than any file can be",
                h.chunk_size
            ))),
        }
    }

    /// The slow path for any other layout: stream the JSON once, writing
    /// entries to a binary index and keeping the rest as the header.
    fn open_streaming(path: &Path, mut file: ShareFile) -> Result<Self, Sha256Error> {
        use std::io::{BufWriter, Read, Write};
        let io = |source| Sha256Error::Io {
            path: path.to_owned(),
            source,
        };
        let index = tempfile::tempfile().map_err(io)?;
        let mut w = BufWriter::with_capacity(1 << 20, index.try_clone().map_err(io)?);
        let mut scanner = Scanner::new(path);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                scanner.byte(b, &mut w)?;
            }
        }
        w.flush().map_err(io)?;
        drop(w);
        let (header, len) = scanner.finish()?;
        Ok(Sha256File {
            id: None,
            path: path.to_owned(),
            header,
            len,
            store: Store::Index { file: index },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn header(&self) -> &Sha256Header {
        &self.header
    }
    /// The hash block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.header.chunk_size
    }
    /// Number of entries (hash blocks).
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Whether the file is in Cinder's canonical layout (the fast path).
    pub fn is_canonical(&self) -> bool {
        matches!(self.store, Store::Canonical { .. })
    }
    /// The volume size the entries cover: entries × block size.
    pub fn covered_bytes(&self) -> u64 {
        // Checked not to overflow when the file was opened.
        self.len.saturating_mul(self.header.chunk_size)
    }

    /// The sha256 of hash block `i`.
    pub fn get(&self, index: u64) -> Result<[u8; 32], Sha256Error> {
        let mut v = Vec::with_capacity(1);
        self.read_range(index, 1, &mut v)?;
        v.pop().ok_or(Sha256Error::OutOfRange {
            index,
            len: self.len,
        })
    }

    /// Entries `start .. start + count`, appended to `out` (for sequential
    /// consumers: one read for the whole range).
    pub fn read_range(
        &self,
        start: u64,
        count: u64,
        out: &mut Vec<[u8; 32]>,
    ) -> Result<(), Sha256Error> {
        use std::os::unix::fs::FileExt;
        if count == 0 {
            return Ok(());
        }
        let end = start.saturating_add(count);
        if end > self.len {
            return Err(Sha256Error::OutOfRange {
                index: end - 1,
                len: self.len,
            });
        }
        let io = |source| Sha256Error::Io {
            path: self.path.clone(),
            source,
        };
        match &self.store {
            Store::Canonical { file, first } => {
                // The last line has no comma: read one byte less.
                let bytes = (count * LINE - 1) as usize;
                let mut buf = vec![0u8; bytes];
                file.read_exact_at(&mut buf, first + start * LINE)
                    .map_err(io)?;
                for k in 0..count as usize {
                    let at = k * LINE as usize + 5;
                    let hex = buf
                        .get(at..at + 64)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    let h = hex
                        .and_then(parse_hex32)
                        .ok_or_else(|| Sha256Error::Invalid {
                            path: self.path.clone(),
                            reason: format!("entry {} is not 64 hex digits", start + k as u64),
                        })?;
                    out.push(h);
                }
            }
            Store::Index { file } => {
                let mut buf = vec![0u8; (count * 32) as usize];
                file.read_exact_at(&mut buf, start * 32).map_err(io)?;
                for c in buf.chunks_exact(32) {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(c);
                    out.push(h);
                }
            }
        }
        Ok(())
    }
}

/// Entries read through a bounded window, for consumers that walk a
/// range (possibly huge, as the metadata claims) a few entries at a time.
#[derive(Debug)]
pub struct Window<'a> {
    sha: &'a Sha256File,
    start: u64,
    entries: Vec<[u8; 32]>,
    /// Entries the next load reads: starts small (a chunk of an
    /// incremental may need one entry) and doubles up to [`WINDOW`].
    next: u64,
}

/// Entries held by a [`Window`] at a time (512 KiB).
const WINDOW: u64 = 16384;

impl<'a> Window<'a> {
    pub fn new(sha: &'a Sha256File) -> Self {
        Window {
            sha,
            start: 0,
            entries: Vec::new(),
            next: 64,
        }
    }

    /// Entry `i`, or `None` past the end of the file.
    pub fn get(&mut self, i: u64) -> Result<Option<[u8; 32]>, Sha256Error> {
        if i >= self.sha.len() {
            return Ok(None);
        }
        let in_window = i >= self.start && i - self.start < self.entries.len() as u64;
        if !in_window {
            self.entries.clear();
            self.start = i;
            let count = self.next.min(self.sha.len() - i);
            self.next = (self.next * 2).min(WINDOW);
            self.sha.read_range(i, count, &mut self.entries)?;
        }
        Ok(self.entries.get((i - self.start) as usize).copied())
    }
}

/// A small scanner of a sha256file's top-level object, fed a byte at a
/// time: the entries of `sha256s` go to the index as 32 bytes each,
/// everything else (at most 1 MiB) is kept as the header's JSON.
struct Scanner<'p> {
    path: &'p Path,
    /// The JSON read so far, without the entries of the list.
    header: Vec<u8>,
    /// Entries written to the index.
    len: u64,
    depth: i32,
    in_str: bool,
    esc: bool,
    /// The current string at depth 1 (a key) or in the list (an entry).
    cur: Vec<u8>,
    last_key: Vec<u8>,
    in_list: bool,
    list_seen: bool,
}

impl<'p> Scanner<'p> {
    fn new(path: &'p Path) -> Self {
        Scanner {
            path,
            header: Vec::new(),
            len: 0,
            depth: 0,
            in_str: false,
            esc: false,
            cur: Vec::new(),
            last_key: Vec::new(),
            in_list: false,
            list_seen: false,
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> Sha256Error {
        Sha256File::invalid(self.path, reason)
    }

    #[inline]
    fn byte(&mut self, b: u8, index: &mut impl std::io::Write) -> Result<(), Sha256Error> {
        if self.in_list {
            self.list_byte(b, index)
        } else {
            self.header_byte(b)
        }
    }

    /// A byte inside the `sha256s` list: entries, commas, blanks, `]`.
    #[inline]
    fn list_byte(&mut self, b: u8, index: &mut impl std::io::Write) -> Result<(), Sha256Error> {
        let len = self.len;
        if self.in_str {
            if b == b'"' {
                self.in_str = false;
                let h = std::str::from_utf8(&self.cur)
                    .ok()
                    .and_then(parse_hex32)
                    .ok_or_else(|| self.invalid(format!("entry {len} is not 64 hex digits")))?;
                index.write_all(&h).map_err(|source| Sha256Error::Io {
                    path: self.path.to_owned(),
                    source,
                })?;
                self.len += 1;
                self.cur.clear();
            } else if self.cur.len() < 64 {
                self.cur.push(b);
            } else {
                return Err(self.invalid(format!("entry {len} is too long")));
            }
        } else if b == b'"' {
            self.in_str = true;
        } else if b == b']' {
            self.in_list = false;
            self.header.extend_from_slice(b"[]");
        } else if !(b.is_ascii_whitespace() || b == b',') {
            return Err(self.invalid(format!(
                "unexpected {:?} in sha256s after entry {len}",
                b as char
            )));
        }
        Ok(())
    }

    /// A byte of the rest of the object, kept as the header.
    #[inline]
    fn header_byte(&mut self, b: u8) -> Result<(), Sha256Error> {
        self.header.push(b);
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if b == b'\\' {
                self.esc = true;
            } else if b == b'"' {
                self.in_str = false;
                if self.depth == 1 {
                    self.last_key = std::mem::take(&mut self.cur);
                }
            } else if self.depth == 1 && self.cur.len() < 64 {
                self.cur.push(b);
            }
            return Ok(());
        }
        match b {
            b'"' => {
                self.in_str = true;
                self.cur.clear();
            }
            b'{' | b'[' => {
                if b == b'[' && self.depth == 1 && self.last_key == b"sha256s" && !self.list_seen {
                    self.header.pop();
                    self.in_list = true;
                    self.list_seen = true;
                } else {
                    self.depth += 1;
                }
            }
            b'}' | b']' => self.depth -= 1,
            b',' if self.depth == 1 => self.last_key.clear(),
            _ => {}
        }
        if self.header.len() > 1 << 20 {
            return Err(self.invalid("more than 1 MiB besides the sha256s list"));
        }
        Ok(())
    }

    /// The header parsed and checked, and the number of entries.
    fn finish(self) -> Result<(Sha256Header, u64), Sha256Error> {
        if !self.list_seen {
            return Err(self.invalid("no \"sha256s\" list"));
        }
        let whole: Header =
            serde_json::from_slice(&self.header).map_err(|e| self.invalid(e.to_string()))?;
        Sha256File::check_header(self.path, &whole.header, self.len)?;
        Ok((whole.header, self.len))
    }
}

#[derive(Deserialize)]
struct Header {
    #[serde(flatten)]
    header: Sha256Header,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Parse 64 hex digits into 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn hex_of(i: u64) -> String {
        use sha2::Digest;
        to_hex(&sha2::Sha256::digest(i.to_le_bytes()))
    }

    /// A sha256file as Cinder writes it (`json.dumps(sort_keys, indent=2)`).
    fn canonical(n: u64) -> String {
        let mut s = String::from(
            "{\n  \"backup_description\": null,\n  \"backup_id\": \"b\",\n  \"backup_name\": \"n\",\n  \"chunk_size\": 32768,\n  \"created_at\": \"2026-11-24 06:10:32.169388+00:00\",\n  \"sha256s\": [",
        );
        if n == 0 {
            s.push_str("],\n");
        } else {
            s.push('\n');
            for i in 0..n {
                s.push_str(&format!(
                    "    \"{}\"{}\n",
                    hex_of(i),
                    if i + 1 < n { "," } else { "" }
                ));
            }
            s.push_str("  ],\n");
        }
        s.push_str("  \"version\": \"1.0.0\",\n  \"volume_id\": \"v\"\n}");
        s
    }

    fn open(p: &Path) -> Result<Sha256File, Sha256Error> {
        #[allow(clippy::disallowed_methods)]
        // a test opens a sha256file it wrote, not through a share
        let f = File::open(p).unwrap();
        Sha256File::from_file(f, p)
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn canonical_layout_first_last_and_random_entries() {
        let n = 1000;
        let f = write(&canonical(n));
        let s = open(f.path()).unwrap();
        assert!(s.is_canonical());
        assert_eq!(s.len(), n);
        assert_eq!(s.block_size(), 32768);
        assert_eq!(s.header().volume_id.as_deref(), Some("v"));
        for i in [0, 1, 499, 777, n - 1] {
            assert_eq!(to_hex(&s.get(i).unwrap()), hex_of(i), "entry {i}");
        }
        assert!(matches!(s.get(n), Err(Sha256Error::OutOfRange { .. })));
        let mut v = Vec::new();
        s.read_range(990, 10, &mut v).unwrap();
        assert_eq!(to_hex(&v[9]), hex_of(999));
    }

    #[test]
    fn compact_layout_goes_through_the_index() {
        let n = 300;
        let text = canonical(n).replace("\n", "").replace("  ", "");
        let f = write(&text);
        let s = open(f.path()).unwrap();
        assert!(!s.is_canonical());
        assert_eq!(s.len(), n);
        for i in [0, 150, n - 1] {
            assert_eq!(to_hex(&s.get(i).unwrap()), hex_of(i));
        }
        assert_eq!(s.header().backup_name.as_deref(), Some("n"));
    }

    #[test]
    fn fixture_sha256file_is_canonical() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/cinder-29/share/96/12/96128a75-e143-4d8a-9b93-e246af8e6a7d/backup_sha256file"
        );
        let s = open(Path::new(p)).unwrap();
        assert!(s.is_canonical());
        assert_eq!(s.covered_bytes(), 1 << 30);
    }

    #[test]
    fn empty_list_and_garbage() {
        let f = write(&canonical(0));
        assert_eq!(open(f.path()).unwrap().len(), 0);
        let f = write("{\"chunk_size\": 32768, \"sha256s\": [\"zz\"]}");
        assert!(matches!(open(f.path()), Err(Sha256Error::Invalid { .. })));
        let f = write("{\"chunk_size\": 32768}");
        assert!(matches!(open(f.path()), Err(Sha256Error::Invalid { .. })));
        let f = write("not json");
        assert!(open(f.path()).is_err());
        for cs in ["0", "1099511627776", "9223372036854775808"] {
            let f = write(
                &canonical(3).replace("\"chunk_size\": 32768", &format!("\"chunk_size\": {cs}")),
            );
            assert_eq!(
                open(f.path()).map(|_| ()).map_err(|e| e.code()),
                Err("value-out-of-range"),
                "{cs}"
            );
        }
        let f = write(&canonical(3).replace("\"chunk_size\": 32768", "\"chunk_size\": -1"));
        assert_eq!(
            open(f.path()).map(|_| ()).map_err(|e| e.code()),
            Err("sha256file-invalid")
        );
    }
}
