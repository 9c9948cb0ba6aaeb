//! Turning what a user types (`tomcat02:1.0`, `ubuntu`, `sha256:…`, `3f2a9c`) into a
//! descriptor in the store.

use std::collections::HashMap;

use strata_spec::{AnyReference, DEFAULT_TAG, Descriptor, Digest, Reference, ReferenceError};

/// How a name matched.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, one per lookup
pub(crate) enum Match {
    /// A tag: a ref name in `index.json`, by exact string or normalised reference.
    Ref(String, Descriptor),
    /// A whole digest, to look up among image ids and manifests: `sha256:<hex>`, 64 hex
    /// digits, or `name@sha256:<hex>`.
    Digest(Digest),
    /// The start of an image id, any length (`3f2a`, `3`, `sha256:3f2a`).
    Prefix(String),
    /// Nothing matches a tag, and the input is not an id either.
    None,
    /// Not a reference, and not a name the layout has either: docker's reason.
    Invalid(strata_spec::Error),
}

/// [`classify`] against the refs of `store`, reading only those that can match: the name
/// as typed, and, when no ref has that name, the names that hold the last component of
/// its repository path (every spelling of a reference does: `ubuntu`, `library/ubuntu`,
/// `docker.io/library/ubuntu:latest`). A name as typed wins over every other spelling
/// in [`classify`], so those are looked for only when it names nothing. On a big index
/// this is a lookup in the store's index table, not the building of every descriptor.
pub(crate) fn classify_in(store: &dyn strata_store::Backend, input: &str) -> strata_store::Result<Match> {
    let last = match AnyReference::parse(input) {
        Ok(AnyReference::Digest(d)) => return Ok(Match::Digest(d)),
        Ok(AnyReference::Named(r)) => r.repository().rsplit('/').next().map(str::to_owned),
        Err(_) => None,
    };
    let exact = store.refs_named(input)?;
    if !exact.is_empty() {
        return Ok(classify(&exact, input));
    }
    let refs = match last {
        Some(l) => store.refs_containing(&l)?,
        None => Vec::new(),
    };
    Ok(classify(&refs, input))
}

/// Find `input` among `refs` (name, descriptor) the way docker resolves a name: an id or
/// digest first (so no tag can hide an image id), then a tag, then the start of an id.
/// Names another tool stored that are not references (umoci's `Base_v1`) are found as
/// they are.
pub(crate) fn classify(refs: &[(String, Descriptor)], input: &str) -> Match {
    let exact = || refs.iter().find(|(n, _)| n == input).map(|(n, d)| Match::Ref(n.clone(), d.clone()));
    let want = match AnyReference::parse(input) {
        Ok(AnyReference::Digest(d)) => return Match::Digest(d),
        Ok(AnyReference::Named(r)) => r,
        Err(e) => return exact().unwrap_or(Match::Invalid(e)),
    };
    if let Some(d) = want.digest() {
        return Match::Digest(d.clone());
    }
    if let Some(m) = exact() {
        return m;
    }
    // The same reference spelled differently (`ubuntu` = `docker.io/library/ubuntu:latest`).
    let want = if want.tag().is_none() { want.with_tag(DEFAULT_TAG).unwrap_or(want) } else { want };
    if let Some((n, d)) = refs.iter().find(|(n, _)| Reference::parse(n).is_ok_and(|r| r == want)) {
        return Match::Ref(n.clone(), d.clone());
    }
    // The start of an image id (with or without `sha256:`), like docker's short ids.
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Match::Prefix(hex.to_owned());
    }
    // `sha256:` and then no id: a digest typed wrong (`sha256:zz`), which no tag named
    // (docker's `sha256` repository is refused when tagging).
    if input.starts_with("sha256:") {
        let reason = if hex.len() > 64 { ReferenceError::DigestLength } else { ReferenceError::DigestFormat };
        return Match::Invalid(strata_spec::Error::InvalidReference { input: input.to_owned(), reason });
    }
    Match::None
}

/// The name to store for a tag read from a layout or archive another tool wrote: the
/// familiar form of the normalised reference (`tomcat02` -> `tomcat02:latest`,
/// `docker.io/library/ubuntu` -> `ubuntu:latest`, `127.0.0.1:5000/base:v1` unchanged).
/// Names that are not references (`Base_v1`) are kept as given, as other layout tools
/// do. A name a user gives goes through [`new_tag`] instead.
pub fn normalize_tag(name: &str) -> String {
    match Reference::parse(name) {
        Ok(r) if r.digest().is_none() => r.familiar(),
        _ => name.to_owned(),
    }
}

