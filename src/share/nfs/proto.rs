//! The read-only subset of MOUNT v3 and NFS v3 (RFC 1813), and the
//! portmapper's GETPORT (RFC 1833).
//!
//! [`Proc`] lists every procedure cbr can send. It has no variant for a
//! procedure that writes, creates, removes or reads a link (no WRITE,
//! CREATE, MKDIR, REMOVE, RENAME, SETATTR, COMMIT, READLINK…): the client
//! has no encoder for them, so it cannot send them.

use super::NfsError;
use super::rpc::Target;
use super::xdr::{Decoder, Encoder};

pub const PMAP_PROG: u32 = 100_000;
pub const MOUNT_PROG: u32 = 100_005;
pub const NFS_PROG: u32 = 100_003;

/// An NFSv3 file handle is at most 64 bytes.
pub const FHSIZE3: usize = 64;

/// Every procedure cbr sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// Portmapper v2 GETPORT.
    PmapGetport,
    /// MOUNT v3 MNT (asks for the root handle; changes nothing on disk).
    Mnt,
    /// MOUNT v3 UMNT (the server's list of mounts only).
    Umnt,
    NfsNull,
    Getattr,
    Lookup,
    Read,
    Readdirplus,
    Fsinfo,
}

impl Proc {
    pub fn target(self) -> Target {
        let (prog, vers, proc_) = match self {
            Proc::PmapGetport => (PMAP_PROG, 2, 3),
            Proc::Mnt => (MOUNT_PROG, 3, 1),
            Proc::Umnt => (MOUNT_PROG, 3, 3),
            Proc::NfsNull => (NFS_PROG, 3, 0),
            Proc::Getattr => (NFS_PROG, 3, 1),
            Proc::Lookup => (NFS_PROG, 3, 3),
            Proc::Read => (NFS_PROG, 3, 6),
            Proc::Readdirplus => (NFS_PROG, 3, 17),
            Proc::Fsinfo => (NFS_PROG, 3, 19),
        };
        Target { prog, vers, proc_ }
    }
}

/// ftype3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ftype {
    Reg,
    Dir,
    Blk,
    Chr,
    Lnk,
    Sock,
    Fifo,
}

impl Ftype {
    fn from(v: u32) -> Result<Ftype, NfsError> {
        Ok(match v {
            1 => Ftype::Reg,
            2 => Ftype::Dir,
            3 => Ftype::Blk,
            4 => Ftype::Chr,
            5 => Ftype::Lnk,
            6 => Ftype::Sock,
            7 => Ftype::Fifo,
            v => {
                return Err(NfsError::Garbled {
                    what: "a file type",
                    reason: format!("{v} is no ftype3"),
                });
            }
        })
    }
}

/// The attributes cbr uses (fattr3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ftype: Ftype,
    pub size: u64,
    pub fileid: u64,
    pub mtime_ns: i128,
}

pub fn attr(d: &mut Decoder) -> Result<Attr, NfsError> {
    let ftype = Ftype::from(d.u32("fattr3.type")?)?;
    for _ in 0..4 {
        d.u32("fattr3")?; // mode nlink uid gid
    }
    let size = d.u64("fattr3.size")?;
    d.u64("fattr3.used")?;
    d.u64("fattr3.rdev")?;
    d.u64("fattr3.fsid")?;
    let fileid = d.u64("fattr3.fileid")?;
    d.u64("fattr3.atime")?;
    let secs = d.u32("fattr3.mtime")?;
    let nsecs = d.u32("fattr3.mtime")?;
    if nsecs >= 1_000_000_000 {
        return Err(NfsError::Garbled {
            what: "fattr3.mtime",
            reason: format!("{nsecs} nanoseconds"),
        });
    }
    d.u64("fattr3.ctime")?;
    Ok(Attr {
        ftype,
        size,
        fileid,
        mtime_ns: i128::from(secs) * 1_000_000_000 + i128::from(nsecs),
    })
}

pub fn post_op_attr(d: &mut Decoder) -> Result<Option<Attr>, NfsError> {
    if d.bool("post_op_attr")? {
        Ok(Some(attr(d)?))
    } else {
        Ok(None)
    }
}

pub fn fh(d: &mut Decoder) -> Result<Vec<u8>, NfsError> {
    Ok(d.opaque(FHSIZE3, "a file handle")?.to_vec())
}

