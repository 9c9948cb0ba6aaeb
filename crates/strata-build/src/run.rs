//! `RUN`: the [`Runner`] trait, and the default runner for Linux as root, which runs the
//! command in fresh mount, pid, ipc, uts and (unless the network is the host's) network
//! namespaces, chrooted into the step's rootfs, through util-linux's `unshare(1)`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::error::{Error, Result};

/// The network a `RUN` sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// A network namespace of its own with nothing in it (not even loopback up).
    #[default]
    None,
    /// The host's network (`--network host`).
    Host,
}

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    /// The rootfs to run in (the step's tree; what the command changes is committed).
    pub rootfs: &'a Path,
    /// The command and its arguments (the shell and `-c` already prepended for the
    /// shell form).
    pub args: &'a [String],
    /// The environment, `KEY=value`.
    pub env: &'a [String],
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Working directory inside the rootfs (absolute).
    pub workdir: &'a str,
    /// The network.
    pub network: Network,
    /// What `RUN --mount` (and a `#!` here-document) puts in the tree while the command
    /// runs, in the order to mount them (parents first). Their mount points exist in
    /// the rootfs, except below `/dev`, where the runner makes them in its own tmpfs.
    pub mounts: &'a [RunMount],
}

/// A mount of a `RUN` command: nothing of it goes into the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// Where: a physical path relative to the rootfs (no symlinks in it).
    pub target: PathBuf,
    /// What is mounted there.
    pub kind: RunMountKind,
}

/// What a [`RunMount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMountKind {
    /// A host file or directory, bound in.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Mounted read-only.
        readonly: bool,
    },
    /// An empty tmpfs.
    Tmpfs {
        /// Its size limit in bytes (`None`: the kernel's default, half the memory).
        size: Option<u64>,
    },
}

/// Runs the commands of `RUN` steps. Implement it to run them some other way (a VM, a
/// remote machine, a test double).
pub trait Runner: Send + Sync {
    /// Run `spec`, streaming the command's output (stdout and stderr, interleaved as it
    /// comes) to `output`; return its exit status (128 + signal when killed by one).
    /// Anything mounted inside the rootfs must be gone when this returns.
    fn run(&self, spec: &RunSpec<'_>, output: &mut dyn Write) -> Result<i32>;
}

/// The default runner: `unshare --mount --pid --fork --ipc --uts [--net]` runs a host
/// shell that mounts `/proc` and a minimal `/dev` (a tmpfs with the host's `null`,
/// `zero`, `full`, `random`, `urandom` and `tty` bound in) inside the rootfs, then
/// `unshare --root --wd --setgid --setuid` runs the command chrooted there. Everything
/// mounted lives in the new mount namespace and goes with it when the command exits;
/// the pid namespace ends every process the command left behind.
#[derive(Debug, Clone)]
pub struct NamespaceRunner {
    unshare: PathBuf,
    mount: PathBuf,
    shell: PathBuf,
}

impl NamespaceRunner {
    /// The runner, when it can work here: running as root, with `unshare` and `mount`
    /// on `PATH`. Otherwise the reason it cannot.
    pub fn detect() -> std::result::Result<NamespaceRunner, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("RUN needs root (namespaces and chroot); every other instruction works without".into());
        }
        let find = |tool: &str| -> std::result::Result<PathBuf, String> {
            let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
            std::env::split_paths(&path)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
                .ok_or_else(|| format!("{tool} (util-linux) is not on PATH"))
        };
        Ok(NamespaceRunner { unshare: find("unshare")?, mount: find("mount")?, shell: PathBuf::from("/bin/sh") })
    }
}

/// Mount points the runner needs in the rootfs; made (and removed afterwards) when the
/// image lacks them.
const MOUNT_POINTS: [&str; 2] = ["proc", "dev"];

/// The host-side script run in the new namespaces: mounts, then the chrooted command.
/// `$1` rootfs, `$2` unshare, `$3` mount, `$4` workdir, `$5` uid, `$6` gid, `$7` the
/// number of `RUN --mount`s, then three words for each (`ro`/`rw`/`tmpfs`, the source
/// or tmpfs options, the target relative to the rootfs), then the command. Device nodes
/// are bound onto files made in the tmpfs, never in the rootfs; mount points below
/// `/dev` are made there too.
const SCRIPT: &str = r#"set -e
IFS=' 	
'
R=$1; U=$2; M=$3; W=$4; UID_=$5; GID_=$6; shift 6
"$M" -t proc -o nosuid,nodev,noexec proc "$R/proc"
"$M" -t tmpfs -o nosuid,mode=0755,size=65536k tmpfs "$R/dev"
for d in null zero full random urandom tty; do
  if [ -e "/dev/$d" ]; then : > "$R/dev/$d"; "$M" --bind "/dev/$d" "$R/dev/$d"; fi
