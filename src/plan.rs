//! The migration as a plan: a batch of export records turned into ordered,
//! checked, resumable steps — check, import under the target project, wait,
//! create a volume of the record's size, restore, wait.
//!
//! [`make`] decides (what is planned, skipped, refused, in which order);
//! [`render_sh`], [`render_md`] and the serde form of [`Plan`] write it.

use crate::check::{CheckOptions, check_record};
use crate::escape::{shell, shell_line};
use crate::record::edit::{Edit, apply};
use crate::record::lint::{Batch, id_field, lint_decoded};
use crate::record::{Decoded, Record};
use crate::share::{Share, ShareScan};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    #[error(
        "backup {backup}: its project {project} has no mapping: give --map-project {project}=TARGET, \
         a line in --map, or --default-project"
    )]
    Unmapped { backup: String, project: String },
    #[error("backup {backup} names no project_id: give --default-project for records without one")]
    NoProject { backup: String },
    #[error("--map line {line}: {what}")]
    BadMap { line: usize, what: String },
    #[error("--volume-name {0}")]
    BadTemplate(String),
}

/// Source project -> target project (and optionally the target user).
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub projects: HashMap<String, (String, Option<String>)>,
    pub default_project: Option<String>,
}

impl Mapping {
    fn target(
        &self,
        backup: &str,
        src: Option<&str>,
    ) -> Result<(String, Option<String>), PlanError> {
        match src {
            Some(s) => match (self.projects.get(s), &self.default_project) {
                (Some(t), _) => Ok(t.clone()),
                (None, Some(d)) => Ok((d.clone(), None)),
                (None, None) => Err(PlanError::Unmapped {
                    backup: backup.into(),
                    project: s.into(),
                }),
            },
            None => match &self.default_project {
                Some(d) => Ok((d.clone(), None)),
                None => Err(PlanError::NoProject {
                    backup: backup.into(),
                }),
            },
        }
    }
}

/// A `--map` file: CSV (`source,target[,user]`, an optional header line
/// naming `source`) or JSON (`{"SRC": "DST"}` or `{"SRC": {"project":
/// "DST", "user": "U"}}`, or a list of `{"source", "target", "user"}`).
pub fn parse_map(text: &str) -> Result<Vec<(String, String, Option<String>)>, PlanError> {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        let bad = |what: String| PlanError::BadMap { line: 1, what };
        let v: serde_json::Value = serde_json::from_str(t).map_err(|e| bad(e.to_string()))?;
        let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let mut out = Vec::new();
        match v {
            serde_json::Value::Object(m) => {
                for (src, dst) in m {
                    match &dst {
                        serde_json::Value::String(d) => out.push((src, d.clone(), None)),
                        serde_json::Value::Object(o) => out.push((
                            src.clone(),
                            o.get("project")
                                .or_else(|| o.get("target"))
                                .and_then(s)
                                .ok_or_else(|| bad(format!("{src}: no \"project\"")))?,
                            o.get("user").and_then(s),
                        )),
                        _ => return Err(bad(format!("{src}: expected a string or an object"))),
                    }
                }
            }
            serde_json::Value::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    let get = |k: &str| e.get(k).and_then(s);
                    out.push((
                        get("source").ok_or_else(|| bad(format!("entry {i}: no \"source\"")))?,
                        get("target").ok_or_else(|| bad(format!("entry {i}: no \"target\"")))?,
                        get("user"),
                    ));
                }
            }
            _ => return Err(bad("expected an object or a list".into())),
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() || (i == 0 && l.to_ascii_lowercase().starts_with("source")) {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        match f.as_slice() {
            [s, d] if !s.is_empty() && !d.is_empty() => {
                out.push((s.to_string(), d.to_string(), None))
            }
            [s, d, u] if !s.is_empty() && !d.is_empty() => out.push((
                s.to_string(),
                d.to_string(),
                (!u.is_empty()).then(|| u.to_string()),
            )),
            _ => {
                return Err(PlanError::BadMap {
                    line: i + 1,
                    what: format!("expected `source,target[,user]`, found {l:?}"),
                });
            }
        }
    }
    Ok(out)
}

