//! The merged view of layers answered straight from their serialised indexes, without
//! folding them ([`MergedIndex`]): every path any layer names is in one table, with what
//! each layer says about it (an entry, a whiteout, an opaque marker, entries below it),
//! and a lookup composes the union rules ([`crate::union::rule`], the ones the fold and
//! the applier run) over those layers only. A scanner that asks about a few thousand
//! paths of an image whose layers it indexed before pays for those paths, not for a tree
//! of every header.
//!
//! It answers only for layers whose union is plain (see [`MergedIndex::new`]): every
//! name already normal, no entry under a symlink or a file of its own or a lower layer,
//! no duplicate path in a layer, hard links only to a regular file earlier in the same
//! layer, no layer that whites out what it makes itself, no opaque marker that keeps a
//! lower directory its layer needs without declaring it. For anything else `new` says
//! `None`, and the caller folds the layers ([`crate::MergedTree::from_indexes`]), whose
//! rules and errors are the reference: for plain layers both give the same answers (a
//! property test compares them on random stacks).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use rustix::io::Errno;
use strata_spec::Digest;

use crate::error::Result;
use crate::index::{IndexEntry, Lean, Parser};
use crate::memtree::DataSource;
use crate::path::{self, Class};
use crate::read::EntryKind;
use crate::resolve::{self, End, Lookup, Node};
use crate::union::Found as Is;
use crate::union::rule::{Says, Seen};

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
        while let Some(e) = p.next_lean()? {
            let Lean { path, link, kind, size, sparse, uid, gid, offset, .. } = e;
            entries.push(RawEntry { path, link, kind, size, sparse, uid, gid, offset });
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

/// No say, no slot: the end of a list.
const NONE: u32 = u32::MAX;

/// What one layer says about one path (see [`rule::Says`]), in the shared table.
#[derive(Debug, Clone, Copy)]
struct Say {
    layer: u32,
    /// The position of the layer's entry at the path, or [`NONE`].
    entry: u32,
    /// [`UNDER`], [`WHITEOUT`], [`OPAQUE`], [`WHITEOUT_BELOW`], [`DIR`].
    bits: u8,
    /// The say of the next layer up that names the path, or [`NONE`].
    next: u32,
}

/// The layer has entries below the path.
const UNDER: u8 = 1;
/// The layer whites the path out.
const WHITEOUT: u8 = 2;
/// The layer makes the path an opaque directory.
const OPAQUE: u8 = 4;
/// The layer whites out something below the path (which must then be a directory).
const WHITEOUT_BELOW: u8 = 8;
/// The layer's entry at the path is a directory.
const DIR: u8 = 16;

/// What [`MergedIndex::parent`] found for a directory, remembered in its slot.
const PARENT_UNKNOWN: u32 = u32::MAX;
const PARENT_OTHER: u32 = u32::MAX - 1;

/// One path some layer names, with what each layer says about it.
struct Slot<'a> {
    /// The normalised path (a whiteout's target is the only one not borrowed).
    path: Cow<'a, [u8]>,
    /// The say of the lowest layer naming it, and of the highest.
    first: u32,
    last: u32,
    /// The directory's floor once looked up as a parent ([`PARENT_UNKNOWN`],
    /// [`PARENT_OTHER`] when it is not a directory).
    parent: Cell<u32>,
}

/// A directory met as a parent, remembered.
#[derive(Debug, Clone, Copy)]
enum Parent {
    /// A directory; lower layers than this one cannot show anything under it.
    Dir { floor: usize },
    /// A symlink (the resolver walks it), missing, or not a directory.
    Other,
}

/// Where the names of a directory asked for are: the slot of its real path when a
/// symlink leads to it (`None`: the path asked for; [`NONE`]: the root), and its floor.
type DirAt = Option<(Option<u32>, usize)>;

