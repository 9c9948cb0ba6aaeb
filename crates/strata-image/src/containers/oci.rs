//! The OCI runtime: the `runc` (or `crun`, `youki`) program, run with a state directory
//! of strata's own (`--root`) and its messages in a log file (`--log`, JSON lines), so
//! that a failure is reported with the runtime's own words and never mixed into the
//! container's output.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The environment variable naming the runtime program (a name on `PATH` or a path).
pub const RUNTIME_ENV: &str = "STRATA_RUNTIME";

/// The runtimes looked for on `PATH`, in order. crun refuses hybrid cgroup hierarchies
/// that runc handles, so runc comes first.
pub const RUNTIMES: [&str; 3] = ["runc", "crun", "youki"];

/// An OCI runtime program and the state directory it keeps its containers in.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    program: PathBuf,
    root: PathBuf,
}

/// Find the runtime: `explicit` (a `--runtime` flag), else [`RUNTIME_ENV`], else the
/// first of [`RUNTIMES`] on `PATH`. A name without `/` is looked up on `PATH`.
pub fn find_runtime(explicit: Option<&Path>) -> Result<PathBuf> {
    let from_env = std::env::var_os(RUNTIME_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    match explicit.map(Path::to_path_buf).or(from_env) {
        Some(p) => resolve_program(&p).ok_or_else(|| Error::Runtime {
            op: "lookup",
            message: format!("{}: no such program (is it installed, or on PATH?)", p.display()),
        }),
        None => RUNTIMES
            .iter()
            .find_map(|n| resolve_program(Path::new(n)))
            .ok_or_else(|| Error::NoRuntime { tried: RUNTIMES.join(", ") }),
    }
}

/// `p` itself when it has a `/`, else the first executable `p` on `PATH`.
fn resolve_program(p: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |c: &Path| fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if p.as_os_str().to_string_lossy().contains('/') {
        return executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(p)).find(|c| executable(c))
}

impl OciRuntime {
    /// The runtime `program` keeping its state under `root` (absolute).
    pub fn new(program: impl Into<PathBuf>, root: impl Into<PathBuf>) -> OciRuntime {
        OciRuntime { program: program.into(), root: root.into() }
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `program --root ROOT --log LOG --log-format json ARGS`.
    fn command(&self, log: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.arg("--root").arg(&self.root).arg("--log").arg(log).args(["--log-format", "json"]).args(args);
        c
    }

    /// Run a runtime command that has no container stdio, with its own output captured;
    /// an error carries the runtime's last message.
    fn run(&self, op: &'static str, log: &Path, args: &[&str]) -> Result<()> {
        let out = self
            .command(log, args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Runtime { op, message: format!("{}: {e}", self.program.display()) })?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Runtime { op, message: failure(log, &out.stderr, out.status) })
    }

    /// `create --bundle DIR --pid-file FILE [--console-socket SOCK] ID`, the container's
    /// stdio given: the runtime hands them to the container's process. A command that
    /// cannot be executed is [`Error::CannotExecute`].
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        log: &Path,
        stdio: (Stdio, Stdio, Stdio),
    ) -> Result<()> {
        let mut c = self.command(log, &["create", "--bundle"]);
        c.arg(bundle).arg("--pid-file").arg(pid_file);
        if let Some(s) = console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(id).stdin(stdio.0).stdout(stdio.1).stderr(stdio.2);
        let status = c
            .status()
            .map_err(|e| Error::Runtime { op: "create", message: format!("{}: {e}", self.program.display()) })?;
        if status.success() {
            return Ok(());
        }
        let message = failure(log, b"", status);
        // runc's words (and crun's): `exec: "nope": executable file not found in $PATH`,
        // `exec: "/etc": permission denied`.
        if message.contains("executable file not found") || message.contains("no such file or directory") {
            return Err(Error::CannotExecute { not_found: true, message });
        }
        if message.contains("permission denied") || message.contains("is a directory") {
            return Err(Error::CannotExecute { not_found: false, message });
        }
        Err(Error::Runtime { op: "create", message })
    }

    /// `run --bundle DIR ID`: create, start and wait for the container in the foreground,
    /// as a command for the caller to run with the stdio the container's process gets.
    /// The runtime exits with the process's exit status (128 + signal when killed by
    /// one); when it fails itself, [`OciRuntime::error`] has its message.
    pub fn run_command(&self, id: &str, bundle: &Path, log: &Path) -> Command {
        let mut c = self.command(log, &["run", "--bundle"]);
        c.arg(bundle).arg(id);
        c
    }

    /// The runtime's last error message in `log`, if it wrote one.
    pub fn error(log: &Path) -> Option<String> {
        last_error(log)
    }

    /// `start ID`.
    pub fn start(&self, id: &str, log: &Path) -> Result<()> {
        self.run("start", log, &["start", id])
    }

    /// `kill [--all] ID SIGNAL`.
    pub fn kill(&self, id: &str, signal: &str, all: bool, log: &Path) -> Result<()> {
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, signal]);
        self.run("kill", log, &args)
    }

    /// `pause ID`: freeze every process of the container.
    pub fn pause(&self, id: &str, log: &Path) -> Result<()> {
        self.run("pause", log, &["pause", id])
    }

    /// `resume ID`.
    pub fn resume(&self, id: &str, log: &Path) -> Result<()> {
        self.run("resume", log, &["resume", id])
    }

    /// `delete --force ID`; a container the runtime does not know is no error.
    pub fn delete(&self, id: &str, log: &Path) -> Result<()> {
        if !self.root.join(id).exists() {
            return Ok(());
        }
        self.run("delete", log, &["delete", "--force", id])
    }

    /// `exec` of `args` in the running container, as a command for the caller to run
    /// with the stdio it wants (`-t`: the runtime makes a terminal of the caller's).
    pub fn exec_command(&self, id: &str, log: &Path, opts: &ExecArgs<'_>) -> Command {
        let mut c = self.command(log, &["exec"]);
        if opts.tty {
            c.arg("--tty");
        }
        if let Some(cwd) = opts.cwd {
            c.arg("--cwd").arg(cwd);
        }
        for e in opts.env {
            c.arg("--env").arg(e);
        }
        if let Some((uid, gid, groups)) = opts.user {
            c.arg("--user").arg(format!("{uid}:{gid}"));
            for g in groups {
                c.arg("--additional-gids").arg(g.to_string());
            }
        }
        c.arg(id).args(opts.args);
        c
    }
}

