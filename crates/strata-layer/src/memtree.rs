//! The merged view's tree in memory: path keys to inodes, and the union rules' tree
//! operations on it ([`MemTree`]), the in-memory twin of the applier's directory.
//!
//! Memory grows with the number of paths (about 150 bytes each plus their names), never
//! with the layers' sizes: contents are not held, only where they are
//! ([`DataSource`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::ops::Bound;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::entry::Timestamp;
use crate::error::Result;
use crate::resolve::{self, Lookup, Node as LookupNode};
use crate::sparse::SparseMap;
use crate::stats::LayerStats;
use crate::union::{Ctx, Data, Found, Node, NodeKind, UnionTree};

/// Where the content of a regular file is: which layer, which entry of its tar stream,
/// and where its bytes start in the uncompressed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataSource {
    /// Index of the layer (base first).
    pub layer: usize,
    /// Position of the entry in the layer's tar stream (0 for the first entry;
    /// extension headers are not entries).
    pub entry: u64,
    /// Offset of the first content byte in the uncompressed tar stream.
    pub offset: u64,
}

/// Type of an inode, with what only that type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: Timestamp,
    pub(crate) size: u64,
    /// Symlink target as stored; empty for other types.
    pub(crate) link: Box<[u8]>,
    /// Boxed: most files have none, and an inode per path is what the view's memory is.
    #[allow(clippy::box_collection)]
    pub(crate) xattrs: Option<Box<BTreeMap<OsString, Vec<u8>>>>,
    pub(crate) layer: usize,
    pub(crate) source: Option<DataSource>,
    /// The data segments of a sparse file (boxed: rare).
    pub(crate) sparse: Option<Box<SparseMap>>,
    /// Paths pointing at this inode; 0 for a free slot.
    pub(crate) nlink: u32,
    pub(crate) implicit: bool,
}

impl Inode {
    fn implicit_dir(layer: usize) -> Inode {
        Inode {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: Timestamp::default(),
            size: 0,
            link: Box::default(),
            xattrs: None,
            layer,
            source: None,
            sparse: None,
            nlink: 0,
            implicit: true,
        }
    }
}

/// Paths are keyed by their bytes with `/` replaced by NUL (which no name holds), so
/// that the map's byte order is [`crate::tar_order`]: a directory, then its whole
/// subtree, then its next sibling. The root is the empty key.
pub(crate) fn key_of(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().iter().map(|&b| if b == b'/' { 0 } else { b }).collect()
}

pub(crate) fn path_of(k: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(k.iter().map(|&b| if b == 0 { b'/' } else { b }).collect()))
}

pub(crate) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parent.len() + 1 + name.len());
    k.extend_from_slice(parent);
    if !parent.is_empty() {
        k.push(0);
    }
    k.extend_from_slice(name);
    k
}

/// Split a key into its parent and last component.
pub(crate) fn split_last(k: &[u8]) -> (&[u8], &[u8]) {
    match k.iter().rposition(|&b| b == 0) {
        Some(i) => (k.get(..i).unwrap_or_default(), k.get(i + 1..).unwrap_or_default()),
        None => (&[], k),
    }
}

/// The key range of `k`'s strict descendants.
pub(crate) fn subtree(k: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    if k.is_empty() {
        return (Bound::Excluded(Vec::new()), Bound::Unbounded);
    }
    let mut lo = k.to_vec();
    lo.push(0);
    let mut hi = k.to_vec();
    hi.push(1);
    (Bound::Included(lo), Bound::Excluded(hi))
}

pub(crate) fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// The tree itself: path keys to inode slots.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tree {
    pub(crate) map: BTreeMap<Vec<u8>, usize>,
    pub(crate) inodes: Vec<Inode>,
    free: Vec<usize>,
    /// Bytes of regular files that left the tree, by the layer that added them.
    pub(crate) wasted: Vec<u64>,
}

impl Tree {
    /// The entries, as `(layer, position in its tar stream)`, whose contents are in
    /// the final tree: the regular files some path still names.
    pub(crate) fn live_sources(&self) -> std::collections::HashSet<(usize, u64)> {
        self.inodes
            .iter()
            .filter(|n| n.nlink > 0 && n.kind == Kind::File)
            .filter_map(|n| n.source.map(|s| (s.layer, s.entry)))
            .collect()
    }

    pub(crate) fn new() -> Tree {
        let mut t = Tree::default();
        let root = t.alloc(Inode::implicit_dir(0));
        t.link(Vec::new(), root);
        t
    }

