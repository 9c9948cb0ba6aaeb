//! The paths one layer made, which can be millions, kept compactly: every directory
//! named on the way once (an interned string with a 32-bit id), every path as its
//! parent's id and its last name. A path costs its last name plus about 16 bytes, where a
//! `BTreeSet<Vec<u8>>` of whole paths takes about 100.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Ids at and above this belong to strings that do not pack into the arena.
const LONG_BASE: u32 = 1 << 31;
/// The id of the root directory (the empty path), never interned.
const ROOT: u32 = u32::MAX;

/// A set of byte strings, each with a 32-bit id: packed strings live in one arena as a
/// 2-byte length and the bytes (the id is the offset); a hash table holds the ids.
#[derive(Default)]
struct Strings {
    arena: Vec<u8>,
    table: HashTable<u32>,
    /// Strings that do not pack (longer than 64 KiB, or past 2 GiB of arena).
    long: hashbrown::HashMap<Vec<u8>, u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Strings {
    fn slice(arena: &[u8], id: u32) -> &[u8] {
        let at = id as usize;
        let len = arena.get(at..at + 2).map_or(0, |l| usize::from(u16::from_le_bytes([l[0], l[1]])));
        arena.get(at + 2..at + 2 + len).unwrap_or_default()
    }

    fn get(&self, key: &[u8]) -> Option<u32> {
        if !self.long.is_empty()
            && let Some(&id) = self.long.get(key)
        {
            return Some(id);
        }
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |&id| Self::slice(&self.arena, id) == key).copied()
    }

    /// Add `key`: its id, and whether it is new.
    fn insert(&mut self, key: &[u8]) -> (u32, bool) {
        if let Some(id) = self.get(key) {
            return (id, false);
        }
        let Ok(len) = u16::try_from(key.len()) else { return self.insert_long(key) };
        let Some(id) = u32::try_from(self.arena.len()).ok().filter(|&id| id < LONG_BASE - 2 - u32::from(len)) else {
            return self.insert_long(key);
        };
        self.arena.extend_from_slice(&len.to_le_bytes());
        self.arena.extend_from_slice(key);
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table.insert_unique(hasher.hash_one(key), id, |&id| hasher.hash_one(Self::slice(arena, id)));
        (id, true)
    }

    fn insert_long(&mut self, key: &[u8]) -> (u32, bool) {
        // Past 2^31 - 1 long strings (never: each is over 64 KiB) ids would collide with
        // ROOT; saturate rather than wrap.
        let id = LONG_BASE.saturating_add(u32::try_from(self.long.len()).unwrap_or(u32::MAX)).min(ROOT - 1);
        self.long.insert(key.to_vec(), id);
        (id, true)
    }

    fn clear(&mut self) {
        self.arena.clear();
        self.table.clear();
        self.long.clear();
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty() && self.long.is_empty()
    }
}

/// Split a normalised path into its parent (empty for a top-level name) and last name.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (&[], path),
    }
}

/// The paths a layer made (normalised, as the layer names them), and the directories
/// under which it made something (their ancestors, the root aside).
#[derive(Default)]
pub(crate) struct Made {
    dirs: Strings,
    /// Each path as its parent's id (4 bytes) and its last name.
    paths: Strings,
    key: Vec<u8>,
}

impl std::fmt::Debug for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Made").field("paths", &self.paths.table.len()).field("dirs", &self.dirs.table.len()).finish()
    }
}

fn key_into(key: &mut Vec<u8>, parent: u32, name: &[u8]) {
    key.clear();
    key.extend_from_slice(&parent.to_le_bytes());
    key.extend_from_slice(name);
}

impl Made {
    /// Record that the layer made `path`.
    pub(crate) fn add(&mut self, path: &[u8]) {
        let (parent, name) = split(path);
        let id = if parent.is_empty() {
            ROOT
        } else {
            let (id, new) = self.dirs.insert(parent);
            if new {
                // Its ancestors, nearest first, up to the first one already known (whose
                // own ancestors are then known too).
                let mut up = parent;
                while let (above, _) = split(up)
                    && !above.is_empty()
                    && self.dirs.insert(above).1
                {
                    up = above;
                }
            }
            id
        };
        key_into(&mut self.key, id, name);
        self.paths.insert(&self.key);
    }

    /// Whether the layer made `path`.
    pub(crate) fn contains(&self, path: &[u8]) -> bool {
        let (parent, name) = split(path);
        let id = if parent.is_empty() { Some(ROOT) } else { self.dirs.get(parent) };
        id.is_some_and(|id| {
            let mut key = Vec::with_capacity(4 + name.len());
            key_into(&mut key, id, name);
            self.paths.get(&key).is_some()
        })
    }

    /// Whether the layer made something under `dir` (the empty path is the root).
    pub(crate) fn has_under(&self, dir: &[u8]) -> bool {
        if dir.is_empty() { !self.paths.is_empty() } else { self.dirs.get(dir).is_some() }
    }

    /// Forget everything (keeping the memory for the next layer).
    pub(crate) fn clear(&mut self) {
        self.dirs.clear();
        self.paths.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_the_directories_above_them() {
        let mut m = Made::default();
        assert!(!m.has_under(b""));
        m.add(b"a/b/c");
        m.add(b"a/b/c");
        m.add(b"top");
        let long = [b"d/".as_slice(), &vec![b'x'; 70_000]].concat();
        m.add(&long);
        for p in [&b"a/b/c"[..], b"top", &long] {
            assert!(m.contains(p));
        }
        for p in [&b"a"[..], b"a/b", b"a/b/", b"b/c", b"c", b"d", b"a/b/c/d"] {
            assert!(!m.contains(p), "{}", String::from_utf8_lossy(p));
        }
        for d in [&b""[..], b"a", b"a/b", b"d"] {
            assert!(m.has_under(d), "{}", String::from_utf8_lossy(d));
        }
        for d in [&b"a/b/c"[..], b"top", b"b"] {
            assert!(!m.has_under(d), "{}", String::from_utf8_lossy(d));
        }
        for i in 0..10_000u32 {
            m.add(format!("d/{i}").as_bytes());
        }
        assert!((0..10_000u32).all(|i| m.contains(format!("d/{i}").as_bytes())));
        assert!(!m.contains(b"d/10000"));
        m.clear();
        assert!(!m.has_under(b"") && !m.contains(b"a/b/c") && !m.has_under(b"a"));
    }
}
