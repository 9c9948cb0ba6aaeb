//! What is done to a regular file once it exists: its content, owner, mode, xattrs and
//! mtime, all through its fd, on writer threads. File creation is most of an unpack of
//! many small files, and the threads share it two ways:
//!
//! - In a directory this unpack made (see `Disk::fresh`), a small regular file whose name
//!   the calling thread has not made itself is created by a writer too: the calling
//!   thread hands over `(directory, name)` and goes on. Every name the calling thread
//!   touches otherwise (a directory, a symlink, a hard link, a whiteout, a lookup that
//!   is not the cached parent) waits first until every creation handed over is done
//!   ([`Queue::settle`]), so each of its operations sees the tree a single thread would
//!   have made; creations of one name go to one writer, in layer order, so a file
//!   written twice ends as the later entry says.
//! - Elsewhere the calling thread creates the file in layer order and hands over its fd
//!   to be written and closed.
//!
//! A writer never touches a directory entry other than the name handed over to it.
//! Directory mtimes (and deferred modes) are set once every writer is done.

use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Condvar, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::Result;
use crate::fsops::{self, Dir, errno};
use crate::union::{Ctx, Node};

/// Files up to this size go to the writer threads (bigger ones are written at once:
/// they are few, and bandwidth, not per-file work, is their cost).
pub(super) const QUEUED_MAX: u64 = 256 << 10;
/// Files queued at most, over all writers (with [`QUEUED_MAX`]: 16 MiB of content in
/// flight at most, and one file more per writer being written).
const QUEUE: usize = 64;

/// Writer threads by default: the calling thread parses and hashes, another inflates;
/// more writers than this only wait on each other's directory locks.
pub(super) fn default_writers() -> usize {
    match std::env::var("STRATA_UNPACK_WRITERS").ok().and_then(|v| v.parse::<usize>().ok()) {
        Some(n) if n > 0 => n.min(16),
        _ => std::thread::available_parallelism().map_or(2, std::num::NonZero::get).clamp(2, 4),
    }
}

fn is(e: &io::Error, code: Errno) -> bool {
    e.raw_os_error() == Some(code.raw_os_error())
}

/// How metadata is applied, shared by all threads.
#[derive(Debug, Default)]
pub(super) struct Meta {
    /// Rootless: no `chown`; what cannot be set is skipped.
    pub(super) rootless: bool,
    /// Extended attributes refused (`EOPNOTSUPP`, or `EPERM`/`EACCES` rootless) and
    /// skipped.
    pub(super) xattrs_skipped: AtomicU64,
}

/// Where extended attributes go: an open file, or a name in a directory (not followed).
#[derive(Clone, Copy)]
pub(super) enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a OsStr),
}

impl Meta {
    pub(super) fn set_xattrs(&self, target: XattrTarget<'_>, node: &Node, cx: Ctx<'_>) -> Result<()> {
        for (k, v) in &node.xattrs {
            let name = OsStr::from_bytes(k);
            let r = match target {
                XattrTarget::Fd(fd) => {
                    rustix::fs::fsetxattr(fd, name, v, rustix::fs::XattrFlags::empty()).map_err(errno)
                }
                XattrTarget::At(dir, entry) => fsops::lsetxattr_at(dir, entry, name, v),
            };
            match r {
                Ok(()) => {}
                Err(e)
                    if is(&e, Errno::OPNOTSUPP)
                        || (is(&e, Errno::PERM) && self.rootless)
                        || (is(&e, Errno::ACCESS) && self.rootless) =>
                {
                    self.xattrs_skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(cx.fs("setxattr")(e)),
            }
        }
        Ok(())
    }

    pub(super) fn chown_fd(&self, fd: BorrowedFd<'_>, node: &Node, cx: Ctx<'_>) -> Result<()> {
        if self.rootless {
            return Ok(());
        }
        rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(node.uid)), Some(rustix::fs::Gid::from_raw(node.gid)))
            .map_err(cx.errno("chown"))
    }

    /// Owner, mode, xattrs and mtime of a regular file, on its fd (in this order: chown
    /// clears setuid bits, and writing clears file capabilities). One `fstat` tells
    /// which of `fchown` and `fchmod` are needed: most files are created right already.
    pub(super) fn file(&self, fd: BorrowedFd<'_>, node: &Node, cx: Ctx<'_>) -> Result<()> {
        let st = rustix::fs::fstat(fd).map_err(cx.errno("stat"))?;
        let chown = !self.rootless && (st.st_uid, st.st_gid) != (node.uid, node.gid);
        if chown {
            self.chown_fd(fd, node, cx)?;
        }
        if chown || st.st_mode & 0o7777 != node.mode {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(node.mode)).map_err(cx.errno("chmod"))?;
        }
        self.set_xattrs(XattrTarget::Fd(fd), node, cx)?;
        rustix::fs::futimens(fd, &super::disk::timestamps(node.mtime)).map_err(cx.errno("set mtime"))
    }
}

/// Where a job's file is: already created (its fd), or to create as `name` in `dir`.
enum Target {
    Created(OwnedFd),
    Create { dir: Arc<Dir>, name: Box<OsStr> },
}

/// A small file to finish (and maybe create) on a writer thread.
struct Job {
    target: Target,
    content: Vec<u8>,
    node: Node,
    layer: Arc<str>,
    entry: Box<[u8]>,
}

/// Creations handed over and not yet done, and whether a writer stopped: what
/// [`Queue::settle`] waits on.
#[derive(Default)]
struct Pending {
    creates: AtomicUsize,
    failed: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Pending {
    fn wake(&self) {
        // Taken so that a waiter between its check and its wait cannot miss the wake-up.
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.changed.notify_all();
    }

    fn created(&self) {
        if self.creates.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake();
        }
    }
}

