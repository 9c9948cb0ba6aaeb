//! Differs: what changed, as a list of [`Change`]s, and the layer that carries it.
//!
//! Three sources of change, one result type:
//!
//! - [`trees`]`(lower, upper)`: two directories walked together in tar order (the naive
//!   differ of moby and containerd).
//! - [`overlay`]`(upperdir)`: an overlayfs upper directory; cost grows with the upper
//!   directory only.
//! - [`since`]`(snapshot, root)`: a tree against the [`Snapshot`] taken when it was
//!   unpacked; one `lstat` per entry, and only entries whose metadata moved are read.
//!
//! [`Changes::write_layer`] turns the list into a layer (whiteouts for deletions) with
//! the writer's determinism. See the crate docs for exactly what counts as a change.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd};

use crate::entry::{EntryKind, EntryMeta, tar_order};
use crate::error::{Error, Result};
use crate::path::WHITEOUT_PREFIX;
use crate::scan::{self, FileKind, Stat, Visitor};
use crate::snapshot::{RecordedDevice, RecordedOwner, RecordedOwners, Snapshot};
use crate::write::{LayerInfo, LayerWriter, WriteOptions, check_same};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// New in the upper tree.
    Added,
    /// Present in both, different (or, for hard-link peers, rewritten to keep a link
    /// group whole).
    Modified,
    /// Gone from the upper tree (only the top-most path of a deleted subtree is listed).
    Deleted,
}

impl ChangeKind {
    /// The letter `docker diff` prints: `A`, `C` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path, relative to the root.
    pub path: PathBuf,
    /// What happened.
    pub kind: ChangeKind,
    /// The new metadata (`None` for a deletion). Owners are the intended ones when
    /// ownership was recorded (rootless).
    pub meta: Option<EntryMeta>,
    /// An opaque directory (overlay differ): what lower layers had in it is hidden.
    pub opaque: bool,
    /// Inode and link count of a regular file, to keep hard link groups together.
    inode: Option<((u64, u64), u64)>,
}

impl Change {
    /// A change a layer makes, as the merged fold sees it.
    pub(crate) fn in_layer(path: PathBuf, kind: ChangeKind, meta: Option<EntryMeta>) -> Self {
        Change { path, kind, meta, opaque: false, inode: None }
    }

    fn deleted(path: PathBuf) -> Self {
        Change { path, kind: ChangeKind::Deleted, meta: None, opaque: false, inode: None }
    }

    fn with_meta(kind: ChangeKind, meta: EntryMeta, st: &Stat) -> Self {
        let inode = (st.kind == FileKind::File).then_some((st.id(), st.nlink));
        Change { path: meta.path.clone(), kind, meta: Some(meta), opaque: false, inode }
    }

    /// The path this change is written under: `.wh.<name>` for a deletion.
    fn written_path(&self) -> PathBuf {
        if self.kind != ChangeKind::Deleted {
            return self.path.clone();
        }
        let parent = self.path.parent().unwrap_or(Path::new(""));
        let mut name = WHITEOUT_PREFIX.as_bytes().to_vec();
        name.extend_from_slice(self.path.file_name().map(OsStr::as_bytes).unwrap_or_default());
        parent.join(OsStr::from_bytes(&name))
    }
}

impl fmt::Display for Change {
    /// `docker diff` style: `A /etc/new`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} /{}", self.kind.letter(), self.path.display())
    }
}

/// The changes found by a differ, in the order their layer entries are written; or the
/// changes a layer makes, in the order the merged fold met them
/// ([`crate::MergedTree::layer_changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    items: Vec<Change>,
}

impl Changes {
    /// `items` as they come.
    pub(crate) fn in_order(items: Vec<Change>) -> Self {
        Changes { items }
    }

    fn new(items: Vec<Change>) -> Self {
        let mut keyed: Vec<(PathBuf, Change)> = items.into_iter().map(|c| (c.written_path(), c)).collect();
        keyed.sort_by(|a, b| tar_order(&a.0, &b.0));
        Changes { items: keyed.into_iter().map(|(_, c)| c).collect() }
    }

