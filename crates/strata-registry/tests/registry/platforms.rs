//! Multi-platform images: an index pushed whole, pulled for one platform or all.

use strata_registry::spec::{Index, MediaType, Platform};
use strata_registry::store::{Backend, BlobStore, MemoryStore, OciDir};
use strata_registry::{Error, NoProgress, PullOptions, PushOptions, pull, push};

use crate::common::*;

#[test]
fn index_push_and_pull_by_platform_or_all() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let src = MemoryStore::new();
    let shared = ("etc/os-release", b"ID=test\n".to_vec());
    let amd =
        make_image(&src, &[vec![shared.clone()], vec![("bin/x", random_bytes(1, 5000))]], "linux/amd64", false, None);
    let arm = make_image(
        &src,
        &[vec![shared.clone()], vec![("bin/x", random_bytes(2, 5000))]],
        "linux/arm64/v8",
        false,
        None,
    );
    let index = make_index(&src, &[(amd.clone(), "linux/amd64"), (arm.clone(), "linux/arm64/v8")], "multi");
    // The shared layer is one blob in both manifests.
    assert_eq!(amd.layers[0].digest, arm.layers[0].digest);

    let opts = PushOptions { registry: options(tmp.path()), ..Default::default() };
    let pushed = push(&src, &index, &reg.reference("multi:1"), &opts, &NoProgress).unwrap();
    assert_eq!(pushed.manifests, 3);
    assert_eq!(pushed.blobs_uploaded, 5, "two configs, a layer shared by both, two others");
    assert_eq!(pushed.reference.digest(), Some(&index.digest));

    let pull_with = |store: &dyn Backend, platform: Option<&str>, all: bool| {
        let options = PullOptions {
            registry: options(tmp.path()),
            platform: platform.map(|p| Platform::parse(p).unwrap()),
            all_platforms: all,
            ..Default::default()
        };
        pull(store, &reg.reference("multi:1"), &options, &NoProgress)
    };

    // One platform: the ref points at that platform's manifest.
    let store = MemoryStore::new();
    let pulled = pull_with(&store, Some("linux/arm64"), false).unwrap();
    assert_eq!(pulled.descriptor.digest, arm.manifest.digest);
    assert_eq!(pulled.descriptor.platform, Some(Platform::parse("linux/arm64/v8").unwrap()));
    assert_eq!(pulled.config.as_ref().unwrap().digest, arm.config.digest);
    assert_eq!(pulled.reference.digest(), Some(&index.digest));
    assert_eq!(store.resolve_ref(&pulled.ref_name).unwrap().digest, arm.manifest.digest);
    assert!(!store.contains(&amd.config.digest).unwrap());
    assert!(!store.contains(&index.digest).unwrap());

    // The host's platform by default.
    let pulled = pull_with(&MemoryStore::new(), None, false);
    let host = Platform::host();
    if host.matches(&Platform::parse("linux/amd64").unwrap()) {
        assert_eq!(pulled.unwrap().descriptor.digest, amd.manifest.digest);
    } else if host.matches(&Platform::parse("linux/arm64").unwrap()) {
        assert_eq!(pulled.unwrap().descriptor.digest, arm.manifest.digest);
    } else {
        assert!(matches!(pulled, Err(Error::PlatformNotFound { .. })));
    }

    // All platforms: the index itself is tagged, every manifest and blob is stored.
    let layout = OciDir::create(tmp.path().join("all")).unwrap();
    let pulled = pull_with(&layout, None, true).unwrap();
    assert_eq!(pulled.descriptor.digest, index.digest);
    assert_eq!(pulled.descriptor.media_type, MediaType::OciIndex);
    assert_eq!(pulled.config, None);
    assert_eq!(pulled.manifests.len(), 2);
    assert_eq!(pulled.blobs_fetched, 5);
    for d in
        amd.blobs().into_iter().chain(arm.blobs()).chain([amd.manifest.digest.clone(), arm.manifest.digest.clone()])
    {
        assert!(layout.contains(&d).unwrap(), "{d}");
    }
    let stored = Index::from_slice(&layout.read_blob(&index.digest, 1 << 20).unwrap()).unwrap();
    assert_eq!(stored.manifests.len(), 2);
    let report = layout.fsck().unwrap();
    assert!(report.is_clean(), "{report:?}");

    // A platform the index lacks: the error lists what it has.
    let err = pull_with(&MemoryStore::new(), Some("linux/s390x"), false).unwrap_err();
    match &err {
        Error::PlatformNotFound { platform, available, .. } => {
            assert_eq!(platform, "linux/s390x");
            assert_eq!(available, &vec!["linux/amd64".to_owned(), "linux/arm64".to_owned()]);
        }
        e => panic!("{e}"),
    }
}
