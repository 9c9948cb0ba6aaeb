//! The merged view against the applier, case by case: the tree it lists (and reads)
//! is the tree `apply_layers` unpacks, its errors are the applier's, and its export,
//! unpacked, is that tree again. Then what only the merged view does: stat and list,
//! hard link groups in the export, the layer analysis, verification of reopened layers.

use std::io::Read;

use strata_layer::{
    ApplyOptions, ChangeKind, Error, ExportOptions, LayerSource, Limits, MergeOptions, MergedTree, WriteOptions,
    apply_layers,
};
use strata_spec::{Compression, Digest};
use strata_testkit::Tree;

use crate::common::*;
use crate::util::*;

/// An error as a comparable line: the variant, the layer, the entry and the cause.
pub fn class(e: &Error) -> String {
    match e {
        Error::UnsafeEntry { layer, entry, reason } => format!("unsafe {layer} {entry:?}: {reason}"),
        Error::Apply { layer, entry, op, source } => {
            format!("apply {layer} {entry:?} {op}: errno {:?}", source.raw_os_error())
        }
        Error::InvalidTar { layer, entry, reason } => format!("invalid {layer} {entry:?}: {reason}"),
        Error::LimitExceeded { layer, entry, what, .. } => format!("limit {layer} {entry:?} {what}"),
        Error::Decompress { layer, compression, .. } => format!("decompress {layer} {compression}"),
        Error::DiffIdMismatch { layer, .. } => format!("diff_id {layer}"),
        other => format!("other: {other}"),
    }
}

/// Merge (on 1 and on 2 threads) and unpack the same layers: both fail alike, or the
/// merged view is the unpacked tree, and so is its export unpacked. Returns the tree.
pub fn agree(blobs: &[Vec<u8>], case: &str) -> Option<Tree> {
    let unpacked = unpack(blobs);
    let mut views = Vec::new();
    for threads in [1, 2] {
        let merged = merge_blobs(blobs, threads);
        match (&unpacked, &merged) {
            (Err(a), Err(b)) => assert_eq!(class(a), class(b), "{case}: threads {threads}"),
            (Ok(_), Err(b)) => panic!("{case}: the applier unpacks, the merged view fails: {b}"),
            (Err(a), Ok(_)) => panic!("{case}: the applier fails ({a}), the merged view does not"),
            (Ok(t), Ok(m)) => {
                let v = with_unpack_times(m, view(m, blobs), t);
                assert_same(t, &v, &format!("{case}: merged view (threads {threads}) vs unpack"));
                // The export on one thread, or with a thread per layer: the same bytes.
                views.push(export_with(m, blobs, threads > 1).0);
            }
        }
    }
    // With a plan made from the headers, the applier writes less and unpacks the same
    // tree, or fails the same way.
    match (&unpacked, plan(blobs)) {
        (Err(a), Err(b)) => assert_eq!(class(a), class(&b), "{case}: plan"),
        (Ok(_), Err(b)) => panic!("{case}: the applier unpacks, the plan fails: {b}"),
        (_, Ok(p)) => match (&unpacked, unpack_planned(blobs, p)) {
            (Err(a), Err(b)) => assert_eq!(class(a), class(&b), "{case}: planned unpack"),
            (Ok(_), Err(b)) => panic!("{case}: the applier unpacks, the planned unpack fails: {b}"),
            (Err(a), Ok(_)) => panic!("{case}: the applier fails ({a}), the planned unpack does not"),
            (Ok(t), Ok((mut planned, _))) => {
                // Directories no layer declares have the time of each unpack.
                if let Ok(m) = merge_blobs(blobs, 1) {
                    planned = with_unpack_times(&m, planned, t);
                }
                assert_same(t, &planned, &format!("{case}: planned unpack vs unpack"));
            }
        },
    }
    let tree = unpacked.ok()?;
    assert_eq!(views[0], views[1], "{case}: export differs with the thread count");
    let again = unpack(&[views[0].clone()]).unwrap_or_else(|e| panic!("{case}: unpacking the export: {e}"));
    // The export declares every directory (implicit ones with mtime 0).
    let d = tree.diff(&again, &strata_testkit::Compare { dir_mtime: false, ..cmp() });
    assert!(d.is_empty(), "{case}: export, unpacked, vs unpack:\n{}", d.join("\n"));
    Some(tree)
}

