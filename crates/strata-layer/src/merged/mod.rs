//! The union merge in memory: the layers' headers folded into an index of the final
//! tree ([`crate::fold`], the union rules of [`crate::union`] on a tree in memory),
//! without writing anything; list, stat, read one file, export the flattened tree as
//! one tar, and say how much of each layer the final tree still uses. See
//! `docs/merged.md`.

mod export;
mod file;

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

pub use export::{ExportOptions, ExportReport, FEED_DEPTH};
pub use file::FileReader;

#[cfg(doc)]
use crate::diff::ChangeKind;
use crate::diff::Changes;
use crate::entry::EntryMeta;
use crate::error::{Error, Result};
use crate::fold::{MergeOptions, fold_sources};
use crate::memtree::{DataSource, Inode, Kind, Tree, path_buf};
use crate::path;
use crate::read::Limits;
use crate::source::LayerSource;
use crate::stats::LayerStats;

/// One path of the merged tree, with the metadata the unpacked tree has.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergedEntry {
    /// Path (relative, normalised; the root is the empty path), type, mode, owner, size,
    /// mtime and xattrs. The kind is never [`crate::EntryKind::HardLink`]: the paths of one
    /// inode share it and its metadata, as `lstat` shows them; see
    /// [`MergedEntry::nlink`]. A symlink's mode is `0o777`, as on Linux.
    pub meta: EntryMeta,
    /// The layer that made this file (or last declared this directory).
    pub layer: usize,
    /// Identity of the file: paths with the same inode are hard links to one another.
    pub inode: u64,
    /// Paths of the final tree that share the inode (1 unless hard linked; 1 for
    /// directories).
    pub nlink: u32,
    /// A directory no layer declared (a missing parent, or an opaque marker's
    /// directory): mode 0755, owner 0:0, mtime 0 here, while the applier leaves such a
    /// directory at the time of the unpack.
    pub implicit: bool,
    /// Where the content is (regular files).
    pub source: Option<DataSource>,
}

/// The whole image: totals of [`LayerStats`] and the efficiency figure.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Analysis {
    /// Sum of the layers' blob sizes.
    pub compressed_size: u64,
    /// Sum of the layers' uncompressed sizes.
    pub uncompressed_size: u64,
    /// Sum of [`LayerStats::bytes_added`].
    pub bytes_added: u64,
    /// Sum of [`LayerStats::bytes_wasted`].
    pub bytes_wasted: u64,
    /// Content bytes of the final tree, each file once however many paths it has:
    /// `bytes_added - bytes_wasted`.
    pub final_bytes: u64,
    /// `1 - bytes_wasted / bytes_added` (1 when nothing is added).
    pub efficiency: f64,
    /// Paths in the final tree (the root included).
    pub paths: u64,
    /// Regular files in the final tree (each inode once).
    pub files: u64,
}

/// A path whose content a layer wrote and a later entry deleted or overwrote: bytes the
/// image carries that the final tree does not have (what dive calls an inefficiency).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WastedFile {
    /// The path (relative, normalised) the file had when it left the tree.
    pub path: PathBuf,
    /// Content bytes of the copies that left the tree.
    pub bytes_wasted: u64,
    /// Times a regular file was written at this path: the copies that left, and the
    /// one the final tree has, if any.
    pub writes: u32,
    /// The layers that wrote the copies that left, base first.
    pub layers: Vec<usize>,
}

/// The final tree of a stack of layers, folded from their headers in memory.
///
/// Memory grows with the number of paths (about 150 bytes each plus their names), never
/// with the layers' sizes: contents are skipped while folding, and read again from the
/// layers only when asked for ([`MergedTree::read_file`], [`MergedTree::export_to`]).
#[derive(Debug)]
pub struct MergedTree {
    tree: Tree,
    layers: Vec<LayerStats>,
    limits: Limits,
    changes: Vec<Changes>,
}

/// Building.
impl MergedTree {
    /// Fold `layers`, base first, into the final tree, verifying each layer's `diff_id`
    /// when its source gives one (an [`Error::DiffIdMismatch`] naming the layer).
    ///
    /// Every rule of [`crate::apply_layers`] applies, with the same errors for hostile
    /// input (the applier's [`Error::Apply`] errors carry the `errno` the file system
    /// would have given). Layers are decompressed and hashed on up to
    /// [`MergeOptions::threads`] threads at once, each reading ahead a bounded number of
    /// headers; the fold itself runs on the calling thread, layer after layer.
    pub fn build<R, I>(layers: I, opts: &MergeOptions) -> Result<MergedTree>
    where
        R: Read + Send,
        I: IntoIterator<Item = LayerSource<R>>,
    {
        let (tree, layers, _, changes) = fold_sources(layers, opts, false)?;
        Ok(MergedTree { tree, layers, limits: opts.limits.clone(), changes })
    }

