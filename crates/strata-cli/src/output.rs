//! Printing: JSON, and docker's time formats (tables: `crate::format`).

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use strata_spec::time::parse_rfc3339;

/// Pretty JSON and a newline on stdout, in one write (stdout flushes at each newline:
/// an inspect was hundreds of writes).
pub fn print_json(value: &impl Serialize) -> Result<()> {
    let mut buf = serde_json::to_vec_pretty(value)?;
    buf.push(b'\n');
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// "2 hours ago" for an RFC 3339 time, as docker's `CreatedSince`; empty when there is
/// none, it does not parse, or it is Go's zero time (docker's tables show `N/A` then).
pub fn since(created: &str) -> String {
    match parse_rfc3339(created) {
        Some((secs, _)) if secs != strata_image::inspect::GO_ZERO_TIME => strata_image::time_ago(secs, now()),
        _ => String::new(),
    }
}

/// Docker's `CreatedAt` format (`2024-01-15 10:30:00 +0000 UTC`) of an RFC 3339 time.
pub fn docker_time(created: &str) -> String {
    match parse_rfc3339(created) {
        Some((secs, _)) => {
            let s = strata_spec::time::format_rfc3339(secs, 0);
            format!("{} +0000 UTC", s.trim_end_matches('Z').replacen('T', " ", 1))
        }
        None => String::new(),
    }
}

/// Cut `s` to `max` characters with a trailing `…`, as docker's tables do.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_truncation() {
        assert_eq!(docker_time("2024-01-15T10:30:00.123Z"), "2024-01-15 10:30:00 +0000 UTC");
        assert_eq!(docker_time("not a time"), "");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