    /// The changes.
    pub fn as_slice(&self) -> &[Change] {
        &self.items
    }

    /// Iterate over the changes.
    pub fn iter(&self) -> std::slice::Iter<'_, Change> {
        self.items.iter()
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// What `docker diff` lists for these changes: every change, plus `C` for each
    /// directory that holds a change without being added, changed or deleted itself (the
    /// root excepted), as docker's differ marks them; in depth-first order with names
    /// sorted bytewise ([`tar_order`] of the paths), each directory right before what is
    /// in it. Paths are relative to the root.
    ///
    /// Docker's own order depends on its storage driver: overlay2 walks in this order,
    /// the vfs driver lists siblings in no fixed order (parents still first).
    pub fn docker_listing(&self) -> Vec<(ChangeKind, PathBuf)> {
        let listed: HashSet<&Path> = self.items.iter().map(|c| c.path.as_path()).collect();
        let mut out: Vec<(ChangeKind, PathBuf)> = self.items.iter().map(|c| (c.kind, c.path.clone())).collect();
        let mut parents: HashSet<&Path> = HashSet::new();
        for c in &self.items {
            for dir in c.path.ancestors().skip(1) {
                if dir.as_os_str().is_empty() || listed.contains(dir) || !parents.insert(dir) {
                    continue;
                }
                out.push((ChangeKind::Modified, dir.to_path_buf()));
            }
        }
        out.retain(|(_, p)| !p.as_os_str().is_empty());
        out.sort_by(|a, b| tar_order(&a.1, &b.1));
        out
    }

    /// The `docker diff` output: one `A|C|D /path` line for each entry of
    /// [`Changes::docker_listing`].
    pub fn docker_diff(&self) -> String {
        let mut s = String::new();
        for (kind, path) in self.docker_listing() {
            s.push(kind.letter());
            s.push_str(" /");
            s.push_str(&path.to_string_lossy());
            s.push('\n');
        }
        s
    }

    /// Write the layer carrying these changes, reading contents from `root` (the upper
    /// tree, the overlay upper dir, or the snapshotted root): added and modified entries
    /// as themselves (directories as headers only), deletions as `.wh.` whiteouts, opaque
    /// directories followed by `.wh..wh..opq`. Files of one hard link group are written
    /// once, by the first path in tar order, and the others as links to it.
    ///
    /// A file whose size or inode is not what the differ saw gives
    /// [`Error::SourceChanged`]: pause the container (or retry) for a consistent commit.
    pub fn write_layer<W: Write>(&self, root: &Path, sink: W, opts: &WriteOptions) -> Result<LayerInfo> {
        let root_fd = scan::open_root(root)?;
        let mut w = LayerWriter::new(sink, opts)?;
        let mut first_of: HashMap<(u64, u64), PathBuf> = HashMap::new();
        for c in &self.items {
            let Some(meta) = &c.meta else {
                w.append_whiteout(&c.path)?;
                continue;
            };
            if c.path.as_os_str().is_empty() {
                // The root's own metadata is not part of a diff; only its opaqueness is.
                if c.opaque {
                    w.append_opaque(&c.path)?;
                }
                continue;
            }
            if let (EntryKind::File, Some((id, nlink))) = (&meta.kind, c.inode)
                && nlink > 1
            {
                if let Some(first) = first_of.get(&id) {
                    let mut link = meta.clone();
                    link.kind = EntryKind::HardLink { target: first.clone() };
                    link.size = 0;
                    w.append(&link)?;
                    continue;
                }
                first_of.insert(id, c.path.clone());
            }
            if meta.kind == EntryKind::File && meta.size > 0 {
                let mut f = scan::open_file_beneath(root_fd.as_fd(), &c.path)?;
                let now = scan::fstat(f.as_fd()).map_err(|e| scan::io_err("stat", &c.path, e))?;
                if let Some((id, _)) = c.inode {
                    let seen = Stat { size: meta.size, ino: id.1, dev: id.0, ..now };
                    check_same(&c.path, &seen, &now)?;
                } else if now.size != meta.size {
                    return Err(Error::SourceChanged {
                        path: c.path.clone(),
                        reason: format!("size went from {} to {} bytes", meta.size, now.size),
                    });
                }
                w.append_file(meta, &mut f)?;
            } else {
                w.append(meta)?;
            }
            if c.opaque {
                w.append_opaque(&c.path)?;
            }
        }
        Ok(w.finish()?.0)
    }
}

