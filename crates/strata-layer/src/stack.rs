//! The merged view of layers answered straight from their serialised indexes, without
//! folding them ([`MergedIndex`]): a lookup goes down the layers, top first, until one
//! has the path or hides it. A scanner that asks about a few thousand paths of an image
//! whose layers it indexed before pays for those paths, not for a tree of every header.
//!
//! It answers only for layers whose union is plain (see [`MergedIndex::new`]): every
//! name already normal, no entry under a symlink or a file of its own or a lower layer,
//! no duplicate path in a layer, hard links only to a regular file earlier in the same
//! layer, no layer that whites out what it makes itself. For anything else `new` says
//! `None`, and the caller folds the layers ([`crate::MergedTree::from_indexes`]), whose
//! rules and errors are the reference: for plain layers both give the same answers.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use hashbrown::{HashMap, HashSet};
use rustix::io::Errno;
use strata_spec::Digest;

use crate::error::Result;
use crate::index::{IndexEntry, Parser, RawHeader};
use crate::memtree::DataSource;
use crate::path::{self, Class};
use crate::read::EntryKind;
use crate::resolve::{self, End, Lookup, Node};

/// One entry of an [`IndexRef`], borrowed from the serialised index.
#[derive(Debug, Clone, Copy)]
struct RawEntry<'a> {
    path: &'a [u8],
    link: &'a [u8],
    kind: EntryKind,
    size: u64,
    sparse: bool,
    uid: u64,
    gid: u64,
    offset: u64,
}

/// A [`crate::LayerIndex`] read in place from its serialised form: the same checks
/// ([`crate::LayerIndex::from_bytes`]), no copy of any name.
#[derive(Debug, Clone)]
pub struct IndexRef<'a> {
    entries: Vec<RawEntry<'a>>,
    diff_id: Digest,
}

impl<'a> IndexRef<'a> {
    /// Parse the serialised form of a [`crate::LayerIndex`], checking it throughout (an
    /// [`crate::Error::InvalidIndex`] for anything damaged, truncated or of another
    /// version).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<IndexRef<'a>> {
        let mut p = Parser::new(bytes)?;
        // An entry takes 16 bytes or more: no more room than the bytes can fill.
        let mut entries = Vec::with_capacity(usize::try_from(p.n).unwrap_or(0).min(bytes.len() / 16));
        while let Some(e) = p.next_entry()? {
            let RawHeader { path, link, kind, size, uid, gid, offset, .. } = e;
            entries.push(RawEntry { path, link, kind, size, sparse: e.sparse.is_some(), uid, gid, offset });
        }
        let diff_id = p.diff_id;
        Ok(IndexRef { entries, diff_id })
    }

    /// The digest of the layer's uncompressed tar.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the layer has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in tar order.
    pub fn entries(&self) -> impl Iterator<Item = IndexEntry<'a>> + '_ {
        self.entries.iter().enumerate().map(|(i, e)| view(i, e))
    }

    /// The entry at `ordinal`.
    pub fn entry(&self, ordinal: u64) -> Option<IndexEntry<'a>> {
        let i = usize::try_from(ordinal).ok()?;
        self.entries.get(i).map(|e| view(i, e))
    }
}

fn view<'a>(i: usize, e: &RawEntry<'a>) -> IndexEntry<'a> {
    IndexEntry { path: e.path, ordinal: i as u64, kind: e.kind, size: e.size, sparse: e.sparse }
}

/// What a path is in a [`MergedIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexedNode {
    /// Its type; a hard link is the regular file it links to.
    pub kind: EntryKind,
    /// The layer that made it (for a directory, the last layer that declared it, else
    /// the one that first needed it), as [`crate::MergedTree::layer_of`] says.
    pub layer: usize,
    /// Where a regular file's content is.
    pub source: Option<DataSource>,
    /// A regular file's size.
    pub size: u64,
}

/// One layer, by normalised path.
struct LayerMap<'a> {
    /// Plain entries: path -> position in the layer.
    by_path: HashMap<&'a [u8], u32>,
    /// Directories under which the layer has something (ancestors of its paths), and
    /// the directories it makes opaque.
    dirs: HashSet<&'a [u8]>,
    /// Paths it whites out.
    whiteouts: HashSet<Vec<u8>>,
    /// Directories it makes opaque (the empty path is the root).
    opaque: HashSet<&'a [u8]>,
}

