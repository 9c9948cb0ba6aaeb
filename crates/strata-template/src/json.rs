//! JSON as Go's `encoding/json` writes it: what docker's `json` template function and
//! `--format json` print (`100` not `100.0`, `1e+21`, `\u003c` when HTML is escaped).

use serde_json::{Number, Value};

/// `value` as compact JSON, the way Go encodes it. `escape_html`: write `<`, `>` and `&`
/// as `\u003c`, `\u003e`, `\u0026` (Go's `json.Marshal`; docker's `json` function does
/// not escape, except for listing rows, which marshal themselves).
pub fn to_go_json(value: &Value, escape_html: bool) -> String {
    let mut out = String::new();
    write(&mut out, value, escape_html);
    out
}

fn write(out: &mut String, v: &Value, html: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s, html),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, e, html);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k, html);
                out.push(':');
                write(out, e, html);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if n.is_i64() || n.is_u64() {
        out.push_str(&n.to_string());
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    // Go: plain decimals, exponent form below 1e-6 and from 1e21, exponent without padding.
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e = e.strip_prefix('-').map_or_else(|| format!("+{e}"), |e| format!("-{e}"));
        out.push_str(&format!("{m}e{e}"));
    } else {
        out.push_str(&format!("{f}"));
    }
}

fn write_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if html => out.push_str(&format!("\\u{:04x}", c as u32)),
            // Go escapes these two even without HTML escaping (JavaScript line terminators).
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_like_go() {
        let v = json!({"b": [1, 1.5, 100.0, 1e21, 1e-7, null, true], "a": "<x>&\u{1}\u{2028}"});
        assert_eq!(to_go_json(&v, false), r#"{"a":"<x>&\u0001\u2028","b":[1,1.5,100,1e+21,1e-7,null,true]}"#);
        assert_eq!(to_go_json(&json!("<>&"), true), r#""\u003c\u003e\u0026""#);
    }
}
