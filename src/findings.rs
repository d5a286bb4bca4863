//! Findings: problems found by checks, as data.
//!
//! Every check in `cbr` (lint, check, verify, the share walk) pushes
//! [`Finding`]s into a [`Findings`] collector and carries on; the command
//! layer renders them (human or JSON) and decides the exit code at the end.

use crate::escape::{terminal, terminal_message};
use serde::Serialize;
use std::fmt;

/// Every finding code, with what it means (the man pages' table).
pub const CODES: &[(&str, &str)] = &[
    ("record-field-missing", "a field import needs is missing"),
    ("record-field-type", "a field has a type import refuses"),
    (
        "status-not-available",
        "the record's status is not 'available'",
    ),
    ("invalid-id", "an id is not a UUID / keystone id"),
    (
        "empty-id",
        "\"\" where Cinder writes null (info; imports fine)",
    ),
    ("duplicate-key", "the record's JSON has a key twice"),
    (
        "encryption-key",
        "the target needs the volume's encryption key (warning)",
    ),
    (
        "era-inconsistent",
        "fields and prefix of different releases (warning)",
    ),
    (
        "parent-must-be-imported",
        "an incremental: import its parent first (info)",
    ),
    (
        "service-not-accepted",
        "the target's backup service will refuse the record",
    ),
    (
        "container-missing",
        "the record's container is not on the share",
    ),
    (
        "container-escapes-share",
        "the container leaves the share (absolute, '..', a link)",
    ),
    (
        "metadata-missing",
        "no <prefix>_metadata where the record points",
    ),
    ("metadata-invalid", "a _metadata file cbr cannot read"),
    (
        "name-invalid",
        "a name that is not one path component: nothing is opened by it",
    ),
    (
        "value-out-of-range",
        "a number beyond what Cinder writes, or whose sums overflow",
    ),
    ("sha256file-missing", "no <prefix>_sha256file"),
    ("sha256file-invalid", "a _sha256file cbr cannot read"),
    (
        "id-mismatch",
        "record, metadata and sha256file name different backups",
    ),
    (
        "volume-id-mismatch",
        "record and metadata name different volumes",
    ),
    (
        "name-mismatch",
        "record and metadata differ in name or description (warning)",
    ),
    (
        "object-missing",
        "a chunk the metadata lists is not on the share",
    ),
    (
        "object-unlisted",
        "a file with the prefix the metadata does not list",
    ),
    (
        "object-count-mismatch",
        "object_count does not fit the chunks",
    ),
    (
        "object-count-legacy",
        "object_count is chunks + 1, the pre-Stein convention (info)",
    ),
    ("chunk-empty", "a chunk file of 0 bytes"),
    ("offset-unaligned", "a chunk not on a hash block boundary"),
    (
        "coverage-gap",
        "a full backup's chunks do not cover the volume",
    ),
    (
        "size-mismatch",
        "chunks, sha256file, metadata and record disagree on the size",
    ),
    (
        "parent-missing",
        "a parent of the chain is not on the share",
    ),
    (
        "parent-id-mismatch",
        "record and metadata name different parents",
    ),
    (
        "parent-mismatch",
        "parent of another block size or a smaller volume",
    ),
    (
        "inherited-mismatch",
        "a block an incremental inherits has another hash than in its parent",
    ),
    (
        "length-mismatch",
        "a chunk decompresses to another length than the metadata says",
    ),
    ("md5-mismatch", "a chunk's md5 differs from the metadata's"),
    ("sha256-mismatch", "hash blocks differ from the sha256file"),
    ("decompress-failed", "a chunk does not decompress"),
    (
        "read-failed",
        "a file cannot be read (or is not a regular file)",
    ),
    (
        "symlink-refused",
        "a symbolic link on the share: never followed",
    ),
    ("orphan-chunks", "chunk files with no metadata (warning)"),
    (
        "stray-file",
        "a file Cinder does not write (info, or warning for FIFOs/devices)",
    ),
    ("too-deep", "a directory too deep to walk (warning)"),
    (
        "share-root-suspect",
        "--share is probably one level too high or too low (warning)",
    ),
];

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem (or remark) about a record or a share.
///
/// `code` is a stable kebab-case identifier (see `docs/cli.md`), `message`
/// one sentence a person understands, with the fix where known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub backup_id: Option<String>,
    /// Share-relative path the finding is about, if any.
    pub path: Option<String>,
}

