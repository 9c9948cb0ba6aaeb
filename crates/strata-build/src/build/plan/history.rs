//! Docker's history texts where they are Go's formatting of a value (`%q` of strings,
//! lists and runes): `CMD`, `ENTRYPOINT` and `HEALTHCHECK` write them so.

use crate::dockerfile::{HealthcheckArgs, format_duration};

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(super) fn go_quote_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" "))
}

/// Go's `%q` of an int: a quoted rune.
pub(super) fn go_quote_rune(n: u64) -> String {
    match char::from_u32(n as u32) {
        Some('\x07') => "'\\a'".into(),
        Some('\x08') => "'\\b'".into(),
        Some('\t') => "'\\t'".into(),
        Some('\n') => "'\\n'".into(),
        Some('\x0b') => "'\\v'".into(),
        Some('\x0c') => "'\\f'".into(),
        Some('\r') => "'\\r'".into(),
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if n < 0x20 || n == 0x7f => format!("'\\x{:02x}'", c as u32),
        Some(c) if !c.is_control() => format!("'{c}'"),
        _ => format!("'\\u{n:04x}'"),
    }
}

/// What docker's classic builder writes for `HEALTHCHECK` (Go's `%q` of its struct).
pub(super) fn healthcheck_created_by(h: &HealthcheckArgs) -> String {
    let d = |v: Option<u64>| go_quote(&format_duration(v.unwrap_or(0)));
    format!(
        "HEALTHCHECK &{{{} {} {} {} {}}}",
        go_quote_list(&h.test),
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        go_quote_rune(h.retries.unwrap_or(0))
    )
}
