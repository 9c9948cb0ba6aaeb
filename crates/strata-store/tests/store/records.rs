//! Records: what strata keeps beside the layout about layers and images, on both stores;
//! how GC and fsck treat them; and that a layout strata only reads gets none.

use std::fs;
use std::path::Path;

use strata_store::spec::Digest;
use strata_store::{Backend, BlobStore, ImageRecord, LayerRecord, OciDir, Problem, RecordKind};

use crate::common::{assert_unchanged, snapshot, stores, write_image};

#[test]
fn layer_records_round_trip_and_are_written_once() {
    for (name, store, _dir) in stores() {
        let img = write_image(&*store, "rec");
        let digest = &img.layer.digest;
        assert_eq!(store.layer_record(digest).unwrap(), None, "{name}");
        let record = LayerRecord { diff_id: digest.clone(), size: 16 };
        store.put_layer_record(digest, &record).unwrap();
        assert_eq!(store.layer_record(digest).unwrap(), Some(record.clone()), "{name}");
        // The same record again changes nothing (no rewrite: same bytes, same mtime).
        let before = store.record(RecordKind::Layer, digest).unwrap();
        store.put_layer_record(digest, &record).unwrap();
        assert_eq!(store.record(RecordKind::Layer, digest).unwrap(), before);
        // Kinds are separate: no image record under the layer's name.
        assert_eq!(store.image_record(digest).unwrap(), ImageRecord::default(), "{name}");
    }
}

#[test]
fn set_ref_records_the_tag_time_and_registry_names_accumulate() {
    for (name, store, _dir) in stores() {
        let img = write_image(&*store, "tagged");
        let before = now();
        store.set_ref("one:1", &img.manifest).unwrap();
        let r = store.image_record(&img.manifest.digest).unwrap();
        let t = strata_store::spec::time::parse_rfc3339(r.last_tag_time.as_deref().unwrap()).unwrap().0;
        assert!(t >= before && t <= now(), "{name}: {r:?}");
        assert!(r.repo_digests.is_empty());

        let a = format!("127.0.0.1:5000/one@{}", img.manifest.digest);
        let b = format!("example.com/two@{}", img.manifest.digest);
        for n in [&a, &b, &a] {
            store.update_image_record(&img.manifest.digest, &mut |r| r.add_repo_digest(n)).unwrap();
        }
        let r = store.image_record(&img.manifest.digest).unwrap();
        assert_eq!(r.repo_digests, [a.clone(), b.clone()], "{name}: each name once, in order");
        assert!(r.last_tag_time.is_some(), "{name}: the tag time survives other updates");
    }
}

#[test]
fn gc_removes_the_records_of_removed_blobs_and_fsck_checks_them() {
    for (name, store, _dir) in stores() {
        let kept = write_image(&*store, "kept");
        let gone = write_image(&*store, "gone");
        store.set_ref("kept", &kept.manifest).unwrap();
        for img in [&kept, &gone] {
            let r = LayerRecord { diff_id: img.layer.digest.clone(), size: 1 };
            store.put_layer_record(&img.layer.digest, &r).unwrap();
            store.update_image_record(&img.manifest.digest, &mut |r| r.add_repo_digest("x@sha256:0")).unwrap();
        }
        // A record of a blob that is gone is not a problem: fsck stays clean.
        assert!(store.fsck().unwrap().is_clean(), "{name}");
        let report = store.gc(&Default::default()).unwrap();
        assert_eq!(report.records_removed, 2, "{name}");
        assert!(store.layer_record(&gone.layer.digest).unwrap().is_none(), "{name}");
        assert!(store.record(RecordKind::Image, &gone.manifest.digest).unwrap().is_none(), "{name}");
        assert!(store.layer_record(&kept.layer.digest).unwrap().is_some(), "{name}");
        assert_eq!(store.image_record(&kept.manifest.digest).unwrap().repo_digests, ["x@sha256:0"], "{name}");

        // A record that does not parse: readers ignore it, fsck reports it.
        let digest = kept.layer.digest.clone();
        store.update_record(RecordKind::Layer, &digest, &mut |_| Ok(Some(b"{not json".to_vec()))).unwrap();
        assert_eq!(store.layer_record(&digest).unwrap(), None, "{name}");
        let fsck = store.fsck().unwrap();
        assert!(matches!(fsck.problems.as_slice(), [Problem::BadRecord { .. }]), "{name}: {:?}", fsck.problems);
        assert_eq!(fsck.records_checked, 2, "{name}");
    }
}

