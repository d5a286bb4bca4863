//! `cbr rewrite`: change fields of records and re-encode them.

use super::{Global, Outcome, decode_batch, emit_kind, read_inputs, service_for, wrap_for};
use crate::cli::{EmitKind, RewriteArgs};
use anyhow::{Context, Result};
use cbr::escape::terminal as t;
use cbr::record::edit::{Change, Edit, apply, parse_set, validate};
use cbr::record::emit::{EmitOptions, emit};
use std::io::Write;

pub fn run(g: &Global, args: RewriteArgs) -> Result<Outcome> {
    let inputs = read_inputs(&args.inputs)?;
    // Every argument is checked before anything is read or printed.
    let edit = edit_of(&args)?;
    let (mut records, origins) = decode_batch(&inputs)?;
    // The records own their text: the inputs need not stay (memory ≤ 3 × input).
    drop(inputs);
    super::refuse_duplicate_keys(&records)?;
    let mut text = String::new();
    let mut diff = String::new();
    for (d, origin) in records.iter_mut().zip(&origins) {
        let id = d
            .record
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("<no id>")
            .to_string();
        let changes =
            apply(&mut d.record, &edit).with_context(|| format!("record {id} ({origin})"))?;
        diff.push_str(&diff_of(&id, &changes));
        let service = service_for(args.service.as_deref(), d);
        let project = d
            .record
            .get("project_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let scoped = if edit.project_id.is_some() || !edit.map.is_empty() {
            project.as_deref()
        } else {
            None
        };
        let json = d.json_text(
            &d.record,
            args.emit.layout == crate::cli::LayoutChoice::Cinder,
        );
        let opts = EmitOptions {
            json: Some(&json),
            kind: emit_kind(args.emit.emit),
            wrap: wrap_for(args.emit.wrap, Some(d)),
            service: &service,
            project_id: scoped,
        };
        // Moved, not copied, when it is the first: a record can be big.
        let one = emit(&d.record, &opts);
        if text.is_empty() {
            text = one;
        } else {
            text.push_str(&one);
        }
    }
    if !g.quiet {
        let mut e = std::io::stderr().lock();
        write!(e, "{diff}")?;
        writeln!(e, "{}", note(&args, &edit))?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(Outcome::Ok)
}

/// The edit the arguments ask for, every value checked.
#[allow(clippy::disallowed_methods)] // the --map file, not the share
fn edit_of(args: &RewriteArgs) -> Result<Edit> {
    let mut edit = Edit {
        project_id: args.project_id.clone(),
        user_id: args.user_id.clone(),
        scrub_source: args.scrub_source,
        ..Default::default()
    };
    if let Some(p) = &edit.project_id {
        validate("project_id", &serde_json::Value::String(p.clone()))?;
    }
    if let Some(u) = &edit.user_id {
        validate("user_id", &serde_json::Value::String(u.clone()))?;
    }
    for s in &args.set {
        edit.set.push(parse_set(s)?);
    }
    edit.unset = args.unset.clone();
    if let Some(m) = &args.map {
        let text = std::fs::read_to_string(m)
            .with_context(|| format!("cannot read map {}", m.display()))?;
        let name = m.display().to_string();
        let lines = cbr::mapping::parse(&text, &name)
            .and_then(cbr::mapping::merge)
            .with_context(|| format!("--map {name}: not a mapping cbr can use"))?;
        for l in lines {
            if let Some(u) = &l.user {
                edit.map_user.push((l.source.clone(), u.clone()));
            }
            edit.map.push((l.source, l.target));
        }
    }
    Ok(edit)
}

/// One record's changes, for stderr, a terminal: record values escaped.
fn diff_of(id: &str, changes: &[Change]) -> String {
    let mut diff = format!("record {}: {} change(s)\n", t(id), changes.len());
    for c in changes {
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref().map_or("(absent)".to_string(), |v| v.to_string())
        };
        diff.push_str(&format!(
            "  {}: {} -> {}\n",
            t(&c.field),
            t(&show(&c.old)),
            t(&show(&c.new))
        ));
    }
    diff
}

/// What a rewritten project_id/user_id does (not) do on the target.
fn note(args: &RewriteArgs, edit: &Edit) -> String {
    format!(
        "cbr: note: Cinder gives an imported backup to the project of the credentials that run \
         the import and drops the record's project_id/user_id; rewriting them keeps the record \
         consistent and hides the source tenant, but to land the backup in a project, import with \
         credentials scoped to it{}",
        if args.emit.emit == EmitKind::Openstack && edit.project_id.is_some() {
            " (the printed command does: --os-project-id)"
        } else {
            " (e.g. --emit openstack with --project-id prints such a command)"
        }
    )
}
