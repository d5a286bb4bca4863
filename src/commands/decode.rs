//! `cbr decode`: every record in the input, decoded.

use super::{Global, Outcome, decode_inputs, read_inputs};
use crate::cli::DecodeArgs;
use anyhow::{Result, bail};
use cbr::escape::terminal as t;
use std::io::Write;

pub fn run(_g: &Global, args: DecodeArgs) -> Result<Outcome> {
    let inputs = read_inputs(&args.inputs)?;
    let records = decode_inputs(&inputs)?;
    for (n, d) in records.iter().enumerate() {
        for k in &d.duplicate_keys {
            eprintln!(
                "cbr: warning: record {} (line {}): {k}: only the last value is printed, \
                 at the place of the first (`cbr lint` reports it; encode refuses it)",
                n + 1,
                d.line,
                k = t(&k.to_string())
            );
        }
    }
    let mut out = std::io::stdout().lock();
    if let Some(field) = &args.field {
        // Check every record first: print nothing unless all have it.
        let mut values = Vec::new();
        for (n, d) in records.iter().enumerate() {
            let Some(v) = d.record.get(field) else {
                bail!(
                    "record {} (line {}) has no field {field:?}; its fields are: {}",
                    n + 1,
                    d.line,
                    d.record.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            };
            values.push(v);
        }
        for v in values {
            match v {
                serde_json::Value::String(s) => writeln!(out, "{s}")?,
                other => writeln!(out, "{other}")?,
            }
        }
    } else if args.json {
        // Borrowed, not copied into a `Value`: a record can be big.
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            backup_service: &'a Option<String>,
            record: &'a cbr::record::Record,
            source: &'a cbr::record::Source,
        }
        #[derive(serde::Serialize)]
        struct List<'a> {
            records: Vec<Entry<'a>>,
        }
        let list = List {
            records: records
                .iter()
                .map(|d| Entry {
                    backup_service: &d.backup_service,
                    record: &d.record,
                    source: &d.source,
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else {
        for d in &records {
            serde_json::to_writer_pretty(&mut out, &d.record)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(Outcome::Ok)
}
