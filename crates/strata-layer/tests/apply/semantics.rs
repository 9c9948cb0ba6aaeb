//! What applying layers does: each entry type, whiteouts, opaque directories,
//! replacements, metadata, verification, rootless recording.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use strata_layer::{ApplyOptions, Device, Error, LayerSource, Ownership, Recorded, apply_layer, apply_layers};
use strata_spec::{Compression, Digest};

use crate::util::*;

fn root_user() -> bool {
    rustix::process::geteuid().is_root()
}

fn read(root: &Path, p: &str) -> String {
    String::from_utf8(std::fs::read(root.join(p)).unwrap()).unwrap()
}

fn exists(root: &Path, p: &str) -> bool {
    std::fs::symlink_metadata(root.join(p)).is_ok()
}

fn md(root: &Path, p: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(root.join(p)).unwrap()
}

/// Names directly in `dir`, sorted.
fn ls(root: &Path, dir: &str) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

fn opts() -> ApplyOptions {
    ApplyOptions::default()
}

#[test]
fn every_entry_type_with_its_metadata() {
    for resolver in RESOLVERS {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let long = format!("{}/{}", "d".repeat(90), "f".repeat(150));
        let layer = vec![
            dir("etc").mode(0o755),
            file("etc/motd", b"hello").mode(0o640).owner(1000, 1001),
            file("usr/bin/su", b"#!").mode(0o4755),
            file("usr/bin/wall", b"#!").mode(0o2755).owner(0, 5),
            dir("tmp").mode(0o1777),
            sym("usr/bin/sh", "/bin/dash").owner(7, 7),
            link("usr/bin/su2", "usr/bin/su"),
            fifo("run/fifo").mode(0o620),
            chr("dev/null", 1, 3),
            blk("dev/loop0", 7, 0),
            file(&long, b"long pax name"),
            file(&format!("g/{long}"), b"long gnu name").gnu(),
            sym("s", &format!("/{}", "t".repeat(200))),
            file("ns", b"x").pax("mtime", b"1600000000.123456789"),
            file("cap", b"x").xattr("user.test", b"v1").xattr("user.other", b""),
        ];
        let report = apply(root, &[layer], &opts().resolver(resolver)).unwrap();
        assert_eq!(report.resolver, resolver);
        assert_eq!(read(root, "etc/motd"), "hello");
        assert_eq!(md(root, "etc/motd").permissions().mode() & 0o7777, 0o640);
        assert_eq!(md(root, "usr/bin/su").permissions().mode() & 0o7777, 0o4755);
        assert_eq!(md(root, "usr/bin/wall").permissions().mode() & 0o7777, 0o2755);
        assert_eq!(md(root, "tmp").permissions().mode() & 0o7777, 0o1777);
        assert_eq!(std::fs::read_link(root.join("usr/bin/sh")).unwrap(), Path::new("/bin/dash"));
        assert_eq!(md(root, "usr/bin/su").ino(), md(root, "usr/bin/su2").ino());
        assert_eq!(md(root, "usr/bin/su").nlink(), 2);
        assert!(md(root, "run/fifo").file_type().is_fifo());
        assert_eq!(md(root, "run/fifo").permissions().mode() & 0o7777, 0o620);
        assert_eq!(read(root, &long), "long pax name");
        assert_eq!(read(root, &format!("g/{long}")), "long gnu name");
        assert_eq!(std::fs::read_link(root.join("s")).unwrap().as_os_str().len(), 201);
        assert_eq!((md(root, "ns").mtime(), md(root, "ns").mtime_nsec()), (1_600_000_000, 123_456_789));
        assert_eq!(md(root, "etc/motd").mtime(), MTIME as i64);
        assert_eq!(rustix::fs::getxattr(root.join("cap"), "user.test", &mut [0u8; 16][..]).unwrap(), 2);
        if root_user() {
            assert!(!report.rootless);
            assert_eq!((md(root, "etc/motd").uid(), md(root, "etc/motd").gid()), (1000, 1001));
            assert_eq!(md(root, "usr/bin/sh").uid(), 7);
            assert!(md(root, "dev/null").file_type().is_char_device());
            assert_eq!(md(root, "dev/null").rdev(), rustix::fs::makedev(1, 3));
            assert!(md(root, "dev/loop0").file_type().is_block_device());
        }
    }
}

