//! `cbr recover`: an importable record from the share alone.

use super::{Global, Outcome, emit_kind, resolve_share, wrap_for};
use crate::cli::RecoverArgs;
use anyhow::Result;
use cbr::escape::terminal as t;
use cbr::record::edit::validate;
use cbr::record::emit::{EmitOptions, emit};
use cbr::recover::{RecoverOptions, recover};
use cbr::share::scan::{IndexOptions, index};
use std::io::Write;

pub fn run(g: &Global, args: RecoverArgs) -> Result<Outcome> {
    for (field, v) in [("project_id", &args.project_id), ("user_id", &args.user_id)] {
        if let Some(v) = v {
            validate(field, &serde_json::Value::String(v.clone()))?;
        }
    }
    let share = resolve_share(g, &args.share)?;
    let found = index(&share, IndexOptions::default())?;
    let top = found.find(&args.id)?;
    let chain = if args.chain {
        found.chain(top)
    } else {
        vec![top]
    };
    if let Some(first) = chain.first()
        && args.chain
        && let Some(p) = first.parent_id()
    {
        anyhow::bail!(
            "the chain of {} needs backup {p}, which is not on the share",
            top.id()
        );
    }
    let opts = RecoverOptions {
        project_id: args.project_id.clone(),
        user_id: args.user_id.clone(),
        service: args.service.clone(),
    };
    let mut text = String::new();
    for (i, b) in chain.iter().enumerate() {
        // Read in full only now, one at a time.
        let Some(full) = found.load(&share, b) else {
            anyhow::bail!(
                "backup {} changed on the share during the run: its metadata no longer reads",
                t(b.id())
            );
        };
        let r = recover(&share, found.dependants(b.id()).count(), &full, &opts)?;
        if !g.quiet && i == 0 {
            let mut e = std::io::stderr().lock();
            writeln!(
                e,
                "cbr: recovered record(s) from the share; how each field was found:"
            )?;
            for (f, how) in &r.derivations {
                writeln!(e, "  {}: {}", t(f), t(how))?;
            }
        }
        let o = EmitOptions {
            json: None,
            kind: emit_kind(args.emit.emit),
            wrap: wrap_for(args.emit.wrap, None),
            service: &args.service,
            project_id: args.project_id.as_deref(),
        };
        text.push_str(&emit(&r.record, &o));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(Outcome::Ok)
}
