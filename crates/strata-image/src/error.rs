//! Errors of the image model.

use std::io;
use std::path::PathBuf;

use strata_spec::Digest;

/// Errors of `strata-image`: what failed, and the image, path or digest involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A document or reference did not parse.
    #[error(transparent)]
    Spec(#[from] strata_spec::Error),
    /// A layer could not be read, applied or written.
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    /// A commit failed.
    #[error(transparent)]
    Commit(#[from] strata_commit::Error),
    /// No image matches the name, digest or id (the name as given). Displayed as docker
    /// says it, with the name as docker reads it: `No such image: nope:latest`.
    #[error("No such image: {}", strata_spec::message_name(.0))]
    ImageNotFound(String),
    /// The start of an image id that several images' ids start with. Docker calls this
    /// `No such image`; the message says so, and why.
    #[error("No such image: {}: {count} image ids start with {prefix:?}", strata_spec::message_name(.prefix))]
    AmbiguousId {
        /// The prefix given.
        prefix: String,
        /// How many images it matches.
        count: usize,
    },
    /// `rmi` of an image docker would not delete: displayed as docker says it
    /// (`conflict: unable to delete 3f2a9c1d5e6b (must be forced) - image is referenced
    /// in multiple repositories`).
    #[error(
        "conflict: unable to delete {} ({}) - {reason}",
        image.short(),
        if reason.can_force() { "must be forced" } else { "cannot be forced" }
    )]
    Conflict {
        /// The image id.
        image: Digest,
        /// Why.
        reason: Conflict,
    },
    /// An index has no manifest for the platform asked for.
    #[error("image {name:?} has no manifest for platform {platform} (it has: {available})")]
    NoMatchingPlatform {
        /// The image.
        name: String,
        /// The platform wanted.
        platform: String,
        /// The platforms it has.
        available: String,
    },
    /// The descriptor a name resolves to is not an image.
    #[error("{name:?} is a {media_type}, not an image manifest or index")]
    NotAnImage {
        /// The name.
        name: String,
        /// What it points to.
        media_type: String,
    },
    /// An image's config and manifest disagree.
    #[error("image {manifest}: {reason}")]
    Inconsistent {
        /// The manifest digest.
        manifest: Digest,
        /// What disagrees.
        reason: String,
    },
    /// A directory that is not a strata container bundle, or a damaged one.
    #[error("{path}: not a strata container bundle: {reason}")]
    InvalidBundle {
        /// The bundle directory or state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The target of an unpack exists and is not empty.
    #[error("{0}: already exists and is not empty")]
    TargetNotEmpty(PathBuf),
    /// An archive that is not a docker-archive or OCI archive, or a damaged one.
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    /// The image's `Config.User` names a user or group its own `/etc/passwd` or
    /// `/etc/group` does not have (the runtime configuration cannot say who to run as).
    #[error("image user {spec:?}: no {kind} {name:?} in the image's {file}")]
    UnknownUser {
        /// The `Config.User` of the image.
        spec: String,
        /// `user` or `group`.
        kind: &'static str,
        /// The name not found.
        name: String,
        /// Where it was looked for: `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },
    /// An image config that cannot be converted to an OCI runtime configuration.
    #[error("cannot make a runtime configuration: image config {field}: {reason}")]
    Unconvertible {
        /// The config field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why [`Store::remove`](crate::Store::remove) did not delete an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// Removed by id while several tags name it: `--force` removes every tag and the
    /// image.
    MultipleTags,
    /// Another image of the store was made on top of it (see
    /// [`ImageConfig::is_child_of`](strata_spec::ImageConfig::is_child_of)); even
    /// `--force` does not delete it. Removing the children first does.
    DependentChildren,
}

impl Conflict {
    /// Whether `--force` overrides it.
    pub fn can_force(self) -> bool {
        matches!(self, Conflict::MultipleTags)
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conflict::MultipleTags => "image is referenced in multiple repositories",
            Conflict::DependentChildren => "image has dependent child images",
        })
    }
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
