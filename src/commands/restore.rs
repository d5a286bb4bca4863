//! `cbr restore`: a backup's volume image, verified, sparse, atomic.

use super::signals::remove_on_signal as set_partial;
use super::{Global, Outcome, human_bytes, print_findings, resolve_share};
use crate::cli::RestoreArgs;
use anyhow::{Context, Result, bail};
use cbr::escape::terminal as t;
use cbr::findings::Findings;
use cbr::progress::Progress;
use cbr::restore::{Plan, RestoreOptions, RestoreReport, plan, restore};
use cbr::share::Share;
use cbr::share::out::{Gate, OutDir, Target};
use cbr::share::scan::{Backups, IndexOptions, index};
use std::io::Write;

pub fn run(g: &Global, args: RestoreArgs) -> Result<Outcome> {
    if args.output.as_os_str() == "-" {
        bail!(
            "--output -: images are written to a seekable file or device, not to standard output"
        );
    }
    let output = args.output.display().to_string();
    let share = resolve_share(g, &args.share)?;
    // The output through the gate out, at once: inside the share, a FIFO,
    // socket or character device, an existing file without --force: exit 2
    // before the share is read.
    let gate = Gate::new(&share);
    let target = if args.dry_run {
        gate.refuse_inside("--output", &args.output)?;
        None
    } else {
        Some(gate.target("--output", &args.output, args.force)?)
    };
    let found = index(&share, IndexOptions::default())?;
    let top = match found.find(&args.id) {
        Ok(t) => t,
        Err(e) => return refused(&found.findings, &args.id, &output, e),
    };
    // Only the chain is read in full.
    let on = found.on(&share);
    let chain = match on.get(top.id()) {
        Some(b) => on.chain(b),
        None => bail!(
            "backup {} changed on the share during the run: its metadata no longer reads",
            t(top.id())
        ),
    };
    let top = chain.last().cloned().context("an empty chain")?;
    let plan = plan(&share, &on, chain.iter().map(|b| &**b).collect())?;
    if plan.findings.has_errors() {
        return failed(
            &plan.findings,
            &format!(
                "FAILED: {} cannot be restored as it is on the share (the findings above); nothing was written to {}",
                t(&top.id),
                t(&output)
            ),
        );
    }
    let Some(target) = target else {
        render_dry_run(&plan, &top.id, &output)?;
        return Ok(Outcome::Ok);
    };
    let started = std::time::Instant::now();
    let report = match write_image(g, &args, &share, &plan, target, &top.id)? {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    if !g.quiet {
        eprintln!(
            "cbr: restored {} ({} from {} chunk(s) of {} backup(s), {} written) to {} in {:.1}s; every block verified",
            t(&top.id),
            human_bytes(plan.size),
            report.chunks_read,
            plan.chain.len(),
            human_bytes(report.bytes_written),
            t(&output),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Outcome::Ok)
}

/// The image of `top` written to the target, every block verified; Err:
/// it is not what the backup holds (said on stdout), the outcome.
fn write_image(
    g: &Global,
    args: &RestoreArgs,
    share: &Share,
    plan: &Plan<'_>,
    target: Target,
    top: &str,
) -> Result<Result<RestoreReport, Outcome>> {
    let output = args.output.display().to_string();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = super::progress::make(args.progress, g.quiet);
    let opts = |fresh| RestoreOptions {
        fresh,
        jobs,
        md5: args.md5,
    };
    let report = match target {
        Target::Device(f) => {
            // A block device: written in place, zeros too.
            let r = restore(share, plan, &f, &opts(false), progress.as_ref())?;
            f.sync_all()
                .with_context(|| format!("--output {output}: cannot sync"))?;
            r
        }
        Target::File { dir, name } => {
            match write_file(share, plan, &dir, &name, &opts(true), progress.as_ref())? {
                Ok(r) => r,
                Err(r) => {
                    return failed(
                        &r.findings,
                        &format!(
                            "FAILED: the image of {} is not what the backup holds; nothing was written to {}",
                            t(top),
                            t(&output)
                        ),
                    )
                    .map(Err);
                }
            }
        }
    };
    if report.findings.has_errors() {
        return failed(
            &report.findings,
            &format!(
                "FAILED: {} was written in place and is not what the backup holds",
                t(&output)
            ),
        )
        .map(Err);
    }
    Ok(Ok(report))
}

/// A backup not found: one whose metadata the scan refused is said why
/// (exit 1); else the error.
fn refused(
    found: &Findings,
    id: &str,
    output: &str,
    e: cbr::share::scan::ScanError,
) -> Result<Outcome> {
    let related = super::findings_about(found, id);
    if related.is_empty() {
        return Err(e.into());
    }
    failed(
        &related,
        &format!(
            "FAILED: backup {} cannot be restored: its metadata was refused (above); nothing was written to {}",
            t(id),
            t(output)
        ),
    )
}

/// A restore that wrote nothing good: the findings, then `line`, on
/// stdout; exit 1.
fn failed(findings: &Findings, line: &str) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    print_findings(&mut out, findings)?;
    writeln!(out, "{line}")?;
    Ok(Outcome::Problems)
}

/// A regular file: the image written beside it (removed on a signal) and
/// renamed over it once every block verified; Err: it did not, and
/// nothing was put in place.
fn write_file(
    share: &Share,
    plan: &Plan<'_>,
    dir: &OutDir,
    name: &str,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<Result<RestoreReport, RestoreReport>> {
    let tmp = dir.create_temp(name)?;
    // SIGINT, SIGTERM or SIGHUP from here on removes it (signals.rs).
    set_partial(Some(tmp.path.clone()));
    tmp.file
        .set_len(plan.size)
        .context("cannot size the image")?;
    let r = restore(share, plan, &tmp.file, opts, progress)?;
    if r.findings.has_errors() {
        drop(tmp);
        set_partial(None);
        return Ok(Err(r));
    }
    tmp.persist(name)?;
    set_partial(None);
    Ok(Ok(r))
}

/// `--dry-run`: what each chunk of the chain gives the image of `top`.
fn render_dry_run(plan: &Plan<'_>, top: &str, output: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "restore of {} ({} in {} backup(s), full first) to {}:",
        t(top),
        human_bytes(plan.size),
        plan.chain.len(),
        t(output)
    )?;
    for b in &plan.chain {
        writeln!(
            out,
            "backup {}{}",
            t(&b.id),
            if b.parent_id().is_none() {
                " (full)"
            } else {
                ""
            }
        )?;
        for c in plan.chunks.iter().filter(|c| c.backup.id == b.id) {
            let live: u64 = c.live.iter().map(|p| p.end - p.start).sum();
            writeln!(
                out,
                "  {:<8} {:>14}..{:<14} {}",
                t(c.object.name.rsplit('-').next().unwrap_or(&c.object.name)),
                c.object.offset,
                c.object.offset + c.object.length,
                if live == 0 {
                    "overwritten by later backups: not read".to_string()
                } else if live == c.object.length {
                    "written whole".to_string()
                } else {
                    format!(
                        "{} of it written (the rest is overwritten later)",
                        human_bytes(live)
                    )
                }
            )?;
        }
    }
    for u in &plan.uncovered {
        writeln!(
            out,
            "  zeros    {:>14}..{:<14} no chunk covers it",
            u.start, u.end
        )?;
    }
    out.flush()?;
    Ok(())
}
