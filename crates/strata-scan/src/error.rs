//! Errors of `strata-scan`.

use std::io;
use std::path::PathBuf;

/// Errors of scanning: what failed, and the file (inside the image, or on the host)
/// involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image could not be opened or its merged view built.
    #[error(transparent)]
    Image(#[from] strata_image::Error),
    /// A layer could not be read.
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    /// A file of the image could not be read.
    #[error("reading {path} in the image")]
    Read {
        /// The path inside the image.
        path: String,
        /// What went wrong.
        source: io::Error,
    },
    /// A file of the image is larger than [`crate::MAX_DATABASE_SIZE`].
    #[error("{path} in the image is {size} bytes, more than the {limit} a package database may have")]
    TooLarge {
        /// The path inside the image.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A package database did not parse.
    #[error("{path}: {reason}")]
    Database {
        /// The database's path inside the image.
        path: String,
        /// Why it did not parse.
        reason: String,
    },
    /// The SQLite RPM database could not be queried.
    #[error("{path}: sqlite")]
    Sqlite {
        /// The database's path inside the image.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// An I/O operation failed: what, where, and the OS error (its source).
    #[error(transparent)]
    Io(#[from] strata_spec::IoError),
    /// Something this operation cannot do, and why.
    #[error("{0}")]
    Unsupported(&'static str),
    /// An advisory did not parse.
    #[error("advisory {file}: {reason}")]
    Advisory {
        /// The file (or zip member) it came from.
        file: String,
        /// Why.
        reason: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn db(path: &str, reason: impl Into<String>) -> Error {
        Error::Database { path: path.to_owned(), reason: reason.into() }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io(strata_spec::IoError::new(op, path, source))
    }
}
