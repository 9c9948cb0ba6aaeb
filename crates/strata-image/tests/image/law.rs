//! The commit law: unpack(commit(container)) == the container's rootfs.
//!
//! Compared ([`law_compare`]): type, content, mode (setuid/setgid/sticky included),
//! owner, symlink target, xattrs, hard link counts, and mtimes of files, symlinks and
//! directories, to the nanosecond. Not compared: the root directory's own metadata (no
//! layer diff carries `/`: a container's chmod or touch of `/` is not committed, as with
//! `docker commit`), and atimes and ctimes, which no layer carries.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rustix::fs::{CWD, FileType, Mode};
use strata_image::{Container, LayerInput, Store};
use strata_testkit::{Kind, Tree};

use crate::fixture::{chmod, chown, law_compare, opts, scratch, set_mtime, set_xattr, whiteouts_in, write_files};

const NAMES: [&str; 4] = ["n0", "n1", "n2", "n3"];
const TARGETS: [&str; 6] = ["n0", "../n1", "/etc/passwd", "deep/a/b", "nowhere/x", "."];
const PARENTS: [&str; 6] = ["", "etc", "usr/bin", "home/app", "var/log", "opt"];

/// One change a container makes to its rootfs. Indices pick among what exists when the
/// change is made (modulo the count); a change that does not apply is skipped.
#[derive(Debug, Clone)]
enum Op {
    AddFile {
        dir: usize,
        name: usize,
        data: Vec<u8>,
        mode: u32,
    },
    AddDir {
        dir: usize,
        name: usize,
    },
    AddSymlink {
        dir: usize,
        name: usize,
        target: usize,
    },
    AddFifo {
        dir: usize,
        name: usize,
    },
    /// Same size, new bytes; optionally with the old mtime put back (only ctime tells).
    EditSameSize {
        file: usize,
        keep_mtime: bool,
    },
    EditResize {
        file: usize,
        data: Vec<u8>,
    },
    Chmod {
        any: usize,
        mode: u32,
    },
    Chown {
        any: usize,
        id: u32,
    },
    Delete {
        any: usize,
    },
    DirToFile {
        dir: usize,
    },
    FileToDir {
        file: usize,
    },
    Retarget {
        link: usize,
        target: usize,
    },
    Hardlink {
        file: usize,
        dir: usize,
        name: usize,
    },
    Xattr {
        any: usize,
        value: Option<Vec<u8>>,
    },
    Touch {
        any: usize,
        sec: i64,
        nsec: i64,
    },
    DeleteDeep,
}

fn arb_op() -> impl Strategy<Value = Op> {
    let i = || any::<usize>();
    let name = || 0..NAMES.len();
    prop_oneof![
        (
            i(),
            name(),
            prop::collection::vec(any::<u8>(), 0..300),
            prop::sample::select(vec![0o644u32, 0o600, 0o755, 0o4755])
        )
            .prop_map(|(dir, name, data, mode)| Op::AddFile { dir, name, data, mode }),
        (i(), name()).prop_map(|(dir, name)| Op::AddDir { dir, name }),
        (i(), name(), 0..TARGETS.len()).prop_map(|(dir, name, target)| Op::AddSymlink { dir, name, target }),
        (i(), name()).prop_map(|(dir, name)| Op::AddFifo { dir, name }),
        (i(), any::<bool>()).prop_map(|(file, keep_mtime)| Op::EditSameSize { file, keep_mtime }),
        (i(), prop::collection::vec(any::<u8>(), 0..2000)).prop_map(|(file, data)| Op::EditResize { file, data }),
        (i(), prop::sample::select(vec![0o600u32, 0o640, 0o755, 0o2755, 0o4711, 0o1777, 0o000]))
            .prop_map(|(any, mode)| Op::Chmod { any, mode }),
        (i(), prop::sample::select(vec![0u32, 1000, 65534, 3_000_000])).prop_map(|(any, id)| Op::Chown { any, id }),
        i().prop_map(|any| Op::Delete { any }),
        i().prop_map(|dir| Op::DirToFile { dir }),
        i().prop_map(|file| Op::FileToDir { file }),
        (i(), 0..TARGETS.len()).prop_map(|(link, target)| Op::Retarget { link, target }),
        (i(), i(), name()).prop_map(|(file, dir, name)| Op::Hardlink { file, dir, name }),
        (i(), prop::option::of(prop::collection::vec(any::<u8>(), 0..40)))
            .prop_map(|(any, value)| Op::Xattr { any, value }),
        (i(), 1_500_000_000i64..1_800_000_000, 0i64..1_000_000_000).prop_map(|(any, sec, nsec)| Op::Touch {
            any,
            sec,
            nsec
        }),
        Just(Op::DeleteDeep),
    ]
}