#[test]
fn records_live_in_strata_s_private_area_and_strays_there_are_reported_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("layout")).unwrap();
    let img = write_image(&store, "file");
    store.set_ref("file", &img.manifest).unwrap();
    let r = LayerRecord { diff_id: img.layer.digest.clone(), size: 17 };
    store.put_layer_record(&img.layer.digest, &r).unwrap();
    let root = store.path().to_path_buf();
    let path = root.join(".strata/records/layer/sha256").join(img.layer.digest.hex());
    let bytes = fs::read(&path).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v, serde_json::json!({ "diffId": img.layer.digest.as_str(), "size": 17 }));
    // Nothing under blobs/ but blobs: other tools see a plain layout.
    let blobs: Vec<_> = fs::read_dir(root.join("blobs/sha256")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(blobs.len(), 3);

    // A file that is not a record: fsck calls it a stray, GC removes it.
    let stray = root.join(".strata/records/layer/sha256/not-a-digest");
    fs::write(&stray, "x").unwrap();
    let fsck = store.fsck().unwrap();
    assert!(fsck.problems.iter().any(|p| matches!(p, Problem::Stray { path, .. } if path == &stray)), "{fsck}");
    store.gc(&Default::default()).unwrap();
    assert!(!stray.exists());
    assert!(path.exists(), "the record of a kept blob stays");
    assert!(store.fsck().unwrap().is_clean());
}

#[test]
fn a_layout_strata_only_reads_gets_no_records() {
    // A layout as another tool writes it: no `.strata/`.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    {
        let store = OciDir::create(&root).unwrap();
        let img = write_image(&store, "foreign");
        store.set_ref("foreign", &img.manifest).unwrap();
    }
    fs::remove_dir_all(root.join(".strata")).unwrap();
    let before = snapshot(&root);
    let store = OciDir::open(&root).unwrap();
    assert!(!store.keeps_records());
    let d: Digest = store.resolve_ref("foreign").unwrap().digest;
    assert_eq!(store.image_record(&d).unwrap(), ImageRecord::default());
    assert!(store.fsck().unwrap().is_clean());
    assert_unchanged(&before, &snapshot(&root), "reading records");
    assert!(!Path::new(&root.join(".strata")).exists());
    // The first write makes it a store strata keeps records in.
    store.put_blob(b"x").unwrap();
    assert!(store.keeps_records());
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_big_record_read_keeps_its_bytes_when_the_record_is_replaced() {
    // Big records (a layer's scan record is hundreds of KiB to MiB) are mapped, not
    // copied: what was read must stay what it was while the store replaces the record,
    // on both stores.
    for (name, store, _dir) in stores() {
        let img = write_image(&*store, "big");
        let digest = &img.layer.digest;
        let old: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let new: Vec<u8> = old.iter().map(|b| b ^ 0xff).collect();
        store.update_record(RecordKind::Scan, digest, &mut |_| Ok(Some(old.clone()))).unwrap();
        let read = store.record(RecordKind::Scan, digest).unwrap().unwrap();
        assert_eq!(&read[..], &old[..], "{name}");
        store
            .update_record(RecordKind::Scan, digest, &mut |prev| {
                assert_eq!(prev, Some(&old[..]));
                Ok(Some(new.clone()))
            })
            .unwrap();
        assert_eq!(&read[..], &old[..], "{name}: the bytes read before changed");
        assert_eq!(&store.record(RecordKind::Scan, digest).unwrap().unwrap()[..], &new[..], "{name}");
        // GC of the layer (nothing refers to it) removes the record; what was read
        // stays readable.
        let again = store.record(RecordKind::Scan, digest).unwrap().unwrap();
        store.gc(&Default::default()).unwrap();
        assert!(store.record(RecordKind::Scan, digest).unwrap().is_none(), "{name}");
        assert_eq!(&again[..], &new[..], "{name}");
    }
}
