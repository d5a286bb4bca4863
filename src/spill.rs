//! A spill: pieces of text a run writes once and reads back later by
//! position, kept in a scratch file with no name rather than in memory.
//! A plan of a million backups holds each one's rewritten backup_url and
//! refusal reason here, and only their positions in memory.
//!
//! The file is made through the gate out ([`crate::share::out::Gate`]):
//! never inside a share, gone when the run ends however it ends.

use crate::share::out::{Gate, OutError};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SpillError {
    #[error(transparent)]
    Out(#[from] OutError),
    #[error("the scratch file in {dir}: {step}: {source}{}", room_hint(source))]
    Io {
        dir: String,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("a piece of {0} bytes is too large for the scratch file")]
    TooLarge(usize),
}

/// What to do when the scratch file's directory is full.
fn room_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            " (set TMPDIR to a directory with room: the scratch file grows to about the size \
             of the plan's output)"
        }
        _ => "",
    }
}

/// Where a piece lies in the spill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct At {
    off: u64,
    len: u32,
}

/// The scratch file: appended to, read back by [`At`].
#[derive(Debug)]
pub struct Spill {
    /// The writer and the length written so far.
    w: Mutex<(BufWriter<File>, u64)>,
    r: File,
    dir: String,
}

impl Spill {
    /// A new spill in the directory for temporary files (`TMPDIR`),
    /// refused when that lies inside a share the gate guards.
    pub fn new(gate: &Gate) -> Result<Spill, SpillError> {
        Spill::new_in(gate, &std::env::temp_dir())
    }

    /// A new spill in `dir`.
    pub fn new_in(gate: &Gate, dir: &std::path::Path) -> Result<Spill, SpillError> {
        let shown = dir.display().to_string();
        let out = gate.dir("the scratch file (TMPDIR)", dir)?;
        let f = out.anonymous()?;
        let r = f.try_clone().map_err(|source| SpillError::Io {
            dir: shown.clone(),
            step: "open",
            source,
        })?;
        Ok(Spill {
            w: Mutex::new((BufWriter::with_capacity(1 << 20, f), 0)),
            r,
            dir: shown,
        })
    }

    fn io(&self, step: &'static str) -> impl FnOnce(std::io::Error) -> SpillError + '_ {
        move |source| SpillError::Io {
            dir: self.dir.clone(),
            step,
            source,
        }
    }

    /// Append `bytes`; where they lie.
    pub fn put(&self, bytes: &[u8]) -> Result<At, SpillError> {
        let len = u32::try_from(bytes.len()).map_err(|_| SpillError::TooLarge(bytes.len()))?;
        let mut w = self.w.lock().unwrap_or_else(|p| p.into_inner());
        let off = w.1;
        w.0.write_all(bytes).map_err(self.io("write"))?;
        w.1 = off.saturating_add(u64::from(len));
        Ok(At { off, len })
    }

    /// Write out what is buffered: a full disk is found here, before
    /// anything is read back (and before a plan is written anywhere).
    pub fn flush(&self) -> Result<(), SpillError> {
        let mut w = self.w.lock().unwrap_or_else(|p| p.into_inner());
        w.0.flush().map_err(self.io("write"))
    }

    /// The bytes put at `at`.
    pub fn get(&self, at: At) -> Result<Vec<u8>, SpillError> {
        {
            let mut w = self.w.lock().unwrap_or_else(|p| p.into_inner());
            if !w.0.buffer().is_empty() {
                w.0.flush().map_err(self.io("write"))?;
            }
        }
        let mut buf = vec![0u8; at.len as usize];
        self.r
            .read_exact_at(&mut buf, at.off)
            .map_err(self.io("read"))?;
        Ok(buf)
    }

    /// The text put at `at` (put from a `&str`).
    pub fn text(&self, at: At) -> Result<String, SpillError> {
        String::from_utf8(self.get(at)?).map_err(|e| SpillError::Io {
            dir: self.dir.clone(),
            step: "read",
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // the test looks at its own temporary directory
    fn pieces_read_back_as_put_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spill::new_in(&Gate::none(), dir.path()).unwrap();
        let a = s.put(b"first").unwrap();
        let b = s.put(&[7u8; 3 << 20]).unwrap();
        let c = s.put(b"").unwrap();
        assert_eq!(s.get(a).unwrap(), b"first");
        assert_eq!(s.get(b).unwrap().len(), 3 << 20);
        assert_eq!(s.get(c).unwrap(), b"");
        let d = s.put("ünïcode".as_bytes()).unwrap();
        assert_eq!(s.text(d).unwrap(), "ünïcode");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the test makes and looks at its own share
    fn a_spill_inside_a_share_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let share = crate::share::Share::open(dir.path()).unwrap();
        let inside = dir.path().join("sub");
        std::fs::create_dir(&inside).unwrap();
        let err = Spill::new_in(&Gate::new(&share), &inside).unwrap_err();
        assert!(err.to_string().contains("scratch"), "{err}");
        assert_eq!(std::fs::read_dir(&inside).unwrap().count(), 0);
    }
}
