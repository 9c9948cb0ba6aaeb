//! Base image + changes -> new layer, config, history entry, manifest and tag.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use strata_layer::{DiffOptions, LayerInfo, WriteOptions, diff};
use strata_spec::{
    ContainerConfig, Descriptor, Digest, Family, History, ImageConfig, Manifest, MediaType, Platform,
    time::format_system_time,
};
use strata_store::{Backend, Expected, LayerRecord};

use crate::change::{Change, apply_changes_then_settings};
use crate::dockerfile::CommandForm;
use crate::error::{Error, Result};

/// Annotation naming the manifest digest of the image a commit was made on.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// Annotation naming the image a commit was made on.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

/// The image a commit builds on.
#[derive(Debug, Clone)]
pub struct Base {
    /// Its manifest descriptor (media type decides OCI or Docker).
    pub descriptor: Descriptor,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its config.
    pub config: ImageConfig,
    /// The name it was opened by, recorded as `org.opencontainers.image.base.name`.
    pub name: Option<String>,
}

/// Where the new layer's content comes from.
pub enum Source<'a> {
    /// A container rootfs compared with the snapshot taken when it was unpacked: reads
    /// only what changed.
    Since {
        /// The rootfs.
        root: &'a Path,
        /// The snapshot taken at unpack time.
        snapshot: &'a strata_layer::Snapshot,
    },
    /// Two directory trees: the layer turns `lower` into `upper`.
    Trees {
        /// The tree as the base image has it.
        lower: &'a Path,
        /// The tree as it should become.
        upper: &'a Path,
    },
    /// An overlayfs upper directory.
    Overlay {
        /// The upperdir.
        upper: &'a Path,
    },
    /// A whole directory as the layer (`docker import DIR`, `FROM scratch`).
    Tree {
        /// The directory.
        root: &'a Path,
    },
    /// An uncompressed tar stream as the layer, bytes as given (`docker import TAR`),
    /// read with the rules unpacking applies (see [`strata_layer::reencode_tar`]).
    Tar {
        /// The tar.
        reader: &'a mut dyn Read,
        /// The merged view of the layers it goes on top of (`None`: it is the first), so
        /// that its hard links and paths are checked as the whole stack will be unpacked.
        lower: Option<&'a strata_layer::MergedTree>,
    },
    /// Entries given in memory, in any order ([`strata_layer::LayerBuilder`]).
    Files(&'a strata_layer::LayerBuilder),
    /// A layer already written to the store (flatten, append of a blob).
    Layer(LayerInfo),
    /// No filesystem change: the new image differs by config only.
    ConfigOnly,
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Since { root, .. } => write!(f, "Since({})", root.display()),
            Source::Trees { lower, upper } => write!(f, "Trees({}, {})", lower.display(), upper.display()),
            Source::Overlay { upper } => write!(f, "Overlay({})", upper.display()),
            Source::Tree { root } => write!(f, "Tree({})", root.display()),
            Source::Tar { .. } => f.write_str("Tar"),
            Source::Files(b) => write!(f, "Files({} entries)", b.len()),
            Source::Layer(l) => write!(f, "Layer({})", l.digest),
            Source::ConfigOnly => f.write_str("ConfigOnly"),
        }
    }
}

/// Options of [`commit`], named after `docker commit`'s flags.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-m`: the commit message (history `comment`, and the config's `comment`).
    pub message: Option<String>,
    /// `-a`: the author (history `author`, and the config's `author`).
    pub author: Option<String>,
    /// `-c`: config changes, applied in order, variables expanded as docker does.
    pub changes: Vec<Change>,
    /// Config settings from the typed setters ([`CommitOptions::cmd`],
    /// [`CommitOptions::env`]...), applied in order after `changes`, as given (no
    /// variable expansion).
    pub settings: Vec<Change>,
    /// Creation time; default: `SOURCE_DATE_EPOCH` when set, else now.
    pub created: Option<SystemTime>,
    /// The history `created_by`; default `strata commit` (plus the changes, if any).
    pub created_by: Option<String>,
    /// How the layer is written (compression, level, threads, mtime clamp).
    pub write: WriteOptions,
    /// Manifest format of the result; default: the base's (OCI without a base).
    pub format: Option<Family>,
    /// Platform of an image without a base; default this machine's.
    pub platform: Option<Platform>,
    /// Tag to set once everything is written.
    pub tag: Option<String>,
    /// The runtime config of the result, replacing the base's before `changes` apply (a
    /// builder that tracks the config itself, as `strata-build` does for `SHELL` and
    /// `HEALTHCHECK`, which `changes` cannot express).
    pub config: Option<strata_spec::ContainerConfig>,
}