fn stacks() -> Vec<(&'static str, Vec<Vec<E>>)> {
    vec![
        (
            "every entry type",
            vec![vec![
                dir("etc").mode(0o750).mtime(1_000),
                file("etc/motd", b"hello").mode(0o640).owner(1000, 1001),
                file("usr/bin/su", b"#!").mode(0o4755),
                dir("tmp").mode(0o1777),
                sym("usr/bin/sh", "/bin/dash").owner(7, 7),
                link("usr/bin/su2", "usr/bin/su"),
                fifo("run/fifo").mode(0o620),
                file(&format!("{}/{}", "d".repeat(90), "f".repeat(150)), b"long"),
                file("ns", b"x").pax("mtime", b"1600000000.123456789"),
                file("cap", b"x").xattr("user.test", b"v1"),
            ]],
        ),
        (
            "whiteouts remove lower files and directories",
            vec![
                vec![
                    dir("a"),
                    file("a/f", b"1"),
                    dir("a/sub"),
                    file("a/sub/g", b"2"),
                    file("keep", b"k"),
                    file("x", b"x"),
                ],
                vec![wh("a/f"), wh("a/sub"), wh("x"), wh("never/existed"), wh("keep/not-a-dir")],
            ],
        ),
        (
            "whiteouts only hide lower layers",
            vec![
                vec![file("n", b"lower"), dir("d"), file("d/old", b"o")],
                vec![file("n", b"upper"), wh("n"), file("d/new", b"n"), wh("d")],
            ],
        ),
        (
            "opaque directories keep what the same layer adds, in any order",
            vec![
                vec![dir("o"), file("o/lower1", b"1"), dir("o/sub"), file("o/sub/lower2", b"2"), file("o/same", b"l")],
                vec![
                    dir("o"),
                    file("o/before", b"b"),
                    dir("o/sub"),
                    file("o/same", b"upper"),
                    opq("o"),
                    file("o/after", b"a"),
                ],
                vec![file("top", b"t"), opq(""), file("o2/x", b"x")],
            ],
        ),
        (
            "opaque marker over a file and over nothing",
            vec![vec![file("f", b"file")], vec![opq("f"), opq("new/deep"), file("new/deep/x", b"x")]],
        ),
        (
            "replacements between types and duplicates",
            vec![
                vec![
                    file("f2d", b"file"),
                    dir("d2f"),
                    file("d2f/child", b"c"),
                    sym("s2f", "f2d"),
                    dir("s2d-t"),
                    sym("s2d", "s2d-t"),
                ],
                vec![
                    dir("f2d"),
                    file("f2d/in", b"i"),
                    file("d2f", b"now a file"),
                    file("s2f", b"now a file"),
                    dir("s2d"),
                ],
                vec![
                    file("dup", b"first"),
                    file("dup", b"second"),
                    dir("dup2"),
                    file("dup2", b"file wins"),
                    file("dup3", b"f"),
                    dir("dup3"),
                ],
            ],
        ),
        (
            "hard links to lower layers and replaced names",
            vec![
                vec![file("a", b"A").mode(0o600), file("b", b"B")],
                vec![
                    link("a-link", "a"),
                    link("b-link", "/b"),
                    file("c", b"C"),
                    link("c-link", "./c"),
                    link("self", "self"),
                ],
                vec![file("a", b"new A")],
            ],
        ),
        (
            "hard links whose first name is deleted or replaced (go-containerregistry#977, #2002)",
            vec![
                vec![
                    file("a", b"shared").mode(0o700).mtime(5),
                    link("b", "a"),
                    link("c", "a"),
                    file("z", b"zz"),
                    link("y", "z"),
                ],
                vec![wh("a"), file("z", b"replaced")],
            ],
        ),
        (
            "hard link to a symlink and to a fifo",
            vec![vec![sym("s", "target"), link("s2", "s"), fifo("p"), link("p2", "p")]],
        ),
        (
            "directory metadata merges, contents stay",
            vec![
                vec![dir("d").mode(0o700).owner(1, 1).xattr("user.a", b"1"), file("d/f", b"f")],
                vec![dir("d").mode(0o755).xattr("user.b", b"2")],
            ],
        ),
        ("missing parents are made", vec![vec![file("a/b/c/d", b"x")], vec![file("a/b/e", b"y")]]),
        (
            "symlinked parents are followed inside the root",
            vec![
                vec![dir("usr/lib"), sym("lib", "usr/lib"), sym("etc", "/"), sym("parent", "..")],
                vec![file("lib/x", b"via lib"), file("etc/pwned", b"at the root"), file("parent/exploit/foo", b"x")],
                vec![wh("lib/x"), file("lib/y", b"y"), dir("lib/z")],
            ],
        ),
        (
            "symlink then directory of the same name",
            vec![vec![sym("foo", "/bar"), dir("foo").mode(0o777)], vec![sym("q", "/"), dir("q")]],
        ),
        (
            // The directory is made at `b` through `a -> /`; the opaque marker then
            // replaces the symlink `a` with an empty directory, so `a/b` names nothing by
            // the end, yet `b` keeps the mode and mtime it was declared with.
            "directory declared through a symlink the same layer then replaces",
            vec![vec![sym("a", "/")], vec![dir("/a/b").mode(0o700).mtime(1_600_000_000), opq("a")]],
        ),
        ("aufs metadata is skipped", vec![vec![file(".wh..wh.plnk/1.2", b"x"), dir(".wh..wh.aufs"), file("a", b"")]]),
        ("root directory entry", vec![vec![dir("./").mode(0o700), file("a", b"")], vec![dir("/").mode(0o750)]]),
    ]
}

