//! `strata sbom` and `strata scan` on an image made from a directory.

use std::fs;

use crate::common::{Env, Registry};

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

/// `GET http://HOST/PATH` with curl (an OCI index or manifest media type accepted): the
/// body, or `None` on 404.
fn http_get(url: &str) -> Option<Vec<u8>> {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = out.stdout;
    let cut = text.iter().rposition(|&b| b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&text[cut + 1..]).to_string();
    match code.as_str() {
        "200" => Some(text[..cut].to_vec()),
        "404" => None,
        c => panic!("GET {url}: HTTP {c}: {}", String::from_utf8_lossy(&text[..cut])),
    }
}

#[test]
fn an_attached_sbom_is_listed_pushed_through_the_tag_schema_and_pulled_back() {
    for tool in ["docker-registry", "skopeo", "curl"] {
        if !strata_testkit::require_tool(tool) {
            return;
        }
    }
    let env = Env::new();
    debian_image(&env);
    let attach = |format: &str| {
        let out = env
            .cmd(&["sbom", "--attach", "--format", format, "-o", &format!("{format}.json"), "deb:1"])
            .current_dir(env.path(""))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let spdx = attach("spdx-json");
    // The same SBOM again is the same artifact.
    assert_eq!(attach("spdx-json"), spdx);
    let cdx = attach("cyclonedx-json");
    assert!(spdx.starts_with("sha256:") && cdx != spdx, "{spdx} {cdx}");

    let listed: serde_json::Value = serde_json::from_str(&env.ok(&["--json", "referrers", "deb:1"])).unwrap();
    assert_eq!(listed["mediaType"], "application/vnd.oci.image.index.v1+json");
    let kinds: Vec<&str> =
        listed["manifests"].as_array().unwrap().iter().map(|d| d["artifactType"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2, "{listed}");
    assert!(kinds.contains(&"application/spdx+json") && kinds.contains(&"application/vnd.cyclonedx+json"), "{listed}");
    for d in listed["manifests"].as_array().unwrap() {
        assert_eq!(d["annotations"]["org.opencontainers.image.created"], "2023-11-14T22:13:20Z", "{d}");
    }
    let only: serde_json::Value = serde_json::from_str(&env.ok(&[
        "--json",
        "referrers",
        "--artifact-type",
        "application/vnd.cyclonedx+json",
        "deb:1",
    ]))
    .unwrap();
    assert_eq!(only["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(only["manifests"][0]["digest"], cdx.as_str());
    let table = env.ok(&["referrers", "deb:1"]);
    assert!(table.contains(&spdx) && table.contains("application/spdx+json"), "{table}");
    // Artifacts are not images.
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1);

    // Push: distribution 2.8 has no referrers API, so the artifacts go by digest and
    // their descriptors into the `sha256-<hex>` tag's index.
    let reg = Registry::start("", "");
    let dest = format!("{}/deb:1", reg.host());
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["--json", "push", "deb:1", &dest])).unwrap();
    assert_eq!(v["Referrers"], 2, "{v}");
    assert_eq!(v["ReferrersTagged"], 2, "{v}");
    let subject = v["Digest"].as_str().unwrap().to_owned();
    let tag = format!("sha256-{}", subject.trim_start_matches("sha256:"));
    // skopeo reads the fallback tag as an OCI index listing both SBOMs.
    let raw = strata_testkit::run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/deb:{tag}", reg.host()),
    ]));
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let mut pushed: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|d| d["digest"].as_str().unwrap()).collect();
    pushed.sort();
    let mut want = vec![spdx.as_str(), cdx.as_str()];
    want.sort();
    assert_eq!(pushed, want, "{index}");
    // The registry has no referrers API (404), and serves the artifact manifest with
    // its subject, and the SBOM itself, as they were written.
    let base = format!("http://{}/v2/deb", reg.host());
    assert!(http_get(&format!("{base}/referrers/{subject}")).is_none());
    let m: serde_json::Value = serde_json::from_slice(&http_get(&format!("{base}/manifests/{spdx}")).unwrap()).unwrap();
    assert_eq!(m["subject"]["digest"], subject.as_str(), "{m}");
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    assert_eq!(m["artifactType"], "application/spdx+json");
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let sbom = http_get(&format!("{base}/blobs/{layer}")).unwrap();
    assert_eq!(sbom, fs::read(env.path("spdx-json.json")).unwrap());
    // Pushing again adds nothing to the tag's index.
    env.ok(&["push", "deb:1", &dest]);
    let again: serde_json::Value =
        serde_json::from_slice(&http_get(&format!("{base}/manifests/{tag}")).unwrap()).unwrap();
    assert_eq!(again["manifests"].as_array().unwrap().len(), 2, "{again}");

    // Pull with --referrers into another store: the same artifacts, listed the same way.
    let other = env.path("store2");
    let other = other.to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["--store", other, "--json", "pull", "--referrers", &dest])).unwrap();
    assert_eq!(v["Referrers"].as_array().unwrap().len(), 2, "{v}");
    let there: serde_json::Value =
        serde_json::from_str(&env.ok(&["--store", other, "--json", "referrers", &dest])).unwrap();
    assert_eq!(there, listed);
    env.ok(&["--store", other, "fsck"]);
    // Without the flag, a pull fetches the image only.
    let third = env.path("store3");
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["--store", third.to_str().unwrap(), "--json", "pull", &dest])).unwrap();
    assert_eq!(v["Referrers"].as_array().unwrap().len(), 0, "{v}");
}

