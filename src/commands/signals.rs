//! SIGINT, SIGTERM and SIGHUP end `cbr` with status 128 + the signal's
//! number (130, 143, 129), what a shell reports for a process a signal
//! killed, after removing the file a command asked to be removed on
//! interruption (restore's partial image). The three signals are blocked
//! in every thread and taken by one thread that waits for them: no code
//! runs in a signal handler.

use nix::sys::signal::{SigSet, Signal};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// The file to remove if a signal ends the run.
static PARTIAL: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Block the signals and start the thread that takes them. Call first in
/// `main`, before any other thread exists (threads inherit the mask).
pub fn install() {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let waiter = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                if let Ok(sig) = set.wait() {
                    end(sig);
                }
            }
        });
    if waiter.is_err() {
        // No thread to take them: leave the signals their default action.
        let _ = set.thread_unblock();
    }
}

/// Set (or clear) the file a signal removes before `cbr` exits.
pub fn remove_on_signal(path: Option<PathBuf>) {
    match PARTIAL.lock() {
        Ok(mut g) => *g = path,
        Err(poisoned) => *poisoned.into_inner() = path,
    }
}

fn end(sig: Signal) -> ! {
    let partial = match PARTIAL.lock() {
        Ok(mut g) => g.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(p) = partial {
        let _ = std::fs::remove_file(&p);
        // stderr may be closed too: nothing to say then.
        let _ = writeln!(
            std::io::stderr().lock(),
            "cbr: interrupted ({}); the partial image was removed",
            sig.as_str()
        );
    }
    std::process::exit(128 + sig as i32)
}
