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
use crate::recover::{RecoverOptions, recover};
use crate::share::Share;
use crate::share::scan::ShareIndex;
use crate::spill::{At, Spill, SpillError};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
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
    /// The plan's scratch file could not be made, written or read.
    #[error("{0}")]
    Spill(String),
    /// The plan could not be written out.
    #[error("cannot write the plan")]
    Write(#[source] std::io::Error),
}

impl From<SpillError> for PlanError {
    fn from(e: SpillError) -> PlanError {
        PlanError::Spill(e.to_string())
    }
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
}

/// A backup not planned, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

/// The plan: what is decided about every backup. The steps' data (each
/// one's rewritten backup_url, names) and the reasons of what is left out
/// lie in the plan's spill ([`crate::spill`]) and are read back one at a
/// time as the plan is written ([`Plan::steps`], [`Plan::skipped`],
/// [`Plan::refused`]): a plan of a million backups holds their ids and
/// positions, not their records. `--format json` writes `summary`,
/// `steps`, `skipped` and `refused`, in that order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub summary: Summary,
    /// The planned candidates, in plan order.
    steps: Vec<u32>,
    skipped: Vec<LeftRef>,
    refused: Vec<LeftRef>,
    cands: Arc<Vec<Cand>>,
    /// Target (project, user) pairs, each once.
    projects: Arc<Vec<(String, Option<String>)>>,
    spill: Arc<Spill>,
    /// What the runbook needs beyond the steps.
    pub target: Target,
}

/// A backup left out, as the plan holds it until it is written.
#[derive(Debug, Clone)]
enum LeftRef {
    /// A candidate refused: its reason in the spill, the projects it
    /// concerns from its chain.
    Cand(u32),
    /// Left out before planning: the whole [`Left`] in the spill.
    Own(Box<Own>),
}

/// A backup left out before planning: its id and projects (indices into
/// the plan's projects) kept to sort and to split the plan by project.
#[derive(Debug, Clone)]
struct Own {
    id: Box<str>,
    at: At,
    projects: [u32; 2],
}

/// No project (in [`Own`]'s projects, [`Cand::up`]).
const NONE: u32 = u32::MAX;

fn serialize_arc_str<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// Quote for a POSIX shell: `'…'`, with `'` as `'\''` ([`crate::escape::shell`]).
pub fn sh_quote(s: &str) -> String {
    crate::escape::shell(s).into_owned()
}

/// One backup being planned: what deciding and ordering need. The rest
/// (the step's data, or the reason it is refused) is in the spill.
#[derive(Debug)]
struct Cand {
    /// Its record ([`Records`]): where its id and creation time are read
    /// while the plan is decided (not copied here: a million of them
    /// would be a hundred MB).
    rec: u32,
    /// The parent's id (lowercase).
    parent: Option<Box<str>>,
    /// The parent when it is a candidate too (set by [`chains`]; else [`NONE`]).
    up: u32,
    /// The target (project, user): an index into the plan's projects.
    target: u32,
    /// The step's data ([`StepData`] as JSON) or, when refused, its
    /// [`Refusal`] (as JSON).
    at: At,
    refused: bool,
    /// Restored into a volume of its own (`--restore`).
    restore: bool,
    size_gb: u64,
}

/// Why a candidate is refused, as the spill keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Refusal {
    backup_id: String,
    reason: String,
}

impl Refusal {
    fn put(backup_id: &str, reason: &str, spill: &Spill) -> Result<At, PlanError> {
        let r = Refusal {
            backup_id: backup_id.to_string(),
            reason: reason.to_string(),
        };
        Ok(spill.put(&serde_json::to_vec(&r).map_err(|e| PlanError::Spill(e.to_string()))?)?)
    }

    fn get(at: At, spill: &Spill) -> Result<Refusal, PlanError> {
        serde_json::from_slice(&spill.get(at)?).map_err(|e| PlanError::Spill(e.to_string()))
    }
}

/// A record's `created_at` as plan order compares it: the record's own
/// text, or (recovered) the one [`crate::recover::export_datetime`] gives.
enum Created<'a> {
    Text(&'a str),
    Export([u8; 20]),
}

impl Created<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Created::Text(t) => t.as_bytes(),
            Created::Export(b) => b,
        }
    }
}

/// [`crate::recover::export_datetime`] of `s`, without allocating.
fn export_key(s: &str) -> Option<[u8; 20]> {
    let b = s.trim().as_bytes();
    let mut k = [0u8; 20];
    for (slot, &c) in k.iter_mut().zip(b.get(..19)?) {
        *slot = if c == b' ' { b'T' } else { c };
    }
    k[19] = b'Z';
    (k[10] == b'T' && std::str::from_utf8(&k).is_ok()).then_some(k)
}

/// What a step is made of, as the spill keeps it: everything that came
/// from its record.
#[derive(Debug, Serialize, Deserialize)]
struct StepData {
    backup_id: String,
    depends_on: Option<String>,
    source_project: Option<String>,
    backup_service: String,
    backup_url: String,
    size_gb: u64,
    volume_name: String,
    about: About,
}

/// The records a plan is made of: those given, held, and those recovered
/// from the share, recovered again each time one is needed, so that the
/// records of a share of a million backups are never held at once.
pub struct Records<'a> {
    pub given: Vec<Decoded>,
    /// Where each given record was read (`FILE line N`).
    pub origins: Vec<String>,
    pub recovering: Option<Recovering<'a>>,
}

