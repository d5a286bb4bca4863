//! `cbr plan`: a batch of exports as an ordered, checked, resumable runbook.

use super::journaled::Journaled;
use super::{Global, Outcome, decode_inputs, read_inputs, resolve_share};
use crate::cli::{PlanArgs, PlanFormat, PlanRestore};
use anyhow::{Context, Result, bail};
use cbr::escape::terminal;
use cbr::escape::terminal as t;
use cbr::mapping::{MapLine, bad_id, merge};
use cbr::plan::{
    Listed, Mapping, Records, Recovering, RestoreMode, Target, make, parse_target_backups,
    per_project,
};
use cbr::record::Decoded;
use cbr::share::scan::ShareIndex;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// A date as `YYYY-MM-DD[ HH:MM:SS]` for comparison, or None.
fn date_key(s: &str) -> Option<String> {
    let t = s.trim().replace('T', " ");
    let b = t.as_bytes();
    let ok = b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    ok.then(|| t.chars().take(19).collect())
}

// Files read here are the operator's inputs (maps, lists), not the share;
// files written go through the gate out.
pub fn run(g: &Global, args: PlanArgs) -> Result<Outcome> {
    let map = mapping(&args)?;
    let since = args.since.as_deref().map(since_key).transpose()?;
    let listed = target_backups(&args)?;
    refuse_flags(&args)?;
    let share = if want_share(&args) {
        Some(resolve_share(g, &args.share)?)
    } else {
        None
    };
    let share_path = share.as_ref().map(share_path).transpose()?;
    let gate = share
        .as_ref()
        .map_or_else(cbr::share::out::Gate::none, cbr::share::out::Gate::new);
    if let Some(dir) = &args.per_project {
        gate.refuse_inside("--per-project", dir)?;
    }
    // The plan's scratch file, outside every share: made first, so that
    // a TMPDIR inside the share is refused before any work.
    let spill = cbr::spill::Spill::new(&gate)?;
    let index = share
        .as_ref()
        .map(|s| cbr::share::scan::index(s, Default::default()))
        .transpose()?;
    // The records: given, and/or recovered from the share (one at a time,
    // as the plan is decided: never all at once).
    let (mut given, mut origins) = given(&args)?;
    super::refuse_duplicate_keys(&given)?;
    // A backup given as a record is planned from it, not recovered (even
    // when --id, --project or --since leave its record out).
    let given_ids: HashSet<String> = given
        .iter()
        .filter_map(|d| cbr::record::lint::id_field(&d.record, "id").map(str::to_lowercase))
        .collect();
    filter(&args, since.as_deref(), &mut given, &mut origins);
    let recovering = match (&share, &index) {
        (Some(s), Some(ix)) if args.from_share => {
            Some(recovering(g, &args, since.as_deref(), s, ix, &given_ids))
        }
        _ => None,
    };
    let records = Records {
        given,
        origins,
        recovering,
    };
    // One record per backup id: the same one twice is a note, two
    // different ones an error (the order of the inputs would decide).
    for note in cbr::plan::same_ids(&records.given, &records.origins)? {
        if !g.quiet {
            eprintln!("cbr: plan: note: {}", terminal(&note));
        }
    }
    let excluded = exclusions(&args, &records, g)?;
    let target = target(&args, listed, share_path, excluded);
    if let Some(ix) = &index
        && !g.quiet
    {
        warn_root_suspect(ix);
    }
    let target = match (&share, &index) {
        (Some(s), Some(ix)) if args.deep => Target {
            damaged: deep_verify(g, &args, s, ix, &records, &target)?,
            ..target
        },
        _ => target,
    };
    let unrecovered = |id: &str, why: &str| {
        if !g.quiet {
            eprintln!("cbr: plan: backup {} not recovered: {}", t(id), t(why));
        }
    };
    let plan = make(
        &records,
        &map,
        &target,
        share.as_ref().zip(index.as_ref()),
        spill,
        &unrecovered,
    )?;
    write_plan(g, &args, &plan, &gate)?;
    if !g.quiet {
        render_summary(&plan, share.is_none())?;
    }
    Ok(if plan.summary.refused == 0 {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// `--since`: its date as [`date_key`] compares it.
fn since_key(s: &str) -> Result<String> {
    date_key(s).ok_or_else(|| {
        anyhow::anyhow!("--since {s:?}: expected a date like 2026-11-24 or 2026-11-24T06:00:00Z")
    })
}

/// A --share one level off: said before every record is refused.
fn warn_root_suspect(found: &ShareIndex) {
    for w in found
        .findings
        .iter()
        .filter(|w| w.code == "share-root-suspect")
    {
        eprintln!("cbr: plan: warning: {}", terminal(&w.message));
    }
}

/// `--target-backups`: the target's own backups, as listed.
#[allow(clippy::disallowed_methods)] // std::fs::read_to_string of --target-backups
fn target_backups(args: &PlanArgs) -> Result<HashMap<String, Listed>> {
    Ok(match &args.target_backups {
        Some(f) => parse_target_backups(
            &std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the target's backup list {}", f.display()))?,
            &f.display().to_string(),
        )?,
        None => Default::default(),
    })
}

/// Flags that need others.
fn refuse_flags(args: &PlanArgs) -> Result<()> {
    if args.deep && !want_share(args) {
        bail!(
            "--deep reads the backups' data: give the share (--share DIR, CBR_SHARE or --cinder-conf)"
        );
    }
    if args.journal.journal.is_some() && !args.deep {
        bail!(
            "--journal records (and with --older-than accepts) chunk verifications: it needs --deep"
        );
    }
    Ok(())
}

/// The share's path as the script names it in its `cbr check --share`
/// commands: a path that is not UTF-8 could only be written there changed.
fn share_path(s: &cbr::share::Share) -> Result<String> {
    // A remote share's root is its URL: not a path to make absolute.
    let abs = match s.local_root() {
        Some(_) => std::path::absolute(&s.root).unwrap_or_else(|_| s.root.clone()),
        None => s.root.clone(),
    };
    match abs.to_str() {
        Some(p) => Ok(p.to_string()),
        None => bail!(
            "the share path {} is not UTF-8: the plan's commands name it and cannot \
             write it exactly; give the share under a UTF-8 path (a bind mount or \
             a link to it)",
            t(&abs.to_string_lossy())
        ),
    }
}

/// The records given (none with only `--from-share`), each with where it
/// was read.
fn given(args: &PlanArgs) -> Result<(Vec<Decoded>, Vec<String>)> {
    let mut records: Vec<Decoded> = Vec::new();
    let mut origins: Vec<String> = Vec::new();
    if !args.inputs.is_empty() || !args.from_share {
        for input in read_inputs(&args.inputs)? {
            for d in decode_inputs(std::slice::from_ref(&input))? {
                origins.push(format!("{} line {}", input.name, d.line));
                records.push(d);
            }
        }
    }
    Ok((records, origins))
}

/// `--from-share`: every backup of the share not given as a record
/// already (those given are planned), to be recovered as the plan is
/// decided. `--id` picks by the share's ids; `--project` and `--since`
/// read the records, so each is recovered once here to pick it.
fn recovering<'a>(
    g: &Global,
    args: &PlanArgs,
    since: Option<&str>,
    s: &'a cbr::share::Share,
    ix: &'a ShareIndex,
    given: &HashSet<String>,
) -> Recovering<'a> {
    use rayon::prelude::*;
    let mut kept_given = 0;
    let mut positions = Vec::new();
    for (p, b) in ix.backups.iter().enumerate() {
        if !given.is_empty() && given.contains(&b.id().to_lowercase()) {
            kept_given += 1;
            continue;
        }
        if args.ids.is_empty() || args.ids.iter().any(|x| b.id().starts_with(x.as_str())) {
            positions.push(u32::try_from(p).unwrap_or(u32::MAX));
        }
    }
    if kept_given > 0 && !g.quiet {
        eprintln!(
            "cbr: plan: note: {kept_given} backup(s) of the share are also given as records: \
             the given records are planned, not the recovered ones"
        );
    }
    let mut r = Recovering {
        share: s,
        index: ix,
        positions,
        opts: cbr::recover::RecoverOptions {
            project_id: None,
            user_id: None,
            service: args.target_service.clone(),
        },
    };
    if !args.projects.is_empty() || since.is_some() {
        // A backup that cannot be recovered is kept: the plan says why.
        let keep: Vec<bool> = (0..r.positions.len())
            .into_par_iter()
            .map(|k| r.record(k).map_or(true, |d| keeps(args, since, &d)))
            .collect();
        let mut k = keep.iter();
        r.positions.retain(|_| k.next().copied().unwrap_or(false));
    }
    r
}

/// `--id`, `--project`, `--since`: the records kept (origins stay aligned
/// with the records).
fn filter(
    args: &PlanArgs,
    since: Option<&str>,
    records: &mut Vec<Decoded>,
    origins: &mut Vec<String>,
) {
    let keep: Vec<bool> = records.iter().map(|d| keeps(args, since, d)).collect();
    let mut k = keep.iter();
    records.retain(|_| k.next().copied().unwrap_or(false));
    let mut k = keep.iter();
    origins.retain(|_| k.next().copied().unwrap_or(false));
}

/// Whether `--id`, `--project` and `--since` keep record `d`.
fn keeps(args: &PlanArgs, since: Option<&str>, d: &Decoded) -> bool {
    let field = |k: &str| d.record.get(k).and_then(|v| v.as_str());
    let id = field("id").unwrap_or("");
    (args.ids.is_empty() || args.ids.iter().any(|p| id.starts_with(p.as_str())))
        && (args.projects.is_empty()
            || field("project_id").is_some_and(|p| args.projects.iter().any(|x| x == p)))
        && since.is_none_or(|s| {
            field("created_at")
                .or_else(|| field("data_timestamp"))
                .and_then(date_key)
                .is_some_and(|c| c.as_str() >= s)
        })
}

/// The target as the arguments describe it (not yet what `--deep` found
/// damaged).
fn target(
    args: &PlanArgs,
    listed: HashMap<String, Listed>,
    share_path: Option<String>,
    excluded: HashSet<String>,
) -> Target {
    let existing: HashSet<String> = listed
        .iter()
        .filter(|(id, l)| cbr::plan::listed_problem(id, l).is_none())
        .map(|(id, _)| id.clone())
        .collect();
    Target {
        service: args.target_service.clone(),
        existing,
        volume_type: args.volume_type.clone(),
        availability_zone: args.availability_zone.clone(),
        share_path,
        restore: match args.restore {
            PlanRestore::All => RestoreMode::All,
            PlanRestore::Newest => RestoreMode::Newest,
            PlanRestore::None => RestoreMode::None,
        },
        volume_name: Some(args.volume_name.clone()),
        state: args.state.clone(),
        listed,
        damaged: Default::default(),
        deep: args.deep,
        excluded,
    }
}

/// The plan in its format: on stdout, or one script per project; each
/// step read back from the plan's spill as it is written.
fn write_plan(
    g: &Global,
    args: &PlanArgs,
    plan: &cbr::plan::Plan,
    gate: &cbr::share::out::Gate,
) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match (&args.format, &args.per_project) {
        (PlanFormat::Sh, Some(dir)) => write_per_project(g, plan, gate, dir)?,
        (PlanFormat::Sh, None) => cbr::plan::render_sh(plan, &mut out)?,
        (PlanFormat::Json, _) => {
            let mut doc = super::JsonDoc::open(&mut out)?;
            doc.field("summary", &plan.summary)?;
            doc.array("steps")?;
            for x in plan.steps() {
                doc.item(&x?)?;
            }
            doc.close_array()?;
            for (key, list) in [("skipped", false), ("refused", true)] {
                doc.array(key)?;
                let lefts: Box<dyn Iterator<Item = _>> = if list {
                    Box::new(plan.refused())
                } else {
                    Box::new(plan.skipped())
                };
                for l in lefts {
                    doc.item(&l?)?;
                }
                doc.close_array()?;
            }
            doc.close()?;
        }
        (PlanFormat::Md, _) => cbr::plan::render_md(plan, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// `--per-project DIR`: each file its project's steps, skips and refusals
/// only. Every script's path is vetted (a link planted there into the
/// share is refused) before any is written; each is written as it goes
/// beside its name and renamed onto it when whole.
fn write_per_project(
    g: &Global,
    plan: &cbr::plan::Plan,
    gate: &cbr::share::out::Gate,
    dir: &std::path::Path,
) -> Result<()> {
    let scripts: Vec<_> = per_project(plan)
        .into_iter()
        .map(|(project, sub)| (dir.join(format!("{project}.sh")), sub))
        .collect();
    for (path, _) in &scripts {
        gate.refuse_inside("--per-project", path)?;
    }
    gate.create_dir_all("--per-project", dir)?;
    for (path, sub) in scripts {
        gate.replace_with("--per-project", &path, &mut |w| {
            cbr::plan::render_sh(&sub, w).map_err(std::io::Error::other)
        })?;
        if !g.quiet {
            eprintln!(
                "cbr: plan: wrote {} ({} backup(s))",
                t(&path.display().to_string()),
                sub.summary.backups
            );
        }
    }
    Ok(())
}

/// The summary on stderr: counts, every refusal and skip, and a word when
/// no share was checked.
fn render_summary(plan: &cbr::plan::Plan, no_share: bool) -> Result<()> {
    let s = &plan.summary;
    eprintln!(
        "cbr: plan: {} backup(s) into {} project(s), {} GiB; {} skipped; {} refused",
        s.backups, s.projects, s.gib, s.skipped, s.refused
    );
    for l in plan.refused() {
        let l = l?;
        eprintln!("  refused {}: {}", t(&l.backup_id), t(&l.reason));
    }
    for l in plan.skipped() {
        let l = l?;
        eprintln!(
            "  skipped {}: {}",
            terminal(&l.backup_id),
            terminal(&l.reason)
        );
    }
    if no_share {
        eprintln!(
            "cbr: plan: the records were not checked against any share (give --share DIR, \
             CBR_SHARE or --cinder-conf to check each one as `cbr check` does)"
        );
    }
    Ok(())
}

fn want_share(args: &PlanArgs) -> bool {
    args.from_share || args.share.share.is_some() || args.share.cinder_conf.is_some()
}

/// The project mapping: every `--map-project` and `--map` line, checked
/// (ids, not names) and merged — a source mapped to two targets anywhere
/// is an error listing every such source.
#[allow(clippy::disallowed_methods)] // the --map file, not the share
fn mapping(args: &PlanArgs) -> Result<Mapping> {
    if let Some(d) = &args.default_project
        && let Some(why) = bad_id("--default-project", d, false)
    {
        bail!("{why}");
    }
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for m in &args.map_project {
        let Some((s, d)) = m
            .split_once('=')
            .filter(|(s, d)| !s.is_empty() && !d.is_empty())
        else {
            bad.push(format!("--map-project {m:?}: expected SRC=DST"));
            continue;
        };
        let problems = [
            bad_id("source", s, false),
            bad_id(&format!("target of {s}"), d, false),
        ];
        let before = bad.len();
        bad.extend(
            problems
                .into_iter()
                .flatten()
                .map(|w| format!("--map-project {m}: {w}")),
        );
        if bad.len() == before {
            lines.push(MapLine {
                source: s.to_string(),
                target: d.to_string(),
                user: None,
                origin: format!("--map-project {m}"),
            });
        }
    }
    if let Some(f) = &args.map {
        let name = f.display().to_string();
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read the map {name}"))?;
        match cbr::mapping::parse(&text, &name) {
            Ok(l) => lines.extend(l),
            Err(cbr::mapping::MapError::Invalid(e)) => bad.extend(e),
            Err(e) => return Err(e.into()),
        }
    }
    if !bad.is_empty() {
        bail!(
            "{} mapping(s) cbr cannot use:\n  {}",
            bad.len(),
            bad.join("\n  ")
        );
    }
    let mut map = Mapping {
        default_project: args.default_project.clone(),
        ..Default::default()
    };
    for l in merge(lines)? {
        map.projects.insert(l.source, (l.target, l.user));
    }
    Ok(map)
}

/// The backups left out by hand (`--exclude`, `--exclude-from`), as ids of
/// the records; an exclusion matching none of them is said.
#[allow(clippy::disallowed_methods)] // the operator's list, not the share
fn exclusions(args: &PlanArgs, records: &Records<'_>, g: &Global) -> Result<HashSet<String>> {
    let mut wanted: Vec<(String, String)> = args
        .exclude
        .iter()
        .map(|e| (e.trim().to_lowercase(), format!("--exclude {e}")))
        .collect();
    if let Some(f) = &args.exclude_from {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the exclusion list {}", f.display()))?;
        for (i, line) in text.lines().enumerate() {
            let t = line.split('#').next().unwrap_or("").trim();
            let Some(w) = t.split_whitespace().next() else {
                continue;
            };
            wanted.push((w.to_lowercase(), format!("{} line {}", f.display(), i + 1)));
        }
    }
    let mut out = HashSet::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    // The ids planned, sorted: those an exclusion is a prefix of are a range.
    let mut ids: Vec<Cow<'_, str>> = (0..records.len())
        .filter_map(|i| records.id(i))
        .map(lower)
        .collect();
    ids.sort();
    ids.dedup();
    for (w, origin) in wanted {
        if w.is_empty() || !w.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            bail!(
                "{origin}: {:?} is not a backup id (or a prefix of one)",
                terminal(&w)
            );
        }
        let from = ids.partition_point(|i| i.as_ref() < w.as_str());
        let hits: Vec<&Cow<'_, str>> = ids[from..]
            .iter()
            .take_while(|i| i.starts_with(w.as_str()))
            .collect();
        match hits.len() {
            0 if !g.quiet => eprintln!(
                "cbr: plan: warning: {origin}: {w} is none of the backups planned (nothing excluded by it)"
            ),
            0 => {}
            1 => out.extend(hits.into_iter().map(|i| i.to_string())),
            n => bail!("{origin}: {w} is a prefix of {n} backups: give more of the id"),
        }
    }
    Ok(out)
}

/// An id in lower case, borrowed when it already is.
fn lower(id: &str) -> Cow<'_, str> {
    if id.chars().any(char::is_uppercase) {
        Cow::Owned(id.to_lowercase())
    } else {
        Cow::Borrowed(id)
    }
}

/// `--deep`: verify every chunk of every backup that may be planned, as
/// `verify --deep` does (with the journal's proofs when given), a window
/// of backups at a time. Returns the damaged ones, each with why.
fn deep_verify(
    g: &Global,
    args: &PlanArgs,
    share: &cbr::share::Share,
    index: &ShareIndex,
    records: &Records<'_>,
    target: &Target,
) -> Result<HashMap<String, String>> {
    let wanted = |id: &str| !target.existing.contains(id) && !target.excluded.contains(id);
    let mut positions: Vec<usize> = Vec::new();
    for d in &records.given {
        if let Some(id) = cbr::record::lint::id_field(&d.record, "id").map(str::to_lowercase)
            && wanted(&id)
        {
            positions.extend(index.positions_of(&id));
        }
    }
    if let Some(r) = &records.recovering {
        positions.extend(
            r.positions
                .iter()
                .map(|&p| p as usize)
                .filter(|&p| wanted(&lower(index.backups[p].id()))),
        );
    }
    positions.sort_unstable();
    positions.dedup();
    let selected: Vec<&cbr::share::scan::Summary> =
        positions.iter().map(|&p| &index.backups[p]).collect();
    drop(positions);
    let opts = cbr::verify::VerifyOptions {
        deep: true,
        jobs: args
            .jobs
            .unwrap_or_else(|| cbr::verify::VerifyOptions::default().jobs),
        sample: None,
        md5: false,
    };
    // Windows first: a bad one is exit 2 before anything opens.
    let older = match &args.older_than {
        Some(d) => {
            Some(cbr::journal::parse_window(d).map_err(|e| anyhow::anyhow!("--older-than {e}"))?)
        }
        None => None,
    };
    // A chunk is accepted only when proven OK against this very chunk file,
    // this _metadata and this _sha256file, within the window.
    let path = super::journal::path_of(&args.journal);
    let journal = Journaled::open(share, path.as_deref(), None, false, older)?;
    let progress = super::progress::make(crate::cli::ProgressKind::Auto, g.quiet);
    // Each damaged backup's errors (only the errors are kept).
    let mut errors: HashMap<String, Vec<String>> = HashMap::new();
    let report = journal.with_hooks(None, |hooks| {
        cbr::verify::verify_stream(
            share,
            index,
            &selected,
            &opts,
            progress.as_ref(),
            hooks,
            &mut |found| {
                for f in found.errors() {
                    if let Some(id) = &f.backup_id {
                        errors
                            .entry(id.to_lowercase())
                            .or_default()
                            .push(format!("{}: {}", f.code, f.message));
                    }
                }
                Ok(())
            },
        )
    })?;
    journal.finish_run(true)?;
    if !g.quiet {
        eprintln!(
            "cbr: plan: --deep: {} backup(s), {} chunk(s) read{}",
            report.backups_checked,
            report.chunks_checked,
            if report.chunks_skipped > 0 {
                format!(
                    ", {} accepted from the journal (proven within --older-than)",
                    report.chunks_skipped
                )
            } else {
                String::new()
            }
        );
    }
    Ok(damaged(errors, share))
}

/// The backups with an error finding, each with why it is refused (its
/// first three findings).
fn damaged(
    errors: HashMap<String, Vec<String>>,
    share: &cbr::share::Share,
) -> HashMap<String, String> {
    errors
        .into_iter()
        .map(|(id, mut why)| {
            why.dedup();
            if why.len() > 3 {
                let more = why.len() - 3;
                why.truncate(3);
                why.push(format!("and {more} more finding(s)"));
            }
            let reason = format!(
                "its data does not verify (--deep): {} — Cinder's restore checks no hash and would \
                 write a corrupted volume; `cbr verify --deep --share {} {id}` shows every finding",
                why.join("; "),
                cbr::escape::shell(&share.root.display().to_string())
            );
            (id, reason)
        })
        .collect()
}
