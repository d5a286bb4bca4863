//! ONC RPC v2 (RFC 5531) over TCP with record marking: AUTH_SYS calls,
//! replies matched by XID so that several calls can be in flight on one
//! connection.
//!
//! The connection comes from an unprivileged source port unless asked
//! (`?privileged=1`, for exports with `secure`); every read and write has a
//! bounded timeout.

use super::NfsError;
use super::xdr::{Decoder, Encoder};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The largest record accepted from a server: a READ of the largest rsize
/// cbr asks for, with its attributes, fits well below it.
pub const MAX_RECORD: usize = 4 << 20 | 64 << 10;

/// AUTH_SYS identity sent with every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
}

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub cred: Cred,
    pub privileged: bool,
    pub timeout: Duration,
}

/// One TCP connection to one RPC program.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    cred: Cred,
    next_xid: u32,
    pub addr: SocketAddr,
}

/// Header of a call: which program, version and procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
}

fn io(what: &'static str, addr: SocketAddr) -> impl Fn(std::io::Error) -> NfsError {
    move |source| NfsError::Io {
        what,
        addr: addr.to_string(),
        source,
    }
}

/// Resolve `host:port` (IPv6 hosts in brackets).
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, NfsError> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    (h, port)
        .to_socket_addrs()
        .map_err(|source| NfsError::Io {
            what: "resolve the server",
            addr: format!("{host}:{port}"),
            source,
        })?
        .next()
        .ok_or_else(|| NfsError::Io {
            what: "resolve the server",
            addr: format!("{host}:{port}"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })
}

/// Connect from a port below 1024 (`privileged=1`), within `timeout` in
/// all: the search for a free port and the connect itself (bounded by
/// `SO_SNDTIMEO`, which Linux applies to a blocking connect) share one
/// deadline, so that an unreachable server costs `timeout`, not 424 of them.
fn connect_privileged(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, NfsError> {
    use rustix::net::{AddressFamily, SocketType, ipproto, sockopt};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let deadline = std::time::Instant::now() + timeout;
    let timed_out = || {
        io("connect from a privileged port", addr)(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection within {} s", timeout.as_secs()),
        ))
    };
    let mut last = None;
    // Ports 1023 down to 600, as the kernel client and libnfs try them.
    for port in (600..1024u16).rev() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let sock = rustix::net::socket(family, SocketType::STREAM, Some(ipproto::TCP))
            .map_err(|e| io("open a socket", addr)(e.into()))?;
        let local: SocketAddr = if addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], port))
        } else {
            SocketAddr::from(([0u16; 8], port))
        };
        match rustix::net::bind(&sock, &local) {
            Ok(()) => {}
            Err(rustix::io::Errno::ADDRINUSE) => continue,
            Err(e) => {
                return Err(NfsError::Privileged { source: e.into() });
            }
        }
        // At least 1 ms: a zero timeout would mean none at all.
        sockopt::set_socket_timeout(
            &sock,
            sockopt::Timeout::Send,
            Some(left.max(Duration::from_millis(1))),
        )
        .map_err(|e| io("set a timeout", addr)(e.into()))?;
        match rustix::net::connect(&sock, &addr) {
            Ok(()) => return Ok(TcpStream::from(sock)),
            Err(rustix::io::Errno::ADDRINUSE) | Err(rustix::io::Errno::ADDRNOTAVAIL) => {
                last = Some(rustix::io::Errno::ADDRINUSE);
                continue;
            }
            // The send timeout ran out in the middle of the handshake.
            Err(rustix::io::Errno::INPROGRESS)
            | Err(rustix::io::Errno::AGAIN)
            | Err(rustix::io::Errno::TIMEDOUT) => return Err(timed_out()),
            Err(e) => return Err(io("connect", addr)(e.into())),
        }
    }
    Err(io("connect from a privileged port", addr)(
        last.map_or_else(|| std::io::Error::other("no port free"), Into::into),
    ))
}

