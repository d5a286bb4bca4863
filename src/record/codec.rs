//! base64 <-> record. The JSON inside is Python's `json.dumps` output; see
//! [`super::pyjson`] for the exact serializer.

use super::{DuplicateKey, Record, duplicate_keys};
use base64::Engine;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum CodecError {
    /// A character that cannot be where it is (offset in the base64,
    /// whitespace removed): outside the alphabet, or `=` padding before the end.
    #[error("the base64 has a stray character {ch:?} at offset {offset}")]
    StrayChar { ch: char, offset: usize },
    /// The length is not one base64 can have (a character is missing or extra).
    #[error(
        "the base64 is {len} characters long, which no base64 is: a character is missing \
         or extra (was the paste cut?)"
    )]
    Length { len: usize },
    /// The last character has bits set that no encoder leaves set.
    #[error(
        "the base64 ends in {ch:?} (offset {offset}), which no encoder writes there: \
         the end of the paste was cut or edited"
    )]
    LastSymbol { ch: char, offset: usize },
    #[error("the base64 has wrong `=` padding at its end")]
    Padding,
    #[error("the base64 decodes to bytes that are not UTF-8 text (starting {0:?})")]
    NotUtf8(String),
    #[error(
        "the paste looks cut short: its base64 ({b64_len} characters) decodes to {json_len} bytes \
         that are not JSON as they stand: they stop in the middle, ending {tail:?}; copy the whole \
         backup_url again"
    )]
    CutShort {
        b64_len: usize,
        json_len: usize,
        tail: String,
    },
    #[error("the base64 decodes to text that is not JSON ({preview:?}): {err}")]
    NotJson { preview: String, err: String },
    #[error("the base64 decodes to JSON that is not an object but {0}")]
    NotObject(&'static str),
}

/// Decode a backup_url (whitespace inside is ignored) into its record.
pub fn decode_url(url: &str) -> Result<Record, CodecError> {
    let compact: std::borrow::Cow<'_, str> = if url.contains(char::is_whitespace) {
        url.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .into()
    } else {
        url.into()
    };
    decode_compact(&compact).map(|(record, _, _)| record)
}

/// Decode base64 without whitespace into its record and the keys its JSON
/// has more than once (which the record keeps only one value of).
/// Offsets in errors are offsets in `b64`.
pub fn decode_compact(b64: &str) -> Result<(Record, Vec<DuplicateKey>, String), CodecError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| base64_error(e, b64))?;
    parse_json(bytes, b64.len())
}

/// [`decode_compact`] of base64 the caller has no further use for: decoded
/// in place, so that the base64 and the bytes it holds are never both in
/// memory (a record can be tens of MB). Same results, same errors.
pub fn decode_compact_owned(
    b64: String,
) -> Result<(Record, Vec<DuplicateKey>, String), CodecError> {
    if !decodes_whole(&b64) {
        // An error to name (or an odd shape): the plain way, which knows
        // every character.
        return decode_compact(&b64);
    }
    let b64_len = b64.len();
    let bytes = decode_in_place(b64.into_bytes())?;
    parse_json(bytes, b64_len)
}

/// Whether `b64` certainly decodes: whole quads of the alphabet, `=` only
/// as the padding of the last one, and that last quad decodes alone (its
/// last symbol has no stray bits). Then decoding it chunk by chunk gives
/// the very bytes decoding it whole gives.
fn decodes_whole(b64: &str) -> bool {
    let b = b64.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take(2).take_while(|c| **c == b'=').count();
    let body = &b[..b.len() - pad];
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    body.iter().all(alphabet)
        && base64::engine::general_purpose::STANDARD
            .decode(&b[b.len() - 4..])
            .is_ok()
}

