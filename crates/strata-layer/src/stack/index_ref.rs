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
//! ```
//!
//! Offsets are into the serialised index; a uid or gid of `u32::MAX` or more is kept as
//! `u32::MAX` (the merged index takes none of them). The flags: `NORMAL` (the name has
//! a normal form, a part of it, as the merged index needs), `WHITEOUT` (a component of
//! it starts with `.wh.`), `SPARSE`.

use strata_spec::Digest;

use crate::error::{Error, Result};
use crate::index::{IndexEntry, Lean, Parser};
use crate::read::EntryKind;

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
const TABLE_VERSION: u32 = 1;
const ROW: usize = 56;
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
        Ok(IndexRef { entries: Entries::Decoded(entries), diff_id, bytes })
    }

    /// The entries as a table of fixed rows (see the module documentation), each name's
    /// normal form found: what [`IndexRef::with_table`] reads back without decoding the
    /// index or checking a name again. A cache keeps it beside the index. Empty when
    /// this index was read with a table one of whose rows does not fit it.
    pub fn table(&self) -> Vec<u8> {
        let at = |sub: &[u8]| -> [u8; 4] {
            // Every name is borrowed from `bytes` (an empty one may not be: any
            // offset does for it).
            let off = (sub.as_ptr() as usize).wrapping_sub(self.bytes.as_ptr() as usize);
            let off = if sub.is_empty() || off > self.bytes.len() { 0 } else { off };
            u32::try_from(off).unwrap_or(u32::MAX).to_le_bytes()
        };
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
        out
    }

    /// The index `bytes` read with its `table` ([`IndexRef::table`] of it): its head
    /// and checksum checked as [`IndexRef::from_bytes`] does, the table's head against
    /// it; each entry is read from its row when asked for, nothing decoded before. A
    /// row that does not fit the index (a name beyond it, an unknown kind) is no entry.
    pub fn with_table(bytes: &'a [u8], table: &'a [u8]) -> Result<IndexRef<'a>> {
        let p = Parser::new(bytes)?;
        let bad = |reason: &str| Error::InvalidIndex { reason: format!("table: {reason}") };
        let (head, rows) = table.split_at_checked(20).ok_or_else(|| bad("too short"))?;
        if &head[..8] != TABLE_MAGIC || head[8..12] != TABLE_VERSION.to_le_bytes() {
            return Err(bad("not a table of this version"));
        }
        let n = u64::from_le_bytes(head.get(12..20).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("too short"))?);
        if n != p.n || rows.len() as u64 != n.saturating_mul(ROW as u64) {
            return Err(bad("not as many rows as the index has entries"));
        }
        Ok(IndexRef { entries: Entries::Rows(rows), diff_id: p.diff_id, bytes })
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
    let u32_at = |i: usize| u32::from_le_bytes([row[i], row[i + 1], row[i + 2], row[i + 3]]);
    let u64_at = |i: usize| u64::from(u32_at(i)) | u64::from(u32_at(i + 4)) << 32;
    let part = |i: usize| {
        let (off, len) = (u32_at(i) as usize, u32_at(i + 4) as usize);
        bytes.get(off..off.checked_add(len)?)
    };
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
