//! Archives read in place ([`ArchiveView`]): the same images as loading the archive
//! gives, in every form strata and other tools write; blobs read from the archive file
//! itself, verified; hostile archives refused with typed errors.

use std::fs;
use std::path::Path;

use strata_image::{ArchiveFormat, ArchiveView, Error, Image, LayerInput, Loaded, MemberProblem, Store};
use strata_spec::Digest;

use crate::fixture::{A, E, archive_tar, config_for, layer_tar, opts, scratch, tomcat_store};

/// What a reader sees of an image: names, id, manifest, and the whole analysis.
fn seen(loaded: &[Loaded], open: impl Fn(&Loaded) -> Image) -> Vec<(Vec<String>, Digest, Digest, serde_json::Value)> {
    loaded
        .iter()
        .map(|l| {
            let a = open(l).analyze().unwrap();
            (l.names.clone(), l.id.clone(), l.manifest.digest.clone(), serde_json::to_value(a).unwrap())
        })
        .collect()
}

/// Open `archive` in place and load it into a fresh store: the two must agree.
fn assert_in_place_is_load(dir: &Path, archive: &[u8], what: &str) -> ArchiveView {
    let path = dir.join(format!("{what}.tar"));
    fs::write(&path, archive).unwrap();
    let view = ArchiveView::open(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
    let store = Store::create(dir.join(format!("{what}-store"))).unwrap();
    let loaded = store.load(archive).unwrap();
    assert_eq!(view.images(), &loaded[..], "{what}");
    let by_view = seen(view.images(), |l| view.image(l).unwrap());
    let by_load = seen(&loaded, |l| store.image_at(&l.manifest, &strata_spec::Platform::host()).unwrap());
    assert_eq!(by_view, by_load, "{what}");
    // Names resolve in the view's store as in the loaded one.
    for l in view.images() {
        for n in &l.names {
            assert_eq!(view.store().image(n).unwrap().digest(), store.image(n).unwrap().digest(), "{what} {n}");
        }
    }
    assert!(view.store().fsck().unwrap().is_clean(), "{what}");
    view
}

/// Two images sharing the tomcat base layer.
fn two_images(tmp: &Path) -> Store {
    let (store, base) = tomcat_store(tmp);
    let d = tmp.join("extra");
    crate::fixture::write_files(&d, &[("srv/www/index.html", "<p>more</p>\n")]);
    base.append(LayerInput::Dir(&d), &opts(1_700_000_010).tag("more:1")).unwrap();
    store
}

/// A layer tar with one file, and its diff_id.
fn one_layer(content: &[u8]) -> (Vec<u8>, Digest) {
    let tar = layer_tar(&[E::File("f", content, 0o644, 0)]);
    let d = Digest::sha256_of(&tar);
    (tar, d)
}

#[test]
fn an_archive_read_in_place_is_the_archive_loaded_in_every_form() {
    let tmp = scratch();
    let store = two_images(tmp.path());
    for (format, what) in [(ArchiveFormat::DockerArchive, "docker"), (ArchiveFormat::OciArchive, "oci")] {
        let one = store.save(&["more:1"], format, Vec::new()).unwrap();
        assert_in_place_is_load(tmp.path(), &one, &format!("{what}-one"));
        let both = store.save(&["tomcat", "more:1"], format, Vec::new()).unwrap();
        let view = assert_in_place_is_load(tmp.path(), &both, &format!("{what}-both"));
        assert_eq!(view.images().len(), 2);
    }
    // docker save before 25, podman: `<id>/layer.tar`, a shared layer linked.
    let (l1, d1) = one_layer(b"one");
    let (l2, d2) = one_layer(b"two");
    let c = config_for(&[d1.clone(), d2.clone()]);
    let cn = format!("{}.json", Digest::sha256_of(&c).hex());
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": cn, "RepoTags": ["old:1"], "Layers": ["aaaa/layer.tar", "cccc/layer.tar"]},
    ]))
    .unwrap();
    let old = archive_tar(&[
        A::File("aaaa/VERSION", b"1.0"),
        A::File("aaaa/layer.tar", &l1),
        A::Symlink("bbbb/layer.tar", "../aaaa/layer.tar"),
        A::File("cccc/layer.tar", &l2),
        A::File(&cn, &c),
        A::File("manifest.json", &manifest),
        A::File("repositories", b"{}"),
    ]);
    let view = assert_in_place_is_load(tmp.path(), &old, "old-style");
    // An uncompressed layer.tar is its own diff_id.
    assert_eq!(view.image(&view.images()[0]).unwrap().layers()[0].digest, d1);
    // Docker 25+: an OCI layout and a manifest.json, layers as blobs.
    let cd = Digest::sha256_of(&c);
    let (p1, p2, pc) = (
        format!("blobs/sha256/{}", d1.hex()),
        format!("blobs/sha256/{}", d2.hex()),
        format!("blobs/sha256/{}", cd.hex()),
    );
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": pc, "RepoTags": ["d25:1"], "Layers": [p1, p2], "LayerSources": {}}]),
    )
    .unwrap();
    let new = archive_tar(&[
        A::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        A::File(&p1, &l1),
        A::File(&p2, &l2),
        A::File(&pc, &c),
        A::File("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
        A::File("manifest.json", &manifest),
    ]);
    assert_in_place_is_load(tmp.path(), &new, "docker-25");
}

