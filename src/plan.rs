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
use serde::ser::{SerializeStruct, Serializer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    /// Every record whose project has no mapping, grouped by project.
    #[error("{}", unmapped_text(.0))]
    Unmapped(Vec<Unmapped>),
    /// One backup id given with two different records.
    #[error(
        "{} backup id(s) given with two different records (which one is imported would depend on \
         the order of the inputs): keep one record of each\n  {}",
        .0.len(),
        .0.join("\n  ")
    )]
    DifferentRecords(Vec<String>),
    /// `--target-backups` is not a backup list in any form cbr knows.
    #[error("--target-backups {name}: {what}")]
    NotABackupList { name: String, what: String },
    #[error("--volume-name {0}")]
    BadTemplate(String),
}

/// A source project with no mapping (None: records naming no project).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    pub project: Option<String>,
    pub backups: Vec<String>,
}

fn unmapped_text(list: &[Unmapped]) -> String {
    let mut s = format!(
        "{} source project(s) have no mapping, so their backups would land nowhere:",
        list.len()
    );
    // Ids from records, shown on a terminal.
    let t = |x: &str| crate::escape::terminal(x).into_owned();
    for u in list {
        let ids = match u.backups.as_slice() {
            [] => "no backup".to_string(),
            [one] => format!("backup {}", t(one)),
            [first, ..] => format!("{} backups, e.g. {}", u.backups.len(), t(first)),
        };
        match u.project.as_deref().map(t) {
            Some(p) => s.push_str(&format!(
                "\n  project {p} ({ids}): give --map-project {p}=TARGET, a line `{p},TARGET` in --map, \
                 or --default-project TARGET"
            )),
            None => s.push_str(&format!(
                "\n  records naming no project_id ({ids}): give --default-project TARGET"
            )),
        }
    }
    s
}

/// Source project -> target project (and optionally the target user).
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub projects: HashMap<String, (String, Option<String>)>,
    pub default_project: Option<String>,
}

impl Mapping {
    /// The target of a record of project `src`; Err: the unmapped project.
    fn target(&self, src: Option<&str>) -> Result<(String, Option<String>), Option<String>> {
        match (
            src,
            src.and_then(|s| self.projects.get(s)),
            &self.default_project,
        ) {
            (_, Some(t), _) => Ok(t.clone()),
            (_, None, Some(d)) => Ok((d.clone(), None)),
            (s, None, None) => Err(s.map(str::to_owned)),
        }
    }
}

/// One backup the target lists: its status and project, where the
/// listing shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub status: Option<String>,
    pub project: Option<String>,
}

/// Statuses a Cinder backup can be in (for `-f value` lines, which have
/// no header to say which word is the status).
const STATUSES: [&str; 8] = [
    "available",
    "error",
    "creating",
    "restoring",
    "deleting",
    "error_deleting",
    "backing-up",
    "deleted",
];

fn is_project_column(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    matches!(
        n.as_str(),
        "project" | "project_id" | "tenant" | "tenant_id" | "os_backup_project_attr:project_id"
    )
}