/// A directory met as a parent, remembered.
#[derive(Debug, Clone, Copy)]
enum Parent {
    /// A directory; lower layers than this one cannot show anything under it.
    Dir { floor: usize },
    /// A symlink (the resolver walks it), missing, or not a directory.
    Other,
}

/// Lookups in the union of layers from their indexes (see the module documentation).
pub struct MergedIndex<'a> {
    indexes: &'a [IndexRef<'a>],
    layers: Vec<LayerMap<'a>>,
    /// The last layer that declared the root.
    root_layer: usize,
    /// Parent directories looked up so far, by real path.
    parents: RefCell<HashMap<Vec<u8>, Parent>>,
    /// [`MergedIndex::dir`] of the paths asked so far.
    #[allow(clippy::type_complexity)]
    dirs: RefCell<HashMap<Vec<u8>, Option<(Option<Vec<u8>>, usize)>>>,
}

/// The normal form of a name as stored, borrowed: `./` and `/` in front and `/` at the
/// end dropped. `None` when it needs more (an empty or `.` component inside, `..`, NUL).
fn plain(name: &[u8]) -> Option<&[u8]> {
    let mut s = name;
    loop {
        if let Some(r) = s.strip_prefix(b"./") {
            s = r;
        } else if let Some(r) = s.strip_prefix(b"/") {
            s = r;
        } else {
            break;
        }
    }
    while let Some(r) = s.strip_suffix(b"/") {
        s = r;
    }
    if s == b"." {
        return Some(&[]);
    }
    is_normal(s).then_some(s)
}

/// Whether `path` is in normal form already ([`path::normalized`] would give it back):
/// no NUL, no empty, `.` or `..` component. One pass, for the lookups' hot path.
fn is_normal(path: &[u8]) -> bool {
    // What the current component is so far: `run` dots (0 to 2) and nothing else, or
    // NAMED (anything else). A `/` or the end after 0-2 dots is an empty, `.` or `..`
    // component. Every byte but NUL, `.` and `/` (all at most `/`) just names: one
    // compare for most bytes (a fifth fewer instructions than matching each component
    // against the three forms at each `/`).
    const NAMED: u8 = 3;
    if path.is_empty() {
        return true;
    }
    let mut run = 0;
    for &b in path {
        if b > b'/' {
            run = NAMED;
            continue;
        }
        match b {
            b'/' if run < NAMED => return false,
            b'/' => run = 0,
            b'.' if run < NAMED => run += 1,
            0 => return false,
            _ => run = NAMED,
        }
    }
    run == NAMED
}

fn parent_of(p: &[u8]) -> &[u8] {
    p.iter().rposition(|&b| b == b'/').map_or(&[][..], |i| &p[..i])
}

/// The strict ancestors of `p`, nearest first.
fn ancestors(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut cur = p;
    std::iter::from_fn(move || {
        if cur.is_empty() {
            return None;
        }
        cur = parent_of(cur);
        (!cur.is_empty()).then_some(cur)
    })
}