#[test]
fn the_merged_view_is_the_unpacked_tree() {
    for (case, layers) in stacks() {
        agree(&blobs(&layers), case).unwrap_or_else(|| panic!("{case}: expected success"));
    }
}

#[test]
fn hostile_input_gives_the_applier_errors() {
    let cases: Vec<(&str, Vec<Vec<E>>)> = vec![
        ("dotdot name", vec![vec![file("../escape", b"x")]]),
        ("dotdot in a PAX path", vec![vec![file("innocent", b"x").pax("path", b"../../escape")]]),
        ("NUL in a PAX path", vec![vec![file("x", b"x").pax("path", b"a\0/../../b")]]),
        ("symlink named .", vec![vec![sym(".", "/tmp"), file("secret", b"x")]]),
        ("root as a file", vec![vec![file("./", b"x")]]),
        ("root as a hard link", vec![vec![file("a", b"x"), link("/", "a")]]),
        ("hard link to the root", vec![vec![link("x", "./")]]),
        ("hard link with dotdot", vec![vec![link("h", "../canary/secret")]]),
        ("hard link to a directory", vec![vec![dir("d"), link("h", "d")]]),
        ("hard link to nothing", vec![vec![link("x", "missing")]]),
        ("hard link over its own parent", vec![vec![dir("d"), file("d/f", b"x"), link("d", "d/f")]]),
        ("symlink loop as a parent", vec![vec![sym("a", "b"), sym("b", "a"), file("a/x", b"x")]]),
        ("dangling symlink as a parent", vec![vec![sym("a", "/nowhere/at/all"), file("a/x", b"x")]]),
        ("symlink to a file as a parent", vec![vec![file("f", b"x"), sym("a", "f"), file("a/x", b"x")]]),
        ("file as a parent, across layers", vec![vec![file("f", b"x")], vec![file("f/x", b"x")]]),
        ("whiteout through a symlink loop", vec![vec![sym("a", "a")], vec![wh("a/x")]]),
        ("opaque under a file", vec![vec![file("f", b"x")], vec![opq("f/d")]]),
        ("whiteout .wh..", vec![vec![file(".wh..", b"")]]),
        ("whiteout .wh.../x", vec![vec![file(".wh.../x", b"")]]),
        ("whiteout prefix in a parent", vec![vec![file("a/.wh.b/c", b"")]]),
        ("symlink with an empty target", vec![vec![sym("s", "")]]),
        ("owner out of range", vec![vec![file("f", b"x").pax("uid", b"4294967295")]]),
        ("owner past u32", vec![vec![file("f", b"x").pax("gid", b"4294967296")]]),
        ("sparse file", vec![vec![file("f", b"x").pax("GNU.sparse.map", b"0,1")]]),
        (
            "error in the second layer after good entries",
            vec![vec![file("a", b"a")], vec![file("b", b"b"), file("../c", b"c")]],
        ),
    ];
    for (case, layers) in cases {
        assert!(agree(&blobs(&layers), case).is_none(), "{case}: expected an error");
    }
    // Broken streams: truncated tar, corrupt gzip, limits.
    let good = tar(&[file("a", &[7u8; 3000]), file("b", b"b")]);
    let mut truncated = good.clone();
    truncated.truncate(1500);
    let mut corrupt = gzip(&good);
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    corrupt[mid + 1] ^= 0xff;
    for (case, blob) in [("truncated", truncated), ("corrupt gzip", corrupt), ("empty", Vec::new())] {
        let (a, b) = (unpack(std::slice::from_ref(&blob)), merge_blobs(std::slice::from_ref(&blob), 1));
        match (a, b) {
            (Err(a), Err(b)) => assert_eq!(class(&a), class(&b), "{case}"),
            (Ok(a), Ok(m)) => assert_same(&a, &with_unpack_times(&m, view(&m, &[blob]), &a), case),
            (a, b) => panic!("{case}: {:?} vs {:?}", a.err().map(|e| e.to_string()), b.err().map(|e| e.to_string())),
        }
    }
    let big_pax = tar(&[file("f", b"x").pax("comment", &vec![b'c'; 2000])]);
    let limits = Limits::default().max_pax_size(1024);
    let err =
        MergedTree::build(sources(std::slice::from_ref(&big_pax)), &MergeOptions::default().limits(limits.clone()))
            .unwrap_err();
    let d = tempfile::tempdir().unwrap();
    let err2 = apply_layers(d.path(), sources(&[big_pax]), &ApplyOptions::default().limits(limits)).unwrap_err();
    assert_eq!(class(&err), class(&err2));
    let err = MergedTree::build(
        sources(std::slice::from_ref(&good)),
        &MergeOptions::default().limits(Limits::default().max_layer_size(Some(1024))),
    )
    .unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { what: "uncompressed layer", .. }), "{err}");
}