impl<'a> IntoIterator for &'a Changes {
    type Item = &'a Change;
    type IntoIter = std::slice::Iter<'a, Change>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Options of the differs. The defaults suit a root commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffOptions {
    /// Ownership a rootless unpack recorded instead of applying (path -> intended owner
    /// and device). [`trees`] applies it by path to both trees, [`overlay`] to the upper
    /// dir; [`since`] uses the snapshot's own record (and this one for paths it lacks),
    /// and only while the inode is the one snapshotted.
    pub recorded_owners: RecordedOwners,
    /// [`trees`] only: when a regular file differs from its lower twin in mtime alone,
    /// compare contents and count it unchanged when they are equal. Off by default,
    /// because then the layer would not reproduce the upper tree's mtimes.
    pub ignore_mtime_if_content_equal: bool,
    /// [`overlay`] only: the lower directories, top-most first, used to tell an added
    /// path (`A`) from a modified one (`C`). Without them every entry is "added". They
    /// are only `lstat`-ed, once per upper entry.
    pub overlay_lowers: Vec<PathBuf>,
}

/// Builders.
impl DiffOptions {
    /// Use this recorded ownership.
    pub fn recorded_owners(mut self, r: RecordedOwners) -> Self {
        self.recorded_owners = r;
        self
    }
    /// See [`DiffOptions::ignore_mtime_if_content_equal`].
    pub fn ignore_mtime_if_content_equal(mut self, on: bool) -> Self {
        self.ignore_mtime_if_content_equal = on;
        self
    }
    /// See [`DiffOptions::overlay_lowers`].
    pub fn overlay_lowers(mut self, lowers: Vec<PathBuf>) -> Self {
        self.overlay_lowers = lowers;
        self
    }
}

/// Put recorded ownership (and device type) in place of what is on disk.
fn apply_recorded(meta: &mut EntryMeta, rec: Option<&RecordedOwner>) {
    let Some(r) = rec else { return };
    meta.uid = r.uid;
    meta.gid = r.gid;
    if meta.kind == EntryKind::File && meta.size == 0 {
        match r.device {
            Some(RecordedDevice::Char { major, minor }) => meta.kind = EntryKind::CharDevice { major, minor },
            Some(RecordedDevice::Block { major, minor }) => meta.kind = EntryKind::BlockDevice { major, minor },
            None => {}
        }
    }
}

/// What all differs collect: the changes and the hard link groups of the new tree.
struct Collector<'a> {
    /// The new tree (upper, upper dir, or snapshotted root).
    root: &'a Path,
    out: Vec<Change>,
    /// Regular files with more than one link in the new tree, by inode.
    links: HashMap<(u64, u64), Vec<(PathBuf, Stat)>>,
}

impl<'a> Collector<'a> {
    fn new(root: &'a Path) -> Self {
        Collector { root, out: Vec::new(), links: HashMap::new() }
    }

    fn track_link(&mut self, rel: &Path, st: &Stat) {
        if st.kind == FileKind::File && st.nlink > 1 {
            self.links.entry(st.id()).or_default().push((rel.to_path_buf(), *st));
        }
    }

