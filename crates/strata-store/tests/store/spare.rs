//! The spare (`.strata/index.spare`): a tag or rmi writes the new `index.json` over the
//! file the change before replaced, from the first byte that differs, only when no one
//! else can be reading that file; the index is the same as written from scratch.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use strata_store::spec::Index;
use strata_store::{Backend, MemoryStore, OciDir};

use crate::common::{Image, write_image};

fn ino(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

/// A layout with `n` tags over three images, and the same on a `MemoryStore`.
fn tagged(root: &Path, n: usize) -> (OciDir, MemoryStore, Vec<(Image, Image)>) {
    let oci = OciDir::create(root).unwrap();
    let mem = MemoryStore::new();
    let imgs: Vec<_> =
        (0..3).map(|i| (write_image(&oci, &format!("i{i}")), write_image(&mem, &format!("i{i}")))).collect();
    for k in 0..n {
        let name = format!("r{}:t{k}", k % 5);
        oci.set_ref(&name, &imgs[k % 3].0.manifest).unwrap();
        mem.set_ref(&name, &imgs[k % 3].1.manifest).unwrap();
    }
    (oci, mem, imgs)
}

/// `index.json` is the canonical form of the model's index.
fn check(root: &Path, mem: &MemoryStore, what: &str) {
    let bytes = fs::read(root.join("index.json")).unwrap();
    assert_eq!(bytes, mem.index().unwrap().to_canonical_json(), "{what}: index.json differs from the model");
    assert_eq!(Index::from_slice(&bytes).unwrap(), mem.index().unwrap());
}

/// With no one reading, consecutive changes alternate between two files: the one a
/// change replaced is the one the next writes over (the feature at work), and every
/// index is the canonical one, whether the change appends, re-points in the middle,
/// removes near the start or rewrites the whole index.
#[test]
fn changes_write_over_the_replaced_index() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    let (oci, mem, imgs) = tagged(&root, 40);
    let index = root.join("index.json");
    let spare = root.join(".strata/index.spare");
    let mut inodes = Vec::new();
    for k in 0..12 {
        inodes.push(ino(&index));
        match k % 4 {
            0 | 1 => {
                let name = format!("new:{k}");
                oci.set_ref(&name, &imgs[k % 3].0.manifest).unwrap();
                mem.set_ref(&name, &imgs[k % 3].1.manifest).unwrap();
            }
            2 => {
                // Another image each time (1, 2, 1), so that the index changes.
                let i = (k / 4) % 2 + 1;
                oci.set_ref("r1:t6", &imgs[i].0.manifest).unwrap();
                mem.set_ref("r1:t6", &imgs[i].1.manifest).unwrap();
            }
            _ => {
                let name = format!("r0:t{}", 5 * (k / 4));
                assert_eq!(oci.remove_ref(&name).unwrap(), mem.remove_ref(&name).unwrap());
            }
        }
        check(&root, &mem, &format!("change {k}"));
        assert_eq!(ino(&spare), inodes[k], "change {k}: the replaced index.json is not the spare");
        if k >= 1 {
            assert_eq!(ino(&index), inodes[k - 1], "change {k}: the spare was not written over");
        }
    }
    // A whole-index update goes the same way.
    let (before, spare_before) = (ino(&index), ino(&spare));
    for s in [&oci as &dyn Backend, &mem] {
        s.update_index(&mut |i| {
            i.manifests.reverse();
            Ok(())
        })
        .unwrap();
    }
    check(&root, &mem, "update_index");
    assert_eq!((ino(&index), ino(&spare)), (spare_before, before), "update_index did not write over the spare");
    assert_eq!(fs::metadata(&spare).unwrap().nlink(), 1);
    assert!(!root.join(".strata/index.spare-next").exists());
}

/// A reader that opened `index.json` before two changes still reads the bytes it
/// opened: the file it holds is the spare by the second change, and is not written
/// over while it is open (the same for a second name of the spare).
#[test]
fn a_file_still_open_or_linked_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    let (oci, mem, imgs) = tagged(&root, 30);
    let index = root.join("index.json");
    let before = fs::read(&index).unwrap();
    let mut held = File::open(&index).unwrap();
    let held_ino = ino(&index);
    for k in 0..4 {
        let name = format!("held:{k}");
        oci.set_ref(&name, &imgs[0].0.manifest).unwrap();
        mem.set_ref(&name, &imgs[0].1.manifest).unwrap();
        check(&root, &mem, &format!("change {k} with a reader"));
        assert_ne!(ino(&index), held_ino, "change {k}: the file a reader holds became index.json again");
    }
    let mut read = Vec::new();
    held.read_to_end(&mut read).unwrap();
    assert_eq!(read, before, "the reader's file was written over");
    drop(held);

    // Another layout names the spare too (as `cp -al` of a layout does).
    let other = dir.path().join("other.json");
    fs::hard_link(root.join(".strata/index.spare"), &other).unwrap();
    let linked = fs::read(&other).unwrap();
    for k in 0..3 {
        let name = format!("linked:{k}");
        oci.set_ref(&name, &imgs[1].0.manifest).unwrap();
        mem.set_ref(&name, &imgs[1].1.manifest).unwrap();
        check(&root, &mem, &format!("change {k} with a linked spare"));
    }
    assert_eq!(fs::read(&other).unwrap(), linked, "a file with another name was written over");
}

/// The spare edited behind strata's back (in place, same size, right after the change
/// that made it; or replaced by a symlink; or a switch cut short by a crash, leaving
/// `index.spare-next`): the next change still writes the canonical index and leaves
/// whatever the symlink points to alone.
#[test]
fn a_spare_edited_or_left_over_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("l");
    let (oci, mem, imgs) = tagged(&root, 30);
    let spare = root.join(".strata/index.spare");
    let set = |name: &str, k: usize| {
        oci.set_ref(name, &imgs[k].0.manifest).unwrap();
        mem.set_ref(name, &imgs[k].1.manifest).unwrap();
    };
    set("edit:a", 0);
    set("edit:b", 1);
    // In place: every byte of the spare, same size.
    let len = fs::metadata(&spare).unwrap().len() as usize;
    let mut f = OpenOptions::new().write(true).open(&spare).unwrap();
    f.write_all(&vec![b' '; len]).unwrap();
    drop(f);
    set("edit:c", 2);
    check(&root, &mem, "after an in-place edit of the spare");

    // A symlink in its place.
    set("link:a", 0);
    let target = dir.path().join("target");
    fs::write(&target, b"not an index").unwrap();
    fs::remove_file(&spare).unwrap();
    std::os::unix::fs::symlink(&target, &spare).unwrap();
    set("link:b", 1);
    check(&root, &mem, "after the spare became a symlink");
    assert_eq!(fs::read(&target).unwrap(), b"not an index");
    assert!(fs::symlink_metadata(&spare).unwrap().is_file(), "the replaced index.json did not become the spare");

    // A switch cut short: index.json has a second name.
    fs::hard_link(root.join("index.json"), root.join(".strata/index.spare-next")).unwrap();
    set("crash:a", 2);
    set("crash:b", 0);
    check(&root, &mem, "after a left-over index.spare-next");
    assert!(!root.join(".strata/index.spare-next").exists());
}