/// Lookups in the union of layers from their indexes (see the module documentation).
///
/// Every path any layer names is in one table, hashed once, with what each layer says
/// about it (its entry, a whiteout, an opaque marker, entries below it): a lookup hashes
/// the path once and composes the union rules ([`rule::Seen::after`], which the fold's
/// rules are made of too) over those layers only.
pub struct MergedIndex<'a> {
    indexes: &'a [IndexRef<'a>],
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: Vec<Slot<'a>>,
    says: Vec<Say>,
    /// Each layer's entries and whiteouts, as slots, for [`MergedIndex::layer_paths`].
    written: Vec<Vec<u32>>,
    /// The last layer that declared the root, the last one that made it opaque.
    root_layer: usize,
    root_floor: usize,
    /// [`MergedIndex::dir`] of the paths asked so far that are not directories of
    /// their own (a symlink on the way), and of the last one asked (never the root).
    dirs: RefCell<HashMap<Vec<u8>, DirAt>>,
    last_dir: RefCell<(Vec<u8>, DirAt)>,
}

/// The normal form of a name as stored, borrowed: `./` and `/` in front and `/` at the
/// end dropped, and whether a component of it starts with [`path::WHITEOUT_PREFIX`].
/// `None` when it needs more (an empty or `.` component inside, `..`, NUL).
fn plain(name: &[u8]) -> Option<(&[u8], bool)> {
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
        return Some((&[], false));
    }
    path::scan_normal(s).map(|wh| (s, wh))
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

/// The table being made, layer after layer.
struct Builder<'a> {
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: Vec<Slot<'a>>,
    says: Vec<Say>,
}

impl<'a> Builder<'a> {
    fn find(&self, hash: u64, p: &[u8]) -> Option<u32> {
        self.table.find(hash, |&s| self.slots[s as usize].path.as_ref() == p).copied()
    }

    /// The say of layer `l` about `p` (made, with its slot, when there is none yet).
    fn say(&mut self, p: Cow<'a, [u8]>, l: u32) -> (u32, u32) {
        let hash = self.hasher.hash_one(p.as_ref());
        let slot = match self.find(hash, &p) {
            Some(s) => s,
            None => {
                let s = self.slots.len() as u32;
                self.slots.push(Slot { path: p, first: NONE, last: NONE, parent: Cell::new(PARENT_UNKNOWN) });
                let (slots, hasher) = (&self.slots, &self.hasher);
                self.table.insert_unique(hash, s, |&s| hasher.hash_one(slots[s as usize].path.as_ref()));
                s
            }
        };
        let last = self.slots[slot as usize].last;
        if last != NONE && self.says[last as usize].layer == l {
            return (slot, last);
        }
        let id = self.says.len() as u32;
        self.says.push(Say { layer: l, entry: NONE, bits: 0, next: NONE });
        let s = &mut self.slots[slot as usize];
        if s.last == NONE {
            s.first = id;
        } else {
            self.says[s.last as usize].next = id;
        }
        s.last = id;
        (slot, id)
    }

    /// Mark the strict ancestors of `p` with `bit` for layer `l`, nearest first, until
    /// one has it already.
    fn mark_ancestors(&mut self, p: &'a [u8], l: u32, bit: u8) {
        for a in ancestors(p) {
            let (_, say) = self.say(Cow::Borrowed(a), l);
            let b = &mut self.says[say as usize].bits;
            if *b & bit != 0 {
                break;
            }
            *b |= bit;
        }
    }
}