/// nfsstat3 → error (0 is OK).
pub fn status(d: &mut Decoder, what: &str) -> Result<(), NfsError> {
    match d.u32("nfsstat3")? {
        0 => Ok(()),
        s => Err(NfsError::Status {
            what: what.to_string(),
            status: s,
        }),
    }
}

/// Name for an nfsstat3 / mountstat3 number.
pub fn status_name(s: u32) -> &'static str {
    match s {
        1 => "NFS3ERR_PERM",
        2 => "NFS3ERR_NOENT",
        5 => "NFS3ERR_IO",
        6 => "NFS3ERR_NXIO",
        13 => "NFS3ERR_ACCES",
        17 => "NFS3ERR_EXIST",
        20 => "NFS3ERR_NOTDIR",
        21 => "NFS3ERR_ISDIR",
        22 => "NFS3ERR_INVAL",
        63 => "NFS3ERR_NAMETOOLONG",
        70 => "NFS3ERR_STALE",
        10001 => "NFS3ERR_BADHANDLE",
        10004 => "NFS3ERR_NOTSUPP",
        10006 => "NFS3ERR_SERVERFAULT",
        10008 => "NFS3ERR_JUKEBOX",
        _ => "an error",
    }
}

// ---- argument encoders (only the procedures in `Proc`) ----

pub fn getport_args(prog: u32, vers: u32) -> Encoder {
    let mut e = Encoder::new();
    e.u32(prog).u32(vers).u32(6).u32(0);
    e
}

pub fn dirpath_args(path: &str) -> Encoder {
    let mut e = Encoder::new();
    e.opaque(path.as_bytes());
    e
}

pub fn fh_args(fh: &[u8]) -> Encoder {
    let mut e = Encoder::new();
    e.opaque(fh);
    e
}

pub fn lookup_args(dir: &[u8], name: &str) -> Encoder {
    let mut e = Encoder::new();
    e.opaque(dir).opaque(name.as_bytes());
    e
}

pub fn read_args(fh: &[u8], offset: u64, count: u32) -> Encoder {
    let mut e = Encoder::new();
    e.opaque(fh).u64(offset).u32(count);
    e
}

pub fn readdirplus_args(dir: &[u8], cookie: u64, verf: [u8; 8], maxcount: u32) -> Encoder {
    let mut e = Encoder::new();
    e.opaque(dir)
        .u64(cookie)
        .fixed(&verf)
        .u32(maxcount / 4)
        .u32(maxcount);
    e
}

// ---- result decoders ----

pub fn getport_res(body: &[u8]) -> Result<u16, NfsError> {
    let p = Decoder::new(body).u32("the port")?;
    u16::try_from(p).map_err(|_| NfsError::Garbled {
        what: "the port",
        reason: format!("{p} is not a port"),
    })
}

pub fn mnt_res(body: &[u8]) -> Result<Result<Vec<u8>, u32>, NfsError> {
    let mut d = Decoder::new(body);
    match d.u32("mountstat3")? {
        0 => Ok(Ok(fh(&mut d)?)),
        s => Ok(Err(s)),
    }
}

pub fn getattr_res(body: &[u8]) -> Result<Attr, NfsError> {
    let mut d = Decoder::new(body);
    status(&mut d, "GETATTR")?;
    attr(&mut d)
}

/// LOOKUP: the handle and its attributes (required: a type is needed).
pub fn lookup_res(body: &[u8], name: &str) -> Result<(Vec<u8>, Attr), NfsError> {
    let mut d = Decoder::new(body);
    status(&mut d, name)?;
    let h = fh(&mut d)?;
    let a = post_op_attr(&mut d)?.ok_or_else(|| NfsError::Garbled {
        what: "LOOKUP",
        reason: "no attributes for the object".into(),
    })?;
    Ok((h, a))
}

/// FSINFO: (rtmax, rtpref).
pub fn fsinfo_res(body: &[u8]) -> Result<(u32, u32), NfsError> {
    let mut d = Decoder::new(body);
    status(&mut d, "FSINFO")?;
    post_op_attr(&mut d)?;
    let rtmax = d.u32("rtmax")?;
    let rtpref = d.u32("rtpref")?;
    Ok((rtmax, rtpref))
}

/// READ: (data, eof).
pub fn read_res(body: &[u8], asked: u32) -> Result<(&[u8], bool), NfsError> {
    let mut d = Decoder::new(body);
    status(&mut d, "READ")?;
    post_op_attr(&mut d)?;
    let count = d.u32("READ count")?;
    let eof = d.bool("READ eof")?;
    let data = d.opaque(asked as usize, "READ data")?;
    if data.len() != count as usize {
        return Err(NfsError::Garbled {
            what: "READ",
            reason: format!("count {count} but {} bytes of data", data.len()),
        });
    }
    Ok((data, eof))
}

