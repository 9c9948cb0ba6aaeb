//! What a step does, decided without touching the disk: docker's history texts.

use std::collections::BTreeMap;

use strata_spec::Platform;

use crate::dockerfile::{HealthcheckArgs, format_duration};

/// The platform ARGs BuildKit defines: `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
/// `TARGETVARIANT` from the platform built for (`--platform`, else this machine's), and
/// `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` from this machine's.
pub(crate) fn platform_args(target: Option<&Platform>) -> BTreeMap<String, String> {
    let host = Platform::host();
    let target = target.unwrap_or(&host);
    let mut out = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", &host)] {
        let variant = p.variant.clone().unwrap_or_default();
        let full = if variant.is_empty() {
            format!("{}/{}", p.os, p.architecture)
        } else {
            format!("{}/{}/{variant}", p.os, p.architecture)
        };
        out.insert(format!("{prefix}PLATFORM"), full);
        out.insert(format!("{prefix}OS"), p.os.clone());
        out.insert(format!("{prefix}ARCH"), p.architecture.clone());
        out.insert(format!("{prefix}VARIANT"), variant);
    }
    out
}

/// Go's `%q` of a string.
pub(super) fn go_quote(s: &str) -> String {
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

/// `COPY`'s destination made absolute against the working directory (a trailing `/`
/// kept).
pub(super) fn absolute_dest(dest: &str, workdir: Option<&str>) -> String {
    if dest.starts_with('/') {
        return dest.to_owned();
    }
    let wd = workdir.filter(|w| !w.is_empty()).unwrap_or("/");
    let mut out = format!("{}/{dest}", wd.trim_end_matches('/'));
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(
            go_quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"\n".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#
        );
        assert_eq!(go_quote_rune(3), "'\\x03'");
        assert_eq!(go_quote_rune(0), "'\\x00'");
        assert_eq!(go_quote_rune(65), "'A'");
        let h = HealthcheckArgs {
            test: vec!["CMD-SHELL".into(), "curl -f http://localhost/ || exit 1".into()],
            interval: Some(300_000_000_000),
            timeout: Some(3_000_000_000),
            retries: Some(3),
            ..Default::default()
        };
        assert_eq!(
            healthcheck_created_by(&h),
            r#"HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] "5m0s" "3s" "0s" '\x03'}"#
        );
        assert_eq!(absolute_dest(".", Some("/app")), "/app/.");
        assert_eq!(absolute_dest("x/", Some("/app/")), "/app/x/");
        assert_eq!(absolute_dest("/abs", Some("/app")), "/abs");
    }
}