impl<'a> MergedIndex<'a> {
    /// The merged view of `indexes` (base first), when their union is plain (see the
    /// module documentation); `None` when it is not, and the layers must be folded.
    pub fn new(indexes: &'a [IndexRef<'a>]) -> Option<MergedIndex<'a>> {
        // More layers than a merged tree holds: the fold's error.
        if indexes.len() > crate::memtree::MAX_LAYERS {
            return None;
        }
        let mut layers: Vec<LayerMap<'a>> = Vec::with_capacity(indexes.len());
        let mut root_layer = 0;
        for (l, index) in indexes.iter().enumerate() {
            let mut m = LayerMap {
                by_path: HashMap::with_capacity(index.entries.len()),
                dirs: HashSet::new(),
                whiteouts: HashSet::new(),
                opaque: HashSet::new(),
            };
            for (i, e) in index.entries.iter().enumerate() {
                let p = plain(e.path)?;
                if path::names_whiteout(p) {
                    if ancestors(p).any(|a| a.rsplit(|&b| b == b'/').next().is_some_and(|n| n.starts_with(b".wh."))) {
                        return None;
                    }
                    match path::classify(Path::new(OsStr::from_bytes(p))).ok()? {
                        Class::Whiteout { target } => {
                            m.whiteouts.insert(target.into_os_string().into_encoded_bytes());
                        }
                        Class::Opaque { .. } => {
                            m.opaque.insert(parent_of(p));
                        }
                        _ => return None,
                    }
                    continue;
                }
                let in_range = |v: u64| u32::try_from(v).is_ok_and(|v| v != u32::MAX);
                if !in_range(e.uid) || !in_range(e.gid) {
                    return None;
                }
                if p.is_empty() {
                    if e.kind != EntryKind::Dir {
                        return None;
                    }
                    root_layer = l;
                    continue;
                }
                match e.kind {
                    EntryKind::Symlink if e.link.is_empty() || e.link.contains(&0) => return None,
                    EntryKind::Hardlink => {
                        let t = plain(e.link)?;
                        let &ti = m.by_path.get(t)?;
                        if t == p || index.entries.get(ti as usize)?.kind != EntryKind::File {
                            return None;
                        }
                    }
                    _ => {}
                }
                if m.by_path.insert(p, u32::try_from(i).ok()?).is_some() {
                    return None;
                }
            }
            let mut dirs: HashSet<&'a [u8]> = HashSet::new();
            let named = m.by_path.keys().copied().chain(m.opaque.iter().copied());
            for p in named {
                for a in ancestors(p) {
                    if !dirs.insert(a) {
                        break;
                    }
                }
            }
            dirs.extend(m.opaque.iter().copied().filter(|d| !d.is_empty()));
            m.dirs = dirs;
            // A layer that whites out what it makes itself: the fold's rules decide.
            if m.whiteouts.iter().any(|w| m.by_path.contains_key(&w[..]) || m.dirs.contains(&w[..])) {
                return None;
            }
            layers.push(m);
        }
        // No layer puts anything under (or whites out anything under) a path that is
        // not a directory in it or below it: no symlink to walk, no file to replace.
        for (l, m) in layers.iter().enumerate() {
            let whiteout_parents = m.whiteouts.iter().flat_map(|w| ancestors(w));
            for d in m.dirs.iter().copied().chain(whiteout_parents) {
                for (lower, index) in layers[..=l].iter().zip(indexes) {
                    if lower.by_path.get(d).is_some_and(|&i| index.entries[i as usize].kind != EntryKind::Dir) {
                        return None;
                    }
                }
            }
        }
        Some(MergedIndex {
            indexes,
            layers,
            root_layer,
            parents: RefCell::new(HashMap::new()),
            dirs: RefCell::new(HashMap::new()),
        })
    }
}

/// A path found, with what the lookups need besides.
#[derive(Clone, Copy)]
struct Found<'a> {
    node: IndexedNode,
    /// A symlink's target.
    link: &'a [u8],
    /// The entry that made it (layer, position), when one did.
    at: Option<(usize, u32)>,
}

/// Lookups.
impl<'a> MergedIndex<'a> {
    /// The entry at `path` (`/etc/passwd` and `etc/passwd` alike), as
    /// [`crate::MergedTree::stat`] finds it: symlinks in parent components followed
    /// inside the root, the last one not.
    pub fn stat(&self, path: &[u8]) -> Option<IndexedNode> {
        self.lookup(path, false).map(|f| f.node)
    }

    /// [`MergedIndex::stat`], a last symlink followed too
    /// ([`crate::MergedTree::stat_follow`]).
    pub fn stat_follow(&self, path: &[u8]) -> Option<IndexedNode> {
        self.lookup(path, true).map(|f| f.node)
    }

    /// Whether `path` is a directory (a last symlink not followed).
    pub fn is_dir(&self, path: &[u8]) -> bool {
        self.stat(path).is_some_and(|n| n.kind == EntryKind::Dir)
    }

    /// The layer of the entry at `path` (a last symlink not followed).
    pub fn layer_of(&self, path: &[u8]) -> Option<usize> {
        self.stat(path).map(|n| n.layer)
    }

