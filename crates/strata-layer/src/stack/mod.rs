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

use crate::memtree::DataSource;
use crate::path;
use crate::read::EntryKind;
use crate::resolve::{self, End, Lookup, Node};
use crate::union::Found as Is;
use crate::union::rule::{Says, Seen};

mod index_ref;
mod says;

pub use index_ref::IndexRef;
use index_ref::RawEntry;
use says::{LayerSay, LayerSays, layer_says};

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
const PARENT_MISSING: u32 = u32::MAX - 2;

/// One path some layer names, with what each layer says about it.
struct Slot<'a> {
    /// The normalised path (a whiteout's target is the only one not borrowed).
    path: Cow<'a, [u8]>,
    /// The say of the lowest layer naming it, and of the highest.
    first: u32,
    last: u32,
    /// The directory's floor once looked up as a parent ([`PARENT_UNKNOWN`],
    /// [`PARENT_MISSING`] when nothing is there, [`PARENT_OTHER`] when something else
    /// is).
    parent: Cell<u32>,
    /// The slot of the path's parent directory ([`UP_ROOT`]: the root), when an entry
    /// made the slot ([`NONE`] otherwise): a lookup of the path finds its parent
    /// without hashing it.
    up: u32,
}

/// [`Slot::up`] of a path at the root.
const UP_ROOT: u32 = u32::MAX - 1;

/// A directory met as a parent, remembered.
#[derive(Debug, Clone, Copy)]
enum Parent {
    /// A directory; lower layers than this one cannot show anything under it.
    Dir { floor: usize },
    /// Nothing: the path, or a directory above it, is not in the final tree (a
    /// whiteout took it); nothing can be under it either.
    Missing,
    /// A symlink (the resolver walks it), something else, or a path no layer names
    /// (which a symlink on the way may lead somewhere).
    Other,
}

/// Where the names of a directory asked for are: the slot of its real path when a
/// symlink leads to it (`None`: the path asked for; [`NONE`]: the root), and its floor.
type DirAt = Option<(Option<u32>, usize)>;

/// Lookups in the union of layers from their indexes (see the module documentation).
///
/// Every path any layer names is in one table, hashed once, with what each layer says
/// about it (its entry, a whiteout, an opaque marker, entries below it): a lookup hashes
/// the path once and composes the union rules (`Seen::after`, which the fold's
/// rules are made of too) over those layers only.
pub struct MergedIndex<'a> {
    indexes: &'a [IndexRef<'a>],
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: Vec<Slot<'a>>,
    says: Vec<Say>,
    /// The last layer that declared the root, the last one that made it opaque.
    root_layer: usize,
    root_floor: usize,
    /// [`MergedIndex::dir`] of the paths asked so far that are not directories of
    /// their own (a symlink on the way), and of the last one asked (never the root).
    dirs: RefCell<HashMap<Vec<u8>, DirAt>>,
    last_dir: RefCell<(Vec<u8>, DirAt)>,
    /// A path being put together for a lookup.
    scratch: RefCell<Vec<u8>>,
    /// The slot of the last path a lookup found ([`MergedIndex::slot_near`]).
    near: Cell<u32>,
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
    memchr::memrchr(b'/', p).map_or(&[][..], |i| &p[..i])
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

    /// A new say of layer `l` about `p` (its slot made when there is none yet): each
    /// layer says one thing about a path ([`layer_says`]).
    fn say(&mut self, p: Cow<'a, [u8]>, l: u32) -> (u32, u32) {
        let hash = self.hasher.hash_one(p.as_ref());
        let slot = match self.find(hash, &p) {
            Some(s) => s,
            None => {
                let s = self.slots.len() as u32;
                self.slots.push(Slot { path: p, first: NONE, last: NONE, parent: Cell::new(PARENT_UNKNOWN), up: NONE });
                let (slots, hasher) = (&self.slots, &self.hasher);
                self.table.insert_unique(hash, s, |&s| hasher.hash_one(slots[s as usize].path.as_ref()));
                s
            }
        };
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
}

