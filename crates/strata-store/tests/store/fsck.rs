//! fsck finds each kind of problem, on both stores.

use std::sync::Arc;

use strata_store::spec::{Descriptor, Digest, History, ImageConfig, Manifest, MediaType};
use strata_store::{Backend, BlobStore, MemoryStore, Problem};

use crate::common::{stores, write_image};

/// Tag a manifest built from `config` and `layers` as `name`; returns its descriptor.
fn tag_manifest(
    store: &dyn Backend,
    name: &str,
    mt: MediaType,
    config: Descriptor,
    layers: Vec<Descriptor>,
) -> Descriptor {
    let m = Manifest::new(mt.clone(), config, layers);
    let blob = store.put_blob(&m.to_canonical_json()).unwrap();
    let desc = Descriptor::new(mt, blob.digest, blob.size);
    store.set_ref(name, &desc).unwrap();
    desc
}

type Setup = fn(&dyn Backend);
type Check = fn(&Problem) -> bool;

#[test]
fn fsck_reports_each_kind_of_problem() {
    let cases: Vec<(&str, Setup, Option<Check>)> = vec![
        (
            "a clean image",
            |s| {
                let i = write_image(s, "clean");
                s.set_ref("clean", &i.manifest).unwrap();
            },
            None,
        ),
        (
            "a missing layer",
            |s| {
                let i = write_image(s, "x");
                s.set_ref("x", &i.manifest).unwrap();
                s.delete(&i.layer.digest).unwrap();
            },
            Some(|p| matches!(p, Problem::Dangling { media_type: MediaType::OciLayer, .. })),
        ),
        (
            "a missing foreign layer is fine",
            |s| {
                let i = write_image(s, "x");
                let foreign = Descriptor::new(MediaType::DockerForeignLayerGzip, Digest::sha256_of(b"windows"), 9);
                // The config lists both layers' diff_ids.
                let mut config = ImageConfig::from_slice(&s.read_blob(&i.config.digest, u64::MAX).unwrap()).unwrap();
                config.push_layer(Digest::sha256_of(b"windows tar"), History::default());
                let c = s.put_blob(&config.to_canonical_json()).unwrap();
                let config = Descriptor::new(MediaType::OciConfig, c.digest, c.size);
                tag_manifest(s, "x", MediaType::OciManifest, config, vec![i.layer.clone(), foreign]);
            },
            None,
        ),
        (
            "a missing manifest",
            |s| {
                let i = write_image(s, "x");
                s.set_ref("x", &i.manifest).unwrap();
                s.delete(&i.manifest.digest).unwrap();
            },
            Some(|p| {
                matches!(
                    p,
                    Problem::Dangling {
                        media_type: MediaType::OciManifest,
                        referrer: strata_store::Referrer::Index(Some(_)),
                        ..
                    }
                )
            }),
        ),
        (
            "an index entry with the wrong size",
            |s| {
                let i = write_image(s, "x");
                let mut d = i.manifest.clone();
                d.size += 1;
                s.set_ref("x", &d).unwrap();
            },
            Some(|p| matches!(p, Problem::SizeMismatch { .. })),
        ),
        (
            "a layer descriptor with the wrong size",
            |s| {
                let i = write_image(s, "x");
                let mut l = i.layer.clone();
                l.size -= 1;
                tag_manifest(s, "x", MediaType::OciManifest, i.config.clone(), vec![l]);
            },
            Some(|p| matches!(p, Problem::SizeMismatch { referrer: strata_store::Referrer::Blob(_), .. })),
        ),
        (
            "a config that is not JSON",
            |s| {
                let i = write_image(s, "x");
                let c = s.put_blob(b"not json").unwrap();
                tag_manifest(
                    s,
                    "x",
                    MediaType::OciManifest,
                    Descriptor::new(MediaType::OciConfig, c.digest, c.size),
                    vec![i.layer],
                );
            },
            Some(|p| matches!(p, Problem::BadDocument { media_type: MediaType::OciConfig, .. })),
        ),
        (
            "a manifest whose own media type disagrees with its descriptor",
            |s| {
                let i = write_image(s, "x");
                let m = Manifest::new(MediaType::DockerManifest, i.config.clone(), vec![i.layer.clone()]);
                let b = s.put_blob(&m.to_canonical_json()).unwrap();
                s.set_ref("x", &Descriptor::new(MediaType::OciManifest, b.digest, b.size)).unwrap();
            },
            Some(|p| matches!(p, Problem::BadDocument { error, .. } if error.contains("mismatch"))),
        ),
        (
            "a layer type where the config belongs",
            |s| {
                let i = write_image(s, "x");
                let mut c = i.config.clone();
                c.media_type = MediaType::OciLayerGzip;
                tag_manifest(s, "x", MediaType::OciManifest, c, vec![i.layer]);
            },
            Some(|p| matches!(p, Problem::WrongKind { wanted: "an image config", .. })),
        ),
        (
            "a tagged layer",
            |s| {
                let i = write_image(s, "x");
                s.set_ref("x", &i.layer).unwrap();
            },
            Some(|p| matches!(p, Problem::WrongKind { wanted: "a manifest or index", .. })),
        ),
    ];
    for (name, store, _dir) in stores() {
        for (case, setup, check) in &cases {
            // Each case on a fresh store of the same kind.
            let fresh: Arc<dyn Backend> = if name == "memory" {
                Arc::new(MemoryStore::new())
            } else {
                let d = _dir.as_ref().unwrap().path().join(case.replace(' ', "-"));
                Arc::new(strata_store::OciDir::create(d).unwrap())
            };
            let _ = &store;
            setup(&*fresh);
            let report = fresh.fsck().unwrap();
            match check {
                None => assert!(report.is_clean(), "{name}: {case}: {report}"),
                Some(check) => {
                    assert_eq!(report.problems.len(), 1, "{name}: {case}: {report}");
                    assert!(check(&report.problems[0]), "{name}: {case}: {report}");
                }
            }
        }
    }
}

#[test]
fn fsck_finds_corrupt_blobs_by_rehashing() {
    let mem = MemoryStore::new();
    let i = write_image(&mem, "x");
    mem.set_ref("x", &i.manifest).unwrap();
    let mut bytes = mem.read_blob(&i.layer.digest, u64::MAX).unwrap();
    bytes[600] ^= 0xff;
    let actual = Digest::sha256_of(&bytes);
    mem.insert_unverified(i.layer.digest.clone(), bytes);
    let report = mem.fsck().unwrap();
    assert_eq!(report.problems, vec![Problem::Corrupt { digest: i.layer.digest.clone(), actual }], "{report}");
    assert_eq!(report.blobs_checked, 3);
    assert!(report.descriptors_checked >= 3);
}
