//! Rootless unpack and commit: owners and devices the image wants are recorded, not
//! applied, and a commit writes them back into the layer.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use strata_image::{Store, UnpackOptions};

use crate::fixture::{E, import_tar, layer_entries, layer_tar, opts, scratch};

#[test]
fn rootless_unpack_then_commit_keeps_the_images_owners_and_devices() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = layer_tar(&[
        E::Dir("dev/", 0o755),
        E::Char("dev/null", 1, 3, 0o666),
        E::Char("dev/tty9", 4, 9, 0o620),
        E::Dir("etc/", 0o755),
        E::File("etc/shadow", b"root:*:19675::::::\n", 0o640, 42),
        E::Dir("home/", 0o755),
        E::File("home/notes", b"owned by 1000\n", 0o640, 1000),
        E::File("home/keep", b"owned by 1000, untouched\n", 0o600, 1000),
    ]);
    let base = import_tar(&store, &tar, "base", 1_700_000_000);
    let c = base.unpack_with(tmp.path().join("c"), &UnpackOptions::default().rootless(true)).unwrap();
    assert!(c.state().rootless);
    let euid = rustix::process::geteuid().as_raw();
    let root = c.rootfs();

    // On disk: nothing chowned, devices are empty regular files.
    let md = fs::symlink_metadata(root.join("home/notes")).unwrap();
    assert_eq!(md.uid(), euid);
    let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(null.is_file() && null.len() == 0, "{null:?}");
    // What the image wanted makes the unchanged tree unchanged.
    assert!(c.diff().unwrap().is_empty(), "{}", c.diff().unwrap().docker_diff());

    // Change an owned file, a device placeholder's mode, and add a file of our own.
    fs::write(root.join("home/notes"), "owned by 1000, edited\n").unwrap();
    fs::set_permissions(root.join("dev/null"), fs::Permissions::from_mode(0o660)).unwrap();
    fs::write(root.join("home/mine"), "the container's\n").unwrap();
    assert_eq!(c.diff().unwrap().docker_diff(), "C /dev\nC /dev/null\nC /home\nA /home/mine\nC /home/notes\n");
    let img = c.commit(&opts(1_700_000_100).tag("rootless")).unwrap();

    let entries = layer_entries(&store, &img.layers()[1]);
    let get = |p: &str| entries.iter().find(|e| e.path == p).unwrap_or_else(|| panic!("{p} not in {entries:#?}"));
    let notes = get("home/notes");
    assert_eq!((notes.uid, notes.gid, notes.mode), (1000, 1000, 0o640));
    assert_eq!(notes.data, b"owned by 1000, edited\n");
    let null = get("dev/null");
    assert_eq!(null.kind, tar::EntryType::Char);
    assert_eq!(null.device, Some((1, 3)));
    assert_eq!((null.uid, null.gid, null.mode), (0, 0, 0o660));
    let mine = get("home/mine");
    assert_eq!((mine.uid, mine.gid), (u64::from(euid), u64::from(rustix::process::getegid().as_raw())));
    // Untouched entries are not in the layer.
    for p in ["home/keep", "etc/shadow", "dev/tty9"] {
        assert!(entries.iter().all(|e| e.path != p), "{p} in the layer");
    }

    // Unpacked for real (as root), the commit has the devices and owners back.
    if euid == 0 {
        let out = tmp.path().join("out");
        img.unpack_raw(&out, &UnpackOptions::default().rootless(false)).unwrap();
        let null = fs::symlink_metadata(out.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!(null.mode() & 0o7777, 0o660);
        let tty = fs::symlink_metadata(out.join("dev/tty9")).unwrap();
        assert!(tty.file_type().is_char_device());
        for (p, uid) in [("home/notes", 1000), ("home/keep", 1000), ("etc/shadow", 42), ("home/mine", 0)] {
            assert_eq!(fs::symlink_metadata(out.join(p)).unwrap().uid(), uid, "{p}");
        }
    }
}

#[test]
fn a_rootless_bundle_reopened_commits_the_same() {
    // The recorded owners live in the snapshot file beside the rootfs: a container
    // opened again from its directory commits what the first handle would.
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = layer_tar(&[E::Dir("srv/", 0o755), E::File("srv/data", b"x", 0o644, 33)]);
    let base = import_tar(&store, &tar, "base", 1_700_000_000);
    let c = base.unpack_with(tmp.path().join("c"), &UnpackOptions::default().rootless(true)).unwrap();
    fs::write(c.rootfs().join("srv/data"), "y").unwrap();
    let reopened = strata_image::Container::open(&store, c.dir()).unwrap();
    assert_eq!(reopened.state(), c.state());
    let img = reopened.commit(&opts(1_700_000_100)).unwrap();
    let entries = layer_entries(&store, &img.layers()[1]);
    let data = entries.iter().find(|e| e.path == "srv/data").unwrap();
    assert_eq!((data.uid, data.gid), (33, 33));
}