    /// Keep hard link groups whole: writing any member of a group replaces that path
    /// with a new inode when applied, cutting it off from members in lower layers. So
    /// when one member is written, every member in the new tree is written (the first as
    /// the file, the rest as links to it), as `Modified` if it was otherwise unchanged.
    fn finish(mut self, recorded: impl Fn(&Path, &Stat) -> Option<RecordedOwner>) -> Result<Changes> {
        let written: HashSet<PathBuf> = self.out.iter().filter(|c| c.meta.is_some()).map(|c| c.path.clone()).collect();
        let mut groups: Vec<(u64, u64)> =
            self.out.iter().filter_map(|c| c.inode.filter(|(_, n)| *n > 1).map(|(id, _)| id)).collect();
        groups.sort_unstable();
        groups.dedup();
        for id in groups {
            let Some(members) = self.links.get(&id) else { continue };
            for (p, st) in members {
                if written.contains(p) {
                    continue;
                }
                let mut meta = scan::full_meta(self.root, None, p, st)?;
                apply_recorded(&mut meta, recorded(p, st).as_ref());
                self.out.push(Change::with_meta(ChangeKind::Modified, meta, st));
            }
        }
        Ok(Changes::new(self.out))
    }
}

// ---------------------------------------------------------------------------------------
// trees

/// Compare two directory trees, `lower` (the base) and `upper` (the changed copy),
/// walked together in tar order.
///
/// A path only in `lower` is deleted (a deleted directory is listed once, not its
/// contents); only in `upper`, added (a directory with all its contents). A path in both
/// is modified when its type differs, or its mode, owner, mtime (ns), xattrs, size and
/// link count (files), link target (symlinks) or device number differ. File contents are not
/// read: a file with the same size and mtime is taken as unchanged (moby's naive differ
/// does the same; it is what makes this differ a metadata walk). See
/// [`DiffOptions::ignore_mtime_if_content_equal`] for the one case where contents are
/// read. The root's own metadata is not compared. Sockets are ignored. A directory with
/// another file system mounted on it in `upper` is left out (unchanged), and mount points
/// are never descended into.
pub fn trees(lower: &Path, upper: &Path, opts: &DiffOptions) -> Result<Changes> {
    let lfd = scan::open_root(lower)?;
    let ufd = scan::open_root(upper)?;
    let mut t = Trees { lower, opts, c: Collector::new(upper) };
    t.dirs(lfd.as_fd(), ufd.as_fd(), &mut PathBuf::new())?;
    let rec = &opts.recorded_owners;
    t.c.finish(|p, _| rec.get(p).copied())
}

struct Trees<'a> {
    lower: &'a Path,
    opts: &'a DiffOptions,
    c: Collector<'a>,
}

