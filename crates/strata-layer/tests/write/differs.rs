//! The three differs on hand-made scenarios, and the layers they write.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};
use strata_layer::diff::{self, DiffOptions};
use strata_layer::{ChangeKind, Changes, Error, RecordedDevice, RecordedOwner, RecordedOwners, Snapshot, WriteOptions};

use crate::fixture::{self, Attrs, Node, Spec, attrs, dir, file};
use crate::layers::{Seen, check_and_list};

pub fn base() -> Spec {
    let mut s = Spec::default();
    s.0.insert("bin".into(), Node::Symlink { target: "usr/bin".into(), attrs: attrs(0o777, 0, 100) });
    s.0.insert("etc".into(), dir(0o755, 100));
    s.0.insert("etc/motd".into(), file(b"hello\n", 0o644, 100));
    s.0.insert("etc/os-release".into(), file(b"ID=debian\n", 0o644, 100));
    s.0.insert(
        "etc/shadow".into(),
        Node::File { data: b"root:*:".to_vec(), attrs: attrs(0o640, 0, 100), xattr: Some(b"a".to_vec()) },
    );
    s.0.insert("opt".into(), dir(0o755, 100));
    s.0.insert("opt/tool".into(), file(b"#!/bin/sh\n", 0o755, 100));
    s.0.insert("srv".into(), dir(0o755, 100));
    s.0.insert("srv/data".into(), file(b"data", 0o644, 100));
    s.0.insert("usr".into(), dir(0o755, 100));
    s.0.insert("usr/share".into(), dir(0o755, 100));
    s.0.insert("usr/share/doc".into(), dir(0o755, 100));
    for i in 0..20 {
        s.0.insert(format!("usr/share/doc/pkg{i}"), dir(0o755, 100));
        s.0.insert(format!("usr/share/doc/pkg{i}/README"), file(b"doc", 0o644, 100));
    }
    s.0.insert("var".into(), dir(0o755, 100));
    s.0.insert("var/lib".into(), file(b"was a file", 0o644, 100));
    s
}

/// Every kind of change at once.
pub fn changed() -> Spec {
    let mut s = base();
    // Content (new size, new mtime).
    s.0.insert("etc/motd".into(), file(b"welcome to strata\n", 0o644, 200));
    // Mode only.
    s.0.insert("etc/os-release".into(), file(b"ID=debian\n", 0o600, 100));
    // xattr only.
    s.0.insert(
        "etc/shadow".into(),
        Node::File { data: b"root:*:".to_vec(), attrs: attrs(0o640, 0, 100), xattr: Some(b"b".to_vec()) },
    );
    // Owner only.
    s.0.insert(
        "opt/tool".into(),
        Node::File { data: b"#!/bin/sh\n".to_vec(), attrs: attrs(0o755, 1000, 100), xattr: None },
    );
    // Symlink retargeted.
    s.0.insert("bin".into(), Node::Symlink { target: "usr/local/bin".into(), attrs: attrs(0o777, 0, 100) });
    // A directory deleted with its contents.
    s.0.retain(|k, _| !k.starts_with("usr/share/doc"));
    s.0.insert("usr/share".into(), dir(0o755, 300));
    // A directory replaced by a file.
    s.0.retain(|k, _| !k.starts_with("srv"));
    s.0.insert("srv".into(), file(b"now a file", 0o644, 300));
    // A file replaced by a directory with contents.
    s.0.insert("var/lib".into(), dir(0o755, 300));
    s.0.insert("var/lib/new".into(), file(b"new", 0o644, 300));
    s.0.insert("var".into(), dir(0o755, 100));
    // Added.
    s.0.insert("home".into(), dir(0o755, 300));
    s.0.insert("home/app".into(), Node::Dir { attrs: Attrs { mode: 0o700, uid: 1000, gid: 1000, mtime: (300, 5) } });
    s.0.insert("home/app/.profile".into(), file(b"export X=1\n", 0o644, 300));
    s.0.insert("run".into(), dir(0o755, 300));
    s.0.insert("run/fifo".into(), Node::Fifo { attrs: attrs(0o600, 0, 300) });
    s
}

const EXPECTED_DIFF: &str = "\
C /bin
C /etc/motd
C /etc/os-release
C /etc/shadow
A /home
A /home/app
A /home/app/.profile
C /opt/tool
A /run
A /run/fifo
C /srv
C /usr/share
D /usr/share/doc
C /var/lib
A /var/lib/new
";

