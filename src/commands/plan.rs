//! `cbr plan`: a batch of exports as an ordered, checked, resumable runbook.

use super::journaled::Journaled;
use super::{Global, Outcome, decode_inputs, read_inputs, resolve_share};
use crate::cli::{PlanArgs, PlanFormat, PlanRestore};
use anyhow::{Context, Result, bail};
use cbr::escape::terminal;
use cbr::escape::terminal as t;
use cbr::mapping::{MapLine, bad_id, merge};
use cbr::plan::{Listed, Mapping, RestoreMode, Target, make, parse_target_backups, per_project};
use cbr::record::{Decoded, Era, Source, SourceFormat};
use cbr::share::ShareScan;
use cbr::share::scan::BackupEntry;
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
    let found = share.as_ref().map(cbr::share::scan::scan).transpose()?;
    // The records: given, and/or recovered from the share.
    let (mut records, mut origins) = given(&args)?;
    if args.from_share
        && let (Some(s), Some(f)) = (&share, &found)
    {
        recovered(g, &args, s, f, &mut records, &mut origins);
    }
    super::refuse_duplicate_keys(&records)?;
    filter(&args, since.as_deref(), &mut records, &mut origins);
    // One record per backup id: the same one twice is a note, two
    // different ones an error (the order of the inputs would decide).
    for note in cbr::plan::same_ids(&records, &origins)? {
        if !g.quiet {
            eprintln!("cbr: plan: note: {}", terminal(&note));
        }
    }
    let excluded = exclusions(&args, &records, g)?;
    let target = target(&args, listed, share_path, found.as_ref(), excluded);
    if let Some(f) = &found
        && !g.quiet
    {
        warn_root_suspect(f);
    }
    let target = match (&share, &found) {
        (Some(s), Some(f)) if args.deep => Target {
            damaged: deep_verify(g, &args, s, f, &records, &target)?,
            ..target
        },
        _ => target,
    };
    let plan = make(&records, &map, &target, share.as_ref().zip(found.as_ref()))?;
    write_plan(g, &args, &plan, &gate)?;
    if !g.quiet {
        render_summary(&plan, share.is_none());
    }
    Ok(if plan.refused.is_empty() {
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
fn warn_root_suspect(found: &ShareScan) {
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

/// `--from-share`: a record recovered for every backup of the share not
/// given as a record already (those given are planned).
fn recovered(
    g: &Global,
    args: &PlanArgs,
    s: &cbr::share::Share,
    f: &ShareScan,
    records: &mut Vec<Decoded>,
    origins: &mut Vec<String>,
) {
    let given: HashSet<String> = records
        .iter()
        .filter_map(|d| cbr::record::lint::id_field(&d.record, "id").map(str::to_lowercase))
        .collect();
    let opts = cbr::recover::RecoverOptions {
        project_id: None,
        user_id: None,
        service: args.target_service.clone(),
    };
    let mut kept_given = 0;
    // Children per parent, counted once (not a scan of the share per backup).
    let mut children: HashMap<&str, usize> = HashMap::new();
    for b in &f.backups {
        if let Some(p) = b.parent_id() {
            *children.entry(p).or_default() += 1;
        }
    }
    for b in &f.backups {
        if given.contains(&b.id.to_lowercase()) {
            kept_given += 1;
            continue;
        }
        let dependants = children.get(b.id.as_str()).copied().unwrap_or(0);
        match cbr::recover::recover(s, dependants, b, &opts) {
            Ok(r) => {
                origins.push(format!("recovered from the share ({})", b.id));
                records.push(Decoded {
                    backup_service: Some(args.target_service.clone()),
                    record: r.record,
                    source: Source {
                        format: SourceFormat::RecordJson,
                        wrapped: false,
                        era: Era::Current,
                    },
                    json: None,
                    wrap: None,
                    line: 0,
                    duplicate_keys: Vec::new(),
                });
            }
            Err(e) if !g.quiet => eprintln!(
                "cbr: plan: backup {} not recovered: {}",
                t(&b.id),
                t(&e.to_string())
            ),
            Err(_) => {}
        }
    }
    if kept_given > 0 && !g.quiet {
        eprintln!(
            "cbr: plan: note: {kept_given} backup(s) of the share are also given as records: \
             the given records are planned, not the recovered ones"
        );
    }
}

/// `--id`, `--project`, `--since`: the records kept (origins stay aligned
/// with the records).
fn filter(
    args: &PlanArgs,
    since: Option<&str>,
    records: &mut Vec<Decoded>,
    origins: &mut Vec<String>,
) {
    let keep: Vec<bool> = records
        .iter()
        .map(|d| {
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
        })
        .collect();
    let mut k = keep.iter();
    records.retain(|_| k.next().copied().unwrap_or(false));
    let mut k = keep.iter();
    origins.retain(|_| k.next().copied().unwrap_or(false));
}

/// The target as the arguments and the share describe it (not yet what
/// `--deep` found damaged).
fn target(
    args: &PlanArgs,
    listed: HashMap<String, Listed>,
    share_path: Option<String>,
    found: Option<&ShareScan>,
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
        on_share: found
            .iter()
            .flat_map(|f| f.backups.iter().map(|b| b.id.to_lowercase()))
            .collect(),
        damaged: Default::default(),
        deep: args.deep,
        excluded,
    }
}

/// The plan in its format: on stdout, or one script per project.
fn write_plan(
    g: &Global,
    args: &PlanArgs,
    plan: &cbr::plan::Plan,
    gate: &cbr::share::out::Gate,
) -> Result<()> {
    match (&args.format, &args.per_project) {
        (PlanFormat::Sh, Some(dir)) => write_per_project(g, plan, gate, dir)?,
        (PlanFormat::Sh, None) => {
            let steps: Vec<_> = plan.steps.iter().collect();
            let mut out = std::io::stdout().lock();
            out.write_all(cbr::plan::render_sh(plan, &steps).as_bytes())?;
            out.flush()?;
        }
        (PlanFormat::Json, _) => super::print_json(plan)?,
        (PlanFormat::Md, _) => {
            let mut out = std::io::stdout().lock();
            out.write_all(cbr::plan::render_md(plan).as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `--per-project DIR`: each file its project's steps, skips and refusals
/// only. Every script's path is vetted (a link planted there into the
/// share is refused) before any is written.
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
        let steps: Vec<_> = sub.steps.iter().collect();
        let text = cbr::plan::render_sh(&sub, &steps);
        gate.replace("--per-project", &path, text.as_bytes())?;
        if !g.quiet {
            eprintln!(
                "cbr: plan: wrote {} ({} backup(s))",
                t(&path.display().to_string()),
                steps.len()
            );
        }
    }
    Ok(())
}

/// The summary on stderr: counts, every refusal and skip, and a word when
/// no share was checked.
fn render_summary(plan: &cbr::plan::Plan, no_share: bool) {
    let s = &plan.summary;
    eprintln!(
        "cbr: plan: {} backup(s) into {} project(s), {} GiB; {} skipped; {} refused",
        s.backups, s.projects, s.gib, s.skipped, s.refused
    );
    for l in &plan.refused {
        eprintln!("  refused {}: {}", t(&l.backup_id), t(&l.reason));
    }
    for l in &plan.skipped {
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
fn exclusions(args: &PlanArgs, records: &[Decoded], g: &Global) -> Result<HashSet<String>> {
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
    let ids: Vec<String> = records
        .iter()
        .filter_map(|d| cbr::record::lint::id_field(&d.record, "id").map(str::to_lowercase))
        .collect();
    let mut out = HashSet::new();
    for (w, origin) in wanted {
        if w.is_empty() || !w.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            bail!(
                "{origin}: {:?} is not a backup id (or a prefix of one)",
                terminal(&w)
            );
        }
        let hits: HashSet<&String> = ids.iter().filter(|i| i.starts_with(&w)).collect();
        match hits.len() {
            0 if !g.quiet => eprintln!(
                "cbr: plan: warning: {origin}: {w} is none of the backups planned (nothing excluded by it)"
            ),
            0 => {}
            1 => out.extend(hits.into_iter().cloned()),
            n => bail!("{origin}: {w} is a prefix of {n} backups: give more of the id"),
        }
    }
    Ok(out)
}

/// `--deep`: verify every chunk of every backup that may be planned, as
/// `verify --deep` does (with the journal's proofs when given). Returns
/// the damaged ones, each with its findings.
fn deep_verify(
    g: &Global,
    args: &PlanArgs,
    share: &cbr::share::Share,
    found: &ShareScan,
    records: &[Decoded],
    target: &Target,
) -> Result<HashMap<String, String>> {
    let wanted: HashSet<String> = records
        .iter()
        .filter_map(|d| cbr::record::lint::id_field(&d.record, "id").map(str::to_lowercase))
        .filter(|id| !target.existing.contains(id) && !target.excluded.contains(id))
        .collect();
    let selected: Vec<&BackupEntry> = found
        .backups
        .iter()
        .filter(|b| wanted.contains(&b.id.to_lowercase()))
        .collect();
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
    let report = journal.with_hooks(None, |hooks| {
        cbr::verify::verify_with(share, found, &selected, &opts, progress.as_ref(), hooks)
    });
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
    Ok(damaged(&report, share))
}

/// The backups with an error finding, each with why it is refused (its
/// first three findings).
fn damaged(
    report: &cbr::verify::VerifyReport,
    share: &cbr::share::Share,
) -> HashMap<String, String> {
    let mut damaged: HashMap<String, Vec<String>> = HashMap::new();
    for f in report.findings.errors() {
        if let Some(id) = &f.backup_id {
            damaged
                .entry(id.to_lowercase())
                .or_default()
                .push(format!("{}: {}", f.code, f.message));
        }
    }
    damaged
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
