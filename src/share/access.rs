//! The one way into a local share: directory handles, no links, regular files only.
//!
//! [`Local`] is the first [`Source`] of the seam ([`super::source`]), and
//! every read of a local share goes through it: it holds the share root
//! as a directory handle and opens everything relative to it, never
//! following a symbolic link at any step (`openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS`, or `O_NOFOLLOW` one component at a time where the
//! kernel has no `openat2`). Files are opened with `O_NONBLOCK` and their
//! handle `fstat`ed: anything but a regular file (a FIFO, a device, a
//! socket) is refused before a byte is read, so nothing on the share can
//! block `cbr` or lead it out of the share. Paths given to it are
//! share-relative and made of validated components ([`check_name`]): no
//! `/`, no `..`, no NUL, not empty.
//!
//! Nothing else in the crate opens share paths (clippy's
//! `disallowed-methods` in `clippy.toml` enforces it). The kinds shared by
//! every source (its errors, entries, file identity, name checks) are
//! defined here too.
#![allow(clippy::disallowed_methods)] // the gate those lints point to

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::source::{AccessError, Entry, EntryKind, FileId, check_name, components, join};
use super::source::{Source, SourceDir, SourceFile};

/// What a directory entry of this type is.
fn kind_of(ft: FileType) -> EntryKind {
    match ft {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

fn kind_name(ft: FileType) -> &'static str {
    match ft {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "a special file",
    }
}

/// A local share root, held open.
#[derive(Debug, Clone)]
pub struct Local {
    root: PathBuf,
    fd: Arc<OwnedFd>,
    /// (device, inode) of the root, to recognise it from elsewhere.
    id: (u64, u64),
}

static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK
}

fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY
}

/// A regular file of a local share, opened and checked.
#[derive(Debug)]
struct LocalFile {
    file: File,
    /// Share-relative path.
    rel: String,
    id: FileId,
}

impl SourceFile for LocalFile {
    fn id(&self) -> FileId {
        self.id
    }
    fn rel(&self) -> &str {
        &self.rel
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }
}

/// A directory of a local share, held open.
#[derive(Debug)]
struct LocalDir {
    fd: OwnedFd,
    /// Share-relative path ("" for the root).
    rel: String,
}

impl Local {
    /// Open the share root. The root itself may be reached through links
    /// (an operator's mount path); nothing beneath it is.
    pub fn open(root: PathBuf) -> Result<Local, AccessError> {
        let shown = root.display().to_string();
        let fd = rustix::fs::open(
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => AccessError::NotFound {
                path: shown.clone(),
            },
            rustix::io::Errno::NOTDIR => AccessError::NotDirectory {
                path: shown.clone(),
            },
            e => AccessError::Io {
                path: shown.clone(),
                source: e.into(),
            },
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| AccessError::Io {
            path: shown,
            source: e.into(),
        })?;
        Ok(Local {
            root,
            fd: Arc::new(fd),
            id: (st.st_dev, st.st_ino),
        })
    }

