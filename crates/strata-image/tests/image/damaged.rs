//! Damaged stores: fsck finds what unpack refuses, gc removes nothing it cannot prove
//! unreachable, and a failed unpack leaves nothing behind.

use std::path::Path;

use strata_image::{Error, FsckOptions, GcOptions, Problem, Store, UnpackOptions};
use strata_layer::{WriteOptions, reencode_tar};
use strata_spec::{Compression, Descriptor, Digest, Manifest, MediaType};

use crate::fixture::{E, config_for, layer_tar, scratch};

/// A layer blob of `tar` compressed with `compression`, and its diff_id.
fn blob(tar: &[u8], compression: Compression) -> (Vec<u8>, Digest) {
    let mut out = Vec::new();
    let info = reencode_tar(tar, &mut out, &WriteOptions::default().compression(compression)).unwrap();
    (out, info.diff_id)
}

/// Store `layers` (bytes, media type) and a config listing `diff_ids`, tag the manifest
/// `tag`, return its descriptor.
fn image(store: &Store, layers: &[(Vec<u8>, MediaType)], diff_ids: &[Digest], tag: &str) -> Descriptor {
    let b = store.backend();
    let descs = layers
        .iter()
        .map(|(bytes, mt)| {
            let info = b.put_blob(bytes).unwrap();
            Descriptor::new(mt.clone(), info.digest, info.size)
        })
        .collect();
    let config = config_for(diff_ids);
    let c = b.put_blob(&config).unwrap();
    let manifest =
        Manifest::new(MediaType::OciManifest, Descriptor::new(MediaType::OciConfig, c.digest, c.size), descs);
    let m = b.put_blob(&manifest.to_canonical_json()).unwrap();
    let desc = Descriptor::new(MediaType::OciManifest, m.digest, m.size);
    b.set_ref(tag, &desc).unwrap();
    desc
}

fn tar_of(name: &str) -> Vec<u8> {
    layer_tar(&[E::File(name, b"content\n", 0o644, 0)])
}

/// Every damage unpack refuses: fsck finds it (cheaply unless only a deep check can),
/// names the blob, and a store without it is clean at every depth.
#[test]
fn fsck_finds_what_unpack_refuses() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("s")).unwrap();
    let (gz, gz_diff) = blob(&tar_of("a"), Compression::Gzip);
    let (zst, zst_diff) = blob(&tar_of("b"), Compression::Zstd);
    let gzip = MediaType::layer(strata_spec::Family::Oci, Compression::Gzip);
    let zstd = MediaType::layer(strata_spec::Family::Oci, Compression::Zstd);
    image(
        &store,
        &[(gz.clone(), gzip.clone()), (zst.clone(), zstd.clone())],
        &[gz_diff.clone(), zst_diff.clone()],
        "good",
    );
    for o in [FsckOptions::default(), FsckOptions { rehash: false, deep: true }] {
        let r = store.fsck_with(&o).unwrap();
        assert!(r.is_clean(), "{o:?}: {r}");
    }
    store.image("good").unwrap().unpack_raw(tmp.path().join("ok"), &UnpackOptions::default()).unwrap();

    let wrong = Digest::sha256_of(b"not the tar");
    let (other, other_diff) = blob(&tar_of("c"), Compression::Gzip);
    // (tag, layers, diff_ids, found without --deep, what the problem says)
    type Case = (&'static str, Vec<(Vec<u8>, MediaType)>, Vec<Digest>, bool, fn(&Problem) -> bool);
    let cases: Vec<Case> = vec![
        (
            "fewer-diff-ids",
            vec![(gz.clone(), gzip.clone()), (other.clone(), gzip.clone())],
            vec![gz_diff.clone()],
            true,
            |p| matches!(p, Problem::LayerCount { layers: 2, diff_ids: 1, .. }),
        ),
        ("more-diff-ids", vec![(gz.clone(), gzip.clone())], vec![gz_diff.clone(), other_diff.clone()], true, |p| {
            matches!(p, Problem::LayerCount { layers: 1, diff_ids: 2, .. })
        }),
        ("wrong-diff-id", vec![(other.clone(), gzip.clone())], vec![wrong.clone()], false, |p| {
            matches!(p, Problem::DiffIdMismatch { .. })
        }),
        ("zstd-as-gzip", vec![(zst.clone(), gzip.clone())], vec![zst_diff.clone()], true, |p| {
            matches!(p, Problem::CompressionMismatch { found: Compression::Zstd, .. })
        }),
        ("tar-as-gzip", vec![(tar_of("d"), gzip.clone())], vec![Digest::sha256_of(&tar_of("d"))], true, |p| {
            matches!(p, Problem::CompressionMismatch { found: Compression::None, .. })
        }),
        (
            "truncated-gzip",
            vec![(other[..other.len() / 2].to_vec(), gzip.clone())],
            vec![other_diff.clone()],
            false,
            |p| matches!(p, Problem::BadLayer { .. }),
        ),
    ];
    for (tag, layers, diff_ids, cheap, is) in cases {
        let s = Store::create(tmp.path().join(tag)).unwrap();
        image(&s, &layers, &diff_ids, tag);
        // unpack refuses it, and leaves nothing (the target's parents included).
        let target = tmp.path().join(tag).join("x/a/b/c");
        let refused = s.image(tag).and_then(|img| img.unpack_raw(&target, &UnpackOptions::default()).map(drop));
        assert!(refused.is_err(), "{tag}: unpacked");
        assert!(!tmp.path().join(tag).join("x").exists(), "{tag}: a failed unpack left its parents");
        for (opts, found) in [
            (FsckOptions::default(), cheap),
            (FsckOptions { rehash: false, deep: false }, cheap),
            (FsckOptions { rehash: false, deep: true }, true),
        ] {
            let r = s.fsck_with(&opts).unwrap();
            if found {
                assert!(r.problems.iter().any(is), "{tag} {opts:?}: {r}");
                assert_eq!(r.problems.len(), 1, "{tag} {opts:?}: {r}");
            } else {
                assert!(r.is_clean(), "{tag} {opts:?}: {r}");
            }
        }
    }
}

