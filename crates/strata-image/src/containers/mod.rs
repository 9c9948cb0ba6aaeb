//! Containers: images run through an OCI runtime (runc, crun, youki), without a daemon,
//! as podman does.
//!
//! A container is a bundle (what [`Image::unpack`] makes: `rootfs/`, `config.json` and
//! strata's state), a record of what it is and where it is in its life, and while it
//! runs, a *monitor*: a small process of its own that starts it through the runtime,
//! waits for it, records its exit code, forwards its published ports and removes it when
//! it was run with `--rm`. Every command is a separate process that reads and changes
//! the records under a lock, so `ps -a` in one shell sees what `run -d` in another made.
//!
//! ```text
//! <store>/containers/.lock                  flock: creating, changing, removing records
//! <store>/containers/.runtime/              the runtime's own state (runc --root)
//! <store>/containers/<id>/container.json    the record (ContainerRecord)
//! <store>/containers/<id>/bundle/           rootfs/, config.json, strata-bundle.json...
//! <store>/containers/<id>/stdout.log        what the process wrote (stderr.log: to stderr;
//!                                           with a terminal, everything is in stdout.log)
//! <store>/containers/<id>/runtime.log       the runtime's messages (JSON lines)
//! ```
//!
//! A container keeps its image: `index.json` has an untagged entry for it, annotated
//! [`ANNOTATION_CONTAINER`], so GC keeps the image's blobs (a commit needs them) and
//! `rmi` refuses or untags as docker does. [`Store::images`] does not list these entries.
//!
//! The monitor is a program: [`monitor_main`] is its whole body. The `strata` binary runs
//! itself as `strata container-monitor`; this crate also builds it as `strata-monitor`.
//! A program that embeds strata names its monitor with [`Containers::monitor`].

mod attach;
mod monitor;
mod names;
mod oci;
mod ports;
mod record;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::FlockOperation;
use serde_json::{Value, json};
use strata_spec::time::format_system_time;

pub use attach::Attached;
pub use monitor::monitor_main;
pub use oci::{ExecArgs, OciRuntime, RUNTIME_ENV, RUNTIMES, find_runtime};
pub use record::{BindMount, ContainerRecord, Network, PortMapping, RunConfig, State, Status, check_name, parse_env};

use crate::container::{Container, ROOTFS_DIR, UnpackOptions};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::runtime::{ProcessOverrides, RUNTIME_CONFIG_FILE, RuntimeConfig, RuntimeConfigOptions};
use crate::store::Store;

/// The annotation of the untagged `index.json` entry that keeps a container's image in
/// the store; its value is the container id.
pub const ANNOTATION_CONTAINER: &str = "io.strata.container";

/// The directory of containers in a store directory.
pub const CONTAINERS_DIR: &str = "containers";

const RECORD_FILE: &str = "container.json";
const BUNDLE_DIR: &str = "bundle";
const STDOUT_LOG: &str = "stdout.log";
const STDERR_LOG: &str = "stderr.log";
const RUNTIME_LOG: &str = "runtime.log";
const MONITOR_LOG: &str = "monitor.log";
const PID_FILE: &str = "pid";
const STDIN_FIFO: &str = "stdin";
const ATTACH_LOCK: &str = "attach.lock";

/// How often a waiting command looks at a record again.
const POLL: Duration = Duration::from_millis(20);
/// How long `start` waits for the monitor to say the container runs (an unpacked
/// bundle starts in well under a second; a loaded machine may take a few).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `rm -f` and `kill` wait for a container to be gone after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(20);

