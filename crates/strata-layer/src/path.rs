//! Layer entry names: normalisation and whiteout classification.
//!
//! Every consumer of layer entries (the applier, the merged view, the differ's reader)
//! goes through these two functions, so a name means the same thing everywhere.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Prefix of a whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata names (`.wh..wh.plnk`, `.wh..wh.aufs`), which carry no files.
pub const AUFS_META_PREFIX: &str = ".wh..wh.";

/// Why an entry name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// A `..` component.
    ParentComponent,
    /// A NUL byte.
    Nul,
    /// A whiteout whose target is empty, `.` or `..`.
    BadWhiteout,
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameProblem::ParentComponent => "path has a '..' component",
            NameProblem::Nul => "path has a NUL byte",
            NameProblem::BadWhiteout => "whiteout names no file ('.wh.', '.wh..' or '.wh...')",
        })
    }
}

/// Normalise a tar entry name to a relative path inside the root.
///
/// Leading `/` and `./`, empty components and `.` components are dropped, as docker and
/// containerd do; an absolute name is therefore taken relative to the root, never to the
/// host. A `..` component is refused outright: no legitimate layer needs one. The root
/// itself normalises to the empty path.
pub fn normalize(name: &[u8]) -> Result<PathBuf, NameProblem> {
    Ok(match normalized(name)? {
        Cow::Borrowed(b) => PathBuf::from(OsStr::from_bytes(b)),
        Cow::Owned(v) => PathBuf::from(std::ffi::OsString::from_vec(v)),
    })
}

/// [`normalize`], borrowing `name` when it is already in normal form (as the names in
/// most layers are): for callers normalising thousands of names.
pub fn normalized(name: &[u8]) -> Result<Cow<'_, [u8]>, NameProblem> {
    if scan_normal(name).is_some() {
        return Ok(Cow::Borrowed(name));
    }
    if name.contains(&0) {
        return Err(NameProblem::Nul);
    }
    let mut out = Vec::with_capacity(name.len());
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(NameProblem::ParentComponent),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// What a normalised entry path means for the union merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// An ordinary entry: create or replace this path.
    Plain,
    /// `dir/.wh..wh..opq`: hide what lower layers put in `dir` (the empty path is the root).
    Opaque {
        /// The directory made opaque.
        dir: PathBuf,
    },
    /// `dir/.wh.name`: delete `dir/name` as lower layers left it.
    Whiteout {
        /// The path to delete.
        target: PathBuf,
    },
    /// AUFS bookkeeping (`.wh..wh.plnk/...`): carries nothing, skipped.
    AufsMeta,
}

/// Whether `path` may have a component that is a whiteout, an opaque marker or AUFS
/// metadata (all start with [`WHITEOUT_PREFIX`]): false for most names, which are then
/// plain without looking at their components one by one.
pub(crate) fn names_whiteout(path: &[u8]) -> bool {
    path.windows(WHITEOUT_PREFIX.len()).any(|w| w == WHITEOUT_PREFIX.as_bytes())
}

/// `None` when `path` is not in normal form (a NUL, an empty, `.` or `..` component:
/// [`normalized`] would not give it back as it is), else whether one of its components
/// starts with [`WHITEOUT_PREFIX`] (a whiteout, an opaque marker or AUFS metadata, which
/// [`classify`] tells apart), found in the same pass. One pass, eight bytes at a time:
/// the check of [`normalized`] and of the merged index's lookups.
pub(crate) fn scan_normal(path: &[u8]) -> Option<bool> {
    // What the current component is so far: `run` dots (0 to 2) and nothing else, or
    // NAMED (anything else). A `/` or the end after 0-2 dots is an empty, `.` or `..`
    // component. Every byte but NUL, `.` and `/` (all at most `/`) just names: one
    // compare for most bytes (a fifth fewer instructions than matching each component
    // against the three forms at each `/`).
    const NAMED: u8 = 3;
    if path.is_empty() {
        return Some(false);
    }
    // Eight bytes at a time: the first byte of them that is at most `/` (exact for
    // the lowest byte flagged, bit tricks' "hasless"), the ones before it just name.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut run = 0;
    let mut whiteout = false;
    let mut i = 0;
    while i < path.len() {
        if let Some(chunk) = path.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
            let x = u64::from_le_bytes(chunk);
            let low = x.wrapping_sub(ONES * u64::from(b'/' + 1)) & !x & HIGH;
            if low == 0 {
                run = NAMED;
                i += 8;
                continue;
            }
            // The bytes before the one flagged name; that one is looked at below.
            let k = (low.trailing_zeros() / 8) as usize;
            if k > 0 {
                run = NAMED;
                i += k;
            }
        }
        let b = path[i];
        i += 1;
        if b > b'/' {
            run = NAMED;
            continue;
        }
        match b {
            b'/' if run < NAMED => return None,
            b'/' => run = 0,
            b'.' if run < NAMED => {
                if run == 0 && path[i - 1..].starts_with(WHITEOUT_PREFIX.as_bytes()) {
                    whiteout = true;
                }
                run += 1;
            }
            0 => return None,
            _ => run = NAMED,
        }
    }
    (run == NAMED).then_some(whiteout)
}

