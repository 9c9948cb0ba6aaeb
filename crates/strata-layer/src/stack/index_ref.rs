//! [`IndexRef`]: a layer's serialised index read in place, each entry's names borrowed
//! from its bytes, for [`super::MergedIndex`] to answer from; and its table
//! ([`IndexRef::table`]), which a cache keeps beside the index so that the next read
//! decodes no varint and checks no name again ([`IndexRef::with_table`]).
//!
//! ```text
//! magic "STRLTAB\0" | version u32 | entries u64
//! | per entry, 56 bytes: path (offset u32, length u32), its normal form (offset u32,
//!   length u32), link (offset u32, length u32), size u64, offset u64, uid u32, gid u32,
//!   kind u8, flags u8, 6 zero bytes
//! | says u64 (u64::MAX: the layer is not plain on its own) | root u64 (1: an entry
//!   there, 2: an opaque marker there)
//! | per say, 24 bytes: path (offset u32, length u32), entry u32, up u32, bits u8,
//!   where u8 (0: the path is in the index, 1: in the names below), 6 zero bytes
//! | names length u64 | names (whiteouts' targets, which no entry spells)
//! ```
//!
//! The says are what the layer says about each path before the layers are merged
//! (`super::layer_says`): the merge reads them instead of going through the entries.
//!
//! Offsets are into the serialised index; a uid or gid of `u32::MAX` or more is kept as
//! `u32::MAX` (the merged index takes none of them). The flags: `NORMAL` (the name has
//! a normal form, a part of it, as the merged index needs), `WHITEOUT` (a component of
//! it starts with `.wh.`), `SPARSE`.

use strata_spec::Digest;

use crate::error::{Error, Result};
use crate::index::{IndexEntry, Lean, Parser};
use crate::read::EntryKind;

use super::{LayerSay, LayerSays, layer_says};
use std::borrow::Cow;

/// One entry of an [`IndexRef`], borrowed from the serialised index.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawEntry<'a> {
    pub(super) path: &'a [u8],
    pub(super) link: &'a [u8],
    pub(super) kind: EntryKind,
    pub(super) size: u64,
    pub(super) sparse: bool,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) offset: u64,
    /// The name's normal form and whether a component of it starts with `.wh.`, when
    /// known already (from a table): what [`super::plain`] says of `path`.
    pub(super) plain: Option<(&'a [u8], bool)>,
}

/// A [`crate::LayerIndex`] read in place from its serialised form: the same checks
/// ([`crate::LayerIndex::from_bytes`]), no copy of any name.
#[derive(Debug, Clone)]
pub struct IndexRef<'a> {
    entries: Entries<'a>,
    diff_id: Digest,
    /// The serialised index.
    bytes: &'a [u8],
    /// The layer's says, from its table.
    says: Option<StoredSays<'a>>,
}

/// A layer's says as its table keeps them.
#[derive(Debug, Clone, Copy)]
enum StoredSays<'a> {
    /// The layer is not plain on its own.
    NotPlain,
    Rows {
        rows: &'a [u8],
        names: &'a [u8],
        root: u64,
    },
}

/// A layer's says, found or read from its table ([`IndexRef::stored_says`]).
pub(super) enum Says<'a> {
    Built(LayerSays<'a>),
    Stored { rows: &'a [u8], names: &'a [u8], index: &'a [u8], root: u64 },
}

impl<'a> Says<'a> {
    /// Whether the layer has an entry at the root, an opaque marker there.
    pub(super) fn root(&self) -> (bool, bool) {
        match self {
            Says::Built(s) => (s.root_dir, s.root_opaque),
            Says::Stored { root, .. } => (root & 1 != 0, root & 2 != 0),
        }
    }

    /// The says in order (a stored one that does not fit its table: `None`).
    pub(super) fn into_iter(self) -> SaysIter<'a> {
        match self {
            Says::Built(s) => SaysIter::Built(s.says.into_iter()),
            Says::Stored { rows, names, index, .. } => SaysIter::Stored { rows: rows.chunks_exact(SAY), names, index },
        }
    }
}