/// Backups of a share whose records are recovered ([`crate::recover`]).
pub struct Recovering<'a> {
    pub share: &'a Share,
    pub index: &'a ShareIndex,
    /// Their positions in the index, in its order.
    pub positions: Vec<u32>,
    pub opts: RecoverOptions,
}

impl Recovering<'_> {
    fn summary(&self, k: usize) -> Option<&crate::share::scan::Summary> {
        let p = *self.positions.get(k)? as usize;
        self.index.backups.get(p)
    }

    /// The id of the `k`th backup recovered.
    pub fn id(&self, k: usize) -> &str {
        self.summary(k).map_or("", |s| s.id())
    }

    /// The record of the `k`th backup, recovered from the share as
    /// `cbr recover` would: Err says why it cannot be.
    pub fn record(&self, k: usize) -> Result<Decoded, String> {
        let s = self.summary(k).ok_or("not on the share")?;
        let b = self.index.load(self.share, s).ok_or(
            "its _metadata no longer reads as it did when the share was walked (changed?)",
        )?;
        let dependants = self.index.dependants(s.id()).count();
        let r = recover(self.share, dependants, &b, &self.opts).map_err(|e| e.to_string())?;
        Ok(Decoded {
            backup_service: Some(self.opts.service.clone()),
            record: r.record,
            source: crate::record::Source {
                format: crate::record::SourceFormat::RecordJson,
                wrapped: false,
                era: crate::record::Era::Current,
            },
            json: None,
            wrap: None,
            line: 0,
            duplicate_keys: Vec::new(),
        })
    }
}

