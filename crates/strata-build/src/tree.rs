//! The tree of the image a step builds on, as `COPY`, `ADD`, `WORKDIR` and user look-ups
//! need it: resolve a path inside the root (symlinks followed, `..` stopping at the
//! root), tell a directory from anything else, read a small file (`/etc/passwd`).
//!
//! Two views: the merged view of the image's layers (no unpacking: headers only), and
//! the working rootfs on disk once a `RUN` has unpacked it.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use strata_image::MergedView;
use strata_layer::EntryKind;

use crate::error::{Error, Result};

/// Longest file read through a view (`/etc/passwd`, `/etc/group`): 4 MiB, far above
/// any real one.
const MAX_SMALL_FILE: u64 = 4 << 20;
/// Symlinks followed while resolving one path, as Linux allows (`ELOOP` after 40).
const MAX_SYMLINKS: usize = 40;

/// What is at a path (not following a symlink there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    Symlink(PathBuf),
    Other,
}

/// A tree to resolve paths in. Paths are relative to the root and *physical*: no
/// component of them is a symlink (the resolver makes them so).
pub(crate) trait TreeView {
    /// What is at `path`, `None` when nothing is.
    fn lstat(&self, path: &Path) -> Result<Option<Node>>;
    /// The content of the regular file at `path`.
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
}

/// The image's layers, merged in memory.
pub(crate) struct MergedTreeView(pub MergedView);

impl TreeView for MergedTreeView {
    fn lstat(&self, path: &Path) -> Result<Option<Node>> {
        match self.0.stat(path) {
            Ok(e) => Ok(Some(match e.meta.kind {
                EntryKind::Dir => Node::Dir,
                EntryKind::Symlink { target } => Node::Symlink(target),
                _ => Node::Other,
            })),
            Err(strata_image::Error::Layer(strata_layer::Error::PathNotFound { .. })) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let r = self.0.read_file(path)?;
        let mut out = Vec::new();
        r.take(MAX_SMALL_FILE).read_to_end(&mut out).map_err(Error::io("read", Path::new("/").join(path)))?;
        Ok(out)
    }
}

/// A directory on disk.
pub(crate) struct DiskView<'a>(pub &'a Path);

impl TreeView for DiskView<'_> {
    fn lstat(&self, path: &Path) -> Result<Option<Node>> {
        let full = self.0.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                Ok(Some(Node::Symlink(std::fs::read_link(&full).map_err(Error::io("readlink", &full))?)))
            }
            Ok(m) if m.is_dir() => Ok(Some(Node::Dir)),
            Ok(_) => Ok(Some(Node::Other)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(strata_spec::IoError::new("stat", full, e))),
        }
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let full = self.0.join(path);
        let f = std::fs::File::open(&full).map_err(Error::io("open", &full))?;
        let mut out = Vec::new();
        f.take(MAX_SMALL_FILE).read_to_end(&mut out).map_err(Error::io("read", &full))?;
        Ok(out)
    }
}

/// A path resolved inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The physical path of the longest prefix that exists.
    pub existing: PathBuf,
    /// Components below it that do not exist yet (to be made).
    pub missing: Vec<OsString>,
    /// What is at the full path when it exists (`None` when `missing` is not empty).
    pub node: Option<Node>,
}

impl Resolved {
    /// The full physical path.
    pub fn path(&self) -> PathBuf {
        let mut p = self.existing.clone();
        for m in &self.missing {
            p.push(m);
        }
        p
    }

    /// Whether it exists and is a directory.
    pub fn is_dir(&self) -> bool {
        self.missing.is_empty() && self.node == Some(Node::Dir)
    }
}

/// Resolve `path` (absolute or relative to the root) inside the root of `view`:
/// symlinks in it followed (absolute targets from the root; the last component too when
/// `follow_last`), `..` stopping at the root. A component that exists and is not a
/// directory, with more below it, is an error.
pub(crate) fn resolve(view: &dyn TreeView, path: &Path, follow_last: bool) -> Result<Resolved> {
    let mut queue: Vec<OsString> = components(path);
    queue.reverse(); // pop() takes the next component
    let mut cur = PathBuf::new();
    let mut links = 0;
    let mut node = Some(Node::Dir);
    while let Some(comp) = queue.pop() {
        if comp == ".." {
            cur.pop();
            node = Some(Node::Dir);
            continue;
        }
        let candidate = cur.join(&comp);
        match view.lstat(&candidate)? {
            None => {
                // This and everything after it are to be made; fold any `..` lexically.
                let mut missing = vec![comp];
                while let Some(c) = queue.pop() {
                    if c == ".." {
                        if missing.pop().is_none() {
                            cur.pop();
                        }
                    } else {
                        missing.push(c);
                    }
                }
                if missing.is_empty() {
                    let node = view.lstat(&cur)?;
                    return Ok(Resolved { existing: cur, missing, node });
                }
                return Ok(Resolved { existing: cur, missing, node: None });
            }
            Some(Node::Symlink(target)) if !queue.is_empty() || follow_last => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop { path: candidate });
                }
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                let mut t = components(&target);
                t.reverse();
                queue.extend(t);
            }
            Some(Node::Other) if !queue.is_empty() => return Err(Error::NotADirectory { path: candidate }),
            Some(n) => {
                cur = candidate;
                node = Some(n);
            }
        }
    }
    Ok(Resolved { existing: cur, missing: Vec::new(), node })
}

/// The normal components of `path`, `..` kept, `.` and the root dropped.
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Read `path` (symlinks followed inside the root), `None` when it does not exist or is
/// not a file.
pub(crate) fn read_in_root(view: &dyn TreeView, path: &str) -> Result<Option<Vec<u8>>> {
    let r = match resolve(view, Path::new(path), true) {
        Ok(r) => r,
        Err(Error::NotADirectory { .. } | Error::SymlinkLoop { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !r.missing.is_empty() || r.node != Some(Node::Other) {
        return Ok(None);
    }
    view.read(&r.existing).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::create_dir_all(r.join("run")).unwrap();
        std::fs::create_dir_all(r.join("var")).unwrap();
        std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
        std::os::unix::fs::symlink("/run", r.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("usr/lib/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        std::fs::write(r.join("usr/file"), "x").unwrap();
        d
    }

    #[test]
    fn resolves_inside_the_root() {
        let d = tree();
        let v = DiskView(d.path());
        let r = resolve(&v, Path::new("/lib/x/y"), true).unwrap();
        assert_eq!((r.existing, r.missing), (PathBuf::from("usr/lib"), vec![OsString::from("x"), "y".into()]));
        let r = resolve(&v, Path::new("/var/run/app.pid"), true).unwrap();
        assert_eq!(r.path(), PathBuf::from("run/app.pid"));
        let r = resolve(&v, Path::new("/lib/up/etc"), true).unwrap();
        assert_eq!(r.path(), PathBuf::from("etc"), "`..` stops at the root");
        assert!(resolve(&v, Path::new("/var/run"), true).unwrap().is_dir());
        let r = resolve(&v, Path::new("/var/run"), false).unwrap();
        assert_eq!(r.node, Some(Node::Symlink("/run".into())));
        assert!(matches!(resolve(&v, Path::new("/usr/file/x"), true), Err(Error::NotADirectory { .. })));
        assert!(matches!(resolve(&v, Path::new("/loop"), true), Err(Error::SymlinkLoop { .. })));
        assert_eq!(read_in_root(&v, "/usr/file").unwrap(), Some(b"x".to_vec()));
        assert_eq!(read_in_root(&v, "/etc/passwd").unwrap(), None);
    }
}
