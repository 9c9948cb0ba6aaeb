//! The merged index against the fold: the same answers on every path of plain layers.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::*;
use crate::path::Class;
use crate::{LayerBuilder, LayerIndex, LayerSource, Limits, MergeOptions, MergedTree, WriteOptions};
use proptest::prelude::*;

/// Layers as a Debian image has them (merged /usr through symlinks, hard links),
/// then whiteouts, an opaque directory, a directory replaced by a file and one by a
/// symlink, a file replaced by a directory in a layer of its own.
fn layers() -> Vec<LayerBuilder> {
    let mut a = LayerBuilder::new();
    a.symlink("lib", "usr/lib");
    a.symlink("bin", "/usr/bin");
    a.file("usr/lib/x86_64/libc.so.6", b"libc".to_vec());
    a.file("usr/lib/os-release", b"ID=debian\n".to_vec());
    a.symlink("etc/os-release", "../usr/lib/os-release");
    a.file("usr/bin/tool", b"tool".to_vec());
    a.hardlink("usr/bin/tool2", "usr/bin/tool");
    a.file("opt/app/old", b"old".to_vec());
    a.file("opt/app/sub/deep", b"deep".to_vec());
    a.file("srv/data/x", b"x".to_vec());
    a.file("var/gone/y", b"y".to_vec());
    a.file("var/file", b"f".to_vec());
    a.dir("home/user");
    let mut b = LayerBuilder::new();
    b.whiteout("opt/app/.wh..opq");
    b.file("opt/app/new", b"new".to_vec());
    b.whiteout("usr/bin/tool2");
    b.whiteout("var/gone");
    b.file("srv/data", b"now a file".to_vec());
    b.file("usr/lib/x86_64/libc.so.6", b"libc, patched".to_vec());
    b.dir("usr/lib/x86_64");
    b.file("home/user/.profile", b"p".to_vec());
    let mut c = LayerBuilder::new();
    c.dir("srv/data");
    c.symlink("home/user", "/srv");
    c.dir("var/file");
    c.file("var/gone/z", b"z".to_vec());
    vec![a, b, c]
}

fn indexes(layers: &[LayerBuilder]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut blobs = Vec::new();
    let mut out = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let (info, blob) = l.write(Vec::new(), &WriteOptions::default()).unwrap();
        let src = LayerSource::new(format!("layer {i}"), &blob[..]).diff_id(info.diff_id);
        out.push(LayerIndex::read(src, &Limits::default(), 0, &mut |_, _| false).unwrap().index.to_bytes());
        blobs.push(blob);
    }
    (blobs, out)
}

/// Every lookup of the view of the serialised indexes `bytes` against the folded
/// tree's: every path of the tree, every path any layer names, and `extra` (paths
/// through symlinks, gone, never there). `None` when the view is not made (the
/// layers are not plain), else the view's answers were checked. Twice: the indexes
/// decoded, and read with their tables ([`IndexRef::table`]), which must agree on
/// whether the view is made.
fn agree(bytes: &[Vec<u8>], extra: &[&str]) -> Option<()> {
    let decoded: Vec<IndexRef<'_>> = bytes.iter().map(|b| IndexRef::from_bytes(b).unwrap()).collect();
    let tables: Vec<Vec<u8>> = decoded.iter().map(IndexRef::table).collect();
    let tabled: Vec<IndexRef<'_>> =
        bytes.iter().zip(&tables).map(|(b, t)| IndexRef::with_table(b, t).unwrap()).collect();
    let a = agree_with(bytes, &decoded, extra);
    let b = agree_with(bytes, &tabled, extra);
    assert_eq!(a.is_some(), b.is_some(), "the view is made from the decoded indexes or from their tables alike");
    a
}

