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
    /// A pull or push failed (feature `registry`).
    #[cfg(feature = "registry")]
    #[error(transparent)]
    Registry(Box<strata_registry::Error>),
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
    /// `rmi` of an image's only tag while a container uses the image (docker's words):
    /// the image would be left dangling, so it needs `--force`.
    #[error(
        "conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {}",
        image.short()
    )]
    ReferenceInUse {
        /// The tag as given.
        reference: String,
        /// The short id of the container.
        container: String,
        /// The image id.
        image: Digest,
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
    InvalidArchive(ArchiveProblem),
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
    /// No container has this name, id or id prefix (docker's words).
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    /// A container name another container has (docker's words).
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    ContainerNameInUse {
        /// The name.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// A container name docker would refuse (docker's words).
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidContainerName(String),
    /// A container whose image has neither an entrypoint nor a command, and none was
    /// given (docker's words).
    #[error("No command specified")]
    NoCommand,
    /// `rm` of a running container without force (docker's words).
    #[error("You cannot remove a running container {0}. Stop the container before attempting removal or force remove")]
    ContainerRunning(String),
    /// An operation that needs a running container (exec, kill), on one that is not.
    #[error("Container {0} is not running")]
    ContainerNotRunning(String),
    /// A container option that cannot be used (`-p`, `-v`, `-e`, a name...).
    #[error("invalid {option} {value:?}: {reason}")]
    InvalidContainerOption {
        /// The option (`--publish`, `--volume`...).
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No OCI runtime: none given, and none of the known ones is installed.
    #[error(
        "no OCI runtime found (looked for {tried} on PATH): install one (Debian: apt-get install runc, or crun), or name it with --runtime PATH or STRATA_RUNTIME"
    )]
    NoRuntime {
        /// The programs looked for.
        tried: String,
    },
    /// The OCI runtime failed: `runc create` and so on, with what the runtime said.
    #[error("OCI runtime {op} failed: {message}")]
    Runtime {
        /// The runtime command (`create`, `start`, `kill`, `exec`...).
        op: &'static str,
        /// What the runtime said (its last error), or how it failed.
        message: String,
    },
    /// Running containers needs what this process does not have (root).
    #[error("containers need {0}")]
    ContainersUnsupported(&'static str),
    /// The container's command could not be started: not found or not executable. The
    /// runtime's message; [`Error::exit_code`] gives docker's 127 or 126.
    #[error("OCI runtime create failed: {message}")]
    CannotExecute {
        /// Whether the command was not found (127) rather than not executable (126).
        not_found: bool,
        /// What the runtime said.
        message: String,
    },
    /// A member of an archive opened in place ([`ArchiveView`](crate::ArchiveView))
    /// that strata refuses: the archive, the member as named, and what is wrong.
    #[error("invalid archive {}: member {member:?}: {problem}", archive.display())]
    ArchiveMember {
        /// The archive file.
        archive: PathBuf,
        /// The member, as the archive or its `manifest.json` names it.
        member: String,
        /// What is wrong with it.
        problem: MemberProblem,
    },
    /// An archive that cannot be read in place (a compressed archive, or a pipe): load
    /// it into a store instead ([`Store::load`](crate::Store::load) reads both).
    #[error("{}: cannot be read in place: {reason}", path.display())]
    NotInPlace {
        /// The archive.
        path: PathBuf,
        /// Why ("gzip-compressed", "not a regular file").
        reason: String,
    },
    /// An I/O operation failed: what, where, and the OS error (its source).
    #[error(transparent)]
    Io(#[from] strata_spec::IoError),
}

/// Why an archive cannot be loaded ([`Error::InvalidArchive`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveProblem {
    /// Neither `manifest.json` (docker-archive) nor `index.json` (OCI archive).
    UnknownFormat,
    /// A metadata file (`manifest.json`, `index.json`, `oci-layout`) that does not parse.
    BadMetadata {
        /// The file.
        file: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// `manifest.json` lists no images.
    NoImages,
    /// `oci-layout` gives a version strata does not read.
    LayoutVersion(String),
    /// A member the archive's metadata names, or an entry of its tar, that cannot be used.
    Member {
        /// The member, as named.
        member: String,
        /// What is wrong with it.
        problem: MemberProblem,
    },
    /// A docker-archive image whose config has another number of diff_ids than the
    /// layers `manifest.json` lists for it.
    LayerCount {
        /// The config member.
        config: String,
        /// The layers listed.
        layers: usize,
        /// The config's diff_ids.
        diff_ids: usize,
    },
    /// Reading stopped in the middle of a layer (a worker decompressing it ended).
    Interrupted,
}

impl ArchiveProblem {
    /// [`ArchiveProblem::Member`] of `member`.
    pub(crate) fn member(member: impl Into<String>, problem: MemberProblem) -> ArchiveProblem {
        ArchiveProblem::Member { member: member.into(), problem }
    }
}

impl std::fmt::Display for ArchiveProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveProblem::UnknownFormat => {
                f.write_str("neither manifest.json (docker-archive) nor index.json (OCI archive) found")
            }
            ArchiveProblem::BadMetadata { file, reason } => write!(f, "{file}: {reason}"),
            ArchiveProblem::NoImages => f.write_str("manifest.json lists no images"),
            ArchiveProblem::LayoutVersion(v) => write!(f, "oci-layout: unsupported imageLayoutVersion {v:?}"),
            ArchiveProblem::Member { member, problem } => write!(f, "{member:?}: {problem}"),
            ArchiveProblem::LayerCount { config, layers, diff_ids } => {
                write!(f, "{config}: {layers} layers listed but the config has {diff_ids} diff_ids")
            }
            ArchiveProblem::Interrupted => f.write_str("layer decompression stopped"),
        }
    }
}

