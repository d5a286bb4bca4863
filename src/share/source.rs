//! The seam where a share is read: list, open (the stat), read at an offset; no link followed.
//!
//! Everything above this seam (scan, check, verify, restore, recover and
//! the commands) reads the share through [`Share`], [`ShareDir`] and
//! [`ShareFile`], which wrap the trait objects defined here; none of it
//! names a file descriptor. A source implements three traits:
//!
//! - [`Source`]: the share itself: its root directory, and (by default,
//!   one component at a time from the root) a directory or a regular file
//!   by share-relative path.
//! - [`SourceDir`]: a directory held open (a directory handle locally, an
//!   NFS file handle remotely): its entries, and one component beneath it.
//! - [`SourceFile`]: a regular file held open: its identity and reads at an
//!   offset.
//!
//! Every implementation keeps the guarantees of [`super::access`], the
//! first one (a local directory): paths are share-relative and made of
//! components checked by [`check_name`]; a symbolic link is never followed
//! at any step (opening one is [`AccessError::Symlink`]); only regular
//! files are opened, and anything else (a FIFO, a device, a socket, a
//! directory) is refused as [`AccessError::NotRegular`] before a byte of it
//! is read; nothing is ever written. Which guarantees a source cannot give
//! (a remote one has no local path, no (device, inode) root) it answers
//! with the safe default of the method (see [`Source::contains`]).

use std::fmt::Debug;
use std::path::Path;

use thiserror::Error;

/// Why the share (or something on it) could not be opened.
#[derive(Debug, Error)]
pub enum AccessError {
    #[error("{path} does not exist")]
    NotFound { path: String },
    #[error(
        "{path} is or goes through a symbolic link: cbr never follows links on the share \
         (Cinder does not write them)"
    )]
    Symlink { path: String },
    #[error("{path} is {kind}, not a regular file: cbr does not read it")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} is not a directory")]
    NotDirectory { path: String },
    #[error("{path:?} is not a path inside the share: {reason}")]
    BadName { path: String, reason: &'static str },
    #[error("{path} is {size} bytes, more than the {limit} bytes cbr reads of such a file")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl AccessError {
    /// The stable finding code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            AccessError::NotFound { .. } => "object-missing",
            AccessError::Symlink { .. } => "symlink-refused",
            AccessError::BadName { .. } => "name-invalid",
            AccessError::TooLarge { .. } => "value-out-of-range",
            _ => "read-failed",
        }
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, AccessError::NotFound { .. })
    }
}

/// Whether `name` can be one path component on the share: not empty, not
/// `.` or `..`, no `/` and no NUL. Names from `_metadata` and records are
/// held to this before anything is opened.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("an empty name")
    } else if name == "." || name == ".." {
        Err("'.' and '..' are not names")
    } else if name.contains('/') {
        Err("a name must not contain '/'")
    } else if name.contains('\0') {
        Err("a name must not contain NUL")
    } else if name.len() > 255 {
        Err("longer than 255 bytes")
    } else {
        Ok(())
    }
}

/// The components of a share-relative path (`a/b/c`, no leading `/`, no
/// `..`; empty and `.` components are skipped as a shell would).
pub fn components(rel: &str) -> Result<Vec<&str>, AccessError> {
    let bad = |reason| AccessError::BadName {
        path: rel.to_string(),
        reason,
    };
    if rel.starts_with('/') {
        return Err(bad("an absolute path; paths are relative to the share"));
    }
    let mut out = Vec::new();
    for c in rel.split('/') {
        if c.is_empty() || c == "." {
            continue;
        }
        if c == ".." {
            return Err(bad("it climbs out with '..'"));
        }
        check_name(c).map_err(bad)?;
        out.push(c);
    }
    Ok(out)
}

/// Join share-relative parts with `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// What a directory entry is, without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

impl EntryKind {
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::File => "a file",
            EntryKind::Dir => "a directory",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Other => "a special file (FIFO, device or socket)",
        }
    }
}

/// A file's identity as its handle's `fstat` saw it: what a journal
/// compares to know a file unchanged since it was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

impl FileId {
    /// `size:mtime_ns:inode`, as a journal stores it.
    pub fn stamp(&self) -> String {
        format!("{}:{}:{}", self.size, self.mtime_ns, self.inode)
    }
}

/// One entry of a share directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    /// Size of regular files (0 for anything else).
    pub size: u64,
    /// The name is not valid UTF-8 (shown lossily; never opened).
    pub lossy: bool,
}

