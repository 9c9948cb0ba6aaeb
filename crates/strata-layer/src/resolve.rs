//! Path resolution inside a root, as `openat2(RESOLVE_IN_ROOT)` does it, over any tree:
//! the directories on disk (the applier's fallback walk, and the real name of a
//! directory the kernel found) and the merged view's tree in memory. One walk for both,
//! so the merged view cannot drift from what the applier does on disk.
//!
//! The walk also says where it ended up: the *real path* of what it found, from the
//! root, with no symlink and no `..` in it. A directory keeps its real path for as long
//! as it exists (neither the applier nor the merged view ever renames anything), which
//! makes it the name to keep per-directory state under.

use std::borrow::Cow;

use rustix::io::Errno;

/// The most symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
pub(crate) const MAX_SYMLINKS: usize = 40;

/// What a name is, in a tree being walked.
pub(crate) enum Node<'t, D> {
    /// A directory, and what the tree needs to look inside it.
    Dir(D),
    /// A symlink, and its target.
    Symlink(Cow<'t, [u8]>),
    /// Anything else.
    Other,
}

/// A tree to resolve paths in.
pub(crate) trait Lookup {
    /// A directory walked into: an fd on disk; nothing in memory, where the real path is
    /// the key.
    type Dir;

    /// What `name` is in directory `dir` (`None`: the root). `path` is the real path of
    /// the name, components joined by the separator [`resolve`] was given. `Err` when it
    /// cannot be looked up (`ENOENT` when it does not exist).
    fn lookup(&self, dir: Option<&Self::Dir>, path: &[u8], name: &[u8]) -> Result<Node<'_, Self::Dir>, Errno>;
}

/// Where a path led.
pub(crate) enum End<D> {
    /// The root itself.
    Root,
    /// A directory below the root.
    Dir(D),
    /// The last component, not a directory (or a symlink not followed).
    Other,
}

/// The result of [`resolve`].
pub(crate) struct Resolved<D> {
    /// The real path of what was found (empty for the root), components joined by the
    /// separator given.
    pub(crate) path: Vec<u8>,
    /// What it is.
    pub(crate) end: End<D>,
}

/// Resolve `path` (components separated by `sep`) in `tree` as `openat2` with
/// `RESOLVE_IN_ROOT` would: a symlink met on the way has its target (components
/// separated by `/`) spliced into what is left to walk, an absolute one restarting at the
/// root, at most [`MAX_SYMLINKS`] of them; `..` goes up one directory and never above the
/// root. The last component is followed when it is a symlink only with `follow_last`;
/// when it is not a directory it is returned as [`End::Other`]. A component before the
/// last that is not a directory is `ENOTDIR`.
pub(crate) fn resolve<'t, T: Lookup>(
    tree: &'t T,
    path: &'t [u8],
    sep: u8,
    follow_last: bool,
) -> Result<Resolved<T::Dir>, Errno> {
    // Components still to walk, last first.
    let mut todo: Vec<Cow<'t, [u8]>> = path.split(|&b| b == sep).rev().map(Cow::Borrowed).collect();
    let mut real: Vec<u8> = Vec::with_capacity(path.len());
    // Directories walked into, and the length of `real` before each.
    let mut dirs: Vec<T::Dir> = Vec::new();
    let mut lens: Vec<usize> = Vec::new();
    let mut links = 0;
    while let Some(comp) = todo.pop() {
        match &*comp {
            b"" | b"." => continue,
            b".." => {
                if let Some(len) = lens.pop() {
                    real.truncate(len);
                    dirs.pop();
                }
                continue;
            }
            _ => {}
        }
        let last = todo.is_empty();
        let len = real.len();
        if !real.is_empty() {
            real.push(sep);
        }
        real.extend_from_slice(&comp);
        match tree.lookup(dirs.last(), &real, &comp)? {
            Node::Dir(d) => {
                dirs.push(d);
                lens.push(len);
            }
            Node::Symlink(target) if follow_last || !last => {
                real.truncate(len);
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::LOOP);
                }
                if target.first() == Some(&b'/') {
                    real.clear();
                    dirs.clear();
                    lens.clear();
                }
                match target {
                    Cow::Borrowed(t) => todo.extend(t.split(|&b| b == b'/').rev().map(Cow::Borrowed)),
                    Cow::Owned(t) => todo.extend(t.split(|&b| b == b'/').rev().map(|c| Cow::Owned(c.to_vec()))),
                }
            }
            _ if last => return Ok(Resolved { path: real, end: End::Other }),
            _ => return Err(Errno::NOTDIR),
        }
    }
    let end = match dirs.pop() {
        Some(d) => End::Dir(d),
        None => End::Root,
    };
    Ok(Resolved { path: real, end })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A tree in memory: real paths (joined by `/`) to `None` for a directory, a symlink
    /// target, or `Some(b"")` for a file.
    struct Mem(BTreeMap<&'static [u8], Option<&'static [u8]>>);

    impl Lookup for Mem {
        type Dir = ();
        fn lookup(&self, _: Option<&()>, path: &[u8], _: &[u8]) -> Result<Node<'_, ()>, Errno> {
            match self.0.get(path) {
                None => Err(Errno::NOENT),
                Some(None) => Ok(Node::Dir(())),
                Some(Some(b"")) => Ok(Node::Other),
                Some(Some(t)) => Ok(Node::Symlink(Cow::Borrowed(t))),
            }
        }
    }

    #[test]
    fn real_paths_have_no_symlinks_and_never_leave_the_root() {
        let t = Mem(BTreeMap::from([
            (&b"usr"[..], None),
            (b"usr/lib", None),
            (b"usr/lib/f", Some(&b""[..])),
            (b"lib", Some(b"usr/lib")),
            (b"abs", Some(b"/usr/lib/")),
            (b"up", Some(b"../../..")),
            (b"loop", Some(b"loop")),
            (b"tofile", Some(b"lib/f")),
        ]));
        let ok = |p: &'static str, follow| {
            let r = resolve(&t, p.as_bytes(), b'/', follow).unwrap();
            let kind = match r.end {
                End::Root => "root",
                End::Dir(()) => "dir",
                End::Other => "other",
            };
            (String::from_utf8(r.path).unwrap(), kind)
        };
        assert_eq!(ok("lib", true), ("usr/lib".into(), "dir"));
        assert_eq!(ok("lib", false), ("lib".into(), "other"));
        assert_eq!(ok("abs/f", false), ("usr/lib/f".into(), "other"));
        assert_eq!(ok("lib/../lib/./f", true), ("usr/lib/f".into(), "other"));
        assert_eq!(ok("up/usr", true), ("usr".into(), "dir"));
        assert_eq!(ok("usr/../..", true), ("".into(), "root"));
        assert_eq!(ok("tofile", true), ("usr/lib/f".into(), "other"));
        let err = |p: &'static str| resolve(&t, p.as_bytes(), b'/', true).err();
        assert_eq!(err("loop"), Some(Errno::LOOP));
        assert_eq!(err("tofile/x"), Some(Errno::NOTDIR));
        assert_eq!(err("nope/x"), Some(Errno::NOENT));
        assert_eq!(err("lib/missing"), Some(Errno::NOENT));
    }
}
