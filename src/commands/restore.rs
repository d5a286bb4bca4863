//! `cbr restore`: a backup's volume image, verified, sparse, atomic.

use super::signals::remove_on_signal as set_partial;
use super::{Global, Outcome, human_bytes, print_findings, resolve_share};
use crate::cli::RestoreArgs;
use anyhow::{Context, Result, bail};
use cbr::escape::terminal as t;
use cbr::restore::{RestoreOptions, plan, restore};
use cbr::share::out::{Gate, Target};
use cbr::share::scan::scan;
use std::io::Write;

pub fn run(g: &Global, args: RestoreArgs) -> Result<Outcome> {
    if args.output.as_os_str() == "-" {
        bail!(
            "--output -: images are written to a seekable file or device, not to standard output"
        );
    }
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
    let found = scan(&share)?;
    let top = match found.find(&args.id) {
        Ok(t) => t,
        Err(e) => {
            // A backup whose metadata the scan refused: say why, exit 1.
            let related = super::findings_about(&found, &args.id);
            if related.is_empty() {
                return Err(e.into());
            }
            let mut out = std::io::stdout().lock();
            print_findings(&mut out, &related)?;
            writeln!(
                out,
                "FAILED: backup {} cannot be restored: its metadata was refused (above); nothing was written to {}",
                t(&args.id),
                t(&args.output.display().to_string())
            )?;
            return Ok(Outcome::Problems);
        }
    };
    let plan = plan(&share, &found, top)?;
    if plan.findings.has_errors() {
        let mut out = std::io::stdout().lock();
        print_findings(&mut out, &plan.findings)?;
        writeln!(
            out,
            "FAILED: {} cannot be restored as it is on the share (the findings above); nothing was written to {}",
            t(&top.id),
            t(&args.output.display().to_string())
        )?;
        return Ok(Outcome::Problems);
    }
    if args.dry_run {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "restore of {} ({} in {} backup(s), full first) to {}:",
            t(&top.id),
            human_bytes(plan.size),
            plan.chain.len(),
            t(&args.output.display().to_string())
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
        return Ok(Outcome::Ok);
    }
    let Some(target) = target else {
        bail!("--output {}: no target", args.output.display());
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = super::progress::make(args.progress, g.quiet);
    let started = std::time::Instant::now();
    let report = match target {
        Target::Device(f) => {
            // A block device: written in place, zeros too.
            let r = restore(
                &share,
                &plan,
                &f,
                &RestoreOptions {
                    fresh: false,
                    jobs,
                    md5: args.md5,
                },
                progress.as_ref(),
            )?;
            f.sync_all()
                .with_context(|| format!("--output {}: cannot sync", args.output.display()))?;
            r
        }
        Target::File { dir, name } => {
            let tmp = dir.create_temp(&name)?;
            // SIGINT, SIGTERM or SIGHUP from here on removes it (signals.rs).
            set_partial(Some(tmp.path.clone()));
            tmp.file
                .set_len(plan.size)
                .context("cannot size the image")?;
            let r = restore(
                &share,
                &plan,
                &tmp.file,
                &RestoreOptions {
                    fresh: true,
                    jobs,
                    md5: args.md5,
                },
                progress.as_ref(),
            )?;
            if r.findings.has_errors() {
                drop(tmp);
                set_partial(None);
                let mut out = std::io::stdout().lock();
                print_findings(&mut out, &r.findings)?;
                writeln!(
                    out,
                    "FAILED: the image of {} is not what the backup holds; nothing was written to {}",
                    t(&top.id),
                    t(&args.output.display().to_string())
                )?;
                return Ok(Outcome::Problems);
            }
            tmp.persist(&name)?;
            set_partial(None);
            r
        }
    };
    if report.findings.has_errors() {
        let mut out = std::io::stdout().lock();
        print_findings(&mut out, &report.findings)?;
        writeln!(
            out,
            "FAILED: {} was written in place and is not what the backup holds",
            t(&args.output.display().to_string())
        )?;
        return Ok(Outcome::Problems);
    }
    if !g.quiet {
        eprintln!(
            "cbr: restored {} ({} from {} chunk(s) of {} backup(s), {} written) to {} in {:.1}s; every block verified",
            t(&top.id),
            human_bytes(plan.size),
            report.chunks_read,
            plan.chain.len(),
            human_bytes(report.bytes_written),
            t(&args.output.display().to_string()),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Outcome::Ok)
}
