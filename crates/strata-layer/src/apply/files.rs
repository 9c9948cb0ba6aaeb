//! What is done to a regular file once it exists: its content, owner, mode, xattrs and
//! mtime, all through its fd, on writer threads. File creation is most of an unpack of
//! many small files, and the threads share it two ways:
//!
//! - In a directory this unpack made (see `Disk::fresh`), a small regular file whose name
//!   the calling thread has not made itself is created by a writer too: the calling
//!   thread hands over `(directory, name)` and goes on. Before the calling thread
//!   touches a name itself, it waits until every creation handed over is done
//!   ([`Queue::settle`]) if it could meet one of them: when it makes, replaces or links
//!   a name in a directory with creations not done, or a name whose subtree holds such
//!   a directory (replacing it removes the subtree); when it resolves a directory below
//!   one, or through a symlink (which may lead anywhere); and for whiteouts, opaque
//!   markers and the root. So each of its operations sees the tree a single thread
//!   would have made, while a new directory's files are handed over as the last one's
//!   are still being made. Creations of one name go to one writer, in layer order, so a
//!   file written twice ends as the later entry says. Files go over in batches
//!   (`BATCH`) whose buffers come back to be refilled; each writer's queue is bounded
//!   by bytes (`LOOKAHEAD`), deep enough that the calling thread rarely waits on one
//!   writer while another has nothing to do.
//! - Elsewhere the calling thread creates the file in layer order and hands over its fd
//!   to be written and closed.
//!
//! A writer never touches a directory entry other than the name handed over to it.
//! Directory mtimes (and deferred modes) are set once every writer is done.

use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Condvar, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::Result;
use crate::fsops::{self, Dir, errno};
use crate::union::{Ctx, Data, Node};

/// Files up to this size go to the writer threads (bigger ones are written at once:
/// they are few, and bandwidth, not per-file work, is their cost).
pub(super) const QUEUED_MAX: u64 = 256 << 10;
/// Files handed to a writer at once: a sleeping writer is woken once per batch, not
/// once per file (with a million small files, a million futex calls less).
const BATCH: usize = 16;
/// Content bytes that end a batch early.
const BATCH_BYTES: usize = 256 << 10;
/// What each writer may have queued and not yet written: the bytes of its batches
/// (contents and names) plus [`JOB_COST`] a file; at most this plus one batch (under
/// [`BATCH_BYTES`] + [`QUEUED_MAX`]) is in flight per writer. Files go to writers by a
/// hash of their names, so one writer's queue fills before another's now and then:
/// with two batches a writer the calling thread waited on a full queue while the other
/// writer ran dry, and an unpack of small files asked for 1.5-1.9 of 2 cores; with a
/// few thousand small files a writer, 1.9-2.0 (`perf sched`, docs/benchmarks.md).
const LOOKAHEAD: usize = 4 << 20;
/// What a queued file counts for besides its bytes (its job and node).
const JOB_COST: usize = 256;
/// Batches a writer's channel holds: more than [`LOOKAHEAD`] can fill with batches of
/// [`BATCH`] small files, so the byte count is what bounds the queue.
const DEPTH: usize = 1024;
/// Empty batches kept per writer to be filled again (more are dropped).
const SPARE: usize = 4;

/// Writer threads by default: the calling thread parses and hashes, another inflates;
/// more writers than this only take turns on the cores.
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
    /// Who creates files, when the process's umask could be read: what a file created
    /// here gets can then be told without an `fstat` (see [`Told`]).
    pub(super) creator: Option<Creator>,
    /// A file created as [`Told`] turned out otherwise: every file is asked (`fstat`)
    /// from then on.
    told_wrong: AtomicBool,
}

/// This process as the creator of files: its effective ids and umask.
#[derive(Debug, Clone, Copy)]
pub(super) struct Creator {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) umask: u32,
}

