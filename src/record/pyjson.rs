//! A JSON serializer that writes exactly what Python's `json.dumps(obj)`
//! writes with default settings: separators `", "` and `": "`, no indent,
//! keys in insertion order, `ensure_ascii=True` (non-ASCII as `\uXXXX`,
//! astral characters as surrogate pairs), Python's escapes.

use serde_json::Value;

/// `json.dumps` of a JSON object.
pub fn dumps_object(map: &super::Record) -> String {
    let mut out = String::new();
    write_object(map, &mut out);
    out
}

/// `json.dumps` of any JSON value.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_object(map: &super::Record, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(k, out);
        out.push_str(": ");
        write_value(v, out);
    }
    out.push('}');
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // arbitrary_precision keeps the number's text as it was parsed.
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(v, out);
            }
            out.push(']');
        }
        Value::Object(m) => write_object(m, out),
    }
}

fn write_str(s: &str, out: &mut String) {
    write_str_styled(s, out, true, false);
}

/// A JSON string as a writer of a given style writes it: Python's
/// `json.dumps` (`ensure_ascii`: anything past `~` as `\uXXXX`, astral
/// characters as surrogate pairs, `\b` `\f` short), or raw UTF-8; with
/// `html_escape`, `<` `>` `&` as `\u003c`… and `\b` `\f` long, as Go's
/// encoding/json writes them.
pub fn write_str_styled(s: &str, out: &mut String, ensure_ascii: bool, html_escape: bool) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' if !html_escape => out.push_str("\\b"),
            '\u{0c}' if !html_escape => out.push_str("\\f"),
            '<' | '>' | '&' if html_escape => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings Python 3.11's `json.dumps` produced; parsing then dumping
    /// them must give back the same bytes.
    const PYTHON: &[&str] = &[
        r#"{"display_name": "caf\u00e9 \u65e5\u672c", "d": "quote \" back \\ slash"}"#,
        r#"{"ctl": "\u0000\u0001\u001f\u007f \t\n\r\b\f", "astral": "\ud83d\ude00 \ud800\udf48"}"#,
        r#"{"nested": {"a": [1, 2.5, null, true, false, -3, 1e+100, 12345678901234567890]}, "empty": {}, "list": []}"#,
        r#"{"driver_info": {}, "id": "a0f6583f-d913-426d-a8e2-d262262a433b", "size": 1, "deleted": false}"#,
    ];

    #[test]
    fn dumps_matches_python_byte_for_byte() {
        for s in PYTHON {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            assert_eq!(&dumps(&v), s);
        }
    }

    #[test]
    fn non_ascii_is_escaped_like_ensure_ascii() {
        let v = serde_json::json!({"n": "é😀\u{7f}~"});
        assert_eq!(dumps(&v), r#"{"n": "\u00e9\ud83d\ude00\u007f~"}"#);
    }
}
