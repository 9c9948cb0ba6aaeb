//! Referrers (image-spec and distribution-spec 1.1): manifests whose `subject` names
//! another manifest (an SBOM, a signature of an image), and how they are listed.

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::manifest::{Index, Manifest, ManifestOrIndex};
use crate::media_type::MediaType;

/// The content of the empty descriptor: `{}` (image-spec 1.1, "Guidance for an Empty
/// Descriptor"), the config of an artifact that has none.
pub const EMPTY_JSON: &[u8] = b"{}";

/// The empty descriptor: `application/vnd.oci.empty.v1+json`, the digest and size of
/// [`EMPTY_JSON`], and the content embedded as `data` as the spec's example has it.
pub fn empty_descriptor() -> Descriptor {
    let mut d = Descriptor::new(MediaType::OciEmpty, Digest::sha256_of(EMPTY_JSON), EMPTY_JSON.len() as u64);
    d.data = Some("e30=".to_owned());
    d
}

/// An artifact manifest (image-spec 1.1): `artifact_type`, the empty config, `blobs` as
/// its layers and `subject` as what it refers to. The subject is reduced to the three
/// fields that name it (media type, digest, size).
pub fn artifact_manifest(artifact_type: MediaType, blobs: Vec<Descriptor>, subject: &Descriptor) -> Manifest {
    let mut m = Manifest::new(MediaType::OciManifest, empty_descriptor(), blobs);
    m.artifact_type = Some(artifact_type);
    m.subject = Some(Descriptor::new(subject.media_type.clone(), subject.digest.clone(), subject.size));
    m
}

/// The tag the referrers tag schema keeps the referrers of `subject` under, for
/// registries without the referrers API: `<alg>-<hex>` (`sha256-4f2a...`).
pub fn referrers_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm().name(), subject.hex())
}

impl ManifestOrIndex {
    /// The manifest or index this one refers to.
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            ManifestOrIndex::Manifest(m) => m.subject.as_ref(),
            ManifestOrIndex::Index(i) => i.subject.as_ref(),
        }
    }

    /// Its type as the referrers API reports it: `artifactType`, else (a manifest) the
    /// config's media type.
    pub fn artifact_type(&self) -> Option<&MediaType> {
        match self {
            ManifestOrIndex::Manifest(m) => m.artifact_type.as_ref().or(Some(&m.config.media_type)),
            ManifestOrIndex::Index(i) => i.artifact_type.as_ref(),
        }
    }

    /// The document's own annotations.
    pub fn annotations(&self) -> Option<&std::collections::BTreeMap<String, String>> {
        match self {
            ManifestOrIndex::Manifest(m) => m.annotations.as_ref(),
            ManifestOrIndex::Index(i) => i.annotations.as_ref(),
        }
    }
}

/// The descriptor of the referrer `doc` (stored as `desc`) as a referrers list holds
/// it: media type, digest, size, the artifact type and the document's annotations
/// (distribution-spec 1.1, "Listing Referrers").
pub fn referrer_descriptor(desc: &Descriptor, doc: &ManifestOrIndex) -> Descriptor {
    let mut d = Descriptor::new(desc.media_type.clone(), desc.digest.clone(), desc.size);
    d.artifact_type = doc.artifact_type().cloned();
    d.annotations = doc.annotations().cloned().filter(|a| !a.is_empty());
    d
}

/// A referrers list as the referrers API returns it: an OCI index of `referrers`,
/// those of `artifact_type` only when one is given.
pub fn referrers_index(referrers: &[Descriptor], artifact_type: Option<&MediaType>) -> Index {
    let mut index = Index::new(Some(MediaType::OciIndex));
    index.manifests = referrers
        .iter()
        .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_ref() == Some(t)))
        .cloned()
        .collect();
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_descriptor_is_the_specs() {
        let d = empty_descriptor();
        assert_eq!(d.digest.as_str(), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(d.size, 2);
    }

    #[test]
    fn referrers_tag_schema() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(referrers_tag(&d), format!("sha256-{}", d.hex()));
    }
}
