//! The OCI runtime configuration (`config.json`) of a bundle, generated from the image
//! config by the rules of the image spec's "Conversion to OCI Runtime Configuration",
//! on a default skeleton modelled on what `umoci unpack` writes. The rules are
//! documented on [`RuntimeConfig`].

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::image::Image;

/// Name of the runtime configuration beside `rootfs/` in a bundle.
pub const RUNTIME_CONFIG_FILE: &str = "config.json";

/// The runtime-spec version the configuration declares (what umoci and crun write).
const OCI_VERSION: &str = "1.0.0";

/// `PATH` when the image sets none: the default of the runtime-spec's example config,
/// which umoci and runc use too.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Largest `/etc/passwd` or `/etc/group` read (real ones are a few kB; the rootfs is
/// untrusted, so a bigger one is refused rather than read whole into memory).
const MAX_ACCOUNTS_FILE: u64 = 16 << 20;

/// Options of [`Image::runtime_config`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RuntimeConfigOptions {
    /// The unpacked rootfs whose `/etc/passwd` and `/etc/group` resolve user and group
    /// names. `None`: read them from the image's layers (each layer is decompressed once).
    pub rootfs: Option<PathBuf>,
    /// Rootless: a user namespace mapping uid/gid 0 to the caller's euid/egid (see the
    /// module docs).
    pub rootless: bool,
    /// What a container asks for instead of (or on top of) the image config, as
    /// `docker run`'s flags do.
    pub process: ProcessOverrides,
}

/// A container's changes to the process the image config describes: `docker run`'s
/// `--user`, `-e`, `-w`, `--entrypoint`, `CMD...`, `--hostname` and `-t`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessOverrides {
    /// `--user`: replaces `Config.User` (resolved the same way).
    pub user: Option<String>,
    /// `-e NAME=value`: after the image's `Config.Env`, replacing an entry of the same name.
    pub env: Vec<String>,
    /// `-w`: replaces `Config.WorkingDir`.
    pub cwd: Option<String>,
    /// `--entrypoint`: replaces `Config.Entrypoint` (an empty list clears it); the
    /// image's `Config.Cmd` is then dropped too, as docker does.
    pub entrypoint: Option<Vec<String>>,
    /// The command given after the image: replaces `Config.Cmd` when not empty.
    pub cmd: Vec<String>,
    /// `--hostname` (default: `strata`).
    pub hostname: Option<String>,
    /// `-t`: the process gets a terminal.
    pub terminal: bool,
}

impl RuntimeConfigOptions {
    /// Set [`RuntimeConfigOptions::rootfs`].
    pub fn rootfs(mut self, rootfs: impl Into<PathBuf>) -> Self {
        self.rootfs = Some(rootfs.into());
        self
    }

    /// Set [`RuntimeConfigOptions::rootless`].
    pub fn rootless(mut self, rootless: bool) -> Self {
        self.rootless = rootless;
        self
    }

    /// Set [`RuntimeConfigOptions::process`].
    pub fn process(mut self, process: ProcessOverrides) -> Self {
        self.process = process;
        self
    }
}

