//! Platforms (`linux/amd64`, `linux/arm64/v8`) and picking one out of an index.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, truncate};
use crate::json::json_object;

json_object! {
    /// The platform an image runs on, as in an index entry or a config.
    pub struct Platform {
        /// CPU architecture in Go's names (`amd64`, `arm64`, `arm`, `386`, `s390x`...).
        req architecture: String = "architecture",
        /// Operating system in Go's names (`linux`, `windows`).
        req os: String = "os",
        /// OS version (Windows).
        opt os_version: String = "os.version",
        /// Required OS features (Windows).
        opt os_features: Vec<String> = "os.features",
        /// CPU variant (`v7`, `v8`).
        opt variant: String = "variant",
        /// Reserved by the spec.
        opt features: Vec<String> = "features",
    }
}

impl Platform {
    /// A platform from its parts, normalised (`aarch64` becomes `arm64`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let (architecture, variant) = normalize_arch(architecture, variant);
        Platform { architecture, os: os.to_ascii_lowercase(), variant, ..Default::default() }
    }

    /// The platform of the running machine (`linux/amd64` on an x86-64 Linux host).
    pub fn host() -> Self {
        let arch = std::env::consts::ARCH;
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        // Containers for a macOS host are Linux containers in a VM.
        let os = if os == "darwin" { "linux" } else { os };
        Platform::new(os, arch, None)
    }

    /// Parse `os/arch[/variant]` (the `--platform` syntax of docker and skopeo).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidPlatform { input: truncate(s), reason: reason.to_owned() };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty component; expected os/arch[/variant]"));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(bad("expected os/arch[/variant]")),
        }
    }

    /// This platform with architecture and variant normalised.
    pub fn normalized(&self) -> Self {
        let (architecture, variant) = normalize_arch(&self.architecture, self.variant.as_deref());
        Platform { architecture, variant, os: self.os.to_ascii_lowercase(), ..self.clone() }
    }

    /// How well `self` (a candidate in an index) satisfies `want`: `None` if it does not,
    /// otherwise a score where higher is better (an exact variant beats a missing one).
    pub fn match_score(&self, want: &Platform) -> Option<u32> {
        let have = self.normalized();
        let want = want.normalized();
        if have.os != want.os || have.architecture != want.architecture {
            return None;
        }
        let mut score = 1;
        match (&have.variant, &want.variant) {
            (Some(h), Some(w)) if h == w => score += 2,
            (Some(h), Some(w)) => {
                // An arm v7 machine runs v6 and v5 images too; prefer the closest.
                let num = |v: &str| v.trim_start_matches('v').parse::<u32>().ok();
                match (num(h), num(w)) {
                    (Some(h), Some(w)) if want.architecture == "arm" && h < w => score += 1,
                    _ => return None,
                }
            }
            (None, Some(_)) | (Some(_), None) | (None, None) => {}
        }
        if let Some(v) = &want.os_version
            && have.os_version.as_ref() == Some(v)
        {
            score += 1;
        }
        Some(score)
    }

    /// Whether `self` satisfies `want`.
    pub fn matches(&self, want: &Platform) -> bool {
        self.match_score(want).is_some()
    }
}

/// Go's names for architectures, and the default variants containerd assumes.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.map(str::to_ascii_lowercase);
    let (a, v): (&str, Option<String>) = match arch.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64", variant.filter(|v| v != "v1")),
        "i386" | "i486" | "i586" | "i686" | "386" => ("386", variant),
        "aarch64" | "arm64" => ("arm64", variant.filter(|v| v != "v8" && v != "8")),
        "armhf" => ("arm", Some("v7".into())),
        "armel" => ("arm", Some("v6".into())),
        "arm" => ("arm", Some(variant.unwrap_or_else(|| "v7".into()))),
        "ppc64le" | "powerpc64le" => ("ppc64le", variant),
        other => return (other.to_owned(), variant),
    };
    (a.to_owned(), v)
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Platform::parse(s)
    }
}

/// Pick the best entry for `want` among `candidates` (index entries' platforms).
/// Entries without a platform never match. Returns the index into `candidates`.
pub fn select_platform<'a, I>(candidates: I, want: &Platform) -> Option<usize>
where
    I: IntoIterator<Item = Option<&'a Platform>>,
{
    let mut best: Option<(u32, usize)> = None;
    for (i, p) in candidates.into_iter().enumerate() {
        if let Some(score) = p.and_then(|p| p.match_score(want))
            && best.is_none_or(|(s, _)| score > s)
        {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/aarch64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm").unwrap().to_string(), "linux/arm/v7");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selects_the_closest_platform() {
        let cands = [
            Some(Platform::parse("linux/arm/v6").unwrap()),
            Some(Platform::parse("linux/amd64").unwrap()),
            None,
            Some(Platform::parse("linux/arm/v7").unwrap()),
            Some(Platform::parse("linux/arm64/v8").unwrap()),
        ];
        let pick = |w: &str| select_platform(cands.iter().map(Option::as_ref), &Platform::parse(w).unwrap());
        assert_eq!(pick("linux/amd64"), Some(1));
        assert_eq!(pick("linux/arm/v7"), Some(3));
        assert_eq!(pick("linux/arm/v6"), Some(0));
        assert_eq!(pick("linux/arm64"), Some(4));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), None);
    }
}
