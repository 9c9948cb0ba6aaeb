//! Bad input: each gives its own typed error, and nothing in the layout changes.

use std::path::Path;

use strata_store::spec::{Digest, MediaType};
use strata_store::{Backend, BlobStore, Error, GcOptions, MAX_DOCUMENT_SIZE, OciDir, Problem};

use crate::common::{ErrCheck, assert_unchanged, snapshot, write_image};

/// A good layout with one tagged image; returns the layout path and the image.
fn good_layout(dir: &Path) -> (std::path::PathBuf, crate::common::Image) {
    let root = dir.join("layout");
    let store = OciDir::create(&root).unwrap();
    let img = write_image(&store, "bad-input");
    store.set_ref("t", &img.manifest).unwrap();
    assert!(store.fsck().unwrap().is_clean());
    (root, img)
}

/// Every operation that can see index.json fails with BadIndex.
fn assert_bad_index(root: &Path) {
    let store = OciDir::open(root).unwrap();
    let is_bad = |r: Result<(), Error>, op: &str| match r {
        Err(Error::BadIndex { path, .. }) => assert!(path.ends_with("index.json"), "{op}"),
        other => panic!("{op}: expected BadIndex, got {other:?}"),
    };
    let d = write_image(&strata_store::MemoryStore::new(), "x").manifest;
    is_bad(store.index().map(drop), "index");
    is_bad(store.refs().map(drop), "refs");
    is_bad(store.resolve_ref("t").map(drop), "resolve_ref");
    is_bad(store.set_ref("t2", &d).map(drop), "set_ref");
    is_bad(store.remove_ref("t").map(drop), "remove_ref");
    is_bad(store.gc(&GcOptions::default()).map(drop), "gc");
    is_bad(store.gc(&GcOptions::dry_run()).map(drop), "gc --dry-run");
    is_bad(store.fsck().map(drop), "fsck");
}

#[test]
fn index_json_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = good_layout(dir.path());
    std::fs::write(root.join("index.json"), b"{\"schemaVersion\": 2, \"manifests\": [").unwrap();
    let before = snapshot(&root);
    assert_bad_index(&root);
    assert!(OciDir::open_or_create(&root).is_ok());
    assert_unchanged(&before, &snapshot(&root), "operations on a non-JSON index.json");
}

