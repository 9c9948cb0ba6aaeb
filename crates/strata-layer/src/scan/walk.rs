//! The walk: a sorted depth-first traversal of a tree for a [`Visitor`], with threads that
//! list and `lstat` directories (and read small files) ahead of it within a memory budget.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};

use super::*;
use crate::error::Result;

/// What a [`walk`] visitor sees and decides.
pub(crate) trait Visitor {
    /// Called for each entry below the root, in tar order. `dir` is the parent's fd.
    /// Return `true` to descend into a directory.
    fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool>;

    /// Whether this visitor reads the content of every regular file it is shown (the tree
    /// writer): then a threaded walk reads small files ahead ([`ReadAhead`]) and hands
    /// them to [`Visitor::visit_read`]. By default it does not.
    fn reads_files(&self) -> bool {
        false
    }

    /// [`Visitor::visit`], with the content and layer xattrs of a regular file when a walk
    /// thread read them ahead (only for a visitor that [`Visitor::reads_files`]; `None`
    /// means read it yourself, as without threads). By default, `visit`.
    fn visit_read(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        st: &Stat,
        ahead: Option<ReadAhead>,
    ) -> Result<bool> {
        drop(ahead);
        self.visit(dir, name, rel, st)
    }

    /// Called after the last entry of a directory the walk descended into (the root
    /// included, with the empty path).
    fn leave(&mut self, _rel: &Path) -> Result<()> {
        Ok(())
    }

