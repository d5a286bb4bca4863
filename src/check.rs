//! A record against the share, before import: will the target Cinder find
//! and restore this backup?
//!
//! STUB: the interface others build against.

use crate::findings::Findings;
use crate::share::{BackupEntry, Share, ShareScan};

/// The checks of one backup on the share that need no record: metadata vs
/// chunk files, sha256file, coverage, alignment, sizes, parents. Used by
/// `check` (after the record checks) and by `verify` without `--deep`.
pub fn backup_findings(share: &Share, scan: &ShareScan, backup: &BackupEntry) -> Findings {
    let _ = (share, scan, backup);
    Findings::new()
}
