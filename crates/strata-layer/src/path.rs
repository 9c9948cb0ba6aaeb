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
    if name.contains(&0) {
        return Err(NameProblem::Nul);
    }
    if name.is_empty() || name.split(|&b| b == b'/').all(|c| !matches!(c, b"" | b"." | b"..")) {
        return Ok(Cow::Borrowed(name));
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
