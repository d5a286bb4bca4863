//! `cbr lint`: problems of records alone.

use super::{Global, Outcome, decode_batch, read_inputs};
use crate::cli::LintArgs;
use anyhow::Result;
use cbr::findings::Findings;
use cbr::record::lint::lint_decoded;
use std::io::Write;

pub fn run(_g: &Global, args: LintArgs) -> Result<Outcome> {
    let inputs = read_inputs(&args.inputs)?;
    let (records, origins) = decode_batch(&inputs)?;
    let mut all = Findings::new();
    let batch = cbr::record::lint::Batch::of(records.iter().map(|d| &d.record));
    // Which record each finding is about (an index into `records`).
    let mut of: Vec<usize> = Vec::new();
    for (i, d) in records.iter().enumerate() {
        let found = lint_decoded(d, &batch);
        of.extend(std::iter::repeat_n(i, found.len()));
        all.extend(found);
    }
    if args.json {
        super::print_json(&serde_json::json!({ "findings": all }))?;
    } else {
        let mut out = std::io::stdout().lock();
        let subject = |i: usize, f: &cbr::findings::Finding| {
            let origin = &origins[of[i]];
            Some(match &f.backup_id {
                Some(id) => format!("backup {id} ({origin})"),
                None => format!("the record at {origin}"),
            })
        };
        cbr::findings::render_human_with(&all, &mut out, &subject)?;
        writeln!(
            out,
            "{} record(s): {} error(s), {} warning(s), {} note(s)",
            records.len(),
            all.count(cbr::findings::Severity::Error),
            all.count(cbr::findings::Severity::Warning),
            all.count(cbr::findings::Severity::Info)
        )?;
        out.flush()?;
    }
    Ok(if all.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}
