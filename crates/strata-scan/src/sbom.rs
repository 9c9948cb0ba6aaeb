//! SBOMs of an [`Inventory`]: SPDX 2.3 JSON, CycloneDX 1.5 JSON and a table for people.
//!
//! The same inventory gives the same bytes, but for the creation time, which is
//! [`SbomOptions::created`] (`SOURCE_DATE_EPOCH` through [`SbomOptions::from_env`]).
//! Identifiers that must be unique (SPDX's `documentNamespace`, CycloneDX's
//! `serialNumber`) are derived from the image digest and the SBOM's content, so they
//! are stable too.

use serde_json::{Value, json};
use strata_spec::Digest;

use crate::inventory::Inventory;
use crate::license::spdx_license;
use crate::package::Package;

/// The tool named as the SBOMs' creator.
pub const TOOL_NAME: &str = "strata";
/// Its version.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The SBOM formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SbomFormat {
    /// SPDX 2.3, JSON.
    SpdxJson,
    /// CycloneDX 1.5, JSON.
    CycloneDxJson,
    /// A table: name, version, type, layer.
    Table,
}

impl SbomFormat {
    /// The media type an SBOM of this format is stored under as an artifact.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::SpdxJson => "application/spdx+json",
            SbomFormat::CycloneDxJson => "application/vnd.cyclonedx+json",
            SbomFormat::Table => "text/plain",
        }
    }
}

impl std::str::FromStr for SbomFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spdx" | "spdx-json" => Ok(SbomFormat::SpdxJson),
            "cyclonedx" | "cyclonedx-json" | "cdx" => Ok(SbomFormat::CycloneDxJson),
            "table" => Ok(SbomFormat::Table),
            _ => Err(format!("unknown SBOM format {s:?} (spdx-json, cyclonedx-json, table)")),
        }
    }
}

/// How an SBOM is written.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SbomOptions {
    /// Creation time, seconds since the epoch (`None`: now).
    pub created: Option<i64>,
}

impl SbomOptions {
    /// Options with [`SbomOptions::created`] from `SOURCE_DATE_EPOCH` when it is set to
    /// a number (the reproducible-builds convention).
    pub fn from_env() -> SbomOptions {
        let created = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok());
        SbomOptions { created }
    }

    /// Set [`SbomOptions::created`].
    pub fn created(mut self, secs: i64) -> Self {
        self.created = Some(secs);
        self
    }

    /// These options with the creation time fixed (now, when it was not set), so that
    /// several documents made from them carry the same time.
    pub fn pinned(&self) -> SbomOptions {
        let secs = self.created.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        });
        SbomOptions { created: Some(secs) }
    }

    fn timestamp(&self) -> String {
        strata_spec::time::format_rfc3339(self.pinned().created.unwrap_or(0), 0)
    }
}

/// Write the inventory in `format`.
pub fn render(inv: &Inventory, format: SbomFormat, opts: &SbomOptions) -> Vec<u8> {
    match format {
        SbomFormat::SpdxJson => to_json(&spdx(inv, opts)),
        SbomFormat::CycloneDxJson => to_json(&cyclonedx(inv, opts)),
        SbomFormat::Table => table(inv).into_bytes(),
    }
}

/// The annotation of an attached SBOM that says when it was made (image-spec's
/// pre-defined `created` annotation).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Attach the inventory of `image` to it as an SBOM artifact (image-spec 1.1 referrers):
/// the SBOM in `format` (SPDX or CycloneDX JSON), of artifact type and media type
/// [`SbomFormat::media_type`], with the image's manifest as `subject` and the creation
/// time as [`ANNOTATION_CREATED`]. Returns the artifact's descriptor; see
/// [`strata_image::Image::attach`].
pub fn attach(
    image: &strata_image::Image,
    inv: &Inventory,
    format: SbomFormat,
    opts: &SbomOptions,
) -> crate::Result<strata_spec::Descriptor> {
    if format == SbomFormat::Table {
        return Err(crate::Error::Unsupported(
            "a table cannot be attached as an SBOM: use spdx-json or cyclonedx-json",
        ));
    }
    let opts = &opts.pinned();
    let doc = render(inv, format, opts);
    let kind = strata_spec::MediaType::new(format.media_type());
    let notes = std::collections::BTreeMap::from([(ANNOTATION_CREATED.to_owned(), opts.timestamp())]);
    Ok(image.attach(kind.clone(), kind, &doc, notes)?)
}