    /// A merged tree of a fold's parts.
    pub(crate) fn from_parts(tree: Tree, layers: Vec<LayerStats>, limits: Limits, changes: Vec<Changes>) -> Self {
        MergedTree { tree, layers, limits, changes }
    }

    /// The entry at `path` with its last component followed (symlinks resolved inside
    /// the root, as `stat` would): where a file's content really is.
    pub fn stat_follow(&self, path: impl AsRef<Path>) -> Result<MergedEntry> {
        let path = path.as_ref();
        let k = self.lookup(path, true)?;
        let (ino, n) = self.tree.get(k).ok_or_else(|| not_found(path, Errno::NOENT))?;
        Ok(self.entry(self.tree.path(k), ino, n))
    }
}

fn not_found(path: &Path, e: Errno) -> Error {
    let reason = match e {
        Errno::LOOP => "too many levels of symbolic links",
        Errno::NOTDIR => "a component is not a directory",
        _ => "no such file or directory",
    };
    Error::PathNotFound { path: path.to_path_buf(), reason }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Char => "char device",
        Kind::Block => "block device",
        Kind::Fifo => "fifo",
    }
}

/// Looking things up.
impl MergedTree {
    /// The tree in memory (to fold more layers onto).
    pub(crate) fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The layers, base first, with their sizes and what the final tree keeps of them.
    pub fn layers(&self) -> &[LayerStats] {
        &self.layers
    }

    /// What each layer changes, base first, when the tree was built with
    /// [`MergeOptions::changes`] (empty otherwise): the paths it adds, modifies and
    /// removes, in the order the fold met them, with the metadata the path had right
    /// after (none for a removal). The rules are the union rules the fold applies: a
    /// removed directory is one [`ChangeKind::Deleted`] (its subtree goes with it), an
    /// opaque marker removes each path the layers below had in its directory, a path
    /// written twice is changed twice, and a directory replaced by something else takes
    /// its subtree with it. Directories the layer only names again (metadata over an
    /// existing directory) and missing parents it implies are not changes. Replaying
    /// layers `0..=n` in order gives the tree of the first `n + 1` layers; the counts
    /// are [`LayerStats::paths_added`], [`LayerStats::paths_modified`] and
    /// [`LayerStats::paths_removed`].
    pub fn layer_changes(&self) -> &[Changes] {
        &self.changes
    }

    /// Paths in the final tree, the root included.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the tree is only its root.
    pub fn is_empty(&self) -> bool {
        self.tree.len() <= 1
    }

    pub(crate) fn entry(&self, path: Vec<u8>, ino: u32, n: &Inode) -> MergedEntry {
        MergedEntry {
            meta: self.tree.meta(path, ino, n),
            layer: n.layer(),
            inode: u64::from(ino),
            nlink: if n.kind() == Kind::Dir { 1 } else { n.nlink },
            implicit: n.implicit(),
            source: n.source(),
        }
    }

    /// The key `path` names: normalised, parents resolved inside the root (symlinks
    /// followed as the applier follows them), the last component followed when
    /// `follow`.
    pub(crate) fn lookup(&self, path: &Path, follow: bool) -> Result<u32> {
        let norm = path::normalized(path.as_os_str().as_bytes()).map_err(|p| Error::PathNotFound {
            path: path.to_path_buf(),
            reason: match p {
                path::NameProblem::Nul => "path has a NUL byte",
                _ => "path has a '..' component",
            },
        })?;
        self.tree.walk(&norm, follow).map_err(|e| not_found(path, e))
    }

    /// The entry at `path` (`/etc/passwd` and `etc/passwd` alike), like `lstat` inside
    /// the unpacked tree: symlinks in parent components are followed inside the root,
    /// the last component is not. The entry's path is where it really is.
    pub fn stat(&self, path: impl AsRef<Path>) -> Result<MergedEntry> {
        let path = path.as_ref();
        let k = self.lookup(path, false)?;
        let (ino, n) = self.tree.get(k).ok_or_else(|| not_found(path, Errno::NOENT))?;
        Ok(self.entry(self.tree.path(k), ino, n))
    }

