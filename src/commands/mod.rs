//! The command layer: turns parsed arguments into calls of the domain, and
//! renders results. `anyhow` lives here and in `main.rs` only.

// Until every command is wired, some helpers here are not used yet.
#![allow(dead_code)]

mod check;
mod decode;
mod encode;
mod journal;
mod journaled;
mod lint;
mod ls;
mod plan;
mod progress;
mod recover;
mod restore;
mod rewrite;
mod show;
pub mod signals;
mod verify;

use crate::cli::{Cli, Command, CompletionsArgs, ShareArgs};
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How a command ended (the process exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// Everything is fine.
    Ok = 0,
    /// The command ran and found problems.
    Problems = 1,
    /// It could not do its job (used by commands that report and go on).
    #[allow(dead_code)]
    Failed = 2,
}

/// Global settings every command may need.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    pub quiet: bool,
    pub color: bool,
}

pub fn run(cli: Cli) -> Result<Outcome> {
    use std::io::IsTerminal;
    let color = match cli.color {
        crate::cli::ColorChoice::Always => true,
        crate::cli::ColorChoice::Never => false,
        crate::cli::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
        }
    };
    let g = Global {
        quiet: cli.quiet,
        color,
    };
    match cli.command {
        Command::Decode(a) => decode::run(&g, a),
        Command::Encode(a) => encode::run(&g, a),
        Command::Rewrite(a) => rewrite::run(&g, a),
        Command::Lint(a) => lint::run(&g, a),
        Command::Ls(a) => ls::run(&g, a),
        Command::Show(a) => show::run(&g, a),
        Command::Check(a) => check::run(&g, a),
        Command::Verify(a) => verify::run(&g, a),
        Command::Restore(a) => restore::run(&g, a),
        Command::Recover(a) => recover::run(&g, a),
        Command::Plan(a) => plan::run(&g, *a),
        Command::Journal(c) => journal::run(&g, c),
        Command::Completions(a) => completions(a),
    }
}

fn completions(a: CompletionsArgs) -> Result<Outcome> {
    let mut cmd = crate::cli::command();
    // Generated into memory: clap_complete panics on a failed write (a
    // closed pipe), a write of ours returns the error.
    let mut text = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "cbr", &mut text);
    let mut out = std::io::stdout().lock();
    out.write_all(&text)?;
    out.flush()?;
    Ok(Outcome::Ok)
}

/// Whether an error is a closed stdout pipe (`cbr ... | head`): not an
/// error. serde_json wraps the write's error and does not return it as its
/// `source()`: asked for its kind.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(BrokenPipe))
    })
}

/// One input text and where it came from (for messages).
pub struct Input {
    pub name: String,
    pub text: String,
}

/// Read INPUT arguments: paths, `-` for stdin; none means stdin. A
/// directory is every file in it (not its subdirectories, nor dot-files),
/// sorted by name, so that the result does not depend on how a shell or a
/// file system orders them.
#[allow(clippy::disallowed_methods)] // the user's input paths, not the share
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>> {
    if paths.is_empty() {
        return Ok(vec![read_input(None)?]);
    }
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() != "-" && p.is_dir() {
            for f in dir_files(p)? {
                out.push(read_input(Some(&f))?);
            }
        } else {
            out.push(read_input(Some(p))?);
        }
    }
    Ok(out)
}

/// The regular files of an input directory, sorted by name.
#[allow(clippy::disallowed_methods)] // the user's input directory, not the share
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if !hidden && e.path().is_file() {
            files.push(e.path());
        }
    }
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{}: a directory with no files to read", dir.display());
    }
    Ok(files)
}

