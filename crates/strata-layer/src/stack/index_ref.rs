//! [`IndexRef`]: a layer's serialised index read in place, each entry's names borrowed
//! from its bytes, for [`super::MergedIndex`] to answer from.

use strata_spec::Digest;

use crate::error::Result;
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
}

/// A [`crate::LayerIndex`] read in place from its serialised form: the same checks
/// ([`crate::LayerIndex::from_bytes`]), no copy of any name.
#[derive(Debug, Clone)]
pub struct IndexRef<'a> {
    pub(super) entries: Vec<RawEntry<'a>>,
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
