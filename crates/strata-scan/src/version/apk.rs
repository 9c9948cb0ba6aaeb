//! Alpine (apk) version ordering, after apk-tools' `apk_version_compare`:
//! `1.2.3a_rc4_p1-r5` is numbers separated by dots, an optional letter, suffixes
//! (`_alpha` < `_beta` < `_pre` < `_rc` < none < `_cvs` < `_svn` < `_git` < `_hg` <
//! `_p`), each with an optional number, and a package revision `-rN`.

use std::cmp::Ordering;

/// One token, in the order apk compares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    /// A pre-release suffix (`_alpha` ... `_rc`) with its rank and number.
    Pre(u8, u64),
    /// The end of the version.
    End,
    /// The `-r` revision.
    Revision(u64),
    /// A post-release suffix (`_cvs` ... `_p`) with its rank and number.
    Post(u8, u64),
    /// A letter after the numbers.
    Letter(u8),
    /// A number (the first compared as an integer; after a dot, one with a leading zero
    /// compares as a decimal fraction, as apk does).
    Number(u64, Option<String>),
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or(u64::MAX)
}

fn tokens(v: &str) -> Vec<Token> {
    let (v, rev) = match v.rsplit_once("-r") {
        Some((a, r)) if r.bytes().all(|c| c.is_ascii_digit()) && !r.is_empty() => (a, Some(num(r))),
        _ => (v, None),
    };
    let (main, suffixes) = v.split_once('_').map_or((v, ""), |(a, s)| (a, s));
    let mut out = Vec::new();
    let mut first = true;
    for part in main.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        let rest = &part[digits.len()..];
        if !digits.is_empty() {
            let frac = (!first && digits.starts_with('0') && digits.len() > 1).then(|| digits.clone());
            out.push(Token::Number(num(&digits), frac));
        }
        first = false;
        if let Some(c) = rest.bytes().next() {
            out.push(Token::Letter(c));
        }
    }
    for s in suffixes.split('_').filter(|s| !s.is_empty()) {
        let name: String = s.chars().take_while(char::is_ascii_alphabetic).collect();
        let n = num(&s[name.len()..]).min(if s.len() == name.len() { 0 } else { u64::MAX });
        let t = match name.as_str() {
            "alpha" => Token::Pre(0, n),
            "beta" => Token::Pre(1, n),
            "pre" => Token::Pre(2, n),
            "rc" => Token::Pre(3, n),
            "cvs" => Token::Post(0, n),
            "svn" => Token::Post(1, n),
            "git" => Token::Post(2, n),
            "hg" => Token::Post(3, n),
            _ => Token::Post(4, n),
        };
        out.push(t);
    }
    if let Some(r) = rev {
        out.push(Token::Revision(r));
    }
    out
}

fn cmp_number(a: (&u64, &Option<String>), b: (&u64, &Option<String>)) -> Ordering {
    match (a, b) {
        ((x, None), (y, None)) => x.cmp(y),
        // A leading zero after a dot: compare as decimal fractions (digit strings).
        ((x, fx), (y, fy)) => {
            let fx = fx.clone().unwrap_or_else(|| x.to_string());
            let fy = fy.clone().unwrap_or_else(|| y.to_string());
            fx.cmp(&fy)
        }
    }
}

/// Compare two apk versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ta, tb) = (tokens(a), tokens(b));
    for i in 0..ta.len().max(tb.len()) {
        let x = ta.get(i).unwrap_or(&Token::End);
        let y = tb.get(i).unwrap_or(&Token::End);
        let o = match (x, y) {
            (Token::Number(x, fx), Token::Number(y, fy)) => cmp_number((x, fx), (y, fy)),
            // After the numbers: a letter is newer than the end; the end is newer than a
            // pre-release suffix and older than a revision, which is older than a post-release suffix.
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::*;

    #[test]
    fn table() {
        for (a, b, want) in [
            ("1.2.3-r0", "1.2.3-r1", Less),
            ("1.2.3_rc1-r0", "1.2.3-r0", Less),
            ("1.2.3_p1-r0", "1.2.3-r0", Greater),
            ("1.2.3a-r0", "1.2.3-r0", Greater),
            ("1.2.10", "1.2.9", Greater),
            ("1.2_alpha", "1.2_beta", Less),
            ("1.2.4_git20230717-r4", "1.2.4-r4", Greater),
            ("3.0.12-r0", "3.0.12-r0", Equal),
            ("1.0", "1.0.1", Less),
        ] {
            assert_eq!(super::compare(a, b), want, "{a} vs {b}");
        }
    }
}
