//! Debian version ordering, as `dpkg --compare-versions` (deb-version(7)):
//! `[epoch:]upstream[-revision]`, epochs compared as numbers, then upstream and
//! revision by `verrevcmp`: non-digit runs character by character (`~` before
//! everything, even the end; letters before other characters), digit runs as numbers.

use std::cmp::Ordering;

/// The weight of one character in a non-digit run (dpkg's `order()`).
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// A Debian version split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

fn parse(v: &str) -> Parts<'_> {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(u64::MAX), r),
        _ => (0, v),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    Parts { epoch, upstream, revision }
}

/// Compare two Debian versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse(a), parse(b));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| verrevcmp(a.upstream.as_bytes(), b.upstream.as_bytes()))
        .then_with(|| verrevcmp(a.revision.as_bytes(), b.revision.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::*;

    #[test]
    fn table() {
        for (a, b, want) in [
            ("1:2.0~rc1-1", "2.0-1", Greater),
            ("2.0~rc1-1", "2.0-1", Less),
            ("1.0", "1.0-0", Equal),
            ("1.0~", "1.0", Less),
            ("1.0a", "1.0+", Less),
            ("1.01", "1.1", Equal),
            ("1.0-1", "1.0-1ubuntu0.1", Less),
            ("0:1.2", "1.2", Equal),
        ] {
            assert_eq!(super::compare(a, b), want, "{a} vs {b}");
        }
    }
}