/// Decode base64 that [`decodes_whole`] into its own buffer: each chunk is
/// copied aside, then its bytes written where the base64 already read was.
fn decode_in_place(mut buf: Vec<u8>) -> Result<Vec<u8>, CodecError> {
    // Whole quads, so that only the last chunk can hold padding.
    const CHUNK: usize = 48 * 1024;
    let mut scratch = vec![0u8; CHUNK.min(buf.len())];
    let (mut read, mut written) = (0, 0);
    while read < buf.len() {
        let n = CHUNK.min(buf.len() - read);
        scratch[..n].copy_from_slice(&buf[read..read + n]);
        // The chunk's bytes fit where it was read from: 3 bytes per quad.
        let room = &mut buf[written..written + n / 4 * 3];
        let got = base64::engine::general_purpose::STANDARD
            .decode_slice(&scratch[..n], room)
            .map_err(|e| match e {
                base64::DecodeSliceError::DecodeError(e) => {
                    base64_error(e, std::str::from_utf8(&scratch[..n]).unwrap_or_default())
                }
                base64::DecodeSliceError::OutputSliceTooSmall => CodecError::Padding,
            })?;
        read += n;
        written += got;
    }
    buf.truncate(written);
    buf.shrink_to_fit();
    Ok(buf)
}

/// The error of the base64 engine on `b64`, named with its character.
fn base64_error(e: base64::DecodeError, b64: &str) -> CodecError {
    use base64::DecodeError as D;
    // The character that holds byte `offset` (the engine counts bytes).
    let ch_at = |offset: usize| {
        b64.char_indices()
            .take_while(|(i, _)| *i <= offset)
            .last()
            .map_or('?', |(_, c)| c)
    };
    match e {
        D::InvalidByte(offset, _) => CodecError::StrayChar {
            ch: ch_at(offset),
            offset,
        },
        D::InvalidLength(len) => CodecError::Length { len },
        D::InvalidLastSymbol(offset, _) => CodecError::LastSymbol {
            ch: ch_at(offset),
            offset,
        },
        D::InvalidPadding => CodecError::Padding,
    }
}

/// The record in the bytes a base64 of `b64_len` characters decoded to.
fn parse_json(
    bytes: Vec<u8>,
    b64_len: usize,
) -> Result<(Record, Vec<DuplicateKey>, String), CodecError> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let b = e.as_bytes();
        CodecError::NotUtf8(String::from_utf8_lossy(&b[..b.len().min(24)]).into_owned())
    })?;
    let not_json = |e: serde_json::Error| {
        if e.classify() == serde_json::error::Category::Eof {
            let tail: String = {
                let t: Vec<char> = text.chars().rev().take(24).collect();
                t.into_iter().rev().collect()
            };
            CodecError::CutShort {
                b64_len,
                json_len: text.len(),
                tail,
            }
        } else {
            CodecError::NotJson {
                preview: text.chars().take(32).collect(),
                err: e.to_string(),
            }
        }
    };
    // First the keys (borrowing the text), then the value.
    let dups = duplicate_keys(&text).map_err(not_json)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(not_json)?;
    match value {
        serde_json::Value::Object(m) => Ok((m, dups, text)),
        serde_json::Value::Array(_) => Err(CodecError::NotObject("an array")),
        serde_json::Value::String(_) => Err(CodecError::NotObject("a string")),
        serde_json::Value::Number(_) => Err(CodecError::NotObject("a number")),
        serde_json::Value::Bool(_) => Err(CodecError::NotObject("a boolean")),
        serde_json::Value::Null => Err(CodecError::NotObject("null")),
    }
}

/// Encode a record as Cinder does: Python `json.dumps`, then base64;
/// `wrap` = Some(76) reproduces Kilo/Liberty's `base64.encodestring`
/// (76-column lines, each ending in `\n`).
pub fn encode_url(record: &Record, wrap: Option<usize>) -> String {
    encode_json(&super::pyjson::dumps_object(record), wrap)
}

/// Base64 of a JSON text, wrapped as [`encode_url`] does. Wrapped lines
/// are written as the base64 is made, a chunk at a time: the output is
/// the only big buffer.
pub fn encode_json(json: &str, wrap: Option<usize>) -> String {
    let b64_len = json.len().div_ceil(3) * 4;
    let lines = wrap.filter(|w| *w > 0).map_or(0, |w| b64_len / w + 1);
    let mut out = String::with_capacity(b64_len + lines);
    encode_json_into(&mut out, json, wrap);
    out
}

