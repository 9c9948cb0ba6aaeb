//! `.dockerignore` patterns and the glob matching `COPY` wildcards use, with docker's
//! rules (`fileutils.PatternMatcher` and Go's `filepath.Match`).

/// A pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}: {pattern:?}: {reason}")]
pub struct IgnoreError {
    /// The line (1-based).
    pub line: usize,
    /// The pattern.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// Cleaned, without the leading `!` and `/`.
    text: String,
    exclusion: bool,
}

/// The patterns of a `.dockerignore` file.
///
/// A path is ignored when the last pattern that matches it (or one of its parent
/// directories) is not an exception (`!pattern`). `*` and `?` do not cross `/`, `**`
/// matches any number of directories, `[a-z]` classes and `\` escapes work as in Go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Parse the text of a `.dockerignore` file: one pattern per line, `#` comments,
    /// blank lines skipped, surrounding white space trimmed.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(b) => (true, b.trim()),
                None => (false, line),
            };
            let text = clean(body);
            // `.` or `/` ignores the whole context, as docker's cleaning makes it; an
            // exception for it means nothing.
            if (text.is_empty() || text == ".") && exclusion {
                continue;
            }
            // Check the syntax now, so that a bad class is an error with its line.
            glob_match(&text, "", true).map_err(|reason| IgnoreError {
                line: i + 1,
                pattern: raw.to_owned(),
                reason,
            })?;
            patterns.push(Pattern { text, exclusion });
        }
        Ok(Ignore { patterns })
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated) is ignored.
    pub fn is_ignored(&self, path: &str) -> bool {
        let path = clean(path);
        let mut ignored = false;
        for p in &self.patterns {
            if p.exclusion != ignored {
                // Only a pattern that could flip the answer needs matching.
                continue;
            }
            if matches_or_parent(&p.text, &path) {
                ignored = !p.exclusion;
            }
        }
        ignored
    }

    /// Whether a directory's contents may be re-included by an exception even though the
    /// directory itself is ignored (then the walk must go into it).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

fn matches_or_parent(pattern: &str, path: &str) -> bool {
    if pattern == "." || pattern.is_empty() {
        return true;
    }
    if glob_match(pattern, path, true).unwrap_or(false) {
        return true;
    }
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if glob_match(pattern, p, true).unwrap_or(false) {
            return true;
        }
    }
    false
}

/// Clean a `/`-separated path: no leading `/` or `./`, no `.` components, `..` folded.
pub(crate) fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() { ".".to_owned() } else { parts.join("/") }
}

/// Match `name` against `pattern`. With `double_star`, a `**` component matches any
/// number of path components (`.dockerignore`); without, `**` is two `*` (`COPY`
/// wildcards, Go's `filepath.Match`). An error for a malformed pattern.
pub(crate) fn glob_match(pattern: &str, name: &str, double_star: bool) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let mut syntax_ok = true;
    let r = m(&p, &n, double_star, &mut syntax_ok);
    // Check the whole pattern's syntax even when matching stopped early.
    check_syntax(&p)?;
    Ok(r && syntax_ok)
}

fn check_syntax(p: &[char]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("trailing escape".into());
                }
                i += 2;
            }
            '[' => {
                let end = class_end(p, i).ok_or("unterminated character class")?;
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Index of the `]` closing the class that opens at `start`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') || p.get(i) == Some(&'!') {
        i += 1;
    }
    let first = i;
    while i < p.len() {
        match p[i] {
            ']' if i > first => return Some(i),
            '\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

fn class_matches(p: &[char], start: usize, end: usize, c: char) -> bool {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('^') | Some('!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    while i < end {
        let mut lo = p[i];
        if lo == '\\' && i + 1 < end {
            i += 1;
            lo = p[i];
        }
        i += 1;
        let mut hi = lo;
        if i + 1 < end && p[i] == '-' {
            hi = p[i + 1];
            if hi == '\\' && i + 2 < end {
                hi = p[i + 2];
                i += 1;
            }
            i += 2;
        }
        if lo <= c && c <= hi {
            hit = true;
        }
    }
    hit != negate
}

fn m(p: &[char], n: &[char], ds: bool, ok: &mut bool) -> bool {
    if p.is_empty() {
        return n.is_empty();
    }
    match p[0] {
        '*' if ds && p.get(1) == Some(&'*') => {
            // `**`: any sequence, `/` included; `**/` may also match nothing.
            let rest = &p[2..];
            if let Some(after) = rest.strip_prefix(&['/'])
                && m(after, n, ds, ok)
            {
                return true;
            }
            (0..=n.len()).any(|k| m(rest, &n[k..], ds, ok))
        }
        '*' => {
            let rest = &p[1..];
            let mut k = 0;
            loop {
                if m(rest, &n[k..], ds, ok) {
                    return true;
                }
                if k >= n.len() || n[k] == '/' {
                    return false;
                }
                k += 1;
            }
        }
        '?' => !n.is_empty() && n[0] != '/' && m(&p[1..], &n[1..], ds, ok),
        '[' => match class_end(p, 0) {
            Some(end) => {
                !n.is_empty() && n[0] != '/' && class_matches(p, 0, end, n[0]) && m(&p[end + 1..], &n[1..], ds, ok)
            }
            None => {
                *ok = false;
                false
            }
        },
        '\\' if p.len() > 1 => !n.is_empty() && n[0] == p[1] && m(&p[2..], &n[1..], ds, ok),
        c => !n.is_empty() && n[0] == c && m(&p[1..], &n[1..], ds, ok),
    }
}

/// Whether `s` has glob characters (`*`, `?`, `[`) not escaped.
pub(crate) fn has_wildcards(s: &str) -> bool {
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if matches!(c, '*' | '?' | '[') {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n, ds, want) in [
            ("*.txt", "a.txt", false, true),
            ("*.txt", "d/a.txt", false, false),
            ("d/*", "d/a", false, true),
            ("a?c", "abc", false, true),
            ("a?c", "a/c", false, false),
            ("[a-c]x", "bx", false, true),
            ("[!a-c]x", "bx", false, false),
            ("[^a-c]x", "dx", false, true),
            ("\\*", "*", false, true),
            ("**/*.go", "a/b/c.go", true, true),
            ("**/*.go", "c.go", true, true),
            ("a/**/b", "a/b", true, true),
            ("a/**/b", "a/x/y/b", true, true),
            ("a/**", "a/x/y", true, true),
            ("**", "anything/at/all", true, true),
            ("**", "x/y", false, false),
        ] {
            assert_eq!(glob_match(p, n, ds), Ok(want), "{p} {n} {ds}");
        }
        assert!(glob_match("[a-", "a", false).is_err());
    }

    #[test]
    fn dockerignore_rules() {
        let ig = Ignore::parse(
            "# comment\n\n*.md\n!README.md\n/build\nnode_modules\n**/*.tmp\ndocs/**\n!docs/keep.txt\n./secret\n",
        )
        .unwrap();
        for (path, want) in [
            ("a.md", true),
            ("README.md", false),
            ("sub/a.md", false), // `*.md` is anchored at the root
            ("build", true),
            ("build/out/x", true), // a parent matches
            ("node_modules/x/y.js", true),
            ("src/a.tmp", true),
            ("a.tmp", true),
            ("docs/a.txt", true),
            ("docs/keep.txt", false),
            ("secret", true),
            ("src/main.rs", false),
        ] {
            assert_eq!(ig.is_ignored(path), want, "{path}");
        }
        assert!(ig.has_exceptions());
        let e = Ignore::parse("ok\n[bad\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