#[test]
fn rootless_mode_records_owners_and_devices() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let layers = vec![
        vec![
            file("a", b"x").owner(1000, 1000),
            file("b", b"x"),
            dir("home/app").owner(1000, 100).mode(0o500),
            file("home/app/f", b"x").owner(1000, 100),
            chr("dev/null", 1, 3).owner(0, 0),
            blk("dev/sda", 8, 0).owner(0, 6),
            file("gone", b"x").owner(5, 5),
            link("a2", "a"),
        ],
        vec![wh("gone"), file("b", b"y").owner(0, 42)],
    ];
    let report = apply(root, &layers, &opts().ownership(Ownership::Record)).unwrap();
    assert!(report.rootless);
    let r = |uid, gid| Recorded { uid, gid, device: None };
    let expected: BTreeMap<PathBuf, Recorded> = [
        ("a", r(1000, 1000)),
        ("a2", r(1000, 1000)),
        ("b", r(0, 42)),
        ("home/app", r(1000, 100)),
        ("home/app/f", r(1000, 100)),
        ("dev/null", Recorded { uid: 0, gid: 0, device: Some(Device::Char { major: 1, minor: 3 }) }),
        ("dev/sda", Recorded { uid: 0, gid: 6, device: Some(Device::Block { major: 8, minor: 0 }) }),
    ]
    .into_iter()
    .map(|(p, r)| (PathBuf::from(p), r))
    .collect();
    assert_eq!(report.recorded, expected);
    // Devices are empty regular files; nothing was chowned.
    assert!(md(root, "dev/null").is_file() && md(root, "dev/null").len() == 0);
    assert_eq!(md(root, "a").uid(), rustix::process::geteuid().as_raw());
    // A directory without u+w got its mode at the end, after its contents were written.
    assert_eq!(md(root, "home/app").permissions().mode() & 0o7777, 0o500);
    assert_eq!(read(root, "home/app/f"), "x");
}

#[test]
fn whiteouts_remove_lower_files_and_directories() {
    for resolver in RESOLVERS {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let layers = vec![
            vec![dir("a"), file("a/f", b"1"), dir("a/sub"), file("a/sub/g", b"2"), file("keep", b"k"), file("x", b"x")],
            vec![wh("a/f"), wh("a/sub"), wh("x"), wh("never/existed"), wh("keep/not-a-dir")],
        ];
        let report = apply(root, &layers, &opts().resolver(resolver)).unwrap();
        assert_eq!(report.layers[1].whiteouts, 5);
        assert_eq!(ls(root, ""), ["a", "keep"]);
        assert!(ls(root, "a").is_empty());
        assert!(!exists(root, "never"));
    }
}

#[test]
fn whiteouts_only_hide_lower_layers() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    // The same layer adds `n` and then whites it out: it stays. It whites out `d` (lower)
    // after adding `d/new`: the lower content goes, `d/new` stays.
    let layers = vec![
        vec![file("n", b"lower"), dir("d"), file("d/old", b"o")],
        vec![file("n", b"upper"), wh("n"), file("d/new", b"n"), wh("d")],
    ];
    apply(root, &layers, &opts()).unwrap();
    assert_eq!(read(root, "n"), "upper");
    assert_eq!(ls(root, "d"), ["new"]);
}

