//! Errors of the commit crate.

/// Errors of `strata-commit`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `--change` that does not parse.
    #[error(transparent)]
    Change(#[from] crate::change::ChangeError),
    /// Writing to or reading from the store failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// Diffing or writing the layer failed.
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    /// The base image cannot be built on: its config's history does not match its
    /// layers, or a layer's media type has no form in the manifest format asked for.
    /// (The spec error is shown in the message, so it is not also a `source`.)
    #[error("base image: {0}")]
    Base(strata_spec::Error),
    /// `SOURCE_DATE_EPOCH` is set but is not a number of seconds.
    #[error("SOURCE_DATE_EPOCH={0:?} is not a number of seconds since the epoch")]
    BadSourceDateEpoch(String),
    /// An I/O operation failed: what, where, and the OS error (its source).
    #[error(transparent)]
    Io(#[from] strata_spec::IoError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