impl Trees<'_> {
    fn meta(&self, root: &Path, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<EntryMeta> {
        let mut m = scan::full_meta(root, Some((dir, name)), rel, st)?;
        apply_recorded(&mut m, self.opts.recorded_owners.get(rel));
        Ok(m)
    }

    fn dirs(&mut self, l: BorrowedFd<'_>, u: BorrowedFd<'_>, rel: &mut PathBuf) -> Result<()> {
        let ln = scan::list_sorted(l).map_err(|e| scan::io_err("read directory", &self.lower.join(&*rel), e))?;
        let un = scan::list_sorted(u).map_err(|e| scan::io_err("read directory", rel, e))?;
        let (mut i, mut j) = (0, 0);
        loop {
            let (a, b) = (ln.get(i), un.get(j));
            let ord = match (a, b) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => a.as_bytes().cmp(b.as_bytes()),
            };
            match (ord, a, b) {
                (std::cmp::Ordering::Less, Some(name), _) => {
                    i += 1;
                    rel.push(name);
                    let r = self.lower_only(l, name, rel);
                    rel.pop();
                    r?;
                }
                (std::cmp::Ordering::Greater, _, Some(name)) => {
                    j += 1;
                    rel.push(name);
                    let r = self.upper_only(u, name, rel);
                    rel.pop();
                    r?;
                }
                (_, Some(name), Some(_)) => {
                    i += 1;
                    j += 1;
                    rel.push(name);
                    let r = self.both(l, u, name, rel);
                    rel.pop();
                    r?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn lower_only(&mut self, l: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<()> {
        match scan::stat_at(l, name) {
            Ok(st) if st.kind == FileKind::Socket => Ok(()),
            Ok(_) => {
                self.c.out.push(Change::deleted(rel.to_path_buf()));
                Ok(())
            }
            Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(scan::io_err("stat", &self.lower.join(rel), e)),
        }
    }

    fn upper_only(&mut self, u: BorrowedFd<'_>, name: &OsStr, rel: &mut PathBuf) -> Result<()> {
        let st = match scan::stat_at(u, name) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(scan::io_err("stat", rel, e)),
        };
        self.added(u, name, rel, &st)
    }

    /// An entry new in upper, with all its contents.
    fn added(&mut self, u: BorrowedFd<'_>, name: &OsStr, rel: &mut PathBuf, st: &Stat) -> Result<()> {
        if st.kind == FileKind::Socket {
            return Ok(());
        }
        let meta = self.meta(self.c.root, u, name, rel, st)?;
        self.c.track_link(rel, st);
        self.c.out.push(Change::with_meta(ChangeKind::Added, meta, st));
        if st.kind == FileKind::Dir && same_fs(u, st) {
            let sub = scan::open_dir_at(u, name).map_err(|e| scan::io_err("open directory", rel, e))?;
            for child in scan::list_sorted(sub.as_fd()).map_err(|e| scan::io_err("read directory", rel, e))? {
                rel.push(&child);
                let r = match scan::stat_at(sub.as_fd(), &child) {
                    Ok(cst) => self.added(sub.as_fd(), &child, rel, &cst),
                    Err(rustix::io::Errno::NOENT) => Ok(()),
                    Err(e) => Err(scan::io_err("stat", rel, e)),
                };
                rel.pop();
                r?;
            }
        }
        Ok(())
    }

    fn both(&mut self, l: BorrowedFd<'_>, u: BorrowedFd<'_>, name: &OsStr, rel: &mut PathBuf) -> Result<()> {
        let lst = match scan::stat_at(l, name) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return self.upper_only(u, name, rel),
            Err(e) => return Err(scan::io_err("stat", &self.lower.join(&*rel), e)),
        };
        let ust = match scan::stat_at(u, name) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return self.lower_only(l, name, rel),
            Err(e) => return Err(scan::io_err("stat", rel, e)),
        };
        if ust.kind == FileKind::Socket {
            return self.lower_only(l, name, rel);
        }
        if lst.kind == FileKind::Socket {
            return self.added(u, name, rel, &ust);
        }
        if ust.kind == FileKind::Dir && !same_fs(u, &ust) {
            // Something mounted over the upper tree: not part of its changes.
            return Ok(());
        }
        if lst.kind != ust.kind {
            // A new type replaces the old entry (appliers remove what is there, a
            // directory with its contents), so nothing below it needs a whiteout.
            return self.added_as(ChangeKind::Modified, u, name, rel, &ust);
        }
        let umeta = self.meta(self.c.root, u, name, rel, &ust)?;
        let lmeta = self.meta(self.lower, l, name, rel, &lst)?;
        self.c.track_link(rel, &ust);
        // Link counts too: a file that joined or left a hard link group must be written
        // for the applied tree to have the upper tree's link structure.
        let mut changed = umeta != lmeta || (ust.kind == FileKind::File && ust.nlink != lst.nlink);
        if changed
            && self.opts.ignore_mtime_if_content_equal
            && ust.kind == FileKind::File
            && ust.nlink == lst.nlink
            && (EntryMeta { mtime: lmeta.mtime, ..umeta.clone() }) == lmeta
        {
            changed = !same_content(l, u, name, rel, &lst, &ust)?;
        }
        if changed {
            self.c.out.push(Change::with_meta(ChangeKind::Modified, umeta, &ust));
        }
        if ust.kind == FileKind::Dir {
            let ls =
                scan::open_dir_at(l, name).map_err(|e| scan::io_err("open directory", &self.lower.join(&*rel), e))?;
            let us = scan::open_dir_at(u, name).map_err(|e| scan::io_err("open directory", rel, e))?;
            // Not into a mount point of the lower tree either.
            if same_fs(l, &lst) {
                self.dirs(ls.as_fd(), us.as_fd(), rel)?;
            }
        }
        Ok(())
    }

    /// Like [`Trees::added`] for the entry itself (with `kind`), its contents added.
    fn added_as(
        &mut self,
        kind: ChangeKind,
        u: BorrowedFd<'_>,
        name: &OsStr,
        rel: &mut PathBuf,
        st: &Stat,
    ) -> Result<()> {
        let start = self.c.out.len();
        self.added(u, name, rel, st)?;
        if let Some(first) = self.c.out.get_mut(start) {
            first.kind = kind;
        }
        Ok(())
    }
}

/// Whether the directory `st` is on the same file system as its parent `parent`.
fn same_fs(parent: BorrowedFd<'_>, st: &Stat) -> bool {
    scan::fstat(parent).is_ok_and(|p| p.dev == st.dev)
}

/// Whether two regular files have the same bytes.
fn same_content(
    l: BorrowedFd<'_>,
    u: BorrowedFd<'_>,
    name: &OsStr,
    rel: &Path,
    lst: &Stat,
    ust: &Stat,
) -> Result<bool> {
    let mut a = crate::write::open_checked(l, name, rel, lst)?;
    let mut b = crate::write::open_checked(u, name, rel, ust)?;
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut a, &mut ba).map_err(|e| scan::io_err("read", rel, e))?;
        let m = read_full(&mut b, &mut bb).map_err(|e| scan::io_err("read", rel, e))?;
        if n != m || ba.get(..n) != bb.get(..m) {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

// ---------------------------------------------------------------------------------------
// overlay

/// The overlayfs xattr namespaces: `trusted.` (mounted by root) and `user.` (mounted
/// with `userxattr`, rootless).
const OVERLAY_NS: [&str; 2] = ["trusted.overlay.", "user.overlay."];

fn overlay_xattr<'x>(x: &'x std::collections::BTreeMap<std::ffi::OsString, Vec<u8>>, key: &str) -> Option<&'x [u8]> {
    OVERLAY_NS.iter().find_map(|ns| x.get(OsStr::new(&format!("{ns}{key}"))).map(Vec::as_slice))
}