#[allow(clippy::disallowed_methods)] // the user's input file, not the share
/// Read one INPUT (None or `-` is stdin). Invalid UTF-8 is an error naming the offset.
pub fn read_input(path: Option<&Path>) -> Result<Input> {
    let (name, bytes) = match path {
        None => ("<stdin>".to_string(), read_stdin()?),
        Some(p) if p.as_os_str() == "-" => ("<stdin>".to_string(), read_stdin()?),
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(Input { name, text })
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .context("cannot read standard input")?;
    Ok(buf)
}

/// Resolve the share root from the arguments, saying which rule found it.
pub fn resolve_share(g: &Global, args: &ShareArgs) -> Result<cbr::share::Share> {
    // `nfs://…`: read straight from the server, no mount (issue 24).
    if let Some(url) = args.share.as_deref().and_then(|p| p.to_str())
        && cbr::share::nfs::is_nfs_url(url)
    {
        let source = cbr::share::nfs::NfsSource::open(url)
            .with_context(|| format!("cannot read the share {}", cbr::escape::terminal(url)))?;
        return Ok(cbr::share::Share::from_source(std::sync::Arc::new(source)));
    }
    let root = if let Some(dir) = &args.share {
        dir.clone()
    } else if let Some(conf) = &args.cinder_conf {
        let found = cbr::share::locate::from_cinder_conf(conf)?;
        if !g.quiet {
            // From a file's text: shown escaped.
            let t = |s: String| cbr::escape::terminal(&s).into_owned();
            eprintln!(
                "cbr: share {} (from {}: {})",
                t(found.root.display().to_string()),
                t(conf.display().to_string()),
                t(found.rule.to_string())
            );
        }
        found.root
    } else {
        anyhow::bail!("no share given: use --share DIR, set CBR_SHARE, or give --cinder-conf FILE")
    };
    cbr::share::Share::open(&root).with_context(|| {
        format!(
            "the share {} is not a directory cbr can open (is the backup share mounted?)",
            root.display()
        )
    })
}

/// The error findings of a scan about backup `id` that it could not read
/// (their path names the id: its container or object prefix).
pub fn findings_about(found: &cbr::findings::Findings, id: &str) -> cbr::findings::Findings {
    let mut out = cbr::findings::Findings::new();
    if id.len() < 8 {
        return out;
    }
    out.extend(
        found
            .errors()
            .filter(|f| f.path.as_deref().is_some_and(|p| p.contains(id)))
            .cloned(),
    );
    out
}

/// Write a JSON document to stdout, pretty-printed, with a final newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// One JSON object written as it goes, byte for byte as
/// [`print_json`] would print it whole: fields one after the other, an
/// array's items one at a time, so that a document of a million backups
/// never sits in memory. Strings in JSON never hold a raw newline, so a
/// value pretty-printed alone is indented by prefixing its lines.
pub struct JsonDoc<'w> {
    out: Box<dyn Write + 'w>,
    fields: usize,
    items: usize,
}

impl<'w> JsonDoc<'w> {
    pub fn open(mut out: impl Write + 'w) -> Result<JsonDoc<'w>> {
        out.write_all(b"{")?;
        Ok(JsonDoc {
            out: Box::new(out),
            fields: 0,
            items: 0,
        })
    }
    fn key(&mut self, k: &str) -> Result<()> {
        if self.fields > 0 {
            self.out.write_all(b",")?;
        }
        self.fields += 1;
        self.out.write_all(b"\n  ")?;
        serde_json::to_writer(&mut self.out, k)?;
        self.out.write_all(b": ")?;
        Ok(())
    }
    /// `value`, pretty, its lines after the first indented by `indent`.
    fn pretty<T: serde::Serialize + ?Sized>(&mut self, value: &T, indent: &str) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        let mut lines = text.split('\n');
        if let Some(first) = lines.next() {
            self.out.write_all(first.as_bytes())?;
        }
        for l in lines {
            self.out.write_all(b"\n")?;
            self.out.write_all(indent.as_bytes())?;
            self.out.write_all(l.as_bytes())?;
        }
        Ok(())
    }
    /// A field with a whole value.
    pub fn field<T: serde::Serialize + ?Sized>(&mut self, k: &str, value: &T) -> Result<()> {
        self.key(k)?;
        self.pretty(value, "  ")
    }
    /// A field holding an array, whose items follow ([`JsonDoc::item`]).
    pub fn array(&mut self, k: &str) -> Result<()> {
        self.key(k)?;
        self.items = 0;
        self.out.write_all(b"[")?;
        Ok(())
    }
    pub fn item<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if self.items > 0 {
            self.out.write_all(b",")?;
        }
        self.items += 1;
        self.out.write_all(b"\n    ")?;
        self.pretty(value, "    ")
    }
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
    pub fn close_array(&mut self) -> Result<()> {
        if self.items > 0 {
            self.out.write_all(b"\n  ")?;
        }
        self.out.write_all(b"]")?;
        Ok(())
    }
    pub fn close(mut self) -> Result<()> {
        if self.fields > 0 {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(b"}\n")?;
        self.out.flush()?;
        Ok(())
    }
}