/// Backup ids already on the target: from `openstack volume backup list
/// --all-projects -f json` (a list of objects with `ID`) or any table or
/// text listing (the first UUID of each line).
pub fn parse_target_backups(text: &str) -> HashSet<String> {
    if let Ok(serde_json::Value::Array(a)) = serde_json::from_str::<serde_json::Value>(text) {
        return a
            .iter()
            .filter_map(|e| e.get("ID").or_else(|| e.get("id")))
            .filter_map(|v| v.as_str().map(str::to_lowercase))
            .collect();
    }
    text.lines()
        .filter_map(|l| {
            l.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
                .find(|w| crate::record::lint::is_uuid(w))
                .map(str::to_lowercase)
        })
        .collect()
}

/// What the target cloud is and has.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The backup service the target runs.
    pub service: String,
    /// Backups already imported there.
    pub existing: HashSet<String>,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    /// The share, for the `cbr check` step (`$CBR_SHARE` when unknown).
    pub share_path: Option<String>,
    /// Which backups get a volume and a restore.
    pub restore: RestoreMode,
    /// The name of each backup's volume ([`volume_name`]); `cbr-{id}` when None.
    pub volume_name: Option<String>,
    /// The runbook's progress file (the script's path + `.state` when None).
    pub state: Option<String>,
}

/// Which backups the plan restores (every one is imported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreMode {
    /// Each into a volume of its own.
    #[default]
    All,
    /// Only the newest of each chain (a backup no planned backup depends on).
    Newest,
    /// None: import only.
    None,
}

impl RestoreMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreMode::All => "all",
            RestoreMode::Newest => "newest",
            RestoreMode::None => "none",
        }
    }
}

/// The placeholders of a `--volume-name` template.
const NAME_FIELDS: [&str; 4] = ["id", "id8", "display_name", "volume_id"];

/// Check a `--volume-name` template: every `{…}` is one of [`NAME_FIELDS`].
pub fn check_volume_template(t: &str) -> Result<(), PlanError> {
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            return Err(PlanError::BadTemplate(format!(
                "{t:?}: a '{{' is not closed"
            )));
        };
        let name = &after[..j];
        if !NAME_FIELDS.contains(&name) {
            return Err(PlanError::BadTemplate(format!(
                "{t:?}: unknown placeholder {{{name}}} (known: {{id}}, {{id8}}, {{display_name}}, {{volume_id}})"
            )));
        }
        rest = &after[j + 1..];
    }
    if t.trim().is_empty() {
        return Err(PlanError::BadTemplate("the volume name is empty".into()));
    }
    Ok(())
}

/// A volume name from a template checked by [`check_volume_template`]:
/// the placeholders replaced by the backup's values (the record's
/// `display_name` and `volume_id`, empty when it has none). The result is
/// a value, quoted wherever it is written into a script.
pub fn volume_name(template: &str, record: &Record, id: &str) -> String {
    let field = |k: &str| record.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        match &after[..j] {
            "id" => out.push_str(id),
            "id8" => out.extend(id.chars().take(8)),
            "display_name" => out.push_str(field("display_name")),
            "volume_id" => out.push_str(field("volume_id")),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

/// The commands of one step, for people who drive the migration with their
/// own tooling (the `sh` runbook wraps the same calls in retries, status
/// checks and marks).
#[derive(Debug, Clone, Serialize)]
pub struct Commands {
    pub check: String,
    /// `openstack … volume backup record import` (broken in openstacksdk
    /// 4.18.0–4.22.0: use `import_cinder` there).
    pub import: String,
    /// `cinder --os-project-id P backup-import SERVICE URL`.
    pub import_cinder: String,
    /// None when the step is not restored.
    pub create_volume: Option<String>,
    /// Into the volume made by `create_volume`, by id: `$VOLUME_ID`.
    pub restore: Option<String>,
}

/// One backup to migrate.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub backup_id: String,
    /// The parent backup (planned earlier, or already on the target).
    pub depends_on: Option<String>,
    pub source_project: Option<String>,
    pub target_project: String,
    pub target_user: Option<String>,
    pub backup_service: String,
    /// The rewritten record, encoded (only the mapped fields changed).
    pub backup_url: String,
    pub size_gb: u64,
    pub volume_name: String,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    /// Whether the backup is restored into a volume of its own (`--restore`).
    pub restore: bool,
    pub commands: Commands,
    #[serde(skip)]
    depth: usize,
    #[serde(skip)]
    created: String,
}

/// A backup not planned, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Left {
    pub backup_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub backups: usize,
    pub projects: usize,
    pub gib: u64,
    pub skipped: usize,
    pub refused: usize,
    /// `--restore`: all, newest or none.
    pub restore: RestoreMode,
}