    /// The paths of the regular files of the final tree that `wanted` accepts, in tar
    /// order ([`crate::tar_order`]), as [`crate::MergedTree::file_paths`] lists them.
    pub fn file_paths_where(&self, wanted: &mut dyn FnMut(&[u8]) -> bool) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        for (l, m) in self.layers.iter().enumerate() {
            for (&p, &i) in &m.by_path {
                if !matches!(self.raw(l, i).kind, EntryKind::File | EntryKind::Hardlink) || !wanted(p) {
                    continue;
                }
                if self.node(p).is_some_and(|f| f.at == Some((l, i))) {
                    out.push(p);
                }
            }
        }
        out.sort_by(|a, b| crate::tar_order(Path::new(OsStr::from_bytes(a)), Path::new(OsStr::from_bytes(b))));
        out
    }

    /// What layer `l` writes or whites out, each path normalised once, in no order: the
    /// normalised names of its entries, a whiteout as the path it deletes (opaque
    /// markers and the root left out).
    pub fn layer_paths(&self, l: usize) -> impl Iterator<Item = &[u8]> + '_ {
        self.layers.get(l).into_iter().flat_map(|m| {
            m.by_path.keys().copied().filter(|p| !p.is_empty()).chain(m.whiteouts.iter().map(Vec::as_slice))
        })
    }

    fn raw(&self, l: usize, i: u32) -> &RawEntry<'a> {
        &self.indexes[l].entries[i as usize]
    }

    fn root(&self) -> Found<'a> {
        let node = IndexedNode { kind: EntryKind::Dir, layer: self.root_layer, source: None, size: 0 };
        Found { node, link: &[], at: None }
    }

    fn lookup(&self, path: &[u8], follow: bool) -> Option<Found<'a>> {
        let norm = if is_normal(path) { Cow::Borrowed(path) } else { path::normalized(path).ok()? };
        if norm.is_empty() {
            return Some(self.root());
        }
        // The parent directory, resolved once for all the names looked up in it.
        let (real, floor) = self.dir(parent_of(&norm))?;
        let p = match real {
            None => Cow::Borrowed(&norm[..]),
            Some(mut real) => {
                let name = norm.rsplit(|&b| b == b'/').next().unwrap_or_default();
                if !real.is_empty() {
                    real.push(b'/');
                }
                real.extend_from_slice(name);
                Cow::Owned(real)
            }
        };
        let f = self.node_in(&p, floor);
        if !(follow && f.is_some_and(|f| f.node.kind == EntryKind::Symlink)) {
            return f;
        }
        // A last symlink to follow: the resolver the fold and the applier use.
        let r = resolve::resolve(self, &norm, b'/', follow).ok()?;
        match r.end {
            End::Root => Some(self.root()),
            End::Dir(()) | End::Other => self.node(&r.path),
        }
    }

    /// The directory the normalised path `d` leads to (every symlink on the way
    /// followed, as the resolver does): its real path (`None` when it is `d`), and the
    /// layer from which its content shows; `None` when it leads to no directory.
    /// Remembered by `d`.
    #[allow(clippy::type_complexity)]
    fn dir(&self, d: &[u8]) -> Option<(Option<Vec<u8>>, usize)> {
        if let Some(r) = self.dirs.borrow().get(d) {
            return r.clone();
        }
        let r = match self.parent(d) {
            Parent::Dir { floor } => Some((None, floor)),
            Parent::Other => match resolve::resolve(self, d, b'/', true) {
                Ok(r) => match self.parent(&r.path) {
                    Parent::Dir { floor } if !matches!(r.end, End::Other) => Some((Some(r.path), floor)),
                    _ => None,
                },
                Err(_) => None,
            },
        };
        self.dirs.borrow_mut().insert(d.to_vec(), r.clone());
        r
    }

    /// What is at the real path `p` (no symlink on the way, no `..`).
    fn node(&self, p: &[u8]) -> Option<Found<'a>> {
        match self.parent(parent_of(p)) {
            Parent::Dir { floor } => self.node_in(p, floor),
            Parent::Other => None,
        }
    }

    /// The directory at the real path `d`, remembered.
    fn parent(&self, d: &[u8]) -> Parent {
        if d.is_empty() {
            let floor = (0..self.layers.len()).rev().find(|&l| self.layers[l].opaque.contains(&b""[..])).unwrap_or(0);
            return Parent::Dir { floor };
        }
        if let Some(p) = self.parents.borrow().get(d) {
            return *p;
        }
        let r = match self.parent(parent_of(d)) {
            Parent::Dir { floor } => match self.node_in(d, floor) {
                Some(f) if f.node.kind == EntryKind::Dir => Parent::Dir { floor: floor.max(self.local_floor(d)) },
                _ => Parent::Other,
            },
            Parent::Other => Parent::Other,
        };
        self.parents.borrow_mut().insert(d.to_vec(), r);
        r
    }

    /// Below which layer nothing shows under directory `d` for what the layers do to
    /// `d` itself: made opaque (its layer's own entries stay), whited out or replaced by
    /// a non-directory (all of that layer goes).
    fn local_floor(&self, d: &[u8]) -> usize {
        let mut floor = 0;
        for (l, m) in self.layers.iter().enumerate() {
            if m.opaque.contains(d) {
                floor = floor.max(l);
            }
            let replaced = m.by_path.get(d).is_some_and(|&i| self.raw(l, i).kind != EntryKind::Dir);
            if replaced || m.whiteouts.contains(d) {
                floor = floor.max(l + 1);
            }
        }
        floor
    }

    /// What is at the real path `p`, its parent a directory whose content shows from
    /// layer `floor` up: the top layer that has it, unless one above whites it out.
    fn node_in(&self, p: &[u8], floor: usize) -> Option<Found<'a>> {
        for l in (floor..self.layers.len()).rev() {
            let m = &self.layers[l];
            if let Some(&i) = m.by_path.get(p) {
                let e = self.raw(l, i);
                let file = |i: u32, e: &RawEntry<'a>| IndexedNode {
                    kind: EntryKind::File,
                    layer: l,
                    source: Some(DataSource { layer: l, entry: u64::from(i), offset: e.offset }),
                    size: e.size,
                };
                let node = match e.kind {
                    EntryKind::Dir => IndexedNode { kind: EntryKind::Dir, layer: l, source: None, size: 0 },
                    EntryKind::File => file(i, e),
                    EntryKind::Hardlink => {
                        let t = plain(e.link)?;
                        let &ti = m.by_path.get(t)?;
                        file(ti, self.raw(l, ti))
                    }
                    k => IndexedNode { kind: k, layer: l, source: None, size: 0 },
                };
                return Some(Found { node, link: e.link, at: Some((l, i)) });
            }
            if m.dirs.contains(p) {
                let node =
                    IndexedNode { kind: EntryKind::Dir, layer: self.dir_layer(p, floor, l), source: None, size: 0 };
                return Some(Found { node, link: &[], at: None });
            }
            if m.whiteouts.contains(p) {
                return None;
            }
        }
        None
    }

    /// The layer of the directory at `p` that layer `top` has without declaring it:
    /// the last layer of its run down to `floor` that declared it, else the first that
    /// needed it (as the fold makes a missing parent, and a directory entry over a
    /// directory sets its layer).
    fn dir_layer(&self, p: &[u8], floor: usize, top: usize) -> usize {
        let mut lowest = top;
        for l in (floor..top).rev() {
            let m = &self.layers[l];
            if let Some(&i) = m.by_path.get(p) {
                if self.raw(l, i).kind == EntryKind::Dir {
                    return l;
                }
                break;
            }
            if m.dirs.contains(p) {
                lowest = l;
            } else if m.whiteouts.contains(p) {
                break;
            }
        }
        lowest
    }
}

