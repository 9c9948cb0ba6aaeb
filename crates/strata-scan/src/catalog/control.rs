//! Deb822 / RFC 822 style stanzas: `Field: value` lines, continuation lines starting
//! with a space or tab, stanzas separated by blank lines. dpkg's status files and
//! Python's `METADATA` are written this way.

/// One stanza: fields in order (names as written; look them up with [`field`]).
pub(crate) type Stanza<'a> = Vec<(&'a str, String)>;

/// The stanzas of `text`. With `first_only`, stop at the first blank line (a
/// `METADATA` file's body follows its headers).
pub(crate) fn stanzas(text: &str, first_only: bool) -> Vec<Stanza<'_>> {
    let mut out = Vec::new();
    let mut cur: Stanza<'_> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                if first_only {
                    return out;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim(), v.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The value of field `name` (matched without regard to case, as dpkg does).
pub(crate) fn field<'s>(stanza: &'s Stanza<'_>, name: &str) -> Option<&'s str> {
    stanza.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_and_blank_lines() {
        let s = stanzas("Package: a\nDescription: x\n more\n\n\nPackage: b\n", false);
        assert_eq!(s.len(), 2);
        assert_eq!(field(&s[0], "description"), Some("x\nmore"));
        assert_eq!(field(&s[1], "Package"), Some("b"));
    }
}