    /// Called instead of [`Visitor::visit`] for a directory on another file system than
    /// its parent (a mount point: `/proc`, a bind mount of a running container). The walk
    /// never descends into one, like `tar --one-file-system`. By default the directory
    /// itself is visited like any other entry.
    fn mount_point(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<()> {
        self.visit(dir, name, rel, st).map(|_| ())
    }
}

/// Walk `root` depth first, names sorted bytewise (tar order), without following
/// symlinks. Returns the root's own `Stat`.
///
/// Directories are listed and their entries `lstat`-ed ahead of the visitor on
/// [`walk_threads`] threads (a few subdirectories ahead at each level of the walk): a
/// walk of many small files is mostly those system calls. The visitor still sees every
/// entry on this thread, in the same order, with the same errors at the same entries
/// as a walk on one thread; only the moment each `lstat` is taken moves earlier. For a
/// visitor that [`Visitor::reads_files`], the threads also read small regular files
/// ahead (see [`ReadAhead`]).
pub(crate) fn walk(root: &Path, v: &mut impl Visitor) -> Result<Stat> {
    walk_with(root, v, walk_threads())
}

/// Threads listing directories ahead of a [`walk`]: one per core, at most 4; 0 (walk on
/// the calling thread alone) with one core or with `STRATA_WALK_THREADS=0`.
pub(crate) fn walk_threads() -> usize {
    if let Ok(n) = std::env::var("STRATA_WALK_THREADS")
        && let Ok(n) = n.trim().parse::<usize>()
    {
        return n.min(16);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= 1 { 0 } else { cores.min(4) }
}

/// [`walk`] with `threads` listing threads (0: none, every system call on this thread).
pub(crate) fn walk_with(root: &Path, v: &mut impl Visitor, threads: usize) -> Result<Stat> {
    let fd = open_root(root)?;
    let st = fstat(fd.as_fd()).map_err(|e| io_err("stat", root, e))?;
    let mut rel = PathBuf::new();
    if threads == 0 {
        walk_dir(list(fd, None), st.dev, &mut rel, v, None)?;
        return Ok(st);
    }
    let budget = v.reads_files().then(|| std::sync::Arc::new(Budget::new(READ_AHEAD_BYTES)));
    std::thread::scope(|s| -> Result<()> {
        let ahead = Ahead::start(s, threads, budget).map_err(|e| io_err("start the walk threads", root, e))?;
        walk_dir(list(fd, None), st.dev, &mut rel, v, Some(&ahead))
    })?;
    Ok(st)
}

/// Largest regular file a walk thread reads ahead: beyond it, the open and read system
/// calls are small against the bytes, and the visitor reads the file itself (streaming).
pub(crate) const READ_AHEAD_FILE_MAX: u64 = 128 << 10;
/// Most bytes of file content read ahead and not yet taken by the visitor, over all the
/// walk's threads and listings: the memory read-ahead may use. A file that would go over
/// is left for the visitor to read (no thread ever waits for room).
pub(crate) const READ_AHEAD_BYTES: usize = 16 << 20;

/// The bytes of file content read ahead and not yet released, against a limit.
pub(crate) struct Budget {
    used: std::sync::atomic::AtomicUsize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget { used: std::sync::atomic::AtomicUsize::new(0), limit }
    }

    /// Take `bytes` of the budget if they fit.
    fn charge(self: &std::sync::Arc<Self>, bytes: usize) -> Option<Charge> {
        use std::sync::atomic::Ordering;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .ok()?;
        Some(Charge { budget: self.clone(), bytes })
    }

    /// Bytes currently charged.
    #[cfg(test)]
    pub(super) fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Bytes taken from a [`Budget`], given back when dropped.
struct Charge {
    budget: std::sync::Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A small regular file read by a walk thread before the visitor reached it: the same
/// inode as its `lstat` (checked on the open fd), exactly the size that `lstat` gave, its
/// layer xattrs read through the same fd. Anything unexpected on the way (the file gone,
/// replaced, grown or shrunk, an error) gives no `ReadAhead`, and the visitor reads the
/// file as it would without threads, meeting the same errors.
pub(crate) struct ReadAhead {
    /// The file's bytes.
    pub content: Vec<u8>,
    /// Its extended attributes kept in layers ([`keep_xattr`]).
    pub xattrs: BTreeMap<OsString, Vec<u8>>,
    _charge: Charge,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead").field("len", &self.content.len()).finish_non_exhaustive()
    }
}

/// Read the regular file `name` of `dir` ahead if its `lstat` `st` says it is small
/// enough and the budget has room (see [`ReadAhead`]).
pub(crate) fn read_ahead(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
    budget: &std::sync::Arc<Budget>,
) -> Option<ReadAhead> {
    use std::io::Read;
    if st.kind != FileKind::File || st.size == 0 || st.size > READ_AHEAD_FILE_MAX {
        return None;
    }
    let len = usize::try_from(st.size).ok()?;
    let charge = budget.charge(len)?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).ok()?;
    let now = fstat(fd.as_fd()).ok()?;
    if now.kind != FileKind::File || now.id() != st.id() || now.size != st.size {
        return None;
    }
    let xattrs = layer_xattrs_fd(fd.as_fd(), Path::new(name)).ok()?;
    let mut content = vec![0u8; len];
    let mut f = File::from(fd);
    f.read_exact(&mut content).ok()?;
    Some(ReadAhead { content, xattrs, _charge: charge })
}

/// One name of a listed directory: its `lstat`, and its content when read ahead.
struct Listed1 {
    name: OsString,
    st: rustix::io::Result<Stat>,
    ahead: Option<ReadAhead>,
}

/// A directory listed: its fd (as the `Dir` that read it) and each name with its
/// `lstat`, sorted bytewise.
struct Listing {
    dir: Dir,
    entries: Vec<Listed1>,
}

/// A listing, or the operation that failed and how.
type Listed = std::result::Result<Listing, (&'static str, Errno)>;

/// List the directory `fd` owns and `lstat` every entry, reading small files ahead
/// against `budget` when there is one.
fn list(fd: OwnedFd, budget: Option<&std::sync::Arc<Budget>>) -> Listed {
    let read = |e| ("read directory", e);
    let (dir, names) = list_owned(fd).map_err(read)?;
    let dfd = dir.fd().map_err(read)?;
    let entries = names
        .into_iter()
        .map(|name| {
            let st = stat_at(dfd, &name);
            let ahead = match (&st, budget) {
                (Ok(st), Some(b)) => read_ahead(dfd, &name, st, b),
                _ => None,
            };
            Listed1 { name, st, ahead }
        })
        .collect();
    Ok(Listing { dir, entries })
}

/// A listing on its way from a [`walk`] thread.
type Pending = std::sync::mpsc::Receiver<Listed>;
/// A directory to list, and where its listing goes.
type ListJob = (OwnedFd, std::sync::mpsc::SyncSender<Listed>);

/// The threads listing directories ahead of the walk. Jobs are taken in the order they
/// were given, and none waits on another, so waiting for any one of them always ends.
struct Ahead {
    jobs: std::sync::mpsc::Sender<ListJob>,
    /// Subdirectories listed ahead at each level of the walk.
    window: usize,
}

/// A listing thread's loop: list the directories sent, reading files ahead against
/// `budget` when there is one.
fn lister(rx: &std::sync::Mutex<std::sync::mpsc::Receiver<ListJob>>, budget: Option<&std::sync::Arc<Budget>>) {
    loop {
        // A poisoned lock means another lister panicked: stop too.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        // The sender is dropped when the walk ends: then stop.
        let Ok((fd, back)) = job else { return };
        // The walk may have stopped waiting (an error): nothing to do then.
        let _ = back.send(list(fd, budget));
    }
}

impl Ahead {
    /// Start `threads` listing threads; with a `budget`, they read small files ahead.
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        threads: usize,
        budget: Option<std::sync::Arc<Budget>>,
    ) -> std::io::Result<Ahead> {
        let (tx, rx) = std::sync::mpsc::channel::<ListJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let budget = budget.clone();
            std::thread::Builder::new()
                .name(format!("strata-walk-{i}"))
                .spawn_scoped(scope, move || lister(&rx, budget.as_ref()))?;
        }
        Ok(Ahead { jobs: tx, window: 2 * threads })
    }