/// A share that can be read: a local directory ([`super::access`]) or a
/// remote export. Shared between threads (the scan walks in parallel).
pub trait Source: Send + Sync + Debug {
    /// How the share is named in messages: a path, or a URL such as
    /// `nfs://server/export/dir`.
    fn display(&self) -> String;

    /// The share's local directory, when it is one (`None` for a remote
    /// source: nothing local to resolve, canonicalize or compare).
    fn local_root(&self) -> Option<&Path> {
        None
    }

    /// The root directory, held open.
    fn root_dir(&self) -> Result<Box<dyn SourceDir>, AccessError>;

    /// The directory at share-relative `rel` (`""` is the root), never
    /// through a link. The default walks from [`Source::root_dir`] one
    /// component at a time.
    fn open_dir(&self, rel: &str) -> Result<Box<dyn SourceDir>, AccessError> {
        let mut dir = self.root_dir()?;
        for part in components(rel)? {
            dir = dir.open_dir(part)?;
        }
        Ok(dir)
    }

    /// The regular file at share-relative `rel`, never through a link;
    /// anything but a regular file is refused. The default walks from
    /// [`Source::root_dir`] one component at a time.
    fn open_file(&self, rel: &str) -> Result<Box<dyn SourceFile>, AccessError> {
        let parts = components(rel)?;
        let Some((last, parents)) = parts.split_last() else {
            return Err(AccessError::NotRegular {
                path: String::new(),
                kind: "a directory",
            });
        };
        let mut dir = self.root_dir()?;
        for part in parents {
            dir = dir.open_dir(part)?;
        }
        dir.open_file(last)
    }

    /// Whether the local `path` (which need not exist) lies inside the
    /// share, so that nothing cbr writes lands in it. A remote source
    /// answers `false`: its files are not reached through local paths
    /// (the export mounted locally is a local share of its own).
    fn contains(&self, _path: &Path) -> bool {
        false
    }

    /// Whether the local (device, inode) is the share's root. A remote
    /// source has no such identity: `false`.
    fn is_root(&self, _dev: u64, _ino: u64) -> bool {
        false
    }

    /// How many directories (and small files) a walk of this source should
    /// have in flight at once. A local disk is bound by the CPUs that parse
    /// what it reads; a remote source by round trips, so it asks for more.
    fn walk_concurrency(&self) -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// A directory of a source, held open. Names given to it are one
/// component, already checked by the caller or checked here
/// ([`check_name`]); an implementation refuses a bad one as
/// [`AccessError::BadName`] all the same.
pub trait SourceDir: Send + Sync + Debug {
    /// Share-relative path of this directory (`""` for the root).
    fn rel(&self) -> &str;

    /// The entries of this directory, sorted by name, without `.` and
    /// `..`, without following links: a link is [`EntryKind::Symlink`],
    /// a regular file carries its size. A name that is not UTF-8 is shown
    /// lossily with `lossy` set (and never opened).
    fn entries(&self) -> Result<Vec<Entry>, AccessError>;

    /// The subdirectory `name`: a link is [`AccessError::Symlink`],
    /// anything else not a directory [`AccessError::NotDirectory`], absent
    /// [`AccessError::NotFound`].
    fn open_dir(&self, name: &str) -> Result<Box<dyn SourceDir>, AccessError>;

    /// The regular file `name`: a link is [`AccessError::Symlink`],
    /// anything but a regular file [`AccessError::NotRegular`] (looked at
    /// before it is opened: a device is never opened), absent
    /// [`AccessError::NotFound`]. Its identity is that of the handle
    /// opened (what [`SourceFile::id`] returns), so opening is the stat.
    fn open_file(&self, name: &str) -> Result<Box<dyn SourceFile>, AccessError>;

    /// Where the link `name` points, for messages only (never followed).
    /// `None` when the source does not read links.
    fn link_target(&self, _name: &str) -> Option<String> {
        None
    }

    /// Whether the link `name` leads to a directory (looked at, never
    /// opened): a scan reports such a link as hiding backups. `false` when
    /// the source cannot tell without following it.
    fn link_is_dir(&self, _name: &str) -> bool {
        false
    }
}

/// A regular file of a source, held open.
pub trait SourceFile: Send + Sync + Debug {
    /// The identity of this handle as it was opened: size, modification
    /// time, inode (an NFS fileid). A journal keys its proofs to it.
    fn id(&self) -> FileId;

    /// Share-relative path of the file.
    fn rel(&self) -> &str;

    /// Read up to `buf.len()` bytes at `offset` (as `pread`): 0 at the end
    /// of the file. Readers call it with large buffers, sequentially for
    /// chunks, at random for a sha256file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}
