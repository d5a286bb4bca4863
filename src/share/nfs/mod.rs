//! A share read straight from an NFSv3 server, with no mount: a small
//! pure-Rust client of the read-only subset of the protocol.
//!
//! - [`url`]: `nfs://HOST[:PORT]/EXPORT[/PATH][?…]`, libnfs's conventions.
//! - [`xdr`]: XDR by hand, every length bounds-checked.
//! - [`rpc`]: ONC RPC over TCP, record marking, AUTH_SYS, XID matching.
//! - [`proto`]: the procedures cbr can send (none that writes; no READLINK).
//! - [`source`]: the client behind the share-source seam.
//! - [`client`]: mount, walk and read, with the guarantees of a local share:
//!   types from attributes, links never followed, only regular files read,
//!   names validated; several READs in flight per file; bounded timeouts
//!   and retries on a dropped connection.

pub mod client;
pub mod proto;
pub mod rpc;
pub mod source;
pub mod url;
pub mod xdr;

pub use client::{NfsEntry, NfsFile, NfsReader, NfsShare, connection_lost};
pub use source::NfsSource;
pub use url::{NfsUrl, is_nfs_url};

use thiserror::Error;

/// What went wrong talking to an NFS server.
#[derive(Debug, Error)]
pub enum NfsError {
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("cannot {what} ({addr}): {source}")]
    Io {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "cannot bind a privileged source port (privileged=1 needs root or CAP_NET_BIND_SERVICE): {source}"
    )]
    Privileged { source: std::io::Error },
    #[error("the server sent a garbled reply ({what}): {reason}")]
    Garbled { what: &'static str, reason: String },
    #[error("RPC: {0}")]
    Rpc(String),
    #[error(
        "the server refused the credentials (AUTH_SYS; auth status {0}); Kerberos is not supported"
    )]
    Auth(u32),
    #[error("{what}: {} ({status})", proto::status_name(*status))]
    Status { what: String, status: u32 },
    #[error("the server refused to mount {path}: {} ({status})", proto::status_name(*status))]
    Mount { path: String, status: u32 },
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
}

impl NfsError {
    /// Whether a fresh connection may help (the connection dropped, timed
    /// out, or the server restarted).
    pub fn is_transient(&self) -> bool {
        matches!(self, NfsError::Io { .. })
            || matches!(self, NfsError::Status { status: 10008, .. })
    }
}
