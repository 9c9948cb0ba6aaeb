//! Archives: save then load is the identity, in both formats, for several images and
//! tags; the archive forms other tools write load.

use std::fs;

use strata_image::{ArchiveFormat, LayerInput, Store};
use strata_spec::Digest;
use strata_testkit::Tree;

use crate::fixture::{A, E, archive_tar, config_for, law_compare, layer_tar, opts, scratch, tomcat_store};

/// Two images sharing a base layer, three tags, one config-only image.
fn three_images(tmp: &std::path::Path) -> Store {
    let (store, base) = tomcat_store(tmp);
    let d = tmp.join("extra");
    crate::fixture::write_files(&d, &[("srv/www/index.html", "<p>more</p>\n")]);
    let more = base.append(LayerInput::Dir(&d), &opts(1_700_000_010).author("a").tag("more:1")).unwrap();
    store.tag(&more, "127.0.0.1:5000/team/more:v1").unwrap();
    more.with_config(&opts(1_700_000_020).change("USER 1000").unwrap().tag("more:cfg")).unwrap();
    store
}

#[test]
fn save_then_load_is_the_identity_in_both_formats() {
    let tmp = scratch();
    let store = three_images(tmp.path());
    let names = ["tomcat", "more:1", "127.0.0.1:5000/team/more:v1", "more:cfg"];
    for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
        let archive = store.save(&names, format, Vec::new()).unwrap();
        // Deterministic: the same images give the same bytes.
        assert!(archive == store.save(&names, format, Vec::new()).unwrap(), "{format:?}");
        let other = Store::create(tmp.path().join(format!("{format:?}"))).unwrap();
        let loaded = other.load(&archive[..]).unwrap();
        let ids: std::collections::BTreeSet<&Digest> = loaded.iter().map(|l| &l.id).collect();
        assert_eq!(ids.len(), 3, "{format:?}: {loaded:?}");
        for name in names {
            let (a, b) = (store.image(name).unwrap(), other.image(name).unwrap_or_else(|e| panic!("{name}: {e}")));
            assert_eq!(a.id(), b.id(), "{format:?} {name}");
            assert_eq!(a.config(), b.config(), "{format:?} {name}");
            // Sizes are docker's (content bytes): a docker-archive stores the layers
            // uncompressed, and the history and size are the same all the same.
            assert_eq!(a.history().unwrap(), b.history().unwrap(), "{format:?} {name}");
            assert_eq!(a.size().unwrap(), b.size().unwrap(), "{format:?} {name}");
            assert_ne!(a.stored_size(), 0);
            if format == ArchiveFormat::OciArchive {
                assert_eq!(a.digest(), b.digest(), "{name}: an OCI archive keeps the manifest");
            }
            assert!(loaded.iter().any(|l| &l.id == a.id()));
        }
        let mut tags: Vec<String> = other.backend().refs().unwrap().into_iter().map(|(n, _)| n).collect();
        tags.sort();
        assert_eq!(tags, ["127.0.0.1:5000/team/more:v1", "more:1", "more:cfg", "tomcat:latest"], "{format:?}");
        // What the loaded image unpacks to is what the original unpacks to.
        let (x, y) = (tmp.path().join(format!("x-{format:?}")), tmp.path().join(format!("y-{format:?}")));
        store.image("more:cfg").unwrap().unpack_raw(&x, &Default::default()).unwrap();
        other.image("more:cfg").unwrap().unpack_raw(&y, &Default::default()).unwrap();
        let d = Tree::capture(&x).unwrap().diff(&Tree::capture(&y).unwrap(), &law_compare());
        assert!(d.is_empty(), "{d:?}");
        assert!(other.fsck().unwrap().is_clean());
        // Loading again adds nothing.
        let blobs = other.backend().list().unwrap();
        other.load(&archive[..]).unwrap();
        assert_eq!(other.backend().list().unwrap(), blobs);
    }
}

/// A layer tar with one file, its diff_id, and a config for it.
fn one_layer(content: &[u8]) -> (Vec<u8>, Digest) {
    let tar = layer_tar(&[E::File("f", content, 0o644, 0)]);
    let d = Digest::sha256_of(&tar);
    (tar, d)
}

