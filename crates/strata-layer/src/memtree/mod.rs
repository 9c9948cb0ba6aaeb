//! The merged view's tree in memory ([`Tree`]), and the union rules' tree operations on
//! it ([`MemTree`], in `union`), the in-memory twin of the applier's directory.
//!
//! Memory grows with the number of paths, never with the layers' sizes: contents are
//! not held, only where they are ([`DataSource`]). The tree is a trie of names: each path
//! is a node of 28 bytes (its parent, its inode, its siblings, its name in one arena of
//! names), found through one hash table of 4-byte references; each inode is 48 bytes,
//! with what few inodes have (symlink targets, xattrs, sparse maps, device numbers) kept
//! aside. Both are stored in fixed-size chunks, so that growing never doubles them. About
//! 90 bytes a path in all, plus its last component's name.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::hash::BuildHasher;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use hashbrown::HashTable;
use rustix::io::Errno;

use crate::entry::{EntryKind, EntryMeta, Timestamp};
use crate::error::{Error, Result};
use crate::resolve::{self, End, Lookup, Node as LookupNode};
use crate::sparse::SparseMap;
use crate::stats::LayerStats;
use crate::union::{Ctx, Data, Found, Node, NodeKind, UnionTree};

mod union;
pub(crate) use union::{MemTree, Records};

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

/// Type of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
}

/// What few inodes have, kept aside.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extra {
    /// Symlink target as stored.
    pub(crate) link: Box<[u8]>,
    pub(crate) xattrs: BTreeMap<OsString, Vec<u8>>,
    pub(crate) sparse: Option<SparseMap>,
    /// Device numbers.
    pub(crate) dev: (u32, u32),
}

/// [`Inode::bits`]: permission and special bits (`mode & 0o7777`).
const MODE_MASK: u32 = 0o7777;
/// [`Inode::bits`]: where the [`Kind`] is (3 bits).
const KIND_SHIFT: u32 = 12;
/// [`Inode::bits`]: a directory no layer declared.
const IMPLICIT: u32 = 1 << 15;
/// [`Inode::bits`]: a regular file whose content is in a layer.
const HAS_SOURCE: u32 = 1 << 16;
/// [`Inode::bits`]: where the layer index is (the 15 high bits).
const LAYER_SHIFT: u32 = 17;
/// The most layers a tree can be folded from (a layer index takes 15 bits of an inode).
pub(crate) const MAX_LAYERS: usize = 1 << (32 - LAYER_SHIFT);

/// No node, no inode.
const NIL: u32 = u32::MAX;

/// One inode (48 bytes).
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub(crate) size: u64,
    mtime_sec: i64,
    /// Regular files: offset of the content in the layer's uncompressed stream.
    offset: u64,
    /// Regular files: position of the entry in its layer's tar stream.
    entry: u32,
    mtime_nsec: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Paths pointing at this inode; 0 for a free slot.
    pub(crate) nlink: u32,
    /// The mode's 12 bits, the [`Kind`], [`IMPLICIT`], [`HAS_SOURCE`], and the layer
    /// that made this file (or last declared this directory).
    bits: u32,
}

// What a million paths cost (the merged view's memory goal is 64 bytes a path).
const _: () = assert!(std::mem::size_of::<Inode>() == 48 && std::mem::size_of::<TrieNode>() == 28);

const KINDS: [Kind; 6] = [Kind::File, Kind::Dir, Kind::Symlink, Kind::Char, Kind::Block, Kind::Fifo];

impl Inode {
    fn new(kind: Kind, layer: usize) -> Inode {
        let mut i = Inode {
            size: 0,
            mtime_sec: 0,
            offset: 0,
            entry: 0,
            mtime_nsec: 0,
            uid: 0,
            gid: 0,
            nlink: 0,
            bits: (kind as u32) << KIND_SHIFT,
        };
        i.set_mode(if kind == Kind::Dir { 0o755 } else { 0o644 });
        i.set_layer(layer);
        i
    }

    fn implicit_dir(layer: usize) -> Inode {
        let mut i = Inode::new(Kind::Dir, layer);
        i.bits |= IMPLICIT;
        i
    }

    pub(crate) fn kind(&self) -> Kind {
        KINDS.get(((self.bits >> KIND_SHIFT) & 7) as usize).copied().unwrap_or(Kind::File)
    }

    /// Permission and special bits.
    pub(crate) fn mode(&self) -> u32 {
        self.bits & MODE_MASK
    }

    fn set_mode(&mut self, mode: u32) {
        self.bits = self.bits & !MODE_MASK | mode & MODE_MASK;
    }

