//! Property tests: round trips over generated documents.

use proptest::prelude::*;
use serde_json::{Map, Value};
use strata_spec::{Descriptor, Digest, ImageConfig, Index, MediaType, Reference, to_canonical_json};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9 _\\-\"\\\\é/\u{1F600}]{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_.]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn digest() -> impl Strategy<Value = Digest> {
    prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| Digest::sha256_of(&b))
}

proptest! {
    #![proptest_config(strata_testkit::proptest_config(256))]

    #[test]
    fn canonical_json_is_a_fixed_point(v in json_value()) {
        let a = to_canonical_json(&v).unwrap();
        let back: Value = serde_json::from_slice(&a).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(to_canonical_json(&back).unwrap(), a);
    }

    #[test]
    fn configs_keep_unknown_fields_and_nulls(
        extra in prop::collection::btree_map("x-[a-z]{1,6}", json_value(), 0..4),
        cmd in prop::option::of(prop::collection::vec("[a-z ]{0,6}", 0..3)),
        null_user in any::<bool>(),
        diff_ids in prop::collection::vec(digest(), 0..4),
        config_extra in prop::collection::btree_map("[A-Z][a-z]{1,6}X", json_value(), 0..3),
    ) {
        let mut config = Map::new();
        config.insert("Cmd".into(), cmd.map(Value::from).unwrap_or(Value::Null));
        if null_user { config.insert("User".into(), Value::Null); }
        for (k, v) in config_extra { config.insert(k, v); }
        let mut doc = Map::new();
        doc.insert("architecture".into(), "amd64".into());
        doc.insert("os".into(), "linux".into());
        doc.insert("config".into(), Value::Object(config));
        doc.insert("rootfs".into(), serde_json::json!({"type": "layers", "diff_ids": diff_ids}));
        for (k, v) in extra { doc.insert(k, v); }
        let input = serde_json::to_vec(&Value::Object(doc.clone())).unwrap();

        let c = ImageConfig::from_slice(&input).unwrap();
        let out = c.to_canonical_json();
        let back: Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(back, Value::Object(doc));
        prop_assert_eq!(ImageConfig::from_slice(&out).unwrap().to_canonical_json(), out);
    }

    #[test]
    fn indexes_round_trip(
        entries in prop::collection::vec((digest(), any::<u32>(), prop::option::of("[a-z0-9:._-]{1,20}")), 0..6),
        extra in prop::collection::btree_map("x[a-z]{1,5}", json_value(), 0..3),
    ) {
        let mut idx = Index::new(Some(MediaType::OciIndex));
        for (d, size, name) in entries {
            let mut desc = Descriptor::new(MediaType::OciManifest, d, u64::from(size));
            if let Some(n) = name { desc.set_annotation("org.opencontainers.image.ref.name", n); }
            idx.manifests.push(desc);
        }
        idx.extra = extra.into_iter().collect();
        let bytes = idx.to_canonical_json();
        let back = Index::from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &idx);
        prop_assert_eq!(back.to_canonical_json(), bytes);
    }

    #[test]
    fn reference_display_parses_back(
        reg in prop::option::of("[a-z]{1,8}\\.[a-z]{2,3}(:[0-9]{1,5})?"),
        path in prop::collection::vec("[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", 1..4),
        tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
    ) {
        let mut s = String::new();
        if let Some(r) = &reg { s.push_str(r); s.push('/'); }
        s.push_str(&path.join("/"));
        if let Some(t) = &tag { s.push(':'); s.push_str(t); }
        let r = Reference::parse(&s).unwrap();
        prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r.clone());
        prop_assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
    }

    #[test]
    fn arbitrary_strings_never_panic_the_parsers(s in "\\PC{0,80}", b in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Reference::parse(&s);
        let _ = Digest::parse(&s);
        let _ = strata_spec::Platform::parse(&s);
        let _ = ImageConfig::from_slice(&b);
        let _ = strata_spec::Manifest::from_slice(&b);
        let _ = strata_spec::ManifestOrIndex::from_slice(&b);
    }
}