impl CommitOptions {
    /// Set the message (`-m`).
    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }

    /// Set the author (`-a`).
    pub fn author(mut self, a: impl Into<String>) -> Self {
        self.author = Some(a.into());
        self
    }

    /// Add a config change (`-c`), parsed with `docker commit --change` rules.
    pub fn change(mut self, c: &str) -> Result<Self> {
        self.changes.push(Change::parse(c)?);
        Ok(self)
    }

    /// Set the command (`CMD ["a", "b"]`, exec form: run without a shell).
    pub fn cmd<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.settings.push(Change::Cmd(CommandForm::Exec(argv.into_iter().map(Into::into).collect())));
        self
    }

    /// Set the entrypoint (`ENTRYPOINT ["a", "b"]`, exec form). As in a Dockerfile, the
    /// base's command is dropped unless a command was set before it.
    pub fn entrypoint<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.settings.push(Change::Entrypoint(CommandForm::Exec(argv.into_iter().map(Into::into).collect())));
        self
    }

    /// Set the environment variable `key` to `value` (replacing an earlier value).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push(Change::Env(vec![(key.into(), value.into())]));
        self
    }

    /// Set the label `key` to `value`.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push(Change::Label(vec![(key.into(), value.into())]));
        self
    }

    /// Set the working directory (a relative path joins the current one, as `WORKDIR`).
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.settings.push(Change::Workdir(dir.into()));
        self
    }

    /// Set the user (`name`, `uid`, `name:group` or `uid:gid`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.settings.push(Change::User(user.into()));
        self
    }

    /// Expose a TCP port (`EXPOSE 8080`).
    pub fn expose(mut self, port: u16) -> Self {
        self.settings.push(Change::Expose(vec![format!("{port}/tcp")]));
        self
    }

    /// Expose a UDP port (`EXPOSE 53/udp`).
    pub fn expose_udp(mut self, port: u16) -> Self {
        self.settings.push(Change::Expose(vec![format!("{port}/udp")]));
        self
    }

    /// Declare a volume (`VOLUME /data`).
    pub fn volume(mut self, path: impl Into<String>) -> Self {
        self.settings.push(Change::Volume(vec![path.into()]));
        self
    }

    /// Set the creation time.
    pub fn created(mut self, t: SystemTime) -> Self {
        self.created = Some(t);
        self
    }

    /// Set the history's `created_by`.
    pub fn created_by(mut self, s: impl Into<String>) -> Self {
        self.created_by = Some(s.into());
        self
    }

    /// Set the tag to give the result.
    pub fn tag(mut self, t: impl Into<String>) -> Self {
        self.tag = Some(t.into());
        self
    }

    /// Set the layer write options.
    pub fn write_options(mut self, w: WriteOptions) -> Self {
        self.write = w;
        self
    }

    /// Report the new layer's progress to `hook` (`Layer*` events with the uncompressed
    /// bytes written; sets [`WriteOptions::progress`]).
    pub fn progress(mut self, hook: strata_spec::progress::ProgressHook) -> Self {
        self.write.progress = hook;
        self
    }

    /// Set the manifest format.
    pub fn format(mut self, f: Family) -> Self {
        self.format = Some(f);
        self
    }

    /// Set the runtime config of the result (see [`CommitOptions::config`]).
    pub fn config(mut self, c: strata_spec::ContainerConfig) -> Self {
        self.config = Some(c);
        self
    }

    fn creation_time(&self) -> Result<SystemTime> {
        if let Some(t) = self.created {
            return Ok(t);
        }
        source_date_epoch().map(|t| t.unwrap_or_else(SystemTime::now))
    }
}

/// `SOURCE_DATE_EPOCH` as a time, if set.
pub fn source_date_epoch() -> Result<Option<SystemTime>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            let secs: u64 = v.trim().parse().map_err(|_| Error::BadSourceDateEpoch(v.clone()))?;
            Ok(Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)))
        }
        Err(_) => Ok(None),
    }
}