    /// Set the layer, saturating (folds refuse more than [`MAX_LAYERS`] layers first).
    fn set_layer(&mut self, layer: usize) {
        let layer = layer.min(MAX_LAYERS - 1) as u32;
        self.bits = self.bits & ((1 << LAYER_SHIFT) - 1) | layer << LAYER_SHIFT;
    }

    pub(crate) fn mtime(&self) -> Timestamp {
        Timestamp { sec: self.mtime_sec, nsec: self.mtime_nsec }
    }

    pub(crate) fn layer(&self) -> usize {
        (self.bits >> LAYER_SHIFT) as usize
    }

    pub(crate) fn implicit(&self) -> bool {
        self.bits & IMPLICIT != 0
    }

    /// Where a regular file's content is.
    pub(crate) fn source(&self) -> Option<DataSource> {
        (self.bits & HAS_SOURCE != 0).then_some(DataSource {
            layer: self.layer(),
            entry: u64::from(self.entry),
            offset: self.offset,
        })
    }
}

/// Items stored in chunks of 4,096, so that growing never copies or doubles them.
#[derive(Debug, Clone)]
struct Chunks<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// Items per chunk.
const CHUNK: usize = 4096;

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks { chunks: Vec::new(), len: 0 }
    }
}

impl<T> Chunks<T> {
    fn push(&mut self, v: T) -> usize {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(v);
        }
        self.len += 1;
        self.len - 1
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }
}

/// One path of the trie (28 bytes).
#[derive(Debug, Clone)]
struct TrieNode {
    parent: u32,
    /// Its inode; [`NIL`] for a free slot.
    inode: u32,
    first_child: u32,
    next: u32,
    prev: u32,
    name_off: u32,
    name_len: u32,
}

/// The tree: a trie of names, each path pointing at an inode.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    nodes: Chunks<TrieNode>,
    free_nodes: Vec<u32>,
    /// Every name, once per node that has it.
    names: Vec<u8>,
    /// Nodes by (parent, name).
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    inodes: Chunks<Inode>,
    free_inodes: Vec<u32>,
    extras: HashMap<u32, Box<Extra>>,
    /// Live paths, the root included.
    paths: usize,
    /// Bytes of regular files that left the tree, by the layer that added them.
    pub(crate) wasted: Vec<u64>,
    /// Each regular file that left the tree: the path it last had, the layer that
    /// added it, its size. Grows with the files a later entry deletes or overwrites.
    pub(crate) wasted_files: Vec<(Vec<u8>, usize, u64)>,
}

/// The root node.
pub(crate) const ROOT: u32 = 0;

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

fn nomem() -> Errno {
    Errno::NOMEM
}

impl Tree {
    pub(crate) fn new() -> Tree {
        let mut t = Tree {
            nodes: Chunks::default(),
            free_nodes: Vec::new(),
            names: Vec::new(),
            index: HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            inodes: Chunks::default(),
            free_inodes: Vec::new(),
            extras: HashMap::new(),
            paths: 1,
            wasted: Vec::new(),
            wasted_files: Vec::new(),
        };
        let mut root = Inode::implicit_dir(0);
        root.nlink = 1;
        let ino = t.inodes.push(root) as u32;
        t.nodes.push(TrieNode {
            parent: NIL,
            inode: ino,
            first_child: NIL,
            next: NIL,
            prev: NIL,
            name_off: 0,
            name_len: 0,
        });
        t
    }

    fn node(&self, n: u32) -> Option<&TrieNode> {
        self.nodes.get(n as usize).filter(|n| n.inode != NIL)
    }

    /// The name of node `n` (empty for the root).
    pub(crate) fn name(&self, n: u32) -> &[u8] {
        self.node(n)
            .and_then(|t| self.names.get(t.name_off as usize..(t.name_off as usize + t.name_len as usize)))
            .unwrap_or_default()
    }

    fn hash(&self, parent: u32, name: &[u8]) -> u64 {
        self.hasher.hash_one((parent, name))
    }

    /// The child `name` of directory node `dir`.
    pub(crate) fn child(&self, dir: u32, name: &[u8]) -> Option<u32> {
        let h = self.hash(dir, name);
        self.index.find(h, |&c| self.node(c).is_some_and(|t| t.parent == dir) && self.name(c) == name).copied()
    }

    /// The inode of node `n`.
    pub(crate) fn get(&self, n: u32) -> Option<(u32, &Inode)> {
        let ino = self.node(n)?.inode;
        self.inodes.get(ino as usize).map(|i| (ino, i))
    }