/// The layer blob digests an inventory (`--json sbom`) lists.
/// A registry with the referrers API (distribution-spec 1.1: `ferro-oci-server`):
/// `push` sends the attached SBOMs with their subject and the registry answers with
/// `OCI-Subject`, so nothing goes to the tag schema; the registry's referrers API lists
/// them (by artifact type too), and `pull --referrers` finds them through it.
#[test]
fn attached_sboms_go_through_a_registrys_referrers_api() {
    for tool in ["ferro-oci-server", "curl"] {
        if !strata_testkit::require_tool(tool) {
            return;
        }
    }
    let env = Env::new();
    debian_image(&env);
    let mut attached = Vec::new();
    for format in ["spdx-json", "cyclonedx-json"] {
        let out = env.ok(&["sbom", "--attach", "--format", format, "-o", &env.path(format).to_string_lossy(), "deb:1"]);
        attached.push(out.trim().to_owned());
    }
    let listed: serde_json::Value = serde_json::from_str(&env.ok(&["--json", "referrers", "deb:1"])).unwrap();

    let reg = Registry::start_with_referrers();
    let dest = format!("{}/deb:1", reg.host());
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["--json", "push", "deb:1", &dest])).unwrap();
    assert_eq!(v["Referrers"], 2, "{v}");
    assert_eq!(v["ReferrersTagged"], 0, "the registry has a referrers API: {v}");
    let subject = v["Digest"].as_str().unwrap().to_owned();

    // The registry's own list: both artifacts, with their artifact types.
    let base = format!("http://{}/v2/deb", reg.host());
    let there: serde_json::Value =
        serde_json::from_slice(&http_get(&format!("{base}/referrers/{subject}")).expect("a referrers API")).unwrap();
    assert_eq!(there["mediaType"], "application/vnd.oci.image.index.v1+json", "{there}");
    let mut digests: Vec<&str> =
        there["manifests"].as_array().unwrap().iter().map(|d| d["digest"].as_str().unwrap()).collect();
    digests.sort();
    let mut want: Vec<&str> = attached.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(digests, want, "{there}");
    for d in there["manifests"].as_array().unwrap() {
        let t = d["artifactType"].as_str().unwrap();
        assert!(t == "application/spdx+json" || t == "application/vnd.cyclonedx+json", "{d}");
    }
    // Nothing went to the tag schema.
    let tag = format!("sha256-{}", subject.trim_start_matches("sha256:"));
    assert!(http_get(&format!("{base}/manifests/{tag}")).is_none(), "a referrers tag was pushed");

    // Pulled back through the API: the same artifacts, listed as in the first store.
    let other = env.path("store2");
    let other = other.to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["--store", other, "--json", "pull", "--referrers", &dest])).unwrap();
    assert_eq!(v["Referrers"].as_array().unwrap().len(), 2, "{v}");
    let back: serde_json::Value =
        serde_json::from_str(&env.ok(&["--store", other, "--json", "referrers", &dest])).unwrap();
    assert_eq!(back["manifests"], listed["manifests"]);
    env.ok(&["--store", other, "fsck"]);
}