#[test]
fn stat_list_and_read_resolve_like_the_unpacked_tree() {
    let layers = vec![
        vec![
            dir("usr/lib"),
            file("usr/lib/libc.so", b"libc").mode(0o755),
            sym("lib", "usr/lib"),
            sym("cur", "/usr/lib/libc.so"),
        ],
        vec![file("etc/b", b"b"), file("etc/a", b"a"), dir("etc/c"), file("etc-x", b"sibling after etc/")],
    ];
    let b = blobs(&layers);
    let m = merge_blobs(&b, 1).unwrap();
    // Parents through symlinks, the last component not followed by stat.
    let e = m.stat("/lib/libc.so").unwrap();
    assert_eq!(e.meta.path, p("usr/lib/libc.so"));
    assert_eq!((e.meta.mode, e.meta.size, e.layer), (0o755, 4, 0));
    assert!(matches!(m.stat("lib").unwrap().meta.kind, strata_layer::EntryKind::Symlink { .. }));
    // read_file follows the last one too.
    assert_eq!(read(&m, &b, "cur"), b"libc");
    assert_eq!(read(&m, &b, "lib/libc.so"), b"libc");
    let names: Vec<_> = m.list("etc").unwrap().into_iter().map(|e| e.meta.path).collect();
    assert_eq!(names, [p("etc/a"), p("etc/b"), p("etc/c")]);
    let root: Vec<_> = m.list("/").unwrap().into_iter().map(|e| e.meta.path).collect();
    assert_eq!(root, [p("cur"), p("etc"), p("etc-x"), p("lib"), p("usr")]);
    assert_eq!(m.list("lib").unwrap().len(), 1);
    assert!(m.stat("etc").unwrap().implicit);
    // Tar order: a directory, its subtree, its next sibling.
    assert_eq!(
        paths(&m),
        ["", "cur", "etc", "etc/a", "etc/b", "etc/c", "etc-x", "lib", "usr", "usr/lib", "usr/lib/libc.so"].map(p)
    );
    assert!(matches!(m.stat("nope"), Err(Error::PathNotFound { .. })));
    assert!(matches!(m.stat("etc/a/x"), Err(Error::PathNotFound { reason: "a component is not a directory", .. })));
    assert!(matches!(m.stat("../etc"), Err(Error::PathNotFound { .. })));
    assert!(matches!(m.list("etc/a"), Err(Error::WrongKind { expected: "dir", found: "file", .. })));
    assert!(matches!(m.read_file("etc", opener(&b)), Err(Error::WrongKind { expected: "file", found: "dir", .. })));
    let err = m.read_file("etc/a", |_| Err::<&[u8], _>(std::io::Error::other("gone"))).unwrap_err();
    assert!(matches!(&err, Error::OpenLayer { layer, .. } if layer == "layer 1"), "{err}");
}

