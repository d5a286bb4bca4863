//! The NFS client behind the share-source seam ([`crate::share::source`]):
//! `Share::from_source(Arc::new(NfsSource::open(url)?))` reads an export
//! as everything above the seam reads a local directory.
//!
//! A link is never followed and READLINK never sent (so
//! [`SourceDir::link_target`] has nothing to say); types come from the
//! attributes LOOKUP and READDIRPLUS return. A file read sequentially
//! (chunks) keeps several READs in flight across calls of `read_at`; a
//! read at another offset (a sha256file's random access) asks for just
//! what it needs; a small file ([`SMALL_FILE`]) is read whole, once.
//!
//! Everything above the seam opens directories and files by their
//! share-relative path: the handles READDIRPLUS returned for the
//! subdirectories of a listed directory are kept (up to [`MAX_HINTS`],
//! about 14 MiB: every directory of a share of some 50,000 backups) so that
//! opening one, or a file in one, costs no LOOKUP of each component from
//! the root. A handle so kept was a directory by the server's attributes
//! when listed; if the name has since been replaced (by a link, say), the
//! handle still names the directory that was listed, or is stale (an
//! error): no link is followed either way. Likewise a directory held
//! open keeps the handle and attributes its listing returned for each
//! regular file, for one open of it (the scan's `_metadata`): the type is
//! the server's, the identity that of the listing, a moment before.

use super::proto::{Attr, Ftype};
use super::{NfsError, NfsReader, NfsShare};
use crate::share::source::{
    AccessError, Entry, EntryKind, FileId, Source, SourceDir, SourceFile, components, join,
};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// Directory handles kept from listings, at most (beyond, a directory is
/// looked up from the root, one LOOKUP a component).
pub const MAX_HINTS: usize = 100_000;

/// Handles of listed subdirectories, by share-relative path.
#[derive(Debug, Default)]
struct Hints(Mutex<HashMap<String, Vec<u8>>>);

impl Hints {
    fn get(&self, rel: &str) -> Option<Vec<u8>> {
        self.0.lock().ok()?.get(rel).cloned()
    }

    fn keep(&self, rel: String, fh: Vec<u8>) {
        if let Ok(mut m) = self.0.lock()
            && m.len() < MAX_HINTS
        {
            m.insert(rel, fh);
        }
    }
}

/// An export read over `nfs://`.
#[derive(Debug)]
pub struct NfsSource {
    share: NfsShare,
    hints: Arc<Hints>,
}

impl NfsSource {
    pub fn open(url: &str) -> Result<NfsSource, NfsError> {
        Ok(NfsSource {
            share: NfsShare::open(url)?,
            hints: Arc::default(),
        })
    }
}

/// What an NFS error means to a reader of the share.
pub fn to_access(e: NfsError, path: &str) -> AccessError {
    match e {
        NfsError::NotFound { path } => AccessError::NotFound { path },
        NfsError::Symlink { path } => AccessError::Symlink { path },
        NfsError::NotRegular { path, kind } => AccessError::NotRegular { path, kind },
        NfsError::NotDirectory { path } => AccessError::NotDirectory { path },
        NfsError::BadName { path, reason } => AccessError::BadName { path, reason },
        e => AccessError::Io {
            path: path.to_string(),
            source: std::io::Error::other(e),
        },
    }
}