#[test]
fn whiteouts_of_a_directory_the_same_layer_declares() {
    // The layer declares `g/` and adds `g/inner2`, and whites out `g`, in every order:
    // the whiteout hides the lower `g/inner` only (OCI image spec, "Whiteouts"). A file
    // the layer writes and whites out keeps the layer's content.
    let orders: [&[usize]; 4] = [&[0, 1, 2], &[2, 0, 1], &[0, 2, 1], &[1, 2, 0]];
    for order in orders {
        for resolver in RESOLVERS {
            let t = tempfile::tempdir().unwrap();
            let root = t.path();
            let upper = [dir("g").mode(0o750), file("g/inner2", b"2"), wh("g")];
            let mut layer: Vec<E> = order.iter().map(|&i| upper[i].clone()).collect();
            layer.extend([file("f", b"upper"), wh("f"), dir("h"), dir("h/sub"), file("h/sub/new", b"n"), wh("h")]);
            let layers = vec![
                vec![
                    dir("g"),
                    file("g/inner", b"1"),
                    dir("g/deep"),
                    file("g/deep/x", b"x"),
                    file("f", b"lower"),
                    dir("h"),
                    dir("h/sub"),
                    file("h/sub/old", b"o"),
                    file("h/old", b"o"),
                ],
                layer,
            ];
            apply(root, &layers, &opts().resolver(resolver)).unwrap();
            assert_eq!(ls(root, "g"), ["inner2"], "{order:?} {resolver:?}");
            assert_eq!(read(root, "f"), "upper");
            assert_eq!(ls(root, "h"), ["sub"], "{order:?}");
            assert_eq!(ls(root, "h/sub"), ["new"], "{order:?}");
            if order[0] != 2 {
                // Declared after (or before and not removed by) the whiteout: its mode.
                assert_eq!(md(root, "g").permissions().mode() & 0o7777, 0o750, "{order:?}");
            }
        }
    }
}

#[test]
fn opaque_directories_keep_what_the_same_layer_adds_in_any_order() {
    for resolver in RESOLVERS {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let layers = vec![
            vec![dir("o"), file("o/lower1", b"1"), dir("o/sub"), file("o/sub/lower2", b"2"), file("o/same", b"lower")],
            // Entries before and after the marker survive; lower ones vanish, also inside
            // a subdirectory this layer re-declares.
            vec![
                dir("o"),
                file("o/before", b"b"),
                dir("o/sub"),
                file("o/same", b"upper"),
                opq("o"),
                file("o/after", b"a"),
            ],
        ];
        apply(root, &layers, &opts().resolver(resolver)).unwrap();
        assert_eq!(ls(root, "o"), ["after", "before", "same", "sub"]);
        assert!(ls(root, "o/sub").is_empty());
        assert_eq!(read(root, "o/same"), "upper");
    }
}

#[test]
fn replacements_between_types() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let layers = vec![
        vec![
            file("f2d", b"file"),
            dir("d2f"),
            file("d2f/child", b"c"),
            sym("s2f", "f2d"),
            dir("s2d-target"),
            sym("s2d", "s2d-target"),
        ],
        vec![dir("f2d"), file("f2d/in", b"i"), file("d2f", b"now a file"), file("s2f", b"now a file"), dir("s2d")],
        // Duplicates in one layer: the last wins.
        vec![
            file("dup", b"first"),
            file("dup", b"second"),
            dir("dup2"),
            file("dup2", b"file wins"),
            file("dup3", b"f"),
            dir("dup3"),
        ],
    ];
    apply(root, &layers, &opts()).unwrap();
    assert!(md(root, "f2d").is_dir());
    assert_eq!(read(root, "f2d/in"), "i");
    assert_eq!(read(root, "d2f"), "now a file");
    assert_eq!(read(root, "s2f"), "now a file");
    assert_eq!(read(root, "f2d/in"), "i"); // the symlink was replaced, not written through
    assert!(md(root, "s2d").is_dir());
    assert!(md(root, "s2d-target").is_dir());
    assert_eq!(read(root, "dup"), "second");
    assert_eq!(read(root, "dup2"), "file wins");
    assert!(md(root, "dup3").is_dir());
}

#[test]
fn hard_links_to_lower_layers_and_replaced_names() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let layers = vec![
        vec![file("a", b"A").mode(0o600), file("b", b"B")],
        vec![link("a-link", "a"), link("b-link", "/b"), file("c", b"C"), link("c-link", "./c")],
        vec![file("a", b"new A")], // replaces one name; the link keeps the old inode
    ];
    apply(root, &layers, &opts()).unwrap();
    assert_eq!(read(root, "a"), "new A");
    assert_eq!(read(root, "a-link"), "A");
    assert_eq!(md(root, "a-link").nlink(), 1);
    assert_eq!(md(root, "a-link").permissions().mode() & 0o777, 0o600);
    assert_eq!(md(root, "b").ino(), md(root, "b-link").ino());
    assert_eq!(md(root, "c").ino(), md(root, "c-link").ino());
    // A link whose target is missing is an error naming the entry.
    let t = tempfile::tempdir().unwrap();
    let err = apply(t.path(), &[vec![link("x", "missing")]], &opts()).unwrap_err();
    assert!(matches!(&err, Error::Apply { entry, op: "link", .. } if entry == "x"), "{err}");
}

