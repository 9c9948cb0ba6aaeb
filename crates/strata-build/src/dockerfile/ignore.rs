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
///
/// Time is O(pattern tokens × name length) and memory O(name length), whatever the
/// pattern: a backtracking matcher takes exponential time on `**` and `*` runs (a
/// hostile `.dockerignore` line of stars hung the build).
pub(crate) fn glob_match(pattern: &str, name: &str, double_star: bool) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    check_syntax(&p)?;
    let n: Vec<char> = name.chars().collect();
    let Some(tokens) = tokenize(&p, double_star) else { return Ok(false) };
    Ok(matches(&p, &tokens, &n))
}

/// One element of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A character, matched exactly (an escaped one included).
    Char(char),
    /// `?`: any one character but `/`.
    Any,
    /// `[...]`: the class between these indexes of the pattern (at `[` and `]`).
    Class(usize, usize),
    /// `*`: any run of characters without `/`.
    Star,
    /// `**` (with `double_star`): any run of characters, `/` included.
    DoubleStar,
}

/// Split a pattern into tokens; `None` if a class is unterminated.
fn tokenize(p: &[char], double_star: bool) -> Option<Vec<Token>> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        let (token, len) = match c {
            '*' if double_star && p.get(i + 1) == Some(&'*') => (Token::DoubleStar, 2),
            '*' => (Token::Star, 1),
            '?' => (Token::Any, 1),
            '[' => {
                let end = i + class_end(&p[i..], 0)?;
                (Token::Class(i, end), end + 1 - i)
            }
            '\\' if i + 1 < p.len() => (Token::Char(p[i + 1]), 2),
            c => (Token::Char(c), 1),
        };
        // Runs of stars match what one does: keep one, so rows stay few.
        if !(out.last() == Some(&token) && matches!(token, Token::Star | Token::DoubleStar)) {
            out.push(token);
        }
        i += len;
    }
    Some(out)
}

