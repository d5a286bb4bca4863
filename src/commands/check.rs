//! `cbr check`: will the target Cinder find and restore this backup?

use super::{Global, Outcome, decode_batch, read_inputs, resolve_share};
use crate::cli::CheckArgs;
use anyhow::Result;
use cbr::check::{CheckOptions, CheckReport, check_record};
use cbr::share::one::Near;
use cbr::share::scan::Backups;
use cbr::verdict::Verdict;
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
    let inputs = read_inputs(&args.inputs)?;
    let (records, origins) = decode_batch(&inputs)?;
    // The records own their text: the inputs need not stay (memory ≤ 3 × input).
    drop(inputs);
    let share = resolve_share(g, &args.share)?;
    // Each record's backup is read from the container it names, its
    // parents from theirs: no walk of the share unless a backup is not
    // where Cinder's layout (or the record) puts it (issue 25).
    let near = Near::new(&share)?.on_walk(walk_note(g.quiet));
    let opts = CheckOptions {
        target_service: args.target_service.clone(),
    };
    let mut reports: Vec<CheckReport> = Vec::new();
    let batch = cbr::record::lint::Batch::of(records.iter().map(|d| &d.record));
    for d in &records {
        let field = |k: &str| d.record.get(k).and_then(|v| v.as_str());
        if let (Some(c), Some(p)) = (field("container"), field("service_metadata")) {
            // Its container read first: its backup is then known by id.
            near.in_container(c, p);
        }
        let mut report = check_record(&share, &near, d, &batch, &opts);
        if args.deep
            && let Some(b) = report.backup_id.as_deref().and_then(|id| near.get(id))
        {
            deepen(g, &args, &share, &near, b, &mut report);
        }
        reports.push(report);
    }
    if let Some(e) = near.walk_error() {
        anyhow::bail!("the share could not be read: {e}");
    }
    let all_ok = reports.iter().all(|r| r.ok);
    if args.json {
        if reports.len() == 1 {
            super::print_json(&reports[0])?;
        } else {
            super::print_json(&reports)?;
        }
    } else {
        render_human(&args, &reports, &records, &origins)?;
    }
    Ok(if all_ok {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// What `show` and `check` say (unless quiet) before they walk the whole
/// share: why; it is only slower.
pub fn walk_note(quiet: bool) -> impl Fn(&str) + Send + Sync {
    move |why: &str| {
        if !quiet {
            eprintln!(
                "cbr: {} (only slower on a large share)",
                cbr::escape::terminal(why)
            );
        }
    }
}

/// `--deep`: every chunk of the backup's chain read, its findings added
/// to the record's (once each), and the record judged again.
fn deepen(
    g: &Global,
    args: &CheckArgs,
    share: &cbr::share::Share,
    found: &Near<'_>,
    b: std::sync::Arc<cbr::share::BackupEntry>,
    report: &mut CheckReport,
) {
    let chain = found.chain(b);
    let chain: Vec<&cbr::share::BackupEntry> = chain.iter().map(|c| c.as_ref()).collect();
    let vopts = VerifyOptions {
        deep: true,
        jobs: args.jobs.unwrap_or_else(|| VerifyOptions::default().jobs),
        sample: None,
        md5: args.md5,
    };
    let progress = super::progress::make(crate::cli::ProgressKind::Auto, g.quiet);
    let v = verify(share, found, &chain, &vopts, progress.as_ref());
    for f in v.findings {
        if !report
            .findings
            .iter()
            .any(|x| x.code == f.code && x.path == f.path)
        {
            report.findings.push(f);
        }
    }
    report.rejudge(found, true);
}

/// Every record's findings, verdict and import line for a person, then
/// the count ready when there are several.
fn render_human(
    args: &CheckArgs,
    reports: &[CheckReport],
    records: &[cbr::record::Decoded],
    origins: &[String],
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for ((r, d), origin) in reports.iter().zip(records).zip(origins) {
        writeln!(
            out,
            "backup {} ({})",
            cbr::escape::terminal(r.backup_id.as_deref().unwrap_or("<no id>")),
            cbr::escape::terminal(origin)
        )?;
        // Findings about this record name where it was read; those
        // about its parents (--deep) their backup.
        let subject = |_: usize, f: &cbr::findings::Finding| match &f.backup_id {
            Some(id) if r.backup_id.as_ref() == Some(id) => Some(format!("backup {id} ({origin})")),
            _ => cbr::findings::backup_subject(f),
        };
        cbr::findings::render_human_with(&r.findings, &mut out, &subject)?;
        render_verdict(&mut out, r, args.deep)?;
        if r.ok && !args.no_advice {
            writeln!(
                out,
                "{}",
                advice(d, &args.target_service, args.target_project.as_deref())
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
    Ok(())
}

/// The verdict of one record for a person: what Cinder 29 will do with
/// it, and what to do about it.
fn render_verdict(out: &mut dyn Write, r: &CheckReport, deep: bool) -> Result<()> {
    let j = &r.judgement;
    let line = cbr::verdict::verdict_line(j, &r.findings);
    writeln!(out, "verdict: {}", cbr::escape::terminal(&line))?;
    for a in &j.advice {
        writeln!(out, "  to do: {}", cbr::escape::terminal(a))?;
    }
    if !deep && j.verdict != Verdict::Ready {
        writeln!(
            out,
            "  structure checked; data not read (add --deep to read every chunk)"
        )?;
    }
    Ok(())
}

/// The import to run on the target: the record's own service name (the
/// target's driver must start with it) and its url, every word quoted for
/// the shell. Cinder gives an imported backup to the project the
/// credentials are scoped to, so the line is scoped: to `--target-project`,
/// else to the record's own project (after `rewrite`, the target's); an
/// unscoped import would land in the importing admin's own project.
fn advice(d: &cbr::record::Decoded, target_service: &str, target: Option<&str>) -> String {
    let service = super::service_for(None, d);
    let own = cbr::record::lint::id_field(&d.record, "project_id")
        .filter(|p| cbr::record::lint::is_keystone_id(p));
    let project = target.or(own);
    let mut words = vec!["openstack"];
    if let Some(p) = project {
        words.extend(["--os-project-id", p]);
    }
    words.extend(["volume", "backup", "record", "import", &service]);
    // A line to paste into a shell, shown on a terminal: each word
    // shell-quoted, then any control character made visible.
    let line = cbr::escape::terminal(&cbr::escape::shell_line(&words)).into_owned();
    let svc = cbr::escape::terminal(target_service);
    let mut text = match (target, project) {
        (Some(p), _) => format!("import on the target ({svc}) into project {p} with:\n  {line} "),
        (None, Some(p)) => format!(
            "import on the target ({svc}) into the record's project {p} (--target-project for another) with:\n  {line} "
        ),
        (None, None) => format!(
            "import on the target ({svc}) scoped to the target project \
             (add --os-project-id P: the backup goes to the project the credentials are scoped to) with:\n  {line} "
        ),
    };
    // The url, the last word, written straight into the text (it can be
    // tens of MB): base64 is a word the shell and the terminal take as it is.
    cbr::record::codec::encode_json_into(&mut text, &d.json_cow(&d.record, false), None);
    text
}