/// [`encode_json`] appended to `out`.
pub fn encode_json_into(out: &mut String, json: &str, wrap: Option<usize>) {
    let engine = base64::engine::general_purpose::STANDARD;
    let w = match wrap {
        Some(w) if w > 0 => w,
        _ => return engine.encode_string(json.as_bytes(), out),
    };
    // Whole groups of 3 bytes: the chunks' base64 joined is the whole's.
    let mut chunk_b64 = String::new();
    let mut column = 0;
    for chunk in json.as_bytes().chunks(48 * 1024) {
        chunk_b64.clear();
        engine.encode_string(chunk, &mut chunk_b64);
        let mut rest = chunk_b64.as_str();
        while !rest.is_empty() {
            // base64 is ASCII: any byte split is a char split.
            let (line, after) = rest.split_at((w - column).min(rest.len()));
            out.push_str(line);
            column += line.len();
            if column == w {
                out.push('\n');
                column = 0;
            }
            rest = after;
        }
    }
    if column > 0 {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn json_object() -> impl Strategy<Value = Record> {
        prop::collection::vec((any::<String>(), json_value()), 0..8)
            .prop_map(|kv| kv.into_iter().collect())
    }

    proptest! {
        #[test]
        fn decode_of_encode_is_identity(rec in json_object(), wrap in prop_oneof![Just(None), Just(Some(76usize))]) {
            let url = encode_url(&rec, wrap);
            prop_assert_eq!(decode_url(&url).unwrap(), rec);
        }

        #[test]
        fn encode_of_decode_gives_back_the_url(rec in json_object()) {
            let url = encode_url(&rec, None);
            let again = encode_url(&decode_url(&url).unwrap(), None);
            prop_assert_eq!(again, url);
            let wrapped = encode_url(&rec, Some(76));
            prop_assert_eq!(encode_url(&decode_url(&wrapped).unwrap(), Some(76)), wrapped);
        }
    }

    /// Base64 text: mostly of the alphabet, with now and then `=` or a
    /// stray character, of any length.
    fn b64ish() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                8 => prop::sample::select(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec()
                ),
                1 => Just(b'='),
                1 => Just(b'*'),
            ],
            0..40,
        )
        .prop_map(|v| String::from_utf8(v).unwrap_or_default())
    }

    proptest! {
        #[test]
        fn decoding_in_place_is_decoding(b64 in b64ish(), rec in json_object()) {
            prop_assert_eq!(decode_compact_owned(b64.clone()), decode_compact(&b64));
            let url = encode_url(&rec, None);
            prop_assert_eq!(decode_compact_owned(url.clone()), decode_compact(&url));
        }

        #[test]
        fn wrapping_is_cutting_the_one_line(len in 0usize..120_000, wrap in 1usize..100) {
            let json: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let one = encode_json(&json, None);
            let mut cut = String::new();
            for line in one.as_bytes().chunks(wrap) {
                cut.push_str(std::str::from_utf8(line).unwrap());
                cut.push('\n');
            }
            prop_assert_eq!(encode_json(&json, Some(wrap)), cut);
        }
    }

    #[test]
    fn big_records_decode_in_place_across_chunks() {
        let mut rec = Record::new();
        for n in [1usize, 2, 3, 100_000, 100_001, 100_002] {
            rec.insert("k".into(), Value::String("é".repeat(n)));
            let url = encode_url(&rec, None);
            assert_eq!(decode_compact_owned(url.clone()), decode_compact(&url));
        }
    }

    #[test]
    fn kilo_wrapping_is_76_columns_with_trailing_newline() {
        let mut rec = Record::new();
        rec.insert("k".into(), Value::String("x".repeat(200)));
        let url = encode_url(&rec, Some(76));
        assert!(url.ends_with('\n'));
        let lines: Vec<&str> = url.lines().collect();
        assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
    }
}
