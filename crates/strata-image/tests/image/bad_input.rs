//! Bad input: typed errors that say what and where, and the store exactly as it was.

use std::fs;

use strata_image::{ArchiveFormat, ArchiveProblem, Error, MemberProblem, RemoveOptions, Store};
use strata_spec::Digest;

use crate::fixture::{
    A, E, archive_tar, assert_layout_unchanged, config_for, layer_tar, layout_tree, opts, scratch, tomcat_store,
};

/// Load `archive` into `store`, expecting an error; the layout must be unchanged.
fn load_fails(store: &Store, archive: &[u8], what: &str) -> Error {
    let root = store.path().unwrap();
    let before = layout_tree(root);
    let blobs = store.backend().list().unwrap();
    let e = match store.load(archive) {
        Ok(l) => panic!("{what}: loaded {l:?}"),
        Err(e) => e,
    };
    assert_layout_unchanged(root, &before, what);
    assert_eq!(store.backend().list().unwrap(), blobs, "{what}: blobs added");
    assert!(store.fsck().unwrap().is_clean(), "{what}");
    e
}

/// A docker-archive with one image whose layer is `layer`, listed as `layer_path`.
fn docker_archive_with(layer: &[u8], diff_id: &Digest, layer_path: &str, members_path: &str) -> Vec<u8> {
    let config = config_for(std::slice::from_ref(diff_id));
    let cfg_name = format!("{}.json", Digest::sha256_of(&config).hex());
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": cfg_name, "RepoTags": ["bad:1"], "Layers": [layer_path]}
    ]))
    .unwrap();
    archive_tar(&[A::File("manifest.json", &manifest), A::File(&cfg_name, &config), A::File(members_path, layer)])
}

