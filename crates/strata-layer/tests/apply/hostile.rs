//! The hostile-input suite: every line of the threat model in docs/security.md, run
//! with both resolvers. Each case checks the outcome (a typed error naming the layer
//! and entry, or a tree confined to the root) AND that nothing outside the root changed.

use std::path::Path;

use strata_layer::{ApplyOptions, Error, Limits, Ownership};

use crate::util::*;

/// What a case must produce.
enum Expect {
    /// `Error::UnsafeEntry` naming this entry (and layer 1 at the latest).
    Unsafe(&'static str),
    /// `Error::InvalidTar`.
    Invalid,
    /// `Error::LimitExceeded`.
    Limit(&'static str),
    /// `Error::Apply` naming this entry: a file system operation failed, confined.
    Refused(&'static str),
    /// Success; the closure checks the tree (relative to the root).
    Ok(fn(&Path)),
}

struct Case {
    name: &'static str,
    /// Layers, given the sandbox (for absolute paths of the canary).
    layers: fn(&Sandbox) -> Vec<Vec<E>>,
    expect: Expect,
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn cases() -> Vec<Case> {
    vec![
        // --- names ---
        Case {
            name: "dotdot name",
            layers: |_| vec![vec![file("../escape", b"x")]],
            expect: Expect::Unsafe("../escape"),
        },
        Case {
            name: "dotdot inside a name",
            layers: |_| vec![vec![dir("a"), file("a/../../escape", b"x")]],
            expect: Expect::Unsafe("a/../../escape"),
        },
        Case {
            name: "dotdot in a PAX path",
            layers: |_| vec![vec![file("innocent", b"x").pax("path", b"../../escape")]],
            expect: Expect::Unsafe("../../escape"),
        },
        Case {
            name: "dotdot in a GNU long name",
            layers: |_| vec![vec![file(&format!("{}/../../../escape", "d".repeat(120)), b"x").gnu()]],
            expect: Expect::Unsafe("/../../../escape"),
        },
        Case {
            name: "NUL in a PAX path",
            layers: |_| vec![vec![file("x", b"x").pax("path", b"a\0/../../b")]],
            expect: Expect::Unsafe("a"),
        },
        Case {
            name: "absolute name is taken inside the root",
            layers: |s| vec![vec![file(&format!("{}/secret", s.canary_str()), b"pwned")]],
            expect: Expect::Ok(|root| {
                let inside = root.join(root.parent().unwrap().join("canary/secret").strip_prefix("/").unwrap());
                assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
            }),
        },
        // --- the root itself (umoci CVE-2021-29136) ---
        Case {
            name: "symlink named . (CVE-2021-29136)",
            layers: |s| vec![vec![sym(".", &s.canary_str()), file("secret", b"pwned")]],
            expect: Expect::Unsafe("."),
        },
        Case { name: "root as a file", layers: |_| vec![vec![file("./", b"x")]], expect: Expect::Unsafe("./") },
        Case {
            name: "root as a hard link",
            layers: |_| vec![vec![file("a", b"x"), link("/", "a")]],
            expect: Expect::Unsafe("/"),
        },
        Case { name: "hard link to the root", layers: |_| vec![vec![link("x", "./")]], expect: Expect::Unsafe("x") },
        Case {
            name: "root directory entry only changes the root",
            layers: |_| vec![vec![dir("./").mode(0o700)]],
            expect: Expect::Ok(|root| {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(std::fs::metadata(root).unwrap().permissions().mode() & 0o7777, 0o700);
            }),
        },
        // --- symlinks planted by this layer or an earlier one ---
        Case {
            name: "absolute symlink as a parent (CVE-2014-9356)",
            layers: |_| vec![vec![sym("etc", "/"), file("etc/pwned", b"x")]],
            expect: Expect::Ok(|root| {
                assert_eq!(std::fs::read(root.join("pwned")).unwrap(), b"x");
                assert!(std::fs::symlink_metadata(root.join("etc")).unwrap().file_type().is_symlink());
            }),
        },
        Case {
            name: "absolute symlink to the canary as a parent, earlier layer",
            layers: |s| vec![vec![sym("lnk", &s.canary_str())], vec![file("lnk/secret", b"pwned")]],
            // root/<canary path> does not exist inside the root: refused, nothing written.
            expect: Expect::Refused("lnk/secret"),
        },
        Case {
            name: "relative symlink climbing out (RUSTSEC-2021-0080)",
            layers: |_| vec![vec![sym("parent", ".."), file("parent/exploit/foo/bar", b"x")]],
            expect: Expect::Ok(|root| assert_eq!(std::fs::read(root.join("exploit/foo/bar")).unwrap(), b"x")),
        },
        Case {
            name: "deep relative symlink to the canary",
            layers: |_| {
                vec![vec![sym("up", "../../../../../../.."), dir("up/canary"), file("up/canary/secret", b"pwned")]]
            },
            expect: Expect::Ok(|root| assert_eq!(std::fs::read(root.join("canary/secret")).unwrap(), b"pwned")),
        },
        Case {
            name: "symlink then directory of the same name (CVE-2026-33056)",
            layers: |s| vec![vec![sym("foo", &s.canary_str()), dir("foo").mode(0o777)]],
            expect: Expect::Ok(|root| assert!(std::fs::symlink_metadata(root.join("foo")).unwrap().is_dir())),
        },
        Case {
            name: "symlink then directory, across layers",
            layers: |s| vec![vec![sym("foo", &s.canary_str())], vec![dir("foo").mode(0o777).owner(1, 1)]],
            expect: Expect::Ok(|root| assert!(std::fs::symlink_metadata(root.join("foo")).unwrap().is_dir())),
        },
        Case {
            name: "symlink entry never chmod-ed or chown-ed through (containerd CVE-2021-32760)",
            layers: |s| {
                vec![vec![sym("x", &format!("{}/secret", s.canary_str())).mode(0o7777).owner(1234, 1234).mtime(1)]]
            },
            expect: Expect::Ok(|root| {
                let m = std::fs::symlink_metadata(root.join("x")).unwrap();
                assert!(m.file_type().is_symlink());
            }),
        },
        Case {
            name: "file over a symlink to outside",
            layers: |s| vec![vec![sym("x", &format!("{}/secret", s.canary_str()))], vec![file("x", b"pwned")]],
            expect: Expect::Ok(|root| assert_eq!(std::fs::read(root.join("x")).unwrap(), b"pwned")),
        },
        Case {
            name: "device node over a symlink to outside",
            layers: |s| vec![vec![sym("x", &format!("{}/secret", s.canary_str()))], vec![fifo("x")]],
            expect: Expect::Ok(|root| {
                use std::os::unix::fs::FileTypeExt;
                assert!(std::fs::symlink_metadata(root.join("x")).unwrap().file_type().is_fifo())
            }),
        },
        Case {
            name: "symlink loop as a parent",
            layers: |_| vec![vec![sym("a", "b"), sym("b", "a"), file("a/x", b"x")]],
            expect: Expect::Refused("a/x"),
        },
        Case {
            name: "dangling symlink as a parent",
            layers: |_| vec![vec![sym("a", "/nowhere/at/all"), file("a/x", b"x")]],
            expect: Expect::Refused("a/x"),
        },
        Case {
            name: "symlink to a file as a parent",
            layers: |_| vec![vec![file("f", b"x"), sym("a", "f"), file("a/x", b"x")]],
            expect: Expect::Refused("a/x"),
        },
        // --- hard links ---
        Case {
            name: "hard link to an absolute outside path (RUSTSEC-2018-0002)",
            layers: |s| vec![vec![link("h", &format!("{}/secret", s.canary_str())), file("h", b"pwned")]],
            expect: Expect::Refused("h"),
        },
        Case {
            name: "hard link with dotdot",
            layers: |_| vec![vec![link("h", "../canary/secret")]],
            expect: Expect::Unsafe("h"),
        },
        Case {
            name: "hard link through a symlinked parent to outside",
            layers: |s| vec![vec![sym("lnk", &s.canary_str()), link("h", "lnk/secret")]],
            expect: Expect::Refused("h"),
        },
        Case {
            name: "hard link to a symlink to outside, then written (CVE-2014-6407)",
            layers: |s| {
                vec![vec![sym("s", &format!("{}/secret", s.canary_str())), link("h", "s")], vec![file("h", b"pwned")]]
            },
            expect: Expect::Ok(|root| {
                assert_eq!(std::fs::read(root.join("h")).unwrap(), b"pwned");
                assert!(std::fs::symlink_metadata(root.join("s")).unwrap().file_type().is_symlink());
            }),
        },
        Case {
            name: "write to one name of a hard link leaves the other",
            layers: |_| vec![vec![file("a", b"original")], vec![link("b", "a")], vec![file("b", b"changed")]],
            expect: Expect::Ok(|root| {
                assert_eq!(std::fs::read(root.join("a")).unwrap(), b"original");
                assert_eq!(std::fs::read(root.join("b")).unwrap(), b"changed");
            }),
        },
        Case {
            name: "hard link to a directory",
            layers: |_| vec![vec![dir("d"), link("h", "d")]],
            expect: Expect::Refused("h"),
        },
        // --- whiteouts ---
        Case { name: "whiteout .wh..", layers: |_| vec![vec![file(".wh..", b"")]], expect: Expect::Unsafe(".wh..") },
        Case {
            name: "whiteout .wh...",
            layers: |_| vec![vec![file("a/.wh...", b"")]],
            expect: Expect::Unsafe("a/.wh..."),
        },
        Case {
            name: "whiteout .wh. (the root)",
            layers: |_| vec![vec![file(".wh.", b"")]],
            expect: Expect::Unsafe(".wh."),
        },
        Case {
            name: "whiteout prefix in a parent (.wh.../x)",
            layers: |_| vec![vec![file(".wh.../x", b"")]],
            expect: Expect::Unsafe(".wh.../x"),
        },
        Case {
            name: "whiteout through a symlinked parent to outside",
            layers: |s| vec![vec![sym("lnk", &s.canary_str())], vec![wh("lnk/secret"), wh("lnk/dir")]],
            expect: Expect::Ok(|root| assert!(exists(&root.join("lnk")))),
        },
        Case {
            name: "whiteout through a relative symlink climbing out",
            layers: |_| vec![vec![sym("up", "../../../.."), file("canary", b"inside")], vec![wh("up/canary")]],
            expect: Expect::Ok(|root| assert!(!exists(&root.join("canary")))),
        },
        Case {
            name: "whiteout of a directory holding symlinks to outside",
            layers: |s| {
                let c = s.canary_str();
                vec![
                    vec![dir("d"), sym("d/s", &c), sym("d/f", &format!("{c}/secret")), sym("d/up", "../..")],
                    vec![wh("d")],
                ]
            },
            expect: Expect::Ok(|root| assert!(!exists(&root.join("d")))),
        },
        Case {
            name: "opaque directory holding symlinks to outside",
            layers: |s| {
                let c = s.canary_str();
                vec![vec![dir("d"), sym("d/s", &c), sym("d/up", "../..")], vec![dir("d"), opq("d")]]
            },
            expect: Expect::Ok(|root| assert_eq!(std::fs::read_dir(root.join("d")).unwrap().count(), 0)),
        },
        Case {
            name: "opaque marker in a symlink to outside",
            layers: |s| vec![vec![sym("lnk", &s.canary_str())], vec![opq("lnk")]],
            expect: Expect::Ok(|root| assert!(std::fs::symlink_metadata(root.join("lnk")).unwrap().is_dir())),
        },
        Case {
            name: "opaque root",
            layers: |_| vec![vec![file("a", b"x"), dir("d"), file("d/f", b"y")], vec![opq(""), file("b", b"z")]],
            expect: Expect::Ok(|root| {
                assert!(!exists(&root.join("a")) && !exists(&root.join("d")));
                assert_eq!(std::fs::read(root.join("b")).unwrap(), b"z");
            }),
        },
        // --- the tar stream ---
        Case {
            name: "PAX size overrides the header size (CVE-2025-62518)",
            layers: |_| {
                // The data of `carrier` is a whole smuggled entry; a parser that trusts the
                // header's size (0) would unpack `smuggled`.
                let mut inner = Vec::new();
                append(&mut inner, &file("smuggled", b"evil"));
                let mut carrier = file("carrier", &inner).pax("size", inner.len().to_string().as_bytes());
                carrier.header_size = Some(0);
                vec![vec![carrier, file("after", b"ok")]]
            },
            expect: Expect::Ok(|root| {
                assert!(!exists(&root.join("smuggled")));
                assert_eq!(std::fs::metadata(root.join("carrier")).unwrap().len(), 1024);
                assert_eq!(std::fs::read(root.join("after")).unwrap(), b"ok");
            }),
        },
        Case {
            name: "header-only types carry no data whatever their size says",
            layers: |_| {
                let mut d = dir("d");
                d.header_size = Some(512); // Go ignores it; the next header follows at once
                vec![vec![d, file("after", b"ok")]]
            },
            expect: Expect::Ok(|root| assert_eq!(std::fs::read(root.join("after")).unwrap(), b"ok")),
        },
        Case {
            name: "GNU sparse segment past the file's size",
            layers: |_| vec![vec![file("s", b"0123456789").old_gnu_sparse(&[(0, 10)], 5)]],
            expect: Expect::Invalid,
        },
        Case {
            name: "GNU sparse segments overlapping",
            layers: |_| vec![vec![file("s", b"0123456789").old_gnu_sparse(&[(0, 5), (3, 5)], 100)]],
            expect: Expect::Invalid,
        },
        Case {
            name: "GNU sparse map storing more than the entry holds",
            layers: |_| vec![vec![file("s", b"0123").old_gnu_sparse(&[(0, 5)], 100)]],
            expect: Expect::Invalid,
        },
        Case {
            name: "PAX sparse of an unknown version",
            layers: |_| vec![vec![file("s", b"").pax("GNU.sparse.major", b"1")]],
            expect: Expect::Invalid,
        },
        Case {
            name: "PAX sparse map with an odd count",
            layers: |_| vec![vec![file("s", b"x").pax("GNU.sparse.numblocks", b"1").pax("GNU.sparse.map", b"0,1,5")]],
            expect: Expect::Invalid,
        },
        Case {
            name: "PAX sparse 1.0 map cut short",
            layers: |_| vec![vec![file("s", b"3\n0\n1\n").pax("GNU.sparse.major", b"1").pax("GNU.sparse.minor", b"0")]],
            expect: Expect::Invalid,
        },
        Case {
            name: "PAX sparse map on a directory",
            layers: |_| vec![vec![dir("d").pax("GNU.sparse.numblocks", b"0").pax("GNU.sparse.map", b"")]],
            expect: Expect::Invalid,
        },
        Case {
            name: "unknown entry type",
            layers: |_| vec![vec![E { typeflag: b'Z', ..file("z", b"") }]],
            expect: Expect::Invalid,
        },
        Case {
            name: "malformed PAX record",
            layers: |_| vec![vec![file("x", b"").pax("size", b"12abc")]],
            expect: Expect::Invalid,
        },
        Case {
            name: "uid out of range",
            layers: |_| vec![vec![file("x", b"").pax("uid", b"4294967295")]],
            expect: Expect::Invalid,
        },
        Case {
            name: "symlink with an empty target",
            layers: |_| vec![vec![sym("x", "")]],
            expect: Expect::Unsafe("x"),
        },
        // --- limits ---
        Case {
            name: "PAX header over the limit",
            layers: |_| vec![vec![file("x", b"").pax("comment", &vec![b'a'; 2 << 20])]],
            expect: Expect::Limit("PAX header"),
        },
        Case {
            name: "GNU long name over the limit",
            layers: |_| vec![vec![file(&"n/".repeat(3000), b"").gnu()]],
            expect: Expect::Limit("GNU long name"),
        },
        Case {
            name: "PAX path over the limit",
            layers: |_| vec![vec![file(&"n/".repeat(3000), b"")]],
            expect: Expect::Limit("path"),
        },
        Case {
            name: "xattr value over the limit",
            layers: |_| vec![vec![file("x", b"").xattr("user.big", &vec![1u8; 70_000])]],
            expect: Expect::Limit("xattr value"),
        },
        Case {
            name: "symlink target over the limit",
            layers: |_| vec![vec![sym("x", &"t/".repeat(3000))]],
            expect: Expect::Limit("link target"),
        },
    ]
}

fn run_case(case: &Case, opts: &ApplyOptions) {
    let sb = Sandbox::new();
    let layers = (case.layers)(&sb);
    let label = format!("{} ({:?}, {:?})", case.name, opts.resolver, opts.ownership);
    let r = apply(&sb.root, &layers, opts);
    match (&case.expect, r) {
        (Expect::Unsafe(entry), Err(Error::UnsafeEntry { layer, entry: got, reason })) => {
            assert!(layer.starts_with("layer "), "{label}: layer {layer}");
            assert!(got.contains(entry), "{label}: entry {got:?} (want {entry:?}): {reason}");
        }
        (Expect::Invalid, Err(Error::InvalidTar { layer, .. })) => assert!(layer.starts_with("layer "), "{label}"),
        (Expect::Limit(what), Err(Error::LimitExceeded { what: got, layer, .. })) => {
            assert_eq!(*what, got, "{label}");
            assert!(layer.starts_with("layer "), "{label}");
        }
        (Expect::Refused(entry), Err(Error::Apply { layer, entry: got, .. })) => {
            assert!(layer.starts_with("layer "), "{label}");
            assert_eq!(*entry, got, "{label}");
        }
        (Expect::Ok(check), Ok(_)) => check(&sb.root),
        (_, r) => panic!("{label}: unexpected outcome {r:?}"),
    }
    sb.assert_outside_unchanged(&label);
}

#[test]
fn hostile_inputs_stay_inside_the_root() {
    for resolver in RESOLVERS {
        for ownership in [Ownership::Auto, Ownership::Record] {
            let opts = ApplyOptions::default().resolver(resolver).ownership(ownership);
            for case in cases() {
                run_case(&case, &opts);
            }
        }
    }
}

#[test]
fn hostile_inputs_single_threaded() {
    let opts = ApplyOptions::default().single_thread(true);
    for case in cases() {
        run_case(&case, &opts);
    }
}

#[test]
fn truncated_and_corrupt_streams_are_typed_errors() {
    let good = tar(&[dir("d"), file("d/f", &vec![7u8; 5000]), file("g", b"x")]);
    // (A cut between two entries is a clean end of stream, accepted as Go's reader does:
    // the diff_id catches it.)
    for cut in [100, 513, 700, 1024 + 100, 2048, 6144 + 100, 6656 + 1] {
        let sb = Sandbox::new();
        let r = apply_blobs(&sb.root, &[good[..cut].to_vec()], &ApplyOptions::default());
        assert!(matches!(r, Err(Error::InvalidTar { .. })), "cut at {cut}: {r:?}");
        sb.assert_outside_unchanged("truncated");
    }
    // A flipped byte in a header breaks its checksum.
    let mut bad = good.clone();
    bad[10] ^= 0x40;
    let sb = Sandbox::new();
    let r = apply_blobs(&sb.root, &[bad], &ApplyOptions::default());
    assert!(matches!(&r, Err(Error::InvalidTar { reason, .. }) if reason.contains("checksum")), "{r:?}");
    // A truncated gzip stream.
    let gz = gzip(&good);
    let sb = Sandbox::new();
    let r = apply_blobs(&sb.root, &[gz[..gz.len() - 20].to_vec()], &ApplyOptions::default());
    assert!(matches!(r, Err(Error::Decompress { .. } | Error::InvalidTar { .. })), "{r:?}");
}

#[test]
fn a_gzip_bomb_is_cut_by_the_layer_size_limit() {
    // 64 MiB of zeros in one file: ~64 KiB of gzip.
    let mut t = Vec::new();
    let h = header(b"bomb", b'0', 64 << 20, 0o644, b"");
    t.extend_from_slice(h.as_bytes());
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut g, &t).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..65 {
        std::io::Write::write_all(&mut g, &zeros).unwrap();
    }
    let blob = g.finish().unwrap();
    assert!(blob.len() < 1 << 20);
    for single_thread in [false, true] {
        let sb = Sandbox::new();
        let opts = ApplyOptions::default()
            .limits(Limits::default().max_layer_size(Some(8 << 20)))
            .single_thread(single_thread);
        let r = apply_blobs(&sb.root, std::slice::from_ref(&blob), &opts);
        assert!(
            matches!(r, Err(Error::LimitExceeded { what: "uncompressed layer", .. } | Error::InvalidTar { .. })),
            "{r:?}"
        );
        sb.assert_outside_unchanged("bomb");
    }
}

#[test]
fn a_pax_bomb_is_refused_before_it_is_read() {
    // A PAX header claiming 1 TiB: refused from its size field, nothing allocated.
    let mut t = header(b"PaxHeaders/x", b'x', 1 << 40, 0o644, b"").as_bytes().to_vec();
    t.extend_from_slice(&[0u8; 4096]);
    let sb = Sandbox::new();
    let r = apply_blobs(&sb.root, &[t], &ApplyOptions::default());
    assert!(matches!(r, Err(Error::LimitExceeded { what: "PAX header", actual, .. }) if actual == 1 << 40), "{r:?}");
}