    /// Open `rel` beneath the root with `flags`, never following a link.
    fn open_beneath(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, AccessError> {
        let parts = components(rel)?;
        if parts.is_empty() {
            return rustix::io::fcntl_dupfd_cloexec(self.fd.as_fd(), 0).map_err(|e| {
                AccessError::Io {
                    path: rel.to_string(),
                    source: e.into(),
                }
            });
        }
        let joined = parts.join("/");
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            match rustix::fs::openat2(
                self.fd.as_fd(),
                joined.as_str(),
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => return Ok(fd),
                Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed)
                }
                Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(self.classify(&parts, e)),
            }
        }
        // One component at a time, O_NOFOLLOW at each.
        let mut cur: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let f = if last { flags } else { dir_flags() };
            let dirfd = cur.as_ref().map_or(self.fd.as_fd(), |c| c.as_fd());
            let next = rustix::fs::openat(dirfd, *part, f, Mode::empty())
                .map_err(|e| self.classify(&parts, e))?;
            cur = Some(next);
        }
        cur.ok_or_else(|| AccessError::BadName {
            path: rel.to_string(),
            reason: "an empty path",
        })
    }

    /// Turn an open error into what it means, looking (without following)
    /// at each component to name the one at fault.
    fn classify(&self, parts: &[&str], e: rustix::io::Errno) -> AccessError {
        let full = parts.join("/");
        let mut path = String::new();
        for part in parts {
            path = join(&path, part);
            match rustix::fs::statat(self.fd.as_fd(), path.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Err(rustix::io::Errno::NOENT) => return AccessError::NotFound { path },
                Err(_) => break,
                Ok(st) => {
                    let ft = FileType::from_raw_mode(st.st_mode);
                    if ft == FileType::Symlink {
                        return AccessError::Symlink { path };
                    }
                    if path != full && ft != FileType::Directory {
                        return AccessError::NotDirectory { path };
                    }
                }
            }
        }
        match e {
            rustix::io::Errno::NOENT => AccessError::NotFound { path: full },
            rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => {
                AccessError::Symlink { path: full }
            }
            rustix::io::Errno::NOTDIR => AccessError::NotDirectory { path: full },
            e => AccessError::Io {
                path: full,
                source: e.into(),
            },
        }
    }

    fn contains_depth(&self, path: &Path, depth: usize) -> bool {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            match std::env::current_dir() {
                Ok(d) => d.join(path),
                Err(_) => return true, // cannot tell: refuse
            }
        };
        // A dangling link as the last component: where it points counts
        // (a writer following it would create its target).
        if depth < 8
            && let Ok(m) = std::fs::symlink_metadata(&abs)
            && m.file_type().is_symlink()
            && let Ok(t) = std::fs::read_link(&abs)
        {
            let target = match abs.parent() {
                Some(dir) if t.is_relative() => dir.join(t),
                _ => t,
            };
            if self.contains_depth(&target, depth + 1) {
                return true;
            }
        }
        // The deepest existing ancestor, with every link and `..`
        // resolved; then its real ancestors, compared by device and inode.
        let mut cur = Some(abs.as_path());
        while let Some(p) = cur {
            if let Ok(real) = std::fs::canonicalize(p) {
                return real.ancestors().any(|a| {
                    rustix::fs::stat(a).is_ok_and(|st| (st.st_dev, st.st_ino) == self.id)
                });
            }
            cur = p.parent();
        }
        false
    }
}

impl Source for Local {
    fn display(&self) -> String {
        self.root.display().to_string()
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn root_dir(&self) -> Result<Box<dyn SourceDir>, AccessError> {
        let fd =
            rustix::io::fcntl_dupfd_cloexec(self.fd.as_fd(), 0).map_err(|e| AccessError::Io {
                path: self.root.display().to_string(),
                source: e.into(),
            })?;
        Ok(Box::new(LocalDir {
            fd,
            rel: String::new(),
        }))
    }

    /// In one `openat2` (or `O_NOFOLLOW` a component at a time).
    fn open_dir(&self, rel: &str) -> Result<Box<dyn SourceDir>, AccessError> {
        let fd = self.open_beneath(rel, dir_flags())?;
        Ok(Box::new(LocalDir {
            fd,
            rel: components(rel)?.join("/"),
        }))
    }

    /// In one `openat2` (or `O_NOFOLLOW` a component at a time).
    fn open_file(&self, rel: &str) -> Result<Box<dyn SourceFile>, AccessError> {
        let shown = components(rel)?.join("/");
        // Look before opening: a device node is never opened (opening some
        // has side effects); the fstat after the open still decides.
        not_special(self.fd.as_fd(), shown.as_str(), &shown)?;
        let fd = self.open_beneath(rel, file_flags())?;
        Ok(Box::new(regular(fd, shown)?))
    }

    /// Whether `path` (which need not exist) lies inside the share: some
    /// existing ancestor of it is the share root (by device and inode, so
    /// another mount or a link to the same directory counts too).
    fn contains(&self, path: &Path) -> bool {
        self.contains_depth(path, 0)
    }

    fn is_root(&self, dev: u64, ino: u64) -> bool {
        self.id == (dev, ino)
    }
}

/// Refuse a FIFO, device or socket by a look (`fstatat`, no link
/// followed at the end) before anything opens it. Errors of the look are
/// left to the open, which reports them.
fn not_special(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &str,
    shown: &str,
) -> Result<(), AccessError> {
    if let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        let ft = FileType::from_raw_mode(st.st_mode);
        if matches!(
            ft,
            FileType::Fifo | FileType::Socket | FileType::CharacterDevice | FileType::BlockDevice
        ) {
            return Err(AccessError::NotRegular {
                path: shown.to_string(),
                kind: kind_name(ft),
            });
        }
    }
    Ok(())
}

