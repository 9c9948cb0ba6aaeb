//! Reading a directory tree for the writer and the differs: sorted depth-first walks on
//! directory file descriptors, `lstat`-style metadata, link targets, xattrs, and opening
//! files beneath a root without following symlinks.
//!
//! Walks go through directory fds (`openat` with `O_NOFOLLOW`, `fstatat` with
//! `AT_SYMLINK_NOFOLLOW`), so a directory swapped for a symlink while a container is being
//! committed makes the walk fail instead of wandering outside the tree; file contents
//! are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` for the same reason.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::entry::{EntryKind, EntryMeta, Timestamp};
use crate::error::{Error, Result};

/// The type of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Named pipe.
    Fifo,
    /// Socket (never written to layers).
    Socket,
}

impl FileKind {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            FileKind::File => 0,
            FileKind::Dir => 1,
            FileKind::Symlink => 2,
            FileKind::Char => 3,
            FileKind::Block => 4,
            FileKind::Fifo => 5,
            FileKind::Socket => 6,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => FileKind::File,
            1 => FileKind::Dir,
            2 => FileKind::Symlink,
            3 => FileKind::Char,
            4 => FileKind::Block,
            5 => FileKind::Fifo,
            6 => FileKind::Socket,
            _ => return None,
        })
    }
}

/// `lstat` metadata, with what the differs compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub kind: FileKind,
    /// `mode & 0o7777`.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl Stat {
    // The field types of `struct stat` differ between architectures; `as` is the
    // portable conversion and is lossless for every value Linux returns.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &rustix::fs::Stat) -> Self {
        let ft = FileType::from_raw_mode(st.st_mode as _);
        let kind = match ft {
            FileType::RegularFile => FileKind::File,
            FileType::Directory => FileKind::Dir,
            FileType::Symlink => FileKind::Symlink,
            FileType::CharacterDevice => FileKind::Char,
            FileType::BlockDevice => FileKind::Block,
            FileType::Fifo => FileKind::Fifo,
            _ => FileKind::Socket,
        };
        Stat {
            kind,
            perm: (st.st_mode as u32) & 0o7777,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: if kind == FileKind::File { st.st_size as u64 } else { 0 },
            mtime: Timestamp::new(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: Timestamp::new(st.st_ctime as i64, st.st_ctime_nsec as i64),
            ino: st.st_ino as u64,
            dev: st.st_dev as u64,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev as u64,
        }
    }

    /// The (dev, ino) pair naming the inode.
    pub(crate) fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

pub(crate) fn io_err(op: &'static str, path: &Path, e: impl Into<std::io::Error>) -> Error {
    Error::Io(strata_spec::IoError::new(op, path.to_path_buf(), e.into()))
}

/// Open a directory to walk (following symlinks in `path` itself: the caller chose it).
pub(crate) fn open_root(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| io_err("open directory", path, e))
}

/// `lstat` of `name` in the directory `dir`.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<Stat> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|st| Stat::from_raw(&st))
}

/// `fstat` of an open fd.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> rustix::io::Result<Stat> {
    rustix::fs::fstat(fd).map(|st| Stat::from_raw(&st))
}

/// Open the subdirectory `name` of `dir`, refusing a symlink.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The names in a directory (without `.` and `..`), sorted bytewise.
pub(crate) fn list_sorted(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<OsString>> {
    collect_sorted(Dir::read_from(dir)?)
}

fn collect_sorted(
    dir: impl Iterator<Item = rustix::io::Result<rustix::fs::DirEntry>>,
) -> rustix::io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Read the sorted names of the directory `fd` owns, keeping the fd (as the `Dir`) for
/// the `*at` calls that follow: one open per directory instead of two.
pub(crate) fn list_owned(fd: OwnedFd) -> rustix::io::Result<(Dir, Vec<OsString>)> {
    let mut dir = Dir::new(fd)?;
    let names = collect_sorted(&mut dir)?;
    Ok((dir, names))
}

/// The target of the symlink `name` in `dir`.
pub(crate) fn read_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<PathBuf> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
}

/// Whether an xattr is kept in layers: not `security.selinux` (a label of the host),
/// not overlayfs' own bookkeeping (`trusted.overlay.*`, `user.overlay.*`).
pub(crate) fn keep_xattr(name: &[u8]) -> bool {
    name != b"security.selinux" && !name.starts_with(b"trusted.overlay.") && !name.starts_with(b"user.overlay.")
}