/// The plan (`--format json`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    pub summary: Summary,
    pub steps: Vec<Step>,
    pub skipped: Vec<Left>,
    pub refused: Vec<Left>,
    /// What the runbook needs beyond the steps.
    #[serde(skip)]
    pub target: Target,
}

/// Quote for a POSIX shell: `'…'`, with `'` as `'\''` ([`crate::escape::shell`]).
pub fn sh_quote(s: &str) -> String {
    crate::escape::shell(s).into_owned()
}

/// One record being planned.
struct Cand<'a> {
    d: &'a Decoded,
    id: String,
    parent: Option<String>,
    target: (String, Option<String>),
    refused: Option<String>,
}

/// Decide the plan. `share`: check every record against it as `check` does.
pub fn make(
    records: &[Decoded],
    map: &Mapping,
    target: &Target,
    share: Option<(&Share, &ShareScan)>,
) -> Result<Plan, PlanError> {
    if let Some(t) = &target.volume_name {
        check_volume_template(t)?;
    }
    let mut plan = Plan {
        target: target.clone(),
        ..Default::default()
    };
    let mut cands: Vec<Cand> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let batch = Batch::of(records.iter().map(|d| &d.record));
    for d in records {
        let Some(id) = id_field(&d.record, "id").map(str::to_lowercase) else {
            plan.refused.push(Left {
                backup_id: String::new(),
                reason: format!("a record (input line {}) has no id", d.line),
            });
            continue;
        };
        if !seen.insert(id.clone()) {
            plan.skipped.push(Left {
                backup_id: id,
                reason: "given twice in the input: planned once".into(),
            });
            continue;
        }
        if target.existing.contains(&id) {
            plan.skipped.push(Left {
                backup_id: id,
                reason: "already on the target (--target-backups)".into(),
            });
            continue;
        }
        let tgt = map.target(&id, id_field(&d.record, "project_id"))?;
        let refused = problems(d, &batch, target, share);
        cands.push(Cand {
            d,
            parent: id_field(&d.record, "parent_id").map(str::to_lowercase),
            id,
            target: tgt,
            refused,
        });
    }
    let depth = chains(&mut cands, target);
    for c in &cands {
        if let Some(r) = &c.refused {
            plan.refused.push(Left {
                backup_id: c.id.clone(),
                reason: r.clone(),
            });
        }
    }
    for (i, c) in cands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.refused.is_none())
    {
        plan.steps.push(step(c, depth[i], target));
    }
    plan.steps.sort_by(|a, b| {
        (&a.target_project, a.depth, &a.created, &a.backup_id).cmp(&(
            &b.target_project,
            b.depth,
            &b.created,
            &b.backup_id,
        ))
    });
    // --restore newest: a backup is restored when no planned backup is
    // an incremental of it.
    let parents: HashSet<String> = plan
        .steps
        .iter()
        .filter_map(|s| s.depends_on.clone())
        .collect();
    for x in &mut plan.steps {
        x.restore = match target.restore {
            RestoreMode::All => true,
            RestoreMode::Newest => !parents.contains(&x.backup_id),
            RestoreMode::None => false,
        };
        if !x.restore {
            x.commands.create_volume = None;
            x.commands.restore = None;
        }
    }
    let projects: HashSet<&str> = plan
        .steps
        .iter()
        .map(|s| s.target_project.as_str())
        .collect();
    plan.summary = Summary {
        restore: target.restore,
        backups: plan.steps.len(),
        projects: projects.len(),
        gib: plan
            .steps
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.size_gb)),
        skipped: plan.skipped.len(),
        refused: plan.refused.len(),
    };
    Ok(plan)
}