#[test]
fn hard_link_groups_survive_the_loss_of_their_first_name() {
    // go-containerregistry#977: the data-carrying entry `a` is deleted by a later layer;
    // #2002: `z` is replaced by a new file while `y` keeps the old one.
    let layers = vec![
        vec![file("a", b"shared").mode(0o700), link("b", "a"), link("c", "a"), file("z", b"old z"), link("y", "z")],
        vec![wh("a"), file("z", b"new z"), file("m", b"m"), link("l", "m")],
    ];
    let b = blobs(&layers);
    let m = merge_blobs(&b, 1).unwrap();
    assert_eq!(m.stat("b").unwrap().nlink, 2);
    assert_eq!(m.stat("b").unwrap().inode, m.stat("c").unwrap().inode);
    assert_eq!(m.stat("y").unwrap().nlink, 1);
    assert_eq!(read(&m, &b, "c"), b"shared");
    assert_eq!(read(&m, &b, "y"), b"old z");
    let (tar_bytes, report) = export(&m, &b);
    assert_eq!(names(&tar_bytes), ["b", "c -> b", "l", "m -> l", "y", "z"]);
    assert_eq!(report.hardlinks, 2);
    let t = unpack(&[tar_bytes]).unwrap();
    assert_eq!(t.entries[p("b")].nlink, 2);
    assert_eq!(t.entries[p("c")].kind, t.entries[p("b")].kind);
    assert_eq!(t.entries[p("b")].mode, 0o700);
    assert_eq!(t.entries[p("y")].nlink, 1);
    assert_ne!(t.entries[p("y")].kind, t.entries[p("z")].kind);
    assert_eq!(t.entries[p("l")].nlink, 2);
}