    /// List the subdirectory `name` of `dir` ahead.
    fn submit(&self, dir: BorrowedFd<'_>, name: &OsStr) -> Pending {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        match open_dir_at(dir, name) {
            // If the threads are gone, the receiver reports it (its sender is dropped).
            Ok(fd) => drop(self.jobs.send((fd, tx))),
            Err(e) => drop(tx.send(Err(("open directory", e)))),
        }
        rx
    }
}

fn walk_dir(listing: Listed, dev: u64, rel: &mut PathBuf, v: &mut impl Visitor, ahead: Option<&Ahead>) -> Result<()> {
    let Listing { dir: d, entries } = listing.map_err(|(op, e)| io_err(op, rel, e))?;
    let dir = d.fd().map_err(|e| io_err("read directory", rel, e))?;
    // The subdirectories the walk may enter (not mount points), in order, and their
    // listings started ahead, at most `window` of them at a time.
    let subdirs: Vec<usize> = match ahead {
        Some(_) => entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.st.as_ref().is_ok_and(|st| st.kind == FileKind::Dir && st.dev == dev))
            .map(|(i, _)| i)
            .collect(),
        None => Vec::new(),
    };
    let mut pending: std::collections::VecDeque<(usize, Pending)> = std::collections::VecDeque::new();
    let mut next_sub = 0;
    // Entries are taken out of the listing as visited, so content read ahead is freed
    // (and its budget given back) as soon as the visitor is done with it.
    let mut entries = entries;
    for i in 0..entries.len() {
        if let Some(a) = ahead {
            while pending.len() < a.window
                && let Some(&j) = subdirs.get(next_sub)
            {
                let name = entries.get(j).map(|e| e.name.as_os_str()).unwrap_or_default();
                pending.push_back((j, a.submit(dir, name)));
                next_sub += 1;
            }
        }
        // This entry's listing, if it was started ahead (the front of the queue).
        let started = match pending.front() {
            Some((j, _)) if *j == i => pending.pop_front().map(|(_, p)| p),
            _ => None,
        };
        let Some(entry) = entries.get_mut(i) else { break };
        let content = entry.ahead.take();
        let (name, st) = (entry.name.as_os_str(), &entry.st);
        rel.push(name);
        let st = match st {
            Ok(st) => *st,
            // Removed since the listing (a running container): nothing to record.
            Err(Errno::NOENT) => {
                rel.pop();
                continue;
            }
            Err(e) => return Err(io_err("stat", rel, *e)),
        };
        if st.kind == FileKind::Dir && st.dev != dev {
            v.mount_point(dir, name, rel, &st)?;
        } else if v.visit_read(dir, name, rel, &st, content)? && st.kind == FileKind::Dir {
            let listing = match started {
                // The listing threads only stop early on a panic.
                Some(p) => p.recv().unwrap_or(Err(("read directory", Errno::IO))),
                None => open_dir_at(dir, name).map_err(|e| ("open directory", e)).and_then(|fd| list(fd, None)),
            };
            walk_dir(listing, dev, rel, v, ahead)?;
        }
        rel.pop();
    }
    v.leave(rel)
}
