//! Printing records: the backup_url, import command lines, export JSON, or
//! the decoded record (`--emit` in the contract).

use super::Record;
use super::codec::{encode_json, encode_url};

/// What to print for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitKind {
    Url,
    Cinder,
    Openstack,
    ExportJson,
    Record,
}

/// How to print a record.
#[derive(Debug, Clone)]
pub struct EmitOptions<'a> {
    pub kind: EmitKind,
    /// Wrap width for the base64 (Some(76) as Kilo/Liberty), None: one line.
    pub wrap: Option<usize>,
    /// The backup_service to name in import lines and export JSON.
    pub service: &'a str,
    /// With `Openstack`: scope the import to this project (`--os-project-id`).
    pub project_id: Option<&'a str>,
    /// The record's JSON text to encode (its own layout, see
    /// [`super::Decoded::json_text`]); `None`: Cinder's layout.
    pub json: Option<&'a str>,
}

/// The text to print for one record (ends with a newline).
pub fn emit(record: &Record, opts: &EmitOptions<'_>) -> String {
    let encode = |wrap| match opts.json {
        Some(j) => encode_json(j, wrap),
        None => encode_url(record, wrap),
    };
    let url = encode(opts.wrap);
    let one_line = || encode(None);
    match opts.kind {
        EmitKind::Url => {
            if url.ends_with('\n') {
                url
            } else {
                format!("{url}\n")
            }
        }
        EmitKind::Cinder => format!("cinder backup-import {} {}\n", opts.service, one_line()),
        EmitKind::Openstack => match opts.project_id {
            Some(p) => format!(
                "openstack --os-project-id {p} volume backup record import {} {}\n",
                opts.service,
                one_line()
            ),
            None => format!(
                "openstack volume backup record import {} {}\n",
                opts.service,
                one_line()
            ),
        },
        EmitKind::ExportJson => {
            let mut m = serde_json::Map::new();
            m.insert("backup_service".into(), opts.service.into());
            m.insert("backup_url".into(), url.into());
            let mut s =
                serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default();
            s.push('\n');
            s
        }
        EmitKind::Record => {
            let mut s = serde_json::to_string_pretty(record).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}