/// Marks the writers failed unless disarmed: a writer that returns an error or panics
/// must not leave [`Queue::settle`] waiting.
struct FailOnDrop<'a>(&'a Pending, bool);

impl Drop for FailOnDrop<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.failed.store(true, Ordering::Release);
            self.0.wake();
        }
    }
}

/// The sending side, held by the applier while the writer threads run.
pub(super) struct Queue {
    writers: Vec<SyncSender<Job>>,
    pending: Arc<Pending>,
    /// Where the next fill job goes (round robin).
    next: usize,
}

/// The writer threads' handles: join each (after dropping the [`Queue`]) for its error.
pub(super) type Handles<'scope> = Vec<std::thread::ScopedJoinHandle<'scope, Result<()>>>;

impl Queue {
    /// Start `writers` (at least one) threads in `scope`.
    pub(super) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        meta: Arc<Meta>,
        writers: usize,
    ) -> io::Result<(Queue, Handles<'scope>)> {
        let writers = writers.max(1);
        let pending = Arc::new(Pending::default());
        let mut senders = Vec::with_capacity(writers);
        let mut handles = Vec::with_capacity(writers);
        for i in 0..writers {
            let (tx, rx) = sync_channel((QUEUE / writers).max(1));
            let (meta, pending) = (meta.clone(), pending.clone());
            let handle = std::thread::Builder::new()
                .name(format!("strata-files-{i}"))
                .spawn_scoped(scope, move || run(&rx, &meta, &pending))?;
            senders.push(tx);
            handles.push(handle);
        }
        Ok((Queue { writers: senders, pending, next: 0 }, handles))
    }

    /// Whether a writer stopped on an error (join it to have the error).
    pub(super) fn failed(&self) -> bool {
        self.pending.failed.load(Ordering::Acquire)
    }

    /// Hand over a created file: `false` if the writers are gone.
    pub(super) fn send(&mut self, fd: OwnedFd, content: Vec<u8>, node: &Node, cx: Ctx<'_>, layer: &Arc<str>) -> bool {
        let job = Job {
            target: Target::Created(fd),
            content,
            node: node.clone(),
            layer: layer.clone(),
            entry: cx.entry.into(),
        };
        self.next = (self.next + 1) % self.writers.len();
        self.writers[self.next].send(job).is_ok()
    }

    /// Hand over a file to create as `name` in `dir`: `false` if the writers are gone.
    /// Every creation of one name in one directory goes to the same writer, in the
    /// order handed over; the caller calls [`Queue::settle`] before it touches the
    /// directory's names itself.
    pub(super) fn send_create(
        &mut self,
        dir: &Arc<Dir>,
        name: &OsStr,
        content: Vec<u8>,
        node: &Node,
        cx: Ctx<'_>,
        layer: &Arc<str>,
    ) -> bool {
        let mut h = std::hash::DefaultHasher::new();
        (dir.path.as_os_str(), name).hash(&mut h);
        let writer = usize::try_from(h.finish() % self.writers.len() as u64).unwrap_or(0);
        let target = Target::Create { dir: dir.clone(), name: name.into() };
        let job = Job { target, content, node: node.clone(), layer: layer.clone(), entry: cx.entry.into() };
        self.pending.creates.fetch_add(1, Ordering::AcqRel);
        if self.writers[writer].send(job).is_ok() {
            return true;
        }
        self.pending.creates.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Wait until every creation handed over is done: `false` if a writer stopped.
    pub(super) fn settle(&self) -> bool {
        let p = &self.pending;
        if p.creates.load(Ordering::Acquire) == 0 {
            return !self.failed();
        }
        let mut guard = p.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while p.creates.load(Ordering::Acquire) != 0 && !self.failed() {
            guard = p.changed.wait(guard).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        !self.failed()
    }
}

/// Create `name` in `dir` for writing, never through what is there. Only regular files
/// and the like can be there (the applier hands over names in directories it made, and
/// never names it made itself): one is unlinked, as the applier's own replacing would.
fn create(dir: BorrowedFd<'_>, name: &OsStr, mode: u32, cx: Ctx<'_>) -> Result<OwnedFd> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(mode & 0o777);
    match rustix::fs::openat(dir, name, flags, mode) {
        Err(Errno::EXIST) => {}
        r => return r.map_err(cx.errno("create")),
    }
    let st = fsops::lstat(dir, name).map_err(cx.fs("stat"))?;
    if let Some(st) = st {
        if matches!(fsops::file_type(&st), FileType::Directory | FileType::Symlink) {
            // Not reachable through the applier; refused rather than guessed at.
            return Err(cx.errno("create")(Errno::EXIST));
        }
        rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(cx.errno("remove existing"))?;
    }
    rustix::fs::openat(dir, name, flags, mode).map_err(cx.errno("create"))
}

fn run(rx: &Receiver<Job>, meta: &Meta, pending: &Pending) -> Result<()> {
    let mut armed = FailOnDrop(pending, true);
    while let Ok(job) = rx.recv() {
        let cx = Ctx { layer: &job.layer, entry: &job.entry };
        let (fd, created) = match job.target {
            Target::Created(fd) => (fd, false),
            Target::Create { dir, name } => (create(dir.fd.as_fd(), &name, job.node.mode, cx)?, true),
        };
        let f = std::fs::File::from(fd);
        f.write_all_at(&job.content, 0).map_err(cx.fs("write"))?;
        meta.file(f.as_fd(), &job.node, cx)?;
        // Closed before the creation counts as done.
        drop(f);
        if created {
            pending.created();
        }
    }
    armed.1 = false;
    Ok(())
}
