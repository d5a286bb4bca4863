//! Mount, walk and read an NFSv3 export, read-only.
//!
//! Paths are share-relative and validated like a local share's
//! ([`crate::share::access::components`]); each component is looked up on
//! its own and its type taken from the attributes the server returns: a
//! symbolic link at any step is refused (never followed, READLINK never
//! sent), anything but a directory in the middle of a path is refused, and
//! only regular files are read. A file is read with several READs in flight
//! on one connection, each of the server's preferred size (FSINFO), matched
//! by XID. A dropped connection is retried on a new one a bounded number of
//! times, then reported.

use super::NfsError;
use super::proto::{self, Attr, Ftype, Proc};
use super::rpc::{Conn, Cred, Settings};
use super::url::NfsUrl;
use crate::share::source::{check_name, components, join};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest READ cbr asks for, whatever the server offers.
const MAX_RSIZE: u32 = 1 << 20;
/// Bytes of READs in flight per file.
const WINDOW_BYTES: u64 = 4 << 20;
/// Attempts of a call across dropped connections (with the backoff
/// between them, about 8 s: a server restart fits in it).
const ATTEMPTS: u32 = 6;
/// Entries of one directory, at most.
const MAX_ENTRIES: usize = 50_000_000;

#[derive(Debug)]
struct Inner {
    shown: String,
    settings: Settings,
    nfs_addr: SocketAddr,
    root: Vec<u8>,
    rsize: u32,
    concurrency: usize,
    pool: Mutex<Vec<Conn>>,
}

/// An export (or a directory beneath it) on an NFS server.
#[derive(Debug, Clone)]
pub struct NfsShare {
    inner: Arc<Inner>,
}

/// A directory entry, its type from the server's attributes.
#[derive(Debug, Clone)]
pub struct NfsEntry {
    pub name: String,
    pub ftype: Ftype,
    pub size: u64,
    /// The name is not valid UTF-8 (shown lossily; never opened).
    pub lossy: bool,
    pub fh: Option<Vec<u8>>,
    /// The attributes the listing returned (or a LOOKUP, when it had none).
    pub attr: Option<Attr>,
}

/// A regular file on the export, looked up and checked.
#[derive(Debug, Clone)]
pub struct NfsFile {
    pub rel: String,
    pub fh: Vec<u8>,
    pub size: u64,
    pub fileid: u64,
    pub mtime_ns: i128,
}

fn kind_name(t: Ftype) -> &'static str {
    match t {
        Ftype::Reg => "a file",
        Ftype::Dir => "a directory",
        Ftype::Lnk => "a symbolic link",
        Ftype::Fifo => "a FIFO",
        Ftype::Sock => "a socket",
        Ftype::Chr => "a character device",
        Ftype::Blk => "a block device",
    }
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(250u64 << attempt.min(4)));
}

/// The first connection failure that outlived its retries, in this process.
static LOST: Mutex<Option<String>> = Mutex::new(None);

/// Remember that the server could not be reached any more (after the
/// retries): whatever a command concluded rests on reads that failed.
fn note_lost(e: &NfsError) {
    if e.is_transient()
        && let Ok(mut l) = LOST.lock()
        && l.is_none()
    {
        *l = Some(e.to_string());
    }
}

/// Whether (and why) a server connection was lost for good during this
/// run (after which no call is retried any more: the run ends fast): the binary then exits 2 whatever the command found, so that a
/// scrub cut short is never an OK.
fn gave_up() -> bool {
    LOST.lock().map_or(true, |l| l.is_some())
}

pub fn connection_lost() -> Option<String> {
    LOST.lock().ok().and_then(|l| l.clone())
}

fn portmap(host: &str, prog: u32, s: &Settings) -> Result<u16, NfsError> {
    let addr = super::rpc::resolve(host, 111)?;
    let mut c = Conn::connect(addr, s)?;
    let body = c.call(Proc::PmapGetport.target(), &proto::getport_args(prog, 3))?;
    proto::getport_res(&body)
}

