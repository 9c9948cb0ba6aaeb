//! Sizes as docker reports them, from records written when layers arrive; listings in
//! docker's order; the rule for bare layout names; the parent link in a docker-archive.

use std::fs;

use strata_image::{ArchiveFormat, Store};
use strata_spec::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Index};
use strata_store::LayerRecord;

use crate::fixture::{E, content_bytes, import_tar, layer_tar, opts, scratch, tomcat_store, write_files};

/// Every layer of every image of `store` has a record that agrees with the layer.
fn assert_recorded(store: &Store, name: &str) {
    let img = store.image(name).unwrap();
    for (l, diff_id) in img.layers().iter().zip(&img.config().rootfs.diff_ids) {
        let r = store.backend().layer_record(&l.digest).unwrap();
        let want = LayerRecord { diff_id: diff_id.clone(), size: content_bytes(store, l) };
        assert_eq!(r, Some(want), "{name}: layer {}", l.digest);
    }
}

#[test]
fn layers_are_recorded_when_written_loaded_or_flattened() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    assert_recorded(&store, "tomcat");
    let c = base.unpack(tmp.path().join("c")).unwrap();
    fs::write(c.rootfs().join("etc/motd"), "a longer message of the day\n").unwrap();
    c.commit(&opts(1_700_000_100).tag("two")).unwrap();
    assert_recorded(&store, "two");
    store.image("two").unwrap().flatten(&opts(1_700_000_200).tag("flat")).unwrap();
    assert_recorded(&store, "flat");
    // The flat image holds the same files: the same size, in one layer.
    let (two, flat) = (store.image("two").unwrap(), store.image("flat").unwrap());
    assert_eq!(flat.layers().len(), 1);
    assert!(flat.size().unwrap() <= two.size().unwrap());

    for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
        let archive = store.save(&["tomcat", "two"], format, Vec::new()).unwrap();
        let other = Store::create(tmp.path().join(format!("{format:?}"))).unwrap();
        other.load(&archive[..]).unwrap();
        for name in ["tomcat", "two"] {
            assert_recorded(&other, name);
            // One image, one size, in every store and whatever the layers' compression.
            let (a, b) = (store.image(name).unwrap(), other.image(name).unwrap());
            assert_eq!(a.size().unwrap(), b.size().unwrap(), "{format:?} {name}");
            if format == ArchiveFormat::DockerArchive {
                assert_ne!(a.stored_size(), b.stored_size(), "{name}: gzip here, plain tars there");
            }
        }
    }
}

#[test]
fn listing_reads_records_not_layers() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let size = base.size().unwrap();
    assert_eq!(size, content_bytes(&store, &base.layers()[0]));
    // Ruin every layer blob (same length, other bytes): a listing that read one would
    // fail to decompress it or find another size.
    let layout = store.path().unwrap().to_path_buf();
    for l in base.layers() {
        let path = layout.join("blobs/sha256").join(l.digest.hex());
        fs::write(&path, vec![0xa5u8; l.size as usize]).unwrap();
    }
    let list = store.images().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].problem.is_none(), "{:?}", list[0].problem);
    assert_eq!(list[0].size, size);
    let again = Store::open(&layout).unwrap();
    assert_eq!(again.image("tomcat").unwrap().inspect().unwrap().size, size);
    assert_eq!(again.image("tomcat").unwrap().history().unwrap()[0].size, size);
    // fsck still sees the damage: records are no excuse for a corrupt blob.
    assert!(!again.fsck().unwrap().is_clean());
}

#[test]
fn a_layout_another_tool_wrote_is_measured_without_being_changed() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let size = base.size().unwrap();
    let layout = store.path().unwrap().to_path_buf();
    drop(store);
    // What another tool leaves: no `.strata/`, so no records.
    fs::remove_dir_all(layout.join(".strata")).unwrap();
    let before = strata_testkit::Tree::capture(&layout).unwrap();
    let foreign = Store::open(&layout).unwrap();
    assert_eq!(foreign.images().unwrap()[0].size, size, "measured from the layer");
    assert_eq!(foreign.image("tomcat").unwrap().history().unwrap()[0].size, size);
    let after = strata_testkit::Tree::capture(&layout).unwrap();
    let cmp = strata_testkit::Compare { file_mtime: true, dir_mtime: true, root: true, ..Default::default() };
    assert!(before.diff(&after, &cmp).is_empty(), "reading changed the layout");
    assert!(!layout.join(".strata").exists());

    // Once strata has written to the store, a measured size is recorded, once.
    foreign.tag(&foreign.image("tomcat").unwrap(), "again").unwrap();
    assert!(foreign.backend().layer_record(&base.layers()[0].digest).unwrap().is_none());
    assert_eq!(foreign.images().unwrap()[0].size, size);
    assert_recorded(&foreign, "tomcat");
}

