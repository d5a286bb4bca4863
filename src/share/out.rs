//! The one way out: every file cbr creates or writes goes through here —
//! restore images, per-project scripts, journals (and their `-wal`/`-shm`).
//!
//! [`access`](super::access) is the gate in; this is its mirror. A
//! [`Gate`] knows the shares that must never be written (none, one, or
//! every share a journal names) and:
//!
//! - refuses a target inside a share after resolving every link and `..`
//!   (a final link, a linked parent, a dangling link: [`Share::contains`]);
//! - opens directories and then creates files *relative to the handle*,
//!   checking that the handle itself is not under a share (its `..` chain,
//!   by device and inode), creating new files with `O_CREAT | O_EXCL |
//!   O_NOFOLLOW` and putting them in place with `renameat` — which replaces
//!   a link rather than writing through it;
//! - opens existing outputs with `O_NONBLOCK`, and refuses FIFOs, sockets
//!   and devices where a regular file is needed, at once;
//! - vets a journal's path, its parent, and its `-wal`/`-shm` before
//!   SQLite opens them itself, and opens readers read-only.
//!
//! Every error names the file and the step. clippy's `disallowed-methods`
//! (clippy.toml) forbids the ways around it elsewhere.
#![allow(clippy::disallowed_methods)] // the gate those lints point to

use super::Share;
use rusqlite::{Connection, OpenFlags};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Why cbr will not (or could not) write something.
#[derive(Debug, Error)]
pub enum OutError {
    #[error(
        "{what} {path} is inside the share {share}: cbr never writes to the share; \
         keep it elsewhere"
    )]
    Inside {
        what: String,
        path: String,
        share: String,
    },
    #[error("{what} {path} is {kind}: {why}")]
    Kind {
        what: String,
        path: String,
        kind: &'static str,
        why: &'static str,
    },
    #[error("{what} {path} does not exist")]
    Missing { what: String, path: String },
    #[error("{what} {path}: cannot {step}: {source}")]
    Io {
        what: String,
        path: String,
        step: &'static str,
        source: std::io::Error,
    },
}

fn io(what: &str, path: &Path, step: &'static str) -> impl FnOnce(rustix::io::Errno) -> OutError {
    let (what, path) = (what.to_string(), path.display().to_string());
    move |e| OutError::Io {
        what,
        path,
        step,
        source: e.into(),
    }
}

fn kind_name(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "a special file",
    }
}

/// The shares nothing may be written to.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    shares: Vec<Share>,
}

/// A directory outside every share, held open: files are created in it
/// relative to the handle.
#[derive(Debug, Clone)]
pub struct OutDir {
    fd: Arc<OwnedFd>,
    pub path: PathBuf,
    what: String,
}

/// A file created new (`O_EXCL`) in an [`OutDir`], removed on drop unless
/// persisted under its final name.
#[derive(Debug)]
pub struct NewFile {
    pub file: File,
    /// Its path (for a signal handler that must remove it).
    pub path: PathBuf,
    name: String,
    dir: OutDir,
    keep: bool,
}

/// What `restore --output` writes to.
#[derive(Debug)]
pub enum Target {
    /// A regular file (new or replaced): written beside it, renamed over it.
    File { dir: OutDir, name: String },
    /// A block device, opened for writing in place.
    Device(File),
}

/// A journal path vetted for SQLite to open.
#[derive(Debug, Clone)]
pub struct JournalPath {
    /// The path SQLite is given: parent resolved, final link resolved.
    pub path: PathBuf,
    /// As the operator named it (for messages).
    pub shown: PathBuf,
    pub exists: bool,
    has_wal: bool,
    has_shm: bool,
}

impl Gate {
    /// A gate that knows no share (still never follows a final link when
    /// creating, nor opens a FIFO or device where a file is wanted).
    pub fn none() -> Gate {
        Gate::default()
    }

    pub fn new(share: &Share) -> Gate {
        Gate {
            shares: vec![share.clone()],
        }
    }