/// Where extended attributes are read from: a path (a final symlink not followed), or
/// an open file (named by its path in errors).
#[derive(Clone, Copy)]
enum XattrsOf<'a> {
    Path(&'a Path),
    Fd(BorrowedFd<'a>, &'a Path),
}

impl XattrsOf<'_> {
    fn path(&self) -> &Path {
        match self {
            XattrsOf::Path(p) | XattrsOf::Fd(_, p) => p,
        }
    }
    fn list(&self, buf: &mut [u8]) -> rustix::io::Result<usize> {
        match self {
            XattrsOf::Path(p) => rustix::fs::llistxattr(*p, buf),
            XattrsOf::Fd(fd, _) => rustix::fs::flistxattr(fd, buf),
        }
    }
    fn list_query(&self) -> rustix::io::Result<usize> {
        match self {
            XattrsOf::Path(p) => rustix::fs::llistxattr_query(*p),
            XattrsOf::Fd(fd, _) => rustix::fs::flistxattr_query(fd),
        }
    }
    fn get(&self, name: &OsStr, buf: &mut [u8]) -> rustix::io::Result<usize> {
        match self {
            XattrsOf::Path(p) => rustix::fs::lgetxattr(*p, name, buf),
            XattrsOf::Fd(fd, _) => rustix::fs::fgetxattr(fd, name, buf),
        }
    }
    fn get_query(&self, name: &OsStr) -> rustix::io::Result<usize> {
        match self {
            XattrsOf::Path(p) => rustix::fs::lgetxattr_query(*p, name),
            XattrsOf::Fd(fd, _) => rustix::fs::fgetxattr_query(fd, name),
        }
    }
}

/// All extended attributes of `path` (not following a final symlink). A file system
/// without xattr support gives none.
pub(crate) fn read_xattrs(path: &Path) -> Result<BTreeMap<OsString, Vec<u8>>> {
    read_xattrs_of(XattrsOf::Path(path))
}

fn read_xattrs_of(of: XattrsOf<'_>) -> Result<BTreeMap<OsString, Vec<u8>>> {
    let path = of.path();
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 1024];
    let n = loop {
        match of.list(&mut names[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let need = of.list_query().map_err(|e| io_err("list xattrs", path, e))?;
                names.resize(need.max(names.len() * 2), 0);
            }
            Err(Errno::NOTSUP | Errno::PERM) => return Ok(out),
            Err(e) => return Err(io_err("list xattrs", path, e)),
        }
    };
    for name in names.get(..n).unwrap_or_default().split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = OsStr::from_bytes(name);
        let mut value = vec![0u8; 256];
        loop {
            match of.get(name, &mut value[..]) {
                Ok(len) => {
                    value.truncate(len);
                    out.insert(name.to_os_string(), value);
                    break;
                }
                Err(Errno::RANGE) => {
                    let need = of.get_query(name).map_err(|e| io_err("read xattr", path, e))?;
                    value.resize(need.max(value.len() * 2), 0);
                }
                // Removed between list and get.
                Err(Errno::NODATA) => break,
                Err(e) => return Err(io_err("read xattr", path, e)),
            }
        }
    }
    Ok(out)
}

/// The xattrs kept in layers (see [`keep_xattr`]).
pub(crate) fn layer_xattrs(path: &Path) -> Result<BTreeMap<OsString, Vec<u8>>> {
    let mut x = read_xattrs(path)?;
    x.retain(|k, _| keep_xattr(k.as_bytes()));
    Ok(x)
}

/// [`layer_xattrs`] of an open file (`rel` names it in errors): no path lookup, which
/// for a tree of small files is a good part of reading it.
pub(crate) fn layer_xattrs_fd(fd: BorrowedFd<'_>, rel: &Path) -> Result<BTreeMap<OsString, Vec<u8>>> {
    let mut x = read_xattrs_of(XattrsOf::Fd(fd, rel))?;
    x.retain(|k, _| keep_xattr(k.as_bytes()));
    Ok(x)
}

/// A 64-bit fingerprint of a set of xattrs (0 when there are none): the first 8 bytes
/// of the SHA-256 of the length-prefixed names and values in name order.
pub(crate) fn xattr_hash(x: &BTreeMap<OsString, Vec<u8>>) -> u64 {
    if x.is_empty() {
        return 0;
    }
    let mut d = strata_spec::Digester::new(strata_spec::Algorithm::Sha256);
    for (k, v) in x {
        d.update(&(k.len() as u64).to_le_bytes());
        d.update(k.as_bytes());
        d.update(&(v.len() as u64).to_le_bytes());
        d.update(v);
    }
    let digest = d.finish();
    u64::from_str_radix(digest.hex().get(..16).unwrap_or("1"), 16).unwrap_or(1).max(1)
}