/// The target's backup list, in any form the clients print: `openstack
/// volume backup list [--all-projects] [--long]` with `-f json`, `-f csv`,
/// `-f yaml`, `-f value` or as a table, `cinder backup-list
/// [--all-tenants]`, or the API's JSON (`{"backups": [...]}`). Anything
/// else (an error message, an empty file) is refused: read as "nothing on
/// the target", it would plan imports of what is already there.
pub fn parse_target_backups(text: &str, name: &str) -> Result<HashMap<String, Listed>, PlanError> {
    let mut list = Listing {
        name,
        out: HashMap::new(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let t = text.trim();
    if t.is_empty() {
        return Err(list.bad(
            "the file is empty: an error of the openstack client goes to stderr and leaves it so. \
             If the target really has no backups, give `[]` (what `openstack volume backup list -f json` \
             prints then) or leave --target-backups out"
                .into(),
        ));
    }
    let first_line = t.lines().next().unwrap_or("");
    if t.starts_with('[') || t.starts_with('{') {
        list.read_json(t)?;
    } else if t.lines().any(|l| l.trim_start().starts_with('|')) {
        list.read_table(text)?;
    } else if first_line.starts_with("\"ID\"") || first_line.starts_with("ID,") {
        list.read_csv(text)?;
    } else if first_line.starts_with("- ") {
        list.read_yaml(text)?;
    } else {
        list.read_value_lines(text)?;
    }
    Ok(list.out)
}

/// A backup list being read: what it lists so far, and its name (for
/// messages).
struct Listing<'a> {
    name: &'a str,
    out: HashMap<String, Listed>,
}

impl Listing<'_> {
    fn bad(&self, what: String) -> PlanError {
        PlanError::NotABackupList {
            name: self.name.to_string(),
            what,
        }
    }

    /// One listed backup; `line` says where it is (for the error when
    /// `id` is not a backup id).
    fn put(
        &mut self,
        line: String,
        id: &str,
        status: Option<&str>,
        project: Option<&str>,
    ) -> Result<(), PlanError> {
        if !crate::record::lint::is_uuid(id) {
            return Err(self.bad(format!(
                "{line}: {id:?} is not a backup ID: this is not a backup list (run `openstack volume \
                 backup list --all-projects -f json > FILE` again and look at what it says)"
            )));
        }
        let clean = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty() && *v != "None" && *v != "-")
                .map(str::to_owned)
        };
        self.out.insert(
            id.to_lowercase(),
            Listed {
                status: clean(status).map(|s| s.to_lowercase()),
                project: clean(project),
            },
        );
        Ok(())
    }

    /// `-f json` (a list of objects) or the API's `{"backups": [...]}`.
    fn read_json(&mut self, t: &str) -> Result<(), PlanError> {
        let v: serde_json::Value =
            serde_json::from_str(t).map_err(|e| self.bad(format!("not JSON: {e}")))?;
        let list = match &v {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(o) => match o.get("backups") {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    return Err(
                        self.bad("a JSON object without \"backups\": not a backup list".into())
                    );
                }
            },
            _ => return Err(self.bad("not a JSON list".into())),
        };
        for (i, e) in list.iter().enumerate() {
            let Some(o) = e.as_object() else {
                return Err(self.bad(format!("entry {i} is not an object")));
            };
            let get = |keys: &[&str]| {
                o.iter()
                    .find(|(k, _)| keys.iter().any(|x| k.eq_ignore_ascii_case(x)))
                    .and_then(|(_, v)| v.as_str())
            };
            let project = o
                .iter()
                .find(|(k, _)| is_project_column(k))
                .and_then(|(_, v)| v.as_str());
            self.put(
                format!("entry {i}"),
                get(&["ID"]).unwrap_or(""),
                get(&["Status"]),
                project,
            )?;
        }
        Ok(())
    }

    /// A table (`openstack … list` without -f, `cinder backup-list`): the
    /// header names the columns.
    fn read_table(&mut self, text: &str) -> Result<(), PlanError> {
        let mut cols: Option<(usize, Option<usize>, Option<usize>)> = None;
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('+') {
                continue;
            }
            if !l.starts_with('|') {
                return Err(self.bad(format!(
                    "line {}: {:?} is not a row of a backup table",
                    i + 1,
                    crate::escape::terminal(l)
                )));
            }
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            match cols {
                None => cols = Some(self.table_columns(&cells, i + 1)?),
                Some((id, st, pr)) => self.put(
                    format!("line {}", i + 1),
                    cells.get(id).copied().unwrap_or(""),
                    st.and_then(|c| cells.get(c).copied()),
                    pr.and_then(|c| cells.get(c).copied()),
                )?,
            }
        }
        Ok(())
    }

    /// The columns (id, status, project) a table's header names.
    fn table_columns(
        &self,
        cells: &[&str],
        line: usize,
    ) -> Result<(usize, Option<usize>, Option<usize>), PlanError> {
        let find = |f: &dyn Fn(&str) -> bool| cells.iter().position(|c| f(c));
        let Some(id) = find(&|c| c.eq_ignore_ascii_case("id")) else {
            return Err(self.bad(format!(
                "line {line}: a table without an ID column: not a backup list"
            )));
        };
        Ok((
            id,
            find(&|c| c.eq_ignore_ascii_case("status")),
            find(&|c| is_project_column(c)),
        ))
    }

    /// `-f csv`.
    fn read_csv(&mut self, text: &str) -> Result<(), PlanError> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let head = rdr
            .headers()
            .map_err(|e| self.bad(format!("not CSV: {e}")))?
            .clone();
        let col = |f: &dyn Fn(&str) -> bool| head.iter().position(f);
        let id = col(&|c| c.eq_ignore_ascii_case("id")).unwrap_or(0);
        let st = col(&|c| c.eq_ignore_ascii_case("status"));
        let pr = col(&is_project_column);
        for r in rdr.records() {
            let r = r.map_err(|e| self.bad(format!("not CSV: {e}")))?;
            let line = r.position().map_or(0, |p| p.line());
            self.put(
                format!("line {line}"),
                r.get(id).unwrap_or(""),
                st.and_then(|c| r.get(c)),
                pr.and_then(|c| r.get(c)),
            )?;
        }
        Ok(())
    }

    /// `-f yaml`: `- ID: …` then `  Status: …` lines.
    fn read_yaml(&mut self, text: &str) -> Result<(), PlanError> {
        let mut cur: Option<(usize, String, Option<String>, Option<String>)> = None;
        let mut entries = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let (new, kv) = match l.strip_prefix("- ") {
                Some(rest) => (true, rest),
                None => (false, l.trim()),
            };
            if new && let Some(c) = cur.take() {
                entries.push(c);
            }
            let c = cur.get_or_insert((i + 1, String::new(), None, None));
            if let Some((k, v)) = kv.split_once(':') {
                let v = v.trim().trim_matches(|q| q == '\'' || q == '"').to_string();
                if k.trim().eq_ignore_ascii_case("id") {
                    c.1 = v;
                } else if k.trim().eq_ignore_ascii_case("status") {
                    c.2 = Some(v);
                } else if is_project_column(k) {
                    c.3 = Some(v);
                }
            }
        }
        entries.extend(cur);
        for (line, id, st, pr) in entries {
            self.put(format!("line {line}"), &id, st.as_deref(), pr.as_deref())?;
        }
        Ok(())
    }

    /// `-f value`: the ID first, the status one of the words after it.
    fn read_value_lines(&mut self, text: &str) -> Result<(), PlanError> {
        for (i, l) in text.lines().enumerate() {
            let words: Vec<&str> = l.split_whitespace().collect();
            let Some(id) = words.first() else { continue };
            let known: Vec<usize> = (1..words.len())
                .filter(|&k| STATUSES.contains(&words[k]))
                .collect();
            // The status column comes right before the size (a number).
            let status = known
                .iter()
                .rev()
                .find(|&&k| words.get(k + 1).is_some_and(|w| w.parse::<u64>().is_ok()))
                .or(known.first())
                .map(|&k| words[k]);
            let shown: String = l.trim().chars().take(72).collect();
            self.put(
                format!("line {} ({:?})", i + 1, crate::escape::terminal(&shown)),
                id,
                status,
                None,
            )?;
        }
        Ok(())
    }
}

