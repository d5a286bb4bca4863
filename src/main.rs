//! The `cbr` binary: parse the command line, run the command, map the
//! outcome to an exit status. Everything else is in `commands` and the lib.

mod cli;
mod commands;

use clap::Parser;
use std::process::ExitCode;

#[allow(clippy::disallowed_methods)] // /proc, not the share
fn main() -> ExitCode {
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
    match result {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(err) => {
            if commands::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("cbr: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
