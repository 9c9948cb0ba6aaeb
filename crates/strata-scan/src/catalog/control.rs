//! Deb822 / RFC 822 style stanzas: `Field: value` lines, continuation lines starting
//! with a space or tab, stanzas separated by blank lines. dpkg's status files and
//! Python's `METADATA` are written this way.

use std::borrow::Cow;

/// One stanza: fields in order (names as written; look them up with [`field`]). A value
/// is borrowed from the text unless continuation lines were joined to it.
pub(crate) type Stanza<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// The lines of `text` without their `\n` (a `\r` before it kept, as `str::lines`
/// drops it: trimming removes it where it matters), found with `memchr`: the databases
/// are hundreds of KiB of short lines.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            // `\n` is ASCII: both sides are on character boundaries.
            Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
            None => (rest, ""),
        };
        rest = next;
        Some(line)
    })
}

/// The stanzas of `text`. With `first_only`, stop at the first blank line (a
/// `METADATA` file's body follows its headers).
pub(crate) fn stanzas(text: &str, first_only: bool) -> Vec<Stanza<'_>> {
    stanzas_keeping(text, first_only, |_| true)
}

/// [`stanzas`] with only the fields whose names `keep` accepts: the others' values (a
/// package's description, its conffiles) are neither copied nor joined, and a stanza
/// with none of them is left out.
pub(crate) fn stanzas_keeping<'a>(text: &'a str, first_only: bool, keep: impl Fn(&str) -> bool) -> Vec<Stanza<'a>> {
    let mut out = Vec::new();
    let mut cur: Stanza<'_> = Vec::new();
    // Whether the field the continuation lines belong to is kept.
    let mut kept = false;
    for line in lines(text) {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                if first_only {
                    return out;
                }
            }
            kept = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if kept && let Some((_, v)) = cur.last_mut() {
                let v = v.to_mut();
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            kept = keep(k);
            if kept {
                cur.push((k, Cow::Borrowed(v.trim())));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) fn field<'s>(stanza: &'s Stanza<'_>, name: &str) -> Option<&'s str> {
    stanza.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
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
        // Kept fields only: the others' continuation lines go nowhere, a stanza with none
        // kept is left out.
        let text = "Package: a\nDescription: x\n more\nVersion: 1\n\nDescription: y\n z\n\nPackage: c\n";
        let s = stanzas_keeping(text, false, |k| matches!(k, "Package" | "Version"));
        assert_eq!(s, vec![vec![("Package", "a".into()), ("Version", "1".into())], vec![("Package", "c".into())]]);
    }

    #[test]
    fn lines_are_strs_lines() {
        for text in ["", "a", "a\n", "a\n\nb", "\n\n", "a\r\nb\r\n", "é\nü\n\nx"] {
            let want: Vec<&str> = text.split_inclusive('\n').map(|l| l.strip_suffix('\n').unwrap_or(l)).collect();
            assert_eq!(lines(text).collect::<Vec<_>>(), want, "{text:?}");
            // As `str::lines` but for a `\r` before `\n`, which it drops.
            let std: Vec<&str> = text.lines().collect();
            assert_eq!(lines(text).map(|l| l.strip_suffix('\r').unwrap_or(l)).collect::<Vec<_>>(), std, "{text:?}");
        }
    }
}