fn to_json(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The image's name for documents: its name, else its digest.
fn subject_name(inv: &Inventory) -> String {
    inv.image.clone().or_else(|| inv.digest.clone()).unwrap_or_else(|| "rootfs".to_owned())
}

/// A digest of the inventory (what makes document identifiers unique and stable): the
/// digest of its JSON, [`Inventory::content_id`] when the scan knew it.
fn content_id(inv: &Inventory) -> Digest {
    if let Some(d) = &inv.content_id {
        return d.clone();
    }
    // The digest of the inventory's JSON, hashed as it is written (it is as large as the
    // files every package owns).
    let mut w = std::io::BufWriter::with_capacity(1 << 16, strata_spec::HashingWriter::new(std::io::sink()));
    match serde_json::to_writer(&mut w, inv)
        .map_err(std::io::Error::from)
        .and_then(|()| w.into_inner().map_err(|e| e.into_error()))
    {
        Ok(h) => h.finish().1,
        // Writing to a sink does not fail; were it to, the digest of nothing, as before.
        Err(_) => Digest::sha256_of(b""),
    }
}

fn layer_note(inv: &Inventory, p: &Package) -> Option<String> {
    let l = p.layer?;
    let mut s = format!("layer {l}");
    if let Some(r) = inv.layers.get(l) {
        s.push_str(&format!(" ({})", r.diff_id));
    }
    if !p.changed_in.is_empty() {
        let c: Vec<String> = p.changed_in.iter().map(usize::to_string).collect();
        s.push_str(&format!("; changed in layers {}", c.join(", ")));
    }
    Some(s)
}

/// Whether `s` reads as an SPDX license expression (ids joined by AND, OR, WITH, with
/// parentheses): only those go in license fields; anything else is kept as a comment.
pub fn is_spdx_expression(s: &str) -> bool {
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let mut expect_id = true;
    let mut depth = 0i32;
    for t in spaced.split_whitespace() {
        match t {
            "(" if expect_id => depth += 1,
            ")" if !expect_id => depth -= 1,
            "AND" | "OR" | "WITH" if !expect_id => expect_id = true,
            id if expect_id
                && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | ':'))
                && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) =>
            {
                expect_id = false
            }
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    !expect_id && depth == 0
}

/// The SPDX 2.3 document.
pub fn spdx(inv: &Inventory, opts: &SbomOptions) -> Value {
    let name = subject_name(inv);
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": name,
        "versionInfo": inv.digest.clone().unwrap_or_default(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    // LicenseRef- identifiers used, and the names they stand for.
    let mut extracted: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    if let Some(d) = &inv.distro {
        packages.push(json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": d.id,
            "versionInfo": d.version_id.clone().unwrap_or_default(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING_SYSTEM",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-OperatingSystem",
        }));
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{i}", p.kind.purl_type());
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("read from /{}", p.location),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
        });
        if let Some(l) = &p.license {
            let spdx = spdx_license(p.kind, l);
            if let Some(s) = &spdx {
                pkg["licenseDeclared"] = json!(s.expression);
                for (id, name) in &s.refs {
                    extracted.entry(id.clone()).or_insert_with(|| name.clone());
                }
            }
            if spdx.is_none_or(|s| s.expression != *l) {
                pkg["licenseComments"] = json!(format!("as the package database states it: {l}"));
            }
        }
        if let Some(note) = layer_note(inv, p) {
            pkg["comment"] = json!(note);
        }
        packages.push(pkg);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://strata.invalid/spdx/{}", content_id(inv).hex()),
        "creationInfo": {
            "created": opts.timestamp(),
            "creators": [format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = extracted
            .into_iter()
            .map(|(id, name)| {
                json!({
                    "licenseId": id,
                    "name": name,
                    "extractedText": format!(
                        "The license a Debian machine-readable copyright file (DEP-5) names \"{name}\", which \
                         has no SPDX identifier; its text is in the package's copyright file."
                    ),
                })
            })
            .collect();
    }
    doc
}

