//! The union rules, written once: what each entry of a layer does to the tree the lower
//! layers made. The applier runs them on a directory on disk (`apply::Disk`), the merged
//! view, the plan, flatten and the layer analysis on a tree in memory
//! (`memtree::MemTree`); both implement [`UnionTree`], so they cannot disagree.
//!
//! The rules (OCI image spec, "Representing Changes"; `crates/strata-layer/docs/union.md`):
//!
//! - Entries are classified once ([`classify`]): normalised names, whiteouts, opaque
//!   markers, AUFS metadata skipped, hostile names refused.
//! - A plain entry replaces whatever is at its path, except that a directory entry over a
//!   directory keeps the directory's contents and takes the entry's metadata. Missing
//!   parent directories are made (mode 0755). Every path resolves inside the root.
//! - A whiteout `.wh.name` deletes what *lower* layers put at `name`. What this layer
//!   puts there (before or after the whiteout, in any order) stays: a whited-out
//!   directory keeps the entries this layer adds to it and loses the lower ones.
//! - An opaque marker `.wh..wh..opq` removes what lower layers put in its directory,
//!   keeping what this layer adds there, in any order.
//! - A hard link names a path of this or a lower layer; it shares the inode.

mod classify;
mod pathset;
mod print;
pub(crate) mod rule;

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::io::Errno;

pub(crate) use classify::{Classified, Header, Node, NodeKind, Op, classify, last_name};
pub(crate) use print::HeaderPrint;

use crate::error::{Error, Result};

/// What a name in a tree is, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    Dir,
    Other,
}

/// The entry being applied, for the errors of a tree's operations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) layer: &'a str,
    /// The entry's name as stored.
    pub(crate) entry: &'a [u8],
}

impl Ctx<'_> {
    /// An error maker for the file system operation `op`.
    pub(crate) fn fs(&self, op: &'static str) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Apply {
            layer: self.layer.to_owned(),
            entry: String::from_utf8_lossy(self.entry).into_owned(),
            op,
            source,
        }
    }

    /// [`Ctx::fs`] for an errno.
    pub(crate) fn errno(&self, op: &'static str) -> impl FnOnce(Errno) -> Error + '_ {
        move |e| self.fs(op)(io::Error::from_raw_os_error(e.raw_os_error()))
    }

    pub(crate) fn unsafe_entry(&self, reason: String) -> Error {
        Error::UnsafeEntry {
            layer: self.layer.to_owned(),
            entry: String::from_utf8_lossy(self.entry).into_owned(),
            reason,
        }
    }
}

/// The content of the entry being created, for the trees that write it.
pub(crate) trait Data {
    /// Pass the content to `f` chunk by chunk, each with its offset in the file (a
    /// sparse file's holes are skipped: the chunks jump over them).
    fn read_data(&mut self, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()>;
}

impl<B: std::io::BufRead> Data for crate::read::TarReader<B> {
    fn read_data(&mut self, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        self.read_content(f)
    }
}

/// Content already consumed (the merged view's scan reads it while scanning).
pub(crate) struct NoData;

impl Data for NoData {
    fn read_data(&mut self, _: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        Ok(())
    }
}

/// A tree the union rules act on. Every path is normalised (no `.`, `..` or empty
/// components) and non-empty unless said otherwise; names are single components.
/// Errors of the primitives are `errno`s as the file system would give them.
pub(crate) trait UnionTree {
    /// A directory of the tree, resolved inside the root.
    type Dir;

    /// The root directory.
    fn root(&mut self) -> io::Result<Self::Dir>;

    /// The parent directory of `path`, every symlink on the way resolved inside the
    /// root; with `create`, missing directories are made (mode 0755).
    fn parent(&mut self, path: &Path, create: bool) -> io::Result<Self::Dir>;

    /// What `name` in `dir` is, not following it; `None` when nothing is there.
    fn find(&mut self, dir: &Self::Dir, name: &OsStr) -> io::Result<Option<Found>>;

    /// The directory `name` in `dir` (which must be one).
    fn subdir(&mut self, dir: &Self::Dir, name: &OsStr) -> io::Result<Self::Dir>;

    /// The names in directory `dir` (from [`UnionTree::root`] or [`UnionTree::subdir`]),
    /// each with whether it is a directory.
    fn children(&mut self, dir: &Self::Dir) -> io::Result<Vec<(OsString, bool)>>;

    /// Remove `name` from `dir`, with everything under it.
    fn remove(&mut self, dir: &Self::Dir, name: &OsStr) -> io::Result<()>;

    /// Make the directory `name` in `dir`, mode 0755, owned by 0:0 (no layer declared
    /// it).
    fn make_dir(&mut self, dir: &Self::Dir, name: &OsStr) -> io::Result<()>;

