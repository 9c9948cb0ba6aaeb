//! Image references: `[registry[:port]/]repository[:tag][@digest]`, with Docker Hub
//! normalisation (`ubuntu` is `docker.io/library/ubuntu:latest`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, truncate};

/// The registry a reference without one refers to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The tag a reference without tag or digest refers to.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, validated image reference.
///
/// ```
/// use strata_spec::Reference;
/// let r: Reference = "ubuntu".parse().unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/ubuntu:latest");
/// assert_eq!(r.familiar(), "ubuntu:latest");
/// let r: Reference = "127.0.0.1:5000/base:v1".parse().unwrap();
/// assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "base", Some("v1")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse a reference and normalise it as docker does (`ParseNormalizedNamed`):
    /// Docker Hub is the default registry, `library/` the default namespace there,
    /// `latest` the default tag when neither a tag nor a digest is given. A bad reference
    /// is an [`Error::InvalidReference`] whose reason is docker's (see [`ReferenceError`]).
    pub fn parse(input: &str) -> Result<Self, Error> {
        let mut r = Reference::parse_exact(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Parse a reference without adding the default tag.
    pub fn parse_exact(input: &str) -> Result<Self, Error> {
        parse_normalized(input).map_err(|reason| Error::InvalidReference { input: truncate(input), reason })
    }

    /// Parse a name to give an image as a tag, with docker's rules for a new tag: a
    /// reference without a digest (`refusing to create a tag with a digest reference`),
    /// whose repository is not `sha256` (a tag `sha256:<hex>` would read as an image id:
    /// `refusing to create an ambiguous tag using digest algorithm as name`); `latest`
    /// when no tag is given.
    ///
    /// ```
    /// use strata_spec::Reference;
    /// assert_eq!(Reference::parse_tag("tomcat02")?.familiar(), "tomcat02:latest");
    /// let hex = "0123456789abcdef".repeat(4);
    /// for bad in ["Bad:Tag", "a b", "x@sha256:0123", &format!("sha256:{hex}"), &format!("x@sha256:{hex}")] {
    ///     assert!(Reference::parse_tag(bad).is_err(), "{bad}");
    /// }
    /// # Ok::<(), strata_spec::Error>(())
    /// ```
    pub fn parse_tag(input: &str) -> Result<Self, Error> {
        let r = Reference::parse(input)?;
        let bad = |reason| Err(Error::InvalidReference { input: truncate(input), reason });
        if r.digest.is_some() {
            return bad(ReferenceError::TagWithDigest);
        }
        if r.familiar_name() == "sha256" {
            return bad(ReferenceError::DigestAlgorithmAsName);
        }
        Ok(r)
    }

    /// Whether `tag` is a valid tag (`[\w][\w.-]{0,127}`): a reference `repo:tag`
    /// is valid when `repo` is and its tag is, whatever the other.
    pub fn is_valid_tag(tag: &str) -> bool {
        valid_tag(tag)
    }

    /// A reference from its parts (validated).
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Self, Error> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        Reference::parse_exact(&s)
    }

    /// Registry host and optional port (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path within the registry (`library/ubuntu`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The host to contact for the registry API (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB { DOCKER_HUB_API_HOST } else { &self.registry }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short name Docker shows: `ubuntu` for `docker.io/library/ubuntu`,
    /// `user/app` for `docker.io/user/app`, the full name elsewhere. A Docker Hub
    /// repository whose first component reads as a registry (`docker.io/a.b/c`) keeps
    /// `docker.io/`: `a.b/c` would name another registry. The familiar name always
    /// parses back to this reference.
    pub fn familiar_name(&self) -> String {
        if self.registry != DOCKER_HUB {
            return self.name();
        }
        let short = self.repository.strip_prefix("library/").filter(|r| !r.contains('/')).unwrap_or(&self.repository);
        match short.split_once('/') {
            Some((first, _)) if looks_like_registry(first) => self.name(),
            _ => short.to_owned(),
        }
    }

    /// The familiar form with tag and digest (`ubuntu:latest`, `127.0.0.1:5000/base:v1`):
    /// how strata names tags in a store.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
    }

    /// This reference with `tag` instead of its tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        if !valid_tag(tag) {
            return Err(Error::InvalidReference { input: truncate(tag), reason: ReferenceError::Format });
        }
        Ok(Reference { tag: Some(tag.to_owned()), digest: None, ..self.clone() })
    }

    /// This reference pinned to `digest` (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference { digest: Some(digest), ..self.clone() }
    }
}