impl<'a> MergedIndex<'a> {
    /// The merged view of `indexes` (base first), when their union is plain (see the
    /// module documentation); `None` when it is not, and the layers must be folded.
    /// Each layer's says are read from its table when it was read with one
    /// ([`IndexRef::with_table`]), else found from its entries ([`layer_says`]).
    pub fn new(indexes: &'a [IndexRef<'a>]) -> Option<MergedIndex<'a>> {
        // More layers than a merged tree holds: the fold's error.
        if indexes.len() > crate::memtree::MAX_LAYERS {
            return None;
        }
        let names: usize = indexes.iter().map(|i| i.len()).sum();
        let mut b = Builder {
            table: HashTable::with_capacity(names + names / 8),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::with_capacity(names + names / 8),
            says: Vec::with_capacity(names + names / 8),
        };
        crate::mem::prefault(&mut b.slots);
        crate::mem::prefault(&mut b.says);
        let (mut root_layer, mut root_floor) = (0, 0);
        let mut root_opaque = Vec::new();
        // The slot of each say of the layer being merged, for the entries' parents.
        let mut slot_of: Vec<u32> = Vec::new();
        for (l, index) in indexes.iter().enumerate() {
            let lu = l as u32;
            let says = match index.stored_says() {
                Some(stored) => stored?,
                None => index_ref::Says::Built(layer_says(index)?),
            };
            let (root_dir, opaque) = says.root();
            if root_dir {
                root_layer = l;
            }
            if opaque {
                root_floor = l;
                root_opaque.push(lu);
            }
            slot_of.clear();
            for s in says.into_iter() {
                let s = s?;
                let (slot, say) = b.say(s.path, lu);
                let to = &mut b.says[say as usize];
                to.entry = s.entry;
                to.bits = s.bits;
                match s.up {
                    NONE => {}
                    UP_ROOT => b.slots[slot as usize].up = UP_ROOT,
                    up => b.slots[slot as usize].up = *slot_of.get(up as usize)?,
                }
                slot_of.push(slot);
            }
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
            root_layer,
            root_floor,
            dirs: RefCell::new(HashMap::new()),
            last_dir: RefCell::new((Vec::new(), None)),
            scratch: RefCell::new(Vec::new()),
            near: Cell::new(NONE),
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

    /// [`MergedIndex::stat`]'s `layer`, and whether its `kind` is a directory: for a
    /// path some layer names under a directory (most paths asked for), told by what
    /// the layers say there, without reading the entry. A scanner asking for the
    /// layer of each file a package owns asks this thousands of times.
    pub fn layer_and_is_dir(&self, path: &[u8]) -> Option<(usize, bool)> {
        let known = self.slot_near(path);
        // A path not in normal form, or the root: as `stat` finds it.
        if known.is_none() && (path.is_empty() || path::scan_normal(path).is_none()) {
            return self.stat(path).map(|n| (n.layer, n.kind == EntryKind::Dir));
        }
        let (s, floor) = self.locate(path, known, path)?;
        match self.seen(s, floor) {
            (Seen::Nothing, _) | (Seen::Other { .. }, None) => None,
            (Seen::Dir { layer, .. }, _) => Some((layer, true)),
            (Seen::Other { layer }, Some(_)) => Some((layer, false)),
        }
    }

    /// The paths of the regular files of the final tree that `wanted` accepts, in tar
    /// order ([`crate::tar_order`]), as [`crate::MergedTree::file_paths`] lists them.
    pub fn file_paths_where(&self, wanted: &mut dyn FnMut(&[u8]) -> bool) -> Vec<&[u8]> {
        let mut out = Vec::new();
        for (s, slot) in self.slots.iter().enumerate() {
            // Only a path some layer has a regular file at can be one.
            let mut file = false;
            let mut at = slot.first;
            while at != NONE {
                let say = self.says[at as usize];
                file |= say.entry != NONE
                    && self
                        .raw(say.layer as usize, say.entry)
                        .is_some_and(|e| matches!(e.kind, EntryKind::File | EntryKind::Hardlink));
                at = say.next;
            }
            if file && self.final_file(s as u32, wanted) {
                out.push(slot.path.as_ref());
            }
        }
        out.sort_by(|a, b| crate::tar_order(Path::new(OsStr::from_bytes(a)), Path::new(OsStr::from_bytes(b))));
        out
    }

    /// [`MergedIndex::file_paths_where`] among the paths of `entries` (each a layer and
    /// the position of an entry in it) alone: for a caller that knows which entries can
    /// name what `wanted` accepts (a scan's record lists the entries whose names its
    /// catalogers read), the same answer without going through every path.
    pub fn file_paths_among(
        &self,
        entries: impl IntoIterator<Item = (usize, u64)>,
        wanted: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Vec<&[u8]> {
        let mut slots: Vec<u32> = entries
            .into_iter()
            .filter_map(|(l, i)| {
                let e = self.indexes.get(l)?.raw(usize::try_from(i).ok()?)?;
                let (p, _) = e.plain.or_else(|| plain(e.path))?;
                self.slot(p)
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        let mut out: Vec<&[u8]> = slots
            .into_iter()
            .filter(|&s| self.final_file(s, wanted))
            .map(|s| self.slots[s as usize].path.as_ref())
            .collect();
        out.sort_by(|a, b| crate::tar_order(Path::new(OsStr::from_bytes(a)), Path::new(OsStr::from_bytes(b))));
        out
    }

    /// Whether the path of slot `s` is a regular file of the final tree that `wanted`
    /// accepts.
    fn final_file(&self, s: u32, wanted: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        let path = &self.slots[s as usize].path;
        if !wanted(path) {
            return false;
        }
        let Parent::Dir { floor } = self.parent(parent_of(path)) else { return false };
        let Some(Hit { at: Some((l, i)), .. }) = self.hit(s, floor) else { return false };
        self.raw(l, i).is_some_and(|e| matches!(e.kind, EntryKind::File | EntryKind::Hardlink))
    }

    /// The layers that write `path` or white it out, base first: those with an entry
    /// whose normalised name it is, or a whiteout of it (opaque markers and the root
    /// name no path here). `path` is looked up as it is: a name not in normal form names
    /// nothing. One lookup in the table, where going through every layer's entries
    /// takes them all.
    pub fn writers(&self, path: &[u8]) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.slot_near(path).map_or(NONE, |s| self.slots[s as usize].first);
        std::iter::from_fn(move || {
            while at != NONE {
                let say = self.says[at as usize];
                at = say.next;
                if say.entry != NONE || say.bits & WHITEOUT != 0 {
                    return Some(say.layer as usize);
                }
            }
            None
        })
    }

    fn raw(&self, l: usize, i: u32) -> Option<RawEntry<'a>> {
        self.indexes.get(l)?.raw(i as usize)
    }

    fn root(&self) -> Hit<'a> {
        let node = IndexedNode { kind: EntryKind::Dir, layer: self.root_layer, source: None, size: 0 };
        Hit { node, link: &[], at: None }
    }

    fn slot(&self, p: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(p);
        self.table.find(hash, |&s| self.slots[s as usize].path.as_ref() == p).copied()
    }

    /// The slot of `p`, tried first at the one after the last this found: the paths
    /// asked one after the other (a package's files) are mostly next to each other in
    /// a layer, as slots are, and a comparison is cheaper than hashing. A path has one
    /// slot, so a slot whose path is `p` is its slot.
    fn slot_near(&self, p: &[u8]) -> Option<u32> {
        let next = self.near.get().wrapping_add(1);
        if self.slots.get(next as usize).is_some_and(|s| s.path.as_ref() == p) {
            self.near.set(next);
            return Some(next);
        }
        let s = self.slot(p);
        if let Some(s) = s {
            self.near.set(s);
        }
        s
    }

    /// The directory above the path of slot `s` when an entry made the slot (no
    /// symlink on the way), else [`Parent::Other`].
    fn up(&self, s: u32) -> Parent {
        match self.slots[s as usize].up {
            NONE => Parent::Other,
            UP_ROOT => Parent::Dir { floor: self.root_floor },
            up => self.parent_at(up),
        }
    }

    fn lookup(&self, path: &[u8], follow: bool) -> Option<Hit<'a>> {
        // A path some layer names, as asked: in normal form already (every path of the
        // table is), and hashed once. Any other is put in normal form first.
        let known = self.slot_near(path);
        let norm = if known.is_some() || path::scan_normal(path).is_some() {
            Cow::Borrowed(path)
        } else {
            path::normalized(path).ok()?
        };
        if norm.is_empty() {
            return Some(self.root());
        }
        let f = self.locate(path, known, &norm).and_then(|(s, floor)| self.hit(s, floor));
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

    /// The slot of the real path of the normalised, non-empty path `norm` (`path` as
    /// asked, `known` its slot) and the floor of its parent directory: the directory an
    /// entry at the path has (no symlink on the way), else the one its parent leads to,
    /// resolved once for all the names looked up in it ([`MergedIndex::through_dir`]).
    /// `None` when no layer names the real path or the parent leads to no directory.
    // Inlined into the per-file question (`layer_and_is_dir`): as a call it cost the
    // scan 0.3 M instructions (callgrind).
    #[inline(always)]
    fn locate(&self, path: &[u8], known: Option<u32>, norm: &[u8]) -> Option<(u32, usize)> {
        match known.map(|s| (s, self.up(s))) {
            Some((s, Parent::Dir { floor })) => Some((s, floor)),
            Some((_, Parent::Missing)) => None,
            _ => self.through_dir(path, known, norm)?,
        }
    }

    /// The slot of the real path of the normalised path `norm` (`path` as asked,
    /// `known` its slot), its parent directory resolved ([`MergedIndex::dir`]), and the
    /// floor of that directory: `Some(None)` when no layer names the real path, `None`
    /// when the parent leads to no directory.
    fn through_dir(&self, path: &[u8], known: Option<u32>, norm: &[u8]) -> Option<Option<(u32, usize)>> {
        let (real, floor) = self.dir(parent_of(norm))?;
        Some(
            match real {
                None => known.or_else(|| if norm == path { None } else { self.slot(norm) }),
                Some(NONE) => self.slot(norm.rsplit(|&b| b == b'/').next().unwrap_or_default()),
                Some(real) => {
                    let name = norm.rsplit(|&b| b == b'/').next().unwrap_or_default();
                    let real = &self.slots[real as usize].path;
                    // The real path, in a buffer kept for the next (`lib/...` through a
                    // merged `/usr`, thousands of times in a Debian image).
                    let mut p = self.scratch.borrow_mut();
                    p.clear();
                    p.extend_from_slice(real);
                    p.push(b'/');
                    p.extend_from_slice(name);
                    self.slot(&p)
                }
            }
            .map(|s| (s, floor)),
        )
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
            Parent::Missing => None,
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
                                    Parent::Missing | Parent::Other => None,
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
        let (pd, name) = match memchr::memrchr(b'/', d) {
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
            Parent::Missing | Parent::Other => None,
        }
    }

    /// The directory at the real path `d`, remembered in its slot.
    fn parent(&self, d: &[u8]) -> Parent {
        if d.is_empty() {
            return Parent::Dir { floor: self.root_floor };
        }
        match self.slot(d) {
            Some(s) => self.parent_at(s),
            None => Parent::Other,
        }
    }

    /// [`MergedIndex::parent`] of the path of slot `s`.
    fn parent_at(&self, s: u32) -> Parent {
        let slot = &self.slots[s as usize];
        let d: &[u8] = &slot.path;
        match slot.parent.get() {
            PARENT_UNKNOWN => {}
            PARENT_OTHER => return Parent::Other,
            PARENT_MISSING => return Parent::Missing,
            floor => return Parent::Dir { floor: floor as usize },
        }
        let above = match slot.up {
            NONE => self.parent(parent_of(d)),
            UP_ROOT => Parent::Dir { floor: self.root_floor },
            up => self.parent_at(up),
        };
        let r = match above {
            Parent::Dir { floor } => match self.seen(s, floor).0 {
                Seen::Dir { floor, .. } => Parent::Dir { floor },
                Seen::Nothing => Parent::Missing,
                Seen::Other { .. } => Parent::Other,
            },
            other => other,
        };
        slot.parent.set(match r {
            Parent::Dir { floor } => floor as u32,
            Parent::Missing => PARENT_MISSING,
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
                let e = self.raw(l, i)?;
                let file = |i: u32, e: &RawEntry<'a>| IndexedNode {
                    kind: EntryKind::File,
                    layer: l,
                    source: Some(DataSource { layer: l, entry: u64::from(i), offset: e.offset }),
                    size: e.size,
                };
                let node = match e.kind {
                    EntryKind::File => file(i, &e),
                    EntryKind::Hardlink => {
                        // A file earlier in the same layer (`new` checked it).
                        let t = self.slot(plain(e.link)?.0)?;
                        let last = self.says[self.slots[t as usize].last as usize];
                        let ti = if last.layer as usize == l { last.entry } else { self.say_of(t, l)?.entry };
                        file(ti, &self.raw(l, ti)?)
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
mod tests;
