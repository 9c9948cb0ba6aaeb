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

/// Split a stored ref name into (repository, tag) for listing: `tomcat02:1.0` ->
/// (`tomcat02`, `1.0`); a bare layout tag such as umoci's `base` -> (`base`, `<none>`)...
/// unless it parses as a reference without a tag, in which case it is shown as a tag of
/// the layout itself.
pub fn split_name(name: &str) -> (String, String) {
    match Reference::parse_exact(name) {
        Ok(r) if r.tag().is_some() => (r.familiar_name(), r.tag().unwrap_or_default().to_owned()),
        _ => ("<none>".to_owned(), name.to_owned()),
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
}