done
mkdir "$R/dev/shm" "$R/dev/pts"
"$M" -t tmpfs -o nosuid,nodev,mode=1777 shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
N=$1; shift
while [ "$N" -gt 0 ]; do
  K=$1; S=$2; D=$R/$3; shift 3; N=$((N - 1))
  if [ ! -e "$D" ]; then
    if [ "$K" = tmpfs ] || [ -d "$S" ]; then mkdir -p "$D"; else mkdir -p "${D%/*}"; : > "$D"; fi
  fi
  case $K in
    tmpfs) "$M" -t tmpfs -o "$S" tmpfs "$D" ;;
    ro) "$M" --bind "$S" "$D"; "$M" -o remount,bind,ro "$D" ;;
    *) "$M" --bind "$S" "$D" ;;
  esac
done
exec "$U" --root="$R" --wd="$W" --setgid "$GID_" --setuid "$UID_" -- "$@"
"#;

impl Runner for NamespaceRunner {
    fn run(&self, spec: &RunSpec<'_>, output: &mut dyn Write) -> Result<i32> {
        with_mount_points(spec.rootfs, &MOUNT_POINTS, || self.spawn(spec, output))
    }
}

/// Run `f` with `points` (names at the top of `rootfs`) there as directories to mount
/// on: made when the image lacks them, removed afterwards. A symlink or file there is
/// an error: the mounts would land elsewhere.
pub(crate) fn with_mount_points<T>(rootfs: &Path, points: &[&str], f: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut made = Vec::new();
    let mut result = Ok(());
    for m in points {
        let m = m.trim_start_matches('/');
        let p = rootfs.join(m);
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                result = Err(Error::MountPoint { path: m.to_owned() });
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&p) {
                Ok(()) => made.push(p),
                Err(e) => {
                    result = Err(Error::Io(strata_spec::IoError::new("mkdir", p, e)));
                    break;
                }
            },
            Err(e) => {
                result = Err(Error::Io(strata_spec::IoError::new("stat", p, e)));
                break;
            }
        }
    }
    let result = result.and_then(|()| f());
    for p in made.iter().rev() {
        // Empty unless the command wrote there through a path the mount did not
        // cover; leave it then, so that the commit shows it.
        let _ = std::fs::remove_dir(p);
    }
    result
}

impl NamespaceRunner {
    fn spawn(&self, spec: &RunSpec<'_>, output: &mut dyn Write) -> Result<i32> {
        let mut cmd = Command::new(&self.unshare);
        cmd.args(["--mount", "--pid", "--fork", "--kill-child", "--ipc", "--uts", "--propagation", "private"]);
        if spec.network == Network::None {
            cmd.arg("--net");
        }
        cmd.arg("--").arg(&self.shell).arg("-c").arg(SCRIPT).arg("strata-run");
        cmd.arg(spec.rootfs).arg(&self.unshare).arg(&self.mount).arg(spec.workdir);
        cmd.arg(spec.uid.to_string()).arg(spec.gid.to_string());
        cmd.arg(spec.mounts.len().to_string());
        for m in spec.mounts {
            match &m.kind {
                RunMountKind::Bind { source, readonly } => {
                    cmd.arg(if *readonly { "ro" } else { "rw" }).arg(source);
                }
                RunMountKind::Tmpfs { size } => {
                    let mut o = "nosuid,nodev,mode=1777".to_owned();
                    if let Some(s) = size {
                        o.push_str(&format!(",size={s}"));
                    }
                    cmd.arg("tmpfs").arg(o);
                }
            }
            cmd.arg(&m.target);
        }
        cmd.args(spec.args);
        cmd.env_clear();
        for kv in spec.env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        run_piped(cmd, &self.unshare, output)
    }
}

/// Run `cmd` (`program`) with stdin empty, streaming its stdout and stderr, interleaved
/// as they come, to `output`; its exit status (128 + signal when killed by one).
pub(crate) fn run_piped(mut cmd: Command, program: &Path, output: &mut dyn Write) -> Result<i32> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(Error::io("spawn", program))?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut pumps = Vec::new();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        pumps.push(std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = vec![0u8; 16 << 10];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut write_err = None;
    for chunk in rx {
        if write_err.is_none()
            && let Err(e) = output.write_all(&chunk)
        {
            write_err = Some(e);
        }
    }
    for p in pumps {
        let _ = p.join();
    }
    let status = child.wait().map_err(Error::io("wait for", program))?;
    let _ = output.flush();
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