/// What is wrong with an archive member ([`Error::ArchiveMember`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberProblem {
    /// Its path leaves the archive (`..`, absolute, a link out) or is not a path.
    UnsafePath(String),
    /// Two members have this path.
    Duplicate,
    /// Its data runs past the end of the archive file: the archive is truncated.
    Truncated {
        /// Where its data would end.
        end: u64,
        /// The archive's length.
        len: u64,
    },
    /// `manifest.json` or `index.json` names it and the archive has no such member.
    Missing,
    /// It is not a regular file (a directory, a device, a link loop).
    NotAFile,
    /// It is larger than strata reads into memory for a document.
    TooLarge(u64),
    /// A sparse file: archives hold none, and a range of the archive cannot hold one.
    Sparse,
    /// A `blobs/<algorithm>/<hex>` name that is not a digest.
    BadDigestName(String),
    /// A layer that is neither a tar nor compressed.
    NotATar,
}

impl std::fmt::Display for MemberProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberProblem::UnsafePath(why) => write!(f, "unsafe path: {why}"),
            MemberProblem::Duplicate => f.write_str("more than one member has this path"),
            MemberProblem::Truncated { end, len } => {
                write!(f, "truncated: its data ends at byte {end}, the archive has {len} bytes")
            }
            MemberProblem::Missing => f.write_str("not in the archive"),
            MemberProblem::NotAFile => f.write_str("not a regular file"),
            MemberProblem::TooLarge(n) => write!(f, "{n} bytes is too large for a document"),
            MemberProblem::Sparse => f.write_str("a sparse file"),
            MemberProblem::BadDigestName(why) => write!(f, "blob name is not a digest: {why}"),
            MemberProblem::NotATar => f.write_str("not a tar"),
        }
    }
}

/// Why [`Store::remove`](crate::Store::remove) did not delete an image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// Removed by id while several tags name it: `--force` removes every tag and the
    /// image.
    MultipleTags,
    /// Another image of the store was made on top of it (see
    /// [`ImageConfig::is_child_of`](strata_spec::ImageConfig::is_child_of)); even
    /// `--force` does not delete it. Removing the children first does.
    DependentChildren,
    /// A running container was made from it (the short container id); even `--force`
    /// does not delete it.
    RunningContainer(String),
    /// A container that is not running was made from it (the short container id);
    /// `--force` deletes the image (the container keeps what it needs).
    StoppedContainer(String),
}

impl Conflict {
    /// Whether `--force` overrides it.
    pub fn can_force(&self) -> bool {
        matches!(self, Conflict::MultipleTags | Conflict::StoppedContainer(_))
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::MultipleTags => f.write_str("image is referenced in multiple repositories"),
            Conflict::DependentChildren => f.write_str("image has dependent child images"),
            Conflict::RunningContainer(c) => write!(f, "image is being used by running container {c}"),
            Conflict::StoppedContainer(c) => write!(f, "image is being used by stopped container {c}"),
        }
    }
}

