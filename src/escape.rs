//! One escaper per sink: every string that came from a record, a share or
//! the command line is passed through the escaper of the place it goes to
//! (a shell command line, a terminal, a markdown table) before it is
//! written. JSON output is escaped by its serialiser and needs none of this.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Bytes a POSIX shell word may hold unquoted (none of them is special to
/// sh, bash, dash or zsh in the middle or at the start of an argument).
fn shell_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b)
}

/// Quote one word for a POSIX shell: as it is when every byte is safe,
/// else `'…'` with `'` written `'\''`. The result, pasted into sh or bash,
/// is exactly one word whose value is `s`, whatever `s` holds (`;`, `$(…)`,
/// backticks, newlines, quotes).
pub fn shell(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && s.bytes().all(shell_safe) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(format!("'{}'", s.replace('\'', r"'\''")))
}

/// A command line: every word quoted with [`shell`], joined by spaces.
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&shell(w.as_ref()));
    }
    out
}

/// Characters a terminal would act on rather than show: C0 controls
/// (newline and tab included: a field is shown on its line), DEL, C1
/// controls, and the bidirectional overrides, embeddings and isolates
/// that reorder what is shown.
fn terminal_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{200e}' | '\u{200f}' | '\u{061c}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A string as a terminal should show it: every control character and
/// bidi control becomes a visible escape (`\n`, `\t`, `\x1b`, `\u{202e}`),
/// and a backslash that could be read as the start of one is doubled.
/// Strings with nothing to escape are borrowed as they are.
pub fn terminal(s: &str) -> Cow<'_, str> {
    terminal_with(s, true)
}

/// A message as a terminal should show it, when the message already
/// quotes values Rust's `{:?}` way (`"a\"b"`, `"\u{1b}"`): every control
/// and bidi character escaped as [`terminal`] does, but backslashes left
/// as they are, since doubling them would double the message's own
/// escapes. For error and finding messages; a bare value uses [`terminal`].
pub fn terminal_message(s: &str) -> Cow<'_, str> {
    terminal_with(s, false)
}

fn terminal_with(s: &str, backslash: bool) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| terminal_unsafe(c) || (backslash && c == '\\'))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' if backslash => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && terminal_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if terminal_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A string as one markdown table cell or inline text: terminal controls
/// escaped as [`terminal`] does, then every character markdown could read
/// as structure (`|` that ends a cell, backticks, emphasis, links and
/// images, HTML, a leading `#`, `>`, `-`, `+` or `1.`) backslash-escaped.
/// The result stays on one line.
pub fn markdown(s: &str) -> String {
    let t = terminal(s);
    let mut out = String::with_capacity(t.len() + 8);
    for (i, c) in t.chars().enumerate() {
        let structural = matches!(
            c,
            '|' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '!' | '#' | '~' | '&'
        ) || (i == 0 && matches!(c, '-' | '+' | '='));
        if structural {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A string as a markdown code span (an id, a service name): in backticks
/// when every character is one that cannot end the span or the cell
/// (letters, digits, `-_.:/@+=,`); anything else is written as escaped text
/// ([`markdown`]), since nothing can be escaped inside a code span.
pub fn markdown_code(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+=,".contains(c));
    if plain { format!("`{s}`") } else { markdown(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_need_no_quote_when_safe() {
        assert_eq!(shell("nfs"), "nfs");
        assert_eq!(
            shell("cinder.backup.drivers.nfs.NFSBackupDriver"),
            "cinder.backup.drivers.nfs.NFSBackupDriver"
        );
        assert_eq!(shell(""), "''");
        assert_eq!(shell("a b"), "'a b'");
        assert_eq!(shell("it's"), r"'it'\''s'");
    }

    /// What the shell makes of a quoted word is the word itself, whatever
    /// it holds: run through a real sh.
    #[test]
    fn shell_quoting_survives_a_real_shell() {
        let hostile = [
            "nfs; touch /tmp/cbr-pwned; echo",
            "$(id)",
            "`id`",
            "a'b\"c",
            "line\nbreak",
            "*",
            "~root",
            "-n",
            "!x",
            "tab\there",
            "\u{1b}[2J",
        ];
        for w in hostile {
            let line = format!("printf '%s' {}", shell(w));
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), w, "{line}");
        }
    }

    #[test]
    fn shell_line_quotes_every_word() {
        assert_eq!(
            shell_line(&["cinder", "backup-import", "a;b", "eyJ="]),
            "cinder backup-import 'a;b' eyJ="
        );
    }

    #[test]
    fn terminal_shows_controls_and_bidi_as_escapes() {
        assert_eq!(terminal("plain name"), "plain name");
        assert!(matches!(terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(terminal("a\nb"), "a\\nb");
        assert_eq!(terminal("\u{1b}]0;pwned\u{7}"), "\\x1b]0;pwned\\x07");
        assert_eq!(terminal("x\u{9b}y\u{7f}"), "x\\x9by\\x7f");
        assert_eq!(terminal("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(terminal("c:\\x1b"), "c:\\\\x1b");
        assert_eq!(terminal("über"), "über");
        assert_eq!(
            terminal_message("ending \"{\\\"stat\"\u{1b}"),
            "ending \"{\\\"stat\"\\x1b"
        );
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let s = char::from_u32(c).map(String::from).unwrap_or_default();
            assert!(terminal(&s).chars().all(|c| !c.is_control()), "{c:#x}");
        }
    }

    #[test]
    fn markdown_cannot_forge_rows_headings_or_links() {
        assert_eq!(markdown("a|b"), "a\\|b");
        assert_eq!(markdown("# Title"), "\\# Title");
        assert_eq!(
            markdown("![x](http://e/i.png)"),
            "\\!\\[x\\]\\(http://e/i.png\\)"
        );
        assert_eq!(markdown("`code`"), "\\`code\\`");
        assert_eq!(markdown("a\n| forged |"), "a\\n\\| forged \\|");
        assert_eq!(markdown("<script>"), "\\<script\\>");
        assert_eq!(
            markdown("5e3d24d4-0659-43cf-b107-c4e9be24598c"),
            "5e3d24d4-0659-43cf-b107-c4e9be24598c"
        );
        assert!(!markdown("x\u{1b}[31m").contains('\u{1b}'));
    }

    #[test]
    fn markdown_code_spans_only_what_cannot_leave_them() {
        assert_eq!(
            markdown_code("5e3d24d4-0659-43cf-b107-c4e9be24598c"),
            "`5e3d24d4-0659-43cf-b107-c4e9be24598c`"
        );
        assert_eq!(
            markdown_code("cinder.backup.drivers.nfs"),
            "`cinder.backup.drivers.nfs`"
        );
        assert_eq!(markdown_code("a` | b"), "a\\` \\| b");
        assert_eq!(markdown_code(""), "");
        assert!(!markdown_code("x\n| forged |").contains('\n'));
    }
}