/// [`Says::into_iter`].
pub(super) enum SaysIter<'a> {
    Built(std::vec::IntoIter<LayerSay<'a>>),
    Stored { rows: std::slice::ChunksExact<'a, u8>, names: &'a [u8], index: &'a [u8] },
}

impl<'a> Iterator for SaysIter<'a> {
    type Item = Option<LayerSay<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Option<LayerSay<'a>>> {
        match self {
            SaysIter::Built(it) => it.next().map(Some),
            SaysIter::Stored { rows, names, index } => {
                let row = rows.next()?;
                let from = if row[17] == 0 { *index } else { *names };
                Some(part_of(from, row, 0).map(|path| LayerSay {
                    path: Cow::Borrowed(path),
                    entry: le32(row, 8),
                    up: le32(row, 12),
                    bits: row[16],
                }))
            }
        }
    }
}

/// Where an [`IndexRef`]'s entries are.
#[derive(Debug, Clone)]
enum Entries<'a> {
    /// Decoded from the index.
    Decoded(Vec<RawEntry<'a>>),
    /// The rows of its table, each read when asked for.
    Rows(&'a [u8]),
}

const TABLE_MAGIC: &[u8; 8] = b"STRLTAB\0";
const TABLE_VERSION: u32 = 2;
const ROW: usize = 56;
const SAY: usize = 24;
const NORMAL: u8 = 1;
const WHITEOUT: u8 = 2;
const SPARSE: u8 = 4;

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
            entries.push(RawEntry { path, link, kind, size, sparse, uid, gid, offset, plain: None });
        }
        let diff_id = p.diff_id;
        Ok(IndexRef { entries: Entries::Decoded(entries), diff_id, bytes, says: None })
    }

    /// The entries as a table of fixed rows (see the module documentation), each name's
    /// normal form found: what [`IndexRef::with_table`] reads back without decoding the
    /// index or checking a name again. A cache keeps it beside the index. Empty when
    /// this index was read with a table one of whose rows does not fit it.
    pub fn table(&self) -> Vec<u8> {
        // Every name is borrowed from `bytes` (an empty one may not be: any offset does
        // for it).
        let at = |sub: &[u8]| u32::try_from(offset_in(self.bytes, sub).unwrap_or(0)).unwrap_or(u32::MAX).to_le_bytes();
        let len = |sub: &[u8]| u32::try_from(sub.len()).unwrap_or(u32::MAX).to_le_bytes();
        let mut out = Vec::with_capacity(20 + self.len() * ROW);
        out.extend_from_slice(TABLE_MAGIC);
        out.extend_from_slice(&TABLE_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for e in self.raw_entries() {
            // Only a table's rows may not fit: no table then.
            let Some(e) = e else { return Vec::new() };
            let plain = e.plain.or_else(|| super::plain(e.path));
            let (norm, wh) = plain.unwrap_or((e.path, false));
            let id = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            let mut flags = 0;
            if plain.is_some() {
                flags |= NORMAL;
            }
            if wh {
                flags |= WHITEOUT;
            }
            if e.sparse {
                flags |= SPARSE;
            }
            for b in [at(e.path), len(e.path), at(norm), len(norm), at(e.link), len(e.link)] {
                out.extend_from_slice(&b);
            }
            out.extend_from_slice(&e.size.to_le_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&id(e.uid).to_le_bytes());
            out.extend_from_slice(&id(e.gid).to_le_bytes());
            out.extend_from_slice(&[e.kind.code(), flags, 0, 0, 0, 0, 0, 0]);
        }
        let Some(says) = layer_says(self) else {
            out.extend_from_slice(&u64::MAX.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
            return out;
        };
        out.extend_from_slice(&(says.says.len() as u64).to_le_bytes());
        out.extend_from_slice(&(u64::from(says.root_dir) | u64::from(says.root_opaque) << 1).to_le_bytes());
        let mut names = Vec::new();
        for say in &says.says {
            // A name of the index where it is, any other (a whiteout's target) below.
            let p: &[u8] = &say.path;
            let (off, len, owned) = match offset_in(self.bytes, p) {
                Some(off) => (off, p.len(), 0),
                None if p.is_empty() => (0, 0, 0),
                None => {
                    names.extend_from_slice(p);
                    (names.len() - p.len(), p.len(), 1)
                }
            };
            let (Ok(off), Ok(len)) = (u32::try_from(off), u32::try_from(len)) else { return Vec::new() };
            for v in [off, len, say.entry, say.up] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&[say.bits, owned, 0, 0, 0, 0, 0, 0]);
        }
        out.extend_from_slice(&(names.len() as u64).to_le_bytes());
        out.extend_from_slice(&names);
        out
    }

    /// The layer's says as its table keeps them: `None` when it was not read with one,
    /// `Some(None)` when the layer is not plain on its own.
    pub(super) fn stored_says(&self) -> Option<Option<Says<'a>>> {
        match self.says? {
            StoredSays::NotPlain => Some(None),
            StoredSays::Rows { rows, names, root } => Some(Some(Says::Stored { rows, names, index: self.bytes, root })),
        }
    }

    /// The index `bytes` read with its `table` ([`IndexRef::table`] of it): its head
    /// and checksum checked as [`IndexRef::from_bytes`] does, the table's head against
    /// it, each row's names inside the index and its kind known (an
    /// [`crate::Error::InvalidIndex`] otherwise); each entry is read from its row when
    /// asked for, nothing decoded before.
    pub fn with_table(bytes: &'a [u8], table: &'a [u8]) -> Result<IndexRef<'a>> {
        IndexRef::read_with_table(bytes, table, true)
    }

    /// [`IndexRef::with_table`] for an index and a table whose bytes the caller checks
    /// some other way (a scan record holds both under one checksum, which a scan checks
    /// before it reads them): the index's own checksum is not computed
    /// and the rows are not checked up front, only as each is read (a row that does not
    /// fit the index reads as no entry, and leaves [`super::MergedIndex::new`] to the
    /// fold); the framing of both is checked as before. Reading a record touches then
    /// the rows it asks for, not every byte of the index twice.
    pub fn with_table_unchecked(bytes: &'a [u8], table: &'a [u8]) -> Result<IndexRef<'a>> {
        IndexRef::read_with_table(bytes, table, false)
    }

    fn read_with_table(bytes: &'a [u8], table: &'a [u8], check: bool) -> Result<IndexRef<'a>> {
        let p = if check { Parser::new(bytes)? } else { Parser::new_unchecked(bytes)? };
        let bad = |reason: &str| Error::InvalidIndex { reason: format!("table: {reason}") };
        let (head, rows) = table.split_at_checked(20).ok_or_else(|| bad("too short"))?;
        if &head[..8] != TABLE_MAGIC || head[8..12] != TABLE_VERSION.to_le_bytes() {
            return Err(bad("not a table of this version"));
        }
        let n = u64::from_le_bytes(head.get(12..20).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("too short"))?);
        let rows_len = usize::try_from(n).ok().and_then(|n| n.checked_mul(ROW)).filter(|_| n == p.n);
        let Some((rows, rest)) = rows_len.and_then(|l| rows.split_at_checked(l)) else {
            return Err(bad("not as many rows as the index has entries"));
        };
        // Every row checked once (its names inside the index, its kind known), so that
        // each one read later is an entry.
        let fits = |row: &[u8]| {
            [0, 8, 16].iter().all(|&i| part_of(bytes, row, i).is_some()) && EntryKind::from_code(row[48]).is_some()
        };
        if check && !rows.chunks_exact(ROW).all(fits) {
            return Err(bad("a row that does not fit the index"));
        }
        let mut c = rest;
        let u64_of = |c: &mut &'a [u8]| -> Result<u64> {
            let (v, r) = c.split_first_chunk::<8>().ok_or_else(|| bad("truncated"))?;
            *c = r;
            Ok(u64::from_le_bytes(*v))
        };
        let (count, root) = (u64_of(&mut c)?, u64_of(&mut c)?);
        let says = if count == u64::MAX {
            if u64_of(&mut c)? != 0 || !c.is_empty() {
                return Err(bad("bytes after a layer that is not plain"));
            }
            StoredSays::NotPlain
        } else {
            let len =
                usize::try_from(count).ok().and_then(|n| n.checked_mul(SAY)).ok_or_else(|| bad("too many says"))?;
            let (says, r) = c.split_at_checked(len).ok_or_else(|| bad("truncated says"))?;
            c = r;
            let names_len = usize::try_from(u64_of(&mut c)?).map_err(|_| bad("names too long"))?;
            if c.len() != names_len {
                return Err(bad("names not as long as said"));
            }
            StoredSays::Rows { rows: says, names: c, root }
        };
        Ok(IndexRef { entries: Entries::Rows(rows), diff_id: p.diff_id, bytes, says: Some(says) })
    }

    /// The entry at position `i`.
    #[inline]
    pub(super) fn raw(&self, i: usize) -> Option<RawEntry<'a>> {
        match &self.entries {
            Entries::Decoded(v) => v.get(i).copied(),
            Entries::Rows(rows) => {
                let row = rows.get(i.checked_mul(ROW)?..)?.first_chunk::<ROW>()?;
                row_entry(self.bytes, row)
            }
        }
    }

    /// Every entry, in order (a row that does not fit the index: `None`).
    pub(super) fn raw_entries(&self) -> impl Iterator<Item = Option<RawEntry<'a>>> + '_ {
        (0..self.len()).map(|i| self.raw(i))
    }

    /// The digest of the layer's uncompressed tar.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::Decoded(v) => v.len(),
            Entries::Rows(rows) => rows.len() / ROW,
        }
    }

    /// Whether the layer has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, in tar order (from a table, only the rows that fit the index).
    pub fn entries(&self) -> impl Iterator<Item = IndexEntry<'a>> + '_ {
        self.raw_entries().enumerate().filter_map(|(i, e)| e.map(|e| view(i, &e)))
    }

    /// The entry at `ordinal`.
    pub fn entry(&self, ordinal: u64) -> Option<IndexEntry<'a>> {
        let i = usize::try_from(ordinal).ok()?;
        self.raw(i).map(|e| view(i, &e))
    }
}