impl<'a> MergedIndex<'a> {
    /// The merged view of `indexes` (base first), when their union is plain (see the
    /// module documentation); `None` when it is not, and the layers must be folded.
    pub fn new(indexes: &'a [IndexRef<'a>]) -> Option<MergedIndex<'a>> {
        // More layers than a merged tree holds: the fold's error.
        if indexes.len() > crate::memtree::MAX_LAYERS {
            return None;
        }
        let names: usize = indexes.iter().map(|i| i.entries.len()).sum();
        let mut b = Builder {
            table: HashTable::with_capacity(names + names / 8),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::with_capacity(names + names / 8),
            says: Vec::with_capacity(names + names / 8),
        };
        let mut written = Vec::with_capacity(indexes.len());
        let (mut root_layer, mut root_floor) = (0, 0);
        let mut root_opaque = Vec::new();
        for (l, index) in indexes.iter().enumerate() {
            let lu = l as u32;
            let start = b.says.len();
            let mut mine = Vec::with_capacity(index.entries.len());
            // The parent of the last entry, whose ancestors are marked already.
            let mut last_parent: Option<&'a [u8]> = None;
            for (i, e) in index.entries.iter().enumerate() {
                let (p, whiteout) = plain(e.path)?;
                if whiteout {
                    if ancestors(p).any(|a| a.rsplit(|&b| b == b'/').next().is_some_and(|n| n.starts_with(b".wh."))) {
                        return None;
                    }
                    match path::classify(Path::new(OsStr::from_bytes(p))).ok()? {
                        Class::Whiteout { target } => {
                            let target = target.into_os_string().into_encoded_bytes();
                            let (slot, say) = b.say(Cow::Owned(target), lu);
                            if b.says[say as usize].bits & WHITEOUT == 0 {
                                b.says[say as usize].bits |= WHITEOUT;
                                mine.push(slot);
                            }
                            b.mark_ancestors(p, lu, WHITEOUT_BELOW);
                        }
                        Class::Opaque { .. } => {
                            let d = parent_of(p);
                            if d.is_empty() {
                                root_floor = l;
                                root_opaque.push(lu);
                            } else {
                                let (_, say) = b.say(Cow::Borrowed(d), lu);
                                b.says[say as usize].bits |= OPAQUE;
                                b.mark_ancestors(d, lu, UNDER);
                            }
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
                        let (t, _) = plain(e.link)?;
                        let s = b.find(b.hasher.hash_one(t), t)?;
                        let last = b.says[b.slots[s as usize].last as usize];
                        if t == p || last.layer != lu || index.entries.get(last.entry as usize)?.kind != EntryKind::File
                        {
                            return None;
                        }
                    }
                    _ => {}
                }
                let (slot, say) = b.say(Cow::Borrowed(p), lu);
                if b.says[say as usize].entry != NONE {
                    return None;
                }
                b.says[say as usize].entry = u32::try_from(i).ok().filter(|&i| i != NONE)?;
                if e.kind == EntryKind::Dir {
                    b.says[say as usize].bits |= DIR;
                }
                mine.push(slot);
                let parent = parent_of(p);
                if last_parent != Some(parent) {
                    if !parent.is_empty() {
                        let (_, say) = b.say(Cow::Borrowed(parent), lu);
                        if b.says[say as usize].bits & UNDER == 0 {
                            b.says[say as usize].bits |= UNDER;
                            b.mark_ancestors(parent, lu, UNDER);
                        }
                    }
                    last_parent = Some(parent);
                }
            }
            // A layer that whites out what it makes itself: the fold's rules decide.
            if b.says[start..]
                .iter()
                .any(|s| s.bits & WHITEOUT != 0 && (s.entry != NONE || s.bits & (UNDER | OPAQUE) != 0))
            {
                return None;
            }
            written.push(mine);
        }
        // No layer puts anything under (or whites out anything under) a path that is
        // not a directory in it or below it: no symlink to walk, no file to replace.
        for s in &b.slots {
            let mut not_dir = false;
            let mut at = s.first;
            while at != NONE {
                let say = b.says[at as usize];
                if say.entry != NONE && say.bits & DIR == 0 {
                    not_dir = true;
                }
                if not_dir && say.bits & (UNDER | OPAQUE | WHITEOUT_BELOW) != 0 {
                    return None;
                }
                at = say.next;
            }
        }
        // An opaque marker keeps the lower directories leading to what its layer adds
        // (with their layer) when that layer does not declare them: a directory only
        // needed there (or made opaque too) that a lower layer also had is left to the
        // fold.
        let opaque_at = |p: &[u8], l: u32| {
            if p.is_empty() {
                return root_opaque.contains(&l);
            }
            b.find(b.hasher.hash_one(p), p).is_some_and(|s| {
                let mut at = b.slots[s as usize].first;
                while at != NONE {
                    let say = b.says[at as usize];
                    if say.layer == l {
                        return say.bits & OPAQUE != 0;
                    }
                    at = say.next;
                }
                false
            })
        };
        for s in &b.slots {
            let mut at = s.first;
            let mut named_below = false;
            while at != NONE {
                let say = b.says[at as usize];
                if named_below
                    && say.entry == NONE
                    && say.bits & (UNDER | OPAQUE) != 0
                    && (opaque_at(b"", say.layer) || ancestors(&s.path).any(|a| opaque_at(a, say.layer)))
                {
                    return None;
                }
                named_below = true;
                at = say.next;
            }
        }
        let Builder { table, hasher, slots, says } = b;
        Some(MergedIndex {
            indexes,
            table,
            hasher,
            slots,
            says,
            written,
            root_layer,
            root_floor,
            dirs: RefCell::new(HashMap::new()),
            last_dir: RefCell::new((Vec::new(), None)),
        })
    }
}

