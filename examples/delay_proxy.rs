//! A TCP proxy that delays what it forwards, each way, by a fixed time: a
//! network with a round trip, for the NFS benchmark (`tc netem` is not
//! available on these kernels). Run by `tests/interop/nfs.sh serve` when
//! `CBR_NFS_DELAY_MS` is set.
//!
//! Every piece of data read on one side is written to the other side DELAY
//! ms after it was read: order kept, and the delay does not add up along a
//! stream (each piece waits until its own due time, not DELAY after the
//! previous write), so bandwidth is not limited. Each direction of each
//! connection is a reader thread and a writer thread joined by a channel:
//! no lock shared between connections, nothing interpreted per byte but
//! the record marks below. It also counts the ONC RPC records the client
//! sends (record marking: a fragment with its last bit set ends a record),
//! which are the calls the server receives.
//!
//! ```text
//! delay_proxy LISTEN_PORT TARGET_PORT DELAY_MS CONTROL_PORT
//! ```
//!
//! listens on 127.0.0.1:LISTEN_PORT and forwards to 127.0.0.1:TARGET_PORT
//! (DELAY_MS may have a fraction). A connection to 127.0.0.1:CONTROL_PORT
//! reads "calls N" (the calls forwarded so far), then one line per NFSv3 /
//! MOUNT procedure called, "NAME N" (e.g. "READ 10000"), and is closed.
//! Runs until killed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Calls (complete client-to-server RPC records) seen so far.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Calls by procedure (below 32) of NFS (100003) and of MOUNT (100005).
static NFS_PROCS: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];
static MOUNT_PROCS: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

/// NFSv3 procedure names (RFC 1813), by number.
const NFS_NAMES: [&str; 22] = [
    "NULL",
    "GETATTR",
    "SETATTR",
    "LOOKUP",
    "ACCESS",
    "READLINK",
    "READ",
    "WRITE",
    "CREATE",
    "MKDIR",
    "SYMLINK",
    "MKNOD",
    "REMOVE",
    "RMDIR",
    "RENAME",
    "LINK",
    "READDIR",
    "READDIRPLUS",
    "FSSTAT",
    "FSINFO",
    "PATHCONF",
    "COMMIT",
];

/// Count one call by its header: xid, type, rpcvers, prog, vers, proc.
fn count_proc(head: &[u8; 24]) {
    let word = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let table = match word(12) {
        100003 => &NFS_PROCS,
        100005 => &MOUNT_PROCS,
        _ => return,
    };
    if let Some(c) = table.get(word(20) as usize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the control port answers.
fn report() -> String {
    let mut s = format!("calls {}\n", CALLS.load(Ordering::Relaxed));
    for (i, c) in NFS_PROCS.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        if n > 0 {
            let name = NFS_NAMES.get(i).copied().unwrap_or("NFS-?");
            s += &format!("{name} {n}\n");
        }
    }
    for (i, c) in MOUNT_PROCS.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        if n > 0 {
            s += &format!("MOUNT-{i} {n}\n");
        }
    }
    s
}

/// Counts complete RPC records in a client-to-server stream.
#[derive(Default)]
struct Counter {
    header: [u8; 4],
    have: usize,
    /// Bytes of the current fragment still to come.
    left: u64,
    last: bool,
    /// The first bytes of the current record (its call header).
    head: [u8; 24],
    head_have: usize,
}

impl Counter {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.left == 0 {
                let take = (4 - self.have).min(data.len());
                self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                data = &data[take..];
                if self.have < 4 {
                    return;
                }
                self.have = 0;
                let mark = u32::from_be_bytes(self.header);
                self.last = mark & 0x8000_0000 != 0;
                self.left = u64::from(mark & 0x7fff_ffff);
                if self.left == 0 && self.last {
                    CALLS.fetch_add(1, Ordering::Relaxed);
                    self.head_have = 0;
                }
                continue;
            }
            let take = self.left.min(data.len() as u64) as usize;
            if self.head_have < 24 {
                let h = (24 - self.head_have).min(take);
                self.head[self.head_have..self.head_have + h].copy_from_slice(&data[..h]);
                self.head_have += h;
                if self.head_have == 24 {
                    count_proc(&self.head);
                }
            }
            data = &data[take..];
            self.left -= take as u64;
            if self.left == 0 && self.last {
                CALLS.fetch_add(1, Ordering::Relaxed);
                self.head_have = 0;
            }
        }
    }
}

/// Forward `src` to `dst`, each piece `delay` after it was read; count
/// records when `counter` is given. Returns when `src` ends (then `dst`
/// is shut for writing once everything before was written) or either
/// side fails.
fn pump(mut src: TcpStream, mut dst: TcpStream, delay: Duration, mut counter: Option<Counter>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, data) in rx {
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep(due - now);
            }
            if dst.write_all(&data).is_err() {
                // The reader stops at its next send.
                return;
            }
        }
        let _ = dst.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let due = Instant::now() + delay;
        if let Some(c) = counter.as_mut() {
            c.feed(&buf[..n]);
        }
        if tx.send((due, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

fn serve(client: TcpStream, target: u16, delay: Duration) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || pump(client, server, delay, Some(Counter::default())));
    pump(s2, c2, delay, None);
    let _ = up.join();
}

fn control(l: TcpListener) {
    for mut c in l.incoming().flatten() {
        let _ = c.write_all(report().as_bytes());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "delay_proxy LISTEN_PORT TARGET_PORT DELAY_MS CONTROL_PORT";
    let [listen, target, delay_ms, ctl] = args.as_slice() else {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    };
    let (Ok(listen), Ok(target), Ok(delay_ms), Ok(ctl)) = (
        listen.parse::<u16>(),
        target.parse::<u16>(),
        delay_ms.parse::<f64>(),
        ctl.parse::<u16>(),
    ) else {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    };
    let Ok(delay) = Duration::try_from_secs_f64(delay_ms / 1000.0) else {
        eprintln!("delay_proxy: DELAY_MS must be a number of milliseconds >= 0");
        std::process::exit(2);
    };
    let bind = |port: u16| {
        TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
            eprintln!("delay_proxy: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        })
    };
    let ctl = bind(ctl);
    let l = bind(listen);
    std::thread::spawn(move || control(ctl));
    for c in l.incoming() {
        match c {
            Ok(c) => {
                std::thread::spawn(move || serve(c, target, delay));
            }
            Err(e) => eprintln!("delay_proxy: accept: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_records_across_pieces() {
        let before = CALLS.load(Ordering::Relaxed);
        let mut c = Counter::default();
        // A record of one fragment (3 bytes), one of two fragments (2 + 1),
        // fed a byte at a time, then all at once.
        let stream = [
            0x80, 0, 0, 3, 1, 2, 3, // one record
            0, 0, 0, 2, 4, 5, // a fragment, not the last
            0x80, 0, 0, 1, 6, // the last fragment: a second record
        ];
        for b in stream {
            c.feed(&[b]);
        }
        c.feed(&stream);
        assert_eq!(CALLS.load(Ordering::Relaxed) - before, 4);
        // A READ call's header (xid 7, CALL, rpc 2, NFS 3, proc 6), split.
        let mut call = vec![0x80, 0, 0, 28];
        for w in [7u32, 0, 2, 100003, 3, 6, 0] {
            call.extend_from_slice(&w.to_be_bytes());
        }
        let reads = NFS_PROCS[6].load(Ordering::Relaxed);
        c.feed(&call[..10]);
        c.feed(&call[10..]);
        assert_eq!(NFS_PROCS[6].load(Ordering::Relaxed) - reads, 1);
        assert!(report().contains("READ "));
    }
}
