//! The union rules' tree operations on the in-memory [`Tree`]: [`MemTree`] folds layers
//! as the applier applies them to a directory, and keeps each layer's figures.

use super::*;
use crate::diff::{Change, ChangeKind};
use crate::union::rule::{Effect, Event, Made, effect};

/// What the fold records for a [`crate::Plan`].
#[derive(Default)]
pub(crate) struct Records {
    /// Each layer's header print.
    pub(crate) prints: Vec<crate::union::HeaderPrint>,
    /// Regular files created: layer, position in its tar stream, size.
    pub(crate) files: Vec<(usize, u64, u64)>,
    /// Hard links made: layer, position, and the entry whose contents the linked inode
    /// has (none when it is not a regular file).
    pub(crate) links: Vec<(usize, u64, Option<EntryId>)>,
}

/// The tree as the union rules see it, layer after layer, with what each layer adds.
pub(crate) struct MemTree {
    pub(crate) tree: Tree,
    /// The layer being folded.
    layer: usize,
    /// The last parent directory resolved (logical path -> node); dropped whenever
    /// anything is removed.
    cache: Option<(Vec<u8>, u32)>,
    /// The figures of the layer being folded.
    pub(crate) stats: LayerStats,
    /// What a plan is made of, when one is being made.
    pub(crate) records: Option<Records>,
    /// What each layer changes, when asked for ([`crate::MergeOptions::changes`]).
    pub(crate) changes: Option<Vec<Vec<Change>>>,
}

fn io_errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

impl MemTree {
    pub(crate) fn new(records: bool) -> MemTree {
        MemTree {
            tree: Tree::new(),
            layer: 0,
            cache: None,
            stats: LayerStats::empty(""),
            records: records.then(Records::default),
            changes: None,
        }
    }

    /// The tree of `layers` layers folded already, to fold more onto.
    pub(crate) fn onto(mut tree: Tree, layers: usize) -> MemTree {
        tree.wasted = vec![0; layers];
        MemTree { tree, layer: layers, cache: None, stats: LayerStats::empty(""), records: None, changes: None }
    }

    /// Start layer `layer`, named `name`.
    pub(crate) fn begin(&mut self, layer: usize, name: &str) {
        if let Some(r) = &mut self.records {
            r.prints.push(crate::union::HeaderPrint::default());
        }
        self.layer = layer;
        self.cache = None;
        self.tree.wasted.push(0);
        self.stats = LayerStats::empty(name);
        if let Some(c) = &mut self.changes {
            c.push(Vec::new());
        }
    }

    /// The print of the layer being folded, when a plan is being made.
    pub(crate) fn print(&mut self) -> Option<&mut crate::union::HeaderPrint> {
        self.records.as_mut().and_then(|r| r.prints.last_mut())
    }

    /// Count a path this layer writes: modified when the lower layers (or an earlier
    /// entry of this layer) have it, added when not.
    fn count_change(&mut self, exists: bool) -> ChangeKind {
        if exists {
            self.stats.paths_modified += 1;
            ChangeKind::Modified
        } else {
            self.stats.paths_added += 1;
            ChangeKind::Added
        }
    }

    /// Keep what happened at `name` in `dir` (with what is there now, unless deleted)
    /// when changes are kept.
    fn record(&mut self, dir: u32, name: &[u8], kind: ChangeKind) {
        let Some(layer) = self.changes.as_mut().and_then(|c| c.last_mut()) else { return };
        let mut path = self.tree.path(dir);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        let meta = match kind {
            ChangeKind::Deleted => None,
            _ => self
                .tree
                .child(dir, name)
                .and_then(|c| self.tree.get(c))
                .map(|(ino, n)| self.tree.meta(path.clone(), ino, n)),
        };
        layer.push(Change::in_layer(path_buf(path), kind, meta));
    }

    fn remove_node(&mut self, n: u32) {
        self.tree.remove_all(n);
        self.cache = None;
    }

    /// Put a new inode at `name` in `dir`, replacing whatever is there (a directory
    /// with its subtree).
    fn replace(&mut self, dir: u32, name: &[u8], mut inode: Inode, extra: Option<Extra>) -> Result<(), Errno> {
        if let Some(c) = self.tree.child(dir, name) {
            self.remove_node(c);
        }
        inode.set_layer(self.layer);
        let ino = self.tree.alloc(inode, extra);
        self.tree.link(dir, name, ino).map(|_| ())
    }

