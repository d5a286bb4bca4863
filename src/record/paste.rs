//! Finding export records in anything an operator pastes (format doc,
//! section 8): cinderclient and openstackclient tables (wrapped, folded,
//! centred), openstackclient `-f json|yaml|value|shell`, the API's
//! `{"backup-record": …}`, bare base64, import command lines and the decoded
//! JSON record itself — several of them in one input, amid terminal chatter.
//!
//! The input is scanned line by line; each block that starts like a known
//! format is handed to its parser (built from `nom` combinators). Anything
//! that looks like a record but cannot be read whole is an error naming the
//! line and column: a record is never half-decoded.

use super::codec::{self, CodecError};
use super::{Decoded, Era, Source, SourceFormat, era_of};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_while, take_while1};
use nom::character::complete::{char, space0, space1};
use nom::combinator::{opt, recognize, rest};
use nom::multi::many1;
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum PasteError {
    #[error("the input is empty")]
    Empty,
    #[error(
        "no export record found in the input ({lines} lines): expected the output of \
         `cinder backup-export` or `openstack volume backup record export` (a table, \
         -f json/yaml/value/shell), a backup_url, an import command line or the decoded JSON"
    )]
    NoRecord { lines: usize },
    #[error("line {line}, column {column}: {source}")]
    Codec {
        line: usize,
        column: usize,
        #[source]
        source: CodecError,
    },
    #[error("line {line}, column {column}: stray character {ch:?} in the base64 of the backup_url")]
    StrayChar {
        line: usize,
        column: usize,
        ch: char,
    },
    #[error(
        "line {line}: the table has cells elided with `...`: the paste lost data; \
         copy it again from a wider terminal, or use `-f json`"
    )]
    Elided { line: usize },
    #[error(
        "line {line}: the table is cut off ({what}); copy the whole table, from its top \
         border to its bottom border"
    )]
    CutOff { line: usize, what: String },
    #[error("line {line}: this is a {what}, not a backup export: its columns are {columns}")]
    NotExportTable {
        line: usize,
        what: String,
        columns: String,
    },
    #[error("line {line}: the export table has no {field} row")]
    MissingRow { line: usize, field: &'static str },
    #[error(
        "line {line}, column {column}: the backup_url is the shell substitution {text:?}, which \
         was never expanded: run the command in a shell, or give the file it reads"
    )]
    Unexpanded {
        line: usize,
        column: usize,
        text: String,
    },
    #[error("line {line}: {what}")]
    Malformed { line: usize, what: String },
    #[error("line {line}, column {column}: invalid JSON: {err}")]
    Json {
        line: usize,
        column: usize,
        err: String,
    },
    #[error("line {line}: the JSON is {what}, not an export (with backup_url) nor a backup record")]
    JsonNotRecord { line: usize, what: String },
}

/// One line of the input, `\r` and trailing blanks removed.
struct Line<'a> {
    /// 1-based line number.
    no: usize,
    text: &'a str,
    /// Byte offset of the line in the input.
    offset: usize,
}

fn split_lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, raw) in text.split('\n').enumerate() {
        out.push(Line {
            no: i + 1,
            text: raw.trim_end_matches(['\r', ' ', '\t']),
            offset,
        });
        offset += raw.len() + 1;
    }
    out
}

/// The value of a record found: base64 pieces (one per physical line).
struct Found {
    service: Option<String>,
    pieces: Vec<String>,
    format: SourceFormat,
    line: usize,
    column: usize,
    /// Whether line breaks between pieces were real newlines of the url.
    real_breaks: bool,
}

