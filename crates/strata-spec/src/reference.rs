//! Image references: `[registry[:port]/]repository[:tag][@digest]`, with Docker Hub
//! normalisation (`ubuntu` is `docker.io/library/ubuntu:latest`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

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
    /// Parse a reference and normalise it: Docker Hub is the default registry,
    /// `library/` the default namespace there, `latest` the default tag when neither a
    /// tag nor a digest is given.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let mut r = Reference::parse_exact(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Parse a reference without adding the default tag.
    pub fn parse_exact(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::reference(input, reason);
        if input.is_empty() {
            return Err(bad("empty"));
        }
        if input.len() > MAX_NAME_LEN + 1 + MAX_TAG_LEN + 1 + 135 {
            return Err(bad("too long"));
        }
        if input.len() == 64 && input.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("a 64-character hex string is an image id, not a repository name"));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d).map_err(|e| bad(&e.reason))?)),
            None => (input, None),
        };
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if !name_tag[i..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
            _ => (name_tag, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|r| bad(&r))?;
        }
        if name.is_empty() {
            return Err(bad("empty repository name"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if looks_like_registry(first) => (first, rest),
            _ => (DOCKER_HUB, name),
        };
        validate_registry(registry).map_err(|r| bad(&r))?;
        let registry = if registry == "index.docker.io" { DOCKER_HUB } else { registry };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        validate_repository(&repository).map_err(|r| bad(&r))?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }
        Ok(Reference { registry: registry.to_owned(), repository, tag: tag.map(str::to_owned), digest })
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
        validate_tag(tag).map_err(|r| Error::reference(tag, r))?;
        Ok(Reference { tag: Some(tag.to_owned()), digest: None, ..self.clone() })
    }

    /// This reference pinned to `digest` (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference { digest: Some(digest), ..self.clone() }
    }
}

fn looks_like_registry(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|c| c.is_ascii_uppercase())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("empty tag".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("tag longer than {MAX_TAG_LEN} characters"));
    }
    let ok_first = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let ok = |c: u8| ok_first(c) || c == b'.' || c == b'-';
    let b = tag.as_bytes();
    if !ok_first(b[0]) || !b.iter().all(|&c| ok(c)) {
        return Err(format!("invalid tag {tag:?}: letters, digits, '_', '.', '-' only, not starting with '.' or '-'"));
    }
    Ok(())
}

fn validate_registry(reg: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = reg.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("unterminated IPv6 address")?;
        if v6.is_empty() || !v6.bytes().all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.') {
            return Err(format!("invalid IPv6 address in registry {reg:?}"));
        }
        match after {
            "" => (None, None),
            p => (None, Some(p.strip_prefix(':').ok_or(format!("invalid registry {reg:?}"))?)),
        }
    } else {
        match reg.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(reg), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err("empty registry host".into());
        }
        for comp in host.split('.') {
            let b = comp.as_bytes();
            let valid = !b.is_empty()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-';
            if !valid {
                return Err(format!("invalid registry host {host:?}"));
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("invalid registry port {port:?}"));
    }
    Ok(())
}

fn validate_repository(repo: &str) -> Result<(), String> {
    for comp in repo.split('/') {
        if comp.is_empty() {
            return Err("empty path component in repository name".into());
        }
        if comp.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err("repository name must be lowercase".into());
        }
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(format!("path component {comp:?} must start and end with a letter or digit"));
        }
        // Separators: one '.', one or two '_', or any number of '-'.
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
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err(format!("invalid separator {sep:?} in path component {comp:?}"));
            }
        }
    }
    Ok(())
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

    #[test]
    fn rejects_bad_references() {
        let long = "a".repeat(300);
        for bad in [
            "",
            "Ubuntu",
            "ubuntu:",
            "ubuntu:-x",
            "ubuntu:.x",
            "ubuntu:a/b",
            ":tag",
            "ubuntu@sha256:abc",
            "ubuntu@md5:abc",
            "a//b",
            "a/-b",
            "a/b-",
            "a..b/c/d",
            "a_.b",
            "reg:port/x",
            "reg:99999999/x",
            "-reg.io/x",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "ubuntu latest",
            "ubuntu\n",
            long.as_str(),
        ] {
            assert!(Reference::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