fn sorted_diff(c: &Changes) -> String {
    let mut lines: Vec<String> = c.iter().map(|c| c.to_string()).collect();
    lines.sort_by(|a, b| a[2..].cmp(&b[2..]));
    lines.join("\n") + "\n"
}

fn layer(c: &Changes, root: &Path) -> Vec<Seen> {
    let mut blob = Vec::new();
    let info = c.write_layer(root, &mut blob, &WriteOptions::default()).unwrap();
    check_and_list(&blob, &info)
}

fn names(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|s| s.name.clone()).collect()
}

#[test]
fn trees_reports_each_kind_of_change_once() {
    let tmp = fixture::scratch();
    let (lower, upper) = (fixture::subdir(tmp.path(), "lower"), fixture::subdir(tmp.path(), "upper"));
    base().build(&lower);
    changed().build(&upper);
    let changes = diff::trees(&lower, &upper, &DiffOptions::default()).unwrap();
    assert_eq!(sorted_diff(&changes), EXPECTED_DIFF);
    let seen = layer(&changes, &upper);
    assert_eq!(
        names(&seen),
        [
            "bin",
            "etc/motd",
            "etc/os-release",
            "etc/shadow",
            "home/",
            "home/app/",
            "home/app/.profile",
            "opt/tool",
            "run/",
            "run/fifo",
            "srv",
            "usr/share/",
            "usr/share/.wh.doc",
            "var/lib/",
            "var/lib/new",
        ]
    );
    let get = |n: &str| seen.iter().find(|s| s.name == n).unwrap();
    assert_eq!(get("etc/motd").data, b"welcome to strata\n");
    assert_eq!(get("srv").data, b"now a file");
    assert_eq!(get("usr/share/.wh.doc").typeflag, b'0');
    assert_eq!(get("usr/share/.wh.doc").data, b"");
    assert_eq!(get("etc/shadow").xattrs, vec![("user.test".to_string(), b"b".to_vec())]);
    assert_eq!(get("home/app/").pax_mtime.as_deref(), Some("300.000000005"));
}

#[test]
fn since_reads_only_what_moved_and_agrees_with_trees() {
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    base().build(&root);
    // Through the serialised form, as a commit would load it.
    let snap = Snapshot::from_bytes(&Snapshot::capture(&root).unwrap().to_bytes()).unwrap();
    assert!(diff::since(&snap, &root, &DiffOptions::default()).unwrap().is_empty());
    base().sync(&changed(), &root);
    let changes = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    // Directories whose contents changed moved their ctime even where the spec restored
    // their mtime (etc, opt, var, the parents of deletions): `since` lists them too.
    let mut extra: Vec<String> = Vec::new();
    for line in sorted_diff(&changes).lines() {
        if !EXPECTED_DIFF.lines().any(|l| l == line) {
            extra.push(line.to_string());
        }
    }
    for line in EXPECTED_DIFF.lines() {
        assert!(changes.iter().any(|c| c.to_string() == line), "since misses {line}");
    }
    for e in &extra {
        assert!(["C /etc", "C /opt", "C /usr", "C /var", "C /"].contains(&e.as_str()), "unexpected {e}");
    }
    let seen = layer(&changes, &root);
    assert!(names(&seen).contains(&"usr/share/.wh.doc".to_string()));
    // Directories are headers only: nothing under etc/ that did not change.
    assert!(!names(&seen).iter().any(|n| n.contains("pkg")));
}

#[test]
fn a_deleted_directory_gives_one_whiteout() {
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    base().build(&root);
    let snap = Snapshot::capture(&root).unwrap();
    fs::remove_dir_all(root.join("usr/share/doc")).unwrap();
    let changes = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    assert_eq!(sorted_diff(&changes), "C /usr/share\nD /usr/share/doc\n");
    let seen = layer(&changes, &root);
    assert_eq!(names(&seen), ["usr/share/", "usr/share/.wh.doc"]);
}

#[test]
fn since_catches_content_rewritten_with_its_mtime_restored() {
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    let lower = fixture::subdir(tmp.path(), "lower");
    base().build(&root);
    base().build(&lower);
    let snap = Snapshot::capture(&root).unwrap();
    fs::write(root.join("etc/motd"), b"HELLO\n").unwrap(); // same size
    let t = Timespec { tv_sec: 100, tv_nsec: 0 };
    rustix::fs::utimensat(
        CWD,
        root.join("etc/motd"),
        &Timestamps { last_access: t, last_modification: t },
        AtFlags::empty(),
    )
    .unwrap();
    let changes = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    assert_eq!(sorted_diff(&changes), "C /etc/motd\n");
    assert_eq!(layer(&changes, &root)[0].data, b"HELLO\n");
    // The naive tree differ cannot see it (same size, same mtime): documented.
    assert!(diff::trees(&lower, &root, &DiffOptions::default()).unwrap().is_empty());
}