#[test]
fn index_json_with_a_path_traversal_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = good_layout(dir.path());
    // The parse layer refuses such a digest outright...
    for bad in ["sha256:../../x", "sha256:../../../../etc/passwd", "sha256:/etc/passwd"] {
        assert!(Digest::parse(bad).is_err(), "{bad}");
        assert!(bad.parse::<Digest>().is_err(), "{bad}");
    }
    // ...so an index that holds one is a bad index, and no path is ever built from it.
    let index = std::fs::read_to_string(root.join("index.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&index).unwrap();
    let real = v["manifests"][0]["digest"].as_str().unwrap().to_owned();
    std::fs::write(root.join("index.json"), index.replace(&real, "sha256:../../x")).unwrap();
    let before = snapshot(&root);
    assert_bad_index(&root);
    assert_unchanged(&before, &snapshot(&root), "operations on an index with sha256:../../x");
}

#[test]
fn wrong_oci_layout_version() {
    let cases: [(&[u8], ErrCheck); 5] = [
        (
            br#"{"imageLayoutVersion":"2.0.0"}"#,
            |e| matches!(e, Error::UnsupportedLayoutVersion { version, .. } if version == "2.0.0"),
        ),
        (br#"{"imageLayoutVersion":"1"}"#, |e| matches!(e, Error::UnsupportedLayoutVersion { .. })),
        (br#"{"imageLayoutVersion":1}"#, |e| matches!(e, Error::InvalidLayout { .. })),
        (b"not json", |e| matches!(e, Error::InvalidLayout { .. })),
        (b"{}", |e| matches!(e, Error::InvalidLayout { .. })),
    ];
    for (content, check) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (root, _) = good_layout(dir.path());
        std::fs::write(root.join("oci-layout"), content).unwrap();
        let before = snapshot(&root);
        for (op, r) in [("open", OciDir::open(&root)), ("open_or_create", OciDir::open_or_create(&root))] {
            let e = r.unwrap_err();
            assert!(check(&e), "{op} {:?}: {e}", String::from_utf8_lossy(content));
        }
        assert!(matches!(OciDir::create(&root), Err(Error::InvalidLayout { .. })));
        assert_unchanged(&before, &snapshot(&root), "opening a layout with a bad oci-layout");
    }
    // 1.x minor versions are read.
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = good_layout(dir.path());
    std::fs::write(root.join("oci-layout"), br#"{"imageLayoutVersion":"1.1.0"}"#).unwrap();
    assert!(OciDir::open(&root).is_ok());
}

#[test]
fn a_blob_whose_bytes_do_not_match_its_name() {
    for which in ["manifest", "layer"] {
        let dir = tempfile::tempdir().unwrap();
        let (root, img) = good_layout(dir.path());
        let store = OciDir::open(&root).unwrap();
        let target = if which == "manifest" { &img.manifest } else { &img.layer };
        let path = store.blob_path(&target.digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let before = snapshot(&root);

        let e = store.read_blob(&target.digest, u64::MAX).unwrap_err();
        assert!(
            matches!(&e, Error::DigestMismatch { expected, actual } if *expected == target.digest && *actual == Digest::sha256_of(&bytes)),
            "{which}: {e}"
        );
        let e = store.read_descriptor(target, MAX_DOCUMENT_SIZE.max(target.size)).unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{which}: {e}");
        let report = store.fsck().unwrap();
        assert_eq!(report.problems.len(), 1, "{which}: {report}");
        assert!(matches!(&report.problems[0], Problem::Corrupt { digest, .. } if *digest == target.digest));
        if which == "manifest" {
            let e = store.gc(&GcOptions::default()).unwrap_err();
            assert!(matches!(e, Error::GcAborted { .. }), "{e}");
        }
        assert_unchanged(&before, &snapshot(&root), "reading a corrupt blob");
    }
}

#[test]
fn a_descriptor_with_the_wrong_size() {
    let dir = tempfile::tempdir().unwrap();
    let (root, img) = good_layout(dir.path());
    let index = std::fs::read_to_string(root.join("index.json")).unwrap();
    let size = format!("\"size\":{}", img.manifest.size);
    assert!(index.contains(&size));
    std::fs::write(root.join("index.json"), index.replace(&size, &format!("\"size\":{}", img.manifest.size + 10)))
        .unwrap();
    // The edited index.json parses: a lookup once it is a timestamp tick old keeps its
    // table (a cache of it, not a change the bad descriptor makes). Kept before the
    // snapshot, so that how slow the operations below run does not matter.
    std::thread::sleep(std::time::Duration::from_millis(30));
    OciDir::open(&root).unwrap().resolve_ref("t").unwrap();
    let before = snapshot(&root);
    let store = OciDir::open(&root).unwrap();
    let desc = store.resolve_ref("t").unwrap();
    let e = store.read_descriptor(&desc, MAX_DOCUMENT_SIZE).unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { expected, actual, .. } if expected == img.manifest.size + 10 && actual == img.manifest.size),
        "{e}"
    );
    assert!(matches!(store.open_descriptor(&desc), Err(Error::SizeMismatch { .. })));
    let e = store.gc(&GcOptions::default()).unwrap_err();
    assert!(matches!(&e, Error::GcAborted { source, .. } if matches!(**source, Error::SizeMismatch { .. })), "{e}");
    let report = store.fsck().unwrap();
    assert!(matches!(report.problems.as_slice(), [Problem::SizeMismatch { .. }]), "{report}");
    assert_unchanged(&before, &snapshot(&root), "a descriptor with the wrong size");
}

#[test]
fn a_missing_blob() {
    let dir = tempfile::tempdir().unwrap();
    let (root, img) = good_layout(dir.path());
    let store = OciDir::open(&root).unwrap();
    std::fs::remove_file(store.blob_path(&img.config.digest)).unwrap();
    let before = snapshot(&root);
    assert!(matches!(store.open(&img.config.digest), Err(Error::NotFound(d)) if d == img.config.digest));
    assert!(matches!(store.read_descriptor(&img.config, MAX_DOCUMENT_SIZE), Err(Error::NotFound(_))));
    let report = store.fsck().unwrap();
    assert!(
        matches!(report.problems.as_slice(), [Problem::Dangling { media_type: MediaType::OciConfig, .. }]),
        "{report}"
    );
    assert_unchanged(&before, &snapshot(&root), "reading a missing blob");
}

#[test]
fn not_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    let before = snapshot(dir.path());
    assert!(matches!(OciDir::open(dir.path()), Err(Error::InvalidLayout { .. })));
    assert!(matches!(OciDir::open(dir.path().join("absent")), Err(Error::Io(_))));
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    assert!(matches!(OciDir::open(dir.path().join("file")), Err(Error::InvalidLayout { .. })));
    std::fs::remove_file(dir.path().join("file")).unwrap();
    assert_unchanged(&before, &snapshot(dir.path()), "opening a non-layout");
    // A layout without index.json.
    let (root, _) = good_layout(dir.path());
    std::fs::remove_file(root.join("index.json")).unwrap();
    assert!(matches!(OciDir::open(&root), Err(Error::InvalidLayout { reason, .. }) if reason.contains("index.json")));
}
