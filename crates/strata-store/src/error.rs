//! The store's error type.

use std::io;
use std::path::PathBuf;

use strata_spec::{Algorithm, Digest};

/// Errors of `strata-store`. Every variant names the digest, ref or path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No blob with this digest is in the store.
    #[error("blob {0} not found")]
    NotFound(Digest),
    /// Bytes did not hash to the digest they were supposed to have.
    #[error("digest mismatch: expected {expected}, the bytes hash to {actual}")]
    DigestMismatch {
        /// The digest the bytes should have had (the blob's name, or the caller's expectation).
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// A blob's size is not the size a descriptor or the caller said.
    #[error("size mismatch for {digest}: expected {expected} bytes, found {actual}")]
    SizeMismatch {
        /// The blob (for a write, the digest the bytes actually have).
        digest: Digest,
        /// The size expected.
        expected: u64,
        /// The size found (for a read that overran, at least this many bytes).
        actual: u64,
    },
    /// A writer hashing with one algorithm was asked to verify a digest of another.
    #[error("expected digest {expected} uses a different algorithm than the writer ({algorithm})")]
    AlgorithmMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// The algorithm the writer hashed with.
        algorithm: Algorithm,
    },
    /// A blob is larger than the caller is willing to read into memory.
    #[error("blob {digest} is {size} bytes, over the limit of {limit} for reading into memory")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A directory that is not an OCI image layout, or a damaged one.
    #[error("{path}: not a valid OCI image layout: {reason}")]
    InvalidLayout {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An `oci-layout` file whose `imageLayoutVersion` strata does not support.
    #[error("{path}: unsupported imageLayoutVersion {version:?} (strata reads 1.x)")]
    UnsupportedLayoutVersion {
        /// The `oci-layout` file.
        path: PathBuf,
        /// The version found.
        version: String,
    },
    /// `index.json` is not valid JSON or not a valid image index.
    #[error("{path}: bad image index")]
    BadIndex {
        /// The `index.json` file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: strata_spec::Error,
    },
    /// A manifest, index or config blob that does not parse or disagrees with the
    /// descriptor that points to it.
    #[error("blob {digest}: bad document")]
    BadDocument {
        /// The blob.
        digest: Digest,
        /// The parse error.
        #[source]
        source: strata_spec::Error,
    },
    /// An I/O operation failed: what, where, and the OS error (its source).
    #[error(transparent)]
    Io(#[from] strata_spec::IoError),
    /// No descriptor in the index carries this ref name.
    #[error("ref {0:?} not found")]
    RefNotFound(String),
    /// Several descriptors with different digests carry this ref name (written by
    /// another tool); strata will not guess.
    #[error("ref {name:?} is ambiguous: {count} descriptors with different digests carry it")]
    AmbiguousRef {
        /// The ref name.
        name: String,
        /// How many descriptors carry it.
        count: usize,
    },
    /// A ref name strata refuses to store.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName {
        /// The name, truncated to 200 characters.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// GC was asked to run by a process that holds a lease on the same store: it would
    /// wait for itself forever.
    #[error("{path}: cannot garbage-collect while this process holds a lease on the store")]
    LeaseHeld {
        /// The store.
        path: PathBuf,
    },
    /// A write, delete, GC or record update asked of a read-only store (a
    /// [`RangeStore`](crate::RangeStore) over an archive read in place).
    #[error("{path}: read-only store: cannot {op}")]
    ReadOnly {
        /// What was asked ("write a blob", "change the index"...).
        op: &'static str,
        /// The file the store reads.
        path: PathBuf,
    },
    /// GC stopped before deleting anything because it could not read a document that
    /// is reachable (or `index.json` lists it and it is missing), so it cannot know what
    /// that document keeps alive. [`GcOptions::force`](crate::GcOptions::force) collects
    /// past a missing one.
    #[error("gc aborted, nothing removed: cannot read reachable {digest}")]
    GcAborted {
        /// The reachable manifest or index.
        digest: Digest,
        /// Why it could not be read.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// An I/O error with what was being done and where.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io(strata_spec::IoError { op, path, source })
    }

    /// Turn an `io::Error` from a [`BlobReader`](crate::BlobReader) or
    /// [`BlobWriter`](crate::BlobWriter) back into the store's error: a verification
    /// failure the reader wrapped comes back as itself ([`Error::DigestMismatch`],
    /// [`Error::SizeMismatch`]); any other error becomes [`Error::Io`] with `op` and `path`.
    pub fn from_io(err: io::Error, op: &'static str, path: impl Into<PathBuf>) -> Error {
        match err.downcast::<Error>() {
            Ok(e) => e,
            Err(source) => Error::Io(strata_spec::IoError::new(op, path, source)),
        }
    }

    /// The verification error inside an `io::Error` returned by a blob reader, if it is one.
    pub fn as_verification(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref::<Error>()
    }

    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
