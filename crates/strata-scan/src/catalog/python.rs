//! Python distributions: `<site>/<name>-<version>.dist-info/METADATA` (name, version,
//! license) and `RECORD` (the files it installed, relative to `<site>`).

use super::Found;
use super::control::{field, stanzas};
use crate::error::Result;
use crate::package::{Kind, Package, purl};
use crate::root::Root;

pub(crate) fn catalog(root: &dyn Root, found: &mut Found) -> Result<()> {
    let metas: Vec<String> = found.files.iter().filter(|f| f.ends_with(".dist-info/METADATA")).cloned().collect();
    let wanted: Vec<String> =
        metas.iter().flat_map(|m| [m.clone(), format!("{}/RECORD", m.trim_end_matches("/METADATA"))]).collect();
    let contents = root.read_many(&wanted)?;
    for meta in metas {
        let Some(bytes) = contents.get(&meta) else { continue };
        let text = super::text(bytes);
        let Some(headers) = stanzas(&text, true).into_iter().next() else { continue };
        let (Some(name), Some(version)) = (field(&headers, "Name"), field(&headers, "Version")) else { continue };
        let license = field(&headers, "License-Expression")
            .or_else(|| field(&headers, "License").filter(|l| !l.is_empty() && !l.contains('\n') && l.len() < 100))
            .map(str::to_owned)
            .or_else(|| {
                let classifiers: Vec<&str> = headers
                    .iter()
                    .filter(|(k, v)| k.eq_ignore_ascii_case("Classifier") && v.starts_with("License ::"))
                    .filter_map(|(_, v)| v.rsplit(" :: ").next())
                    .collect();
                (!classifiers.is_empty()).then(|| classifiers.join(" AND "))
            });
        let dist_info = meta.trim_end_matches("/METADATA");
        let site = dist_info.rsplit_once('/').map_or("", |(s, _)| s);
        let mut files = Vec::new();
        if let Some(rec) = contents.get(&format!("{dist_info}/RECORD")) {
            for line in super::text(rec).lines() {
                if let Some(p) = record_path(line).and_then(|p| join(site, &p)) {
                    files.push(p);
                }
            }
        }
        let files = crate::Files::sorted(files.iter().map(String::as_str));
        let norm = normalize(name);
        found.packages.push(Package {
            kind: Kind::Python,
            purl: purl(Kind::Python, None, &norm, version, &[]),
            name: name.to_owned(),
            version: version.to_owned(),
            arch: None,
            source: None,
            source_version: None,
            license,
            location: meta.clone(),
            record: Some(meta.clone()),
            files,
            layer: None,
            changed_in: Vec::new(),
        });
    }
    Ok(())
}

/// PEP 503 normalisation: lower case, runs of `-_.` as one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The path column of a RECORD line (CSV: quoted when it holds a comma).
fn record_path(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        return None;
    }
    let p = line.split(',').next()?;
    (!p.is_empty()).then(|| p.to_owned())
}

/// `site` joined with a relative RECORD path (`../../../bin/x` climbs out of it);
/// `None` for a path that leaves the root.
fn join(site: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> =
        if rel.starts_with('/') { Vec::new() } else { site.split('/').filter(|s| !s.is_empty()).collect() };
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn record_paths() {
        assert_eq!(super::record_path("\"a,b.py\",sha256=x,1").as_deref(), Some("a,b.py"));
        assert_eq!(super::join("usr/lib/python3/site-packages", "../../../bin/pip").as_deref(), Some("usr/bin/pip"));
        assert_eq!(super::normalize("Foo_Bar.baz"), "foo-bar-baz");
    }
}
