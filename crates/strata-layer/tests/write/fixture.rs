//! Trees described in code: build them on disk, move a built tree to another description
//! in place (keeping inodes of what did not change), and compute the changes a differ
//! must find between two descriptions.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};
use strata_layer::ChangeKind;

/// Metadata every node has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, u32),
}

/// One entry of a described tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File {
        data: Vec<u8>,
        attrs: Attrs,
        xattr: Option<Vec<u8>>,
    },
    Dir {
        attrs: Attrs,
    },
    Symlink {
        target: String,
        attrs: Attrs,
    },
    Fifo {
        attrs: Attrs,
    },
    /// A hard link to the regular file at the given path (its metadata is the file's).
    Link {
        to: String,
    },
}

/// Kind, attrs, size, link target, xattr, link count: what `lstat` (and friends) show.
pub type StatView = (u8, Attrs, usize, String, Option<Vec<u8>>, usize);

/// A described tree: path (relative, `/`-separated) -> node. The root is implicit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec(pub BTreeMap<String, Node>);

pub fn attrs(mode: u32, uid: u32, mtime: i64) -> Attrs {
    Attrs { mode, uid, gid: uid, mtime: (mtime, 0) }
}

pub fn file(data: &[u8], mode: u32, mtime: i64) -> Node {
    Node::File { data: data.to_vec(), attrs: attrs(mode, 0, mtime), xattr: None }
}

pub fn dir(mode: u32, mtime: i64) -> Node {
    Node::Dir { attrs: attrs(mode, 0, mtime) }
}

fn set_mtime(p: &Path, (sec, nsec): (i64, u32)) {
    let t = Timespec { tv_sec: sec, tv_nsec: i64::from(nsec) };
    rustix::fs::utimensat(CWD, p, &Timestamps { last_access: t, last_modification: t }, AtFlags::SYMLINK_NOFOLLOW)
        .unwrap_or_else(|e| panic!("utimensat {}: {e}", p.display()));
}

fn kind_of(n: &Node) -> u8 {
    match n {
        Node::File { .. } | Node::Link { .. } => 0,
        Node::Dir { .. } => 1,
        Node::Symlink { .. } => 2,
        Node::Fifo { .. } => 3,
    }
}

