//! pull, push and login through the CLI against a real registry (Debian's
//! docker-registry, distribution 2.8) started by each test on a free loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use strata_spec::Digest;
use strata_testkit::{require_tool, run};

use crate::common::{Env, Registry, tomcat_rootfs};

fn with_base() -> (Env, String) {
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let id = env.ok(&["import", "rootfs", "tomcat:latest"]).trim().to_owned();
    (env, id)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn push_then_pull_into_another_store() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start("", "");
    let (env, id) = with_base();
    let dest = format!("{}/tomcat:1", reg.host());
    let out = env.ok(&["push", "tomcat:latest", &dest]);
    assert!(out.contains(&format!("Pushed {dest}")) && out.contains("1: digest: sha256:"), "{out}");
    // Pushing again uploads nothing.
    let v = json(&env.ok(&["push", "--json", "tomcat:latest", &dest]));
    assert_eq!(v["BlobsUploaded"], 0);
    assert_eq!(v["BlobsSkipped"], 2);
    let digest = v["Digest"].as_str().unwrap().to_owned();

    // Pull into a second store: tagged with the reference as given, same image id.
    let other = env.path("store2");
    let other = other.to_str().unwrap();
    let v = json(&env.ok(&["--store", other, "pull", "--json", &dest]));
    assert_eq!(v["Tag"], dest);
    assert_eq!(v["ID"], id);
    assert_eq!(v["Digest"], digest);
    assert_eq!(v["BlobsFetched"], 2);
    // The pulled layer's size was recorded by the pull (so no listing reads the layer).
    let records = std::path::Path::new(other).join(".strata/records/layer/sha256");
    assert_eq!(std::fs::read_dir(records).unwrap().count(), 1);
    let again = json(&env.ok(&["--store", other, "inspect", &dest]));
    assert_eq!(again[0]["Id"], id);
    assert_eq!(again[0]["RepoTags"][0], dest);
    // Where it came from and where it went, as docker's RepoDigests: the pulled image in
    // the second store, the pushed one in the first; an image that never met a registry
    // has none.
    let repo_digest = format!("{}/tomcat@{digest}", reg.host());
    assert_eq!(again[0]["RepoDigests"], serde_json::json!([repo_digest]));
    assert_eq!(env.inspect("tomcat:latest")[0]["RepoDigests"], serde_json::json!([repo_digest]));
    let (local, _) = with_base();
    assert_eq!(local.inspect("tomcat:latest")[0]["RepoDigests"], serde_json::json!([]));
    // The pulled layer's size is docker's figure, the same as in the store it came from.
    assert_eq!(again[0]["Size"], env.inspect("tomcat:latest")[0]["Size"]);
    let images = env.ok(&["--store", other, "images"]);
    assert!(images.contains(&format!("{}/tomcat", reg.host())) && images.contains(" 1 "), "{images}");
    // A second pull finds everything present.
    let out = env.ok(&["--store", other, "pull", &dest]);
    assert!(out.contains("0 blobs fetched") && out.contains("2 already present"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")) && out.contains(&format!("Image ID: {id}")), "{out}");
    // Push with DEST_REF defaulting to LOCAL_REF (mounting from the repository it came from).
    let moved = format!("{}/moved:2", reg.host());
    env.ok(&["--store", other, "tag", &dest, &moved]);
    env.ok(&["--store", other, "push", &moved]);
    env.ok(&["--store", other, "unpack", &moved, "c"]);
    assert!(env.path("c/rootfs/webapps.dist/ROOT/index.html").is_file());
    // By digest, too.
    let by_digest = format!("{}/tomcat@{digest}", reg.host());
    let v = json(&env.ok(&["--store", env.path("store3").to_str().unwrap(), "pull", "--json", &by_digest]));
    assert_eq!(v["ID"], id);

    // Errors: a tag the registry does not have, a registry that is not there.
    let r = env.run(&["pull", &format!("{}/tomcat:nope", reg.host())]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("strata: error: ") && r.stderr.contains("MANIFEST_UNKNOWN"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = env.run(&["push", "tomcat:latest", &format!("127.0.0.1:{dead}/x:1")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("strata: error: ") && r.stderr.contains(&format!("127.0.0.1:{dead}")), "{}", r.stderr);
}

/// Put an index with two platform entries into `env`'s store as `multi:1`: the image
/// `amd` for linux/amd64 and `arm` for linux/arm64. Returns nothing; the store is edited
/// as an OCI layout (a blob and an `index.json` entry), as any layout tool would.
fn make_index(env: &Env, amd: &str, arm: &str) {
    let manifest = |r: &str| {
        let v = env.inspect(r);
        (v[0]["Descriptor"]["digest"].as_str().unwrap().to_owned(), v[0]["Descriptor"]["size"].as_u64().unwrap())
    };
    let (amd_d, amd_s) = manifest(amd);
    let (arm_d, arm_s) = manifest(arm);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd_d, "size": amd_s,
              "platform": { "architecture": "amd64", "os": "linux" } },
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_d, "size": arm_s,
              "platform": { "architecture": "arm64", "os": "linux" } },
        ]
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = Digest::sha256_of(&bytes);
    std::fs::write(env.store().join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    let path = env.store().join("index.json");
    let mut top: Value = json(&std::fs::read_to_string(&path).unwrap());
    top["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest.to_string(), "size": bytes.len(),
        "annotations": { "org.opencontainers.image.ref.name": "multi:1" }
    }));
    std::fs::write(&path, serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn pull_platform_and_all_platforms() {
    if !require_tool("docker-registry") {
        return;
    }
    let host = strata_spec::Platform::host();
    if host.architecture != "amd64" {
        eprintln!("skipping: the index below names amd64 as this machine's platform");
        return;
    }
    let reg = Registry::start("", "");
    let (env, amd_id) = with_base();
    std::fs::write(env.path("rootfs/arm-only"), "arm").unwrap();
    let arm_id = env.ok(&["import", "rootfs", "armish:1"]).trim().to_owned();
    make_index(&env, "tomcat:latest", "armish:1");
    let dest = format!("{}/multi:1", reg.host());
    let v = json(&env.ok(&["push", "--json", "multi:1", &dest]));
    assert_eq!(v["MediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(v["Manifests"], 3);

    let s = |n: &str| env.path(n).to_str().unwrap().to_owned();
    // Default: this machine's image only.
    let v = json(&env.ok(&["--store", &s("a"), "pull", "--json", &dest]));
    assert_eq!(v["ID"], amd_id);
    // --platform: the other one.
    let v = json(&env.ok(&["--store", &s("b"), "pull", "--json", "--platform", "linux/arm64", &dest]));
    assert_eq!(v["ID"], arm_id);
    assert_eq!(json(&env.ok(&["--store", &s("b"), "inspect", &dest]))[0]["Id"], arm_id);
    // --all-platforms: the index is kept, and either image unpacks.
    let v = json(&env.ok(&["--store", &s("c"), "pull", "--json", "--all-platforms", &dest]));
    assert_eq!(v["MediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(v["Manifests"], 2);
    env.ok(&["--store", &s("c"), "unpack", "--raw", "--platform", "linux/arm64", &dest, "arm"]);
    assert!(env.path("arm/arm-only").is_file());
    env.ok(&["--store", &s("c"), "unpack", "--raw", &dest, "amd"]);
    assert!(!env.path("amd/arm-only").exists());
    // A platform the index lacks: a clear error naming what it has.
    let r = env.run(&["--store", &s("d"), "pull", "--platform", "linux/s390x", &dest]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("strata: error: ") && r.stderr.contains("s390x"), "{}", r.stderr);
}

#[test]
fn login_then_push_with_the_saved_credentials() {
    if !require_tool("docker-registry") || !require_tool("htpasswd") {
        return;
    }
    let (env, id) = with_base();
    let htpasswd = env.path("htpasswd");
    let line = run(Command::new("htpasswd").args(["-Bbn", "me", "s3cret"]));
    std::fs::write(&htpasswd, line.trim_end().to_owned() + "\n").unwrap();
    let reg =
        Registry::start(&format!("auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n", htpasswd.display()), "");
    let dest = format!("{}/private:1", reg.host());
    // Anonymous push is refused, with a clear one-line error.
    let r = env.run(&["push", "tomcat:latest", &dest]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("401") && r.stderr.contains("no credentials were sent"), "{}", r.stderr);
    // A wrong password does not log in, and writes nothing.
    let r = env.with_stdin(&["login", &reg.host(), "-u", "me", "--password-stdin"], b"wrong\n");
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("credentials were sent and refused"), "{}", r.stderr);
    let auth = env.path("home/auth.json");
    assert!(!auth.exists());
    // The right one: "Login Succeeded", docker's file written (0600).
    let r = env.with_stdin(&["login", &reg.host(), "-u", "me", "--password-stdin"], b"s3cret\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Login Succeeded\n");
    let file = json(&std::fs::read_to_string(&auth).unwrap());
    assert!(file["auths"][reg.host()]["auth"].is_string(), "{file}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);
    // Push and pull now authenticate from the file.
    env.ok(&["push", "tomcat:latest", &dest]);
    let v = json(&env.ok(&["--store", env.path("s2").to_str().unwrap(), "pull", "--json", &dest]));
    assert_eq!(v["ID"], id);
}

/// A CA and a certificate it signed for 127.0.0.1, made with the openssl CLI.
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca_key, ca, key, csr, cert, ext) = (
        dir.join("ca.key"),
        dir.join("ca.pem"),
        dir.join("server.key"),
        dir.join("server.csr"),
        dir.join("server.pem"),
        dir.join("ext.cnf"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", &s(&ca_key), "-out", &s(&ca), "-days", "2", "-subj", "/CN=strata test CA"]));
    run(Command::new("openssl")
        .args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", &s(&key), "-out", &s(&csr), "-subj", "/CN=127.0.0.1"]));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    run(Command::new("openssl").args(["x509", "-req", "-in", &s(&csr), "-CA", &s(&ca), "-CAkey", &s(&ca_key)]).args([
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "2",
        "-extfile",
        &s(&ext),
    ]));
    (ca, cert, key)
}

#[test]
fn tls_registry_needs_its_ca_or_insecure() {
    if !require_tool("docker-registry") || !require_tool("openssl") {
        return;
    }
    let (env, id) = with_base();
    let (ca, cert, key) = make_tls(env.dir.path());
    let reg =
        Registry::start("", &format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()));
    let dest = format!("{}/tls:1", reg.host());
    let r = env.run(&["push", "tomcat:latest", &dest]);
    assert_eq!(r.code, 1, "an unknown CA was trusted");
    assert!(r.stderr.starts_with("strata: error: ") && r.stderr.to_lowercase().contains("cert"), "{}", r.stderr);
    env.ok(&["push", "--tls-ca", ca.to_str().unwrap(), "tomcat:latest", &dest]);
    let v = json(&env.ok(&["--store", env.path("s2").to_str().unwrap(), "pull", "--json", "--insecure", &dest]));
    assert_eq!(v["ID"], id);
    let r = env.with_stdin(
        &["login", "--tls-ca", ca.to_str().unwrap(), &reg.host(), "-u", "any", "--password-stdin"],
        b"pw\n",
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "Login Succeeded\n"), "{}", r.stderr);
}
