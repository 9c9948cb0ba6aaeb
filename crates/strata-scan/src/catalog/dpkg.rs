//! dpkg: `var/lib/dpkg/status` (with the files each package owns in
//! `var/lib/dpkg/info/<name>[:<arch>].list`), and `var/lib/dpkg/status.d/<name>` as
//! distroless images write it (files in `<name>.md5sums`).

use super::Found;
use super::control::{field, stanzas};
use crate::error::Result;
use crate::package::{Distro, Kind, Package, purl};
use crate::root::Root;

/// The status database.
pub const STATUS: &str = "var/lib/dpkg/status";
/// The distroless per-package status directory.
pub const STATUS_D: &str = "var/lib/dpkg/status.d";
const INFO: &str = "var/lib/dpkg/info";

pub(crate) fn catalog(root: &dyn Root, distro: Option<&Distro>, found: &mut Found) -> Result<()> {
    if let Some(bytes) = root.read(STATUS)? {
        let text = String::from_utf8_lossy(&bytes);
        let packages = parse(&text, STATUS, distro);
        let lists = |p: &Package| {
            let arch = p.arch.clone().unwrap_or_default();
            [format!("{INFO}/{}:{arch}.list", p.name), format!("{INFO}/{}.list", p.name)]
        };
        let wanted: Vec<String> = packages.iter().flat_map(lists).collect();
        let contents = root.read_many(&wanted)?;
        for mut p in packages {
            for l in lists(&p) {
                if let Some(b) = contents.get(&l) {
                    p.files = owned_files(root, String::from_utf8_lossy(b).lines());
                    p.record = Some(l);
                    break;
                }
            }
            found.packages.push(p);
        }
    }
    let prefix = format!("{STATUS_D}/");
    let mut names: Vec<&String> = found.files.iter().filter(|f| f.starts_with(&prefix)).collect();
    names.sort();
    let wanted: Vec<String> = names
        .iter()
        .filter(|f| f.strip_prefix(&prefix).is_some_and(|r| !r.contains('/')))
        .map(|f| (*f).clone())
        .collect();
    let contents = root.read_many(&wanted)?;
    for f in names {
        let Some(rest) = f.strip_prefix(&prefix) else { continue };
        if rest.contains('/') || rest.ends_with(".md5sums") {
            continue;
        }
        let Some(bytes) = contents.get(f) else { continue };
        let text = String::from_utf8_lossy(bytes);
        for mut p in parse(&text, f, distro) {
            if let Some(b) = contents.get(&format!("{f}.md5sums")) {
                let text = String::from_utf8_lossy(b);
                let paths = text.lines().filter_map(|l| l.split_once("  ").map(|(_, p)| p));
                p.files = owned_files(root, paths);
            }
            p.record = Some(f.to_owned());
            found.packages.push(p);
        }
    }
    Ok(())
}

/// The paths of a `.list` or `.md5sums` file, without the leading `/`, directories left
/// out (every package lists `/usr`; a directory says nothing about who made it).
fn owned_files<'a>(root: &dyn Root, lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = lines
        .map(|l| l.trim_end().trim_start_matches('/'))
        .filter(|l| !l.is_empty() && *l != ".")
        .filter(|l| !root.is_dir(l))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The packages of a status file's text, in file order: those whose `Status` says they
/// are installed or half way there (dpkg-query lists all but `not-installed` and
/// `config-files`, which own no program files).
pub(crate) fn parse(text: &str, location: &str, distro: Option<&Distro>) -> Vec<Package> {
    let mut out = Vec::new();
    for s in stanzas(text, false) {
        let (Some(name), Some(version)) = (field(&s, "Package"), field(&s, "Version")) else { continue };
        let state = field(&s, "Status").and_then(|st| st.split_whitespace().nth(2)).unwrap_or("installed");
        if matches!(state, "not-installed" | "config-files") {
            continue;
        }
        let arch = field(&s, "Architecture").map(str::to_owned);
        // `Source: name (version)` when the source version differs.
        let (source, source_version) = match field(&s, "Source") {
            Some(src) => match src.split_once(' ') {
                Some((n, v)) => {
                    (Some(n.to_owned()), Some(v.trim_matches(|c| c == '(' || c == ')' || c == ' ').to_owned()))
                }
                None => (Some(src.to_owned()), None),
            },
            None => (None, None),
        };
        let ns = distro.map_or("debian", |d| d.id.as_str());
        let dq = distro.map(Distro::qualifier).unwrap_or_default();
        let mut q = vec![("arch", arch.as_deref().unwrap_or("")), ("distro", dq.as_str())];
        let upstream = source.as_deref().filter(|s| *s != name).map(|s| match &source_version {
            Some(v) => format!("{s}@{v}"),
            None => s.to_owned(),
        });
        if let Some(u) = &upstream {
            q.push(("upstream", u));
        }
        let purl = purl(Kind::Deb, Some(ns), name, version, &q);
        out.push(Package {
            kind: Kind::Deb,
            name: name.to_owned(),
            version: version.to_owned(),
            arch,
            source,
            source_version,
            license: None,
            purl,
            location: location.to_owned(),
            record: None,
            files: Vec::new(),
            layer: None,
            changed_in: Vec::new(),
        });
    }
    out
}
