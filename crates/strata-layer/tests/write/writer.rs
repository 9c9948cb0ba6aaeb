//! The layer writer: headers, order, determinism, options, re-encoding a tar.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Cursor;
use std::path::Path;

use strata_layer::{
    EntryKind, EntryMeta, Error, LayerWriter, OwnerNames, Timestamp, WriteOptions, reencode_tar, write_tree,
};
use strata_spec::{Compression, Digest, Family, MediaType};

use crate::fixture::{self, Attrs, Node, Spec, attrs, dir, file};
use crate::layers::{check_and_list, decompress, list};

fn sample_spec() -> Spec {
    let mut s = Spec::default();
    s.0.insert("bin".into(), Node::Symlink { target: "usr/bin".into(), attrs: attrs(0o777, 0, 1_600_000_000) });
    s.0.insert("etc".into(), dir(0o755, 1_600_000_001));
    s.0.insert("etc/passwd".into(), file(b"root:x:0:0::/root:/bin/sh\n", 0o644, 1_600_000_002));
    s.0.insert(
        "etc/shadow".into(),
        Node::File { data: b"secret".to_vec(), attrs: attrs(0o600, 0, 1_600_000_003), xattr: Some(b"v1".to_vec()) },
    );
    s.0.insert("etc/hard".into(), Node::Link { to: "etc/passwd".into() });
    s.0.insert("home".into(), dir(0o755, 1_600_000_004));
    s.0.insert(
        "home/app".into(),
        Node::Dir { attrs: Attrs { mode: 0o700, uid: 1000, gid: 1000, mtime: (1_600_000_005, 500_000_000) } },
    );
    s.0.insert("run".into(), dir(0o1777, 1_600_000_006));
    s.0.insert("run/fifo".into(), Node::Fifo { attrs: attrs(0o600, 0, 1_600_000_007) });
    s.0.insert("usr".into(), dir(0o755, 1_600_000_008));
    s.0.insert("usr/bin".into(), dir(0o755, 1_600_000_009));
    s.0.insert("usr/bin/sudo".into(), file(&[7u8; 5000], 0o4755, 1_600_000_010));
    let long = format!("usr/{}", "n".repeat(150));
    s.0.insert(long, file(b"long", 0o644, 1_600_000_011));
    s
}

#[test]
fn write_tree_writes_every_entry_in_tar_order_with_normalised_headers() {
    let tmp = fixture::scratch();
    sample_spec().build(tmp.path());
    // The sink comes back, as from LayerWriter::finish, holding the whole blob.
    let (info, blob) = write_tree(tmp.path(), Vec::new(), &WriteOptions::default()).unwrap();
    assert_eq!(info.compression, Compression::Gzip);
    assert_eq!(blob.len() as u64, info.size);
    let seen = check_and_list(&blob, &info);
    let names: Vec<&str> = seen.iter().map(|s| s.name.as_str()).collect();
    let long = format!("usr/{}", "n".repeat(150));
    assert_eq!(
        names,
        [
            "./",
            "bin",
            "etc/",
            "etc/hard",
            "etc/passwd",
            "etc/shadow",
            "home/",
            "home/app/",
            "run/",
            "run/fifo",
            "usr/",
            "usr/bin/",
            "usr/bin/sudo",
            long.as_str()
        ]
    );
    let get = |n: &str| seen.iter().find(|s| s.name == n).unwrap();
    // Hard link group: the first path in tar order carries the data.
    assert_eq!(get("etc/hard").typeflag, b'0');
    assert_eq!(get("etc/hard").data, b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(get("etc/passwd").typeflag, b'1');
    assert_eq!(get("etc/passwd").link.as_deref(), Some("etc/hard"));
    assert_eq!(get("bin").typeflag, b'2');
    assert_eq!(get("bin").link.as_deref(), Some("usr/bin"));
    assert_eq!(get("run/fifo").typeflag, b'6');
    assert_eq!(get("usr/bin/sudo").mode, 0o4755);
    assert_eq!(get("run/").mode, 0o1777);
    assert_eq!(get("home/app/").uid, 1000);
    assert_eq!(get("home/app/").pax_mtime.as_deref(), Some("1600000005.5"));
    assert_eq!(get("etc/shadow").xattrs, vec![("user.test".to_string(), b"v1".to_vec())]);
    assert_eq!(get("etc/shadow").mtime, 1_600_000_003);
    assert!(get("etc/shadow").pax_mtime.is_none(), "whole-second mtimes need no PAX");
    // No names unless asked.
    assert!(seen.iter().all(|s| s.uname.is_none()));
}

#[test]
fn same_input_same_bytes_whatever_the_thread_count() {
    let tmp = fixture::scratch();
    let mut s = sample_spec();
    // Enough data for many members at a 4 KiB block size.
    for i in 0..40 {
        s.0.insert(format!("usr/f{i:02}"), file(format!("{i} ").repeat(900).as_bytes(), 0o644, 1_600_000_100));
    }
    s.build(tmp.path());
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let run = |threads: usize| {
            let mut blob = Vec::new();
            let opts = WriteOptions::default().compression(c).threads(threads).block_size(4096);
            let (info, _) = write_tree(tmp.path(), &mut blob, &opts).unwrap();
            check_and_list(&blob, &info);
            (info, blob)
        };
        let (a, blob_a) = run(1);
        for threads in [1, 2, 5, 0] {
            let (b, blob_b) = run(threads);
            assert_eq!(a, b, "{c} with {threads} threads");
            assert!(blob_a == blob_b);
        }
        if c == Compression::None {
            assert_eq!(a.digest, a.diff_id);
        }
    }
}

