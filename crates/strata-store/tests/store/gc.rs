//! GC: what is kept, what goes, dry runs, leases, temp files.

use std::io::Write;
use std::time::Duration;

use strata_store::spec::{Descriptor, Digest, Index, Manifest, MediaType};
use strata_store::{Backend, BlobStore, Error, Expected, GcOptions, OciDir};

use crate::common::{stores, write_image};

#[test]
fn gc_keeps_everything_reachable_and_removes_the_rest() {
    for (name, store, _dir) in stores() {
        let tagged = write_image(&*store, "tagged");
        let in_index = write_image(&*store, "in-index");
        let orphan = write_image(&*store, "orphan");
        let junk = store.put_blob(b"junk").unwrap();
        store.set_ref("t", &tagged.manifest).unwrap();

        // An image index (multi-platform) that is itself tagged, pointing at in_index.
        let mut idx = Index::new(Some(MediaType::OciIndex));
        idx.manifests.push(in_index.manifest.clone());
        let idx_blob = store.put_blob(&idx.to_canonical_json()).unwrap();
        store.set_ref("multi", &Descriptor::new(MediaType::OciIndex, idx_blob.digest.clone(), idx_blob.size)).unwrap();

        // An artifact (referrer) whose subject is the tagged image, and an untagged index
        // entry of unknown type: kept, not looked into.
        let mut sig = Manifest::new(
            MediaType::OciManifest,
            Descriptor::new(MediaType::OciEmpty, store.put_blob(b"{}").unwrap().digest, 2),
            vec![],
        );
        sig.artifact_type = Some(MediaType::new("application/vnd.example.sig"));
        sig.subject = Some(tagged.manifest.clone());
        let sig_blob = store.put_blob(&sig.to_canonical_json()).unwrap();
        let unknown = store.put_blob(b"opaque artifact").unwrap();
        let unknown_child = store.put_blob(b"not kept through an unknown type").unwrap();
        store
            .update_index(&mut |i| {
                i.manifests.push(Descriptor::new(MediaType::OciManifest, sig_blob.digest.clone(), sig_blob.size));
                i.manifests.push(Descriptor::new(
                    MediaType::new("application/vnd.example.thing"),
                    unknown.digest.clone(),
                    unknown.size,
                ));
                Ok(())
            })
            .unwrap();

        let mut doomed: Vec<Digest> = orphan.digests();
        doomed.push(junk.digest.clone());
        doomed.push(unknown_child.digest.clone());
        doomed.sort();

        let expected_bytes: u64 = doomed.iter().map(|d| store.stat(d).unwrap().unwrap()).sum();
        // A dry run reports exactly the doomed blobs and removes nothing.
        let before = store.list().unwrap();
        let dry = store.gc(&GcOptions::dry_run()).unwrap();
        assert!(dry.dry_run);
        assert_eq!(dry.removed.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(), doomed, "{name}");
        assert_eq!(store.list().unwrap(), before);

        let report = store.gc(&GcOptions::default()).unwrap();
        assert_eq!(report.removed.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(), doomed, "{name}");
        assert_eq!(report.removed_bytes, expected_bytes, "{name}");
        assert_eq!(dry.removed_bytes, expected_bytes);
        assert_eq!(report.kept, before.len() - doomed.len());
        for d in tagged.digests().iter().chain(&in_index.digests()).chain([
            &idx_blob.digest,
            &sig_blob.digest,
            &unknown.digest,
        ]) {
            assert!(store.contains(d).unwrap(), "{name}: reachable {d} was removed");
        }
        for d in &doomed {
            assert!(!store.contains(d).unwrap(), "{name}: {d} survived");
        }
        assert!(store.fsck().unwrap().is_clean(), "{name}");
        // Idempotent.
        assert!(store.gc(&GcOptions::default()).unwrap().removed.is_empty());
    }
}

#[test]
fn gc_refuses_to_run_under_its_own_lease_and_keeps_leased_work() {
    for (name, store, _dir) in stores() {
        let lease = store.lease().unwrap();
        let img = write_image(&*store, "leased");
        let e = store.gc(&GcOptions::default()).unwrap_err();
        assert!(matches!(e, Error::LeaseHeld { .. }), "{name}: {e}");
        // A writer holds a lease too.
        drop(lease);
        let w = store.begin_write().unwrap();
        assert!(matches!(store.gc(&GcOptions::default()), Err(Error::LeaseHeld { .. })), "{name}");
        drop(w);
        // Untagged after the lease is gone: collected.
        assert_eq!(store.gc(&GcOptions::default()).unwrap().removed.len(), 3, "{name}");
        assert!(!store.contains(&img.manifest.digest).unwrap());
    }
}

