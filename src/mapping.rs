//! Mapping files: which source id goes to which target id. One format for
//! `rewrite --map` and `plan --map`:
//!
//! - CSV `source,target[,user]`, as a spreadsheet exports it: quoted
//!   fields, CRLF line ends, a UTF-8 byte order mark, `#` comment lines
//!   (and a `# …` after the last field), and an optional header row (its
//!   first field `source…`, `src`, `old` or `from`) anywhere before the data;
//! - the older `old new` pairs, one a line (whitespace between);
//! - JSON: `{"SRC": "DST"}`, `{"SRC": {"project": "DST", "user": "U"}}`,
//!   or a list of `{"source", "target", "user"}`.
//!
//! Every id is a keystone id (32 hex digits or a UUID): names are refused
//! with the command that lists the ids. [`merge`] refuses a source mapped to
//! two targets, wherever the two lines came from.

use crate::record::lint::is_keystone_id;
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum MapError {
    /// Lines that are not mappings, each `WHERE: what (fix)`.
    #[error("{}", .0.join("\n  "))]
    Invalid(Vec<String>),
    /// Sources mapped to two different targets, each naming both lines.
    #[error(
        "{} source(s) mapped to two different targets (the last one would win silently):\n  {}",
        .0.len(),
        .0.join("\n  ")
    )]
    Conflicts(Vec<String>),
}

/// One mapping: `source` → `target` (and the target's user), and where it
/// was written (`map.csv:3`, `--map-project`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapLine {
    pub source: String,
    pub target: String,
    pub user: Option<String>,
    pub origin: String,
}

/// The hint for a value that is not an id.
const PROJECT_IDS: &str = "`openstack project list -f value -c ID -c Name` lists the ids";
const USER_IDS: &str = "`openstack user list -f value -c ID -c Name` lists the ids";

/// Why `value`, the `what` of a mapping, is refused (None: it is an id).
pub fn bad_id(what: &str, value: &str, user: bool) -> Option<String> {
    if is_keystone_id(value) {
        return None;
    }
    Some(format!(
        "{what} {value:?} is not a keystone id (32 hex digits or a UUID): a mapping names ids, \
         not names; {}",
        if user { USER_IDS } else { PROJECT_IDS }
    ))
}

/// Whether a row is a header: its first field names the source column.
fn is_header(first: &str) -> bool {
    let f = first.trim().to_ascii_lowercase();
    f.starts_with("source") || matches!(f.as_str(), "src" | "old" | "from")
}

/// Parse a mapping file; `name` prefixes each line's origin. Every bad
/// line is reported, not only the first.
pub fn parse(text: &str, name: &str) -> Result<Vec<MapLine>, MapError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return parse_json(t, name);
    }
    let blanked = blank_comments(text);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(blanked.as_bytes());
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut data_seen = false;
    for row in rdr.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(&blanked, p.byte()));
                bad.push(format!("{name} line {line}: not CSV: {e}"));
                break;
            }
        };
        // The line of the row's first byte (csv's own count skips blank lines).
        let line = row.position().map_or(0, |p| line_at(&blanked, p.byte()));
        let fields = row_fields(&row);
        if fields.is_empty() || (!data_seen && is_header(&fields[0])) {
            continue;
        }
        data_seen = true;
        match map_line(fields, format!("{name} line {line}")) {
            Ok(m) => out.push(m),
            Err(e) => bad.push(e),
        }
    }
    finish(out, bad)
}

/// The text with its comment lines blanked, not dropped, so that line
/// numbers stay those of the file (a quote in a comment opens no field).
fn blank_comments(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|l| {
            if l.trim_start().starts_with('#') {
                if l.ends_with("\r\n") {
                    "\r\n"
                } else if l.ends_with('\n') {
                    "\n"
                } else {
                    ""
                }
            } else {
                l
            }
        })
        .collect()
}