#[test]
fn content_check_option_ignores_mtime_only_differences() {
    let tmp = fixture::scratch();
    let (lower, upper) = (fixture::subdir(tmp.path(), "lower"), fixture::subdir(tmp.path(), "upper"));
    base().build(&lower);
    let mut touched = base();
    touched.0.insert("etc/motd".into(), file(b"hello\n", 0o644, 999)); // same bytes, new mtime
    touched.0.insert("etc/os-release".into(), file(b"ID=alpine\n", 0o644, 999)); // same size, new bytes
    touched.build(&upper);
    let plain = diff::trees(&lower, &upper, &DiffOptions::default()).unwrap();
    assert_eq!(sorted_diff(&plain), "C /etc/motd\nC /etc/os-release\n");
    let checked = diff::trees(&lower, &upper, &DiffOptions::default().ignore_mtime_if_content_equal(true)).unwrap();
    assert_eq!(sorted_diff(&checked), "C /etc/os-release\n");
}

#[test]
fn hard_link_groups_stay_links() {
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    base().build(&root);
    let snap = Snapshot::capture(&root).unwrap();
    // A new link to an unchanged file, in a new directory.
    fs::create_dir(root.join("srv/links")).unwrap();
    fs::hard_link(root.join("opt/tool"), root.join("srv/links/tool")).unwrap();
    let changes = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    let seen = layer(&changes, &root);
    let get = |n: &str| seen.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n} missing: {:?}", names(&seen)));
    // opt/tool comes first in tar order: it carries the data, the new path links to it.
    assert_eq!(get("opt/tool").typeflag, b'0');
    assert_eq!(get("opt/tool").data, b"#!/bin/sh\n");
    assert_eq!(get("srv/links/tool").typeflag, b'1');
    assert_eq!(get("srv/links/tool").link.as_deref(), Some("opt/tool"));

    // trees sees the same thing from two copies.
    let lower = fixture::subdir(tmp.path(), "lower");
    base().build(&lower);
    let changes = diff::trees(&lower, &root, &DiffOptions::default()).unwrap();
    let seen = layer(&changes, &root);
    assert_eq!(seen.iter().filter(|s| s.typeflag == b'1').count(), 1);
    assert!(names(&seen).contains(&"opt/tool".to_string()));
}

#[test]
fn rootless_recorded_owners_are_compared_and_written() {
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    // What a rootless unpack leaves: everything owned by the unpacking user, a device
    // node as an empty regular file.
    let mut s = Spec::default();
    s.0.insert("dev".into(), Node::Dir { attrs: attrs(0o755, 1000, 100) });
    s.0.insert("dev/null".into(), Node::File { data: vec![], attrs: attrs(0o666, 1000, 100), xattr: None });
    s.0.insert("etc".into(), Node::Dir { attrs: attrs(0o755, 1000, 100) });
    s.0.insert("etc/motd".into(), Node::File { data: b"hi".to_vec(), attrs: attrs(0o644, 1000, 100), xattr: None });
    s.build(&root);
    let mut rec = RecordedOwners::new();
    rec.insert("dev".into(), RecordedOwner { uid: 0, gid: 0, device: None });
    rec.insert(
        "dev/null".into(),
        RecordedOwner { uid: 0, gid: 0, device: Some(RecordedDevice::Char { major: 1, minor: 3 }) },
    );
    rec.insert("etc/motd".into(), RecordedOwner { uid: 0, gid: 42, device: None });
    let snap = Snapshot::from_bytes(&Snapshot::capture_with(&root, rec.clone()).unwrap().to_bytes()).unwrap();
    fs::write(root.join("etc/motd"), b"hello").unwrap();
    fs::set_permissions(root.join("dev/null"), fs::Permissions::from_mode(0o600)).unwrap();
    let changes = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    let seen = layer(&changes, &root);
    let get = |n: &str| seen.iter().find(|s| s.name == n).unwrap();
    assert_eq!((get("etc/motd").uid, get("etc/motd").gid), (0, 42), "intended owner, not the unpacking user");
    assert_eq!(get("dev/null").typeflag, b'3', "the placeholder is written as the device it stands for");
    assert_eq!(get("dev/null").mode, 0o600);
    assert_eq!(get("dev/null").uid, 0);

    // A file replaced (new inode) loses the record: it is what the container made.
    fs::remove_file(root.join("etc/motd")).unwrap();
    fs::write(root.join("etc/motd"), b"new").unwrap();
    let changes = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    let seen = layer(&changes, &root);
    assert_eq!(seen.iter().find(|s| s.name == "etc/motd").unwrap().uid, 0, "written by root in this test");

    // trees applies the record by path on both sides.
    let (lower, upper) = (fixture::subdir(tmp.path(), "l"), fixture::subdir(tmp.path(), "u"));
    s.build(&lower);
    s.build(&upper);
    fs::write(upper.join("etc/motd"), b"changed").unwrap();
    let changes = diff::trees(&lower, &upper, &DiffOptions::default().recorded_owners(rec)).unwrap();
    assert_eq!(sorted_diff(&changes), "C /etc/motd\n");
    assert_eq!(layer(&changes, &upper)[0].gid, 42);
}

