//! Turning what a user types (`tomcat02:1.0`, `ubuntu`, `sha256:…`, `3f2a9c`) into a
//! descriptor in the store.

use strata_spec::{Descriptor, Digest, Reference};

/// How a name matched.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, one per lookup
pub(crate) enum Match {
    /// A ref name in `index.json`, by exact string or normalised reference.
    Ref(String, Descriptor),
    /// A digest (full) to look up among manifests and configs.
    Digest(Digest),
    /// A hex prefix of an image id or manifest digest.
    Prefix(String),
    /// Nothing matches a ref, and the input is not an id either.
    None,
}

/// Shortest hex prefix accepted as an image id (docker accepts any unique prefix; very
/// short ones collide constantly and are more likely typos of a tag).
pub(crate) const MIN_PREFIX: usize = 4;

/// Find `input` among `refs` (name, descriptor), or classify it as a digest or prefix.
pub(crate) fn classify(refs: &[(String, Descriptor)], input: &str) -> Match {
    // 1. The exact ref name, as umoci, skopeo and strata write them.
    if let Some((n, d)) = refs.iter().find(|(n, _)| n == input) {
        return Match::Ref(n.clone(), d.clone());
    }
    // 2. `name@sha256:…` and `sha256:…`.
    if let Some((_, digest)) = input.rsplit_once('@')
        && let Ok(d) = Digest::parse(digest)
    {
        return Match::Digest(d);
    }
    if let Ok(d) = Digest::parse(input) {
        return Match::Digest(d);
    }
    // 3. The same reference spelled differently (`ubuntu` = `docker.io/library/ubuntu:latest`).
    if let Ok(want) = Reference::parse(input)
        && let Some((n, d)) = refs.iter().find(|(n, _)| Reference::parse(n).is_ok_and(|r| r == want))
    {
        return Match::Ref(n.clone(), d.clone());
    }
    // 4. A hex prefix (with or without `sha256:`), like docker's short image ids.
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if hex.len() >= MIN_PREFIX
        && hex.len() <= 64
        && hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Match::Prefix(hex.to_owned());
    }
    Match::None
}

/// The name to store for a tag the user typed: the familiar form of the normalised
/// reference (`tomcat02` -> `tomcat02:latest`, `docker.io/library/ubuntu` ->
/// `ubuntu:latest`, `127.0.0.1:5000/base:v1` unchanged). Names that are not references
/// (`Base_v1`) are stored as given, as other layout tools do.
pub fn normalize_tag(name: &str) -> String {
    match Reference::parse(name) {
        Ok(r) if r.digest().is_none() => r.familiar(),
        _ => name.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use strata_spec::MediaType;

    fn d(n: u8) -> Descriptor {
        Descriptor::new(MediaType::OciManifest, Digest::sha256_of(&[n]), 1)
    }

    #[test]
    fn matches_refs_then_digests_then_prefixes() {
        let refs = vec![
            ("base".to_owned(), d(1)),
            ("tomcat02:1.0".to_owned(), d(2)),
            ("docker.io/library/ubuntu:22.04".to_owned(), d(3)),
            ("127.0.0.1:5000/base:latest".to_owned(), d(4)),
        ];
        assert_eq!(classify(&refs, "base"), Match::Ref("base".into(), d(1)));
        assert_eq!(classify(&refs, "tomcat02:1.0"), Match::Ref("tomcat02:1.0".into(), d(2)));
        assert_eq!(classify(&refs, "docker.io/library/tomcat02:1.0"), Match::Ref("tomcat02:1.0".into(), d(2)));
        assert_eq!(classify(&refs, "ubuntu:22.04"), Match::Ref("docker.io/library/ubuntu:22.04".into(), d(3)));
        assert_eq!(classify(&refs, "127.0.0.1:5000/base"), Match::Ref("127.0.0.1:5000/base:latest".into(), d(4)));
        let full = Digest::sha256_of(b"x");
        assert_eq!(classify(&refs, full.as_str()), Match::Digest(full.clone()));
        assert_eq!(classify(&refs, &format!("ubuntu@{full}")), Match::Digest(full.clone()));
        assert_eq!(classify(&refs, &full.hex()[..12]), Match::Prefix(full.hex()[..12].into()));
        assert_eq!(classify(&refs, "nope:1"), Match::None);
        assert_eq!(classify(&refs, "abc"), Match::None);
    }

    #[test]
    fn tags_are_stored_in_familiar_form() {
        assert_eq!(normalize_tag("tomcat02"), "tomcat02:latest");
        assert_eq!(normalize_tag("tomcat02:1.0"), "tomcat02:1.0");
        assert_eq!(normalize_tag("docker.io/library/ubuntu"), "ubuntu:latest");
        assert_eq!(normalize_tag("127.0.0.1:5000/base:latest"), "127.0.0.1:5000/base:latest");
        assert_eq!(normalize_tag("Base_v1"), "Base_v1");
        assert_eq!(split_name("tomcat02:1.0"), ("tomcat02".into(), "1.0".into()));
        assert_eq!(split_name("base"), ("<none>".into(), "base".into()));
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