#[test]
fn gc_aborts_without_removing_anything_when_a_reachable_manifest_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let img = write_image(&store, "x");
    store.set_ref("x", &img.manifest).unwrap();
    let junk = store.put_blob(b"junk").unwrap();
    // Corrupt the manifest: same size, different bytes.
    let path = store.blob_path(&img.manifest.digest);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] = b' ';
    std::fs::write(&path, &bytes).unwrap();
    let e = store.gc(&GcOptions::default()).unwrap_err();
    assert!(matches!(&e, Error::GcAborted { source, .. } if matches!(**source, Error::DigestMismatch { .. })), "{e}");
    assert!(store.contains(&junk.digest).unwrap());
    assert!(store.contains(&img.layer.digest).unwrap());
}

#[test]
fn gc_removes_orphaned_temp_files_and_leaves_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let tmp = dir.path().join("l/.strata/tmp");
    // An orphan: a temp file nobody holds a lock on (its writer crashed).
    std::fs::write(tmp.join("blob-orphan"), vec![0u8; 1000]).unwrap();

    // Young orphans stay (the age backstop), and a dry run removes nothing.
    let r = store.gc(&GcOptions::default()).unwrap();
    assert!(r.temp_removed.is_empty());
    let r = store.gc(&GcOptions { dry_run: true, temp_grace: Duration::ZERO, ..GcOptions::default() }).unwrap();
    assert_eq!(r.temp_removed.len(), 1);
    assert!(tmp.join("blob-orphan").exists());

    // A live writer's temp file is locked; a second handle on the layout (as another
    // process would have) runs GC and leaves it alone.
    let other = OciDir::open(dir.path().join("l")).unwrap();
    let mut w = store.begin_write().unwrap();
    w.write_all(b"in flight").unwrap();
    w.flush().unwrap();
    let report = store.fsck().unwrap();
    assert_eq!(report.temp_files.iter().filter(|t| t.in_use).count(), 1, "{report:?}");
    assert!(report.is_clean());
    let info = w.commit(Expected::none()).unwrap();
    store.set_ref("kept", &Descriptor::new(MediaType::OciLayer, info.digest.clone(), info.size)).unwrap();

    let r = other.gc(&GcOptions { dry_run: false, temp_grace: Duration::ZERO, ..GcOptions::default() }).unwrap();
    assert_eq!(r.temp_removed.len(), 1);
    assert_eq!(r.temp_removed[0].size, 1000);
    assert_eq!(r.freed_bytes(), 1000);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert!(store.contains(&info.digest).unwrap());
}

#[test]
fn gc_of_a_live_temp_file_held_by_another_handle_waits_for_nothing_and_keeps_it() {
    // A temp file locked by a writer that does not follow the lease protocol (here: a
    // plain flock) is never removed, however old.
    let dir = tempfile::tempdir().unwrap();
    let store = OciDir::create(dir.path().join("l")).unwrap();
    let path = dir.path().join("l/.strata/tmp/blob-foreign");
    let f = std::fs::File::create(&path).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let r = store.gc(&GcOptions { dry_run: false, temp_grace: Duration::ZERO, ..GcOptions::default() }).unwrap();
    assert!(r.temp_removed.is_empty());
    assert!(path.exists());
    drop(f);
    let r = store.gc(&GcOptions { dry_run: false, temp_grace: Duration::ZERO, ..GcOptions::default() }).unwrap();
    assert_eq!(r.temp_removed.len(), 1);
}

#[test]
fn gc_aborts_when_a_listed_manifest_is_missing_unless_forced() {
    for (name, store, _dir) in stores() {
        let lost = write_image(&*store, "lost");
        let kept = write_image(&*store, "kept");
        store.set_ref("lost", &lost.manifest).unwrap();
        store.set_ref("kept", &kept.manifest).unwrap();
        // Also an index whose one platform was never pulled: that is no reason to abort.
        let absent = write_image(&strata_store::MemoryStore::new(), "other platform").manifest;
        let mut idx = Index::new(Some(MediaType::OciIndex));
        idx.manifests.push(absent);
        let idx_blob = store.put_blob(&idx.to_canonical_json()).unwrap();
        store.set_ref("partial", &Descriptor::new(MediaType::OciIndex, idx_blob.digest, idx_blob.size)).unwrap();
        assert!(store.gc(&GcOptions::default()).unwrap().removed.is_empty(), "{name}");

        store.delete(&lost.manifest.digest).unwrap();
        let before = store.list().unwrap();
        for opts in [GcOptions::default(), GcOptions::dry_run()] {
            let e = store.gc(&opts).unwrap_err();
            assert!(
                matches!(&e, Error::GcAborted { digest, source } if *digest == lost.manifest.digest && matches!(**source, Error::NotFound(_))),
                "{name}: {e}"
            );
        }
        assert_eq!(store.list().unwrap(), before, "{name}: an aborted gc removed something");

        // --force: what only the lost manifest kept alive goes; the rest stays.
        let r = store.gc(&GcOptions { force: true, ..GcOptions::default() }).unwrap();
        let mut gone: Vec<Digest> = r.removed.iter().map(|(d, _)| d.clone()).collect();
        gone.sort();
        let mut expected = vec![lost.config.digest.clone(), lost.layer.digest.clone()];
        expected.sort();
        assert_eq!(gone, expected, "{name}");
        for d in kept.digests() {
            assert!(store.contains(&d).unwrap(), "{name}");
        }
    }
}