#[test]
fn analysis_counts_the_bytes_the_final_tree_no_longer_has() {
    let layers = vec![
        vec![
            file("a", &[1; 100]),
            file("b", &[2; 200]),
            dir("d"),
            file("d/x", &[3; 50]),
            file("h", &[4; 10]),
            link("h2", "h"),
            file("keep", &[5; 1000]),
        ],
        // a deleted, b overwritten, a duplicate within the layer, h deleted but its
        // data lives on as h2.
        vec![wh("a"), file("b", &[6; 20]), file("dup", &[7; 5]), file("dup", &[8; 7]), wh("h")],
        // An opaque directory hides d/x.
        vec![opq("d"), dir("e")],
    ];
    let m = merge(&layers);
    let l = m.layers();
    assert_eq!((l[0].files, l[0].bytes_added, l[0].bytes_wasted), (5, 1360, 350));
    assert_eq!((l[1].files, l[1].bytes_added, l[1].bytes_wasted), (3, 32, 5));
    assert_eq!((l[2].files, l[2].bytes_added, l[2].bytes_wasted, l[2].whiteouts), (0, 0, 0, 1));
    assert_eq!((l[1].entries, l[1].whiteouts), (5, 2));
    // Paths added, modified (b, the second dup) and removed (a, h; d/x by the opaque).
    let changes = |s: &strata_layer::LayerStats| (s.paths_added, s.paths_modified, s.paths_removed);
    assert_eq!(changes(&l[0]), (7, 0, 0));
    assert_eq!(changes(&l[1]), (1, 2, 2));
    assert_eq!(changes(&l[2]), (1, 0, 1));
    // The wasted files add up to the wasted bytes, the biggest first; b and dup were
    // written twice (the final tree has their second copy), h lives on as h2.
    let w: Vec<_> = m.wasted_files().into_iter().map(|w| (w.path, w.bytes_wasted, w.writes, w.layers)).collect();
    assert_eq!(
        w,
        [
            (p("b").to_path_buf(), 200, 2, vec![0]),
            (p("a").to_path_buf(), 100, 1, vec![0]),
            (p("d/x").to_path_buf(), 50, 1, vec![0]),
            (p("dup").to_path_buf(), 5, 2, vec![1]),
        ]
    );
    let b = blobs(&layers);
    assert_eq!(l[0].uncompressed_size, b[0].len() as u64);
    assert_eq!(l[0].compressed_size, b[0].len() as u64);
    assert_eq!(l[0].diff_id, Digest::sha256_of(&b[0]));
    let a = m.analysis();
    assert_eq!((a.bytes_added, a.bytes_wasted, a.final_bytes), (1392, 355, 1037));
    assert!((a.efficiency - (1.0 - 355.0 / 1392.0)).abs() < 1e-12);
    // The final tree's content is the final bytes: keep, b, dup, h2.
    assert_eq!(
        m.iter().filter(|e| e.meta.kind == strata_layer::EntryKind::File).map(|e| e.meta.size).sum::<u64>(),
        1037
    );
    assert_eq!(a.files, 4);
    // Compressed layers count their blob's bytes.
    let gz: Vec<Vec<u8>> = b.iter().map(|t| gzip(t)).collect();
    let mg = merge_blobs(&gz, 2).unwrap();
    assert_eq!(mg.layers()[0].compressed_size, gz[0].len() as u64);
    assert_eq!(mg.layers()[0].compression, Compression::Gzip);
    assert_eq!(mg.analysis().bytes_wasted, 355);
    let nothing = MergedTree::build(Vec::<LayerSource<&[u8]>>::new(), &MergeOptions::default()).unwrap();
    assert!(nothing.is_empty() && nothing.layers().is_empty());
    assert_eq!(paths(&nothing), [p("")]);
    let empty = merge(&[vec![dir("x")]]).analysis();
    assert_eq!((empty.efficiency, empty.paths), (1.0, 2));
}

#[test]
fn layer_changes_name_each_path_a_layer_writes_or_removes() {
    let layers = vec![
        vec![dir("d"), file("d/x", b"x"), file("a", b"a"), file("b", b"b"), file("h", b"h")],
        // a deleted, b overwritten, a duplicate within the layer, a hard link, a new
        // directory implied by its file.
        vec![wh("a"), file("b", b"bb"), file("dup", b"1"), file("dup", b"22"), link("h2", "h"), file("n/m", b"m")],
        // An opaque directory removes what the layers below had in it; a directory
        // named again is no change.
        vec![opq("d"), file("d/y", b"y"), dir("n")],
    ];
    let b = blobs(&layers);
    let m = MergedTree::build(sources(&b), &MergeOptions::default().changes(true)).unwrap();
    let seen: Vec<Vec<(char, String, Option<u64>)>> = m
        .layer_changes()
        .iter()
        .map(|c| {
            c.iter().map(|c| (c.kind.letter(), c.path.display().to_string(), c.meta.as_ref().map(|m| m.size))).collect()
        })
        .collect();
    let c = |k: char, path: &str, size: Option<u64>| (k, path.to_owned(), size);
    assert_eq!(
        seen,
        [
            vec![
                c('A', "d", Some(0)),
                c('A', "d/x", Some(1)),
                c('A', "a", Some(1)),
                c('A', "b", Some(1)),
                c('A', "h", Some(1))
            ],
            vec![
                c('D', "a", None),
                c('C', "b", Some(2)),
                c('A', "dup", Some(1)),
                c('C', "dup", Some(2)),
                c('A', "h2", Some(1)),
                c('A', "n/m", Some(1)),
            ],
            vec![c('D', "d/x", None), c('A', "d/y", Some(1))],
        ]
    );
    // The counts are the layers' figures, and without asking nothing is kept.
    for (changes, s) in m.layer_changes().iter().zip(m.layers()) {
        let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count() as u64;
        assert_eq!(
            (count(ChangeKind::Added), count(ChangeKind::Modified), count(ChangeKind::Deleted)),
            (s.paths_added, s.paths_modified, s.paths_removed)
        );
    }
    assert!(merge(&layers).layer_changes().is_empty());
}