/// Decode every record of every input, in order; an undecodable input is
/// an error naming the input, line and column.
pub fn decode_inputs(inputs: &[Input]) -> Result<Vec<cbr::record::Decoded>> {
    let mut out = Vec::new();
    for input in inputs {
        let found = cbr::record::paste::decode_all(&input.text)
            .with_context(|| format!("{}: cannot decode", input.name))?;
        out.extend(found);
    }
    Ok(out)
}

/// Decode every record of every input, in order, each with where it was
/// found (`line N of NAME`, for messages about a batch).
pub fn decode_batch(inputs: &[Input]) -> Result<(Vec<cbr::record::Decoded>, Vec<String>)> {
    let mut records = Vec::new();
    let mut origins = Vec::new();
    for input in inputs {
        let found = cbr::record::paste::decode_all(&input.text)
            .with_context(|| format!("{}: cannot decode", input.name))?;
        for d in found {
            origins.push(format!("line {} of {}", d.line, input.name));
            records.push(d);
        }
    }
    Ok((records, origins))
}

/// Refuse records whose JSON has a key twice (encode, rewrite): the
/// record holds one value of it, so it cannot be re-encoded as it was.
pub fn refuse_duplicate_keys(records: &[cbr::record::Decoded]) -> Result<()> {
    for (n, d) in records.iter().enumerate() {
        if let Some(k) = d.duplicate_keys.first() {
            let more = match d.duplicate_keys.len() {
                1 => String::new(),
                m => format!(" (and {} more duplicated key(s))", m - 1),
            };
            anyhow::bail!(
                "record {} (line {}): {k}{more}: only one value of it can be kept, so it cannot \
                 be re-encoded as it was written; remove all but the one meant",
                n + 1,
                d.line
            );
        }
    }
    Ok(())
}

/// The lib's emit options from the command line's.
pub fn emit_kind(kind: crate::cli::EmitKind) -> cbr::record::emit::EmitKind {
    use crate::cli::EmitKind as C;
    use cbr::record::emit::EmitKind as E;
    match kind {
        C::Url => E::Url,
        C::Cinder => E::Cinder,
        C::Openstack => E::Openstack,
        C::ExportJson => E::ExportJson,
        C::Record => E::Record,
    }
}

/// The wrap to use: `--wrap N` (0 = one line), else as the input was.
pub fn wrap_for(arg: Option<usize>, decoded: Option<&cbr::record::Decoded>) -> Option<usize> {
    match arg {
        Some(0) => None,
        Some(n) => Some(n),
        None => decoded.and_then(|d| d.wrap),
    }
}

/// The backup_service to print for a record: the flag, else the one found
/// with it, else what its era's Cinder exported.
pub fn service_for(arg: Option<&str>, decoded: &cbr::record::Decoded) -> String {
    arg.map(str::to_owned)
        .or_else(|| decoded.backup_service.clone())
        .unwrap_or_else(|| cbr::record::default_service(decoded.source.era).to_string())
}

/// Bytes for a person: `1.0 GiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Print findings for a person on stderr-or-stdout `w`.
pub fn print_findings(w: &mut dyn Write, findings: &cbr::findings::Findings) -> Result<()> {
    cbr::findings::render_human(findings, w)?;
    Ok(())
}

#[cfg(test)]
mod json_doc_tests {
    use super::*;

    /// A document written as it goes is the same bytes as one printed whole.
    #[test]
    fn streamed_json_is_what_print_json_prints() {
        for n in [0usize, 1, 3] {
            let rows: Vec<serde_json::Value> = (0..n)
                .map(|i| serde_json::json!({"id": format!("a\nb{i}"), "v": [i, {"x": null}], "e": []}))
                .collect();
            let whole = serde_json::json!({"backups": rows, "findings": [], "n": {"k": n}});
            let want = serde_json::to_string_pretty(&whole).unwrap() + "\n";
            let mut got = Vec::new();
            let mut d = JsonDoc::open(&mut got).unwrap();
            d.array("backups").unwrap();
            for r in &rows {
                d.item(r).unwrap();
            }
            d.close_array().unwrap();
            d.field("findings", &Vec::<u8>::new()).unwrap();
            d.field("n", &serde_json::json!({"k": n})).unwrap();
            d.close().unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
    }
}
