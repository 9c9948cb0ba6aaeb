//! Containers: an image unpacked into a bundle directory that can be diffed and
//! committed, like umoci's bundles.
//!
//! ```text
//! DIR/rootfs/               the merged tree of the image's layers
//! DIR/config.json           the OCI runtime configuration (`runc run` / `crun run`
//!                           start the bundle), made from the image config
//! DIR/strata-bundle.json    state: base image (manifest digest, id, name), store, platform,
//!                           rootless or not, when it was unpacked
//! DIR/strata-snapshot.bin   metadata of every path of rootfs/ as unpacked (and, when
//!                           rootless, the owners and devices the image wanted)
//! ```
//!
//! The runtime configuration, state and snapshot sit beside the rootfs, never inside it,
//! so nothing strata writes ends up in a commit. A commit compares the rootfs with the snapshot and reads
//! only what moved.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strata_commit::{Base, CommitOptions, Source};
use strata_layer::{
    ApplyOptions, ApplyReport, Changes, DiffOptions, LayerSource, Limits, MergeOptions, Ownership, Plan,
    RecordedDevice, RecordedOwner, RecordedOwners, Snapshot, apply_layers,
};
use strata_spec::{Compression, Descriptor, Digest, time::format_system_time};

use crate::error::{Error, Result};
use crate::image::Image;
use crate::progress::{ProgressHook, ProgressReader};
use crate::runtime::{RUNTIME_CONFIG_FILE, RuntimeConfigOptions};
use crate::store::Store;

/// Name of the state file beside `rootfs/`.
pub const STATE_FILE: &str = "strata-bundle.json";
/// Name of the snapshot file beside `rootfs/`.
pub const SNAPSHOT_FILE: &str = "strata-snapshot.bin";
/// Name of the rootfs directory in a bundle.
pub const ROOTFS_DIR: &str = "rootfs";
const STATE_VERSION: u32 = 1;

/// Options of [`Image::unpack_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// Rootless: no chown, device nodes become empty files, owners recorded in the
    /// snapshot. `None`: rootless exactly when not running as root.
    pub rootless: Option<bool>,
    /// Told how many bytes of each layer blob have been read (`Layer*` events, for
    /// progress bars).
    pub progress: ProgressHook,
    /// Do not write `config.json` (the OCI runtime configuration) beside the rootfs.
    /// [`Image::unpack_raw`] never writes one.
    pub skip_runtime_config: bool,
    /// Whether to plan first which files not to write (see [`PlanMode`]).
    pub plan: PlanMode,
}

/// Whether an unpack first reads every layer's headers to find the regular files a
/// later layer deletes or replaces, and then does not write them
/// ([`strata_layer::Plan`]). The tree is the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlanMode {
    /// Plan when the image has more than one layer and every layer is an uncompressed
    /// tar: reading its headers then costs a seek per entry. A compressed layer would
    /// have to be decompressed twice, which costs more than the writes saved on a fast
    /// file system.
    #[default]
    Auto,
    /// Plan whenever there is more than one layer, decompressing compressed layers a
    /// first time for their headers: for slow file systems, where writes cost more.
    Always,
    /// Never plan.
    Never,
}

impl UnpackOptions {
    /// Set [`UnpackOptions::rootless`].
    pub fn rootless(mut self, rootless: bool) -> Self {
        self.rootless = Some(rootless);
        self
    }

    /// Whether to write `config.json` beside the rootfs (the default; see
    /// [`UnpackOptions::skip_runtime_config`]).
    pub fn runtime_config(mut self, write: bool) -> Self {
        self.skip_runtime_config = !write;
        self
    }

    /// Set [`UnpackOptions::progress`].
    pub fn progress(mut self, hook: ProgressHook) -> Self {
        self.progress = hook;
        self
    }

    /// Set [`UnpackOptions::plan`].
    pub fn plan(mut self, mode: PlanMode) -> Self {
        self.plan = mode;
        self
    }
}

/// The state file of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleState {
    /// Format version (1).
    pub version: u32,
    /// The manifest the rootfs was unpacked from.
    pub manifest: Descriptor,
    /// Its image id (config digest).
    pub image_id: Digest,
    /// The name it was unpacked by, if any.
    pub name: Option<String>,
    /// The store it came from (informational; commit uses the store it is given).
    pub store: Option<PathBuf>,
    /// Whether ownership was recorded rather than applied.
    pub rootless: bool,
    /// When it was unpacked, RFC 3339.
    pub unpacked: String,
}