/// Open the regular file at `rel` beneath `root` for reading: no symlink is followed on
/// the way (the walk saw directories there; a symlink now means the tree changed), and
/// `O_NONBLOCK` so that a file swapped for a fifo cannot block the commit.
pub(crate) fn open_file_beneath(root: BorrowedFd<'_>, rel: &Path) -> Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::openat2(
        root,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Kernels before 5.6: openat with O_NOFOLLOW protects the last component only.
        Err(Errno::NOSYS) => rustix::fs::openat(root, rel, flags, Mode::empty()).map_err(|e| io_err("open", rel, e))?,
        Err(e) => return Err(io_err("open", rel, e)),
    };
    let st = fstat(fd.as_fd()).map_err(|e| io_err("stat", rel, e))?;
    if st.kind != FileKind::File {
        return Err(Error::SourceChanged { path: rel.to_path_buf(), reason: "is no longer a regular file".into() });
    }
    Ok(File::from(fd))
}

/// Open `rel` for reading with symlinks resolved as if `root` were `/` (an image's own
/// `etc/passwd` may be a symlink within the image). Falls back to a plain open on
/// kernels without `openat2`.
pub(crate) fn open_in_root(root: BorrowedFd<'_>, rel: &Path) -> Result<File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd =
        match rustix::fs::openat2(root, rel, flags, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS)
        {
            Ok(fd) => fd,
            // Without openat2, do not follow a final symlink at all (a missing table is harmless).
            Err(Errno::NOSYS) => rustix::fs::openat(root, rel, flags | OFlags::NOFOLLOW, Mode::empty())
                .map_err(|e| io_err("open", rel, e))?,
            Err(e) => return Err(io_err("open", rel, e)),
        };
    let st = fstat(fd.as_fd()).map_err(|e| io_err("stat", rel, e))?;
    if st.kind != FileKind::File {
        return Err(io_err("open", rel, std::io::Error::other("not a regular file")));
    }
    Ok(File::from(fd))
}

/// Metadata for a layer entry from a `Stat` and what was read beside it.
pub(crate) fn entry_meta(
    rel: &Path,
    st: &Stat,
    link_target: Option<PathBuf>,
    xattrs: BTreeMap<OsString, Vec<u8>>,
) -> Result<EntryMeta> {
    let kind = match st.kind {
        FileKind::File => EntryKind::File,
        FileKind::Dir => EntryKind::Dir,
        FileKind::Symlink => EntryKind::Symlink { target: link_target.unwrap_or_default() },
        FileKind::Char => {
            EntryKind::CharDevice { major: rustix::fs::major(st.rdev), minor: rustix::fs::minor(st.rdev) }
        }
        FileKind::Block => {
            EntryKind::BlockDevice { major: rustix::fs::major(st.rdev), minor: rustix::fs::minor(st.rdev) }
        }
        FileKind::Fifo => EntryKind::Fifo,
        FileKind::Socket => {
            return Err(Error::Unrepresentable {
                path: rel.to_path_buf(),
                reason: "sockets cannot be stored in a layer".into(),
            });
        }
    };
    Ok(EntryMeta {
        path: rel.to_path_buf(),
        kind,
        mode: st.perm,
        uid: st.uid,
        gid: st.gid,
        size: st.size,
        mtime: st.mtime,
        xattrs,
    })
}

