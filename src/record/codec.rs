//! base64 <-> record. The JSON inside is Python's `json.dumps` output; see
//! [`super::pyjson`] for the exact serializer.

use super::Record;
use base64::Engine;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum CodecError {
    #[error("the base64 has a stray character {ch:?} at offset {offset}")]
    StrayChar { ch: char, offset: usize },
    #[error("the base64 is not valid: {0}")]
    Base64(String),
    #[error("the base64 decodes to bytes that are not UTF-8 text (starting {0:?})")]
    NotUtf8(String),
    #[error("the base64 decodes to text that is not JSON ({preview:?}): {err}")]
    NotJson { preview: String, err: String },
    #[error("the base64 decodes to JSON that is not an object but {0}")]
    NotObject(&'static str),
}

/// Decode a backup_url (whitespace inside is ignored) into its record.
pub fn decode_url(url: &str) -> Result<Record, CodecError> {
    let compact: String = url.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| CodecError::Base64(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let b = e.as_bytes();
        CodecError::NotUtf8(String::from_utf8_lossy(&b[..b.len().min(24)]).into_owned())
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CodecError::NotJson {
            preview: text.chars().take(32).collect(),
            err: e.to_string(),
        })?;
    match value {
        serde_json::Value::Object(m) => Ok(m),
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
    let json = super::pyjson::dumps_object(record);
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