/// Why a record cannot be planned on its own (errors of check or lint).
fn problems(
    d: &Decoded,
    batch: &Batch<'_>,
    target: &Target,
    share: Option<(&Share, &ShareScan)>,
) -> Option<String> {
    let findings = match share {
        Some((s, scan)) => {
            let opts = CheckOptions {
                target_service: target.service.clone(),
            };
            check_record(s, scan, d, batch, &opts).findings
        }
        None => {
            let mut f = lint_decoded(d, batch);
            let service = d
                .backup_service
                .as_deref()
                .or_else(|| d.record.get("service").and_then(|v| v.as_str()));
            if let Some(s) = service
                && !target.service.starts_with(s)
            {
                f.push(crate::findings::Finding::error(
                    "service-not-accepted",
                    format!(
                        "backup_service {s:?} is not a prefix of the target's {:?}",
                        target.service
                    ),
                ));
            }
            f
        }
    };
    let errors: Vec<String> = findings
        .errors()
        .map(|f| format!("{}: {}", f.code, f.message))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Chains are complete or refused: a parent must be planned (and not
/// refused) or already on the target, in the same target project; a chain
/// of parents that loops is refused whole. Returns each candidate's depth
/// in its chain (a full backup is 0).
///
/// Each candidate is settled once, after its parent: a walk up the
/// parents stops at the first one already settled, so the work is linear
/// in the number of candidates however long the chains (a chain of
/// 16,000 links, refused at its root, is one walk).
fn chains(cands: &mut [Cand], target: &Target) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Open,
        /// On the walk being settled now.
        Walking,
        Settled,
    }
    const LOOPS: &str = "its chain of parents loops";
    let index: HashMap<String, usize> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    let parent_of = |cands: &[Cand], i: usize| -> Option<usize> {
        cands[i].parent.as_ref().and_then(|p| index.get(p)).copied()
    };
    let mut state = vec![State::Open; cands.len()];
    let mut looped = vec![false; cands.len()];
    let mut depth = vec![0usize; cands.len()];
    let mut walk: Vec<usize> = Vec::new();
    for start in 0..cands.len() {
        if state[start] != State::Open {
            continue;
        }
        // Up the parents to a settled one, a root, or back onto this walk.
        walk.clear();
        let mut cur = start;
        let loops = loop {
            state[cur] = State::Walking;
            walk.push(cur);
            match parent_of(cands, cur) {
                None => break false,
                Some(p) => match state[p] {
                    State::Open => cur = p,
                    State::Walking => break true,
                    State::Settled => break looped[p],
                },
            }
        };
        // Down again, parents first.
        while let Some(i) = walk.pop() {
            state[i] = State::Settled;
            if loops {
                // On the loop, or leading into it: the whole chain.
                looped[i] = true;
                cands[i].refused = Some(LOOPS.into());
                continue;
            }
            let parent = parent_of(cands, i);
            depth[i] = parent.map_or(0, |j| depth[j] + 1);
            if cands[i].refused.is_some() {
                continue;
            }
            let Some(p) = cands[i].parent.clone() else {
                continue;
            };
            cands[i].refused = match parent {
                Some(j) if cands[j].refused.is_some() => Some(format!(
                    "its parent {p} is refused, so the chain cannot be restored"
                )),
                Some(j) if cands[j].target.0 != cands[i].target.0 => Some(format!(
                    "its parent {p} goes to project {}, this backup to {}: a chain must land in one project",
                    cands[j].target.0, cands[i].target.0
                )),
                Some(_) => None,
                None if target.existing.contains(&p) => None,
                None => Some(format!(
                    "its parent {p} is neither in this plan nor on the target (--target-backups): the chain is incomplete"
                )),
            };
        }
    }
    depth
}

