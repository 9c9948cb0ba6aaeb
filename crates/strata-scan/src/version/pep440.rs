//! Python version ordering (PEP 440), as `packaging.version.Version` sorts:
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the spellings PEP 440
//! normalises (`alpha`, `beta`, `c`, `pre`, `preview`, `rev`, `r`, `-N` for a post
//! release, separators `.-_`, a leading `v`).

use std::cmp::Ordering;

/// The sort key of a version: epoch, release (trailing zeros dropped), pre, post, dev,
/// local. Missing pre/post/dev sort as `packaging` sorts them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    epoch: u64,
    release: Vec<u64>,
    /// (rank, n) with rank 0 a, 1 b, 2 rc; `None` is a release.
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<String>,
}

fn parse(v: &str) -> Key {
    let v = v.trim().to_ascii_lowercase();
    let v = v.strip_prefix('v').unwrap_or(&v);
    let (v, local) = v.split_once('+').map_or((v, ""), |(a, l)| (a, l));
    let (epoch, v) = match v.split_once('!') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, v),
    };
    let b = v.as_bytes();
    let mut i = 0;
    let mut release = Vec::new();
    loop {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        release.push(v[st..i].parse().unwrap_or(0));
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            i += 1;
        } else {
            break;
        }
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let mut key = Key { epoch, release, pre: None, post: None, dev: None, local: Vec::new() };
    let rest = &v[i..];
    let mut s = rest;
    // Words and their numbers, separators skipped.
    while !s.is_empty() {
        s = s.trim_start_matches(['.', '-', '_']);
        let word: String = s.chars().take_while(char::is_ascii_alphabetic).collect();
        s = &s[word.len()..];
        let sep_before_num = s.starts_with(['.', '-', '_']) && s[1..].starts_with(|c: char| c.is_ascii_digit());
        if sep_before_num && !word.is_empty() {
            s = &s[1..];
        }
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        s = &s[digits.len()..];
        let n = digits.parse().unwrap_or(0);
        match word.as_str() {
            "a" | "alpha" => key.pre = Some((0, n)),
            "b" | "beta" => key.pre = Some((1, n)),
            "c" | "rc" | "pre" | "preview" => key.pre = Some((2, n)),
            "post" | "rev" | "r" => key.post = Some(n),
            "dev" => key.dev = Some(n),
            // `1.0-1`: an implicit post release.
            "" if !digits.is_empty() => key.post = Some(n),
            _ if word.is_empty() && digits.is_empty() => break,
            _ => {}
        }
    }
    key.local = local.split(['.', '-', '_']).filter(|p| !p.is_empty()).map(str::to_owned).collect();
    key
}

/// Compare two PEP 440 versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse(a), parse(b));
    // packaging's _cmpkey: a dev release with no pre or post sorts before every pre
    // release of that version; no pre sorts after every pre; no post before every post;
    // no dev after every dev.
    let pre = |k: &Key| match (k.pre, k.post, k.dev) {
        (None, None, Some(_)) => (0u8, 0u8, 0u64),
        (None, _, _) => (2, 0, 0),
        (Some((r, n)), _, _) => (1, r, n),
    };
    let post = |k: &Key| k.post.map_or((0u8, 0u64), |n| (1, n));
    let dev = |k: &Key| k.dev.map_or((1u8, 0u64), |n| (0, n));
    let local = |x: &Key, y: &Key| {
        for (p, q) in x.local.iter().zip(&y.local) {
            let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                (Ok(m), Ok(n)) => m.cmp(&n),
                (Ok(_), Err(_)) => Ordering::Greater,
                (Err(_), Ok(_)) => Ordering::Less,
                (Err(_), Err(_)) => p.cmp(q),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        x.local.len().cmp(&y.local.len())
    };
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| a.release.cmp(&b.release))
        .then_with(|| pre(&a).cmp(&pre(&b)))
        .then_with(|| post(&a).cmp(&post(&b)))
        .then_with(|| dev(&a).cmp(&dev(&b)))
        .then_with(|| local(&a, &b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pep440_order() {
        // PEP 440's "summary of permitted suffixes and relative ordering" example.
        let v = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for w in v.windows(2) {
            assert_eq!(super::compare(w[0], w[1]), std::cmp::Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(super::compare("1.0", "1.0.0"), std::cmp::Ordering::Equal);
        assert_eq!(super::compare("1.0-1", "1.0.post1"), std::cmp::Ordering::Equal);
        assert_eq!(super::compare("1.0alpha1", "1.0a1"), std::cmp::Ordering::Equal);
    }
}
