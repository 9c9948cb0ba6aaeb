//! Tars as real tools write them: GNU tar (gnu, oldgnu, posix with each sparse version,
//! ustar, v7), bsdtar (pax, gnutar, ustar), Python's `tarfile` (PAX, GNU, USTAR) and the
//! `tar` crate, each of a tree generated here with every kind of entry the format can
//! hold (sparse files, long names and links, big owners, xattrs, devices, hard links,
//! nanosecond mtimes). For each: the applier unpacks the tree GNU tar extracts from the
//! same tar (owners numeric, xattrs kept), the merged view lists and reads that tree,
//! its export unpacks to it, and a plan unpacks to it (`semantics::agree`); sparse files
//! are unpacked with their holes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use strata_layer::{ApplyOptions, LayerSource, apply_layers};
use strata_testkit::tars::{
    FULL, NO_XATTRS, Profile, SPARSE_SIZE, USTAR, V7, Writer, gnu_extract, make_tar, make_tree,
};
use strata_testkit::{Compare, Kind, Tree, require_tool};

use crate::common::root_user;
use crate::semantics::agree;

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