impl NfsShare {
    /// Mount `url` (MNT) and take the server's read size (FSINFO).
    pub fn open(url: &str) -> Result<NfsShare, NfsError> {
        let u = NfsUrl::parse(url)?;
        let settings = Settings {
            cred: Cred {
                uid: u.uid,
                gid: u.gid,
            },
            privileged: u.privileged,
            timeout: Duration::from_secs(u.timeout_s),
        };
        let nfsport = match u.nfsport {
            Some(p) => p,
            None => match portmap(&u.host, proto::NFS_PROG, &settings)? {
                0 => {
                    return Err(NfsError::Unsupported(format!(
                        "{} offers no NFSv3 (NFSv4-only servers are not supported)",
                        u.host
                    )));
                }
                p => p,
            },
        };
        let mountport = match u.mountport {
            Some(p) => p,
            None => match portmap(&u.host, proto::MOUNT_PROG, &settings)? {
                0 => {
                    return Err(NfsError::Unsupported(format!(
                        "{} offers no MOUNT v3 (NFSv4-only servers are not supported)",
                        u.host
                    )));
                }
                p => p,
            },
        };
        let maddr = super::rpc::resolve(&u.host, mountport)?;
        let (root, rest) = mount(&u, maddr, &settings)?;
        let nfs_addr = super::rpc::resolve(&u.host, nfsport)?;
        let conn = Conn::connect(nfs_addr, &settings)?;
        let mut share = NfsShare {
            inner: Arc::new(Inner {
                shown: u.display(),
                settings,
                nfs_addr,
                root,
                rsize: 64 << 10,
                concurrency: u.concurrency,
                pool: Mutex::new(vec![conn]),
            }),
        };
        let (rtmax, rtpref) =
            share.call(Proc::Fsinfo, &proto::fh_args(&share.inner.root), |b| {
                proto::fsinfo_res(b)
            })?;
        let pref = if rtpref == 0 { rtmax } else { rtpref };
        let rsize = pref.min(rtmax.max(1)).clamp(4096, MAX_RSIZE);
        // The rest of the path, below the mounted export.
        let root = if rest.is_empty() {
            share.inner.root.clone()
        } else {
            let (fh, a) = share.lookup(&rest.join("/"))?;
            if a.ftype != Ftype::Dir {
                return Err(NfsError::NotDirectory {
                    path: u.server_path(),
                });
            }
            fh
        };
        let inner = Inner {
            shown: u.display(),
            settings,
            nfs_addr,
            root,
            rsize,
            concurrency: u.concurrency,
            pool: Mutex::new(Vec::new()),
        };
        let old = std::mem::replace(&mut share.inner, Arc::new(inner));
        if let Ok(old) = Arc::try_unwrap(old)
            && let Ok(conns) = old.pool.into_inner()
            && let Ok(mut p) = share.inner.pool.lock()
        {
            p.extend(conns);
        }
        Ok(share)
    }

    /// The URL as shown (and as a journal key).
    pub fn shown(&self) -> &str {
        &self.inner.shown
    }

    pub fn rsize(&self) -> u32 {
        self.inner.rsize
    }