#[test]
fn corrupt_archives_are_refused_and_add_nothing() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let good = store.save(&["tomcat"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let good_oci = store.save(&["tomcat"], ArchiveFormat::OciArchive, Vec::new()).unwrap();
    // Loading into another store, which already holds an image of its own.
    let other = Store::create(tmp.path().join("other")).unwrap();
    let tar = layer_tar(&[E::File("x", b"x", 0o644, 0)]);
    crate::fixture::import_tar(&other, &tar, "mine", 1_700_000_000);

    for (what, bytes) in [
        ("docker-archive cut in half", good[..good.len() / 2].to_vec()),
        ("docker-archive cut mid-header", good[..good.len() - 1024 - 100].to_vec()),
        ("OCI archive cut in half", good_oci[..good_oci.len() / 2].to_vec()),
        ("garbage", (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("empty", Vec::new()),
        ("a tar without manifest.json or index.json", archive_tar(&[A::File("hello", b"world")])),
    ] {
        let e = load_fails(&other, &bytes, what);
        assert!(
            matches!(e, Error::InvalidArchive(_) | Error::Layer(_) | Error::Io(_) | Error::Store(_)),
            "{what}: {e:?}"
        );
        eprintln!("{what}: {e}");
    }
    // The good archives load (so the failures above were about the damage).
    assert_eq!(other.load(&good[..]).unwrap()[0].id, *base.id());
    assert_eq!(other.load(&good_oci[..]).unwrap()[0].id, *base.id());
    // A damaged archive whose blobs the store already has takes none of them away.
    load_fails(&other, &good[..good.len() - 2000], "cut archive of an image the store has");
    load_fails(&other, &good_oci[..good_oci.len() - 2000], "cut OCI archive of an image the store has");
    assert_eq!(other.image("tomcat").unwrap().id(), base.id());
}

#[test]
fn an_archive_naming_a_missing_layer_is_refused() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let layer = layer_tar(&[E::File("a", b"a", 0o644, 0)]);
    let d = Digest::sha256_of(&layer);
    let archive = docker_archive_with(&layer, &d, "missing.tar", "present.tar");
    match load_fails(&store, &archive, "missing layer") {
        Error::InvalidArchive(ArchiveProblem::Member { member, problem: MemberProblem::Missing }) => {
            assert_eq!(member, "missing.tar")
        }
        e => panic!("{e:?}"),
    }
    // Sanity: the same archive naming the layer it has loads.
    let ok = docker_archive_with(&layer, &d, "present.tar", "present.tar");
    assert_eq!(store.load(&ok[..]).unwrap()[0].names, ["bad:1"]);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let layer = layer_tar(&[E::File("a", b"a", 0o644, 0)]);
    let other = layer_tar(&[E::File("a", b"b", 0o644, 0)]);
    let archive = docker_archive_with(&other, &Digest::sha256_of(&layer), "l.tar", "l.tar");
    match load_fails(&store, &archive, "diff_id mismatch") {
        Error::Layer(strata_layer::Error::DiffIdMismatch { layer: l, expected, actual }) => {
            assert_eq!(l, "l.tar");
            assert_eq!(expected, Digest::sha256_of(&layer));
            assert_eq!(actual, Digest::sha256_of(&other));
        }
        e => panic!("{e:?}"),
    }
    // Gzip-compressed layers are checked after decompression, the same way.
    let mut gz = Vec::new();
    strata_layer::reencode_tar(&other[..], &mut gz, &strata_layer::WriteOptions::default()).unwrap();
    let archive = docker_archive_with(&gz, &Digest::sha256_of(&layer), "l.tar.gz", "l.tar.gz");
    let e = load_fails(&store, &archive, "gzip diff_id mismatch");
    assert!(matches!(e, Error::Layer(strata_layer::Error::DiffIdMismatch { .. })), "{e:?}");
}

#[test]
fn a_failing_second_image_takes_the_first_images_manifest_away_too() {
    // Found by fuzz/archive_load: the seed archive with one byte of its second image's
    // layer changed. The first image's manifest had been written (it is not an archive
    // member, strata makes it) and stayed behind when the second image failed.
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let (l1, l2) = (layer_tar(&[E::File("f", b"one", 0o644, 0)]), layer_tar(&[E::File("f", b"two", 0o644, 0)]));
    let (d1, d2) = (Digest::sha256_of(&l1), Digest::sha256_of(&l2));
    let (c1, c2) = (config_for(std::slice::from_ref(&d1)), config_for(&[d1.clone(), d2.clone()]));
    let (n1, n2) = (format!("{}.json", Digest::sha256_of(&c1).hex()), format!("{}.json", Digest::sha256_of(&c2).hex()));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": n1, "RepoTags": ["one:1"], "Layers": ["aaaa/layer.tar"]},
        {"Config": n2, "RepoTags": ["two:1"], "Layers": ["aaaa/layer.tar", "cccc/layer.tar"]},
    ]))
    .unwrap();
    let mut bad = l2.clone();
    bad[512] ^= 1;
    let archive = |second: &[u8]| {
        archive_tar(&[
            A::File("aaaa/layer.tar", &l1),
            A::File("cccc/layer.tar", second),
            A::File(&n1, &c1),
            A::File(&n2, &c2),
            A::File("manifest.json", &manifest),
        ])
    };
    let e = load_fails(&store, &archive(&bad), "second image's layer damaged");
    assert!(
        matches!(e, Error::Layer(strata_layer::Error::DiffIdMismatch { ref layer, .. }) if layer == "cccc/layer.tar"),
        "{e:?}"
    );
    assert!(store.backend().list().unwrap().is_empty());
    assert!(store.backend().refs().unwrap().is_empty());
    assert!(store.images().unwrap().is_empty());
    // The undamaged archive loads both.
    assert_eq!(store.load(&archive(&l2)[..]).unwrap().len(), 2);
}

