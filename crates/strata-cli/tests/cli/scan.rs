//! `strata sbom` and `strata scan` on an image made from a directory.

use std::fs;

use crate::common::Env;

fn debian_image(env: &Env) {
    let root = env.path("rootfs");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
    fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nSource: foo\nVersion: 1:2.0~rc1-1\n\n\
         Package: bar\nStatus: install ok installed\nArchitecture: all\nVersion: 2.0~rc1-1\n\n",
    )
    .unwrap();
    env.ok(&["import", root.to_str().unwrap(), "deb:1"]);
}

#[test]
fn sbom_formats_and_source_date_epoch() {
    let env = Env::new();
    debian_image(&env);
    let table = env.ok(&["sbom", "deb:1"]);
    assert!(
        table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["libfoo1", "1:2.0~rc1-1", "deb", "0"]),
        "{table}"
    );
    let run = |format: &str| {
        let out = env.cmd(&["sbom", "--format", format, "deb:1"]).env("SOURCE_DATE_EPOCH", "0").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let spdx = run("spdx-json");
    assert_eq!(spdx, run("spdx-json"));
    let v: serde_json::Value = serde_json::from_slice(&spdx).unwrap();
    assert_eq!(v["creationInfo"]["created"], "1970-01-01T00:00:00Z");
    let cdx: serde_json::Value = serde_json::from_slice(&run("cyclonedx-json")).unwrap();
    assert_eq!(cdx["metadata"]["timestamp"], "1970-01-01T00:00:00Z");
    assert_eq!(cdx["components"].as_array().unwrap().len(), 3); // the OS and two packages
    let err = env.fails(&["sbom", "--format", "xml", "deb:1"], 1);
    assert!(err.contains("unknown SBOM format"), "{err}");
}

#[test]
fn scan_severity_and_exit_code() {
    let env = Env::new();
    debian_image(&env);
    let db = env.path("osv/debian");
    fs::create_dir_all(&db).unwrap();
    let rec = |id: &str, name: &str, fixed: &str, vector: &str| {
        serde_json::json!({
            "id": id, "modified": "2024-01-01T00:00:00Z", "summary": format!("{id} summary"),
            "severity": [{ "type": "CVSS_V3", "score": vector }],
            "affected": [{ "package": { "ecosystem": "Debian:12", "name": name },
                           "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }] }],
        })
        .to_string()
    };
    // 1:2.0~rc1-1 is above 2.0-1 (the epoch): not affected. 2.0~rc1-1 is below it.
    fs::write(db.join("DSA-1.json"), rec("DSA-1", "foo", "2.0-1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"))
        .unwrap();
    fs::write(db.join("DSA-2.json"), rec("DSA-2", "bar", "2.0-1", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"))
        .unwrap();
    let osv = env.path("osv");
    let osv = osv.to_str().unwrap();

    let table = env.ok(&["scan", "deb:1", "--db", osv]);
    let rows: Vec<Vec<&str>> =
        table.lines().skip(1).take_while(|l| !l.is_empty()).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [["LOW", "DSA-2", "bar", "2.0~rc1-1", "2.0-1", "0"]], "{table}");

    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["scan", "deb:1", "--db", osv, "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], "DSA-2");
    let sarif: serde_json::Value =
        serde_json::from_str(&env.ok(&["scan", "deb:1", "--db", osv, "--format", "sarif"])).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"][0]["level"], "note");

    env.fails(&["scan", "deb:1", "--db", osv, "--exit-code", "3"], 3);
    let out = env.ok(&["scan", "deb:1", "--db", osv, "--severity", "medium", "--exit-code", "3"]);
    assert!(out.contains("0 findings at or above MEDIUM"), "{out}");

    fs::write(env.path("osv/bad.json"), "[]").unwrap();
    let err = env.fails(&["scan", "deb:1", "--db", osv], 1);
    assert!(err.contains("bad.json") && err.contains("not an OSV record"), "{err}");
}
