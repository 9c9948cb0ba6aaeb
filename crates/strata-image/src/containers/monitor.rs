//! The monitor: one process per running container, in a session of its own, that
//! starts the container through the runtime, is its parent (a child subreaper: the
//! runtime's `create` exits and the container's first process is handed to it), waits
//! for it, records its exit code, forwards its published ports, and removes it when it
//! was run with `--rm`.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::SystemTime;

use rustix::fs::FlockOperation;
use rustix::process::{Pid, WaitOptions};
use strata_spec::time::format_system_time;

use super::attach::{Console, open_fifo};
use super::record::{Network, State, Status};
use super::{
    ATTACH_LOCK, BUNDLE_DIR, Containers, PID_FILE, RUNTIME_LOG, STDERR_LOG, STDIN_FIFO, STDOUT_LOG, ports,
    process_start,
};
use crate::error::{Error, Result};
use crate::store::Store;

/// How long the monitor waits for the runtime to send a detached container's terminal.
const CONSOLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The monitor's whole body, for a program to run as its `main`: arguments `STORE ID
/// [--attached] [--console-socket PATH]`; returns the exit code (the container's, or 125
/// when it could not be started; the reason is in the container's record).
pub fn monitor_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let mut args = args.into_iter();
    let (Some(store), Some(id)) = (args.next(), args.next()) else {
        eprintln!("usage: strata-monitor STORE ID [--attached] [--console-socket PATH]");
        return 2;
    };
    let id = id.to_string_lossy().into_owned();
    let mut attached = false;
    let mut console = None;
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--attached") => attached = true,
            Some("--console-socket") => console = args.next().map(PathBuf::from),
            _ => {
                eprintln!("strata-monitor: unknown argument {a:?}");
                return 2;
            }
        }
    }
    // A session of its own: the terminal's signals and hangups are not for it.
    let _ = rustix::process::setsid();
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let containers = match Store::open(PathBuf::from(&store)).and_then(|s| s.containers()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-monitor: {e}");
            return 125;
        }
    };
    match run(&containers, &id, attached, console) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strata-monitor: {e}");
            let _ = containers.update(&id, |r| {
                if r.state.status != Status::Exited {
                    r.state = State {
                        status: Status::Created,
                        error: Some(e.to_string()),
                        exit_code: Some(125),
                        ..State::default()
                    };
                }
            });
            125
        }
    }
}

fn now() -> String {
    format_system_time(SystemTime::now())
}

