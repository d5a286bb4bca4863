//! `cbr lint`: problems of records alone.

use super::{Global, Outcome, decode_inputs, print_findings, read_inputs};
use crate::cli::LintArgs;
use anyhow::Result;
use cbr::findings::Findings;
use cbr::record::lint::lint_decoded;
use std::io::Write;

pub fn run(_g: &Global, args: LintArgs) -> Result<Outcome> {
    let inputs = read_inputs(&args.inputs)?;
    let records = decode_inputs(&inputs)?;
    let mut all = Findings::new();
    let batch = cbr::record::lint::Batch::of(records.iter().map(|d| &d.record));
    for d in &records {
        all.extend(lint_decoded(d, &batch));
    }
    if args.json {
        super::print_json(&serde_json::json!({ "findings": all }))?;
    } else {
        let mut out = std::io::stdout().lock();
        print_findings(&mut out, &all)?;
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