/// One READDIRPLUS entry.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Raw name bytes (validated by the caller).
    pub name: Vec<u8>,
    pub attr: Option<Attr>,
    pub fh: Option<Vec<u8>>,
}

/// READDIRPLUS: entries, the last cookie, the verifier, eof.
pub struct DirPage {
    pub entries: Vec<DirEntry>,
    pub cookie: u64,
    pub verf: [u8; 8],
    pub eof: bool,
}

pub fn readdirplus_res(body: &[u8], dir: &str) -> Result<DirPage, NfsError> {
    let mut d = Decoder::new(body);
    status(&mut d, dir)?;
    post_op_attr(&mut d)?;
    let v = d.fixed(8, "cookieverf")?;
    let mut verf = [0u8; 8];
    verf.copy_from_slice(v);
    let mut entries = Vec::new();
    let mut cookie = 0;
    while d.bool("an entry")? {
        d.u64("fileid")?;
        let name = d.opaque(1024, "a file name")?.to_vec();
        cookie = d.u64("cookie")?;
        let attr = post_op_attr(&mut d)?;
        let fh = if d.bool("post_op_fh3")? {
            Some(fh(&mut d)?)
        } else {
            None
        };
        entries.push(DirEntry { name, attr, fh });
    }
    let eof = d.bool("eof")?;
    Ok(DirPage {
        entries,
        cookie,
        verf,
        eof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fattr(e: &mut Encoder, ftype: u32, size: u64, fileid: u64) {
        e.u32(ftype).u32(0o644).u32(1).u32(0).u32(0);
        e.u64(size).u64(size).u64(0).u64(1).u64(fileid);
        e.u32(1).u32(0).u32(1_700_000_000).u32(5).u32(1).u32(0);
    }

    #[test]
    fn lookup_and_read_replies() {
        let mut e = Encoder::new();
        e.u32(0).opaque(&[7u8; 32]).u32(1);
        fattr(&mut e, 5, 10, 99);
        e.u32(0);
        let b = e.into_bytes();
        let (h, a) = lookup_res(&b, "x").unwrap();
        assert_eq!(h, vec![7u8; 32]);
        assert_eq!(a.ftype, Ftype::Lnk);
        assert_eq!(a.mtime_ns, 1_700_000_000_000_000_005);

        let mut e = Encoder::new();
        e.u32(0).u32(0).u32(3).u32(1).opaque(b"abc");
        let b = e.into_bytes();
        assert_eq!(read_res(&b, 10).unwrap(), (&b"abc"[..], true));
        // More data than asked for.
        assert!(read_res(&b, 2).is_err());
        // count disagrees with the data.
        let mut e = Encoder::new();
        e.u32(0).u32(0).u32(4).u32(1).opaque(b"abc");
        assert!(read_res(&e.into_bytes(), 10).is_err());
    }

    #[test]
    fn hostile_replies() {
        // A file handle over 64 bytes.
        let mut e = Encoder::new();
        e.u32(0).opaque(&[0u8; 65]);
        assert!(mnt_res(&e.into_bytes()).is_err());
        // An unknown file type.
        let mut e = Encoder::new();
        e.u32(0);
        fattr(&mut e, 9, 0, 0);
        assert!(getattr_res(&e.into_bytes()).is_err());
        // nanoseconds out of range.
        let mut e = Encoder::new();
        e.u32(0).u32(1).u32(0).u32(0).u32(0).u32(0);
        e.u64(0).u64(0).u64(0).u64(0).u64(0);
        e.u32(0).u32(0).u32(0).u32(2_000_000_000).u32(0).u32(0);
        assert!(getattr_res(&e.into_bytes()).is_err());
        // A port over 65535.
        assert!(getport_res(&[0, 1, 0, 0]).is_err());
        // An error status.
        assert!(matches!(
            getattr_res(&[0, 0, 0, 70]),
            Err(NfsError::Status { status: 70, .. })
        ));
        // A directory page cut short.
        let mut e = Encoder::new();
        e.u32(0).u32(0).fixed(&[0; 8]).u32(1).u64(1).opaque(b"a");
        assert!(readdirplus_res(&e.into_bytes(), "d").is_err());
    }
}
