//! `RUN --mount`: what each mount type needs before the step (its part of the cache key)
//! and while the command runs (host paths bound in, stubs made and removed), so that
//! nothing mounted ends up in the layer.
//!
//! - `cache`: a directory kept beside the store (`<store>/strata-build/mounts/<id>`),
//!   reused by later builds; `sharing=locked` takes a lock on it, `private` falls back
//!   to a fresh directory while another build holds it.
//! - `bind`: a path of the build context (`.dockerignore` applied) or of another stage or
//!   image, read-only unless `rw` (then a copy, whose changes are dropped).
//! - `secret`: a file made from [`BuildOptions::secrets`](crate::BuildOptions) in a
//!   private temporary directory, or an environment variable (`env=`).
//! - `ssh`: the agent socket of [`BuildOptions::ssh`](crate::BuildOptions), with
//!   `SSH_AUTH_SOCK` pointing at it.
//! - `tmpfs`: an empty tmpfs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use strata_image::{Image, UnpackOptions};
use strata_spec::Digest;

use crate::copy::{self, HashMemo, SourceItem, SourceRoot};
use crate::dockerfile::{Ignore, Mount, MountKind, Sharing};
use crate::error::{Error, MountProblem, Result, SecretKind, SecretProblem};
use crate::run::{RunMount, RunMountKind};
use crate::tree::{DiskView, Node, resolve};

/// Where a secret comes from (`strata build --secret id=..,src=..|env=..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the build machine.
    File(PathBuf),
    /// An environment variable of the build machine, read when the step runs.
    Env(String),
    /// The bytes themselves.
    Value(Vec<u8>),
}

impl SecretSource {
    fn read(&self, id: &str) -> Result<Vec<u8>> {
        match self {
            SecretSource::File(p) => fs::read(p).map_err(Error::io("read secret", p)),
            SecretSource::Env(v) => std::env::var_os(v).map(|s| s.into_encoded_bytes()).ok_or_else(|| Error::Secret {
                kind: SecretKind::Secret,
                id: id.to_owned(),
                problem: SecretProblem::EnvUnset { var: v.clone() },
            }),
            SecretSource::Value(b) => Ok(b.clone()),
        }
    }
}

/// What a mount brings from outside the rootfs, found before the step so that it is
/// part of the step's cache key.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Origin {
    /// Nothing to read before the run (cache, tmpfs, secret, ssh).
    None,
    /// A path of the build context.
    Context(SourceItem),
    /// A path of another stage or image.
    Image(Image),
}

/// A `--mount` ready for the step.
pub(crate) struct Prepared {
    pub mount: Mount,
    pub origin: Origin,
}

impl Prepared {
    /// The mount's part of the step's cache key: its options and, for a bind mount, the
    /// digest of what it binds. Never a secret's value (BuildKit's rule too: changing a
    /// secret does not rebuild).
    pub fn key(&self) -> String {
        let m = &self.mount;
        let origin = match &self.origin {
            Origin::None => String::new(),
            Origin::Context(item) => item.hash.clone(),
            Origin::Image(img) => img.id().to_string(),
        };
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}",
            m.kind.as_str(),
            m.effective_target(),
            m.source,
            m.from,
            m.effective_id(),
            m.readonly,
            m.sharing,
            m.mode,
            m.uid,
            m.gid,
            m.env,
            m.required,
            origin
        )
    }
}

/// Find a bind mount's source in the context (its item, hashed).
pub(crate) fn context_origin(context: &Path, ignore: &Ignore, source: &str, memo: &mut HashMemo) -> Result<Origin> {
    let src = SourceRoot {
        root: context.to_path_buf(),
        ignore: Some(ignore),
        exclude: None,
        keep_owners: false,
        recorded: BTreeMap::new(),
    };
    let mut items = copy::expand_sources(&src, &[source.to_owned()], memo, &mut |_| {})?;
    match items.len() {
        1 => Ok(Origin::Context(items.remove(0))),
        _ => Err(Error::Mount { problem: MountProblem::SourcePattern { path: source.to_owned() } }),
    }
}

/// What the build gives `RUN --mount`.
pub(crate) struct Inputs<'a> {
    /// Directory of persistent cache mounts.
    pub cache_root: &'a Path,
    pub secrets: &'a BTreeMap<String, SecretSource>,
    pub ssh: &'a BTreeMap<String, PathBuf>,
    /// Where temporary directories go.
    pub temp_base: &'a Path,
}

/// The mounts of one run, set up: the runner's list, extra environment, and what to
/// undo afterwards.
#[derive(Default)]
pub(crate) struct Active {
    pub mounts: Vec<RunMount>,
    pub env: Vec<String>,
    /// Mount points made in the rootfs, removed after the run (when still empty).
    stubs: Vec<PathBuf>,
    temps: Vec<tempfile::TempDir>,
    locks: Vec<fs::File>,
}

