//! A writer killed with SIGKILL mid-blob or mid-index-update leaves a clean store.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rustix::fs::FlockOperation;
use strata_store::{Backend, BlobStore, GcOptions, OciDir};

use crate::child::{marker, spawn, wait_for};
use crate::common::write_image;

fn blob_files(root: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn gc_all_temp(store: &OciDir) -> usize {
    store
        .gc(&GcOptions { dry_run: false, temp_grace: Duration::ZERO, ..GcOptions::default() })
        .unwrap()
        .temp_removed
        .len()
}

#[test]
fn killed_mid_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let store = OciDir::create(&root).unwrap();
    let img = write_image(&store, "before the crash");
    store.set_ref("kept", &img.manifest).unwrap();
    let blobs_before = blob_files(&root);

    let mut child = spawn("slow-writer", &root, 0);
    wait_for(&marker(&root, 0), &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // No partial blob: blobs/ holds exactly what it held.
    assert_eq!(blob_files(&root), blobs_before);
    let report = store.fsck().unwrap();
    assert!(report.is_clean(), "{report}");
    // The dead writer's 4 MiB temp file is there, and nobody holds it.
    assert_eq!(report.temp_files.len(), 1, "{report:?}");
    assert!(!report.temp_files[0].in_use);
    assert!(report.temp_files[0].size >= 4 << 20);
    // GC removes it (its lock died with the process) and nothing else.
    assert_eq!(gc_all_temp(&store), 1);
    assert_eq!(blob_files(&root), blobs_before);
    assert!(store.fsck().unwrap().temp_files.is_empty());
    assert_eq!(store.resolve_ref("kept").unwrap().digest, img.manifest.digest);
}

#[test]
fn killed_mid_index_update() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let store = OciDir::create(&root).unwrap();
    let img = write_image(&store, "before the crash");
    store.set_ref("kept", &img.manifest).unwrap();

    let mut caught_rounds = 0;
    for round in 0..4 {
        let mut child = spawn("index-writer", &root, round);
        wait_for(&marker(&root, round), &mut child);
        // Kill it while it holds the index lock: inside a read-modify-write.
        let lock = File::open(root.join(".strata/index.lock")).unwrap();
        let mut caught = false;
        for _ in 0..1_000_000 {
            match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockShared) {
                Err(_) => {
                    child.kill().unwrap();
                    caught = true;
                    break;
                }
                Ok(()) => rustix::fs::flock(&lock, FlockOperation::Unlock).unwrap(),
            }
        }
        if caught {
            caught_rounds += 1;
        } else {
            child.kill().unwrap();
        }
        child.wait().unwrap();

        // The index is whole, every tag resolves, the lock died with the writer.
        let index = store.index().unwrap();
        assert!(index.manifests.len() >= 2, "round {round}");
        let report = store.fsck().unwrap();
        assert!(report.is_clean(), "round {round}: {report}");
        assert_eq!(store.resolve_ref("kept").unwrap().digest, img.manifest.digest);
        for (name, _) in store.refs().unwrap() {
            let d = store.resolve_ref(&name).unwrap();
            assert!(store.contains(&d.digest).unwrap());
        }
        store.set_ref(&format!("after-round-{round}"), &img.manifest).unwrap();
        gc_all_temp(&store);
        assert!(store.fsck().unwrap().temp_files.is_empty());
    }
    // The writer spends nearly all its time inside updates; polling catches it there.
    assert!(caught_rounds > 0, "never caught the writer holding the index lock");
    eprintln!("killed inside an index update in {caught_rounds} of 4 rounds");
}
