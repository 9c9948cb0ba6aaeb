//! SBOMs of an [`Inventory`]: SPDX 2.3 JSON, CycloneDX 1.5 JSON and a table for people.
//!
//! The same inventory gives the same bytes, but for the creation time, which is
//! [`SbomOptions::created`] (`SOURCE_DATE_EPOCH` through [`SbomOptions::from_env`]).
//! Identifiers that must be unique (SPDX's `documentNamespace`, CycloneDX's
//! `serialNumber`) are derived from the image digest and the SBOM's content, so they
//! are stable too.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_spec::Digest;

use crate::inventory::{Inventory, ScanOptions, Warning};
use crate::license::spdx_license;
use crate::package::Kind;

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
    let input = Input::of(inv);
    match format {
        SbomFormat::Table => table_of(&input).into_bytes(),
        _ => render_input(&input, &content_id(inv), format, opts),
    }
}

/// An SBOM made by [`render_image`], and what its inventory could not tell.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rendered {
    /// The document, as [`render`] writes it.
    pub document: Vec<u8>,
    /// [`Inventory::warnings`] of the image's inventory.
    pub warnings: Vec<Warning>,
}

/// The SBOM of `image` in `format`: what [`render`] makes of
/// [`Inventory::of_image`]`(image, scan)`, the same bytes, with that inventory's
/// warnings. When the store has the image's own scan record
/// ([`ScanOptions::image_cache`]) the document is written from the record's JSON without
/// making the inventory: the files each package owns, which no format lists, are
/// skipped rather than decoded.
pub fn render_image(
    image: &strata_image::Image,
    scan: &ScanOptions,
    format: SbomFormat,
    opts: &SbomOptions,
) -> crate::Result<Rendered> {
    if scan.cache
        && scan.image_cache
        && let Some((document, warnings)) = crate::image_cache::render(image, scan, format, opts)
    {
        return Ok(Rendered { document, warnings });
    }
    let inv = Inventory::of_image(image, scan)?;
    Ok(Rendered { document: render(&inv, format, opts), warnings: inv.warnings })
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

/// Pretty JSON and a newline.
fn to_json(v: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 16);
    // Writing to memory does not fail, nor do these documents (their keys are strings).
    let _ = serde_json::to_writer_pretty(&mut out, v);
    out.push(b'\n');
    out
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

/// What the SBOM writers read of an inventory: its fields borrowed, from an
/// [`Inventory`] ([`Input::of`]) or straight from the JSON of one (the image's scan
/// record: the owned files, which no SBOM names, are skipped rather than decoded).
#[derive(Deserialize)]
pub(crate) struct Input<'a> {
    #[serde(borrow)]
    pub(crate) image: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) digest: Option<Cow<'a, str>>,
    #[serde(borrow)]
    distro: Option<DistroInput<'a>>,
    #[serde(borrow)]
    layers: Vec<LayerInput<'a>>,
    #[serde(borrow)]
    packages: Vec<PackageInput<'a>>,
    pub(crate) warnings: Vec<Warning>,
}

#[derive(Deserialize)]
struct DistroInput<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    version_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pretty_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LayerInput<'a> {
    #[serde(borrow)]
    diff_id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct PackageInput<'a> {
    kind: Kind,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    arch: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    license: Option<Cow<'a, str>>,
    #[serde(borrow)]
    purl: Cow<'a, str>,
    #[serde(borrow)]
    location: Cow<'a, str>,
    layer: Option<usize>,
    changed_in: Vec<usize>,
}

