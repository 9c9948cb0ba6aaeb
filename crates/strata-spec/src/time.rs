//! RFC 3339 timestamps as image configs write them, without a date-time dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Format seconds and nanoseconds since the Unix epoch as RFC 3339 UTC
/// (`2023-11-14T22:13:20Z`, with up to nine fraction digits when `nanos` is not zero).
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let mut s = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Format a `SystemTime` as RFC 3339 UTC.
pub fn format_system_time(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format_rfc3339(i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
        Err(e) => {
            let d: Duration = e.duration();
            let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                format_rfc3339(secs, 0)
            } else {
                format_rfc3339(secs - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

/// Parse an RFC 3339 timestamp (`Z` or `±hh:mm` offset, optional fraction) into seconds
/// and nanoseconds since the Unix epoch. `None` when it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let mut frac: String = digits.chars().take(9).collect();
        while frac.len() < 9 {
            frac.push('0');
        }
        nanos = frac.parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset, nanos))
}

/// Seconds since the Unix epoch of a UTC civil time (proleptic Gregorian), or `None`
/// when a field is out of range (month 1-12, the day within that month, hour 0-23,
/// minute 0-59, second 0-60 for a leap second). For parsers of other date formats (HTTP
/// dates, for one) so they share this calendar arithmetic.
pub fn unix_seconds(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || !(0..=23).contains(&hour) || !(0..=59).contains(&minute) {
        return None;
    }
    if !(0..=60).contains(&second) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm, public domain).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_checks_each_field() {
        assert_eq!(unix_seconds(2023, 11, 14, 22, 13, 20), Some(1_700_000_000));
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_seconds(2000, 2, 29, 0, 0, 0), Some(951_782_400));
        for bad in [(1900, 2, 29, 0, 0, 0), (2023, 4, 31, 0, 0, 0), (2023, 13, 1, 0, 0, 0), (2023, 1, 0, 0, 0, 0)] {
            assert_eq!(unix_seconds(bad.0, bad.1, bad.2, bad.3, bad.4, bad.5), None, "{bad:?}");
        }
        assert_eq!(unix_seconds(2023, 1, 1, 24, 0, 0), None);
        assert_eq!(unix_seconds(2023, 1, 1, 0, 60, 0), None);
        assert_eq!(unix_seconds(2023, 1, 1, 0, 0, 61), None);
    }

    #[test]
    fn formats_and_parses_known_instants() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(format_rfc3339(951_782_400, 500_000_000), "2000-02-29T00:00:00.5Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some((1_700_000_000, 0)));
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.25+01:00"), Some((1_700_000_000, 250_000_000)));
        assert_eq!(parse_rfc3339("2024-01-24T19:56:15.123456789Z"), Some((1_706_126_175, 123_456_789)));
        for bad in ["", "2023-11-14", "2023-13-01T00:00:00Z", "2023-11-14T22:13:20", "2023-11-14T22:13:20.Z"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_over_a_range() {
        for secs in (-62_000_000_000i64..253_000_000_000).step_by(987_654_321) {
            assert_eq!(parse_rfc3339(&format_rfc3339(secs, 7)), Some((secs, 7)), "{secs}");
        }
    }
}