#[test]
fn the_old_per_layer_directory_form_loads_with_symlinked_duplicates() {
    // `docker save` before 25 and `podman save`: `<id>/layer.tar`, `<id>/json`,
    // `<id>/VERSION`, a layer shared by two images stored once and linked, and
    // manifest.json after the layers.
    let (l1, d1) = one_layer(b"one");
    let (l2, d2) = one_layer(b"two");
    let c1 = config_for(std::slice::from_ref(&d1));
    let c2 = config_for(&[d1.clone(), d2.clone()]);
    let (n1, n2) = (format!("{}.json", Digest::sha256_of(&c1).hex()), format!("{}.json", Digest::sha256_of(&c2).hex()));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": n1, "RepoTags": ["one:1"], "Layers": ["aaaa/layer.tar"]},
        {"Config": n2, "RepoTags": ["two:1", "two:latest"], "Layers": ["bbbb/layer.tar", "cccc/layer.tar"]},
    ]))
    .unwrap();
    let archive = archive_tar(&[
        A::File("aaaa/VERSION", b"1.0"),
        A::File("aaaa/json", b"{}"),
        A::File("aaaa/layer.tar", &l1),
        A::Symlink("bbbb/layer.tar", "../aaaa/layer.tar"),
        A::File("cccc/layer.tar", &l2),
        A::File(&n1, &c1),
        A::File(&n2, &c2),
        A::File("manifest.json", &manifest),
        A::File("repositories", b"{}"),
    ]);
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let loaded = store.load(&archive[..]).unwrap();
    assert_eq!(
        loaded.iter().map(|l| l.names.clone()).collect::<Vec<_>>(),
        [vec!["one:1"], vec!["two:1", "two:latest"]]
    );
    assert_eq!(store.image("two").unwrap().config().rootfs.diff_ids, [d1, d2]);
    assert_eq!(store.image("one:1").unwrap().id(), &Digest::sha256_of(&c1));
    // The VERSION and json files are not kept.
    assert_eq!(store.backend().list().unwrap().len(), 2 + 2 + 2, "2 layers, 2 configs, 2 manifests");
    assert!(store.fsck().unwrap().is_clean());
}

#[test]
fn the_docker_25_blobs_form_loads() {
    // Docker 25+: an OCI layout and a manifest.json side by side, layers as blobs.
    let (l1, d1) = one_layer(b"one");
    let c1 = config_for(std::slice::from_ref(&d1));
    let cd = Digest::sha256_of(&c1);
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": format!("blobs/sha256/{}", cd.hex()), "RepoTags": ["d25:1"],
         "Layers": [format!("blobs/sha256/{}", d1.hex())], "LayerSources": {}},
    ]))
    .unwrap();
    let (p1, pc) = (format!("blobs/sha256/{}", d1.hex()), format!("blobs/sha256/{}", cd.hex()));
    let archive = archive_tar(&[
        A::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        A::File(&p1, &l1),
        A::File(&pc, &c1),
        A::File("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
        A::File("manifest.json", &manifest),
    ]);
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let loaded = store.load(&archive[..]).unwrap();
    assert_eq!(loaded[0].names, ["d25:1"]);
    assert_eq!(loaded[0].id, cd);
}