impl<'a> Input<'a> {
    /// `inv`'s fields, borrowed (its warnings are left out: only the record's are read).
    pub(crate) fn of(inv: &'a Inventory) -> Input<'a> {
        let b = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        Input {
            image: b(&inv.image),
            digest: b(&inv.digest),
            distro: inv.distro.as_ref().map(|d| DistroInput {
                id: Cow::Borrowed(&d.id),
                version_id: b(&d.version_id),
                pretty_name: b(&d.pretty_name),
            }),
            layers: inv.layers.iter().map(|l| LayerInput { diff_id: Cow::Borrowed(&l.diff_id) }).collect(),
            packages: inv
                .packages
                .iter()
                .map(|p| PackageInput {
                    kind: p.kind,
                    name: Cow::Borrowed(&p.name),
                    version: Cow::Borrowed(&p.version),
                    arch: b(&p.arch),
                    source: b(&p.source),
                    license: b(&p.license),
                    purl: Cow::Borrowed(&p.purl),
                    location: Cow::Borrowed(&p.location),
                    layer: p.layer,
                    changed_in: p.changed_in.clone(),
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    /// The image's name for documents: its name, else its digest.
    fn subject_name(&self) -> &str {
        self.image.as_deref().or(self.digest.as_deref()).unwrap_or("rootfs")
    }

    fn layer_note(&self, p: &PackageInput<'_>) -> Option<String> {
        let l = p.layer?;
        let mut s = format!("layer {l}");
        if let Some(r) = self.layers.get(l) {
            s.push_str(&format!(" ({})", r.diff_id));
        }
        if !p.changed_in.is_empty() {
            let c: Vec<String> = p.changed_in.iter().map(usize::to_string).collect();
            s.push_str(&format!("; changed in layers {}", c.join(", ")));
        }
        Some(s)
    }
}

/// `input` in `format`; `id` is the content id of its inventory
/// ([`Inventory::content_id`]), which only the JSON formats use.
pub(crate) fn render_input(input: &Input<'_>, id: &Digest, format: SbomFormat, opts: &SbomOptions) -> Vec<u8> {
    match format {
        SbomFormat::SpdxJson => to_json(&spdx_doc(input, id, opts)),
        SbomFormat::CycloneDxJson => to_json(&cyclonedx_doc(input, id, opts)),
        SbomFormat::Table => table_of(input).into_bytes(),
    }
}

// The documents, written straight from these structures. Their fields are in the
// order of their JSON keys, sorted (as `serde_json::Value`'s map keeps them, which
// made the documents before): the tests check that both give the same bytes.

/// SPDX 2.3.
#[derive(Serialize)]
struct SpdxDoc<'a> {
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    #[serde(rename = "creationInfo")]
    creation_info: SpdxCreationInfo,
    #[serde(rename = "dataLicense")]
    data_license: &'static str,
    #[serde(rename = "documentNamespace")]
    document_namespace: String,
    #[serde(rename = "hasExtractedLicensingInfos", skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<SpdxExtractedLicense>,
    name: &'a str,
    packages: Vec<SpdxPackage<'a>>,
    relationships: Vec<SpdxRelationship>,
    #[serde(rename = "spdxVersion")]
    spdx_version: &'static str,
}

#[derive(Serialize)]
struct SpdxCreationInfo {
    created: String,
    creators: [String; 1],
}

#[derive(Serialize)]
struct SpdxExtractedLicense {
    #[serde(rename = "extractedText")]
    extracted_text: String,
    #[serde(rename = "licenseId")]
    license_id: String,
    name: String,
}

#[derive(Serialize)]
struct SpdxPackage<'a> {
    #[serde(rename = "SPDXID")]
    spdx_id: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(rename = "copyrightText")]
    copyright_text: &'static str,
    #[serde(rename = "downloadLocation")]
    download_location: &'static str,
    #[serde(rename = "externalRefs", skip_serializing_if = "Option::is_none")]
    external_refs: Option<[SpdxExternalRef<'a>; 1]>,
    #[serde(rename = "filesAnalyzed")]
    files_analyzed: bool,
    #[serde(rename = "licenseComments", skip_serializing_if = "Option::is_none")]
    license_comments: Option<String>,
    #[serde(rename = "licenseConcluded")]
    license_concluded: &'static str,
    #[serde(rename = "licenseDeclared")]
    license_declared: Cow<'static, str>,
    name: &'a str,
    #[serde(rename = "primaryPackagePurpose")]
    primary_package_purpose: &'static str,
    #[serde(rename = "sourceInfo", skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(rename = "versionInfo")]
    version_info: &'a str,
}

impl<'a> SpdxPackage<'a> {
    /// A package as SPDX says it of the image and its operating system.
    fn whole(id: &'static str, name: &'a str, version: &'a str, purpose: &'static str) -> Self {
        SpdxPackage {
            spdx_id: Cow::Borrowed(id),
            comment: None,
            copyright_text: NOASSERTION,
            download_location: NOASSERTION,
            external_refs: None,
            files_analyzed: false,
            license_comments: None,
            license_concluded: NOASSERTION,
            license_declared: Cow::Borrowed(NOASSERTION),
            name,
            primary_package_purpose: purpose,
            source_info: None,
            version_info: version,
        }
    }
}

const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
struct SpdxExternalRef<'a> {
    #[serde(rename = "referenceCategory")]
    reference_category: &'static str,
    #[serde(rename = "referenceLocator")]
    reference_locator: &'a str,
    #[serde(rename = "referenceType")]
    reference_type: &'static str,
}

#[derive(Serialize)]
struct SpdxRelationship {
    #[serde(rename = "relatedSpdxElement")]
    related_spdx_element: Cow<'static, str>,
    #[serde(rename = "relationshipType")]
    relationship_type: &'static str,
    #[serde(rename = "spdxElementId")]
    spdx_element_id: &'static str,
}

/// The SPDX 2.3 document.
pub fn spdx(inv: &Inventory, opts: &SbomOptions) -> Value {
    serde_json::to_value(spdx_doc(&Input::of(inv), &content_id(inv), opts)).unwrap_or_default()
}

fn spdx_doc<'a>(inv: &'a Input<'a>, id: &Digest, opts: &SbomOptions) -> SpdxDoc<'a> {
    let name = inv.subject_name();
    let mut packages = Vec::with_capacity(inv.packages.len() + 2);
    packages.push(SpdxPackage::whole("SPDXRef-Image", name, inv.digest.as_deref().unwrap_or_default(), "CONTAINER"));
    // LicenseRef- identifiers used, and the names they stand for.
    let mut extracted: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let contains = |id: Cow<'static, str>| SpdxRelationship {
        related_spdx_element: id,
        relationship_type: "CONTAINS",
        spdx_element_id: "SPDXRef-Image",
    };
    let mut relationships = Vec::with_capacity(inv.packages.len() + 2);
    relationships.push(SpdxRelationship {
        related_spdx_element: Cow::Borrowed("SPDXRef-Image"),
        relationship_type: "DESCRIBES",
        spdx_element_id: "SPDXRef-DOCUMENT",
    });
    if let Some(d) = &inv.distro {
        packages.push(SpdxPackage::whole(
            "SPDXRef-OperatingSystem",
            &d.id,
            d.version_id.as_deref().unwrap_or_default(),
            "OPERATING_SYSTEM",
        ));
        relationships.push(contains(Cow::Borrowed("SPDXRef-OperatingSystem")));
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{i}", p.kind.purl_type());
        let mut pkg = SpdxPackage {
            spdx_id: Cow::Owned(id.clone()),
            comment: inv.layer_note(p),
            external_refs: Some([SpdxExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_locator: &p.purl,
                reference_type: "purl",
            }]),
            primary_package_purpose: "LIBRARY",
            source_info: Some(format!("read from /{}", p.location)),
            ..SpdxPackage::whole("", &p.name, &p.version, "")
        };
        if let Some(l) = p.license.as_deref() {
            let spdx = spdx_license(p.kind, l);
            if let Some(s) = &spdx {
                for (id, name) in &s.refs {
                    extracted.entry(id.clone()).or_insert_with(|| name.clone());
                }
            }
            if spdx.as_ref().is_none_or(|s| s.expression != *l) {
                pkg.license_comments = Some(format!("as the package database states it: {l}"));
            }
            if let Some(s) = spdx {
                pkg.license_declared = Cow::Owned(s.expression);
            }
        }
        packages.push(pkg);
        relationships.push(contains(Cow::Owned(id)));
    }
    SpdxDoc {
        spdx_id: "SPDXRef-DOCUMENT",
        creation_info: SpdxCreationInfo {
            created: opts.timestamp(),
            creators: [format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        },
        data_license: "CC0-1.0",
        document_namespace: format!("https://strata.invalid/spdx/{}", id.hex()),
        has_extracted_licensing_infos: extracted
            .into_iter()
            .map(|(id, name)| SpdxExtractedLicense {
                extracted_text: format!(
                    "The license a Debian machine-readable copyright file (DEP-5) names \"{name}\", which has no \
                     SPDX identifier; its text is in the package's copyright file."
                ),
                license_id: id,
                name,
            })
            .collect(),
        name,
        packages,
        relationships,
        spdx_version: "SPDX-2.3",
    }
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

/// CycloneDX 1.5.
#[derive(Serialize)]
struct CdxDoc<'a> {
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    components: Vec<CdxComponent<'a>>,
    metadata: CdxMetadata<'a>,
    #[serde(rename = "serialNumber")]
    serial_number: String,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    version: u32,
}

#[derive(Serialize)]
struct CdxMetadata<'a> {
    component: CdxComponent<'a>,
    timestamp: String,
    tools: CdxTools,
}

