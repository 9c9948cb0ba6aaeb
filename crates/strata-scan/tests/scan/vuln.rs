//! Matching an inventory against OSV advisories the test writes (a directory of JSON
//! records for Debian, a zip made by Python's zipfile for PyPI and npm).

use std::path::Path;
use std::process::Command;

use serde_json::json;
use strata_scan::{AdvisoryDb, Error, Inventory, ScanOptions, Severity, match_inventory, vuln};

use crate::fixture::{run, store, write};
use crate::sbom::{mixed_image, validate};

fn record(id: &str, ecosystem: &str, name: &str, events: serde_json::Value, extra: serde_json::Value) -> String {
    let mut r = json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-01-01T00:00:00Z",
        "summary": format!("{id} in {name}"),
        "affected": [{
            "package": { "ecosystem": ecosystem, "name": name },
            "ranges": [{ "type": if ecosystem == "npm" { "SEMVER" } else { "ECOSYSTEM" }, "events": events }],
        }],
    });
    if let (Some(o), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    serde_json::to_string_pretty(&r).unwrap()
}

/// The advisory database: Debian records as files, PyPI and npm in one zip.
fn advisories(dir: &Path) {
    let critical =
        json!({ "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H" }] });
    let high = json!({ "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" }] });
    let deb = dir.join("db/debian");
    for (id, eco, name, events, extra) in [
        (
            "DSA-0001-1",
            "Debian:12",
            "openssl",
            json!([{ "introduced": "0" }, { "fixed": "3.0.13-1~deb12u1" }]),
            high.clone(),
        ),
        // Installed 1:2.0~rc1-1: the epoch puts it above 2.0-1 ...
        ("DSA-0002-1", "Debian:12", "foo", json!([{ "introduced": "0" }, { "fixed": "2.0-1" }]), json!({})),
        // ... and `~` below 1:2.0-1.
        ("DSA-0003-1", "Debian:12", "foo", json!([{ "introduced": "0" }, { "fixed": "1:2.0-1" }]), json!({})),
        // Another release of Debian.
        ("DSA-0004-1", "Debian:11", "openssl", json!([{ "introduced": "0" }, { "fixed": "9.9" }]), json!({})),
        // Binary package names are not what Debian's advisories name.
        ("DSA-0005-1", "Debian:12", "libssl3", json!([{ "introduced": "0" }, { "fixed": "9.9" }]), json!({})),
    ] {
        write(&deb, &format!("{id}.json"), record(id, eco, name, events, extra));
    }
    let z = dir.join("zip-src");
    let moderate = json!({ "database_specific": { "severity": "MODERATE" } });
    for (id, eco, name, events, extra) in [
        ("GHSA-0001", "PyPI", "jinja2", json!([{ "introduced": "0" }, { "fixed": "3.1.3" }]), moderate),
        ("GHSA-0002", "PyPI", "urllib3", json!([{ "introduced": "1.26.0" }, { "last_affected": "1.26.5" }]), json!({})),
        ("GHSA-0003", "PyPI", "urllib3", json!([{ "introduced": "0" }, { "fixed": "1.26.5" }]), json!({})),
        ("GHSA-0004", "npm", "lodash", json!([{ "introduced": "0" }, { "fixed": "4.17.21" }]), critical),
        ("GHSA-0005", "npm", "lodash", json!([{ "introduced": "0" }]), json!({ "withdrawn": "2024-01-02T00:00:00Z" })),
    ] {
        write(&z, &format!("{id}.json"), record(id, eco, name, events, extra));
    }
    std::fs::create_dir_all(dir.join("db/pypi-npm")).unwrap();
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "zipfile", "-c"]).arg(dir.join("db/pypi-npm/all.zip"));
    for e in std::fs::read_dir(&z).unwrap() {
        cmd.arg(e.unwrap().path());
    }
    run(&mut cmd);
}

#[test]
fn osv_matching_with_each_ecosystems_order() {
    if !strata_testkit::require_tool("python3") {
        return;
    }
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    advisories(dir.path());
    let db = AdvisoryDb::open(dir.path().join("db")).unwrap();
    assert_eq!(db.len(), 10);
    let inv = Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    let findings = match_inventory(&inv, &db);
    let got: Vec<(&str, &str, Severity, Option<&str>)> =
        findings.iter().map(|f| (f.id.as_str(), f.package.as_str(), f.severity, f.fixed.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("GHSA-0004", "lodash", Severity::Critical, Some("4.17.21")),
            ("DSA-0001-1", "libssl3", Severity::High, Some("3.0.13-1~deb12u1")),
            ("GHSA-0001", "Jinja2", Severity::Medium, Some("3.1.3")),
            ("DSA-0003-1", "libfoo1", Severity::Unknown, Some("1:2.0-1")),
            ("GHSA-0002", "urllib3", Severity::Unknown, None),
        ]
    );
    assert_eq!(findings[1].score, Some(7.5));
    assert_eq!(findings[1].layer, Some(0));

    let table = vuln::findings_table(&findings);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["CRITICAL", "GHSA-0004", "lodash", "4.17.20", "4.17.21", "1"], "{table}");
    let sarif = vuln::sarif(&inv, &findings);
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 5);
    assert_eq!(sarif["runs"][0]["results"][0]["level"], "error");
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["security-severity"], "10.0");
    // Valid against the published SARIF 2.1.0 schema, and the validator does reject what
    // breaks it.
    let doc = serde_json::to_vec(&sarif).unwrap();
    let (ok, msg) = validate("sarif", &doc, dir.path());
    assert!(ok, "SARIF does not validate:\n{msg}\n{sarif}");
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    let (ok, _) = validate("sarif", &serde_json::to_vec(&broken).unwrap(), dir.path());
    assert!(!ok, "a SARIF result with level \"fatal\" passed validation");
    // No finding: still a valid log.
    let empty = serde_json::to_vec(&vuln::sarif(&inv, &[])).unwrap();
    let (ok, msg) = validate("sarif", &empty, dir.path());
    assert!(ok, "an empty SARIF log does not validate:\n{msg}");
}

#[test]
fn a_bad_advisory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x/bad.json", "{\"id\": 1}");
    match AdvisoryDb::open(dir.path()) {
        Err(Error::Advisory { file, reason }) => {
            assert!(file.ends_with("x/bad.json"), "{file}");
            assert!(reason.contains("not an OSV record"), "{reason}");
        }
        other => panic!("expected an advisory error, got {other:?}"),
    }
    write(dir.path(), "x/bad.json", "{}");
    std::fs::remove_file(dir.path().join("x/bad.json")).unwrap();
    write(dir.path(), "y/all.zip", "not a zip");
    assert!(matches!(AdvisoryDb::open(dir.path()), Err(Error::Advisory { .. })));
}