    pub(crate) fn alloc(&mut self, inode: Inode) -> usize {
        match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.inodes.get_mut(i) {
                    *slot = inode;
                }
                i
            }
            None => {
                self.inodes.push(inode);
                self.inodes.len() - 1
            }
        }
    }

    pub(crate) fn link(&mut self, key: Vec<u8>, ino: usize) {
        if let Some(n) = self.inodes.get_mut(ino) {
            n.nlink += 1;
        }
        if let Some(old) = self.map.insert(key, ino) {
            self.unref(old);
        }
    }

    pub(crate) fn unref(&mut self, ino: usize) {
        let Some(n) = self.inodes.get_mut(ino) else { return };
        n.nlink = n.nlink.saturating_sub(1);
        if n.nlink == 0 {
            if n.kind == Kind::File
                && let Some(w) = self.wasted.get_mut(n.layer)
            {
                *w += n.size;
            }
            n.xattrs = None;
            n.link = Box::default();
            self.free.push(ino);
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<(usize, &Inode)> {
        let &ino = self.map.get(key)?;
        self.inodes.get(ino).map(|n| (ino, n))
    }

    pub(crate) fn is_dir(&self, key: &[u8]) -> bool {
        self.get(key).is_some_and(|(_, n)| n.kind == Kind::Dir)
    }

    /// Remove `key` and everything under it.
    pub(crate) fn remove_all(&mut self, key: &[u8]) {
        let doomed: Vec<Vec<u8>> = self.map.range::<Vec<u8>, _>(subtree(key)).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            if let Some(ino) = self.map.remove(&k) {
                self.unref(ino);
            }
        }
        if !key.is_empty()
            && let Some(ino) = self.map.remove(key)
        {
            self.unref(ino);
        }
    }

    /// Names directly in directory `key`, in order.
    pub(crate) fn children(&self, key: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let (mut lo, hi) = subtree(key);
        let skip = if key.is_empty() { 0 } else { key.len() + 1 };
        while let Some((k, _)) = self.map.range::<Vec<u8>, _>((lo.clone(), hi.clone())).next() {
            let rest = k.get(skip..).unwrap_or_default();
            // Every key's parent is in the map, so the first key past a child's subtree
            // is the next child; take the first component in any case.
            let name_len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let name = rest.get(..name_len).unwrap_or_default().to_vec();
            let mut next = join(key, &name);
            next.push(1);
            lo = Bound::Included(next);
            out.push(name);
        }
        out
    }

    /// Resolve `path` (a key) inside the root as `openat2(RESOLVE_IN_ROOT)` would, with
    /// the applier's own walk ([`resolve::resolve`]), to the key of what it names. The
    /// last component is followed too when `follow_last`; without it, or when it is not a
    /// directory, it is returned as it is.
    pub(crate) fn walk(&self, path: &[u8], follow_last: bool) -> std::result::Result<Vec<u8>, Errno> {
        resolve::resolve(self, path, 0, follow_last).map(|r| r.path)
    }

    /// The directory `path` resolves to.
    pub(crate) fn open_dir(&self, path: &[u8]) -> std::result::Result<Vec<u8>, Errno> {
        let k = self.walk(path, true)?;
        if self.is_dir(&k) { Ok(k) } else { Err(Errno::NOTDIR) }
    }

    /// The directory `path` resolves to, made (mode 0755) with its missing ancestors
    /// when it does not exist, as the applier's `ensure_dir`.
    pub(crate) fn ensure_dir(&mut self, path: &[u8], layer: usize) -> std::result::Result<Vec<u8>, Errno> {
        match self.open_dir(path) {
            Err(Errno::NOENT) => {}
            r => return r,
        }
        if path.is_empty() {
            return Err(Errno::NOENT);
        }
        let (parent, name) = split_last(path);
        let pk = self.ensure_dir(parent, layer)?;
        let child = join(&pk, name);
        if self.get(&child).is_none() {
            let ino = self.alloc(Inode::implicit_dir(layer));
            self.link(child, ino);
        }
        self.open_dir(path)
    }
}

/// Keys are real paths with NUL for `/`: a lookup is one map lookup of the key.
impl Lookup for Tree {
    type Dir = ();

    fn lookup(&self, _: Option<&()>, key: &[u8], _: &[u8]) -> std::result::Result<LookupNode<'_, ()>, Errno> {
        let Some((_, n)) = self.get(key) else { return Err(Errno::NOENT) };
        Ok(match n.kind {
            Kind::Dir => LookupNode::Dir(()),
            Kind::Symlink => LookupNode::Symlink(Cow::Borrowed(&n.link)),
            _ => LookupNode::Other,
        })
    }
}