#[test]
fn blobs_are_read_from_the_archive_file_at_their_offsets_and_verified() {
    let tmp = scratch();
    let store = two_images(tmp.path());
    let path = tmp.path().join("more.tar");
    store.save_seekable(&["more:1"], ArchiveFormat::DockerArchive, fs::File::create(&path).unwrap()).unwrap();
    let view = ArchiveView::open(&path).unwrap();
    let img = view.image(&view.images()[0]).unwrap();
    let bytes = fs::read(&path).unwrap();
    for desc in img.layers().iter().chain([&img.manifest().config]) {
        let r = view.range(&desc.digest).expect("a blob of the archive has a range");
        let at = usize::try_from(r.offset).unwrap();
        let in_file = &bytes[at..at + usize::try_from(r.size).unwrap()];
        assert_eq!(Digest::sha256_of(in_file), desc.digest);
        assert_eq!(view.store().backend().read_blob(&desc.digest, u64::MAX).unwrap(), in_file);
    }
    // The manifest strata made is the only blob held elsewhere.
    assert!(view.range(img.digest()).is_none());
    // Change one byte of the last layer in the file, after opening: the next read of
    // it comes from the file, and fails its digest.
    let last = img.layers().last().unwrap().clone();
    let r = view.range(&last.digest).unwrap();
    let mut damaged = bytes.clone();
    let at = usize::try_from(r.offset + r.size - 1).unwrap();
    damaged[at] ^= 0xff;
    fs::write(&path, &damaged).unwrap();
    let err = view.store().backend().read_blob(&last.digest, u64::MAX).unwrap_err();
    assert!(
        matches!(err, strata_store::Error::DigestMismatch { ref expected, .. } if *expected == last.digest),
        "{err}"
    );
    let err = img.analyze().unwrap_err();
    assert_eq!(err.kind(), strata_image::ErrorKind::Corrupt, "{err}");
    // Measuring the layer (docker's size) hashes it too: nothing in the file was
    // verified before it is read.
    let diff_id = img.config().rootfs.diff_ids.last().unwrap();
    let err = view.store().layer_size(&last, diff_id).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    // Nothing is written: the store is read-only.
    let err = view.store().tag(&img, "other:1").unwrap_err();
    assert!(matches!(err, Error::Store(strata_store::Error::ReadOnly { .. })), "{err}");
}

/// Open `members` as an archive; the error.
fn refused(dir: &Path, name: &str, archive: &[u8]) -> Error {
    let path = dir.join(name);
    fs::write(&path, archive).unwrap();
    ArchiveView::open(&path).map(|_| ()).unwrap_err()
}

fn member_problem(e: &Error) -> Option<(&str, &MemberProblem)> {
    match e {
        Error::ArchiveMember { member, problem, .. } => Some((member, problem)),
        _ => None,
    }
}