#[test]
fn reopened_layers_are_checked() {
    let layers = vec![vec![file("a", b"first"), file("b", b"second")], vec![file("c", b"third")]];
    let b = blobs(&layers);
    // A wrong diff_id while folding names the layer.
    let wrong = Digest::sha256_of(b"nope");
    let srcs = vec![LayerSource::new("base", &b[0][..]), LayerSource::new("top", &b[1][..]).diff_id(wrong.clone())];
    let err = MergedTree::build(srcs, &MergeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::DiffIdMismatch { layer, expected, .. } if layer == "top" && *expected == wrong),
        "{err}"
    );
    let m = merge_blobs(&b, 1).unwrap();
    // Another blob in place of layer 0: same entry layout, other bytes.
    let other = blobs(&[vec![file("a", b"FIRST"), file("b", b"SECOND")]]);
    let mut data = Vec::new();
    m.read_file("a", |_| Ok(&other[0][..])).unwrap().read_to_end(&mut data).unwrap();
    assert_eq!(data, b"FIRST", "read_file checks the header, not the bytes");
    let err = m
        .export(
            Vec::new(),
            &WriteOptions::default(),
            |i| Ok(if i == 0 { &other[0][..] } else { &b[1][..] }),
            &ExportOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(&err, Error::DiffIdMismatch { layer, .. } if layer == "layer 0"), "{err}");
    // A blob that ends early, or whose gzip is corrupt, on one thread or with a thread
    // per layer: an error naming the layer, never a hang.
    let big = blobs(&[vec![file("a", &[1; 700_000]), file("b", &[2; 700_000])]]);
    let mg = merge_blobs(&big, 1).unwrap();
    let mut short = big[0].clone();
    short.truncate(900_000);
    let gz = gzip(&big[0]);
    let mg_gz = merge_blobs(std::slice::from_ref(&gz), 1).unwrap();
    let mut bad_gz = gz.clone();
    let at = bad_gz.len() / 2;
    bad_gz[at] ^= 0x55;
    bad_gz[at + 7] ^= 0x55;
    for threads in [false, true] {
        let opts = ExportOptions::default().threads(threads);
        let err = mg.export(Vec::new(), &WriteOptions::default(), |_| Ok(&short[..]), &opts).unwrap_err();
        assert!(matches!(&err, Error::LayerChanged { layer, .. } if layer == "layer 0"), "{err}");
        let err = mg_gz.export(Vec::new(), &WriteOptions::default(), |_| Ok(&bad_gz[..]), &opts).unwrap_err();
        assert!(
            matches!(&err, Error::Decompress { layer, .. } | Error::LayerChanged { layer, .. } if layer == "layer 0"),
            "{err}"
        );
        let err =
            mg.export(Vec::new(), &WriteOptions::default(), |_| Err::<&[u8], _>(std::io::Error::other("x")), &opts);
        assert!(matches!(err, Err(Error::OpenLayer { .. })));
    }
    // A blob with other entries.
    let shorter = blobs(&[vec![file("a", b"first")]]);
    let err = m.read_file("b", |_| Ok(&shorter[0][..])).unwrap_err();
    assert!(matches!(err, Error::LayerChanged { .. }), "{err}");
    let resized = blobs(&[vec![file("a", &[b'f'; 600]), file("b", b"second")]]);
    let err = m.read_file("b", |_| Ok(&resized[0][..])).unwrap_err();
    assert!(matches!(err, Error::LayerChanged { .. }), "{err}");
    // Gzip in place of plain: the compression folded is declared.
    let gz = gzip(&b[0]);
    let err = m.read_file("a", |_| Ok(&gz[..])).unwrap_err();
    assert!(matches!(err, Error::CompressionMismatch { .. }), "{err}");
}