    /// A directory entry over an existing directory (node `n`): its contents stay; mode,
    /// owner and mtime are replaced; xattrs are set over the ones it has (the applier
    /// sets, never removes).
    fn dir_meta(&mut self, n: u32, node: &Node) {
        let Some((ino, _)) = self.tree.get(n) else { return };
        if let Some(i) = self.tree.inode_mut(ino) {
            (i.uid, i.gid, i.mtime_sec, i.mtime_nsec) = (node.uid, node.gid, node.mtime.secs, node.mtime.nanos);
            i.set_mode(node.mode);
            i.set_layer(self.layer);
            i.bits &= !IMPLICIT;
        }
        if !node.xattrs.is_empty() {
            let e = self.tree.extras.entry(ino).or_default();
            e.xattrs.extend(xattrs_of(node));
        }
    }
}

fn xattrs_of(node: &Node) -> impl Iterator<Item = (OsString, Vec<u8>)> + '_ {
    node.xattrs.iter().map(|(k, v)| (OsString::from_vec(k.clone()), v.clone()))
}

/// A new inode for `node`, and what goes aside.
fn inode_of(node: &Node, kind: Kind) -> (Inode, Option<Extra>) {
    let mut i = Inode::new(kind, 0);
    (i.uid, i.gid, i.mtime_sec, i.mtime_nsec) = (node.uid, node.gid, node.mtime.secs, node.mtime.nanos);
    i.set_mode(node.mode);
    let mut extra = Extra::default();
    let mut any = !node.xattrs.is_empty();
    extra.xattrs = xattrs_of(node).collect();
    match &node.kind {
        NodeKind::Symlink(target) => {
            i.set_mode(0o777);
            extra.link = target.clone().into_boxed_slice();
            any = true;
        }
        NodeKind::Char(major, minor) | NodeKind::Block(major, minor) => {
            extra.dev = (*major, *minor);
            any = true;
        }
        NodeKind::File if node.sparse.is_some() => {
            extra.sparse = node.sparse.clone();
            any = true;
        }
        _ => {}
    }
    (i, any.then_some(extra))
}

impl UnionTree for MemTree {
    /// The node of the directory.
    type Dir = u32;

    fn root(&mut self) -> io::Result<u32> {
        Ok(ROOT)
    }

    fn parent(&mut self, path: &Path, create: bool) -> io::Result<u32> {
        let logical = path.parent().unwrap_or(Path::new("")).as_os_str().as_bytes();
        if let Some((lk, n)) = &self.cache
            && lk == logical
        {
            return Ok(*n);
        }
        let n = if create { self.tree.ensure_dir(logical, self.layer) } else { self.tree.open_dir(logical) }
            .map_err(io_errno)?;
        self.cache = Some((logical.to_vec(), n));
        Ok(n)
    }

    fn find(&mut self, dir: &u32, name: &OsStr) -> io::Result<Option<Found>> {
        Ok(self.tree.child(*dir, name.as_bytes()).map(|c| if self.tree.is_dir(c) { Found::Dir } else { Found::Other }))
    }

    fn subdir(&mut self, dir: &u32, name: &OsStr) -> io::Result<u32> {
        match self.tree.child(*dir, name.as_bytes()) {
            Some(c) if self.tree.is_dir(c) => Ok(c),
            Some(_) => Err(io_errno(Errno::NOTDIR)),
            None => Err(io_errno(Errno::NOENT)),
        }
    }

    fn children(&mut self, dir: &u32) -> io::Result<Vec<(OsString, bool)>> {
        Ok(self
            .tree
            .children(*dir)
            .into_iter()
            .map(|c| (OsString::from_vec(self.tree.name(c).to_vec()), self.tree.is_dir(c)))
            .collect())
    }

    fn remove(&mut self, dir: &u32, name: &OsStr) -> io::Result<()> {
        if let Some(c) = self.tree.child(*dir, name.as_bytes()) {
            self.stats.paths_removed += 1;
            self.record(*dir, name.as_bytes(), ChangeKind::Deleted);
            self.remove_node(c);
        }
        Ok(())
    }