fn step(c: &Cand, depth: usize, target: &Target) -> Step {
    let d = c.d;
    let (project, user) = &c.target;
    let mut rec = d.record.clone();
    let edit = Edit {
        project_id: Some(project.clone()),
        user_id: user.clone(),
        ..Default::default()
    };
    // Ids from the mapping are the operator's words: written as given.
    let _ = apply(&mut rec, &edit);
    let json = d.json_text(&rec, false);
    let url = crate::record::codec::encode_json(&json, None);
    let service = d
        .backup_service
        .clone()
        .unwrap_or_else(|| crate::record::default_service(d.source.era).to_string());
    let size_gb = d.record.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
    let volume_name = volume_name(
        target.volume_name.as_deref().unwrap_or("cbr-{id}"),
        &d.record,
        &c.id,
    );
    let share = target
        .share_path
        .as_deref()
        .map_or("\"$CBR_SHARE\"".to_string(), sh_quote);
    let size = size_gb.to_string();
    let mut create: Vec<&str> = vec![
        "openstack",
        "--os-project-id",
        project,
        "volume",
        "create",
        "--size",
        &size,
    ];
    if let Some(t) = &target.volume_type {
        create.extend(["--type", t]);
    }
    if let Some(z) = &target.availability_zone {
        create.extend(["--availability-zone", z]);
    }
    let mark = format!("cbr-backup={}", c.id);
    create.extend(["--property", &mark, "--", &volume_name]);
    Step {
        commands: Commands {
            check: format!(
                "printf '%s\\n' {} | cbr check --no-advice --target-service {} --share {share} -",
                sh_quote(&url),
                sh_quote(&target.service)
            ),
            import: shell_line(&[
                "openstack",
                "--os-project-id",
                project,
                "volume",
                "backup",
                "record",
                "import",
                &service,
                &url,
            ]),
            import_cinder: shell_line(&[
                "cinder",
                "--os-project-id",
                project,
                "backup-import",
                &service,
                &url,
            ]),
            create_volume: Some(shell_line(&create)),
            restore: Some(format!(
                "{} \"$VOLUME_ID\"",
                shell_line(&[
                    "openstack",
                    "--os-project-id",
                    project,
                    "volume",
                    "backup",
                    "restore",
                    "--force",
                    &c.id,
                ])
            )),
        },
        backup_id: c.id.clone(),
        depends_on: c.parent.clone(),
        source_project: id_field(&d.record, "project_id").map(str::to_owned),
        target_project: project.clone(),
        target_user: user.clone(),
        backup_service: service,
        backup_url: url,
        size_gb,
        volume_name,
        volume_type: target.volume_type.clone(),
        availability_zone: target.availability_zone.clone(),
        restore: true,
        depth,
        created: d
            .record
            .get("created_at")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    }
}

/// The runbook's machinery: helpers, preflight, the step runner.
const RUNBOOK: &str = include_str!("runbook.sh");

