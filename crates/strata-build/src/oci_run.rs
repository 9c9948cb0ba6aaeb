//! `RUN` through an OCI runtime (`runc`, `crun`, `youki`): the same runtime and the
//! same rules (mounts, namespaces, docker's privileges) `strata run` runs containers
//! with, so there is one way a command runs in a rootfs. The build picks it when a
//! runtime is installed and falls back to the [`NamespaceRunner`](crate::NamespaceRunner)
//! otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_image::containers::{OciRuntime, find_runtime};
use strata_image::{CommandConfig, RUNTIME_CONFIG_FILE, RuntimeConfig};

use crate::error::{Error, Result};
use crate::run::{Network, RunSpec, Runner, run_piped, with_mount_points};

/// Runs each `RUN` as a container of its own: a bundle in a temporary directory whose
/// `config.json` points at the step's rootfs, run in the foreground (`runc run`) with a
/// state directory of its own, and gone when the command exits. The mount points the
/// runtime needs (`/proc`, `/dev`, `/sys`) are made when the image lacks them and
/// removed afterwards, so they never reach the layer.
#[derive(Debug, Clone)]
pub struct OciRunner {
    program: PathBuf,
}

impl OciRunner {
    /// The runner, when it can work here: running as root, with an OCI runtime found as
    /// `strata run` finds it (`STRATA_RUNTIME`, else `runc`, `crun`, `youki` on `PATH`).
    /// Otherwise the reason it cannot.
    pub fn detect() -> std::result::Result<OciRunner, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("RUN through an OCI runtime needs root".into());
        }
        find_runtime(None).map(|program| OciRunner { program }).map_err(|e| e.to_string())
    }

    /// The runner with the runtime `program` (a path, or a name on `PATH`).
    pub fn with_runtime(program: &Path) -> std::result::Result<OciRunner, String> {
        find_runtime(Some(program)).map(|program| OciRunner { program }).map_err(|e| e.to_string())
    }

    /// The runtime program.
    pub fn program(&self) -> &Path {
        &self.program
    }
}

impl Runner for OciRunner {
    fn run(&self, spec: &RunSpec<'_>, output: &mut dyn Write) -> Result<i32> {
        let rootfs = std::path::absolute(spec.rootfs).map_err(Error::io("resolve", spec.rootfs))?;
        let config = RuntimeConfig::for_command(&CommandConfig {
            rootfs: &rootfs,
            args: spec.args,
            env: spec.env,
            uid: spec.uid,
            gid: spec.gid,
            cwd: spec.workdir,
            host_network: spec.network == Network::Host,
        });
        let bundle = tempfile::Builder::new()
            .prefix("strata-run-")
            .tempdir()
            .map_err(Error::io("create a bundle directory", std::env::temp_dir()))?;
        let config_path = bundle.path().join(RUNTIME_CONFIG_FILE);
        std::fs::write(&config_path, config.to_vec()).map_err(Error::io("write", &config_path))?;
        let log = bundle.path().join("runtime.log");
        let runtime = OciRuntime::new(&self.program, bundle.path().join("state"));
        // The bundle directory's unique name is the container's id.
        let id = bundle.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let points = config.top_mount_points();
        let points: Vec<&str> = points.iter().map(String::as_str).collect();
        let code = with_mount_points(&rootfs, &points, || {
            run_piped(runtime.run_command(&id, bundle.path(), &log), &self.program, output)
        })?;
        // A runtime that failed before the command ran (an executable not found, a
        // mount refused) says so in its log; the command's own failures do not.
        match OciRuntime::error(&log) {
            Some(message) if code != 0 => Err(Error::RuntimeFailed { program: self.program.clone(), message }),
            _ => Ok(code),
        }
    }
}
