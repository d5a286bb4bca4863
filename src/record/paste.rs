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
use super::{Decoded, DuplicateKey, Era, Source, SourceFormat, duplicate_keys, era_of};
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
    /// The record's text is in the message, not a `source()`: printing
    /// the chain would say it twice.
    #[error("line {line}, column {column}: {err}")]
    Codec {
        line: usize,
        column: usize,
        err: CodecError,
    },
    #[error("the base64 has a stray character {ch:?} at line {line}, column {column}")]
    StrayChar {
        line: usize,
        column: usize,
        ch: char,
    },
    #[error(
        "the base64 is {len} characters long, which no base64 is: a character is missing or \
         extra (it ends at line {line}, column {column}; was the paste cut?)"
    )]
    Length {
        line: usize,
        column: usize,
        len: usize,
    },
    #[error(
        "the base64 ends in {ch:?} at line {line}, column {column}, which no encoder writes \
         there: the end of the paste was cut or edited"
    )]
    LastSymbol {
        line: usize,
        column: usize,
        ch: char,
    },
    #[error("the input is {bytes} bytes, more than a paste can be (4 GiB)")]
    TooBig { bytes: usize },
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
#[derive(Clone, Copy)]
struct Line<'a> {
    /// 1-based line number.
    no: usize,
    text: &'a str,
    /// Byte offset of the line in the input.
    offset: usize,
}

/// The lines of the input, found on demand from their start offsets (four
/// bytes a line: a paste of millions of short lines stays small).
struct Lines<'a> {
    text: &'a str,
    starts: Vec<u32>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Result<Self, PasteError> {
        if u32::try_from(text.len()).is_err() {
            return Err(PasteError::TooBig { bytes: text.len() });
        }
        let mut starts = vec![0u32];
        // Offsets fit: the text is shorter than u32::MAX.
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| (i + 1) as u32),
        );
        Ok(Lines { text, starts })
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Line `i` (0-based); `i` must be below `len()`.
    fn at(&self, i: usize) -> Line<'a> {
        let start = self.starts[i] as usize;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.text.len(), |n| *n as usize - 1);
        Line {
            no: i + 1,
            text: self.text[start..end].trim_end_matches(['\r', ' ', '\t']),
            offset: start,
        }
    }

    /// Lines `from..to`.
    fn range(&self, from: usize, to: usize) -> impl Iterator<Item = Line<'a>> + '_ {
        (from..to.min(self.len())).map(|i| self.at(i))
    }
}

/// The 1-based column of `part` in `line` (a slice of it), else 1.
fn column_in(line: &str, part: &str) -> usize {
    let (l, p) = (line.as_ptr() as usize, part.as_ptr() as usize);
    if p >= l && p <= l + line.len() {
        p - l + 1
    } else {
        1
    }
}

/// The base64 of a record being gathered from its pieces (physical lines,
/// table cells…), with where each piece was in the input, so that an
/// offset in the joined base64 can be named as a line and column.
#[derive(Default)]
struct B64 {
    text: String,
    /// Runs of pieces of the same length placed at a regular step (the
    /// lines of wrapped base64 are one run).
    runs: Vec<Run>,
    /// Non-empty pieces.
    pieces: usize,
    first_len: usize,
    /// The first character outside the base64 alphabet: (line, column, ch).
    stray: Option<(usize, usize, char)>,
}

/// Pieces `k = 0..count` of length `len` start at text offset
/// `start + k * len`, at line `line + k * dline`, column `column + k * dcol`.
struct Run {
    start: usize,
    len: usize,
    count: usize,
    line: usize,
    column: usize,
    dline: usize,
    dcol: usize,
}