/// A row's fields, trimmed, up to a `#` (a comment: ids never hold one),
/// without empty trailing ones; a single `old new` field split in two
/// (the older form).
fn row_fields(row: &csv::StringRecord) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    for f in row.iter() {
        match f.split_once('#') {
            Some((keep, _)) => {
                fields.push(keep.trim().to_string());
                break;
            }
            None => fields.push(f.trim().to_string()),
        }
    }
    while fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    if fields.len() == 1 && fields[0].split_whitespace().count() == 2 {
        fields = fields[0].split_whitespace().map(str::to_owned).collect();
    }
    fields
}

/// The mapping a data row says, or what is wrong with it.
fn map_line(fields: Vec<String>, origin: String) -> Result<MapLine, String> {
    match fields.as_slice() {
        [s, d] | [s, d, _] if !s.is_empty() && !d.is_empty() => {
            let user = fields.get(2).filter(|u| !u.is_empty()).cloned();
            Ok(MapLine {
                source: s.clone(),
                target: d.clone(),
                user,
                origin,
            })
        }
        _ => Err(format!(
            "{origin}: expected `source,target[,user]` (or `old new`), found {:?}",
            fields.join(",")
        )),
    }
}

/// The 1-based line of the row csv says starts at byte `at` of `text`
/// (csv may put it on the line end before the row, or on blank lines
/// before it: a row never starts with a line end, so those are passed).
fn line_at(text: &str, at: u64) -> usize {
    let b = text.as_bytes();
    let mut end = usize::try_from(at).unwrap_or(usize::MAX).min(b.len());
    while end < b.len() && (b[end] == b'\n' || b[end] == b'\r') {
        end += 1;
    }
    1 + b[..end].iter().filter(|&&c| c == b'\n').count()
}

fn parse_json(t: &str, name: &str) -> Result<Vec<MapLine>, MapError> {
    let one = |what: String| MapError::Invalid(vec![format!("{name}: {what}")]);
    let v: serde_json::Value = serde_json::from_str(t).map_err(|e| one(e.to_string()))?;
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let mut out = Vec::new();
    let mut bad = Vec::new();
    match v {
        serde_json::Value::Object(m) => {
            for (src, dst) in m {
                let origin = format!("{name}: key {src:?}");
                let (target, user) = match &dst {
                    serde_json::Value::String(d) => (Some(d.clone()), None),
                    serde_json::Value::Object(o) => (
                        o.get("project").or_else(|| o.get("target")).and_then(s),
                        o.get("user").and_then(s),
                    ),
                    _ => (None, None),
                };
                match target {
                    Some(target) => out.push(MapLine {
                        source: src,
                        target,
                        user,
                        origin,
                    }),
                    None => bad.push(format!(
                        "{origin}: expected a target id or {{\"project\": ID, \"user\": ID}}"
                    )),
                }
            }
        }
        serde_json::Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let get = |k: &str| e.get(k).and_then(s);
                let origin = format!("{name}: entry {i}");
                match (get("source"), get("target").or_else(|| get("project"))) {
                    (Some(source), Some(target)) => out.push(MapLine {
                        source,
                        target,
                        user: get("user"),
                        origin,
                    }),
                    _ => bad.push(format!("{origin}: expected {{\"source\", \"target\"}}")),
                }
            }
        }
        _ => return Err(one("expected an object or a list".into())),
    }
    finish(out, bad)
}

/// Check every id; all problems at once.
fn finish(out: Vec<MapLine>, mut bad: Vec<String>) -> Result<Vec<MapLine>, MapError> {
    for m in &out {
        let checks = [
            bad_id("source", &m.source, false),
            bad_id(&format!("target of {}", m.source), &m.target, false),
            m.user
                .as_deref()
                .and_then(|u| bad_id(&format!("user of {}", m.source), u, true)),
        ];
        bad.extend(
            checks
                .into_iter()
                .flatten()
                .map(|w| format!("{}: {w}", m.origin)),
        );
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(MapError::Invalid(bad))
    }
}