/// An unpacked image that can be diffed and committed.
#[derive(Debug, Clone)]
pub struct Container {
    store: Store,
    dir: PathBuf,
    state: BundleState,
}

/// Unpacking.
impl Image {
    /// Unpack into a bundle at `dir` (created; it must not exist or be empty):
    /// `dir/rootfs`, `dir/config.json` (the OCI runtime configuration, see
    /// [`Image::runtime_config`]; its user and group names are resolved in the unpacked
    /// rootfs), and the state and snapshot files beside it.
    pub fn unpack(&self, dir: impl AsRef<Path>) -> Result<Container> {
        self.unpack_with(dir, &UnpackOptions::default())
    }

    /// [`Image::unpack`] with options.
    pub fn unpack_with(&self, dir: impl AsRef<Path>, opts: &UnpackOptions) -> Result<Container> {
        let dir = dir.as_ref().to_path_buf();
        let created = prepare_empty_dir(&dir)?;
        let result = (|| {
            let rootfs = dir.join(ROOTFS_DIR);
            let report = self.apply_to(&rootfs, opts)?;
            if !opts.skip_runtime_config {
                let ropts = RuntimeConfigOptions::default().rootfs(&rootfs).rootless(report.rootless);
                write_atomic(&dir.join(RUNTIME_CONFIG_FILE), &self.runtime_config(&ropts)?.to_vec())?;
            }
            // Written as the tree is walked: memory does not grow with the rootfs.
            let path = dir.join(SNAPSHOT_FILE);
            let tmp = path.with_extension("tmp");
            let file = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
            Snapshot::capture_to(&rootfs, &recorded_owners(&report), std::io::BufWriter::new(file))?;
            fs::rename(&tmp, &path).map_err(Error::io("rename", &path))?;
            let state = BundleState {
                version: STATE_VERSION,
                manifest: self.descriptor().clone(),
                image_id: self.id().clone(),
                name: self.name().map(str::to_owned),
                store: self.store().path().map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf())),
                rootless: report.rootless,
                unpacked: format_system_time(SystemTime::now()),
            };
            let json = serde_json::to_vec_pretty(&state)
                .map_err(|e| Error::InvalidBundle { path: dir.clone(), reason: e.to_string() })?;
            write_atomic(&dir.join(STATE_FILE), &json)?;
            Ok(Container { store: self.store().clone(), dir: dir.clone(), state })
        })();
        if result.is_err() {
            cleanup(&dir, &created);
        }
        result
    }

    /// Unpack the merged rootfs alone straight into `dir` (like `umoci raw unpack`): no
    /// runtime configuration, no state, no snapshot.
    pub fn unpack_raw(&self, dir: impl AsRef<Path>, opts: &UnpackOptions) -> Result<ApplyReport> {
        let dir = dir.as_ref();
        let created = prepare_empty_dir(dir)?;
        let result = self.apply_to(dir, opts);
        if result.is_err() {
            cleanup(dir, &created);
        }
        result
    }

    fn apply_to(&self, root: &Path, opts: &UnpackOptions) -> Result<ApplyReport> {
        let backend = self.store().backend();
        let diff_ids = &self.config().rootfs.diff_ids;
        let mut sources = Vec::new();
        let count = self.layers().len();
        for (i, (desc, diff_id)) in self.layers().iter().zip(diff_ids).enumerate() {
            // The applier checks the diff_id over every decompressed byte, which covers the
            // blob's bytes too: hashing the compressed blob as well would only cost time.
            let blob = backend.open_descriptor(desc)?.without_digest_check();
            let reader = ProgressReader::new(blob, opts.progress.clone(), i, count, Some(desc));
            sources.push(LayerSource::from_descriptor(desc, Some(diff_id.clone()), reader));
        }
        let ownership = match opts.rootless {
            Some(true) => Ownership::Record,
            Some(false) => Ownership::Apply,
            None => Ownership::Auto,
        };
        let mut apply = ApplyOptions::default().ownership(ownership);
        if let Some(plan) = self.plan(opts.plan)? {
            apply = apply.plan(Arc::new(plan));
        }
        Ok(apply_layers(root, sources, &apply)?)
    }

    /// The plan of an unpack, if `mode` wants one for these layers. A plan that cannot
    /// be made (a layer the applier would refuse) is no plan: the unpack then fails
    /// with the applier's own error.
    fn plan(&self, mode: PlanMode) -> Result<Option<Plan>> {
        let layers = self.layers();
        let plain = layers.iter().all(|d| d.media_type.layer_compression() == Some(Compression::None));
        if layers.len() < 2 || mode == PlanMode::Never || (mode == PlanMode::Auto && !plain) {
            return Ok(None);
        }
        let backend = self.store().backend();
        let diff_ids = &self.config().rootfs.diff_ids;
        let mut sources = Vec::new();
        for (desc, diff_id) in layers.iter().zip(diff_ids) {
            // Unverified here: the applier checks every byte against the diff_id, and
            // every header against the plan's.
            let blob = backend.open_descriptor(desc)?.without_digest_check();
            sources.push(LayerSource::from_descriptor(desc, Some(diff_id.clone()), blob));
        }
        let plan = if plain {
            Plan::from_tars(sources, &Limits::default())
        } else {
            Plan::from_layers(sources, &MergeOptions::default())
        };
        Ok(plan.ok())
    }
}

