//! Small files created on writer threads (the default) give the tree the calling
//! thread alone gives (`ApplyOptions::sequential_create`): the ordering rules a single
//! thread keeps by construction, each checked on its own, then on random layers.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use proptest::prelude::*;
use strata_layer::{ApplyOptions, Ownership};
use strata_testkit::{Compare, Tree};

use crate::util::*;

/// How each tree is compared: everything but the mtimes of directories a whiteout or a
/// missing parent touched (set at the time of the run).
fn compare() -> Compare {
    Compare { nlink: true, ..Compare::default() }
}

/// Apply `layers` with parallel creation (into `sb.root`) and without (`sb.root2`);
/// both must succeed with the same tree or fail with the same error (returned).
fn both(sb: &Sandbox, layers: &[Vec<E>], ownership: Ownership) -> Result<(), String> {
    let run = |root: &Path, sequential: bool| {
        let opts = ApplyOptions::default().ownership(ownership).sequential_create(sequential);
        apply(root, layers, &opts).map(|_| Tree::capture(root).unwrap()).map_err(|e| e.to_string())
    };
    let parallel = run(&sb.root, false);
    let sequential = run(&sb.root2, true);
    sb.assert_outside_unchanged("parallel creation");
    match (parallel, sequential) {
        (Ok(p), Ok(s)) => {
            let d = p.diff(&s, &compare());
            assert!(d.is_empty(), "parallel and sequential creation disagree: {d:#?}");
            Ok(())
        }
        (Err(p), Err(s)) => {
            let s = s.replace(sb.root2.to_str().unwrap(), sb.root.to_str().unwrap());
            assert_eq!(p, s, "parallel and sequential creation fail differently");
            Err(p)
        }
        (p, s) => panic!("parallel {:?} vs sequential {:?}", p.map(|_| ()), s.map(|_| ())),
    }
}

/// Many files in a few directories, so that every writer has work in flight.
fn many(dir: &str, n: usize) -> Vec<E> {
    (0..n).map(|i| file(&format!("{dir}/f{i}"), format!("{dir} {i}").as_bytes())).collect()
}

fn read(root: &Path, p: &str) -> Vec<u8> {
    std::fs::read(root.join(p)).unwrap()
}

