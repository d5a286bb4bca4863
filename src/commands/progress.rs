//! Progress on stderr: an indicatif bar on a terminal, JSON lines for
//! scripts (`--progress json`), or nothing.

use crate::cli::ProgressKind;
use cbr::progress::Progress;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A progress bar for a terminal.
pub struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, bytes: u64, backup_id: &str) {
        self.0.inc(bytes);
        self.0.set_message(
            cbr::escape::terminal(backup_id.get(..8).unwrap_or(backup_id)).into_owned(),
        );
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// JSON lines on stderr, at most a few a second.
pub struct JsonLines {
    total: AtomicU64,
    done: AtomicU64,
    start: Instant,
    last: Mutex<Option<Instant>>,
}

impl JsonLines {
    fn line(&self, event: &str, backup_id: Option<&str>) {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = if rate > 0.0 && total >= done {
            Some(((total - done) as f64 / rate).round() as u64)
        } else {
            None
        };
        let v = serde_json::json!({
            "event": event, "bytes_done": done, "bytes_total": total,
            "bytes_per_second": rate.round() as u64, "eta_seconds": eta,
            "backup_id": backup_id,
        });
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{v}");
    }
}

impl Progress for JsonLines {
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.line("start", None);
    }
    fn advance(&self, bytes: u64, backup_id: &str) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        let mut last = match self.last.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        if last.is_none_or(|t| t.elapsed().as_millis() >= 250) {
            *last = Some(Instant::now());
            drop(last);
            self.line("progress", Some(backup_id));
        }
    }
    fn finish(&self) {
        self.line("finish", None);
    }
}

/// The progress sink the flags and the terminal ask for.
pub fn make(kind: ProgressKind, quiet: bool) -> Box<dyn Progress> {
    match kind {
        ProgressKind::Json => Box::new(JsonLines {
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            start: Instant::now(),
            last: Mutex::new(None),
        }),
        ProgressKind::Auto if !quiet && std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg} {wide_bar}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Box::new(Bar(bar))
        }
        _ => Box::new(cbr::progress::NoProgress),
    }
}