    fn inode_mut(&mut self, ino: u32) -> Option<&mut Inode> {
        self.inodes.get_mut(ino as usize)
    }

    /// What is kept aside for inode `ino`.
    pub(crate) fn extra(&self, ino: u32) -> Option<&Extra> {
        self.extras.get(&ino).map(|b| &**b)
    }

    /// The metadata `lstat` would show for inode `ino` (`n`) at `path`.
    pub(crate) fn meta(&self, path: Vec<u8>, ino: u32, n: &Inode) -> EntryMeta {
        let extra = self.extra(ino);
        let (major, minor) = extra.map_or((0, 0), |e| e.dev);
        let kind = match n.kind() {
            Kind::File => EntryKind::File,
            Kind::Dir => EntryKind::Dir,
            Kind::Symlink => EntryKind::Symlink {
                target: PathBuf::from(OsStr::from_bytes(extra.map(|e| &*e.link).unwrap_or_default())),
            },
            Kind::Char => EntryKind::CharDevice { major, minor },
            Kind::Block => EntryKind::BlockDevice { major, minor },
            Kind::Fifo => EntryKind::Fifo,
        };
        EntryMeta {
            path: path_buf(path),
            kind,
            mode: n.mode(),
            uid: n.uid,
            gid: n.gid,
            size: n.size,
            mtime: n.mtime(),
            xattrs: extra.map(|e| e.xattrs.clone()).unwrap_or_default(),
        }
    }

    fn is_dir(&self, n: u32) -> bool {
        self.get(n).is_some_and(|(_, i)| i.kind() == Kind::Dir)
    }

    /// Paths in the tree, the root included.
    pub(crate) fn len(&self) -> usize {
        self.paths
    }