fn recorded_owners(report: &ApplyReport) -> RecordedOwners {
    report
        .recorded
        .iter()
        .map(|(p, r)| {
            let device = r.device.map(|d| match d {
                strata_layer::Device::Char { major, minor } => RecordedDevice::Char { major, minor },
                strata_layer::Device::Block { major, minor } => RecordedDevice::Block { major, minor },
            });
            (p.clone(), RecordedOwner { uid: r.uid, gid: r.gid, device })
        })
        .collect()
}

/// Make sure `dir` exists and is empty. Returns the directories this call created, the
/// deepest first (`dir` and every missing parent, `/x/a/b/c` then `/x/a/b` then `/x/a`),
/// so that a failed unpack can leave nothing behind.
fn prepare_empty_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::TargetNotEmpty(dir.to_path_buf()));
            }
            Ok(Vec::new())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let missing: Vec<PathBuf> = dir
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .take_while(|a| fs::symlink_metadata(a).is_err())
                .map(Path::to_path_buf)
                .collect();
            if let Err(e) = fs::create_dir_all(dir) {
                remove_created(&missing);
                return Err(Error::io("create", dir)(e));
            }
            Ok(missing)
        }
        Err(e) => Err(Error::Io(strata_spec::IoError::new("read", dir.to_path_buf(), e))),
    }
}

/// Undo a failed unpack: remove what it made in `dir`, then the directories
/// [`prepare_empty_dir`] created (each only if empty: something another process put in
/// a parent meanwhile stays, and so does the parent).
fn cleanup(dir: &Path, created: &[PathBuf]) {
    if created.first().is_some_and(|c| c == dir) {
        let _ = fs::remove_dir_all(dir);
    } else if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }
    remove_created(created);
}

/// Remove the directories in `created` (deepest first) that are empty.
fn remove_created(created: &[PathBuf]) {
    for d in created {
        match fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => break,
        }
    }
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(Error::io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename", path))
}

