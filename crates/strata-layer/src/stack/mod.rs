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
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use crate::memtree::DataSource;
use crate::path;
use crate::read::EntryKind;

mod index_ref;
mod lookup;
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

#[cfg(test)]
mod tests;