/// The changes recorded in an overlayfs upper directory. Only the upper dir is walked.
///
/// - A character device 0/0 is a whiteout (a deletion); so is a regular file carrying an
///   `overlay.whiteout` xattr.
/// - A directory whose `trusted.overlay.opaque` or `user.overlay.opaque` is `y` is
///   opaque: its entry is followed by `.wh..wh..opq`, then its contents.
/// - Every other entry is added or modified (see [`DiffOptions::overlay_lowers`]); a
///   directory present only because overlayfs copied it up is listed as a directory
///   entry, as docker does.
/// - `overlay.redirect` (redirect_dir: a renamed lower directory) and `overlay.metacopy`
///   (metadata-only copy-up: the data is in a lower layer) are refused with
///   [`Error::OverlayUnsupported`]: the upper dir alone does not hold their content.
///   Mount without `redirect_dir=on` and `metacopy=on` (the defaults on most
///   distributions) to commit from an upper dir.
/// - overlayfs' own xattrs are never written to the layer. Sockets are ignored.
pub fn overlay(upperdir: &Path, opts: &DiffOptions) -> Result<Changes> {
    struct Ov<'a> {
        opts: &'a DiffOptions,
        c: Collector<'a>,
    }
    impl Ov<'_> {
        fn entry(&mut self, dir: Option<(BorrowedFd<'_>, &OsStr)>, rel: &Path, st: &Stat) -> Result<bool> {
            let raw = scan::read_xattrs(&self.c.root.join(rel))?;
            let is_whiteout = (st.kind == FileKind::Char && st.rdev == 0)
                || (st.kind == FileKind::File && overlay_xattr(&raw, "whiteout").is_some());
            if is_whiteout {
                if !rel.as_os_str().is_empty() {
                    self.c.out.push(Change::deleted(rel.to_path_buf()));
                }
                return Ok(false);
            }
            if st.kind == FileKind::Socket {
                return Ok(false);
            }
            if overlay_xattr(&raw, "redirect").is_some() {
                return Err(Error::OverlayUnsupported { path: rel.to_path_buf(), feature: "redirect_dir" });
            }
            if overlay_xattr(&raw, "metacopy").is_some() {
                return Err(Error::OverlayUnsupported { path: rel.to_path_buf(), feature: "metacopy" });
            }
            let opaque = st.kind == FileKind::Dir && overlay_xattr(&raw, "opaque") == Some(b"y");
            let target = if st.kind == FileKind::Symlink {
                let t = match dir {
                    Some((fd, name)) => scan::read_link_at(fd, name),
                    None => Err(rustix::io::Errno::INVAL),
                };
                Some(t.map_err(|e| scan::io_err("readlink", rel, e))?)
            } else {
                None
            };
            let mut xattrs = raw;
            xattrs.retain(|k, _| scan::keep_xattr(k.as_bytes()));
            let mut meta = scan::entry_meta(rel, st, target, xattrs)?;
            apply_recorded(&mut meta, self.opts.recorded_owners.get(rel));
            let in_lower = self.opts.overlay_lowers.iter().any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok());
            let kind = if in_lower { ChangeKind::Modified } else { ChangeKind::Added };
            if rel.as_os_str().is_empty() {
                if opaque {
                    let mut c = Change::with_meta(kind, meta, st);
                    c.opaque = true;
                    self.c.out.push(c);
                }
                return Ok(true);
            }
            self.c.track_link(rel, st);
            let mut c = Change::with_meta(kind, meta, st);
            c.opaque = opaque;
            self.c.out.push(c);
            Ok(true)
        }
    }
    impl Visitor for Ov<'_> {
        fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool> {
            self.entry(Some((dir, name)), rel, st)
        }
    }
    let mut ov = Ov { opts, c: Collector::new(upperdir) };
    let fd = scan::open_root(upperdir)?;
    let st = scan::fstat(fd.as_fd()).map_err(|e| scan::io_err("stat", upperdir, e))?;
    ov.entry(None, Path::new(""), &st)?;
    scan::walk(upperdir, &mut ov)?;
    let rec = &opts.recorded_owners;
    ov.c.finish(|p, _| rec.get(p).copied())
}