#[test]
fn layers_out_of_tar_order_go_through_the_spool() {
    // Entries in reverse order, content in both layers, a hard link group across them.
    let layers = vec![
        vec![file("z/3", b"three"), file("m", b"mmm"), file("b/2", b"two"), file("a", b"one"), dir("b"), dir("z")],
        vec![file("y", b"y"), link("c", "a"), file("b/1", &[9; 5000])],
    ];
    let b = blobs(&layers);
    let m = merge_blobs(&b, 1).unwrap();
    let spool = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for threads in [false, true] {
        let mut out = Vec::new();
        let opts = ExportOptions::default().spool_dir(spool.path()).threads(threads);
        let (_, report) =
            m.export(&mut out, &WriteOptions::default().compression(Compression::None), opener(&b), &opts).unwrap();
        outs.push((out, report));
    }
    assert_eq!(outs[0], outs[1]);
    let (out, report) = outs.remove(0);
    assert_eq!(names(&out), ["a", "b/", "b/1", "b/2", "c -> a", "m", "y", "z/", "z/3"]);
    assert_eq!(report.layers_read, 2);
    // Layer 0 gives z/3, m and b/2 before a, which comes first; layer 1 gives y before b/1.
    assert_eq!(report.spooled_bytes, 5 + 3 + 3 + 1);
    assert_eq!(report.content_bytes, (5 + 3 + 3 + 3 + 1 + 5000) as u64);
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0, "the spool file has no name");
    agree(&b, "out of order").unwrap();
}

#[test]
fn export_is_deterministic_and_compressed_in_one_pass() {
    let layers = vec![
        vec![dir("etc").mtime(100), file("etc/a", b"a").mtime(200).xattr("user.x", b"1"), sym("l", "etc/a")],
        vec![file("etc/b", &vec![42u8; 300_000]).mode(0o600), dir("./").mode(0o711)],
    ];
    let b = blobs(&layers);
    let opts = WriteOptions::default().compression(Compression::Gzip).block_size(64 << 10);
    let run = |threads: usize| {
        let m = merge_blobs(&b, threads).unwrap();
        let mut blob = Vec::new();
        let (info, _) = m.export(&mut blob, &opts, opener(&b), &ExportOptions::default()).unwrap();
        (info, blob)
    };
    let (i1, b1) = run(1);
    let (i2, b2) = run(2);
    assert_eq!((&i1, &b1), (&i2, &b2));
    assert_eq!(i1.digest, Digest::sha256_of(&b1));
    assert_eq!(i1.size, b1.len() as u64);
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(&b1[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(i1.diff_id, Digest::sha256_of(&plain));
    assert_eq!(names(&plain), ["./", "etc/", "etc/a", "etc/b", "l"]);
    // The declared root comes out as ./ with its mode.
    let t = unpack(&[plain]).unwrap();
    assert_eq!(t.entries[p("")].mode, 0o711);
}

#[test]
fn a_stack_deeper_than_the_tree_can_record_is_refused_before_reading() {
    // An inode keeps its layer in 15 bits: 32,768 layers at most (docker stops at 127).
    let empty = blobs(&[vec![]]).remove(0);
    let layers = (0..32_769).map(|i| LayerSource::new(format!("layer {i}"), &empty[..]));
    match MergedTree::build(layers, &MergeOptions::default()) {
        Err(Error::InvalidTar { layer, reason, .. }) => {
            assert_eq!(layer, "layer 32768");
            assert!(reason.contains("32769 layers"), "{reason}");
        }
        other => panic!("{:?}", other.map(|t| t.len())),
    }
}