/// An OCI runtime configuration (`config.json` of a bundle), as JSON, made by
/// [`Image::runtime_config`] from the image config:
///
/// - `process.args`: `Config.Entrypoint` then `Config.Cmd` (absent when both are).
/// - `process.env`: a default `PATH`, then `Config.Env` in order (an entry whose name is
///   already there, `PATH` included, replaces it in place), then `HOME` from the
///   user's `/etc/passwd` entry unless `Config.Env` sets it. An entry without `=` or with
///   an empty name is an error.
/// - `process.cwd`: `Config.WorkingDir`, else `/`.
/// - `process.user`: from `Config.User` (`user`, `uid`, `user:group`, `uid:gid`...). Names
///   are looked up in the image's own `/etc/passwd` and `/etc/group`, read *inside* the
///   rootfs (symlinks resolved as if the rootfs were `/`, so nothing outside it is ever
///   read); a name that is not there is [`Error::UnknownUser`]. A numeric uid found in
///   `/etc/passwd` takes its primary gid and home from there; one not found runs as gid 0.
///   `additionalGids` are the groups of `/etc/group` listing the user as a member, only
///   when the user is given by name and no group is given (as the conversion says).
///   An empty `Config.User` is uid 0 (with root's gid and home when `/etc/passwd` has it).
/// - `annotations`: `org.opencontainers.image.{os, architecture, variant, os.version,
///   os.features, author, created, stopSignal, exposedPorts}` from the config (only those
///   it has; `os.features` and `exposedPorts` comma-separated, ports sorted), then
///   `Config.Labels`, which win on conflict.
/// - `Config.Volumes`: a `tmpfs` mount at each, as umoci does, so a container's data
///   there is not written into the rootfs (and so never committed).
/// - `root`: `{"path": "rootfs", "readonly": false}`; `process.terminal` is false (a
///   bundle run by a script has no terminal; set it for interactive use).
///
/// Rootless (as `umoci unpack --rootless`): a user namespace mapping container uid/gid 0
/// to the caller's euid/egid, no network namespace, no `additionalGids` (setgroups is
/// denied there), no `uid=`/`gid=` mount options, `/sys` bind-mounted instead of a new
/// sysfs, the host's `/etc/resolv.conf` bound read-only, no device cgroup rules.
///
/// The JSON is written with object keys sorted at every level, so the same image (and
/// the same caller, when rootless) always gives the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    value: Value,
}

impl RuntimeConfig {
    /// A configuration from a JSON value (its keys sorted here).
    pub(crate) fn from_value(value: Value) -> RuntimeConfig {
        RuntimeConfig { value: sorted(value) }
    }

    /// The configuration as a JSON value (keys sorted).
    pub fn as_value(&self) -> &Value {
        &self.value
    }

    /// The configuration as a JSON value (keys sorted).
    pub fn into_value(self) -> Value {
        self.value
    }

    /// The bytes of `config.json`: pretty-printed, keys sorted at every level, with a
    /// final newline. The same configuration always gives the same bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        // Serializing a `Value` cannot fail: its keys are strings.
        let mut out = serde_json::to_vec_pretty(&self.value).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

impl serde::Serialize for RuntimeConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// The runtime configuration.
impl Image {
    /// The OCI runtime configuration of this image (what [`Image::unpack`] writes as
    /// `config.json`), following the image spec's conversion rules; see
    /// [`RuntimeConfig`] for each field. Errors: [`Error::UnknownUser`]
    /// when `Config.User` names a user or group the image does not have,
    /// [`Error::Unconvertible`] for an image config the conversion refuses (a non-Linux
    /// OS, a malformed `Env` entry).
    pub fn runtime_config(&self, opts: &RuntimeConfigOptions) -> Result<RuntimeConfig> {
        let config = self.config();
        // An image that names no OS is taken as Linux (hand-made and old images omit it).
        if !config.os.is_empty() && config.os != "linux" {
            return Err(Error::Unconvertible { field: "os", reason: format!("{:?} is not linux", config.os) });
        }
        let accounts = match &opts.rootfs {
            Some(root) => Accounts::from_rootfs(root)?,
            None => Accounts::from_image(self)?,
        };
        let empty = strata_spec::ContainerConfig::default();
        let c = config.config.as_ref().unwrap_or(&empty);
        let over = &opts.process;
        let user_spec = over.user.as_deref().or(c.user.as_deref()).unwrap_or("");
        let user = accounts.resolve(user_spec)?;

        // The default PATH first, replaced in place by the image's own (as umoci does).
        let mut env = vec![DEFAULT_PATH.to_owned()];
        let image_env: Vec<String> = c.env.iter().flatten().chain(&over.env).cloned().collect();
        let has = |name: &str| image_env.iter().any(|e| e.split_once('=').is_some_and(|(n, _)| n == name));
        for e in &image_env {
            let name = match e.split_once('=') {
                Some((n, _)) if !n.is_empty() => n,
                _ => {
                    return Err(Error::Unconvertible {
                        field: "config.Env",
                        reason: format!("{e:?} is not NAME=value"),
                    });
                }
            };
            match env.iter().position(|x: &String| x.split_once('=').is_some_and(|(n, _)| n == name)) {
                Some(i) => env[i] = e.clone(),
                None => env.push(e.clone()),
            }
        }
        if let Some(home) = user.home.as_deref().filter(|h| !h.is_empty() && !has("HOME")) {
            env.push(format!("HOME={home}"));
        }

        // docker's rule: a new entrypoint drops the image's Cmd; a command replaces Cmd.
        let entrypoint = over.entrypoint.as_ref().or(c.entrypoint.as_ref());
        let image_cmd = if over.entrypoint.is_some() { None } else { c.cmd.as_ref() };
        let cmd = if over.cmd.is_empty() { image_cmd } else { Some(&over.cmd) };
        let args: Vec<&String> = entrypoint.iter().copied().flatten().chain(cmd.iter().copied().flatten()).collect();
        let cwd = over.cwd.as_deref().or(c.working_dir.as_deref()).filter(|w| !w.is_empty()).unwrap_or("/");

        let mut annotations = Map::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                annotations.insert(format!("org.opencontainers.image.{k}"), Value::String(v));
            }
        };
        put("os", Some(config.os.clone()));
        put("architecture", Some(config.architecture.clone()));
        put("variant", config.variant.clone());
        put("os.version", config.os_version.clone());
        put("os.features", config.os_features.as_ref().map(|f| f.join(",")));
        put("author", config.author.clone());
        put("created", config.created.clone());
        put("stopSignal", c.stop_signal.clone());
        put("exposedPorts", c.exposed_ports.as_ref().map(|p| p.keys().cloned().collect::<Vec<_>>().join(",")));
        for (k, v) in c.labels.iter().flatten() {
            annotations.insert(k.clone(), Value::String(v.clone()));
        }