/// The resolver's lookups: a directory is known by its real path.
impl Lookup for MergedIndex<'_> {
    type Dir = ();

    fn lookup(&self, _: Option<&()>, path: &[u8], _: &[u8]) -> std::result::Result<Node<'_, ()>, Errno> {
        let f = self.node(path).ok_or(Errno::NOENT)?;
        Ok(match f.node.kind {
            EntryKind::Dir => Node::Dir(()),
            EntryKind::Symlink => Node::Symlink(Cow::Borrowed(f.link)),
            _ => Node::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LayerBuilder, LayerIndex, LayerSource, Limits, MergeOptions, MergedTree, WriteOptions};

    #[test]
    fn is_normal_agrees_with_normalized() {
        // Every name of up to 6 bytes from the bytes that matter and two that do not.
        let alphabet = [b'a', b'-', b'.', b'/', 0];
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = names.clone();
        for _ in 0..6 {
            last = last.iter().flat_map(|n| alphabet.iter().map(move |&b| [&n[..], &[b]].concat())).collect();
            names.extend(last.iter().cloned());
        }
        names.push(b"usr/share/doc/libc6/changelog.Debian.gz".to_vec());
        for p in &names {
            let agree = path::normalized(p).is_ok_and(|n| n == &p[..]);
            assert_eq!(is_normal(p), agree, "{:?}", String::from_utf8_lossy(p));
        }
    }

    /// Layers as a Debian image has them (merged /usr through symlinks, hard links),
    /// then whiteouts, an opaque directory, a directory replaced by a file and one by a
    /// symlink, a file replaced by a directory in a layer of its own.
    fn layers() -> Vec<LayerBuilder> {
        let mut a = LayerBuilder::new();
        a.symlink("lib", "usr/lib");
        a.symlink("bin", "/usr/bin");
        a.file("usr/lib/x86_64/libc.so.6", b"libc".to_vec());
        a.file("usr/lib/os-release", b"ID=debian\n".to_vec());
        a.symlink("etc/os-release", "../usr/lib/os-release");
        a.file("usr/bin/tool", b"tool".to_vec());
        a.hardlink("usr/bin/tool2", "usr/bin/tool");
        a.file("opt/app/old", b"old".to_vec());
        a.file("opt/app/sub/deep", b"deep".to_vec());
        a.file("srv/data/x", b"x".to_vec());
        a.file("var/gone/y", b"y".to_vec());
        a.file("var/file", b"f".to_vec());
        a.dir("home/user");
        let mut b = LayerBuilder::new();
        b.whiteout("opt/app/.wh..opq");
        b.file("opt/app/new", b"new".to_vec());
        b.whiteout("usr/bin/tool2");
        b.whiteout("var/gone");
        b.file("srv/data", b"now a file".to_vec());
        b.file("usr/lib/x86_64/libc.so.6", b"libc, patched".to_vec());
        b.dir("usr/lib/x86_64");
        b.file("home/user/.profile", b"p".to_vec());
        let mut c = LayerBuilder::new();
        c.dir("srv/data");
        c.symlink("home/user", "/srv");
        c.dir("var/file");
        c.file("var/gone/z", b"z".to_vec());
        vec![a, b, c]
    }

    fn indexes(layers: &[LayerBuilder]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut blobs = Vec::new();
        let mut out = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let (info, blob) = l.write(Vec::new(), &WriteOptions::default()).unwrap();
            let src = LayerSource::new(format!("layer {i}"), &blob[..]).diff_id(info.diff_id);
            out.push(LayerIndex::read(src, &Limits::default(), 0, &mut |_, _| false).unwrap().index.to_bytes());
            blobs.push(blob);
        }
        (blobs, out)
    }

    #[test]
    fn every_lookup_is_the_folded_trees() {
        let (_, bytes) = indexes(&layers());
        let owned: Vec<LayerIndex> = bytes.iter().map(|b| LayerIndex::from_bytes(b).unwrap()).collect();
        let refs: Vec<IndexRef<'_>> = bytes.iter().map(|b| IndexRef::from_bytes(b).unwrap()).collect();
        for (o, r) in owned.iter().zip(&refs) {
            assert_eq!(o.entries().collect::<Vec<_>>(), r.entries().collect::<Vec<_>>());
            assert_eq!(o.diff_id(), r.diff_id());
        }
        let names: Vec<String> = (0..owned.len()).map(|i| format!("layer {i}")).collect();
        let tree =
            MergedTree::from_indexes(&owned.iter().collect::<Vec<_>>(), &names, &MergeOptions::default()).unwrap();
        let view = MergedIndex::new(&refs).expect("plain layers");
        // The fixture does what it says: the opaque directory and the whiteouts hide.
        for gone in ["opt/app/old", "opt/app/sub", "var/gone/y", "usr/bin/tool2", "srv/data/x", "home/user/.profile"] {
            assert!(tree.stat(gone).is_err(), "{gone}");
        }
        assert_eq!(view.layer_of(b"lib/x86_64/libc.so.6"), Some(1));
        assert_eq!(view.stat_follow(b"etc/os-release").map(|n| n.layer), Some(0));
        assert_eq!(view.stat(b"var/gone/z").map(|n| n.layer), Some(2));
        // Every path of the tree, every path any layer names, and paths through symlinks.
        let mut paths: Vec<Vec<u8>> = tree.iter().map(|e| e.meta.path.into_os_string().into_encoded_bytes()).collect();
        for r in &refs {
            paths.extend(r.entries().map(|e| e.path.to_vec()));
        }
        for p in [
            "lib/x86_64/libc.so.6",
            "/lib/x86_64",
            "bin/tool",
            "bin/tool2",
            "etc/os-release",
            "home/user/data",
            "home/user/.profile",
            "lib/nothing",
            "usr/lib/x86_64/libc.so.6/x",
            "opt/app/old",
            "opt/app/sub/deep",
            "var/gone/y",
            "./usr//lib/./os-release",
            "",
        ] {
            paths.push(p.as_bytes().to_vec());
        }
        for p in &paths {
            let name = String::from_utf8_lossy(p);
            let want = |follow: bool| {
                let e = if follow { tree.stat_follow(OsStr::from_bytes(p)) } else { tree.stat(OsStr::from_bytes(p)) };
                e.ok().map(|e| {
                    let kind = match e.meta.kind {
                        crate::entry::EntryKind::File => "file",
                        crate::entry::EntryKind::Dir => "dir",
                        crate::entry::EntryKind::Symlink { .. } => "symlink",
                        _ => "other",
                    };
                    (kind, e.layer, e.source, if kind == "file" { e.meta.size } else { 0 })
                })
            };
            let got = |n: Option<IndexedNode>| {
                n.map(|n| {
                    let kind = match n.kind {
                        EntryKind::File => "file",
                        EntryKind::Dir => "dir",
                        EntryKind::Symlink => "symlink",
                        _ => "other",
                    };
                    (kind, n.layer, n.source, if kind == "file" { n.size } else { 0 })
                })
            };
            let strip = |w| w;
            assert_eq!(got(view.stat(p)), strip(want(false)), "stat {name}");
            assert_eq!(got(view.stat_follow(p)), strip(want(true)), "stat_follow {name}");
            assert_eq!(view.is_dir(p), tree.is_dir(OsStr::from_bytes(p)), "is_dir {name}");
            assert_eq!(view.layer_of(p), tree.layer_of(OsStr::from_bytes(p)), "layer_of {name}");
        }
        let files: Vec<Vec<u8>> = view.file_paths_where(&mut |_| true).into_iter().map(<[u8]>::to_vec).collect();
        let want: Vec<Vec<u8>> = tree.file_paths().map(|p| p.into_os_string().into_encoded_bytes()).collect();
        assert_eq!(files, want);
        assert!(view.file_paths_where(&mut |p| p.ends_with(b"new")) == vec![&b"opt/app/new"[..]]);
        // Each layer's paths: its entries' names normalised, a whiteout as what it deletes.
        for (l, r) in refs.iter().enumerate() {
            let mut want: Vec<Vec<u8>> = r
                .entries()
                .map(|e| path::normalize(e.path).unwrap())
                .filter_map(|p| match path::classify(&p).unwrap() {
                    Class::Plain if !p.as_os_str().is_empty() => Some(p),
                    Class::Whiteout { target } => Some(target),
                    _ => None,
                })
                .map(|p| p.into_os_string().into_encoded_bytes())
                .collect();
            let mut got: Vec<Vec<u8>> = view.layer_paths(l).map(<[u8]>::to_vec).collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "layer {l}");
        }
    }

    #[test]
    fn layers_that_are_not_plain_are_left_to_the_fold() {
        // An entry under a symlink of a lower layer; a file under a file of its own
        // layer; a whiteout of what the layer itself makes.
        let mut through = LayerBuilder::new();
        through.file("lib/x86_64/new.so", b"n".to_vec());
        let mut under_file = LayerBuilder::new();
        under_file.file("usr/lib/os-release/x", b"x".to_vec());
        let mut own = LayerBuilder::new();
        own.file("srv/a", b"a".to_vec());
        own.whiteout("srv/a");
        for top in [through, under_file, own] {
            let mut all = layers();
            all.truncate(1);
            all.push(top);
            let (_, bytes) = indexes(&all);
            let refs: Vec<IndexRef<'_>> = bytes.iter().map(|b| IndexRef::from_bytes(b).unwrap()).collect();
            assert!(MergedIndex::new(&refs).is_none());
        }
    }
}