impl Active {
    /// Remove the mount points made for the run (deepest first), when they are still
    /// empty: what the command wrote beside them stays.
    pub fn cleanup(&mut self) {
        for p in self.stubs.drain(..).rev() {
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let _ = fs::remove_dir(&p);
                }
                Ok(m) if m.len() == 0 => {
                    let _ = fs::remove_file(&p);
                }
                _ => {}
            }
        }
        self.temps.clear();
        self.locks.clear();
    }

    fn temp(&mut self, base: &Path) -> Result<PathBuf> {
        let t = tempfile::Builder::new()
            .prefix("strata-mount-")
            .tempdir_in(base)
            .map_err(Error::io("create a directory in", base))?;
        let p = t.path().to_path_buf();
        self.temps.push(t);
        Ok(p)
    }

    /// Make the mount point of `target` in `rootfs` (a directory, or an empty file when
    /// the source is a file); returns its physical path relative to the rootfs.
    fn mount_point(&mut self, rootfs: &Path, target: &str, is_dir: bool) -> Result<PathBuf> {
        let first = Path::new(target).components().nth(1).map(|c| c.as_os_str().to_owned());
        if first.as_deref() == Some(std::ffi::OsStr::new("dev")) {
            // The runner's own tmpfs: it makes the mount point there.
            return Ok(PathBuf::from(target.trim_start_matches('/')));
        }
        let r = resolve(&DiskView(rootfs), Path::new(target), true)?;
        if r.missing.is_empty() {
            if r.existing.as_os_str().is_empty() {
                return Err(Error::Mount { problem: MountProblem::CoversRoot });
            }
            let ok = match r.node {
                Some(Node::Dir) => is_dir,
                _ => !is_dir,
            };
            if !ok {
                return Err(Error::Mount {
                    problem: MountProblem::KindMismatch { target: target.to_owned(), source_is_dir: is_dir },
                });
            }
            return Ok(r.existing);
        }
        let mut p = r.existing.clone();
        let last = r.missing.len() - 1;
        for (i, m) in r.missing.iter().enumerate() {
            p.push(m);
            let abs = rootfs.join(&p);
            if i == last && !is_dir {
                fs::write(&abs, b"").map_err(Error::io("create mount point", &abs))?;
            } else {
                fs::create_dir(&abs).map_err(Error::io("create mount point", &abs))?;
            }
            self.stubs.push(abs);
        }
        Ok(p)
    }
}

/// Set up `prepared` for a run in `rootfs`. On error, what was made is undone.
pub(crate) fn activate(prepared: &[Prepared], rootfs: &Path, inputs: &Inputs<'_>) -> Result<Active> {
    let mut active = Active::default();
    match activate_into(&mut active, prepared, rootfs, inputs) {
        Ok(()) => Ok(active),
        Err(e) => {
            active.cleanup();
            Err(e)
        }
    }
}

fn activate_into(active: &mut Active, prepared: &[Prepared], rootfs: &Path, inputs: &Inputs<'_>) -> Result<()> {
    // Parents before children.
    let mut order: Vec<&Prepared> = prepared.iter().collect();
    order.sort_by_key(|p| p.mount.effective_target().map(|t| t.matches('/').count()).unwrap_or(0));
    for p in order {
        let m = &p.mount;
        let id = m.effective_id();
        match m.kind {
            MountKind::Tmpfs => {
                let target = m.effective_target().unwrap_or_default();
                let at = active.mount_point(rootfs, &target, true)?;
                active.mounts.push(RunMount { target: at, kind: RunMountKind::Tmpfs { size: m.size } });
            }
            MountKind::Cache => {
                let dir = cache_dir(active, inputs, m, &id)?;
                let target = m.effective_target().unwrap_or_default();
                let at = active.mount_point(rootfs, &target, true)?;
                active
                    .mounts
                    .push(RunMount { target: at, kind: RunMountKind::Bind { source: dir, readonly: m.readonly } });
            }
            MountKind::Bind => {
                let source = bind_source(active, inputs, p)?;
                let is_dir = source.is_dir();
                let target = m.effective_target().unwrap_or_default();
                let at = active.mount_point(rootfs, &target, is_dir)?;
                active.mounts.push(RunMount { target: at, kind: RunMountKind::Bind { source, readonly: m.readonly } });
            }
            MountKind::Secret => {
                let value = match inputs.secrets.get(&id) {
                    Some(s) => s.read(&id)?,
                    None if m.required => {
                        return Err(Error::Secret {
                            kind: SecretKind::Secret,
                            problem: SecretProblem::NotGiven {
                                hint: format!("strata build --secret id={id},src=FILE"),
                            },
                            id,
                        });
                    }
                    None => continue,
                };
                if let Some(var) = &m.env {
                    let text = String::from_utf8(value.clone()).map_err(|_| Error::Secret {
                        kind: SecretKind::Secret,
                        id: id.clone(),
                        problem: SecretProblem::NotText { var: var.clone() },
                    })?;
                    active.env.push(format!("{var}={text}"));
                }
                if let Some(target) = m.effective_target() {
                    let dir = active.temp(inputs.temp_base)?;
                    let file = dir.join("secret");
                    fs::write(&file, &value).map_err(Error::io("write", &file))?;
                    own(&file, m.mode.unwrap_or(0o400), m.uid, m.gid)?;
                    let at = active.mount_point(rootfs, &target, false)?;
                    active
                        .mounts
                        .push(RunMount { target: at, kind: RunMountKind::Bind { source: file, readonly: true } });
                }
            }
            MountKind::Ssh => {
                let Some(sock) = inputs.ssh.get(&id) else {
                    if m.required {
                        return Err(Error::Secret {
                            kind: SecretKind::SshAgent,
                            problem: SecretProblem::NotGiven { hint: format!("strata build --ssh {id}=SOCKET") },
                            id,
                        });
                    }
                    continue;
                };
                let target = m.effective_target().unwrap_or_default();
                let at = active.mount_point(rootfs, &target, false)?;
                active
                    .mounts
                    .push(RunMount { target: at, kind: RunMountKind::Bind { source: sock.clone(), readonly: false } });
                active.env.push(format!("SSH_AUTH_SOCK={target}"));
            }
        }
    }
    Ok(())
}