#[test]
fn files_changing_during_the_write_are_an_error() {
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    base().build(&root);
    let snap = Snapshot::capture(&root).unwrap();
    fs::write(root.join("etc/motd"), b"first").unwrap();
    let changes = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    fs::OpenOptions::new().append(true).open(root.join("etc/motd")).unwrap().write_all(b" and more").unwrap();
    let r = changes.write_layer(&root, Vec::new(), &WriteOptions::default());
    assert!(matches!(r, Err(Error::SourceChanged { .. })), "{r:?}");
    // A file replaced by a symlink to outside the tree is not followed.
    fs::remove_file(root.join("etc/motd")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("etc/motd")).unwrap();
    let r = changes.write_layer(&root, Vec::new(), &WriteOptions::default());
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn sockets_are_skipped_and_whiteout_names_refused() {
    let tmp = fixture::scratch();
    let (lower, upper) = (fixture::subdir(tmp.path(), "lower"), fixture::subdir(tmp.path(), "upper"));
    base().build(&lower);
    base().build(&upper);
    let _sock = std::os::unix::net::UnixListener::bind(upper.join("etc/control.sock")).unwrap();
    let c = diff::trees(&lower, &upper, &DiffOptions::default()).unwrap();
    assert_eq!(sorted_diff(&c), "C /etc\n", "only the directory's mtime moved");
    let mut blob = Vec::new();
    let (info, _) = strata_layer::write_tree(&upper, &mut blob, &WriteOptions::default()).unwrap();
    assert!(!check_and_list(&blob, &info).iter().any(|s| s.name.contains("sock")));

    fs::write(upper.join("etc/.wh.motd"), b"").unwrap();
    let c = diff::trees(&lower, &upper, &DiffOptions::default()).unwrap();
    let r = c.write_layer(&upper, Vec::new(), &WriteOptions::default());
    assert!(matches!(r, Err(Error::Unrepresentable { .. })), "{r:?}");
}

// ---- overlay ----

fn mknod_whiteout(p: &Path) {
    rustix::fs::mknodat(CWD, p, FileType::CharacterDevice, Mode::empty(), 0).unwrap();
}

fn setx(p: &Path, k: &str, v: &[u8]) {
    rustix::fs::lsetxattr(p, k, v, XattrFlags::empty()).unwrap();
}

/// An upper dir as overlayfs leaves it: whiteouts, opaque dirs (both xattr spellings),
/// copied-up parents, overlay bookkeeping xattrs.
fn upperdir(root: &Path) {
    let mut s = Spec::default();
    s.0.insert("etc".into(), dir(0o755, 200));
    s.0.insert("etc/motd".into(), file(b"new motd", 0o644, 200));
    s.0.insert("usr".into(), dir(0o755, 200));
    s.0.insert("usr/share".into(), dir(0o755, 200));
    s.0.insert("var".into(), dir(0o755, 200));
    s.0.insert("var/cache".into(), dir(0o755, 200));
    s.0.insert("var/cache/fresh".into(), file(b"f", 0o644, 200));
    s.0.insert("var/log".into(), dir(0o755, 200));
    s.0.insert("var/log/new.log".into(), file(b"log", 0o644, 200));
    s.build(root);
    mknod_whiteout(&root.join("etc/os-release"));
    mknod_whiteout(&root.join("usr/share/doc"));
    setx(&root.join("var/cache"), "trusted.overlay.opaque", b"y");
    setx(&root.join("var/log"), "user.overlay.opaque", b"y");
    setx(&root.join("etc"), "trusted.overlay.origin", b"\x00\xfb bookkeeping");
    setx(&root.join("usr"), "trusted.overlay.impure", b"y");
}

#[test]
fn overlay_converts_whiteouts_and_opaque_dirs() {
    let tmp = fixture::scratch();
    let up = fixture::subdir(tmp.path(), "upper");
    upperdir(&up);
    let changes = diff::overlay(&up, &DiffOptions::default()).unwrap();
    assert_eq!(
        sorted_diff(&changes),
        "A /etc\nA /etc/motd\nD /etc/os-release\nA /usr\nA /usr/share\nD /usr/share/doc\nA /var\nA /var/cache\n\
         A /var/cache/fresh\nA /var/log\nA /var/log/new.log\n"
    );
    assert!(changes.iter().filter(|c| c.opaque).count() == 2);
    let seen = layer(&changes, &up);
    assert_eq!(
        names(&seen),
        [
            "etc/",
            "etc/.wh.os-release",
            "etc/motd",
            "usr/",
            "usr/share/",
            "usr/share/.wh.doc",
            "var/",
            "var/cache/",
            "var/cache/.wh..wh..opq",
            "var/cache/fresh",
            "var/log/",
            "var/log/.wh..wh..opq",
            "var/log/new.log",
        ]
    );
    // overlayfs' own xattrs never reach the layer.
    assert!(seen.iter().all(|s| s.xattrs.is_empty()), "{seen:?}");

    // With the lower dirs, A and C are told apart.
    let low = fixture::subdir(tmp.path(), "lower");
    base().build(&low);
    let changes = diff::overlay(&up, &DiffOptions::default().overlay_lowers(vec![low])).unwrap();
    let kinds: Vec<(PathBuf, ChangeKind)> = changes.iter().map(|c| (c.path.clone(), c.kind)).collect();
    assert!(kinds.contains(&("etc/motd".into(), ChangeKind::Modified)));
    assert!(kinds.contains(&("var/log".into(), ChangeKind::Added)));
}

#[test]
fn overlay_refuses_redirect_and_metacopy() {
    for (what, key) in [("redirect_dir", "trusted.overlay.redirect"), ("metacopy", "trusted.overlay.metacopy")] {
        let tmp = fixture::scratch();
        let up = fixture::subdir(tmp.path(), "upper");
        upperdir(&up);
        let target = if what == "metacopy" { up.join("etc/motd") } else { up.join("var/log") };
        setx(&target, key, b"/renamed");
        match diff::overlay(&up, &DiffOptions::default()) {
            Err(Error::OverlayUnsupported { feature, path }) => {
                assert_eq!(feature, what);
                assert!(target.ends_with(&path));
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// A real overlayfs mount over `base()`: changes made through the merged view. Returns
/// (lower, upper, the merged tree as seen through the mount), or `None` where mounting is
/// not possible (needs root and overlayfs).
pub fn real_overlay(tmp: &Path) -> Option<(PathBuf, PathBuf, strata_testkit::Tree)> {
    let (lower, upper, work, merged) = (
        fixture::subdir(tmp, "lower"),
        fixture::subdir(tmp, "upper"),
        fixture::subdir(tmp, "work"),
        fixture::subdir(tmp, "merged"),
    );
    base().build(&lower);
    let opts = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    let st = std::process::Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&merged).status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!("skipping: cannot mount overlayfs here (needs root)");
        return None;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&merged);
    fs::write(merged.join("etc/motd"), b"changed through overlay\n").unwrap();
    fs::remove_file(merged.join("etc/os-release")).unwrap();
    fs::remove_dir_all(merged.join("usr/share/doc")).unwrap();
    fs::create_dir(merged.join("usr/share/doc")).unwrap(); // opaque now
    fs::write(merged.join("usr/share/doc/only"), b"only this").unwrap();
    fs::create_dir_all(merged.join("home/app")).unwrap();
    fs::write(merged.join("home/app/x"), b"x").unwrap();
    fs::set_permissions(merged.join("opt/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::hard_link(merged.join("home/app/x"), merged.join("home/app/y")).unwrap();
    let seen = strata_testkit::Tree::capture(&merged).unwrap();
    Some((lower, upper, seen))
}

#[test]
fn overlay_from_a_real_mount() {
    let tmp = fixture::scratch();
    let Some((lower, upper, _)) = real_overlay(tmp.path()) else { return };
    let changes = diff::overlay(&upper, &DiffOptions::default().overlay_lowers(vec![lower])).unwrap();
    let text = sorted_diff(&changes);
    for line in [
        "D /etc/os-release",
        "C /etc/motd",
        "C /usr/share/doc",
        "A /usr/share/doc/only",
        "A /home/app/y",
        "C /opt/tool",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
    }
    let seen = layer(&changes, &upper);
    let n = names(&seen);
    let opq = n.iter().position(|x| x == "usr/share/doc/.wh..wh..opq").unwrap();
    assert_eq!(n[opq - 1], "usr/share/doc/", "the marker follows its directory");
    assert_eq!(seen.iter().find(|s| s.name == "home/app/y").unwrap().typeflag, b'1');
}

/// A file system mounted inside the tree (a running container's /proc, a bind mount) is
/// not walked into: not by `since`, `trees`, `write_tree` or a snapshot. Needs root.
#[test]
fn mount_points_are_not_crossed() {
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    let lower = fixture::subdir(tmp.path(), "lower");
    base().build(&root);
    base().build(&lower);
    let snap = Snapshot::capture(&root).unwrap();
    let st = std::process::Command::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(root.join("srv")).status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!("skipping: cannot mount tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(root.join("srv"));
    fs::write(root.join("srv/inside-the-mount"), b"x").unwrap();
    fs::write(root.join("etc/motd"), b"changed").unwrap();
    let c = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    assert_eq!(sorted_diff(&c), "C /etc/motd\n", "srv/data is hidden by the mount, not deleted");
    let c = diff::trees(&lower, &root, &DiffOptions::default()).unwrap();
    assert!(!c.iter().any(|c| c.path.starts_with("srv/")), "{}", c.docker_diff());
    let mut blob = Vec::new();
    let (info, _) = strata_layer::write_tree(&root, &mut blob, &WriteOptions::default()).unwrap();
    let n = names(&check_and_list(&blob, &info));
    assert!(n.contains(&"srv/".to_string()) && !n.iter().any(|x| x.starts_with("srv/i")), "{n:?}");
    let s = Snapshot::capture(&root).unwrap();
    assert!(s.get(Path::new("srv")).is_some() && s.get(Path::new("srv/inside-the-mount")).is_none());
}

#[test]
fn docker_listing_marks_parent_directories_changed_and_sorts_depth_first() {
    let tmp = fixture::scratch();
    let (lower, upper) = (fixture::subdir(tmp.path(), "lower"), fixture::subdir(tmp.path(), "upper"));
    base().build(&lower);
    changed().build(&upper);
    let changes = diff::trees(&lower, &upper, &DiffOptions::default()).unwrap();
    // Every directory holding a change that is not itself listed is `C`, as docker's
    // differ marks it; parents right before what is in them.
    assert_eq!(
        changes.docker_diff(),
        "C /bin\nC /etc\nC /etc/motd\nC /etc/os-release\nC /etc/shadow\nA /home\nA /home/app\n\
         A /home/app/.profile\nC /opt\nC /opt/tool\nA /run\nA /run/fifo\nC /srv\nC /usr\nC /usr/share\n\
         D /usr/share/doc\nC /var\nC /var/lib\nA /var/lib/new\n"
    );

    // A deletion sorts by its name, not its whiteout's (`.wh.z` would come first).
    let tmp = fixture::scratch();
    let (lower, upper) = (fixture::subdir(tmp.path(), "lower"), fixture::subdir(tmp.path(), "upper"));
    let mut s = Spec::default();
    s.0.insert("d".into(), dir(0o755, 100));
    s.0.insert("d/a".into(), file(b"a", 0o644, 100));
    s.0.insert("d/z".into(), file(b"z", 0o644, 100));
    s.0.insert("d.txt".into(), file(b"t", 0o644, 100));
    s.build(&lower);
    s.0.remove("d/z");
    s.0.insert("d/a".into(), file(b"a2", 0o644, 200));
    s.0.insert("d/b".into(), file(b"b", 0o644, 200));
    s.0.insert("d.txt".into(), file(b"t2", 0o644, 200));
    s.build(&upper);
    let changes = diff::trees(&lower, &upper, &DiffOptions::default()).unwrap();
    assert_eq!(changes.docker_diff(), "C /d\nC /d/a\nA /d/b\nD /d/z\nC /d.txt\n");
    let listing = changes.docker_listing();
    assert_eq!(listing[0], (ChangeKind::Modified, PathBuf::from("d")));
}
