//! `cbr plan`: a batch of exports as an ordered, checked, resumable runbook.

use super::{Global, Outcome, decode_inputs, read_inputs, resolve_share};
use crate::cli::{PlanArgs, PlanFormat, PlanRestore};
use anyhow::{Context, Result, bail};
use cbr::escape::terminal as t;
use cbr::plan::{Mapping, RestoreMode, Target, by_project, make, parse_map, parse_target_backups};
use cbr::record::lint::is_keystone_id;
use cbr::record::{Decoded, Era, Source, SourceFormat};
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
#[allow(clippy::disallowed_methods)] // std::fs::read_to_string of --map and --target-backups
pub fn run(g: &Global, args: PlanArgs) -> Result<Outcome> {
    let mut map = Mapping {
        default_project: args.default_project.clone(),
        ..Default::default()
    };
    let check_id = |what: &str, id: &str| -> Result<()> {
        if !is_keystone_id(id) {
            bail!(
                "{what} {id:?} is not a keystone project id (32 hex digits or a UUID): --os-project-id needs the id"
            );
        }
        Ok(())
    };
    if let Some(d) = &args.default_project {
        check_id("--default-project", d)?;
    }
    for m in &args.map_project {
        let (s, d) = m
            .split_once('=')
            .filter(|(s, d)| !s.is_empty() && !d.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--map-project {m:?}: expected SRC=DST"))?;
        check_id("--map-project target", d)?;
        map.projects.insert(s.to_string(), (d.to_string(), None));
    }
    if let Some(f) = &args.map {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the map {}", f.display()))?;
        for (s, d, u) in parse_map(&text).with_context(|| format!("in {}", f.display()))? {
            check_id(&format!("{}: target of {s}", f.display()), &d)?;
            if let Some(u) = &u
                && !is_keystone_id(u)
            {
                bail!("{}: user {u:?} of {s} is not a keystone id", f.display());
            }
            map.projects.insert(s, (d, u));
        }
    }
    let since = match &args.since {
        Some(s) => Some(date_key(s).ok_or_else(|| {
            anyhow::anyhow!(
                "--since {s:?}: expected a date like 2026-11-24 or 2026-11-24T06:00:00Z"
            )
        })?),
        None => None,
    };
    let existing = match &args.target_backups {
        Some(f) => parse_target_backups(
            &std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the target's backup list {}", f.display()))?,
        ),
        None => Default::default(),
    };
    let want_share =
        args.from_share || args.share.share.is_some() || args.share.cinder_conf.is_some();
    let share = if want_share {
        Some(resolve_share(g, &args.share)?)
    } else {
        None
    };
    // The script names the share in its `cbr check --share` commands: a
    // path that is not UTF-8 could only be written there changed.
    let share_path = match &share {
        Some(s) => {
            let abs = std::path::absolute(&s.root).unwrap_or_else(|_| s.root.clone());
            match abs.to_str() {
                Some(p) => Some(p.to_string()),
                None => bail!(
                    "the share path {} is not UTF-8: the plan's commands name it and cannot \
                     write it exactly; give the share under a UTF-8 path (a bind mount or \
                     a link to it)",
                    t(&abs.to_string_lossy())
                ),
            }
        }
        None => None,
    };
    let gate = share
        .as_ref()
        .map_or_else(cbr::share::out::Gate::none, cbr::share::out::Gate::new);
    if let Some(dir) = &args.per_project {
        gate.refuse_inside("--per-project", dir)?;
    }
    let found = match &share {
        Some(s) => Some(cbr::share::scan::scan(s)?),
        None => None,
    };
    // The records: given, and/or recovered from the share.
    let mut records: Vec<Decoded> = Vec::new();
    if !args.inputs.is_empty() || !args.from_share {
        let inputs = read_inputs(&args.inputs)?;
        records.extend(decode_inputs(&inputs)?);
        // The records own their text: the inputs need not stay.
        drop(inputs);
    }
    if args.from_share
        && let (Some(s), Some(f)) = (&share, &found)
    {
        let opts = cbr::recover::RecoverOptions {
            project_id: None,
            user_id: None,
            service: args.target_service.clone(),
        };
        for b in &f.backups {
            match cbr::recover::recover(s, f, b, &opts) {
                Ok(r) => records.push(Decoded {
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
                }),
                Err(e) if !g.quiet => eprintln!(
                    "cbr: plan: backup {} not recovered: {}",
                    t(&b.id),
                    t(&e.to_string())
                ),
                Err(_) => {}
            }
        }
    }
    super::refuse_duplicate_keys(&records)?;
    // Filters.
    records.retain(|d| {
        let field = |k: &str| d.record.get(k).and_then(|v| v.as_str());
        let id = field("id").unwrap_or("");
        (args.ids.is_empty() || args.ids.iter().any(|p| id.starts_with(p.as_str())))
            && (args.projects.is_empty()
                || field("project_id").is_some_and(|p| args.projects.iter().any(|x| x == p)))
            && since.as_ref().is_none_or(|s| {
                field("created_at")
                    .or_else(|| field("data_timestamp"))
                    .and_then(date_key)
                    .is_some_and(|c| &c >= s)
            })
    });
    let target = Target {
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
    };
    let plan = make(&records, &map, &target, share.as_ref().zip(found.as_ref()))?;
    match (&args.format, &args.per_project) {
        (PlanFormat::Sh, Some(dir)) => {
            // Every script's path is vetted (a link planted there into the
            // share is refused) before any is written.
            let scripts: Vec<_> = by_project(&plan)
                .into_iter()
                .map(|(project, steps)| (dir.join(format!("{project}.sh")), steps))
                .collect();
            for (path, _) in &scripts {
                gate.refuse_inside("--per-project", path)?;
            }
            gate.create_dir_all("--per-project", dir)?;
            for (path, steps) in scripts {
                let text = cbr::plan::render_sh(&plan, &steps);
                gate.replace("--per-project", &path, text.as_bytes())?;
                if !g.quiet {
                    eprintln!(
                        "cbr: plan: wrote {} ({} backup(s))",
                        t(&path.display().to_string()),
                        steps.len()
                    );
                }
            }
        }
        (PlanFormat::Sh, None) => {
            let steps: Vec<_> = plan.steps.iter().collect();
            let mut out = std::io::stdout().lock();
            out.write_all(cbr::plan::render_sh(&plan, &steps).as_bytes())?;
            out.flush()?;
        }
        (PlanFormat::Json, _) => super::print_json(&plan)?,
        (PlanFormat::Md, _) => {
            let mut out = std::io::stdout().lock();
            out.write_all(cbr::plan::render_md(&plan).as_bytes())?;
            out.flush()?;
        }
    }
    if !g.quiet {
        let s = &plan.summary;
        eprintln!(
            "cbr: plan: {} backup(s) into {} project(s), {} GiB; {} skipped; {} refused",
            s.backups, s.projects, s.gib, s.skipped, s.refused
        );
        for l in &plan.refused {
            eprintln!("  refused {}: {}", t(&l.backup_id), t(&l.reason));
        }
    }
    Ok(if plan.refused.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