fn agree_with(bytes: &[Vec<u8>], refs: &[IndexRef<'_>], extra: &[&str]) -> Option<()> {
    let owned: Vec<LayerIndex> = bytes.iter().map(|b| LayerIndex::from_bytes(b).unwrap()).collect();
    for (o, r) in owned.iter().zip(refs) {
        assert_eq!(o.entries().collect::<Vec<_>>(), r.entries().collect::<Vec<_>>());
        assert_eq!(o.diff_id(), r.diff_id());
    }
    let view = MergedIndex::new(refs)?;
    let names: Vec<String> = (0..owned.len()).map(|i| format!("layer {i}")).collect();
    let tree = MergedTree::from_indexes(&owned.iter().collect::<Vec<_>>(), &names, &MergeOptions::default())
        .expect("plain layers fold");
    let mut paths: Vec<Vec<u8>> = tree.iter().map(|e| e.meta.path.into_os_string().into_encoded_bytes()).collect();
    for r in refs {
        paths.extend(r.entries().map(|e| e.path.to_vec()));
    }
    paths.extend(extra.iter().map(|p| p.as_bytes().to_vec()));
    paths.push(Vec::new());
    for p in &paths {
        let name = String::from_utf8_lossy(p);
        let want = |follow: bool| {
            let e = if follow { tree.stat_follow(OsStr::from_bytes(p)) } else { tree.stat(OsStr::from_bytes(p)) };
            e.ok().map(|e| {
                let kind = match e.meta.kind {
                    crate::entry::EntryKind::File => "file",
                    crate::entry::EntryKind::Dir => "dir",
                    crate::entry::EntryKind::Symlink { .. } => "symlink",
                    _ => "other",
                };
                (kind, e.layer, e.source, if kind == "file" { e.meta.size } else { 0 })
            })
        };
        let got = |n: Option<IndexedNode>| {
            n.map(|n| {
                let kind = match n.kind {
                    EntryKind::File => "file",
                    EntryKind::Dir => "dir",
                    EntryKind::Symlink => "symlink",
                    _ => "other",
                };
                (kind, n.layer, n.source, if kind == "file" { n.size } else { 0 })
            })
        };
        assert_eq!(got(view.stat(p)), want(false), "stat {name}");
        assert_eq!(got(view.stat_follow(p)), want(true), "stat_follow {name}");
        assert_eq!(view.is_dir(p), tree.is_dir(OsStr::from_bytes(p)), "is_dir {name}");
        assert_eq!(view.layer_of(p), tree.layer_of(OsStr::from_bytes(p)), "layer_of {name}");
        let layer_and_is_dir = tree.layer_of(OsStr::from_bytes(p)).map(|l| (l, tree.is_dir(OsStr::from_bytes(p))));
        assert_eq!(view.layer_and_is_dir(p), layer_and_is_dir, "layer_and_is_dir {name}");
    }
    let files: Vec<Vec<u8>> = view.file_paths_where(&mut |_| true).into_iter().map(<[u8]>::to_vec).collect();
    let want: Vec<Vec<u8>> = tree.file_paths().map(|p| p.into_os_string().into_encoded_bytes()).collect();
    assert_eq!(files, want);
    // Among the entries whose names a predicate accepts: what going through every path
    // finds with it.
    for pick in [&(|_: &[u8]| true) as &dyn Fn(&[u8]) -> bool, &|p: &[u8]| p.contains(&b'o'), &|p: &[u8]| {
        p.len().is_multiple_of(2)
    }] {
        let entries: Vec<(usize, u64)> = refs
            .iter()
            .enumerate()
            .flat_map(|(l, r)| {
                r.entries().filter(|e| path::normalized(e.path).is_ok_and(|p| pick(&p))).map(move |e| (l, e.ordinal))
            })
            .collect();
        let among = view.file_paths_among(entries, &mut |p| pick(p));
        assert_eq!(among, view.file_paths_where(&mut |p| pick(p)));
    }
    // The layers writing each path: those with an entry whose name normalises to it,
    // or a whiteout of it; asked of every path some layer writes, and of one no layer
    // does.
    let mut want: std::collections::BTreeMap<Vec<u8>, Vec<usize>> = Default::default();
    for (l, r) in refs.iter().enumerate() {
        for e in r.entries() {
            let p = path::normalize(e.path).unwrap();
            let p = match path::classify(&p).unwrap() {
                Class::Plain if !p.as_os_str().is_empty() => p,
                Class::Whiteout { target } => target,
                _ => continue,
            };
            let ls = want.entry(p.into_os_string().into_encoded_bytes()).or_default();
            if ls.last() != Some(&l) {
                ls.push(l);
            }
        }
    }
    for (p, ls) in &want {
        assert_eq!(&view.writers(p).collect::<Vec<_>>(), ls, "writers of {}", String::from_utf8_lossy(p));
    }
    assert_eq!(view.writers(b"no/such/path").count(), 0);
    Some(())
}

#[test]
fn every_lookup_is_the_folded_trees() {
    let (_, bytes) = indexes(&layers());
    let extra = [
        "lib/x86_64/libc.so.6",
        "/lib/x86_64",
        "bin/tool",
        "bin/tool2",
        "etc/os-release",
        "home/user/data",
        "home/user/.profile",
        "lib/nothing",
        "usr/lib/x86_64/libc.so.6/x",
        "opt/app/old",
        "opt/app/sub/deep",
        "var/gone/y",
        "./usr//lib/./os-release",
    ];
    agree(&bytes, &extra).expect("plain layers");
    let refs: Vec<IndexRef<'_>> = bytes.iter().map(|b| IndexRef::from_bytes(b).unwrap()).collect();
    let owned: Vec<LayerIndex> = bytes.iter().map(|b| LayerIndex::from_bytes(b).unwrap()).collect();
    let names: Vec<String> = (0..owned.len()).map(|i| format!("layer {i}")).collect();
    let tree = MergedTree::from_indexes(&owned.iter().collect::<Vec<_>>(), &names, &MergeOptions::default()).unwrap();
    let view = MergedIndex::new(&refs).expect("plain layers");
    // The fixture does what it says: the opaque directory and the whiteouts hide.
    for gone in ["opt/app/old", "opt/app/sub", "var/gone/y", "usr/bin/tool2", "srv/data/x", "home/user/.profile"] {
        assert!(tree.stat(gone).is_err(), "{gone}");
    }
    assert_eq!(view.layer_of(b"lib/x86_64/libc.so.6"), Some(1));
    assert_eq!(view.stat_follow(b"etc/os-release").map(|n| n.layer), Some(0));
    assert_eq!(view.stat(b"var/gone/z").map(|n| n.layer), Some(2));
    assert!(view.file_paths_where(&mut |p| p.ends_with(b"new")) == vec![&b"opt/app/new"[..]]);
}

/// What a raw layer holds: entries exactly as given (no parent made for them).
#[derive(Debug, Clone)]
enum Raw {
    File(String),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
}

/// The serialised index of a tar of `entries`, in that order, nothing added.
fn raw_index(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_size(0);
        let (path, link) = match e {
            Raw::File(p) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(p.len() as u64);
                (p, None)
            }
            Raw::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                (p, None)
            }
            Raw::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                (p, Some(t))
            }
            Raw::Hardlink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                (p, Some(t))
            }
        };
        h.set_path(path).unwrap();
        if let Some(t) = link {
            h.set_link_name(t).unwrap();
        }
        h.set_cksum();
        let data = if matches!(e, Raw::File(_)) { path.as_bytes() } else { &[][..] };
        b.append(&h, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let src = LayerSource::new("raw", &tar[..]);
    LayerIndex::read(src, &Limits::default(), 0, &mut |_, _| false).unwrap().index.to_bytes()
}

