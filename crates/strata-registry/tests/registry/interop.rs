//! Interop with skopeo through the real registry: what strata pushes skopeo pulls with
//! the same digests, and what skopeo pushes strata pulls as the same image.

use std::path::Path;
use std::process::Command;

use strata_registry::spec::{Digest, Index, MediaType};
use strata_registry::store::{Backend, BlobStore, MemoryStore, OciDir};
use strata_registry::{NoProgress, PullOptions, PushOptions, pull, push};
use strata_testkit::run;

use crate::common::*;

fn ready() -> bool {
    have_registry() && strata_testkit::require_tool("skopeo")
}

/// skopeo with its blob-info cache kept out of the machine's.
fn skopeo(tmp: &Path) -> Command {
    let mut c = Command::new("skopeo");
    c.env("HOME", tmp);
    c
}

/// The digest of a blob file in an OCI layout, hashed from its bytes.
fn hashed(layout: &Path, d: &Digest) -> Digest {
    Digest::sha256_of(&std::fs::read(layout.join("blobs/sha256").join(d.hex())).unwrap())
}

#[test]
fn skopeo_pulls_what_strata_pushed_with_identical_digests() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let (src, img) = small_image(30);
    let opts = PushOptions { registry: options(tmp.path()), ..Default::default() };
    push(&src, &img.manifest, &reg.reference("x:tag"), &opts, &NoProgress).unwrap();

    let out = tmp.path().join("skopeo-out");
    run(skopeo(tmp.path()).args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{}/x:tag", reg.host()),
        &format!("oci:{}:tag", out.display()),
    ]));
    let index: Index = Index::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].digest, img.manifest.digest);
    for d in std::iter::once(img.manifest.digest.clone()).chain(img.blobs()) {
        assert_eq!(hashed(&out, &d), d);
        assert_eq!(
            std::fs::read(out.join("blobs/sha256").join(d.hex())).unwrap(),
            src.read_blob(&d, u64::MAX).unwrap()
        );
    }
}

#[test]
fn strata_pulls_what_skopeo_pushed_as_the_same_image() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let layout = OciDir::create(tmp.path().join("src")).unwrap();
    let img = make_image(
        &layout,
        &[vec![("a", random_bytes(31, 30_000))], vec![("b", b"second".to_vec())]],
        "linux/amd64",
        false,
        Some("src"),
    );
    let popts = PullOptions { registry: options(tmp.path()), ..Default::default() };

    // As it is (OCI).
    run(skopeo(tmp.path()).args([
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:src", layout.path().display()),
        &format!("docker://{}/y:oci", reg.host()),
    ]));
    let store = MemoryStore::new();
    let pulled = pull(&store, &reg.reference("y:oci"), &popts, &NoProgress).unwrap();
    assert_eq!(pulled.descriptor.digest, img.manifest.digest);
    assert_eq!(pulled.config.unwrap().digest, img.config.digest);
    for d in img.blobs() {
        assert_eq!(store.read_blob(&d, u64::MAX).unwrap(), layout.read_blob(&d, u64::MAX).unwrap());
    }

    // Converted to Docker schema2 by skopeo: another manifest, the same image id.
    run(skopeo(tmp.path()).args([
        "copy",
        "-q",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:src", layout.path().display()),
        &format!("docker://{}/y:docker", reg.host()),
    ]));
    let pulled = pull(&store, &reg.reference("y:docker"), &popts, &NoProgress).unwrap();
    assert_eq!(pulled.descriptor.media_type, MediaType::DockerManifest);
    assert_ne!(pulled.descriptor.digest, img.manifest.digest);
    let config = pulled.config.unwrap();
    assert_eq!(config.digest, img.config.digest);
    assert_eq!(config.media_type, MediaType::DockerConfig);
    let digest_of_stored = Digest::sha256_of(&store.read_blob(&pulled.descriptor.digest, 1 << 20).unwrap());
    assert_eq!(digest_of_stored, pulled.descriptor.digest);
    let raw = run(skopeo(tmp.path()).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/y:docker", reg.host()),
    ]));
    assert_eq!(Digest::sha256_of(raw.trim_end_matches('\n').as_bytes()), pulled.descriptor.digest);
}

#[test]
fn strata_pulls_an_index_skopeo_pushed() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let layout = OciDir::create(tmp.path().join("src")).unwrap();
    let amd = make_image(&layout, &[vec![("a", b"amd".to_vec())]], "linux/amd64", false, None);
    let arm = make_image(&layout, &[vec![("a", b"arm".to_vec())]], "linux/arm64", false, None);
    let index = make_index(&layout, &[(amd, "linux/amd64"), (arm.clone(), "linux/arm64")], "multi");
    run(skopeo(tmp.path()).args([
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.path().display()),
        &format!("docker://{}/m:1", reg.host()),
    ]));
    let dst = OciDir::create(tmp.path().join("dst")).unwrap();
    let popts = PullOptions { registry: options(tmp.path()), all_platforms: true, ..Default::default() };
    let pulled = pull(&dst, &reg.reference("m:1"), &popts, &NoProgress).unwrap();
    assert_eq!(pulled.descriptor.digest, index.digest);
    assert!(dst.fsck().unwrap().is_clean());
    let popts = PullOptions {
        registry: options(tmp.path()),
        platform: Some("linux/arm64".parse().unwrap()),
        ..Default::default()
    };
    let pulled = pull(&MemoryStore::new(), &reg.reference("m:1"), &popts, &NoProgress).unwrap();
    assert_eq!(pulled.descriptor.digest, arm.manifest.digest);
}
