//! The NFS client behind the share-source seam ([`crate::share::source`]):
//! `Share::from_source(Arc::new(NfsSource::open(url)?))` reads an export
//! as everything above the seam reads a local directory.
//!
//! A link is never followed and READLINK never sent (so
//! [`SourceDir::link_target`] has nothing to say); types come from the
//! attributes LOOKUP and READDIRPLUS return. A file read sequentially
//! (chunks) keeps several READs in flight across calls of `read_at`; a
//! read at another offset (a sha256file's random access) asks for just
//! what it needs.

use super::proto::{Attr, Ftype};
use super::{NfsError, NfsReader, NfsShare};
use crate::share::source::{
    AccessError, Entry, EntryKind, FileId, Source, SourceDir, SourceFile, join,
};
use std::io::Read;
use std::sync::Mutex;

/// An export read over `nfs://`.
#[derive(Debug)]
pub struct NfsSource {
    share: NfsShare,
}

impl NfsSource {
    pub fn open(url: &str) -> Result<NfsSource, NfsError> {
        Ok(NfsSource {
            share: NfsShare::open(url)?,
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
        Ok(Box::new(NfsDir {
            share: self.share.clone(),
            fh: self.share.root_fh().to_vec(),
            rel: String::new(),
        }))
    }
}

/// A directory of the export, by handle.
#[derive(Debug)]
pub struct NfsDir {
    share: NfsShare,
    fh: Vec<u8>,
    rel: String,
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
        Ok(list
            .into_iter()
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
        Ok(Box::new(NfsDir {
            share: self.share.clone(),
            fh,
            rel: path,
        }))
    }

    fn open_file(&self, name: &str) -> Result<Box<dyn SourceFile>, AccessError> {
        let (fh, a, path) = self.child(name)?;
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
            reader: Mutex::new(None),
        }))
    }
}

/// A regular file of the export.
#[derive(Debug)]
pub struct NfsSourceFile {
    share: NfsShare,
    file: super::NfsFile,
    /// The reader of the last sequential run, positioned where it ended.
    reader: Mutex<Option<NfsReader>>,
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
            .reader
            .lock()
            .map_err(|_| std::io::Error::other("a reader of this file panicked"))?;
        let want_end = offset.saturating_add(buf.len() as u64);
        let mut r = match slot.take() {
            // Going on from where the last read ended: stream (READs in
            // flight ahead of the reader).
            Some(mut r) if r.position() == offset => {
                r.limit = None;
                r
            }
            // Elsewhere: just what is asked (a random access).
            _ => {
                let mut r = self.share.reader(&self.file, offset);
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
        *slot = Some(r);
        Ok(n)
    }
}
