//! Errors of a build.

use std::io;
use std::path::PathBuf;

use crate::dockerfile::{IgnoreError, ParseError};

/// Errors of `strata-build`: what failed and where (file, line, instruction, path).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The `.dockerignore` file does not parse.
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    /// A step failed: the file, line and instruction, and why. Unlike the other
    /// variants, its message says the reason too (a step is where, its source is what):
    /// a chain printer that skips what the line already holds ([`strata_spec::ErrorChain`],
    /// the CLI) says it once.
    #[error("{file}:{line}: {instruction}: {source}")]
    Step {
        /// The Dockerfile's name.
        file: String,
        /// The instruction's line.
        line: usize,
        /// The instruction as written (continuations joined, shortened when long).
        instruction: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// A `RUN` command exited with a non-zero status.
    #[error("the command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as run.
        command: String,
        /// Its exit status (128 + signal when killed by one).
        code: i32,
    },
    /// `RUN` cannot be done here: no runner (not root, or `unshare` missing).
    #[error("RUN needs a runner: {reason}")]
    NoRunner {
        /// Why there is none.
        reason: String,
    },
    /// `RUN` in a stage of a platform whose programs cannot run on this machine.
    #[error("RUN in a {platform} stage cannot run here: {reason}")]
    CannotRun {
        /// The stage's platform.
        platform: String,
        /// Why not, and what would help.
        reason: String,
    },
    /// A base image of another platform than the one asked for (`--platform`).
    #[error("base image {name:?} is {actual}, not the requested {wanted}")]
    PlatformMismatch {
        /// The image as named.
        name: String,
        /// Its platform.
        actual: String,
        /// The platform asked for.
        wanted: String,
    },
    /// The Dockerfile asks for something the build was not allowed (`--allow`).
    #[error("{what} needs the {entitlement} entitlement: strata build --allow {entitlement}")]
    Entitlement {
        /// `network.host` or `security.insecure`.
        entitlement: String,
        /// What asked for it.
        what: String,
    },
    /// An OCI runtime (`runc`) refused or failed to start the command: what its log
    /// said.
    #[error("{program}: {message}", program = program.display())]
    RuntimeFailed {
        /// The runtime.
        program: PathBuf,
        /// The error its log recorded.
        message: String,
    },
    /// A path the runner must mount on (`/proc`, `/dev`, a `--mount` target) is not a
    /// directory in the image.
    #[error("/{path} in the image is not a directory: cannot mount on it")]
    MountPoint {
        /// The path, relative to the root.
        path: String,
    },
    /// Variable substitution failed (`${VAR:?}`, unterminated quote...).
    #[error("substitution in {word:?}: {reason}")]
    Substitution {
        /// The word as written.
        word: String,
        /// What is wrong.
        reason: String,
    },
    /// A flag of an instruction whose value is wrong once substituted (`--platform`,
    /// `--mount`, `--chmod`, `--checksum`, `--network`, `--from`).
    #[error("{flag}={value}: {reason}")]
    Flag {
        /// The flag, with its dashes.
        flag: &'static str,
        /// Its value, substituted.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stage that does not start with `FROM`, or a `FROM` where an instruction of a
    /// stage belongs (an `ONBUILD FROM` trigger in a base image's config).
    #[error("{text}: FROM only starts a stage (it is not allowed inside one, nor as an ONBUILD trigger)")]
    MisplacedFrom {
        /// The instruction as written.
        text: String,
    },
    /// `RUN` with nothing to run (an empty exec form).
    #[error("RUN with an empty command")]
    EmptyCommand,
    /// A here-document of `RUN` named so that it cannot be a file name.
    #[error("heredoc name {name:?} is not a file name")]
    HeredocName {
        /// The name as written.
        name: String,
    },
    /// `COPY`/`ADD` of more than one source to a destination that is not a directory.
    #[error(
        "When using {keyword} with more than one source file, the destination must be a directory and end with a /"
    )]
    NotADirectoryDestination {
        /// `COPY` or `ADD`.
        keyword: &'static str,
    },
    /// `COPY`/`ADD` of a file over the root directory.
    #[error("{keyword}: cannot copy a file over the root directory")]
    FileOverRoot {
        /// `COPY` or `ADD`.
        keyword: &'static str,
    },
    /// A `COPY` source is a URL: only `ADD` fetches.
    #[error("{url}: COPY sources can't be URLs")]
    UrlInCopy {
        /// The source as written.
        url: String,
    },
    /// A source pattern that is not a valid glob.
    #[error("{pattern:?}: {reason}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// `ADD` of a local archive in a compression strata does not read.
    #[error("{path}: {format} archives are not supported by ADD (use gzip, zstd or plain tar)", path = path.display())]
    UnsupportedArchive {
        /// The source as written.
        path: PathBuf,
        /// `bzip2` or `xz`.
        format: &'static str,
    },
    /// `COPY --from` or a bind mount names a stage that has no image to give.
    #[error("stage {name:?} {problem}")]
    StageUnusable {
        /// The stage as named.
        name: String,
        /// Why it cannot be used.
        problem: StageProblem,
    },
    /// The build ends in a stage that made no image.
    #[error("the build made no image: the target stage is FROM scratch with no instructions")]
    NoImage,
    /// A secret or SSH agent that `RUN --mount` needs and the build cannot give.
    #[error("{kind} {id:?} {problem}")]
    Secret {
        /// A secret or an SSH agent.
        kind: SecretKind,
        /// The id.
        id: String,
        /// What is wrong.
        problem: SecretProblem,
    },
    /// A `RUN --mount` whose target or source cannot be mounted.
    #[error("mount: {problem}")]
    Mount {
        /// What is wrong.
        problem: MountProblem,
    },
    /// `--cache-from` names an image that is not a strata build cache.
    #[error("--cache-from {reference}: not a strata build cache (artifactType {artifact_type})")]
    NotACache {
        /// The reference as given.
        reference: String,
        /// The artifact type a build cache has.
        artifact_type: &'static str,
    },
    /// A `COPY`/`ADD` source that is not in the context (or is excluded by `.dockerignore`).
    #[error("{path}: not found in the build context (or excluded by .dockerignore)")]
    SourceNotFound {
        /// The source as written.
        path: String,
    },
    /// A source that points outside the context.
    #[error("{path}: forbidden path outside the build context")]
    OutsideContext {
        /// The source as written.
        path: String,
    },
    /// `ADD` of a URL while fetching is off ([`FetchOptions::enabled`](crate::FetchOptions)).
    #[error(
        "{url}: ADD of a URL needs URL fetching, which is off: enable it with `strata build --allow-url-fetch` \
         (BuildOptions::fetch_urls), or download the file into the context and COPY it"
    )]
    UrlSource {
        /// The URL.
        url: String,
    },
    /// `ADD` of a URL that is not `http://` or `https://` (`ftp://`, `git@`...).
    #[error("{url}: only http:// and https:// URLs can be fetched")]
    UrlScheme {
        /// The URL.
        url: String,
    },
    /// A download failed before an answer came or while its body was read (connection,
    /// TLS, timeout, too many redirects, a body cut short).
    #[error("{url}: download failed: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered a download with a status other than 2xx (after redirects).
    #[error("{url}: download failed: HTTP {status} {reason}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A download is larger than [`FetchOptions::max_bytes`](crate::FetchOptions).
    #[error("{url}: download larger than the limit of {limit} bytes")]
    FetchTooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A download does not match `ADD --checksum`.
    #[error("{url}: checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The checksum given.
        expected: strata_spec::Digest,
        /// The content's.
        actual: strata_spec::Digest,
    },
    /// `ADD <url> dir/` where neither the URL's path nor the server names a file.
    #[error("{url}: cannot determine a file name from the URL: give the destination as a file path, not a directory")]
    NoFileName {
        /// The URL.
        url: String,
    },
    /// A path in the image where a directory is needed is something else.
    #[error("/{path}: not a directory in the image")]
    NotADirectory {
        /// The path in the image.
        path: PathBuf,
    },
    /// Too many symbolic links while resolving a path in the image.
    #[error("/{path}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The path.
        path: PathBuf,
    },
    /// A user or group name not in the image's `/etc/passwd` or `/etc/group`.
    #[error("unable to find {what} {name:?}: no matching entries in {file}")]
    UnknownUser {
        /// `user` or `group`.
        what: &'static str,
        /// The name.
        name: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },
    /// `--target` or `COPY --from` names no stage (and no image).
    #[error("stage {name:?} not found")]
    StageNotFound {
        /// The name asked for (`--target`).
        name: String,
    },
    /// `FROM` names an image that is neither local nor pullable.
    #[error("base image {name:?}: {reason}")]
    BaseImage {
        /// The image as named.
        name: String,
        /// Why it could not be had.
        reason: String,
    },
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] strata_image::Error),
    /// A commit failed.
    #[error(transparent)]
    Commit(#[from] strata_commit::Error),
    /// A layer could not be read or written.
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] strata_registry::Error),
    /// A document did not parse.
    #[error(transparent)]
    Spec(#[from] strata_spec::Error),
    /// An I/O operation failed: what, where, and the OS error (its source).
    #[error(transparent)]
    Io(#[from] strata_spec::IoError),
}

/// Why a stage cannot give an image ([`Error::StageUnusable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StageProblem {
    /// It is `FROM scratch` with nothing in it.
    #[error("is an empty scratch stage")]
    EmptyScratch,
    /// It comes later in the Dockerfile.
    #[error("is not built yet (it comes later)")]
    NotBuiltYet,
}

