//! Snapshots of real trees: capture, serialise, load.

use std::path::Path;

use strata_layer::{FileKind, RecordedDevice, RecordedOwner, RecordedOwners, Snapshot};

use crate::fixture::{self, Node, Spec, attrs, dir, file};

fn spec() -> Spec {
    let mut s = Spec::default();
    s.0.insert("a".into(), dir(0o755, 10));
    s.0.insert(
        "a/x".into(),
        Node::File { data: b"xattr".to_vec(), attrs: attrs(0o644, 0, 11), xattr: Some(b"val".to_vec()) },
    );
    s.0.insert("a/y".into(), file(b"plain", 0o600, 12));
    s.0.insert("a/z".into(), Node::Link { to: "a/y".into() });
    s.0.insert("l".into(), Node::Symlink { target: "../../outside".into(), attrs: attrs(0o777, 0, 13) });
    s.0.insert("dev".into(), dir(0o755, 14));
    s.0.insert("dev/null".into(), file(b"", 0o666, 15));
    s
}

#[test]
fn capture_records_every_entry_in_tar_order() {
    let tmp = fixture::scratch();
    spec().build(tmp.path());
    let snap = Snapshot::capture(tmp.path()).unwrap();
    let paths: Vec<&Path> = snap.entries().iter().map(|e| e.path.as_path()).collect();
    let want: Vec<&Path> = ["", "a", "a/x", "a/y", "a/z", "dev", "dev/null", "l"].iter().map(Path::new).collect();
    assert_eq!(paths, want);
    let x = snap.get(Path::new("a/x")).unwrap();
    assert_ne!(x.xattr_hash, 0);
    assert_eq!(x.mtime.sec, 11);
    assert_eq!(x.size, 5);
    assert_eq!(snap.get(Path::new("a/y")).unwrap().xattr_hash, 0);
    assert_eq!(snap.get(Path::new("a/y")).unwrap().nlink, 2);
    assert_eq!(snap.get(Path::new("a/y")).unwrap().ino, snap.get(Path::new("a/z")).unwrap().ino);
    let l = snap.get(Path::new("l")).unwrap();
    assert_eq!(l.kind, FileKind::Symlink);
    assert_eq!(l.link_target.as_deref(), Some(Path::new("../../outside")));
}

#[test]
fn serialised_form_round_trips_with_recorded_owners() {
    let tmp = fixture::scratch();
    spec().build(tmp.path());
    let mut rec = RecordedOwners::new();
    rec.insert(
        "dev/null".into(),
        RecordedOwner { uid: 0, gid: 0, device: Some(RecordedDevice::Char { major: 1, minor: 3 }) },
    );
    rec.insert("a".into(), RecordedOwner { uid: 1000, gid: 1000, device: None });
    let snap = Snapshot::capture_with(tmp.path(), rec.clone()).unwrap();
    let mut bytes = Vec::new();
    snap.write_to(&mut bytes).unwrap();
    assert!(bytes.starts_with(b"STRSNAP\0"));
    let back = Snapshot::read_from(&bytes[..]).unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.recorded(), &rec);
    // Damage anywhere is caught.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert!(Snapshot::from_bytes(&bad).is_err());
}
