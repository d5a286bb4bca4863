//! The migration as a plan: a batch of export records turned into ordered,
//! checked, resumable steps — check, import under the target project, wait,
//! create a volume of the record's size, restore, wait.
//!
//! [`make`] decides (what is planned, skipped, refused, in which order);
//! [`render_sh`], [`render_md`] and the serde form of [`Plan`] write it.

use crate::check::{CheckOptions, check_record};
use crate::record::Decoded;
use crate::record::edit::{Edit, apply};
use crate::record::lint::{Batch, id_field, lint_decoded};
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
}

/// The commands of one step (as the `sh` plan runs them).
#[derive(Debug, Clone, Serialize)]
pub struct Commands {
    pub check: String,
    pub import: String,
    pub create_volume: String,
    pub restore: String,
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
}

/// The plan (`--format json`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    pub summary: Summary,
    pub steps: Vec<Step>,
    pub skipped: Vec<Left>,
    pub refused: Vec<Left>,
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
    let mut plan = Plan::default();
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
    let projects: HashSet<&str> = plan
        .steps
        .iter()
        .map(|s| s.target_project.as_str())
        .collect();
    plan.summary = Summary {
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
    let volume_name = format!("cbr-{}", c.id);
    let p = sh_quote(project);
    let share = target
        .share_path
        .as_deref()
        .map_or("\"$CBR_SHARE\"".to_string(), sh_quote);
    let mut create = format!("openstack --os-project-id {p} volume create --size {size_gb}");
    if let Some(t) = &target.volume_type {
        create.push_str(&format!(" --type {}", sh_quote(t)));
    }
    if let Some(z) = &target.availability_zone {
        create.push_str(&format!(" --availability-zone {}", sh_quote(z)));
    }
    create.push_str(&format!(" {volume_name}"));
    Step {
        commands: Commands {
            check: format!(
                "printf '%s\\n' {} | cbr check --target-service {} --share {share} -",
                sh_quote(&url),
                sh_quote(&target.service)
            ),
            import: format!(
                "openstack --os-project-id {p} volume backup record import {} {}",
                sh_quote(&service),
                sh_quote(&url)
            ),
            create_volume: create,
            restore: format!(
                "openstack --os-project-id {p} volume backup restore {} {volume_name}",
                c.id
            ),
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
        depth,
        created: d
            .record
            .get("created_at")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    }
}

/// The bash runbook: `set -euo pipefail`, a header summarising the plan,
/// helpers that read the target's state, and one function per backup
/// whose every step skips itself when already done (re-running resumes).
pub fn render_sh(plan: &Plan, steps: &[&Step]) -> String {
    let mut s = String::new();
    s.push_str("#!/usr/bin/env bash\n");
    s.push_str("# Migration runbook written by `cbr plan`. Re-run it after a failure: every\n");
    s.push_str("# step checks the target first and skips what is already done.\n#\n");
    let projects: std::collections::BTreeSet<&str> =
        steps.iter().map(|x| x.target_project.as_str()).collect();
    let gib: u64 = steps.iter().map(|x| x.size_gb).sum();
    s.push_str(&format!(
        "# backups: {}   projects: {}   GiB: {}   skipped: {}   refused: {}\n",
        steps.len(),
        projects.len(),
        gib,
        plan.skipped.len(),
        plan.refused.len()
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
# Needs: cbr, the openstack client with admin credentials in the environment
# (each command is scoped to its target project with --os-project-id).
set -euo pipefail

: "${CBR_WAIT_SECS:=7200}"

backup_status() { openstack --os-project-id "$1" volume backup show "$2" -f value -c status 2>/dev/null || true; }
volume_status() { openstack --os-project-id "$1" volume show "$2" -f value -c status 2>/dev/null || true; }
volume_restored() { openstack --os-project-id "$1" volume show "$2" -f value -c properties 2>/dev/null | grep -q "cbr-restored" ; }

# wait_for KIND PROJECT NAME WANT: poll until the status is WANT; fail on an error state.
wait_for() {
  local kind=$1 project=$2 name=$3 want=$4 waited=0 st
  while :; do
    if [ "$kind" = backup ]; then st=$(backup_status "$project" "$name"); else st=$(volume_status "$project" "$name"); fi
    [ "$st" = "$want" ] && return 0
    case $st in
      error*) echo "cbr plan: $kind $name is $st" >&2; return 1 ;;
    esac
    if [ "$waited" -ge "$CBR_WAIT_SECS" ]; then
      echo "cbr plan: $kind $name still '$st' after ${CBR_WAIT_SECS}s" >&2
      return 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

"#,
    );
    for (n, x) in steps.iter().enumerate() {
        let p = sh_quote(&x.target_project);
        s.push_str(&format!(
            "# {n}: backup {} ({} GiB){} -> project {}\n",
            x.backup_id,
            x.size_gb,
            x.depends_on
                .as_deref()
                .map_or(String::new(), |d| format!(", incremental of {d}")),
            x.target_project
        ));
        s.push_str(&format!("step_{n}() {{\n"));
        s.push_str(&format!(
            "  if [ -z \"$(backup_status {p} {id})\" ]; then\n    {check}\n    {import}\n  fi\n  wait_for backup {p} {id} available\n",
            id = x.backup_id,
            check = x.commands.check,
            import = x.commands.import
        ));
        s.push_str(&format!(
            "  if [ -z \"$(volume_status {p} {v})\" ]; then\n    {create}\n  fi\n  if ! volume_restored {p} {v}; then\n    if [ \"$(volume_status {p} {v})\" != restoring-backup ]; then\n      wait_for volume {p} {v} available\n      {restore}\n    fi\n    sleep 5\n    wait_for volume {p} {v} available\n    openstack --os-project-id {p} volume set --property cbr-restored={id} {v}\n  fi\n",
            v = x.volume_name,
            id = x.backup_id,
            create = x.commands.create_volume,
            restore = x.commands.restore
        ));
        s.push_str(&format!(
            "  echo \"cbr plan: {n}/{} backup {} restored into volume {}\"\n}}\n\n",
            steps.len(),
            x.backup_id,
            x.volume_name
        ));
    }
    for n in 0..steps.len() {
        s.push_str(&format!("step_{n}\n"));
    }
    s.push_str("echo \"cbr plan: done\"\n");
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