/// Store `blob` as an artifact whose subject is `subject`, listed untagged in the index
/// as a referrer is; returns its descriptor.
fn attach(store: &dyn Backend, subject: &Descriptor, blob: &[u8]) -> Descriptor {
    let b = store.put_blob(blob).unwrap();
    store.put_blob(strata_store::spec::EMPTY_JSON).unwrap();
    let kind = MediaType::new("application/spdx+json");
    let m = strata_store::spec::artifact_manifest(
        kind,
        vec![Descriptor::new(MediaType::new("application/spdx+json"), b.digest, b.size)],
        subject,
    );
    let mb = store.put_blob(&m.to_canonical_json()).unwrap();
    let d = Descriptor::new(MediaType::OciManifest, mb.digest, mb.size);
    store
        .update_index(&mut |i| {
            i.manifests.push(d.clone());
            Ok(())
        })
        .unwrap();
    d
}

#[test]
fn referrers_live_as_long_as_their_subject() {
    for (name, store, _dir) in stores() {
        let img = write_image(&*store, "subject");
        let other = write_image(&*store, "other");
        store.set_ref("img", &img.manifest).unwrap();
        store.set_ref("other", &other.manifest).unwrap();
        let sbom = attach(&*store, &img.manifest, b"sbom of img");
        // A referrer of the referrer (a signature of the SBOM), and one of `other`.
        let sig = attach(&*store, &sbom, b"signature of the sbom");
        let kept = attach(&*store, &other.manifest, b"sbom of other");

        let refs = strata_store::Referrers::scan(&*store).unwrap();
        assert_eq!(refs.of(&img.manifest.digest).iter().map(|d| &d.digest).collect::<Vec<_>>(), [&sbom.digest]);
        assert_eq!(
            refs.of(&img.manifest.digest)[0].artifact_type,
            Some(MediaType::new("application/spdx+json")),
            "{name}"
        );
        assert_eq!(refs.closure([&img.manifest.digest]).len(), 2, "{name}");

        // While the subject lives, GC keeps everything.
        let r = store.gc(&GcOptions::default()).unwrap();
        assert!(r.removed.is_empty() && r.referrers_removed.is_empty(), "{name}: {r:?}");

        // The subject's tag goes: its blobs, the SBOM and its signature go at the next GC,
        // and their entries leave the index; `other`'s SBOM stays.
        store.remove_ref("img").unwrap();
        let dry = store.gc(&GcOptions::dry_run()).unwrap();
        let mut gone_refs = vec![sbom.digest.clone(), sig.digest.clone()];
        gone_refs.sort();
        assert_eq!(dry.referrers_removed, gone_refs, "{name}");
        assert_eq!(store.index().unwrap().manifests.len(), 4, "{name}: a dry run changed the index");
        let r = store.gc(&GcOptions::default()).unwrap();
        assert_eq!(r.referrers_removed, gone_refs, "{name}");
        let index = store.index().unwrap();
        let listed: Vec<&Digest> = index.manifests.iter().map(|d| &d.digest).collect();
        assert_eq!(listed, [&other.manifest.digest, &kept.digest], "{name}");
        for d in img.digests().iter().chain([&sbom.digest, &sig.digest]) {
            assert!(!store.contains(d).unwrap(), "{name}: {d} survived its subject");
        }
        assert!(store.contains(&kept.digest).unwrap(), "{name}");
        assert!(store.fsck().unwrap().is_clean(), "{name}");
    }
}

#[test]
fn a_tagged_referrer_is_a_root_and_keeps_its_subject() {
    for (name, store, _dir) in stores() {
        let img = write_image(&*store, "subject");
        let sbom = attach(&*store, &img.manifest, b"sbom");
        store.set_ref("sbom", &sbom).unwrap();
        let r = store.gc(&GcOptions::default()).unwrap();
        assert!(r.referrers_removed.is_empty(), "{name}");
        for d in img.digests() {
            assert!(store.contains(&d).unwrap(), "{name}");
        }
    }
}