#[test]
fn a_record_that_disagrees_with_the_config_is_not_trusted() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let l = &base.layers()[0];
    let size = base.size().unwrap();
    // A record naming another diff_id (say, written for other bytes under this name):
    // the layer is measured again and the record replaced.
    let wrong = LayerRecord { diff_id: strata_spec::Digest::sha256_of(b"other"), size: 1 };
    store.backend().put_layer_record(&l.digest, &wrong).unwrap();
    assert_eq!(store.image("tomcat").unwrap().size().unwrap(), size);
    assert_eq!(store.backend().layer_record(&l.digest).unwrap().unwrap().diff_id, base.config().rootfs.diff_ids[0]);
}

#[test]
fn images_are_listed_newest_first() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = layer_tar(&[E::File("a", b"1", 0o644, 0)]);
    // Created out of order; tags in the index in the order made.
    for (tag, secs) in [("mid:1", 1_700_000_100), ("old:1", 1_600_000_000), ("new:1", 1_800_000_000)] {
        import_tar(&store, &tar, tag, secs);
    }
    let names: Vec<String> = store.images().unwrap().into_iter().filter_map(|s| s.name).collect();
    assert_eq!(names, ["new:1", "mid:1", "old:1"]);
}

#[test]
fn bare_layout_tags_have_no_repository_anywhere() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    // What umoci and skopeo write: a ref name that is only a tag.
    store.backend().set_ref("latest", base.tag_target()).unwrap();
    store.backend().set_ref("v1", base.tag_target()).unwrap();
    let rows: Vec<(String, String)> = store.images().unwrap().into_iter().map(|s| (s.repository, s.tag)).collect();
    assert_eq!(
        rows,
        [("tomcat".into(), "latest".into()), ("<none>".into(), "latest".into()), ("<none>".into(), "v1".into())]
    );
    let i = store.image("v1").unwrap().inspect().unwrap();
    assert_eq!(i.repo_tags, ["tomcat:latest"], "RepoTags hold references only");
    assert_eq!(i.strata.ref_names, ["tomcat:latest", "latest", "v1"]);

    // Saved by its bare name into a docker-archive: untagged, as RepoTags hold references.
    let archive = store.save(&["v1"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let manifest = archive_member(&archive, "manifest.json");
    let v: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(v[0]["RepoTags"], serde_json::Value::Null, "{v}");
    // Into an OCI archive: the bare ref name as it is, and no full name made up for it.
    let archive = store.save(&["v1", "tomcat"], ArchiveFormat::OciArchive, Vec::new()).unwrap();
    let index = Index::from_slice(&archive_member(&archive, "index.json")).unwrap();
    let named: Vec<(Option<&str>, Option<&str>)> = index
        .manifests
        .iter()
        .map(|d| (d.annotation(ANNOTATION_REF_NAME), d.annotation(ANNOTATION_IMAGE_NAME)))
        .collect();
    assert_eq!(named, [(Some("v1"), None), (Some("tomcat:latest"), Some("docker.io/library/tomcat:latest"))]);
    // Loaded back, the bare tag stays bare.
    let other = Store::create(tmp.path().join("other")).unwrap();
    let loaded = other.load(&archive[..]).unwrap();
    assert_eq!(loaded[0].names, ["v1"]);
    let rows: Vec<(String, String)> = other.images().unwrap().into_iter().map(|s| (s.repository, s.tag)).collect();
    assert_eq!(rows, [("<none>".into(), "v1".into()), ("tomcat".into(), "latest".into())]);
}

#[test]
fn a_docker_archive_keeps_the_parent_link_when_it_holds_the_parent() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    write_files(&tmp.path().join("extra"), &[("opt/x", "x")]);
    let child = base
        .append(strata_image::LayerInput::Dir(&tmp.path().join("extra")), &opts(1_700_000_100).tag("child"))
        .unwrap();
    assert_eq!(child.parent().unwrap().as_ref(), Some(base.id()));
    let both = store.save(&["tomcat", "child"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&archive_member(&both, "manifest.json")).unwrap();
    assert!(v[0].get("Parent").is_none(), "{v}");
    assert_eq!(v[1]["Parent"], base.id().as_str(), "{v}");
    // Without the parent in the archive, no link (docker writes none either).
    let alone = store.save(&["child"], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&archive_member(&alone, "manifest.json")).unwrap();
    assert!(v[0].get("Parent").is_none(), "{v}");
}

/// The bytes of the archive member `name`.
fn archive_member(archive: &[u8], name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut out).unwrap();
            return out;
        }
    }
    panic!("no {name} in the archive");
}