/// A file opened outside any share (a test's, a tool's), checked to be a
/// regular file, as a source file ([`super::ShareFile::from_std`]).
pub(super) fn regular_file(file: File, rel: String) -> Result<Box<dyn SourceFile>, AccessError> {
    regular(OwnedFd::from(file), rel).map(|f| Box::new(f) as Box<dyn SourceFile>)
}

fn regular(fd: OwnedFd, rel: String) -> Result<LocalFile, AccessError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| AccessError::Io {
        path: rel.clone(),
        source: e.into(),
    })?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Err(AccessError::NotRegular {
            path: rel,
            kind: kind_name(ft),
        });
    }
    Ok(LocalFile {
        file: File::from(fd),
        rel,
        id: FileId {
            size: st.st_size.max(0) as u64,
            inode: st.st_ino,
            mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
        },
    })
}

impl SourceDir for LocalDir {
    fn rel(&self) -> &str {
        &self.rel
    }

    /// Sizes come from `fstatat` relative to this handle.
    fn entries(&self) -> Result<Vec<Entry>, AccessError> {
        let io = |e: rustix::io::Errno| AccessError::Io {
            path: if self.rel.is_empty() {
                ".".into()
            } else {
                self.rel.clone()
            },
            source: e.into(),
        };
        let mut dir = rustix::fs::Dir::read_from(&self.fd).map_err(io)?;
        let mut out = Vec::new();
        while let Some(e) = dir.read() {
            let e = e.map_err(io)?;
            let raw = e.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let (name, lossy) = match std::str::from_utf8(raw) {
                Ok(s) => (s.to_string(), false),
                Err(_) => (String::from_utf8_lossy(raw).into_owned(), true),
            };
            let mut kind = kind_of(e.file_type());
            let mut size = 0;
            if matches!(e.file_type(), FileType::Unknown) || kind == EntryKind::File {
                match rustix::fs::statat(&self.fd, e.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => {
                        kind = kind_of(FileType::from_raw_mode(st.st_mode));
                        if kind == EntryKind::File {
                            size = st.st_size.max(0) as u64;
                        }
                    }
                    Err(rustix::io::Errno::NOENT) => continue, // gone meanwhile
                    Err(e) => return Err(io(e)),
                }
            }
            out.push(Entry {
                name,
                kind,
                size,
                lossy,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn open_dir(&self, name: &str) -> Result<Box<dyn SourceDir>, AccessError> {
        let path = self.path_of(name);
        check_name(name).map_err(|reason| AccessError::BadName {
            path: path.clone(),
            reason,
        })?;
        let fd = rustix::fs::openat(&self.fd, name, dir_flags(), Mode::empty())
            .map_err(|e| self.classify(name, e))?;
        Ok(Box::new(LocalDir { fd, rel: path }))
    }

    fn open_file(&self, name: &str) -> Result<Box<dyn SourceFile>, AccessError> {
        let path = self.path_of(name);
        check_name(name).map_err(|reason| AccessError::BadName {
            path: path.clone(),
            reason,
        })?;
        not_special(self.fd.as_fd(), name, &path)?;
        let fd = rustix::fs::openat(&self.fd, name, file_flags(), Mode::empty())
            .map_err(|e| self.classify(name, e))?;
        Ok(Box::new(regular(fd, path)?))
    }

    fn link_target(&self, name: &str) -> Option<String> {
        rustix::fs::readlinkat(&self.fd, name, Vec::new())
            .ok()
            .map(|t| {
                OsStr::from_bytes(t.as_bytes())
                    .to_string_lossy()
                    .into_owned()
            })
    }

    /// Looks at the target's inode (stat) without opening anything.
    fn link_is_dir(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::empty())
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    }
}

impl LocalDir {
    fn path_of(&self, name: &str) -> String {
        join(&self.rel, name)
    }

    fn classify(&self, name: &str, e: rustix::io::Errno) -> AccessError {
        let path = self.path_of(name);
        if let Ok(st) = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft == FileType::Symlink {
                return AccessError::Symlink { path };
            }
        }
        match e {
            rustix::io::Errno::NOENT => AccessError::NotFound { path },
            rustix::io::Errno::LOOP => AccessError::Symlink { path },
            rustix::io::Errno::NOTDIR => AccessError::NotDirectory { path },
            e => AccessError::Io {
                path,
                source: e.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::Share;

    #[test]
    fn names_must_be_one_component() {
        for bad in ["", ".", "..", "a/b", "/abs", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("backup-00001").is_ok());
        assert!(components("../x").is_err());
        assert!(components("/etc").is_err());
        assert!(components("a/../b").is_err());
        assert_eq!(components("a//b/./c/").unwrap(), vec!["a", "b", "c"]);
    }

    #[test]
    fn links_fifos_and_escapes_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("share");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), b"hello").unwrap();
        std::fs::write(t.path().join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), root.join("d/link")).unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("dirlink")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("d/fifo").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let s = Share::open(&root).unwrap();
        assert_eq!(s.read("d/f", 100).unwrap(), b"hello");
        assert!(matches!(
            s.open_file("d/link"),
            Err(AccessError::Symlink { .. })
        ));
        assert!(matches!(
            s.open_file("dirlink/outside"),
            Err(AccessError::Symlink { .. })
        ));
        assert!(matches!(
            s.open_file("d/fifo"),
            Err(AccessError::NotRegular { .. })
        ));
        assert!(matches!(
            s.open_file("../outside"),
            Err(AccessError::BadName { .. })
        ));
        assert!(matches!(
            s.open_file("d"),
            Err(AccessError::NotRegular { .. })
        ));
        assert!(matches!(
            s.read("d/f", 2),
            Err(AccessError::TooLarge { .. })
        ));
        let d = s.open_dir("d").unwrap();
        assert!(matches!(
            d.open_file("link"),
            Err(AccessError::Symlink { .. })
        ));
        let names: Vec<(String, EntryKind)> = d
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("f".into(), EntryKind::File),
                ("fifo".into(), EntryKind::Other),
                ("link".into(), EntryKind::Symlink)
            ]
        );
        assert!(s.contains(&root.join("d/new-file")));
        assert!(s.contains(&root.join("dirlink/share/x")));
        assert!(!s.contains(&t.path().join("elsewhere")));
        // A link from outside to a directory inside the share.
        std::os::unix::fs::symlink(root.join("d"), t.path().join("sublink")).unwrap();
        assert!(s.contains(&t.path().join("sublink/img.raw")));
        // A dangling link whose target would be created inside the share.
        std::os::unix::fs::symlink(root.join("d/new.sqlite"), t.path().join("dangling")).unwrap();
        assert!(s.contains(&t.path().join("dangling")));
        // `..` out of the share is outside.
        assert!(!s.contains(&root.join("d/../../x.raw")));
    }
}
