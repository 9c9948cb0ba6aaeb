//! Trees with every kind of entry tar formats can hold, and the tools that write and
//! extract them: fixtures for the tests that check strata against what real tar writers
//! produce (GNU tar, bsdtar, Python's `tarfile`, the `tar` crate) and what GNU tar
//! extracts from them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Tree, root_user, run};

/// What a format can hold, so that the writer stores the whole tree.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Names past 100 bytes (ustar's split name reaches 255), link targets past 100.
    pub long_names: bool,
    /// Owners past ustar's 7 octal digits (2,097,151).
    pub big_ids: bool,
    /// Extended attributes (PAX `SCHILY.xattr`).
    pub xattrs: bool,
    /// Fifos and devices (v7 has neither).
    pub specials: bool,
    /// Sparse files (made sparse on the source side either way; only some writers keep
    /// the holes).
    pub sparse: bool,
}

/// Everything: PAX formats.
pub const FULL: Profile = Profile { long_names: true, big_ids: true, xattrs: true, specials: true, sparse: true };
/// Everything but xattrs: GNU formats, writers without xattr support.
pub const NO_XATTRS: Profile = Profile { xattrs: false, ..FULL };
/// What ustar holds: short names, small owners, no xattrs, no sparse maps.
pub const USTAR: Profile = Profile { long_names: false, big_ids: false, xattrs: false, specials: true, sparse: false };
/// What v7 holds: ustar's, less fifos and devices.
pub const V7: Profile = Profile { specials: false, ..USTAR };

/// Size of the sparse files: 16 MiB, data here and there, holes in between.
pub const SPARSE_SIZE: u64 = 16 << 20;

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
pub fn make_tree(root: &Path, profile: Profile) {
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
pub enum Writer {
    /// GNU tar with these options.
    Gnu(&'static [&'static str]),
    /// bsdtar (libarchive) with these options.
    Bsd(&'static [&'static str]),
    /// Python's `tarfile` with this format (`PAX_FORMAT`...).
    Python(&'static str),
    /// The `tar` crate's builder (GNU headers).
    TarCrate,
}

/// Make a tar of the directory `src` at `out` with writer `w` (entries named `./...`).
pub fn make_tar(w: &Writer, src: &Path, out: &Path) {
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
pub fn gnu_extract(tar: &Path, into: &Path) -> Tree {
    std::fs::create_dir_all(into).unwrap();
    run(Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(into));
    Tree::capture(into).unwrap()
}