/// Find every record in `text`, in order.
pub fn decode_all(text: &str) -> Result<Vec<Decoded>, PasteError> {
    if text.trim().is_empty() {
        return Err(PasteError::Empty);
    }
    let lines = split_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].text.trim_start();
        if t.is_empty() {
            i += 1;
            continue;
        }
        let (next, found) = if t.starts_with('+') || t.starts_with('|') {
            parse_table(&lines, i)?
        } else if t.starts_with('{') {
            match parse_json_block(text, &lines, i)? {
                JsonFound::Url(next, f) => (next, Some(f)),
                JsonFound::Record(next, d) => {
                    out.push(*d);
                    i = next;
                    continue;
                }
            }
        } else if let Some(r) = parse_keyed(&lines, i)? {
            r
        } else if let Some(r) = parse_command(&lines, i)? {
            r
        } else if let Some(r) = parse_value(&lines, i)? {
            r
        } else if let Some(r) = parse_bare(&lines, i)? {
            r
        } else {
            (i + 1, None)
        };
        if let Some(f) = found {
            out.push(finish(f)?);
        }
        i = next.max(i + 1);
    }
    if out.is_empty() {
        return Err(PasteError::NoRecord { lines: lines.len() });
    }
    Ok(out)
}

/// Base64 alphabet (standard, with padding).
fn is_b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='
}

/// Check every character of the pieces, then decode.
fn finish(f: Found) -> Result<Decoded, PasteError> {
    // A stray character names its place: the piece index is a line offset
    // for line-per-piece formats.
    for (k, piece) in f.pieces.iter().enumerate() {
        if let Some((col, ch)) = piece.char_indices().find(|(_, c)| !is_b64(*c)) {
            return Err(PasteError::StrayChar {
                line: f.line + if f.pieces.len() > 1 { k } else { 0 },
                column: if k == 0 { f.column + col } else { col + 1 },
                ch,
            });
        }
    }
    let pieces: Vec<&str> = f
        .pieces
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    let url: String = pieces.concat();
    if url.is_empty() {
        return Err(PasteError::Malformed {
            line: f.line,
            what: "the backup_url is empty".into(),
        });
    }
    let record = codec::decode_url(&url).map_err(|source| PasteError::Codec {
        line: f.line,
        column: f.column,
        source,
    })?;
    let era = era_of(&record, f.service.as_deref());
    let (wrapped, wrap) = if pieces.len() > 1 && f.real_breaks {
        (true, Some(pieces[0].len()))
    } else if pieces.len() > 1 && era != Era::Current {
        // A folded openstackclient table: the folds hide the original line
        // breaks, and Kilo/Liberty always wrapped at 76.
        (true, Some(76))
    } else {
        (false, None)
    };
    Ok(Decoded {
        backup_service: f.service,
        record,
        source: Source {
            format: f.format,
            wrapped,
            era,
        },
        url: Some(url),
        wrap,
        line: f.line,
    })
}

// ---------------------------------------------------------------- tables

/// `+----+-----+` (also with `=` or `...` in it).
fn border(i: &str) -> IResult<&str, &str> {
    recognize((
        char('+'),
        many1(alt((
            take_while1(|c| c == '-' || c == '=' || c == '.'),
            tag("+"),
        ))),
    ))
    .parse(i)
}

/// `| a | b |` → ["a", "b"]; errors when the closing `|` is missing.
fn row(i: &str) -> IResult<&str, Vec<&str>> {
    let (i, _) = char('|').parse(i)?;
    let mut cells = Vec::new();
    let mut i = i;
    loop {
        let (r, cell) = take_till(|c| c == '|').parse(i)?;
        let (r, _) = char('|').parse(r)?;
        cells.push(cell.trim());
        i = r;
        if i.trim().is_empty() {
            return Ok((i, cells));
        }
    }
}

type Step = (usize, Option<Found>);

