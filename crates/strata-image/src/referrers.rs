//! Artifacts attached to images (image-spec 1.1 referrers): an SBOM or a signature
//! stored as a manifest whose `subject` is the image's manifest.
//!
//! An attached artifact is an untagged entry of `index.json` (its descriptor carries
//! `artifactType`), so other OCI tools keep it; strata's GC keeps it while its subject
//! lives and drops it when the subject goes (see [`strata_store::Backend::gc`]). `save`
//! (OCI archive) carries the referrers of the images it saves, `load` brings them back,
//! and `strata-registry`'s push sends them.

use std::collections::BTreeMap;

use strata_spec::{Descriptor, Digest, Index, MediaType, artifact_manifest, referrers_index};
use strata_store::{Expected, Referrers};

use crate::error::Result;
use crate::image::Image;
use crate::store::Store;

/// Referrers.
impl Store {
    /// The referrers of `subject` (a manifest or index digest) as the referrers API
    /// returns them: an OCI index of their descriptors (with `artifactType` and their
    /// annotations), sorted by digest, those of `artifact_type` only when given.
    pub fn referrers(&self, subject: &Digest, artifact_type: Option<&MediaType>) -> Result<Index> {
        let all = Referrers::scan(self.backend())?;
        Ok(referrers_index(all.of(subject), artifact_type))
    }

    /// Add `referrer` (an artifact manifest already in the store) to the index as an
    /// untagged entry carrying its `artifactType`, once.
    pub(crate) fn add_referrer_entry(&self, referrer: &Descriptor) -> Result<()> {
        let entry = referrer.clone();
        self.backend().update_index(&mut |idx| {
            if !idx.manifests.iter().any(|d| d.digest == entry.digest && d.ref_name().is_none()) {
                idx.manifests.push(entry.clone());
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl Image {
    /// Attach `content` to this image as an artifact: a blob of `media_type`, in an
    /// artifact manifest of `artifact_type` with the empty config and this image's
    /// manifest as `subject`, listed untagged in the index. `annotations` go on the
    /// manifest (and so into referrers lists). The same content attached twice is one
    /// artifact. Returns the artifact manifest's descriptor, as referrers lists hold it.
    pub fn attach(
        &self,
        artifact_type: MediaType,
        media_type: MediaType,
        content: &[u8],
        annotations: BTreeMap<String, String>,
    ) -> Result<Descriptor> {
        let backend = self.store().backend();
        // Nothing written here is reachable until the index names it.
        let _lease = backend.lease()?;
        let blob = backend.put_blob(content)?;
        let empty = strata_spec::empty_descriptor();
        backend.put_blob_expected(strata_spec::EMPTY_JSON, Expected::descriptor(&empty))?;
        let mut manifest = artifact_manifest(
            artifact_type.clone(),
            vec![Descriptor::new(media_type, blob.digest, blob.size)],
            self.descriptor(),
        );
        manifest.annotations = Some(annotations).filter(|a| !a.is_empty());
        let bytes = manifest.to_canonical_json();
        let m = backend.put_blob(&bytes)?;
        let mut desc = Descriptor::new(MediaType::OciManifest, m.digest, m.size);
        desc.artifact_type = Some(artifact_type);
        desc.annotations = manifest.annotations.clone();
        self.store().add_referrer_entry(&desc)?;
        Ok(desc)
    }

    /// This image's referrers (of its manifest), as [`Store::referrers`].
    pub fn referrers(&self, artifact_type: Option<&MediaType>) -> Result<Index> {
        self.store().referrers(self.digest(), artifact_type)
    }
}

/// The blobs an artifact manifest `desc` names (its config and layers; an index's
/// manifests), read from the store; `None` when `desc` is not a manifest or index with
/// a `subject`.
pub(crate) fn referrer_parts(store: &Store, desc: &Descriptor) -> Result<Option<(Descriptor, Vec<Descriptor>)>> {
    if !(desc.media_type.is_manifest() || desc.media_type.is_index()) {
        return Ok(None);
    }
    let bytes = store.backend().read_descriptor(desc, strata_store::MAX_DOCUMENT_SIZE)?;
    let doc = strata_spec::ManifestOrIndex::from_slice_as(&bytes, &desc.media_type)?;
    if doc.subject().is_none() {
        return Ok(None);
    }
    let parts = match &doc {
        strata_spec::ManifestOrIndex::Manifest(m) => {
            std::iter::once(m.config.clone()).chain(m.layers.clone()).collect()
        }
        strata_spec::ManifestOrIndex::Index(i) => i.manifests.clone(),
    };
    Ok(Some((strata_spec::referrer_descriptor(desc, &doc), parts)))
}
