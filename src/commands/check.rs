//! `cbr check`: will the target Cinder find and restore this backup?

use super::{Global, Outcome, decode_inputs, print_findings, read_input, resolve_share};
use crate::cli::CheckArgs;
use anyhow::Result;
use cbr::check::{CheckOptions, CheckReport, check_record};
use cbr::escape::{shell_line, terminal as t, terminal_message};
use cbr::findings::Severity;
use cbr::share::scan::scan;
use cbr::verify::{VerifyOptions, verify};
use std::io::Write;

pub fn run(g: &Global, args: CheckArgs) -> Result<Outcome> {
    let mut input = read_input(args.input.as_deref())?;
    let records = decode_inputs(std::slice::from_ref(&input))?;
    // The records own their text: the input's need not stay (memory ≤ 3 × input).
    input.text = String::new();
    let share = resolve_share(g, &args.share)?;
    let found = scan(&share)?;
    let opts = CheckOptions {
        target_service: args.target_service.clone(),
    };
    let mut reports: Vec<CheckReport> = Vec::new();
    let batch = cbr::record::lint::Batch::of(records.iter().map(|d| &d.record));
    for d in &records {
        let mut report = check_record(&share, &found, d, &batch, &opts);
        if args.deep
            && let Some(b) = report.backup_id.as_deref().and_then(|id| found.get(id))
        {
            let chain = found.chain(b);
            let vopts = VerifyOptions {
                deep: true,
                jobs: args.jobs.unwrap_or_else(|| VerifyOptions::default().jobs),
                sample: None,
                md5: args.md5,
            };
            let progress = super::progress::make(crate::cli::ProgressKind::Auto, g.quiet);
            let v = verify(&share, &found, &chain, &vopts, progress.as_ref());
            for f in v.findings {
                if !report
                    .findings
                    .iter()
                    .any(|x| x.code == f.code && x.path == f.path)
                {
                    report.findings.push(f);
                }
            }
            report.ok = !report.findings.has_errors();
        }
        reports.push(report);
    }
    let all_ok = reports.iter().all(|r| r.ok);
    if args.json {
        if reports.len() == 1 {
            super::print_json(&reports[0])?;
        } else {
            super::print_json(&reports)?;
        }
    } else {
        let mut out = std::io::stdout().lock();
        for (r, d) in reports.iter().zip(&records) {
            writeln!(
                out,
                "backup {} (line {} of {})",
                t(r.backup_id.as_deref().unwrap_or("<no id>")),
                d.line,
                t(&input.name)
            )?;
            print_findings(&mut out, &r.findings)?;
            let verdict = if r.ok {
                let notes = r.findings.count(Severity::Warning);
                if notes > 0 {
                    format!("ready to import ({notes} warning(s) to read)")
                } else {
                    "ready to import".to_string()
                }
            } else {
                let first = r
                    .findings
                    .errors()
                    .next()
                    .map(|f| terminal_message(&f.message).into_owned())
                    .unwrap_or_default();
                let more = r.findings.count(Severity::Error).saturating_sub(1);
                if more > 0 {
                    format!("will fail because {first} (and {more} more error(s))")
                } else {
                    format!("will fail because {first}")
                }
            };
            writeln!(out, "verdict: {verdict}")?;
            if r.ok {
                // The exact import for the target: the record's own service
                // name (the target's driver must start with it) and its url.
                let service = super::service_for(None, d);
                let url = cbr::record::codec::encode_json(&d.json_text(&d.record, false), None);
                // A line to paste into a shell, shown on a terminal: each
                // word shell-quoted, then any control character made visible.
                let line = shell_line(&[
                    "openstack",
                    "volume",
                    "backup",
                    "record",
                    "import",
                    service.as_str(),
                    url.as_str(),
                ]);
                writeln!(
                    out,
                    "import on the target ({}) with:\n  {}",
                    t(&opts.target_service),
                    t(&line)
                )?;
            }
            writeln!(out)?;
        }
        if reports.len() > 1 {
            let ready = reports.iter().filter(|r| r.ok).count();
            writeln!(
                out,
                "{ready} of {} record(s) ready to import",
                reports.len()
            )?;
        }
        out.flush()?;
    }
    Ok(if all_ok {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
