//! Records written by other tools keep their layout.
//!
//! Cinder writes a record with Python's `json.dumps` ([`super::pyjson`]);
//! other tools (a Go SDK, a hand-made script) write compact JSON, raw
//! UTF-8, HTML-escaped `<>&`… The JSON text a record was decoded from is
//! kept, and an edited record is written by patching that text: members
//! whose value did not change keep their bytes, changed values are
//! replaced in place in the text's own style, removed members are cut with
//! their separator, new ones appended. An unedited record re-encodes to
//! exactly the bytes it came from.

use super::Record;
use serde_json::Value;

/// How a JSON text is written, as far as a patch needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Between members: `", "` (Python), `","` (compact), `",\n  "`…
    pub item_sep: String,
    /// Between key and value: `": "` or `":"`.
    pub key_sep: String,
    /// Non-ASCII written as `\uXXXX` (Python's `ensure_ascii`).
    pub ensure_ascii: bool,
    /// `<`, `>`, `&` written as `\u003c`… (Go's encoding/json).
    pub html_escape: bool,
}

impl Layout {
    /// Python's `json.dumps` defaults: what Cinder writes.
    pub fn cinder() -> Self {
        Layout {
            item_sep: ", ".into(),
            key_sep: ": ".into(),
            ensure_ascii: true,
            html_escape: false,
        }
    }

    /// The layout of a JSON object text.
    pub fn detect(text: &str) -> Self {
        let mut l = Layout::cinder();
        if let Some((_, members, _)) = members(text) {
            if let Some(m) = members.first() {
                l.key_sep = text[m.key_end..m.value_start].to_string();
            }
            if let [a, b, ..] = members.as_slice() {
                l.item_sep = text[a.value_end..b.start].to_string();
            }
        }
        l.ensure_ascii = text.is_ascii();
        // Searched in place, not in a lowercased copy: a text can be big.
        l.html_escape = text.match_indices('\\').any(|(i, _)| {
            text.as_bytes().get(i..i + 6).is_some_and(|w| {
                ["\\u003c", "\\u003e", "\\u0026"]
                    .iter()
                    .any(|e| w.eq_ignore_ascii_case(e.as_bytes()))
            })
        });
        l
    }

    /// A value written in this layout (nested containers on one line).
    pub fn write(&self, v: &Value) -> String {
        let mut out = String::new();
        self.write_into(v, &mut out);
        out
    }

    fn write_into(&self, v: &Value, out: &mut String) {
        match v {
            Value::String(s) => self.write_str(s, out),
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(self.item_sep.trim_end_matches(char::is_whitespace));
                        if self.item_sep.starts_with(", ") {
                            out.push(' ');
                        }
                    }
                    self.write_into(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(if self.item_sep.starts_with(", ") {
                            ", "
                        } else {
                            ","
                        });
                    }
                    self.write_str(k, out);
                    out.push_str(&self.key_sep);
                    self.write_into(x, out);
                }
                out.push('}');
            }
            other => out.push_str(&super::pyjson::dumps(other)),
        }
    }

    fn write_str(&self, s: &str, out: &mut String) {
        super::pyjson::write_str_styled(s, out, self.ensure_ascii, self.html_escape);
    }
}

/// One member of a JSON object text: byte offsets into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    key: String,
    /// The key's opening quote.
    start: usize,
    /// Just past the key's closing quote.
    key_end: usize,
    value_start: usize,
    value_end: usize,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Just past the string starting at `i` (a `"`).
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Just past the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The top-level members of an object text: (open brace, members, close brace).
fn members(text: &str) -> Option<(usize, Vec<Member>, usize)> {
    let b = text.as_bytes();
    let open = skip_ws(b, 0);
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = skip_ws(b, open + 1);
    if b.get(i) == Some(&b'}') {
        return Some((open, out, i));
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key: String = serde_json::from_str(&text[i..key_end]).ok()?;
        let colon = skip_ws(b, key_end);
        if b.get(colon) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(b, colon + 1);
        let value_end = value_end(b, value_start)?;
        out.push(Member {
            key,
            start: i,
            key_end,
            value_start,
            value_end,
        });
        let j = skip_ws(b, value_end);
        match b.get(j) {
            Some(b',') => i = skip_ws(b, j + 1),
            Some(b'}') => return Some((open, out, j)),
            _ => return None,
        }
    }
}

/// Whether the JSON text `old` is the value `v`. A string without escapes
/// is compared where it stands, not read into a copy (a description can
/// be tens of MB).
fn same_value(old: &str, v: &Value) -> bool {
    if let (Ok(s), Some(new)) = (serde_json::from_str::<&str>(old), v.as_str()) {
        return s == new;
    }
    serde_json::from_str::<Value>(old).is_ok_and(|old| &old == v)
}

/// The text of `new` written like `original`: see the module doc. `None`
/// when `original` is not an object text this patcher understands.
pub fn patch(original: &str, new: &Record) -> Option<String> {
    patch_cow(original, new).map(std::borrow::Cow::into_owned)
}