#[test]
fn hostile_archives_are_refused_with_typed_errors() {
    let tmp = scratch();
    let dir = tmp.path();
    let (l1, d1) = one_layer(b"one");
    let c = config_for(std::slice::from_ref(&d1));
    let cn = format!("{}.json", Digest::sha256_of(&c).hex());
    let manifest = |layer: &str| {
        serde_json::to_vec(&serde_json::json!([{"Config": cn, "RepoTags": ["h:1"], "Layers": [layer]}])).unwrap()
    };
    let good = manifest("l.tar");
    // A member path that leaves the archive.
    let e = refused(dir, "escape.tar", &archive_tar(&[A::RawName("../l.tar", &l1), A::File("manifest.json", &good)]));
    assert!(matches!(member_problem(&e), Some(("../l.tar", MemberProblem::UnsafePath(_)))), "{e}");
    // A symlink out of it.
    let e = refused(dir, "link.tar", &archive_tar(&[A::Symlink("l.tar", "../../etc/passwd")]));
    assert!(matches!(member_problem(&e), Some(("l.tar", MemberProblem::UnsafePath(_)))), "{e}");
    // Two members of one path.
    let dup =
        archive_tar(&[A::File("l.tar", &l1), A::File("l.tar", &l1), A::File(&cn, &c), A::File("manifest.json", &good)]);
    let e = refused(dir, "dup.tar", &dup);
    assert!(matches!(member_problem(&e), Some(("l.tar", MemberProblem::Duplicate))), "{e}");
    // manifest.json naming a member that is not there.
    let missing = archive_tar(&[A::File(&cn, &c), A::File("manifest.json", &manifest("nope/layer.tar"))]);
    let e = refused(dir, "missing.tar", &missing);
    assert!(matches!(member_problem(&e), Some(("nope/layer.tar", MemberProblem::Missing))), "{e}");
    // Truncated in a member's data, and in a header.
    let whole = archive_tar(&[A::File(&cn, &c), A::File("manifest.json", &good), A::File("l.tar", &l1)]);
    let cut = &whole[..whole.len() - 1024 - 700];
    let e = refused(dir, "cut.tar", cut);
    assert!(matches!(member_problem(&e), Some(("l.tar", MemberProblem::Truncated { .. }))), "{e}");
    let e = refused(dir, "cut-header.tar", &whole[..1024 + 100]);
    assert!(matches!(e, Error::Layer(strata_layer::Error::InvalidTar { .. })), "{e}");
    // A blob that does not match its digest: found when it is read, not before.
    let (other, _) = one_layer(b"not one");
    let cd = Digest::sha256_of(&c);
    let lie = archive_tar(&[
        A::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        A::File(&format!("blobs/sha256/{}", d1.hex()), &other),
        A::File(&format!("blobs/sha256/{}", cd.hex()), &c),
        A::File("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
        A::File("manifest.json", &serde_json::to_vec(&serde_json::json!([{"Config": format!("blobs/sha256/{}", cd.hex()), "RepoTags": ["h:1"], "Layers": [format!("blobs/sha256/{}", d1.hex())]}])).unwrap()),
    ]);
    let path = dir.join("lie.tar");
    fs::write(&path, &lie).unwrap();
    let view = ArchiveView::open(&path).unwrap();
    let e = view.image(&view.images()[0]).unwrap().analyze().unwrap_err();
    assert_eq!(e.kind(), strata_image::ErrorKind::Corrupt, "{e}");
    // A config that does not match its blob name is refused at once.
    let cfg_lie = archive_tar(&[
        A::File(&format!("blobs/sha256/{}", d1.hex()), &l1),
        A::File(&format!("blobs/sha256/{}", Digest::sha256_of(b"x").hex()), &c),
        A::File("manifest.json", &serde_json::to_vec(&serde_json::json!([{"Config": format!("blobs/sha256/{}", Digest::sha256_of(b"x").hex()), "Layers": [format!("blobs/sha256/{}", d1.hex())]}])).unwrap()),
    ]);
    let e = refused(dir, "cfg-lie.tar", &cfg_lie);
    assert!(matches!(e, Error::Store(strata_store::Error::DigestMismatch { .. })), "{e}");
    // Neither form, and a compressed archive (load reads that; in place cannot).
    let e = refused(dir, "none.tar", &archive_tar(&[A::File("x", b"x")]));
    assert!(matches!(e, Error::InvalidArchive(_)), "{e}");
    let mut gz = Vec::new();
    strata_layer::reencode_tar(&whole[..], &mut gz, &strata_layer::WriteOptions::default()).unwrap();
    let e = refused(dir, "whole.tar.gz", &gz);
    assert!(matches!(e, Error::NotInPlace { ref reason, .. } if reason.contains("gzip")), "{e}");
}
