//! `cbr verify`: is every byte on the share still what Cinder wrote?

use super::journaled::Journaled;
use super::{Global, JsonDoc, Outcome, human_bytes, print_findings, resolve_share};
use crate::cli::VerifyArgs;
use anyhow::{Result, bail};
use cbr::findings::Findings;
use cbr::share::scan::{IndexOptions, ShareIndex, Summary, index};
use cbr::verify::{VerifyOptions, VerifyReport, in_shard};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Parse `K/N` (1 ≤ K ≤ N).
fn parse_shard(s: &str) -> Result<Shard> {
    let parsed = s
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => bail!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/7"),
    }
}

/// A date for `--since`: `YYYY-MM-DD` or an RFC 3339 / Cinder timestamp;
/// compared as text, normalised to `YYYY-MM-DD HH:MM:SS`.
fn normalise_date(s: &str) -> Option<String> {
    let t = s.trim().replace('T', " ");
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 10
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return None;
    }
    let time = t.get(11..19).filter(|x| x.len() == 8).unwrap_or("00:00:00");
    Some(format!("{} {time}", &t[..10]))
}

pub fn run(g: &Global, args: VerifyArgs) -> Result<Outcome> {
    let share = resolve_share(g, &args.share)?;
    let (shard, since) = selection_args(&args)?;
    let found = index(&share, IndexOptions::default())?;
    let (selected, refused) = select(&found, &args.ids, shard, since.as_deref())?;
    let opts = VerifyOptions {
        deep: args.deep,
        jobs: args.jobs.unwrap_or_else(|| VerifyOptions::default().jobs),
        sample: args.sample.map(|p| (p, args.seed)),
        md5: args.md5,
    };
    let progress = super::progress::make(args.progress, g.quiet);
    let started = Instant::now();
    // Windows and budgets first: a bad one is exit 2 before anything opens.
    let older = window("--older-than", args.older_than.as_deref())?;
    let budget = window("--budget", args.budget.as_deref())?.map(Duration::from_secs);
    // The journal, and what it lets this run skip.
    let journal_path = super::journal::path_of(&args.journal);
    if journal_path.is_some() && !args.deep {
        bail!("--journal records chunk verifications: it needs --deep");
    }
    let journal = Journaled::open(
        &share,
        journal_path.as_deref(),
        args.shard.as_deref(),
        args.resume,
        older,
    )?;
    let started_bytes = AtomicU64::new(0);
    let stop = |o: &cbr::share::ChunkObject| {
        let before = started_bytes.fetch_add(o.length, Ordering::Relaxed);
        budget.is_some_and(|b| started.elapsed() >= b)
            || args.max_bytes.is_some_and(|m| before >= m)
    };
    let budgeted = budget.is_some() || args.max_bytes.is_some();
    // Share-wide findings belong to a whole-share verification; sharded,
    // to shard 1, so that the shards together report them once.
    let share_wide = args.ids.is_empty() && shard.is_none_or(|(k, _)| k == 1) && since.is_none();
    // The findings, in order: the share's (when the run covers it), those
    // of backups asked for that the walk refused, then each backup's as it
    // is verified.
    let mut first = Findings::new();
    if share_wide {
        first.extend(found.findings.iter().cloned());
    }
    let first_errors = (share_wide && found.findings.has_errors()) || !refused.is_empty();
    first.extend(refused.0);
    let mut sink = Sink::new(&args);
    sink.findings(first)?;
    let result = journal.with_hooks(budgeted.then_some(&stop as _), |hooks| {
        cbr::verify::verify_stream(
            &share,
            &found,
            &selected,
            &opts,
            progress.as_ref(),
            hooks,
            &mut |f| sink.findings(f).map_err(std::io::Error::other),
        )
    });
    // A run a budget stopped stays open: --resume continues it.
    let mut report = result?;
    journal.finish_run(report.complete)?;
    report.ok = report.ok && !first_errors;
    let secs = started.elapsed().as_secs_f64();
    let emitted = sink.emitted();
    sink.finish(&mut report, opts.deep)?;
    if !g.quiet && opts.deep {
        eprintln!("{}", summary_line(&report, emitted, secs));
    }
    Ok(if report.ok {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// Where verify's findings go as they come: a JSON document written as it
/// goes (`--json`: `findings` first, the counts after them), one JSON
/// object a line (`--json-lines`), or, for a person, gathered and printed
/// by severity at the end.
struct Sink {
    to: To,
    /// Findings written so far.
    emitted: usize,
}

enum To {
    Json(JsonDoc<'static>),
    Lines(std::io::BufWriter<std::io::StdoutLock<'static>>),
    Human(Page),
}

/// Findings for a person: printed grouped by severity a page at a time
/// (a run with fewer than [`PAGE`] findings prints them all as one group
/// per severity, as before); only the failed backups' ids are kept across
/// pages, for the verdict line.
#[derive(Default)]
struct Page {
    findings: Findings,
    failed: Failed,
}

/// Findings printed together, at most.
const PAGE: usize = 10_000;

/// The backups with an error finding, in the order first found, and the
/// errors not about a backup.
#[derive(Default)]
struct Failed {
    ids: Vec<String>,
    seen: std::collections::HashSet<String>,
    other: usize,
}

impl Failed {
    fn add(&mut self, findings: &Findings) {
        for f in findings.errors() {
            match f.backup_id.as_deref() {
                Some(id) if !self.seen.contains(id) => {
                    self.seen.insert(id.to_string());
                    self.ids.push(id.to_string());
                }
                Some(_) => {}
                None => self.other += 1,
            }
        }
    }
    fn any(&self) -> bool {
        !self.ids.is_empty() || self.other > 0
    }
}

impl Sink {
    fn new(args: &VerifyArgs) -> Sink {
        Sink {
            to: To::new(args),
            emitted: 0,
        }
    }
    fn emitted(&self) -> usize {
        self.emitted
    }
    fn findings(&mut self, f: Findings) -> Result<()> {
        self.emitted += f.len();
        self.to.findings(f)
    }
    fn finish(self, report: &mut VerifyReport, deep: bool) -> Result<()> {
        self.to.finish(report, deep)
    }
}

impl To {
    fn new(args: &VerifyArgs) -> To {
        let out = || std::io::BufWriter::new(std::io::stdout().lock());
        if args.json {
            match JsonDoc::open(out()) {
                Ok(mut d) => match d.array("findings") {
                    Ok(()) => To::Json(d),
                    Err(_) => To::Human(Page::default()),
                },
                Err(_) => To::Human(Page::default()),
            }
        } else if args.json_lines {
            To::Lines(out())
        } else {
            To::Human(Page::default())
        }
    }

    fn findings(&mut self, f: Findings) -> Result<()> {
        match self {
            To::Json(d) => {
                for x in &f {
                    d.item(x)?;
                }
                d.flush()?;
            }
            To::Lines(w) => {
                for x in &f {
                    serde_json::to_writer(&mut *w, &serde_json::json!({ "finding": x }))?;
                    writeln!(w)?;
                }
                w.flush()?;
            }
            To::Human(page) => {
                page.failed.add(&f);
                page.findings.extend(f.0);
                if page.findings.len() >= PAGE {
                    let mut out = std::io::stdout().lock();
                    print_findings(&mut out, &page.findings)?;
                    out.flush()?;
                    page.findings = Findings::new();
                }
            }
        }
        Ok(())
    }

    /// The counts (and for a person, the findings and the verdict line).
    fn finish(self, report: &mut VerifyReport, deep: bool) -> Result<()> {
        let counts = |report: &VerifyReport| -> Result<serde_json::Value> {
            let mut v = serde_json::to_value(report)?;
            if let Some(o) = v.as_object_mut() {
                o.shift_remove("findings");
            }
            Ok(v)
        };
        match self {
            To::Json(mut d) => {
                d.close_array()?;
                if let serde_json::Value::Object(o) = counts(report)? {
                    for (k, v) in o {
                        d.field(&k, &v)?;
                    }
                }
                d.close()?;
            }
            To::Lines(mut w) => {
                serde_json::to_writer(&mut w, &serde_json::json!({ "report": counts(report)? }))?;
                writeln!(w)?;
                w.flush()?;
            }
            To::Human(page) => render_human(report, page, deep)?,
        }
        Ok(())
    }
}

/// `K/N`: shard K of N.
type Shard = (u64, u64);

/// `--shard` and `--since`, parsed; `--sample` checked.
fn selection_args(args: &VerifyArgs) -> Result<(Option<Shard>, Option<String>)> {
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let since = match &args.since {
        Some(s) => Some(normalise_date(s).ok_or_else(|| {
            anyhow::anyhow!(
                "--since {s:?}: expected a date like 2026-11-24 or 2026-11-24T06:00:00Z"
            )
        })?),
        None => None,
    };
    if let Some(p) = args.sample
        && !(p > 0.0 && p <= 100.0)
    {
        bail!("--sample {p}: expected a percentage above 0 and at most 100");
    }
    Ok((shard, since))
}

/// A `--older-than` / `--budget` window in seconds, or None.
fn window(flag: &str, arg: Option<&str>) -> Result<Option<u64>> {
    arg.map(|d| cbr::journal::parse_window(d).map_err(|e| anyhow::anyhow!("{flag} {e}")))
        .transpose()
}

/// The backups asked for (with their chains), or all of them, in the
/// shard and since the date; and the findings of those asked for whose
/// metadata the scan refused.
fn select<'a>(
    found: &'a ShareIndex,
    ids: &[String],
    shard: Option<Shard>,
    since: Option<&str>,
) -> Result<(Vec<&'a Summary>, Findings)> {
    let mut selected: Vec<&Summary> = Vec::new();
    let mut refused = Findings::new();
    if ids.is_empty() {
        selected.extend(found.backups.iter());
    }
    let mut have = std::collections::HashSet::new();
    for id in ids {
        let b = match found.find(id) {
            Ok(b) => b,
            Err(e) => {
                let related = super::findings_about(&found.findings, id);
                if related.is_empty() {
                    return Err(e.into());
                }
                refused.extend(related);
                continue;
            }
        };
        for c in found.chain(b) {
            if have.insert(c.id()) {
                selected.push(c);
            }
        }
    }
    selected.retain(|b| shard.is_none_or(|(k, n)| in_shard(b.id(), k, n)));
    if let Some(since) = since {
        selected.retain(|b| {
            b.created_at()
                .and_then(normalise_date)
                .is_some_and(|c| c.as_str() >= since)
        });
    }
    Ok((selected, refused))
}

/// The findings and the verdict line, on stdout.
fn render_human(report: &VerifyReport, page: Page, deep: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    print_findings(&mut out, &page.findings)?;
    let verdict = if report.ok {
        "OK: no errors found".to_string()
    } else if !page.failed.any() {
        "INCOMPLETE: no errors in what was read, but not every chunk was read (below)".to_string()
    } else {
        failed_line(&page.failed)
    };
    let detail = if deep {
        deep_detail(report)
    } else {
        ", metadata only: add --deep to read every chunk".into()
    };
    writeln!(
        out,
        "{verdict} ({} backup(s){detail})",
        report.backups_checked
    )?;
    out.flush()?;
    Ok(())
}

/// What a `--deep` run read and how each byte was proven (the verdict
/// line's parenthesis, after the backup count).
fn deep_detail(report: &VerifyReport) -> String {
    let p = &report.proven_by;
    let mut s = format!(
        ", {} chunk(s) read; proven: {} by sha256, {} zero blocks by comparison",
        report.chunks_checked,
        human_bytes(p.sha256),
        human_bytes(p.zero_compare)
    );
    if p.md5_only > 0 {
        s.push_str(&format!(
            ", {} by md5 alone (no sha256 entry covers them)",
            human_bytes(p.md5_only)
        ));
    }
    if p.md5_also > 0 {
        s.push_str(&format!(
            ", md5 also computed over {}",
            human_bytes(p.md5_also)
        ));
    }
    if report.chunks_skipped > 0 {
        s.push_str(&format!(
            "; {} chunk(s) skipped, already proven (journal)",
            report.chunks_skipped
        ));
    }
    if report.chunks_deferred > 0 {
        s.push_str(&format!(
            "; budget spent: {} chunk(s) not read, nothing vouched for them (left for the next run)",
            report.chunks_deferred
        ));
    }
    s
}

/// The stderr summary of a `--deep` run that took `secs` and found
/// `findings` (written as they came, not held in the report).
fn summary_line(report: &VerifyReport, findings: usize, secs: f64) -> String {
    let rate = if secs > 0.0 {
        report.data_bytes as f64 / secs
    } else {
        0.0
    };
    format!(
        "cbr: verified {} backup(s), {} chunk(s), {} read ({} of data) in {secs:.1}s, {}/s, {} finding(s)",
        report.backups_checked,
        report.chunks_checked,
        human_bytes(report.bytes_read),
        human_bytes(report.data_bytes),
        human_bytes(rate as u64),
        findings
    )
}

/// How many affected backups a `FAILED:` line names before "and N more".
const NAMED: usize = 5;

/// `FAILED: errors in 7 backup(s): a, b, c, d, e and 2 more` — the
/// backups with an error finding, in the order found; errors not about a
/// backup (the share's) are counted apart.
fn failed_line(failed: &Failed) -> String {
    let (ids, other) = (&failed.ids, failed.other);
    let mut s = if ids.is_empty() {
        "FAILED: errors found".to_string()
    } else {
        let named: Vec<String> = ids
            .iter()
            .take(NAMED)
            .map(|id| cbr::escape::terminal(id).into_owned())
            .collect();
        let mut s = format!(
            "FAILED: errors in {} backup(s): {}",
            ids.len(),
            named.join(", ")
        );
        if ids.len() > NAMED {
            s.push_str(&format!(" and {} more", ids.len() - NAMED));
        }
        s
    };
    if other > 0 && !ids.is_empty() {
        s.push_str(&format!("; {other} error(s) about the share itself"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("2/7").unwrap(), (2, 7));
        assert!(parse_shard("0/7").is_err());
        assert!(parse_shard("8/7").is_err());
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn since_dates() {
        assert_eq!(normalise_date("2026-11-24").unwrap(), "2026-11-24 00:00:00");
        assert_eq!(
            normalise_date("2026-11-24 06:09:19.309481+00:00").unwrap(),
            "2026-11-24 06:09:19"
        );
        assert_eq!(
            normalise_date("2026-11-24T06:09:19Z").unwrap(),
            "2026-11-24 06:09:19"
        );
        assert!(normalise_date("yesterday").is_none());
    }
}