impl Finding {
    pub fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Finding {
            severity,
            code,
            message: message.into(),
            backup_id: None,
            path: None,
        }
    }
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }
    pub fn info(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, code, message)
    }
    pub fn backup(mut self, id: impl Into<String>) -> Self {
        self.backup_id = Some(id.into());
        self
    }
    pub fn maybe_backup(mut self, id: Option<&str>) -> Self {
        self.backup_id = id.map(str::to_owned);
        self
    }
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}]: {}",
            self.severity,
            self.code,
            terminal_message(&self.message)
        )?;
        if let Some(id) = &self.backup_id {
            write!(f, " (backup {})", terminal(id))?;
        }
        if let Some(p) = &self.path {
            write!(f, " at {}", terminal(p))?;
        }
        Ok(())
    }
}

/// A collector of findings.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, f: Finding) {
        self.0.push(f);
    }
    pub fn extend(&mut self, other: impl IntoIterator<Item = Finding>) {
        self.0.extend(other);
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Finding> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|f| f.severity == Severity::Error)
    }
    pub fn count(&self, severity: Severity) -> usize {
        self.0.iter().filter(|f| f.severity == severity).count()
    }
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.0.iter().filter(|f| f.severity == Severity::Error)
    }
    /// Findings sorted by severity, most severe first, stable otherwise.
    pub fn by_severity(&self) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = self.0.iter().collect();
        v.sort_by_key(|f| std::cmp::Reverse(f.severity));
        v
    }
}

impl IntoIterator for Findings {
    type Item = Finding;
    type IntoIter = std::vec::IntoIter<Finding>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Findings {
    type Item = &'a Finding;
    type IntoIter = std::slice::Iter<'a, Finding>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Render findings for a person: grouped by severity, most severe first,
/// each line naming its subject (its backup). Messages and paths quote
/// names from the share and records: they are shown through the terminal
/// escaper ([`terminal_message`] for messages, which quote some values
/// `{:?}`-escaped already), so that no control character in them reaches
/// the terminal.
pub fn render_human(findings: &Findings, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    render_human_with(findings, w, &|_, f| backup_subject(f))
}

/// A finding's subject when nothing more is known: `backup <id>`.
pub fn backup_subject(f: &Finding) -> Option<String> {
    f.backup_id.as_ref().map(|id| format!("backup {id}"))
}

/// Render findings for a person with a subject for each (by its index in
/// `findings`): its backup and, for a batch, where its record was read.
pub fn render_human_with(
    findings: &Findings,
    w: &mut dyn std::io::Write,
    subject: &dyn Fn(usize, &Finding) -> Option<String>,
) -> std::io::Result<()> {
    for sev in [Severity::Error, Severity::Warning, Severity::Info] {
        let group: Vec<(usize, &Finding)> = findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f.severity == sev)
            .collect();
        if group.is_empty() {
            continue;
        }
        let title = match sev {
            Severity::Error => "errors",
            Severity::Warning => "warnings",
            Severity::Info => "notes",
        };
        writeln!(w, "{title} ({}):", group.len())?;
        for (i, f) in group {
            writeln!(w, "{}", human_line(f, subject(i, f).as_deref()))?;
        }
    }
    Ok(())
}

/// One finding for a person: code, subject, message, and its path on a
/// second line. Every string from a record or a share is escaped for the
/// terminal.
pub fn human_line(f: &Finding, subject: Option<&str>) -> String {
    let mut s = match subject {
        Some(who) => format!(
            "  {:<24} {}: {}",
            f.code,
            terminal(who),
            terminal_message(&f.message)
        ),
        None => format!("  {:<24} {}", f.code, terminal_message(&f.message)),
    };
    if let Some(p) = &f.path {
        s.push_str(&format!("\n  {:<24} path: {}", "", terminal(p)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_serializes_with_contract_keys() {
        let f = Finding::error("object-missing", "chunk gone")
            .backup("abc")
            .path("a/b");
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["severity"], "error");
        assert_eq!(v["code"], "object-missing");
        assert_eq!(v["backup_id"], "abc");
        assert_eq!(v["path"], "a/b");
        let f = Finding::info("x", "y");
        let v = serde_json::to_value(&f).unwrap();
        assert!(v["backup_id"].is_null());
        assert!(v["path"].is_null());
    }

    #[test]
    fn has_errors_only_counts_errors() {
        let mut fs = Findings::new();
        fs.push(Finding::warning("w", "w"));
        fs.push(Finding::info("i", "i"));
        assert!(!fs.has_errors());
        fs.push(Finding::error("e", "e"));
        assert!(fs.has_errors());
        assert_eq!(fs.by_severity()[0].code, "e");
    }
}