/// The host directory of a cache mount, made with its mode and owner the first time.
fn cache_dir(active: &mut Active, inputs: &Inputs<'_>, m: &Mount, id: &str) -> Result<PathBuf> {
    let name = Digest::sha256_of(id.as_bytes()).hex().to_owned();
    fs::create_dir_all(inputs.cache_root).map_err(Error::io("mkdir", inputs.cache_root))?;
    let dir = inputs.cache_root.join(&name);
    if !dir.exists() {
        // Made under a temporary name, then renamed: a concurrent build sees it whole.
        let tmp = inputs.cache_root.join(format!(".{name}.{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(Error::io("mkdir", &tmp))?;
        own(&tmp, m.mode.unwrap_or(0o755), m.uid, m.gid)?;
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            if !dir.exists() {
                return Err(Error::Io(strata_spec::IoError::new("rename", dir, e)));
            }
        }
    }
    if m.sharing == Sharing::Shared {
        return Ok(dir);
    }
    let lock_path = inputs.cache_root.join(format!("{name}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(Error::io("open", &lock_path))?;
    let locked = match m.sharing {
        Sharing::Locked => {
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| Error::Io(strata_spec::IoError::new("lock", lock_path.clone(), e.into())))?;
            true
        }
        _ => rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok(),
    };
    if locked {
        active.locks.push(lock);
        return Ok(dir);
    }
    // `private` while another user holds it: a fresh directory of its own.
    let fresh = active.temp(inputs.temp_base)?;
    own(&fresh, m.mode.unwrap_or(0o755), m.uid, m.gid)?;
    Ok(fresh)
}

/// The host path a bind mount binds: the source in the context (a filtered copy when
/// `.dockerignore` leaves something out, or when writable) or in an unpacked image.
fn bind_source(active: &mut Active, inputs: &Inputs<'_>, p: &Prepared) -> Result<PathBuf> {
    let m = &p.mount;
    match &p.origin {
        Origin::Context(item) => {
            let dir = active.temp(inputs.temp_base)?;
            let out = dir.join("src");
            materialize(item, &out)?;
            Ok(out)
        }
        Origin::Image(image) => {
            let dir = active.temp(inputs.temp_base)?;
            let root = dir.join("rootfs");
            image.unpack_raw(&root, &UnpackOptions::default())?;
            let source = m.source.as_deref().unwrap_or("/");
            let r = resolve(&DiskView(&root), Path::new(source), true)?;
            if !r.missing.is_empty() {
                return Err(Error::SourceNotFound { path: source.to_owned() });
            }
            Ok(root.join(r.existing))
        }
        Origin::None => Err(Error::Mount { problem: MountProblem::NoSource }),
    }
}

/// Copy an item (a file, or a directory's entries) to `out`: what the command sees,
/// never the context itself.
fn materialize(item: &SourceItem, out: &Path) -> Result<()> {
    if !item.is_dir {
        let e = item.entries.first().ok_or_else(|| Error::Mount { problem: MountProblem::NoSource })?;
        copy_entry(e, out)?;
        return Ok(());
    }
    fs::create_dir(out).map_err(Error::io("mkdir", out))?;
    for e in &item.entries {
        copy_entry(e, &out.join(&e.rel))?;
    }
    Ok(())
}

fn copy_entry(e: &copy::SourceEntry, to: &Path) -> Result<()> {
    use strata_layer::EntryKind;
    match &e.kind {
        EntryKind::Dir => {
            if !to.exists() {
                fs::create_dir(to).map_err(Error::io("mkdir", to))?;
            }
        }
        EntryKind::Symlink { target } => symlink(target, to).map_err(Error::io("symlink", to))?,
        EntryKind::File => {
            fs::copy(&e.abs, to).map_err(Error::io("copy", &e.abs))?;
        }
        // Devices and fifos are not bound into a build.
        _ => return Ok(()),
    }
    if !matches!(e.kind, EntryKind::Symlink { .. }) {
        fs::set_permissions(to, fs::Permissions::from_mode(e.mode)).map_err(Error::io("chmod", to))?;
    }
    Ok(())
}

/// Set mode and owner of a path made for a mount.
fn own(path: &Path, mode: u32, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io("chmod", path))?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid).map_err(Error::io("chown", path))?;
    }
    Ok(())
}
