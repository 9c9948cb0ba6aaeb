//! Tars as real tools write them: GNU tar (gnu, oldgnu, posix with each sparse version,
//! ustar, v7), bsdtar (pax, gnutar, ustar), Python's `tarfile` (PAX, GNU, USTAR) and the
//! `tar` crate, each of a tree generated here with every kind of entry the format can
//! hold (sparse files, long names and links, big owners, xattrs, devices, hard links,
//! nanosecond mtimes). For each: the applier unpacks the tree GNU tar extracts from the
//! same tar (owners numeric, xattrs kept), the merged view lists and reads that tree,
//! its export unpacks to it, and a plan unpacks to it (`semantics::agree`); sparse files
//! are unpacked with their holes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_layer::{ApplyOptions, LayerSource, apply_layers};
use strata_testkit::{Compare, Kind, Tree, require_tool, run};

use crate::common::root_user;
use crate::semantics::agree;

/// What a format can hold, so that the writer stores the whole tree.
#[derive(Clone, Copy, Debug)]
struct Profile {
    /// Names past 100 bytes (ustar's split name reaches 255), link targets past 100.
    long_names: bool,
    /// Owners past ustar's 7 octal digits (2,097,151).
    big_ids: bool,
    /// Extended attributes (PAX `SCHILY.xattr`).
    xattrs: bool,
    /// Fifos and devices (v7 has neither).
    specials: bool,
    /// Sparse files (made sparse on the source side either way; only some writers keep
    /// the holes).
    sparse: bool,
}

const FULL: Profile = Profile { long_names: true, big_ids: true, xattrs: true, specials: true, sparse: true };
const NO_XATTRS: Profile = Profile { xattrs: false, ..FULL };
const USTAR: Profile = Profile { long_names: false, big_ids: false, xattrs: false, specials: true, sparse: false };
const V7: Profile = Profile { specials: false, ..USTAR };

/// 16 MiB sparse files: data here and there, holes in between.
const SPARSE_SIZE: u64 = 16 << 20;

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// A file of `size` bytes with `data` written at each offset, holes elsewhere.
fn sparse(p: &Path, size: u64, data: &[(u64, &[u8])]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(p).unwrap();
    f.set_len(size).unwrap();
    for (at, bytes) in data {
        f.write_all_at(bytes, *at).unwrap();
    }
}

fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let t = rustix::fs::Timespec { tv_sec: sec, tv_nsec: nsec };
    let ts = rustix::fs::Timestamps { last_access: t, last_modification: t };
    rustix::fs::utimensat(rustix::fs::CWD, p, &ts, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// The source tree, everything `profile` allows.
fn make_tree(root: &Path, profile: Profile) {
    std::fs::create_dir_all(root).unwrap();
    write(&root.join("a/file"), b"hello\n");
    write(&root.join("empty"), b"");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    write(&root.join("big"), &big);
    write(&root.join("exec"), b"#!/bin/sh\n");
    chmod(&root.join("exec"), 0o755);
    write(&root.join("setuid"), b"su");
    chmod(&root.join("setuid"), 0o4755);
    std::fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    write(&root.join("ro/inside"), b"r");
    std::os::unix::fs::symlink("a/file", root.join("link-rel")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    std::fs::hard_link(root.join("a/file"), root.join("a/hard")).unwrap();
    write(&root.join("ünïcødé-名前"), "unicode".as_bytes());
    if profile.specials {
        rustix::fs::mknodat(rustix::fs::CWD, root.join("fifo"), rustix::fs::FileType::Fifo, 0o640.into(), 0).unwrap();
        if root_user() {
            let dev = rustix::fs::makedev(1, 3);
            rustix::fs::mknodat(
                rustix::fs::CWD,
                root.join("null"),
                rustix::fs::FileType::CharacterDevice,
                0o666.into(),
                dev,
            )
            .unwrap();
        }
    }
    if profile.long_names {
        let long = root.join("d".repeat(60)).join("e".repeat(60)).join("f".repeat(120));
        write(&long, b"long name");
        std::os::unix::fs::symlink("t".repeat(150), root.join("link-long")).unwrap();
        std::fs::hard_link(&long, root.join("hard-to-long")).unwrap();
    }
    if root_user() {
        write(&root.join("owned"), b"o");
        lchown(&root.join("owned"), 1000, 1001);
        lchown(&root.join("link-rel"), 7, 8);
        if profile.big_ids {
            write(&root.join("big-ids"), b"b");
            lchown(&root.join("big-ids"), 3_000_000, 4_000_000);
        }
    }
    if profile.xattrs {
        let p = root.join("xattrs");
        write(&p, b"x");
        rustix::fs::setxattr(&p, "user.comment", b"hi", rustix::fs::XattrFlags::empty()).unwrap();
        rustix::fs::setxattr(&p, "user.binary", &[0, 1, 255, b'\n'], rustix::fs::XattrFlags::empty()).unwrap();
    }
    if profile.sparse {
        sparse(&root.join("sparse-mid"), SPARSE_SIZE, &[(1 << 20, b"one MiB in"), (9 << 20, &big[..70_000])]);
        sparse(&root.join("sparse-end"), SPARSE_SIZE, &[(0, b"data first, a hole to the end")]);
        sparse(&root.join("sparse-all"), SPARSE_SIZE, &[]);
    }
    // Mtimes last (children change their directory's), with nanoseconds.
    let mut paths: Vec<PathBuf> = walk(root);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in paths.iter().enumerate() {
        set_mtime(p, 1_600_000_000 + i as i64, 123_456_789);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// How each writer makes a tar of `src` at `out`.
enum Writer {
    Gnu(&'static [&'static str]),
    Bsd(&'static [&'static str]),
    Python(&'static str),
    TarCrate,
}

fn make_tar(w: &Writer, src: &Path, out: &Path) {
    match w {
        Writer::Gnu(args) => {
            let mut c = Command::new("tar");
            c.args(*args).arg("--numeric-owner").arg("--sort=name").arg("-cf").arg(out).arg("-C").arg(src).arg(".");
            run(&mut c);
        }
        Writer::Bsd(args) => {
            let mut c = Command::new("bsdtar");
            c.args(*args).arg("--numeric-owner").arg("-cf").arg(out).arg("-C").arg(src).arg(".");
            run(&mut c);
        }
        Writer::Python(format) => {
            let script = format!(
                "import sys, tarfile\n\
                 with tarfile.open(sys.argv[1], 'w', format=tarfile.{format}) as t:\n\
                 \x20   t.add(sys.argv[2], arcname='.')\n"
            );
            run(Command::new("python3").arg("-c").arg(script).arg(out).arg(src));
        }
        Writer::TarCrate => {
            let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            b.append_dir_all(".", src).unwrap();
            b.finish().unwrap();
        }
    }
}

/// GNU tar's extraction of `tar` into a new directory (owners numeric, xattrs kept).
fn gnu_extract(tar: &Path, into: &Path) -> Tree {
    std::fs::create_dir_all(into).unwrap();
    run(Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(into));
    Tree::capture(into).unwrap()
}

fn check(name: &str, writer: &Writer, profile: Profile) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, profile);
    let tar_path = t.path().join("layer.tar");
    make_tar(writer, &src, &tar_path);
    let theirs = gnu_extract(&tar_path, &t.path().join("gnu"));
    let bytes = std::fs::read(&tar_path).unwrap();
    // The applier, the merged view (listing, reading, export) and a plan agree...
    let ours = agree(std::slice::from_ref(&bytes), name).unwrap_or_else(|| panic!("{name}: strata refused the tar"));
    // ...and agree with GNU tar. Directory mtimes are compared with the source tree
    // instead: GNU tar sets a directory's mtime when it leaves the directory, which
    // gives the time of the extraction to directories of archives not written depth
    // first (bsdtar writes `a/`, `ro/`, then `a/file`, `ro/inside`); strata sets them
    // once every entry is in.
    let cmp = Compare { dir_mtime: false, owners: root_user(), ..Compare::default() };
    let diff = theirs.diff(&ours, &cmp);
    assert!(diff.is_empty(), "{name}: strata and GNU tar extract different trees:\n{}", diff.join("\n"));
    let source = Tree::capture(&src).unwrap();
    for (p, e) in ours.entries.iter().filter(|(p, e)| e.kind == Kind::Dir && !p.as_os_str().is_empty()) {
        let want = source.entries.get(p).map(|s| s.mtime.0);
        assert_eq!(Some(e.mtime.0), want, "{name}: mtime of directory {}", p.display());
    }
    // The tree is what was archived, not merely what both readers agree on.
    for p in ["a/file", "a/hard", "big", "link-rel", "sticky"] {
        assert!(ours.entries.contains_key(Path::new(p)), "{name}: {p} missing");
    }
    if profile.sparse && theirs.entries.contains_key(Path::new("sparse-mid")) {
        // Holes stay holes: the unpacked files take far less than their size.
        let d = t.path().join("ours");
        let layer = LayerSource::new(name, std::fs::File::open(&tar_path).unwrap());
        apply_layers(&d, [layer], &ApplyOptions::default()).unwrap();
        for f in ["sparse-mid", "sparse-end", "sparse-all"] {
            let md = std::fs::metadata(d.join(f)).unwrap();
            assert_eq!(md.len(), SPARSE_SIZE, "{name}: {f}");
            let theirs_blocks = std::fs::metadata(t.path().join("gnu").join(f)).unwrap().blocks();
            assert!(
                md.blocks() <= theirs_blocks.max(1 << 10),
                "{name}: {f} takes {} blocks, GNU tar's {theirs_blocks}",
                md.blocks()
            );
        }
    }
}

#[test]
fn gnu_tar_formats() {
    if !require_tool("tar") {
        return;
    }
    let cases: &[(&str, &[&str], Profile)] = &[
        ("gnu tar --format=gnu --sparse", &["--format=gnu", "--sparse"], NO_XATTRS),
        ("gnu tar --format=oldgnu --sparse", &["--format=oldgnu", "--sparse"], NO_XATTRS),
        ("gnu tar posix sparse 0.0", &["--format=posix", "--xattrs", "--sparse", "--sparse-version=0.0"], FULL),
        ("gnu tar posix sparse 0.1", &["--format=posix", "--xattrs", "--sparse", "--sparse-version=0.1"], FULL),
        ("gnu tar posix sparse 1.0", &["--format=posix", "--xattrs", "--sparse", "--sparse-version=1.0"], FULL),
        ("gnu tar --format=ustar", &["--format=ustar"], USTAR),
        ("gnu tar --format=v7", &["--format=v7"], V7),
    ];
    for (name, args, profile) in cases {
        check(name, &Writer::Gnu(args), *profile);
    }
}

#[test]
fn bsdtar_formats() {
    if !require_tool("bsdtar") {
        return;
    }
    let cases: &[(&str, &[&str], Profile)] = &[
        ("bsdtar pax", &["--format=pax", "--read-sparse"], FULL),
        ("bsdtar gnutar", &["--format=gnutar", "--read-sparse"], NO_XATTRS),
        ("bsdtar ustar", &["--format=ustar"], USTAR),
    ];
    for (name, args, profile) in cases {
        check(name, &Writer::Bsd(args), *profile);
    }
}

#[test]
fn python_tarfile_formats() {
    if !require_tool("python3") {
        return;
    }
    // tarfile writes no xattrs and no sparse maps (the sparse files go in dense).
    for (format, profile) in [("PAX_FORMAT", NO_XATTRS), ("GNU_FORMAT", NO_XATTRS), ("USTAR_FORMAT", USTAR)] {
        check(&format!("python tarfile {format}"), &Writer::Python(format), profile);
    }
}

#[test]
fn tar_crate() {
    // GNU headers, long names as `L` entries; no xattrs, sparse files dense.
    check("tar crate", &Writer::TarCrate, NO_XATTRS);
}