#[test]
fn the_union_rules_case_by_case() {
    use Raw::*;
    let f = |p: &str| File(p.into());
    let d = |p: &str| Dir(p.into());
    let l = |p: &str, t: &str| Symlink(p.into(), t.into());
    // What, the layers, paths to look up besides, whether the view is made.
    type Case<'c> = (&'c str, Vec<Vec<Raw>>, Vec<&'c str>, bool);
    let cases: Vec<Case<'_>> = vec![
        (
            "a directory tree whited out: nothing under it, however deep, asked in any order",
            vec![
                vec![d("w"), d("w/d"), f("w/d/x"), d("w/d/e"), f("w/d/e/y"), f("w/d/e/z"), f("w/k")],
                vec![f("w/.wh.d")],
            ],
            vec!["w/d/e/z", "w/d/e/y", "w/d/e", "w/d/x", "w/d/e/y/q", "w/k", "w/d"],
            true,
        ),
        (
            "a directory whited out, then made again (declared, and only needed)",
            vec![
                vec![d("a"), f("a/x"), d("a/sub"), f("a/sub/y"), d("b"), f("b/x")],
                vec![f("a/.wh.sub"), f(".wh.b")],
                vec![d("a/sub"), f("a/sub/z"), f("b/new")],
            ],
            vec!["a/sub/y", "b/x", "b", "a/sub/z"],
            true,
        ),
        (
            "an opaque directory in a middle layer",
            vec![
                vec![d("o"), f("o/low"), d("o/d"), f("o/d/deep"), f("keep")],
                vec![f("o/.wh..wh..opq"), f("o/mid"), f("p/.wh..wh..opq")],
                vec![f("o/top"), d("o"), f("o/d/again")],
            ],
            vec!["o/low", "o/d/deep", "o/d", "p"],
            true,
        ),
        (
            "an opaque directory with nothing else of its layer, below one that declares it",
            vec![vec![d("o"), f("o/low")], vec![f("o/.wh..wh..opq")], vec![f("o/new")], vec![d("o")]],
            vec!["o/low"],
            true,
        ),
        (
            "a file replaced by a directory and back",
            vec![vec![f("r")], vec![d("r")], vec![f("r")], vec![d("r")]],
            vec!["r/x"],
            true,
        ),
        (
            "a directory replaced by a file and back, with content",
            vec![vec![d("s"), f("s/x")], vec![f("s")], vec![d("s")]],
            vec!["s/x"],
            true,
        ),
        (
            "a whiteout of a path under a symlink",
            vec![
                vec![d("usr"), d("usr/lib"), f("usr/lib/a"), f("usr/lib/b"), l("lib", "usr/lib")],
                vec![f("lib/.wh.a")],
                vec![f("usr/lib/.wh.b")],
            ],
            vec!["lib/a", "lib/b", "usr/lib/a", "usr/lib/b", "lib"],
            false,
        ),
        (
            "a whiteout of a symlink",
            vec![vec![d("usr"), d("usr/lib"), f("usr/lib/a"), l("lib", "usr/lib")], vec![f(".wh.lib")]],
            vec!["lib/a", "usr/lib/a", "lib"],
            true,
        ),
        (
            "an opaque directory whose layer adds to a lower directory in it, undeclared",
            vec![vec![d("o"), d("o/d"), f("o/d/x")], vec![f("o/.wh..wh..opq"), f("o/d/y")]],
            vec!["o/d/x", "o/d"],
            false,
        ),
        (
            "an opaque directory made in a layer that then makes the root opaque",
            vec![vec![f("x")], vec![f("c/a/.wh..wh..opq"), f(".wh..wh..opq")]],
            vec!["c/a", "c", "x"],
            true,
        ),
        (
            "a lower directory made opaque in a layer that makes the root opaque",
            vec![vec![d("c"), f("c/x")], vec![f("c/.wh..wh..opq"), f(".wh..wh..opq")]],
            vec!["c", "c/x"],
            false,
        ),
        (
            "the root made opaque",
            vec![vec![f("gone"), d("g"), f("g/x")], vec![f(".wh..wh..opq"), f("kept")], vec![f("g/y")]],
            vec!["gone", "g/x"],
            true,
        ),
        (
            "directories only needed, then declared",
            vec![vec![f("n/a/b/c")], vec![f("n/a/x")], vec![d("n/a")], vec![f("n/a/b/.wh.c")]],
            vec!["n/a/b/c", "n"],
            true,
        ),
    ];
    for (what, layers, extra, made) in cases {
        let bytes: Vec<Vec<u8>> = layers.iter().map(|l| raw_index(l)).collect();
        assert_eq!(agree(&bytes, &extra).is_some(), made, "{what}: the view is made");
    }
}