/// What kind of failure an [`Error`] is, for callers that react to the kind rather
/// than to each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// What was asked for does not exist: an image, tag, container, blob, file.
    NotFound,
    /// The input is malformed: a reference, digest, option, archive, document.
    Invalid,
    /// Stored or received bytes are not what their name or descriptor says (a digest,
    /// size or diff_id mismatch): damage or tampering.
    Corrupt,
    /// The operation conflicts with the store's state (an image in use, a name taken).
    Conflict,
    /// The network or a registry failed (feature `registry`).
    Remote,
    /// The operating system refused or failed (I/O, permissions, a runtime).
    Io,
    /// Anything else.
    Other,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        use strata_store::Error as S;
        match self {
            Error::ImageNotFound(_) | Error::AmbiguousId { .. } | Error::ContainerNotFound(_) => ErrorKind::NotFound,
            Error::Store(S::NotFound(_) | S::RefNotFound(_)) => ErrorKind::NotFound,
            Error::Store(S::DigestMismatch { .. } | S::SizeMismatch { .. }) => ErrorKind::Corrupt,
            Error::Store(S::Io(e)) | Error::Io(e) => io_kind(&e.source),
            // A blob read while a layer streams that fails its digest or size.
            Error::Layer(
                strata_layer::Error::Io(strata_spec::IoError { source, .. })
                | strata_layer::Error::Decompress { source, .. },
            ) if S::as_verification(source).is_some() => ErrorKind::Corrupt,
            Error::Layer(strata_layer::Error::Io(e)) => io_kind(&e.source),
            Error::Layer(strata_layer::Error::DiffIdMismatch { .. }) => ErrorKind::Corrupt,
            Error::Layer(_) => ErrorKind::Invalid,
            Error::ArchiveMember { .. } | Error::NotInPlace { .. } => ErrorKind::Invalid,
            Error::Store(S::ReadOnly { .. }) => ErrorKind::Conflict,
            Error::Spec(_) | Error::InvalidArchive(_) | Error::InvalidBundle { .. } | Error::NotAnImage { .. } => {
                ErrorKind::Invalid
            }
            Error::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Error::Inconsistent { .. } => ErrorKind::Corrupt,
            Error::Conflict { .. } | Error::ReferenceInUse { .. } | Error::ContainerNameInUse { .. } => {
                ErrorKind::Conflict
            }
            #[cfg(feature = "registry")]
            Error::Registry(e) if e.is_status(404) => ErrorKind::NotFound,
            #[cfg(feature = "registry")]
            Error::Registry(_) => ErrorKind::Remote,
            _ => ErrorKind::Other,
        }
    }

    /// Whether what was asked for does not exist ([`ErrorKind::NotFound`]).
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// The exit code docker gives when `docker run` fails this way: 127 for a command
    /// not found, 126 for one that cannot be executed, 125 for any other failure of run
    /// itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CannotExecute { not_found: true, .. } => 127,
            Error::CannotExecute { not_found: false, .. } => 126,
            _ => 125,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io(strata_spec::IoError { op, path, source })
    }
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => ErrorKind::Invalid,
        _ => ErrorKind::Io,
    }
}

/// An I/O error from the caller's own code in a function returning this crate's
/// [`Result`] (`?` on `std::fs` calls): [`Error::Io`] without a path.
impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io(strata_spec::IoError::new("I/O", PathBuf::new(), source))
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn kinds_say_what_failed() {
        let store = Store::in_memory();
        let missing = store.image("nope:1").unwrap_err();
        assert!(missing.is_not_found(), "{missing:?}");
        // `sha256:` and no id is a malformed digest, not an image that is missing.
        let bad = store.image("sha256:zz").unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid, "{bad:?}");
        assert_eq!(bad.to_string(), "invalid checksum digest format");
        let long = store.image(&format!("sha256:{}", "a".repeat(65))).unwrap_err();
        assert_eq!(long.to_string(), "invalid checksum digest length");
        assert_eq!(store.image("UPPER").unwrap_err().kind(), ErrorKind::Invalid);
        // The caller's own I/O errors convert, keeping their kind.
        let io: Error = std::fs::read("/nonexistent/strata").unwrap_err().into();
        assert!(io.is_not_found());
        let blob = store.backend().open(&strata_spec::Digest::sha256_of(b"none")).unwrap_err();
        assert!(Error::from(blob).is_not_found());
    }
}