/// The name to store for a tag a user gives (`tag`, `commit`, `import`, `build -t`,
/// `load`): a reference by docker's rules for a new tag ([`Reference::parse_tag`]), in
/// its familiar form (`tomcat02` -> `tomcat02:latest`).
pub fn new_tag(name: &str) -> Result<String, strata_spec::Error> {
    Ok(Reference::parse_tag(name)?.familiar())
}

/// The image reference a stored ref name stands for, by the rule strata applies to
/// every ref name of a layout (in `images`, in `inspect`'s `RepoTags`, in `save`), the
/// rule containerd applies to `org.opencontainers.image.ref.name`:
///
/// - a name with a `/`, `:` or `@` is a reference (`tomcat02:1.0`,
///   `127.0.0.1:5000/base:v1`; `docker.io/library/ubuntu` is `ubuntu:latest`);
/// - a name with none of them (`latest`, `v1`, `base`, as umoci, skopeo's `oci:DIR:TAG`
///   and docker's OCI export write) is a *bare tag*: a tag of the layout, of no
///   repository. It is `None` here, as is a name that is not a valid reference.
pub fn layout_reference(name: &str) -> Option<Reference> {
    if !name.contains(['/', ':', '@']) {
        return None;
    }
    Reference::parse(name).ok()
}

/// The `REPOSITORY:TAG` docker would list for a stored ref name (`tomcat02:1.0`), or
/// `None` for a bare tag or a name that is no reference (see [`layout_reference`]).
pub fn repo_tag(name: &str) -> Option<String> {
    layout_reference(name).filter(|r| r.tag().is_some()).map(|r| r.familiar())
}