impl Spec {
    /// The node a path resolves to (a link resolves to its file).
    pub fn resolve<'a>(&'a self, p: &str) -> Option<(&'a str, &'a Node)> {
        match self.0.get_key_value(p)? {
            (_, Node::Link { to }) => self.0.get_key_value(to.as_str()).map(|(k, v)| (k.as_str(), v)),
            (k, v) => Some((k.as_str(), v)),
        }
    }

    /// Members of the hard link group of `p` (a file and the links to it).
    pub fn group(&self, p: &str) -> Vec<String> {
        let Some((file, Node::File { .. })) = self.resolve(p) else { return vec![p.to_string()] };
        let mut g: Vec<String> = self
            .0
            .iter()
            .filter(|(k, n)| k.as_str() == file || matches!(n, Node::Link { to } if to == file))
            .map(|(k, _)| k.clone())
            .collect();
        g.sort();
        g
    }

    /// What `lstat` would show, for comparing two descriptions: kind, attrs, size,
    /// link target, xattr, and link count for files.
    pub fn stat_view(&self, p: &str) -> Option<StatView> {
        let (_, n) = self.resolve(p)?;
        let nlink = self.group(p).len();
        Some(match n {
            Node::File { data, attrs, xattr } => (0, attrs.clone(), data.len(), String::new(), xattr.clone(), nlink),
            Node::Dir { attrs } => (1, attrs.clone(), 0, String::new(), None, 0),
            Node::Symlink { target, attrs } => (2, attrs.clone(), 0, target.clone(), None, 0),
            Node::Fifo { attrs } => (3, attrs.clone(), 0, String::new(), None, 0),
            Node::Link { .. } => return None,
        })
    }

    /// Create the tree under `root` (which must exist and be empty).
    pub fn build(&self, root: &Path) {
        for (p, n) in &self.0 {
            if !matches!(n, Node::Link { .. }) {
                create(&root.join(p), n);
            }
        }
        for (p, n) in &self.0 {
            if let Node::Link { to } = n {
                fs::hard_link(root.join(to), root.join(p)).unwrap();
            }
        }
        self.set_times(root);
    }

    /// Set every mtime as described, deepest first so that setting a child's does not
    /// move its directory's; the root gets a fixed time.
    fn set_times(&self, root: &Path) {
        self.set_times_where(root, |_, _| true);
    }

    /// Set the mtimes that are not already as described (so that entries nobody touched
    /// keep their ctime).
    fn set_changed_times(&self, root: &Path) {
        self.set_times_where(root, |p, (sec, nsec)| {
            let md = fs::symlink_metadata(p).unwrap();
            (md.mtime(), md.mtime_nsec()) != (sec, i64::from(nsec))
        });
    }

    fn set_times_where(&self, root: &Path, when: impl Fn(&Path, (i64, u32)) -> bool) {
        for (p, n) in self.0.iter().rev() {
            if let Node::File { attrs, .. } | Node::Dir { attrs } | Node::Symlink { attrs, .. } | Node::Fifo { attrs } =
                n
                && when(&root.join(p), attrs.mtime)
            {
                set_mtime(&root.join(p), attrs.mtime);
            }
        }
        if when(root, (1_000_000, 0)) {
            set_mtime(root, (1_000_000, 0));
        }
    }

    /// Turn the tree under `root`, built from `self`, into `to` in place: untouched
    /// entries keep their inodes, content is rewritten in place, changed types are
    /// removed and created anew. Mtimes end up as `to` describes.
    pub fn sync(&self, to: &Spec, root: &Path) {
        // Files that will be removed: links to them go too (they would keep the old inode).
        let doomed: BTreeSet<&String> = self
            .0
            .iter()
            .filter(|(p, n)| {
                matches!(n, Node::File { .. })
                    && (!matches!(to.0.get(*p), Some(Node::File { .. })) || self.group(p) != to.group(p))
            })
            .map(|(p, _)| p)
            .collect();
        // Remove what goes away or changes type (deepest first).
        for (p, n) in self.0.iter().rev() {
            let full = root.join(p);
            let keep = match to.0.get(p) {
                None => false,
                Some(m) => kind_of(m) == kind_of(n) && matches!(n, Node::Link { .. }) == matches!(m, Node::Link { .. }),
            };
            let link_target_changed =
                matches!((n, to.0.get(p)), (Node::Link { to: a }, Some(Node::Link { to: b })) if a != b);
            let symlink_changed = matches!((n, to.0.get(p)), (Node::Symlink { target: a, .. }, Some(Node::Symlink { target: b, .. })) if a != b);
            // A file whose group changes is re-created (a link cannot be "moved").
            let regroup = matches!(n, Node::File { .. }) && self.group(p) != to.group(p);
            let orphan = matches!(n, Node::Link { to } if doomed.contains(to));
            if (!keep || link_target_changed || symlink_changed || regroup || orphan)
                && fs::symlink_metadata(&full).is_ok()
            {
                if fs::symlink_metadata(&full).unwrap().is_dir() {
                    fs::remove_dir_all(&full).unwrap();
                } else {
                    fs::remove_file(&full).unwrap();
                }
            }
        }
        // Create or update.
        for (p, n) in &to.0 {
            let full = root.join(p);
            if matches!(n, Node::Link { .. }) {
                continue;
            }
            if fs::symlink_metadata(&full).is_err() {
                create(&full, n);
                continue;
            }
            if self.0.get(p) == Some(n) {
                continue;
            }
            match n {
                Node::File { data, attrs, xattr } => {
                    let old_data = match self.resolve(p) {
                        Some((_, Node::File { data, .. })) => Some(data),
                        _ => None,
                    };
                    if old_data != Some(data) {
                        let mut f = fs::OpenOptions::new().write(true).truncate(true).open(&full).unwrap();
                        f.write_all(data).unwrap();
                    }
                    apply_attrs(&full, attrs, false);
                    match xattr {
                        Some(v) => rustix::fs::lsetxattr(&full, "user.test", v, XattrFlags::empty()).unwrap(),
                        None => {
                            let _ = rustix::fs::lremovexattr(&full, "user.test");
                        }
                    }
                }
                Node::Dir { attrs } | Node::Fifo { attrs } => apply_attrs(&full, attrs, false),
                Node::Symlink { attrs, .. } => apply_attrs(&full, attrs, true),
                Node::Link { .. } => {}
            }
        }
        for (p, n) in &to.0 {
            if let Node::Link { to: target } = n
                && fs::symlink_metadata(root.join(p)).is_err()
            {
                fs::hard_link(root.join(target), root.join(p)).unwrap();
            }
        }
        to.set_changed_times(root);
    }

    /// The changes a differ must report from `self` to `to` (path -> kind), before the
    /// hard-link-peer rule. `since` semantics are a superset (see the laws).
    pub fn expected(&self, to: &Spec) -> BTreeMap<String, ChangeKind> {
        let mut out = BTreeMap::new();
        let paths: BTreeSet<&String> = self.0.keys().chain(to.0.keys()).collect();
        for p in paths {
            let (a, b) = (self.stat_view(p), to.stat_view(p));
            match (a, b) {
                (Some(_), None) => {
                    // Only the top-most deletion, and none below a path whose type
                    // changed (the new entry replaces the old subtree).
                    let covered = ancestors(p).any(|q| {
                        let (qa, qb) = (self.0.get(q), to.0.get(q));
                        qb.is_none() || qa.map(kind_of) != qb.map(kind_of)
                    });
                    if !covered {
                        out.insert(p.clone(), ChangeKind::Deleted);
                    }
                }
                (None, Some(_)) => {
                    out.insert(p.clone(), ChangeKind::Added);
                }
                (Some(x), Some(y)) => {
                    if x != y {
                        out.insert(p.clone(), ChangeKind::Modified);
                    }
                }
                (None, None) => {}
            }
        }
        // Hard link peers: writing one member writes the group.
        let written: Vec<String> =
            out.iter().filter(|(_, k)| **k != ChangeKind::Deleted).map(|(p, _)| p.clone()).collect();
        for p in written {
            if to.group(&p).len() > 1 {
                for m in to.group(&p) {
                    out.entry(m).or_insert(ChangeKind::Modified);
                }
            }
        }
        out
    }
}

