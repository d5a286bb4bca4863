//! `cbr check`: will the target Cinder find and restore this backup?

use super::{Global, Outcome, decode_inputs, print_findings, read_input, resolve_share};
use crate::cli::CheckArgs;
use anyhow::Result;
use cbr::check::{CheckOptions, CheckReport, check_record};
use cbr::findings::Severity;
use cbr::share::scan::scan;
use cbr::verify::{VerifyOptions, verify};
use std::io::Write;

pub fn run(g: &Global, args: CheckArgs) -> Result<Outcome> {
    if let Some(p) = &args.target_project
        && !cbr::record::lint::is_keystone_id(p)
    {
        anyhow::bail!(
            "--target-project {p:?} is not a keystone project id (32 hex digits or a UUID): --os-project-id needs the id"
        );
    }
    let input = read_input(args.input.as_deref())?;
    let records = decode_inputs(std::slice::from_ref(&input))?;
    let share = resolve_share(g, &args.share)?;
    let found = scan(&share)?;
    let opts = CheckOptions {
        target_service: args.target_service.clone(),
    };
    let mut reports: Vec<CheckReport> = Vec::new();
    for (i, d) in records.iter().enumerate() {
        let batch = super::others(&records, i);
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
                r.backup_id.as_deref().unwrap_or("<no id>"),
                d.line,
                input.name
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
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                let more = r.findings.count(Severity::Error).saturating_sub(1);
                if more > 0 {
                    format!("will fail because {first} (and {more} more error(s))")
                } else {
                    format!("will fail because {first}")
                }
            };
            writeln!(out, "verdict: {verdict}")?;
            if r.ok && !args.no_advice {
                writeln!(
                    out,
                    "{}",
                    advice(d, &opts.target_service, args.target_project.as_deref())
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

/// The import to run on the target: the record's own service name (the
/// target's driver must start with it) and its url, every word quoted for
/// the shell. Cinder gives an imported backup to the project the
/// credentials are scoped to, so the line is scoped: to `--target-project`,
/// else to the record's own project (after `rewrite`, the target's); an
/// unscoped import would land in the importing admin's own project.
fn advice(d: &cbr::record::Decoded, target_service: &str, target: Option<&str>) -> String {
    let service = super::service_for(None, d);
    let url = cbr::record::codec::encode_json(&d.json_text(&d.record, false), None);
    let own = cbr::record::lint::id_field(&d.record, "project_id")
        .filter(|p| cbr::record::lint::is_keystone_id(p));
    let project = target.or(own);
    let mut words = vec!["openstack"];
    if let Some(p) = project {
        words.extend(["--os-project-id", p]);
    }
    words.extend(["volume", "backup", "record", "import", &service, &url]);
    let line = cbr::escape::shell_line(&words);
    let svc = cbr::escape::terminal(target_service);
    match (target, project) {
        (Some(p), _) => format!("import on the target ({svc}) into project {p} with:\n  {line}"),
        (None, Some(p)) => format!(
            "import on the target ({svc}) into the record's project {p} (--target-project for another) with:\n  {line}"
        ),
        (None, None) => format!(
            "import on the target ({svc}) scoped to the target project \
             (add --os-project-id P: the backup goes to the project the credentials are scoped to) with:\n  {line}"
        ),
    }
}