// ---------------------------------------------------------------------------------------
// since

/// The changes to `root` since `snapshot` was taken of it.
///
/// One `lstat` per entry; an entry is looked at further only when its type, size, mtime,
/// ctime, inode, device, link count, mode, owner or device number moved. Such an entry is
/// written whole (its old content is not kept, so there is nothing to compare it with):
/// a changed ctime alone, which also catches content rewritten with its mtime restored
/// and xattr changes, is enough. A directory whose metadata moved is written as a
/// directory entry only; its contents are judged one by one.
///
/// Paths in the snapshot and gone from the tree are deleted; a deleted directory is
/// listed once (one whiteout, not one per file inside, umoci#254). A directory replaced
/// by a file (or anything by anything of another type) is a modification whose new
/// entry replaces the old one whole when applied, so no whiteouts are written below it.
/// The root's own metadata is not compared. Sockets are ignored.
///
/// A directory with another file system mounted on it (a running container's `/proc`, a
/// bind mount) is taken as unchanged and not descended into.
///
/// Ownership recorded by a rootless unpack (in the snapshot, or in
/// [`DiffOptions::recorded_owners`] for paths the snapshot's record lacks) is used for
/// entries that are still the inode that was snapshotted.
pub fn since(snapshot: &Snapshot, root: &Path, opts: &DiffOptions) -> Result<Changes> {
    let entries = snapshot.entries();
    let start = usize::from(entries.first().is_some_and(|e| e.path.as_os_str().is_empty()));
    let mut s = Since { snapshot, opts, pos: start, c: Collector::new(root) };
    scan::walk(root, &mut s)?;
    let snap = snapshot;
    s.c.finish(|p, st| recorded_for(snap, opts, p, st))
}

