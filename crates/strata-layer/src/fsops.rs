//! File system operations confined to a root directory.
//!
//! Every path is resolved by [`Root`] to a directory fd *inside* the root, with symlinks
//! interpreted as if the root were `/` (absolute targets restart at the root, `..` stops
//! at it). The kernel does this with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`;
//! where openat2 is missing (Linux < 5.6, or a seccomp filter that refuses it) a
//! component-by-component walk with `O_NOFOLLOW` does the same in user space (the walk
//! of [`crate::resolve`], which the merged view uses on its tree in memory). Each
//! directory found is also named by its real path (see [`Dir::path`]).
//!
//! The last component of a path is never followed: every operation works on
//! `(parent fd, name)` with `O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL`, or on an fd
//! of the object itself. Nothing here guards against *another process* changing the
//! tree while we work on it (see the threat model in `docs/security.md`).

use std::borrow::Cow;
use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::resolve::{self, End, Lookup, Node};

/// How paths are resolved inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Resolver {
    /// `openat2` when the kernel has it, else the fallback walk. The environment
    /// variable `STRATA_LAYER_RESOLVER` (`openat2` or `fallback`) overrides this choice.
    #[default]
    Auto,
    /// The kernel's `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`; fails where
    /// the kernel lacks it.
    Openat2,
    /// A user-space walk, one component at a time with `O_NOFOLLOW`, following symlinks
    /// the way `RESOLVE_IN_ROOT` does (at most 40 of them per path).
    Fallback,
}

/// Retries of `openat2` when it returns `EAGAIN` (a rename raced the lookup).
const OPENAT2_RETRIES: usize = 16;

pub(crate) fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// A root directory and a one-entry cache of the last parent directory resolved.
pub(crate) struct Root {
    fd: OwnedFd,
    resolver: Resolver,
    /// Normalised path of the cached directory, and the directory.
    cache: Option<(Vec<u8>, Arc<Dir>)>,
    /// Real paths of the directories [`Root::parent`] made (missing parents), until
    /// taken by [`Root::take_made`].
    made: Vec<PathBuf>,
}

