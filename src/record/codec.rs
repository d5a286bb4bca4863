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
    use base64::DecodeError as D;
    // The character that holds byte `offset` (the engine counts bytes).
    let ch_at = |offset: usize| {
        b64.char_indices()
            .take_while(|(i, _)| *i <= offset)
            .last()
            .map_or('?', |(_, c)| c)
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| match e {
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
        })?;
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
                b64_len: b64.len(),
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

/// Base64 of a JSON text, wrapped as [`encode_url`] does.
pub fn encode_json(json: &str, wrap: Option<usize>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(json.as_bytes());
    match wrap {
        Some(w) if w > 0 => {
            let mut out = String::with_capacity(b64.len() + b64.len() / w + 1);
            for line in b64.as_bytes().chunks(w) {
                // base64 output is ASCII, so any byte split is a char split.
                out.push_str(std::str::from_utf8(line).unwrap_or_default());
                out.push('\n');
            }
            out
        }
        _ => b64,
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
