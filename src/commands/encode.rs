//! `cbr encode`: records back into backup_urls, byte-exactly as Cinder.

use super::{Global, Outcome, decode_inputs, emit_kind, read_input, service_for, wrap_for};
use crate::cli::EncodeArgs;
use anyhow::Result;
use cbr::record::emit::{EmitOptions, emit};
use std::io::Write;

pub fn run(_g: &Global, args: EncodeArgs) -> Result<Outcome> {
    let input = read_input(args.input.as_deref())?;
    let records = decode_inputs(std::slice::from_ref(&input))?;
    super::refuse_duplicate_keys(&records)?;
    let mut text = String::new();
    for d in &records {
        let service = service_for(args.service.as_deref(), d);
        let json = d.json_text(
            &d.record,
            args.emit.layout == crate::cli::LayoutChoice::Cinder,
        );
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