#[test]
fn gzip_members_have_fixed_headers() {
    let tmp = fixture::scratch();
    sample_spec().build(tmp.path());
    let mut blob = Vec::new();
    write_tree(tmp.path(), &mut blob, &WriteOptions::default().block_size(4096)).unwrap();
    // ID1 ID2 CM FLG, MTIME 0, XFL 0, OS 255: no name, no time, nothing host-specific.
    assert_eq!(&blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
}

#[test]
fn levels_and_compressions_are_options() {
    let tmp = fixture::scratch();
    let mut s = Spec::default();
    s.0.insert("text".into(), file("hello strata ".repeat(5000).as_bytes(), 0o644, 1));
    s.build(tmp.path());
    let size = |opts: WriteOptions| {
        let mut blob = Vec::new();
        let (info, _) = write_tree(tmp.path(), &mut blob, &opts).unwrap();
        check_and_list(&blob, &info);
        info
    };
    let fast = size(WriteOptions::default().level(1));
    let best = size(WriteOptions::default().level(12));
    let stored = size(WriteOptions::default().level(0));
    assert_eq!(fast.diff_id, best.diff_id);
    assert_ne!(fast.digest, best.digest);
    assert!(stored.size > fast.size);
    let z = size(WriteOptions::default().compression(Compression::Zstd).level(19));
    assert_eq!(z.diff_id, fast.diff_id);
    assert_eq!(z.media_type(Family::Oci), MediaType::OciLayerZstd);
    assert_eq!(fast.descriptor(Family::Docker).media_type, MediaType::DockerLayerGzip);
    assert_eq!(fast.descriptor(Family::Oci).digest, fast.digest);
    for bad in [
        WriteOptions::default().level(13),
        WriteOptions::default().level(-1),
        WriteOptions::default().block_size(100),
        WriteOptions::default().compression(Compression::Zstd).level(1000),
    ] {
        assert!(matches!(LayerWriter::new(Vec::new(), &bad), Err(Error::InvalidOption { .. })), "{bad:?}");
    }
}

#[test]
fn mtime_clamp_and_owner_names() {
    let tmp = fixture::scratch();
    let mut s = Spec::default();
    s.0.insert("etc".into(), dir(0o755, 100));
    s.0.insert(
        "etc/passwd".into(),
        file(b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n", 0o644, 100),
    );
    s.0.insert("etc/group".into(), file(b"root:x:0:\nstaff:x:1000:\n", 0o644, 100));
    s.0.insert(
        "new".into(),
        Node::File {
            data: b"x".to_vec(),
            attrs: Attrs { mode: 0o644, uid: 1000, gid: 1000, mtime: (5000, 7) },
            xattr: None,
        },
    );
    s.build(tmp.path());
    let names = OwnerNames::from_root(tmp.path()).unwrap();
    assert_eq!(names.users.get(&1000).map(String::as_str), Some("app"));
    let mut blob = Vec::new();
    let opts = WriteOptions::default().mtime_clamp(1000).owner_names(names);
    let (info, _) = write_tree(tmp.path(), &mut blob, &opts).unwrap();
    let seen = check_and_list(&blob, &info);
    let get = |n: &str| seen.iter().find(|e| e.name == n).unwrap();
    assert_eq!(get("new").mtime, 1000, "later mtimes are clamped");
    assert!(get("new").pax_mtime.is_none(), "a clamped time is whole seconds");
    assert_eq!(get("etc/passwd").mtime, 100, "earlier mtimes stay");
    assert_eq!(get("new").uname.as_deref(), Some("app"));
    assert_eq!(get("etc/").uname.as_deref(), Some("root"));
}

#[test]
fn the_writer_refuses_what_would_make_output_ambiguous() {
    let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default()).unwrap();
    w.append(&EntryMeta::new("b", EntryKind::Dir)).unwrap();
    // Out of tar order.
    assert!(matches!(w.append(&EntryMeta::new("a", EntryKind::Dir)), Err(Error::OutOfOrder { .. })));
    // Same path twice.
    assert!(matches!(w.append(&EntryMeta::new("b", EntryKind::Dir)), Err(Error::OutOfOrder { .. })));
    // A plain entry that reads as a whiteout.
    assert!(matches!(w.append(&EntryMeta::new("b/.wh.x", EntryKind::File)), Err(Error::Unrepresentable { .. })));
    // Not normalised.
    assert!(matches!(w.append(&EntryMeta::new("b/../c", EntryKind::Dir)), Err(Error::Unrepresentable { .. })));
    assert!(matches!(w.append(&EntryMeta::new("/c", EntryKind::Dir)), Err(Error::Unrepresentable { .. })));
    // A file whose source is shorter than its size.
    let meta = EntryMeta::new("c", EntryKind::File).with_size(10);
    assert!(matches!(w.append_file(&meta, &mut Cursor::new(b"short")), Err(Error::SourceChanged { .. })));

    // Whiteouts and opaque markers take their place in tar order.
    let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default().compression(Compression::None)).unwrap();
    w.append(&EntryMeta::new("d", EntryKind::Dir)).unwrap();
    w.append_opaque(Path::new("d")).unwrap();
    w.append_whiteout(Path::new("d/a")).unwrap();
    w.append(&EntryMeta::new("d/b", EntryKind::File).with_mtime(Timestamp { sec: 1, nsec: 0 })).unwrap();
    let mut x = BTreeMap::new();
    x.insert(OsString::from("user.a"), b"1".to_vec());
    let meta = EntryMeta { xattrs: x, ..EntryMeta::new("d/c", EntryKind::CharDevice { major: 1, minor: 3 }) };
    w.append(&meta).unwrap();
    assert!(matches!(w.append_opaque(Path::new("d")), Err(Error::OutOfOrder { .. })));
    let (info, blob) = w.finish().unwrap();
    let seen = check_and_list(&blob, &info);
    let names: Vec<&str> = seen.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["d/", "d/.wh..wh..opq", "d/.wh.a", "d/b", "d/c"]);
    assert_eq!(seen[1].mode, 0);
    assert_eq!(seen[4].typeflag, b'3');
}

