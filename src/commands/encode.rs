//! `cbr encode`: records back into backup_urls, byte-exactly as Cinder.

use super::{Global, Outcome, decode_inputs, emit_kind, read_input, service_for, wrap_for};
use crate::cli::EncodeArgs;
use anyhow::Result;
use cbr::record::emit::{EmitOptions, emit};
use std::io::Write;

pub fn run(_g: &Global, args: EncodeArgs) -> Result<Outcome> {
    let input = read_input(args.input.as_deref())?;
    let records = decode_inputs(std::slice::from_ref(&input))?;
    // The records own their text: the input need not stay (memory ≤ 3 × input).
    drop(input);
    super::refuse_duplicate_keys(&records)?;
    let mut text = String::new();
    for d in &records {
        let service = service_for(args.service.as_deref(), d);
        // Unedited: its own text as it came (not a patched copy of it,
        // which is the same bytes and one more record's worth of memory).
        let json: std::borrow::Cow<'_, str> = match &d.json {
            Some(t) if args.emit.layout != crate::cli::LayoutChoice::Cinder => t.into(),
            _ => d.json_text(&d.record, true).into(),
        };
        let opts = EmitOptions {
            json: Some(&json),
            kind: emit_kind(args.emit.emit),
            wrap: wrap_for(args.emit.wrap, Some(d)),
            service: &service,
            project_id: None,
        };
        text.push_str(&emit(&d.record, &opts));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(Outcome::Ok)
}
