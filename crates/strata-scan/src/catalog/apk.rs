//! apk: `lib/apk/db/installed`, one stanza of `X:value` lines per package (`P` name,
//! `V` version, `A` arch, `L` license, `o` origin; `F` a directory and `R` the files
//! in it that the package owns).

use super::Found;
use crate::error::Result;
use crate::package::{Distro, Kind, Package, purl};
use crate::root::Root;

/// The installed database.
pub const INSTALLED: &str = "lib/apk/db/installed";

pub(crate) fn catalog(root: &dyn Root, distro: Option<&Distro>, found: &mut Found) -> Result<()> {
    let Some(bytes) = root.read(INSTALLED)? else { return Ok(()) };
    let text = super::text(&bytes);
    for p in parse(&text, distro) {
        found.packages.push(p);
    }
    Ok(())
}

#[derive(Default)]
struct Draft {
    name: String,
    version: String,
    arch: Option<String>,
    license: Option<String>,
    origin: Option<String>,
    files: Vec<String>,
}

/// The packages of an `installed` file, in file order.
pub(crate) fn parse(text: &str, distro: Option<&Distro>) -> Vec<Package> {
    let mut out = Vec::new();
    let mut cur = Draft::default();
    let mut dir = String::new();
    let mut finish = |d: Draft| {
        if d.name.is_empty() || d.version.is_empty() {
            return;
        }
        let ns = distro.map_or("alpine", |d| d.id.as_str());
        let dq = distro.map(Distro::qualifier).unwrap_or_default();
        let mut q = vec![("arch", d.arch.as_deref().unwrap_or("")), ("distro", dq.as_str())];
        if let Some(o) = d.origin.as_deref().filter(|o| *o != d.name) {
            q.push(("upstream", o));
        }
        let purl = purl(Kind::Apk, Some(ns), &d.name, &d.version, &q);
        let files = crate::Files::sorted(d.files.iter().map(String::as_str));
        out.push(Package {
            kind: Kind::Apk,
            name: d.name,
            version: d.version,
            arch: d.arch,
            source: d.origin,
            source_version: None,
            license: d.license,
            purl,
            location: INSTALLED.to_owned(),
            record: None,
            files,
            layer: None,
            changed_in: Vec::new(),
        });
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            finish(std::mem::take(&mut cur));
            dir.clear();
            continue;
        }
        let Some((k, v)) = line.split_once(':') else { continue };
        match k {
            "P" => cur.name = v.to_owned(),
            "V" => cur.version = v.to_owned(),
            "A" => cur.arch = Some(v.to_owned()),
            "L" => cur.license = Some(v.to_owned()).filter(|l| !l.is_empty()),
            "o" => cur.origin = Some(v.to_owned()),
            "F" => dir = v.trim_matches('/').to_owned(),
            "R" if dir.is_empty() => cur.files.push(v.to_owned()),
            "R" => cur.files.push(format!("{dir}/{v}")),
            _ => {}
        }
    }
    finish(cur);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn stanzas() {
        let t = "C:Q1x=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\nF:bin\nR:busybox\n";
        let p = super::parse(t, None);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].files, ["lib/ld-musl-x86_64.so.1", "lib/libc.musl-x86_64.so.1"]);
        assert_eq!(p[1].purl, "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64");
    }
}