#[test]
fn directory_mtimes_are_set_after_their_contents() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let layers = vec![
        vec![dir("d").mtime(1_000), file("d/f", b"x").mtime(2_000), dir("d/e").mtime(3_000)],
        vec![file("d/e/g", b"y"), dir("./").mtime(4_000)],
    ];
    apply(root, &layers, &opts()).unwrap();
    assert_eq!(md(root, "d").mtime(), 1_000);
    assert_eq!(md(root, "d/e").mtime(), 3_000);
    assert_eq!(md(root, "d/f").mtime(), 2_000);
    assert_eq!(md(root, "").mtime(), 4_000);
}

#[test]
fn missing_parents_are_created() {
    let t = tempfile::tempdir().unwrap();
    apply(t.path(), &[vec![file("a/b/c/d", b"x")]], &opts()).unwrap();
    assert_eq!(read(t.path(), "a/b/c/d"), "x");
    assert_eq!(md(t.path(), "a/b").permissions().mode() & 0o777, 0o755);
}

#[test]
fn diff_ids_are_verified_and_cover_every_byte() {
    let mut blob = tar(&[file("f", b"x")]);
    blob.extend_from_slice(&[0u8; 10 * 512]); // padding after the end-of-archive blocks
    let whole = Digest::sha256_of(&blob);
    let t = tempfile::tempdir().unwrap();
    // Threaded, an uncompressed layer is hashed on the reading thread, a compressed one
    // on the applier's: both ways, and on one thread.
    let (gz, size) = (gzip(&blob), blob.len() as u64);
    for (single_thread, blob) in [(false, &blob), (false, &gz), (true, &blob), (true, &gz)] {
        let o = opts().single_thread(single_thread);
        let report = apply_layer(t.path(), LayerSource::new("l0", &blob[..]).diff_id(whole.clone()), &o).unwrap();
        assert_eq!(report.layers[0].diff_id, whole);
        assert_eq!(report.layers[0].size, size);
        let wrong = Digest::sha256_of(b"something else");
        let err = apply_layer(t.path(), LayerSource::new("l0", &blob[..]).diff_id(wrong.clone()), &o).unwrap_err();
        assert!(
            matches!(&err, Error::DiffIdMismatch { layer, expected, actual } if layer == "l0" && *expected == wrong && *actual == whole),
            "{err}"
        );
    }
}

#[test]
fn gzip_crc_is_left_to_the_diff_id_when_there_is_one() {
    // With a diff_id, every decompressed byte is hashed against it, so gzip's CRC-32 is
    // not computed: a member whose CRC field is wrong but whose data is right applies.
    // Without one, the CRC is all there is, and it is checked.
    let plain = tar(&[file("f", b"crc")]);
    let mut blob = gzip(&plain);
    let n = blob.len();
    blob[n - 8] ^= 0xff;
    let t = tempfile::tempdir().unwrap();
    for single_thread in [false, true] {
        let o = opts().single_thread(single_thread);
        let with = LayerSource::new("l0", &blob[..]).diff_id(Digest::sha256_of(&plain));
        apply_layer(t.path(), with, &o).unwrap();
        assert_eq!(read(t.path(), "f"), "crc");
        // (The CRC is read after the tar's end-of-archive blocks: the error says so.)
        let err = apply_layer(t.path(), LayerSource::new("l0", &blob[..]), &o).unwrap_err();
        assert!(matches!(err, Error::Decompress { .. } | Error::InvalidTar { .. }), "{err}");
        assert!(strata_spec::ErrorChain(&err).to_string().contains("checksum"), "{err}");
        // The size field is checked either way.
        let mut bad_size = gzip(&plain);
        let m = bad_size.len();
        bad_size[m - 1] ^= 1;
        let with = LayerSource::new("l0", &bad_size[..]).diff_id(Digest::sha256_of(&plain));
        let err = apply_layer(t.path(), with, &o).unwrap_err();
        assert!(matches!(err, Error::Decompress { .. } | Error::InvalidTar { .. }), "{err}");
        assert!(strata_spec::ErrorChain(&err).to_string().contains("size field"), "{err}");
    }
}