    /// Create `name` in `dir` as `node` says (never a hard link), with its content from
    /// `data`, replacing whatever is there, except that a directory over a directory
    /// keeps its contents and takes the node's metadata.
    fn create(&mut self, dir: &Self::Dir, name: &OsStr, node: &Node, data: &mut dyn Data, cx: Ctx<'_>) -> Result<()>;

    /// Make `name` in `dir` a hard link to `target` (a name in a directory), replacing what is
    /// there, as `linkat(2)` would (`ENOENT` for a missing target, `EPERM` for a
    /// directory).
    fn link(
        &mut self,
        dir: &Self::Dir,
        name: &OsStr,
        target: (&Self::Dir, &OsStr),
        node: &Node,
        data: &mut dyn Data,
        cx: Ctx<'_>,
    ) -> Result<()>;

    /// Set the root's own metadata (an entry named `./`).
    fn set_root(&mut self, node: &Node, cx: Ctx<'_>) -> Result<()>;
}

/// The rules, applied layer after layer; it remembers which paths the current layer
/// made, which whiteouts and opaque markers must not touch.
#[derive(Debug, Default)]
pub(crate) struct Union {
    /// Paths this layer made, as the layer names them (symlinks on the way not
    /// resolved), as normalised paths, and the directories (as named) under which it
    /// made something.
    made: pathset::Made,
    /// Entries of this layer (extension headers not counted), whiteouts included.
    pub(crate) entries: u64,
    /// Whiteouts and opaque markers among them.
    pub(crate) whiteouts: u64,
}

fn key(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn is(e: &io::Error, code: Errno) -> bool {
    e.raw_os_error() == Some(code.raw_os_error())
}

impl Union {
    /// Start a layer.
    pub(crate) fn begin(&mut self) {
        self.made.clear();
        self.entries = 0;
        self.whiteouts = 0;
    }

    fn has_added_under(&self, p: &Path) -> bool {
        self.made.has_under(key(p))
    }

    /// Record that this layer made `p`.
    fn add(&mut self, p: &Path) {
        self.made.add(key(p));
    }

    /// Apply one classified entry of layer `layer` to `tree`.
    pub(crate) fn apply<T: UnionTree>(
        &mut self,
        tree: &mut T,
        entry: Classified,
        data: &mut dyn Data,
        layer: &str,
    ) -> Result<()> {
        self.entries += 1;
        let cx = Ctx { layer, entry: &entry.raw };
        match entry.op {
            Op::Skip => Ok(()),
            Op::Whiteout { target } => {
                self.whiteouts += 1;
                self.whiteout(tree, &target, cx)
            }
            Op::Opaque { dir } => {
                self.whiteouts += 1;
                self.opaque(tree, &dir, cx)
            }
            // The root is not counted among the paths this layer made.
            Op::Root(node) => tree.set_root(&node, cx),
            Op::Keep { path } => {
                self.add(&path);
                Ok(())
            }
            Op::Create { path, node } => {
                let dir = tree.parent(&path, true).map_err(cx.fs("resolve parent directory"))?;
                let name = last_name(&path);
                match &node.kind {
                    NodeKind::HardLink(target) => {
                        // The target is resolved inside the root like any path.
                        let tdir = tree.parent(target, false).map_err(cx.fs("resolve hard link target"))?;
                        tree.link(&dir, name, (&tdir, last_name(target)), &node, data, cx)?;
                    }
                    _ => tree.create(&dir, name, &node, data, cx)?,
                }
                self.add(&path);
                Ok(())
            }
        }
    }

    /// `.wh.<name>`: delete `target` as the lower layers left it ([`rule::effect`]).
    fn whiteout<T: UnionTree>(&mut self, tree: &mut T, target: &Path, cx: Ctx<'_>) -> Result<()> {
        let made = rule::Made { entry: self.made.contains(key(target)), under: false };
        let dir = match tree.parent(target, false) {
            Ok(d) => d,
            Err(e) if made.entry || is(&e, Errno::NOENT) || is(&e, Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(cx.fs("resolve whiteout parent")(e)),
        };
        let name = last_name(target);
        let found = tree.find(&dir, name).map_err(cx.fs("stat"))?;
        let made = rule::Made { under: found == Some(Found::Dir) && self.has_added_under(target), ..made };
        match rule::effect(found, rule::Event::Whiteout, made) {
            rule::Effect::ClearLower => {
                let sub = tree.subdir(&dir, name).map_err(cx.fs("open directory"))?;
                self.clear_lower(tree, &sub, target, cx)
            }
            rule::Effect::Delete => tree.remove(&dir, name).map_err(cx.fs("remove")),
            _ => Ok(()),
        }
    }

    /// `.wh..wh..opq` in `dir_path`: hide what lower layers put there ([`rule::effect`]).
    fn opaque<T: UnionTree>(&mut self, tree: &mut T, dir_path: &Path, cx: Ctx<'_>) -> Result<()> {
        let dir = if dir_path.as_os_str().is_empty() {
            tree.root().map_err(cx.fs("open root"))?
        } else {
            let parent = tree.parent(dir_path, true).map_err(cx.fs("resolve parent directory"))?;
            let name = last_name(dir_path);
            let found = tree.find(&parent, name).map_err(cx.fs("stat"))?;
            if rule::effect(found, rule::Event::Opaque, rule::Made::default()) == rule::Effect::MakeDir {
                if found.is_some() {
                    tree.remove(&parent, name).map_err(cx.fs("remove existing"))?;
                }
                tree.make_dir(&parent, name).map_err(cx.fs("mkdir"))?;
            }
            // The layer has this directory now, whatever order its entries come in: an
            // opaque marker of an ancestor (or a whiteout of it) later in the layer
            // keeps it, as it would if the marker came after.
            self.add(dir_path);
            tree.subdir(&parent, name).map_err(cx.fs("open directory"))?
        };
        self.clear_lower(tree, &dir, dir_path, cx)
    }

    /// Remove from directory `dir` (named `path` by the layer) everything lower layers
    /// put there, keeping what this layer added and the directories leading to it.
    fn clear_lower<T: UnionTree>(&mut self, tree: &mut T, dir: &T::Dir, path: &Path, cx: Ctx<'_>) -> Result<()> {
        for (name, is_dir) in tree.children(dir).map_err(cx.fs("list directory"))? {
            let child = path.join(&name);
            let added = self.made.contains(key(&child));
            if is_dir && (added || self.has_added_under(&child)) {
                let sub = tree.subdir(dir, &name).map_err(cx.fs("open directory"))?;
                self.clear_lower(tree, &sub, &child, cx)?;
            } else if !added {
                tree.remove(dir, &name).map_err(cx.fs("remove"))?;
            }
        }
        Ok(())
    }
}
