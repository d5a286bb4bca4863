//! The `cbr` binary: parse the command line, run the command, map the
//! outcome to an exit status. Everything else is in `commands` and the lib.

mod cli;
mod commands;

use clap::Parser;
use std::process::ExitCode;

#[allow(clippy::disallowed_methods)] // /proc, not the share
fn main() -> ExitCode {
    // Before any thread exists: every thread inherits the blocked signals.
    commands::signals::install();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = commands::run(cli);
    // For benchmarks: the peak resident set of this run, on stderr.
    if std::env::var_os("CBR_REPORT_RSS").is_some()
        && let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
    {
        eprintln!("cbr: peak RSS {}", line.trim_start_matches("VmHWM:").trim());
    }
    // A share read over nfs:// whose server went away for good mid-run:
    // what the command concluded rests on failed reads, never an OK.
    if let Some(why) = cbr::share::nfs::connection_lost() {
        eprintln!(
            "cbr: error: the NFS server was lost during the run ({}); the result above is incomplete",
            cbr::escape::terminal_message(&why)
        );
        return ExitCode::from(2);
    }
    match result {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(err) => {
            if commands::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            for line in error_lines(&err) {
                eprintln!("{line}");
            }
            ExitCode::from(2)
        }
    }
}

/// The lines printed for an error: the error, then one line per cause,
/// leaving out a cause whose text was already printed (an error that
/// embeds its source's message and also returns it as `source()`).
/// Messages quote names from inputs and the share: shown through the
/// terminal escaper line by line.
fn error_lines(err: &anyhow::Error) -> Vec<String> {
    let mut printed = String::new();
    let mut out = Vec::new();
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        if i > 0 && (text.is_empty() || printed.contains(&text)) {
            continue;
        }
        // The errors that list items on lines of their own (plan's and the
        // mapping's) keep their line breaks, each line escaped; any other
        // message is escaped whole, so a value in it cannot start a line.
        let listed = cause.downcast_ref::<cbr::plan::PlanError>().is_some()
            || cause.downcast_ref::<cbr::mapping::MapError>().is_some();
        let shown = if listed {
            text.split('\n')
                .map(cbr::escape::terminal_message)
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            cbr::escape::terminal_message(&text).into_owned()
        };
        out.push(if i == 0 {
            format!("cbr: error: {shown}")
        } else {
            format!("  caused by: {shown}")
        });
        printed.push_str(&text);
        printed.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_lines;

    #[derive(Debug, thiserror::Error)]
    #[error("line 4: {0}")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn a_cause_already_printed_is_not_repeated() {
        let io = std::io::Error::other("X went wrong");
        let err = anyhow::Error::new(Wrapper(io)).context("cannot decode input");
        assert_eq!(
            error_lines(&err),
            vec![
                "cbr: error: cannot decode input".to_string(),
                "  caused by: line 4: X went wrong".to_string(),
            ]
        );
    }

    #[test]
    fn distinct_causes_are_all_printed() {
        let err =
            anyhow::Error::new(std::io::Error::other("no such file")).context("cannot read a.txt");
        assert_eq!(error_lines(&err).len(), 2);
    }
}
