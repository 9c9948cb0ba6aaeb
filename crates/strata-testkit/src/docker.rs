//! A real docker engine for the tests that compare strata with docker.
//!
//! [`docker`] gives the engine at `DOCKER_HOST` (what `.ci/run` starts, on a private
//! socket and data root), or else, when running as root with Debian's `docker.io`
//! installed, starts one of its own: vfs storage, no bridge, no iptables changes, its
//! socket and data under `/dev/shm/strata-testkit-dockerd` (shared by every test process
//! of the machine, started once under a lock, left running for the next run; `.ci/dockerd
//! stop /dev/shm/strata-testkit-dockerd` stops it). Without an engine, a test skips with a
//! message, or fails when `CI` is set.
//!
//! The engine is shared: a test names what it makes with [`Docker::unique`] and removes
//! it when done.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where a test process starts its own engine when `DOCKER_HOST` is not set.
pub const LOCAL_ENGINE_DIR: &str = "/dev/shm/strata-testkit-dockerd";

/// How long an engine may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A docker engine, reached through the `docker` client.
#[derive(Debug)]
pub struct Docker {
    /// The engine's address, as `DOCKER_HOST` spells it (`unix:///path/sock`).
    pub host: String,
}

static ENGINE: OnceLock<Result<Docker, String>> = OnceLock::new();

/// The docker engine for this test, or `None` (the test should return) when there is
/// none and `CI` is not set. With `CI` set and no engine, panics: `.ci/run` starts one.
pub fn docker() -> Option<&'static Docker> {
    match ENGINE.get_or_init(connect) {
        Ok(d) => Some(d),
        Err(why) => {
            if std::env::var_os("CI").is_some() {
                panic!("no docker engine and CI is set ({why}): .ci/run starts one and sets DOCKER_HOST");
            }
            eprintln!("skipping: no docker engine ({why}); set DOCKER_HOST or install docker.io and run as root");
            None
        }
    }
}

fn client() -> Option<PathBuf> {
    // Debian's client first: it speaks the engine's API version without downgrading.
    ["/usr/bin/docker", "/usr/local/bin/docker"].iter().map(PathBuf::from).find(|p| p.exists())
}

fn connect() -> Result<Docker, String> {
    if client().is_none() {
        return Err("no `docker` client (Debian package docker.io)".into());
    }
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        let d = Docker { host };
        return if d.answers() { Ok(d) } else { Err(format!("the engine at DOCKER_HOST={} does not answer", d.host)) };
    }
    let dir = Path::new(LOCAL_ENGINE_DIR);
    let d = Docker { host: format!("unix://{}/sock", dir.display()) };
    if d.answers() {
        return Ok(d);
    }
    if !rustix::process::geteuid().is_root() {
        return Err("DOCKER_HOST is not set and starting an engine needs root".into());
    }
    let found = Command::new("sh").args(["-c", "command -v dockerd"]).output().map(|o| o.status.success());
    if !found.unwrap_or(false) {
        return Err("DOCKER_HOST is not set and `dockerd` is not installed (Debian package docker.io)".into());
    }
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    // One starter at a time across the test processes of the machine.
    let lock = fs::File::create(dir.join("start.lock")).map_err(|e| format!("lock: {e}"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).map_err(|e| format!("lock: {e}"))?;
    if d.answers() {
        return Ok(d);
    }
    let log = fs::File::create(dir.join("log")).map_err(|e| format!("log: {e}"))?;
    let mut cmd = Command::new("dockerd");
    cmd.args(["--storage-driver", "vfs", "--iptables=false", "--ip6tables=false", "--bridge=none"])
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("pid"))
        .arg("-H")
        .arg(&d.host)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // Its own session, so that it outlives this test process and the next run reuses it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().map_err(|e| format!("start dockerd: {e}"))?;
    let start = Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if d.answers() {
            return Ok(d);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let tail = fs::read_to_string(dir.join("log")).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(5).collect();
    Err(format!("dockerd did not answer within {START_TIMEOUT:?}: {}", tail.join(" | ")))
}

impl Docker {
    fn answers(&self) -> bool {
        self.cmd(&["version", "--format", "{{.Server.Version}}"]).output().is_ok_and(|o| o.status.success())
    }

    /// A `docker` command against this engine (no user configuration read).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(client().unwrap_or_else(|| PathBuf::from("docker")));
        c.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", std::env::temp_dir().join("strata-testkit-docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run `docker ARGS`, panicking with its output when it fails; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        crate::run(&mut self.cmd(args))
    }

    /// Run `docker ARGS` and return what it did, success or not.
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap_or_else(|e| panic!("spawn docker {args:?}: {e}"))
    }

    /// The engine's version (`20.10.24+dfsg1`).
    pub fn version(&self) -> String {
        self.ok(&["version", "--format", "{{.Server.Version}}"]).trim().to_owned()
    }

    /// A name no other test of any process uses: `prefix` plus the process id and a
    /// counter, lowercase (valid as a repository, container or tag name).
    pub fn unique(&self, prefix: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)).to_lowercase()
    }

    /// `docker load -i FILE`; returns the lines docker printed (`Loaded image: ...`).
    pub fn load(&self, archive: &Path) -> String {
        let path = archive.to_str().unwrap_or_else(|| panic!("non-UTF-8 path {}", archive.display()));
        self.ok(&["load", "-i", path])
    }

    /// `docker save -o FILE REFS...`.
    pub fn save(&self, refs: &[&str], archive: &Path) {
        let path = archive.to_str().unwrap_or_else(|| panic!("non-UTF-8 path {}", archive.display()));
        let mut args = vec!["save", "-o", path];
        args.extend_from_slice(refs);
        self.ok(&args);
    }

    /// `docker image inspect REF` as JSON (the first element of the array).
    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", reference]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("docker inspect {reference}: {e}: {out}"));
        v.get(0).cloned().unwrap_or_else(|| panic!("docker inspect {reference}: empty array"))
    }

    /// Remove images (by reference or id) and containers, ignoring what is already gone.
    pub fn cleanup(&self, images: &[&str], containers: &[&str]) {
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend_from_slice(containers);
            let _ = self.output(&args);
        }
        if !images.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend_from_slice(images);
            let _ = self.output(&args);
        }
    }
}
