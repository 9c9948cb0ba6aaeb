//! Errors of the spec crate.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A digest string that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestError {
    /// The input, truncated to 200 characters.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl DigestError {
    pub(crate) fn new(input: &str, reason: impl Into<String>) -> Self {
        DigestError { input: truncate(input), reason: reason.into() }
    }
}

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

/// What kind of document was being read when JSON failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// An image manifest (OCI or Docker schema2).
    Manifest,
    /// An image index or Docker manifest list.
    Index,
    /// An image configuration.
    Config,
    /// A descriptor.
    Descriptor,
    /// A platform object.
    Platform,
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Document::Manifest => "image manifest",
            Document::Index => "image index",
            Document::Config => "image config",
            Document::Descriptor => "descriptor",
            Document::Platform => "platform",
        })
    }
}

/// Errors of `strata-spec`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest string is malformed or uses an unsupported algorithm.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
    /// A media type strata does not know where a known one is required.
    #[error("unknown media type {0:?}")]
    UnknownMediaType(String),
    /// A document's own `mediaType` disagrees with what pointed to it (CVE-2021-41190).
    #[error("media type mismatch: expected {expected}, the document says {found}")]
    MediaTypeMismatch {
        /// The media type the caller (or the pointing descriptor) expected.
        expected: String,
        /// The media type found.
        found: String,
    },
    /// A media type of the wrong kind, such as a layer type where a manifest is required.
    #[error("{media_type} is not {wanted}")]
    WrongMediaTypeKind {
        /// The media type found.
        media_type: String,
        /// What was wanted ("an image manifest", "a layer", ...).
        wanted: &'static str,
    },
    /// JSON that does not parse or does not have the shape of the document.
    #[error("invalid {document} JSON")]
    Json {
        /// The document being read.
        document: Document,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A document that parses but breaks a rule of the spec.
    #[error("invalid {document}: {reason}")]
    Invalid {
        /// The document being read.
        document: Document,
        /// The rule broken.
        reason: String,
    },
    /// An image reference that does not follow docker's reference grammar, or cannot
    /// name a new tag. Displayed as docker says it (`invalid reference format`,
    /// `invalid reference format: repository name (library/UPPER) must be lowercase`):
    /// the input is a field, for callers that name it.
    #[error("{reason}")]
    InvalidReference {
        /// The input, truncated.
        input: String,
        /// What is wrong with it.
        reason: crate::reference::ReferenceError,
    },
    /// A platform string (`os/arch[/variant]`) that does not parse.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform {
        /// The input, truncated.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O operation that failed: what was being done, on which path, and the OS error.
///
/// Every strata crate's error enum carries this one shape in its `Io` variant. Its
/// `Display` says what and where (`open /var/lib/strata/index.json`); the OS error is its
/// [`source`](std::error::Error::source) and is not repeated in the message, so a printed
/// chain (`anyhow`'s `{:#}`, or walking `source()`) says each part once:
///
/// ```
/// use std::error::Error as _;
/// use strata_spec::IoError;
///
/// let e = IoError::new("open", "/no/such", std::io::ErrorKind::NotFound.into());
/// assert_eq!(e.to_string(), "open /no/such");
/// assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("entity not found"));
/// assert!(e.is_not_found());
/// ```
#[derive(Debug)]
pub struct IoError {
    /// What was being done (`open`, `rename`, `read layer`...).
    pub op: &'static str,
    /// The file or directory; empty when there is none to name.
    pub path: PathBuf,
    /// The OS error.
    pub source: io::Error,
}

impl IoError {
    /// `op` on `path` failed with `source`.
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> IoError {
        IoError { op, path: path.into(), source }
    }

    /// A closure for `map_err`: `fs::read(&p).map_err(IoError::with("read", &p))`.
    pub fn with(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> IoError {
        let path = path.into();
        move |source| IoError { op, path, source }
    }

    /// The OS error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// Whether the file or directory did not exist.
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }

    /// The path, if there is one.
    pub fn path(&self) -> Option<&Path> {
        (!self.path.as_os_str().is_empty()).then_some(self.path.as_path())
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            Some(p) => write!(f, "{} {}", self.op, p.display()),
            None => f.write_str(self.op),
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An error and its causes on one line, each joined by `": "`: what `Display` of a
/// strata error leaves to its [`source`](std::error::Error::source) chain (an
/// [`IoError`]'s OS error, a JSON parser's message) is said once, and a cause whose text
/// the line already holds is not repeated.
///
/// ```
/// use strata_spec::{ErrorChain, IoError};
///
/// let e = IoError::new("open", "/no/such", std::io::Error::other("gone"));
/// assert_eq!(ErrorChain(&e).to_string(), "open /no/such: gone");
/// ```
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'a));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !text.is_empty() && !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            cause = c.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