/// Why a string is not a reference, or not one that can name a new tag: docker's
/// reasons (`distribution/reference`, and the engine's tag store), displayed in docker's
/// words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Does not follow the grammar: `invalid reference format`.
    Format,
    /// A repository path with uppercase letters:
    /// `invalid reference format: repository name (library/UPPER) must be lowercase`.
    Uppercase {
        /// The repository path as docker names it (Docker Hub's `library/` included).
        repository: String,
    },
    /// Registry and repository longer than 255 characters together:
    /// `repository name must not be more than 255 characters`.
    TooLong,
    /// 64 hex digits, an image id, as a repository name:
    /// `invalid repository name (<hex>), cannot specify 64-byte hexadecimal strings`.
    HexName(String),
    /// A digest with an algorithm strata does not know: `unsupported digest algorithm`.
    DigestAlgorithm,
    /// A digest of the wrong length: `invalid checksum digest length`.
    DigestLength,
    /// A digest that is not lowercase hex: `invalid checksum digest format`.
    DigestFormat,
    /// A new tag with a digest: `refusing to create a tag with a digest reference`.
    TagWithDigest,
    /// A new tag in the repository `sha256`, which would read as an image id:
    /// `refusing to create an ambiguous tag using digest algorithm as name`.
    DigestAlgorithmAsName,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceError::Format => f.write_str("invalid reference format"),
            ReferenceError::Uppercase { repository } => {
                write!(f, "invalid reference format: repository name ({repository}) must be lowercase")
            }
            ReferenceError::TooLong => write!(f, "repository name must not be more than {MAX_NAME_LEN} characters"),
            ReferenceError::HexName(s) => {
                write!(f, "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
            }
            ReferenceError::DigestAlgorithm => f.write_str("unsupported digest algorithm"),
            ReferenceError::DigestLength => f.write_str("invalid checksum digest length"),
            ReferenceError::DigestFormat => f.write_str("invalid checksum digest format"),
            ReferenceError::TagWithDigest => f.write_str("refusing to create a tag with a digest reference"),
            ReferenceError::DigestAlgorithmAsName => {
                f.write_str("refusing to create an ambiguous tag using digest algorithm as name")
            }
        }
    }
}

/// What a name given to an image command means, read as docker reads it
/// (`ParseAnyReference`): 64 hex digits or a digest name an image by id or digest, and
/// anything else is a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyReference {
    /// `<64 hex>` (as `sha256:<64 hex>`) or `algorithm:hex`.
    Digest(Digest),
    /// A reference, normalised, without the default tag added.
    Named(Reference),
}

impl AnyReference {
    /// Read `input` as docker does: an id or digest first, then a reference.
    pub fn parse(input: &str) -> Result<AnyReference, Error> {
        if is_hex64(input) {
            let d = Digest::parse(&format!("sha256:{input}")).map_err(Error::InvalidDigest)?;
            return Ok(AnyReference::Digest(d));
        }
        if let Ok(d) = Digest::parse(input) {
            return Ok(AnyReference::Digest(d));
        }
        Reference::parse_exact(input).map(AnyReference::Named)
    }
}