/// Proper ancestors of a `/`-separated path, nearest first.
pub fn ancestors(p: &str) -> impl Iterator<Item = &str> {
    let mut cur = p;
    std::iter::from_fn(move || {
        let i = cur.rfind('/')?;
        cur = &cur[..i];
        Some(cur)
    })
}

fn apply_attrs(p: &Path, a: &Attrs, is_symlink: bool) {
    lchown(p, Some(a.uid), Some(a.gid)).unwrap();
    if !is_symlink {
        fs::set_permissions(p, fs::Permissions::from_mode(a.mode)).unwrap();
    }
}

fn create(p: &Path, n: &Node) {
    match n {
        Node::File { data, attrs, xattr } => {
            fs::write(p, data).unwrap();
            apply_attrs(p, attrs, false);
            if let Some(v) = xattr {
                rustix::fs::lsetxattr(p, "user.test", v, XattrFlags::empty()).unwrap();
            }
        }
        Node::Dir { attrs } => {
            fs::create_dir(p).unwrap();
            apply_attrs(p, attrs, false);
        }
        Node::Symlink { target, attrs } => {
            symlink(target, p).unwrap();
            apply_attrs(p, attrs, true);
        }
        Node::Fifo { attrs } => {
            rustix::fs::mknodat(CWD, p, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
            apply_attrs(p, attrs, false);
        }
        Node::Link { .. } => unreachable!("links are made after files"),
    }
}

/// A fresh directory under the test scratch area.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("strata-write-").tempdir().unwrap()
}

/// Make a directory `name` in `parent` and return its path.
pub fn subdir(parent: &Path, name: &str) -> PathBuf {
    let p = parent.join(name);
    fs::create_dir_all(&p).unwrap();
    p
}

// ---- generators ----

const NAMES: [&str; 5] = ["a", "b", "c.txt", "d-e", "f"];

fn arb_attrs(dir: bool) -> impl Strategy<Value = Attrs> {
    let modes: Vec<u32> = if dir { vec![0o755, 0o700, 0o1777] } else { vec![0o644, 0o600, 0o755, 0o4755] };
    (
        prop::sample::select(modes),
        prop::sample::select(vec![0u32, 1000, 65534]),
        1_500_000_000i64..1_500_000_100,
        prop::sample::select(vec![0u32, 0, 250_000_000]),
    )
        .prop_map(|(mode, uid, sec, nsec)| Attrs { mode, uid, gid: uid, mtime: (sec, nsec) })
}

