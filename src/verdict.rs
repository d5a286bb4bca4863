//! What Cinder 29 will really do with a backup, given cbr's findings.
//!
//! Cinder's import (`BackupManager.import_record`) checks the backup
//! service and that `id`, `size`, `container`, `service_metadata`,
//! `object_count`, `display_name` and `display_description` are present.
//! Its restore (`ChunkedBackupDriver.restore` / `_restore_v1`) reads the
//! `_metadata`, refuses a container whose files with the prefix differ from
//! the metadata's list, follows `parent_id` through its database, and for
//! each listed object reads it, decompresses it with the named compressor
//! and writes whatever comes out at the object's offset. It checks neither
//! the md5 nor the sha256file nor the length: a chunk whose bytes are wrong
//! but still decompress is restored without an error, into a corrupted
//! volume. So each finding is one of: Cinder raises (the import or restore
//! fails), Cinder writes wrong data without an error, or Cinder does not
//! look at it (cbr cannot vouch for the result, but the restore neither
//! fails nor is known to be wrong).

use crate::findings::{Finding, Findings, Severity};
use crate::share::Compression;
use crate::share::scan::Backups;
use serde::Serialize;

/// The verdict on one record: what importing and restoring it will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No error: Cinder imports and restores it (data read with `--deep`).
    Ready,
    /// Errors Cinder does not look at (a missing or damaged sha256file, a
    /// record inconsistent with the metadata where Cinder follows neither):
    /// it restores without an error, but cbr cannot vouch for the result.
    Unproven,
    /// Cinder restores it without an error and writes corrupted data.
    RestoresCorrupted,
    /// Cinder's import or restore raises.
    WillFail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::Unproven => "unproven",
            Verdict::RestoresCorrupted => "restores-corrupted",
            Verdict::WillFail => "will-fail",
        }
    }
}

/// What Cinder does with the fault one error finding describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Not an error: no effect on the verdict.
    None,
    Unproven,
    Corrupts,
    Fails,
}

impl Effect {
    fn verdict(self) -> Verdict {
        match self {
            Effect::None => Verdict::Ready,
            Effect::Unproven => Verdict::Unproven,
            Effect::Corrupts => Verdict::RestoresCorrupted,
            Effect::Fails => Verdict::WillFail,
        }
    }
}

/// The chunk a finding's path names, if it is one of the backup's objects.
fn chunk_of(f: &Finding, scan: &dyn Backups) -> Option<crate::share::ChunkObject> {
    let b = scan.get(f.backup_id.as_deref()?)?;
    let path = f.path.as_deref()?;
    b.metadata
        .objects
        .iter()
        .find(|o| b.rel(&o.name) == path)
        .cloned()
}

/// What Cinder 29 does with the fault of finding `f` (errors only).
pub fn effect(f: &Finding, scan: &dyn Backups) -> Effect {
    if f.severity != Severity::Error {
        return Effect::None;
    }
    match f.code {
        // The import raises: fields it needs, a service it does not run.
        "record-field-missing" | "record-field-type" | "service-not-accepted" => Effect::Fails,
        // The restore raises: it cannot read the metadata or an object, the
        // container's objects differ from the metadata's list, a parent is
        // not in its database, a compressor it does not know.
        "container-missing"
        | "container-escapes-share"
        | "metadata-missing"
        | "metadata-invalid"
        | "name-invalid"
        | "object-missing"
        | "object-unlisted"
        | "parent-missing"
        | "decompress-failed"
        | "read-failed"
        | "value-out-of-range"
        | "invalid-id" => Effect::Fails,
        // An empty file: zlib and zstd raise on b'', bz2 and none give
        // b'' and write nothing.
        "chunk-empty" => match chunk_of(f, scan).map(|o| o.compression) {
            Some(Compression::Bz2) | Some(Compression::None) => Effect::Corrupts,
            _ => Effect::Fails,
        },
        // Written without a check: wrong bytes, wrong length, bytes no
        // chunk covers, blocks taken from a parent that are not what this
        // backup saw, another backup's data, another parent's chain.
        "sha256-mismatch" | "md5-mismatch" | "length-mismatch" | "coverage-gap"
        | "inherited-mismatch" | "parent-id-mismatch" => Effect::Corrupts,
        // The metadata of another backup than the record's: its data.
        "id-mismatch"
            if !f
                .path
                .as_deref()
                .is_some_and(|p| p.ends_with("_sha256file")) =>
        {
            Effect::Corrupts
        }
        // Not looked at by Cinder's import or restore.
        _ => Effect::Unproven,
    }
}