        let mut process_user = json!({ "uid": user.uid, "gid": user.gid });
        if !user.additional_gids.is_empty() && !opts.rootless {
            process_user["additionalGids"] = json!(user.additional_gids);
        }
        let mut process = json!({
            "terminal": over.terminal,
            "user": process_user,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        });
        if !args.is_empty() {
            process["args"] = json!(args);
        }

        let mut mounts = default_mounts();
        for vol in c.volumes.iter().flat_map(|v| v.keys()) {
            mounts.push(json!({
                "destination": vol,
                "type": "tmpfs",
                "source": "none",
                "options": ["rw", "nosuid", "nodev", "noexec", "relatime"],
            }));
        }
        let namespaces = ["pid", "network", "ipc", "uts", "mount"].map(|t| json!({ "type": t }));
        let mut linux = json!({
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        });
        if opts.rootless {
            make_rootless(&mut mounts, &mut linux);
        }

        let value = json!({
            "ociVersion": OCI_VERSION,
            "process": process,
            "root": { "path": crate::container::ROOTFS_DIR, "readonly": false },
            "hostname": over.hostname.as_deref().unwrap_or("strata"),
            "mounts": mounts,
            "annotations": annotations,
            "linux": linux,
        });
        Ok(RuntimeConfig { value: sorted(value) })
    }
}

/// The uid, gid and additional gids `spec` (`user[:group]`, names or numbers) gives in
/// the rootfs at `rootfs`, resolved as for `process.user` (for `exec -u`).
pub(crate) fn resolve_user(rootfs: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>)> {
    let user = Accounts::from_rootfs(rootfs)?.resolve(spec)?;
    Ok((user.uid, user.gid, user.additional_gids))
}

/// docker's default capabilities, which a container and a build's `RUN` get (the bounding,
/// effective and permitted sets), with `noNewPrivileges` off, as docker runs them.
pub const DOCKER_CAPABILITIES: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Give `config`'s process docker's privileges: [`DOCKER_CAPABILITIES`] and
/// `noNewPrivileges` off (a bundle for a script keeps the runtime-spec example's three).
pub(crate) fn docker_privileges(config: &mut Value) {
    let caps = json!(DOCKER_CAPABILITIES);
    config["process"]["capabilities"] = json!({ "bounding": caps, "effective": caps, "permitted": caps });
    config["process"]["noNewPrivileges"] = json!(false);
}