/// What [`commit`] wrote.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new manifest.
    pub manifest: Descriptor,
    /// The new config's digest: the new image id.
    pub config_digest: Digest,
    /// The new config.
    pub config: ImageConfig,
    /// The new layer, or `None` when nothing changed (an `empty_layer` history entry).
    pub layer: Option<LayerInfo>,
    /// The tag set, as stored.
    pub tag: Option<String>,
}

/// Commit `source` on top of `base` (`None`: `FROM scratch`) into `store`.
///
/// Order, for crash safety: layer blob, config blob, manifest blob, then the tag, all
/// under one GC lease; a crash at any point leaves at worst unreferenced blobs, never a
/// tag that points at something missing.
pub fn commit(store: &dyn Backend, base: Option<&Base>, source: Source<'_>, opts: &CommitOptions) -> Result<Committed> {
    // Changes that cannot apply (`ENV A=${B:?unset}`) fail before anything is written.
    runtime_config(base, opts)?;
    let _lease = store.lease()?;
    let layer = write_layer(store, source, &opts.write)?;
    finish(store, base, layer, opts)
}

/// Write the layer of `source` into the store; `None` when there is no change.
pub fn write_layer(store: &dyn Backend, source: Source<'_>, wopts: &WriteOptions) -> Result<Option<LayerInfo>> {
    let diff_opts = DiffOptions::default();
    let (changes, root) = match source {
        Source::ConfigOnly => return Ok(None),
        Source::Layer(info) => return Ok(Some(info)),
        Source::Files(files) => return layer(store, |w| files.write(w, wopts).map(|(info, _)| info)).map(Some),
        Source::Tree { root } => {
            return layer(store, |w| strata_layer::write_tree(root, w, wopts).map(|(info, _)| info)).map(Some);
        }
        Source::Tar { reader, lower: None } => {
            return layer(store, |w| strata_layer::reencode_tar(reader, w, wopts)).map(Some);
        }
        Source::Tar { reader, lower: Some(lower) } => {
            return layer(store, |w| strata_layer::reencode_tar_onto(reader, w, wopts, lower)).map(Some);
        }
        Source::Since { root, snapshot } => {
            let opts = DiffOptions::default().recorded_owners(snapshot.recorded().clone());
            (diff::since(snapshot, root, &opts)?, root)
        }
        Source::Trees { lower, upper } => (diff::trees(lower, upper, &diff_opts)?, upper),
        Source::Overlay { upper } => (diff::overlay(upper, &diff_opts)?, upper),
    };
    if changes.is_empty() {
        return Ok(None);
    }
    layer(store, |w| changes.write_layer(root, w, wopts)).map(Some)
}

/// [`store_layer`] of a writer that fails with strata-layer's error.
fn layer(
    store: &dyn Backend,
    write: impl FnOnce(&mut strata_store::BlobWriter) -> strata_layer::Result<LayerInfo>,
) -> Result<LayerInfo> {
    store_layer(store, |w| write(w).map_err(Error::from))
}

/// Run `write` (a [`LayerWriter`](strata_layer::LayerWriter) into the blob writer it is
/// given) into a fresh store blob, commit the blob under the digest it reports, and
/// record the layer's `diff_id` and size ([`strata_store::LayerRecord`]) so that listing
/// images never reads it. Every layer strata writes goes through here.
pub fn store_layer<E>(
    store: &dyn Backend,
    write: impl FnOnce(&mut strata_store::BlobWriter) -> std::result::Result<LayerInfo, E>,
) -> std::result::Result<LayerInfo, E>
where
    E: From<strata_store::Error>,
{
    let mut writer = store.begin_write()?;
    let info = write(&mut writer)?;
    writer.commit(Expected { digest: Some(info.digest.clone()), size: Some(info.size) })?;
    let record = LayerRecord { diff_id: info.diff_id.clone(), size: info.content_size };
    store.put_layer_record(&info.digest, &record)?;
    Ok(info)
}