/// Split a stored ref name into (repository, tag) for listing: `tomcat02:1.0` ->
/// (`tomcat02`, `1.0`); a bare layout tag such as umoci's `latest` (see
/// [`layout_reference`]) -> (`<none>`, `latest`); a name that is no reference ->
/// (`<none>`, the name); a reference by digest only -> (its repository, `<none>`).
pub fn split_name(name: &str) -> (String, String) {
    match layout_reference(name) {
        Some(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
        None => ("<none>".to_owned(), name.to_owned()),
    }
}

/// [`split_name`] for many names (a listing of a big index, many tags per repository):
/// the repository part of a `repository:tag` name is parsed once, and the tag of each
/// other name of that repository checked on its own.
#[derive(Debug, Default)]
pub(crate) struct NameSplitter {
    /// Repository part as written -> its familiar name, for names that parsed.
    repositories: HashMap<String, String>,
}

impl NameSplitter {
    /// What [`split_name`] says of `name`.
    pub(crate) fn split(&mut self, name: &str) -> (String, String) {
        // `repository:tag`, no digest: the reference grammar checks the two parts apart
        // (the tag has no `/`, `:` or `@`), so a repository part that parsed once with
        // one tag parses with any valid tag, to the same repository.
        let parts = name.rsplit_once(':').filter(|(_, tag)| !name.contains('@') && Reference::is_valid_tag(tag));
        let Some((repository, tag)) = parts else { return split_name(name) };
        if let Some(familiar) = self.repositories.get(repository) {
            return (familiar.clone(), tag.to_owned());
        }
        let split = split_name(name);
        if split.1 == tag {
            self.repositories.insert(repository.to_owned(), split.0.clone());
        }
        split
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_spec::MediaType;

    fn d(n: u8) -> Descriptor {
        Descriptor::new(MediaType::OciManifest, Digest::sha256_of(&[n]), 1)
    }

    fn digest(m: &Match) -> Option<&Digest> {
        match m {
            Match::Digest(d) => Some(d),
            _ => None,
        }
    }

    fn tag(m: &Match) -> Option<(&str, &Descriptor)> {
        match m {
            Match::Ref(n, d) => Some((n, d)),
            _ => None,
        }
    }

    #[test]
    fn matches_ids_and_digests_then_tags_then_prefixes() {
        let full = Digest::sha256_of(b"x");
        let refs = vec![
            ("base".to_owned(), d(1)),
            ("tomcat02:1.0".to_owned(), d(2)),
            ("docker.io/library/ubuntu:22.04".to_owned(), d(3)),
            ("127.0.0.1:5000/base:latest".to_owned(), d(4)),
            // Layout names that are not references, as other tools write them.
            ("Base_v1".to_owned(), d(5)),
            // A tag shaped like an image id (an old strata stored it): it hides nothing.
            (full.to_string(), d(6)),
            ("abc:latest".to_owned(), d(7)),
        ];
        for (input, name, desc) in [
            ("base", "base", d(1)),
            ("tomcat02:1.0", "tomcat02:1.0", d(2)),
            ("docker.io/library/tomcat02:1.0", "tomcat02:1.0", d(2)),
            ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", d(3)),
            ("127.0.0.1:5000/base", "127.0.0.1:5000/base:latest", d(4)),
            ("Base_v1", "Base_v1", d(5)),
            // A tag comes before the start of an id, as in docker.
            ("abc", "abc:latest", d(7)),
        ] {
            assert_eq!(tag(&classify(&refs, input)), Some((name, &desc)), "{input}");
        }
        for input in [full.to_string(), full.hex().to_owned(), format!("ubuntu@{full}")] {
            assert_eq!(digest(&classify(&refs, &input)), Some(&full), "{input}");
        }
        for (input, prefix) in [(&full.hex()[..12], &full.hex()[..12]), ("a", "a"), ("sha256:0f", "0f")] {
            assert!(matches!(classify(&refs, input), Match::Prefix(p) if p == prefix), "{input}");
        }
        assert!(matches!(classify(&refs, "nope:1"), Match::None));
        assert!(matches!(classify(&refs, "abcg"), Match::None));
        for bad in ["UPPER", "a b", "ABC"] {
            assert!(matches!(classify(&refs, bad), Match::Invalid(_)), "{bad}");
        }
    }

    #[test]
    fn tags_are_stored_in_familiar_form() {
        assert_eq!(normalize_tag("tomcat02"), "tomcat02:latest");
        assert_eq!(normalize_tag("tomcat02:1.0"), "tomcat02:1.0");
        assert_eq!(normalize_tag("docker.io/library/ubuntu"), "ubuntu:latest");
        assert_eq!(normalize_tag("127.0.0.1:5000/base:latest"), "127.0.0.1:5000/base:latest");
        assert_eq!(normalize_tag("Base_v1"), "Base_v1");
        assert_eq!(new_tag("tomcat02").unwrap(), "tomcat02:latest");
        assert_eq!(new_tag("docker.io/library/ubuntu:1").unwrap(), "ubuntu:1");
        assert!(new_tag("Base_v1").is_err());
        assert_eq!(split_name("tomcat02:1.0"), ("tomcat02".into(), "1.0".into()));
        assert_eq!(split_name("base"), ("<none>".into(), "base".into()));
    }

    /// The splitter answers as `split_name` does, name for name, in any order: valid and
    /// invalid tags of one repository, registries with ports, digests, bare tags.
    #[test]
    fn the_name_splitter_splits_as_split_name() {
        let digest = format!("base@{}", Digest::sha256_of(b"m"));
        let names = [
            "tomcat02:1.0",
            "tomcat02:2.0",
            "tomcat02:Bad/tag",
            "tomcat02:-bad",
            "docker.io/library/ubuntu:22.04",
            "ubuntu:22.04",
            "docker.io/library/ubuntu:latest",
            "127.0.0.1:5000/base:v1",
            "127.0.0.1:5000/base:v2",
            "127.0.0.1:5000/base",
            "localhost:5000",
            "localhost:5001",
            "Bad:Tag",
            "Bad:tag",
            "a:b:c",
            "a:b:d",
            "latest",
            "scale/f1-l2:t7",
            "scale/f1-l2:t8",
            &digest,
            "base:v1@sha256:0000",
        ];
        let mut splitter = NameSplitter::default();
        for round in 0..2 {
            for name in names.iter().rev().chain(names.iter()) {
                assert_eq!(splitter.split(name), split_name(name), "{name} (round {round})");
            }
        }
    }

    #[test]
    fn bare_layout_tags_have_no_repository() {
        for bare in ["latest", "v1", "base", "Base_v1"] {
            assert_eq!(layout_reference(bare), None, "{bare}");
            assert_eq!(repo_tag(bare), None, "{bare}");
            assert_eq!(split_name(bare), ("<none>".into(), bare.into()));
        }
        for (name, shown) in [
            ("tomcat02:1.0", "tomcat02:1.0"),
            ("docker.io/library/ubuntu", "ubuntu:latest"),
            ("127.0.0.1:5000/base:v1", "127.0.0.1:5000/base:v1"),
        ] {
            assert_eq!(repo_tag(name).as_deref(), Some(shown), "{name}");
        }
        let digest = format!("base@{}", Digest::sha256_of(b"m"));
        assert_eq!(split_name(&digest), ("base".into(), "<none>".into()));
        assert_eq!(repo_tag(&digest), None);
        assert_eq!(split_name("Bad:Tag/x"), ("<none>".into(), "Bad:Tag/x".into()));
    }
}