#[derive(Serialize)]
struct CdxTools {
    components: [CdxTool; 1],
}

#[derive(Serialize)]
struct CdxTool {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct CdxComponent<'a> {
    #[serde(rename = "bom-ref")]
    bom_ref: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    licenses: Option<[CdxLicense<'a>; 1]>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Vec<CdxProperty<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'a str,
}

/// A license choice: an SPDX expression, or a license by name.
#[derive(Serialize)]
struct CdxLicense<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<CdxLicenseName<'a>>,
}

#[derive(Serialize)]
struct CdxLicenseName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct CdxProperty<'a> {
    name: &'static str,
    value: Cow<'a, str>,
}

/// The CycloneDX 1.5 document.
pub fn cyclonedx(inv: &Inventory, opts: &SbomOptions) -> Value {
    serde_json::to_value(cyclonedx_doc(&Input::of(inv), &content_id(inv), opts)).unwrap_or_default()
}

fn cyclonedx_doc<'a>(inv: &'a Input<'a>, id: &Digest, opts: &SbomOptions) -> CdxDoc<'a> {
    let mut components = Vec::with_capacity(inv.packages.len() + 1);
    if let Some(d) = &inv.distro {
        components.push(CdxComponent {
            bom_ref: Cow::Borrowed("os"),
            description: Some(d.pretty_name.as_deref().unwrap_or_default()),
            licenses: None,
            name: &d.id,
            properties: None,
            purl: None,
            kind: "operating-system",
            version: d.version_id.as_deref().unwrap_or_default(),
        });
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let licenses = p.license.as_deref().map(|l| {
            let by_name = CdxLicense { expression: None, license: Some(CdxLicenseName { name: l }) };
            [match spdx_license(p.kind, l) {
                // One name with no SPDX identifier: the name as stated.
                Some(s) if s.refs.len() == 1 && s.refs[0].0 == s.expression => by_name,
                Some(s) => CdxLicense { expression: Some(s.expression), license: None },
                None => by_name,
            }]
        });
        let prop = |name: &'static str, value: Cow<'a, str>| CdxProperty { name, value };
        let mut props = vec![
            prop("strata:package:type", Cow::Borrowed(p.kind.purl_type())),
            prop("strata:location", Cow::Owned(format!("/{}", p.location))),
        ];
        if let Some(a) = &p.arch {
            props.push(prop("strata:package:arch", Cow::Borrowed(a)));
        }
        if let Some(s) = &p.source {
            props.push(prop("strata:package:source", Cow::Borrowed(s)));
        }
        if let Some(l) = p.layer {
            props.push(prop("strata:layer:index", Cow::Owned(l.to_string())));
            if let Some(r) = inv.layers.get(l) {
                props.push(prop("strata:layer:diff_id", Cow::Borrowed(&r.diff_id)));
            }
        }
        for l in &p.changed_in {
            props.push(prop("strata:layer:changed", Cow::Owned(l.to_string())));
        }
        components.push(CdxComponent {
            bom_ref: Cow::Owned(format!("pkg-{i}")),
            description: None,
            licenses,
            name: &p.name,
            properties: Some(props),
            purl: Some(&p.purl),
            kind: "library",
            version: &p.version,
        });
    }
    CdxDoc {
        bom_format: "CycloneDX",
        components,
        metadata: CdxMetadata {
            component: CdxComponent {
                bom_ref: Cow::Borrowed("image"),
                description: None,
                licenses: None,
                name: inv.subject_name(),
                properties: None,
                purl: None,
                kind: "container",
                version: inv.digest.as_deref().unwrap_or_default(),
            },
            timestamp: opts.timestamp(),
            tools: CdxTools { components: [CdxTool { name: TOOL_NAME, kind: "application", version: TOOL_VERSION }] },
        },
        serial_number: format!("urn:uuid:{}", uuid_from(id)),
        spec_version: "1.5",
        version: 1,
    }
}

