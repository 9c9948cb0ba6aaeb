//! The error type of registry operations.

use std::fmt;
use std::path::PathBuf;

use strata_spec::Digest;

/// One entry of a registry's JSON error body
/// (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`, distribution spec).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct RegistryError {
    /// The error code (`BLOB_UNKNOWN`, `MANIFEST_UNKNOWN`, `DENIED`, `UNAUTHORIZED`...).
    #[serde(default)]
    pub code: String,
    /// The registry's message.
    #[serde(default)]
    pub message: String,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() { f.write_str(&self.code) } else { write!(f, "{}: {}", self.code, self.message) }
    }
}

/// A list of registry errors, displayed as `" (CODE: message; CODE: message)"` or nothing.
pub(crate) struct ErrorList<'a>(pub &'a [RegistryError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" (")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        f.write_str(")")
    }
}

/// Errors of `strata-registry`. Every variant names the registry, repository, URL, blob
/// or file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference (or registry name) that does not parse.
    #[error(transparent)]
    InvalidReference(strata_spec::Error),
    /// The registry answered with an unexpected HTTP status.
    #[error("{method} {url}: HTTP {status}{}", ErrorList(errors))]
    Http {
        /// The request method.
        method: &'static str,
        /// The URL (without credentials; query strings kept).
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error codes, parsed from its JSON error body (may be empty).
        errors: Vec<RegistryError>,
    },
    /// The registry (or its token server) refused us: HTTP 401, or 403.
    #[error(
        "{registry}: access to {repository} denied (HTTP {status}, {}){}",
        if *credentials_sent { "credentials were sent and refused" } else { "no credentials were sent" },
        ErrorList(errors)
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository (or `/v2/` for the base check).
        repository: String,
        /// 401 or 403.
        status: u16,
        /// Whether credentials (basic, or to the token server) were sent.
        credentials_sent: bool,
        /// The registry's error codes, if it sent any.
        errors: Vec<RegistryError>,
    },
    /// Bytes that do not hash to the digest they should have. Nothing was stored.
    #[error("{what}: digest mismatch: expected {expected}, the bytes hash to {actual}")]
    DigestMismatch {
        /// What was being transferred (a blob and its URL, a manifest reference).
        what: String,
        /// The digest the bytes should have had.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// A blob or document that is not the size its descriptor says. Nothing was stored.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was being transferred.
        what: String,
        /// The size expected.
        expected: u64,
        /// The size found (for a response that overran, at least this many bytes).
        actual: u64,
    },
    /// A manifest of a media type strata cannot pull or push (schema1, artifacts,
    /// unknown types).
    #[error("{reference}: unsupported manifest media type {media_type:?}{}", hint(media_type))]
    UnsupportedMediaType {
        /// The reference or digest being fetched.
        reference: String,
        /// The media type found (from `Content-Type` or the document).
        media_type: String,
    },
    /// A manifest or index that does not parse, or disagrees with what pointed to it.
    #[error("{reference}: bad document")]
    BadDocument {
        /// The reference or digest being fetched.
        reference: String,
        /// The parse error.
        #[source]
        source: strata_spec::Error,
    },
    /// No manifest of an index matches the platform asked for.
    #[error("{reference}: no manifest for platform {platform} (the index has: {})", available.join(", "))]
    PlatformNotFound {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// A response or document larger than strata reads into memory.
    #[error("{what}: over the limit of {limit} bytes for reading into memory")]
    TooLarge {
        /// The URL or blob.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A TLS failure: a certificate not trusted, a handshake that failed.
    #[error("{url}: TLS: {message}")]
    Tls {
        /// The URL being contacted.
        url: String,
        /// What failed.
        message: String,
    },
    /// A network failure: connection refused or reset, timeout, DNS, a body cut short.
    #[error("{url}: {message}")]
    Transport {
        /// The URL being contacted.
        url: String,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response that breaks the distribution protocol (a missing `Location` header,
    /// a malformed `Content-Range`, a token response without a token...).
    #[error("{url}: invalid response: {reason}")]
    InvalidResponse {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry stored a manifest under another digest than ours.
    #[error("{reference}: the registry reports digest {reported} for the manifest we pushed as {expected}")]
    ManifestDigestMismatch {
        /// Where the manifest was pushed.
        reference: String,
        /// Our digest.
        expected: Digest,
        /// The `Docker-Content-Digest` the registry sent back.
        reported: String,
    },
    /// Plain HTTP was needed but is not allowed for this registry.
    #[error(
        "{registry}: the registry does not speak HTTPS ({message}); plain HTTP is used only for loopback addresses or with the insecure option"
    )]
    InsecureNotAllowed {
        /// The registry host.
        registry: String,
        /// Why HTTPS failed.
        message: String,
    },
    /// A credentials file (docker's `config.json`) or CA file that cannot be used.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An I/O operation failed: what, where, and the OS error (its source).
    #[error(transparent)]
    Io(#[from] strata_spec::IoError),
    /// The store failed (a write, a missing blob when pushing, a ref).
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// Another transfer of the same operation failed first; this one was stopped.
    #[error("stopped because another transfer failed")]
    Cancelled,
}

fn hint(media_type: &str) -> &'static str {
    match media_type {
        "application/vnd.docker.distribution.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v1+prettyjws" => {
            " (Docker schema1 is not supported; convert the image with skopeo)"
        }
        _ => " (strata pulls OCI and Docker schema2 images and indexes)",
    }
}

impl Error {
    /// Whether retrying the same request may succeed: network failures, and HTTP 408,
    /// 429, 500, 502, 503 and 504.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Http { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The registry error codes carried by this error, if any.
    pub fn registry_errors(&self) -> &[RegistryError] {
        match self {
            Error::Http { errors, .. } | Error::Unauthorized { errors, .. } => errors,
            _ => &[],
        }
    }

    /// Whether this is an HTTP error with `status`.
    pub fn is_status(&self, status: u16) -> bool {
        matches!(self, Error::Http { status: s, .. } if *s == status)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io(strata_spec::IoError { op, path, source })
    }

    pub(crate) fn transport(url: &str, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Transport { url: url.to_owned(), message: source.to_string(), source: Box::new(source) }
    }

    /// A store error met while writing or reading a blob, with verification failures
    /// turned into this crate's variants (naming `what`).
    pub(crate) fn from_store(e: strata_store::Error, what: impl FnOnce() -> String) -> Error {
        match e {
            strata_store::Error::DigestMismatch { expected, actual } => {
                Error::DigestMismatch { what: what(), expected, actual }
            }
            strata_store::Error::SizeMismatch { expected, actual, .. } => {
                Error::SizeMismatch { what: what(), expected, actual }
            }
            e => Error::Store(e),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