/// A node other than a link.
pub fn arb_node() -> impl Strategy<Value = Node> {
    prop_oneof![
        4 => (prop::collection::vec(any::<u8>(), 0..600), arb_attrs(false), prop::option::weighted(0.2, "[a-z]{1,8}"))
            .prop_map(|(data, attrs, x)| Node::File { data, attrs, xattr: x.map(String::into_bytes) }),
        3 => arb_attrs(true).prop_map(|attrs| Node::Dir { attrs }),
        1 => (prop::sample::select(vec!["a", "../b", "/etc/passwd", "c.txt/x"]), arb_attrs(false))
            .prop_map(|(t, attrs)| Node::Symlink { target: t.to_string(), attrs: Attrs { mode: 0o777, ..attrs } }),
        1 => arb_attrs(false).prop_map(|attrs| Node::Fifo { attrs }),
    ]
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAMES.to_vec()), 1..=3).prop_map(|v| v.join("/"))
}

/// Make a list of (path, node) into a valid tree: parents must be directories (missing
/// ones are created), links point at regular files.
fn fix(mut items: Vec<(String, Node)>, links: Vec<(String, usize)>) -> Spec {
    let mut spec = Spec::default();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    'outer: for (p, n) in items {
        if spec.0.contains_key(&p) {
            continue;
        }
        for q in ancestors(&p).collect::<Vec<_>>().into_iter().rev() {
            match spec.0.get(q) {
                Some(Node::Dir { .. }) => {}
                Some(_) => continue 'outer,
                None => {
                    spec.0.insert(q.to_string(), dir(0o755, 1_500_000_000));
                }
            }
        }
        spec.0.insert(p, n);
    }
    let files: Vec<String> =
        spec.0.iter().filter(|(_, n)| matches!(n, Node::File { .. })).map(|(p, _)| p.clone()).collect();
    for (p, i) in links {
        if files.is_empty() || spec.0.contains_key(&p) {
            continue;
        }
        let parent_ok = ancestors(&p).all(|q| matches!(spec.0.get(q), Some(Node::Dir { .. })));
        if parent_ok {
            let to = files[i % files.len()].clone();
            spec.0.insert(p, Node::Link { to });
        }
    }
    spec
}

pub fn arb_spec() -> impl Strategy<Value = Spec> {
    (prop::collection::vec((arb_path(), arb_node()), 0..14), prop::collection::vec((arb_path(), any::<usize>()), 0..3))
        .prop_map(|(items, links)| fix(items, links))
}

/// One mutation of a tree.
#[derive(Debug, Clone)]
pub enum Op {
    Delete(usize),
    /// New content, and a new mtime (a content change always moves the mtime here: the
    /// naive differs do not read contents).
    Rewrite(usize, Vec<u8>),
    Chmod(usize, u32),
    Chown(usize, u32),
    Touch(usize, i64),
    Replace(usize, Node),
    Create(String, Node),
    Link(usize, String),
}

pub fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        (any::<usize>()).prop_map(Op::Delete),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(i, d)| Op::Rewrite(i, d)),
        (any::<usize>(), prop::sample::select(vec![0o600u32, 0o640, 0o2755])).prop_map(|(i, m)| Op::Chmod(i, m)),
        (any::<usize>(), prop::sample::select(vec![0u32, 1000, 65534])).prop_map(|(i, u)| Op::Chown(i, u)),
        (any::<usize>(), 1_600_000_000i64..1_600_000_100).prop_map(|(i, t)| Op::Touch(i, t)),
        (any::<usize>(), arb_node()).prop_map(|(i, n)| Op::Replace(i, n)),
        (arb_path(), arb_node()).prop_map(|(p, n)| Op::Create(p, n)),
        (any::<usize>(), arb_path()).prop_map(|(i, p)| Op::Link(i, p)),
    ];
    prop::collection::vec(op, 1..6)
}

fn attrs_mut(n: &mut Node) -> Option<&mut Attrs> {
    match n {
        Node::File { attrs, .. } | Node::Dir { attrs } | Node::Symlink { attrs, .. } | Node::Fifo { attrs } => {
            Some(attrs)
        }
        Node::Link { .. } => None,
    }
}