    /// Every live inode, with its number.
    pub(crate) fn inodes(&self) -> impl Iterator<Item = (u32, &Inode)> + '_ {
        self.inodes.iter().enumerate().filter(|(_, i)| i.nlink > 0).map(|(n, i)| (n as u32, i))
    }

    /// Inode `ino`, if it is live.
    pub(crate) fn inode(&self, ino: u32) -> Option<&Inode> {
        self.inodes.get(ino as usize).filter(|i| i.nlink > 0)
    }

    /// The entries, as `(layer, position in its tar stream)`, whose contents are in
    /// the final tree: the regular files some path still names.
    pub(crate) fn live_sources(&self) -> std::collections::HashSet<(usize, u64)> {
        self.inodes()
            .filter(|(_, n)| n.kind() == Kind::File)
            .filter_map(|(_, n)| n.source().map(|s| (s.layer, s.entry)))
            .collect()
    }

    fn alloc(&mut self, inode: Inode, extra: Option<Extra>) -> u32 {
        let ino = match self.free_inodes.pop() {
            Some(i) => {
                if let Some(slot) = self.inodes.get_mut(i as usize) {
                    *slot = inode;
                }
                i
            }
            None => self.inodes.push(inode) as u32,
        };
        match extra {
            Some(e) => {
                self.extras.insert(ino, Box::new(e));
            }
            None => {
                self.extras.remove(&ino);
            }
        }
        ino
    }

    /// Let path node `node` stop naming inode `ino` (called while the node still has
    /// its place in the tree, so that a file leaving the tree is recorded by its path).
    fn unref(&mut self, ino: u32, node: u32) {
        let Some(n) = self.inodes.get_mut(ino as usize) else { return };
        n.nlink = n.nlink.saturating_sub(1);
        if n.nlink == 0 {
            let (kind, layer, size) = (n.kind(), n.layer(), n.size);
            if kind == Kind::File
                && let Some(w) = self.wasted.get_mut(layer)
            {
                *w += size;
                let path = self.path(node);
                self.wasted_files.push((path, layer, size));
            }
            self.extras.remove(&ino);
            self.free_inodes.push(ino);
        }
    }

    /// Make `name` in directory `dir` point at inode `ino`: a new path, or, when the
    /// name is there, the same path pointing at `ino` instead (its old inode let go).
    fn link(&mut self, dir: u32, name: &[u8], ino: u32) -> std::result::Result<u32, Errno> {
        if let Some(n) = self.inodes.get_mut(ino as usize) {
            n.nlink += 1;
        }
        if let Some(c) = self.child(dir, name) {
            let old = self.nodes.get_mut(c as usize).map(|t| std::mem::replace(&mut t.inode, ino));
            if let Some(old) = old {
                self.unref(old, c);
            }
            return Ok(c);
        }
        let name_off = u32::try_from(self.names.len()).map_err(|_| nomem())?;
        let name_len = u32::try_from(name.len()).map_err(|_| nomem())?;
        if self.names.len().checked_add(name.len()).is_none_or(|end| end > u32::MAX as usize) {
            return Err(nomem());
        }
        self.names.extend_from_slice(name);
        let first = self.node(dir).map_or(NIL, |t| t.first_child);
        let node = TrieNode { parent: dir, inode: ino, first_child: NIL, next: first, prev: NIL, name_off, name_len };
        let c = match self.free_nodes.pop() {
            Some(c) => {
                if let Some(slot) = self.nodes.get_mut(c as usize) {
                    *slot = node;
                }
                c
            }
            None => self.nodes.push(node) as u32,
        };
        if let Some(f) = self.nodes.get_mut(first as usize).filter(|_| first != NIL) {
            f.prev = c;
        }
        if let Some(d) = self.nodes.get_mut(dir as usize) {
            d.first_child = c;
        }
        let h = self.hash(dir, name);
        let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
        self.index.insert_unique(h, c, |&x| {
            let t = nodes.get(x as usize);
            let name = t.and_then(|t| names.get(t.name_off as usize..(t.name_off as usize + t.name_len as usize)));
            hasher.hash_one((t.map_or(NIL, |t| t.parent), name.unwrap_or_default()))
        });
        self.paths += 1;
        Ok(c)
    }

    /// Remove node `n` (never the root) and everything under it.
    fn remove_all(&mut self, n: u32) {
        if n == ROOT {
            return;
        }
        // Children first (an explicit stack: trees can be deep).
        let mut stack = vec![n];
        let mut order = Vec::new();
        while let Some(x) = stack.pop() {
            order.push(x);
            let mut c = self.node(x).map_or(NIL, |t| t.first_child);
            while c != NIL {
                stack.push(c);
                c = self.node(c).map_or(NIL, |t| t.next);
            }
        }
        // Unlink `n` from its parent's list of children.
        if let Some(t) = self.node(n).cloned() {
            if t.prev != NIL {
                if let Some(p) = self.nodes.get_mut(t.prev as usize) {
                    p.next = t.next;
                }
            } else if let Some(d) = self.nodes.get_mut(t.parent as usize) {
                d.first_child = t.next;
            }
            if let Some(x) = self.nodes.get_mut(t.next as usize).filter(|_| t.next != NIL) {
                x.prev = t.prev;
            }
        }
        for x in order.into_iter().rev() {
            let Some(t) = self.node(x).cloned() else { continue };
            self.unref(t.inode, x);
            let h = self.hash(t.parent, self.name(x));
            if let Ok(e) = self.index.find_entry(h, |&c| c == x) {
                e.remove();
            }
            if let Some(slot) = self.nodes.get_mut(x as usize) {
                slot.inode = NIL;
                slot.first_child = NIL;
            }
            self.free_nodes.push(x);
            self.paths -= 1;
        }
    }

    /// The children of directory node `dir`, in no order.
    pub(crate) fn children(&self, dir: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut c = self.node(dir).map_or(NIL, |t| t.first_child);
        while c != NIL {
            out.push(c);
            c = self.node(c).map_or(NIL, |t| t.next);
        }
        out
    }

    /// The children of `dir` sorted by name (tar order: the merged tree has no opaque
    /// markers).
    pub(crate) fn sorted_children(&self, dir: u32) -> Vec<u32> {
        let mut out = self.children(dir);
        out.sort_unstable_by(|&a, &b| self.name(a).cmp(self.name(b)));
        out
    }

    /// The path of node `n` from the root, components joined by `/`.
    pub(crate) fn path(&self, n: u32) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut x = n;
        while x != ROOT && x != NIL {
            parts.push(self.name(x));
            x = self.node(x).map_or(NIL, |t| t.parent);
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(p);
        }
        out
    }

    /// Every path in tar order (a directory, then its subtree, children by name), the
    /// root first: `(node, path)`.
    pub(crate) fn walk_tar_order(&self) -> TarOrder<'_> {
        TarOrder { tree: self, stack: vec![(ROOT, 0)], path: Vec::new(), first: true }
    }

    /// The node `path` (components separated by `/`) resolves to inside the root, as
    /// `openat2(RESOLVE_IN_ROOT)` would ([`resolve::resolve`], the applier's own walk);
    /// the last component is followed too when `follow_last`.
    pub(crate) fn walk(&self, path: &[u8], follow_last: bool) -> std::result::Result<u32, Errno> {
        if let Some(r) = self.walk_plain(path, follow_last) {
            return r;
        }
        let r = resolve::resolve(self, path, b'/', follow_last)?;
        match r.end {
            End::Root => Ok(ROOT),
            End::Dir(n) => Ok(n),
            // The last component, not a directory: its real path has no symlink in it.
            End::Other => {
                let mut n = ROOT;
                for c in r.path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                    n = self.child(n, c).ok_or(Errno::NOENT)?;
                }
                Ok(n)
            }
        }
    }

    /// [`Tree::walk`] of a path that meets no symlink to follow and no `..` (most
    /// paths): the same answer, without the resolver's bookkeeping (a vector of
    /// components and the real path, for every lookup of the fold and of the merged
    /// view). `None` when the resolver has to walk it.
    fn walk_plain(&self, path: &[u8], follow_last: bool) -> Option<std::result::Result<u32, Errno>> {
        let mut n = ROOT;
        let mut comps = path.split(|&b| b == b'/').peekable();
        while let Some(c) = comps.next() {
            match c {
                b"" | b"." => continue,
                b".." => return None,
                _ => {}
            }
            // As the resolver says it: the last of all components, empty ones included
            // (`a/` goes through `a`).
            let last = comps.peek().is_none();
            let Some((k, (_, i))) = self.child(n, c).and_then(|k| Some((k, self.get(k)?))) else {
                return Some(Err(Errno::NOENT));
            };
            match i.kind() {
                Kind::Dir => n = k,
                Kind::Symlink if follow_last || !last => return None,
                _ if last => return Some(Ok(k)),
                _ => return Some(Err(Errno::NOTDIR)),
            }
        }
        Some(Ok(n))
    }

    /// The directory `path` resolves to.
    fn open_dir(&self, path: &[u8]) -> std::result::Result<u32, Errno> {
        let n = self.walk(path, true)?;
        if self.is_dir(n) { Ok(n) } else { Err(Errno::NOTDIR) }
    }

    /// The directory `path` resolves to, made (mode 0755) with its missing ancestors
    /// when it does not exist, as the applier's `ensure_dir`.
    fn ensure_dir(&mut self, path: &[u8], layer: usize) -> std::result::Result<u32, Errno> {
        match self.open_dir(path) {
            Err(Errno::NOENT) => {}
            r => return r,
        }
        if path.is_empty() {
            return Err(Errno::NOENT);
        }
        let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (path.get(..i).unwrap_or_default(), path.get(i + 1..).unwrap_or_default()),
            None => (&[][..], path),
        };
        let pn = self.ensure_dir(parent, layer)?;
        if self.child(pn, name).is_none() {
            let ino = self.alloc(Inode::implicit_dir(layer), None);
            self.link(pn, name, ino)?;
        }
        self.open_dir(path)
    }
}