#[test]
fn archive_paths_that_escape_are_refused() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let layer = layer_tar(&[E::File("a", b"a", 0o644, 0)]);
    let d = Digest::sha256_of(&layer);
    // manifest.json points outside the archive; the archive does have a `x.tar`.
    for path in ["../x.tar", "/../x.tar", "a/../../x.tar"] {
        let archive = docker_archive_with(&layer, &d, path, "x.tar");
        let e = load_fails(&store, &archive, path);
        assert!(
            matches!(e, Error::InvalidArchive(ArchiveProblem::Member { ref member, problem: MemberProblem::UnsafePath(_) }) if member == path),
            "{path}: {e:?}"
        );
    }
    // A member whose own name escapes.
    let config = config_for(std::slice::from_ref(&d));
    let cfg_name = format!("{}.json", Digest::sha256_of(&config).hex());
    let manifest =
        serde_json::to_vec(&serde_json::json!([{"Config": cfg_name, "RepoTags": null, "Layers": ["../x.tar"]}]))
            .unwrap();
    let archive = archive_tar(&[
        A::File("manifest.json", &manifest),
        A::File(&cfg_name, &config),
        A::RawName("../x.tar", &layer),
    ]);
    let e = load_fails(&store, &archive, "member named ../x.tar");
    assert!(matches!(e, Error::InvalidArchive(_)), "{e:?}");
    // A symlink member that leaves the archive.
    let archive = archive_tar(&[
        A::File("manifest.json", &manifest),
        A::File(&cfg_name, &config),
        A::Symlink("l.tar", "../../etc/passwd"),
    ]);
    let e = load_fails(&store, &archive, "symlink out of the archive");
    assert!(
        matches!(e, Error::InvalidArchive(ArchiveProblem::Member { problem: MemberProblem::UnsafePath(ref m), .. }) if m.contains("leaves the archive")),
        "{e:?}"
    );
}

#[test]
fn an_oci_archive_blob_that_is_not_what_its_name_says_is_refused() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let good = store.save(&["tomcat"], ArchiveFormat::OciArchive, Vec::new()).unwrap();
    // Flip one byte of the config blob inside the archive.
    let cfg = store.backend().read_blob(base.id(), 1 << 20).unwrap();
    let at = good.windows(cfg.len()).position(|w| w == cfg.as_slice()).unwrap();
    let mut bad = good.clone();
    bad[at + 2] ^= 0x20;
    let other = Store::create(tmp.path().join("other")).unwrap();
    let e = load_fails(&other, &bad, "flipped byte");
    assert!(matches!(e, Error::Store(strata_store::Error::DigestMismatch { .. })), "{e:?}");
}

#[test]
fn a_change_with_an_unknown_instruction_is_refused_before_anything_is_written() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let root = store.path().unwrap().to_path_buf();
    let before = layout_tree(&root);
    for (bad, message) in [
        ("RUN rm -rf /", "run is not a valid change command"),
        ("FROM scratch", "from is not a valid change command"),
        ("ADD . /", "add is not a valid change command"),
        ("", "file with no instructions"),
        ("MAINTAINER x", "maintainer is not a valid change command"),
    ] {
        let e = opts(0).change(bad).unwrap_err();
        let strata_commit::Error::Change(c) = &e else { panic!("{bad}: {e:?}") };
        assert_eq!(c.input, bad);
        assert_eq!(e.to_string(), message, "{bad}");
        // The image crate's `Change` is the same parser.
        assert!(strata_image::Change::parse(bad).is_err());
    }
    assert_layout_unchanged(&root, &before, "bad --change");
    // A change that fails only once the environment is known fails before anything is
    // written too.
    let bad = opts(0).change("ENV A=${NOPE:?unset}").unwrap().tag("x:1");
    let c = base.unpack(tmp.path().join("c")).unwrap();
    fs::write(c.rootfs().join("new-file"), "x").unwrap();
    let before = layout_tree(&root);
    assert!(c.commit(&bad).unwrap_err().to_string().contains("NOPE: unset"));
    assert_layout_unchanged(&root, &before, "a change that cannot apply");
}