impl Spec {
    /// Apply mutations (indices pick existing paths), keeping the tree valid.
    pub fn mutate(&self, ops: &[Op]) -> Spec {
        let mut s = self.clone();
        for op in ops {
            let keys: Vec<String> = s.0.keys().cloned().collect();
            let pick = |i: usize| if keys.is_empty() { None } else { Some(keys[i % keys.len()].clone()) };
            match op {
                Op::Delete(i) => {
                    if let Some(p) = pick(*i) {
                        s.remove_subtree(&p);
                    }
                }
                Op::Rewrite(i, data) => {
                    if let Some(p) = pick(*i)
                        && let Some((f, _)) = s.resolve(&p).map(|(f, n)| (f.to_string(), n.clone()))
                        && let Some(Node::File { data: d, attrs, .. }) = s.0.get_mut(&f)
                    {
                        *d = data.clone();
                        attrs.mtime = (attrs.mtime.0 + 1_000_000, attrs.mtime.1);
                    }
                }
                Op::Chmod(i, mode) => {
                    if let Some(p) = pick(*i)
                        && let Some(f) = s.resolve(&p).map(|(f, _)| f.to_string())
                    {
                        match s.0.get_mut(&f) {
                            Some(Node::Dir { attrs }) => attrs.mode = *mode | 0o700,
                            Some(Node::File { attrs, .. } | Node::Fifo { attrs }) => attrs.mode = *mode,
                            _ => {}
                        }
                    }
                }
                Op::Chown(i, uid) => {
                    if let Some(p) = pick(*i)
                        && let Some(f) = s.resolve(&p).map(|(f, _)| f.to_string())
                        && let Some(a) = s.0.get_mut(&f).and_then(attrs_mut)
                    {
                        a.uid = *uid;
                        a.gid = *uid;
                    }
                }
                Op::Touch(i, t) => {
                    if let Some(p) = pick(*i)
                        && let Some(f) = s.resolve(&p).map(|(f, _)| f.to_string())
                        && let Some(a) = s.0.get_mut(&f).and_then(attrs_mut)
                    {
                        a.mtime = (*t, 0);
                    }
                }
                Op::Replace(i, n) => {
                    if let Some(p) = pick(*i) {
                        s.remove_subtree(&p);
                        s.0.insert(p, n.clone());
                    }
                }
                Op::Create(p, n) => {
                    if !s.0.contains_key(p) && ancestors(p).all(|q| matches!(s.0.get(q), Some(Node::Dir { .. }))) {
                        s.0.insert(p.clone(), n.clone());
                    }
                }
                Op::Link(i, p) => {
                    if let Some(src) = pick(*i)
                        && let Some((f, Node::File { .. })) = s.resolve(&src).map(|(f, n)| (f.to_string(), n.clone()))
                        && !s.0.contains_key(p)
                        && ancestors(p).all(|q| matches!(s.0.get(q), Some(Node::Dir { .. })))
                    {
                        s.0.insert(p.clone(), Node::Link { to: f });
                    }
                }
            }
        }
        s
    }

    /// Remove `p` and everything below it; links to removed files are re-pointed at
    /// a surviving member or become files of their own.
    fn remove_subtree(&mut self, p: &str) {
        let prefix = format!("{p}/");
        let gone: Vec<String> = self.0.keys().filter(|k| *k == p || k.starts_with(&prefix)).cloned().collect();
        let mut removed = BTreeMap::new();
        for k in &gone {
            if let Some(n) = self.0.remove(k) {
                removed.insert(k.clone(), n);
            }
        }
        // A removed file whose links survive: the first surviving link becomes the file.
        for (k, n) in &removed {
            if let Node::File { .. } = n {
                let links: Vec<String> = self
                    .0
                    .iter()
                    .filter(|(_, m)| matches!(m, Node::Link { to } if to == k))
                    .map(|(q, _)| q.clone())
                    .collect();
                if let Some((first, rest)) = links.split_first() {
                    self.0.insert(first.clone(), n.clone());
                    for r in rest {
                        self.0.insert(r.clone(), Node::Link { to: first.clone() });
                    }
                }
            }
        }
    }
}