/// An entry of a layer: the layer's index and the entry's position in its tar stream.
pub(crate) type EntryId = (usize, u64);

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
    /// The last parent directory resolved (logical key -> physical key); dropped
    /// whenever anything is removed.
    cache: Option<(Vec<u8>, Vec<u8>)>,
    /// The figures of the layer being folded.
    pub(crate) stats: LayerStats,
    /// What a plan is made of, when one is being made.
    pub(crate) records: Option<Records>,
}

fn io_errno(e: Errno) -> io::Error {
    errno(e)
}

impl MemTree {
    pub(crate) fn new(records: bool) -> MemTree {
        MemTree {
            tree: Tree::new(),
            layer: 0,
            cache: None,
            stats: LayerStats::empty(""),
            records: records.then(Records::default),
        }
    }

    /// The tree of `layers` layers folded already, to fold more onto.
    pub(crate) fn onto(mut tree: Tree, layers: usize) -> MemTree {
        tree.wasted = vec![0; layers];
        MemTree { tree, layer: layers, cache: None, stats: LayerStats::empty(""), records: None }
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
    }

    /// The print of the layer being folded, when a plan is being made.
    pub(crate) fn print(&mut self) -> Option<&mut crate::union::HeaderPrint> {
        self.records.as_mut().and_then(|r| r.prints.last_mut())
    }

    /// Put a new inode at `k`, replacing whatever is there (a directory with its
    /// subtree).
    fn replace(&mut self, k: Vec<u8>, mut inode: Inode, node: &Node) {
        if self.tree.get(&k).is_some() {
            self.remove_key(&k);
        }
        inode.layer = self.layer;
        inode.xattrs = xattrs_of(node);
        let ino = self.tree.alloc(inode);
        self.tree.link(k, ino);
    }

    fn remove_key(&mut self, k: &[u8]) {
        self.tree.remove_all(k);
        self.cache = None;
    }

    /// A directory entry over an existing directory: its contents stay; mode, owner and
    /// mtime are replaced; xattrs are set over the ones it has (the applier sets, never
    /// removes).
    fn dir_meta(&mut self, k: &[u8], node: &Node) {
        let layer = self.layer;
        let Some(&ino) = self.tree.map.get(k) else { return };
        let Some(n) = self.tree.inodes.get_mut(ino) else { return };
        (n.mode, n.uid, n.gid, n.mtime, n.layer, n.implicit) =
            (node.mode, node.uid, node.gid, timestamp(node), layer, false);
        if let Some(x) = xattrs_of(node) {
            n.xattrs.get_or_insert_with(Box::default).extend(*x);
        }
    }
}

fn timestamp(node: &Node) -> Timestamp {
    Timestamp::new(node.mtime.secs, i64::from(node.mtime.nanos))
}

#[allow(clippy::box_collection)]
fn xattrs_of(node: &Node) -> Option<Box<BTreeMap<OsString, Vec<u8>>>> {
    if node.xattrs.is_empty() {
        return None;
    }
    Some(Box::new(node.xattrs.iter().map(|(k, v)| (OsString::from_vec(k.clone()), v.clone())).collect()))
}

fn key_bytes(name: &OsStr) -> &[u8] {
    name.as_bytes()
}

impl UnionTree for MemTree {
    /// The physical key of the directory.
    type Dir = Vec<u8>;

    fn root(&mut self) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    fn parent(&mut self, path: &Path, create: bool) -> io::Result<Vec<u8>> {
        let logical = key_of(path.parent().unwrap_or(Path::new("")));
        if let Some((lk, pk)) = &self.cache
            && *lk == logical
        {
            return Ok(pk.clone());
        }
        let pk = if create { self.tree.ensure_dir(&logical, self.layer) } else { self.tree.open_dir(&logical) }
            .map_err(io_errno)?;
        self.cache = Some((logical, pk.clone()));
        Ok(pk)
    }

    fn find(&mut self, dir: &Vec<u8>, name: &OsStr) -> io::Result<Option<Found>> {
        Ok(self
            .tree
            .get(&join(dir, key_bytes(name)))
            .map(|(_, n)| if n.kind == Kind::Dir { Found::Dir } else { Found::Other }))
    }

