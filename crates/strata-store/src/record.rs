//! Records: small facts strata keeps about blobs beside the layout, which the layout
//! itself has no place for.
//!
//! - A [`LayerRecord`], named by a layer blob's digest: the layer's `diff_id` and its
//!   size as docker reports it (the bytes of content its tar entries hold), written when
//!   strata writes, loads or pulls the layer, so that listing images never reads a layer.
//! - An [`ImageRecord`], named by what a tag points at (a manifest or index digest): when
//!   it was last tagged, and the `repository@digest` names it has in registries it came
//!   from or went to.
//! - A scan index ([`RecordKind::Scan`]), named by a layer blob's digest: what a scanner
//!   (strata-scan) read from the layer, in the scanner's own binary format, so that the
//!   next scan of any image holding the layer reads no blob; or named by a manifest's
//!   digest: what the scanner found in that image. The store neither reads nor
//!   checks its content; the scanner checks it (a checksum, its `diff_id`) and rebuilds a
//!   damaged one.
//!
//! A record is named by a digest, so what it says about those bytes stays true whether
//! or not the blob is still in the store: a record without its blob is harmless, never
//! read, and removed by the next [`Backend::gc`](crate::Store::gc). An
//! [`OciDir`](crate::OciDir) keeps records under `.strata/records/<kind>/<alg>/<hex>`,
//! each one JSON object written atomically (temp file, fsync, rename); OCI tools ignore
//! `.strata/`. Records are caches of what the blobs say, or bookkeeping docker keeps in
//! its own database: a store without them (a layout umoci wrote) loses nothing but
//! speed and the tag times and registry names it never had.

use serde::{Deserialize, Serialize};
use strata_spec::Digest;

/// The largest record read: records are small JSON objects (an image pushed to a
/// thousand repositories stays far below it).
pub const MAX_RECORD_SIZE: u64 = 1 << 20;

/// The largest scan index read ([`RecordKind::Scan`]): a layer's headers and the package
/// databases it holds (an RPM database is tens of MiB).
pub const MAX_SCAN_RECORD_SIZE: u64 = 256 << 20;

/// The kinds of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// A [`LayerRecord`], named by the layer blob's digest.
    Layer,
    /// An [`ImageRecord`], named by the digest a tag points at.
    Image,
    /// A scanner's index of a layer (opaque to the store), named by the layer blob's
    /// digest, or what it found in an image, named by the manifest's digest.
    Scan,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 3] = [RecordKind::Layer, RecordKind::Image, RecordKind::Scan];

    /// The directory name of this kind (`layer`, `image`).
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Layer => "layer",
            RecordKind::Image => "image",
            RecordKind::Scan => "scan",
        }
    }

    /// The largest record of this kind a store reads: [`MAX_RECORD_SIZE`] for the JSON
    /// records, [`MAX_SCAN_RECORD_SIZE`] for scan indexes.
    pub fn max_size(self) -> u64 {
        match self {
            RecordKind::Layer | RecordKind::Image => MAX_RECORD_SIZE,
            RecordKind::Scan => MAX_SCAN_RECORD_SIZE,
        }
    }

    /// Whether `bytes` are a valid record of this kind.
    pub fn check(self, bytes: &[u8]) -> std::result::Result<(), String> {
        let r = match self {
            RecordKind::Layer => serde_json::from_slice::<LayerRecord>(bytes).map(drop),
            RecordKind::Image => serde_json::from_slice::<ImageRecord>(bytes).map(drop),
            // Opaque to the store: its reader checks it and rebuilds it when damaged.
            RecordKind::Scan => Ok(()),
        };
        r.map_err(|e| e.to_string())
    }
}

/// What strata knows about a layer blob without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRecord {
    /// The digest of the layer's uncompressed tar: a reader checks it against the image
    /// config's `diff_id` before trusting [`LayerRecord::size`].
    pub diff_id: Digest,
    /// The layer's size as docker reports it (`docker history`, `docker image inspect`'s
    /// `Size` summed over layers): the sum of its tar entries' size fields, the bytes of
    /// file content it holds. Not the blob's size, nor the tar's length.
    pub size: u64,
}

/// What strata knows about an image that is not in its blobs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// When a tag was last set to point at it, RFC 3339 (docker's `LastTagTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
    /// `repository@digest` for each registry repository it was pulled from or pushed to
    /// (docker's `RepoDigests`), in the order they were added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    /// Add a `repository@digest` name, once.
    pub fn add_repo_digest(&mut self, name: &str) {
        if !self.repo_digests.iter().any(|n| n == name) {
            self.repo_digests.push(name.to_owned());
        }
    }
}

/// What [`Backend::update_record`](crate::Store::update_record) calls: the current bytes
/// of a record (`None` when there is none) to the new ones (`None`: leave it as it is).
pub type RecordUpdate<'a> = dyn FnMut(Option<&[u8]>) -> crate::Result<Option<Vec<u8>>> + 'a;

/// Serialize a record (compact JSON, fields in a fixed order).
pub(crate) fn to_bytes<T: Serialize>(record: &T) -> Vec<u8> {
    // A struct of strings and numbers always serializes.
    serde_json::to_vec(record).unwrap_or_default()
}
