//! The directory the applier writes: the [`UnionTree`] on disk. Every path is resolved
//! inside the root by [`crate::fsops::Root`]; every operation works on `(parent fd,
//! name)` and never follows the last component; replacing is unlink + create.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::dirs::Dirs;
use super::files::{Creator, Meta, QUEUED_MAX, Queue, Told, XattrTarget};
use super::{Device, Recorded};
use crate::error::Result;
use crate::fsops::{self, Dir, Resolver, Root, errno};
use crate::plan::LayerPlan;
use crate::read::Mtime;
use crate::union::{Ctx, Data, Found, Node, NodeKind, UnionTree};

pub(crate) fn timestamps(m: Mtime) -> Timestamps {
    let t = Timespec { tv_sec: m.secs, tv_nsec: i64::from(m.nanos) };
    Timestamps { last_access: t, last_modification: t }
}

/// A normalised path as the key of the maps below.
pub(super) fn key(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// A directory this unpack made, where writers may create files.
#[derive(Default)]
struct Fresh {
    /// The names the calling thread made in it. Only regular files made by writers can
    /// be at another name (see `files`).
    names: BTreeSet<Vec<u8>>,
    /// The group a file created in it gets, when its metadata was set here and says so,
    /// and whether a file of it was found so (see `files::Told`).
    told: Option<(u32, Arc<AtomicBool>)>,
}

/// The root directory being written, and what is kept about it until the end.
pub(super) struct Disk {
    root: Root,
    rootless: bool,
    /// How file metadata is set (shared with the file writer's thread).
    pub(super) meta: Arc<Meta>,
    /// The writers' queue, when files are finished on writer threads.
    pub(super) files: Option<Queue>,
    /// When writers may create files: the directories this unpack made, by real path.
    fresh: Option<BTreeMap<Vec<u8>, Fresh>>,
    /// The name of the layer being applied.
    layer: Arc<str>,
    /// Directory metadata to set last.
    dirs: Dirs,
    /// Rootless: owners and devices, by real path (the paths of the final tree).
    recorded: BTreeMap<Vec<u8>, Recorded>,
    /// The position of the layer being applied.
    index: Option<usize>,
    /// The plan of the layer being applied, if any.
    pub(super) plan: Option<LayerPlan>,
    pub(super) skipped: u64,
    pub(super) skipped_bytes: u64,
}

impl Disk {
    pub(super) fn new(root: Root, path: &Path, rootless: bool) -> Disk {
        Disk {
            root,
            rootless,
            meta: Arc::new(Meta::new(rootless, Creator::of_process())),
            files: None,
            fresh: None,
            layer: Arc::from(""),
            dirs: Dirs::new(path),
            recorded: BTreeMap::new(),
            index: None,
            plan: None,
            skipped: 0,
            skipped_bytes: 0,
        }
    }

    /// Let the writers create small files in directories this unpack makes (needs
    /// [`Disk::files`]).
    pub(super) fn parallel_create(&mut self) {
        self.fresh = Some(BTreeMap::new());
        // An empty root counts as made here (an unpack into a new directory).
        if fsops::list_dir(self.root.fd()).is_ok_and(|names| names.is_empty()) {
            self.made_dir(Path::new(""));
        }
    }

    /// Wait until every file handed over to be created exists (and is written): call
    /// before anything but handing over looks at or changes names in the tree.
    fn settle(&mut self) -> io::Result<()> {
        let settled = self.files.as_mut().is_none_or(Queue::settle);
        if settled { Ok(()) } else { Err(io::Error::other("the file writer thread stopped")) }
    }

    /// Wait for the creations handed over that an operation on `name` in `dir` could
    /// meet (see `Queue::pending_at`); those elsewhere go on.
    fn settle_for(&mut self, dir: &Path, name: &OsStr) -> io::Result<()> {
        if self.files.as_mut().is_some_and(|q| q.pending_at(dir, name)) { self.settle() } else { Ok(()) }
    }

    /// The directory at real path `real` was just made, empty.
    fn made_dir(&mut self, real: &Path) {
        if let Some(fresh) = &mut self.fresh {
            fresh.insert(key(real).to_vec(), Fresh::default());
        }
    }

    /// This thread made `name` in the directory at real path `dir`.
    fn made_name(&mut self, dir: &Path, name: &OsStr) {
        if let Some(f) = self.fresh.as_mut().and_then(|f| f.get_mut(key(dir))) {
            f.names.insert(name.as_bytes().to_vec());
        }
    }

    /// Whether a writer may create `name` in the directory at real path `dir`, and if
    /// so what the file will be created with, when that can be told (`mode`: the
    /// permission bits asked for).
    fn may_hand_over(&self, dir: &Path, name: &OsStr, mode: u32) -> Option<Option<Told>> {
        let f = self.fresh.as_ref().and_then(|f| f.get(key(dir)))?;
        if f.names.contains(name.as_bytes()) {
            return None;
        }
        Some(f.told.as_ref().zip(self.meta.creator).map(|((gid, verified), c)| Told {
            uid: c.uid,
            gid: *gid,
            mode: mode & 0o777 & !c.umask,
            verified: verified.clone(),
        }))
    }

    /// Start a layer; returns its position.
    pub(super) fn begin(&mut self, name: &str) -> usize {
        self.root.invalidate();
        self.layer = Arc::from(name);
        self.skipped = 0;
        self.skipped_bytes = 0;
        let index = self.index.map_or(0, |i| i + 1);
        self.index = Some(index);
        index
    }

    pub(super) fn resolver(&self) -> Resolver {
        self.root.resolver()
    }

    /// Rootless mode: what was recorded, by path of the final tree.
    pub(super) fn take_recorded(&mut self) -> BTreeMap<PathBuf, Recorded> {
        std::mem::take(&mut self.recorded)
            .into_iter()
            .map(|(k, v)| (PathBuf::from(std::ffi::OsString::from_vec(k)), v))
            .collect()
    }

    /// Directory modes (deferred ones) and mtimes, once every layer is in.
    pub(super) fn finish_dirs(&mut self) -> Result<()> {
        self.root.invalidate();
        self.dirs.finish(&self.root)
    }

    /// Forget what was recorded about the real path `real` and everything under it (it
    /// was removed).
    fn forget(&mut self, real: &Path) {
        self.dirs.forget_under(real);
        super::dirs::forget_under(&mut self.recorded, real);
        if let Some(fresh) = &mut self.fresh {
            super::dirs::forget_under(fresh, real);
        }
    }

    /// Remove whatever is at `name` in `dir` (the real path `real`) to make room.
    fn remove_existing(&mut self, dir: BorrowedFd<'_>, name: &OsStr, real: &Path) -> io::Result<()> {
        let removed = fsops::remove_all(dir, name)?;
        // A cached parent may be the directory (or go through the symlink) removed.
        if matches!(removed, Some(FileType::Directory | FileType::Symlink | FileType::Unknown)) {
            self.root.invalidate();
        }
        self.forget(real);
        Ok(())
    }

    /// Run `make` (a creation in `dir`); when the name is taken, remove what is there
    /// and run it once more.
    fn make<T>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        real: &Path,
        cx: Ctx<'_>,
        op: &'static str,
        mut make: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<T> {
        match make() {
            Ok(v) => Ok(v),
            Err(Errno::EXIST) => {
                self.remove_existing(dir, name, real).map_err(cx.fs("remove existing"))?;
                make().map_err(cx.errno(op))
            }
            Err(e) => Err(cx.errno(op)(e)),
        }
    }

    fn record(&mut self, real: &Path, uid: u32, gid: u32, device: Option<Device>) {
        if !self.rootless {
            return;
        }
        if uid == 0 && gid == 0 && device.is_none() {
            self.recorded.remove(key(real));
        } else {
            self.recorded.insert(key(real).to_vec(), Recorded { uid, gid, device });
        }
    }

    /// Owner, mode, xattrs and mtime of a node that cannot be opened (symlink, fifo,
    /// device), by name in its directory, never following it.
    fn node_meta(&mut self, dir: BorrowedFd<'_>, name: &OsStr, node: &Node, cx: Ctx<'_>, chmod: bool) -> Result<()> {
        if !self.rootless {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(node.uid)),
                Some(rustix::fs::Gid::from_raw(node.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(cx.errno("chown"))?;
        }
        if chmod {
            // Not a symlink (we just made it with mknodat), so fchmodat's following of the
            // last component is moot.
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(node.mode), AtFlags::empty())
                .map_err(cx.errno("chmod"))?;
        }
        if !node.xattrs.is_empty() {
            self.meta.set_xattrs(XattrTarget::At(dir, name), node, cx)?;
        }
        rustix::fs::utimensat(dir, name, &timestamps(node.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(cx.errno("set mtime"))
    }

    fn dir(&mut self, dir: BorrowedFd<'_>, name: &OsStr, real: &Path, node: &Node, cx: Ctx<'_>) -> Result<()> {
        // Made with its permission bits (and u+rwx rootless, see `dir_meta`).
        let initial = Mode::from_raw_mode(if self.rootless { node.mode & 0o777 | 0o700 } else { node.mode & 0o777 });
        match rustix::fs::mkdirat(dir, name, initial) {
            Ok(()) => self.made_dir(real),
            Err(Errno::EXIST) => {
                let st = fsops::lstat(dir, name).map_err(cx.fs("stat"))?;
                // An existing directory is kept (merged); anything else, a symlink above
                // all (CVE-2026-33056), is replaced.
                if !st.as_ref().is_some_and(|st| fsops::file_type(st) == FileType::Directory) {
                    self.remove_existing(dir, name, real).map_err(cx.fs("remove existing"))?;
                    rustix::fs::mkdirat(dir, name, initial).map_err(cx.errno("mkdir"))?;
                    self.made_dir(real);
                }
            }
            Err(e) => return Err(cx.errno("mkdir")(e)),
        }
        let fd = fsops::open_subdir(dir, name).map_err(cx.fs("open directory"))?;
        self.dir_meta(fd.as_fd(), real, node, cx)?;
        self.record(real, node.uid, node.gid, None);
        Ok(())
    }

    fn dir_meta(&mut self, fd: BorrowedFd<'_>, real: &Path, node: &Node, cx: Ctx<'_>) -> Result<()> {
        // Rootless, a directory we could not write into would stop the layers that
        // follow: keep u+rwx until the end.
        let deferred = self.rootless && node.mode & 0o700 != 0o700;
        let now = if deferred { node.mode | 0o700 } else { node.mode };
        // As for files, one fstat says whether chown and chmod are needed.
        let st = rustix::fs::fstat(fd).map_err(cx.errno("stat"))?;
        let chown = !self.rootless && (st.st_uid, st.st_gid) != (node.uid, node.gid);
        if chown {
            self.meta.chown_fd(fd, node, cx)?;
        }
        if chown || st.st_mode & 0o7777 != now {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(now)).map_err(cx.errno("chmod"))?;
        }
        self.meta.set_xattrs(XattrTarget::Fd(fd), node, cx)?;
        self.dirs.declare(real, node.mtime, deferred.then_some(node.mode), (st.st_dev, st.st_ino));
        if let (Some(creator), Some(f)) = (self.meta.creator, self.fresh.as_mut().and_then(|f| f.get_mut(key(real)))) {
            // What files created in it get: its group when it is set-group-ID (its mode
            // is now `now`), and a mode the umask decides unless a default ACL (set just
            // now, or inherited when it was made) decides it.
            let gid = if chown { node.gid } else { st.st_gid };
            let no_default_acl = matches!(
                rustix::fs::fgetxattr_query(fd, "system.posix_acl_default"),
                Err(Errno::NODATA | Errno::OPNOTSUPP)
            );
            let gid = if now & 0o2000 != 0 { gid } else { creator.gid };
            f.told = no_default_acl.then(|| (gid, Arc::new(AtomicBool::new(false))));
        }
        Ok(())
    }

    /// An entry the plan says is dead (a later layer deletes or replaces it): make room
    /// for it as creating it would, read its data through the hash, write nothing.
    fn skip(&mut self, dir: BorrowedFd<'_>, name: &OsStr, real: &Path, data: &mut dyn Data, cx: Ctx<'_>) -> Result<()> {
        if fsops::lstat(dir, name).map_err(cx.fs("stat"))?.is_some() {
            self.remove_existing(dir, name, real).map_err(cx.fs("remove existing"))?;
        }
        let mut bytes = 0u64;
        data.read_data(&mut |_, chunk| {
            bytes += chunk.len() as u64;
            Ok(())
        })?;
        self.skipped += 1;
        self.skipped_bytes += bytes;
        Ok(())
    }

    fn create_file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        real: &Path,
        mode: u32,
        cx: Ctx<'_>,
    ) -> Result<OwnedFd> {
        // O_EXCL | O_NOFOLLOW: never write through what is there (a symlink, or a hard
        // link shared with another name): replacing is unlink + create. Created with the
        // permission bits it will have (less the umask: `file_meta` checks), as only our
        // fd writes to it.
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(mode & 0o777);
        self.make(dir, name, real, cx, "create", || rustix::fs::openat(dir, name, flags, mode))
    }

    /// Whether the plan says the entry at `ordinal` of this layer is dead.
    fn dead(&self, ordinal: u64) -> bool {
        self.plan.as_ref().is_some_and(|p| p.skips(ordinal))
    }
}

/// A directory resolved inside the root, with its real path.
pub(super) type DiskDir = Arc<Dir>;

impl UnionTree for Disk {
    type Dir = DiskDir;

    fn root(&mut self) -> io::Result<DiskDir> {
        self.settle()?;
        let fd = rustix::fs::openat(
            self.root.fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Arc::new(Dir { fd, path: PathBuf::new() }))
    }

    fn parent(&mut self, path: &Path, create: bool) -> io::Result<DiskDir> {
        // Another directory than the last one: its resolution looks into its ancestors
        // only, when no symlink is on the way, and need not wait for creations handed
        // over elsewhere (the next directory's files are handed over while the last
        // one's are still being made). Otherwise it waits for all of them.
        let parent = path.parent().unwrap_or(Path::new(""));
        let lexical = if !self.root.is_cached(path) && self.files.as_mut().is_some_and(|q| !q.pending_above(parent)) {
            self.root.parent_lexical(path, create)
        } else {
            None
        };
        let dir = match lexical {
            Some((dir, _)) => Ok(dir),
            None => {
                if !self.root.is_cached(path) {
                    self.settle()?;
                }
                self.root.parent(path, create).map(|(dir, _)| dir)
            }
        };
        for made in self.root.take_made() {
            if let (Some(parent), Some(name)) = (made.parent(), made.file_name()) {
                self.made_name(parent, name);
            }
            self.made_dir(&made);
        }
        dir
    }

    fn find(&mut self, dir: &DiskDir, name: &OsStr) -> io::Result<Option<Found>> {
        self.settle()?;
        Ok(fsops::lstat(dir.fd.as_fd(), name)?
            .map(|st| if fsops::file_type(&st) == FileType::Directory { Found::Dir } else { Found::Other }))
    }

    fn subdir(&mut self, dir: &DiskDir, name: &OsStr) -> io::Result<DiskDir> {
        self.settle()?;
        let fd = fsops::open_subdir(dir.fd.as_fd(), name)?;
        Ok(Arc::new(Dir { fd, path: dir.path.join(name) }))
    }

    fn children(&mut self, dir: &DiskDir) -> io::Result<Vec<(OsString, bool)>> {
        self.settle()?;
        let mut out = Vec::new();
        for (name, ft) in fsops::list_dir(dir.fd.as_fd())? {
            let name = OsString::from_vec(name);
            let ft = if ft == FileType::Unknown {
                match fsops::lstat(dir.fd.as_fd(), &name)? {
                    Some(st) => fsops::file_type(&st),
                    None => continue,
                }
            } else {
                ft
            };
            out.push((name, ft == FileType::Directory));
        }
        Ok(out)
    }

    fn remove(&mut self, dir: &DiskDir, name: &OsStr) -> io::Result<()> {
        self.settle()?;
        self.remove_existing(dir.fd.as_fd(), name, &dir.path.join(name))
    }

    fn make_dir(&mut self, dir: &DiskDir, name: &OsStr) -> io::Result<()> {
        self.settle()?;
        rustix::fs::mkdirat(dir.fd.as_fd(), name, Mode::from_raw_mode(0o755)).map_err(errno)?;
        self.made_name(&dir.path, name);
        self.made_dir(&dir.path.join(name));
        Ok(())
    }

    fn create(&mut self, d: &DiskDir, name: &OsStr, node: &Node, data: &mut dyn Data, cx: Ctx<'_>) -> Result<()> {
        let dir = d.fd.as_fd();
        let small = |node: &Node| node.sparse.is_none() && node.size <= QUEUED_MAX;
        if matches!(node.kind, NodeKind::File)
            && small(node)
            && !self.dead(node.ordinal)
            && self.files.is_some()
            && let Some(told) = self.may_hand_over(&d.path, name, node.mode & 0o777)
            && let Some(queue) = &mut self.files
        {
            // Created, written and closed by a writer; this thread goes on.
            if queue.failed() || !queue.send_create((d, name), data, node, told, cx, &self.layer)? {
                return Err(cx.fs("hand over to the file writer")(io::Error::other("the file writer thread stopped")));
            }
            if self.rootless {
                self.record(&d.path.join(name), node.uid, node.gid, None);
            }
            return Ok(());
        }
        // Where the entry really is: the layer's name for it may go through symlinks.
        // What is kept about a path (directory metadata, recorded owners) is kept under
        // this name, the one it has in the final tree.
        let real = &d.path.join(name);
        self.settle_for(&d.path, name).map_err(cx.fs("wait for the file writers"))?;
        self.made_name(&d.path, name);
        match &node.kind {
            NodeKind::File if self.dead(node.ordinal) => self.skip(dir, name, real, data, cx)?,
            NodeKind::Dir => self.dir(dir, name, real, node, cx)?,
            NodeKind::File => {
                let fd = self.create_file(dir, name, real, node.mode, cx)?;
                match &mut self.files {
                    Some(queue) if small(node) => {
                        // Read here (the tar is read in order), written there.
                        if queue.failed() || !queue.send(fd, data, node, cx, &self.layer)? {
                            return Err(cx.fs("hand over to the file writer")(io::Error::other(
                                "the file writer thread stopped",
                            )));
                        }
                    }
                    _ => {
                        let f = std::fs::File::from(fd);
                        data.read_data(&mut |at, chunk| f.write_all_at(chunk, at).map_err(cx.fs("write")))?;
                        if node.sparse.is_some() {
                            // A hole at the end: the size says where the file ends.
                            f.set_len(node.size).map_err(cx.fs("truncate"))?;
                        }
                        self.meta.file(f.as_fd(), node, None, cx)?;
                    }
                }
                self.record(real, node.uid, node.gid, None);
            }
            NodeKind::Symlink(target) => {
                let target = OsStr::from_bytes(target);
                self.make(dir, name, real, cx, "symlink", || rustix::fs::symlinkat(target, dir, name))?;
                self.node_meta(dir, name, node, cx, false)?;
                self.record(real, node.uid, node.gid, None);
            }
            NodeKind::Char(major, minor) | NodeKind::Block(major, minor) if self.rootless => {
                // A placeholder: an empty file, the device recorded.
                let device = match node.kind {
                    NodeKind::Char(..) => Device::Char { major: *major, minor: *minor },
                    _ => Device::Block { major: *major, minor: *minor },
                };
                let fd = self.create_file(dir, name, real, node.mode, cx)?;
                self.meta.file(fd.as_fd(), node, None, cx)?;
                self.record(real, node.uid, node.gid, Some(device));
            }
            NodeKind::Char(..) | NodeKind::Block(..) | NodeKind::Fifo => {
                let (ft, dev, device) = match node.kind {
                    NodeKind::Char(major, minor) => (
                        FileType::CharacterDevice,
                        rustix::fs::makedev(major, minor),
                        Some(Device::Char { major, minor }),
                    ),
                    NodeKind::Block(major, minor) => {
                        (FileType::BlockDevice, rustix::fs::makedev(major, minor), Some(Device::Block { major, minor }))
                    }
                    _ => (FileType::Fifo, 0, None),
                };
                self.make(dir, name, real, cx, "mknod", || {
                    rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(0o600), dev)
                })?;
                self.node_meta(dir, name, node, cx, true)?;
                self.record(real, node.uid, node.gid, device);
            }
            NodeKind::HardLink(_) => return Err(cx.unsafe_entry("a hard link is made by link(), not create()".into())),
        }
        Ok(())
    }

    fn link(
        &mut self,
        d: &DiskDir,
        name: &OsStr,
        (tdir, tname): (&DiskDir, &OsStr),
        node: &Node,
        data: &mut dyn Data,
        cx: Ctx<'_>,
    ) -> Result<()> {
        let dir = d.fd.as_fd();
        let real = &d.path.join(name);
        // The target may be a name handed over in its directory.
        let wait = match &mut self.files {
            Some(q) => q.pending_at(&d.path, name) || q.pending_in(&tdir.path),
            None => false,
        };
        if wait {
            self.settle().map_err(cx.fs("wait for the file writers"))?;
        }
        self.made_name(&d.path, name);
        if self.dead(node.ordinal) {
            return self.skip(dir, name, real, data, cx);
        }
        // linkat does not follow a symlink target (it links the symlink itself), so
        // nothing outside is reached.
        let tfd = tdir.fd.as_fd();
        self.make(dir, name, real, cx, "link", || rustix::fs::linkat(tfd, tname, dir, name, AtFlags::empty()))?;
        if self.rootless {
            match self.recorded.get(key(&tdir.path.join(tname))).copied() {
                Some(r) => {
                    self.recorded.insert(key(real).to_vec(), r);
                }
                None => {
                    self.recorded.remove(key(real));
                }
            }
        }
        Ok(())
    }

    /// The entry naming the root itself (`./`): its metadata goes to the root (umoci
    /// CVE-2021-29136: a root replaced by a symlink).
    fn set_root(&mut self, node: &Node, cx: Ctx<'_>) -> Result<()> {
        self.settle().map_err(cx.fs("wait for the file writers"))?;
        let fd = rustix::fs::openat(
            self.root.fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(cx.errno("open root"))?;
        self.dir_meta(fd.as_fd(), Path::new(""), node, cx)?;
        self.record(Path::new(""), node.uid, node.gid, None);
        Ok(())
    }
}

use std::os::unix::ffi::OsStringExt;
