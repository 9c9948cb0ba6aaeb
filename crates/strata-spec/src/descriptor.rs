//! Descriptors: media type + digest + size, and their optional extras.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::json::json_object;
use crate::media_type::MediaType;
use crate::platform::Platform;

/// The annotation that names a tag in an OCI image layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and docker use for the full image name in archives.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

json_object! {
    /// A content descriptor: what a blob is (media type), its name (digest) and size.
    pub struct Descriptor {
        /// Media type of the referenced content.
        req media_type: MediaType = "mediaType",
        /// Digest of the referenced content.
        req digest: Digest = "digest",
        /// Size in bytes of the referenced content.
        req size: u64 = "size",
        /// Other places the content may be fetched from.
        opt urls: Vec<String> = "urls",
        /// Arbitrary metadata.
        opt annotations: BTreeMap<String, String> = "annotations",
        /// The platform of an image manifest in an index.
        opt platform: Platform = "platform",
        /// Type of an artifact manifest.
        opt artifact_type: MediaType = "artifactType",
        /// Embedded content, base64.
        opt data: String = "data",
    }
}

impl Descriptor {
    /// A descriptor with only the required fields.
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Self {
        Descriptor { media_type, digest, size, ..Default::default() }
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Set an annotation.
    pub fn set_annotation(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.annotations.get_or_insert_with(BTreeMap::new).insert(key.into(), value.into());
    }

    /// Remove an annotation, dropping the map when it becomes empty.
    pub fn remove_annotation(&mut self, key: &str) -> Option<String> {
        let map = self.annotations.as_mut()?;
        let old = map.remove(key);
        if map.is_empty() {
            self.annotations = None;
        }
        old
    }

    /// The tag of this descriptor in an image layout (`org.opencontainers.image.ref.name`).
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(ANNOTATION_REF_NAME)
    }
}

impl Default for MediaType {
    fn default() -> Self {
        MediaType::Other(String::new())
    }
}

impl Default for Digest {
    /// The digest of empty input, so that `Descriptor::default()` is well formed.
    fn default() -> Self {
        Digest::sha256_of(b"")
    }
}
