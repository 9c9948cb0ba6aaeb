//! Artifacts attached to images (image-spec 1.1 referrers): listed by subject, not
//! images of their own, kept by GC while the image lives (by umoci's GC too), carried by
//! an OCI archive, dropped by GC with their image.

use std::collections::BTreeMap;
use std::process::Command;

use strata_image::{ArchiveFormat, Store};
use strata_spec::MediaType;

use crate::fixture::{scratch, tomcat_store};

fn spdx() -> MediaType {
    MediaType::new("application/spdx+json")
}

#[test]
fn an_attached_artifact_lives_with_its_image_and_travels_in_an_oci_archive() {
    let tmp = scratch();
    let (store, img) = tomcat_store(tmp.path());
    let before = store.images().unwrap();
    let notes = BTreeMap::from([("org.opencontainers.image.created".to_owned(), "2023-11-14T22:13:20Z".to_owned())]);
    let sbom = img.attach(spdx(), spdx(), br#"{"spdxVersion":"SPDX-2.3"}"#, notes.clone()).unwrap();
    // Attaching the same content again is the same artifact, listed once.
    assert_eq!(img.attach(spdx(), spdx(), br#"{"spdxVersion":"SPDX-2.3"}"#, notes.clone()).unwrap(), sbom);
    let other = img
        .attach(
            MediaType::new("application/vnd.example.sig"),
            MediaType::new("application/octet-stream"),
            b"sig",
            BTreeMap::new(),
        )
        .unwrap();

    let listed = img.referrers(None).unwrap();
    assert_eq!(listed.media_type, Some(MediaType::OciIndex));
    let mut want = vec![sbom.digest.clone(), other.digest.clone()];
    want.sort();
    assert_eq!(listed.manifests.iter().map(|d| d.digest.clone()).collect::<Vec<_>>(), want);
    let only = img.referrers(Some(&spdx())).unwrap();
    assert_eq!(only.manifests.len(), 1);
    assert_eq!(only.manifests[0].artifact_type, Some(spdx()));
    assert_eq!(only.manifests[0].annotations.as_ref(), Some(&notes));
    // The artifact manifest is image-spec 1.1's: empty config, subject = the image.
    let m = strata_spec::Manifest::from_slice(&store.backend().read_blob(&sbom.digest, 1 << 20).unwrap()).unwrap();
    assert_eq!(m.config.media_type, MediaType::OciEmpty);
    assert_eq!(m.config.digest, strata_spec::Digest::sha256_of(b"{}"));
    assert_eq!(m.subject.as_ref().map(|s| &s.digest), Some(img.digest()));
    assert_eq!(m.artifact_type, Some(spdx()));
    // Artifacts are not images.
    assert_eq!(store.images().unwrap(), before);

    // umoci's GC keeps them: they are in index.json.
    if strata_testkit::require_tool("umoci") {
        let layout = store.path().unwrap();
        strata_testkit::run(Command::new("umoci").arg("gc").arg("--layout").arg(layout));
        assert_eq!(Store::open(layout).unwrap().referrers(img.digest(), None).unwrap(), listed);
    }
    // So does strata's, while the image lives.
    assert!(store.gc(false).unwrap().removed.is_empty());
    assert_eq!(img.referrers(None).unwrap(), listed);

    // An OCI archive carries them; loading brings them back.
    let archive = store.save(&["tomcat"], ArchiveFormat::OciArchive, Vec::new()).unwrap();
    let copy = Store::create(tmp.path().join("copy")).unwrap();
    let loaded = copy.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 1, "artifacts are not loaded as images: {loaded:?}");
    assert_eq!(copy.image("tomcat").unwrap().referrers(None).unwrap(), listed);
    assert!(copy.fsck().unwrap().is_clean());
    assert_eq!(copy.images().unwrap().len(), 1);

    // The image goes: the next GC takes its artifacts too.
    store.remove(&["tomcat"], &Default::default()).unwrap();
    store.gc(false).unwrap();
    assert!(store.backend().index().unwrap().manifests.is_empty(), "{:?}", store.backend().index().unwrap());
    assert!(store.backend().list().unwrap().is_empty());
}
