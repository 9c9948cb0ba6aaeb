//! Image manifests and image indexes (OCI and Docker schema2), read and written losslessly.

use std::collections::BTreeMap;

use crate::descriptor::Descriptor;
use crate::error::{Document, Error};
use crate::json::{json_object, to_canonical_json};
use crate::media_type::MediaType;

json_object! {
    /// An image manifest: one config and an ordered list of layers.
    pub struct Manifest {
        /// Always 2.
        req schema_version: u32 = "schemaVersion",
        /// The manifest's own media type (optional in OCI, required by Docker).
        opt media_type: MediaType = "mediaType",
        /// Type of an artifact.
        opt artifact_type: MediaType = "artifactType",
        /// The image config.
        req config: Descriptor = "config",
        /// Layers, base first.
        req layers: Vec<Descriptor> = "layers",
        /// A manifest this one refers to (signatures, SBOMs).
        opt subject: Descriptor = "subject",
        /// Arbitrary metadata.
        opt annotations: BTreeMap<String, String> = "annotations",
    }
}

json_object! {
    /// An image index (OCI) or manifest list (Docker): manifests for several platforms,
    /// and the shape of an image layout's `index.json`.
    pub struct Index {
        /// Always 2.
        req schema_version: u32 = "schemaVersion",
        /// The index's own media type.
        opt media_type: MediaType = "mediaType",
        /// Type of an artifact.
        opt artifact_type: MediaType = "artifactType",
        /// The manifests.
        req manifests: Vec<Descriptor> = "manifests",
        /// An index this one refers to.
        opt subject: Descriptor = "subject",
        /// Arbitrary metadata.
        opt annotations: BTreeMap<String, String> = "annotations",
    }
}

fn json_err(document: Document) -> impl FnOnce(serde_json::Error) -> Error {
    move |source| Error::Json { document, source }
}

/// Keys that make a document ambiguous between a manifest and an index
/// (the CVE-2021-41190 fix: a document must not be both).
const MANIFEST_ONLY: &[&str] = &["config", "layers"];
const INDEX_ONLY: &[&str] = &["manifests"];

impl Manifest {
    /// A schema 2 manifest of `media_type` (OCI or Docker) with a config and layers.
    pub fn new(media_type: MediaType, config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Manifest { schema_version: 2, media_type: Some(media_type), config, layers, ..Default::default() }
    }

    /// Parse a manifest from JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(json_err(Document::Manifest))?;
        m.validate()?;
        Ok(m)
    }

    /// Parse a manifest that `pointer` (a descriptor, or a caller's expectation) says is
    /// of media type `expected`. The manifest's own `mediaType`, when present, must agree,
    /// and `expected` must be a manifest type.
    pub fn from_slice_as(bytes: &[u8], expected: &MediaType) -> Result<Self, Error> {
        if !expected.is_manifest() {
            return Err(Error::WrongMediaTypeKind { media_type: expected.to_string(), wanted: "an image manifest" });
        }
        let m = Manifest::from_slice(bytes)?;
        check_own_media_type(m.media_type.as_ref(), expected)?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Error::Invalid { document: Document::Manifest, reason };
        if self.schema_version != 2 {
            return Err(invalid(format!("schemaVersion {} (only 2 is supported)", self.schema_version)));
        }
        if let Some(k) = INDEX_ONLY.iter().find(|k| self.extra.contains_key(**k)) {
            return Err(invalid(format!("has the index field `{k}`: ambiguous document (CVE-2021-41190)")));
        }
        if let Some(mt) = &self.media_type
            && mt.is_known()
            && !mt.is_manifest()
        {
            return Err(invalid(format!("its mediaType is {mt}")));
        }
        Ok(())
    }

    /// The media type to use for this manifest: its own, or OCI when absent.
    pub fn effective_media_type(&self) -> MediaType {
        self.media_type.clone().unwrap_or(MediaType::OciManifest)
    }

    /// Canonical JSON bytes (sorted keys, no whitespace).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        canonical(self)
    }
}

impl Index {
    /// An empty index of `media_type` (OCI index or Docker manifest list).
    pub fn new(media_type: Option<MediaType>) -> Self {
        Index { schema_version: 2, media_type, manifests: Vec::new(), ..Default::default() }
    }

