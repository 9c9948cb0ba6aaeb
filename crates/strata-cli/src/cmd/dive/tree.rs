//! The file tree the explorer shows: the tree of the first `n + 1` layers, replayed from
//! what each layer changes ([`strata_layer::MergedTree::layer_changes`]: the union rules
//! already ran there), with each path marked against a lower tree, as dive marks it.

use std::collections::{BTreeMap, HashSet};

use strata_layer::{ChangeKind, Changes, EntryKind, EntryMeta};

/// How a path differs from the tree it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    Unchanged,
    Added,
    Modified,
    Removed,
}

impl Mark {
    /// The character shown before the path, so that marks read without colours.
    pub fn symbol(self) -> char {
        match self {
            Mark::Unchanged => ' ',
            Mark::Added => '+',
            Mark::Modified => '~',
            Mark::Removed => '-',
        }
    }

    /// The place of this mark's switch in [`super::view::TreeView::shown`].
    pub fn index(self) -> usize {
        match self {
            Mark::Added => 0,
            Mark::Removed => 1,
            Mark::Modified => 2,
            Mark::Unchanged => 3,
        }
    }
}

/// What the tree shows of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// `ls -l`'s type letter: `-`, `d`, `l`, `c`, `b`, `p`.
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// A symlink's target.
    pub link: Option<String>,
}

impl Meta {
    fn of(m: &EntryMeta) -> Meta {
        let (kind, link) = match &m.kind {
            EntryKind::Dir => ('d', None),
            EntryKind::Symlink { target } => ('l', Some(target.display().to_string())),
            EntryKind::CharDevice { .. } => ('c', None),
            EntryKind::BlockDevice { .. } => ('b', None),
            EntryKind::Fifo => ('p', None),
            _ => ('-', None),
        };
        Meta { kind, mode: m.mode, uid: m.uid, gid: m.gid, size: m.size, link }
    }

    /// A directory no layer declared (a missing parent): as the merged view shows it.
    fn implicit_dir() -> Meta {
        Meta { kind: 'd', mode: 0o755, uid: 0, gid: 0, size: 0, link: None }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == 'd'
    }

    /// `drwxr-xr-x`, with setuid, setgid and sticky bits as `ls` shows them.
    pub fn mode_string(&self) -> String {
        let m = self.mode;
        let mut s = String::with_capacity(10);
        s.push(self.kind);
        for (shift, special, lower, upper) in [(6, 0o4000, 's', 'S'), (3, 0o2000, 's', 'S'), (0, 0o1000, 't', 'T')] {
            let bits = (m >> shift) & 7;
            s.push(if bits & 4 != 0 { 'r' } else { '-' });
            s.push(if bits & 2 != 0 { 'w' } else { '-' });
            s.push(match (bits & 1 != 0, m & special != 0) {
                (true, true) => lower,
                (false, true) => upper,
                (true, false) => 'x',
                (false, false) => '-',
            });
        }
        s
    }
}

/// A tree: metadata by path (relative, `/`-separated), in path order.
pub type Paths = BTreeMap<String, Meta>;

/// The tree of layers `0..=upto`, replayed from their changes.
pub fn replay(changes: &[Changes], upto: usize) -> Paths {
    let mut t = Paths::new();
    for layer in changes.iter().take(upto.saturating_add(1)) {
        for c in layer.iter() {
            let path = c.path.to_string_lossy().into_owned();
            match (&c.kind, &c.meta) {
                (ChangeKind::Deleted, _) | (_, None) => remove_subtree(&mut t, &path),
                (_, Some(m)) => {
                    let meta = Meta::of(m);
                    // A directory replaced by something else takes its subtree along.
                    if !meta.is_dir() && t.get(&path).is_some_and(Meta::is_dir) {
                        remove_subtree(&mut t, &path);
                    }
                    ensure_parents(&mut t, &path);
                    t.insert(path, meta);
                }
            }
        }
    }
    t
}

fn remove_subtree(t: &mut Paths, path: &str) {
    t.remove(path);
    let prefix = format!("{path}/");
    let under: Vec<String> =
        t.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).map(|(k, _)| k.clone()).collect();
    for k in under {
        t.remove(&k);
    }
}

fn ensure_parents(t: &mut Paths, path: &str) {
    let mut end = path.len();
    while let Some(i) = path[..end].rfind('/') {
        let parent = &path[..i];
        if t.contains_key(parent) {
            return;
        }
        t.insert(parent.to_owned(), Meta::implicit_dir());
        end = i;
    }
}

/// The paths layers `from..=to` write (added or modified), as changes name them.
fn written(changes: &[Changes], from: usize, to: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    for layer in changes.iter().take(to.saturating_add(1)).skip(from) {
        for c in layer.iter().filter(|c| c.kind != ChangeKind::Deleted) {
            out.insert(c.path.to_string_lossy().into_owned());
        }
    }
    out
}

/// One path of a [`FileTree`].
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub path: String,
    pub meta: Meta,
    pub mark: Mark,
    /// A directory marked modified only for what changed inside it: as a path of its
    /// own it is unchanged (what the filters go by).
    pub inherited: bool,
    /// A regular file's size; a directory's: its entries' sizes added up.
    pub size: u64,
    pub children: Vec<usize>,
}