/// What `RUN --mount` asked for that the build cannot give ([`Error::Secret`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// `--mount=type=secret`: given with `strata build --secret`.
    Secret,
    /// `--mount=type=ssh`: an agent socket given with `strata build --ssh`.
    SshAgent,
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretKind::Secret => "secret",
            SecretKind::SshAgent => "ssh agent",
        })
    }
}

/// What is wrong with a secret or SSH agent ([`Error::Secret`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretProblem {
    /// `required=true` and the build was not given it: the flag that gives it.
    #[error("is required but was not given ({hint})")]
    NotGiven {
        /// The `strata build` flag that gives it.
        hint: String,
    },
    /// Its source is an environment variable that is not set.
    #[error("needs environment variable {var}, which is not set")]
    EnvUnset {
        /// The variable.
        var: String,
    },
    /// `env=VAR` and the secret is not UTF-8 text.
    #[error("is not UTF-8 text, so it cannot go in {var}")]
    NotText {
        /// The variable it was to go in.
        var: String,
    },
}

/// What is wrong with a `RUN --mount` ([`Error::Mount`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountProblem {
    /// The target is `/`.
    #[error("a mount cannot cover the root directory")]
    CoversRoot,
    /// A file source on a directory in the image, or a directory on a file.
    #[error("target {target}: a {} in the image, the source is {}", if *source_is_dir { "file" } else { "directory" }, if *source_is_dir { "a directory" } else { "a file" })]
    KindMismatch {
        /// The target as written.
        target: String,
        /// Whether the source is a directory.
        source_is_dir: bool,
    },
    /// A bind source that matches more than one path.
    #[error("bind mount source {path:?} must name one path, not a pattern")]
    SourcePattern {
        /// The source as written.
        path: String,
    },
    /// A bind mount with no source at all.
    #[error("bind mount without a source")]
    NoSource,
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io(strata_spec::IoError { op, path, source })
    }

    /// The error under [`Error::Step`] context, if any.
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::Step { source, .. } => source.root_cause(),
            e => e,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
