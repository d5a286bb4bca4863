//! The share as everything above the seam holds it: [`Share`], [`ShareDir`] and [`ShareFile`] over any source.
//!
//! They wrap the trait objects of [`super::source`]; [`Share::open`] opens
//! a local directory through [`super::access`], [`Share::from_source`]
//! takes any other source (an `nfs://` export).

use super::source::{AccessError, Entry, FileId, Source, SourceDir, SourceFile};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A share, held open: what everything above the seam reads through.
#[derive(Debug, Clone)]
pub struct Share {
    /// The share as given: its local directory, or for a remote source its
    /// URL (as [`Source::display`] shows it), for messages only — never
    /// opened, resolved or compared; [`Share::local_root`] tells the two
    /// apart.
    pub root: PathBuf,
    source: Arc<dyn Source>,
}

impl Share {
    /// Open a local share root ([`super::access`]). The root itself may be
    /// reached through links (an operator's mount path); nothing beneath
    /// it is.
    pub fn open(root: impl Into<PathBuf>) -> Result<Share, AccessError> {
        let root = root.into();
        let source = super::access::Local::open(root.clone())?;
        Ok(Share {
            root,
            source: Arc::new(source),
        })
    }

    /// A share read through any source (a remote one: `root` is then its
    /// URL, for messages only).
    pub fn from_source(source: Arc<dyn Source>) -> Share {
        let root = match source.local_root() {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from(source.display()),
        };
        Share { root, source }
    }

    /// The share as given (see [`Share::root`]'s field).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The share's local directory; `None` for a remote source, whose
    /// [`Share::root`] is a URL.
    pub fn local_root(&self) -> Option<&Path> {
        self.source.local_root()
    }

    /// Whether (device, inode) is this share's root (always `false` for a
    /// remote source).
    pub fn is_root(&self, dev: u64, ino: u64) -> bool {
        self.source.is_root(dev, ino)
    }

    /// The share root as a directory handle.
    pub fn root_dir(&self) -> Result<ShareDir, AccessError> {
        self.source.root_dir().map(ShareDir::new)
    }

    /// Open a directory of the share.
    pub fn open_dir(&self, rel: &str) -> Result<ShareDir, AccessError> {
        self.source.open_dir(rel).map(ShareDir::new)
    }

    /// Open a regular file of the share; anything else is refused.
    pub fn open_file(&self, rel: &str) -> Result<ShareFile, AccessError> {
        self.source.open_file(rel).map(ShareFile::new)
    }

    /// Read a whole (small) file of the share, refusing one over `limit`.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>, AccessError> {
        self.open_file(rel)?.read_to_end(limit)
    }

    /// Whether the local `path` (which need not exist) lies inside the
    /// share: some existing ancestor of it is the share root (by device
    /// and inode, so another mount or a link to the same directory counts
    /// too). Always `false` for a remote source.
    pub fn contains(&self, path: &Path) -> bool {
        self.source.contains(path)
    }

    /// How many directories a walk of this share keeps in flight
    /// ([`Source::walk_concurrency`]), at least 1.
    pub fn walk_concurrency(&self) -> usize {
        self.source.walk_concurrency().max(1)
    }
}

/// A directory of the share, held open.
#[derive(Debug)]
pub struct ShareDir {
    inner: Box<dyn SourceDir>,
    /// Share-relative path ("" for the root).
    pub rel: String,
}

impl ShareDir {
    fn new(inner: Box<dyn SourceDir>) -> ShareDir {
        ShareDir {
            rel: inner.rel().to_string(),
            inner,
        }
    }

    /// The entries of this directory, sorted by name, without following
    /// links.
    pub fn entries(&self) -> Result<Vec<Entry>, AccessError> {
        self.inner.entries()
    }

    /// Open a subdirectory (one component, never a link).
    pub fn open_dir(&self, name: &str) -> Result<ShareDir, AccessError> {
        self.inner.open_dir(name).map(ShareDir::new)
    }

    /// Open a regular file of this directory (one component, never a
    /// link, never anything but a regular file).
    pub fn open_file(&self, name: &str) -> Result<ShareFile, AccessError> {
        self.inner.open_file(name).map(ShareFile::new)
    }

    /// Read a whole (small) file of this directory.
    pub fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, AccessError> {
        self.open_file(name)?.read_to_end(limit)
    }

    /// [`ShareDir::read`], with the identity of the handle read.
    #[allow(dead_code)]
    pub fn read_with_id(&self, name: &str, limit: u64) -> Result<(Vec<u8>, FileId), AccessError> {
        let f = self.open_file(name)?;
        let id = f.id();
        Ok((f.read_to_end(limit)?, id))
    }

    /// Where a link in this directory points (for messages only).
    pub fn link_target(&self, name: &str) -> Option<String> {
        self.inner.link_target(name)
    }

    /// Whether a link in this directory leads to a directory (looked at,
    /// nothing opened).
    pub fn link_is_dir(&self, name: &str) -> bool {
        self.inner.link_is_dir(name)
    }
}

/// A regular file of the share, opened and checked. It reads sequentially
/// ([`std::io::Read`], from its own position, straight into the caller's
/// buffer) or at any offset ([`ShareFile::read_at`]).
#[derive(Debug)]
pub struct ShareFile {
    inner: Box<dyn SourceFile>,
    /// Where the next sequential read starts.
    pos: u64,
    /// Share-relative path.
    pub rel: String,
    pub size: u64,
    pub inode: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl ShareFile {
    /// Wrap a file a source opened.
    pub fn new(inner: Box<dyn SourceFile>) -> ShareFile {
        let id = inner.id();
        ShareFile {
            rel: inner.rel().to_string(),
            size: id.size,
            inode: id.inode,
            mtime_ns: id.mtime_ns,
            pos: 0,
            inner,
        }
    }

    pub fn id(&self) -> FileId {
        FileId {
            size: self.size,
            mtime_ns: self.mtime_ns,
            inode: self.inode,
        }
    }

    /// Read up to `buf.len()` bytes at `offset` (0 at the end of the
    /// file); the sequential position does not move.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    /// Fill `buf` from `offset`, or fail with `UnexpectedEof`.
    pub fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.inner.read_at(buf, offset) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file ended early",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Read the whole (small) file from this handle, at most `limit` bytes.
    pub fn read_to_end(mut self, limit: u64) -> Result<Vec<u8>, AccessError> {
        use std::io::Read;
        if self.size > limit {
            return Err(AccessError::TooLarge {
                path: self.rel,
                size: self.size,
                limit,
            });
        }
        let mut buf = Vec::with_capacity(self.size as usize);
        // Never more than the limit, even if the file grows as we read.
        (&mut self)
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| AccessError::Io {
                path: self.rel.clone(),
                source: e,
            })?;
        if buf.len() as u64 > limit {
            return Err(AccessError::TooLarge {
                path: self.rel,
                size: buf.len() as u64,
                limit,
            });
        }
        Ok(buf)
    }
}

impl std::io::Read for ShareFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Moves the sequential position only (nothing is read); `End` counts
/// from the size the handle had when it was opened.
impl std::io::Seek for ShareFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let to = match pos {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            std::io::SeekFrom::End(d) => self.size.checked_add_signed(d),
        };
        self.pos = to.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a seek before the start of the file",
            )
        })?;
        Ok(self.pos)
    }
}

impl ShareFile {
    /// A file opened outside any share (a test's, a tool's), checked to be
    /// a regular file; `rel` names it in messages.
    pub fn from_std(file: File, rel: impl Into<String>) -> Result<ShareFile, AccessError> {
        super::access::regular_file(file, rel.into()).map(ShareFile::new)
    }
}
