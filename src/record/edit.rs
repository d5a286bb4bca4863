//! Rewriting records: tenant ids, any field, batch maps — changing only
//! what is asked, so everything else re-encodes to the same bytes.

use super::Record;
use super::lint::{is_keystone_id, is_uuid};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum EditError {
    #[error("--set {0:?}: expected KEY=VALUE")]
    BadSet(String),
    #[error("{field}: {value:?} is not {what}")]
    BadId {
        field: String,
        value: String,
        what: &'static str,
    },
    #[error("{0}: cannot reach into it: it is not an object")]
    NotObject(String),
}

/// One field that changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// What to change in every record.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub set: Vec<(String, Value)>,
    pub unset: Vec<String>,
    /// old id -> new id, for project_id and user_id.
    pub map: Vec<(String, String)>,
    /// source project id -> the user_id its records get (a mapping's
    /// third column, `source,target,user`).
    pub map_user: Vec<(String, String)>,
    /// Also replace the source tenant ids wherever else they appear.
    pub scrub_source: bool,
}

/// `KEY=VALUE`: VALUE as JSON when it parses, else a string.
pub fn parse_set(s: &str) -> Result<(String, Value), EditError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| EditError::BadSet(s.into()))?;
    if k.is_empty() {
        return Err(EditError::BadSet(s.into()));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

/// Validate a value for an id field.
pub fn validate(field: &str, value: &Value) -> Result<(), EditError> {
    let leaf = field.rsplit('.').next().unwrap_or(field);
    let (check, what): (fn(&str) -> bool, &'static str) = match leaf {
        "project_id" | "user_id" if !field.contains('.') => {
            (is_keystone_id, "a keystone id (32 hex digits or a UUID)")
        }
        "id" | "volume_id" | "parent_id" | "snapshot_id" | "restore_volume_id"
            if !field.contains('.') =>
        {
            (is_uuid, "a UUID")
        }
        _ => return Ok(()),
    };
    match value {
        Value::Null if leaf != "id" && leaf != "volume_id" => Ok(()),
        Value::String(s) if check(s) => Ok(()),
        other => Err(EditError::BadId {
            field: field.into(),
            value: match other {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            },
            what,
        }),
    }
}

/// The object holding a (possibly dotted) key, and the last key part.
fn slot<'a>(
    record: &'a mut Record,
    key: &'a str,
    create: bool,
) -> Result<Option<(&'a mut Record, &'a str)>, EditError> {
    let Some((head, rest)) = key.split_once('.') else {
        return Ok(Some((record, key)));
    };
    if !record.contains_key(head) {
        if !create {
            return Ok(None);
        }
        record.insert(head.to_string(), Value::Object(Record::new()));
    }
    match record.get_mut(head) {
        Some(Value::Object(inner)) => slot(inner, rest, create),
        _ => Err(EditError::NotObject(head.to_string())),
    }
}

/// Replace `old` by `new` inside every string of `v`, noting changes.
fn scrub(v: &mut Value, path: &str, old: &str, new: &str, changes: &mut Vec<Change>) {
    match v {
        Value::String(s) if s.contains(old) => {
            let before = s.clone();
            *s = s.replace(old, new);
            changes.push(Change {
                field: path.to_string(),
                old: Some(Value::String(before)),
                new: Some(Value::String(s.clone())),
            });
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                scrub(x, &format!("{path}[{i}]"), old, new, changes);
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                scrub(x, &p, old, new, changes);
            }
        }
        _ => {}
    }
}