fn kind(t: Ftype) -> EntryKind {
    match t {
        Ftype::Reg => EntryKind::File,
        Ftype::Dir => EntryKind::Dir,
        Ftype::Lnk => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

fn describe(t: Ftype) -> &'static str {
    match t {
        Ftype::Dir => "a directory",
        Ftype::Lnk => "a symbolic link",
        Ftype::Fifo => "a FIFO",
        Ftype::Sock => "a socket",
        Ftype::Chr => "a character device",
        Ftype::Blk => "a block device",
        Ftype::Reg => "a file",
    }
}

impl Source for NfsSource {
    fn display(&self) -> String {
        self.share.shown().to_string()
    }

    fn root_dir(&self) -> Result<Box<dyn SourceDir>, AccessError> {
        Ok(Box::new(NfsDir::new(
            self.share.clone(),
            self.share.root_fh().to_vec(),
            String::new(),
            self.hints.clone(),
        )))
    }

    /// A directory whose parent was listed opens by the handle the listing
    /// returned; any other from the root, one LOOKUP a step.
    fn open_dir(&self, rel: &str) -> Result<Box<dyn SourceDir>, AccessError> {
        let parts = components(rel)?;
        let rel = parts.join("/");
        if let Some(fh) = self.hints.get(&rel) {
            return Ok(Box::new(NfsDir::new(
                self.share.clone(),
                fh,
                rel,
                self.hints.clone(),
            )));
        }
        let mut dir = self.root_dir()?;
        for part in parts {
            dir = dir.open_dir(part)?;
        }
        Ok(dir)
    }

    /// A file in its directory opened as [`Source::open_dir`] does: a
    /// chunk or a sha256file costs one LOOKUP once its directory was listed.
    fn open_file(&self, rel: &str) -> Result<Box<dyn SourceFile>, AccessError> {
        let parts = components(rel)?;
        let Some((last, parents)) = parts.split_last() else {
            return Err(AccessError::NotRegular {
                path: String::new(),
                kind: "a directory",
            });
        };
        self.open_dir(&parents.join("/"))?.open_file(last)
    }

    /// Round trips, not CPUs, bound a walk over NFS: `concurrency=` of the
    /// URL (16 unless told), each walker on a pooled connection of its own.
    fn walk_concurrency(&self) -> usize {
        self.share.concurrency()
    }
}

/// A directory of the export, by handle.
#[derive(Debug)]
pub struct NfsDir {
    share: NfsShare,
    fh: Vec<u8>,
    rel: String,
    hints: Arc<Hints>,
    /// Regular files of the last listing: handle and attributes, by name,
    /// each taken by one open.
    files: Mutex<HashMap<String, (Vec<u8>, Attr)>>,
}

impl NfsDir {
    fn new(share: NfsShare, fh: Vec<u8>, rel: String, hints: Arc<Hints>) -> NfsDir {
        NfsDir {
            share,
            fh,
            rel,
            hints,
            files: Mutex::default(),
        }
    }
}

impl NfsDir {
    fn child(&self, name: &str) -> Result<(Vec<u8>, Attr, String), AccessError> {
        let path = join(&self.rel, name);
        let (fh, a) = self
            .share
            .child(&self.fh, &self.rel, name)
            .map_err(|e| to_access(e, &path))?;
        if a.ftype == Ftype::Lnk {
            return Err(AccessError::Symlink { path });
        }
        Ok((fh, a, path))
    }
}

impl SourceDir for NfsDir {
    fn rel(&self) -> &str {
        &self.rel
    }

    fn entries(&self) -> Result<Vec<Entry>, AccessError> {
        let shown = if self.rel.is_empty() { "." } else { &self.rel };
        let list = self
            .share
            .entries(&self.fh, &self.rel)
            .map_err(|e| to_access(e, shown))?;
        if let Ok(mut m) = self.files.lock() {
            m.clear();
        }
        Ok(list
            .into_iter()
            .map(|mut e| {
                if !e.lossy
                    && let Some(fh) = e.fh.take()
                {
                    match e.attr {
                        _ if e.ftype == Ftype::Dir => {
                            self.hints.keep(join(&self.rel, &e.name), fh);
                        }
                        Some(a) if a.ftype == Ftype::Reg => {
                            if let Ok(mut m) = self.files.lock() {
                                m.insert(e.name.clone(), (fh, a));
                            }
                        }
                        _ => {}
                    }
                }
                e
            })
            .map(|e| Entry {
                kind: if e.lossy && e.ftype == Ftype::Reg {
                    EntryKind::File
                } else {
                    kind(e.ftype)
                },
                size: e.size,
                lossy: e.lossy,
                name: e.name,
            })
            .collect())
    }

    fn open_dir(&self, name: &str) -> Result<Box<dyn SourceDir>, AccessError> {
        let (fh, a, path) = self.child(name)?;
        if a.ftype != Ftype::Dir {
            return Err(AccessError::NotDirectory { path });
        }
        Ok(Box::new(NfsDir::new(
            self.share.clone(),
            fh,
            path,
            self.hints.clone(),
        )))
    }

    fn open_file(&self, name: &str) -> Result<Box<dyn SourceFile>, AccessError> {
        let listed = self.files.lock().ok().and_then(|mut m| m.remove(name));
        let (fh, a, path) = match listed {
            Some((fh, a)) => (fh, a, join(&self.rel, name)),
            None => self.child(name)?,
        };
        if a.ftype != Ftype::Reg {
            return Err(AccessError::NotRegular {
                path,
                kind: describe(a.ftype),
            });
        }
        Ok(Box::new(NfsSourceFile {
            share: self.share.clone(),
            file: super::NfsFile {
                rel: path,
                fh,
                size: a.size,
                fileid: a.fileid,
                mtime_ns: a.mtime_ns,
            },
            held: Mutex::new(Held::Nothing),
        }))
    }
}

/// Files up to this size are read whole by their first read, in one
/// READ (of the usual rsize), and every later read of them is served from
/// that copy: a `_metadata`, or a small sha256file whose header, trailer
/// and first and last lines are four reads at three offsets, costs one
/// round trip instead of one per read.
pub const SMALL_FILE: u64 = 64 << 10;

/// What a file keeps between reads.
#[derive(Debug)]
enum Held {
    Nothing,
    /// The reader of the last sequential run, positioned where it ended.
    Reader(Box<NfsReader>),
    /// A small file, read whole (at most its size when opened).
    Whole(Vec<u8>),
}

/// A regular file of the export.
#[derive(Debug)]
pub struct NfsSourceFile {
    share: NfsShare,
    file: super::NfsFile,
    held: Mutex<Held>,
}

impl SourceFile for NfsSourceFile {
    fn id(&self) -> FileId {
        FileId {
            size: self.file.size,
            mtime_ns: self.file.mtime_ns,
            inode: self.file.fileid,
        }
    }

    fn rel(&self) -> &str {
        &self.file.rel
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut slot = self
            .held
            .lock()
            .map_err(|_| std::io::Error::other("a reader of this file panicked"))?;
        if self.file.size <= SMALL_FILE {
            if !matches!(*slot, Held::Whole(_)) {
                let mut r = self.share.reader(&self.file, 0);
                r.limit = Some(self.file.size);
                let mut whole = Vec::with_capacity(self.file.size as usize);
                r.read_to_end(&mut whole)?;
                *slot = Held::Whole(whole);
            }
            let Held::Whole(whole) = &*slot else {
                return Ok(0);
            };
            let from = usize::try_from(offset).map_or(whole.len(), |o| o.min(whole.len()));
            let n = buf.len().min(whole.len() - from);
            buf[..n].copy_from_slice(&whole[from..from + n]);
            return Ok(n);
        }
        let want_end = offset.saturating_add(buf.len() as u64);
        let mut r = match std::mem::replace(&mut *slot, Held::Nothing) {
            // Going on from where the last read ended: stream (READs in
            // flight ahead of the reader).
            Held::Reader(mut r) if r.position() == offset => {
                r.limit = None;
                r
            }
            // Elsewhere: just what is asked (a random access).
            _ => {
                let mut r = Box::new(self.share.reader(&self.file, offset));
                r.limit = Some(want_end);
                r
            }
        };
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        *slot = Held::Reader(r);
        Ok(n)
    }
}