/// Whether `tokens` (of pattern `p`) match all of `n`: dynamic programming over the
/// tokens from the last, `row[j]` saying whether the tokens from here on match `n[j..]`.
fn matches(p: &[char], tokens: &[Token], n: &[char]) -> bool {
    let len = n.len();
    // `next`: the row of the token after this one; `after_next`: the one after that.
    let mut next: Vec<bool> = (0..=len).map(|j| j == len).collect();
    let mut after_next = vec![false; len + 1];
    let mut row = vec![false; len + 1];
    for (t, token) in tokens.iter().enumerate().rev() {
        let one = |j: usize, ok: &dyn Fn(char) -> bool, next: &[bool]| {
            n.get(j).is_some_and(|&c| ok(c)) && next.get(j + 1).copied().unwrap_or(false)
        };
        match *token {
            Token::Char(c) => {
                for (j, r) in row.iter_mut().enumerate() {
                    *r = one(j, &|x| x == c, &next);
                }
            }
            Token::Any => {
                for (j, r) in row.iter_mut().enumerate() {
                    *r = one(j, &|x| x != '/', &next);
                }
            }
            Token::Class(start, end) => {
                for (j, r) in row.iter_mut().enumerate() {
                    *r = one(j, &|x| x != '/' && class_matches(p, start, end, x), &next);
                }
            }
            Token::Star => {
                // `*` matches nothing, or one non-`/` character and then more of itself.
                row[len] = next[len];
                for j in (0..len).rev() {
                    row[j] = next[j] || (n[j] != '/' && row[j + 1]);
                }
            }
            Token::DoubleStar => {
                // Any run, `/` included; `**/` may also match nothing at all, slash too.
                let slash_follows = tokens.get(t + 1) == Some(&Token::Char('/'));
                let mut any_later = false;
                for j in (0..=len).rev() {
                    any_later |= next[j];
                    row[j] = any_later || (slash_follows && after_next[j]);
                }
            }
        }
        std::mem::swap(&mut after_next, &mut next);
        std::mem::swap(&mut next, &mut row);
    }
    next[0]
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

    /// The backtracking matcher `glob_match` used before (exponential on star runs):
    /// the reference the dynamic-programming one must agree with on small inputs.
    fn reference(p: &[char], n: &[char], ds: bool) -> bool {
        let Some(&first) = p.first() else { return n.is_empty() };
        match first {
            '*' if ds && p.get(1) == Some(&'*') => {
                let rest = &p[2..];
                if let Some(after) = rest.strip_prefix(&['/'])
                    && reference(after, n, ds)
                {
                    return true;
                }
                (0..=n.len()).any(|k| reference(rest, &n[k..], ds))
            }
            '*' => {
                let rest = &p[1..];
                let mut k = 0;
                loop {
                    if reference(rest, &n[k..], ds) {
                        return true;
                    }
                    if k >= n.len() || n[k] == '/' {
                        return false;
                    }
                    k += 1;
                }
            }
            '?' => !n.is_empty() && n[0] != '/' && reference(&p[1..], &n[1..], ds),
            '[' => match class_end(p, 0) {
                Some(end) => {
                    !n.is_empty()
                        && n[0] != '/'
                        && class_matches(p, 0, end, n[0])
                        && reference(&p[end + 1..], &n[1..], ds)
                }
                None => false,
            },
            '\\' if p.len() > 1 => !n.is_empty() && n[0] == p[1] && reference(&p[2..], &n[1..], ds),
            c => !n.is_empty() && n[0] == c && reference(&p[1..], &n[1..], ds),
        }
    }

    #[test]
    fn the_matcher_agrees_with_the_backtracking_one() {
        // Every pattern and name up to a few characters over a small alphabet (a fixed
        // pseudo-random sample of the longer ones).
        let pat_alphabet = ['a', 'b', '/', '*', '?', '[', ']', '!', '-', '\\'];
        let name_alphabet = ['a', 'b', '/', '-', '*'];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = |k: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % k as u64) as usize
        };
        let mut checked = 0;
        for _ in 0..60_000 {
            let p: String = (0..rand(9)).map(|_| pat_alphabet[rand(pat_alphabet.len())]).collect();
            let n: String = (0..rand(8)).map(|_| name_alphabet[rand(name_alphabet.len())]).collect();
            for ds in [false, true] {
                let Ok(got) = glob_match(&p, &n, ds) else { continue };
                let pc: Vec<char> = p.chars().collect();
                let nc: Vec<char> = n.chars().collect();
                assert_eq!(got, reference(&pc, &nc, ds), "pattern {p:?} name {n:?} double_star {ds}");
                checked += 1;
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn star_runs_match_in_polynomial_time() {
        // Found by fuzz/dockerfile_parse (minimised): a .dockerignore line of many stars
        // then a word, matched against a path that does not end with it. The
        // backtracking matcher tried every split of the path among the stars and did
        // not finish; this one does at once.
        let stars = "*".repeat(43);
        let ig = Ignore::parse(&format!("{stars} hello\n")).unwrap();
        let path = "node_modules/".repeat(4) + &"a".repeat(40);
        assert!(!ig.is_ignored(&path));
        assert!(ig.is_ignored(&(path.clone() + " hello")));
        let long = "a".repeat(60) + "b";
        for (p, ds, hit) in [
            ("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", false, long.as_str()),
            ("**a**a**a**a**a**a**a**a**a**a**b", true, long.as_str()),
            ("**/a**/a**/a**/a**/a**/a**/b", true, "a/a/a/a/a/a/b"),
        ] {
            assert_eq!(glob_match(p, &"a".repeat(60), ds), Ok(false), "{p}");
            assert_eq!(glob_match(p, &"a/".repeat(40), ds), Ok(false), "{p}");
            assert_eq!(glob_match(p, hit, ds), Ok(true), "{p} {hit}");
        }
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