fn raw_entry() -> impl Strategy<Value = Raw> {
    let name = prop::sample::select(vec!["a", "b", "c", ".wh.a", ".wh.b", ".wh..wh..opq"]);
    let dir = prop::sample::select(vec!["a", "b", "c"]);
    let path = (prop::collection::vec(dir, 0..3), name).prop_map(|(mut d, n)| {
        d.push(n);
        d.join("/")
    });
    let plain = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4).prop_map(|v| v.join("/"));
    let target = prop::sample::select(vec!["a", "b", "/a/b", "../c", "a/b/c", "/"]);
    prop_oneof![
        4 => path.prop_map(Raw::File),
        3 => plain.clone().prop_map(Raw::Dir),
        1 => (plain.clone(), target).prop_map(|(p, t)| Raw::Symlink(p, t.into())),
        1 => (plain.clone(), plain).prop_map(|(p, t)| Raw::Hardlink(p, t)),
    ]
}

proptest::proptest! {
    #![proptest_config(strata_testkit::proptest_config(512))]

    /// On random small stacks of raw layers (whiteouts, opaque markers, symlinks,
    /// hard links, directories made only as parents), the view either declines or
    /// agrees with the fold on every lookup.
    #[test]
    fn the_view_agrees_with_the_fold(layers in prop::collection::vec(prop::collection::vec(raw_entry(), 1..8), 1..4)) {
        // Hard links only to a file earlier in their layer (else the tar is refused
        // by the fold, which is not what this compares).
        let bytes: Vec<Vec<u8>> = layers.iter().map(|l| raw_index(l)).collect();
        agree(&bytes, &["a/b/c", "c/a", "a/a/a"]);
    }
}
#[test]
fn layers_that_are_not_plain_are_left_to_the_fold() {
    // An entry under a symlink of a lower layer; a file under a file of its own
    // layer; a whiteout of what the layer itself makes.
    let mut through = LayerBuilder::new();
    through.file("lib/x86_64/new.so", b"n".to_vec());
    let mut under_file = LayerBuilder::new();
    under_file.file("usr/lib/os-release/x", b"x".to_vec());
    let mut own = LayerBuilder::new();
    own.file("srv/a", b"a".to_vec());
    own.whiteout("srv/a");
    for top in [through, under_file, own] {
        let mut all = layers();
        all.truncate(1);
        all.push(top);
        let (_, bytes) = indexes(&all);
        let refs: Vec<IndexRef<'_>> = bytes.iter().map(|b| IndexRef::from_bytes(b).unwrap()).collect();
        assert!(MergedIndex::new(&refs).is_none());
    }
}