/// A UUID (version 5 layout) from a digest: stable for the same content.
fn uuid_from(d: &Digest) -> String {
    let h = d.hex();
    let mut b: Vec<u8> = (0..16).filter_map(|i| u8::from_str_radix(h.get(i * 2..i * 2 + 2)?, 16).ok()).collect();
    b.resize(16, 0);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// The CycloneDX 1.5 document.
pub fn cyclonedx(inv: &Inventory, opts: &SbomOptions) -> Value {
    let mut components = Vec::new();
    if let Some(d) = &inv.distro {
        components.push(json!({
            "type": "operating-system",
            "bom-ref": "os",
            "name": d.id,
            "version": d.version_id.clone().unwrap_or_default(),
            "description": d.pretty_name.clone().unwrap_or_default(),
        }));
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let mut c = json!({
            "type": "library",
            "bom-ref": format!("pkg-{i}"),
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
        });
        if let Some(l) = &p.license {
            c["licenses"] = match spdx_license(p.kind, l) {
                // One name with no SPDX identifier: the name as stated.
                Some(s) if s.refs.len() == 1 && s.refs[0].0 == s.expression => json!([{ "license": { "name": l } }]),
                Some(s) => json!([{ "expression": s.expression }]),
                None => json!([{ "license": { "name": l } }]),
            };
        }
        let mut props = vec![
            json!({ "name": "strata:package:type", "value": p.kind.purl_type() }),
            json!({ "name": "strata:location", "value": format!("/{}", p.location) }),
        ];
        if let Some(a) = &p.arch {
            props.push(json!({ "name": "strata:package:arch", "value": a }));
        }
        if let Some(s) = &p.source {
            props.push(json!({ "name": "strata:package:source", "value": s }));
        }
        if let Some(l) = p.layer {
            props.push(json!({ "name": "strata:layer:index", "value": l.to_string() }));
            if let Some(r) = inv.layers.get(l) {
                props.push(json!({ "name": "strata:layer:diff_id", "value": r.diff_id }));
            }
        }
        for l in &p.changed_in {
            props.push(json!({ "name": "strata:layer:changed", "value": l.to_string() }));
        }
        c["properties"] = json!(props);
        components.push(c);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid_from(&content_id(inv))),
        "version": 1,
        "metadata": {
            "timestamp": opts.timestamp(),
            "tools": { "components": [{ "type": "application", "name": TOOL_NAME, "version": TOOL_VERSION }] },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": subject_name(inv),
                "version": inv.digest.clone().unwrap_or_default(),
            },
        },
        "components": components,
    })
}

/// The table: one package a row.
pub fn table(inv: &Inventory) -> String {
    let mut rows = vec![["NAME".to_owned(), "VERSION".to_owned(), "TYPE".to_owned(), "LAYER".to_owned()]];
    for p in &inv.packages {
        let layer = match p.layer {
            Some(l) if p.changed_in.is_empty() => l.to_string(),
            Some(l) => {
                format!("{l} (changed: {})", p.changed_in.iter().map(usize::to_string).collect::<Vec<_>>().join(","))
            }
            None => "-".to_owned(),
        };
        rows.push([p.name.clone(), p.version.clone(), p.kind.purl_type().to_owned(), layer]);
    }
    format_table(&rows)
}

/// Columns padded to their widest cell, two spaces apart.
pub(crate) fn format_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut width = [0usize; N];
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(width).enumerate() {
            line.push_str(c);
            if i + 1 < N {
                line.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn spdx_expressions() {
        for (s, ok) in [
            ("MIT", true),
            ("GPL-2.0-only OR MIT", true),
            ("(MIT AND BSD-3-Clause) OR Apache-2.0", true),
            ("Apache-2.0 WITH LLVM-exception", true),
            ("MIT and BSD", false),
            ("Apache 2.0", false),
            ("", false),
            ("(MIT", false),
        ] {
            assert_eq!(super::is_spdx_expression(s), ok, "{s}");
        }
    }
}