/// Build and store the config and manifest for `layer` on `base`, then tag. The layer
/// blob (if any) must already be in the store.
pub fn finish(
    store: &dyn Backend,
    base: Option<&Base>,
    layer: Option<LayerInfo>,
    opts: &CommitOptions,
) -> Result<Committed> {
    let created = format_system_time(opts.creation_time()?);
    let family = opts.format.unwrap_or_else(|| match base {
        Some(b) if b.descriptor.media_type == MediaType::DockerManifest => Family::Docker,
        _ => Family::Oci,
    });

    let mut config = match base {
        Some(b) => b.config.clone(),
        None => ImageConfig::new(&opts.platform.clone().unwrap_or_else(Platform::host)),
    };
    if base.is_some() {
        config.check_history().map_err(Error::Base)?;
    }
    config.config = runtime_config(base, opts)?;
    config.created = Some(created.clone());
    if let Some(a) = &opts.author {
        config.author = Some(a.clone());
    }
    if let Some(m) = &opts.message {
        config.comment = Some(m.clone());
    }
    let created_by = opts.created_by.clone().unwrap_or_else(|| {
        let mut s = "strata commit".to_owned();
        for c in &opts.changes {
            s.push_str(&format!(" --change '{c}'"));
        }
        s
    });
    let history = History {
        created: Some(created),
        created_by: Some(created_by),
        author: opts.author.clone(),
        comment: opts.message.clone(),
        ..Default::default()
    };
    match &layer {
        Some(l) => config.push_layer(l.diff_id.clone(), history),
        None => config.push_empty_layer(history),
    }

    // Layers of the base, converted to the result's family when asked.
    let mut layers = Vec::new();
    if let Some(b) = base {
        for l in &b.manifest.layers {
            let mut d = l.clone();
            d.media_type = convert(&l.media_type, family)?;
            layers.push(d);
        }
    }
    if let Some(l) = &layer {
        layers.push(l.descriptor(family));
    }

    let config_bytes = config.to_canonical_json();
    let config_info = store.put_blob(&config_bytes)?;
    let config_media_type = match family {
        Family::Oci => MediaType::OciConfig,
        Family::Docker => MediaType::DockerConfig,
    };
    let manifest_media_type = match family {
        Family::Oci => MediaType::OciManifest,
        Family::Docker => MediaType::DockerManifest,
    };
    let config_desc = Descriptor::new(config_media_type, config_info.digest.clone(), config_info.size);
    let mut manifest = Manifest::new(manifest_media_type.clone(), config_desc, layers);
    if let Some(b) = base
        && family == Family::Oci
    {
        manifest.annotations = b.manifest.annotations.clone();
        let mut set = |k: &str, v: String| {
            manifest.annotations.get_or_insert_with(Default::default).insert(k.to_owned(), v);
        };
        set(ANNOTATION_BASE_DIGEST, b.descriptor.digest.to_string());
        if let Some(n) = &b.name {
            // The spec wants a fully qualified reference; layout tags that are not
            // references (umoci's `base`) are recorded as they are.
            let full = strata_spec::Reference::parse(n).map(|r| r.to_string()).unwrap_or_else(|_| n.clone());
            set(ANNOTATION_BASE_NAME, full);
        }
    }
    let manifest_bytes = manifest.to_canonical_json();
    let manifest_info = store.put_blob(&manifest_bytes)?;
    let manifest_desc = Descriptor::new(manifest_media_type, manifest_info.digest, manifest_info.size);

    let tag = match &opts.tag {
        Some(t) => {
            store.set_ref(t, &manifest_desc)?;
            Some(t.clone())
        }
        None => None,
    };
    Ok(Committed { manifest: manifest_desc, config_digest: config_info.digest, config, layer, tag })
}

/// The runtime config of the result: the base's (or `opts.config`), with `opts.changes`
/// applied as `docker commit --change` applies them, then `opts.settings` as given.
fn runtime_config(base: Option<&Base>, opts: &CommitOptions) -> Result<Option<ContainerConfig>> {
    let mut config = match &opts.config {
        Some(c) => Some(c.clone()),
        None => base.and_then(|b| b.config.config.clone()),
    };
    if !opts.changes.is_empty() || !opts.settings.is_empty() {
        apply_changes_then_settings(
            config.get_or_insert_with(ContainerConfig::default),
            &opts.changes,
            &opts.settings,
        )?;
    }
    Ok(config)
}

fn convert(mt: &MediaType, family: Family) -> Result<MediaType> {
    if mt.family() == Some(family) {
        return Ok(mt.clone());
    }
    let converted = match family {
        Family::Oci => mt.to_oci(),
        Family::Docker => mt.to_docker(),
    };
    converted.map_err(Error::Base)
}

/// Write `bytes` to a fresh blob; for callers that build documents themselves.
pub fn put_document(store: &dyn Backend, bytes: &[u8]) -> Result<Digest> {
    Ok(store.put_blob(bytes)?.digest)
}