#[test]
fn compressed_layers_and_declared_compression() {
    let t = tempfile::tempdir().unwrap();
    let plain = tar(&[file("a", b"from gzip")]);
    // Two concatenated gzip members, as pigz writes.
    let half = 512;
    let mut multi = gzip(&plain[..half]);
    multi.extend(gzip(&plain[half..]));
    let report = apply_layers(
        t.path(),
        [LayerSource::new("gz", &multi[..]).compression(Compression::Gzip).diff_id(Digest::sha256_of(&plain))],
        &opts(),
    )
    .unwrap();
    assert_eq!(report.layers[0].compression, Compression::Gzip);
    assert_eq!(read(t.path(), "a"), "from gzip");
    #[cfg(feature = "zstd")]
    {
        let plain = tar(&[file("b", b"from zstd")]);
        let z = zstd::encode_all(&plain[..], 3).unwrap();
        apply_layer(t.path(), LayerSource::new("zst", &z[..]).compression(Compression::Zstd), &opts()).unwrap();
        assert_eq!(read(t.path(), "b"), "from zstd");
    }
    let err =
        apply_layer(t.path(), LayerSource::new("l", &multi[..]).compression(Compression::Zstd), &opts()).unwrap_err();
    assert!(matches!(err, Error::CompressionMismatch { declared: Compression::Zstd, detected: Compression::Gzip, .. }));
    let err =
        apply_layer(t.path(), LayerSource::new("l", &plain[..]).compression(Compression::Gzip), &opts()).unwrap_err();
    assert!(matches!(err, Error::CompressionMismatch { .. }));
}

#[test]
fn layers_from_descriptors_are_named_by_digest() {
    let blob = gzip(&tar(&[file("../bad", b"")]));
    let desc =
        strata_spec::Descriptor::new(strata_spec::MediaType::OciLayerGzip, Digest::sha256_of(&blob), blob.len() as u64);
    let t = tempfile::tempdir().unwrap();
    let err = apply_layer(t.path(), LayerSource::from_descriptor(&desc, None, &blob[..]), &opts()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(desc.digest.as_str()) && msg.contains("../bad"), "{msg}");
}

#[test]
fn aufs_metadata_is_skipped() {
    let t = tempfile::tempdir().unwrap();
    apply(t.path(), &[vec![file(".wh..wh.plnk/1.2", b"x"), dir(".wh..wh.aufs"), file("a", b"")]], &opts()).unwrap();
    assert_eq!(ls(t.path(), ""), ["a"]);
}

#[test]
fn large_layers_hash_right_whichever_thread_hashes() {
    // Enough buffers (12 MiB, many files) that the decompressing thread finds the channel
    // full and hashes some buffers itself while the applier hashes the others.
    let entries: Vec<E> = (0..3000).map(|i| file(&format!("d{}/f{i}", i % 50), &vec![(i % 251) as u8; 4096])).collect();
    let blob = tar(&entries);
    let gz = gzip(&blob);
    let expected = Digest::sha256_of(&blob);
    let t = tempfile::tempdir().unwrap();
    let report = apply_layers(
        t.path(),
        [LayerSource::new("big", &gz[..]).diff_id(expected.clone()), LayerSource::new("again", &gz[..])],
        &opts(),
    )
    .unwrap();
    assert_eq!(report.layers[0].diff_id, expected);
    assert_eq!(report.layers[1].diff_id, expected);
    assert_eq!(report.layers[0].size, blob.len() as u64);
    assert_eq!(std::fs::read(t.path().join("d7/f2957")).unwrap(), vec![(2957 % 251) as u8; 4096]);
}