/// An extra entry of the base tree.
#[derive(Debug, Clone)]
enum Extra {
    File(Vec<u8>, u32, u32),
    Dir(u32),
    Symlink(usize),
}

fn arb_extras() -> impl Strategy<Value = Vec<(usize, usize, Extra)>> {
    let extra = prop_oneof![
        3 => (prop::collection::vec(any::<u8>(), 0..400), prop::sample::select(vec![0o644u32, 0o600, 0o755]), prop::sample::select(vec![0u32, 1000, 42]))
            .prop_map(|(d, m, u)| Extra::File(d, m, u)),
        1 => prop::sample::select(vec![0o755u32, 0o700, 0o1777]).prop_map(Extra::Dir),
        1 => (0..TARGETS.len()).prop_map(Extra::Symlink),
    ];
    prop::collection::vec((0..PARENTS.len(), 0..NAMES.len(), extra), 0..8)
}

fn pseudo_random(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The base tree: a small system with every kind of entry, owners, special modes, an
/// xattr, a hard link pair, a deep directory, and `extras`.
fn build_base(root: &Path, extras: &[(usize, usize, Extra)]) {
    write_files(
        root,
        &[
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/hostname", "box\n"),
            ("etc/motd", "hello\n"),
            ("usr/lib/libx.so.1", "\x7fELF lib"),
            ("home/app/.profile", "export A=1\n"),
            ("deep/a/b/c/d/e/f/leaf.txt", "deep\n"),
            ("deep/a/b/side.txt", "side\n"),
        ],
    );
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/tool"), pseudo_random(2048, 1)).unwrap();
    fs::write(root.join("usr/bin/su"), pseudo_random(512, 2)).unwrap();
    fs::create_dir_all(root.join("opt/data")).unwrap();
    fs::write(root.join("opt/data/blob.bin"), pseudo_random(64 << 10, 3)).unwrap();
    fs::create_dir_all(root.join("var/log")).unwrap();
    chmod(&root.join("usr/bin/tool"), 0o755);
    chmod(&root.join("usr/bin/su"), 0o4755);
    set_xattr(&root.join("usr/bin/su"), "user.cap", b"\x01\x00\x00\x02");
    fs::hard_link(root.join("etc/motd"), root.join("etc/motd.hl")).unwrap();
    symlink("libx.so.1", root.join("usr/lib/libx.so")).unwrap();
    chmod(&root.join("home/app"), 0o750);
    chown(&root.join("home/app"), 1000, 1000);
    chown(&root.join("home/app/.profile"), 1000, 1000);
    rustix::fs::mknodat(CWD, root.join("var/log/pipe"), FileType::Fifo, Mode::from_raw_mode(0o640), 0).unwrap();
    for (parent, name, e) in extras {
        let p = root.join(PARENTS[*parent]).join(NAMES[*name]);
        if fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        match e {
            Extra::File(data, mode, uid) => {
                fs::write(&p, data).unwrap();
                chmod(&p, *mode);
                chown(&p, *uid, *uid);
            }
            Extra::Dir(mode) => {
                fs::create_dir(&p).unwrap();
                chmod(&p, *mode);
            }
            Extra::Symlink(t) => symlink(TARGETS[*t], &p).unwrap(),
        }
    }
    // Fixed mtimes with nanoseconds, deepest first.
    let tree = Tree::capture(root).unwrap();
    for (i, p) in tree.entries.keys().rev().enumerate() {
        set_mtime(&root.join(p), 1_600_000_000 + i as i64, 123_456_789);
    }
}

/// Paths under `root` by kind, as they are now (the root itself is a directory `""`).
struct Listing {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    symlinks: Vec<PathBuf>,
    any: Vec<PathBuf>,
}

fn list(root: &Path) -> Listing {
    let t = Tree::capture(root).unwrap();
    let of = |f: &dyn Fn(&Kind) -> bool| t.entries.iter().filter(|(_, e)| f(&e.kind)).map(|(p, _)| p.clone()).collect();
    Listing {
        files: of(&|k| matches!(k, Kind::File(_))),
        dirs: of(&|k| *k == Kind::Dir),
        symlinks: of(&|k| matches!(k, Kind::Symlink(_))),
        any: t.entries.keys().filter(|p| !p.as_os_str().is_empty()).cloned().collect(),
    }
}

fn pick(v: &[PathBuf], i: usize) -> Option<&PathBuf> {
    if v.is_empty() { None } else { v.get(i % v.len()) }
}

fn remove(p: &Path) {
    let md = fs::symlink_metadata(p).unwrap();
    if md.is_dir() { fs::remove_dir_all(p).unwrap() } else { fs::remove_file(p).unwrap() }
}

/// Make `op` on the tree under `root`, with real file system calls.
fn apply(root: &Path, op: &Op) {
    let l = list(root);
    let free = |dir: &Path, name: usize| {
        let p = root.join(dir).join(NAMES[name]);
        fs::symlink_metadata(&p).is_err().then_some(p)
    };
    let is_link = |p: &Path| fs::symlink_metadata(p).unwrap().file_type().is_symlink();
    match op {
        Op::AddFile { dir, name, data, mode } => {
            if let Some(p) = pick(&l.dirs, *dir).and_then(|d| free(d, *name)) {
                fs::write(&p, data).unwrap();
                chmod(&p, *mode);
            }
        }
        Op::AddDir { dir, name } => {
            if let Some(p) = pick(&l.dirs, *dir).and_then(|d| free(d, *name)) {
                fs::create_dir(&p).unwrap();
            }
        }
        Op::AddSymlink { dir, name, target } => {
            if let Some(p) = pick(&l.dirs, *dir).and_then(|d| free(d, *name)) {
                symlink(TARGETS[*target], &p).unwrap();
            }
        }
        Op::AddFifo { dir, name } => {
            if let Some(p) = pick(&l.dirs, *dir).and_then(|d| free(d, *name)) {
                rustix::fs::mknodat(CWD, &p, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
            }
        }
        Op::EditSameSize { file, keep_mtime } => {
            if let Some(f) = pick(&l.files, *file) {
                let p = root.join(f);
                let md = fs::metadata(&p).unwrap();
                let data: Vec<u8> = fs::read(&p).unwrap().iter().map(|b| b ^ 0x5a).collect();
                fs::write(&p, &data).unwrap();
                if *keep_mtime {
                    set_mtime(&p, md.mtime(), md.mtime_nsec());
                }
            }
        }
        Op::EditResize { file, data } => {
            if let Some(f) = pick(&l.files, *file) {
                let p = root.join(f);
                let mut data = data.clone();
                if data.len() as u64 == fs::metadata(&p).unwrap().len() {
                    data.push(b'+');
                }
                fs::write(&p, &data).unwrap();
            }
        }
        Op::Chmod { any, mode } => {
            if let Some(p) = pick(&l.any, *any).map(|p| root.join(p))
                && !is_link(&p)
            {
                chmod(&p, *mode);
            }
        }
        Op::Chown { any, id } => {
            if let Some(p) = pick(&l.any, *any) {
                chown(&root.join(p), *id, *id);
            }
        }
        Op::Delete { any } => {
            if let Some(p) = pick(&l.any, *any) {
                remove(&root.join(p));
            }
        }
        Op::DirToFile { dir } => {
            let dirs: Vec<PathBuf> = l.dirs.into_iter().filter(|d| !d.as_os_str().is_empty()).collect();
            if let Some(d) = pick(&dirs, *dir) {
                let p = root.join(d);
                fs::remove_dir_all(&p).unwrap();
                fs::write(&p, "was a directory\n").unwrap();
            }
        }
        Op::FileToDir { file } => {
            if let Some(f) = pick(&l.files, *file) {
                let p = root.join(f);
                fs::remove_file(&p).unwrap();
                fs::create_dir(&p).unwrap();
                fs::write(p.join("child"), "was a file\n").unwrap();
            }
        }
        Op::Retarget { link, target } => {
            if let Some(s) = pick(&l.symlinks, *link) {
                let p = root.join(s);
                fs::remove_file(&p).unwrap();
                symlink(TARGETS[*target], &p).unwrap();
            }
        }
        Op::Hardlink { file, dir, name } => {
            if let (Some(f), Some(p)) = (pick(&l.files, *file), pick(&l.dirs, *dir).and_then(|d| free(d, *name))) {
                fs::hard_link(root.join(f), p).unwrap();
            }
        }
        Op::Xattr { any, value } => {
            if let Some(p) = pick(&l.any, *any).map(|p| root.join(p))
                && !is_link(&p)
                && !fs::symlink_metadata(&p).unwrap().file_type().is_fifo_like()
            {
                match value {
                    Some(v) => set_xattr(&p, "user.test", v),
                    None => {
                        let _ = rustix::fs::lremovexattr(&p, "user.test");
                        let _ = rustix::fs::lremovexattr(&p, "user.cap");
                    }
                }
            }
        }
        Op::Touch { any, sec, nsec } => {
            if let Some(p) = pick(&l.any, *any) {
                set_mtime(&root.join(p), *sec, *nsec);
            }
        }
        Op::DeleteDeep => {
            let p = root.join("deep/a");
            if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&p).unwrap();
            }
        }
    }
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

/// Commit `c`, unpack the commit, and compare with the rootfs as the container left it.
fn check_law(store: &Store, c: &Container, out: &Path, what: &str) -> strata_image::Image {
    let expected = Tree::capture(&c.rootfs()).unwrap();
    let img = c.commit(&opts(1_700_000_100).message(what)).unwrap();
    img.unpack_raw(out, &Default::default()).unwrap();
    let actual = Tree::capture(out).unwrap();
    let d = expected.diff(&actual, &law_compare());
    assert!(d.is_empty(), "{what}: unpack(commit) differs from the container:\n{}", d.join("\n"));
    assert!(whiteouts_in(&actual).is_empty());
    assert!(store.fsck().unwrap().is_clean());
    img
}

proptest! {
    #![proptest_config(strata_testkit::proptest_config(64))]

    #[test]
    fn unpack_of_a_commit_is_the_containers_rootfs(extras in arb_extras(), ops in prop::collection::vec(arb_op(), 1..10)) {
        let tmp = scratch();
        let base_dir = tmp.path().join("base");
        fs::create_dir(&base_dir).unwrap();
        build_base(&base_dir, &extras);
        let store = Store::in_memory();
        let base = store.import(LayerInput::Dir(&base_dir), &opts(1_700_000_000).tag("base")).unwrap();
        let c = base.unpack(tmp.path().join("c")).unwrap();
        for op in &ops {
            apply(&c.rootfs(), op);
        }
        let img = check_law(&store, &c, &tmp.path().join("out"), &format!("{ops:?}"));
        prop_assert_eq!(img.config().history().len(), 2);
    }
}

#[test]
fn every_kind_of_change_at_once() {
    // Each change the law is about, made for sure (the generated cases make them at random).
    let tmp = scratch();
    let base_dir = tmp.path().join("base");
    fs::create_dir(&base_dir).unwrap();
    build_base(&base_dir, &[]);
    let store = Store::in_memory();
    let base = store.import(LayerInput::Dir(&base_dir), &opts(1_700_000_000).tag("base")).unwrap();
    let c = base.unpack(tmp.path().join("c")).unwrap();
    let r = c.rootfs();
    fs::write(r.join("etc/new.conf"), "added\n").unwrap(); // added
    fs::write(r.join("etc/hostname"), "xyz\n").unwrap(); // edited, same size
    let md = fs::metadata(r.join("usr/bin/tool")).unwrap();
    let mut tool = fs::read(r.join("usr/bin/tool")).unwrap();
    tool[100] ^= 1;
    fs::write(r.join("usr/bin/tool"), &tool).unwrap(); // edited, same size, mtime put back
    set_mtime(&r.join("usr/bin/tool"), md.mtime(), md.mtime_nsec());
    fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n").unwrap(); // bigger
    chmod(&r.join("usr/bin/su"), 0o755); // setuid dropped
    chown(&r.join("usr/lib/libx.so.1"), 1000, 1000); // chown
    chown(&r.join("usr/lib/libx.so"), 1000, 1000); // lchown of a symlink
    fs::remove_file(r.join("etc/motd.hl")).unwrap(); // deleted (its peer's link count drops)
    fs::remove_dir_all(r.join("var/log")).unwrap(); // directory -> file
    fs::write(r.join("var/log"), "now a file\n").unwrap();
    fs::remove_file(r.join("home/app/.profile")).unwrap(); // file -> directory
    fs::create_dir(r.join("home/app/.profile")).unwrap();
    fs::write(r.join("home/app/.profile/env"), "A=2\n").unwrap();
    fs::remove_file(r.join("usr/lib/libx.so")).unwrap(); // symlink retargeted
    symlink("/opt/data/blob.bin", r.join("usr/lib/libx.so")).unwrap();
    fs::hard_link(r.join("opt/data/blob.bin"), r.join("opt/blob.hl")).unwrap(); // hard link to a lower file
    set_xattr(&r.join("usr/bin/su"), "user.cap", b"changed"); // xattr changed
    set_xattr(&r.join("etc/passwd"), "user.new", b"added"); // xattr added
    fs::remove_dir_all(r.join("deep/a")).unwrap(); // deep directory deleted
    set_mtime(&r.join("opt/data"), 1_234_567_890, 5); // directory touched
    let changes = c.diff().unwrap();
    let deleted: Vec<String> =
        changes.iter().filter(|c| c.kind == strata_layer::ChangeKind::Deleted).map(|c| c.to_string()).collect();
    assert_eq!(deleted, ["D /deep/a", "D /etc/motd.hl"], "one whiteout for the deep directory");
    let img = check_law(&store, &c, &tmp.path().join("out"), "every kind");
    // The layer carries the deletions as whiteouts, and nothing that did not change.
    let entries = crate::fixture::layer_entries(&store, &img.layers()[1]);
    let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert!(names.contains(&"deep/.wh.a") && names.contains(&"etc/.wh.motd.hl"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("deep/a/")), "{names:?}");
    assert!(
        !names.contains(&"usr/lib/libx.so.1") || entries.iter().any(|e| e.path == "usr/lib/libx.so.1" && e.uid == 1000)
    );
}

/// A Debian-like tree: about 3,300 entries in nested directories (docs, locales, python
/// and perl modules, libraries with symlinks, setuid binaries, devices, owned and
/// special-mode directories, a 1 MiB file), every mtime clamped to `EPOCH`.
fn debian_like(root: &Path) -> usize {
    let put = |p: &str, data: &[u8], mode: u32| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        chmod(&path, mode);
    };
    for i in 0..150u32 {
        let pkg = format!("pkg{i:03}");
        put(&format!("usr/share/doc/{pkg}/copyright"), format!("Copyright {pkg}\n").repeat(8).as_bytes(), 0o644);
        put(&format!("usr/share/doc/{pkg}/changelog.Debian.gz"), &pseudo_random(300, i), 0o644);
        put(&format!("var/lib/dpkg/info/{pkg}.list"), format!("/usr/bin/{pkg}\n").as_bytes(), 0o644);
        put(&format!("var/lib/dpkg/info/{pkg}.md5sums"), format!("{i:032x}  usr/bin/{pkg}\n").as_bytes(), 0o644);
        put(&format!("usr/bin/{pkg}"), &pseudo_random(1024 + (i as usize % 4) * 1024, i + 1000), 0o755);
        put(&format!("usr/lib/x86_64-linux-gnu/lib{pkg}.so.1.0"), &pseudo_random(2048, i + 2000), 0o644);
        symlink(format!("lib{pkg}.so.1.0"), root.join(format!("usr/lib/x86_64-linux-gnu/lib{pkg}.so.1"))).unwrap();
        put(&format!("usr/share/man/man1/{pkg}.1.gz"), &pseudo_random(200, i + 3000), 0o644);
    }
    for a in b'a'..b'm' {
        for b in [b'a', b'e', b'n', b's', b'z'] {
            let loc = format!("usr/share/locale/{}{}/LC_MESSAGES", a as char, b as char);
            for m in 0..6 {
                put(&format!("{loc}/dom{m}.mo"), &pseudo_random(150, u32::from(a) * 7 + m), 0o644);
            }
        }
    }
    for module in ["email", "unittest", "json", "asyncio", "http", "xml", "urllib", "logging", "sqlite3", "ctypes"] {
        for f in 0..40 {
            put(
                &format!("usr/lib/python3.11/{module}/m{f}.py"),
                format!("# {module} {f}\nx = {f}\n").as_bytes(),
                0o644,
            );
            put(
                &format!("usr/lib/python3.11/{module}/__pycache__/m{f}.cpython-311.pyc"),
                &pseudo_random(120, f),
                0o644,
            );
        }
    }
    for f in 0..100 {
        put(
            &format!("usr/share/perl/5.36/unicore/To/T{f}.pl"),
            format!("return <<'END';\n{f}\nEND\n").as_bytes(),
            0o644,
        );
    }
    for d in 0..10 {
        for f in 0..20 {
            put(&format!("usr/share/perl/5.36/unicore/lib/D{d}/F{f}.pl"), format!("{d} {f}\n").as_bytes(), 0o644);
        }
    }
    put("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n", 0o644);
    put("etc/group", b"root:x:0:\nmail:x:8:\n", 0o644);
    put("etc/shadow", b"root:*:19675:0:99999:7:::\n", 0o640);
    chown(&root.join("etc/shadow"), 0, 42);
    put("etc/hostname", b"debian\n", 0o644);
    put("etc/motd", b"Debian GNU/Linux\n", 0o644);
    put("etc/os-release", b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", 0o644);
    for f in 0..40 {
        put(&format!("etc/default/conf{f}"), format!("OPT{f}=yes\n").as_bytes(), 0o644);
        put(&format!("etc/init.d/svc{f}"), format!("#!/bin/sh\n# svc {f}\n").as_bytes(), 0o755);
    }
    put("usr/bin/python3.11", &pseudo_random(64 << 10, 7), 0o755);
    for (p, mode) in
        [("usr/bin/pinky", 0o755), ("usr/bin/users", 0o755), ("usr/bin/su", 0o4755), ("usr/bin/passwd", 0o4755)]
    {
        put(p, &pseudo_random(4096, mode), mode);
    }
    set_xattr(&root.join("usr/bin/passwd"), "user.origin", b"shadow-utils");
    put("opt/data/blob.bin", &pseudo_random(1 << 20, 42), 0o644);
    for d in ["home", "usr/local/bin", "var/cache/apt/archives/partial", "var/lib/apt/lists/partial", "tmp", "var/mail"]
    {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    chmod(&root.join("tmp"), 0o1777);
    chmod(&root.join("var/mail"), 0o2775);
    chown(&root.join("var/mail"), 0, 8);
    fs::create_dir_all(root.join("dev")).unwrap();
    for (name, minor) in [("null", 3), ("zero", 5)] {
        rustix::fs::mknodat(
            CWD,
            root.join("dev").join(name),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, minor),
        )
        .unwrap();
    }
    fs::hard_link(root.join("usr/bin/pinky"), root.join("usr/bin/pinky.hl")).unwrap();
    let tree = Tree::capture(root).unwrap();
    for p in tree.entries.keys().rev() {
        set_mtime(&root.join(p), EPOCH, 0);
    }
    tree.entries.len()
}

const EPOCH: i64 = 1_700_000_000;

#[test]
fn the_law_on_a_debian_like_tree_with_make_corpus_edits() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipping: the Debian-like tree has device nodes and owners, which need root");
        return;
    }
    let tmp = scratch();
    let base_dir = tmp.path().join("base");
    fs::create_dir(&base_dir).unwrap();
    let n = debian_like(&base_dir);
    assert!(n > 3000, "{n} entries");
    let store = Store::in_memory();
    let base = store.import(LayerInput::Dir(&base_dir), &opts(EPOCH as u64).tag("base")).unwrap();
    let c = base.unpack(tmp.path().join("c")).unwrap();
    let r = c.rootfs();
    // make_corpus.sh's third layer: deletions, edits, a metadata change, a symlink, a hard link.
    let mut gone = 0;
    for dir in ["usr/share/doc", "usr/share/locale"] {
        for e in fs::read_dir(r.join(dir)).unwrap() {
            let e = e.unwrap();
            if dir.ends_with("doc") || e.file_name().len() == 2 {
                fs::remove_dir_all(e.path()).unwrap();
                gone += 1;
            }
        }
    }
    for p in ["usr/lib/python3.11/email", "usr/lib/python3.11/unittest", "usr/share/perl/5.36/unicore/To"] {
        fs::remove_dir_all(r.join(p)).unwrap();
        gone += 1;
    }
    for p in ["usr/bin/pinky", "usr/bin/users"] {
        fs::remove_file(r.join(p)).unwrap();
        gone += 1;
    }
    let append = |p: &str, line: &str| {
        let mut s = fs::read_to_string(r.join(p)).unwrap();
        s.push_str(line);
        fs::write(r.join(p), s).unwrap();
    };
    append("etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n");
    append("etc/group", "app:x:1000:\n");
    fs::create_dir(r.join("home/app")).unwrap();
    chown(&r.join("home/app"), 1000, 1000);
    fs::write(r.join("etc/motd"), "changed\n").unwrap();
    let mut blob = fs::read(r.join("opt/data/blob.bin")).unwrap();
    blob[4096] = 0xff;
    fs::write(r.join("opt/data/blob.bin"), &blob).unwrap();
    chmod(&r.join("etc/hostname"), 0o600);
    symlink("python3.11", r.join("usr/bin/python3")).unwrap();
    fs::hard_link(r.join("usr/bin/python3.11"), r.join("usr/local/bin/py")).unwrap();
    // `find -newermt @EPOCH -exec touch -h -d @(EPOCH+1d)`: what changed gets a new mtime.
    for (p, e) in Tree::capture(&r).unwrap().entries {
        if e.mtime.0 > EPOCH || (e.mtime.0 == EPOCH && e.mtime.1 > 0) {
            set_mtime(&r.join(p), EPOCH + 86_400, 0);
        }
    }

    let img = check_law(&store, &c, &tmp.path().join("out"), "debian-like");
    // The commit carries what changed, not the tree: one whiteout per deleted top.
    let entries = crate::fixture::layer_entries(&store, &img.layers()[1]);
    let whiteouts = entries.iter().filter(|e| e.path.rsplit('/').next().unwrap().starts_with(".wh.")).count();
    assert_eq!(whiteouts, gone);
    assert_eq!(gone, 150 + 60 + 3 + 2);
    assert!(entries.len() < whiteouts + 40, "{} entries in the layer", entries.len());
}