impl Creator {
    /// This process, if its umask can be read (`/proc/self/status`, Linux 4.7 and
    /// later: setting the umask to read it would change it for every thread).
    pub(super) fn of_process() -> Option<Creator> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let umask = status.lines().find_map(|l| l.strip_prefix("Umask:"))?.trim();
        Some(Creator {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            umask: u32::from_str_radix(umask, 8).ok()?,
        })
    }
}

/// What a regular file this process creates (`O_CREAT | O_EXCL`) with permission
/// bits `mode` gets, told instead of asked (an `fstat` less a file): the owner is the
/// effective uid, the group the directory's when it is set-group-ID and the effective
/// gid otherwise, and the mode `mode & !umask` when the directory has no default ACL.
/// `Disk` tells it for the directories whose metadata it set itself. Until one file of
/// the directory was asked and found as told (`verified`), each file is asked; one found
/// otherwise (a file system that decides owners or modes itself) stops all telling.
#[derive(Debug, Clone)]
pub(super) struct Told {
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// Its permission bits as created (the umask applied).
    pub(super) mode: u32,
    /// Whether a file of its directory was found as told.
    pub(super) verified: Arc<AtomicBool>,
}

/// Where extended attributes go: an open file, or a name in a directory (not followed).
#[derive(Clone, Copy)]
pub(super) enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a OsStr),
}

impl Meta {
    pub(super) fn new(rootless: bool, creator: Option<Creator>) -> Meta {
        Meta { rootless, creator, ..Meta::default() }
    }

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

    /// Owner, mode, xattrs and mtime of a regular file just created, on its fd (in this
    /// order: chown clears setuid bits, and writing clears file capabilities). What it
    /// was created with, told or asked (one `fstat`), says which of `fchown` and
    /// `fchmod` are needed: most files are created right already.
    pub(super) fn file(&self, fd: BorrowedFd<'_>, node: &Node, told: Option<&Told>, cx: Ctx<'_>) -> Result<()> {
        let (uid, gid, mode) = match told {
            Some(t) if t.verified.load(Ordering::Acquire) && !self.told_wrong.load(Ordering::Acquire) => {
                (t.uid, t.gid, t.mode)
            }
            _ => {
                let st = rustix::fs::fstat(fd).map_err(cx.errno("stat"))?;
                let asked = (st.st_uid, st.st_gid, st.st_mode & 0o7777);
                if let Some(t) = told {
                    if asked == (t.uid, t.gid, t.mode) {
                        t.verified.store(true, Ordering::Release);
                    } else {
                        self.told_wrong.store(true, Ordering::Release);
                    }
                }
                asked
            }
        };
        let chown = !self.rootless && (uid, gid) != (node.uid, node.gid);
        if chown {
            self.chown_fd(fd, node, cx)?;
        }
        if chown || mode != node.mode {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(node.mode)).map_err(cx.errno("chmod"))?;
        }
        self.set_xattrs(XattrTarget::Fd(fd), node, cx)?;
        rustix::fs::futimens(fd, &super::disk::timestamps(node.mtime)).map_err(cx.errno("set mtime"))
    }
}

/// Where a job's file is: already created (its fd), or to create as the name at
/// `name` (of the batch's bytes) in `dir` (`pending` counts the creations in `dir` not
/// done yet; `told`: what the file will be created with, when it can be told).
enum Target {
    Created(OwnedFd),
    Create { dir: Arc<Dir>, name: Range<usize>, pending: Arc<AtomicUsize>, told: Option<Told> },
}

/// A small file to finish (and maybe create) on a writer thread; its content and the
/// entry's name (for errors) are ranges of its batch's bytes.
struct Job {
    target: Target,
    content: Range<usize>,
    node: Node,
    layer: Arc<str>,
    entry: Range<usize>,
}

/// Jobs for one writer, sent together, with their names and contents in one buffer:
/// a batch goes to its writer and comes back empty to be filled again, so handing over
/// a file allocates nothing.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    bytes: Vec<u8>,
    /// What it counts for against its writer's [`LOOKAHEAD`], set when it is sent.
    cost: usize,
}

