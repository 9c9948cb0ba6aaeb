//! dpkg: `var/lib/dpkg/status` (with the files each package owns in
//! `var/lib/dpkg/info/<name>[:<arch>].list`), and `var/lib/dpkg/status.d/<name>` as
//! distroless images write it (files in `<name>.md5sums`).

use std::collections::BTreeSet;

use super::Found;
use super::control::{field, lines, stanzas, stanzas_keeping};
use crate::error::Result;
use crate::files::Files;
use crate::package::{Distro, Kind, Package, purl};
use crate::root::Root;

/// The status database.
pub const STATUS: &str = "var/lib/dpkg/status";
/// The distroless per-package status directory.
pub const STATUS_D: &str = "var/lib/dpkg/status.d";
pub(crate) const INFO: &str = "var/lib/dpkg/info";
/// Where a Debian package keeps its copyright file (Debian Policy 12.5).
pub(crate) const DOC: &str = "usr/share/doc";

pub(crate) fn catalog(root: &dyn Root, distro: Option<&Distro>, found: &mut Found) -> Result<()> {
    // Read as the lists are: lent by a root that has it in memory already.
    let status = root.read_many(&[STATUS.to_owned()])?;
    if let Some(bytes) = status.get(STATUS) {
        let text = super::text(bytes);
        let packages = parse(&text, STATUS, distro);
        // Each package's lists (with and without its architecture) and copyright file.
        let names: Vec<[String; 3]> = packages
            .iter()
            .map(|p| {
                let (name, arch) = (p.name.as_str(), p.arch.as_deref().unwrap_or_default());
                [
                    [INFO, "/", name, ":", arch, ".list"].concat(),
                    [INFO, "/", name, ".list"].concat(),
                    [DOC, "/", name, "/copyright"].concat(),
                ]
            })
            .collect();
        // The lists and the copyright files in one pass over the layers.
        let wanted: Vec<String> = names.iter().flatten().cloned().collect();
        let contents = root.read_many(&wanted)?;
        for (mut p, [list_arch, list, copyright]) in packages.into_iter().zip(names) {
            p.license = contents.get(&copyright).and_then(|b| dep5_license(&super::text(b)));
            for l in [list_arch, list] {
                if let Some(b) = contents.get(&l) {
                    let layers;
                    let text = super::text(b);
                    (p.files, layers) = owned_files(root, lines(&text), line_count(&text));
                    set_layers(root, &mut p, layers, &l);
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
        let text = super::text(bytes);
        for mut p in parse(&text, f, distro) {
            if let Some(b) = contents.get(&format!("{f}.md5sums")) {
                let text = super::text(b);
                let paths = lines(&text).filter_map(|l| l.split_once("  ").map(|(_, p)| p));
                let layers;
                (p.files, layers) = owned_files(root, paths, line_count(&text));
                set_layers(root, &mut p, layers, f);
            }
            p.record = Some(f.to_owned());
            found.packages.push(p);
        }
    }
    Ok(())
}

/// The license of a machine-readable copyright file (DEP-5, `copyright-format/1.0`):
/// the `License:` short names of its `Files:` paragraphs (the first line of each; the
/// rest is the license text), each once in order of appearance, joined with ` AND `
/// (a name with DEP-5's `or`/`and` in it becomes an SPDX-style `OR`/`AND` group in
/// parentheses). A copyright file in free form says nothing machine-readable: `None`,
/// rather than a guess.
pub(crate) fn dep5_license(text: &str) -> Option<String> {
    let all = stanzas(text, false);
    let header = all.first()?;
    let format = field(header, "Format")?;
    if !format.contains("copyright-format/1.0") {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for s in all.iter().filter(|s| field(s, "Files").is_some()) {
        let Some(lic) = field(s, "License") else { continue };
        let short = lic.lines().next().unwrap_or("").trim();
        if short.is_empty() {
            continue;
        }
        let words: Vec<&str> = short.split_whitespace().collect();
        let joined = words
            .iter()
            .map(|w| match *w {
                "or" => "OR",
                "and" => "AND",
                w => w,
            })
            .collect::<Vec<_>>()
            .join(" ");
        let name = if words.len() > 1 { format!("({joined})") } else { joined };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    match names.len() {
        0 => None,
        1 => Some(names.remove(0).trim_start_matches('(').trim_end_matches(')').to_owned()),
        _ => Some(names.join(" AND ")),
    }
}

/// How many lines `text` has, at most: room for its paths.
fn line_count(text: &str) -> usize {
    memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1
}

/// The paths of a `.list` or `.md5sums` file, without the leading `/`, directories left
/// out (every package lists `/usr`; a directory says nothing about who made it), and the
/// layers of those that are there: one lookup per line ([`Root::stat`]).
fn owned_files<'a>(root: &dyn Root, lines: impl Iterator<Item = &'a str>, count: usize) -> (Files, BTreeSet<usize>) {
    let mut layers = BTreeSet::new();
    // Files next to each other are mostly of one layer: the set is asked once for it.
    let mut last = None;
    let mut paths = Vec::with_capacity(count);
    for l in lines.map(|l| l.trim_end().trim_start_matches('/')).filter(|l| !l.is_empty() && *l != ".") {
        match root.stat(l) {
            Some(s) if s.is_dir => continue,
            Some(s) if last != Some(s.layer) => {
                layers.insert(s.layer);
                last = Some(s.layer);
            }
            _ => {}
        }
        paths.push(l);
    }
    (Files::sorted(paths), layers)
}

/// A package's layers from those of its files and of its own record, as
/// [`crate::Inventory::of_root`] gives them (which then need not look its files up
/// again): the first introduced it, the others changed it. Left unset when neither is
/// in the tree.
fn set_layers(root: &dyn Root, p: &mut Package, mut layers: BTreeSet<usize>, record: &str) {
    layers.extend(root.layer(record));
    let mut it = layers.into_iter();
    p.layer = it.next();
    p.changed_in = it.collect();
}

/// The packages of a status file's text, in file order: those whose `Status` says they
/// are installed or half way there (dpkg-query lists all but `not-installed` and
/// `config-files`, which own no program files).
pub(crate) fn parse(text: &str, location: &str, distro: Option<&Distro>) -> Vec<Package> {
    let mut out = Vec::new();
    let ns = distro.map_or("debian", |d| d.id.as_str());
    let dq = distro.map(Distro::qualifier).unwrap_or_default();
    // The fields read below (a status file is mostly descriptions and conffiles).
    let read =
        |k: &str| ["Package", "Version", "Status", "Architecture", "Source"].iter().any(|f| k.eq_ignore_ascii_case(f));
    for s in stanzas_keeping(text, false, read) {
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
            files: Files::new(),
            layer: None,
            changed_in: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::dep5_license;

    #[test]
    fn dep5_licenses() {
        let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n\
                    Files: *\nCopyright: 2020 A\nLicense: GPL-2+\n\n\
                    Files: lib/*\nCopyright: 2021 B\nLicense: LGPL-2.1+ or MIT\n\n\
                    Files: debian/*\nCopyright: 2022 C\nLicense: GPL-2+\n\n\
                    License: GPL-2+\n This program is free software; see: the GPL.\n";
        assert_eq!(dep5_license(dep5).as_deref(), Some("GPL-2+ AND (LGPL-2.1+ OR MIT)"));
        let one = "Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: x\nLicense: Expat\n";
        assert_eq!(dep5_license(one).as_deref(), Some("Expat"));
        // Free-form copyright files (as most of bookworm's older packages): nothing.
        assert_eq!(dep5_license("This is Debian's prepackaged version of foo.\nLicense: GPL\n"), None);
        assert_eq!(dep5_license(""), None);
    }
}