impl B64 {
    /// Add a piece found at 1-based `line` and `column`.
    fn push(&mut self, line: usize, column: usize, piece: &str) {
        if piece.is_empty() {
            return;
        }
        if self.stray.is_none()
            && let Some((i, ch)) = piece.char_indices().find(|(_, c)| !is_b64(*c))
        {
            self.stray = Some((line, column + i, ch));
        }
        if self.pieces == 0 {
            self.first_len = piece.len();
        }
        self.pieces += 1;
        let start = self.text.len();
        self.text.push_str(piece);
        if let Some(r) = self.runs.last_mut()
            && r.len == piece.len()
            && line >= r.line
        {
            if r.count == 1 && (line > r.line || column > r.column) {
                r.dline = line - r.line;
                r.dcol = column.wrapping_sub(r.column);
                r.count = 2;
                return;
            }
            if r.count > 1
                && line == r.line + r.count * r.dline
                && column == r.column.wrapping_add(r.count.wrapping_mul(r.dcol))
            {
                r.count += 1;
                return;
            }
        }
        self.runs.push(Run {
            start,
            len: piece.len(),
            count: 1,
            line,
            column,
            dline: 0,
            dcol: 0,
        });
    }

    /// The line and column of byte `offset` of the joined text.
    fn place(&self, offset: usize) -> (usize, usize) {
        let idx = self
            .runs
            .partition_point(|r| r.start <= offset)
            .saturating_sub(1);
        let Some(r) = self.runs.get(idx) else {
            return (1, 1);
        };
        let within = offset.saturating_sub(r.start);
        let k = (within / r.len.max(1)).min(r.count.saturating_sub(1));
        (
            r.line + k * r.dline,
            r.column
                .wrapping_add(k.wrapping_mul(r.dcol))
                .wrapping_add(within - k * r.len),
        )
    }
}