/// What [`OciRuntime::exec_command`] runs.
#[derive(Debug)]
pub struct ExecArgs<'a> {
    /// The command and its arguments.
    pub args: &'a [String],
    /// A terminal.
    pub tty: bool,
    /// Working directory.
    pub cwd: Option<&'a str>,
    /// Extra environment (`NAME=value`).
    pub env: &'a [String],
    /// uid, gid, additional gids.
    pub user: Option<(u32, u32, &'a [u32])>,
}

/// The runtime's last error message: from its JSON log (`{"level":"error","msg":...}`),
/// else its stderr, else its exit status.
pub(crate) fn failure(log: &Path, stderr: &[u8], status: std::process::ExitStatus) -> String {
    if let Some(m) = last_error(log) {
        return m;
    }
    let text = String::from_utf8_lossy(stderr).trim().to_owned();
    if text.is_empty() { format!("exited with {status}") } else { text }
}

/// The last `error`-level message of a runtime's JSON log.
pub(crate) fn last_error(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        matches!(v["level"].as_str(), Some("error" | "fatal")).then(|| v["msg"].as_str().unwrap_or_default().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_the_json_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        fs::write(
            &log,
            "{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\n",
        )
        .unwrap();
        assert_eq!(last_error(&log).unwrap(), "exec: \"nope\": executable file not found in $PATH");
        assert_eq!(last_error(&dir.path().join("none")), None);
    }

    #[test]
    fn a_named_runtime_that_is_not_there_says_so() {
        let e = find_runtime(Some(Path::new("/nonexistent/runc"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/runc: no such program"), "{e}");
        let e = find_runtime(Some(Path::new("strata-no-such-runtime"))).unwrap_err();
        assert!(e.to_string().contains("strata-no-such-runtime"), "{e}");
    }
}