/// [`Tree::walk_tar_order`].
pub(crate) struct TarOrder<'t> {
    tree: &'t Tree,
    /// Nodes to visit, with the length of `path` before their name.
    stack: Vec<(u32, usize)>,
    path: Vec<u8>,
    first: bool,
}

impl Iterator for TarOrder<'_> {
    type Item = (u32, Vec<u8>);

    fn next(&mut self) -> Option<(u32, Vec<u8>)> {
        let (n, at) = self.stack.pop()?;
        self.path.truncate(at);
        if !self.first {
            if !self.path.is_empty() {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(self.tree.name(n));
        }
        self.first = false;
        if self.tree.is_dir(n) {
            let len = self.path.len();
            for c in self.tree.sorted_children(n).into_iter().rev() {
                self.stack.push((c, len));
            }
        }
        Some((n, self.path.clone()))
    }
}

/// Lookups by node: a directory is its node.
impl Lookup for Tree {
    type Dir = u32;

    fn lookup(&self, dir: Option<&u32>, _: &[u8], name: &[u8]) -> std::result::Result<LookupNode<'_, u32>, Errno> {
        let n = self.child(dir.copied().unwrap_or(ROOT), name).ok_or(Errno::NOENT)?;
        let (ino, i) = self.get(n).ok_or(Errno::NOENT)?;
        Ok(match i.kind() {
            Kind::Dir => LookupNode::Dir(n),
            Kind::Symlink => LookupNode::Symlink(Cow::Borrowed(self.extra(ino).map(|e| &*e.link).unwrap_or_default())),
            _ => LookupNode::Other,
        })
    }
}

/// An entry of a layer: the layer's index and the entry's position in its tar stream.
pub(crate) type EntryId = (usize, u64);

/// A path from the bytes the tree gives.
pub(crate) fn path_buf(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(b))
}