/// Why a backup the target lists cannot be taken as done (None: it can).
pub fn listed_problem(id: &str, l: &Listed) -> Option<String> {
    let st = l.status.as_deref()?;
    let what = match st {
        "available" => return None,
        "error" => format!(
            "delete it there (`openstack volume backup delete --force {id}`) and re-plan: an import \
             that failed leaves this"
        ),
        "creating" | "backing-up" => {
            "an import (or backup) of it is under way or stuck: wait until it is available or error \
             and re-plan; if stuck, reset it (`cinder backup-reset-state --state error ID`), delete it \
             and re-plan"
                .to_string()
        }
        "restoring" => "a restore from it is running: wait for it to end and re-plan".to_string(),
        "deleting" | "error_deleting" | "deleted" => format!(
            "it is being deleted there: wait until `openstack volume backup show {id}` no longer finds \
             it (delete it again if it stays in error_deleting) and re-plan"
        ),
        _ => "cbr cannot take it as imported: resolve it there and re-plan".to_string(),
    };
    Some(format!(
        "on the target in status {st} (--target-backups): {what}"
    ))
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
    /// Everything `--target-backups` lists (status, project): `existing`
    /// holds those that count as imported.
    pub listed: HashMap<String, Listed>,
    /// Left out by hand (`--exclude`): skipped, dependants refused.
    pub excluded: HashSet<String>,
    /// Backups whose data a deep verification found damaged: id -> why.
    pub damaged: HashMap<String, String>,
    /// Backup ids on the share (for the fix of a missing parent).
    pub on_share: HashSet<String>,
    /// The plan was made with `--deep`: the runbook's checks read the data too.
    pub deep: bool,
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
/// checks and marks). In the JSON: `check`, `import` (`openstack … volume
/// backup record import`, broken in openstacksdk 4.18.0–4.22.0: use
/// `import_cinder` there), `import_cinder` (`cinder --os-project-id P
/// backup-import SERVICE URL`), `create_volume` and `restore`.
///
/// The three command lines that carry the backup_url are written from the
/// step's one copy of it (shared, not copied) when the plan is written,
/// never kept: a record can be tens of MB.
#[derive(Debug, Clone)]
pub struct Commands {
    /// The step's backup_url (the same allocation as [`Step::backup_url`]).
    url: Arc<str>,
    project: String,
    service: String,
    /// What follows the url in the check command: ` | cbr check …`.
    check_tail: String,
    /// None when the step is not restored.
    pub create_volume: Option<String>,
    /// Into the volume made by `create_volume`, by id: `$VOLUME_ID`.
    pub restore: Option<String>,
}

/// A command line written where it goes (a JSON string, a script), piece
/// by piece: never held whole.
struct Line<F>(F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Line<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> Serialize for Line<F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Words quoted with [`shell`], joined by spaces (as
/// [`crate::escape::shell_line`], written into `f`).
fn write_words(f: &mut impl fmt::Write, words: &[&str]) -> fmt::Result {
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        f.write_str(&shell(w))?;
    }
    Ok(())
}

impl Commands {
    /// `printf '%s\n' URL | cbr check …`: the record checked against the share.
    pub fn check(&self) -> impl fmt::Display + Serialize + '_ {
        Line(move |f: &mut fmt::Formatter<'_>| {
            write!(f, "printf '%s\\n' {}{}", shell(&self.url), self.check_tail)
        })
    }

    /// `openstack … volume backup record import SERVICE URL`.
    pub fn import(&self) -> impl fmt::Display + Serialize + '_ {
        Line(move |f: &mut fmt::Formatter<'_>| {
            write_words(
                f,
                &[
                    "openstack",
                    "--os-project-id",
                    &self.project,
                    "volume",
                    "backup",
                    "record",
                    "import",
                    &self.service,
                    &self.url,
                ],
            )
        })
    }

    /// `cinder --os-project-id P backup-import SERVICE URL`.
    pub fn import_cinder(&self) -> impl fmt::Display + Serialize + '_ {
        Line(move |f: &mut fmt::Formatter<'_>| {
            write_words(
                f,
                &[
                    "cinder",
                    "--os-project-id",
                    &self.project,
                    "backup-import",
                    &self.service,
                    &self.url,
                ],
            )
        })
    }
}

impl Serialize for Commands {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Commands", 5)?;
        st.serialize_field("check", &self.check())?;
        st.serialize_field("import", &self.import())?;
        st.serialize_field("import_cinder", &self.import_cinder())?;
        st.serialize_field("create_volume", &self.create_volume)?;
        st.serialize_field("restore", &self.restore)?;
        st.end()
    }
}

