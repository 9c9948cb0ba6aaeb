//! What one layer says about each path it names, found from that layer alone
//! ([`layer_says`]): the first half of [`super::MergedIndex::new`], which a layer's table
//! keeps ([`super::IndexRef::table`]) so that the merge of a stack reads it rather than
//! going through the layer's entries again.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::{DIR, IndexRef, NONE, OPAQUE, UNDER, UP_ROOT, WHITEOUT, WHITEOUT_BELOW, ancestors, parent_of, plain};
use crate::path::{self, Class};
use crate::read::EntryKind;

/// What one layer says about one path, before the layers are merged: the position of
/// its entry there ([`NONE`]: none), the [`Say`] bits, and for an entry, the position in
/// the layer's list of its parent directory's say ([`UP_ROOT`]: the root; [`NONE`]: not
/// an entry).
#[derive(Debug, Clone)]
pub(super) struct LayerSay<'a> {
    pub(super) path: Cow<'a, [u8]>,
    pub(super) entry: u32,
    pub(super) up: u32,
    pub(super) bits: u8,
}

/// One layer's says, a parent directory's before those of the entries under it, and
/// what it says about the root: an entry there (a directory), an opaque marker there.
#[derive(Debug, Clone, Default)]
pub(super) struct LayerSays<'a> {
    pub(super) says: Vec<LayerSay<'a>>,
    pub(super) root_dir: bool,
    pub(super) root_opaque: bool,
}

/// A layer's says being found ([`layer_says`]).
struct OneLayer<'a> {
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    says: Vec<LayerSay<'a>>,
}

impl<'a> OneLayer<'a> {
    fn find(&self, p: &[u8]) -> Option<u32> {
        self.table.find(self.hasher.hash_one(p), |&s| self.says[s as usize].path.as_ref() == p).copied()
    }

    /// The layer's say about `p` (made when there is none yet).
    fn say(&mut self, p: Cow<'a, [u8]>) -> u32 {
        let hash = self.hasher.hash_one(p.as_ref());
        if let Some(&s) = self.table.find(hash, |&s| self.says[s as usize].path.as_ref() == p.as_ref()) {
            return s;
        }
        let s = self.says.len() as u32;
        self.says.push(LayerSay { path: p, entry: NONE, up: NONE, bits: 0 });
        let (says, hasher) = (&self.says, &self.hasher);
        self.table.insert_unique(hash, s, |&s| hasher.hash_one(says[s as usize].path.as_ref()));
        s
    }

    /// Mark the strict ancestors of `p` with `bit`, nearest first, until one has it
    /// already.
    fn mark_ancestors(&mut self, p: &'a [u8], bit: u8) {
        for a in ancestors(p) {
            let say = self.say(Cow::Borrowed(a));
            let b = &mut self.says[say as usize].bits;
            if *b & bit != 0 {
                break;
            }
            *b |= bit;
        }
    }
}

/// What `index` says, path by path, when the layer is plain on its own (the checks of
/// the module documentation that need no other layer: every name normal, no path twice,
/// hard links only to a regular file earlier in the layer, no whiteout of what the layer
/// makes itself, ids and links in range); `None` otherwise. [`MergedIndex::new`] merges
/// these; a layer's table keeps them ([`IndexRef::table`]) so that the merge need not
/// find them again.
pub(super) fn layer_says<'a>(index: &IndexRef<'a>) -> Option<LayerSays<'a>> {
    let n = index.len();
    let mut t = OneLayer {
        table: HashTable::with_capacity(n + n / 8),
        hasher: DefaultHashBuilder::default(),
        says: Vec::with_capacity(n + n / 8),
    };
    let (mut root_dir, mut root_opaque) = (false, false);
    // The parent of the last entry, whose ancestors are marked already, and its say.
    let mut last_parent: Option<&'a [u8]> = None;
    let mut last_up = UP_ROOT;
    for (i, e) in index.raw_entries().enumerate() {
        let e = e?;
        let (p, whiteout) = match e.plain {
            Some(known) => known,
            None => plain(e.path)?,
        };
        if whiteout {
            if ancestors(p).any(|a| a.rsplit(|&b| b == b'/').next().is_some_and(|n| n.starts_with(b".wh."))) {
                return None;
            }
            match path::classify(Path::new(OsStr::from_bytes(p))).ok()? {
                Class::Whiteout { target } => {
                    let target = target.into_os_string().into_encoded_bytes();
                    let say = t.say(Cow::Owned(target));
                    t.says[say as usize].bits |= WHITEOUT;
                    t.mark_ancestors(p, WHITEOUT_BELOW);
                }
                Class::Opaque { .. } => {
                    let d = parent_of(p);
                    if d.is_empty() {
                        root_opaque = true;
                    } else {
                        let say = t.say(Cow::Borrowed(d));
                        t.says[say as usize].bits |= OPAQUE;
                        t.mark_ancestors(d, UNDER);
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
            root_dir = true;
            continue;
        }
        match e.kind {
            EntryKind::Symlink if e.link.is_empty() || e.link.contains(&0) => return None,
            EntryKind::Hardlink => {
                let (target, _) = plain(e.link)?;
                let s = t.find(target)?;
                if target == p || index.raw(t.says[s as usize].entry as usize)?.kind != EntryKind::File {
                    return None;
                }
            }
            _ => {}
        }
        let parent = parent_of(p);
        if last_parent != Some(parent) {
            last_up = UP_ROOT;
            if !parent.is_empty() {
                let up = t.say(Cow::Borrowed(parent));
                if t.says[up as usize].bits & UNDER == 0 {
                    t.says[up as usize].bits |= UNDER;
                    t.mark_ancestors(parent, UNDER);
                }
                last_up = up;
            }
            last_parent = Some(parent);
        }
        let say = t.say(Cow::Borrowed(p));
        let s = &mut t.says[say as usize];
        if s.entry != NONE {
            return None;
        }
        s.entry = u32::try_from(i).ok().filter(|&i| i != NONE)?;
        if e.kind == EntryKind::Dir {
            s.bits |= DIR;
        }
        s.up = last_up;
    }
    // A layer that whites out what it makes itself: the fold's rules decide.
    if t.says.iter().any(|s| s.bits & WHITEOUT != 0 && (s.entry != NONE || s.bits & (UNDER | OPAQUE) != 0)) {
        return None;
    }
    Some(LayerSays { says: t.says, root_dir, root_opaque })
}
