//! The share: what Cinder's NFS/posix/GlusterFS backup drivers wrote, read
//! without ever writing to it.
//!
//! - [`source`]: the seam where a share is read: what any source of one offers.
//! - [`handle`]: [`Share`], [`ShareDir`], [`ShareFile`]: a share as the rest of cbr holds it, over any source.
//! - [`access`]: the one way into a local share: handles, no links, regular files.
//! - [`out`]: the one way out: every file cbr writes, never in the share.
//! - [`locate`]: find the share root from `--share`, `CBR_SHARE` or cinder.conf.
//! - [`scan`]: walk the share into a model of backups, chains and findings.
//! - [`one`]: one backup and its chain without a walk (`show`, `check`).
//! - [`metadata`]: the `<prefix>_metadata` file.
//! - [`nfs`]: a share read straight from an NFSv3 server (`nfs://`).
//! - [`sha256file`]: the `<prefix>_sha256file`, streamed, random access.

pub mod access;
pub mod handle;
pub mod locate;
pub mod metadata;
pub mod nfs;
pub mod one;
pub mod out;
pub mod scan;
pub mod sha256file;
pub mod source;

pub use handle::{Share, ShareDir, ShareFile};
pub use metadata::{BackupMetadata, ChunkObject, Compression};
pub use scan::BackupEntry;
pub use sha256file::Sha256File;
pub use source::{AccessError, FileId};

/// The object prefix Kilo..Ocata used for every backup.
pub const LEGACY_PREFIX: &str = "backup";

/// The default container of a backup id: `ab/cd/abcd…`.
pub fn default_container(backup_id: &str) -> String {
    let id = backup_id;
    match (id.get(0..2), id.get(2..4)) {
        (Some(a), Some(b)) => format!("{a}/{b}/{id}"),
        _ => id.to_string(),
    }
}