/// What a record says of its backup, for the md plan and the JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct About {
    /// The backup's name (display_name in older records).
    pub backup_name: Option<String>,
    /// The source volume's id.
    pub source_volume_id: Option<String>,
    pub created_at: Option<String>,
}

impl About {
    fn of(r: &Record) -> About {
        let s = |k: &str| {
            r.get(k)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        About {
            backup_name: s("display_name").or_else(|| s("name")),
            source_volume_id: s("volume_id"),
            created_at: s("created_at"),
        }
    }
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
    /// The rewritten record, encoded (only the mapped fields changed): the
    /// plan's one copy of it, shared by the [`Commands`] that carry it.
    #[serde(serialize_with = "serialize_arc_str")]
    pub backup_url: Arc<str>,
    pub size_gb: u64,
    pub volume_name: String,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    /// Whether the backup is restored into a volume of its own (`--restore`).
    pub restore: bool,
    pub commands: Commands,
    /// What the record says of the backup (for people reading the plan).
    #[serde(flatten)]
    pub about: About,
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
    /// The target project(s) it concerns (a refusal across a chain names
    /// both); empty when it concerns none (no id, no mapping).
    pub target_projects: Vec<String>,
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

fn serialize_arc_str<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
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

/// Backup ids given more than once. `origins[i]` says where `records[i]`
/// came from (`FILE line N`). The same record twice is a note; two
/// different records for one id is an error naming both places.
pub fn same_ids(records: &[Decoded], origins: &[String]) -> Result<Vec<String>, PlanError> {
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut notes = Vec::new();
    let mut conflicts = Vec::new();
    for (i, d) in records.iter().enumerate() {
        let Some(id) = id_field(&d.record, "id").map(str::to_lowercase) else {
            continue;
        };
        let Some(&j) = first.get(&id) else {
            first.insert(id, i);
            continue;
        };
        let o = |k: usize| crate::escape::terminal(origins.get(k).map_or("?", String::as_str));
        let id = crate::escape::terminal(&id);
        let e = &records[j];
        let services_differ = matches!(
            (&d.backup_service, &e.backup_service),
            (Some(a), Some(b)) if a != b
        );
        if d.record == e.record && !services_differ {
            notes.push(format!(
                "backup {id} is given twice, the same record ({} and {}): planned once",
                o(j),
                o(i)
            ));
        } else {
            let differ: Vec<&str> = d
                .record
                .iter()
                .filter(|(k, v)| e.record.get(*k) != Some(*v))
                .map(|(k, _)| k.as_str())
                .chain(
                    e.record
                        .keys()
                        .filter(|k| !d.record.contains_key(*k))
                        .map(String::as_str),
                )
                .collect();
            let what = if differ.is_empty() {
                "their backup_service differs".to_string()
            } else {
                format!(
                    "they differ in {}",
                    crate::escape::terminal(&differ.join(", "))
                )
            };
            conflicts.push(format!("backup {id}: {} and {}: {what}", o(j), o(i)));
        }
    }
    if conflicts.is_empty() {
        Ok(notes)
    } else {
        Err(PlanError::DifferentRecords(conflicts))
    }
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
    let mut cands = candidates(records, map, target, share, &mut plan)?;
    let depth = chains(&mut cands, target);
    refuse_candidates(&cands, &mut plan);
    // Whatever order the inputs came in, the lists read the same.
    for l in [&mut plan.skipped, &mut plan.refused] {
        l.sort_by(|a, b| (&a.backup_id, &a.reason).cmp(&(&b.backup_id, &b.reason)));
    }
    plan.steps = ordered_steps(&cands, &depth, target);
    choose_restores(&mut plan.steps, target.restore);
    plan.summary = summarize(&plan);
    Ok(plan)
}

/// The records that can be planned, each with its target and why it is
/// refused on its own (if it is). Those left out before planning — no id,
/// given twice, decided by [`before_planning`] — go to the plan's lists;
/// records of a project with no mapping are the error.
fn candidates<'a>(
    records: &'a [Decoded],
    map: &Mapping,
    target: &Target,
    share: Option<(&Share, &ShareScan)>,
    plan: &mut Plan,
) -> Result<Vec<Cand<'a>>, PlanError> {
    let mut cands: Vec<Cand> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let batch = Batch::of(records.iter().map(|d| &d.record));
    let mut unmapped: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for d in records {
        let Some(id) = id_field(&d.record, "id").map(str::to_lowercase) else {
            plan.refused.push(no_id(d));
            continue;
        };
        let mapped = map.target(id_field(&d.record, "project_id"));
        let projects: Vec<String> = mapped.iter().map(|t| t.0.clone()).collect();
        if !seen.insert(id.clone()) {
            plan.skipped.push(Left {
                backup_id: id,
                reason: "given twice in the input: planned once".into(),
                target_projects: projects,
            });
            continue;
        }
        if let Some((refuse, reason)) = before_planning(&id, mapped.as_ref().ok(), target) {
            let list = if refuse {
                &mut plan.refused
            } else {
                &mut plan.skipped
            };
            list.push(Left {
                backup_id: id,
                reason,
                target_projects: projects,
            });
            continue;
        }
        let tgt = match mapped {
            Ok(t) => t,
            Err(project) => {
                unmapped.entry(project).or_default().push(id);
                continue;
            }
        };
        let refused = target
            .damaged
            .get(&id)
            .cloned()
            .or_else(|| problems(d, &batch, target, share));
        cands.push(Cand {
            d,
            parent: id_field(&d.record, "parent_id").map(str::to_lowercase),
            id,
            target: tgt,
            refused,
        });
    }
    if !unmapped.is_empty() {
        return Err(unmapped_error(unmapped));
    }
    Ok(cands)
}

