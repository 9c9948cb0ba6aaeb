//! Printing: aligned tables like docker's, JSON, and docker's time formats.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use strata_spec::time::parse_rfc3339;

/// A table laid out as docker's tabwriter does it (`tabwriter.NewWriter(out, 10, 1, 3,
/// ' ', 0)`): each column but the last as wide as its widest cell plus three spaces, and
/// at least ten characters; trailing spaces dropped.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// docker's tabwriter: the least width of a column, padding included.
const MIN_WIDTH: usize = 10;
/// docker's tabwriter: spaces after the widest cell of a column.
const PADDING: usize = 3;

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|s| (*s).to_owned()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self, out: &mut impl Write) -> Result<()> {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                line.push_str(c);
                if i + 1 < n {
                    let width = (widths.get(i).copied().unwrap_or(0) + PADDING).max(MIN_WIDTH);
                    line.extend(std::iter::repeat_n(' ', width.saturating_sub(c.chars().count())));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Pretty JSON and a newline on stdout.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
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
    fn tables_pad_like_docker() {
        let mut t = Table::new(&["REPOSITORY", "TAG", "SIZE"]);
        t.row(vec!["tomcat02".into(), "1.0".into(), "12kB".into()]);
        let mut out = Vec::new();
        t.print(&mut out).unwrap();
        // As docker prints it: `TAG` and `1.0` padded to docker's least column width.
        assert_eq!(String::from_utf8(out).unwrap(), "REPOSITORY   TAG       SIZE\ntomcat02     1.0       12kB\n");
    }

    #[test]
    fn times_and_truncation() {
        assert_eq!(docker_time("2024-01-15T10:30:00.123Z"), "2024-01-15 10:30:00 +0000 UTC");
        assert_eq!(docker_time("not a time"), "");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
