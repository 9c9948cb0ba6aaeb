//! What the inventory holds: packages, the distribution, package URLs.

use serde::{Deserialize, Serialize};

use crate::files::Files;

/// The kind of package database a package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Debian and Ubuntu: `var/lib/dpkg/status` or `status.d/*`.
    Deb,
    /// Alpine: `lib/apk/db/installed`.
    Apk,
    /// Fedora, RHEL, SUSE: `rpmdb.sqlite`.
    Rpm,
    /// Python distributions: `*.dist-info/METADATA`.
    Python,
    /// npm packages: `node_modules/**/package.json`.
    Npm,
}

impl Kind {
    /// The package URL type (`deb`, `apk`, `rpm`, `pypi`, `npm`).
    pub fn purl_type(self) -> &'static str {
        match self {
            Kind::Deb => "deb",
            Kind::Apk => "apk",
            Kind::Rpm => "rpm",
            Kind::Python => "pypi",
            Kind::Npm => "npm",
        }
    }
}

/// The distribution, from `etc/os-release` (or `usr/lib/os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID`: `debian`, `alpine`, `fedora`...
    pub id: String,
    /// `VERSION_ID`: `12`, `3.19.1`, `39`...
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`: `bookworm`...
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

impl Distro {
    /// Parse an os-release file (`KEY=value` lines, values maybe quoted).
    pub fn parse(text: &str) -> Option<Distro> {
        let mut d = Distro::default();
        for line in text.lines() {
            let Some((k, v)) = line.trim().split_once('=') else { continue };
            let v = unquote(v.trim());
            match k.trim() {
                "ID" => d.id = v,
                "VERSION_ID" => d.version_id = Some(v),
                "VERSION_CODENAME" => d.codename = Some(v),
                "PRETTY_NAME" => d.pretty_name = Some(v),
                _ => {}
            }
        }
        (!d.id.is_empty()).then_some(d)
    }

    /// `debian-12`, `alpine-3.19.1`: the `distro` qualifier of package URLs.
    pub fn qualifier(&self) -> String {
        match &self.version_id {
            Some(v) => format!("{}-{v}", self.id),
            None => self.id.clone(),
        }
    }
}

fn unquote(v: &str) -> String {
    let v = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v);
    let v = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).unwrap_or(v);
    v.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Which database it came from.
    pub kind: Kind,
    /// Its name as the database spells it.
    pub name: String,
    /// Its version as the database spells it (dpkg's `epoch:upstream-revision`,
    /// RPM's `epoch:version-release`).
    pub version: String,
    /// Architecture, when the database has one.
    pub arch: Option<String>,
    /// The source package (dpkg `Source`, apk origin, RPM source RPM's name), when it
    /// differs from nothing: advisories for distributions name source packages.
    pub source: Option<String>,
    /// The source package's version when the database gives one that differs.
    pub source_version: Option<String>,
    /// The license, as the database states it.
    pub license: Option<String>,
    /// The package URL.
    pub purl: String,
    /// The file (inside the image) the package was read from.
    pub location: String,
    /// The file that is this package's own record, when it has one (dpkg's
    /// `info/<name>.list` or `status.d/<name>`, a `METADATA`, a `package.json`).
    pub record: Option<String>,
    /// The files it owns (paths without the leading `/`, directories left out), sorted.
    pub files: Files,
    /// The layer (index, base first) that introduced it, when known.
    pub layer: Option<usize>,
    /// Later layers that changed it (its record or files it owns), in order.
    pub changed_in: Vec<usize>,
}

impl Package {
    /// The name advisories of its ecosystem use: the source package for
    /// distributions (Debian's and Alpine's advisories are per source package), the
    /// name otherwise.
    pub fn advisory_name(&self) -> &str {
        match self.kind {
            Kind::Deb | Kind::Apk => self.source.as_deref().unwrap_or(&self.name),
            _ => &self.name,
        }
    }

    /// The version advisories compare: the source version when there is one.
    pub fn advisory_version(&self) -> &str {
        match self.kind {
            Kind::Deb | Kind::Apk => self.source_version.as_deref().unwrap_or(&self.version),
            _ => &self.version,
        }
    }
}

/// Percent-encode a package URL component: everything but ASCII letters, digits and
/// `.-_~` (the purl spec's unreserved set).
pub fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(&mut out, s);
    out
}

/// [`purl_encode`] of `s` appended to `out`.
fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// A package URL: `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`, qualifiers sorted by key
/// as the spec wants, empty ones left out.
pub fn purl(kind: Kind, namespace: Option<&str>, name: &str, version: &str, qualifiers: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(64 + name.len() + version.len());
    s.push_str("pkg:");
    s.push_str(kind.purl_type());
    s.push('/');
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for (i, part) in ns.split('/').enumerate() {
            if i > 0 {
                s.push('/');
            }
            encode_into(&mut s, part);
        }
        s.push('/');
    }
    encode_into(&mut s, name);
    if !version.is_empty() {
        s.push('@');
        encode_into(&mut s, version);
    }
    let mut q: Vec<_> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort_by_key(|(k, _)| *k);
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        encode_into(&mut s, v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(
            purl(Kind::Deb, Some("debian"), "libc6", "1:2.36-9+deb12u4", &[("arch", "amd64"), ("distro", "debian-12")]),
            "pkg:deb/debian/libc6@1%3A2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(purl(Kind::Npm, Some("@types"), "node", "20.1.0", &[]), "pkg:npm/%40types/node@20.1.0");
        // Every byte outside the unreserved set, as two upper-case hex digits.
        assert_eq!(purl_encode("a b/é~%"), "a%20b%2F%C3%A9~%25");
        assert_eq!(purl(Kind::Rpm, Some("a/b c"), "n", "", &[("z", "1"), ("a", "")]), "pkg:rpm/a/b%20c/n?z=1");
    }

    #[test]
    fn os_release() {
        let d =
            Distro::parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n").unwrap();
        assert_eq!((d.id.as_str(), d.version_id.as_deref()), ("debian", Some("12")));
        assert_eq!(d.qualifier(), "debian-12");
    }
}
