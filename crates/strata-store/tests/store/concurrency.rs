//! Eight processes tag one layout at once while GC runs and index.json is read: no tag
//! lost, nothing reachable removed, no read torn.

use std::collections::BTreeSet;

use strata_store::spec::Index;
use strata_store::{Backend, BlobStore, GcOptions, OciDir};

use crate::child::{TAGS_PER_CHILD, marker, spawn, tag_name, wait_for};
use crate::common::write_image;

const CHILDREN: usize = 8;

#[test]
fn eight_processes_tagging_while_gc_runs_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let store = OciDir::create(&root).unwrap();
    // Garbage for GC to find: untagged images.
    let garbage: Vec<_> = (0..5).flat_map(|i| write_image(&store, &format!("garbage {i}")).digests()).collect();

    let mut children: Vec<_> = (0..CHILDREN).map(|id| spawn("tagger", &root, id)).collect();

    // GC in this process, over and over, while the children work; and index.json read
    // as another tool reads it (no lock): always a whole index, never with fewer entries
    // than the read before (the children only add), though the file each read opened
    // may be the next change's spare by the time it is read.
    let mut gc_runs = 0;
    let mut removed = BTreeSet::new();
    let mut seen = 0;
    loop {
        let running = children.iter_mut().filter_map(|c| c.try_wait().unwrap().is_none().then_some(())).count();
        let report = store.gc(&GcOptions::default()).unwrap();
        gc_runs += 1;
        removed.extend(report.removed.into_iter().map(|(d, _)| d));
        for _ in 0..4 {
            let bytes = std::fs::read(root.join("index.json")).unwrap();
            let index = Index::from_slice(&bytes).unwrap_or_else(|e| panic!("a torn index.json: {e}"));
            assert!(index.manifests.len() >= seen, "index.json lost entries: {} after {seen}", index.manifests.len());
            seen = index.manifests.len();
        }
        if running == 0 {
            break;
        }
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a tagger failed");
    }

    let refs = store.refs().unwrap();
    let names: BTreeSet<_> = refs.iter().map(|(n, _)| n.clone()).collect();
    let want: BTreeSet<_> = (0..CHILDREN).flat_map(|id| (0..TAGS_PER_CHILD).map(move |j| tag_name(id, j))).collect();
    assert_eq!(names.len(), CHILDREN * TAGS_PER_CHILD);
    assert_eq!(names, want, "tags lost");

    // Everything reachable survived every GC; the garbage did not.
    let report = store.fsck().unwrap();
    assert!(report.is_clean(), "{report}");
    // Each image's three blobs; the blob every child shared was never tagged, so the
    // last GC (after the children exited) took it.
    assert_eq!(report.blobs_checked, CHILDREN * TAGS_PER_CHILD * 3);
    assert!(!store.contains(&strata_store::spec::Digest::sha256_of(b"shared by every child")).unwrap());
    for d in &garbage {
        assert!(!store.contains(d).unwrap(), "garbage {d} survived");
        assert!(removed.contains(d));
    }
    // Each tag resolves to the image its child wrote.
    for (id, j) in [(0, 0), (3, 17), (7, 49)] {
        let m = store.resolve_ref(&tag_name(id, j)).unwrap();
        assert_eq!(
            m.digest,
            write_image(&strata_store::MemoryStore::new(), &format!("child {id} image {j}")).manifest.digest
        );
    }
    assert!(gc_runs >= 2, "GC ran only {gc_runs} times");
    eprintln!("GC ran {gc_runs} times while the taggers worked");
}

#[test]
fn gc_waits_for_a_lease_held_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let store = OciDir::create(&root).unwrap();
    let mut child = spawn("lease-holder", &root, 0);
    wait_for(&marker(&root, 0), &mut child);
    // The child's image is written but untagged, under its lease. GC starts now and must
    // wait; if it did not, it would delete the image before the child tags it.
    let gc = std::thread::spawn(move || store.gc(&GcOptions::default()).unwrap());
    // Give a GC that does not wait every chance to run first (this is not a timing
    // assertion: the outcome below is the same however long this takes).
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(dir.path().join("go"), b"").unwrap();
    assert!(child.wait().unwrap().success());
    let report = gc.join().unwrap();
    assert!(report.removed.is_empty(), "GC removed leased blobs: {:?}", report.removed);
    let store = OciDir::open(&root).unwrap();
    let desc = store.resolve_ref("leased").unwrap();
    assert!(store.contains(&desc.digest).unwrap());
    assert!(store.fsck().unwrap().is_clean());
}