impl Root {
    /// Open `path` (created if missing) as the root.
    pub(crate) fn open(path: &Path, resolver: Resolver) -> io::Result<Root> {
        std::fs::create_dir_all(path)?;
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno)?;
        let resolver = match resolver {
            Resolver::Auto => match std::env::var("STRATA_LAYER_RESOLVER").as_deref() {
                Ok("fallback") => Resolver::Fallback,
                Ok("openat2") => Resolver::Openat2,
                _ => {
                    if openat2_works(&fd) {
                        Resolver::Openat2
                    } else {
                        Resolver::Fallback
                    }
                }
            },
            r => r,
        };
        if resolver == Resolver::Openat2 && !openat2_works(&fd) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "openat2 with RESOLVE_IN_ROOT is not available"));
        }
        Ok(Root { fd, resolver, cache: None, made: Vec::new() })
    }

    /// The resolver in use (never `Auto`).
    pub(crate) fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// The root directory's fd.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Forget the cached directory: call after anything that removes or replaces a
    /// directory or a symlink (either may be a component of the cached path).
    pub(crate) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Open the directory `rel` (a normalised relative path: no `..`; empty is the root)
    /// inside the root, following symlinks as the root would, and name it by its real
    /// path. Returns an `O_PATH` fd.
    pub(crate) fn open_dir(&self, rel: &Path) -> io::Result<Dir> {
        if rel.as_os_str().is_empty() {
            let fd =
                rustix::fs::openat(&self.fd, c".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(errno)?;
            return Ok(Dir { fd, path: PathBuf::new() });
        }
        match self.resolver {
            Resolver::Fallback => walk_in_root(&self.fd, rel),
            _ => {
                // Most paths have no symlink on the way: then they are their own real path,
                // known without a second look.
                match self.openat2(rel, ResolveFlags::NO_SYMLINKS) {
                    Ok(fd) => return Ok(Dir { fd, path: rel.to_path_buf() }),
                    Err(Errno::LOOP) => {}
                    Err(e) => return Err(errno(e)),
                }
                // A symlink on the way: the kernel resolves the path, and the walk the
                // fallback resolver does (the same resolution, in user space) names what
                // it found. They differ only if the tree changes under us meanwhile.
                let fd = self.openat2(rel, ResolveFlags::empty()).map_err(errno)?;
                let walked = walk_in_root(&self.fd, rel)?;
                let id = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|st| (st.st_dev, st.st_ino)).map_err(errno);
                if id(&fd)? != id(&walked.fd)? {
                    return Err(errno(Errno::AGAIN));
                }
                Ok(Dir { fd, path: walked.path })
            }
        }
    }

    /// `openat2(rel, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | more)`,
    /// retried when a rename races it.
    fn openat2(&self, rel: &Path, more: ResolveFlags) -> rustix::io::Result<OwnedFd> {
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | more;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(&self.fd, rel, flags, Mode::empty(), how) {
                Err(Errno::AGAIN) if tries < OPENAT2_RETRIES => tries += 1,
                r => return r,
            }
        }
    }

    /// The parent directory of `rel` (non-empty) and its last component, the parent
    /// from the cache when it is the same as last time. With `create`, missing parent
    /// directories are made (mode 0755, owned by the caller).
    pub(crate) fn parent<'p>(&mut self, rel: &'p Path, create: bool) -> io::Result<(Arc<Dir>, &'p OsStr)> {
        self.parent_as(rel, create, false)
    }

    /// [`Root::parent`] when no symlink is on the way: the directories looked into are
    /// then exactly the parent's ancestors as `rel` names them. `None` when a symlink is
    /// on the way (nothing followed), with the fallback resolver (which cannot tell
    /// without following), or on any error (for [`Root::parent`] to give).
    pub(crate) fn parent_lexical<'p>(&mut self, rel: &'p Path, create: bool) -> Option<(Arc<Dir>, &'p OsStr)> {
        if self.resolver != Resolver::Openat2 {
            return None;
        }
        self.parent_as(rel, create, true).ok()
    }

    fn parent_as<'p>(&mut self, rel: &'p Path, create: bool, lexical: bool) -> io::Result<(Arc<Dir>, &'p OsStr)> {
        let name = rel.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let key = parent.as_os_str().as_bytes();
        if let Some((k, dir)) = &self.cache
            && k == key
        {
            return Ok((dir.clone(), name));
        }
        let dir = if create {
            let mut made = std::mem::take(&mut self.made);
            let dir = self.ensure_dir(parent, &mut made, lexical);
            self.made = made;
            dir?
        } else {
            self.open_dir_as(parent, lexical)?
        };
        let dir = Arc::new(dir);
        self.cache = Some((key.to_vec(), dir.clone()));
        Ok((dir, name))
    }

    /// [`Root::open_dir`], or with `lexical` only when no symlink is on the way
    /// (`ELOOP` otherwise).
    fn open_dir_as(&self, rel: &Path, lexical: bool) -> io::Result<Dir> {
        if !lexical || rel.as_os_str().is_empty() {
            return self.open_dir(rel);
        }
        let fd = self.openat2(rel, ResolveFlags::NO_SYMLINKS).map_err(errno)?;
        Ok(Dir { fd, path: rel.to_path_buf() })
    }

    /// Whether [`Root::parent`] of `rel` is the cached directory (no file system call).
    pub(crate) fn is_cached(&self, rel: &Path) -> bool {
        let parent = rel.parent().unwrap_or(Path::new(""));
        self.cache.as_ref().is_some_and(|(k, _)| k == parent.as_os_str().as_bytes())
    }

    /// The real paths of the directories [`Root::parent`] made since last asked.
    pub(crate) fn take_made(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.made)
    }

    /// Open directory `rel`, creating it and its missing ancestors (mode 0755); the real
    /// path of each directory made is pushed to `made`.
    fn ensure_dir(&self, rel: &Path, made: &mut Vec<PathBuf>, lexical: bool) -> io::Result<Dir> {
        match self.open_dir_as(rel, lexical) {
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
            r => return r,
        }
        let (Some(name), Some(parent)) = (rel.file_name(), rel.parent()) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "root directory is missing"));
        };
        let p = self.ensure_dir(parent, made, lexical)?;
        match rustix::fs::mkdirat(&p.fd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => made.push(p.path.join(name)),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(errno(e)),
        }
        // A dangling symlink in the way gives EEXIST above and ENOENT here: an error.
        self.open_dir_as(rel, lexical)
    }
}

