//! Referrers in a store: the manifests `index.json` lists whose `subject` names another
//! manifest (image-spec 1.1), found by reading the listed documents.
//!
//! A referrer is kept in the layout as an untagged entry of `index.json` (as ORAS's
//! layout store does), so that every OCI tool's GC keeps it; strata's GC keeps such an
//! entry only while its subject is reachable otherwise (see [`Backend::gc`]).

use std::collections::{BTreeMap, BTreeSet};

use strata_spec::{Descriptor, Digest, Index, ManifestOrIndex, referrer_descriptor};

use crate::error::{Error, Result};
use crate::store::{Backend, MAX_DOCUMENT_SIZE};

/// The manifest or index `desc` points to, if the store has it: `None` when it is
/// absent or not a manifest or index type. A present document that does not read or
/// parse is an error.
pub(crate) fn read_document(store: &dyn Backend, desc: &Descriptor) -> Result<Option<ManifestOrIndex>> {
    if !(desc.media_type.is_manifest() || desc.media_type.is_index()) || !store.contains(&desc.digest)? {
        return Ok(None);
    }
    let bytes = store.read_descriptor(desc, MAX_DOCUMENT_SIZE)?;
    ManifestOrIndex::from_slice_as(&bytes, &desc.media_type)
        .map(Some)
        .map_err(|source| Error::BadDocument { digest: desc.digest.clone(), source })
}

/// Whether index entry `entry` is a referrer entry: untagged, and its document has a
/// `subject` (returned). Such an entry lives only as long as its subject (see
/// [`Backend::gc`]). A document that cannot be read is not one.
pub(crate) fn referrer_entry_subject(store: &dyn Backend, entry: &Descriptor) -> Option<Digest> {
    if entry.ref_name().is_some() {
        return None;
    }
    let doc = read_document(store, entry).ok()??;
    doc.subject().map(|s| s.digest.clone())
}

/// Every referrer the store's index lists, by subject: one read of each distinct
/// manifest or index `index.json` names.
#[derive(Clone, Debug, Default)]
pub struct Referrers {
    by_subject: BTreeMap<Digest, Vec<Descriptor>>,
}

impl Referrers {
    /// Read the documents `index.json` lists and note those with a `subject`. Entries
    /// whose blob is absent are passed over (fsck reports them); a present one that does
    /// not read or parse is an error.
    pub fn scan(store: &dyn Backend) -> Result<Referrers> {
        Referrers::scan_index(store, &store.index()?)
    }

    /// [`Referrers::scan`] over a given index.
    pub fn scan_index(store: &dyn Backend, index: &Index) -> Result<Referrers> {
        let mut seen = BTreeSet::new();
        let mut by_subject: BTreeMap<Digest, Vec<Descriptor>> = BTreeMap::new();
        for entry in &index.manifests {
            if !seen.insert(entry.digest.clone()) {
                continue;
            }
            let Some(doc) = read_document(store, entry)? else { continue };
            if let Some(subject) = doc.subject() {
                by_subject.entry(subject.digest.clone()).or_default().push(referrer_descriptor(entry, &doc));
            }
        }
        for list in by_subject.values_mut() {
            list.sort_by(|a, b| a.digest.cmp(&b.digest));
        }
        Ok(Referrers { by_subject })
    }

    /// The referrers of `subject`, sorted by digest, as the referrers API lists them.
    pub fn of(&self, subject: &Digest) -> &[Descriptor] {
        self.by_subject.get(subject).map_or(&[], Vec::as_slice)
    }

    /// The referrers of `subjects`, and theirs in turn (a signature of an SBOM), each
    /// once, subjects before their referrers.
    pub fn closure<'a>(&self, subjects: impl IntoIterator<Item = &'a Digest>) -> Vec<Descriptor> {
        let mut out: Vec<Descriptor> = Vec::new();
        let mut seen: BTreeSet<Digest> = BTreeSet::new();
        let mut work: Vec<Digest> = subjects.into_iter().cloned().collect();
        while !work.is_empty() {
            let mut next = Vec::new();
            for s in &work {
                for r in self.of(s) {
                    if seen.insert(r.digest.clone()) {
                        out.push(r.clone());
                        next.push(r.digest.clone());
                    }
                }
            }
            work = next;
        }
        out
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_subject.is_empty()
    }
}