fn parse_table(lines: &[Line<'_>], start: usize) -> Result<Step, PasteError> {
    let mut end = start;
    while end < lines.len() {
        let t = lines[end].text.trim_start();
        // Two borders in a row: one table ends and the next begins.
        let prev_border = end > start && lines[end - 1].text.trim_start().starts_with('+');
        if t.starts_with('+') && prev_border && end > start + 1 {
            break;
        }
        if t.starts_with('+') || t.starts_with('|') {
            end += 1;
        } else {
            break;
        }
    }
    let block = &lines[start..end];
    let first = &block[0];
    // Elided cells make the paste lossy, whatever the table is.
    if let Some(l) = block.iter().find(|l| l.text.contains("...")) {
        return Err(PasteError::Elided { line: l.no });
    }
    let mut rows: Vec<(usize, Vec<&str>)> = Vec::new();
    let mut width = None;
    for l in block {
        let t = l.text.trim_start();
        if t.starts_with('+') {
            if border(t).map(|(r, _)| !r.trim().is_empty()).unwrap_or(true) {
                return Err(PasteError::Malformed {
                    line: l.no,
                    what: "a table border line is damaged".into(),
                });
            }
            continue;
        }
        let cells = match row(t) {
            Ok((_, c)) => c,
            Err(_) => {
                return Err(PasteError::CutOff {
                    line: l.no,
                    what: "a row has no closing `|`: the right side was cut".into(),
                });
            }
        };
        match width {
            None => width = Some(cells.len()),
            Some(w) if w != cells.len() => {
                return Err(PasteError::CutOff {
                    line: l.no,
                    what: format!("this row has {} cells, the table {w}", cells.len()),
                });
            }
            _ => {}
        }
        rows.push((l.no, cells));
    }
    let Some(last) = block.last() else {
        return Ok((end, None));
    };
    if !last.text.trim_start().starts_with('+') {
        return Err(PasteError::CutOff {
            line: last.no,
            what: "there is no bottom border after this line".into(),
        });
    }
    if !first.text.trim_start().starts_with('+') {
        return Err(PasteError::CutOff {
            line: first.no,
            what: "there is no top border before this line".into(),
        });
    }
    let Some((header_line, header)) = rows.first() else {
        return Ok((end, None));
    };
    let kind = match header.as_slice() {
        ["Property", "Value"] => SourceFormat::CinderclientTable,
        ["Field", "Value"] => SourceFormat::OpenstackTable,
        cols => {
            let what = if cols.contains(&"Volume ID") && cols.contains(&"Status") {
                "`backup-list` table".to_string()
            } else if cols.contains(&"Property") || cols.contains(&"Field") {
                "table with other columns".to_string()
            } else {
                "table of something else".to_string()
            };
            return Err(PasteError::NotExportTable {
                line: *header_line,
                what,
                columns: cols.join(", "),
            });
        }
    };
    let (svc_key, url_key) = match kind {
        SourceFormat::CinderclientTable => ("backup_service", "backup_url"),
        _ => ("Backup Service", "Metadata"),
    };
    // Fields: a non-empty key starts a field, an empty one continues it.
    let mut fields: Vec<(usize, String, Vec<String>)> = Vec::new();
    for (no, cells) in rows.iter().skip(1) {
        let (key, value) = match cells.as_slice() {
            [k, v] => (*k, *v),
            _ => continue,
        };
        if key.is_empty() {
            if let Some(f) = fields.last_mut() {
                f.2.push(value.to_string());
            }
        } else {
            fields.push((*no, key.to_string(), vec![value.to_string()]));
        }
    }
    let get = |k: &str| fields.iter().find(|f| f.1 == k);
    let Some(url) = get(url_key) else {
        // A property table of something else (e.g. `backup-show`).
        return Err(PasteError::NotExportTable {
            line: *header_line,
            what: "property table without a backup_url".into(),
            columns: fields
                .iter()
                .map(|f| f.1.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let service = get(svc_key).map(|f| f.2.concat());
    if service.is_none() {
        return Err(PasteError::MissingRow {
            line: *header_line,
            field: if kind == SourceFormat::CinderclientTable {
                "backup_service"
            } else {
                "Backup Service"
            },
        });
    }
    let column = lines
        .iter()
        .find(|l| l.no == url.0)
        .and_then(|l| l.text.find(url.2[0].as_str()))
        .map_or(1, |c| c + 1);
    Ok((
        end,
        Some(Found {
            service,
            pieces: url.2.clone(),
            format: kind,
            line: url.0,
            column,
            // prettytable prints embedded newlines as rows; cliff folds.
            real_breaks: kind == SourceFormat::CinderclientTable,
        }),
    ))
}

// ---------------------------------------------------------------- JSON

enum JsonFound {
    Url(usize, Found),
    Record(usize, Box<Decoded>),
}

fn line_of_offset(lines: &[Line<'_>], offset: usize) -> (usize, usize) {
    let idx = lines
        .partition_point(|l| l.offset <= offset)
        .saturating_sub(1);
    let l = &lines[idx.min(lines.len() - 1)];
    (l.no, offset.saturating_sub(l.offset) + 1)
}

fn parse_json_block(text: &str, lines: &[Line<'_>], i: usize) -> Result<JsonFound, PasteError> {
    let start = lines[i].offset + (lines[i].text.len() - lines[i].text.trim_start().len());
    let tail = &text[start..];
    let mut stream = serde_json::Deserializer::from_str(tail).into_iter::<serde_json::Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            let (line, column) = if e.line() == 1 {
                (lines[i].no, start - lines[i].offset + e.column())
            } else {
                (lines[i].no + e.line() - 1, e.column())
            };
            return Err(PasteError::Json {
                line,
                column,
                err: e.to_string(),
            });
        }
        None => return Ok(JsonFound::Url(i + 1, empty_found(lines[i].no))),
    };
    let consumed = start + stream.byte_offset();
    let (end_line, _) = line_of_offset(lines, consumed.saturating_sub(1));
    let next = lines
        .iter()
        .position(|l| l.no > end_line)
        .unwrap_or(lines.len());
    let serde_json::Value::Object(map) = value else {
        return Err(PasteError::JsonNotRecord {
            line: lines[i].no,
            what: "not an object".into(),
        });
    };
    let (inner, format) = match map.get("backup-record").and_then(|v| v.as_object()) {
        Some(inner) => (inner.clone(), SourceFormat::ApiJson),
        None => (map, SourceFormat::Json),
    };
    if let Some(url) = inner.get("backup_url") {
        let Some(url) = url.as_str() else {
            return Err(PasteError::Malformed {
                line: lines[i].no,
                what: "backup_url is not a string".into(),
            });
        };
        let service = inner
            .get("backup_service")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let pieces: Vec<String> = url.split('\n').map(|p| p.trim().to_string()).collect();
        let url_line = lines[i..next]
            .iter()
            .find(|l| l.text.contains("\"backup_url\""))
            .map_or(lines[i].no, |l| l.no);
        return Ok(JsonFound::Url(
            next,
            Found {
                service,
                pieces,
                format,
                line: url_line,
                column: 1,
                real_breaks: true,
            },
        ));
    }
    if looks_like_record(&inner) {
        let era = era_of(&inner, None);
        return Ok(JsonFound::Record(
            next,
            Box::new(Decoded {
                backup_service: None,
                record: inner,
                source: Source {
                    format: SourceFormat::RecordJson,
                    wrapped: false,
                    era,
                },
                url: None,
                wrap: None,
                line: lines[i].no,
            }),
        ));
    }
    let keys: Vec<&str> = inner.keys().map(String::as_str).take(6).collect();
    Err(PasteError::JsonNotRecord {
        line: lines[i].no,
        what: format!("an object with keys {}", keys.join(", ")),
    })
}

fn empty_found(line: usize) -> Found {
    Found {
        service: None,
        pieces: Vec::new(),
        format: SourceFormat::Json,
        line,
        column: 1,
        real_breaks: false,
    }
}

/// A decoded record has an id and at least one backup-specific field.
fn looks_like_record(m: &super::Record) -> bool {
    m.contains_key("id")
        && ["service_metadata", "container", "object_count", "volume_id"]
            .iter()
            .any(|k| m.contains_key(*k))
}

// ---------------------------------------------------------------- yaml/shell

/// `backup_service: X` / `backup_service="X"` (openstackclient -f yaml|shell).
fn keyed_line(i: &str) -> IResult<&str, (&str, char, &str)> {
    let (i, key) = alt((tag("backup_service"), tag("backup_url"))).parse(i)?;
    let (i, sep) = alt((preceded(char(':'), space0).map(|_| ':'), char('='))).parse(i)?;
    let (i, v) = rest(i)?;
    Ok((i, (key, sep, v)))
}

fn parse_keyed(lines: &[Line<'_>], i: usize) -> Result<Option<Step>, PasteError> {
    let Ok((_, (key, sep, _))) = keyed_line(lines[i].text.trim_start()) else {
        return Ok(None);
    };
    let format = if sep == ':' {
        SourceFormat::Yaml
    } else {
        SourceFormat::Shell
    };
    let mut service = None;
    let mut j = i;
    let mut found_url = None;
    // Read up to the two keys of one export, in either order.
    let mut seen = 0;
    while j < lines.len() && seen < 2 {
        let t = lines[j].text.trim_start();
        let Ok((_, (k, _, v))) = keyed_line(t) else {
            if t.is_empty() {
                j += 1;
                continue;
            }
            break;
        };
        seen += 1;
        let col = lines[j].text.len() - t.len() + (t.len() - v.len()) + 1;
        let (value, next) = scalar(lines, j, v)?;
        if k == "backup_service" {
            service = Some(value.concat());
        } else {
            found_url = Some((lines[j].no, col, value));
        }
        j = next;
    }
    let _ = key;
    match found_url {
        Some((line, column, pieces)) => {
            let real_breaks = pieces.len() > 1;
            Ok(Some((
                j,
                Some(Found {
                    service,
                    pieces,
                    format,
                    line,
                    column,
                    real_breaks,
                }),
            )))
        }
        None => Ok(Some((j, None))),
    }
}

/// A scalar value starting on line `j` with text `v`: plain, or quoted
/// (single or double) over several lines. Returns its lines' contents.
fn scalar(lines: &[Line<'_>], j: usize, v: &str) -> Result<(Vec<String>, usize), PasteError> {
    let v = v.trim();
    let quote = match v.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => return Ok((vec![v.to_string()], j + 1)),
    };
    let body = &v[1..];
    if let Some(end) = body.find(quote) {
        return Ok((vec![body[..end].to_string()], j + 1));
    }
    let mut pieces = vec![body.trim().to_string()];
    let mut k = j + 1;
    while k < lines.len() {
        let t = lines[k].text.trim();
        if let Some(end) = t.find(quote) {
            let last = t[..end].trim();
            if !last.is_empty() {
                pieces.push(last.to_string());
            }
            return Ok((pieces, k + 1));
        }
        // YAML folds a single-quoted scalar: an empty line is a newline.
        if !t.is_empty() {
            pieces.push(t.to_string());
        }
        k += 1;
    }
    Err(PasteError::CutOff {
        line: lines[j].no,
        what: format!("the quoted value that starts here never ends (no closing {quote})"),
    })
}

// ---------------------------------------------------------------- commands

/// An option of the import command (`--os-project-id X`, `--flag`).
fn option_arg(i: &str) -> IResult<&str, &str> {
    recognize((
        tag("-"),
        take_while1(|c: char| !c.is_whitespace() && c != '='),
        opt(preceded(char('='), take_till(char::is_whitespace))),
    ))
    .parse(i)
}

/// `cinder [opts] backup-import` or `openstack [opts] volume backup record import`.
fn import_command(i: &str) -> IResult<&str, ()> {
    let opts = |i| -> IResult<&str, ()> {
        let mut i = i;
        loop {
            match preceded(space1, option_arg).parse(i) {
                Ok((r, o)) => {
                    i = r;
                    // Options that take a value in the next word.
                    if !o.contains('=')
                        && o.starts_with("--os-")
                        && let Ok((r, _)) = preceded(
                            space1::<&str, nom::error::Error<&str>>,
                            take_till(char::is_whitespace),
                        )
                        .parse(i)
                    {
                        i = r;
                    }
                }
                Err(_) => return Ok((i, ())),
            }
        }
    };
    alt((
        (tag("cinder"), opts, space1, tag("backup-import")).map(|_| ()),
        (
            tag("openstack"),
            opts,
            space1,
            tag("volume"),
            space1,
            tag("backup"),
            space1,
            tag("record"),
            space1,
            tag("import"),
        )
            .map(|_| ()),
    ))
    .parse(i)
}

fn shell_word(i: &str) -> IResult<&str, &str> {
    alt((
        delimited(char('"'), take_till(|c| c == '"'), char('"')),
        delimited(char('\''), take_till(|c| c == '\''), char('\'')),
        take_while1(|c: char| !c.is_whitespace()),
    ))
    .parse(i)
}

fn parse_command(lines: &[Line<'_>], i: usize) -> Result<Option<Step>, PasteError> {
    let text = lines[i].text;
    // The command may follow a prompt (`$ `, `[root@host ~]# `).
    let Some(pos) = ["cinder ", "openstack "]
        .iter()
        .filter_map(|k| text.find(k))
        .filter(|p| import_command(&text[*p..]).is_ok())
        .min()
    else {
        return Ok(None);
    };
    // Join `\` continuation lines.
    let mut joined = text[pos..].to_string();
    let mut j = i + 1;
    while joined.ends_with('\\') && j < lines.len() {
        joined.pop();
        joined.push(' ');
        joined.push_str(lines[j].text.trim());
        j += 1;
    }
    let Ok((args, ())) = import_command(&joined) else {
        return Ok(None);
    };
    let mut words: Vec<&str> = Vec::new();
    let mut rest_args = args;
    while let Ok((r, w)) = preceded(space1, shell_word).parse(rest_args) {
        words.push(w);
        rest_args = r;
    }
    let positional: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !w.starts_with('-'))
        .collect();
    let [service, url, ..] = positional.as_slice() else {
        return Err(PasteError::Malformed {
            line: lines[i].no,
            what: "the import command has no SERVICE and URL arguments".into(),
        });
    };
    let column = text.find(*url).map_or(1, |c| c + 1);
    if url.contains("$(") || url.contains('`') || url.starts_with('$') {
        return Err(PasteError::Unexpanded {
            line: lines[i].no,
            column,
            text: url.to_string(),
        });
    }
    Ok(Some((
        j,
        Some(Found {
            service: Some(service.to_string()),
            pieces: vec![url.to_string()],
            format: SourceFormat::Command,
            line: lines[i].no,
            column,
            real_breaks: false,
        }),
    )))
}

// ---------------------------------------------------------------- value / bare base64

/// A whole line of base64.
fn b64_line(i: &str) -> IResult<&str, &str> {
    let (r, s) = take_while1(is_b64).parse(i)?;
    let (r, _) = take_while(|c: char| c.is_whitespace()).parse(r)?;
    if r.is_empty() {
        Ok((r, s))
    } else {
        Err(nom::Err::Error(nom::error::Error::new(
            r,
            nom::error::ErrorKind::Eof,
        )))
    }
}

/// The base64 of a JSON object starts with `eyJ` (`{"`); `eyAi` is `{ "`.
fn starts_record_b64(t: &str) -> bool {
    t.starts_with("eyJ") || t.starts_with("eyAi")
}

/// Lines of base64 starting at `i` (the first begins a record). Stops at a
/// blank line, a non-base64 line, or after a line ending in `=` padding.
fn b64_run(lines: &[Line<'_>], i: usize) -> Result<(Vec<String>, usize), PasteError> {
    let mut pieces = Vec::new();
    let mut j = i;
    while j < lines.len() {
        let t = lines[j].text.trim();
        if t.is_empty() {
            break;
        }
        if b64_line(t).is_err() {
            if j == i {
                // The first line starts like a record but has a stray character.
                let lead = lines[j].text.len() - lines[j].text.trim_start().len();
                if let Some((col, ch)) = t.char_indices().find(|(_, c)| !is_b64(*c)) {
                    return Err(PasteError::StrayChar {
                        line: lines[j].no,
                        column: lead + col + 1,
                        ch,
                    });
                }
            }
            // A later line with one stray character inside a base64 line.
            let stray: Vec<(usize, char)> = t.char_indices().filter(|(_, c)| !is_b64(*c)).collect();
            if stray.len() == 1 && t.len() > 8 && !pieces.is_empty() {
                let lead = lines[j].text.len() - lines[j].text.trim_start().len();
                return Err(PasteError::StrayChar {
                    line: lines[j].no,
                    column: lead + stray[0].0 + 1,
                    ch: stray[0].1,
                });
            }
            break;
        }
        pieces.push(t.to_string());
        j += 1;
        if t.ends_with('=') {
            break;
        }
    }
    Ok((pieces, j))
}

/// openstackclient `-f value`: the service name, then the url.
fn parse_value(lines: &[Line<'_>], i: usize) -> Result<Option<Step>, PasteError> {
    let t = lines[i].text.trim();
    let is_service = t.starts_with("cinder.backup.drivers.")
        && !t.contains(char::is_whitespace)
        && i + 1 < lines.len()
        && starts_record_b64(lines[i + 1].text.trim());
    if !is_service {
        return Ok(None);
    }
    let (pieces, next) = b64_run(lines, i + 1)?;
    let real_breaks = pieces.len() > 1;
    Ok(Some((
        next,
        Some(Found {
            service: Some(t.to_string()),
            pieces,
            format: SourceFormat::Value,
            line: lines[i + 1].no,
            column: 1,
            real_breaks,
        }),
    )))
}

fn parse_bare(lines: &[Line<'_>], i: usize) -> Result<Option<Step>, PasteError> {
    let t = lines[i].text.trim();
    // A record's base64 starts with `eyJ`; any other long base64 line is
    // taken too, so that what it decodes to can be named.
    if !(starts_record_b64(t) || (t.len() >= 40 && b64_line(t).is_ok())) {
        return Ok(None);
    }
    let (pieces, next) = b64_run(lines, i)?;
    let real_breaks = pieces.len() > 1;
    let column = lines[i].text.len() - lines[i].text.trim_start().len() + 1;
    Ok(Some((
        next,
        Some(Found {
            service: None,
            pieces,
            format: SourceFormat::Base64,
            line: lines[i].no,
            column,
            real_breaks,
        }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "eyJpZCI6ICJhIiwgInNlcnZpY2VfbWV0YWRhdGEiOiAiYmFja3VwIn0=";

    #[test]
    fn border_and_row_parsers() {
        assert!(border("+----+-----+").is_ok());
        assert_eq!(row("| a | b |").unwrap().1, vec!["a", "b"]);
        assert!(row("| a | b").is_err());
    }

    #[test]
    fn bare_base64_with_chatter_and_crlf() {
        let text = format!("$ cat url.txt\r\n\t{URL}  \r\nroot@host:~$\r\n");
        let d = decode_all(&text).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].record["id"], "a");
        assert_eq!(d[0].source.format, SourceFormat::Base64);
        assert_eq!(d[0].line, 2);
    }

    #[test]
    fn stray_character_is_named_with_place() {
        let bad = format!("{}@{}", &URL[..10], &URL[11..]);
        let e = decode_all(&format!("chatter\n{bad}\n")).unwrap_err();
        assert_eq!(
            e,
            PasteError::StrayChar {
                line: 2,
                column: 11,
                ch: '@'
            }
        );
    }

    #[test]
    fn command_line_with_prompt_and_options() {
        let text = format!(
            "[root@x ~]# openstack --os-project-id abc volume backup record import cinder.backup.drivers.nfs {URL}\n"
        );
        let d = decode_all(&text).unwrap();
        assert_eq!(d[0].source.format, SourceFormat::Command);
        assert_eq!(
            d[0].backup_service.as_deref(),
            Some("cinder.backup.drivers.nfs")
        );
    }

    #[test]
    fn unexpanded_substitution_is_refused() {
        let text = "cinder backup-import cinder.backup.drivers.nfs \"$(tr -d '\\n' < url.txt)\"\n";
        assert!(matches!(
            decode_all(text),
            Err(PasteError::Unexpanded { line: 1, .. })
        ));
    }

    #[test]
    fn empty_and_no_record() {
        assert_eq!(decode_all(" \n\t\n"), Err(PasteError::Empty));
        assert!(matches!(
            decode_all("hello\nworld\n"),
            Err(PasteError::NoRecord { lines: 3 })
        ));
    }

    #[test]
    fn table_cut_off_at_the_bottom() {
        let text =
            "+----------------+------+\n| Property | Value |\n+----+----+\n| backup_url | eyJh |\n";
        assert!(matches!(decode_all(text), Err(PasteError::CutOff { .. })));
    }

    #[test]
    fn json_not_object() {
        assert!(matches!(
            decode_all("[1, 2]"),
            Err(PasteError::NoRecord { .. }) | Err(PasteError::JsonNotRecord { .. })
        ));
        assert!(matches!(
            decode_all("{\"a\": 1}"),
            Err(PasteError::JsonNotRecord { line: 1, .. })
        ));
    }
}