#[test]
fn refs_that_do_not_exist_are_typed_errors_and_change_nothing() {
    let tmp = scratch();
    let (store, _base) = tomcat_store(tmp.path());
    let root = store.path().unwrap().to_path_buf();
    let before = layout_tree(&root);
    let not_found = |r: Result<(), Error>, what: &str| match r {
        Err(Error::ImageNotFound(n)) => assert_eq!(n, "tomcat:9", "{what}"),
        other => panic!("{what}: {other:?}"),
    };
    not_found(store.image("tomcat:9").map(drop), "image");
    not_found(store.untag("tomcat:9").map(drop), "untag");
    let mut r = store.remove(&["tomcat:9"], &RemoveOptions::default()).unwrap();
    assert!(r.removed.is_empty());
    not_found(Err(r.failed.remove(0).1), "remove");
    not_found(store.save(&["tomcat:9"], ArchiveFormat::DockerArchive, Vec::new()).map(drop), "save");
    assert_layout_unchanged(&root, &before, "missing refs");
    // One good name and one missing: the good one is removed all the same (as docker).
    let r = store.remove(&["tomcat:9", "tomcat"], &RemoveOptions::default()).unwrap();
    assert_eq!(r.failed.len(), 1);
    assert!(r.removed.contains(&strata_image::Removed::Untagged("tomcat:latest".into())));
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn unpack_into_a_non_empty_directory_is_refused_and_leaves_it_alone() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let target = tmp.path().join("busy");
    fs::create_dir_all(target.join("sub")).unwrap();
    fs::write(target.join("sub/precious"), "keep me").unwrap();
    let before = strata_testkit::Tree::capture(&target).unwrap();
    let store_before = layout_tree(store.path().unwrap());
    for raw in [false, true] {
        let r =
            if raw { base.unpack_raw(&target, &Default::default()).map(drop) } else { base.unpack(&target).map(drop) };
        match r {
            Err(Error::TargetNotEmpty(p)) => assert_eq!(p, target),
            other => panic!("raw={raw}: {other:?}"),
        }
        let after = strata_testkit::Tree::capture(&target).unwrap();
        let cmp = strata_testkit::Compare { dir_mtime: true, root: true, ..Default::default() };
        assert!(before.diff(&after, &cmp).is_empty());
    }
    assert_layout_unchanged(store.path().unwrap(), &store_before, "unpack into busy dir");
}