/// The table: one package a row.
pub fn table(inv: &Inventory) -> String {
    table_of(&Input::of(inv))
}

pub(crate) fn table_of(inv: &Input<'_>) -> String {
    let mut rows: Vec<[Cow<'_, str>; 4]> = vec![["NAME".into(), "VERSION".into(), "TYPE".into(), "LAYER".into()]];
    for p in &inv.packages {
        let layer = match p.layer {
            Some(l) if p.changed_in.is_empty() => l.to_string(),
            Some(l) => {
                format!("{l} (changed: {})", p.changed_in.iter().map(usize::to_string).collect::<Vec<_>>().join(","))
            }
            None => "-".to_owned(),
        };
        rows.push([(&*p.name).into(), (&*p.version).into(), p.kind.purl_type().into(), layer.into()]);
    }
    format_table(&rows)
}

/// Columns padded to their widest cell, two spaces apart.
pub(crate) fn format_table<S: AsRef<str>, const N: usize>(rows: &[[S; N]]) -> String {
    let mut width = [0usize; N];
    let mut bytes = 0;
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.as_ref().chars().count());
        }
    }
    for w in width {
        bytes += (w + 2) * rows.len();
    }
    let mut out = String::with_capacity(bytes + rows.len());
    for r in rows {
        let start = out.len();
        for (i, (c, w)) in r.iter().zip(width).enumerate() {
            let c = c.as_ref();
            out.push_str(c);
            if i + 1 < N {
                out.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        let end = start + out[start..].trim_end().len();
        out.truncate(end);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_are_padded_and_trimmed_per_line() {
        let rows = [["NAME", "V", ""], ["é", "1.0", "x"], ["", "", ""], ["long-name", "", ""]];
        assert_eq!(super::format_table(&rows), "NAME       V\né          1.0  x\n\nlong-name\n");
        let owned = [["a".to_owned(), "b".to_owned()]];
        assert_eq!(super::format_table(&owned), "a  b\n");
    }

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
