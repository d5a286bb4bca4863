//! A verification run with the journal (verify, plan --deep): opened through the gate out, what it lets the run skip, every chunk recorded.

use anyhow::Result;
use cbr::journal::{Journal, JournalError, Last};
use cbr::share::scan::BackupEntry;
use cbr::share::{ChunkObject, Share};
use cbr::verify::{ChunkOutcome, FileId, VerifyHooks};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// Chunk checks by (backup id, chunk name).
type Checks = HashMap<(String, String), Last>;

/// The journal of a run (or none), with the proofs it may skip on.
pub struct Journaled {
    journal: Option<Journal>,
    /// Chunks proven by the run `--resume` continues.
    in_run: Checks,
    /// The last check of every chunk (read only with `--older-than`).
    last: Checks,
    /// Proofs at or after it are accepted (`--older-than`).
    cutoff: Option<i64>,
    resume: bool,
    /// The first error recording a chunk met.
    error: Mutex<Option<JournalError>>,
}

impl Journaled {
    /// The journal at `path` (vetted by the gate out: never in the share),
    /// opened for a run of `shard`; `older` is the `--older-than` window.
    pub fn open(
        share: &Share,
        path: Option<&Path>,
        shard: Option<&str>,
        resume: bool,
        older: Option<u64>,
    ) -> Result<Self> {
        let journal = match path {
            Some(p) => {
                let jp = cbr::share::out::Gate::new(share).journal(p, true)?;
                Some(Journal::open_vetted(
                    &jp,
                    &super::journal::share_id(share),
                    shard,
                    resume,
                )?)
            }
            None => None,
        };
        let in_run = match (&journal, resume) {
            (Some(j), true) => j.proven_in_run()?,
            _ => Default::default(),
        };
        let last = match (&journal, older) {
            (Some(j), Some(_)) => j.last_checks()?,
            _ => Default::default(),
        };
        let cutoff = older.map(|w| cbr::journal::now().saturating_sub(w as i64));
        Ok(Self {
            journal,
            in_run,
            last,
            cutoff,
            resume,
            error: Mutex::new(None),
        })
    }

    /// Runs `verify` with the journal's hooks (and `stop`, a budget's):
    /// a chunk is skipped only when proven OK against this very chunk
    /// file, this _metadata and this _sha256file (within the window).
    pub fn with_hooks<R>(
        &self,
        stop: Option<&(dyn Fn(&ChunkObject) -> bool + Sync)>,
        verify: impl FnOnce(&VerifyHooks<'_>) -> R,
    ) -> R {
        let skip = |b: &BackupEntry, o: &ChunkObject, id: Option<FileId>| {
            cbr::journal::already_proven(&self.in_run, &self.last, self.cutoff, b, o, id)
        };
        let done = |c: &ChunkOutcome<'_>| {
            if let Some(j) = &self.journal
                && let Err(e) = j.record(c)
                && let Ok(mut g) = self.error.lock()
            {
                g.get_or_insert(e);
            }
        };
        let skips = self.journal.is_some() && (self.resume || self.cutoff.is_some());
        let hooks = VerifyHooks {
            skip: skips.then_some(&skip as _),
            stop,
            done: self.journal.is_some().then_some(&done as _),
        };
        verify(&hooks)
    }

    /// Ends the run: the first recording error, else the run closed
    /// (`complete`) or left open for `--resume`.
    pub fn finish_run(self, complete: bool) -> Result<()> {
        if let Some(j) = &self.journal {
            if let Some(e) = self.error.into_inner().ok().flatten() {
                return Err(e.into());
            }
            j.finish_run(complete)?;
        }
        Ok(())
    }
}
