//! `cbr`: offline toolkit for OpenStack Cinder backups kept on an NFS (or
//! posix, GlusterFS) share.
//!
//! The domain lives here, free of any command-line concern:
//! - [`record`]: export records — paste parsing, the byte-exact codec,
//!   edits, lints.
//! - [`share`]: the share model — layout, `_metadata`, `_sha256file`, chains.
//! - [`check`]: a record against the share, before import.
//! - [`verify`]: chunk integrity over backups — selected, parallel, journaled.
//! - [`restore`]: a full+incremental chain to a raw image.
//! - [`recover`]: an importable record from the share alone.
//! - [`structure`]: what one backup's files say about themselves (beneath
//!   check, verify and restore).
//! - [`proof`]: one chunk's bytes proven — decompression, length, md5,
//!   per-block sha256 (beneath verify and restore).
//! - [`escape`]: one escaper per output sink (shell, terminal, markdown).
//! - [`findings`]: problems found, as data.
//! - [`journal`]: the verification journal (SQLite): resumable, rolling scrubs.
//! - [`mapping`]: mapping files (source id → target id), for rewrite and plan.
//! - [`plan`]: a batch of exports as an ordered, checked, resumable runbook.
//! - [`progress`]: the trait through which long jobs report progress.
//! - [`synth`]: a writer of Cinder's layout, for tests and benchmarks.

pub mod check;
pub mod escape;
pub mod findings;
pub mod journal;
pub mod mapping;
pub mod plan;
pub mod progress;
pub mod proof;
pub mod record;
pub mod recover;
pub mod restore;
pub mod share;
pub mod spill;
pub mod structure;
pub mod synth;
pub mod verdict;
pub mod verify;

/// The sha256 lanes, where benchmarks have always found them.
pub use proof::sha256_lanes;