/// A directory inside the root: an fd, and the directory's real path.
#[derive(Debug)]
pub(crate) struct Dir {
    /// The directory (`O_PATH`).
    pub(crate) fd: OwnedFd,
    /// Its path from the root with no symlink in it (empty for the root): the one name
    /// it has in the tree, whatever name led to it.
    pub(crate) path: PathBuf,
}

/// Whether `openat2` with `RESOLVE_IN_ROOT` works here.
fn openat2_works(root: &OwnedFd) -> bool {
    rustix::fs::openat2(
        root,
        c".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .is_ok()
}

/// The tree on disk under a root fd, for [`resolve::resolve`]: each component opened
/// with `O_PATH | O_NOFOLLOW` in the directory walked so far.
struct OnDisk<'r>(BorrowedFd<'r>);

impl Lookup for OnDisk<'_> {
    type Dir = OwnedFd;

    fn lookup(&self, dir: Option<&OwnedFd>, _: &[u8], name: &[u8]) -> Result<Node<'_, OwnedFd>, Errno> {
        let dir = dir.map_or(self.0, AsFd::as_fd);
        let name = OsStr::from_bytes(name);
        let fd = rustix::fs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
        let st = rustix::fs::fstat(&fd)?;
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Node::Dir(fd),
            FileType::Symlink => Node::Symlink(Cow::Owned(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes())),
            _ => Node::Other,
        })
    }
}

/// Resolve `rel` under `root` in user space, as `RESOLVE_IN_ROOT` would (see
/// [`resolve::resolve`]), one component at a time with `O_PATH | O_NOFOLLOW`. The result
/// must be a directory.
fn walk_in_root(root: &OwnedFd, rel: &Path) -> io::Result<Dir> {
    let r = resolve::resolve(&OnDisk(root.as_fd()), rel.as_os_str().as_bytes(), b'/', true).map_err(errno)?;
    let fd = match r.end {
        End::Dir(fd) => fd,
        End::Root => rustix::fs::openat(root, c".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno)?,
        End::Other => return Err(errno(Errno::NOTDIR)),
    };
    Ok(Dir { fd, path: PathBuf::from(OsString::from_vec(r.path)) })
}

/// Open the file `rel` of the tree under the directory `root` for reading, resolving
/// every symlink on the way, the last one included, as if `root` were `/`: absolute
/// targets restart at `root` and `..` stops at it, so nothing outside the tree is ever
/// opened (an unpacked image's `/etc/passwd` may be a symlink to anywhere). The kernel
/// does it with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`; where that is
/// unavailable, the applier's user-space walk finds the real path and each component of
/// it is opened with `O_NOFOLLOW`.
///
/// Opened `O_NONBLOCK` (a fifo does not hang the open) and `O_NOCTTY`. Missing paths
/// are `NotFound`; the caller checks what was opened (`File::metadata`).
///
/// ```
/// use std::io::Read;
///
/// let root = tempfile::tempdir()?;
/// std::fs::create_dir(root.path().join("etc"))?;
/// std::fs::write(root.path().join("etc/real"), "inside")?;
/// std::os::unix::fs::symlink("/etc/real", root.path().join("etc/passwd"))?;
/// std::os::unix::fs::symlink("../../../../../etc/passwd", root.path().join("up"))?;
/// let dir = std::fs::File::open(root.path())?;
/// let mut s = String::new();
/// strata_layer::open_in_root(&dir, "etc/passwd")?.read_to_string(&mut s)?;
/// assert_eq!(s, "inside"); // `/etc/real` of the tree, not of the host
/// s.clear();
/// strata_layer::open_in_root(&dir, "up")?.read_to_string(&mut s)?;
/// assert_eq!(s, "inside"); // `..` stops at the root
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open_in_root(root: impl AsFd, rel: impl AsRef<Path>) -> io::Result<std::fs::File> {
    let (root, rel) = (root.as_fd(), rel.as_ref());
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(root, rel, READ_FLAGS, Mode::empty(), how) {
        Ok(fd) => Ok(fd.into()),
        // No openat2 (or a seccomp filter refusing it), or a rename raced the lookup.
        Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::OPNOTSUPP | Errno::AGAIN) => {
            open_in_root_walk(root, rel).map(Into::into)
        }
        Err(e) => Err(errno(e)),
    }
}