#[test]
fn a_file_written_twice_ends_as_the_later_entry() {
    let sb = Sandbox::new();
    let mut l = vec![dir("d")];
    l.extend(many("d", 200));
    l.push(file("d/f7", b"second"));
    l.push(file("d/f7", b"third").mode(0o600));
    both(&sb, &[l], Ownership::Auto).unwrap();
    assert_eq!(read(&sb.root, "d/f7"), b"third");
    let meta = std::fs::symlink_metadata(sb.root.join("d/f7")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(read(&sb.root, "d/f8"), b"d 8");
}

#[test]
fn a_hard_link_to_a_file_created_just_before_shares_its_inode() {
    let sb = Sandbox::new();
    let mut l = vec![dir("d"), dir("e")];
    l.extend(many("d", 100));
    l.push(file("d/target", b"linked"));
    l.push(link("e/h", "d/target"));
    // In the same directory (the cached parent: nothing else waits for the writers).
    for i in 0..100 {
        l.push(file(&format!("d/t{i}"), format!("t{i}").as_bytes()));
        l.push(link(&format!("d/h{i}"), &format!("d/t{i}")));
    }
    both(&sb, &[l], Ownership::Auto).unwrap();
    for i in [0, 50, 99] {
        assert_eq!(read(&sb.root, &format!("d/h{i}")), format!("t{i}").as_bytes());
    }
    let a = std::fs::symlink_metadata(sb.root.join("d/target")).unwrap();
    let b = std::fs::symlink_metadata(sb.root.join("e/h")).unwrap();
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
    assert_eq!(a.nlink(), 2);
    assert_eq!(read(&sb.root, "e/h"), b"linked");
}

#[test]
fn a_later_layer_whites_out_files_an_earlier_one_created_in_parallel() {
    let sb = Sandbox::new();
    let mut l1 = vec![dir("d"), dir("k")];
    l1.extend(many("d", 100));
    l1.extend(many("k", 10));
    // This layer's own whiteout does not remove what this layer made.
    l1.push(wh("k/f3"));
    let l2 = vec![wh("d/f5"), opq("k"), file("k/new", b"new"), file("d/f6", b"replaced")];
    both(&sb, &[l1, l2], Ownership::Auto).unwrap();
    assert!(!sb.root.join("d/f5").exists());
    assert_eq!(read(&sb.root, "d/f6"), b"replaced");
    assert_eq!(read(&sb.root, "d/f7"), b"d 7");
    let mut k: Vec<_> = std::fs::read_dir(sb.root.join("k")).unwrap().map(|e| e.unwrap().file_name()).collect();
    k.sort();
    assert_eq!(k, ["new"]);
}

#[test]
fn a_restrictive_directory_mode_is_set_after_its_children() {
    for ownership in [Ownership::Auto, Ownership::Record] {
        let sb = Sandbox::new();
        let mut l = vec![dir("ro").mode(0o555).mtime(1_000_000)];
        l.extend(many("ro", 150));
        l.push(dir("ro/sub").mode(0o500));
        l.extend(many("ro/sub", 20));
        both(&sb, &[l], ownership).unwrap();
        let meta = std::fs::symlink_metadata(sb.root.join("ro")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o555, "{ownership:?}");
        assert_eq!(meta.mtime(), 1_000_000, "{ownership:?}");
        assert_eq!(read(&sb.root, "ro/f149"), b"ro 149");
        assert_eq!(read(&sb.root, "ro/sub/f19"), b"ro/sub 19");
        // Writable again so the sandbox can be removed.
        for d in ["ro/sub", "ro"] {
            std::fs::set_permissions(sb.root.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(sb.root2.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

#[test]
fn names_change_kind_in_one_layer_as_in_order() {
    let sb = Sandbox::new();
    let mut l = vec![dir("d")];
    l.extend(many("d", 50));
    // A file handed over, then a directory, a symlink and a file again at its name.
    l.extend([dir("d/f1"), file("d/f1/inner", b"in"), sym("d/f2", "f3"), file("d/f4", b"x"), dir("d/f4")]);
    l.extend([sym("d/s", "."), file("d/s", b"was a symlink"), file("d/f5", b"again")]);
    // Parents no entry declared (made on the way), then a file where one of them is.
    l.extend([file("p/q/r", b"deep"), file("p/q/s", b"deep2"), file("p/q", b"flat"), file("p/t", b"t")]);
    both(&sb, &[l], Ownership::Auto).unwrap();
    assert_eq!(read(&sb.root, "d/f1/inner"), b"in");
    assert_eq!(std::fs::read_link(sb.root.join("d/f2")).unwrap(), Path::new("f3"));
    assert!(sb.root.join("d/f4").is_dir());
    assert_eq!(read(&sb.root, "d/s"), b"was a symlink");
    assert_eq!(read(&sb.root, "d/f5"), b"again");
    assert_eq!(read(&sb.root, "p/q"), b"flat");
    assert_eq!(read(&sb.root, "p/t"), b"t");
}

#[test]
fn a_later_entry_through_a_replaced_name_fails_as_in_order() {
    // `d/x` becomes a file (handed over); `d/x/y` then needs it to be a directory.
    let sb = Sandbox::new();
    let mut l = vec![dir("d")];
    l.extend(many("d", 50));
    l.extend([file("d/x", b"file"), file("d/x/y", b"under a file")]);
    let err = both(&sb, &[l], Ownership::Auto).unwrap_err();
    assert!(err.contains("d/x/y"), "{err}");
}

#[test]
fn files_rewritten_across_layers_and_a_whited_out_directory_give_the_sequential_tree() {
    // Directories in several layers, files re-written across them.
    let sb = Sandbox::new();
    let mut l1 = vec![dir("a"), dir("b")];
    l1.extend(many("a", 120));
    l1.extend(many("b", 120));
    let mut l2 = vec![dir("a"), dir("c")];
    l2.extend(many("a", 60).into_iter().map(|e| e.mode(0o640)));
    l2.extend(many("c", 60));
    l2.push(wh("b"));
    both(&sb, &[l1, l2], Ownership::Auto).unwrap();
    assert!(!sb.root.join("b").exists());
    let meta = std::fs::symlink_metadata(sb.root.join("a/f10")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(read(&sb.root, "a/f100"), b"a 100");
}

/// A tree shaped like the scale benchmark's: directories declared before their files,
/// the next directory's files handed over while the last one's are still being made.
fn tree(top: usize, sub: usize, files: usize) -> Vec<E> {
    let mut l = Vec::new();
    for d in 0..top {
        l.push(dir(&format!("d{d}")));
        for e in 0..sub {
            let at = format!("d{d}/e{e}");
            l.push(dir(&at).mtime(1_000 + e as u64));
            l.extend(many(&at, files));
        }
    }
    l
}

#[test]
fn directories_switched_without_waiting_give_the_sequential_tree() {
    let sb = Sandbox::new();
    let mut l = tree(3, 4, 40);
    // Back to a directory whose files may still be in the making, one name rewritten.
    l.push(file("d0/e0/f3", b"rewritten").mode(0o600));
    l.push(file("d2/e3/new", b"new"));
    l.push(file("d0/e1/f4", b"again"));
    both(&sb, &[l], Ownership::Auto).unwrap();
    assert_eq!(read(&sb.root, "d0/e0/f3"), b"rewritten");
    assert_eq!(read(&sb.root, "d0/e1/f4"), b"again");
    assert_eq!(read(&sb.root, "d2/e3/f39"), b"d2/e3 39");
    let meta = std::fs::symlink_metadata(sb.root.join("d1/e2")).unwrap();
    assert_eq!(meta.mtime(), 1_002);
}

#[test]
fn a_path_through_a_symlink_waits_for_the_files_behind_it() {
    let sb = Sandbox::new();
    let mut l = vec![dir("a")];
    l.extend(many("a", 60));
    // `s/f3` is `a/f3`, handed over a moment ago: the later entry wins.
    l.extend([sym("s", "a"), file("s/f3", b"through the symlink"), file("s/g/h", b"made under a")]);
    l.extend(many("b", 30));
    l.push(file("s/f5", b"again through"));
    both(&sb, &[l], Ownership::Auto).unwrap();
    assert_eq!(read(&sb.root, "a/f3"), b"through the symlink");
    assert_eq!(read(&sb.root, "a/f5"), b"again through");
    assert_eq!(read(&sb.root, "a/g/h"), b"made under a");
}

#[test]
fn replacing_a_directory_whose_files_are_being_made_waits_for_them() {
    let sb = Sandbox::new();
    let mut l = vec![dir("a"), dir("a/b")];
    l.extend(many("a/b", 80));
    l.extend(many("c", 40));
    // The directory `a` (its files still in the making) becomes a symlink, then a file.
    l.extend([sym("a", "c"), file("x/y", b"elsewhere"), file("a", b"now a file")]);
    l.extend(many("d", 40));
    l.push(dir("d/f7"));
    both(&sb, &[l], Ownership::Auto).unwrap();
    assert_eq!(read(&sb.root, "a"), b"now a file");
    assert!(sb.root.join("d/f7").is_dir());
    assert_eq!(read(&sb.root, "c/f39"), b"c 39");
}

#[test]
fn parallel_created_files_keep_their_metadata() {
    for ownership in [Ownership::Auto, Ownership::Record] {
        let sb = Sandbox::new();
        let mut l = Vec::new();
        for d in 0..4 {
            l.push(dir(&format!("m{d}")));
            for i in 0..50u32 {
                let e = file(&format!("m{d}/f{i}"), format!("{d} {i}").as_bytes())
                    .mode([0o644, 0o600, 0o4755, 0o2711, 0o1777][i as usize % 5])
                    .owner(u64::from(i % 3) * 1000, u64::from(i % 2) * 1000)
                    .mtime(1_600_000_000 + u64::from(i));
                l.push(if i % 7 == 0 { e.xattr("user.strata", format!("v{i}").as_bytes()) } else { e });
            }
        }
        // A hard link, from another directory, to a file a writer made.
        l.push(link("m3/h", "m0/f10"));
        // What rootless mode records, from a run of its own (`both` gives only the tree).
        let report = apply(&Sandbox::new().root, &[l.clone()], &ApplyOptions::default().ownership(ownership)).unwrap();
        both(&sb, &[l], ownership).unwrap();
        let meta = std::fs::symlink_metadata(sb.root.join("m2/f12")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o4755, "{ownership:?}");
        assert_eq!(meta.mtime(), 1_600_000_012, "{ownership:?}");
        let meta = std::fs::symlink_metadata(sb.root.join("m1/f13")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o2711, "{ownership:?}");
        if report.rootless {
            let r = report.recorded.get(Path::new("m1/f13")).unwrap();
            assert_eq!((r.uid, r.gid), (1000, 1000));
        } else {
            assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
        }
        let (a, b) = (sb.root.join("m0/f10"), sb.root.join("m3/h"));
        assert_eq!(std::fs::symlink_metadata(a).unwrap().ino(), std::fs::symlink_metadata(b).unwrap().ino());
    }
}

/// A POSIX default ACL (`system.posix_acl_default`, version 2) granting the owner `rwx`
/// and the group and others nothing: a file created under it gets `mode & 0o700`, the
/// umask left out.
const OWNER_ONLY_DEFAULT_ACL: [u8; 28] = [
    2, 0, 0, 0, // version
    0x01, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // ACL_USER_OBJ rwx
    0x04, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // ACL_GROUP_OBJ ---
    0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // ACL_OTHER ---
];

/// The writers skip the `fstat` of a file they create when its owner and mode can be
/// told beforehand; each case here is one where a wrong guess would leave the wrong
/// owner or mode: a set-group-ID directory (files get its group), bits the umask
/// clears, a default ACL (the umask is not applied; the ACL takes bits away).
#[test]
fn files_created_without_asking_get_the_owner_and_mode_of_their_entry() {
    for ownership in [Ownership::Auto, Ownership::Record] {
        let sb = Sandbox::new();
        let mut l = vec![
            dir("sg").mode(0o2775).owner(0, 1000),
            dir("acl").xattr("system.posix_acl_default", &OWNER_ONLY_DEFAULT_ACL),
        ];
        for d in ["sg", "acl", "plain"] {
            if d == "plain" {
                l.push(dir(d));
            }
            for i in 0..40u32 {
                let mode = [0o644, 0o666, 0o777, 0o640, 0o4755][i as usize % 5];
                l.push(file(&format!("{d}/f{i}"), b"x").mode(mode).owner(0, u64::from(i % 2) * 1000));
            }
        }
        let report = apply(&sb.root, &[l.clone()], &ApplyOptions::default().ownership(ownership)).unwrap();
        for d in ["sg", "acl", "plain"] {
            for i in 0..40u32 {
                let meta = std::fs::symlink_metadata(sb.root.join(format!("{d}/f{i}"))).unwrap();
                let mode = [0o644, 0o666, 0o777, 0o640, 0o4755][i as usize % 5];
                assert_eq!(meta.permissions().mode() & 0o7777, mode, "{d}/f{i} {ownership:?}");
                if !report.rootless {
                    assert_eq!(meta.gid(), (i % 2) * 1000, "{d}/f{i}");
                }
            }
        }
        both(&Sandbox::new(), &[l], ownership).unwrap();
    }
}

/// Paths the random layers use: few, so that entries collide often.
const PATHS: &[&str] = &["d/a", "d/b", "d/c", "d/e/a", "d/e/b", "d/e", "f/a", "f", "g/h/a", "a"];

fn entry() -> impl Strategy<Value = (u8, usize, usize, u8)> {
    (0u8..10, 0..PATHS.len(), 0..PATHS.len(), any::<u8>())
}

fn build(spec: &[(u8, usize, usize, u8)]) -> Vec<E> {
    spec.iter()
        .map(|&(kind, p, t, byte)| {
            let (p, t) = (PATHS[p], PATHS[t]);
            match kind {
                // Mostly files, as in the layers this is for.
                0..=4 => file(p, &vec![byte; usize::from(byte % 7)]).mode(0o600 | u32::from(byte & 0o77)),
                5 => dir(p).mode(0o700 | u32::from(byte & 0o55)),
                6 => link(p, t),
                7 => sym(p, t),
                8 => wh(p),
                _ => opq(p),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..strata_testkit::proptest_config(256) })]

    #[test]
    fn parallel_creation_gives_the_sequential_tree(
        layers in proptest::collection::vec(proptest::collection::vec(entry(), 1..24), 1..4),
        rootless in any::<bool>(),
        fill in any::<bool>(),
    ) {
        let ownership = if rootless { Ownership::Record } else { Ownership::Auto };
        let sb = Sandbox::new();
        // Every layer starts with its directories, then its random entries; with
        // `fill`, each entry follows files in `g/h` (one of the random paths' parents),
        // so that the writers have whole batches in the making when it comes.
        let built: Vec<Vec<E>> = layers
            .iter()
            .enumerate()
            .map(|(n, l)| {
                let mut v = vec![dir("d"), dir("d/e"), dir("f")];
                for (i, e) in build(l).into_iter().enumerate() {
                    if fill {
                        v.extend((0..20).map(|j| file(&format!("g/h/n{n}-{i}-{j}"), b"fill")));
                    }
                    v.push(e);
                }
                v
            })
            .collect();
        let _ = both(&sb, &built, ownership);
    }
}
