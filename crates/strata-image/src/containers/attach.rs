//! Attaching this process's stdio to a container (`docker run` without `-d`, `start
//! -a`): the container's output is read from its log files as it is written, stdin is
//! fed through a fifo (`-i`), signals are passed on (docker's `--sig-proxy`); with a
//! terminal (`-t`), the runtime's console socket hands this process the pseudo-terminal,
//! which it connects to its own terminal in raw mode, passing on window sizes.
//!
//! The monitor, not this process, waits for the container: killing an attached `strata
//! run` leaves the container running, recorded and stoppable, as with docker.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSliceMut, Read, Seek, SeekFrom, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

use super::record::{ContainerRecord, Status};
use super::{ATTACH_LOCK, Containers, POLL, STDERR_LOG, STDIN_FIFO, STDOUT_LOG};
use crate::error::{Error, Result};

/// How long an attached `--rm` run waits for its container to be removed.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long to wait for the runtime to hand over a container's terminal.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What an attached start sets up before the monitor starts.
pub(crate) struct Prepared {
    dir: PathBuf,
    id: String,
    lock: File,
    stdin: Option<File>,
    console: Option<Console>,
    master: Option<OwnedFd>,
    offsets: (u64, u64),
    auto_remove: bool,
}

/// A console socket: the runtime connects and sends the terminal's master side.
pub(crate) struct Console {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Console {
    /// A listening socket in a new temp directory (a short path: socket paths are
    /// limited to 107 bytes).
    pub(crate) fn new() -> Result<Console> {
        let dir = tempfile::Builder::new()
            .prefix("strata-console-")
            .tempdir_in("/tmp")
            .map_err(Error::io("create", "/tmp/strata-console-*"))?;
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).map_err(Error::io("bind", &path))?;
        listener.set_nonblocking(true).map_err(Error::io("bind", &path))?;
        Ok(Console { _dir: dir, path, listener })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The master, when the runtime has connected (`None`: not yet).
    pub(crate) fn try_receive(&self) -> Result<Option<OwnedFd>> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                receive_fd(&stream).map(Some).map_err(Error::io("receive the terminal from", &self.path))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(Error::Io(strata_spec::IoError::new("accept", self.path.clone(), e))),
        }
    }

    /// The master, waiting for it at most `timeout`.
    pub(crate) fn receive(&self, timeout: Duration) -> Result<OwnedFd> {
        let start = Instant::now();
        loop {
            if let Some(fd) = self.try_receive()? {
                return Ok(fd);
            }
            if start.elapsed() > timeout {
                return Err(Error::Runtime { op: "create", message: "the runtime did not send the terminal".into() });
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Receive one file descriptor (SCM_RIGHTS) from `stream`.
fn receive_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    stream.set_nonblocking(false)?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    rustix::net::recvmsg(stream, &mut [IoSliceMut::new(&mut buf)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no file descriptor in the message"))
}

impl Prepared {
    pub(crate) fn new(dir: &Path, rec: &ContainerRecord) -> Result<Prepared> {
        let lock_path = dir.join(ATTACH_LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("open", &lock_path))?;
        rustix::fs::flock(&lock, FlockOperation::LockShared)
            .map_err(|e| Error::Io(strata_spec::IoError::new("lock", lock_path.clone(), e.into())))?;
        let stdin = if rec.config.interactive && !rec.config.tty { Some(open_fifo(dir)?) } else { None };
        let console = if rec.config.tty { Some(Console::new()?) } else { None };
        let size = |name: &str| fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
        Ok(Prepared {
            dir: dir.to_path_buf(),
            id: rec.id.clone(),
            lock,
            stdin,
            console,
            master: None,
            offsets: (size(STDOUT_LOG), size(STDERR_LOG)),
            auto_remove: rec.config.auto_remove,
        })
    }

    pub(crate) fn console_socket(&self) -> Option<&Path> {
        self.console.as_ref().map(Console::path)
    }

    /// Take the terminal if the runtime has sent it (it does so while the container is
    /// created, before it runs).
    pub(crate) fn poll_console(&mut self) -> Result<()> {
        if self.master.is_none()
            && let Some(c) = &self.console
        {
            self.master = c.try_receive()?;
        }
        Ok(())
    }

    pub(crate) fn into_attached(self, containers: Containers, monitor: Option<Child>) -> Attached {
        Attached { containers, prepared: self, _monitor: monitor }
    }
}

/// The container's stdin fifo, opened for reading and writing: this process is then a
/// writer before the monitor opens it to read (so neither blocks), and the container sees
/// the end of its input when this process closes it.
pub(crate) fn open_fifo(dir: &Path) -> Result<File> {
    let path = dir.join(STDIN_FIFO);
    match rustix::fs::mkfifoat(rustix::fs::CWD, &path, Mode::from_raw_mode(0o600)) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::EXIST => {}
        Err(e) => return Err(Error::Io(strata_spec::IoError::new("mkfifo", path, e.into()))),
    }
    OpenOptions::new().read(true).write(true).open(&path).map_err(Error::io("open", &path))
}

/// A container started with this process attached; [`Attached::relay`] connects the
/// stdio.
pub struct Attached {
    containers: Containers,
    prepared: Prepared,
    _monitor: Option<Child>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attached({})", self.prepared.id)
    }
}

impl Attached {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.prepared.id
    }

    /// Connect this process's stdin, stdout and stderr to the container until it exits;
    /// returns its exit code. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent
    /// to this process go to the container.
    pub fn relay(mut self) -> Result<i32> {
        let id = self.prepared.id.clone();
        let signals = {
            let containers = self.containers.clone();
            let id = id.clone();
            let mut sigs =
                signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])
                    .map_err(Error::io("handle signals of", "strata"))?;
            let handle = sigs.handle();
            let master = match (&self.prepared.master, &self.prepared.console) {
                (Some(m), _) => Some(m.try_clone().map_err(Error::io("dup", "terminal"))?),
                (None, Some(c)) => {
                    let m = c.receive(CONSOLE_TIMEOUT)?;
                    let dup = m.try_clone().map_err(Error::io("dup", "terminal"))?;
                    self.prepared.master = Some(m);
                    Some(dup)
                }
                (None, None) => None,
            };
            if let Some(m) = &master {
                resize(m);
            }
            std::thread::spawn(move || {
                for sig in sigs.forever() {
                    if sig == SIGWINCH {
                        if let Some(m) = &master {
                            resize(m);
                        }
                        continue;
                    }
                    let _ = containers.kill(&id, &sig.to_string());
                }
            });
            handle
        };
        let result = match self.prepared.master.take() {
            Some(master) => self.relay_terminal(master),
            None => self.relay_logs(),
        };
        signals.close();
        // `--rm`: the monitor removes the container once this process lets go of it;
        // return when it has, as `docker run --rm` does.
        let _ = rustix::fs::flock(&self.prepared.lock, FlockOperation::Unlock);
        if self.prepared.auto_remove {
            let _ = self.containers.wait_until(&id, Some(REMOVE_TIMEOUT), |_| false);
        }
        result
    }

    /// Non-terminal: stdin into the fifo, the logs out as they grow.
    fn relay_logs(&mut self) -> Result<i32> {
        if let Some(mut fifo) = self.prepared.stdin.take() {
            std::thread::spawn(move || {
                let _ = io::copy(&mut io::stdin().lock(), &mut fifo);
                // Dropping the fifo: the container reads the end of its input.
            });
        }
        let dir = &self.prepared.dir;
        let mut out = Tail::open(&dir.join(STDOUT_LOG), self.prepared.offsets.0)?;
        let mut err = Tail::open(&dir.join(STDERR_LOG), self.prepared.offsets.1)?;
        loop {
            let done = self.exited()?;
            out.copy_to(&mut io::stdout().lock())?;
            err.copy_to(&mut io::stderr().lock())?;
            if let Some(code) = done {
                return Ok(code);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Terminal: this terminal raw, stdin into the master, the master out, until the
    /// container's side closes.
    fn relay_terminal(&mut self, master: OwnedFd) -> Result<i32> {
        let _raw = RawMode::enter();
        let mut to = File::from(master.try_clone().map_err(Error::io("dup", "terminal"))?);
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut to);
        });
        let mut from = File::from(master);
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut out = io::stdout().lock();
                    out.write_all(&buf[..n]).map_err(Error::io("write", "stdout"))?;
                    out.flush().map_err(Error::io("write", "stdout"))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EIO: every process of the container closed the terminal.
                Err(_) => break,
            }
        }
        loop {
            if let Some(code) = self.exited()? {
                return Ok(code);
            }
            std::thread::sleep(POLL);
        }
    }

    /// The exit code once the container has exited.
    fn exited(&self) -> Result<Option<i32>> {
        match self.containers.read_record(&self.prepared.id)?.map(super::observe) {
            Some(r) if r.state.status == Status::Running => Ok(None),
            Some(r) if r.state.status == Status::Exited => Ok(Some(r.state.exit_code.unwrap_or(0))),
            Some(r) if r.state.error.is_some() => Ok(Some(r.state.exit_code.unwrap_or(125))),
            Some(_) => Ok(None),
            None => Err(Error::ContainerNotFound(self.prepared.id.clone())),
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // Release the attach lock: a --rm container may go now.
        let _ = rustix::fs::flock(&self.prepared.lock, FlockOperation::Unlock);
    }
}