#[test]
fn the_law_on_a_multi_layer_base_built_from_tars() {
    // A base of two layers written by hand: the second whites out a file and a directory
    // of the first, hard links to another file of it, and adds a symlink and a device.
    use crate::fixture::{E, layer_tar};
    let l1 = layer_tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/a", b"a\n", 0o644, 0),
        E::File("etc/b", b"b\n", 0o600, 1000),
        E::Dir("srv/", 0o750),
        E::File("srv/data", b"data\n", 0o644, 33),
        E::Dir("srv/sub/", 0o755),
        E::File("srv/sub/x", b"x\n", 0o644, 0),
    ]);
    let l2 = layer_tar(&[
        E::Whiteout("etc/a"),
        E::Link("etc/b.hl", "etc/b"),
        E::Symlink("etc/current", "b"),
        E::Dir("dev/", 0o755),
        E::Char("dev/null", 1, 3, 0o666),
        E::Whiteout("srv/sub"),
    ]);
    let tmp = scratch();
    let store = Store::in_memory();
    let base = crate::fixture::import_tar(&store, &l1, "l1", 1_700_000_000);
    let base = base.append(LayerInput::Tar(&mut &l2[..]), &opts(1_700_000_001).tag("l2")).unwrap();
    let c = base.unpack(tmp.path().join("c")).unwrap();
    let r = c.rootfs();
    assert!(!r.join("etc/a").exists() && !r.join("srv/sub").exists());
    assert_eq!(fs::metadata(r.join("etc/b")).unwrap().nlink(), 2);
    fs::remove_file(r.join("etc/b")).unwrap(); // the link made in layer 2 survives
    fs::write(r.join("etc/a"), "back\n").unwrap(); // re-create a whited-out path
    fs::create_dir(r.join("srv/sub")).unwrap(); // and a whited-out directory
    fs::remove_file(r.join("etc/current")).unwrap();
    symlink("b.hl", r.join("etc/current")).unwrap();
    chown(&r.join("dev/null"), 5, 5);
    let img = check_law(&store, &c, &tmp.path().join("out"), "multi-layer base");
    assert_eq!(img.layers().len(), 3);
}