/// Read the full layer metadata of `rel` (whose `lstat` is `st`) under `root`, reading
/// the link target through `dir` (the parent directory's fd) when there is one.
pub(crate) fn full_meta(
    root: &Path,
    dir: Option<(BorrowedFd<'_>, &OsStr)>,
    rel: &Path,
    st: &Stat,
) -> Result<EntryMeta> {
    let target = if st.kind == FileKind::Symlink {
        let t = match dir {
            Some((fd, name)) => read_link_at(fd, name),
            None => rustix::fs::readlink(root.join(rel), Vec::new())
                .map(|t| PathBuf::from(OsString::from_vec(t.into_bytes()))),
        };
        Some(t.map_err(|e| io_err("readlink", rel, e))?)
    } else {
        None
    };
    let xattrs = layer_xattrs(&root.join(rel))?;
    entry_meta(rel, st, target, xattrs)
}

mod walk;

pub(crate) use walk::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call a walk makes, as text.
    #[derive(Default)]
    struct Record {
        calls: Vec<String>,
    }

    impl Visitor for Record {
        fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool> {
            // The parent fd is the entry's real parent: its lstat through it agrees.
            let again = stat_at(dir, name).map_err(|e| io_err("stat", rel, e))?;
            assert_eq!(again.ino, st.ino, "{rel:?}");
            self.calls.push(format!("visit {} {:?} {} {}", rel.display(), st.kind, st.size, st.ino));
            // Directories named `skip*` are not entered.
            Ok(!name.as_bytes().starts_with(b"skip"))
        }
        fn leave(&mut self, rel: &Path) -> Result<()> {
            self.calls.push(format!("leave {}", rel.display()));
            Ok(())
        }
    }

    /// A tree with more subdirectories per level than the walk lists ahead, nested
    /// several deep, with files, symlinks and directories the visitor skips.
    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for a in 0..13 {
            for b in 0..(a % 4 + 1) {
                let d = t.path().join(format!("a{a}/b{b}/c{}", a * b % 3));
                std::fs::create_dir_all(&d).unwrap();
                for f in 0..(a + b) % 5 {
                    std::fs::write(d.join(format!("f{f}")), vec![b'x'; a * 10 + f]).unwrap();
                }
                std::fs::create_dir_all(t.path().join(format!("a{a}/skip{b}/inner"))).unwrap();
                std::os::unix::fs::symlink("../b0", t.path().join(format!("a{a}/b{b}/up"))).unwrap();
            }
            std::fs::write(t.path().join(format!("a{a}.txt")), b"top").unwrap();
        }
        t
    }

    #[test]
    fn walking_ahead_on_threads_changes_nothing_the_visitor_sees() {
        let t = tree();
        let mut one = Record::default();
        walk_with(t.path(), &mut one, 0).unwrap();
        // Skipped directories are visited, not entered; the rest are, in tar order.
        assert!(one.calls.iter().any(|c| c.starts_with("visit a3/skip1 Dir")));
        assert!(!one.calls.iter().any(|c| c.contains("skip1/inner")));
        assert!(one.calls.iter().any(|c| c.starts_with("visit a3/b1/c0/f3 File 33")));
        let visited: Vec<&str> = one.calls.iter().filter_map(|c| c.strip_prefix("visit ")?.split(' ').next()).collect();
        let mut sorted = visited.clone();
        sorted.sort_by(|a, b| crate::entry::tar_order(Path::new(a), Path::new(b)));
        assert_eq!(visited, sorted);
        for threads in [1, 2, 3, 8] {
            let mut many = Record::default();
            walk_with(t.path(), &mut many, threads).unwrap();
            assert_eq!(many.calls, one.calls, "{threads} threads");
        }
    }

    #[test]
    fn a_visitor_error_stops_a_threaded_walk() {
        struct Fail(usize);
        impl Visitor for Fail {
            fn visit(&mut self, _: BorrowedFd<'_>, _: &OsStr, rel: &Path, _: &Stat) -> Result<bool> {
                self.0 += 1;
                if rel == Path::new("a5/b1") {
                    return Err(io_err("visit", rel, std::io::Error::other("stop")));
                }
                Ok(true)
            }
        }
        let t = tree();
        let mut one = Fail(0);
        let e1 = walk_with(t.path(), &mut one, 0).unwrap_err().to_string();
        let mut many = Fail(0);
        let e2 = walk_with(t.path(), &mut many, 2).unwrap_err().to_string();
        assert_eq!(e1, e2);
        assert_eq!(one.0, many.0);
    }

    /// The lstat a listing thread took, then `change` applied before the read-ahead.
    fn ahead_after(change: impl FnOnce(&Path)) -> Option<ReadAhead> {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"hello").unwrap();
        let dir = open_root(t.path()).unwrap();
        let st = stat_at(dir.as_fd(), OsStr::new("f")).unwrap();
        change(&t.path().join("f"));
        let budget = std::sync::Arc::new(Budget::new(1 << 20));
        let a = read_ahead(dir.as_fd(), OsStr::new("f"), &st, &budget);
        // What is charged is what is held.
        assert_eq!(budget.used(), a.as_ref().map_or(0, |a| a.content.len()));
        a
    }

    #[test]
    fn a_file_that_changed_since_its_lstat_is_not_read_ahead() {
        let same = ahead_after(|_| {}).expect("an unchanged file is read ahead");
        assert_eq!(same.content, b"hello");
        // Rewritten in place with the same size: the same inode, read as it is now (as
        // the writer reading it at its turn would).
        assert_eq!(ahead_after(|p| std::fs::write(p, b"HELLO").unwrap()).unwrap().content, b"HELLO");
        // Grown, shrunk, gone, replaced by another file or by a fifo (which must not block):
        // left to the visitor, which meets the change itself.
        assert!(ahead_after(|p| std::fs::write(p, b"hello, world").unwrap()).is_none());
        assert!(ahead_after(|p| std::fs::write(p, b"he").unwrap()).is_none());
        assert!(ahead_after(|p| std::fs::remove_file(p).unwrap()).is_none());
        assert!(
            ahead_after(|p| {
                // Moved aside, not removed: a removed inode's number may be reused at once.
                std::fs::rename(p, p.with_extension("old")).unwrap();
                std::fs::write(p, b"other").unwrap();
            })
            .is_none()
        );
        assert!(
            ahead_after(|p| {
                std::fs::remove_file(p).unwrap();
                rustix::fs::mknodat(rustix::fs::CWD, p, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
            })
            .is_none()
        );
        assert!(
            ahead_after(|p| {
                std::fs::remove_file(p).unwrap();
                std::os::unix::fs::symlink("/etc/passwd", p).unwrap();
            })
            .is_none()
        );
    }

    #[test]
    fn read_ahead_stays_within_its_budget() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..4 {
            std::fs::write(t.path().join(format!("f{i}")), vec![b'x'; 1000]).unwrap();
        }
        std::fs::write(t.path().join("big"), vec![b'x'; READ_AHEAD_FILE_MAX as usize + 1]).unwrap();
        std::fs::write(t.path().join("empty"), b"").unwrap();
        let dir = open_root(t.path()).unwrap();
        let budget = std::sync::Arc::new(Budget::new(2500));
        let take = |name: &str| {
            let st = stat_at(dir.as_fd(), OsStr::new(name)).unwrap();
            read_ahead(dir.as_fd(), OsStr::new(name), &st, &budget)
        };
        let a = take("f0").unwrap();
        let b = take("f1").unwrap();
        // No room for a third: the visitor reads it.
        assert!(take("f2").is_none());
        assert_eq!(budget.used(), 2000);
        drop(a);
        assert!(take("f3").is_some_and(|c| c.content.len() == 1000));
        // Too big, or nothing to read: never read ahead.
        drop(b);
        assert!(take("big").is_none());
        assert!(take("empty").is_none());
        assert_eq!(budget.used(), 0);
    }

    /// Records what a reading visitor is handed: each file's bytes and whether they were
    /// read ahead.
    #[derive(Default)]
    struct Reader {
        files: Vec<(PathBuf, Vec<u8>)>,
        ahead: usize,
    }

    impl Visitor for Reader {
        fn reads_files(&self) -> bool {
            true
        }
        fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool> {
            self.visit_read(dir, name, rel, st, None)
        }
        fn visit_read(
            &mut self,
            dir: BorrowedFd<'_>,
            name: &OsStr,
            rel: &Path,
            st: &Stat,
            ahead: Option<ReadAhead>,
        ) -> Result<bool> {
            if st.kind == FileKind::File {
                let bytes = match ahead {
                    Some(a) => {
                        self.ahead += 1;
                        a.content
                    }
                    None => {
                        let fd = rustix::fs::openat(dir, name, OFlags::RDONLY, Mode::empty()).unwrap();
                        let mut v = Vec::new();
                        std::io::Read::read_to_end(&mut File::from(fd), &mut v).unwrap();
                        v
                    }
                };
                self.files.push((rel.to_path_buf(), bytes));
            }
            Ok(true)
        }
    }

    #[test]
    fn files_read_ahead_are_the_files_a_walk_on_one_thread_reads() {
        let t = tree();
        let mut one = Reader::default();
        walk_with(t.path(), &mut one, 0).unwrap();
        assert_eq!(one.ahead, 0);
        for threads in [1, 3] {
            let mut many = Reader::default();
            walk_with(t.path(), &mut many, threads).unwrap();
            assert_eq!(many.files, one.files, "{threads} threads");
            assert!(many.ahead > 0, "{threads} threads read nothing ahead");
        }
    }
}