/// GC with a tagged image whose manifest is gone removes nothing (the config and layers
/// of that image may be wanted back), unless forced; a malformed one the same.
#[test]
fn gc_removes_nothing_when_a_tagged_manifest_is_missing() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("s")).unwrap();
    let gzip = MediaType::layer(strata_spec::Family::Oci, Compression::Gzip);
    let (a, a_diff) = blob(&tar_of("a"), Compression::Gzip);
    let (b, b_diff) = blob(&tar_of("b"), Compression::Gzip);
    let lost = image(&store, &[(a, gzip.clone())], &[a_diff], "lost");
    image(&store, &[(b, gzip)], &[b_diff], "kept");
    let junk = store.backend().put_blob(b"junk").unwrap().digest;
    store.backend().delete(&lost.digest).unwrap();
    let before = store.backend().list().unwrap();
    let e = store.gc(false).unwrap_err();
    assert!(matches!(&e, Error::Store(strata_store::Error::GcAborted { digest, .. }) if *digest == lost.digest), "{e}");
    assert!(e.to_string().contains("nothing removed"), "{e}");
    assert_eq!(store.backend().list().unwrap(), before);
    // rmi of another image still untags and deletes it; its blobs wait for a gc that can.
    let report = store.remove(&["kept"], &strata_image::RemoveOptions::default()).unwrap();
    assert!(report.failed.is_empty() && report.gc.is_none(), "{report:?}");
    assert!(store.image("kept").is_err());
    let forced = store.gc_with(&GcOptions { force: true, ..GcOptions::default() }).unwrap();
    assert!(forced.removed.iter().any(|(d, _)| *d == junk));
    assert_eq!(store.backend().list().unwrap(), Vec::<Digest>::new());
}

/// A failed unpack into a path whose parents exist in part removes only what it made.
#[test]
fn a_failed_unpack_removes_only_the_folders_it_made() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("s")).unwrap();
    let gzip = MediaType::layer(strata_spec::Family::Oci, Compression::Gzip);
    let (other, _) = blob(&tar_of("c"), Compression::Gzip);
    image(&store, &[(other, gzip)], &[Digest::sha256_of(b"wrong")], "bad");
    let img = store.image("bad").unwrap();
    let x = tmp.path().join("x");
    std::fs::create_dir_all(x.join("a")).unwrap();
    std::fs::write(x.join("a/keep"), b"mine").unwrap();
    for (what, target) in [("bundle", x.join("a/b/c")), ("raw", x.join("a/b/c"))] {
        let r = if what == "raw" {
            img.unpack_raw(&target, &UnpackOptions::default()).map(drop)
        } else {
            img.unpack(&target).map(drop)
        };
        assert!(r.is_err(), "{what}");
        assert!(!x.join("a/b").exists(), "{what}: left {}", x.join("a/b").display());
        assert_eq!(std::fs::read(x.join("a/keep")).unwrap(), b"mine");
    }
    // An existing empty target stays (emptied), as before.
    std::fs::create_dir(x.join("a/empty")).unwrap();
    assert!(img.unpack_raw(x.join("a/empty"), &UnpackOptions::default()).is_err());
    assert!(is_empty_dir(&x.join("a/empty")));
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut e| e.next().is_none())
}