impl fmt::Display for AnyReference {
    /// How docker names it in messages (`No such image: nope:latest`): a digest as is, a
    /// reference in its familiar form with `latest` when it has neither tag nor digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyReference::Digest(d) => f.write_str(d.as_str()),
            AnyReference::Named(r) if r.tag.is_none() && r.digest.is_none() => {
                write!(f, "{}:{DEFAULT_TAG}", r.familiar_name())
            }
            AnyReference::Named(r) => f.write_str(&r.familiar()),
        }
    }
}

/// `input` as docker names it in messages: `nope` is `nope:latest`, 64 hex digits are
/// `sha256:<hex>`; what does not parse is shown as given.
pub fn message_name(input: &str) -> String {
    AnyReference::parse(input).map_or_else(|_| input.to_owned(), |a| a.to_string())
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether the part before the first `/` names a registry (docker's `splitDockerDomain`):
/// `localhost`, or something with a `.` or `:`, or with uppercase letters (which a
/// repository path cannot have).
fn looks_like_registry(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|c| c.is_ascii_uppercase())
}

/// docker's `ParseNormalizedNamed`, reason for reason.
fn parse_normalized(input: &str) -> Result<Reference, ReferenceError> {
    if is_hex64(input) {
        return Err(ReferenceError::HexName(truncate(input)));
    }
    // The registry, as docker's splitDockerDomain decides it, and the rest.
    let (registry, remainder) = match input.split_once('/') {
        Some((first, rest)) if looks_like_registry(first) => {
            (if first == "index.docker.io" { DOCKER_HUB } else { first }, rest.to_owned())
        }
        Some(_) => (DOCKER_HUB, input.to_owned()),
        None => (DOCKER_HUB, input.to_owned()),
    };
    let remainder = if registry == DOCKER_HUB && !remainder.split([':', '@']).next().unwrap_or("").contains('/') {
        format!("library/{remainder}")
    } else {
        remainder
    };
    // Uppercase in the repository path is named (everything before the first ':', as
    // docker cuts it).
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase { repository: truncate(remote) });
    }
    // The grammar: registry "/" path [":" tag] ["@" digest].
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder.as_str(), None),
    };
    let (path, tag) = match name_tag.rsplit_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (name_tag, None),
    };
    if !valid_registry(registry) || !valid_path(path) || !tag.is_none_or(valid_tag) || !digest.is_none_or(digest_shaped)
    {
        return Err(ReferenceError::Format);
    }
    if registry.len() + 1 + path.len() > MAX_NAME_LEN {
        return Err(ReferenceError::TooLong);
    }
    let digest = match digest {
        Some(d) => Some(parse_digest(d)?),
        None => None,
    };
    Ok(Reference { registry: registry.to_owned(), repository: path.to_owned(), tag: tag.map(str::to_owned), digest })
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    !b.is_empty() && b.len() <= MAX_TAG_LEN && word(b[0]) && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// A host name or `[IPv6]`, with an optional `:port`.
fn valid_registry(reg: &str) -> bool {
    let (host, port) = match reg.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else { return false };
            if v6.is_empty() || !v6.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
                return false;
            }
            match after {
                "" => (None, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (None, Some(p)),
                    None => return false,
                },
            }
        }
        None => match reg.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(reg), None),
        },
    };
    let host_ok = host.is_none_or(|h| {
        h.split('.').all(|comp| {
            let b = comp.as_bytes();
            !b.is_empty()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
    });
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Path components of lowercase letters and digits joined by one `.`, one or two `_`,
/// or any number of `-`; components separated by `/`.
fn valid_path(path: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    path.split('/').all(|comp| {
        let b = comp.as_bytes();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
                return false;
            }
        }
        true
    })
}

