//! `images --filter` (and the `REPOSITORY[:TAG]` argument), as docker's daemon reads
//! them: `dangling=true|false`, `reference=PATTERN` (Go's `path.Match` globs on the
//! familiar name, with or without the tag), `before=IMAGE`, `since=IMAGE`, `label=KEY`,
//! `label=KEY=VALUE`. Different keys must all hold; several `reference` patterns match
//! when any does; several `label`s (and `before`s, `since`s) must all hold.

use anyhow::{Result, bail};

/// One `--filter` argument, `name=value` (the name lowercased, both trimmed, as docker's
/// flag parser does).
pub fn parse_filter(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.trim().to_lowercase(), v.trim().to_owned())),
        None => Err("bad format of filter (expected name=value)".into()),
    }
}

/// The filters of one `images` run, checked.
#[derive(Debug, Default)]
pub struct ImageFilters {
    /// `Some(true)`: only dangling images; `Some(false)`: none.
    pub dangling: Option<bool>,
    /// Glob patterns; a row shows when one matches its reference.
    pub references: Vec<String>,
    /// Images that must be older than the image this resolves to.
    pub before: Vec<String>,
    /// Images that must be newer.
    pub since: Vec<String>,
    /// `KEY` or `KEY=VALUE`.
    pub labels: Vec<String>,
}

impl ImageFilters {
    /// Check the filters (`Invalid filter 'x'` for a name docker does not know).
    pub fn new(filters: &[(String, String)], reference: Option<&str>) -> Result<ImageFilters> {
        let mut f = ImageFilters::default();
        let mut dangling = Vec::new();
        for (name, value) in filters {
            let list = match name.as_str() {
                "dangling" => &mut dangling,
                "reference" => &mut f.references,
                "before" => &mut f.before,
                "since" => &mut f.since,
                "label" => &mut f.labels,
                _ => bail!("Invalid filter '{name}'"),
            };
            // docker keeps the values of a name as a set.
            if !list.contains(value) {
                list.push(value.clone());
            }
        }
        if let Some(r) = reference {
            f.references.push(r.to_owned());
        }
        if !dangling.is_empty() {
            f.dangling = if dangling.iter().any(|v| v == "true") {
                Some(true)
            } else if dangling.iter().all(|v| v == "false") {
                Some(false)
            } else {
                bail!("Invalid filter 'dangling=[{}]'", dangling.join(" "))
            };
        }
        Ok(f)
    }

    /// Whether a row of repository `repository` and tag `tag` passes the reference
    /// patterns: a pattern matches `REPOSITORY:TAG` or `REPOSITORY`.
    pub fn reference_matches(&self, repository: &str, tag: &str) -> Result<bool> {
        if self.references.is_empty() {
            return Ok(true);
        }
        let full = format!("{repository}:{tag}");
        for pattern in &self.references {
            if path_match(pattern, &full)? || path_match(pattern, repository)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether an image with these labels passes the label filters.
    pub fn labels_match(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(l),
        })
    }
}

/// A malformed glob (docker: `syntax error in pattern`).
fn bad_pattern() -> anyhow::Error {
    anyhow::anyhow!("syntax error in pattern")
}

