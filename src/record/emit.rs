//! Printing records: the backup_url, import command lines, export JSON, or
//! the decoded record (`--emit` in the contract).

use super::Record;
use super::codec::{encode_json, encode_url};
use crate::escape::shell_line;

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

/// The text to print for one record (ends with a newline). The url is
/// made once, in the form printed, and the text built around it without
/// copies of it beyond the one printed (a url can be tens of MB).
pub fn emit(record: &Record, opts: &EmitOptions<'_>) -> String {
    let encode = |wrap| match opts.json {
        Some(j) => encode_json(j, wrap),
        None => encode_url(record, wrap),
    };
    let line = |mut s: String| {
        s.push('\n');
        s
    };
    match opts.kind {
        EmitKind::Url => {
            let url = encode(opts.wrap);
            if url.ends_with('\n') { url } else { line(url) }
        }
        // Every word of a command line is quoted for the shell: the
        // service comes from the paste and the line is printed to be run.
        EmitKind::Cinder => {
            let url = encode(None);
            line(shell_line(&["cinder", "backup-import", opts.service, &url]))
        }
        EmitKind::Openstack => {
            let url = encode(None);
            let mut words: Vec<&str> = vec!["openstack"];
            if let Some(p) = opts.project_id {
                words.extend(["--os-project-id", p]);
            }
            words.extend(["volume", "backup", "record", "import", opts.service, &url]);
            line(shell_line(&words))
        }
        EmitKind::ExportJson => {
            let mut m = serde_json::Map::new();
            m.insert("backup_service".into(), opts.service.into());
            m.insert("backup_url".into(), encode(opts.wrap).into());
            line(serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default())
        }
        EmitKind::Record => line(serde_json::to_string_pretty(record).unwrap_or_default()),
    }
}
