//! What is done to a regular file once it exists: its content, owner, mode, xattrs and
//! mtime, all through its fd. The calling thread creates each file in layer order (every
//! namespace operation stays there, so the union rules see the tree they expect) and
//! hands small files to a second thread that writes them and closes them: file creation
//! is most of an unpack of many small files, and the two threads share it.
//!
//! Nothing the second thread does touches a directory entry: a file it is still writing
//! may be replaced, linked or removed by name meanwhile, as on a single thread. Directory
//! mtimes are set once both are done.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rustix::fs::Mode;
use rustix::io::Errno;

use crate::error::Result;
use crate::fsops::{self, errno};
use crate::union::{Ctx, Node};

/// Files up to this size go to the second thread (bigger ones are written at once:
/// they are few, and bandwidth, not per-file work, is their cost).
pub(super) const QUEUED_MAX: u64 = 256 << 10;
/// Files queued at most (with [`QUEUED_MAX`]: 16 MiB of content in flight at most).
const QUEUE: usize = 64;

fn is(e: &io::Error, code: Errno) -> bool {
    e.raw_os_error() == Some(code.raw_os_error())
}

/// How metadata is applied, shared by both threads.
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

/// A created file to fill and finish on the second thread.
struct Job {
    fd: OwnedFd,
    content: Vec<u8>,
    node: Node,
    layer: Arc<str>,
    entry: Box<[u8]>,
}

/// The sending side, held by the applier while a second thread runs.
pub(super) struct Queue {
    tx: SyncSender<Job>,
    failed: Arc<AtomicBool>,
}

impl Queue {
    /// Start the second thread in `scope`; join the handle (after dropping the
    /// [`Queue`]) for its first error.
    pub(super) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        meta: Arc<Meta>,
    ) -> io::Result<(Queue, std::thread::ScopedJoinHandle<'scope, Result<()>>)> {
        let (tx, rx) = sync_channel(QUEUE);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let handle = std::thread::Builder::new()
            .name("strata-files".into())
            .spawn_scoped(scope, move || run(&rx, &meta, &flag))?;
        Ok((Queue { tx, failed }, handle))
    }

    /// Whether the second thread stopped on an error (join it to have the error).
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Hand over a created file: `false` if the second thread is gone.
    pub(super) fn send(&self, fd: OwnedFd, content: Vec<u8>, node: &Node, cx: Ctx<'_>, layer: &Arc<str>) -> bool {
        let job = Job { fd, content, node: node.clone(), layer: layer.clone(), entry: cx.entry.into() };
        self.tx.send(job).is_ok()
    }
}

fn run(rx: &Receiver<Job>, meta: &Meta, failed: &AtomicBool) -> Result<()> {
    while let Ok(job) = rx.recv() {
        let cx = Ctx { layer: &job.layer, entry: &job.entry };
        let f = std::fs::File::from(job.fd);
        let done =
            f.write_all_at(&job.content, 0).map_err(cx.fs("write")).and_then(|()| meta.file(f.as_fd(), &job.node, cx));
        if let Err(e) = done {
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
    }
    Ok(())
}
