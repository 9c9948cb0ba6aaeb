//! The lookups of a [`MergedIndex`]: a path's slot, its parent directory's floor
//! (symlinks on the way followed once per directory), and the union rules over what the
//! layers say there.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::io::Errno;

use super::{
    DIR, DirAt, IndexedNode, MergedIndex, NONE, OPAQUE, PARENT_MISSING, PARENT_OTHER, PARENT_UNKNOWN, Parent, RawEntry,
    Say, UNDER, UP_ROOT, WHITEOUT, parent_of, plain,
};
use crate::memtree::DataSource;
use crate::path;
use crate::read::EntryKind;
use crate::resolve::{self, End, Lookup, Node};
use crate::union::Found as Is;
use crate::union::rule::{Says, Seen};

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