impl Records<'_> {
    pub fn len(&self) -> usize {
        self.given.len() + self.recovering.as_ref().map_or(0, |r| r.positions.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`: given (borrowed) or recovered now. Err: (id, why it
    /// could not be recovered).
    pub fn get(&self, i: usize) -> Result<Cow<'_, Decoded>, (String, String)> {
        if let Some(d) = self.given.get(i) {
            return Ok(Cow::Borrowed(d));
        }
        let k = i - self.given.len();
        let r = self
            .recovering
            .as_ref()
            .ok_or_else(|| (String::new(), "no such record".to_string()))?;
        r.record(k)
            .map(Cow::Owned)
            .map_err(|why| (r.id(k).to_string(), why))
    }

    /// The id of record `i` as the plan keys it (lower case).
    fn plan_id(&self, i: usize) -> Cow<'_, str> {
        let id = self.id(i).unwrap_or("");
        if id.chars().any(char::is_uppercase) {
            Cow::Owned(id.to_lowercase())
        } else {
            Cow::Borrowed(id)
        }
    }

    /// The `created_at` of record `i`.
    fn created(&self, i: usize) -> Created<'_> {
        match self.given.get(i) {
            Some(d) => Created::Text(
                d.record
                    .get("created_at")
                    .and_then(|v| v.as_str())
                    .unwrap_or(""),
            ),
            None => self
                .recovering
                .as_ref()
                .and_then(|r| r.summary(i - self.given.len()))
                .and_then(|s| s.created_at())
                .and_then(export_key)
                .map_or(Created::Text(""), Created::Export),
        }
    }

    /// The id of record `i` as it was given or as the share has it.
    pub fn id(&self, i: usize) -> Option<&str> {
        match self.given.get(i) {
            Some(d) => id_field(&d.record, "id"),
            None => self.recovering.as_ref().map(|r| r.id(i - self.given.len())),
        }
    }
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

/// Records worked on at once while deciding: each is read (or recovered
/// from the share) and checked in parallel, then the window is assembled
/// in order and its records dropped.
const WINDOW: usize = 256;

/// Decide the plan. `share`: check every record against it as `check`
/// does (and its index, to say whether a missing parent is on it).
/// `spill`: where the plan keeps its steps' data and its reasons.
/// `unrecovered(id, why)`: a backup of the share whose record could not
/// be recovered (it is left out of the plan).
pub fn make(
    records: &Records<'_>,
    map: &Mapping,
    target: &Target,
    share: Option<(&Share, &ShareIndex)>,
    spill: Spill,
    unrecovered: &(dyn Fn(&str, &str) + Sync),
) -> Result<Plan, PlanError> {
    if let Some(t) = &target.volume_name {
        check_volume_template(t)?;
    }
    let mut d = Decided::default();
    candidates(records, map, target, share, &spill, unrecovered, &mut d)?;
    let on_share = |p: &str| share.is_some_and(|(_, ix)| ix.summary(p).is_some());
    let depth = chains(&mut d, records, target, &on_share, &spill)?;
    let Decided {
        mut cands,
        projects,
        mut skipped,
        mut refused,
        ..
    } = d;
    // Exact sizes: a vector that doubles holds its old and new buffers
    // at once, which at a million backups is tens of MB at the peak.
    refused.reserve_exact(cands.iter().filter(|c| c.refused).count());
    refused.extend(
        cands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.refused)
            .map(|(i, _)| LeftRef::Cand(i as u32)),
    );
    // Whatever order the inputs came in, the lists read the same.
    for l in [&mut skipped, &mut refused] {
        sort_lefts(l, &cands, records, &spill)?;
    }
    let steps = ordered_steps(&cands, &projects, &depth, records);
    drop(depth);
    choose_restores(&mut cands, &steps, target.restore);
    // Every piece on disk before a byte of the plan is written out.
    spill.flush()?;
    let mut plan = Plan {
        summary: Summary::default(),
        steps,
        skipped,
        refused,
        cands: Arc::new(cands),
        projects: Arc::new(projects),
        spill: Arc::new(spill),
        target: target.clone(),
    };
    plan.summary = summarize(&plan);
    Ok(plan)
}

/// What deciding builds up.
#[derive(Default)]
struct Decided {
    cands: Vec<Cand>,
    projects: Vec<(String, Option<String>)>,
    project_of: HashMap<(String, Option<String>), u32>,
    skipped: Vec<LeftRef>,
    refused: Vec<LeftRef>,
    unmapped: BTreeMap<Option<String>, Vec<String>>,
}

impl Decided {
    /// The index of a target (project, user), added when new.
    fn project(&mut self, t: (String, Option<String>)) -> u32 {
        if let Some(&i) = self.project_of.get(&t) {
            return i;
        }
        let i = u32::try_from(self.projects.len()).unwrap_or(NONE - 1);
        self.projects.push(t.clone());
        self.project_of.insert(t, i);
        i
    }

    /// A backup left out before planning, into `skipped` or `refused`.
    fn leave(&mut self, refuse: bool, left: Left, spill: &Spill) -> Result<(), PlanError> {
        let mut projects = [NONE; 2];
        for (slot, p) in projects.iter_mut().zip(&left.target_projects) {
            *slot = self.project((p.clone(), None));
        }
        let json = serde_json::to_vec(&left).map_err(|e| PlanError::Spill(e.to_string()))?;
        let r = LeftRef::Own(Box::new(Own {
            id: left.backup_id.into_boxed_str(),
            at: spill.put(&json)?,
            projects,
        }));
        if refuse {
            self.refused.push(r);
        } else {
            self.skipped.push(r);
        }
        Ok(())
    }
}

/// What one record comes to on its own (worked out in parallel, then
/// assembled in the order of the records).
enum Prepared {
    /// A backup of the share whose record could not be recovered: (id, why).
    Unrecovered(String, String),
    /// A record without an id.
    NoId(Left),
    Ready {
        id: String,
        mapped: Result<(String, Option<String>), Option<String>>,
        /// Left out before planning: (refused, reason).
        before: Option<(bool, String)>,
        /// A candidate: what it needs.
        cand: Option<Box<Prep>>,
    },
}

struct Prep {
    parent: Option<String>,
    size_gb: u64,
    /// Why it is refused on its own (else its step data).
    refused: Option<String>,
    step: Option<StepData>,
}

/// Record `i` on its own: its id, target, whether it is left out before
/// planning and, when a candidate, its check against the share and its
/// step's data.
fn prepare(
    records: &Records<'_>,
    i: usize,
    map: &Mapping,
    target: &Target,
    share: Option<(&Share, &ShareIndex)>,
    batch: &Batch<'_>,
) -> Prepared {
    let d = match records.get(i) {
        Ok(d) => d,
        Err((id, why)) => return Prepared::Unrecovered(id, why),
    };
    let Some(id) = id_field(&d.record, "id").map(str::to_lowercase) else {
        return Prepared::NoId(no_id(&d));
    };
    let mapped = map.target(id_field(&d.record, "project_id"));
    let before = before_planning(&id, mapped.as_ref().ok(), target);
    let cand = match (&before, &mapped) {
        (None, Ok(tgt)) => {
            let parent = id_field(&d.record, "parent_id").map(str::to_lowercase);
            let refused = target
                .damaged
                .get(&id)
                .cloned()
                .or_else(|| problems(&d, batch, target, share));
            let step = refused
                .is_none()
                .then(|| step_data(&d, &id, parent.clone(), tgt, target));
            Some(Box::new(Prep {
                parent,
                size_gb: d.record.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
                refused,
                step,
            }))
        }
        _ => None,
    };
    Prepared::Ready {
        id,
        mapped,
        before,
        cand,
    }
}

/// The records that can be planned, each with its target and, when it is
/// refused on its own, why. Those left out before planning — no id,
/// given twice, decided by [`before_planning`] — go to the lists; records
/// of a project with no mapping are the error.
fn candidates(
    records: &Records<'_>,
    map: &Mapping,
    target: &Target,
    share: Option<(&Share, &ShareIndex)>,
    spill: &Spill,
    unrecovered: &(dyn Fn(&str, &str) + Sync),
    d: &mut Decided,
) -> Result<(), PlanError> {
    use rayon::prelude::*;
    // The records given make the batch a record's lint speaks of (the
    // recovered ones only add an informational note: not a refusal).
    let batch = Batch::of(records.given.iter().map(|d| &d.record));
    let mut seen: HashSet<String> = HashSet::new();
    d.cands.reserve_exact(records.len());
    // A backup id on the share twice: which one is the backup cannot be told.
    let again = records.recovering.as_ref().map(|r| r.index.repeated_ids());
    let n = records.len();
    let mut from = 0;
    while from < n {
        let to = (from + WINDOW).min(n);
        let window: Vec<Prepared> = (from..to)
            .into_par_iter()
            .with_max_len(1)
            .map(|i| prepare(records, i, map, target, share, &batch))
            .collect();
        for (i, p) in (from..to).zip(window) {
            let (id, mapped, before, cand) = match p {
                Prepared::Unrecovered(id, why) => {
                    unrecovered(&id, &why);
                    continue;
                }
                Prepared::NoId(left) => {
                    d.leave(true, left, spill)?;
                    continue;
                }
                Prepared::Ready {
                    id,
                    mapped,
                    before,
                    cand,
                } => (id, mapped, before, cand),
            };
            let projects: Vec<String> = mapped.iter().map(|t| t.0.clone()).collect();
            let recovered = i
                .checked_sub(records.given.len())
                .and_then(|k| Some((records.recovering.as_ref()?, k)));
            if let (Some((r, k)), Some(again)) = (recovered, &again)
                && r.positions.get(k).is_some_and(|p| again.contains(p))
            {
                let containers: Vec<String> = r
                    .index
                    .positions_of(r.id(k))
                    .map(|p| r.index.backups[p].container().into_owned())
                    .collect();
                let left = Left {
                    backup_id: id,
                    reason: format!(
                        "the share holds {} backups with this id (in {}): cbr cannot tell which \
                         one to import; move the copy out of the share's tree, or give the right \
                         one's record, and re-plan",
                        containers.len(),
                        containers.join(", ")
                    ),
                    target_projects: projects,
                };
                d.leave(true, left, spill)?;
                continue;
            }
            let twice = recovered.is_none() && !seen.insert(id.clone());
            if twice {
                let left = Left {
                    backup_id: id,
                    reason: "given twice in the input: planned once".into(),
                    target_projects: projects,
                };
                d.leave(false, left, spill)?;
                continue;
            }
            if let Some((refuse, reason)) = before {
                let left = Left {
                    backup_id: id,
                    reason,
                    target_projects: projects,
                };
                d.leave(refuse, left, spill)?;
                continue;
            }
            let (tgt, c) = match (mapped, cand) {
                (Ok(t), Some(c)) => (t, c),
                (Err(project), _) => {
                    d.unmapped.entry(project).or_default().push(id);
                    continue;
                }
                (Ok(_), None) => continue,
            };
            let at = match (&c.refused, &c.step) {
                (Some(why), _) => Refusal::put(&id, why, spill)?,
                (None, Some(s)) => spill
                    .put(&serde_json::to_vec(s).map_err(|e| PlanError::Spill(e.to_string()))?)?,
                (None, None) => continue,
            };
            let target_ix = d.project(tgt);
            d.cands.push(Cand {
                rec: u32::try_from(i).unwrap_or(u32::MAX),
                parent: c.parent.map(String::into_boxed_str),
                up: NONE,
                target: target_ix,
                at,
                refused: c.refused.is_some(),
                restore: true,
                size_gb: c.size_gb,
            });
        }
        from = to;
    }
    if !d.unmapped.is_empty() {
        return Err(unmapped_error(std::mem::take(&mut d.unmapped)));
    }
    Ok(())
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

/// Sort a list of backups left out by id, then reason (reasons read back
/// only where ids repeat).
fn sort_lefts(
    list: &mut [LeftRef],
    cands: &[Cand],
    records: &Records<'_>,
    spill: &Spill,
) -> Result<(), PlanError> {
    list.sort_by(|a, b| left_id(a, cands, records).cmp(&left_id(b, cands, records)));
    sort_ties(list, cands, records, spill)
}

/// The id of a backup left out.
fn left_id<'a>(l: &'a LeftRef, cands: &[Cand], records: &'a Records<'_>) -> Cow<'a, str> {
    match l {
        LeftRef::Cand(i) => records.plan_id(cands[*i as usize].rec as usize),
        LeftRef::Own(o) => Cow::Borrowed(&*o.id),
    }
}

/// Within runs of one id, the order by reason (read back from the spill).
fn sort_ties(
    list: &mut [LeftRef],
    cands: &[Cand],
    records: &Records<'_>,
    spill: &Spill,
) -> Result<(), PlanError> {
    let mut start = 0;
    while start < list.len() {
        let mut end = start + 1;
        while end < list.len()
            && left_id(&list[end], cands, records) == left_id(&list[start], cands, records)
        {
            end += 1;
        }
        if end - start > 1 {
            let mut run: Vec<(String, LeftRef)> = Vec::with_capacity(end - start);
            for l in &list[start..end] {
                run.push((reason_of(l, cands, spill)?, l.clone()));
            }
            run.sort_by(|a, b| a.0.cmp(&b.0));
            for (slot, (_, l)) in list[start..end].iter_mut().zip(run) {
                *slot = l;
            }
        }
        start = end;
    }
    Ok(())
}

/// The reason a backup is left out, read back from the spill.
fn reason_of(l: &LeftRef, cands: &[Cand], spill: &Spill) -> Result<String, PlanError> {
    Ok(match l {
        LeftRef::Cand(i) => Refusal::get(cands[*i as usize].at, spill)?.reason,
        LeftRef::Own(o) => {
            let left: Left = serde_json::from_slice(&spill.get(o.at)?)
                .map_err(|e| PlanError::Spill(e.to_string()))?;
            left.reason
        }
    })
}

/// The planned candidates in plan order: by target project, parents
/// before children, then by creation and id.
fn ordered_steps(
    cands: &[Cand],
    projects: &[(String, Option<String>)],
    depth: &[u32],
    records: &Records<'_>,
) -> Vec<u32> {
    let name = |c: &Cand| projects.get(c.target as usize).map_or("", |p| p.0.as_str());
    let mut steps: Vec<u32> = (0..cands.len() as u32)
        .filter(|&i| !cands[i as usize].refused)
        .collect();
    steps.sort_by(|&a, &b| {
        let (x, y) = (&cands[a as usize], &cands[b as usize]);
        let (xr, yr) = (x.rec as usize, y.rec as usize);
        (name(x), depth[a as usize])
            .cmp(&(name(y), depth[b as usize]))
            .then_with(|| records.created(xr).bytes().cmp(records.created(yr).bytes()))
            .then_with(|| records.plan_id(xr).cmp(&records.plan_id(yr)))
    });
    steps
}

/// Which steps are restored (`--restore`). `newest`: a backup is
/// restored when no planned backup is an incremental of it.
fn choose_restores(cands: &mut [Cand], steps: &[u32], mode: RestoreMode) {
    let mut parent = vec![false; cands.len()];
    for &s in steps {
        let up = cands[s as usize].up;
        if up != NONE {
            parent[up as usize] = true;
        }
    }
    for &s in steps {
        let s = s as usize;
        cands[s].restore = match mode {
            RestoreMode::All => true,
            RestoreMode::Newest => !parent[s],
            RestoreMode::None => false,
        };
    }
}

/// The counts of a decided plan.
fn summarize(plan: &Plan) -> Summary {
    let projects: HashSet<&str> = plan
        .step_cands()
        .map(|c| plan.project_name(c.target))
        .collect();
    Summary {
        restore: plan.target.restore,
        backups: plan.steps.len(),
        projects: projects.len(),
        gib: plan
            .step_cands()
            .fold(0u64, |a, c| a.saturating_add(c.size_gb)),
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
fn parent_outside(
    p: &str,
    project: &str,
    target: &Target,
    on_share: &dyn Fn(&str) -> bool,
) -> Option<String> {
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
    Some(match (&target.share_path, on_share(p)) {
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

/// The target projects a refusal of candidate `i` concerns: its own, and
/// its parent's when the chain would cross projects.
fn concerned(cands: &[Cand], projects: &[(String, Option<String>)], i: usize) -> Vec<String> {
    let name = |c: &Cand| projects.get(c.target as usize).map_or("", |p| p.0.as_str());
    let c = &cands[i];
    let mut out = vec![name(c).to_string()];
    if let Some(pc) = cands.get(c.up as usize)
        && name(pc) != name(c)
    {
        out.push(name(pc).to_string());
    }
    out
}

/// Why a record cannot be planned on its own (errors of check or lint).
fn problems(
    d: &Decoded,
    batch: &Batch<'_>,
    target: &Target,
    share: Option<(&Share, &ShareIndex)>,
) -> Option<String> {
    let findings = match share {
        Some((s, index)) => {
            let opts = CheckOptions {
                target_service: target.service.clone(),
            };
            check_record(s, &index.on(s), d, batch, &opts).findings
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
/// of parents that loops is refused whole. Sets each candidate's `up`
/// (its parent among the candidates) and returns its depth in its chain
/// (a full backup is 0).
///
/// Each candidate is settled once, after its parent: a walk up the
/// parents stops at the first one already settled, so the work is linear
/// in the number of candidates however long the chains (a chain of
/// 16,000 links, refused at its root, is one walk).
fn chains(
    d: &mut Decided,
    records: &Records<'_>,
    target: &Target,
    on_share: &dyn Fn(&str) -> bool,
    spill: &Spill,
) -> Result<Vec<u32>, PlanError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Open,
        /// On the walk being settled now.
        Walking,
        Settled,
    }
    const LOOPS: &str = "its chain of parents loops";
    let cands = &mut d.cands;
    let projects = &d.projects;
    // Candidates by id (ids are unique among them), searched by parent id.
    let id = |c: &Cand| records.plan_id(c.rec as usize);
    let mut by_id: Vec<u32> = (0..cands.len() as u32).collect();
    by_id.sort_by(|&a, &b| id(&cands[a as usize]).cmp(&id(&cands[b as usize])));
    for i in 0..cands.len() {
        let Some(p) = cands[i].parent.as_deref() else {
            continue;
        };
        let at = by_id.partition_point(|&j| *id(&cands[j as usize]) < *p);
        if let Some(&j) = by_id.get(at)
            && *id(&cands[j as usize]) == *p
        {
            cands[i].up = j;
        }
    }
    drop(by_id);
    let parent_of = |cands: &[Cand], i: usize| -> Option<usize> {
        let up = cands[i].up;
        (up != NONE).then_some(up as usize)
    };
    let mut state = vec![State::Open; cands.len()];
    let mut looped = vec![false; cands.len()];
    let mut depth = vec![0u32; cands.len()];
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
                cands[i].at = Refusal::put(&id(&cands[i]), LOOPS, spill)?;
                cands[i].refused = true;
                continue;
            }
            let parent = parent_of(cands, i);
            depth[i] = parent.map_or(0, |j| depth[j].saturating_add(1));
            if !cands[i].refused
                && let Some(why) = chain_refusal(cands, projects, i, parent, target, on_share)
            {
                cands[i].at = Refusal::put(&id(&cands[i]), &why, spill)?;
                cands[i].refused = true;
            }
        }
    }
    Ok(depth)
}

/// Why candidate `i`, settled after its parent (`parent`: the parent's
/// index when it is a candidate), is refused for its chain; None when it
/// is not (or is a full backup).
fn chain_refusal(
    cands: &[Cand],
    projects: &[(String, Option<String>)],
    i: usize,
    parent: Option<usize>,
    target: &Target,
    on_share: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let name = |c: &Cand| projects.get(c.target as usize).map_or("", |p| p.0.as_str());
    let p = cands[i].parent.as_deref()?;
    match parent {
        Some(j) if cands[j].refused => Some(format!(
            "its parent {p} is refused, so the chain cannot be restored"
        )),
        Some(j) if name(&cands[j]) != name(&cands[i]) => Some(format!(
            "its parent {p} goes to project {}, this backup to {}: a chain must land in one project",
            name(&cands[j]),
            name(&cands[i])
        )),
        Some(_) => None,
        None => parent_outside(p, name(&cands[i]), target, on_share),
    }
}

/// The data of the step of record `d` going to `tgt`.
fn step_data(
    d: &Decoded,
    id: &str,
    parent: Option<String>,
    tgt: &(String, Option<String>),
    target: &Target,
) -> StepData {
    let (project, user) = tgt;
    let service = d
        .backup_service
        .clone()
        .unwrap_or_else(|| crate::record::default_service(d.source.era).to_string());
    StepData {
        backup_id: id.to_string(),
        depends_on: parent,
        source_project: id_field(&d.record, "project_id").map(str::to_owned),
        backup_service: service,
        backup_url: rewritten_url(d, project, user.as_ref()),
        size_gb: d.record.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
        volume_name: volume_name(
            target.volume_name.as_deref().unwrap_or("cbr-{id}"),
            &d.record,
            id,
        ),
        about: About::of(&d.record),
    }
}

impl Plan {
    fn project_name(&self, i: u32) -> &str {
        self.projects.get(i as usize).map_or("", |p| p.0.as_str())
    }

    fn step_cands(&self) -> impl Iterator<Item = &Cand> + '_ {
        self.steps.iter().map(|&i| &self.cands[i as usize])
    }

    /// The steps, in plan order, each read back from the spill.
    pub fn steps(&self) -> impl Iterator<Item = Result<Step, PlanError>> + '_ {
        self.steps.iter().map(|&i| self.step(i as usize))
    }

    /// The backups skipped, each read back from the spill.
    pub fn skipped(&self) -> impl Iterator<Item = Result<Left, PlanError>> + '_ {
        self.skipped.iter().map(|l| self.left(l))
    }

    /// The backups refused, each read back from the spill.
    pub fn refused(&self) -> impl Iterator<Item = Result<Left, PlanError>> + '_ {
        self.refused.iter().map(|l| self.left(l))
    }

    fn left(&self, l: &LeftRef) -> Result<Left, PlanError> {
        match l {
            LeftRef::Cand(i) => {
                let i = *i as usize;
                let r = Refusal::get(self.cands[i].at, &self.spill)?;
                Ok(Left {
                    backup_id: r.backup_id,
                    reason: r.reason,
                    target_projects: concerned(&self.cands, &self.projects, i),
                })
            }
            LeftRef::Own(o) => serde_json::from_slice(&self.spill.get(o.at)?)
                .map_err(|e| PlanError::Spill(e.to_string())),
        }
    }

    /// Candidate `i`'s step, from its data in the spill.
    fn step(&self, i: usize) -> Result<Step, PlanError> {
        let c = &self.cands[i];
        let data: StepData = serde_json::from_slice(&self.spill.get(c.at)?)
            .map_err(|e| PlanError::Spill(e.to_string()))?;
        let (project, user) = self
            .projects
            .get(c.target as usize)
            .cloned()
            .unwrap_or_default();
        let t = &self.target;
        let url: Arc<str> = Arc::from(data.backup_url);
        Ok(Step {
            commands: Commands {
                url: Arc::clone(&url),
                project: project.clone(),
                service: data.backup_service.clone(),
                check_tail: check_tail(t),
                create_volume: c.restore.then(|| {
                    create_volume_line(
                        &project,
                        data.size_gb,
                        t,
                        &data.backup_id,
                        &data.volume_name,
                    )
                }),
                restore: c.restore.then(|| restore_line(&project, &data.backup_id)),
            },
            backup_id: data.backup_id,
            depends_on: data.depends_on,
            source_project: data.source_project,
            target_project: project,
            target_user: user,
            backup_service: data.backup_service,
            backup_url: url,
            size_gb: data.size_gb,
            volume_name: data.volume_name,
            volume_type: t.volume_type.clone(),
            availability_zone: t.availability_zone.clone(),
            restore: c.restore,
            about: data.about,
        })
    }
}

/// The record rewritten to its target project (and user), encoded. Ids
/// from the mapping are the operator's words: written as given.
fn rewritten_url(d: &Decoded, project: &str, user: Option<&String>) -> String {
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
    crate::record::codec::encode_json(&json, None)
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

/// Where a plan is written: an [`std::io::Write`] taken as a
/// [`fmt::Write`], keeping the I/O error that stopped it.
struct Out<'a> {
    w: &'a mut dyn std::io::Write,
    err: Option<std::io::Error>,
}

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.w.write_all(s.as_bytes()).map_err(|e| {
            self.err = Some(e);
            fmt::Error
        })
    }
}

impl<'a> Out<'a> {
    fn new(w: &'a mut dyn std::io::Write) -> Out<'a> {
        Out { w, err: None }
    }

    /// The error of a failed write.
    fn failed(&mut self) -> PlanError {
        PlanError::Write(
            self.err
                .take()
                .unwrap_or_else(|| std::io::Error::other("formatting failed")),
        )
    }

    fn put(&mut self, a: fmt::Arguments<'_>) -> Result<(), PlanError> {
        fmt::Write::write_fmt(self, a).map_err(|_| self.failed())
    }

    fn text(&mut self, s: &str) -> Result<(), PlanError> {
        fmt::Write::write_str(self, s).map_err(|_| self.failed())
    }

    fn words(&mut self, words: &[&str]) -> Result<(), PlanError> {
        write_words(self, words).map_err(|_| self.failed())
    }
}

/// The bash runbook, written into `w`: a header saying what it does and
/// needs, the plan's settings as shell variables, the machinery of
/// [`RUNBOOK`] (preflight, retried calls, exactly-once restore, progress
/// file, failure report), then one `run_step` line per backup, each step
/// read back from the spill as it is written. Every word that came from a
/// record, the share or the command line is quoted with [`shell`].
pub fn render_sh(plan: &Plan, w: &mut dyn std::io::Write) -> Result<(), PlanError> {
    let mut o = Out::new(w);
    sh_header(&mut o, plan)?;
    o.text(SH_ABOUT)?;
    sh_settings(&mut o, plan)?;
    o.text(RUNBOOK)?;
    o.text("\n# ---- the steps --------------------------------------------------------------\npreflight\n\n")?;
    let total = plan.steps.len();
    for (n, x) in plan.steps().enumerate() {
        sh_step(&mut o, n + 1, total, &x?)?;
    }
    o.text("finish\n")?;
    o.w.flush().map_err(PlanError::Write)
}

/// The runbook's first lines: the counts, the restore mode, each backup
/// skipped or refused and why.
fn sh_header(o: &mut Out<'_>, plan: &Plan) -> Result<(), PlanError> {
    let s = &plan.summary;
    let restored = plan.step_cands().filter(|c| c.restore).count();
    o.text("#!/usr/bin/env bash\n")?;
    // Values from records are single-quoted on purpose ($(…) stays text).
    o.text("# shellcheck disable=SC2016\n")?;
    o.text("# Migration runbook written by `cbr plan`: run it with `bash THIS-FILE`.\n#\n")?;
    o.put(format_args!(
        "# backups: {}   projects: {}   GiB: {}   skipped: {}   refused: {}\n",
        s.backups, s.projects, s.gib, s.skipped, s.refused
    ))?;
    o.put(format_args!(
        "# restore: {} ({} of {} backups get a volume of their own; every backup is imported)\n",
        plan.target.restore.as_str(),
        restored,
        s.backups
    ))?;
    for l in plan.skipped() {
        let l = l?;
        o.put(format_args!(
            "#   skipped {}: {}\n",
            one_line(&l.backup_id),
            one_line(&l.reason)
        ))?;
    }
    for l in plan.refused() {
        let l = l?;
        o.put(format_args!(
            "#   REFUSED {}: {}\n",
            one_line(&l.backup_id),
            one_line(&l.reason)
        ))?;
    }
    Ok(())
}

/// The plan's settings as shell variables (each overridable from the
/// environment where the header says so).
fn sh_settings(o: &mut Out<'_>, plan: &Plan) -> Result<(), PlanError> {
    let t = &plan.target;
    o.put(format_args!(
        "CBR_SHARE=${{CBR_SHARE:-{}}}\n",
        t.share_path
            .as_deref()
            .map_or(String::new(), |p| shell(p).into_owned())
    ))?;
    match &t.state {
        Some(f) => o.put(format_args!("CBR_STATE=${{CBR_STATE:-{}}}\n", shell(f)))?,
        None => o.text("CBR_STATE=${CBR_STATE:-${BASH_SOURCE[0]}.state}\n")?,
    }
    o.text(": \"${CBR_RECHECK:=0}\" \"${CBR_RESTORE_AGAIN:=0}\" \"${CBR_WAIT_SECS:=7200}\" \"${CBR_TRIES:=4}\"\n")?;
    o.put(format_args!("TOTAL={}\n", plan.steps.len()))?;
    o.put(format_args!("RESTORE_MODE={}\n", t.restore.as_str()))?;
    o.put(format_args!("TARGET_SERVICE={}\n", shell(&t.service)))?;
    let projects: std::collections::BTreeSet<&str> = plan
        .step_cands()
        .map(|c| plan.project_name(c.target))
        .collect();
    let projects: Vec<&str> = projects.into_iter().collect();
    o.text("PROJECTS=(")?;
    o.words(&projects)?;
    o.text(")\n")?;
    let mut vopts: Vec<&str> = Vec::new();
    if let Some(ty) = &t.volume_type {
        vopts.extend(["--type", ty]);
    }
    if let Some(z) = &t.availability_zone {
        vopts.extend(["--availability-zone", z]);
    }
    o.text("VOLUME_OPTS=(")?;
    o.words(&vopts)?;
    o.text(")\n\n")
}

/// Step `k` of `total`: a comment saying what it does, then its
/// `run_step` line.
fn sh_step(o: &mut Out<'_>, k: usize, total: usize, x: &Step) -> Result<(), PlanError> {
    o.put(format_args!(
        "# {k}/{total}: backup {} ({} GiB){} -> project {}: {}\n",
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
    ))?;
    let size = x.size_gb.to_string();
    let kk = k.to_string();
    o.words(&[
        "run_step",
        &kk,
        &x.backup_id,
        &x.target_project,
        &x.backup_service,
        &x.backup_url,
        &size,
        &x.volume_name,
        if x.restore { "restore" } else { "import" },
    ])?;
    o.text("\n\n")
}

/// Text for one comment line of a script (ids and reasons come from
/// records): no control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A runbook table a change-review board can read, written into `w`.
/// Every id, name and reason in it comes from records: written through
/// the markdown escaper ([`crate::escape::markdown`],
/// [`crate::escape::markdown_code`]), so that none can end a cell, start
/// a row or heading, or embed a link or image.
pub fn render_md(plan: &Plan, w: &mut dyn std::io::Write) -> Result<(), PlanError> {
    use crate::escape::{markdown as md, markdown_code as code};
    let mut o = Out::new(w);
    o.text("# Migration plan\n\n")?;
    let sm = &plan.summary;
    o.put(format_args!(
        "{} backup(s) into {} project(s), {} GiB; {} skipped, {} refused.\n\n",
        sm.backups, sm.projects, sm.gib, sm.skipped, sm.refused
    ))?;
    o.text(
        "| # | backup | incremental of | name | source volume | created | source project | target project | GiB | service |\n",
    )?;
    o.text("|---|---|---|---|---|---|---|---|---|---|\n")?;
    let cell = |v: &Option<String>| v.as_deref().map_or("—".into(), crate::escape::markdown);
    for (n, x) in plan.steps().enumerate() {
        let x = x?;
        o.put(format_args!(
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
        ))?;
    }
    quota_table(&mut o, plan)?;
    for (title, refused) in [("Skipped", false), ("Refused", true)] {
        let list = if refused {
            &plan.refused
        } else {
            &plan.skipped
        };
        if list.is_empty() {
            continue;
        }
        o.put(format_args!(
            "\n## {title}\n\n| backup | reason |\n|---|---|\n"
        ))?;
        for l in list {
            let l = plan.left(l)?;
            o.put(format_args!(
                "| {} | {} |\n",
                code(&l.backup_id),
                md(&l.reason)
            ))?;
        }
    }
    o.w.flush().map_err(PlanError::Write)
}

/// GiB per target project (what each project's quota must hold).
fn quota_table(o: &mut Out<'_>, plan: &Plan) -> Result<(), PlanError> {
    let mut per: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for c in plan.step_cands() {
        let e = per.entry(plan.project_name(c.target)).or_default();
        e.0 += 1;
        e.1 = e.1.saturating_add(c.size_gb);
    }
    if per.is_empty() {
        return Ok(());
    }
    o.text(
        "\n## Per target project (quota)\n\n| target project | backups | GiB |\n|---|---|---|\n",
    )?;
    for (p, (n, gib)) in per {
        o.put(format_args!(
            "| {} | {n} | {gib} |\n",
            crate::escape::markdown(p)
        ))?;
    }
    Ok(())
}

/// The plan of each target project (`--per-project`): its steps, and the
/// skips and refusals that concern it — a refusal across a chain in the
/// plan of each project it spans, one that concerns no project (a record
/// without an id) in every plan. A project whose backups were all skipped
/// or refused has a plan too, with no steps. The plans share this one's
/// spill.
pub fn per_project(plan: &Plan) -> BTreeMap<String, Plan> {
    let name = |i: u32| plan.project_name(i).to_string();
    // The projects a backup left out concerns, by name.
    let concerns = |l: &LeftRef| -> Vec<String> {
        match l {
            LeftRef::Cand(i) => concerned(&plan.cands, &plan.projects, *i as usize),
            LeftRef::Own(o) => o
                .projects
                .iter()
                .filter(|&&p| p != NONE)
                .map(|&p| name(p))
                .collect(),
        }
    };
    let mut steps: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for &i in &plan.steps {
        steps
            .entry(name(plan.cands[i as usize].target))
            .or_default()
            .push(i);
    }
    for l in plan.skipped.iter().chain(&plan.refused) {
        for p in concerns(l) {
            steps.entry(p).or_default();
        }
    }
    steps
        .into_iter()
        .map(|(project, steps)| {
            let mine = |l: &&LeftRef| {
                let c = concerns(l);
                c.is_empty() || c.contains(&project)
            };
            let mut sub = Plan {
                summary: Summary::default(),
                steps,
                skipped: plan.skipped.iter().filter(mine).cloned().collect(),
                refused: plan.refused.iter().filter(mine).cloned().collect(),
                cands: Arc::clone(&plan.cands),
                projects: Arc::clone(&plan.projects),
                spill: Arc::clone(&plan.spill),
                // The same settings (restore mode, volume names, state file).
                target: plan.target.clone(),
            };
            sub.summary = Summary {
                backups: sub.steps.len(),
                projects: usize::from(!sub.steps.is_empty()),
                gib: sub
                    .step_cands()
                    .fold(0u64, |a, c| a.saturating_add(c.size_gb)),
                skipped: sub.skipped.len(),
                refused: sub.refused.len(),
                restore: plan.summary.restore,
            };
            (project, sub)
        })
        .collect()
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

    /// Plan order compares a recovered record's created_at without making
    /// it: the key must be what `recover` writes, byte for byte.
    #[test]
    fn export_key_is_what_recover_writes() {
        for s in [
            "2026-11-24 05:53:19.265601+00:00",
            "2026-11-24T05:53:19",
            "  2026-11-24 05:53:19  ",
            "2026-11-24 05:53",
            "2026-11-24X05:53:19",
            "2026-11-24 05:53:1é",
            "",
            "ééééééééééééééééééééé",
        ] {
            let want = crate::recover::export_datetime(s);
            let got = export_key(s).map(|k| String::from_utf8(k.to_vec()).unwrap());
            assert_eq!(got, want, "{s:?}");
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