/// The bash runbook: a header saying what it does and needs, the plan's
/// settings as shell variables, the machinery of [`RUNBOOK`] (preflight,
/// retried calls, exactly-once restore, progress file, failure report),
/// then one `run_step` line per backup. Every word that came from a record,
/// the share or the command line is quoted with [`shell`].
pub fn render_sh(plan: &Plan, steps: &[&Step]) -> String {
    let t = &plan.target;
    let mut s = String::new();
    let projects: std::collections::BTreeSet<&str> =
        steps.iter().map(|x| x.target_project.as_str()).collect();
    let gib: u64 = steps.iter().map(|x| x.size_gb).sum();
    let restored = steps.iter().filter(|x| x.restore).count();
    s.push_str("#!/usr/bin/env bash\n");
    // Values from records are single-quoted on purpose ($(…) stays text).
    s.push_str("# shellcheck disable=SC2016\n");
    s.push_str("# Migration runbook written by `cbr plan`: run it with `bash THIS-FILE`.\n#\n");
    s.push_str(&format!(
        "# backups: {}   projects: {}   GiB: {}   skipped: {}   refused: {}\n",
        steps.len(),
        projects.len(),
        gib,
        plan.skipped.len(),
        plan.refused.len()
    ));
    s.push_str(&format!(
        "# restore: {} ({} of {} backups get a volume of their own; every backup is imported)\n",
        t.restore.as_str(),
        restored,
        steps.len()
    ));
    for l in &plan.skipped {
        s.push_str(&format!(
            "#   skipped {}: {}\n",
            one_line(&l.backup_id),
            one_line(&l.reason)
        ));
    }
    for l in &plan.refused {
        s.push_str(&format!(
            "#   REFUSED {}: {}\n",
            one_line(&l.backup_id),
            one_line(&l.reason)
        ));
    }
    s.push_str(
        r#"#
# Each backup is one step: `cbr check` of its record against the share,
# the import scoped to its target project (--os-project-id), a wait until
# it is available; then (when restored) a volume of the record's size with
# the property cbr-backup=<backup id>, found again by that property and
# never by name (a second volume for one backup is never made), and the
# restore into it by id, exactly once: the volume is marked
# cbr-restore=started before the restore and cbr-restore=done after it. A
# re-run that finds `started` looks at the volume and the backup: a restore
# Cinder took (backup or volume restoring, src_backup_id on the volume, or
# the backup changed since the mark) is waited for, not sent again; one
# Cinder never got is sent; anything else stops, unless CBR_RESTORE_AGAIN=1.
#
# Before any change a preflight checks, and reports in one message: that
# the credentials scope to every target project, the client (--force on
# restore, the import path), that cbr runs and that the share is there.
# Finished steps are written to the progress file; a re-run skips them
# without an API call. On failure it says the step, the backup, the stage
# and the error: fix it and re-run.
#
# Needs: cbr; python-openstackclient with admin (password) credentials in
# the OS_* variables, holding a role in every target project (application
# credentials cannot be rescoped). Clients this is tested with:
# python-openstackclient 10.5.0 + openstacksdk 4.22.0 (with and without
# python-cinderclient 9.10.0), and python-openstackclient 6.6.0 (older,
# importing through python-cinderclient). Import goes through `cinder
# backup-import` when `cinder` is on PATH; else a POST to
# backups/import_record through openstacksdk's own session (the python of
# the `openstack` executable), because `openstack volume backup record
# import` is broken in openstacksdk 4.18.0-4.22.0; else, for clients up to
# 10.0.0, `openstack volume backup record import`. Restore uses `--force`
# where the client has it (6.6.0 has it; 8.3.0 to 10.5.0 refuse an
# existing volume without it).
#
# Environment:
#   CBR_SHARE=DIR        the backup share as this host mounts it (for cbr check)
#   CBR_STATE=FILE       the progress file
#   CBR_RECHECK=1        check the steps the progress file says are done against the cloud
#   CBR_RESTORE_AGAIN=1  restore again into a volume whose earlier restore is in doubt
#   CBR_WAIT_SECS=N      the longest wait for one status (default 7200)
#   CBR_TRIES=N          tries of each API call before stopping (default 4)
set -Eeuo pipefail

"#,
    );
    s.push_str(&format!(
        "CBR_SHARE=${{CBR_SHARE:-{}}}\n",
        t.share_path
            .as_deref()
            .map_or(String::new(), |p| shell(p).into_owned())
    ));
    match &t.state {
        Some(f) => s.push_str(&format!("CBR_STATE=${{CBR_STATE:-{}}}\n", shell(f))),
        None => s.push_str("CBR_STATE=${CBR_STATE:-${BASH_SOURCE[0]}.state}\n"),
    }
    s.push_str(": \"${CBR_RECHECK:=0}\" \"${CBR_RESTORE_AGAIN:=0}\" \"${CBR_WAIT_SECS:=7200}\" \"${CBR_TRIES:=4}\"\n");
    s.push_str(&format!("TOTAL={}\n", steps.len()));
    s.push_str(&format!("RESTORE_MODE={}\n", t.restore.as_str()));
    s.push_str(&format!("TARGET_SERVICE={}\n", shell(&t.service)));
    let projects: Vec<&str> = projects.into_iter().collect();
    s.push_str(&format!("PROJECTS=({})\n", shell_line(&projects)));
    let mut vopts: Vec<&str> = Vec::new();
    if let Some(ty) = &t.volume_type {
        vopts.extend(["--type", ty]);
    }
    if let Some(z) = &t.availability_zone {
        vopts.extend(["--availability-zone", z]);
    }
    s.push_str(&format!("VOLUME_OPTS=({})\n\n", shell_line(&vopts)));
    s.push_str(RUNBOOK);
    s.push_str("\n# ---- the steps --------------------------------------------------------------\npreflight\n\n");
    for (n, x) in steps.iter().enumerate() {
        let k = n + 1;
        s.push_str(&format!(
            "# {k}/{}: backup {} ({} GiB){} -> project {}: {}\n",
            steps.len(),
            one_line(&x.backup_id),
            x.size_gb,
            x.depends_on.as_deref().map_or(String::new(), |d| format!(
                ", incremental of {}",
                one_line(d)
            )),
            one_line(&x.target_project),
            if x.restore {
                format!("restore into a new volume {}", one_line(&x.volume_name))
            } else {
                "import only".to_string()
            }
        ));
        let size = x.size_gb.to_string();
        let kk = k.to_string();
        s.push_str(&shell_line(&[
            "run_step",
            &kk,
            &x.backup_id,
            &x.target_project,
            &x.backup_service,
            &x.backup_url,
            &size,
            &x.volume_name,
            if x.restore { "restore" } else { "import" },
        ]));
        s.push_str("\n\n");
    }
    s.push_str("finish\n");
    s
}