/// Go's `path.Match`: `*` (any run of characters but `/`), `?` (one character but `/`),
/// `[a-z]`, `[^...]`, `\` escapes. A malformed pattern is an error even when an earlier
/// part already failed to match, as in Go.
pub fn path_match(pattern: &str, name: &str) -> Result<bool> {
    let mut pattern = pattern;
    let mut name = name;
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest, unless it has a `/`.
            return Ok(!name.contains('/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Try the chunk further on, never skipping a `/`.
            for (i, c) in name.char_indices() {
                if c == '/' {
                    break;
                }
                let (t, ok) = match_chunk(chunk, &name[i + c.len_utf8()..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
            }
        }
        // No match: the rest of the pattern must still be well formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, "")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Leading stars, then the chunk up to the next star outside `[...]`.
fn scan_chunk(pattern: &str) -> (bool, &str, &str) {
    let trimmed = pattern.trim_start_matches('*');
    let star = trimmed.len() != pattern.len();
    let bytes = trimmed.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &trimmed[..i], &trimmed[i..])
}

/// Match `chunk` (no stars) at the start of `s`: what is left of `s`, and whether it
/// matched. Keeps checking the chunk's syntax after a mismatch.
fn match_chunk<'s>(chunk: &str, s: &'s str) -> Result<(&'s str, bool)> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(c) = chunk.chars().next() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            '[' => {
                let mut r = '\0';
                if !failed && let Some(sc) = s.chars().next() {
                    r = sc;
                    s = &s[sc.len_utf8()..];
                }
                chunk = &chunk[1..];
                let negated = chunk.starts_with('^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.starts_with(']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if let Some(rest) = chunk.strip_prefix('-') {
                        let (h, rest) = get_esc(rest)?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed && let Some(sc) = s.chars().next() {
                    if sc == '/' {
                        failed = true;
                    }
                    s = &s[sc.len_utf8()..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let mut lit = c;
                if c == '\\' {
                    chunk = &chunk[1..];
                    lit = chunk.chars().next().ok_or_else(bad_pattern)?;
                }
                if !failed {
                    match s.chars().next() {
                        Some(sc) if sc == lit => s = &s[sc.len_utf8()..],
                        _ => failed = true,
                    }
                }
                chunk = &chunk[lit.len_utf8()..];
            }
        }
    }
    Ok(if failed { ("", false) } else { (s, true) })
}

/// One character of a `[...]` class, maybe escaped; the class must go on after it.
fn get_esc(chunk: &str) -> Result<(char, &str)> {
    let mut rest = chunk;
    if rest.is_empty() || rest.starts_with('-') || rest.starts_with(']') {
        return Err(bad_pattern());
    }
    if let Some(r) = rest.strip_prefix('\\') {
        rest = r;
    }
    let c = rest.chars().next().ok_or_else(bad_pattern)?;
    let rest = &rest[c.len_utf8()..];
    if rest.is_empty() {
        return Err(bad_pattern());
    }
    Ok((c, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_go() {
        for (pattern, name, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a?b", "a☺b", true),
            ("fmtx-*:[12]", "fmtx-probe:1", true),
            ("*:2", "fmtx-probe:1", false),
            ("localhost:5000/*", "localhost:5000/x", true),
        ] {
            assert_eq!(path_match(pattern, name).unwrap(), want, "{pattern} {name}");
        }
        for bad in ["[", "a[", "[]", "[-]", "[x-]", "a\\", "[a-", "*x["] {
            assert!(path_match(bad, "zzz").is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_are_checked_like_docker() {
        let f = |args: &[(&str, &str)]| {
            let v: Vec<(String, String)> = args.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            ImageFilters::new(&v, None).map_err(|e| e.to_string())
        };
        assert_eq!(f(&[("nope", "1")]).unwrap_err(), "Invalid filter 'nope'");
        assert_eq!(f(&[("dangling", "yes")]).unwrap_err(), "Invalid filter 'dangling=[yes]'");
        assert_eq!(f(&[("dangling", "true"), ("dangling", "false")]).unwrap().dangling, Some(true));
        assert_eq!(f(&[("dangling", "false")]).unwrap().dangling, Some(false));
        assert_eq!(parse_filter(" Label = a=b ").unwrap(), ("label".into(), "a=b".into()));
        assert!(parse_filter("x").is_err());
        let labels = f(&[("label", "a"), ("label", "b=2")]).unwrap();
        let mut have = std::collections::BTreeMap::new();
        have.insert("a".to_owned(), "1".to_owned());
        assert!(!labels.labels_match(&have));
        have.insert("b".to_owned(), "2".to_owned());
        assert!(labels.labels_match(&have));
        let refs = f(&[("reference", "fmtx-probe:1"), ("reference", "*:2")]).unwrap();
        assert!(refs.reference_matches("fmtx-probe", "2").unwrap());
        assert!(refs.reference_matches("fmtx-probe", "1").unwrap());
        assert!(!refs.reference_matches("other", "1").unwrap());
    }
}