    /// Directories a walk keeps in flight (`concurrency=`).
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    fn take_conn(&self) -> Result<Conn, NfsError> {
        if let Some(c) = self.inner.pool.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(c);
        }
        Conn::connect(self.inner.nfs_addr, &self.inner.settings)
    }

    fn give_back(&self, c: Conn) {
        if let Ok(mut p) = self.inner.pool.lock() {
            p.push(c);
        }
    }

    /// Connections idle in the pool (for tests of the pool's accounting).
    pub fn pooled(&self) -> usize {
        self.inner.pool.lock().map_or(0, |p| p.len())
    }

    /// One call with its reply decoded by `f`; retried on a fresh
    /// connection when the connection fails.
    fn call<T>(
        &self,
        p: Proc,
        args: &super::xdr::Encoder,
        f: impl Fn(&[u8]) -> Result<T, NfsError>,
    ) -> Result<T, NfsError> {
        let mut attempt = 0;
        loop {
            let r = self
                .take_conn()
                .and_then(|mut c| c.call(p.target(), args).map(|b| (c, b)));
            match r {
                Ok((c, body)) => {
                    self.give_back(c);
                    match f(&body) {
                        Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS && !gave_up() => {}
                        r => {
                            if let Err(e) = &r {
                                note_lost(e);
                            }
                            return r;
                        }
                    }
                }
                Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS && !gave_up() => {}
                Err(e) => {
                    note_lost(&e);
                    return Err(e);
                }
            }
            backoff(attempt);
            attempt += 1;
        }
    }

    fn lookup_in(&self, dir: &[u8], name: &str, path: &str) -> Result<(Vec<u8>, Attr), NfsError> {
        self.call(Proc::Lookup, &proto::lookup_args(dir, name), |b| {
            proto::lookup_res(b, path).map_err(|e| match e {
                NfsError::Status { status: 2, .. } => NfsError::NotFound {
                    path: path.to_string(),
                },
                NfsError::Status { status: 20, .. } => NfsError::NotDirectory {
                    path: path.to_string(),
                },
                e => e,
            })
        })
    }

    /// The handle of the share's root directory.
    pub fn root_fh(&self) -> &[u8] {
        &self.inner.root
    }

    /// One component `name` of the directory `dir` (share-relative
    /// `dir_rel`): its handle and attributes; a bad name is refused before
    /// anything is sent.
    pub fn child(
        &self,
        dir: &[u8],
        dir_rel: &str,
        name: &str,
    ) -> Result<(Vec<u8>, Attr), NfsError> {
        let path = join(dir_rel, name);
        check_name(name).map_err(|reason| NfsError::BadName {
            path: path.clone(),
            reason,
        })?;
        self.lookup_in(dir, name, &path)
    }

    /// Look up a share-relative path one component at a time: a link at
    /// any step is refused, a non-directory in the middle too.
    pub fn lookup(&self, rel: &str) -> Result<(Vec<u8>, Attr), NfsError> {
        let parts = components(rel).map_err(|e| NfsError::BadName {
            path: rel.to_string(),
            reason: match e {
                crate::share::AccessError::BadName { reason, .. } => reason,
                _ => "not a share path",
            },
        })?;
        let mut fh = self.inner.root.clone();
        let mut attr = self.call(Proc::Getattr, &proto::fh_args(&fh), proto::getattr_res)?;
        let mut path = String::new();
        for part in parts {
            if attr.ftype != Ftype::Dir {
                return Err(NfsError::NotDirectory { path });
            }
            path = join(&path, part);
            let (h, a) = self.lookup_in(&fh, part, &path)?;
            if a.ftype == Ftype::Lnk {
                return Err(NfsError::Symlink { path });
            }
            fh = h;
            attr = a;
        }
        Ok((fh, attr))
    }

    /// A directory's handle.
    pub fn open_dir(&self, rel: &str) -> Result<Vec<u8>, NfsError> {
        let (fh, a) = self.lookup(rel)?;
        match a.ftype {
            Ftype::Dir => Ok(fh),
            _ => Err(NfsError::NotDirectory {
                path: rel.to_string(),
            }),
        }
    }

    /// A regular file, checked: anything else is refused before a READ.
    pub fn open_file(&self, rel: &str) -> Result<NfsFile, NfsError> {
        let (fh, a) = self.lookup(rel)?;
        let shown = components(rel).map(|p| p.join("/")).unwrap_or_default();
        if a.ftype != Ftype::Reg {
            return Err(NfsError::NotRegular {
                path: shown,
                kind: kind_name(a.ftype),
            });
        }
        Ok(NfsFile {
            rel: shown,
            fh,
            size: a.size,
            fileid: a.fileid,
            mtime_ns: a.mtime_ns,
        })
    }

    /// The entries of the directory `dir` (handle), READDIRPLUS, without
    /// `.` and `..`, sorted by name.
    pub fn entries(&self, dir: &[u8], rel: &str) -> Result<Vec<NfsEntry>, NfsError> {
        let mut out = Vec::new();
        let mut cookie = 0u64;
        let mut verf = [0u8; 8];
        let mut empty_pages = 0;
        loop {
            let page = self.call(
                Proc::Readdirplus,
                &proto::readdirplus_args(dir, cookie, verf, 128 << 10),
                |b| proto::readdirplus_res(b, if rel.is_empty() { "/" } else { rel }),
            )?;
            if page.entries.is_empty() && !page.eof {
                empty_pages += 1;
                if empty_pages > 3 {
                    return Err(NfsError::Garbled {
                        what: "READDIRPLUS",
                        reason: "pages without entries and without an end".into(),
                    });
                }
            }
            for e in page.entries {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                let (name, lossy) = match String::from_utf8(e.name) {
                    Ok(n) => {
                        let bad = check_name(&n).is_err();
                        (n, bad)
                    }
                    Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
                };
                let attr = match (e.attr, lossy) {
                    (Some(a), _) => Some(a),
                    (None, false) => Some(self.lookup_in(dir, &name, &join(rel, &name))?.1),
                    (None, true) => None,
                };
                let (ftype, size) = match attr {
                    Some(a) => (a.ftype, if a.ftype == Ftype::Reg { a.size } else { 0 }),
                    None => (Ftype::Sock, 0),
                };
                out.push(NfsEntry {
                    name,
                    ftype,
                    size,
                    lossy,
                    fh: e.fh,
                    attr,
                });
                if out.len() > MAX_ENTRIES {
                    return Err(NfsError::Garbled {
                        what: "READDIRPLUS",
                        reason: format!("more than {MAX_ENTRIES} entries in {rel:?}"),
                    });
                }
            }
            if page.eof {
                break;
            }
            if page.cookie == cookie {
                return Err(NfsError::Garbled {
                    what: "READDIRPLUS",
                    reason: "the cookie does not advance".into(),
                });
            }
            cookie = page.cookie;
            verf = page.verf;
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A reader of `f` from `offset`, several READs in flight.
    pub fn reader(&self, f: &NfsFile, offset: u64) -> NfsReader {
        NfsReader {
            share: self.clone(),
            fh: f.fh.clone(),
            rel: f.rel.clone(),
            size: f.size,
            pos: offset,
            next: offset,
            conn: None,
            in_flight: VecDeque::new(),
            arrived: HashMap::new(),
            buf: Vec::new(),
            buf_at: 0,
            buf_end: 0,
            attempt: 0,
            eof: false,
            limit: None,
        }
    }

    /// Read `len` bytes at `offset` of `f` (short only at the end of the file).
    pub fn read_at(&self, f: &NfsFile, offset: u64, len: usize) -> Result<Vec<u8>, NfsError> {
        use std::io::Read;
        let mut r = self.reader(f, offset);
        r.limit = Some(offset.saturating_add(len as u64));
        let mut out = Vec::with_capacity(len.min(64 << 20));
        r.read_to_end(&mut out).map_err(|e| NfsError::Io {
            what: "read",
            addr: self.inner.nfs_addr.to_string(),
            source: e,
        })?;
        Ok(out)
    }
}

/// MNT the longest prefix of the URL's path the server exports; the rest
/// is looked up beneath it.
fn mount(u: &NfsUrl, maddr: SocketAddr, s: &Settings) -> Result<(Vec<u8>, Vec<String>), NfsError> {
    let mut c = Conn::connect(maddr, s)?;
    let mut first_err = None;
    for n in (1..=u.path.len()).rev() {
        let p = format!("/{}", u.path[..n].join("/"));
        let body = c.call(Proc::Mnt.target(), &proto::dirpath_args(&p))?;
        match proto::mnt_res(&body)? {
            Ok(fh) => return Ok((fh, u.path[n..].to_vec())),
            Err(status) => {
                first_err.get_or_insert(NfsError::Mount {
                    path: u.server_path(),
                    status,
                });
            }
        }
    }
    Err(first_err.unwrap_or(NfsError::NotFound {
        path: u.server_path(),
    }))
}

/// Reads one file in order, keeping up to [`WINDOW_BYTES`] of READs in
/// flight on one connection; on a dropped connection the READs not yet
/// answered are sent again on a new one (READ is idempotent), a bounded
/// number of times.
#[derive(Debug)]
pub struct NfsReader {
    share: NfsShare,
    fh: Vec<u8>,
    rel: String,
    size: u64,
    /// Next byte to hand out.
    pos: u64,
    /// Next byte to ask for.
    next: u64,
    conn: Option<Conn>,
    /// (xid, offset, count) in the order sent.
    in_flight: VecDeque<(u32, u64, u32)>,
    /// Replies come in ahead of their turn: the reply record, where its
    /// data lies in it, and eof.
    arrived: HashMap<u32, (Vec<u8>, std::ops::Range<usize>, bool)>,
    /// The reply record being handed out, its data at `buf_at..buf_end`
    /// (kept as it came: no copy of the data out of the record).
    buf: Vec<u8>,
    buf_at: usize,
    buf_end: usize,
    attempt: u32,
    eof: bool,
    pub limit: Option<u64>,
}

impl NfsReader {
    /// The offset of the next byte this reader hands out.
    pub fn position(&self) -> u64 {
        self.pos - (self.buf_end - self.buf_at) as u64
    }

    fn end(&self) -> u64 {
        self.limit.map_or(self.size, |l| l.min(self.size))
    }

    fn fill(&mut self) -> Result<(), NfsError> {
        let rsize = u64::from(self.share.inner.rsize);
        let depth = (WINDOW_BYTES / rsize).max(2) as usize;
        let end = self.end();
        if self.conn.is_none() {
            self.conn = Some(self.share.take_conn()?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        while self.in_flight.len() < depth && self.next < end {
            let count = (end - self.next).min(rsize) as u32;
            let xid = conn.send(
                Proc::Read.target(),
                &proto::read_args(&self.fh, self.next, count),
            )?;
            self.in_flight.push_back((xid, self.next, count));
            self.next += u64::from(count);
        }
        let Some(&(xid, offset, count)) = self.in_flight.front() else {
            return Ok(());
        };
        while !self.arrived.contains_key(&xid) {
            let (rxid, rec, at) = conn.recv()?;
            if let Some(&(_, _, want)) = self.in_flight.iter().find(|f| f.0 == rxid) {
                let (data, eof) = proto::read_res(&rec[at..], want)?;
                // Where the data lies in the record (a slice of it).
                let start = data.as_ptr() as usize - rec.as_ptr() as usize;
                let range = start..start + data.len();
                self.arrived.insert(rxid, (rec, range, eof));
            }
        }
        self.in_flight.pop_front();
        let Some((rec, range, eof)) = self.arrived.remove(&xid) else {
            return Ok(());
        };
        let len = range.len();
        if offset != self.pos {
            return Err(NfsError::Garbled {
                what: "READ",
                reason: "replies out of step".into(),
            });
        }
        if (len as u64) < u64::from(count) {
            // A short read inside the file: ask again from there (none at
            // all and no end: the server is garbled).
            if len == 0 && !eof {
                return Err(NfsError::Garbled {
                    what: "READ",
                    reason: format!("no data at offset {offset} of {}", self.rel),
                });
            }
            // Re-issue everything after this short piece.
            self.drain_conn();
            self.next = self.pos + len as u64;
            if eof {
                self.eof = true;
            }
        }
        self.pos += len as u64;
        self.buf = rec;
        self.buf_at = range.start;
        self.buf_end = range.end;
        self.attempt = 0;
        Ok(())
    }

    /// Whether every READ sent on the connection has been answered: then
    /// nothing of this file can arrive on it any more, and another call
    /// may use it.
    pub fn clean(&self) -> bool {
        self.in_flight
            .iter()
            .all(|f| self.arrived.contains_key(&f.0))
    }

    /// Give the connection back to the pool when it is clean, else close
    /// it (a late reply would land in another caller's stream).
    fn release(&mut self) {
        if let Some(c) = self.conn.take()
            && self.clean()
        {
            self.share.give_back(c);
        }
        self.in_flight.clear();
        self.arrived.clear();
    }

    /// Forget READs in flight (their replies will never be read): the
    /// connection is closed.
    fn drain_conn(&mut self) {
        self.conn = None;
        self.in_flight.clear();
        self.arrived.clear();
    }
}

/// A reader dropped before the end of its file (a chunk found bad, a
/// range read): its connection goes back to the pool when no reply is
/// outstanding on it, and is closed otherwise.
impl Drop for NfsReader {
    fn drop(&mut self) {
        self.release();
    }
}

impl std::io::Read for NfsReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.buf_at < self.buf_end {
                let n = out.len().min(self.buf_end - self.buf_at);
                out[..n].copy_from_slice(&self.buf[self.buf_at..self.buf_at + n]);
                self.buf_at += n;
                return Ok(n);
            }
            if self.eof || self.pos >= self.end() {
                self.release();
                return Ok(0);
            }
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.is_transient() && self.attempt + 1 < ATTEMPTS && !gave_up() => {
                    self.drain_conn();
                    self.next = self.pos;
                    backoff(self.attempt);
                    self.attempt += 1;
                }
                Err(e) => {
                    self.drain_conn();
                    note_lost(&e);
                    return Err(std::io::Error::other(e));
                }
            }
        }
    }
}