    /// Whether `path` is a directory (a last symlink not followed), as [`MergedTree::stat`]
    /// says, without building the entry: for callers asking it of thousands of paths.
    pub fn is_dir(&self, path: impl AsRef<Path>) -> bool {
        let Ok(k) = self.lookup(path.as_ref(), false) else { return false };
        self.tree.get(k).is_some_and(|(_, n)| n.kind() == Kind::Dir)
    }

    /// The layer of the entry at `path` (a last symlink not followed), as
    /// [`MergedTree::stat`] says, without building the entry.
    pub fn layer_of(&self, path: impl AsRef<Path>) -> Option<usize> {
        let k = self.lookup(path.as_ref(), false).ok()?;
        self.tree.get(k).map(|(_, n)| n.layer())
    }

    /// The entries directly in directory `dir` (symlinks followed), sorted by name.
    pub fn list(&self, dir: impl AsRef<Path>) -> Result<Vec<MergedEntry>> {
        let dir = dir.as_ref();
        let k = self.lookup(dir, true)?;
        match self.tree.get(k) {
            Some((_, n)) if n.kind() == Kind::Dir => {}
            Some((_, n)) => {
                return Err(Error::WrongKind { path: dir.to_path_buf(), expected: "dir", found: kind_name(n.kind()) });
            }
            None => return Err(not_found(dir, Errno::NOENT)),
        }
        let dir_path = self.tree.path(k);
        let mut out = Vec::new();
        for c in self.tree.sorted_children(k) {
            if let Some((ino, n)) = self.tree.get(c) {
                let mut p = dir_path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(self.tree.name(c));
                out.push(self.entry(p, ino, n));
            }
        }
        Ok(out)
    }

    /// Every path of the final tree, the root first, in tar order ([`crate::tar_order`]).
    pub fn iter(&self) -> impl Iterator<Item = MergedEntry> + '_ {
        self.tree.walk_tar_order().filter_map(|(k, p)| self.tree.get(k).map(|(ino, n)| self.entry(p, ino, n)))
    }

    /// The paths of the regular files of the final tree, in tar order: what
    /// [`MergedTree::iter`] gives of them, without building the other entries or any
    /// entry's metadata.
    pub fn file_paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.tree
            .walk_tar_order()
            .filter(|(k, _)| self.tree.get(*k).is_some_and(|(_, n)| n.kind() == Kind::File))
            .map(|(_, p)| path_buf(p))
    }

    /// The files some layer wrote that the final tree no longer has, by path, the most
    /// bytes wasted first (then by path). Their bytes add up to [`Analysis::bytes_wasted`].
    pub fn wasted_files(&self) -> Vec<WastedFile> {
        let mut by_path: std::collections::BTreeMap<&[u8], WastedFile> = std::collections::BTreeMap::new();
        for (path, layer, size) in &self.tree.wasted_files {
            let w = by_path.entry(path).or_insert_with(|| WastedFile {
                path: path_buf(path.clone()),
                bytes_wasted: 0,
                writes: 0,
                layers: Vec::new(),
            });
            w.bytes_wasted += size;
            w.writes += 1;
            w.layers.push(*layer);
        }
        let mut out: Vec<WastedFile> = by_path
            .into_iter()
            .map(|(path, mut w)| {
                let live = self
                    .tree
                    .walk(path, false)
                    .ok()
                    .and_then(|k| self.tree.get(k))
                    .is_some_and(|(_, n)| n.kind() == Kind::File);
                w.writes += u32::from(live);
                w.layers.sort_unstable();
                w
            })
            .collect();
        out.sort_by(|a, b| b.bytes_wasted.cmp(&a.bytes_wasted).then_with(|| a.path.cmp(&b.path)));
        out
    }

    /// Per layer and whole-image figures: how many bytes each layer adds and how many of
    /// them the final tree no longer has (see `docs/merged.md` for the definitions).
    pub fn analysis(&self) -> Analysis {
        let sum = |f: fn(&LayerStats) -> u64| self.layers.iter().map(f).sum::<u64>();
        let (added, wasted) = (sum(|l| l.bytes_added), sum(|l| l.bytes_wasted));
        let files = self.tree.inodes().filter(|(_, n)| n.kind() == Kind::File).count() as u64;
        Analysis {
            compressed_size: sum(|l| l.compressed_size),
            uncompressed_size: sum(|l| l.uncompressed_size),
            bytes_added: added,
            bytes_wasted: wasted,
            final_bytes: added.saturating_sub(wasted),
            efficiency: if added == 0 { 1.0 } else { 1.0 - wasted as f64 / added as f64 },
            paths: self.tree.len() as u64,
            files,
        }
    }
}