const READ_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::CLOEXEC).union(OFlags::NONBLOCK).union(OFlags::NOCTTY);

/// [`open_in_root`] in user space: [`resolve::resolve`] finds the real path (no symlink
/// in it), whose components are then opened one by one with `O_NOFOLLOW`, so a symlink
/// planted meanwhile fails the open rather than leading out.
fn open_in_root_walk(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let r = resolve::resolve(&OnDisk(root), rel.as_os_str().as_bytes(), b'/', true).map_err(errno)?;
    if !matches!(r.end, End::Other) {
        return Err(errno(Errno::ISDIR));
    }
    let real = Path::new(OsStr::from_bytes(&r.path));
    let (Some(name), Some(parent)) = (real.file_name(), real.parent()) else { return Err(errno(Errno::ISDIR)) };
    let mut dir: Option<OwnedFd> = None;
    for c in parent.iter() {
        let at = dir.as_ref().map_or(root, AsFd::as_fd);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = Some(rustix::fs::openat(at, c, flags, Mode::empty()).map_err(errno)?);
    }
    let at = dir.as_ref().map_or(root, AsFd::as_fd);
    rustix::fs::openat(at, name, READ_FLAGS | OFlags::NOFOLLOW, Mode::empty()).map_err(errno)
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

/// The file type of a stat.
pub(crate) fn file_type(st: &rustix::fs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Open directory `name` in `dir` for reading, never following a symlink.
pub(crate) fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

/// The names in directory `dir` (an fd opened for reading), without `.` and `..`, with
/// their types as the directory reports them.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, FileType)>> {
    let mut out = Vec::new();
    let mut d = rustix::fs::Dir::read_from(dir).map_err(errno)?;
    while let Some(ent) = d.read() {
        let ent = ent.map_err(errno)?;
        let name: &CStr = ent.file_name();
        let name = name.to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push((name.to_vec(), ent.file_type()));
    }
    Ok(out)
}

/// Remove `name` from `dir` and, if it is a directory, everything under it. Symlinks
/// are removed, never followed. Missing is not an error. Returns whether something was
/// removed and whether it was a directory.
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<FileType>> {
    let Some(st) = lstat(dir, name)? else { return Ok(None) };
    let ft = file_type(&st);
    if ft == FileType::Directory {
        let sub = open_subdir(dir, name)?;
        clear_dir(sub.as_fd())?;
        match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(errno(e)),
        }
    } else {
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(errno(e)),
        }
    }
    Ok(Some(ft))
}

/// Remove everything inside directory `dir` (an fd opened for reading).
pub(crate) fn clear_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    for (name, ft) in list_dir(dir)? {
        let name = OsStr::from_bytes(&name);
        if ft == FileType::Directory || ft == FileType::Unknown {
            remove_all(dir, name)?;
        } else {
            match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                // A directory reported under another type: remove it recursively.
                Err(Errno::ISDIR) => {
                    remove_all(dir, name)?;
                }
                Err(e) => return Err(errno(e)),
            }
        }
    }
    Ok(())
}

