//! The figures of one layer: what it is and how much of it the final tree uses.

use strata_spec::{Compression, Digest};

/// What one layer is and how much of it the final tree uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// The layer's name (from its [`crate::LayerSource`]).
    pub name: String,
    /// The compression detected.
    pub compression: Compression,
    /// Digest of the uncompressed tar, every byte of it (verified when expected).
    pub diff_id: Digest,
    /// Bytes read from the blob as stored (the descriptor's size for a whole blob).
    pub compressed_size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The layer's size as docker reports it: the sizes its entries declare, added up
    /// (see [`crate::read::content_size`]).
    pub content_size: u64,
    /// Tar entries (extension headers not counted), whiteouts included.
    pub entries: u64,
    /// Regular file entries (hard links not counted).
    pub files: u64,
    /// Whiteouts and opaque markers.
    pub whiteouts: u64,
    /// Content bytes of its regular file entries.
    pub bytes_added: u64,
    /// Of [`LayerStats::bytes_added`], the bytes of files that are not in the final
    /// tree under any path: deleted or overwritten by a later layer, or by a later entry
    /// of this layer.
    pub bytes_wasted: u64,
    /// Paths it creates that the tree below did not have (directories included; a
    /// directory entry over an existing directory is not counted).
    pub paths_added: u64,
    /// Paths it writes over what the tree below had (or an earlier entry of its own).
    pub paths_modified: u64,
    /// Paths of the tree below its whiteouts and opaque markers remove (a removed
    /// directory counts once).
    pub paths_removed: u64,
}

impl LayerStats {
    /// Figures of a layer not read yet.
    pub(crate) fn empty(name: &str) -> LayerStats {
        LayerStats {
            name: name.to_owned(),
            compression: Compression::None,
            diff_id: Digest::sha256_of(b""),
            compressed_size: 0,
            uncompressed_size: 0,
            content_size: 0,
            entries: 0,
            files: 0,
            whiteouts: 0,
            bytes_added: 0,
            bytes_wasted: 0,
            paths_added: 0,
            paths_modified: 0,
            paths_removed: 0,
        }
    }
}