/// Text for one comment line of a script (ids and reasons come from
/// records): no control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A runbook table a change-review board can read. Every id, name and
/// reason in it comes from records: written through the markdown escaper
/// ([`crate::escape::markdown`], [`crate::escape::markdown_code`]), so that
/// none can end a cell, start a row or heading, or embed a link or image.
pub fn render_md(plan: &Plan) -> String {
    use crate::escape::{markdown as md, markdown_code as code};
    let mut s = String::from("# Migration plan\n\n");
    let sm = &plan.summary;
    s.push_str(&format!(
        "{} backup(s) into {} project(s), {} GiB; {} skipped, {} refused.\n\n",
        sm.backups, sm.projects, sm.gib, sm.skipped, sm.refused
    ));
    s.push_str(
        "| # | backup | incremental of | source project | target project | GiB | service |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|\n");
    for (n, x) in plan.steps.iter().enumerate() {
        s.push_str(&format!(
            "| {n} | {} | {} | {} | {} | {} | {} |\n",
            code(&x.backup_id),
            x.depends_on.as_deref().map_or("—".into(), code),
            x.source_project.as_deref().map_or("—".into(), md),
            md(&x.target_project),
            x.size_gb,
            code(&x.backup_service)
        ));
    }
    for (title, list) in [("Skipped", &plan.skipped), ("Refused", &plan.refused)] {
        if list.is_empty() {
            continue;
        }
        s.push_str(&format!("\n## {title}\n\n| backup | reason |\n|---|---|\n"));
        for l in list {
            s.push_str(&format!("| {} | {} |\n", code(&l.backup_id), md(&l.reason)));
        }
    }
    s
}

/// Steps grouped by target project, in plan order.
pub fn by_project(plan: &Plan) -> BTreeMap<&str, Vec<&Step>> {
    let mut m: BTreeMap<&str, Vec<&Step>> = BTreeMap::new();
    for x in &plan.steps {
        m.entry(x.target_project.as_str()).or_default().push(x);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_parse_from_csv_and_json() {
        let csv = "source,target,user\naaa,bbb\nccc,ddd,uuu\n";
        assert_eq!(
            parse_map(csv).unwrap(),
            vec![
                ("aaa".into(), "bbb".into(), None),
                ("ccc".into(), "ddd".into(), Some("uuu".into()))
            ]
        );
        let json = r#"{"aaa": "bbb", "ccc": {"project": "ddd", "user": "uuu"}}"#;
        assert_eq!(parse_map(json).unwrap().len(), 2);
        assert!(parse_map("aaa\n").is_err());
    }

    #[test]
    fn target_backups_from_json_or_tables() {
        let j = r#"[{"ID": "A0F6583F-D913-426D-A8E2-D262262A433B", "Name": "x"}]"#;
        assert!(parse_target_backups(j).contains("a0f6583f-d913-426d-a8e2-d262262a433b"));
        let t = "+----+\n| ID | Volume ID |\n| 240eb01b-43db-412c-88fa-80f724cb2c2c | cd613e30-d8f1-4adf-91b7-584a2265b1f5 |\n";
        let s = parse_target_backups(t);
        assert_eq!(s.len(), 1);
        assert!(s.contains("240eb01b-43db-412c-88fa-80f724cb2c2c"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("abc-1"), "abc-1");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
