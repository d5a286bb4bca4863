//! Progress reporting for long jobs (verify, restore). The domain calls this
//! trait; the command layer implements it (a bar on a terminal, JSON lines,
//! or nothing).

/// Receives progress from a long job. Implementations must be cheap and
/// thread-safe: workers call them from several threads.
pub trait Progress: Sync {
    /// The job starts: `total_bytes` of data will be processed.
    fn start(&self, _total_bytes: u64) {}
    /// `bytes` more were processed, while working on `backup_id`.
    fn advance(&self, _bytes: u64, _backup_id: &str) {}
    /// The job is over.
    fn finish(&self) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}