#[test]
fn a_table_that_does_not_fit_its_index_is_not_trusted() {
    let (_, bytes) = indexes(&layers());
    let r = IndexRef::from_bytes(&bytes[0]).unwrap();
    let table = r.table();
    assert_eq!(IndexRef::with_table(&bytes[0], &table).unwrap().entries().count(), r.len());
    // Cut short, of another index (another number of entries), of another version.
    assert!(IndexRef::with_table(&bytes[0], &table[..table.len() - 1]).is_err());
    assert!(IndexRef::with_table(&bytes[1], &table).is_err());
    let mut other = table.clone();
    other[8] ^= 1;
    assert!(IndexRef::with_table(&bytes[0], &other).is_err());
    // A row naming bytes beyond the index, or of an unknown kind: not trusted.
    for (at, value) in [(20 + 4, u32::MAX), (20 + 16, u32::MAX - 2), (20 + 48, 0xff)] {
        let mut bad = table.clone();
        if at == 20 + 48 {
            bad[at] = value as u8;
        } else {
            bad[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        assert!(IndexRef::with_table(&bytes[0], &bad).is_err(), "row damaged at {at}");
        // Left to the caller's checksum: read, and the damaged row is no entry.
        let t = IndexRef::with_table_unchecked(&bytes[0], &bad).unwrap();
        assert_eq!(t.entries().count(), r.len() - 1, "row damaged at {at}");
        assert!(t.raw(0).is_none());
    }
    // The index's own checksum: checked by with_table, left to the caller by
    // with_table_unchecked, which still reads the framing.
    let mut damaged = bytes[0].clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;
    assert!(IndexRef::with_table(&damaged, &table).is_err());
    assert!(IndexRef::with_table_unchecked(&damaged, &table).is_ok());
    assert!(IndexRef::with_table_unchecked(&damaged[..10], &table).is_err());
    assert!(IndexRef::with_table_unchecked(&bytes[1], &table).is_err());
    assert_eq!(IndexRef::with_table_unchecked(&bytes[0], &table).unwrap().entries().count(), r.len());
    // The says: cut short, longer than said, a say naming a path beyond its table: no
    // table, or no merged view of it.
    let rows_end = 20 + r.len() * 56;
    assert!(IndexRef::with_table(&bytes[0], &table[..rows_end + 8]).is_err());
    let mut longer = table.clone();
    longer.push(0);
    assert!(IndexRef::with_table(&bytes[0], &longer).is_err());
    let mut beyond = table.clone();
    beyond[rows_end + 16 + 4..rows_end + 16 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let t = IndexRef::with_table(&bytes[0], &beyond).unwrap();
    assert!(MergedIndex::new(&[t]).is_none());
    // A layer not plain on its own says so in its table, and no view is made of it.
    let mut own = LayerBuilder::new();
    own.file("srv/a", b"a".to_vec());
    own.whiteout("srv/a");
    let (_, own) = indexes(&[own]);
    let r = IndexRef::from_bytes(&own[0]).unwrap();
    let table = r.table();
    let t = IndexRef::with_table(&own[0], &table).unwrap();
    assert!(matches!(t.stored_says(), Some(None)));
    assert!(MergedIndex::new(&[t]).is_none());
}