fn layer_digests(inventory: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(inventory).unwrap();
    v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

/// The first `sbom` of `reference` in `env`'s store reads no layer blob: every layer
/// already has its scan record, and the scan says exactly what a `--no-cache` one says.
fn assert_scanned_on_arrival(env: &Env, reference: &str) {
    let cold = env.ok(&["--json", "sbom", "--no-cache", reference]);
    let digests = layer_digests(&cold);
    assert!(!digests.is_empty(), "{cold}");
    let store = env.store();
    let mut hidden = Vec::new();
    for d in &digests {
        let hex = d.strip_prefix("sha256:").unwrap();
        let record = store.join(".strata/records/scan/sha256").join(hex);
        assert!(record.is_file(), "{reference}: no scan record for layer {d}");
        // Moved away: a scan that reads the layer fails.
        let blob = store.join("blobs/sha256").join(hex);
        let to = env.path(&format!("hidden-{hex}"));
        fs::rename(&blob, &to).unwrap();
        hidden.push((blob, to));
    }
    assert_ne!(env.run(&["sbom", "--no-cache", reference]).code, 0, "the layers are not gone");
    assert_eq!(env.ok(&["--json", "sbom", reference]), cold, "{reference}: warm scan differs from --no-cache");
    // That scan kept the image's inventory: from it, and from the layers' records alone.
    let digest = serde_json::from_str::<serde_json::Value>(&cold).unwrap()["digest"].as_str().unwrap().to_owned();
    let image_record = store.join(".strata/records/scan/sha256").join(digest.strip_prefix("sha256:").unwrap());
    assert!(image_record.is_file(), "{reference}: no scan record for the image");
    assert_eq!(env.ok(&["--json", "sbom", reference]), cold, "{reference}: the image's record differs");
    assert_eq!(env.ok(&["--json", "sbom", "--no-image-cache", reference]), cold, "{reference}: layers' records differ");
    for (blob, to) in hidden {
        fs::rename(to, blob).unwrap();
    }
}

#[test]
fn import_commit_load_and_pull_fill_the_scan_cache() {
    let env = Env::new().with_var("STRATA_SCAN_CACHE", "fill");
    debian_image(&env);
    assert_scanned_on_arrival(&env, "deb:1");

    // Commit: a container adds a package on top.
    env.ok(&["unpack", "deb:1", "c"]);
    let status = env.path("c/rootfs/var/lib/dpkg/status");
    let mut text = fs::read_to_string(&status).unwrap();
    text.push_str("Package: baz\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.1-2\n\n");
    fs::write(&status, text).unwrap();
    env.ok(&["commit", "c", "deb:2"]);
    assert_scanned_on_arrival(&env, "deb:2");
    assert!(env.ok(&["sbom", "deb:2"]).contains("baz"));

    // Load, from both archive formats, into fresh stores.
    for format in ["docker-archive", "oci-archive"] {
        let tar = env.path(&format!("deb2-{format}.tar"));
        env.ok(&["save", "--format", format, "-o", tar.to_str().unwrap(), "deb:2"]);
        let other = Env::new().with_var("STRATA_SCAN_CACHE", "fill");
        other.ok(&["load", "-i", tar.to_str().unwrap()]);
        assert_scanned_on_arrival(&other, "deb:2");
        // Not asked for (the default): the records are left to the first scan.
        let off = Env::new();
        off.ok(&["load", "-i", tar.to_str().unwrap()]);
        assert!(!off.store().join(".strata/records/scan").exists(), "{format}: a plain load wrote scan records");
    }

    // Pull, from a registry, into a fresh store.
    if !strata_testkit::require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start("", "");
    let remote = format!("{}/deb:2", reg.host());
    env.ok(&["push", "deb:2", &remote]);
    let other = Env::new().with_var("STRATA_SCAN_CACHE", "fill");
    other.ok(&["pull", &remote]);
    assert_scanned_on_arrival(&other, &remote);
}