/// The refusal of a record without an id.
fn no_id(d: &Decoded) -> Left {
    Left {
        backup_id: String::new(),
        reason: format!("a record (input line {}) has no id", d.line),
        target_projects: Vec::new(),
    }
}

/// The error naming every project with no mapping and its backups.
fn unmapped_error(unmapped: BTreeMap<Option<String>, Vec<String>>) -> PlanError {
    PlanError::Unmapped(
        unmapped
            .into_iter()
            .map(|(project, mut backups)| {
                backups.sort();
                Unmapped { project, backups }
            })
            .collect(),
    )
}

/// The candidates refused (on their own or by their chain), into the plan.
fn refuse_candidates(cands: &[Cand], plan: &mut Plan) {
    let index: HashMap<&str, usize> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    for c in cands {
        if let Some(r) = &c.refused {
            plan.refused.push(Left {
                backup_id: c.id.clone(),
                reason: r.clone(),
                target_projects: concerned(c, cands, &index),
            });
        }
    }
}

/// A step of each candidate not refused, in plan order: by target
/// project, parents before children, then by creation and id.
fn ordered_steps(cands: &[Cand], depth: &[usize], target: &Target) -> Vec<Step> {
    let mut steps: Vec<Step> = cands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.refused.is_none())
        .map(|(i, c)| step(c, depth[i], target))
        .collect();
    steps.sort_by(|a, b| {
        (&a.target_project, a.depth, &a.created, &a.backup_id).cmp(&(
            &b.target_project,
            b.depth,
            &b.created,
            &b.backup_id,
        ))
    });
    steps
}

/// Which steps are restored (`--restore`); those that are not lose their
/// volume and restore commands. `newest`: a backup is restored when no
/// planned backup is an incremental of it.
fn choose_restores(steps: &mut [Step], mode: RestoreMode) {
    let parents: HashSet<String> = steps.iter().filter_map(|s| s.depends_on.clone()).collect();
    for x in steps {
        x.restore = match mode {
            RestoreMode::All => true,
            RestoreMode::Newest => !parents.contains(&x.backup_id),
            RestoreMode::None => false,
        };
        if !x.restore {
            x.commands.create_volume = None;
            x.commands.restore = None;
        }
    }
}

/// The counts of a decided plan.
fn summarize(plan: &Plan) -> Summary {
    let projects: HashSet<&str> = plan
        .steps
        .iter()
        .map(|s| s.target_project.as_str())
        .collect();
    Summary {
        restore: plan.target.restore,
        backups: plan.steps.len(),
        projects: projects.len(),
        gib: plan
            .steps
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.size_gb)),
        skipped: plan.skipped.len(),
        refused: plan.refused.len(),
    }
}

/// What is decided about a backup before it is planned: `(refused,
/// reason)` when it is left out — on the target already (skipped), on the
/// target but not usable or under another project (refused), excluded by
/// hand (skipped).
fn before_planning(
    id: &str,
    mapped: Option<&(String, Option<String>)>,
    target: &Target,
) -> Option<(bool, String)> {
    if let Some(l) = target.listed.get(id) {
        if let Some(why) = listed_problem(id, l) {
            return Some((true, why));
        }
        if let (Some(there), Some((to, _))) = (&l.project, mapped)
            && there != to
        {
            return Some((
                true,
                format!(
                    "already on the target, but under project {there} while the plan maps it to {to} \
                     (--target-backups): fix the mapping, or delete it there and re-plan"
                ),
            ));
        }
    }
    if target.existing.contains(id) {
        let how = match target.listed.get(id).and_then(|l| l.status.as_deref()) {
            Some(_) => "",
            None => ", whose list shows no status: check it is available",
        };
        return Some((
            false,
            format!("already on the target (--target-backups{how})"),
        ));
    }
    if target.excluded.contains(id) {
        return Some((false, "excluded by hand (--exclude)".into()));
    }
    None
}

/// Why a parent that is not among the candidates fails its child going to
/// `project` (None: the target has it, usable, in that project).
fn parent_outside(p: &str, project: &str, target: &Target) -> Option<String> {
    if target.excluded.contains(p) {
        return Some(format!(
            "its parent {p} is excluded by hand (--exclude): the chain cannot be restored without it"
        ));
    }
    if let Some(why) = target.listed.get(p).and_then(|l| listed_problem(p, l)) {
        return Some(format!("its parent {p} is {why}"));
    }
    if target.existing.contains(p) {
        return match target.listed.get(p).and_then(|l| l.project.as_deref()) {
            Some(there) if there != project => Some(format!(
                "its parent {p} is on the target under project {there}, this backup goes to {project}: \
                 a chain must land in one project"
            )),
            _ => None,
        };
    }
    let missing =
        format!("its parent {p} is neither in this plan nor on the target (--target-backups)");
    Some(match (&target.share_path, target.on_share.contains(p)) {
        (Some(share), true) => format!(
            "{missing}; it is on the share: add its record, `cbr recover --share {} {p} --emit \
             export-json > {p}.json`, to the inputs (or plan with --from-share)",
            sh_quote(share)
        ),
        (Some(_), false) => format!(
            "{missing}, nor on the share: the chain cannot be restored (is --share the share the \
             backups were written to?)"
        ),
        (None, _) => format!(
            "{missing}: give its record too — `cbr recover --share DIR {p} --emit export-json > \
             {p}.json` builds one from the share — or plan with --share DIR --from-share"
        ),
    })
}

