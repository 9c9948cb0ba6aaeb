//! Errors of the spec crate.

use std::fmt;

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
    #[error("invalid {document} JSON: {source}")]
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