/// A path found, with what the lookups need besides.
#[derive(Clone, Copy)]
struct Hit<'a> {
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
    pub fn file_paths_where(&self, wanted: &mut dyn FnMut(&[u8]) -> bool) -> Vec<&[u8]> {
        let mut out = Vec::new();
        for (s, slot) in self.slots.iter().enumerate() {
            let mut file = false;
            let mut at = slot.first;
            while at != NONE {
                let say = self.says[at as usize];
                file |= say.entry != NONE
                    && matches!(self.raw(say.layer as usize, say.entry).kind, EntryKind::File | EntryKind::Hardlink);
                at = say.next;
            }
            if !file || !wanted(&slot.path) {
                continue;
            }
            if let Parent::Dir { floor } = self.parent(parent_of(&slot.path))
                && let Some(Hit { at: Some((l, i)), .. }) = self.hit(s as u32, floor)
                && matches!(self.raw(l, i).kind, EntryKind::File | EntryKind::Hardlink)
            {
                out.push(slot.path.as_ref());
            }
        }
        out.sort_by(|a, b| crate::tar_order(Path::new(OsStr::from_bytes(a)), Path::new(OsStr::from_bytes(b))));
        out
    }

    /// What layer `l` writes or whites out, each path normalised once, in no order: the
    /// normalised names of its entries, a whiteout as the path it deletes (opaque
    /// markers and the root left out).
    pub fn layer_paths(&self, l: usize) -> impl Iterator<Item = &[u8]> + '_ {
        self.written.get(l).into_iter().flatten().map(|&s| self.slots[s as usize].path.as_ref())
    }

    fn raw(&self, l: usize, i: u32) -> &RawEntry<'a> {
        &self.indexes[l].entries[i as usize]
    }

    fn root(&self) -> Hit<'a> {
        let node = IndexedNode { kind: EntryKind::Dir, layer: self.root_layer, source: None, size: 0 };
        Hit { node, link: &[], at: None }
    }

    fn slot(&self, p: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(p);
        self.table.find(hash, |&s| self.slots[s as usize].path.as_ref() == p).copied()
    }

    fn lookup(&self, path: &[u8], follow: bool) -> Option<Hit<'a>> {
        // A path some layer names, as asked: in normal form already (every path of the
        // table is), and hashed once. Any other is put in normal form first.
        let known = self.slot(path);
        let norm = if known.is_some() || path::scan_normal(path).is_some() {
            Cow::Borrowed(path)
        } else {
            path::normalized(path).ok()?
        };
        if norm.is_empty() {
            return Some(self.root());
        }
        // The parent directory, resolved once for all the names looked up in it.
        let (real, floor) = self.dir(parent_of(&norm))?;
        let f = match real {
            None => {
                known.or_else(|| if norm == path { None } else { self.slot(&norm) }).and_then(|s| self.hit(s, floor))
            }
            Some(NONE) => {
                self.slot(norm.rsplit(|&b| b == b'/').next().unwrap_or_default()).and_then(|s| self.hit(s, floor))
            }
            Some(real) => {
                let name = norm.rsplit(|&b| b == b'/').next().unwrap_or_default();
                let real = &self.slots[real as usize].path;
                let mut p = Vec::with_capacity(real.len() + 1 + name.len());
                p.extend_from_slice(real);
                p.push(b'/');
                p.extend_from_slice(name);
                self.slot(&p).and_then(|s| self.hit(s, floor))
            }
        };
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
    /// followed, as the resolver does): the slot of its real path (`None` when it is
    /// `d`), and the layer from which its content shows; `None` when it leads to no
    /// directory. Remembered.
    fn dir(&self, d: &[u8]) -> DirAt {
        if d.is_empty() {
            return Some((None, self.root_floor));
        }
        {
            let last = self.last_dir.borrow();
            if last.0 == d {
                return last.1;
            }
        }
        let r = match self.parent(d) {
            Parent::Dir { floor } => Some((None, floor)),
            Parent::Other => {
                let known = self.dirs.borrow().get(d).copied();
                match known {
                    Some(r) => r,
                    None => {
                        let r = match self.through_parent(d) {
                            Some(r) => r,
                            None => match resolve::resolve(self, d, b'/', true) {
                                Ok(r) if !matches!(r.end, End::Other) => match self.parent(&r.path) {
                                    Parent::Dir { floor } if r.path.is_empty() => Some((Some(NONE), floor)),
                                    Parent::Dir { floor } => self.slot(&r.path).map(|s| (Some(s), floor)),
                                    Parent::Other => None,
                                },
                                _ => None,
                            },
                        };
                        self.dirs.borrow_mut().insert(d.to_vec(), r);
                        r
                    }
                }
            }
        };
        let mut last = self.last_dir.borrow_mut();
        last.0.clear();
        last.0.extend_from_slice(d);
        last.1 = r;
        r
    }

    /// [`MergedIndex::dir`] of `d`, not a directory of its own, from its parent's:
    /// nothing there (most names asked for that are not in the image), a directory a
    /// symlink on the way leads the parent to (`lib/x86_64-linux-gnu` through `lib`), or
    /// something else. `None` when `d` itself is a symlink: the resolver follows it.
    fn through_parent(&self, d: &[u8]) -> Option<DirAt> {
        let (pd, name) = match d.iter().rposition(|&b| b == b'/') {
            Some(i) => (&d[..i], &d[i + 1..]),
            None => (&[][..], d),
        };
        let Some((real, _)) = self.dir(pd) else { return Some(None) };
        let p = match real {
            None => Cow::Borrowed(d),
            Some(NONE) => Cow::Borrowed(name),
            Some(r) => {
                let mut p = self.slots[r as usize].path.to_vec();
                p.push(b'/');
                p.extend_from_slice(name);
                Cow::Owned(p)
            }
        };
        match self.node(&p) {
            Some(h) if h.node.kind == EntryKind::Symlink => None,
            Some(h) if h.node.kind == EntryKind::Dir => match (self.slot(&p), self.parent(&p)) {
                (Some(s), Parent::Dir { floor }) => Some(Some((real.map(|_| s), floor))),
                _ => Some(None),
            },
            _ => Some(None),
        }
    }

    /// What is at the real path `p` (no symlink on the way, no `..`).
    fn node(&self, p: &[u8]) -> Option<Hit<'a>> {
        match self.parent(parent_of(p)) {
            Parent::Dir { floor } => self.hit(self.slot(p)?, floor),
            Parent::Other => None,
        }
    }

    /// The directory at the real path `d`, remembered in its slot.
    fn parent(&self, d: &[u8]) -> Parent {
        if d.is_empty() {
            return Parent::Dir { floor: self.root_floor };
        }
        let Some(s) = self.slot(d) else { return Parent::Other };
        let slot = &self.slots[s as usize];
        match slot.parent.get() {
            PARENT_UNKNOWN => {}
            PARENT_OTHER => return Parent::Other,
            floor => return Parent::Dir { floor: floor as usize },
        }
        let r = match self.parent(parent_of(d)) {
            Parent::Dir { floor } => match self.seen(s, floor).0 {
                Seen::Dir { floor, .. } => Parent::Dir { floor },
                _ => Parent::Other,
            },
            Parent::Other => Parent::Other,
        };
        slot.parent.set(match r {
            Parent::Dir { floor } => floor as u32,
            Parent::Other => PARENT_OTHER,
        });
        r
    }

    /// What the layers from `floor` up leave at the path of slot `s` (the union rules,
    /// [`Seen::after`], over what each says), and the entry that made it when it is not
    /// a directory.
    fn seen(&self, s: u32, floor: usize) -> (Seen, Option<(usize, u32)>) {
        let mut seen = Seen::Nothing;
        let mut entry = None;
        let mut at = self.slots[s as usize].first;
        while at != NONE {
            let say = self.says[at as usize];
            at = say.next;
            let l = say.layer as usize;
            if l < floor {
                continue;
            }
            let says = Says {
                entry: (say.entry != NONE).then_some(if say.bits & DIR != 0 { Is::Dir } else { Is::Other }),
                under: say.bits & UNDER != 0,
                whiteout: say.bits & WHITEOUT != 0,
                opaque: say.bits & OPAQUE != 0,
            };
            seen = seen.after(l, says);
            if matches!(seen, Seen::Other { layer } if layer == l) {
                entry = Some((l, say.entry));
            }
        }
        (seen, entry)
    }

    /// What is at the path of slot `s`, its parent a directory whose content shows from
    /// layer `floor` up.
    fn hit(&self, s: u32, floor: usize) -> Option<Hit<'a>> {
        let (seen, entry) = self.seen(s, floor);
        let dir = |layer| IndexedNode { kind: EntryKind::Dir, layer, source: None, size: 0 };
        match (seen, entry) {
            (Seen::Nothing, _) => None,
            (Seen::Dir { layer, .. }, _) => Some(Hit { node: dir(layer), link: &[], at: None }),
            (Seen::Other { .. }, None) => None,
            (Seen::Other { layer: l, .. }, Some((_, i))) => {
                let e = self.raw(l, i);
                let file = |i: u32, e: &RawEntry<'a>| IndexedNode {
                    kind: EntryKind::File,
                    layer: l,
                    source: Some(DataSource { layer: l, entry: u64::from(i), offset: e.offset }),
                    size: e.size,
                };
                let node = match e.kind {
                    EntryKind::File => file(i, e),
                    EntryKind::Hardlink => {
                        // A file earlier in the same layer (`new` checked it).
                        let t = self.slot(plain(e.link)?.0)?;
                        let last = self.says[self.slots[t as usize].last as usize];
                        let ti = if last.layer as usize == l { last.entry } else { self.say_of(t, l)?.entry };
                        file(ti, self.raw(l, ti))
                    }
                    k => IndexedNode { kind: k, layer: l, source: None, size: 0 },
                };
                Some(Hit { node, link: e.link, at: Some((l, i)) })
            }
        }
    }

    /// What layer `l` says about the path of slot `s`.
    fn say_of(&self, s: u32, l: usize) -> Option<Say> {
        let mut at = self.slots[s as usize].first;
        while at != NONE {
            let say = self.says[at as usize];
            if say.layer as usize == l {
                return Some(say);
            }
            at = say.next;
        }
        None
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
    use proptest::prelude::*;

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

    /// Every lookup of the view of the serialised indexes `bytes` against the folded
    /// tree's: every path of the tree, every path any layer names, and `extra` (paths
    /// through symlinks, gone, never there). `None` when the view is not made (the
    /// layers are not plain), else the view's answers were checked.
    fn agree(bytes: &[Vec<u8>], extra: &[&str]) -> Option<()> {
        let owned: Vec<LayerIndex> = bytes.iter().map(|b| LayerIndex::from_bytes(b).unwrap()).collect();
        let refs: Vec<IndexRef<'_>> = bytes.iter().map(|b| IndexRef::from_bytes(b).unwrap()).collect();
        for (o, r) in owned.iter().zip(&refs) {
            assert_eq!(o.entries().collect::<Vec<_>>(), r.entries().collect::<Vec<_>>());
            assert_eq!(o.diff_id(), r.diff_id());
        }
        let view = MergedIndex::new(&refs)?;
        let names: Vec<String> = (0..owned.len()).map(|i| format!("layer {i}")).collect();
        let tree = MergedTree::from_indexes(&owned.iter().collect::<Vec<_>>(), &names, &MergeOptions::default())
            .expect("plain layers fold");
        let mut paths: Vec<Vec<u8>> = tree.iter().map(|e| e.meta.path.into_os_string().into_encoded_bytes()).collect();
        for r in &refs {
            paths.extend(r.entries().map(|e| e.path.to_vec()));
        }
        paths.extend(extra.iter().map(|p| p.as_bytes().to_vec()));
        paths.push(Vec::new());
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
            assert_eq!(got(view.stat(p)), want(false), "stat {name}");
            assert_eq!(got(view.stat_follow(p)), want(true), "stat_follow {name}");
            assert_eq!(view.is_dir(p), tree.is_dir(OsStr::from_bytes(p)), "is_dir {name}");
            assert_eq!(view.layer_of(p), tree.layer_of(OsStr::from_bytes(p)), "layer_of {name}");
        }
        let files: Vec<Vec<u8>> = view.file_paths_where(&mut |_| true).into_iter().map(<[u8]>::to_vec).collect();
        let want: Vec<Vec<u8>> = tree.file_paths().map(|p| p.into_os_string().into_encoded_bytes()).collect();
        assert_eq!(files, want);
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
            want.dedup();
            got.sort();
            assert_eq!(got, want, "layer {l}");
        }
        Some(())
    }

    #[test]
    fn every_lookup_is_the_folded_trees() {
        let (_, bytes) = indexes(&layers());
        let extra = [
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
        ];
        agree(&bytes, &extra).expect("plain layers");
        let refs: Vec<IndexRef<'_>> = bytes.iter().map(|b| IndexRef::from_bytes(b).unwrap()).collect();
        let owned: Vec<LayerIndex> = bytes.iter().map(|b| LayerIndex::from_bytes(b).unwrap()).collect();
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
        assert!(view.file_paths_where(&mut |p| p.ends_with(b"new")) == vec![&b"opt/app/new"[..]]);
    }

    /// What a raw layer holds: entries exactly as given (no parent made for them).
    #[derive(Debug, Clone)]
    enum Raw {
        File(String),
        Dir(String),
        Symlink(String, String),
        Hardlink(String, String),
    }

    /// The serialised index of a tar of `entries`, in that order, nothing added.
    fn raw_index(entries: &[Raw]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o755);
            h.set_size(0);
            let (path, link) = match e {
                Raw::File(p) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(p.len() as u64);
                    (p, None)
                }
                Raw::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    (p, None)
                }
                Raw::Symlink(p, t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    (p, Some(t))
                }
                Raw::Hardlink(p, t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    (p, Some(t))
                }
            };
            h.set_path(path).unwrap();
            if let Some(t) = link {
                h.set_link_name(t).unwrap();
            }
            h.set_cksum();
            let data = if matches!(e, Raw::File(_)) { path.as_bytes() } else { &[][..] };
            b.append(&h, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let src = LayerSource::new("raw", &tar[..]);
        LayerIndex::read(src, &Limits::default(), 0, &mut |_, _| false).unwrap().index.to_bytes()
    }

    #[test]
    fn the_union_rules_case_by_case() {
        use Raw::*;
        let f = |p: &str| File(p.into());
        let d = |p: &str| Dir(p.into());
        let l = |p: &str, t: &str| Symlink(p.into(), t.into());
        // What, the layers, paths to look up besides, whether the view is made.
        type Case<'c> = (&'c str, Vec<Vec<Raw>>, Vec<&'c str>, bool);
        let cases: Vec<Case<'_>> = vec![
            (
                "a directory whited out, then made again (declared, and only needed)",
                vec![
                    vec![d("a"), f("a/x"), d("a/sub"), f("a/sub/y"), d("b"), f("b/x")],
                    vec![f("a/.wh.sub"), f(".wh.b")],
                    vec![d("a/sub"), f("a/sub/z"), f("b/new")],
                ],
                vec!["a/sub/y", "b/x", "b", "a/sub/z"],
                true,
            ),
            (
                "an opaque directory in a middle layer",
                vec![
                    vec![d("o"), f("o/low"), d("o/d"), f("o/d/deep"), f("keep")],
                    vec![f("o/.wh..wh..opq"), f("o/mid"), f("p/.wh..wh..opq")],
                    vec![f("o/top"), d("o"), f("o/d/again")],
                ],
                vec!["o/low", "o/d/deep", "o/d", "p"],
                true,
            ),
            (
                "an opaque directory with nothing else of its layer, below one that declares it",
                vec![vec![d("o"), f("o/low")], vec![f("o/.wh..wh..opq")], vec![f("o/new")], vec![d("o")]],
                vec!["o/low"],
                true,
            ),
            (
                "a file replaced by a directory and back",
                vec![vec![f("r")], vec![d("r")], vec![f("r")], vec![d("r")]],
                vec!["r/x"],
                true,
            ),
            (
                "a directory replaced by a file and back, with content",
                vec![vec![d("s"), f("s/x")], vec![f("s")], vec![d("s")]],
                vec!["s/x"],
                true,
            ),
            (
                "a whiteout of a path under a symlink",
                vec![
                    vec![d("usr"), d("usr/lib"), f("usr/lib/a"), f("usr/lib/b"), l("lib", "usr/lib")],
                    vec![f("lib/.wh.a")],
                    vec![f("usr/lib/.wh.b")],
                ],
                vec!["lib/a", "lib/b", "usr/lib/a", "usr/lib/b", "lib"],
                false,
            ),
            (
                "a whiteout of a symlink",
                vec![vec![d("usr"), d("usr/lib"), f("usr/lib/a"), l("lib", "usr/lib")], vec![f(".wh.lib")]],
                vec!["lib/a", "usr/lib/a", "lib"],
                true,
            ),
            (
                "an opaque directory whose layer adds to a lower directory in it, undeclared",
                vec![vec![d("o"), d("o/d"), f("o/d/x")], vec![f("o/.wh..wh..opq"), f("o/d/y")]],
                vec!["o/d/x", "o/d"],
                false,
            ),
            (
                "an opaque directory made in a layer that then makes the root opaque",
                vec![vec![f("x")], vec![f("c/a/.wh..wh..opq"), f(".wh..wh..opq")]],
                vec!["c/a", "c", "x"],
                true,
            ),
            (
                "a lower directory made opaque in a layer that makes the root opaque",
                vec![vec![d("c"), f("c/x")], vec![f("c/.wh..wh..opq"), f(".wh..wh..opq")]],
                vec!["c", "c/x"],
                false,
            ),
            (
                "the root made opaque",
                vec![vec![f("gone"), d("g"), f("g/x")], vec![f(".wh..wh..opq"), f("kept")], vec![f("g/y")]],
                vec!["gone", "g/x"],
                true,
            ),
            (
                "directories only needed, then declared",
                vec![vec![f("n/a/b/c")], vec![f("n/a/x")], vec![d("n/a")], vec![f("n/a/b/.wh.c")]],
                vec!["n/a/b/c", "n"],
                true,
            ),
        ];
        for (what, layers, extra, made) in cases {
            let bytes: Vec<Vec<u8>> = layers.iter().map(|l| raw_index(l)).collect();
            assert_eq!(agree(&bytes, &extra).is_some(), made, "{what}: the view is made");
        }
    }

    fn raw_entry() -> impl Strategy<Value = Raw> {
        let name = prop::sample::select(vec!["a", "b", "c", ".wh.a", ".wh.b", ".wh..wh..opq"]);
        let dir = prop::sample::select(vec!["a", "b", "c"]);
        let path = (prop::collection::vec(dir, 0..3), name).prop_map(|(mut d, n)| {
            d.push(n);
            d.join("/")
        });
        let plain = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4).prop_map(|v| v.join("/"));
        let target = prop::sample::select(vec!["a", "b", "/a/b", "../c", "a/b/c", "/"]);
        prop_oneof![
            4 => path.prop_map(Raw::File),
            3 => plain.clone().prop_map(Raw::Dir),
            1 => (plain.clone(), target).prop_map(|(p, t)| Raw::Symlink(p, t.into())),
            1 => (plain.clone(), plain).prop_map(|(p, t)| Raw::Hardlink(p, t)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(strata_testkit::proptest_config(512))]

        /// On random small stacks of raw layers (whiteouts, opaque markers, symlinks,
        /// hard links, directories made only as parents), the view either declines or
        /// agrees with the fold on every lookup.
        #[test]
        fn the_view_agrees_with_the_fold(layers in prop::collection::vec(prop::collection::vec(raw_entry(), 1..8), 1..4)) {
            // Hard links only to a file earlier in their layer (else the tar is refused
            // by the fold, which is not what this compares).
            let bytes: Vec<Vec<u8>> = layers.iter().map(|l| raw_index(l)).collect();
            agree(&bytes, &["a/b/c", "c/a", "a/a/a"]);
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