/// Apply `edit` to `record`; returns what changed. Nothing is changed
/// when an error is returned.
pub fn apply(record: &mut Record, edit: &Edit) -> Result<Vec<Change>, EditError> {
    let mut work = record.clone();
    let mut changes = Vec::new();
    let mut sets: Vec<(String, Value)> = Vec::new();
    let source: Vec<(String, Option<String>)> = ["project_id", "user_id"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                work.get(*k).and_then(|v| v.as_str()).map(str::to_owned),
            )
        })
        .collect();
    for (field, old) in &source {
        if let Some(old) = old
            && let Some((_, new)) = edit.map.iter().find(|(o, _)| o == old)
        {
            sets.push((field.clone(), Value::String(new.clone())));
        }
    }
    if let Some(project) = &source[0].1
        && let Some((_, user)) = edit.map_user.iter().find(|(p, _)| p == project)
    {
        sets.push(("user_id".into(), Value::String(user.clone())));
    }
    if let Some(p) = &edit.project_id {
        sets.push(("project_id".into(), Value::String(p.clone())));
    }
    if let Some(u) = &edit.user_id {
        sets.push(("user_id".into(), Value::String(u.clone())));
    }
    sets.extend(edit.set.iter().cloned());
    for (k, v) in &sets {
        validate(k, v)?;
        let Some((obj, last)) = slot(&mut work, k, true)? else {
            continue;
        };
        let old = obj.get(last).cloned();
        if old.as_ref() != Some(v) {
            // insert keeps the position of an existing key.
            obj.insert(last.to_string(), v.clone());
            changes.push(Change {
                field: k.clone(),
                old,
                new: Some(v.clone()),
            });
        }
    }
    for k in &edit.unset {
        if let Some((obj, last)) = slot(&mut work, k, false)?
            && let Some(old) = obj.shift_remove(last)
        {
            changes.push(Change {
                field: k.clone(),
                old: Some(old),
                new: None,
            });
        }
    }
    if edit.scrub_source {
        for (field, old) in &source {
            let (Some(old), Some(new)) = (
                old,
                work.get(field).and_then(|v| v.as_str()).map(str::to_owned),
            ) else {
                continue;
            };
            if *old == new {
                continue;
            }
            for (k, v) in work.iter_mut() {
                if k == field {
                    continue;
                }
                scrub(v, k, old, &new, &mut changes);
            }
        }
    }
    *record = work;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec() -> Record {
        json!({"driver_info": {}, "id": "a0f6583f-d913-426d-a8e2-d262262a433b", "user_id": "a65349759b6f4ec5a0bb0cc3feb1e9fa",
               "project_id": "bcae33bdf5b84dc9ab9ca6518a438561", "metadata": {"owner": "bcae33bdf5b84dc9ab9ca6518a438561"}})
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn set_keeps_key_order_and_appends_new_keys() {
        let mut r = rec();
        let e = Edit {
            project_id: Some("11111111111111111111111111111111".into()),
            set: vec![
                parse_set("metadata.k=5").unwrap(),
                parse_set("new=x").unwrap(),
            ],
            ..Default::default()
        };
        let ch = apply(&mut r, &e).unwrap();
        assert_eq!(ch.len(), 3);
        let keys: Vec<&str> = r.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "driver_info",
                "id",
                "user_id",
                "project_id",
                "metadata",
                "new"
            ]
        );
        assert_eq!(r["metadata"]["k"], json!(5));
        assert_eq!(r["new"], json!("x"));
    }

    #[test]
    fn bad_ids_change_nothing() {
        let mut r = rec();
        let before = r.clone();
        let e = Edit {
            project_id: Some("11111111111111111111111111111111".into()),
            user_id: Some("not-an-id".into()),
            ..Default::default()
        };
        assert!(matches!(apply(&mut r, &e), Err(EditError::BadId { .. })));
        assert_eq!(r, before);
        assert!(
            apply(
                &mut r,
                &Edit {
                    set: vec![("parent_id".into(), json!("x"))],
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn map_and_scrub() {
        let mut r = rec();
        let e = Edit {
            map: vec![(
                "bcae33bdf5b84dc9ab9ca6518a438561".into(),
                "22222222222222222222222222222222".into(),
            )],
            scrub_source: true,
            ..Default::default()
        };
        let ch = apply(&mut r, &e).unwrap();
        assert_eq!(r["project_id"], json!("22222222222222222222222222222222"));
        assert_eq!(
            r["metadata"]["owner"],
            json!("22222222222222222222222222222222")
        );
        assert_eq!(ch.len(), 2);
    }

    #[test]
    fn unset_and_same_value_is_no_change() {
        let mut r = rec();
        let e = Edit {
            user_id: Some("a65349759b6f4ec5a0bb0cc3feb1e9fa".into()),
            unset: vec!["metadata.owner".into(), "nope".into()],
            ..Default::default()
        };
        let ch = apply(&mut r, &e).unwrap();
        assert_eq!(ch.len(), 1);
        assert_eq!(r["metadata"], json!({}));
    }
}