/// The verdict on a record's findings, its causes and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Whether chunk data was read (`check --deep`).
    pub data_read: bool,
    /// The findings that decided the verdict (indexes into the findings).
    #[serde(skip)]
    pub causes: Vec<usize>,
    /// What to do, one sentence each.
    pub advice: Vec<String>,
}

/// Volume bytes `a..b` of the chunk a finding names, as text.
fn bytes_of(f: &Finding, scan: &dyn Backups) -> Option<(String, String)> {
    let o = chunk_of(f, scan)?;
    Some((
        o.name.clone(),
        format!("{}..{}", o.offset, o.offset.saturating_add(o.length)),
    ))
}

/// Judge a record's findings (`data_read`: whether its chunks were read).
pub fn judge(findings: &Findings, scan: &dyn Backups, data_read: bool) -> Judgement {
    let effects: Vec<Effect> = findings.iter().map(|f| effect(f, scan)).collect();
    let worst = effects.iter().copied().max().unwrap_or(Effect::None);
    let causes: Vec<usize> = (0..effects.len())
        .filter(|i| worst != Effect::None && effects[*i] == worst)
        .collect();
    let mut advice: Vec<String> = Vec::new();
    let mut chunks: Vec<(String, String)> = Vec::new();
    for &i in &causes {
        let f = &findings.0[i];
        let line = match f.code {
            "object-missing" | "decompress-failed" | "read-failed" | "chunk-empty"
            | "sha256-mismatch" | "md5-mismatch" | "length-mismatch" => {
                if let Some(c) = bytes_of(f, scan)
                    && !chunks.contains(&c)
                {
                    chunks.push(c);
                }
                continue;
            }
            "object-unlisted" => format!(
                "move {} out of the container (Cinder compares the container's files with the prefix to the metadata's list)",
                f.path.as_deref().unwrap_or("the unlisted file")
            ),
            "parent-missing" | "parent-id-mismatch" => "bring the whole chain onto the share and import its records parents first (or recover them: cbr recover --chain)".to_string(),
            "coverage-gap" | "inherited-mismatch" => "take a new full backup of the volume on the source: the bytes this backup lacks are nowhere on the share".to_string(),
            "service-not-accepted" => "import on a target whose backup driver's class path starts with the record's backup_service (or give that driver with --target-service)".to_string(),
            "record-field-missing" | "record-field-type" | "invalid-id" | "status-not-available" | "duplicate-key" | "object-count-mismatch" | "volume-id-mismatch" => "fix the record (cbr rewrite --set/--unset, or cbr recover for a record from the share) and check it again".to_string(),
            "sha256file-missing" | "sha256file-invalid" => "put back a good copy of the sha256file: without it nothing proves the data, and an incremental backup of the restored volume on this backup cannot be made".to_string(),
            _ => continue,
        };
        if !advice.contains(&line) {
            advice.push(line);
        }
    }
    if !chunks.is_empty() {
        let names: Vec<String> = chunks
            .iter()
            .map(|(n, r)| format!("{n} (volume bytes {r})"))
            .collect();
        let ranges: Vec<&str> = chunks.iter().map(|(_, r)| r.as_str()).collect();
        advice.insert(
            0,
            format!(
                "put back a good copy of chunk{} {} from another copy of the share, or take a new backup of the volume on the source, or accept the loss of volume bytes {}",
                if chunks.len() == 1 { "" } else { "s" },
                names.join(", "),
                ranges.join(", ")
            ),
        );
    }
    Judgement {
        verdict: worst.verdict(),
        data_read,
        causes,
        advice,
    }
}

/// The verdict line for a person (without the leading `verdict: `).
pub fn verdict_line(j: &Judgement, findings: &Findings) -> String {
    let first = j
        .causes
        .first()
        .map(|i| findings.0[*i].message.clone())
        .unwrap_or_default();
    let more = match j.causes.len().saturating_sub(1) {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    };
    match j.verdict {
        Verdict::Ready => {
            let notes = findings.count(Severity::Warning);
            let mut s = String::from("ready to import");
            if notes > 0 {
                s.push_str(&format!(" ({notes} warning(s) to read)"));
            }
            if !j.data_read {
                s.push_str("; structure checked; data not read (add --deep to read every chunk)");
            }
            s
        }
        Verdict::WillFail => format!("will fail because {first}{more}"),
        Verdict::RestoresCorrupted => format!(
            "Cinder would restore this without an error and write corrupted data: do not import it as it is ({first}{more})"
        ),
        Verdict::Unproven => format!(
            "Cinder would restore this without an error, but cbr cannot vouch for the result: {first}{more}"
        ),
    }
}