    /// Also guard `share`.
    pub fn add(&mut self, share: Share) {
        self.shares.push(share);
    }

    /// Refuse `path` inside any guarded share (every link and `..`
    /// resolved, a dangling final link followed to where it would create).
    pub fn refuse_inside(&self, what: &str, path: &Path) -> Result<(), OutError> {
        for s in &self.shares {
            if s.contains(path) {
                return Err(OutError::Inside {
                    what: what.to_string(),
                    path: path.display().to_string(),
                    share: s.root.display().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Refuse a directory handle that lies under a guarded share (its
    /// `..` chain, compared by device and inode).
    fn refuse_handle(&self, what: &str, path: &Path, fd: BorrowedFd<'_>) -> Result<(), OutError> {
        if self.shares.is_empty() {
            return Ok(());
        }
        let mut cur = rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(io(what, path, "look at"))?;
        for _ in 0..4096 {
            let st = rustix::fs::fstat(&cur).map_err(io(what, path, "look at"))?;
            if let Some(s) = self.shares.iter().find(|s| s.is_root(st.st_dev, st.st_ino)) {
                return Err(OutError::Inside {
                    what: what.to_string(),
                    path: path.display().to_string(),
                    share: s.root.display().to_string(),
                });
            }
            let up = rustix::fs::openat(
                &cur,
                "..",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io(what, path, "look at the parents of"))?;
            let ust = rustix::fs::fstat(&up).map_err(io(what, path, "look at"))?;
            if (ust.st_dev, ust.st_ino) == (st.st_dev, st.st_ino) {
                return Ok(());
            }
            cur = up;
        }
        Ok(())
    }

    /// Open the directory `path` (which must exist), outside every share.
    pub fn dir(&self, what: &str, path: &Path) -> Result<OutDir, OutError> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        self.refuse_inside(what, path)?;
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => OutError::Missing {
                what: what.to_string(),
                path: path.display().to_string(),
            },
            e => io(what, path, "open the directory")(e),
        })?;
        self.refuse_handle(what, path, fd.as_fd())?;
        Ok(OutDir {
            fd: Arc::new(fd),
            path: path.to_owned(),
            what: what.to_string(),
        })
    }

    /// Open the directory `path`, creating what is missing of it one
    /// component at a time, each relative to a handle already known to be
    /// outside every share, never following a link it did not find there.
    pub fn create_dir_all(&self, what: &str, path: &Path) -> Result<OutDir, OutError> {
        self.refuse_inside(what, path)?;
        let abs = std::path::absolute(path).map_err(|source| OutError::Io {
            what: what.to_string(),
            path: path.display().to_string(),
            step: "resolve",
            source,
        })?;
        // The deepest existing ancestor, then each missing component.
        let mut missing: Vec<&std::ffi::OsStr> = Vec::new();
        let mut base = abs.as_path();
        let dir = loop {
            match self.dir(what, base) {
                Ok(d) => break d,
                Err(OutError::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
            match (base.parent(), base.components().next_back()) {
                (Some(p), Some(Component::Normal(n))) => {
                    missing.push(n);
                    base = p;
                }
                _ => {
                    return Err(OutError::Missing {
                        what: what.to_string(),
                        path: path.display().to_string(),
                    });
                }
            }
        };
        let mut dir = dir;
        for name in missing.into_iter().rev() {
            let sub = dir.path.join(name);
            match rustix::fs::mkdirat(&*dir.fd, name, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(io(what, &sub, "create the directory")(e)),
            }
            let fd = rustix::fs::openat(
                &*dir.fd,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io(what, &sub, "open the directory just created"))?;
            dir = OutDir {
                fd: Arc::new(fd),
                path: sub,
                what: what.to_string(),
            };
        }
        Ok(dir)
    }

    /// The parent directory and final name of `path`.
    fn split(&self, what: &str, path: &Path) -> Result<(OutDir, String), OutError> {
        let name = match path.file_name().map(|n| n.to_str()) {
            Some(Some(n)) => n.to_string(),
            _ => {
                return Err(OutError::Kind {
                    what: what.to_string(),
                    path: path.display().to_string(),
                    kind: "not a file name",
                    why: "name a file (UTF-8, not ending in '/' or '..')",
                });
            }
        };
        let parent = path.parent().unwrap_or(Path::new("."));
        Ok((self.dir(what, parent)?, name))
    }

    /// Where `restore --output` writes: a new or replaced regular file, or
    /// an existing block device (with `force`). A FIFO, socket, character
    /// device or directory is refused at once; so is an existing file
    /// without `force`.
    pub fn target(&self, what: &str, path: &Path, force: bool) -> Result<Target, OutError> {
        self.refuse_inside(what, path)?;
        let shown = path.display().to_string();
        let st = match rustix::fs::stat(path) {
            Ok(st) => Some(st),
            Err(rustix::io::Errno::NOENT) => None,
            Err(e) => return Err(io(what, path, "look at")(e)),
        };
        let Some(st) = st else {
            let (dir, name) = self.split(what, path)?;
            return Ok(Target::File { dir, name });
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        let refuse = |why| OutError::Kind {
            what: what.to_string(),
            path: shown.clone(),
            kind: kind_name(ft),
            why,
        };
        match ft {
            FileType::RegularFile | FileType::BlockDevice if !force => Err(refuse(
                "it exists: give --force to write the image into it (its content is then replaced)",
            )),
            FileType::RegularFile => {
                let (dir, name) = self.split(what, path)?;
                Ok(Target::File { dir, name })
            }
            FileType::BlockDevice => {
                let fd = rustix::fs::open(
                    path,
                    OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
                    Mode::empty(),
                )
                .map_err(io(what, path, "open for writing"))?;
                let st = rustix::fs::fstat(&fd).map_err(io(what, path, "look at"))?;
                let ft = FileType::from_raw_mode(st.st_mode);
                if ft != FileType::BlockDevice {
                    return Err(OutError::Kind {
                        what: what.to_string(),
                        path: shown,
                        kind: kind_name(ft),
                        why: "it changed while cbr opened it",
                    });
                }
                Ok(Target::Device(File::from(fd)))
            }
            FileType::Directory => Err(refuse("an image is written to a file or a block device")),
            _ => Err(refuse(
                "an image is written to a regular file or a block device, never to a FIFO, \
                 socket or character device",
            )),
        }
    }

    /// Write `bytes` to `path`, replacing a file there (written beside it,
    /// renamed over it: a link there is replaced, never written through).
    pub fn replace(&self, what: &str, path: &Path, bytes: &[u8]) -> Result<(), OutError> {
        self.replace_with(what, path, &mut |w| w.write_all(bytes))
    }

    /// [`Gate::replace`], the content written by `write` as it comes (a
    /// runbook of a million steps is never held whole). Nothing is left
    /// at `path` when `write` fails: the file beside it is removed.
    pub fn replace_with(
        &self,
        what: &str,
        path: &Path,
        write: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), OutError> {
        use std::io::Write;
        self.refuse_inside(what, path)?;
        let (dir, name) = self.split(what, path)?;
        if let Ok(st) = rustix::fs::statat(&*dir.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            let ft = FileType::from_raw_mode(st.st_mode);
            if !matches!(ft, FileType::RegularFile | FileType::Symlink) {
                return Err(OutError::Kind {
                    what: what.to_string(),
                    path: path.display().to_string(),
                    kind: kind_name(ft),
                    why: "cbr replaces only regular files",
                });
            }
        }
        let mut f = dir.create_temp(&name)?;
        let written = {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut f.file);
            write(&mut w).and_then(|()| w.flush())
        };
        written.map_err(|source| OutError::Io {
            what: what.to_string(),
            path: f.path.display().to_string(),
            step: "write",
            source,
        })?;
        f.persist(&name)
    }

    /// Vet a journal path for SQLite: it, its `-wal` and `-shm` outside
    /// every share (links resolved), no link in place of a `-wal`/`-shm`,
    /// a regular file if it exists. `create`: make its directory (a
    /// writer); else it must exist (a reader never creates it).
    pub fn journal(&self, path: &Path, create: bool) -> Result<JournalPath, OutError> {
        const WHAT: &str = "journal";
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            self.refuse_inside(WHAT, Path::new(&p))?;
        }
        let name = path.file_name().ok_or_else(|| OutError::Kind {
            what: WHAT.into(),
            path: path.display().to_string(),
            kind: "not a file name",
            why: "name a file for the journal",
        })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = if create {
            self.create_dir_all(WHAT, parent)?
        } else {
            match self.dir(WHAT, parent) {
                Err(OutError::Missing { .. }) => {
                    return Err(OutError::Missing {
                        what: WHAT.into(),
                        path: path.display().to_string(),
                    });
                }
                r => r?,
            }
        };
        let canon_parent = std::fs::canonicalize(&dir.path).map_err(|source| OutError::Io {
            what: WHAT.into(),
            path: dir.path.display().to_string(),
            step: "resolve the directory of",
            source,
        })?;
        let mut real = canon_parent.join(name);
        let look = |p: &Path| look_nofollow(WHAT, p);
        if look(&real)? == Some(FileType::Symlink) {
            // The operator's link: where it leads is what counts.
            real = std::fs::canonicalize(&real).map_err(|_| OutError::Kind {
                what: WHAT.into(),
                path: path.display().to_string(),
                kind: "a dangling symbolic link",
                why: "SQLite would create the file it points to; name the journal itself",
            })?;
            self.refuse_inside(WHAT, &real)?;
        }
        let exists = match look(&real)? {
            None => false,
            Some(FileType::RegularFile) => true,
            Some(ft) => {
                return Err(OutError::Kind {
                    what: WHAT.into(),
                    path: path.display().to_string(),
                    kind: kind_name(ft),
                    why: "a journal is a regular file",
                });
            }
        };
        if !exists && !create {
            return Err(OutError::Missing {
                what: WHAT.into(),
                path: path.display().to_string(),
            });
        }
        let (has_wal, has_shm) = self.journal_sidecars(&real)?;
        Ok(JournalPath {
            path: real,
            shown: path.to_owned(),
            exists,
            has_wal,
            has_shm,
        })
    }

    /// Whether the journal's `-wal` and `-shm` exist (regular files);
    /// anything else in their place is refused, as is either inside a share.
    fn journal_sidecars(&self, real: &Path) -> Result<(bool, bool), OutError> {
        const WHAT: &str = "journal";
        let (mut has_wal, mut has_shm) = (false, false);
        for suffix in ["-wal", "-shm"] {
            let mut p = real.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            self.refuse_inside(WHAT, &p)?;
            match look_nofollow(WHAT, &p)? {
                None => {}
                Some(FileType::RegularFile) => {
                    has_wal |= suffix == "-wal";
                    has_shm |= suffix == "-shm";
                }
                Some(ft) => {
                    return Err(OutError::Kind {
                        what: WHAT.into(),
                        path: p.display().to_string(),
                        kind: kind_name(ft),
                        why: "SQLite would write through it; remove it",
                    });
                }
            }
        }
        Ok((has_wal, has_shm))
    }
}

impl OutDir {
    /// A file with no name in this directory, for scratch data a run
    /// reads back (a plan's spill): `O_TMPFILE` where the file system has
    /// it, else a new temporary name unlinked at once. Gone when closed,
    /// whatever ends the run; never an existing file, never through a link.
    pub fn anonymous(&self) -> Result<File, OutError> {
        let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY;
        match rustix::fs::openat(
            &*self.fd,
            ".",
            flags | OFlags::TMPFILE,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(
                rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL,
            ) => {}
            Err(e) => return Err(io(&self.what, &self.path, "create a scratch file in")(e)),
        }
        let tmp = format!(
            ".cbr-scratch-{}-{}",
            std::process::id(),
            SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let fd = rustix::fs::openat(
            &*self.fd,
            tmp.as_str(),
            flags | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io(
            &self.what,
            &self.path.join(&tmp),
            "create a scratch file",
        ))?;
        let _ = rustix::fs::unlinkat(&*self.fd, tmp.as_str(), AtFlags::empty());
        Ok(File::from(fd))
    }

    /// Create a new temporary file for `name` in this directory
    /// (`O_EXCL | O_NOFOLLOW`: never an existing file, never through a link).
    pub fn create_temp(&self, name: &str) -> Result<NewFile, OutError> {
        let tmp = format!(".{name}.cbr-partial-{}", std::process::id());
        let path = self.path.join(&tmp);
        let fd = rustix::fs::openat(
            &*self.fd,
            tmp.as_str(),
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC
                | OFlags::NOCTTY,
            Mode::from_raw_mode(0o666),
        )
        .map_err(io(&self.what, &path, "create a temporary file"))?;
        Ok(NewFile {
            file: File::from(fd),
            path,
            name: tmp,
            dir: self.clone(),
            keep: false,
        })
    }
}

impl NewFile {
    /// Sync, and rename onto `name` in the same directory (replacing what
    /// is there, a link included, never writing through it).
    pub fn persist(mut self, name: &str) -> Result<(), OutError> {
        let target = self.dir.path.join(name);
        self.file.sync_all().map_err(|source| OutError::Io {
            what: self.dir.what.clone(),
            path: self.path.display().to_string(),
            step: "sync",
            source,
        })?;
        rustix::fs::renameat(&*self.dir.fd, self.name.as_str(), &*self.dir.fd, name)
            .map_err(io(&self.dir.what, &target, "rename the finished file to"))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = rustix::fs::unlinkat(&*self.dir.fd, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Scratch files made by this process ([`OutDir::anonymous`]).
static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `file:` URI of a path (for SQLite's `immutable` parameter).
fn uri(path: &Path) -> String {
    let mut s = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'%' | b'?' | b'#' => s.push_str(&format!("%{b:02X}")),
            b if b.is_ascii() => s.push(*b as char),
            b => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}

impl JournalPath {
    /// Open for writing (SQLite creates the file if missing; never through
    /// a link: `SQLITE_OPEN_NOFOLLOW`).
    pub fn open_rw(&self) -> rusqlite::Result<Connection> {
        Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
    }

    /// The `-shm` SQLite would create to read this journal: a `-wal`
    /// without its `-shm` (a reader must refuse it rather than open it).
    pub fn shm_a_reader_would_create(&self) -> Option<PathBuf> {
        (self.exists && self.has_wal && !self.has_shm).then(|| {
            let mut p = self.path.as_os_str().to_owned();
            p.push("-shm");
            PathBuf::from(p)
        })
    }

    /// Open read-only: never created, its mode never changed, its `-wal`
    /// never checkpointed nor removed. Without a `-wal` it is opened
    /// `immutable` (no `-shm` created either).
    pub fn open_ro(&self) -> rusqlite::Result<Connection> {
        let ro = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        if self.has_wal {
            Connection::open_with_flags(&self.path, ro)
        } else {
            Connection::open_with_flags(
                format!("{}?immutable=1", uri(&self.path)),
                ro | OpenFlags::SQLITE_OPEN_URI,
            )
        }
    }
}

/// What `p` is, without following a link; `None` when it does not exist.
fn look_nofollow(what: &str, p: &Path) -> Result<Option<FileType>, OutError> {
    match rustix::fs::lstat(p) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(io(what, p, "look at")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes_what_sqlite_would_read_as_syntax() {
        assert_eq!(uri(Path::new("/a b/c?d#e%f")), "file:/a b/c%3Fd%23e%25f");
    }
}