/// [`patch`], borrowing `original` when `new` is what it holds, member
/// for member (the record was not edited): no copy of a big text.
pub fn patch_cow<'a>(original: &'a str, new: &Record) -> Option<std::borrow::Cow<'a, str>> {
    let (open, ms, close) = members(original)?;
    let layout = Layout::detect(original);
    // Kept members in their original order, each with its new value text.
    // An unchanged value is borrowed, not copied: a record's description
    // can be tens of MB.
    let mut kept: Vec<(usize, std::borrow::Cow<'_, str>)> = Vec::new(); // (index in ms, value text)
    let mut unchanged = true;
    for (i, m) in ms.iter().enumerate() {
        let Some(v) = new.get(&m.key) else { continue };
        let old_text = &original[m.value_start..m.value_end];
        let same = same_value(old_text, v);
        unchanged &= same;
        kept.push((
            i,
            if same {
                old_text.into()
            } else {
                layout.write(v).into()
            },
        ));
    }
    // Every member kept as it was and none added: the text itself.
    if unchanged && kept.len() == ms.len() && new.keys().all(|k| ms.iter().any(|m| &m.key == k)) {
        return Some(original.into());
    }
    let mut out = String::with_capacity(original.len() + 64);
    out.push_str(&original[..=open]);
    // Whitespace after `{` as written (indented layouts).
    let lead = ms
        .first()
        .map_or("", |m| &original[open + 1..m.start])
        .to_string();
    let mut first = true;
    for (i, value) in &kept {
        let m = &ms[*i];
        if first {
            out.push_str(&lead);
        } else {
            // The separator written before this member, or the usual one.
            match i.checked_sub(1).and_then(|p| ms.get(p)) {
                Some(prev) if kept.iter().any(|(k, _)| k + 1 == *i) => {
                    out.push_str(&original[prev.value_end..m.start])
                }
                _ => out.push_str(&layout.item_sep),
            }
        }
        first = false;
        out.push_str(&original[m.start..m.value_start]);
        out.push_str(value);
    }
    for (k, v) in new {
        if ms.iter().any(|m| &m.key == k) {
            continue;
        }
        if first {
            out.push_str(&lead);
        } else {
            out.push_str(&layout.item_sep);
        }
        first = false;
        out.push_str(&layout.write(&Value::String(k.clone())));
        out.push_str(&layout.key_sep);
        out.push_str(&layout.write(v));
    }
    // Whitespace before `}` as written.
    let tail_start = ms.last().map_or(open + 1, |m| m.value_end);
    out.push_str(&original[tail_start..]);
    let _ = close;
    Some(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(text: &str) -> Record {
        serde_json::from_str(text).unwrap()
    }

    const GO: &str = r#"{"id":"7c2c6d5e-0000-4000-8000-000000000001","parent_id":"","size":1,"display_name":"a\u003cb\u003e \u0026 ü","project_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","metadata":{"k":"v"}}"#;

    #[test]
    fn unchanged_record_is_the_same_bytes_in_any_layout() {
        let pretty = "{\n  \"a\": 1,\n  \"b\": [1, 2]\n}";
        for t in [GO, pretty, r#"{"a": "\u00e9", "b": null}"#, "{}"] {
            assert_eq!(patch(t, &rec(t)).unwrap(), t);
        }
    }

    #[test]
    fn changing_a_value_changes_only_its_bytes() {
        let mut r = rec(GO);
        r.insert(
            "project_id".into(),
            Value::String("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()),
        );
        let out = patch(GO, &r).unwrap();
        assert_eq!(out, GO.replace("aaaaaaaa", "bbbbbbbb"));
    }

    #[test]
    fn removing_and_adding_members_keeps_the_separators() {
        let mut r = rec(GO);
        r.shift_remove("size");
        r.insert("new".into(), Value::String("<x>".into()));
        let out = patch(GO, &r).unwrap();
        assert!(!out.contains("\"size\""));
        assert!(out.ends_with(r#","new":"\u003cx\u003e"}"#), "{out}");
        let back: Record = serde_json::from_str(&out).unwrap();
        assert_eq!(back, r);
        let py = r#"{"a": 1, "b": 2, "c": 3}"#;
        let mut r = rec(py);
        r.shift_remove("a");
        assert_eq!(patch(py, &r).unwrap(), r#"{"b": 2, "c": 3}"#);
        let mut r = rec(py);
        r.shift_remove("c");
        assert_eq!(patch(py, &r).unwrap(), r#"{"a": 1, "b": 2}"#);
    }

    #[test]
    fn layouts_are_detected() {
        let go = Layout::detect(GO);
        assert_eq!((go.item_sep.as_str(), go.key_sep.as_str()), (",", ":"));
        assert!(!go.ensure_ascii);
        assert!(go.html_escape);
        assert_eq!(Layout::detect(r#"{"a": 1, "b": 2}"#), Layout::cinder());
    }
}