/// One mapping per source: lines that say the same thing (or one adds the
/// user the other leaves out) are one; a source mapped to two targets (or
/// two users) is a conflict, and every conflict is listed. Sorted by source.
pub fn merge(lines: impl IntoIterator<Item = MapLine>) -> Result<Vec<MapLine>, MapError> {
    let mut by: BTreeMap<String, MapLine> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for m in lines {
        let Some(have) = by.get_mut(&m.source) else {
            by.insert(m.source.clone(), m);
            continue;
        };
        let users_differ = matches!((&have.user, &m.user), (Some(a), Some(b)) if a != b);
        if have.target != m.target || users_differ {
            let show = |l: &MapLine| match &l.user {
                Some(u) => format!("{} (user {u}, {})", l.target, l.origin),
                None => format!("{} ({})", l.target, l.origin),
            };
            conflicts.push(format!(
                "{} is mapped to {} and to {}: keep one",
                m.source,
                show(have),
                show(&m)
            ));
        } else if have.user.is_none() {
            have.user = m.user;
        }
    }
    if conflicts.is_empty() {
        Ok(by.into_values().collect())
    } else {
        Err(MapError::Conflicts(conflicts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "bcae33bdf5b84dc9ab9ca6518a438561";
    const B: &str = "0123456789abcdef0123456789abcdef";
    const C: &str = "fedcba9876543210fedcba9876543210";

    fn pairs(v: &[MapLine]) -> Vec<(&str, &str, Option<&str>)> {
        v.iter()
            .map(|m| (m.source.as_str(), m.target.as_str(), m.user.as_deref()))
            .collect()
    }

    #[test]
    fn spreadsheet_csv_is_read() {
        let text = format!(
            "\u{feff}# tenants of the old cloud\r\n\"Source\",\"Target\",\"User\"\r\n\"{A}\",\"{B}\",\"{C}\"\r\n{C}, {B} # finance\r\n"
        );
        let got = parse(&text, "m.csv").unwrap();
        assert_eq!(pairs(&got), vec![(A, B, Some(C)), (C, B, None)]);
        assert_eq!(got[0].origin, "m.csv line 3");
        assert_eq!(got[1].origin, "m.csv line 4");
        let e = parse(&format!("# \"quoted, comment\n\n{A},x\n"), "m").unwrap_err();
        assert!(e.to_string().starts_with("m line 3: "), "{e}");
    }

    #[test]
    fn old_pairs_and_json_are_read() {
        let got = parse(&format!("# x\n{A} {B}\n\n"), "m").unwrap();
        assert_eq!(pairs(&got), vec![(A, B, None)]);
        let j = format!(r#"{{"{A}": "{B}", "{C}": {{"project": "{B}", "user": "{A}"}}}}"#);
        assert_eq!(parse(&j, "m").unwrap().len(), 2);
    }

    #[test]
    fn names_and_bad_lines_are_all_refused_with_the_fix() {
        let e = parse(&format!("{A},finance\nnope\n{A} {B} {C}\n"), "m").unwrap_err();
        let MapError::Invalid(all) = e else {
            panic!("{e:?}")
        };
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(all.iter().any(|l| l.contains("openstack project list")));
    }

    #[test]
    fn a_source_mapped_twice_differently_is_a_conflict() {
        let l = |s: &str, t: &str, o: &str| MapLine {
            source: s.into(),
            target: t.into(),
            user: None,
            origin: o.into(),
        };
        assert!(merge([l(A, B, "x:1"), l(A, B, "y:2")]).is_ok());
        let e = merge([l(A, B, "x:1"), l(A, C, "y:2"), l(C, A, "z"), l(C, B, "w")]).unwrap_err();
        let MapError::Conflicts(c) = e else { panic!() };
        assert_eq!(c.len(), 2);
        assert!(c[0].contains("x:1") && c[0].contains("y:2"));
    }
}