/// A log file read from an offset as it grows.
struct Tail {
    file: File,
}

impl Tail {
    fn open(path: &Path, offset: u64) -> Result<Tail> {
        let mut file =
            OpenOptions::new().create(true).append(true).read(true).open(path).map_err(Error::io("open", path))?;
        file.seek(SeekFrom::Start(offset)).map_err(Error::io("read", path))?;
        Ok(Tail { file })
    }

    fn copy_to(&mut self, out: &mut impl Write) -> Result<()> {
        let mut buf = [0u8; 8192];
        loop {
            let n = self.file.read(&mut buf).map_err(Error::io("read", "container log"))?;
            if n == 0 {
                return out.flush().map_err(Error::io("write", "output"));
            }
            out.write_all(&buf[..n]).map_err(Error::io("write", "output"))?;
        }
    }
}

/// Give the container's terminal this process's window size.
fn resize(master: &OwnedFd) {
    let stdout = rustix::stdio::stdout();
    let stdin = rustix::stdio::stdin();
    if let Ok(size) = rustix::termios::tcgetwinsize(stdout).or_else(|_| rustix::termios::tcgetwinsize(stdin)) {
        let _ = rustix::termios::tcsetwinsize(master.as_fd(), size);
    }
}

/// This process's terminal in raw mode while it lives (keys go to the container as
/// typed: Ctrl-C is a byte there, not a signal here).
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = rustix::stdio::stdin();
        if !rustix::termios::isatty(stdin) {
            return RawMode { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(stdin) else { return RawMode { saved: None } };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), rustix::termios::OptionalActions::Now, saved);
        }
    }
}
