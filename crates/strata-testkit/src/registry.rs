//! A loopback registry for tests that push and pull: `docker-registry` (distribution
//! 2.8, which has no referrers API), or `ferro-oci-server` (an OCI distribution 1.1
//! registry with the referrers API, installed from crates.io by `.ci/run`).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry with its own storage, killed by PID when dropped.
pub struct Registry {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Registry {
    /// `extra`: YAML appended to the config (`auth:`), `tls`: the `http.tls` block.
    pub fn start(extra: &str, tls: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&config);
        Registry::run(cmd, dir, port)
    }

    /// A registry with the referrers API (distribution-spec 1.1): `ferro-oci-server`,
    /// its blobs in its own directory.
    pub fn start_with_referrers() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("ferro-oci-server");
        cmd.env("FERRO_OCI_LISTEN", format!("127.0.0.1:{port}"))
            .env("FERRO_OCI_STORAGE_DIR", dir.path().join("data"))
            .env("RUST_LOG", "error");
        Registry::run(cmd, dir, port)
    }

    /// Start `cmd`, logging to `dir/registry.log`, and wait until it listens on `port`.
    fn run(mut cmd: Command, dir: tempfile::TempDir, port: u16) -> Registry {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
                panic!("{program} exited ({status}):\n{log}");
            }
            assert!(Instant::now() < deadline, "{program} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry { _dir: dir, port, child }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