impl Container {
    /// Open the bundle at `dir`, to diff or commit it into `store`.
    pub fn open(store: &Store, dir: impl AsRef<Path>) -> Result<Container> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::InvalidBundle {
                    path: dir,
                    reason: format!("no {STATE_FILE} (not unpacked by strata?)"),
                });
            }
            Err(e) => return Err(Error::Io(strata_spec::IoError::new("read", path, e))),
        };
        let state: BundleState = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidBundle { path: path.clone(), reason: e.to_string() })?;
        if state.version != STATE_VERSION {
            return Err(Error::InvalidBundle {
                path,
                reason: format!("state version {} (expected {STATE_VERSION})", state.version),
            });
        }
        if !dir.join(ROOTFS_DIR).is_dir() {
            return Err(Error::InvalidBundle { path: dir, reason: "no rootfs/ directory".into() });
        }
        Ok(Container { store: store.clone(), dir, state })
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(ROOTFS_DIR)
    }

    /// The state recorded at unpack.
    pub fn state(&self) -> &BundleState {
        &self.state
    }

    /// The image this container was unpacked from (it must still be in the store).
    pub fn base(&self) -> Result<Image> {
        let platform = strata_spec::Platform::host();
        let img = self.store.image_at(&self.state.manifest, &platform).map_err(|e| match e {
            Error::Store(strata_store::Error::NotFound(d)) => Error::InvalidBundle {
                path: self.dir.clone(),
                reason: format!(
                    "its base image {} is no longer in the store (blob {d} missing)",
                    self.state.manifest.digest
                ),
            },
            other => other,
        })?;
        Ok(img.with_name(self.state.name.clone()))
    }

    /// The snapshot taken at unpack.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
        Ok(Snapshot::from_bytes(&bytes)?)
    }

    /// Make the directories and files a runtime mounts over (`/proc`, `/dev`, `/sys`,
    /// `/etc/resolv.conf`...: `mount_points`, absolute) where the rootfs lacks them, and
    /// take the snapshot again, so that they are part of the base, as docker's init layer
    /// is: never in a diff or a commit. Only points whose parent directory is a real
    /// directory of the rootfs are made (a symlink on the way is left to the runtime,
    /// which resolves it inside the rootfs).
    pub(crate) fn prepare_mount_points(&self, mount_points: &[(&str, bool)]) -> Result<()> {
        let rootfs = self.rootfs();
        let mut made = false;
        for (point, is_dir) in mount_points {
            let rel = point.trim_start_matches('/');
            if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
                continue;
            }
            let path = rootfs.join(rel);
            if fs::symlink_metadata(&path).is_ok() {
                continue;
            }
            let parent_ok = path.parent().is_some_and(|p| {
                p.strip_prefix(&rootfs).is_ok_and(|r| {
                    let mut at = rootfs.clone();
                    r.components().all(|c| {
                        at.push(c);
                        fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir())
                    })
                })
            });
            if !parent_ok {
                continue;
            }
            if *is_dir {
                fs::create_dir(&path).map_err(Error::io("create", &path))?;
            } else {
                fs::File::create(&path).map_err(Error::io("create", &path))?;
            }
            made = true;
        }
        if made {
            let old = self.snapshot()?;
            let snapshot = Snapshot::capture_with(&rootfs, old.recorded().clone())?;
            write_atomic(&self.dir.join(SNAPSHOT_FILE), &snapshot.to_bytes())?;
        }
        Ok(())
    }

    /// What changed since unpack, like `docker diff` (`A`dded, `C`hanged, `D`eleted).
    pub fn diff(&self) -> Result<Changes> {
        let snapshot = self.snapshot()?;
        let opts = DiffOptions::default().recorded_owners(snapshot.recorded().clone());
        Ok(strata_layer::diff::since(&snapshot, &self.rootfs(), &opts)?)
    }

    /// Commit the changes since unpack as a new image on top of the base: one new layer
    /// (or an empty-layer history entry when nothing changed), the history entry and
    /// config changes of `opts`, then the tag of `opts` (normalised like
    /// [`Store::tag`]). The container stays based on its original image, as in docker.
    ///
    /// Unpacking the result gives the rootfs as the container left it: types, contents,
    /// modes, owners, link targets, hard links, xattrs, and file and directory mtimes.
    /// The root directory's own metadata (mode, owner, mtime of `/`) is not committed,
    /// as with `docker commit`: no layer carries it.
    pub fn commit(&self, opts: &CommitOptions) -> Result<Image> {
        let base_img = self.base()?;
        let base = Base {
            descriptor: base_img.descriptor().clone(),
            manifest: base_img.manifest().clone(),
            config: base_img.config().clone(),
            name: self.state.name.clone(),
        };
        let snapshot = self.snapshot()?;
        let mut opts = opts.clone();
        if let Some(t) = &opts.tag {
            opts.tag = Some(crate::resolve::new_tag(t)?);
        }
        let rootfs = self.rootfs();
        let done = strata_commit::commit(
            self.store.backend(),
            Some(&base),
            Source::Since { root: &rootfs, snapshot: &snapshot },
            &opts,
        )?;
        let img = self.store.image_at(&done.manifest, &base_img.config().platform())?;
        self.store.index_layers(&img)?;
        Ok(img.with_name(done.tag))
    }
}
