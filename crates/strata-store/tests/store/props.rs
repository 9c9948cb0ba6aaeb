//! Property tests: write-then-read is the identity under the right name; the index
//! round-trips losslessly and byte-stably.

use std::io::Write;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};
use strata_store::spec::{ANNOTATION_REF_NAME, Descriptor, Digest, Index, MediaType};
use strata_store::{Backend, BlobStore, Expected, MemoryStore, OciDir};

fn oci() -> &'static (tempfile::TempDir, OciDir) {
    static STORE: OnceLock<(tempfile::TempDir, OciDir)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = OciDir::create(dir.path().join("l")).unwrap();
        (dir, store)
    })
}

proptest! {
    #![proptest_config(strata_testkit::proptest_config(64))]

    #[test]
    fn written_blobs_read_back_under_their_digest(
        data in prop::collection::vec(any::<u8>(), 0..200_000),
        chunk in 1usize..70_000,
    ) {
        let mem = MemoryStore::new();
        for store in [&mem as &dyn BlobStore, &oci().1] {
            let mut w = store.begin_write().unwrap();
            for c in data.chunks(chunk) {
                w.write_all(c).unwrap();
            }
            let info = w.commit(Expected::none()).unwrap();
            prop_assert_eq!(&info.digest, &Digest::sha256_of(&data));
            prop_assert_eq!(info.size, data.len() as u64);
            prop_assert_eq!(store.read_blob(&info.digest, u64::MAX).unwrap(), data.clone());
            // And with the expectation a copier would have.
            let again = store.put_blob_expected(&data, Expected { digest: Some(info.digest.clone()), size: Some(info.size) }).unwrap();
            prop_assert!(again.existed);
        }
        prop_assert!(oci().1.list().unwrap().contains(&Digest::sha256_of(&data)));
    }
}

fn media_type() -> impl Strategy<Value = MediaType> {
    prop_oneof![
        Just(MediaType::OciManifest),
        Just(MediaType::OciIndex),
        Just(MediaType::DockerManifest),
        Just(MediaType::DockerManifestList),
        "[a-z]{1,8}/[a-z.+-]{1,20}".prop_map(|s| MediaType::new(&s)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (
        media_type(),
        prop::collection::vec(any::<u8>(), 0..8),
        any::<u64>(),
        prop::option::of("[ -~]{1,30}"),
        prop::collection::btree_map("[a-z.]{1,12}", ".{0,10}", 0..3),
        prop::collection::btree_map("x[a-zA-Z]{1,6}", json_value(), 0..2),
    )
        .prop_map(|(mt, seed, size, name, annotations, extra)| {
            let mut d = Descriptor::new(mt, Digest::sha256_of(&seed), size);
            for (k, v) in annotations {
                d.set_annotation(k, v);
            }
            if let Some(name) = name {
                d.set_annotation(ANNOTATION_REF_NAME, name);
            }
            d.extra = extra.into_iter().collect();
            d
        })
}

fn index() -> impl Strategy<Value = Index> {
    (
        prop::collection::vec(descriptor(), 0..6),
        prop::option::of(Just(MediaType::OciIndex)),
        prop::collection::btree_map("x[a-zA-Z]{1,6}", json_value(), 0..3),
        prop::option::of(prop::collection::btree_map("[a-z.]{1,12}", ".{0,10}", 0..3)),
    )
        .prop_map(|(manifests, media_type, extra, annotations)| {
            let mut i = Index::new(media_type);
            i.manifests = manifests;
            i.extra = extra.into_iter().collect();
            i.annotations = annotations;
            i
        })
}

proptest! {
    #![proptest_config(strata_testkit::proptest_config(64))]

    #[test]
    fn index_round_trips_losslessly_and_byte_stably(idx in index()) {
        let dir = tempfile::tempdir().unwrap();
        let store = OciDir::create(dir.path().join("l")).unwrap();
        let path = dir.path().join("l/index.json");

        // Written by strata: canonical bytes, read back equal.
        store.update_index(&mut |i| { *i = idx.clone(); Ok(()) }).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        prop_assert_eq!(&bytes, &idx.to_canonical_json());
        prop_assert_eq!(store.index().unwrap(), idx.clone());
        prop_assert_eq!(Index::from_slice(&bytes).unwrap().to_canonical_json(), bytes.clone());

        // A ref added and removed again gives the same bytes back.
        let d = Descriptor::new(MediaType::OciManifest, Digest::sha256_of(b"p"), 1);
        store.set_ref("proptest-tag-that-is-not-generated", &d).unwrap();
        store.remove_ref("proptest-tag-that-is-not-generated").unwrap();
        prop_assert_eq!(std::fs::read(&path).unwrap(), bytes.clone());

        // Written by another tool, pretty and in another key order: the same value.
        let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
        prop_assert_eq!(store.index().unwrap(), idx.clone());

        // The same value in memory.
        let mem = MemoryStore::new();
        mem.update_index(&mut |i| { *i = idx.clone(); Ok(()) }).unwrap();
        prop_assert_eq!(mem.index().unwrap(), idx);
    }
}