    fn subdir(&mut self, dir: &Vec<u8>, name: &OsStr) -> io::Result<Vec<u8>> {
        let k = join(dir, key_bytes(name));
        match self.tree.get(&k) {
            Some((_, n)) if n.kind == Kind::Dir => Ok(k),
            Some(_) => Err(io_errno(Errno::NOTDIR)),
            None => Err(io_errno(Errno::NOENT)),
        }
    }

    fn children(&mut self, dir: &Vec<u8>) -> io::Result<Vec<(OsString, bool)>> {
        Ok(self
            .tree
            .children(dir)
            .into_iter()
            .map(|name| {
                let is_dir = self.tree.is_dir(&join(dir, &name));
                (OsString::from_vec(name), is_dir)
            })
            .collect())
    }

    fn remove(&mut self, dir: &Vec<u8>, name: &OsStr) -> io::Result<()> {
        self.remove_key(&join(dir, key_bytes(name)));
        Ok(())
    }

    fn make_dir(&mut self, dir: &Vec<u8>, name: &OsStr) -> io::Result<()> {
        let k = join(dir, key_bytes(name));
        if self.tree.get(&k).is_some() {
            return Err(io_errno(Errno::EXIST));
        }
        let ino = self.tree.alloc(Inode::implicit_dir(self.layer));
        self.tree.link(k, ino);
        Ok(())
    }

    fn create(&mut self, dir: &Vec<u8>, name: &OsStr, node: &Node, _: &mut dyn Data, cx: Ctx<'_>) -> Result<()> {
        let k = join(dir, key_bytes(name));
        let new = |kind: Kind, mode: u32, size: u64, link: &[u8], source: Option<DataSource>| Inode {
            kind,
            mode,
            uid: node.uid,
            gid: node.gid,
            mtime: timestamp(node),
            size,
            link: link.into(),
            xattrs: None,
            layer: 0,
            source,
            sparse: None,
            nlink: 0,
            implicit: false,
        };
        let inode = match &node.kind {
            NodeKind::Dir => {
                if self.tree.is_dir(&k) {
                    self.dir_meta(&k, node);
                    return Ok(());
                }
                new(Kind::Dir, node.mode, 0, b"", None)
            }
            NodeKind::File => {
                self.stats.files += 1;
                self.stats.bytes_added += node.size;
                let source = DataSource { layer: self.layer, entry: node.ordinal, offset: node.offset };
                if let Some(rec) = &mut self.records {
                    rec.files.push((self.layer, node.ordinal, node.size));
                }
                let mut inode = new(Kind::File, node.mode, node.size, b"", Some(source));
                inode.sparse = node.sparse.clone().map(Box::new);
                inode
            }
            NodeKind::Symlink(target) => new(Kind::Symlink, 0o777, 0, target, None),
            NodeKind::Char(major, minor) => new(Kind::Char(*major, *minor), node.mode, 0, b"", None),
            NodeKind::Block(major, minor) => new(Kind::Block(*major, *minor), node.mode, 0, b"", None),
            NodeKind::Fifo => new(Kind::Fifo, node.mode, 0, b"", None),
            NodeKind::HardLink(_) => return Err(cx.unsafe_entry("a hard link is made by link(), not create()".into())),
        };
        self.replace(k, inode, node);
        Ok(())
    }

    fn link(
        &mut self,
        dir: &Vec<u8>,
        name: &OsStr,
        (tdir, tname): (&Vec<u8>, &OsStr),
        node: &Node,
        _: &mut dyn Data,
        cx: Ctx<'_>,
    ) -> Result<()> {
        let k = join(dir, key_bytes(name));
        let tk = join(tdir, key_bytes(tname));
        // linkat(2): the old name is looked up first, then the new one (EEXIST: the
        // applier removes what is there and links again), then a directory is refused.
        if self.tree.get(&tk).is_none() {
            return Err(cx.errno("link")(Errno::NOENT));
        }
        if self.tree.get(&k).is_some() {
            self.remove_key(&k);
        }
        let Some((ino, n)) = self.tree.get(&tk) else { return Err(cx.errno("link")(Errno::NOENT)) };
        if n.kind == Kind::Dir {
            return Err(cx.errno("link")(Errno::PERM));
        }
        let source = n.source.map(|s| (s.layer, s.entry));
        self.tree.link(k, ino);
        if let Some(rec) = &mut self.records {
            rec.links.push((self.layer, node.ordinal, source));
        }
        Ok(())
    }

    fn set_root(&mut self, node: &Node, _: Ctx<'_>) -> Result<()> {
        self.dir_meta(&[], node);
        Ok(())
    }
}