#[test]
fn reencode_keeps_a_tar_byte_for_byte() {
    let tmp = fixture::scratch();
    sample_spec().build(tmp.path());
    let out = std::process::Command::new("tar").arg("-C").arg(tmp.path()).args(["-cf", "-", "."]).output().unwrap();
    assert!(out.status.success());
    let input = out.stdout;
    let mut blob = Vec::new();
    let info = reencode_tar(&input[..], &mut blob, &WriteOptions::default()).unwrap();
    assert_eq!(info.diff_id, Digest::sha256_of(&input));
    assert_eq!(decompress(&blob, Compression::Gzip), input, "not one byte normalised");
    assert_eq!(info.entries, list(&input).len() as u64);
    assert_eq!(info.uncompressed_size, input.len() as u64);

    // Compressed input, garbage, truncation and an empty stream are refused.
    let mut gz = Vec::new();
    write_tree(tmp.path(), &mut gz, &WriteOptions::default()).unwrap();
    for bad in [
        &gz[..],
        b"this is not a tar archive, just some text that goes on and on".repeat(20).as_slice(),
        &input[..700],
        b"",
    ] {
        let r = reencode_tar(bad, Vec::new(), &WriteOptions::default());
        assert!(matches!(r, Err(Error::InvalidTar { .. })), "{r:?}");
    }
}