/// `algorithm:hex` as the reference grammar has it: algorithm components of letters and
/// digits (each starting with a letter) joined by `-`, `_`, `+` or `.`, and at least 32
/// hex digits of either case.
fn digest_shaped(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else { return false };
    let algo_ok = algo.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algo_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// A digest-shaped string as a digest, with go-digest's reasons: the algorithm, then the
/// length, then the case of the hex digits.
fn parse_digest(d: &str) -> Result<Digest, ReferenceError> {
    let (algo, hex) = d.split_once(':').unwrap_or((d, ""));
    let Some(algorithm) = crate::Algorithm::from_name(algo) else { return Err(ReferenceError::DigestAlgorithm) };
    if hex.len() != algorithm.hex_len() {
        return Err(ReferenceError::DigestLength);
    }
    Digest::parse(d).map_err(|_| ReferenceError::DigestFormat)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_like_docker() {
        let cases: &[(&str, &str, &str)] = &[
            ("ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
            ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
            ("library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
            ("docker.io/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
            ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
            ("user/app:1", "docker.io/user/app:1", "user/app:1"),
            ("tomcat02:1.0", "docker.io/library/tomcat02:1.0", "tomcat02:1.0"),
            ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
            ("127.0.0.1:5000/base:latest", "127.0.0.1:5000/base:latest", "127.0.0.1:5000/base:latest"),
            ("quay.io/a/b/c:v1.2-x_y", "quay.io/a/b/c:v1.2-x_y", "quay.io/a/b/c:v1.2-x_y"),
            ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
            ("a__b-c---d/e.f", "docker.io/a__b-c---d/e.f:latest", "a__b-c---d/e.f:latest"),
            // Found by fuzz/reference_parse: a Docker Hub repository whose first
            // component reads as a registry keeps `docker.io/` in its familiar form
            // (`example.com/app` would name the registry example.com).
            ("docker.io/example.com/app:1", "docker.io/example.com/app:1", "docker.io/example.com/app:1"),
            ("docker.io/library/a.b/c", "docker.io/library/a.b/c:latest", "library/a.b/c:latest"),
            ("docker.io/localhost/app", "docker.io/localhost/app:latest", "docker.io/localhost/app:latest"),
            ("docker.io/example.com", "docker.io/library/example.com:latest", "example.com:latest"),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(&r.to_string(), full, "{input}");
            assert_eq!(&r.familiar(), familiar, "{input}");
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input} round trip");
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{input} familiar round trip");
        }
        let r = Reference::parse(&format!("ubuntu@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest().map(Digest::as_str)), (None, Some(D)));
        let r = Reference::parse(&format!("ubuntu:22.04@{D}")).unwrap();
        assert_eq!(r.tag(), Some("22.04"));
    }

    /// docker's verdicts, from `docker tag IMAGE <input>` against engine 20.10 (client
    /// 28 for the `(repository)` in the uppercase message, which newer
    /// distribution/reference releases added).
    #[test]
    fn rejects_what_docker_rejects_with_its_reason() {
        use ReferenceError::*;
        let hex = "0123456789abcdef".repeat(4);
        let upper_hex = hex.to_uppercase();
        let long_tag = format!("x:{}", "a".repeat(129));
        let long_name = "a".repeat(240);
        let cases: Vec<(String, ReferenceError)> = vec![
            ("UPPER".into(), Uppercase { repository: "library/UPPER".into() }),
            ("Bad:Tag".into(), Uppercase { repository: "library/Bad".into() }),
            ("user/App:1".into(), Uppercase { repository: "user/App".into() }),
            ("docker.io/UPPER".into(), Uppercase { repository: "library/UPPER".into() }),
            ("a b".into(), Format),
            ("".into(), Format),
            ("x:".into(), Format),
            (":x".into(), Format),
            ("x:-a".into(), Format),
            ("x:.a".into(), Format),
            ("x:a/b".into(), Format),
            ("x@sha256:abc".into(), Format),
            ("a//b".into(), Format),
            ("a/-b".into(), Format),
            ("a/b-".into(), Format),
            ("a..b/c/d".into(), Format),
            ("a_.b".into(), Format),
            ("reg:port/x".into(), Format),
            ("-reg.io/x".into(), Format),
            ("[::1.2]/x".into(), Format),
            ("ubuntu\n".into(), Format),
            (long_tag, Format),
            (hex.clone(), HexName(hex.clone())),
            (long_name, TooLong),
            (format!("x@md5:{hex}"), DigestAlgorithm),
            (format!("x@foo:{}", "a".repeat(40)), DigestAlgorithm),
            (format!("x@sha256:{}", "a".repeat(40)), DigestLength),
            (format!("x@sha256:{upper_hex}"), DigestFormat),
        ];
        for (input, want) in cases {
            match Reference::parse(&input) {
                Err(Error::InvalidReference { input: i, reason }) => {
                    assert_eq!(reason, want, "{input:?}");
                    assert_eq!(i, truncate(&input));
                }
                other => panic!("{input:?}: expected {want:?}, got {other:?}"),
            }
        }
        // The messages, word for word.
        for (input, message) in [
            ("UPPER", "invalid reference format: repository name (library/UPPER) must be lowercase"),
            ("a b", "invalid reference format"),
            ("x@md5:0123456789abcdef0123456789abcdef", "unsupported digest algorithm"),
        ] {
            assert_eq!(Reference::parse(input).unwrap_err().to_string(), message);
        }
        assert_eq!(
            Reference::parse(&hex).unwrap_err().to_string(),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(
            Reference::parse(&"a".repeat(240)).unwrap_err().to_string(),
            "repository name must not be more than 255 characters"
        );
    }

    #[test]
    fn accepts_what_docker_accepts() {
        let max_tag = format!("x:{}", "a".repeat(128));
        let hex = "0123456789abcdef".repeat(4);
        for (input, familiar) in [
            ("Reg.io/x", "Reg.io/x:latest"),
            ("reg:99999999/x", "reg:99999999/x:latest"),
            ("A/b", "A/b:latest"),
            ("a_b/c__d/e---f.g", "a_b/c__d/e---f.g:latest"),
            (max_tag.as_str(), max_tag.as_str()),
            ("x:_A.b-9", "x:_A.b-9"),
            (&format!("sha256:{hex}"), &format!("sha256:{hex}")),
        ] {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{input} round trip");
        }
    }

    #[test]
    fn new_tags_refuse_digests_and_the_repository_sha256() {
        let hex = "0123456789abcdef".repeat(4);
        for (input, want) in [
            (format!("sha256:{hex}"), ReferenceError::DigestAlgorithmAsName),
            ("sha256".to_owned(), ReferenceError::DigestAlgorithmAsName),
            ("docker.io/library/sha256:x".to_owned(), ReferenceError::DigestAlgorithmAsName),
            (format!("x@sha256:{hex}"), ReferenceError::TagWithDigest),
            (format!("x:1@sha256:{hex}"), ReferenceError::TagWithDigest),
        ] {
            match Reference::parse_tag(&input) {
                Err(Error::InvalidReference { reason, .. }) => assert_eq!(reason, want, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        // `sha256` elsewhere than Docker Hub's top level is an ordinary name.
        assert_eq!(Reference::parse_tag("me/sha256:1").unwrap().familiar(), "me/sha256:1");
        assert_eq!(Reference::parse_tag("x").unwrap().familiar(), "x:latest");
    }

    #[test]
    fn names_in_messages_read_as_docker_reads_them() {
        let hex = "0123456789abcdef".repeat(4);
        for (input, shown) in [
            ("nope".to_owned(), "nope:latest".to_owned()),
            ("nope:1".to_owned(), "nope:1".to_owned()),
            ("docker.io/library/nope".to_owned(), "nope:latest".to_owned()),
            ("abcdef012345".to_owned(), "abcdef012345:latest".to_owned()),
            (hex.clone(), format!("sha256:{hex}")),
            (format!("sha256:{hex}"), format!("sha256:{hex}")),
            (format!("nope@sha256:{hex}"), format!("nope@sha256:{hex}")),
            ("Not A Ref".to_owned(), "Not A Ref".to_owned()),
        ] {
            assert_eq!(message_name(&input), shown, "{input}");
        }
    }
}
