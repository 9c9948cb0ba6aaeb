//! File system operations confined to a root directory.
//!
//! Every path is resolved by [`Root`] to a directory fd *inside* the root, with symlinks
//! interpreted as if the root were `/` (absolute targets restart at the root, `..` stops
//! at it). The kernel does this with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`;
//! where openat2 is missing (Linux < 5.6, or a seccomp filter that refuses it) a
//! component-by-component walk with `O_NOFOLLOW` does the same in user space.
//!
//! The last component of a path is never followed: every operation works on
//! `(parent fd, name)` with `O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL`, or on an fd
//! of the object itself. Nothing here guards against *another process* changing the
//! tree while we work on it (see the threat model in `docs/security.md`).

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

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

/// The most symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Retries of `openat2` when it returns `EAGAIN` (a rename raced the lookup).
const OPENAT2_RETRIES: usize = 16;

pub(crate) fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// A root directory and a one-entry cache of the last parent directory resolved.
pub(crate) struct Root {
    fd: OwnedFd,
    resolver: Resolver,
    /// Normalised path of the cached directory, and its fd.
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
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
        Ok(Root { fd, resolver, cache: None })
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

    /// Open the directory `rel` (a normalised relative path; empty is the root) inside
    /// the root, following symlinks as the root would. Returns an `O_PATH` fd.
    pub(crate) fn open_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return rustix::fs::openat(
                &self.fd,
                c".",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno);
        }
        match self.resolver {
            Resolver::Fallback => walk_in_root(&self.fd, rel),
            _ => {
                let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
                let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let mut tries = 0;
                loop {
                    match rustix::fs::openat2(&self.fd, rel, flags, Mode::empty(), how) {
                        Err(Errno::AGAIN) if tries < OPENAT2_RETRIES => tries += 1,
                        r => return r.map_err(errno),
                    }
                }
            }
        }
    }

    /// The parent directory of `rel` (non-empty) and its last component, the parent
    /// from the cache when it is the same as last time. With `create`, missing parent
    /// directories are made (mode 0755, owned by the caller).
    pub(crate) fn parent<'p>(&mut self, rel: &'p Path, create: bool) -> io::Result<(Rc<OwnedFd>, &'p OsStr)> {
        let name = rel.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let key = parent.as_os_str().as_bytes();
        if let Some((k, fd)) = &self.cache
            && k == key
        {
            return Ok((fd.clone(), name));
        }
        let fd = if create { self.ensure_dir(parent)? } else { self.open_dir(parent)? };
        let fd = Rc::new(fd);
        self.cache = Some((key.to_vec(), fd.clone()));
        Ok((fd, name))
    }

    /// Open directory `rel`, creating it and its missing ancestors (mode 0755).
    pub(crate) fn ensure_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        match self.open_dir(rel) {
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
            r => return r,
        }
        let (Some(name), Some(parent)) = (rel.file_name(), rel.parent()) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "root directory is missing"));
        };
        let pfd = self.ensure_dir(parent)?;
        match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(errno(e)),
        }
        // A dangling symlink in the way gives EEXIST above and ENOENT here: an error.
        self.open_dir(rel)
    }
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

/// Resolve `rel` under `root` in user space, as `RESOLVE_IN_ROOT` would: one component
/// at a time, opened with `O_PATH | O_NOFOLLOW`; a symlink's target is spliced into the
/// components still to walk (an absolute one restarting at the root); `..` goes up one
/// directory and never above the root. The result must be a directory.
fn walk_in_root(root: &OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    // Components still to walk, last first.
    let mut todo: Vec<Vec<u8>> = rel.as_os_str().as_bytes().rsplit(|&b| b == b'/').map(<[u8]>::to_vec).collect();
    // Directories walked so far, below the root.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(comp) = todo.pop() {
        match &comp[..] {
            b"" | b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let cur = stack.last().map_or(root.as_fd(), AsFd::as_fd);
        let fd = rustix::fs::openat(
            cur,
            OsStr::from_bytes(&comp),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let st = rustix::fs::fstat(&fd).map_err(errno)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => stack.push(fd),
            FileType::Symlink => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(errno(Errno::LOOP));
                }
                let target = rustix::fs::readlinkat(cur, OsStr::from_bytes(&comp), Vec::new()).map_err(errno)?;
                let target = target.as_bytes();
                if target.first() == Some(&b'/') {
                    stack.clear();
                }
                todo.extend(target.rsplit(|&b| b == b'/').map(<[u8]>::to_vec));
            }
            _ => return Err(errno(Errno::NOTDIR)),
        }
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => rustix::fs::openat(root, c".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno),
    }
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
            let ino = |p: &str| rustix::fs::fstat(r.open_dir(Path::new(p)).unwrap()).unwrap().st_ino;
            let real =
                |p: &str| std::fs::metadata(root.join(p)).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
            assert_eq!(ino("abs"), real("usr/lib"), "{resolver:?}");
            assert_eq!(ino("etc/up"), real(""), "{resolver:?}");
            assert_eq!(ino("etc/up/usr"), real("usr"), "{resolver:?}");
            let err = r.open_dir(Path::new("loop")).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(Errno::LOOP.raw_os_error()), "{resolver:?}");
            let err = r.open_dir(Path::new("file")).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(Errno::NOTDIR.raw_os_error()), "{resolver:?}");
        }
    }
}