/// Recorded ownership of `p`, if it is still the snapshotted inode.
fn recorded_for(snapshot: &Snapshot, opts: &DiffOptions, p: &Path, st: &Stat) -> Option<RecordedOwner> {
    let rec = snapshot.recorded().get(p).or_else(|| opts.recorded_owners.get(p))?;
    let e = snapshot.get(p)?;
    (e.ino == st.ino && e.dev == st.dev).then_some(*rec)
}

struct Since<'a> {
    snapshot: &'a Snapshot,
    opts: &'a DiffOptions,
    /// Next snapshot entry not yet matched.
    pos: usize,
    c: Collector<'a>,
}

impl Since<'_> {
    /// Skip the snapshot entries below `dir` (already accounted for by `dir`'s change).
    fn skip_below(&mut self, dir: &Path) {
        let entries = self.snapshot.entries();
        while let Some(e) = entries.get(self.pos) {
            if e.path.starts_with(dir) && e.path != dir {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// Every snapshot entry before `limit` in tar order (or, with `None`, every entry
    /// below `within`) is gone from the tree.
    fn deleted_until(&mut self, limit: Option<&Path>, within: &Path) {
        let entries = self.snapshot.entries();
        while let Some(e) = entries.get(self.pos) {
            let before = match limit {
                Some(l) => tar_order(&e.path, l) == std::cmp::Ordering::Less,
                None => e.path.starts_with(within) && e.path != within,
            };
            if !before {
                break;
            }
            let path = e.path.clone();
            self.pos += 1;
            if e.kind != FileKind::Socket {
                self.c.out.push(Change::deleted(path.clone()));
            }
            self.skip_below(&path);
        }
    }
}

impl Visitor for Since<'_> {
    fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool> {
        self.deleted_until(Some(rel), Path::new(""));
        let entries = self.snapshot.entries();
        let old = entries.get(self.pos).filter(|e| e.path == rel);
        if old.is_some() {
            self.pos += 1;
        }
        if st.kind == FileKind::Socket {
            if old.is_some_and(|o| o.kind != FileKind::Socket) {
                self.c.out.push(Change::deleted(rel.to_path_buf()));
                self.skip_below(rel);
            }
            return Ok(false);
        }
        self.c.track_link(rel, st);
        let kind = match old {
            Some(o) if !o.moved(st) => return Ok(true),
            Some(o) => {
                if o.kind == FileKind::Dir && st.kind != FileKind::Dir {
                    self.skip_below(rel);
                }
                ChangeKind::Modified
            }
            None => ChangeKind::Added,
        };
        let mut meta = scan::full_meta(self.c.root, Some((dir, name)), rel, st)?;
        apply_recorded(&mut meta, recorded_for(self.snapshot, self.opts, rel, st).as_ref());
        self.c.out.push(Change::with_meta(kind, meta, st));
        Ok(true)
    }

    fn leave(&mut self, rel: &Path) -> Result<()> {
        self.deleted_until(None, rel);
        Ok(())
    }

    /// Something is mounted here (a running container's `/proc`, a bind mount): not part
    /// of the container's changes. The snapshot's view of this directory and below is
    /// taken as unchanged.
    fn mount_point(&mut self, _dir: BorrowedFd<'_>, _name: &OsStr, rel: &Path, _st: &Stat) -> Result<()> {
        self.deleted_until(Some(rel), Path::new(""));
        if self.snapshot.entries().get(self.pos).is_some_and(|e| e.path == rel) {
            self.pos += 1;
        }
        self.skip_below(rel);
        Ok(())
    }
}
