#![doc = include_str!("../README.md")]

mod config;
mod descriptor;
mod digest;
mod error;
mod json;
mod manifest;
mod media_type;
mod platform;
pub mod progress;
mod reference;
mod referrers;
pub mod time;

pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use descriptor::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor};
pub use digest::{Algorithm, Digest, Digester, HashingReader, HashingWriter};
pub use error::{DigestError, Document, Error, ErrorChain, IoError, Result};
pub use json::to_canonical_json;
pub use manifest::{Index, Manifest, ManifestOrIndex};
pub use media_type::{Compression, Family, MediaType};
pub use platform::{Platform, select_platform};
pub use reference::{AnyReference, DEFAULT_TAG, DOCKER_HUB, Reference, ReferenceError, message_name};
pub use referrers::{
    EMPTY_JSON, artifact_manifest, empty_descriptor, referrer_descriptor, referrers_index, referrers_tag,
};

/// The `oci-spec` crate, re-exported so callers use the same version strata does.
pub use oci_spec;

/// Conversions to and from the `oci-spec` crate's types.
///
/// They go through JSON: `oci-spec` drops fields it does not model, so converting to it
/// is lossy, and converting back cannot restore what it dropped.
pub mod convert {
    use crate::error::{Document, Error};

    fn to_oci<T: serde::Serialize, U: serde::de::DeserializeOwned>(v: &T, document: Document) -> Result<U, Error> {
        let value = serde_json::to_value(v).map_err(|source| Error::Json { document, source })?;
        serde_json::from_value(value).map_err(|source| Error::Json { document, source })
    }

    /// A strata manifest as an `oci_spec` manifest.
    pub fn manifest_to_oci(m: &crate::Manifest) -> Result<oci_spec::image::ImageManifest, Error> {
        to_oci(m, Document::Manifest)
    }

    /// An `oci_spec` manifest as a strata manifest.
    pub fn manifest_from_oci(m: &oci_spec::image::ImageManifest) -> Result<crate::Manifest, Error> {
        to_oci(m, Document::Manifest)
    }

    /// A strata index as an `oci_spec` index.
    pub fn index_to_oci(i: &crate::Index) -> Result<oci_spec::image::ImageIndex, Error> {
        to_oci(i, Document::Index)
    }

    /// An `oci_spec` index as a strata index.
    pub fn index_from_oci(i: &oci_spec::image::ImageIndex) -> Result<crate::Index, Error> {
        to_oci(i, Document::Index)
    }

    /// A strata config as an `oci_spec` config.
    pub fn config_to_oci(c: &crate::ImageConfig) -> Result<oci_spec::image::ImageConfiguration, Error> {
        to_oci(c, Document::Config)
    }

    /// An `oci_spec` config as a strata config.
    pub fn config_from_oci(c: &oci_spec::image::ImageConfiguration) -> Result<crate::ImageConfig, Error> {
        to_oci(c, Document::Config)
    }
}