impl Conn {
    pub fn connect(addr: SocketAddr, s: &Settings) -> Result<Conn, NfsError> {
        let stream = if s.privileged {
            connect_privileged(addr, s.timeout)?
        } else {
            TcpStream::connect_timeout(&addr, s.timeout).map_err(io("connect", addr))?
        };
        stream
            .set_read_timeout(Some(s.timeout))
            .map_err(io("set a timeout", addr))?;
        stream
            .set_write_timeout(Some(s.timeout))
            .map_err(io("set a timeout", addr))?;
        let _ = stream.set_nodelay(true);
        // XIDs start from the clock so that a new connection after a
        // dropped one does not reuse the old ones (the server's reply cache).
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
        Ok(Conn {
            stream,
            cred: s.cred,
            next_xid: seed | 1,
            addr,
        })
    }

    /// Send one call; returns its XID.
    pub fn send(&mut self, t: Target, args: &Encoder) -> Result<u32, NfsError> {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1);
        let mut e = Encoder::new();
        e.u32(xid)
            .u32(0)
            .u32(2)
            .u32(t.prog)
            .u32(t.vers)
            .u32(t.proc_);
        // AUTH_SYS credential.
        let mut body = Encoder::new();
        body.u32(0)
            .opaque(b"cbr")
            .u32(self.cred.uid)
            .u32(self.cred.gid)
            .u32(0);
        e.u32(1).opaque(body.bytes());
        // AUTH_NONE verifier.
        e.u32(0).u32(0);
        let len = e.len() + args.len();
        let mark =
            u32::try_from(len)
                .ok()
                .filter(|l| *l < 0x8000_0000)
                .ok_or(NfsError::Garbled {
                    what: "a call",
                    reason: "too long".into(),
                })?;
        let mut rec = Vec::with_capacity(4 + len);
        rec.extend_from_slice(&(mark | 0x8000_0000).to_be_bytes());
        rec.extend_from_slice(e.bytes());
        rec.extend_from_slice(args.bytes());
        self.stream
            .write_all(&rec)
            .map_err(io("send a call", self.addr))?;
        Ok(xid)
    }

    /// Read one whole record (all its fragments), at most [`MAX_RECORD`].
    fn record(&mut self) -> Result<Vec<u8>, NfsError> {
        let mut out = Vec::new();
        loop {
            let mut h = [0u8; 4];
            self.stream
                .read_exact(&mut h)
                .map_err(io("read a reply", self.addr))?;
            let h = u32::from_be_bytes(h);
            let last = h & 0x8000_0000 != 0;
            let len = (h & 0x7fff_ffff) as usize;
            if out.len().saturating_add(len) > MAX_RECORD {
                return Err(NfsError::Garbled {
                    what: "a reply",
                    reason: format!("a record over {MAX_RECORD} bytes"),
                });
            }
            // Read into the spare capacity without zeroing it first (a
            // READ reply is up to 1 MiB): `take` bounds the read to this
            // fragment, and a short one is an error.
            out.reserve(len);
            let got = (&mut self.stream)
                .take(len as u64)
                .read_to_end(&mut out)
                .map_err(io("read a reply", self.addr))?;
            if got < len {
                return Err(io("read a reply", self.addr)(std::io::Error::from(
                    std::io::ErrorKind::UnexpectedEof,
                )));
            }
            if last {
                return Ok(out);
            }
        }
    }

    /// Receive the next reply: its XID and its accepted result body.
    pub fn recv(&mut self) -> Result<(u32, Vec<u8>, usize), NfsError> {
        let rec = self.record()?;
        let mut d = Decoder::new(&rec);
        let xid = d.u32("the reply's xid")?;
        let offset = parse_reply_header(&mut d)?;
        let at = rec.len() - offset;
        Ok((xid, rec, at))
    }

    /// One call, its reply (no other call in flight).
    pub fn call(&mut self, t: Target, args: &Encoder) -> Result<Vec<u8>, NfsError> {
        let xid = self.send(t, args)?;
        loop {
            let (rxid, rec, at) = self.recv()?;
            if rxid == xid {
                return Ok(rec[at..].to_vec());
            }
            // A late reply to an abandoned call: skip it.
        }
    }
}

