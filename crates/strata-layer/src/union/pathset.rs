//! A compact exact set of paths: the paths of one layer, which can be millions. Each
//! path's bytes go once into one arena; a hash table holds 8-byte references to them.
//! About 10 bytes a path plus its length, where a `BTreeSet<Vec<u8>>` takes about 100.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Bits of a packed reference that hold the length.
const LEN_BITS: u32 = 16;
/// Longest path packed (longer ones, which no real layer has, go to `long`).
const MAX_PACKED_LEN: usize = (1 << LEN_BITS) - 1;
/// Largest arena offset packed.
const MAX_PACKED_OFFSET: usize = (1 << (64 - LEN_BITS)) - 1;

/// A set of paths (byte strings).
#[derive(Default)]
pub(crate) struct PathSet {
    arena: Vec<u8>,
    /// `offset << LEN_BITS | len` into `arena`.
    table: HashTable<u64>,
    /// Paths that do not pack.
    long: std::collections::HashSet<Vec<u8>>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl std::fmt::Debug for PathSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathSet").field("len", &(self.table.len() + self.long.len())).finish()
    }
}

fn unpack(r: u64) -> (usize, usize) {
    ((r >> LEN_BITS) as usize, (r & ((1 << LEN_BITS) - 1)) as usize)
}

impl PathSet {
    fn slice(arena: &[u8], r: u64) -> &[u8] {
        let (off, len) = unpack(r);
        arena.get(off..off + len).unwrap_or_default()
    }

    /// Add `path`; whether it was new.
    pub(crate) fn insert(&mut self, path: &[u8]) -> bool {
        if path.len() > MAX_PACKED_LEN || self.arena.len() + path.len() > MAX_PACKED_OFFSET {
            return self.long.insert(path.to_vec());
        }
        let hash = self.hasher.hash_one(path);
        let arena = &self.arena;
        if self.table.find(hash, |&r| Self::slice(arena, r) == path).is_some() {
            return false;
        }
        let r = ((self.arena.len() as u64) << LEN_BITS) | path.len() as u64;
        self.arena.extend_from_slice(path);
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table.insert_unique(hash, r, |&r| hasher.hash_one(Self::slice(arena, r)));
        true
    }

    /// Whether `path` is in the set.
    pub(crate) fn contains(&self, path: &[u8]) -> bool {
        if path.len() > MAX_PACKED_LEN || !self.long.is_empty() && self.long.contains(path) {
            return self.long.contains(path);
        }
        let hash = self.hasher.hash_one(path);
        self.table.find(hash, |&r| Self::slice(&self.arena, r) == path).is_some()
    }

    /// Empty the set (keeping its memory for the next layer).
    pub(crate) fn clear(&mut self) {
        self.arena.clear();
        self.table.clear();
        self.long.clear();
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty() && self.long.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_of_paths() {
        let mut s = PathSet::default();
        assert!(s.is_empty());
        assert!(s.insert(b"a/b"));
        assert!(!s.insert(b"a/b"));
        assert!(s.insert(b"a"));
        assert!(s.insert(b""));
        let long = vec![b'x'; MAX_PACKED_LEN + 10];
        assert!(s.insert(&long));
        assert!(!s.insert(&long));
        for p in [&b"a/b"[..], b"a", b"", &long] {
            assert!(s.contains(p), "{:?}", String::from_utf8_lossy(&p[..p.len().min(5)]));
        }
        assert!(!s.contains(b"a/"));
        assert!(!s.contains(b"b"));
        for i in 0..10_000u32 {
            s.insert(format!("d/{i}").as_bytes());
        }
        assert!((0..10_000u32).all(|i| s.contains(format!("d/{i}").as_bytes())));
        assert!(!s.contains(b"d/10000"));
        s.clear();
        assert!(s.is_empty() && !s.contains(b"a"));
    }
}