    /// Parse an index from JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let i: Index = serde_json::from_slice(bytes).map_err(json_err(Document::Index))?;
        i.validate()?;
        Ok(i)
    }

    /// Parse an index that something says is of media type `expected`; see
    /// [`Manifest::from_slice_as`].
    pub fn from_slice_as(bytes: &[u8], expected: &MediaType) -> Result<Self, Error> {
        if !expected.is_index() {
            return Err(Error::WrongMediaTypeKind { media_type: expected.to_string(), wanted: "an image index" });
        }
        let i = Index::from_slice(bytes)?;
        check_own_media_type(i.media_type.as_ref(), expected)?;
        Ok(i)
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Error::Invalid { document: Document::Index, reason };
        if self.schema_version != 2 {
            return Err(invalid(format!("schemaVersion {} (only 2 is supported)", self.schema_version)));
        }
        if let Some(k) = MANIFEST_ONLY.iter().find(|k| self.extra.contains_key(**k)) {
            return Err(invalid(format!("has the manifest field `{k}`: ambiguous document (CVE-2021-41190)")));
        }
        if let Some(mt) = &self.media_type
            && mt.is_known()
            && !mt.is_index()
        {
            return Err(invalid(format!("its mediaType is {mt}")));
        }
        Ok(())
    }

    /// Canonical JSON bytes (sorted keys, no whitespace).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        canonical(self)
    }
}

fn check_own_media_type(own: Option<&MediaType>, expected: &MediaType) -> Result<(), Error> {
    match own {
        Some(own) if own != expected => {
            Err(Error::MediaTypeMismatch { expected: expected.to_string(), found: own.to_string() })
        }
        _ => Ok(()),
    }
}

/// Canonical JSON of one of strata's document types (manifest, index, config).
pub(crate) fn canonical<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // The document types hold only strings, integers, booleans and JSON values that
    // came from a parser, all of which serialize; failure would be a bug in strata.
    if crate::json::value_maps_are_sorted() {
        // Their own keys come out sorted (see `json_object!`), and so do those of the
        // `BTreeMap`s and JSON values in them: the plain writer already writes the
        // canonical form, without building a `Value` tree first (4x faster on a big index).
        serde_json::to_vec(v).expect("document types always serialize")
    } else {
        to_canonical_json(v).expect("document types always serialize")
    }
}

/// What a manifest-or-index blob turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum ManifestOrIndex {
    /// An image manifest.
    Manifest(Box<Manifest>),
    /// An image index or manifest list.
    Index(Box<Index>),
}

impl ManifestOrIndex {
    /// Parse a blob named by a descriptor of media type `media_type`, which must be a
    /// manifest or index type; the document must agree with it.
    pub fn from_slice_as(bytes: &[u8], media_type: &MediaType) -> Result<Self, Error> {
        if media_type.is_manifest() {
            Ok(ManifestOrIndex::Manifest(Box::new(Manifest::from_slice_as(bytes, media_type)?)))
        } else if media_type.is_index() {
            Ok(ManifestOrIndex::Index(Box::new(Index::from_slice_as(bytes, media_type)?)))
        } else {
            match media_type {
                MediaType::DockerSchema1Manifest | MediaType::DockerSchema1SignedManifest => {
                    Err(Error::WrongMediaTypeKind {
                        media_type: media_type.to_string(),
                        wanted: "supported: Docker schema1 manifests are not (convert with skopeo)",
                    })
                }
                MediaType::Other(o) => Err(Error::UnknownMediaType(o.clone())),
                _ => Err(Error::WrongMediaTypeKind {
                    media_type: media_type.to_string(),
                    wanted: "a manifest or an index",
                }),
            }
        }
    }

    /// Parse a blob of unknown type by its own `mediaType`, or by its shape when it has none.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde::de::IgnoredAny>,
            layers: Option<serde::de::IgnoredAny>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(json_err(Document::Manifest))?;
        match probe.media_type {
            Some(mt) => ManifestOrIndex::from_slice_as(bytes, &MediaType::new(&mt)),
            None => match (probe.manifests.is_some(), probe.layers.is_some()) {
                (true, false) => Ok(ManifestOrIndex::Index(Box::new(Index::from_slice(bytes)?))),
                (false, true) => Ok(ManifestOrIndex::Manifest(Box::new(Manifest::from_slice(bytes)?))),
                _ => Err(Error::Invalid {
                    document: Document::Manifest,
                    reason: "no mediaType, and neither only `layers` nor only `manifests`".into(),
                }),
            },
        }
    }
}