fn run(c: &Containers, id: &str, attached: bool, console: Option<PathBuf>) -> Result<i32> {
    let rec = c.read_record(id)?.ok_or_else(|| Error::ContainerNotFound(id.to_owned()))?;
    let dir = c.ctr_dir(id);
    let runtime = c.runtime(&rec);
    let log = dir.join(RUNTIME_LOG);
    let fail = |message: String, code: i32| -> Result<i32> {
        c.update(id, |r| {
            r.state =
                State { status: Status::Created, error: Some(message), exit_code: Some(code), ..State::default() };
        })?;
        Ok(code)
    };

    let listeners = match rec.config.network {
        Network::None => match ports::bind(&rec.config.ports) {
            Ok(l) => l,
            Err(e) => return fail(e.to_string(), 125),
        },
        _ => Vec::new(),
    };

    // The container's stdio.
    let mut keepalive = None;
    let stdin: Stdio = if rec.config.interactive && !rec.config.tty {
        if !attached {
            // Nobody writes: a writer of its own keeps the input open, as `docker run -di`.
            keepalive = Some(open_fifo(&dir)?);
        }
        let fifo = dir.join(STDIN_FIFO);
        File::open(&fifo).map_err(Error::io("open", &fifo))?.into()
    } else {
        Stdio::null()
    };
    let append = |name: &str| -> Result<File> {
        let p = dir.join(name);
        OpenOptions::new().create(true).append(true).open(&p).map_err(Error::io("open", &p))
    };
    let (stdout, stderr): (Stdio, Stdio) = if rec.config.tty {
        (Stdio::null(), Stdio::null())
    } else {
        (append(STDOUT_LOG)?.into(), append(STDERR_LOG)?.into())
    };
    let own_console = if rec.config.tty && console.is_none() { Some(Console::new()?) } else { None };
    let socket = console.or_else(|| own_console.as_ref().map(|c| c.path().to_path_buf()));

    let pid_file = dir.join(PID_FILE);
    let _ = fs::remove_file(&pid_file);
    let stderr_at = fs::metadata(dir.join(STDERR_LOG)).map(|m| m.len()).unwrap_or(0);
    if let Err(e) =
        runtime.create(id, &dir.join(BUNDLE_DIR), &pid_file, socket.as_deref(), &log, (stdin, stdout, stderr))
    {
        let _ = runtime.delete(id, &log);
        let mut message = match &e {
            Error::CannotExecute { message, .. } | Error::Runtime { message, .. } => message.clone(),
            other => other.to_string(),
        };
        // A runtime that logs nothing said why on its stderr, which was the container's.
        if message.starts_with("exited with") && !rec.config.tty {
            let said = fs::read(dir.join(STDERR_LOG)).unwrap_or_default();
            let said = String::from_utf8_lossy(said.get(usize::try_from(stderr_at).unwrap_or(0)..).unwrap_or_default());
            if !said.trim().is_empty() {
                message = said.trim().replace('\n', " ");
            }
        }
        return fail(message, e.exit_code());
    }
    let pid: i32 = fs::read_to_string(&pid_file)
        .map_err(Error::io("read", &pid_file))?
        .trim()
        .parse()
        .map_err(|_| Error::Runtime { op: "create", message: format!("{}: not a pid", pid_file.display()) })?;
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let started = now();
    c.update(id, |r| {
        r.state = State {
            status: Status::Running,
            pid: Some(pid),
            pid_start: process_start(pid),
            monitor: process_start(me).map(|s| (me, s)),
            started: Some(started.clone()),
            ..State::default()
        };
    })?;
    // A detached terminal: its output goes to the log.
    if let Some(console) = &own_console {
        let master = console.receive(CONSOLE_TIMEOUT)?;
        let mut out = append(STDOUT_LOG)?;
        std::thread::spawn(move || {
            let mut from = File::from(master);
            let _ = io::copy(&mut from, &mut out);
        });
    }
    if !listeners.is_empty() {
        let ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let netns = File::open(&ns).map_err(Error::io("open", &ns))?;
        ports::forward(listeners, netns);
    }
    if let Err(e) = runtime.start(id, &log) {
        let _ = runtime.kill(id, "KILL", true, &log);
        let _ = runtime.delete(id, &log);
        return fail(e.to_string(), 125);
    }

    let code = wait_for(pid)?;
    drop(keepalive);
    let _ = runtime.delete(id, &log);
    let finished = now();
    let after = c.update(id, |r| {
        r.state.status = Status::Exited;
        r.state.exit_code = Some(code);
        r.state.finished = Some(finished.clone());
        r.state.pid = None;
        r.state.pid_start = None;
        r.state.monitor = None;
    })?;
    if let Some(rec) = after.filter(|r| r.config.auto_remove) {
        // An attached client reads the exit code first (it holds the lock shared).
        let lock_path = dir.join(ATTACH_LOCK);
        if let Ok(lock) = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path) {
            let _ = rustix::fs::flock(&lock, FlockOperation::LockExclusive);
        }
        c.remove_now(&rec)?;
    }
    Ok(code)
}

/// `__WALL`: wait for every kind of child. The runtime creates the container's first
/// process with `clone` and an exit signal other than SIGCHLD (runc does), which a plain
/// `waitpid` does not see.
const WALL: u32 = 0x4000_0000;

/// Reap children until `pid` exits; its exit code (128 + the signal that killed it).
fn wait_for(pid: i32) -> Result<i32> {
    let target = Pid::from_raw(pid).ok_or_else(|| Error::Runtime { op: "wait", message: format!("bad pid {pid}") })?;
    loop {
        // `wait`, not `waitpid(None)`: that one waits for this process group only.
        match rustix::process::wait(WaitOptions::from_bits_retain(WALL)) {
            Ok(Some((p, status))) if p == target => {
                return Ok(status.exit_status().or(status.terminating_signal().map(|s| 128 + s)).unwrap_or(255));
            }
            Ok(_) => {}
            Err(e) if e == rustix::io::Errno::INTR => {}
            // No child left: it was not ours to wait for (it died before being reparented).
            Err(e) if e == rustix::io::Errno::CHILD => return Ok(255),
            Err(e) => {
                return Err(Error::Io(strata_spec::IoError::new(
                    "wait",
                    PathBuf::from(format!("/proc/{pid}")),
                    e.into(),
                )));
            }
        }
    }
}