    fn make_dir(&mut self, dir: &u32, name: &OsStr) -> io::Result<()> {
        if self.tree.child(*dir, name.as_bytes()).is_some() {
            return Err(io_errno(Errno::EXIST));
        }
        let ino = self.tree.alloc(Inode::implicit_dir(self.layer), None);
        self.tree.link(*dir, name.as_bytes(), ino).map(|_| ()).map_err(io_errno)
    }

    fn create(&mut self, dir: &u32, name: &OsStr, node: &Node, _: &mut dyn Data, cx: Ctx<'_>) -> Result<()> {
        let name = name.as_bytes();
        let existing = self.tree.child(*dir, name);
        let lower = existing.map(|c| if self.tree.is_dir(c) { Found::Dir } else { Found::Other });
        let event = Event::Entry(if matches!(node.kind, NodeKind::Dir) { Found::Dir } else { Found::Other });
        if let (Some(c), Effect::Merge) = (existing, effect(lower, event, Made::default())) {
            self.dir_meta(c, node);
            return Ok(());
        }
        let (inode, extra) = match &node.kind {
            NodeKind::Dir => inode_of(node, Kind::Dir),
            NodeKind::File => {
                let entry = u32::try_from(node.ordinal).map_err(|_| Error::LimitExceeded {
                    layer: cx.layer.to_owned(),
                    entry: Some(String::from_utf8_lossy(cx.entry).into_owned()),
                    what: "entries in one layer",
                    actual: node.ordinal,
                    limit: u64::from(u32::MAX),
                })?;
                self.stats.files += 1;
                self.stats.bytes_added += node.size;
                if let Some(rec) = &mut self.records {
                    rec.files.push((self.layer, node.ordinal, node.size));
                }
                let (mut i, e) = inode_of(node, Kind::File);
                (i.size, i.entry, i.offset) = (node.size, entry, node.offset);
                i.bits |= HAS_SOURCE;
                (i, e)
            }
            NodeKind::Symlink(_) => inode_of(node, Kind::Symlink),
            NodeKind::Char(..) => inode_of(node, Kind::Char),
            NodeKind::Block(..) => inode_of(node, Kind::Block),
            NodeKind::Fifo => inode_of(node, Kind::Fifo),
            NodeKind::HardLink(_) => return Err(cx.unsafe_entry("a hard link is made by link(), not create()".into())),
        };
        let change = self.count_change(existing.is_some());
        self.replace(*dir, name, inode, extra).map_err(cx.errno("create"))?;
        self.record(*dir, name, change);
        Ok(())
    }

    fn link(
        &mut self,
        dir: &u32,
        name: &OsStr,
        (tdir, tname): (&u32, &OsStr),
        node: &Node,
        _: &mut dyn Data,
        cx: Ctx<'_>,
    ) -> Result<()> {
        let name = name.as_bytes();
        // linkat(2): the old name is looked up first, then the new one (EEXIST: the
        // applier removes what is there and links again), then a directory is refused.
        let Some(t) = self.tree.child(*tdir, tname.as_bytes()) else { return Err(cx.errno("link")(Errno::NOENT)) };
        if let Some(c) = self.tree.child(*dir, name) {
            self.remove_node(c);
        }
        // The target may have been under what was removed.
        let Some(t) = self.tree.child(*tdir, tname.as_bytes()).filter(|&x| x == t) else {
            return Err(cx.errno("link")(Errno::NOENT));
        };
        let Some((ino, n)) = self.tree.get(t) else { return Err(cx.errno("link")(Errno::NOENT)) };
        if n.kind() == Kind::Dir {
            return Err(cx.errno("link")(Errno::PERM));
        }
        let source = n.source().map(|s| (s.layer, s.entry));
        let change = self.count_change(self.tree.child(*dir, name).is_some());
        self.tree.link(*dir, name, ino).map_err(cx.errno("link"))?;
        self.record(*dir, name, change);
        if let Some(rec) = &mut self.records {
            rec.links.push((self.layer, node.ordinal, source));
        }
        Ok(())
    }

    fn set_root(&mut self, node: &Node, _: Ctx<'_>) -> Result<()> {
        self.dir_meta(ROOT, node);
        Ok(())
    }
}
