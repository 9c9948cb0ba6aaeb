//! Errors of the layer crate.

use std::io;
use std::path::PathBuf;

use strata_spec::{Compression, Digest};

/// Errors of `strata-layer`. Every variant names the layer and, where there is one,
/// the entry or path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed: what, where, and the OS error (its source).
    #[error(transparent)]
    Io(#[from] strata_spec::IoError),
    /// A layer entry that would reach outside the root, or is otherwise hostile.
    #[error("layer {layer}: unsafe entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The layer (its digest or position).
        layer: String,
        /// The entry name as it appears in the tar.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A tar stream that does not parse, or an entry strata cannot represent.
    #[error("layer {layer}: invalid tar{}: {reason}", entry.as_ref().map(|e| format!(" at entry {e:?}")).unwrap_or_default())]
    InvalidTar {
        /// The layer.
        layer: String,
        /// The entry, when the problem is with one.
        entry: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The uncompressed layer does not hash to the diff_id the config names.
    #[error("layer {layer}: diff_id mismatch: config says {expected}, content is {actual}")]
    DiffIdMismatch {
        /// The layer.
        layer: String,
        /// From the image config.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
    /// The media type says one compression and the bytes another.
    #[error("layer {layer}: media type says {declared} compression but the blob is {detected}")]
    CompressionMismatch {
        /// The layer.
        layer: String,
        /// From the media type.
        declared: Compression,
        /// From the magic bytes.
        detected: Compression,
    },
    /// A compression strata was built without (the `zstd` feature).
    #[error("layer {layer}: {compression} support is not compiled in")]
    UnsupportedCompression {
        /// The layer.
        layer: String,
        /// The compression.
        compression: Compression,
    },
    /// A file of the tree being written changed while it was read (a running container):
    /// its size or type no longer matches what the walk saw.
    #[error("{path}: changed while the layer was written: {reason}", path = path.display())]
    SourceChanged {
        /// The path, relative to the tree's root.
        path: PathBuf,
        /// What changed.
        reason: String,
    },
    /// An entry a layer cannot carry (a socket, a name that reads as a whiteout, an
    /// xattr name with `=`...).
    #[error("{path}: cannot be written to a layer: {reason}", path = path.display())]
    Unrepresentable {
        /// The path, relative to the root.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Entries were appended to a layer writer out of tar order (a caller bug; the
    /// writer enforces the order that makes layers deterministic).
    #[error("layer entry {path} appended after {previous}: entries must come in tar order", path = path.display(), previous = previous.display())]
    OutOfOrder {
        /// The entry before.
        previous: PathBuf,
        /// The entry that should have come earlier.
        path: PathBuf,
    },
    /// Writing the layer stream to its sink (or compressing it) failed.
    #[error("writing layer")]
    Sink {
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A metadata snapshot that cannot be loaded (wrong magic or version, bad checksum,
    /// truncated, unordered).
    #[error("invalid snapshot: {reason}")]
    InvalidSnapshot {
        /// What is wrong.
        reason: String,
    },
    /// A layer index that cannot be loaded (wrong magic or version, bad checksum,
    /// truncated).
    #[error("invalid layer index: {reason}")]
    InvalidIndex {
        /// What is wrong.
        reason: String,
    },
    /// An overlayfs upper directory uses a feature the overlay differ does not support.
    #[error("overlay upper dir entry {path}: {feature} is not supported", path = path.display())]
    OverlayUnsupported {
        /// The entry, relative to the upper dir.
        path: PathBuf,
        /// The feature (`redirect_dir`, `metacopy`).
        feature: &'static str,
    },
    /// A write option out of range.
    #[error("invalid layer write option: {reason}")]
    InvalidOption {
        /// What is wrong.
        reason: String,
    },
    /// Reading the blob or decompressing it failed (a truncated or corrupt stream, or an
    /// I/O error of the reader the blob comes from).
    #[error("layer {layer}: reading {compression} stream")]
    Decompress {
        /// The layer.
        layer: String,
        /// The compression being decoded.
        compression: Compression,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file system operation failed while applying an entry of a layer.
    #[error("layer {layer}: entry {entry:?}: {op}")]
    Apply {
        /// The layer.
        layer: String,
        /// The entry name as it appears in the tar (or the path being worked on).
        entry: String,
        /// What was being done (`create`, `mkdir`, `link`, `chown`...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A layer went past a limit of [`crate::Limits`] (header sizes, name lengths,
    /// uncompressed size).
    #[error("layer {layer}{}: {what} is {actual} bytes, over the limit of {limit}", entry.as_ref().map(|e| format!(" entry {e:?}")).unwrap_or_default())]
    LimitExceeded {
        /// The layer.
        layer: String,
        /// The entry, when the limit is per entry.
        entry: Option<String>,
        /// Which limit (`PAX header`, `path`, `xattr value`...).
        what: &'static str,
        /// The size found (or reached).
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// A path that is not in a merged tree ([`crate::MergedTree`]).
    #[error("{path}: {reason}", path = path.display())]
    PathNotFound {
        /// The path asked for.
        path: PathBuf,
        /// Why it does not resolve (no such path, a component is not a directory, a
        /// symlink loop).
        reason: &'static str,
    },
    /// A path of a merged tree that is not of the type the operation needs (reading a
    /// directory, listing a file).
    #[error("{path}: is a {found}, not a {expected}", path = path.display())]
    WrongKind {
        /// The path asked for.
        path: PathBuf,
        /// The type needed.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A layer reopened to read contents is not the layer that was folded (its entries
    /// or its bytes differ).
    #[error("layer {layer}: not the layer the merged tree was built from: {reason}")]
    LayerChanged {
        /// The layer.
        layer: String,
        /// What differs.
        reason: String,
    },
    /// The caller's function opening a layer's blob again failed.
    #[error("layer {layer}: opening the blob")]
    OpenLayer {
        /// The layer.
        layer: String,
        /// The error it returned.
        #[source]
        source: io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