#[test]
fn sparse_files_keep_their_size_and_content_through_write_and_diff() {
    use std::os::unix::fs::FileExt;
    let t = fixture::scratch();
    let lower = t.path().join("lower");
    let upper = t.path().join("upper");
    std::fs::create_dir_all(&lower).unwrap();
    std::fs::create_dir_all(&upper).unwrap();
    let size = 12u64 << 20;
    let f = std::fs::File::create(upper.join("disk.img")).unwrap();
    f.set_len(size).unwrap();
    f.write_all_at(b"boot sector", 0).unwrap();
    f.write_all_at(b"middle", 5 << 20).unwrap();
    drop(f);
    let want = std::fs::read(upper.join("disk.img")).unwrap();
    // A whole tree, and the difference between two trees: the layer holds the file's
    // size and bytes (holes as zeros, which gzip makes small), and unpacks to them.
    let mut whole = Vec::new();
    write_tree(&upper, &mut whole, &WriteOptions::default()).unwrap();
    let changes = strata_layer::diff::trees(&lower, &upper, &Default::default()).unwrap();
    let mut diffed = Vec::new();
    changes.write_layer(&upper, &mut diffed, &WriteOptions::default()).unwrap();
    for (what, blob) in [("write_tree", whole), ("diff", diffed)] {
        assert!((blob.len() as u64) < size / 100, "{what}: {} bytes of gzip for 12 MiB of mostly holes", blob.len());
        let out = t.path().join(format!("out-{what}"));
        strata_layer::apply_layer(&out, strata_layer::LayerSource::new(what, &blob[..]), &Default::default()).unwrap();
        assert_eq!(std::fs::read(out.join("disk.img")).unwrap(), want, "{what}");
    }
}

/// The bytes of file content of the sample tree: docker's size of a layer of it (the hard
/// link carries no data of its own).
fn sample_content() -> u64 {
    ("root:x:0:0::/root:/bin/sh\n".len() + "secret".len() + 5000 + "long".len()) as u64
}

#[test]
fn every_writer_reports_dockers_size_of_the_layer() {
    let tmp = fixture::scratch();
    sample_spec().build(tmp.path());
    for c in [Compression::Gzip, Compression::None] {
        let mut blob = Vec::new();
        let (info, _) = write_tree(tmp.path(), &mut blob, &WriteOptions::default().compression(c)).unwrap();
        assert_eq!(info.content_size, sample_content(), "{c}");
        // Read back from the tar: the same figure, reading everything or only the headers.
        let tar = decompress(&blob, c);
        assert_eq!(strata_layer::read::content_size(&tar[..], "t").unwrap(), sample_content());
        assert_eq!(strata_layer::read::content_size_seeking(Cursor::new(&tar), "t").unwrap(), sample_content());
    }
    // Re-encoding GNU tar's own archive of the tree counts the same bytes.
    let out = std::process::Command::new("tar").arg("-C").arg(tmp.path()).args(["-cf", "-", "."]).output().unwrap();
    let info = reencode_tar(&out.stdout[..], Vec::new(), &WriteOptions::default()).unwrap();
    assert_eq!(info.content_size, sample_content());
}

#[test]
fn content_size_counts_what_headers_declare_as_go_does() {
    // A PAX size overrides the header; a symlink's size field counts though it carries no
    // data (Go's `Header.Size`, which docker adds up).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("a").unwrap();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"abc"[..]).unwrap();
    b.append_pax_extensions([("size", &b"5"[..])]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("b").unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"12345"[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("l").unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_link_name("a").unwrap();
    h.set_size(7);
    h.set_mode(0o777);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let tar = b.into_inner().unwrap();
    assert_eq!(strata_layer::read::content_size(&tar[..], "t").unwrap(), 3 + 5 + 7);
    assert_eq!(strata_layer::read::content_size_seeking(Cursor::new(&tar), "t").unwrap(), 3 + 5 + 7);
    // A truncated tar is an error, not a smaller size.
    let r = strata_layer::read::content_size(&tar[..600], "t");
    assert!(matches!(r, Err(Error::InvalidTar { .. })), "{r:?}");
}