/// One command to run in a rootfs through an OCI runtime, as a build's `RUN` runs it:
/// see [`RuntimeConfig::for_command`].
#[derive(Debug, Clone)]
pub struct CommandConfig<'a> {
    /// The rootfs (absolute: the bundle is elsewhere).
    pub rootfs: &'a Path,
    /// The command and its arguments.
    pub args: &'a [String],
    /// The whole environment, `NAME=value`.
    pub env: &'a [String],
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Working directory in the rootfs (absolute).
    pub cwd: &'a str,
    /// The host's network; otherwise a network namespace with only loopback.
    pub host_network: bool,
}

impl RuntimeConfig {
    /// The configuration that runs `cmd` as docker runs a container's process (the
    /// mounts, masked paths and namespaces of [`Image::runtime_config`], docker's
    /// privileges, no terminal), with `cmd.rootfs` as the root. Nothing is read from
    /// the rootfs: the ids and environment are taken as given.
    pub fn for_command(cmd: &CommandConfig<'_>) -> RuntimeConfig {
        let mut namespaces = vec!["pid", "ipc", "uts", "mount"];
        let mut mounts = default_mounts();
        if cmd.host_network {
            mounts.push(json!({ "destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf",
                                "options": ["rbind", "ro"] }));
        } else {
            namespaces.push("network");
        }
        let mut value = json!({
            "ociVersion": OCI_VERSION,
            "process": {
                "terminal": false,
                "user": { "uid": cmd.uid, "gid": cmd.gid },
                "args": cmd.args,
                "env": cmd.env,
                "cwd": cmd.cwd,
                "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            },
            "root": { "path": cmd.rootfs, "readonly": false },
            "hostname": "strata",
            "mounts": mounts,
            "linux": {
                "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
                "namespaces": namespaces.iter().map(|t| json!({ "type": t })).collect::<Vec<_>>(),
                "maskedPaths": MASKED_PATHS,
                "readonlyPaths": READONLY_PATHS,
            },
        });
        docker_privileges(&mut value);
        RuntimeConfig::from_value(value)
    }

    /// The mount points at the top of the rootfs the runtime mounts over (`/proc`,
    /// `/dev`, `/sys`...): they belong to the base, not to what a command changed.
    pub fn top_mount_points(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.value["mounts"].as_array().into_iter().flatten() {
            let Some(dest) = m["destination"].as_str() else { continue };
            if dest.trim_matches('/').split('/').count() == 1 && !out.iter().any(|o| o == dest) {
                out.push(dest.to_owned());
            }
        }
        out
    }
}

/// The capabilities of the runtime-spec's example config (and umoci's).
const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// Paths masked in the container, as in the runtime-spec's example config.
const MASKED_PATHS: [&str; 7] = [
    "/proc/kcore",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// Paths mounted read-only in the container, as in the runtime-spec's example config.
const READONLY_PATHS: [&str; 6] =
    ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The mounts of the runtime-spec's example config (what umoci writes).
fn default_mounts() -> Vec<Value> {
    vec![
        json!({ "destination": "/proc", "type": "proc", "source": "proc" }),
        json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
        json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
        json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] }),
        json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"] }),
        json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }),
    ]
}

/// What an unprivileged user namespace needs (umoci's rootless conversion): a user
/// namespace with the caller mapped to 0 and no network namespace (one could not be
/// configured), no mount under `/sys` (a new sysfs needs a network namespace: bind the
/// host's), no `uid=`/`gid=` mount options (those ids are not mapped), the host's
/// `resolv.conf` for the host network, and no device cgroup rules.
fn make_rootless(mounts: &mut Vec<Value>, linux: &mut Value) {
    mounts.retain(|m| !m["destination"].as_str().is_some_and(|d| d.starts_with("/sys")));
    for m in mounts.iter_mut() {
        if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
            opts.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid=")));
        }
    }
    mounts.push(json!({ "destination": "/sys", "type": "bind", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] }));
    mounts.push(json!({ "destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf",
                        "options": ["rbind", "ro"] }));
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    linux["namespaces"] = ["pid", "ipc", "uts", "mount", "user"].map(|t| json!({ "type": t })).into();
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
}