/// Classify a path produced by [`normalize`].
pub fn classify(path: &Path) -> Result<Class, NameProblem> {
    if !names_whiteout(path.as_os_str().as_bytes()) {
        return Ok(Class::Plain);
    }
    // AUFS metadata directories may appear as a parent component too.
    if path.iter().any(|c| {
        let b = c.as_bytes();
        b.starts_with(AUFS_META_PREFIX.as_bytes()) && b != OPAQUE_MARKER.as_bytes()
    }) {
        return Ok(Class::AufsMeta);
    }
    let Some(name) = path.file_name() else { return Ok(Class::Plain) };
    let name = name.as_bytes();
    let parent = || path.parent().unwrap_or(Path::new(""));
    if name == OPAQUE_MARKER.as_bytes() {
        return Ok(Class::Opaque { dir: parent().to_path_buf() });
    }
    if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(NameProblem::BadWhiteout);
        }
        return Ok(Class::Whiteout { target: parent().join(OsStr::from_bytes(target)) });
    }
    Ok(Class::Plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_normal_agrees_with_the_component_rule() {
        // Every name of up to 6 bytes from the bytes that matter and two that do not.
        let alphabet = [b'a', b'-', b'.', b'/', 0];
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = names.clone();
        for _ in 0..6 {
            last = last.iter().flat_map(|n| alphabet.iter().map(move |&b| [&n[..], &[b]].concat())).collect();
            names.extend(last.iter().cloned());
        }
        // Longer, for the eight-bytes-at-a-time pass: each short name after, before and
        // between long runs of plain bytes.
        let long: Vec<Vec<u8>> = names
            .iter()
            .flat_map(|n| {
                let run = b"abcdefghij".to_vec();
                [[&run[..], n].concat(), [n, &run[..]].concat(), [&run[..], n, &run[..], n].concat()]
            })
            .collect();
        names.extend(long);
        names.push(b"usr/share/doc/libc6/changelog.Debian.gz".to_vec());
        names.push("usr/share/\u{e9}t\u{e9}/.wh.d\u{e9}j\u{e0}-vu".as_bytes().to_vec());
        for p in ["a/.wh.b", ".wh..wh..opq", "a/b.wh.c", "a/.wh..wh.plnk/x", "a/.w", "a/.wh"] {
            names.push(p.as_bytes().to_vec());
        }
        for p in &names {
            // The rule, one component at a time: no NUL, no empty, `.` or `..` component.
            let normal =
                !p.contains(&0) && (p.is_empty() || p.split(|&b| b == b'/').all(|c| !matches!(c, b"" | b"." | b"..")));
            let whiteout = p.split(|&b| b == b'/').any(|c| c.starts_with(b".wh."));
            assert_eq!(scan_normal(p), normal.then_some(whiteout), "{:?}", String::from_utf8_lossy(p));
            assert_eq!(normalized(p).is_ok_and(|n| n == &p[..]), normal, "{:?}", String::from_utf8_lossy(p));
        }
    }

    fn n(s: &str) -> Result<String, NameProblem> {
        normalize(s.as_bytes()).map(|p| p.to_string_lossy().into_owned())
    }

    #[test]
    fn normalises_names() {
        assert_eq!(n("./usr/bin/"), Ok("usr/bin".into()));
        assert_eq!(n("/etc//passwd"), Ok("etc/passwd".into()));
        assert_eq!(n("./"), Ok("".into()));
        assert_eq!(n("a/./b"), Ok("a/b".into()));
        assert_eq!(n("../x"), Err(NameProblem::ParentComponent));
        assert_eq!(n("a/../../x"), Err(NameProblem::ParentComponent));
        assert_eq!(n("a/b/.."), Err(NameProblem::ParentComponent));
        assert_eq!(n("a\0b"), Err(NameProblem::Nul));
        // Names already normal are borrowed, the others made normal; the same answers.
        for (name, borrowed) in [("usr/bin", true), ("", true), ("a", true), ("./usr", false), ("usr/", false)] {
            let got = normalized(name.as_bytes()).unwrap();
            assert_eq!(matches!(got, Cow::Borrowed(_)), borrowed, "{name:?}");
            assert_eq!(&*got, n(name).unwrap().as_bytes(), "{name:?}");
        }
        assert_eq!(normalized(b"a/.."), Err(NameProblem::ParentComponent));
        assert_eq!(normalized(b"a\0"), Err(NameProblem::Nul));
    }

    #[test]
    fn classifies_whiteouts() {
        let c = |s: &str| classify(&normalize(s.as_bytes()).unwrap());
        assert_eq!(c("etc/passwd"), Ok(Class::Plain));
        assert_eq!(c("etc/.wh.passwd"), Ok(Class::Whiteout { target: "etc/passwd".into() }));
        assert_eq!(c(".wh.etc"), Ok(Class::Whiteout { target: "etc".into() }));
        assert_eq!(c("var/.wh..wh..opq"), Ok(Class::Opaque { dir: "var".into() }));
        assert_eq!(c(".wh..wh..opq"), Ok(Class::Opaque { dir: "".into() }));
        assert_eq!(c(".wh..wh.plnk/123.456"), Ok(Class::AufsMeta));
        assert_eq!(c("a/.wh...."), Ok(Class::Whiteout { target: "a/...".into() }));
        for bad in ["a/.wh.", "a/.wh..", "a/.wh...", ".wh..."] {
            assert_eq!(c(bad), Err(NameProblem::BadWhiteout), "{bad}");
        }
    }
}