/// The tree of layer `top` (layers `0..=top`) with paths marked against the tree of
/// layers `0..=bottom` (`None`: nothing), removed paths included. Node 0 is the root.
#[derive(Debug, Clone)]
pub struct FileTree {
    pub nodes: Vec<Node>,
}

impl FileTree {
    /// The tree to show for layer `top`: compared with the layer below it (the layer's
    /// own changes), or, `aggregated`, with the base layer (everything the layers above
    /// the base changed up to `top`), as dive's two compare modes.
    pub fn at(changes: &[Changes], top: usize, aggregated: bool) -> FileTree {
        let bottom = match (top, aggregated) {
            (0, _) => None,
            (_, true) => Some(0),
            (t, false) => Some(t - 1),
        };
        let upper = replay(changes, top);
        let lower = bottom.map(|b| replay(changes, b)).unwrap_or_default();
        let touched = written(changes, bottom.map_or(0, |b| b + 1), top);
        FileTree::compare(&lower, &upper, &touched)
    }

    /// `upper` with each path marked against `lower`; paths of both that `touched`
    /// names are modified.
    pub fn compare(lower: &Paths, upper: &Paths, touched: &HashSet<String>) -> FileTree {
        let mut marked: BTreeMap<&str, (&Meta, Mark)> = BTreeMap::new();
        for (p, m) in upper {
            let mark = match lower.get(p) {
                None => Mark::Added,
                Some(_) if touched.contains(p) => Mark::Modified,
                Some(_) => Mark::Unchanged,
            };
            marked.insert(p, (m, mark));
        }
        for (p, m) in lower {
            if !upper.contains_key(p) {
                marked.insert(p, (m, Mark::Removed));
            }
        }
        let root = Node {
            name: String::new(),
            path: String::new(),
            meta: Meta::implicit_dir(),
            mark: Mark::Unchanged,
            inherited: false,
            size: 0,
            children: Vec::new(),
        };
        let mut nodes = vec![root];
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        // Path order puts a directory before its subtree, so parents exist first.
        for (p, (m, mark)) in &marked {
            let (parent, name) = match p.rfind('/') {
                Some(i) => (index.get(&p[..i]).copied().unwrap_or(0), &p[i + 1..]),
                None => (0, *p),
            };
            let i = nodes.len();
            nodes.push(Node {
                name: name.to_owned(),
                path: (*p).to_owned(),
                meta: (*m).clone(),
                mark: *mark,
                inherited: false,
                size: if m.is_dir() { 0 } else { m.size },
                children: Vec::new(),
            });
            nodes[parent].children.push(i);
            index.insert(p, i);
        }
        // Children come after their parent: going backwards, a directory sees its
        // subtree done. A directory with changes inside is modified (as dive marks it);
        // its size counts what is inside on its side (removed or not).
        for i in (1..nodes.len()).rev() {
            let (mut size, mut changed) = (0u64, false);
            for &c in &nodes[i].children {
                let child = &nodes[c];
                changed |= child.mark != Mark::Unchanged;
                if (child.mark == Mark::Removed) == (nodes[i].mark == Mark::Removed) {
                    size = size.saturating_add(child.size);
                }
            }
            let n = &mut nodes[i];
            if n.meta.is_dir() {
                n.size = size;
                if changed && n.mark == Mark::Unchanged {
                    n.mark = Mark::Modified;
                    n.inherited = true;
                }
            }
        }
        FileTree { nodes }
    }

    /// The node at `path`, if the tree has it.
    #[cfg(test)]
    pub fn find(&self, path: &str) -> Option<usize> {
        let mut at = 0;
        if path.is_empty() {
            return Some(0);
        }
        for part in path.split('/') {
            at = *self.nodes[at].children.iter().find(|&&c| self.nodes[c].name == part)?;
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_ls_shows_them() {
        let m = |kind, mode| Meta { kind, mode, uid: 0, gid: 0, size: 0, link: None }.mode_string();
        assert_eq!(m('d', 0o755), "drwxr-xr-x");
        assert_eq!(m('-', 0o4755), "-rwsr-xr-x");
        assert_eq!(m('-', 0o2644), "-rw-r-Sr--");
        assert_eq!(m('d', 0o1777), "drwxrwxrwt");
        assert_eq!(m('l', 0o777), "lrwxrwxrwx");
    }

    #[test]
    fn a_directory_replaced_by_a_file_takes_its_subtree() {
        let c = crate::cmd::dive::view::tests::changes(&[&[("d/", b""), ("d/x", b"x")], &[("d", b"file")]]);
        let t = replay(&c, 1);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["d"]);
        assert_eq!(t["d"].kind, '-');
        // Missing parents are implied.
        let c = crate::cmd::dive::view::tests::changes(&[&[("a/b/c", b"c")]]);
        assert_eq!(replay(&c, 0).keys().collect::<Vec<_>>(), ["a", "a/b", "a/b/c"]);
    }
}