/// `v` with every object's keys inserted in sorted order (serde_json keeps insertion
/// order when some crate in the build enables its `preserve_order` feature).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The process user a `Config.User` resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExecUser {
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    home: Option<String>,
}

/// One line of `/etc/passwd`.
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One line of `/etc/group`.
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The image's `/etc/passwd` and `/etc/group` (empty when missing).
struct Accounts {
    passwd: Vec<PasswdEntry>,
    group: Vec<GroupEntry>,
}

impl Accounts {
    fn from_rootfs(root: &Path) -> Result<Accounts> {
        let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::Io(strata_spec::IoError::new("open", root.to_path_buf(), e.into())))?;
        let read = |name: &str| {
            read_in_root(fd.as_fd(), name)
                .map_err(|source| Error::Io(strata_spec::IoError::new("read", root.join(name), source)))
        };
        Ok(Accounts::parse(read("etc/passwd")?.as_deref(), read("etc/group")?.as_deref()))
    }

    fn from_image(image: &Image) -> Result<Accounts> {
        let view = image.merged()?;
        let read = |path: &str| -> Result<Option<Vec<u8>>> {
            let mut reader = match view.read_file(path) {
                Ok(r) => r,
                Err(Error::Layer(strata_layer::Error::PathNotFound { .. })) => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut buf = Vec::new();
            (&mut reader)
                .take(MAX_ACCOUNTS_FILE + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Error::Io(strata_spec::IoError::new("read", PathBuf::from(path), e)))?;
            if buf.len() as u64 > MAX_ACCOUNTS_FILE {
                return Err(too_big(PathBuf::from(path)));
            }
            Ok(Some(buf))
        };
        Ok(Accounts::parse(read("/etc/passwd")?.as_deref(), read("/etc/group")?.as_deref()))
    }

    fn parse(passwd: Option<&[u8]>, group: Option<&[u8]>) -> Accounts {
        let passwd = lines(passwd)
            .filter_map(|f| match f.as_slice() {
                [name, _, uid, gid, _, home, ..] => Some(PasswdEntry {
                    name: name.clone(),
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                    home: home.clone(),
                }),
                _ => None,
            })
            .collect();
        let group = lines(group)
            .filter_map(|f| match f.as_slice() {
                [name, _, gid, rest @ ..] => Some(GroupEntry {
                    name: name.clone(),
                    gid: gid.parse().ok()?,
                    members: rest
                        .first()
                        .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                        .unwrap_or_default(),
                }),
                _ => None,
            })
            .collect();
        Accounts { passwd, group }
    }

    /// Resolve a `Config.User` (`user[:group]`, each a name or a number).
    fn resolve(&self, spec: &str) -> Result<ExecUser> {
        let (user_arg, group_arg) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
            None => (spec, None),
        };
        let unknown = |kind: &'static str, name: &str, file: &'static str| Error::UnknownUser {
            spec: spec.to_owned(),
            kind,
            name: name.to_owned(),
            file,
        };
        let uid_arg = if user_arg.is_empty() { Some(0) } else { numeric(user_arg) };
        let entry = self.passwd.iter().find(|p| match uid_arg {
            Some(uid) => p.uid == uid,
            None => p.name == user_arg,
        });
        let mut user = match (entry, uid_arg) {
            (Some(p), _) => {
                ExecUser { uid: p.uid, gid: p.gid, additional_gids: Vec::new(), home: Some(p.home.clone()) }
            }
            (None, Some(uid)) => ExecUser { uid, gid: 0, additional_gids: Vec::new(), home: None },
            (None, None) => return Err(unknown("user", user_arg, "/etc/passwd")),
        };
        match group_arg {
            Some(g) => {
                let gid_arg = numeric(g);
                let found = self.group.iter().find(|e| match gid_arg {
                    Some(gid) => e.gid == gid,
                    None => e.name == g,
                });
                user.gid = match (found, gid_arg) {
                    (Some(e), _) => e.gid,
                    (None, Some(gid)) => gid,
                    (None, None) => return Err(unknown("group", g, "/etc/group")),
                };
            }
            // The conversion sets additionalGids only for a user given by name and no group.
            None if uid_arg.is_none() => {
                let name = entry.map_or(user_arg, |p| p.name.as_str());
                for g in &self.group {
                    if g.members.iter().any(|m| m == name) && !user.additional_gids.contains(&g.gid) {
                        user.additional_gids.push(g.gid);
                    }
                }
            }
            None => {}
        }
        Ok(user)
    }
}

