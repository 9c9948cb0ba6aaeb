//! Variable substitution in Dockerfile words, with docker's rules: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alt}`, `${VAR-default}`, `${VAR+alt}`, `${VAR:?msg}`,
//! single quotes (literal), double quotes (variables expanded), and the escape
//! character (`\` or the `escape` directive's `` ` ``). Quotes are removed as a shell
//! removes them. No I/O.

/// Look up a variable: `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A word processor for one escape character.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer { escape: '\\' }
    }
}

impl Lexer {
    /// A lexer with this escape character (`\` or `` ` ``).
    pub fn new(escape: char) -> Self {
        Lexer { escape }
    }

    /// Expand `word` into one string: variables substituted, quotes and escapes removed.
    pub fn process_word(&self, word: &str, env: Lookup<'_>) -> Result<String, String> {
        let mut s = Scan { chars: word.chars().collect(), pos: 0, escape: self.escape, env, split: false };
        let words = s.process(None)?;
        Ok(words.into_iter().map(|w| w.text).collect::<Vec<_>>().join(" "))
    }

    /// Expand the content of a here-document as a shell expands an unquoted heredoc:
    /// variables substituted; the escape character escapes only `$`, itself, and a
    /// newline (removed with it); quotes are plain characters.
    pub fn process_heredoc(&self, text: &str, env: Lookup<'_>) -> Result<String, String> {
        let mut s = Scan { chars: text.chars().collect(), pos: 0, escape: self.escape, env, split: false };
        let mut out = String::new();
        while let Some(c) = s.next() {
            match c {
                '$' => out.push_str(&s.dollar()?),
                c if c == s.escape => match s.peek() {
                    Some('\n') => s.pos += 1,
                    Some(n) if n == '$' || n == s.escape => {
                        s.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// Expand `text` into words split on unquoted white space, as `EXPOSE $PORTS` does
    /// (an unquoted variable holding `80 443` gives two words).
    pub fn process_words(&self, text: &str, env: Lookup<'_>) -> Result<Vec<String>, String> {
        let mut s = Scan { chars: text.chars().collect(), pos: 0, escape: self.escape, env, split: true };
        Ok(s.process(None)?.into_iter().filter(|w| w.started).map(|w| w.text).collect())
    }
}

#[derive(Default)]
struct Word {
    text: String,
    /// Something (even an empty quoted string) made this word exist.
    started: bool,
}

struct Scan<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: Lookup<'a>,
    split: bool,
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Process until `stop` (unquoted, unescaped) or the end; the stop character is
    /// consumed. In split mode, returns the words; otherwise one word.
    fn process(&mut self, stop: Option<char>) -> Result<Vec<Word>, String> {
        let mut words = vec![Word::default()];
        loop {
            let Some(c) = self.peek() else {
                if let Some(s) = stop {
                    return Err(format!("missing '{s}'"));
                }
                break;
            };
            if Some(c) == stop {
                self.pos += 1;
                break;
            }
            let cur = words.len() - 1;
            match c {
                '\'' | '"' => {
                    self.pos += 1;
                    let text = if c == '\'' { self.single_quoted()? } else { self.double_quoted()? };
                    let w = &mut words[cur];
                    w.text.push_str(&text);
                    w.started = true;
                }
                '$' => {
                    self.pos += 1;
                    let value = self.dollar()?;
                    if self.split {
                        // Unquoted expansion: its white space separates words.
                        for ch in value.chars() {
                            let last = words.len() - 1;
                            if ch.is_whitespace() {
                                if words[last].started {
                                    words.push(Word::default());
                                }
                            } else {
                                words[last].text.push(ch);
                                words[last].started = true;
                            }
                        }
                    } else {
                        let w = &mut words[cur];
                        w.text.push_str(&value);
                        w.started = true;
                    }
                }
                c if c == self.escape => {
                    self.pos += 1;
                    if let Some(n) = self.next() {
                        let w = &mut words[cur];
                        w.text.push(n);
                        w.started = true;
                    }
                }
                c if self.split && c.is_whitespace() => {
                    self.pos += 1;
                    if words[cur].started {
                        words.push(Word::default());
                    }
                }
                c => {
                    self.pos += 1;
                    let w = &mut words[cur];
                    w.text.push(c);
                    w.started = true;
                }
            }
        }
        Ok(words)
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`: the expansion.
    fn dollar(&mut self) -> Result<String, String> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok((self.env)(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: missing variable name after '${'".into());
        }
        let value = (self.env)(&name);
        match self.next() {
            Some('}') => Ok(value.unwrap_or_default()),
            Some(':') => {
                let op = self.next().ok_or("bad substitution: unexpected end after ':'")?;
                let word = self.nested_word()?;
                let set = value.as_deref().is_some_and(|v| !v.is_empty());
                match op {
                    '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                    '+' => Ok(if set { word } else { String::new() }),
                    '?' => {
                        if set {
                            Ok(value.unwrap_or_default())
                        } else {
                            Err(format!(
                                "{name}: {}",
                                if word.is_empty() { "is not allowed to be unset" } else { &word }
                            ))
                        }
                    }
                    other => Err(format!("unsupported modifier ({other}) in substitution of {name}")),
                }
            }
            Some(op @ ('-' | '+' | '?')) => {
                let word = self.nested_word()?;
                let set = value.is_some();
                match op {
                    '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                    '+' => Ok(if set { word } else { String::new() }),
                    _ => {
                        if set {
                            Ok(value.unwrap_or_default())
                        } else {
                            Err(format!(
                                "{name}: {}",
                                if word.is_empty() { "is not allowed to be unset" } else { &word }
                            ))
                        }
                    }
                }
            }
            Some(other) => Err(format!("unsupported modifier ({other}) in substitution of {name}")),
            None => Err(format!("bad substitution: missing '}}' after ${{{name}")),
        }
    }

    /// The word of a `${VAR:-word}` up to its closing brace, itself expanded.
    fn nested_word(&mut self) -> Result<String, String> {
        let split = std::mem::replace(&mut self.split, false);
        let words = self.process(Some('}'));
        self.split = split;
        Ok(words?.into_iter().map(|w| w.text).collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "PORTS" => Some("80 443/udp".into()),
            "SP" => Some(" x  y ".into()),
            _ => None,
        }
    }

    #[test]
    fn words_expand_like_docker() {
        let l = Lexer::default();
        for (input, want) in [
            ("$A", "a"),
            ("${A}", "a"),
            ("x${A}y", "xay"),
            ("$A$A", "aa"),
            ("$UNSET", ""),
            ("${UNSET:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${UNSET-def}", "def"),
            ("${A:-def}", "a"),
            ("${A:+alt}", "alt"),
            ("${UNSET:+alt}", ""),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET:-$A}", "a"),
            ("${UNSET:-${A}b}", "ab"),
            ("'$A'", "$A"),
            ("\"$A\"", "a"),
            ("\"'$A'\"", "'a'"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("a\\ b", "a b"),
            ("$", "$"),
            ("a$ b", "a$ b"),
            ("$1x", ""),
            ("\"\"", ""),
            ("foo\\", "foo"),
        ] {
            assert_eq!(l.process_word(input, &env).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn heredoc_content_keeps_quotes_and_expands_variables() {
        let l = Lexer::default();
        let got = l.process_heredoc("say \"$A\" '${A}' \\$A \\\\ \\n ${UNSET:-d}\nnext \\\nline\n", &env).unwrap();
        assert_eq!(got, "say \"a\" 'a' $A \\ \\n d\nnext line\n");
    }

    #[test]
    fn backtick_escape() {
        let l = Lexer::new('`');
        assert_eq!(l.process_word("C:\\dir `$A", &env).unwrap(), "C:\\dir $A");
    }

    #[test]
    fn words_split_on_unquoted_space_and_expansions() {
        let l = Lexer::default();
        assert_eq!(l.process_words("$PORTS 8080", &env).unwrap(), ["80", "443/udp", "8080"]);
        assert_eq!(l.process_words("\"$PORTS\"", &env).unwrap(), ["80 443/udp"]);
        assert_eq!(l.process_words("a$SP", &env).unwrap(), ["a", "x", "y"]);
        assert_eq!(l.process_words("  a   'b c'  \"\" ", &env).unwrap(), ["a", "b c", ""]);
        assert_eq!(l.process_words("$UNSET", &env).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn errors() {
        let l = Lexer::default();
        for (input, needle) in [
            ("'abc", "single-quote"),
            ("\"abc", "double-quote"),
            ("${A", "missing"),
            ("${}", "missing variable name"),
            ("${A:=x}", "unsupported modifier"),
            ("${UNSET:?must be set}", "must be set"),
            ("${A#x}", "unsupported modifier"),
        ] {
            let e = l.process_word(input, &env).unwrap_err();
            assert!(e.contains(needle), "{input}: {e}");
        }
    }
}