/// Parse what follows the XID; returns how many bytes remain (the body).
fn parse_reply_header(d: &mut Decoder) -> Result<usize, NfsError> {
    if d.u32("the message type")? != 1 {
        return Err(NfsError::Garbled {
            what: "a reply",
            reason: "not a REPLY".into(),
        });
    }
    match d.u32("the reply status")? {
        0 => {
            let _flavor = d.u32("the verifier")?;
            d.opaque(400, "the verifier")?;
            match d.u32("the accept status")? {
                0 => Ok(d.remaining()),
                2 => {
                    let low = d.u32("mismatch")?;
                    let high = d.u32("mismatch")?;
                    Err(NfsError::Rpc(format!(
                        "the server does not speak this version (it offers {low}..{high})"
                    )))
                }
                1 => Err(NfsError::Rpc(
                    "the program is unavailable on the server".into(),
                )),
                3 => Err(NfsError::Rpc("the procedure is unavailable".into())),
                4 => Err(NfsError::Rpc(
                    "the server could not decode the arguments".into(),
                )),
                5 => Err(NfsError::Rpc("the server reports a system error".into())),
                s => Err(NfsError::Rpc(format!("accept status {s}"))),
            }
        }
        1 => match d.u32("the reject status")? {
            0 => Err(NfsError::Rpc("RPC version mismatch".into())),
            1 => {
                let why = d.u32("the auth status")?;
                Err(NfsError::Auth(why))
            }
            s => Err(NfsError::Rpc(format!("reject status {s}"))),
        },
        s => Err(NfsError::Rpc(format!("reply status {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// privileged=1 against a server that never answers the handshake
    /// ends with cbr's own timeout, not the kernel's two minutes of SYN
    /// retries for each port tried. The silent server: a loopback listener
    /// whose accept queue (backlog 0) is already full, so that the kernel
    /// drops further SYNs. Without the right to bind a port below 1024 the
    /// bind is refused as such.
    #[test]
    fn privileged_connect_is_bounded_by_its_timeout() {
        use rustix::net::{AddressFamily, SocketType, ipproto};
        let l = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, Some(ipproto::TCP))
            .unwrap();
        rustix::net::bind(&l, &SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        rustix::net::listen(&l, 0).unwrap();
        let addr = match rustix::net::getsockname(&l).unwrap().try_into() {
            Ok(a) => a,
            Err(_) => panic!("an INET listener has an INET address"),
        };
        // Fill the queue (never accepted).
        let _first = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        match connect_privileged(addr, Duration::from_millis(300)) {
            Err(NfsError::Privileged { .. }) => {}
            Err(NfsError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}")
            }
            other => panic!("the listener never accepts: {other:?}"),
        }
    }

    #[test]
    fn reply_header() {
        let mut e = Encoder::new();
        e.u32(1).u32(0).u32(0).u32(0).u32(0).u32(42);
        let b = e.into_bytes();
        let mut d = Decoder::new(&b);
        assert_eq!(parse_reply_header(&mut d).unwrap(), 4);
        // Denied: AUTH_ERROR (AUTH_TOOWEAK = 5).
        let mut e = Encoder::new();
        e.u32(1).u32(1).u32(1).u32(5);
        let b = e.into_bytes();
        assert!(matches!(
            parse_reply_header(&mut Decoder::new(&b)),
            Err(NfsError::Auth(5))
        ));
        // A CALL where a REPLY is due.
        let b = [0, 0, 0, 0];
        assert!(parse_reply_header(&mut Decoder::new(&b)).is_err());
        // A verifier claiming 4 GiB.
        let mut e = Encoder::new();
        e.u32(1).u32(0).u32(0).u32(u32::MAX);
        let b = e.into_bytes();
        assert!(parse_reply_header(&mut Decoder::new(&b)).is_err());
    }
}