/// The target projects a refusal concerns: its own, and its parent's when
/// the chain would cross projects.
fn concerned(c: &Cand, cands: &[Cand], index: &HashMap<&str, usize>) -> Vec<String> {
    let mut out = vec![c.target.0.clone()];
    if let Some(p) = &c.parent
        && let Some(pc) = index.get(p.as_str()).map(|&j| &cands[j])
        && pc.target.0 != c.target.0
    {
        out.push(pc.target.0.clone());
    }
    out
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
            if cands[i].refused.is_none() {
                cands[i].refused = chain_refusal(cands, i, parent, target);
            }
        }
    }
    depth
}

/// Why candidate `i`, settled after its parent (`parent`: the parent's
/// index when it is a candidate), is refused for its chain; None when it
/// is not (or is a full backup).
fn chain_refusal(
    cands: &[Cand],
    i: usize,
    parent: Option<usize>,
    target: &Target,
) -> Option<String> {
    let p = cands[i].parent.as_deref()?;
    match parent {
        Some(j) if cands[j].refused.is_some() => Some(format!(
            "its parent {p} is refused, so the chain cannot be restored"
        )),
        Some(j) if cands[j].target.0 != cands[i].target.0 => Some(format!(
            "its parent {p} goes to project {}, this backup to {}: a chain must land in one project",
            cands[j].target.0, cands[i].target.0
        )),
        Some(_) => None,
        None => parent_outside(p, &cands[i].target.0, target),
    }
}