#[test]
fn directory_mtimes_declared_through_symlinks_are_the_last_declared() {
    // `lib/d` and `usr/lib/d` are one directory (`lib -> usr/lib`). Layer 1 declares it
    // through the symlink; layer 2 deletes it and declares it anew under its real name.
    // The stale mtime of layer 1 must not land on the new directory; and when the two
    // names declare the same directory, the last declaration wins.
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let layers = vec![
        vec![dir("usr"), dir("usr/lib"), sym("lib", "usr/lib"), dir("usr/share")],
        vec![dir("lib/d").mtime(1_000), dir("usr/share/e").mtime(1_000)],
        vec![wh("usr/lib/d"), dir("usr/lib/d").mtime(2_000), dir("usr/share/e").mtime(2_000)],
        vec![sym("share", "usr/share"), dir("share/e").mtime(3_000)],
    ];
    apply(root, &layers, &opts()).unwrap();
    assert_eq!(md(root, "usr/lib/d").mtime(), 2_000);
    assert_eq!(md(root, "usr/share/e").mtime(), 3_000);
}

#[test]
fn directories_declared_through_symlinks_keep_their_metadata_however_the_name_resolves_at_the_end() {
    // `/a/b` with `a -> /` makes `b`; the opaque marker `a/` of the same layer then puts
    // an empty directory in place of the symlink, so by the end `a/b` names nothing, yet
    // `b` is there and was declared: its mtime (and, rootless, its mode, deferred since it
    // lacks u+w) are set. Rootless, what is recorded is under the names of the final
    // tree (`usr/lib/f`, not `l/f`).
    let mut modes = vec![Ownership::Record];
    if root_user() {
        modes.push(Ownership::Apply);
    }
    for resolver in RESOLVERS {
        for &ownership in &modes {
            let case = format!("{resolver:?} {ownership:?}");
            let t = tempfile::tempdir().unwrap();
            let root = t.path();
            let layers = vec![
                vec![sym("a", "/"), dir("usr/lib"), sym("l", "usr/lib")],
                vec![
                    dir("/a/b").mode(0o500).owner(1000, 1000).mtime(1_600_000_000),
                    file("l/f", b"x").owner(7, 7),
                    link("l/h", "l/f"),
                    opq("a"),
                ],
            ];
            let report = apply(root, &layers, &opts().resolver(resolver).ownership(ownership)).unwrap();
            assert!(md(root, "a").is_dir() && ls(root, "a").is_empty(), "{case}");
            assert_eq!(md(root, "b").mtime(), 1_600_000_000, "{case}");
            assert_eq!(md(root, "b").permissions().mode() & 0o7777, 0o500, "{case}");
            if ownership == Ownership::Record {
                let r = |uid, gid| Recorded { uid, gid, device: None };
                let expected: BTreeMap<PathBuf, Recorded> =
                    [("b", r(1000, 1000)), ("usr/lib/f", r(7, 7)), ("usr/lib/h", r(7, 7))]
                        .into_iter()
                        .map(|(p, r)| (PathBuf::from(p), r))
                        .collect();
                assert_eq!(report.recorded, expected, "{case}");
            } else {
                assert_eq!((md(root, "b").uid(), md(root, "usr/lib/h").gid()), (1000, 7), "{case}");
            }
        }
    }
}

#[test]
fn sparse_files_unpack_with_their_holes() {
    use std::os::unix::fs::MetadataExt;
    for resolver in RESOLVERS {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let hole = 8 << 20;
        let layers = vec![vec![sparse_file("s", b"headtail", hole), file("after", b"a")]];
        apply(root, &layers, &opts().resolver(resolver)).unwrap();
        let data = std::fs::read(root.join("s")).unwrap();
        let hole = hole as usize;
        assert_eq!(data.len(), 3 * hole + 8);
        assert_eq!(&data[hole..hole + 4], b"head");
        assert_eq!(&data[2 * hole + 4..2 * hole + 8], b"tail");
        assert!(data[..hole].iter().all(|&b| b == 0) && data[2 * hole + 8..].iter().all(|&b| b == 0));
        // Two small extents, not 24 MiB of zeros.
        assert!(md(root, "s").blocks() * 512 < 1 << 20, "{} blocks", md(root, "s").blocks());
        assert_eq!(read(root, "after"), "a");
    }
}