/// A record's base64 found in the input.
struct Found {
    service: Option<String>,
    b64: B64,
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
    let lines = Lines::new(text)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines.at(i).text.trim_start();
        if t.is_empty() {
            i += 1;
            continue;
        }
        let (next, found) = if t.starts_with('+') || t.starts_with('|') {
            parse_table(&lines, i)?
        } else if t.starts_with('{') {
            match parse_json_block(text, &lines, i)? {
                JsonFound::Url(next, f) => (next, Some(*f)),
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

/// Decode the base64 found; errors name their place in the input.
fn finish(f: Found) -> Result<Decoded, PasteError> {
    let Found {
        service,
        mut b64,
        format,
        line,
        column,
        real_breaks,
    } = f;
    if let Some((line, column, ch)) = b64.stray {
        return Err(PasteError::StrayChar { line, column, ch });
    }
    if b64.text.is_empty() {
        return Err(PasteError::Malformed {
            line,
            what: "the backup_url is empty".into(),
        });
    }
    // Decoded in place: the base64 is not needed once it is bytes.
    let text_len = b64.text.len();
    let text = std::mem::take(&mut b64.text);
    let (record, duplicate_keys, json) =
        codec::decode_compact_owned(text).map_err(|e| match e {
            CodecError::StrayChar { ch, offset } => {
                let (line, column) = b64.place(offset);
                PasteError::StrayChar { line, column, ch }
            }
            CodecError::LastSymbol { ch, offset } => {
                let (line, column) = b64.place(offset);
                PasteError::LastSymbol { line, column, ch }
            }
            CodecError::Length { len } => {
                let (line, column) = b64.place(len.saturating_sub(1));
                PasteError::Length { line, column, len }
            }
            CodecError::Padding => {
                let (line, column) = b64.place(text_len.saturating_sub(1));
                PasteError::Codec {
                    line,
                    column,
                    err: CodecError::Padding,
                }
            }
            err => PasteError::Codec { line, column, err },
        })?;
    let era = era_of(&record, service.as_deref());
    let (wrapped, wrap) = if b64.pieces > 1 && real_breaks {
        (true, Some(b64.first_len))
    } else if b64.pieces > 1 && era != Era::Current {
        // A folded openstackclient table: the folds hide the original line
        // breaks, and Kilo/Liberty always wrapped at 76.
        (true, Some(76))
    } else {
        (false, None)
    };
    Ok(Decoded {
        backup_service: service,
        record,
        source: Source {
            format,
            wrapped,
            era,
        },
        json: Some(json),
        wrap,
        line,
        duplicate_keys,
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

/// A table: its extent, its rows read (header and fields), its borders
/// checked, its kind from the header, then the export's two fields.
fn parse_table(lines: &Lines<'_>, start: usize) -> Result<Step, PasteError> {
    let end = table_end(lines, start);
    // Elided cells make the paste lossy, whatever the table is.
    if let Some(l) = lines.range(start, end).find(|l| l.text.contains("...")) {
        return Err(PasteError::Elided { line: l.no });
    }
    let rows = read_rows(lines, start, end)?;
    check_outer_borders(lines, start, end)?;
    let Some((header_line, header)) = rows.header else {
        return Ok((end, None));
    };
    let kind = table_kind(header_line, &header)?;
    let found = export_of_table(lines, kind, header_line, &rows.fields)?;
    Ok((end, Some(found)))
}

/// The index of the line after the table starting at `start`: its lines
/// start with `+` or `|`, and two borders in a row end one table (the
/// second begins the next).
fn table_end(lines: &Lines<'_>, start: usize) -> usize {
    let mut end = start;
    while end < lines.len() {
        let t = lines.at(end).text.trim_start();
        let prev_border = end > start && lines.at(end - 1).text.trim_start().starts_with('+');
        if t.starts_with('+') && prev_border && end > start + 1 {
            break;
        }
        if t.starts_with('+') || t.starts_with('|') {
            end += 1;
        } else {
            break;
        }
    }
    end
}

/// What the rows of a table hold: the header (its line and cells), and
/// each field of a two-column table.
struct Rows<'a> {
    header: Option<(usize, Vec<&'a str>)>,
    fields: Vec<Field<'a>>,
}

/// One pass over the rows of lines `start..end`, keeping no row: the
/// header, and each field as its key and the range of lines its value
/// spans (a non-empty key starts a field, an empty one continues it).
/// Damaged borders and rows cut on the right are errors.
fn read_rows<'a>(lines: &Lines<'a>, start: usize, end: usize) -> Result<Rows<'a>, PasteError> {
    let mut width = None;
    let mut rows = Rows {
        header: None,
        fields: Vec::new(),
    };
    for (idx, l) in (start..end).zip(lines.range(start, end)) {
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
        let Ok((_, cells)) = row(t) else {
            return Err(PasteError::CutOff {
                line: l.no,
                what: "a row has no closing `|`: the right side was cut".into(),
            });
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
        if rows.header.is_none() {
            rows.header = Some((l.no, cells));
            continue;
        }
        if let [key, _] = cells.as_slice() {
            if key.is_empty() {
                if let Some(f) = rows.fields.last_mut() {
                    f.end = idx + 1;
                }
            } else {
                rows.fields.push(Field {
                    key,
                    line: l.no,
                    start: idx,
                    end: idx + 1,
                });
            }
        }
    }
    Ok(rows)
}

/// A table's last line must be its bottom border, its first its top one.
fn check_outer_borders(lines: &Lines<'_>, start: usize, end: usize) -> Result<(), PasteError> {
    let last = lines.at(end.saturating_sub(1).max(start));
    if !last.text.trim_start().starts_with('+') {
        return Err(PasteError::CutOff {
            line: last.no,
            what: "there is no bottom border after this line".into(),
        });
    }
    let first = lines.at(start);
    if !first.text.trim_start().starts_with('+') {
        return Err(PasteError::CutOff {
            line: first.no,
            what: "there is no top border before this line".into(),
        });
    }
    Ok(())
}

/// Which client printed an export table, from its header; any other
/// table is named as what it looks like.
fn table_kind(header_line: usize, header: &[&str]) -> Result<SourceFormat, PasteError> {
    match header {
        ["Property", "Value"] => Ok(SourceFormat::CinderclientTable),
        ["Field", "Value"] => Ok(SourceFormat::OpenstackTable),
        cols => {
            let what = if cols.contains(&"Volume ID") && cols.contains(&"Status") {
                "`backup-list` table".to_string()
            } else if cols.contains(&"Property") || cols.contains(&"Field") {
                "table with other columns".to_string()
            } else {
                "table of something else".to_string()
            };
            Err(PasteError::NotExportTable {
                line: header_line,
                what,
                columns: cols.join(", "),
            })
        }
    }
}

/// The service and url fields of an export table of `kind`, gathered.
fn export_of_table(
    lines: &Lines<'_>,
    kind: SourceFormat,
    header_line: usize,
    fields: &[Field<'_>],
) -> Result<Found, PasteError> {
    let (svc_key, url_key) = match kind {
        SourceFormat::CinderclientTable => ("backup_service", "backup_url"),
        _ => ("Backup Service", "Metadata"),
    };
    let get = |k: &str| fields.iter().find(|f| f.key == k);
    let Some(url) = get(url_key) else {
        // A property table of something else (e.g. `backup-show`).
        return Err(PasteError::NotExportTable {
            line: header_line,
            what: "property table without a backup_url".into(),
            columns: fields.iter().map(|f| f.key).collect::<Vec<_>>().join(", "),
        });
    };
    let Some(service) = get(svc_key) else {
        return Err(PasteError::MissingRow {
            line: header_line,
            field: svc_key,
        });
    };
    let mut service_text = String::new();
    field_values(lines, service, |_, v| service_text.push_str(v));
    let mut b64 = B64::default();
    let mut column = None;
    field_values(lines, url, |l, v| {
        let col = column_in(l.text, v);
        column.get_or_insert(col);
        b64.push(l.no, col, v);
    });
    Ok(Found {
        service: Some(service_text),
        b64,
        format: kind,
        line: url.line,
        column: column.unwrap_or(1),
        // prettytable prints embedded newlines as rows; cliff folds.
        real_breaks: kind == SourceFormat::CinderclientTable,
    })
}

/// A field of a property table: its key, and lines `start..end` hold its value.
struct Field<'a> {
    key: &'a str,
    line: usize,
    start: usize,
    end: usize,
}

/// Call `each` with every value cell of a field (rows already checked).
fn field_values<'a>(lines: &Lines<'a>, f: &Field<'_>, mut each: impl FnMut(Line<'a>, &'a str)) {
    for l in lines.range(f.start, f.end) {
        if let Ok((_, cells)) = row(l.text.trim_start())
            && let [_, v] = cells.as_slice()
        {
            each(l, v);
        }
    }
}

// ---------------------------------------------------------------- JSON

enum JsonFound {
    Url(usize, Box<Found>),
    Record(usize, Box<Decoded>),
}

fn line_of_offset(lines: &Lines<'_>, offset: usize) -> (usize, usize) {
    let idx = lines
        .starts
        .partition_point(|s| *s as usize <= offset)
        .saturating_sub(1);
    let l = lines.at(idx.min(lines.len() - 1));
    (l.no, offset.saturating_sub(l.offset) + 1)
}

/// A JSON value starting on line `i`: an export (`-f json`, or the API's
/// `{"backup-record": …}`) gives its url to decode; a record given as
/// JSON is the record.
fn parse_json_block(text: &str, lines: &Lines<'_>, i: usize) -> Result<JsonFound, PasteError> {
    let first = lines.at(i);
    let Some((value, span)) = first_json_value(text, first)? else {
        return Ok(JsonFound::Url(i + 1, Box::new(empty_found(first.no))));
    };
    let json_text = &text[span.clone()];
    let (end_line, _) = line_of_offset(lines, span.end.saturating_sub(1));
    let next = end_line.min(lines.len());
    let serde_json::Value::Object(map) = value else {
        return Err(PasteError::JsonNotRecord {
            line: first.no,
            what: "not an object".into(),
        });
    };
    let (inner, format) = unwrap_export(map);
    if inner.contains_key("backup_url") {
        let found = export_url(inner, format, lines.range(i, next), first, json_text)?;
        return Ok(JsonFound::Url(next, Box::new(found)));
    }
    if looks_like_record(&inner) {
        let d = record_of_json(inner, json_text, first.no)?;
        return Ok(JsonFound::Record(next, Box::new(d)));
    }
    let keys: Vec<&str> = inner.keys().map(String::as_str).take(6).collect();
    Err(PasteError::JsonNotRecord {
        line: first.no,
        what: format!("an object with keys {}", keys.join(", ")),
    })
}

/// The first JSON value of `text` from line `first` on, and where its
/// text is; `None` when nothing follows. Errors are placed in the input.
fn first_json_value(
    text: &str,
    first: Line<'_>,
) -> Result<Option<(serde_json::Value, std::ops::Range<usize>)>, PasteError> {
    let start = first.offset + (first.text.len() - first.text.trim_start().len());
    let tail = &text[start..];
    let mut stream = serde_json::Deserializer::from_str(tail).into_iter::<serde_json::Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            let (line, column) = if e.line() == 1 {
                (first.no, start - first.offset + e.column())
            } else {
                (first.no + e.line() - 1, e.column())
            };
            return Err(PasteError::Json {
                line,
                column,
                err: e.to_string(),
            });
        }
        None => return Ok(None),
    };
    let consumed = start + stream.byte_offset();
    // Its scratch buffer holds the longest string unescaped (the url).
    drop(stream);
    Ok(Some((value, start..consumed)))
}

/// The export inside the API's `{"backup-record": …}`, taken out (not
/// cloned: the url in it can be big), else the object itself.
fn unwrap_export(map: super::Record) -> (super::Record, SourceFormat) {
    if !map.get("backup-record").is_some_and(|v| v.is_object()) {
        return (map, SourceFormat::Json);
    }
    let mut map = map;
    match map.remove("backup-record") {
        Some(serde_json::Value::Object(inner)) => (inner, SourceFormat::ApiJson),
        _ => (super::Record::new(), SourceFormat::ApiJson),
    }
}

/// serde_json kept one value of a key given twice: which one was meant?
/// (Asked once the big values are dropped: it unescapes strings again.)
fn json_duplicate_keys(json_text: &str, line: usize) -> Result<Vec<DuplicateKey>, PasteError> {
    duplicate_keys(json_text).map_err(|e| PasteError::Json {
        line,
        column: 1,
        err: e.to_string(),
    })
}

/// The url of an export given as JSON (`inner`, with a `backup_url`), to
/// decode; `block` are the lines of its JSON text.
fn export_url<'a>(
    inner: super::Record,
    format: SourceFormat,
    mut block: impl Iterator<Item = Line<'a>>,
    first: Line<'a>,
    json_text: &str,
) -> Result<Found, PasteError> {
    let Some(url) = inner.get("backup_url").and_then(|v| v.as_str()) else {
        return Err(PasteError::Malformed {
            line: first.no,
            what: "backup_url is not a string".into(),
        });
    };
    let service = inner
        .get("backup_service")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let url_line = block
        .find(|l| l.text.contains("\"backup_url\""))
        .unwrap_or(first);
    let b64 = json_url_pieces(url_line, url);
    drop(inner);
    let wrapper = if format == SourceFormat::ApiJson {
        "backup-record."
    } else {
        ""
    };
    let read = ["backup-record", "backup_url", "backup_service"];
    if let Some(d) = json_duplicate_keys(json_text, first.no)?.iter().find(|d| {
        read.iter()
            .any(|k| d.path() == *k || d.path() == format!("{wrapper}{k}"))
    }) {
        return Err(PasteError::Malformed {
            line: first.no,
            what: format!("{d} in the export JSON: which one is meant?"),
        });
    }
    Ok(Found {
        service,
        b64,
        format,
        line: url_line.no,
        column: 1,
        real_breaks: true,
    })
}

/// A record given as its decoded JSON (`json_text`, from line `line`).
fn record_of_json(
    record: super::Record,
    json_text: &str,
    line: usize,
) -> Result<Decoded, PasteError> {
    let era = era_of(&record, None);
    let json = own_json_text(&record, json_text);
    Ok(Decoded {
        backup_service: None,
        record,
        source: Source {
            format: SourceFormat::RecordJson,
            wrapped: false,
            era,
        },
        json,
        wrap: None,
        line,
        duplicate_keys: json_duplicate_keys(json_text, line)?,
    })
}

/// The JSON text of a record given as JSON, to keep its layout: `None`
/// when it is exactly what `cbr decode` prints for the record (decode's
/// own pretty-printing, not how the record was written: encoding it as
/// Cinder does gives back the original url), else the text itself.
fn own_json_text(record: &super::Record, text: &str) -> Option<String> {
    match serde_json::to_string_pretty(record) {
        Ok(pretty) if pretty == text => None,
        _ => Some(text.to_owned()),
    }
}

/// The pieces of a backup_url given as a JSON string on `line` (split at
/// its `\n`s), placed at their columns in the JSON text when the string has
/// no other escapes (else all at the string's start).
fn json_url_pieces(line: Line<'_>, url: &str) -> B64 {
    let t = line.text;
    // The string's first character: after `"backup_url"`, `:` and `"`.
    let open = t.find("\"backup_url\"").and_then(|k| {
        let after = &t[k + "\"backup_url\"".len()..];
        let after = after.trim_start().strip_prefix(':')?.trim_start();
        let body = after.strip_prefix('"')?;
        Some(t.len() - body.len())
    });
    let simple = open.is_some_and(|o| {
        let mut raw = t[o..].bytes();
        while let Some(b) = raw.next() {
            match b {
                b'"' => return true,
                b'\\' if raw.next() != Some(b'n') => return false,
                _ => {}
            }
        }
        false
    });
    let mut b64 = B64::default();
    let mut raw_offset = 0;
    for piece in url.split('\n') {
        let lead = piece.len() - piece.trim_start().len();
        let column = match open {
            Some(o) if simple => o + 1 + raw_offset + lead,
            Some(o) => o + 1,
            None => 1,
        };
        b64.push(line.no, column, piece.trim());
        // The piece and its two-character `\n`.
        raw_offset += piece.len() + 2;
    }
    b64
}

fn empty_found(line: usize) -> Found {
    Found {
        service: None,
        b64: B64::default(),
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

fn parse_keyed(lines: &Lines<'_>, i: usize) -> Result<Option<Step>, PasteError> {
    let Ok((_, (_, sep, _))) = keyed_line(lines.at(i).text.trim_start()) else {
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
        let l = lines.at(j);
        let t = l.text.trim_start();
        let Ok((_, (k, _, v))) = keyed_line(t) else {
            if t.is_empty() {
                j += 1;
                continue;
            }
            break;
        };
        seen += 1;
        let col = column_in(l.text, v);
        let next = if k == "backup_service" {
            let mut text = String::new();
            let next = scalar(lines, j, v, |_, p| text.push_str(p))?;
            service = Some(text);
            next
        } else {
            let mut b64 = B64::default();
            let mut lines_seen = 0;
            let next = scalar(lines, j, v, |l, p| {
                lines_seen += 1;
                b64.push(l.no, column_in(l.text, p), p);
            })?;
            found_url = Some((l.no, col, b64, lines_seen > 1));
            next
        };
        j = next;
    }
    match found_url {
        Some((line, column, b64, real_breaks)) => Ok(Some((
            j,
            Some(Found {
                service,
                b64,
                format,
                line,
                column,
                real_breaks,
            }),
        ))),
        None => Ok(Some((j, None))),
    }
}

/// A scalar value starting on line `j` with text `v`: plain, or quoted
/// (single or double) over several lines. Calls `each` with every line's
/// part of it; returns the index of the line after it.
fn scalar<'a>(
    lines: &Lines<'a>,
    j: usize,
    v: &'a str,
    mut each: impl FnMut(Line<'a>, &'a str),
) -> Result<usize, PasteError> {
    let first = lines.at(j);
    let v = v.trim();
    let quote = match v.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => {
            each(first, v);
            return Ok(j + 1);
        }
    };
    let body = &v[1..];
    if let Some(end) = body.find(quote) {
        each(first, &body[..end]);
        return Ok(j + 1);
    }
    each(first, body.trim());
    let mut k = j + 1;
    while k < lines.len() {
        let l = lines.at(k);
        let t = l.text.trim();
        if let Some(end) = t.find(quote) {
            let last = t[..end].trim();
            if !last.is_empty() {
                each(l, last);
            }
            return Ok(k + 1);
        }
        // YAML folds a single-quoted scalar: an empty line is a newline.
        if !t.is_empty() {
            each(l, t);
        }
        k += 1;
    }
    Err(PasteError::CutOff {
        line: first.no,
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

fn parse_command(lines: &Lines<'_>, i: usize) -> Result<Option<Step>, PasteError> {
    let first = lines.at(i);
    let text = first.text;
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
        joined.push_str(lines.at(j).text.trim());
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
            line: first.no,
            what: "the import command has no SERVICE and URL arguments".into(),
        });
    };
    // The url may be on a continuation line.
    let (line, column) = lines
        .range(i, j)
        .find_map(|l| l.text.find(*url).map(|c| (l.no, c + 1)))
        .unwrap_or((first.no, 1));
    if url.contains("$(") || url.contains('`') || url.starts_with('$') {
        return Err(PasteError::Unexpanded {
            line,
            column,
            text: url.to_string(),
        });
    }
    let mut b64 = B64::default();
    b64.push(line, column, url);
    Ok(Some((
        j,
        Some(Found {
            service: Some(service.to_string()),
            b64,
            format: SourceFormat::Command,
            line: first.no,
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
/// Returns the pieces and the index of the line after them.
fn b64_run(lines: &Lines<'_>, i: usize) -> Result<(B64, usize), PasteError> {
    let mut b64 = B64::default();
    let mut j = i;
    while j < lines.len() {
        let l = lines.at(j);
        let t = l.text.trim();
        if t.is_empty() {
            break;
        }
        if b64_line(t).is_err() {
            if j == i {
                // The first line starts like a record but has a stray character.
                if let Some((col, ch)) = t.char_indices().find(|(_, c)| !is_b64(*c)) {
                    return Err(PasteError::StrayChar {
                        line: l.no,
                        column: column_in(l.text, t) + col,
                        ch,
                    });
                }
            }
            // A later line with one stray character inside a base64 line.
            let mut stray = t.char_indices().filter(|(_, c)| !is_b64(*c));
            if let (Some((col, ch)), None) = (stray.next(), stray.next())
                && t.len() > 8
                && b64.pieces > 0
            {
                return Err(PasteError::StrayChar {
                    line: l.no,
                    column: column_in(l.text, t) + col,
                    ch,
                });
            }
            break;
        }
        b64.push(l.no, column_in(l.text, t), t);
        j += 1;
        if t.ends_with('=') {
            break;
        }
    }
    Ok((b64, j))
}

/// openstackclient `-f value`: the service name, then the url.
fn parse_value(lines: &Lines<'_>, i: usize) -> Result<Option<Step>, PasteError> {
    let t = lines.at(i).text.trim();
    let is_service = t.starts_with("cinder.backup.drivers.")
        && !t.contains(char::is_whitespace)
        && i + 1 < lines.len()
        && starts_record_b64(lines.at(i + 1).text.trim());
    if !is_service {
        return Ok(None);
    }
    let (b64, next) = b64_run(lines, i + 1)?;
    let real_breaks = b64.pieces > 1;
    Ok(Some((
        next,
        Some(Found {
            service: Some(t.to_string()),
            b64,
            format: SourceFormat::Value,
            line: i + 2,
            column: 1,
            real_breaks,
        }),
    )))
}

fn parse_bare(lines: &Lines<'_>, i: usize) -> Result<Option<Step>, PasteError> {
    let l = lines.at(i);
    let t = l.text.trim();
    // A record's base64 starts with `eyJ`; any other long base64 line is
    // taken too, so that what it decodes to can be named.
    if !(starts_record_b64(t) || (t.len() >= 40 && b64_line(t).is_ok())) {
        return Ok(None);
    }
    let (b64, next) = b64_run(lines, i)?;
    let real_breaks = b64.pieces > 1;
    Ok(Some((
        next,
        Some(Found {
            service: None,
            b64,
            format: SourceFormat::Base64,
            line: l.no,
            column: column_in(l.text, t),
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