/// Set an xattr on `name` in `dir` without following it, through
/// `/proc/self/fd/<dir>/<name>`: the directory is the fd already resolved inside the
/// root (a magic link followed by the kernel to exactly that directory), and `lsetxattr`
/// does not follow the last component. Used for symlinks, fifos and devices, which
/// cannot be opened for `fsetxattr`.
pub(crate) fn lsetxattr_at(dir: BorrowedFd<'_>, name: &OsStr, key: &OsStr, value: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    rustix::fs::lsetxattr(OsStr::from_bytes(&p), key, value, rustix::fs::XattrFlags::empty()).map_err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The user-space walk (used where openat2 is missing) opens what `RESOLVE_IN_ROOT`
    /// opens: the same answer as the kernel for each path, never a file outside the root.
    #[test]
    fn open_in_root_stays_in_the_root_with_and_without_openat2() {
        use std::io::Read;
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "host secret\n").unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("lib/deep")).unwrap();
        std::fs::write(root.join("lib/deep/real"), "inside\n").unwrap();
        let abs = outside.to_str().unwrap();
        let links: &[(&str, String)] = &[
            ("etc/abs", abs.to_owned()),
            ("etc/rel", format!("../../../../..{abs}")),
            ("etc/in-abs", "/lib/deep/real".to_owned()),
            ("etc/in-rel", "../lib/./deep/../deep/real".to_owned()),
            ("etc/chain", "in-abs".to_owned()),
            ("etc/dotdot", "/../../../lib/deep/real".to_owned()),
            ("etc/dirlink", "/lib/deep".to_owned()),
            ("etc/loop", "loop".to_owned()),
        ];
        for (p, target) in links {
            symlink(target, root.join(p)).unwrap();
        }
        let fd = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let table: &[(&str, Option<&str>)] = &[
            ("etc/abs", None),
            ("etc/rel", None),
            ("etc/in-abs", Some("inside\n")),
            ("etc/in-rel", Some("inside\n")),
            ("etc/chain", Some("inside\n")),
            ("etc/dotdot", Some("inside\n")),
            ("etc/dirlink/real", Some("inside\n")),
            ("etc/loop", None),
            ("etc/missing", None),
            ("lib/deep", None),
        ];
        let read = |f: std::fs::File| {
            let mut s = String::new();
            let mut f = f;
            f.read_to_string(&mut s).unwrap();
            s
        };
        for (path, want) in table {
            let walked = open_in_root_walk(fd.as_fd(), Path::new(path)).ok().map(|f| read(f.into()));
            assert_eq!(walked.as_deref(), *want, "walk {path}");
            let kernel = open_in_root(&fd, path).ok().filter(|f| f.metadata().unwrap().is_file()).map(read);
            assert_eq!(kernel.as_deref(), *want, "openat2 {path}");
        }
    }

    #[test]
    fn fallback_walk_follows_symlinks_as_the_root_would() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("etc/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        for resolver in [Resolver::Fallback, Resolver::Openat2] {
            let r = Root::open(&root, resolver).unwrap();
            // The directory found, and the real path it is named by.
            let found = |p: &str| {
                let d = r.open_dir(Path::new(p)).unwrap();
                (rustix::fs::fstat(&d.fd).unwrap().st_ino, d.path)
            };
            let real = |p: &str| {
                let ino = std::fs::metadata(root.join(p)).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
                (ino, PathBuf::from(p))
            };
            assert_eq!(found("abs"), real("usr/lib"), "{resolver:?}");
            assert_eq!(found("etc/up"), real(""), "{resolver:?}");
            assert_eq!(found("etc/up/usr"), real("usr"), "{resolver:?}");
            assert_eq!(found("etc/up/etc/./up/usr/lib"), real("usr/lib"), "{resolver:?}");
            assert_eq!(found("usr/lib"), real("usr/lib"), "{resolver:?}");
            let err = r.open_dir(Path::new("loop")).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(Errno::LOOP.raw_os_error()), "{resolver:?}");
            let err = r.open_dir(Path::new("file")).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(Errno::NOTDIR.raw_os_error()), "{resolver:?}");
        }
    }
}