fn view<'a>(i: usize, e: &RawEntry<'a>) -> IndexEntry<'a> {
    IndexEntry { path: e.path, ordinal: i as u64, kind: e.kind, size: e.size, sparse: e.sparse }
}

/// The entry of a table's `row`, its names parts of the index `bytes`.
#[inline]
fn row_entry<'a>(bytes: &'a [u8], row: &[u8; ROW]) -> Option<RawEntry<'a>> {
    let u32_at = |i: usize| le32(row, i);
    let u64_at = |i: usize| u64::from(u32_at(i)) | u64::from(u32_at(i + 4)) << 32;
    let part = |i: usize| part_of(bytes, row, i);
    let flags = row[49];
    let id = |v: u32| if v == u32::MAX { u64::MAX } else { u64::from(v) };
    Some(RawEntry {
        path: part(0)?,
        link: part(16)?,
        kind: EntryKind::from_code(row[48])?,
        size: u64_at(24),
        sparse: flags & SPARSE != 0,
        uid: id(u32_at(40)),
        gid: id(u32_at(44)),
        offset: u64_at(32),
        plain: if flags & NORMAL != 0 { Some((part(8)?, flags & WHITEOUT != 0)) } else { None },
    })
}

/// The little-endian `u32` at `i` of a table's row (the caller's offsets are inside
/// the row's fixed size).
#[inline]
fn le32(row: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([row[i], row[i + 1], row[i + 2], row[i + 3]])
}

/// The bytes of `from` that a row's (offset u32, length u32) at `i` names, when they
/// are inside it.
#[inline]
fn part_of<'a>(from: &'a [u8], row: &[u8], i: usize) -> Option<&'a [u8]> {
    let (off, len) = (le32(row, i) as usize, le32(row, i + 4) as usize);
    from.get(off..off.checked_add(len)?)
}

/// Where the non-empty `sub` starts in `base`, when it is a part of it.
fn offset_in(base: &[u8], sub: &[u8]) -> Option<usize> {
    let off = (sub.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    (!sub.is_empty() && off.checked_add(sub.len())? <= base.len()).then_some(off)
}