#[test]
fn small_files_finished_on_the_writer_thread_keep_everything_and_report_its_errors() {
    // Many small files (written and closed on the second thread), a big one (written at
    // once), each with its own owner, mode, mtime and xattr: the same tree on one thread
    // and on two.
    let mut layer = vec![dir("d")];
    for i in 0..300u32 {
        let f = file(&format!("d/f{i}"), format!("content {i}").as_bytes())
            .mode(0o600 + i % 64)
            .mtime(1_000 + u64::from(i))
            .xattr("user.n", i.to_string().as_bytes());
        layer.push(if root_user() { f.owner(i.into(), u64::from(i) + 1) } else { f });
    }
    layer.push(file("big", &vec![7u8; 600 << 10]).mode(0o4755).mtime(5));
    layer.push(link("d/f0-link", "d/f0"));
    let layers = [layer, vec![file("d/f1", b"replaced").mtime(9), wh("d/f2"), dir("./").mtime(77)]];
    let trees: Vec<_> = [false, true]
        .map(|single| {
            let t = tempfile::tempdir().unwrap();
            let report = apply(t.path(), &layers, &opts().single_thread(single)).unwrap();
            (strata_testkit::Tree::capture(t.path()).unwrap(), report.xattrs_skipped, t)
        })
        .into_iter()
        .collect();
    let cmp = strata_testkit::Compare { dir_mtime: true, root: true, ..Default::default() };
    assert_eq!(trees[0].0.diff(&trees[1].0, &cmp), Vec::<String>::new());
    assert_eq!(trees[0].0.entries.len(), 303);
    assert_eq!(trees[0].1, trees[1].1);
    let root = trees[0].2.path();
    assert_eq!(read(root, "d/f7"), "content 7");
    assert_eq!(md(root, "d/f7").mtime(), 1_007);
    assert_eq!(md(root, "d/f7").permissions().mode() & 0o7777, 0o607);
    assert_eq!(read(root, "d/f1"), "replaced");
    assert!(!exists(root, "d/f2"));
    assert_eq!(md(root, "d/f0").ino(), md(root, "d/f0-link").ino());
    assert_eq!(md(root, "big").permissions().mode() & 0o7777, 0o4755);
    if root_user() {
        assert_eq!((md(root, "d/f9").uid(), md(root, "d/f9").gid()), (9, 10));
        // A file capability the kernel refuses (EINVAL) fails the unpack wherever the file
        // was finished, naming the entry; the rest of the layer is not applied.
        for single in [false, true] {
            let t = tempfile::tempdir().unwrap();
            let mut layer = vec![file("a", b"a"), file("bad", b"x").xattr("security.capability", b"?")];
            layer.extend((0..200).map(|i| file(&format!("after{i}"), b"y")));
            let err = apply(t.path(), &[layer], &opts().single_thread(single)).unwrap_err();
            assert!(matches!(&err, Error::Apply { entry, op: "setxattr", .. } if entry == "bad"), "{err}");
        }
    }
}

#[test]
fn apply_layers_reports_each_layer_read_to_its_end() {
    use std::sync::{Arc, Mutex};
    use strata_spec::progress::{Event, ProgressHook};
    let t = tempfile::tempdir().unwrap();
    let one = gzip(&tar(&[file("a", &vec![1u8; 400_000])]));
    let two = tar(&[file("b", b"b"), wh("a")]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let hook = ProgressHook::new(move |e: &Event<'_>| {
        if let Event::LayerDone { index, count, bytes, .. } = e {
            s.lock().unwrap().push((*index, *count, *bytes));
        }
    });
    apply_layers(
        t.path(),
        [LayerSource::new("one", &one[..]), LayerSource::new("two", &two[..])],
        &opts().progress(hook),
    )
    .unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [(0, 2, one.len() as u64), (1, 2, two.len() as u64)]);
    assert_eq!(read(t.path(), "b"), "b");
}