/// Options of [`Containers::create`]: `docker create`'s flags.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CreateOptions {
    /// `--name` (default: a generated `adjective_noun`).
    pub name: Option<String>,
    /// The process: command, entrypoint, env, user, workdir, hostname, terminal.
    pub process: ProcessOverrides,
    /// `-i`: keep stdin open.
    pub interactive: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--network`.
    pub network: Network,
    /// `-p`.
    pub ports: Vec<PortMapping>,
    /// `-v`.
    pub mounts: Vec<BindMount>,
    /// `--runtime`: the OCI runtime program (default: see [`find_runtime`]).
    pub runtime: Option<PathBuf>,
}

/// Options of [`Containers::exec`]: `docker exec`'s flags.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExecOptions {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// `-e`.
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
}

/// The containers of a store directory.
#[derive(Debug, Clone)]
pub struct Containers {
    store: Store,
    dir: PathBuf,
    monitor: Vec<OsString>,
}

/// Containers.
impl Store {
    /// The containers of this store (a store directory: an in-memory store has none).
    pub fn containers(&self) -> Result<Containers> {
        let path = self.path().ok_or(Error::ContainersUnsupported("a store directory (not an in-memory store)"))?;
        let path = path.canonicalize().map_err(Error::io("open", path))?;
        Ok(Containers {
            store: self.clone(),
            dir: path.join(CONTAINERS_DIR),
            monitor: vec![std::env::current_exe().map(OsString::from).unwrap_or_else(|_| "strata".into())],
        })
    }
}

impl Containers {
    /// The program (and leading arguments) that runs [`monitor_main`]: it is given
    /// `STORE ID [--attached] [--console-socket PATH]` after them. Default: this program.
    pub fn monitor(mut self, program_and_args: Vec<OsString>) -> Containers {
        self.monitor = program_and_args;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn ctr_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn runtime(&self, rec: &ContainerRecord) -> OciRuntime {
        OciRuntime::new(&rec.runtime, self.dir.join(".runtime"))
    }

    /// An exclusive lock on the records (dropped to release).
    fn lock(&self) -> Result<File> {
        fs::create_dir_all(&self.dir).map_err(Error::io("create", &self.dir))?;
        let path = self.dir.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        rustix::fs::flock(&f, FlockOperation::LockExclusive)
            .map_err(|e| Error::Io(strata_spec::IoError::new("lock", path.clone(), e.into())))?;
        Ok(f)
    }

    fn read_record(&self, id: &str) -> Result<Option<ContainerRecord>> {
        let path = self.ctr_dir(id).join(RECORD_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::InvalidBundle { path, reason: format!("container record: {e}") }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(strata_spec::IoError::new("read", path, e))),
        }
    }

    fn write_record(&self, rec: &ContainerRecord) -> Result<()> {
        let path = self.ctr_dir(&rec.id).join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(rec)
            .map_err(|e| Error::InvalidBundle { path: path.clone(), reason: e.to_string() })?;
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, json).map_err(Error::io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(Error::io("rename", &path))
    }

    /// Change a record under the lock; `None` when the container is gone.
    fn update(&self, id: &str, f: impl FnOnce(&mut ContainerRecord)) -> Result<Option<ContainerRecord>> {
        let _lock = self.lock()?;
        let Some(mut rec) = self.read_record(id)? else { return Ok(None) };
        f(&mut rec);
        self.write_record(&rec)?;
        Ok(Some(rec))
    }

    fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io(strata_spec::IoError::new("read", self.dir.clone(), e))),
        };
        let mut ids = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.path().join(RECORD_FILE).is_file() {
                ids.push(name);
            }
        }
        Ok(ids)
    }

    /// Every container, newest first (as `docker ps -a`), each as it is now: a container
    /// recorded as running whose monitor died is shown running while its process lives,
    /// else exited with code 255.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            if let Some(rec) = self.read_record(&id)? {
                out.push(observe(rec));
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The container with this name, id, or unique id prefix (docker's order: a full id,
    /// then a name, then a prefix).
    pub fn get(&self, name_or_id: &str) -> Result<ContainerRecord> {
        let all = self.list()?;
        let wanted = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(r) = all.iter().find(|r| r.id == wanted).or_else(|| all.iter().find(|r| r.name == wanted)) {
            return Ok(r.clone());
        }
        let hits: Vec<&ContainerRecord> =
            all.iter().filter(|r| !wanted.is_empty() && r.id.starts_with(wanted)).collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::ContainerNotFound(name_or_id.to_owned())),
            _ => Err(Error::InvalidContainerOption {
                option: "container",
                value: name_or_id.to_owned(),
                reason: format!("multiple IDs found with provided prefix ({} containers)", hits.len()),
            }),
        }
    }

    /// The bundle of a container, to diff or commit it.
    pub fn bundle(&self, name_or_id: &str) -> Result<(ContainerRecord, Container)> {
        let rec = self.get(name_or_id)?;
        let bundle = Container::open(&self.store, self.ctr_dir(&rec.id).join(BUNDLE_DIR))?;
        Ok((rec, bundle))
    }

    /// Commit a container's changes as a new image (`docker commit`). A running
    /// container is paused meanwhile when `pause` (docker's default), so that its files
    /// do not change half-read; without, it is committed as it runs.
    pub fn commit(&self, name_or_id: &str, opts: &crate::CommitOptions, pause: bool) -> Result<Image> {
        let (rec, bundle) = self.bundle(name_or_id)?;
        let running = rec.state.status == Status::Running && rec.state.monitor.is_some_and(|(p, s)| alive(p, s));
        if !(running && pause) {
            return bundle.commit(opts);
        }
        let log = self.ctr_dir(&rec.id).join(RUNTIME_LOG);
        let runtime = self.runtime(&rec);
        runtime.pause(&rec.id, &log)?;
        let result = bundle.commit(opts);
        let resumed = runtime.resume(&rec.id, &log);
        let img = result?;
        resumed?;
        Ok(img)
    }

    /// The files holding what a container wrote: stdout and stderr (with a terminal,
    /// everything is in the first). Attached runs (`run` without `-d`) are logged too,
    /// except with a terminal, where the output goes to the terminal only.
    pub fn logs(&self, name_or_id: &str) -> Result<(PathBuf, PathBuf)> {
        let rec = self.get(name_or_id)?;
        let dir = self.ctr_dir(&rec.id);
        Ok((dir.join(STDOUT_LOG), dir.join(STDERR_LOG)))
    }

    /// The images containers use: image id, short container id, running or not (for
    /// `rmi`).
    pub fn image_users(&self) -> Result<Vec<(strata_spec::Digest, String, bool)>> {
        Ok(self
            .list()?
            .into_iter()
            .map(|r| (r.image_id, r.id[..12].to_owned(), r.state.status == Status::Running))
            .collect())
    }
}

/// Creating and removing.
impl Containers {
    /// Create a container from `image` (`docker create`): unpack it into a bundle, write
    /// its runtime configuration with `opts` applied, record it. Needs root (the runtime
    /// runs rootful containers) and an OCI runtime.
    pub fn create(&self, image: &Image, image_name: &str, opts: &CreateOptions) -> Result<ContainerRecord> {
        if !rustix::process::geteuid().is_root() {
            return Err(Error::ContainersUnsupported(
                "root: strata runs containers through a rootful OCI runtime (rootless containers are not supported yet)",
            ));
        }
        let runtime = find_runtime(opts.runtime.as_deref())?;
        if let Some(n) = &opts.name {
            check_name(n)?;
        }
        for e in &opts.process.env {
            parse_env(e, |_| None)?;
        }
        let id = random_id()?;
        let stop_signal = image.config().config.as_ref().and_then(|c| c.stop_signal.clone());
        let mut rec = ContainerRecord {
            version: record::RECORD_VERSION,
            id: id.clone(),
            name: String::new(),
            image: image_name.to_owned(),
            image_id: image.id().clone(),
            command: Vec::new(),
            created: format_system_time(SystemTime::now()),
            runtime,
            config: RunConfig {
                tty: opts.process.terminal,
                interactive: opts.interactive,
                auto_remove: opts.auto_remove,
                network: opts.network,
                ports: opts.ports.clone(),
                mounts: opts.mounts.clone(),
                stop_signal,
            },
            state: State::default(),
        };
        {
            let _lock = self.lock()?;
            let all = self.list()?;
            rec.name = match &opts.name {
                Some(n) => {
                    if let Some(other) = all.iter().find(|r| &r.name == n) {
                        return Err(Error::ContainerNameInUse { name: n.clone(), id: other.id.clone() });
                    }
                    n.clone()
                }
                None => names::generate(|n| all.iter().any(|r| r.name == n)),
            };
            let dir = self.ctr_dir(&id);
            fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
            self.write_record(&rec)?;
            // Keep the image while the container exists.
            let mut desc = image.descriptor().clone();
            desc.annotations = None;
            desc.set_annotation(ANNOTATION_CONTAINER, &id);
            self.store.backend().update_index(&mut |index| {
                index.manifests.push(desc.clone());
                Ok(())
            })?;
        }
        match self.make_bundle(&id, image, opts) {
            Ok(command) => {
                rec.command = command;
                self.update(&id, |r| r.command = rec.command.clone())?;
                Ok(rec)
            }
            Err(e) => {
                let _ = self.remove_now(&rec);
                Err(e)
            }
        }
    }

    /// Unpack the bundle and write its runtime configuration; returns the process args.
    fn make_bundle(&self, id: &str, image: &Image, opts: &CreateOptions) -> Result<Vec<String>> {
        let bundle = self.ctr_dir(id).join(BUNDLE_DIR);
        let unpack = UnpackOptions::default().runtime_config(false).rootless(false);
        let container = image.unpack_with(&bundle, &unpack)?;
        let ropts = RuntimeConfigOptions::default().rootfs(container.rootfs()).process(opts.process.clone());
        let config = container_config(image.runtime_config(&ropts)?, opts);
        let args: Vec<String> = config.as_value()["process"]["args"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if args.is_empty() {
            return Err(Error::NoCommand);
        }
        // The points the runtime mounts over belong to the base, not to the container's
        // changes: the top-level ones (`/proc`, `/dev`, `/sys`, volumes) and files bound
        // into `/etc`.
        let mut points: Vec<(String, bool)> = Vec::new();
        for m in config.as_value()["mounts"].as_array().into_iter().flatten() {
            let Some(dest) = m["destination"].as_str() else { continue };
            let depth = dest.trim_matches('/').split('/').count();
            let is_file = dest.starts_with("/etc/");
            if depth == 1 || is_file {
                points.push((dest.to_owned(), !is_file));
            }
        }
        let points: Vec<(&str, bool)> = points.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        container.prepare_mount_points(&points)?;
        crate::container::write_atomic(&bundle.join(RUNTIME_CONFIG_FILE), &config.to_vec())?;
        Ok(args)
    }

    /// Remove a container (`docker rm`): refused while it runs unless `force`, which
    /// kills it first. Its bundle, logs and record go, and the index entry that kept its
    /// image.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<ContainerRecord> {
        let rec = self.get(name_or_id)?;
        if rec.state.status == Status::Running {
            if !force {
                return Err(Error::ContainerRunning(rec.id));
            }
            self.signal(&rec, "KILL")?;
            self.wait_until(&rec.id, Some(KILL_TIMEOUT), |r| r.state.status != Status::Running)?;
        }
        self.remove_now(&rec)?;
        Ok(rec)
    }

    /// Remove what a container has, whatever its state (its process must be gone).
    fn remove_now(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        let _ = self.runtime(rec).delete(&rec.id, &dir.join(RUNTIME_LOG));
        let _lock = self.lock()?;
        let id = rec.id.clone();
        self.store.backend().update_index(&mut |index| {
            index.manifests.retain(|d| d.annotation(ANNOTATION_CONTAINER) != Some(id.as_str()));
            Ok(())
        })?;
        // The record first: a half-removed directory is then no container.
        match fs::remove_file(dir.join(RECORD_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io(strata_spec::IoError::new("remove", dir.join(RECORD_FILE), e))),
        }
        fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))
    }
}

/// Running.
impl Containers {
    /// Start a created or exited container (`docker start`), detached: returns when its
    /// process runs. Its output goes to its logs.
    pub fn start(&self, name_or_id: &str) -> Result<ContainerRecord> {
        self.start_with(name_or_id, false).map(|(rec, _)| rec)
    }

    /// Start a container and attach to it (`docker run` without `-d`, `docker start
    /// -a`): [`Attached::relay`] then connects this process's stdio to it and returns
    /// its exit code.
    pub fn start_attached(&self, name_or_id: &str) -> Result<Attached> {
        let (_, attached) = self.start_with(name_or_id, true)?;
        attached.ok_or(Error::ContainersUnsupported("an attachable container"))
    }

    fn start_with(&self, name_or_id: &str, attach: bool) -> Result<(ContainerRecord, Option<Attached>)> {
        let rec = self.get(name_or_id)?;
        if rec.state.status == Status::Running {
            return Ok((rec, None));
        }
        let dir = self.ctr_dir(&rec.id);
        let mut session = if attach { Some(attach::Prepared::new(&dir, &rec)?) } else { None };
        // A fresh start: what the last run left is cleared.
        self.update(&rec.id, |r| {
            r.state = State { finished: r.state.finished.take(), ..State::default() };
        })?;
        let _ = fs::remove_file(dir.join(RUNTIME_LOG));
        let log = File::create(dir.join(MONITOR_LOG)).map_err(Error::io("create", dir.join(MONITOR_LOG)))?;
        let (program, lead) = self.monitor.split_first().ok_or(Error::ContainersUnsupported("a monitor program"))?;
        let mut cmd = Command::new(program);
        cmd.args(lead).arg(self.store_path()).arg(&rec.id);
        if let Some(s) = &session {
            cmd.arg("--attached");
            if let Some(sock) = s.console_socket() {
                cmd.arg("--console-socket").arg(sock);
            }
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone().map_err(Error::io("open", dir.join(MONITOR_LOG)))?).stderr(log);
        let mut child = cmd.spawn().map_err(|e| Error::Runtime {
            op: "monitor",
            message: format!("start {}: {e}", Path::new(program).display()),
        })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(s) = session.as_mut() {
                s.poll_console()?;
            }
            let Some(now) = self.read_record(&rec.id)? else {
                // Gone already: it ran, exited and was removed (--rm).
                return Ok((rec, session.map(|s| s.into_attached(self.clone(), None))));
            };
            if let Some(err) = &now.state.error {
                let _ = child.wait();
                return Err(start_error(err, now.state.exit_code));
            }
            if matches!(now.state.status, Status::Running | Status::Exited) {
                let attached = session.map(|s| s.into_attached(self.clone(), Some(child)));
                return Ok((now, attached));
            }
            if let Ok(Some(status)) = child.try_wait() {
                // The monitor ended without a word in the record: its log says why.
                let text = fs::read_to_string(dir.join(MONITOR_LOG)).unwrap_or_default();
                let text = text.trim();
                return Err(Error::Runtime {
                    op: "monitor",
                    message: if text.is_empty() { format!("exited with {status}") } else { text.to_owned() },
                });
            }
            if Instant::now() > deadline {
                return Err(Error::Runtime { op: "start", message: format!("not running after {START_TIMEOUT:?}") });
            }
            std::thread::sleep(POLL);
        }
    }

    fn store_path(&self) -> PathBuf {
        self.dir.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// Send `signal` (`TERM`, `SIGKILL`, `9`...) to a running container (`docker kill`).
    pub fn kill(&self, name_or_id: &str, signal: &str) -> Result<ContainerRecord> {
        let rec = self.get(name_or_id)?;
        if rec.state.status != Status::Running {
            return Err(Error::ContainerNotRunning(rec.id));
        }
        self.signal(&rec, signal)?;
        Ok(rec)
    }

    /// Stop a running container (`docker stop`): its stop signal (`STOPSIGNAL`, else
    /// SIGTERM), then SIGKILL when it still runs after `timeout`. A container that is
    /// not running is left as it is.
    pub fn stop(&self, name_or_id: &str, timeout: Duration) -> Result<ContainerRecord> {
        let rec = self.get(name_or_id)?;
        if rec.state.status != Status::Running {
            return Ok(rec);
        }
        let first = rec.config.stop_signal.clone().unwrap_or_else(|| "TERM".into());
        self.signal(&rec, &first)?;
        let stopped = |r: &ContainerRecord| r.state.status != Status::Running;
        if self.wait_until(&rec.id, Some(timeout), stopped)?.is_some_and(|r| stopped(&r)) {
            return Ok(rec);
        }
        self.signal(&rec, "KILL")?;
        self.wait_until(&rec.id, Some(KILL_TIMEOUT), stopped)?;
        Ok(rec)
    }

    /// Wait until a container is not running, and return its exit code (`docker wait`).
    pub fn wait(&self, name_or_id: &str) -> Result<i32> {
        let rec = self.get(name_or_id)?;
        match self.wait_until(&rec.id, None, |r| r.state.status != Status::Running)? {
            Some(r) => Ok(r.state.exit_code.unwrap_or(0)),
            None => Err(Error::ContainerNotFound(name_or_id.to_owned())),
        }
    }

    /// Poll a record until `done` holds (or the container is gone: `None`), or `timeout`
    /// passes (the record as it is then).
    fn wait_until(
        &self,
        id: &str,
        timeout: Option<Duration>,
        done: impl Fn(&ContainerRecord) -> bool,
    ) -> Result<Option<ContainerRecord>> {
        let start = Instant::now();
        loop {
            let Some(rec) = self.read_record(id)?.map(observe) else { return Ok(None) };
            if done(&rec) || timeout.is_some_and(|t| start.elapsed() >= t) {
                return Ok(Some(rec));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Signal a running container: through the runtime, or straight to its process when
    /// its monitor is gone (the runtime may have forgotten it).
    fn signal(&self, rec: &ContainerRecord, signal: &str) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        let monitored = rec.state.monitor.is_some_and(|(pid, start)| alive(pid, start));
        if monitored {
            return self.runtime(rec).kill(&rec.id, signal, false, &dir.join(RUNTIME_LOG));
        }
        if let (Some(pid), Some(start)) = (rec.state.pid, rec.state.pid_start)
            && alive(pid, start)
        {
            let sig = parse_signal(signal)?;
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).ok_or(Error::ContainerNotRunning(rec.id.clone()))?,
                sig,
            );
        }
        Ok(())
    }

    /// Run a command in a running container (`docker exec`), with this process's stdio
    /// (`tty`: the runtime makes this process's terminal the command's); its exit code.
    pub fn exec(&self, name_or_id: &str, opts: &ExecOptions) -> Result<i32> {
        let rec = self.get(name_or_id)?;
        if rec.state.status != Status::Running {
            return Err(Error::ContainerNotRunning(rec.id));
        }
        let dir = self.ctr_dir(&rec.id);
        let user = match &opts.user {
            Some(u) => Some(crate::runtime::resolve_user(&dir.join(BUNDLE_DIR).join(ROOTFS_DIR), u)?),
            None => None,
        };
        for e in &opts.env {
            parse_env(e, |_| None)?;
        }
        let log = dir.join(format!("exec-{}.log", std::process::id()));
        let _ = fs::remove_file(&log);
        let args = ExecArgs {
            args: &opts.args,
            tty: opts.tty,
            cwd: opts.workdir.as_deref(),
            env: &opts.env,
            user: user.as_ref().map(|(u, g, groups)| (*u, *g, groups.as_slice())),
        };
        let status = self
            .runtime(&rec)
            .exec_command(&rec.id, &log, &args)
            .status()
            .map_err(|e| Error::Runtime { op: "exec", message: format!("{}: {e}", rec.runtime.display()) })?;
        let failed = oci::last_error(&log);
        let _ = fs::remove_file(&log);
        match (status.code(), failed) {
            (Some(code), None) => Ok(code),
            (_, Some(message)) => Err(Error::Runtime { op: "exec", message }),
            (None, None) => Ok(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)),
        }
    }
}