impl Batch {
    fn cost(&self) -> usize {
        self.bytes.len() + self.jobs.len() * JOB_COST
    }

    /// Append `b` to the bytes: where it is.
    fn put(&mut self, b: &[u8]) -> Range<usize> {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(b);
        at..self.bytes.len()
    }
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
/// must not leave [`Queue::settle`] waiting, nor the calling thread waiting for room
/// in its queue (woken by an empty batch sent back).
struct FailOnDrop<'a>(&'a Pending, &'a SyncSender<Batch>, bool);

impl Drop for FailOnDrop<'_> {
    fn drop(&mut self) {
        if self.2 {
            self.0.failed.store(true, Ordering::Release);
            self.0.wake();
            let _ = self.1.try_send(Batch::default());
        }
    }
}

/// One writer as the calling thread sees it.
struct Lane {
    tx: SyncSender<Batch>,
    /// The cost of the batches sent to it and not yet written (see [`LOOKAHEAD`]).
    queued: Arc<AtomicUsize>,
    /// The batch being filled for it.
    batch: Batch,
}

/// The sending side, held by the applier while the writer threads run.
pub(super) struct Queue {
    lanes: Vec<Lane>,
    /// Batches the writers are done with (each one sent back also says that a writer's
    /// queue has room again).
    empty: Receiver<Batch>,
    /// Empty batches kept to be filled again.
    spare: Vec<Batch>,
    pending: Arc<Pending>,
    /// Where the next created file goes (round robin).
    next: usize,
    /// The directories creations were handed over in, each with its count of those not
    /// done, the latest last (those done are dropped as they are seen).
    handed: Vec<(Arc<Dir>, Arc<AtomicUsize>)>,
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
        // Batches that come back beyond these are dropped.
        let (back, empty) = sync_channel(writers * SPARE);
        let mut lanes = Vec::with_capacity(writers);
        let mut handles = Vec::with_capacity(writers);
        for i in 0..writers {
            let (tx, rx) = sync_channel(DEPTH);
            let queued = Arc::new(AtomicUsize::new(0));
            let (meta, pending, back, done) = (meta.clone(), pending.clone(), back.clone(), queued.clone());
            let handle = std::thread::Builder::new()
                .name(format!("strata-files-{i}"))
                .spawn_scoped(scope, move || run(&rx, &back, &done, &meta, &pending))?;
            lanes.push(Lane { tx, queued, batch: Batch::default() });
            handles.push(handle);
        }
        Ok((Queue { lanes, empty, spare: Vec::new(), pending, next: 0, handed: Vec::new() }, handles))
    }

    /// Whether a writer stopped on an error (join it to have the error).
    pub(super) fn failed(&self) -> bool {
        self.pending.failed.load(Ordering::Acquire)
    }

    /// Add a job to writer `w`'s batch: its content read from `data` and its entry's
    /// name into the batch's bytes, then `target` made of the batch (to put a name
    /// there too). Sends the batch when it is full. `Ok(false)` if the writers are gone.
    fn push(
        &mut self,
        w: usize,
        data: &mut dyn Data,
        node: &Node,
        cx: Ctx<'_>,
        layer: &Arc<str>,
        target: impl FnOnce(&mut Batch) -> Target,
    ) -> Result<bool> {
        let Some(batch) = self.lanes.get_mut(w).map(|l| &mut l.batch) else { return Ok(false) };
        let at = batch.bytes.len();
        data.read_data(&mut |_, chunk| {
            batch.bytes.extend_from_slice(chunk);
            Ok(())
        })?;
        let content = at..batch.bytes.len();
        let entry = batch.put(cx.entry);
        let target = target(batch);
        batch.jobs.push(Job { target, content, node: node.clone(), layer: layer.clone(), entry });
        if batch.jobs.len() < BATCH && batch.bytes.len() < BATCH_BYTES {
            return Ok(true);
        }
        Ok(self.flush(w))
    }

    /// Send writer `w`'s batch, once its queue has room for it: `false` if the writers
    /// are gone.
    fn flush(&mut self, w: usize) -> bool {
        let Some(lane) = self.lanes.get_mut(w) else { return false };
        if lane.batch.jobs.is_empty() {
            return true;
        }
        let cost = lane.batch.cost();
        loop {
            let queued = lane.queued.load(Ordering::Acquire);
            if queued == 0 || queued + cost <= LOOKAHEAD {
                break;
            }
            if self.pending.failed.load(Ordering::Acquire) {
                return false;
            }
            // Every batch a writer finishes comes back here (or finds the channel full,
            // and then this does not wait).
            match self.empty.recv() {
                Ok(b) if self.spare.len() < SPARE => self.spare.push(b),
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        lane.queued.fetch_add(cost, Ordering::AcqRel);
        let next = self.spare.pop().or_else(|| self.empty.try_recv().ok()).unwrap_or_default();
        let mut batch = std::mem::replace(&mut lane.batch, next);
        batch.cost = cost;
        lane.tx.send(batch).is_ok()
    }

    fn flush_all(&mut self) -> bool {
        (0..self.lanes.len()).all(|w| self.flush(w))
    }

    /// Send what is left to the writers and let them finish: the end of a successful
    /// apply (dropping the queue instead drops what was not sent). Join the writers for
    /// their errors.
    pub(super) fn close(mut self) {
        self.flush_all();
    }

    /// Hand over a created file, its content read from `data`: `Ok(false)` if the
    /// writers are gone.
    pub(super) fn send(
        &mut self,
        fd: OwnedFd,
        data: &mut dyn Data,
        node: &Node,
        cx: Ctx<'_>,
        layer: &Arc<str>,
    ) -> Result<bool> {
        self.next = (self.next + 1) % self.lanes.len();
        self.push(self.next, data, node, cx, layer, |_| Target::Created(fd))
    }

    /// Hand over a file to create as `name` in `dir`, its content read from `data`
    /// (`told`: what it will be created with, if that can be told):
    /// `Ok(false)` if the writers are gone. Every creation of one name in one directory
    /// goes to the same writer, in the order handed over; the caller waits for them
    /// ([`Queue::settle`]) before it touches the names they could meet itself. (Giving
    /// each directory to one writer instead, so that writers never create in one
    /// directory at once, was measured for issue 17: the directory's lock costs under
    /// 1% of the CPU on tmpfs, and one large directory then had one writer.)
    pub(super) fn send_create(
        &mut self,
        (dir, name): (&Arc<Dir>, &OsStr),
        data: &mut dyn Data,
        node: &Node,
        told: Option<Told>,
        cx: Ctx<'_>,
        layer: &Arc<str>,
    ) -> Result<bool> {
        let mut h = std::hash::DefaultHasher::new();
        (dir.path.as_os_str(), name).hash(&mut h);
        let writer = usize::try_from(h.finish() % self.lanes.len() as u64).unwrap_or(0);
        let in_dir = match self.handed.last() {
            Some((d, n)) if Arc::ptr_eq(d, dir) => n.clone(),
            _ => {
                let n = Arc::new(AtomicUsize::new(0));
                self.handed.push((dir.clone(), n.clone()));
                n
            }
        };
        // Counted before it can be done. A job never sent (the content could not be
        // read, or the writers are gone) is never done: the apply fails then, and a
        // wait gives up once a writer stopped.
        in_dir.fetch_add(1, Ordering::AcqRel);
        self.pending.creates.fetch_add(1, Ordering::AcqRel);
        let dir = dir.clone();
        self.push(writer, data, node, cx, layer, |b| Target::Create {
            dir,
            name: b.put(name.as_bytes()),
            pending: in_dir,
            told,
        })
    }

    /// Whether a directory with creations handed over and not done yet has a real path
    /// for which `f` says yes (the directories whose creations are all done are dropped).
    fn any_pending(&mut self, f: impl Fn(&[u8]) -> bool) -> bool {
        self.handed.retain(|(_, n)| n.load(Ordering::Acquire) != 0);
        self.handed.iter().any(|(d, _)| f(d.path.as_os_str().as_bytes()))
    }

    /// Whether creations handed over and not done yet are in a directory that resolving
    /// `dir` (a real path: no symlink on the way) looks into: one of its ancestors.
    /// Another directory's creations cannot change what that resolution finds or makes.
    pub(super) fn pending_above(&mut self, dir: &Path) -> bool {
        let dir = dir.as_os_str().as_bytes();
        self.any_pending(|d| under(dir, d))
    }

    /// Whether creations handed over and not done yet are in the directory at real path
    /// `dir` (one may be `name`), in `dir/name` or under it (which replacing `name`
    /// removes): what an operation on `name` in `dir` must wait for.
    pub(super) fn pending_at(&mut self, dir: &Path, name: &OsStr) -> bool {
        let dir = dir.as_os_str().as_bytes();
        let mut child = dir.to_vec();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(name.as_bytes());
        self.any_pending(|d| d == dir || d == child.as_slice() || under(d, &child))
    }

    /// Whether creations handed over and not done yet are in the directory at real path
    /// `dir` itself.
    pub(super) fn pending_in(&mut self, dir: &Path) -> bool {
        let dir = dir.as_os_str().as_bytes();
        self.any_pending(|d| d == dir)
    }

    /// Wait until every creation handed over is done: `false` if a writer stopped.
    pub(super) fn settle(&mut self) -> bool {
        if !self.flush_all() {
            return false;
        }
        let p = &self.pending;
        if p.creates.load(Ordering::Acquire) == 0 {
            self.handed.clear();
            return !self.failed();
        }
        let mut guard = p.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while p.creates.load(Ordering::Acquire) != 0 && !self.failed() {
            guard = p.changed.wait(guard).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(guard);
        self.handed.clear();
        !self.failed()
    }
}

/// Whether the real path `p` is strictly under the real path `ancestor` (every path
/// but the root is under the root, the empty path).
fn under(p: &[u8], ancestor: &[u8]) -> bool {
    if ancestor.is_empty() {
        return !p.is_empty();
    }
    p.len() > ancestor.len() && p.starts_with(ancestor) && p.get(ancestor.len()) == Some(&b'/')
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

fn run(
    rx: &Receiver<Batch>,
    back: &SyncSender<Batch>,
    queued: &AtomicUsize,
    meta: &Meta,
    pending: &Pending,
) -> Result<()> {
    let mut armed = FailOnDrop(pending, back, true);
    while let Ok(mut batch) = rx.recv() {
        for job in batch.jobs.drain(..) {
            finish(job, &batch.bytes, meta, pending)?;
        }
        batch.bytes.clear();
        queued.fetch_sub(batch.cost, Ordering::AcqRel);
        // Dropped when the queue is gone or has enough.
        let _ = back.try_send(batch);
    }
    armed.2 = false;
    Ok(())
}

/// Create (maybe), write and close one file (`bytes`: its batch's).
fn finish(job: Job, bytes: &[u8], meta: &Meta, pending: &Pending) -> Result<()> {
    let get = |r: &Range<usize>| bytes.get(r.clone()).unwrap_or_default();
    let cx = Ctx { layer: &job.layer, entry: get(&job.entry) };
    let (fd, in_dir, told) = match job.target {
        Target::Created(fd) => (fd, None, None),
        Target::Create { dir, name, pending, told } => {
            (create(dir.fd.as_fd(), OsStr::from_bytes(get(&name)), job.node.mode, cx)?, Some(pending), told)
        }
    };
    let f = std::fs::File::from(fd);
    f.write_all_at(get(&job.content), 0).map_err(cx.fs("write"))?;
    meta.file(f.as_fd(), &job.node, told.as_ref(), cx)?;
    // Closed before the creation counts as done.
    drop(f);
    if let Some(n) = in_dir {
        n.fetch_sub(1, Ordering::AcqRel);
        pending.created();
    }
    Ok(())
}