/// A uid or gid written as a decimal number.
fn numeric(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
}

/// The colon-separated fields of each line that is not empty or a comment.
fn lines(bytes: Option<&[u8]>) -> impl Iterator<Item = Vec<String>> + '_ {
    bytes.unwrap_or_default().split(|b| *b == b'\n').filter_map(|line| {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        Some(line.split(':').map(str::to_owned).collect())
    })
}

fn too_big(path: PathBuf) -> Error {
    Error::Io(strata_spec::IoError::new(
        "read",
        path,
        io::Error::new(io::ErrorKind::InvalidData, format!("larger than {MAX_ACCOUNTS_FILE} bytes")),
    ))
}

/// Read the regular file `rel` (relative) of the tree under `root`, every symlink on
/// the way resolved inside it ([`strata_layer::open_in_root`]). `None` when it does not
/// exist; an error when it is not a regular file (a fifo or a device would block or never
/// end) or too big.
fn read_in_root(root: BorrowedFd<'_>, rel: &str) -> io::Result<Option<Vec<u8>>> {
    let file = match strata_layer::open_in_root(root, rel) {
        Ok(f) => f,
        Err(e)
            if [Errno::NOENT, Errno::NOTDIR, Errno::LOOP]
                .iter()
                .any(|x| e.raw_os_error() == Some(x.raw_os_error())) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    let mut buf = Vec::new();
    file.take(MAX_ACCOUNTS_FILE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_ACCOUNTS_FILE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {MAX_ACCOUNTS_FILE} bytes")));
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::parse(
            Some(b"root:x:0:0:root:/root:/bin/sh\n# comment\nalice:x:1000:1001:A:/home/alice:/bin/sh\nbad:x:nope:1::/:\n"),
            Some(b"root:x:0:\nalice:x:1001:\nwheel:x:10:alice,bob\naudio:x:29:alice\nstaff:x:50:bob\n"),
        )
    }

    fn user(uid: u32, gid: u32, sgids: &[u32], home: Option<&str>) -> ExecUser {
        ExecUser { uid, gid, additional_gids: sgids.to_vec(), home: home.map(str::to_owned) }
    }

    #[test]
    fn user_specs_resolve_like_the_conversion_says() {
        let a = accounts();
        let table: &[(&str, ExecUser)] = &[
            ("", user(0, 0, &[], Some("/root"))),
            ("alice", user(1000, 1001, &[10, 29], Some("/home/alice"))),
            ("1000", user(1000, 1001, &[], Some("/home/alice"))),
            ("alice:staff", user(1000, 50, &[], Some("/home/alice"))),
            ("alice:7", user(1000, 7, &[], Some("/home/alice"))),
            ("4242", user(4242, 0, &[], None)),
            ("4242:4343", user(4242, 4343, &[], None)),
            ("0:wheel", user(0, 10, &[], Some("/root"))),
        ];
        for (spec, want) in table {
            assert_eq!(&a.resolve(spec).unwrap(), want, "{spec:?}");
        }
        for (spec, kind, name) in
            [("bob", "user", "bob"), ("alice:nogroup", "group", "nogroup"), ("bad", "user", "bad")]
        {
            match a.resolve(spec) {
                Err(Error::UnknownUser { kind: k, name: n, .. }) => assert_eq!((k, n.as_str()), (kind, name), "{spec}"),
                other => panic!("{spec}: {other:?}"),
            }
        }
    }

    #[test]
    fn keys_are_sorted_at_every_level() {
        let v = sorted(json!({ "b": [{ "z": 1, "a": 2 }], "a": { "y": 1, "x": 2 } }));
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":{"x":2,"y":1},"b":[{"a":2,"z":1}]}"#);
    }
}