fn step(c: &Cand, depth: usize, target: &Target) -> Step {
    let d = c.d;
    let (project, user) = &c.target;
    let url = rewritten_url(d, project, user.as_ref());
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
    Step {
        commands: Commands {
            url: Arc::clone(&url),
            project: project.clone(),
            service: service.clone(),
            check_tail: check_tail(target),
            create_volume: Some(create_volume_line(
                project,
                size_gb,
                target,
                &c.id,
                &volume_name,
            )),
            restore: Some(restore_line(project, &c.id)),
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
        about: About::of(&d.record),
        depth,
        created: d
            .record
            .get("created_at")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    }
}

/// The record rewritten to its target project (and user), encoded. Ids
/// from the mapping are the operator's words: written as given. The
/// edited copy and its JSON text are dropped before the url is shared,
/// so that a record of tens of MB is not held three times over.
fn rewritten_url(d: &Decoded, project: &str, user: Option<&String>) -> Arc<str> {
    let json = {
        let mut rec = d.record.clone();
        let edit = Edit {
            project_id: Some(project.to_owned()),
            user_id: user.cloned(),
            ..Default::default()
        };
        let _ = apply(&mut rec, &edit);
        d.json_text(&rec, false)
    };
    let url = crate::record::codec::encode_json(&json, None);
    drop(json);
    Arc::from(url)
}

/// What follows the url in a step's check command: `cbr check` of the
/// piped record against the share.
fn check_tail(target: &Target) -> String {
    let share = target
        .share_path
        .as_deref()
        .map_or("\"$CBR_SHARE\"".to_string(), sh_quote);
    format!(
        " | cbr check --no-advice{} --target-service {} --share {share} -",
        if target.deep { " --deep" } else { "" },
        sh_quote(&target.service)
    )
}

/// `openstack volume create` of a backup's volume: its size, the target's
/// type and zone, the property `cbr-backup=ID` it is found again by.
fn create_volume_line(
    project: &str,
    size_gb: u64,
    target: &Target,
    id: &str,
    volume_name: &str,
) -> String {
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
    let mark = format!("cbr-backup={id}");
    create.extend(["--property", &mark, "--", volume_name]);
    shell_line(&create)
}

/// The restore of backup `id` into the volume `$VOLUME_ID`.
fn restore_line(project: &str, id: &str) -> String {
    format!(
        "{} \"$VOLUME_ID\"",
        shell_line(&[
            "openstack",
            "--os-project-id",
            project,
            "volume",
            "backup",
            "restore",
            "--force",
            id,
        ])
    )
}

/// The runbook's machinery: helpers, preflight, the step runner.
const RUNBOOK: &str = include_str!("runbook.sh");

/// What the runbook does and needs, said in its header (after the counts).
const SH_ABOUT: &str = r#"#
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

"#;

/// The bash runbook: a header saying what it does and needs, the plan's
/// settings as shell variables, the machinery of [`RUNBOOK`] (preflight,
/// retried calls, exactly-once restore, progress file, failure report),
/// then one `run_step` line per backup. Every word that came from a record,
/// the share or the command line is quoted with [`shell`].
pub fn render_sh(plan: &Plan, steps: &[&Step]) -> String {
    // Room for the whole script at once: a step carries its backup_url
    // (tens of MB for a big record), which a growing string would copy.
    let steps_room: usize = steps
        .iter()
        .map(|x| {
            2 * (x.backup_url.len()
                + x.backup_id.len()
                + x.target_project.len()
                + x.backup_service.len()
                + x.volume_name.len()
                + x.depends_on.as_deref().map_or(0, str::len))
                + 512
        })
        .sum();
    let left_room: usize = (plan.skipped.iter().chain(&plan.refused))
        .map(|l| 2 * (l.backup_id.len() + l.reason.len()) + 64)
        .sum();
    let mut s =
        String::with_capacity(RUNBOOK.len() + SH_ABOUT.len() + 4096 + steps_room + left_room);
    // Writing into a String does not fail.
    let _ = write_sh(&mut s, plan, steps);
    s
}

/// [`render_sh`], written into `s`.
fn write_sh(s: &mut impl fmt::Write, plan: &Plan, steps: &[&Step]) -> fmt::Result {
    sh_header(s, plan, steps)?;
    s.write_str(SH_ABOUT)?;
    sh_settings(s, &plan.target, steps)?;
    s.write_str(RUNBOOK)?;
    s.write_str("\n# ---- the steps --------------------------------------------------------------\npreflight\n\n")?;
    for (n, x) in steps.iter().enumerate() {
        sh_step(s, n + 1, steps.len(), x)?;
    }
    s.write_str("finish\n")
}

/// The runbook's first lines: the counts, the restore mode, each backup
/// skipped or refused and why.
fn sh_header(s: &mut impl fmt::Write, plan: &Plan, steps: &[&Step]) -> fmt::Result {
    let projects: std::collections::BTreeSet<&str> =
        steps.iter().map(|x| x.target_project.as_str()).collect();
    let gib: u64 = steps.iter().map(|x| x.size_gb).sum();
    let restored = steps.iter().filter(|x| x.restore).count();
    s.write_str("#!/usr/bin/env bash\n")?;
    // Values from records are single-quoted on purpose ($(…) stays text).
    s.write_str("# shellcheck disable=SC2016\n")?;
    s.write_str("# Migration runbook written by `cbr plan`: run it with `bash THIS-FILE`.\n#\n")?;
    writeln!(
        s,
        "# backups: {}   projects: {}   GiB: {}   skipped: {}   refused: {}",
        steps.len(),
        projects.len(),
        gib,
        plan.skipped.len(),
        plan.refused.len()
    )?;
    writeln!(
        s,
        "# restore: {} ({} of {} backups get a volume of their own; every backup is imported)",
        plan.target.restore.as_str(),
        restored,
        steps.len()
    )?;
    for l in &plan.skipped {
        writeln!(
            s,
            "#   skipped {}: {}",
            one_line(&l.backup_id),
            one_line(&l.reason)
        )?;
    }
    for l in &plan.refused {
        writeln!(
            s,
            "#   REFUSED {}: {}",
            one_line(&l.backup_id),
            one_line(&l.reason)
        )?;
    }
    Ok(())
}

/// The plan's settings as shell variables (each overridable from the
/// environment where the header says so).
fn sh_settings(s: &mut impl fmt::Write, t: &Target, steps: &[&Step]) -> fmt::Result {
    writeln!(
        s,
        "CBR_SHARE=${{CBR_SHARE:-{}}}",
        t.share_path
            .as_deref()
            .map_or(String::new(), |p| shell(p).into_owned())
    )?;
    match &t.state {
        Some(f) => writeln!(s, "CBR_STATE=${{CBR_STATE:-{}}}", shell(f))?,
        None => s.write_str("CBR_STATE=${CBR_STATE:-${BASH_SOURCE[0]}.state}\n")?,
    }
    s.write_str(": \"${CBR_RECHECK:=0}\" \"${CBR_RESTORE_AGAIN:=0}\" \"${CBR_WAIT_SECS:=7200}\" \"${CBR_TRIES:=4}\"\n")?;
    writeln!(s, "TOTAL={}", steps.len())?;
    writeln!(s, "RESTORE_MODE={}", t.restore.as_str())?;
    writeln!(s, "TARGET_SERVICE={}", shell(&t.service))?;
    let projects: std::collections::BTreeSet<&str> =
        steps.iter().map(|x| x.target_project.as_str()).collect();
    let projects: Vec<&str> = projects.into_iter().collect();
    s.write_str("PROJECTS=(")?;
    write_words(s, &projects)?;
    s.write_str(")\n")?;
    let mut vopts: Vec<&str> = Vec::new();
    if let Some(ty) = &t.volume_type {
        vopts.extend(["--type", ty]);
    }
    if let Some(z) = &t.availability_zone {
        vopts.extend(["--availability-zone", z]);
    }
    s.write_str("VOLUME_OPTS=(")?;
    write_words(s, &vopts)?;
    s.write_str(")\n\n")
}

/// Step `k` of `total`: a comment saying what it does, then its
/// `run_step` line (the backup_url written straight in, not copied first).
fn sh_step(s: &mut impl fmt::Write, k: usize, total: usize, x: &Step) -> fmt::Result {
    writeln!(
        s,
        "# {k}/{total}: backup {} ({} GiB){} -> project {}: {}",
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
    )?;
    let size = x.size_gb.to_string();
    let kk = k.to_string();
    write_words(
        s,
        &[
            "run_step",
            &kk,
            &x.backup_id,
            &x.target_project,
            &x.backup_service,
            &x.backup_url,
            &size,
            &x.volume_name,
            if x.restore { "restore" } else { "import" },
        ],
    )?;
    s.write_str("\n\n")
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
        "| # | backup | incremental of | name | source volume | created | source project | target project | GiB | service |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let cell = |v: &Option<String>| v.as_deref().map_or("—".into(), crate::escape::markdown);
    for (n, x) in plan.steps.iter().enumerate() {
        s.push_str(&format!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            code(&x.backup_id),
            x.depends_on.as_deref().map_or("—".into(), code),
            cell(&x.about.backup_name),
            cell(&x.about.source_volume_id),
            cell(&x.about.created_at),
            x.source_project.as_deref().map_or("—".into(), md),
            md(&x.target_project),
            x.size_gb,
            code(&x.backup_service)
        ));
    }
    s.push_str(&quota_table(plan));
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

/// GiB per target project (what each project's quota must hold).
fn quota_table(plan: &Plan) -> String {
    let mut per: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for x in &plan.steps {
        let e = per.entry(x.target_project.as_str()).or_default();
        e.0 += 1;
        e.1 = e.1.saturating_add(x.size_gb);
    }
    if per.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n## Per target project (quota)\n\n| target project | backups | GiB |\n|---|---|---|\n",
    );
    for (p, (n, gib)) in per {
        s.push_str(&format!(
            "| {} | {n} | {gib} |\n",
            crate::escape::markdown(p)
        ));
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

/// The plan of each target project (`--per-project`): its steps, and the
/// skips and refusals that concern it — a refusal across a chain in the
/// plan of each project it spans, one that concerns no project (a record
/// without an id) in every plan. A project whose backups were all skipped
/// or refused has a plan too, with no steps.
pub fn per_project(plan: &Plan) -> BTreeMap<String, Plan> {
    let mut out: BTreeMap<String, Plan> = BTreeMap::new();
    for x in &plan.steps {
        out.entry(x.target_project.clone())
            .or_default()
            .steps
            .push(x.clone());
    }
    for l in plan.skipped.iter().chain(&plan.refused) {
        for p in &l.target_projects {
            out.entry(p.clone()).or_default();
        }
    }
    for (project, sub) in out.iter_mut() {
        // The same settings (restore mode, volume names, state file).
        sub.target = plan.target.clone();
        let mine = |l: &&Left| l.target_projects.is_empty() || l.target_projects.contains(project);
        sub.skipped = plan.skipped.iter().filter(mine).cloned().collect();
        sub.refused = plan.refused.iter().filter(mine).cloned().collect();
        sub.summary = Summary {
            backups: sub.steps.len(),
            projects: usize::from(!sub.steps.is_empty()),
            gib: sub
                .steps
                .iter()
                .fold(0u64, |a, s| a.saturating_add(s.size_gb)),
            skipped: sub.skipped.len(),
            refused: sub.refused.len(),
            restore: plan.summary.restore,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_backups_from_every_listing_form() {
        let a = "a0f6583f-d913-426d-a8e2-d262262a433b";
        let b = "240eb01b-43db-412c-88fa-80f724cb2c2c";
        let status = |m: &HashMap<String, Listed>, id: &str| m[id].status.clone();
        let j =
            r#"[{"ID": "A0F6583F-D913-426D-A8E2-D262262A433B", "Name": "x", "Status": "error"}]"#;
        assert_eq!(
            status(&parse_target_backups(j, "f").unwrap(), a).as_deref(),
            Some("error")
        );
        let t = format!(
            "+----+\n| ID | Volume ID | Status | Project |\n+---+\n| {b} | {a} | available | p1 |\n"
        );
        let m = parse_target_backups(&t, "f").unwrap();
        assert_eq!(m[b].project.as_deref(), Some("p1"));
        let v = format!(
            "{a} my backup available 1 False 2026-01-01T00:00:00.000000\n{b} None None error 1 True x\n"
        );
        let m = parse_target_backups(&v, "f").unwrap();
        assert_eq!(status(&m, a).as_deref(), Some("available"));
        assert_eq!(status(&m, b).as_deref(), Some("error"));
        let c = format!("\"ID\",\"Name\",\"Status\"\r\n\"{a}\",\"n\",\"creating\"\r\n");
        assert_eq!(
            status(&parse_target_backups(&c, "f").unwrap(), a).as_deref(),
            Some("creating")
        );
        let y =
            format!("- ID: {a}\n  Name: n\n  Status: restoring\n- ID: {b}\n  Status: available\n");
        let m = parse_target_backups(&y, "f").unwrap();
        assert_eq!(status(&m, a).as_deref(), Some("restoring"));
        assert_eq!(m.len(), 2);
        assert!(parse_target_backups("[]", "f").unwrap().is_empty());
        for not in [
            "",
            "The request you have made requires authentication. (HTTP 401)\n",
            "{\"error\": {\"code\": 401}}",
        ] {
            assert!(parse_target_backups(not, "f").is_err(), "{not:?}");
        }
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("abc-1"), "abc-1");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