#[test]
fn an_empty_layer_tar_loads() {
    // Older docker images carry empty layers: a tar of only its two zero end blocks
    // (sha256:5f70bf18...), which has no header, so no `ustar` magic.
    let empty = vec![0u8; 1024];
    let d = Digest::sha256_of(&empty);
    assert_eq!(d.as_str(), "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
    let (l1, d1) = one_layer(b"one");
    let c = config_for(&[d1.clone(), d.clone()]);
    let cn = format!("{}.json", Digest::sha256_of(&c).hex());
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": cn, "RepoTags": ["e:1"], "Layers": ["l1.tar", "empty.tar"]}]),
    )
    .unwrap();
    let archive = archive_tar(&[
        A::File("manifest.json", &manifest),
        A::File(&cn, &c),
        A::File("l1.tar", &l1),
        A::File("empty.tar", &empty),
    ]);
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let loaded = store.load(&archive[..]).unwrap();
    let img = store.image("e:1").unwrap();
    assert_eq!(img.id(), &loaded[0].id);
    let out = tmp.path().join("out");
    img.unpack_raw(&out, &Default::default()).unwrap();
    assert_eq!(fs::read(out.join("f")).unwrap(), b"one");
    // And it saves back.
    let again = store.save(&["e:1"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let other = Store::create(tmp.path().join("other")).unwrap();
    assert_eq!(other.load(&again[..]).unwrap()[0].id, loaded[0].id);
}

#[test]
fn a_compressed_archive_loads_like_docker_load() {
    // `docker load` and `podman load` take gzip- (and zstd-) compressed archives too.
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let plain = store.save(&["tomcat"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let mut gz = Vec::new();
    strata_layer::reencode_tar(&plain[..], &mut gz, &strata_layer::WriteOptions::default()).unwrap();
    assert_eq!(&gz[..2], b"\x1f\x8b");
    let other = Store::create(tmp.path().join("other")).unwrap();
    assert_eq!(other.load(&gz[..]).unwrap()[0].id, *base.id());
    // A damaged compressed archive is an error like any other, and adds nothing.
    let cut = Store::create(tmp.path().join("cut")).unwrap();
    assert!(cut.load(&gz[..gz.len() / 2]).is_err());
    assert!(cut.backend().list().unwrap().is_empty());
}

#[test]
fn save_seekable_writes_the_same_bytes_as_save() {
    // Layers of every kind: gzip (several, one over 1 MiB so it spans copy chunks), zstd,
    // and uncompressed (a docker-archive load stores layers as they came).
    let tmp = scratch();
    let (store, _) = tomcat_store(tmp.path());
    let archive = store.save(&["tomcat"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let other = Store::create(tmp.path().join("other")).unwrap();
    other.load(&archive[..]).unwrap();
    let mut img = other.image("tomcat").unwrap();
    assert_eq!(img.layers()[0].media_type.layer_compression(), Some(strata_spec::Compression::None));
    for (i, compression) in
        [strata_spec::Compression::Gzip, strata_spec::Compression::Zstd, strata_spec::Compression::Gzip]
            .into_iter()
            .enumerate()
    {
        let d = tmp.path().join(format!("layer{i}"));
        fs::create_dir_all(&d).unwrap();
        let big: Vec<u8> =
            (0..(1_500_000 + i * 70_001) as u32).map(|x| (x.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        fs::write(d.join(format!("big{i}")), big).unwrap();
        let w = strata_image::WriteOptions::default().compression(compression);
        img = img.append(LayerInput::Dir(&d), &opts(1_700_000_000 + i as u64).write_options(w).tag("mixed")).unwrap();
    }
    assert_eq!(img.layers().len(), 4);
    let plain = other.save(&["mixed", "tomcat"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let seekable = other
        .save_seekable(&["mixed", "tomcat"], ArchiveFormat::DockerArchive, std::io::Cursor::new(Vec::new()))
        .unwrap()
        .into_inner();
    assert!(plain == seekable, "{} vs {} bytes", plain.len(), seekable.len());
    // And into a file, which is what it is for; the archive loads.
    let path = tmp.path().join("mixed.tar");
    other.save_seekable(&["mixed"], ArchiveFormat::DockerArchive, fs::File::create(&path).unwrap()).unwrap();
    assert!(fs::read(&path).unwrap() == other.save(&["mixed"], ArchiveFormat::DockerArchive, Vec::new()).unwrap());
    let third = Store::create(tmp.path().join("third")).unwrap();
    assert_eq!(&third.load(fs::File::open(&path).unwrap()).unwrap()[0].id, img.id());
}

#[test]
fn save_checks_each_layer_against_its_diff_id() {
    // An image whose config names the wrong diff_id for its (gzip) layer: both save paths
    // refuse it rather than write an archive no loader would take.
    use strata_spec::{Descriptor, Manifest, MediaType};
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = crate::fixture::layer_tar(&[E::File("a", b"a", 0o644, 0)]);
    let mut gz = Vec::new();
    let info = strata_layer::reencode_tar(&tar[..], &mut gz, &strata_layer::WriteOptions::default()).unwrap();
    let b = store.backend();
    let layer = b.put_blob(&gz).unwrap();
    let wrong = Digest::sha256_of(b"not the layer");
    let config = b.put_blob(&config_for(std::slice::from_ref(&wrong))).unwrap();
    let m = Manifest::new(
        MediaType::OciManifest,
        Descriptor::new(MediaType::OciConfig, config.digest, config.size),
        vec![Descriptor::new(MediaType::OciLayerGzip, layer.digest, layer.size)],
    );
    let mb = b.put_blob(&m.to_canonical_json()).unwrap();
    b.set_ref("bad:1", &Descriptor::new(MediaType::OciManifest, mb.digest, mb.size)).unwrap();
    let check = |r: strata_image::Result<()>| match r {
        Err(strata_image::Error::Layer(strata_layer::Error::DiffIdMismatch { expected, actual, .. })) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, info.diff_id);
        }
        other => panic!("{other:?}"),
    };
    check(store.save(&["bad:1"], ArchiveFormat::DockerArchive, Vec::new()).map(drop));
    check(store.save_seekable(&["bad:1"], ArchiveFormat::DockerArchive, std::io::Cursor::new(Vec::new())).map(drop));
}

#[test]
fn an_unpack_plans_around_what_a_later_layer_deletes() {
    // A docker-archive load keeps its layers uncompressed: the unpack then reads the
    // headers first (seeking over the data) and does not write what a later layer
    // deletes or replaces. A compressed image is planned only when asked.
    use strata_image::{PlanMode, UnpackOptions, WriteOptions};
    use strata_spec::Compression;
    let tmp = scratch();
    let (store, tomcat) = tomcat_store(tmp.path());
    let archive = store.save(&["tomcat"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let other = Store::create(tmp.path().join("other")).unwrap();
    other.load(&archive[..]).unwrap();
    let loaded = other.image("tomcat").unwrap();
    let kill = layer_tar(&[
        E::Whiteout("usr/local/tomcat/webapps.dist"),
        // Its hard link etc/motd.link keeps the contents: written all the same.
        E::Whiteout("etc/motd"),
        E::File("usr/bin/su", b"replaced", 0o755, 0),
    ]);
    let stacked = |img: &strata_image::Image, compression, tag: &str| {
        let w = WriteOptions::default().compression(compression);
        img.append(LayerInput::Tar(&mut &kill[..]), &opts(1_700_000_100).write_options(w).tag(tag)).unwrap()
    };
    let plain = stacked(&loaded, Compression::None, "plain");
    let gz = stacked(&tomcat, Compression::Gzip, "gz");
    assert!(plain.layers().iter().all(|l| l.media_type.layer_compression() == Some(Compression::None)));
    let unpack = |img: &strata_image::Image, mode: PlanMode, name: &str| {
        let dir = tmp.path().join(name);
        let report = img.unpack_raw(&dir, &UnpackOptions::default().plan(mode)).unwrap();
        let skipped: Vec<(u64, u64)> = report.layers.iter().map(|l| (l.skipped, l.skipped_bytes)).collect();
        (Tree::capture(&dir).unwrap(), skipped)
    };
    // index.html (16 bytes), RELEASE-NOTES.txt (6) and su (7), all in the first layer.
    let planned = vec![(3, 29), (0, 0)];
    let (expected, none) = unpack(&plain, PlanMode::Never, "never");
    assert_eq!(none, vec![(0, 0), (0, 0)]);
    for (img, mode, name, skipped) in [
        (&plain, PlanMode::Auto, "plain-auto", &planned),
        (&plain, PlanMode::Always, "plain-always", &planned),
        (&gz, PlanMode::Auto, "gz-auto", &none),
        (&gz, PlanMode::Always, "gz-always", &planned),
    ] {
        let (tree, got) = unpack(img, mode, name);
        assert_eq!(&got, skipped, "{name}");
        let d = expected.diff(&tree, &law_compare());
        assert!(d.is_empty(), "{name}:\n{}", d.join("\n"));
    }
    assert_eq!(expected.entries[std::path::Path::new("etc/motd.link")].size, 6);
    assert!(!expected.entries.contains_key(std::path::Path::new("usr/local/tomcat/webapps.dist")));
}