#[test]
fn a_bundle_whose_base_image_was_removed_cannot_commit() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let c = base.unpack(tmp.path().join("c")).unwrap();
    fs::write(c.rootfs().join("etc/motd"), "changed\n").unwrap();
    store.remove(&["tomcat"], &RemoveOptions::default()).unwrap();
    assert!(store.backend().list().unwrap().is_empty());
    let root = store.path().unwrap().to_path_buf();
    let before = layout_tree(&root);
    // `diff` needs only the bundle.
    // `/etc` holds the change: docker marks it changed too.
    assert_eq!(c.diff().unwrap().docker_diff(), "C /etc\nC /etc/motd\nC /etc/motd.link\n");
    match c.commit(&opts(1_700_000_100).tag("orphan")) {
        Err(Error::InvalidBundle { path, reason }) => {
            assert_eq!(path, c.dir());
            assert!(reason.contains(base.digest().as_str()) && reason.contains("no longer in the store"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.base(), Err(Error::InvalidBundle { .. })));
    assert_layout_unchanged(&root, &before, "commit of an orphaned bundle");
    assert!(store.backend().list().unwrap().is_empty());
    // A directory that is not a bundle at all.
    match strata_image::Container::open(&store, tmp.path()) {
        Err(Error::InvalidBundle { reason, .. }) => assert!(reason.contains("strata-bundle.json"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_container_file_named_like_a_whiteout_cannot_be_committed() {
    // `.wh.x` in a layer would delete `x`: such a name cannot be stored, so the commit
    // fails, naming the path, and writes nothing (the half-written layer is dropped).
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let c = base.unpack(tmp.path().join("c")).unwrap();
    fs::write(c.rootfs().join("etc/.wh.motd"), "not a whiteout").unwrap();
    let root = store.path().unwrap().to_path_buf();
    let before = layout_tree(&root);
    match c.commit(&opts(1_700_000_100).tag("wh")) {
        Err(Error::Commit(strata_commit::Error::Layer(e))) => assert!(e.to_string().contains(".wh.motd"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_layout_unchanged(&root, &before, "whiteout-named file");
    let report = store.fsck().unwrap();
    assert!(report.is_clean() && report.temp_files.is_empty(), "{report}");
}

#[test]
fn a_corrupt_layer_blob_in_the_store_fails_unpack_and_save() {
    // Unpack and docker-archive save check each layer's diff_id over every decompressed
    // byte instead of hashing the compressed blob as well: a blob changed on disk must
    // still be caught, whatever the change.
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let desc = base.layers()[0].clone();
    let path = store.path().unwrap().join("blobs/sha256").join(desc.digest.hex());
    let good = fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x10;
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 1);
    // The same size, the gzip trailer (crc32, size) rewritten to zeros: only a check of
    // the content itself catches this one.
    let mut trailer = good.clone();
    let n = trailer.len();
    trailer[n - 8..].fill(0);
    for (case, bytes) in [("flipped byte", flipped), ("truncated", truncated), ("zeroed gzip trailer", trailer)] {
        fs::write(&path, &bytes).unwrap();
        let base = store.image("tomcat").unwrap();
        let target = tmp.path().join(format!("unpack-{}", case.replace(' ', "-")));
        let e = base.unpack(&target).map(drop).expect_err(case);
        assert!(matches!(e, Error::Layer(_) | Error::Store(_)), "{case}: {e:?}");
        assert!(!target.join("rootfs").exists(), "{case}: a partial rootfs was left");
        for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
            let r = store.save(&["tomcat"], format, Vec::new());
            let e = r.map(drop).expect_err(case);
            assert!(matches!(e, Error::Layer(_) | Error::Store(_) | Error::Io(_)), "{case}, {format:?}: {e:?}");
        }
        let seekable = store.save_seekable(&["tomcat"], ArchiveFormat::DockerArchive, std::io::Cursor::new(Vec::new()));
        assert!(seekable.is_err(), "{case}: seekable save succeeded");
    }
    fs::write(&path, &good).unwrap();
    base.unpack(tmp.path().join("good")).unwrap();
}

#[test]
fn a_corrupt_uncompressed_layer_fails_a_planned_unpack() {
    // Uncompressed layers are planned from their headers before anything is written (the
    // data seeked over, unverified): a blob changed on disk must still fail the unpack,
    // whether the change is in a header, in data, or cuts the blob short.
    use strata_image::{LayerInput, PlanMode, UnpackOptions, WriteOptions};
    let tmp = scratch();
    let (store, _) = tomcat_store(tmp.path());
    let archive = store.save(&["tomcat"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let plain = Store::create(tmp.path().join("plain")).unwrap();
    plain.load(&archive[..]).unwrap();
    let kill = crate::fixture::layer_tar(&[crate::fixture::E::Whiteout("etc/motd")]);
    let w = WriteOptions::default().compression(strata_spec::Compression::None);
    let img = plain
        .image("tomcat")
        .unwrap()
        .append(LayerInput::Tar(&mut &kill[..]), &crate::fixture::opts(1_700_000_100).write_options(w).tag("two"))
        .unwrap();
    let desc = img.layers()[0].clone();
    let path = plain.path().unwrap().join("blobs/sha256").join(desc.digest.hex());
    let good = fs::read(&path).unwrap();
    let corrupt = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x01;
        b
    };
    // The first header's name, a file's data, and the blob cut in the middle.
    let cases =
        [("header", corrupt(3)), ("data", corrupt(good.len() / 2)), ("truncated", good[..good.len() / 2].to_vec())];
    for (case, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        for mode in [PlanMode::Auto, PlanMode::Never] {
            let target = tmp.path().join(format!("unpack-{case}-{mode:?}"));
            let img = plain.image("two").unwrap();
            let e = img.unpack_with(&target, &UnpackOptions::default().plan(mode)).map(drop).expect_err(case);
            assert!(matches!(e, Error::Layer(_) | Error::Store(_)), "{case} {mode:?}: {e:?}");
            assert!(!target.join("rootfs").exists(), "{case} {mode:?}: a partial rootfs was left");
        }
    }
    fs::write(&path, &good).unwrap();
    plain.image("two").unwrap().unpack(tmp.path().join("good")).unwrap();
}
