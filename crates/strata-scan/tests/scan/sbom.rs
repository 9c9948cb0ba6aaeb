//! SBOMs: valid against the published SPDX 2.3 and CycloneDX 1.5 JSON schemas, and the
//! same bytes for the same image.

use std::path::Path;
use std::process::Command;

use strata_scan::{Inventory, SbomFormat, SbomOptions, ScanOptions, render};

use crate::fixture::{image, store, write};

/// An image with packages of every kind, licenses that are and are not SPDX
/// expressions, and a package changed by a second layer.
pub fn mixed_image(dir: &Path, store: &strata_image::Store) -> strata_image::Image {
    let base = dir.join("base");
    write(&base, "etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
    write(
        &base,
        "var/lib/dpkg/status",
        "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\n\
         Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n\n\
         Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nSource: foo (1:2.0~rc1-1)\nVersion: 1:2.0~rc1-1+b1\n\n",
    );
    write(&base, "var/lib/dpkg/info/libssl3:amd64.list", "/usr/lib/libssl.so.3\n");
    write(&base, "usr/lib/libssl.so.3", "ssl");
    // A machine-readable (DEP-5) copyright file, and a free-form one.
    write(
        &base,
        "usr/share/doc/libssl3/copyright",
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: OpenSSL\n\n\
         Files: *\nCopyright: 1998-2024 The OpenSSL Project\nLicense: Apache-2.0\n\n\
         License: Apache-2.0\n On Debian systems, see /usr/share/common-licenses/Apache-2.0.\n",
    );
    write(&base, "usr/share/doc/tzdata/copyright", "This is the Debian prepackaged version of tzdata.\n");
    // DEP-5 short names (GPL-2+, Expat, public-domain) as bookworm's copyright files use them.
    write(
        &base,
        "usr/share/doc/libfoo1/copyright",
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: foo\n\n\
         Files: *\nCopyright: 2001 Foo\nLicense: GPL-2+\n\n\
         Files: compat/*\nCopyright: none\nLicense: public-domain\n\n\
         Files: lib/*\nCopyright: 2010 Bar\nLicense: LGPL-2.1+ or Expat\n\n\
         License: GPL-2+\n On Debian systems, see /usr/share/common-licenses/GPL-2.\n",
    );
    let upper = dir.join("upper");
    write(&upper, "usr/lib/libssl.so.3", "ssl, patched");
    write(
        &upper,
        "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA",
        "Name: Jinja2\nVersion: 3.1.2\nLicense: BSD-3-Clause\n\n",
    );
    write(
        &upper,
        "usr/lib/python3/dist-packages/urllib3-1.26.5.dist-info/METADATA",
        "Name: urllib3\nVersion: 1.26.5\nLicense: MIT License\n\n",
    );
    write(&upper, "app/node_modules/lodash/package.json", r#"{"name":"lodash","version":"4.17.20","license":"MIT"}"#);
    image(store, "mixed:1", &[&base, &upper])
}

/// Validate `doc` against the published schema of `kind` (`spdx`, `cyclonedx`, `sarif`):
/// whether it passes, and what the validator said.
pub fn validate(kind: &str, doc: &[u8], dir: &Path) -> (bool, String) {
    let f = dir.join(format!("{kind}.json"));
    std::fs::write(&f, doc).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/validate_schema.py");
    let out = Command::new("python3").arg(script).arg(kind).arg(&f).output().unwrap();
    let msg = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), msg)
}

#[test]
fn sboms_are_valid_and_deterministic() {
    if !strata_testkit::require_tool("python3") {
        return;
    }
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    assert_eq!(inv.packages.len(), 6);
    let opts = SbomOptions::default().created(1_700_000_000);
    for (format, kind) in [(SbomFormat::SpdxJson, "spdx"), (SbomFormat::CycloneDxJson, "cyclonedx")] {
        let doc = render(&inv, format, &opts);
        let (ok, msg) = validate(kind, &doc, dir.path());
        assert!(ok, "{kind} SBOM does not validate:\n{msg}\n{}", String::from_utf8_lossy(&doc));
        // Scanning again gives the same bytes.
        let again = render(&Inventory::of_image(&img, &ScanOptions::default()).unwrap(), format, &opts);
        assert_eq!(doc, again, "{kind} differs between two scans");
        // The validator does reject what breaks the schema.
        let mut broken: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let key = if kind == "spdx" { "spdxVersion" } else { "bomFormat" };
        broken.as_object_mut().unwrap().remove(key);
        let (ok, _) = validate(kind, &serde_json::to_vec(&broken).unwrap(), dir.path());
        assert!(!ok, "{kind} without {key} passed validation");
    }
    let spdx: serde_json::Value = serde_json::from_slice(&render(&inv, SbomFormat::SpdxJson, &opts)).unwrap();
    assert_eq!(spdx["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let urllib3 = spdx["packages"].as_array().unwrap().iter().find(|p| p["name"] == "urllib3").unwrap();
    assert_eq!(urllib3["licenseDeclared"], "NOASSERTION");
    let ssl = spdx["packages"].as_array().unwrap().iter().find(|p| p["name"] == "libssl3").unwrap();
    // Debian licenses come from DEP-5 copyright files only.
    assert_eq!(ssl["licenseDeclared"], "Apache-2.0", "{ssl}");
    let tz = spdx["packages"].as_array().unwrap().iter().find(|p| p["name"] == "tzdata").unwrap();
    assert_eq!(tz["licenseDeclared"], "NOASSERTION", "{tz}");
    assert!(ssl["comment"].as_str().unwrap().contains("changed in layers 1"), "{ssl}");
    // DEP-5 names as SPDX identifiers; a name SPDX has no identifier for as a
    // LicenseRef- the document defines.
    let foo = spdx["packages"].as_array().unwrap().iter().find(|p| p["name"] == "libfoo1").unwrap();
    assert_eq!(
        foo["licenseDeclared"], "GPL-2.0-or-later AND LicenseRef-public-domain AND (LGPL-2.1-or-later OR MIT)",
        "{foo}"
    );
    assert_eq!(
        foo["licenseComments"],
        "as the package database states it: GPL-2+ AND public-domain AND (LGPL-2.1+ OR Expat)"
    );
    let refs = spdx["hasExtractedLicensingInfos"].as_array().unwrap();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0]["licenseId"], "LicenseRef-public-domain");
    assert_eq!(refs[0]["name"], "public-domain");
    let cdx: serde_json::Value = serde_json::from_slice(&render(&inv, SbomFormat::CycloneDxJson, &opts)).unwrap();
    let foo = cdx["components"].as_array().unwrap().iter().find(|c| c["name"] == "libfoo1").unwrap();
    assert_eq!(
        foo["licenses"][0]["expression"],
        "GPL-2.0-or-later AND LicenseRef-public-domain AND (LGPL-2.1-or-later OR MIT)",
        "{foo}"
    );

    // The documents are written field by field; their keys come in the order
    // `serde_json::Value` sorts them in (which wrote them before), so the same bytes.
    for (doc, value) in [
        (SbomFormat::SpdxJson, strata_scan::spdx(&inv, &opts)),
        (SbomFormat::CycloneDxJson, strata_scan::cyclonedx(&inv, &opts)),
    ] {
        let mut sorted = serde_json::to_vec_pretty(&value).unwrap();
        sorted.push(b'\n');
        assert_eq!(String::from_utf8(render(&inv, doc, &opts)).unwrap(), String::from_utf8(sorted).unwrap());
    }

    let table = String::from_utf8(render(&inv, SbomFormat::Table, &opts)).unwrap();
    assert!(table.starts_with("NAME "), "{table}");
    assert!(table.lines().any(|l| l.starts_with("libssl3") && l.contains("0 (changed: 1)")), "{table}");
}
