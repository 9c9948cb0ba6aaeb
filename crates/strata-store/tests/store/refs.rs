//! Refs in the index: set, resolve, list, remove.

use strata_store::spec::{ANNOTATION_REF_NAME, Descriptor, MediaType};
use strata_store::{Backend, Error, OciDir};

use crate::common::{stores, write_image};

#[test]
fn set_resolve_list_remove() {
    for (name, store, _dir) in stores() {
        let a = write_image(&*store, "a");
        let b = write_image(&*store, "b");
        for tag in ["base", "tomcat02:1.0", "127.0.0.1:5000/base:latest", "ünïcode tag"] {
            assert_eq!(store.set_ref(tag, &a.manifest).unwrap(), None, "{name}");
        }
        let got = store.resolve_ref("tomcat02:1.0").unwrap();
        assert_eq!(got.digest, a.manifest.digest);
        assert_eq!(got.ref_name(), Some("tomcat02:1.0"));
        // Re-pointing a tag replaces its holder, in place.
        let prev = store.set_ref("tomcat02:1.0", &b.manifest).unwrap().unwrap();
        assert_eq!(prev.digest, a.manifest.digest);
        assert_eq!(store.resolve_ref("tomcat02:1.0").unwrap().digest, b.manifest.digest);
        let refs = store.refs().unwrap();
        let names: Vec<_> = refs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["base", "tomcat02:1.0", "127.0.0.1:5000/base:latest", "ünïcode tag"], "{name}");
        assert_eq!(store.index().unwrap().manifests.len(), 4);
        // Setting the same again is a no-op.
        store.set_ref("base", &a.manifest).unwrap();
        assert_eq!(store.index().unwrap().manifests.len(), 4);

        let removed = store.remove_ref("base").unwrap();
        assert_eq!(removed.digest, a.manifest.digest);
        assert!(matches!(store.resolve_ref("base"), Err(Error::RefNotFound(n)) if n == "base"));
        assert!(matches!(store.remove_ref("base"), Err(Error::RefNotFound(_))));
        assert_eq!(store.refs().unwrap().len(), 3);
        assert!(store.fsck().unwrap().is_clean(), "{name}");
    }
}

#[test]
fn bad_ref_names_are_refused() {
    for (name, store, _dir) in stores() {
        let a = write_image(&*store, "a");
        let before = store.index().unwrap();
        for bad in ["", "a\nb", "tab\tname", "nul\0", &"x".repeat(5000)] {
            let e = store.set_ref(bad, &a.manifest).unwrap_err();
            assert!(matches!(e, Error::InvalidRefName { .. }), "{name}: {bad:?}: {e}");
        }
        assert_eq!(store.index().unwrap(), before);
    }
}

#[test]
fn an_ambiguous_ref_from_another_tool_is_an_error() {
    for (name, store, _dir) in stores() {
        let a = write_image(&*store, "a");
        let b = write_image(&*store, "b");
        store
            .update_index(&mut |index| {
                for d in [&a.manifest, &b.manifest] {
                    let mut d = d.clone();
                    d.set_annotation(ANNOTATION_REF_NAME, "dup");
                    index.manifests.push(d);
                }
                Ok(())
            })
            .unwrap();
        assert!(matches!(store.resolve_ref("dup"), Err(Error::AmbiguousRef { count: 2, .. })), "{name}");
        let report = store.fsck().unwrap();
        assert_eq!(report.problems.len(), 1, "{report}");
        // set_ref resolves it: the name then names one descriptor.
        store.set_ref("dup", &b.manifest).unwrap();
        assert_eq!(store.resolve_ref("dup").unwrap().digest, b.manifest.digest);
        assert_eq!(store.index().unwrap().manifests.len(), 1);
    }
}

#[test]
fn untagged_entries_and_other_annotations_survive_ref_changes() {
    for (name, store, _dir) in stores() {
        let a = write_image(&*store, "a");
        let mut untagged = a.manifest.clone();
        untagged.set_annotation("org.example.note", "keep me");
        store
            .update_index(&mut |i| {
                i.manifests.push(untagged.clone());
                Ok(())
            })
            .unwrap();
        store.set_ref("t", &a.manifest).unwrap();
        store.remove_ref("t").unwrap();
        let index = store.index().unwrap();
        assert_eq!(index.manifests, vec![untagged.clone()], "{name}");
    }
}

#[test]
fn index_json_is_canonical_and_readable_by_jq() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let a = write_image(&store, "a");
    store.set_ref("v1", &a.manifest).unwrap();
    let bytes = std::fs::read(dir.path().join("l/index.json")).unwrap();
    assert_eq!(bytes, store.index().unwrap().to_canonical_json());
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["manifests"][0]["annotations"][ANNOTATION_REF_NAME], "v1");
    assert_eq!(v["mediaType"], MediaType::OciIndex.as_str());
    assert_eq!(v["schemaVersion"], 2);
    let _: Descriptor = serde_json::from_value(v["manifests"][0].clone()).unwrap();
}