/// A record as things are: one recorded as running whose monitor is gone is running
/// while its process lives, else exited (code 255: nobody saw the code).
fn observe(mut rec: ContainerRecord) -> ContainerRecord {
    if rec.state.status != Status::Running {
        return rec;
    }
    if rec.state.monitor.is_some_and(|(pid, start)| alive(pid, start)) {
        return rec;
    }
    let running = matches!((rec.state.pid, rec.state.pid_start), (Some(p), Some(s)) if alive(p, s));
    if !running {
        rec.state.status = Status::Exited;
        rec.state.exit_code = Some(255);
        rec.state.monitor = None;
        rec.state.pid = None;
    }
    rec
}

/// Whether process `pid` runs and started at `start` (clock ticks since boot).
fn alive(pid: i32, start: u64) -> bool {
    process_start(pid) == Some(start)
}

/// The start time of a process (field 22 of `/proc/PID/stat`), if it exists and is not
/// a zombie.
pub(crate) fn process_start(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: fields follow the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// `TERM`, `SIGTERM`, `15` as a signal.
pub(crate) fn parse_signal(s: &str) -> Result<rustix::process::Signal> {
    use rustix::process::Signal;
    let name = s.trim_start_matches("SIG").to_ascii_uppercase();
    let by_name = [
        ("HUP", Signal::HUP),
        ("INT", Signal::INT),
        ("QUIT", Signal::QUIT),
        ("KILL", Signal::KILL),
        ("USR1", Signal::USR1),
        ("USR2", Signal::USR2),
        ("TERM", Signal::TERM),
        ("STOP", Signal::STOP),
        ("CONT", Signal::CONT),
        ("WINCH", Signal::WINCH),
    ];
    if let Some((_, sig)) = by_name.iter().find(|(n, _)| *n == name) {
        return Ok(*sig);
    }
    if let Ok(n) = name.parse::<i32>()
        && let Some((_, sig)) = by_name.iter().find(|(_, sig)| sig.as_raw() == n)
    {
        return Ok(*sig);
    }
    Err(Error::InvalidContainerOption { option: "--signal", value: s.to_owned(), reason: "unknown signal".into() })
}

/// The error of a start that failed, with docker's exit code.
fn start_error(message: &str, code: Option<i32>) -> Error {
    match code {
        Some(127) => Error::CannotExecute { not_found: true, message: message.to_owned() },
        Some(126) => Error::CannotExecute { not_found: false, message: message.to_owned() },
        _ => Error::Runtime { op: "start", message: message.to_owned() },
    }
}

/// A new container id: 32 random bytes, as 64 hex digits.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).map_err(Error::io("read", "/dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The runtime configuration of a container: the image's, with docker's privileges and
/// `opts`' mounts and network.
fn container_config(config: RuntimeConfig, opts: &CreateOptions) -> RuntimeConfig {
    let mut v: Value = config.into_value();
    crate::runtime::docker_privileges(&mut v);
    if let Some(mounts) = v["mounts"].as_array_mut() {
        for m in &opts.mounts {
            let mode = if m.read_only { "ro" } else { "rw" };
            mounts.push(json!({
                "destination": m.destination,
                "type": "bind",
                "source": m.source,
                "options": ["rbind", mode],
            }));
        }
    }
    if opts.network == Network::Host
        && let Some(ns) = v["linux"]["namespaces"].as_array_mut()
    {
        ns.retain(|n| n["type"] != "network");
        if let Some(mounts) = v["mounts"].as_array_mut() {
            // The host's name resolution, as docker gives a host-network container.
            mounts.push(json!({ "destination": "/etc/resolv.conf", "type": "bind",
                                "source": "/etc/resolv.conf", "options": ["rbind", "ro"] }));
        }
    }
    RuntimeConfig::from_value(v)
}
