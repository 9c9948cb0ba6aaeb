//! The builder: stages and steps, each step a commit on top of the previous one, found
//! in the cache when it can be. Each instruction is planned without the disk (`plan`:
//! config, history text, layer or not, what to copy or run, the cache key's parts), then
//! carried out (`exec`, with what it reads in `sources`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use strata_image::{Image, Store};
use strata_layer::WriteOptions;
use strata_registry::RegistryOptions;
use strata_spec::{Descriptor, Digest, Platform};

use crate::cache::{self, Cache, DEFAULT_CACHE_LIMIT};
use crate::copy::HashMemo;
use crate::dockerfile::{Dockerfile, Ignore};
use crate::error::{Error, Result};
use crate::fetch::FetchOptions;
use crate::graph;
use crate::mounts::SecretSource;
use crate::oci_run::OciRunner;
use crate::run::{NamespaceRunner, Network, Runner};
use crate::shared_cache::{self, CacheSpec, Imported};

mod exec;
mod plan;
mod sources;

use plan::Scope;

/// The `PATH` docker gives a Linux image that has none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Options of [`build`], named after `docker build`'s flags.
#[derive(Clone)]
#[non_exhaustive]
pub struct BuildOptions {
    /// `-f`: the Dockerfile (default `CONTEXT/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// `-t`: tags for the result.
    pub tags: Vec<String>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--no-cache`: run every step (the results still go into the cache).
    pub no_cache: bool,
    /// `--network`: what `RUN` sees.
    pub network: Network,
    /// How `RUN` runs; `None`: [`OciRunner::detect`] (root and an OCI runtime), else
    /// [`NamespaceRunner::detect`] (root and `unshare`).
    pub runner: Option<Arc<dyn Runner>>,
    /// How to reach a registry for a `FROM` image not in the store.
    pub registry: RegistryOptions,
    /// How layers are written.
    pub write: WriteOptions,
    /// Build cache entries kept after the build (least recently used dropped first).
    pub cache_limit: usize,
    /// Where working rootfs directories go (default: the system's temp directory).
    pub work_dir: Option<PathBuf>,
    /// Platform of `FROM scratch` stages, and picked from multi-platform bases
    /// (default: this machine's).
    pub platform: Option<Platform>,
    /// Whether and how `ADD <url>` downloads (off by default: an error).
    pub fetch: FetchOptions,
    /// `--secret id=ID,src=FILE|env=VAR`: what `RUN --mount=type=secret,id=ID` sees.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--ssh ID=SOCKET`: agent sockets `RUN --mount=type=ssh,id=ID` forwards.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--allow`: entitlements a Dockerfile may ask for (`network.host` for `RUN
    /// --network=host`, `security.insecure` for `RUN --security=insecure`).
    pub allow: BTreeSet<String>,
    /// `--source-date-epoch` (default: the `SOURCE_DATE_EPOCH` variable, if set): a
    /// reproducible image. Every history entry and the config are dated at it, and no
    /// file in a new layer is newer than it, so the same Dockerfile and context give
    /// the same manifest digest on any machine, at any time.
    pub source_date_epoch: Option<u64>,
    /// `--cache-from`: build caches to take steps from when this store's has none.
    pub cache_from: Vec<CacheSpec>,
    /// `--cache-to`: where to export the cache of every step of this build.
    pub cache_to: Vec<CacheSpec>,
    /// How many stages may build at once, when the stage graph lets them (stages that
    /// need nothing of each other); 0: one per core; 1: one after the other.
    pub jobs: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            dockerfile: None,
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            network: Network::None,
            runner: None,
            registry: RegistryOptions::default(),
            write: WriteOptions::default(),
            cache_limit: DEFAULT_CACHE_LIMIT,
            work_dir: None,
            platform: None,
            fetch: FetchOptions::default(),
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            allow: BTreeSet::new(),
            source_date_epoch: None,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            jobs: 0,
        }
    }
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("dockerfile", &self.dockerfile)
            .field("tags", &self.tags)
            .field("build_args", &self.build_args.keys().collect::<Vec<_>>())
            .field("target", &self.target)
            .field("no_cache", &self.no_cache)
            .field("network", &self.network)
            .field("runner", &self.runner.as_ref().map(|_| "custom"))
            .field("fetch", &self.fetch)
            .finish_non_exhaustive()
    }
}

/// Builders.
impl BuildOptions {
    /// Add a tag (`-t`).
    pub fn tag(mut self, t: impl Into<String>) -> Self {
        self.tags.push(t.into());
        self
    }
    /// Set the Dockerfile (`-f`).
    pub fn dockerfile(mut self, p: impl Into<PathBuf>) -> Self {
        self.dockerfile = Some(p.into());
        self
    }
    /// Add a build argument (`--build-arg`).
    pub fn build_arg(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.build_args.insert(k.into(), v.into());
        self
    }
    /// Set the target stage (`--target`).
    pub fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }
    /// Ignore the cache (`--no-cache`).
    pub fn no_cache(mut self, on: bool) -> Self {
        self.no_cache = on;
        self
    }
    /// Set the network of `RUN`.
    pub fn network(mut self, n: Network) -> Self {
        self.network = n;
        self
    }
    /// Run `RUN` steps with this runner.
    pub fn runner(mut self, r: Arc<dyn Runner>) -> Self {
        self.runner = Some(r);
        self
    }
    /// Set how layers are written.
    pub fn write_options(mut self, w: WriteOptions) -> Self {
        self.write = w;
        self
    }
    /// Let `ADD <url>` download (`strata build --allow-url-fetch`), with the limits of
    /// [`BuildOptions::fetch`].
    pub fn fetch_urls(mut self, on: bool) -> Self {
        self.fetch.enabled = on;
        self
    }
    /// Set whether and how `ADD <url>` downloads (size limit, timeouts, redirects).
    pub fn fetch_options(mut self, f: FetchOptions) -> Self {
        self.fetch = f;
        self
    }
    /// Give `RUN --mount=type=secret,id=ID` a secret (`--secret`).
    pub fn secret(mut self, id: impl Into<String>, source: SecretSource) -> Self {
        self.secrets.insert(id.into(), source);
        self
    }
    /// Forward an SSH agent socket as `id` (`--ssh`).
    pub fn ssh(mut self, id: impl Into<String>, socket: impl Into<PathBuf>) -> Self {
        self.ssh.insert(id.into(), socket.into());
        self
    }
    /// Build a reproducible image dated at `secs` (`--source-date-epoch`).
    pub fn source_date_epoch(mut self, secs: u64) -> Self {
        self.source_date_epoch = Some(secs);
        self
    }
    /// Take cached steps from `spec` too (`--cache-from`).
    pub fn cache_from(mut self, spec: CacheSpec) -> Self {
        self.cache_from.push(spec);
        self
    }
    /// Export the build's cache to `spec` (`--cache-to`).
    pub fn cache_to(mut self, spec: CacheSpec) -> Self {
        self.cache_to.push(spec);
        self
    }
    /// How many independent stages may build at once (0: one per core, 1: serial).
    pub fn jobs(mut self, n: usize) -> Self {
        self.jobs = n;
        self
    }
    /// Grant an entitlement (`--allow network.host`).
    pub fn allow(mut self, entitlement: impl Into<String>) -> Self {
        self.allow.insert(entitlement.into());
        self
    }
    /// Set the platform built for (`--platform`): `FROM` picks it from multi-platform
    /// bases, and `TARGETPLATFORM` and its parts are set from it.
    pub fn platform(mut self, p: Platform) -> Self {
        self.platform = Some(p);
        self
    }
}

/// What happens during a build, for output like `docker build`'s.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Context files hashed so far (bytes), for a progress bar on large contexts.
    ContextHashed(u64),
    /// A step starts: `Step index/total : text`.
    Step {
        /// 1-based.
        index: usize,
        /// Steps in the build.
        total: usize,
        /// The instruction as written.
        text: &'a str,
    },
    /// Stages build at the same time: the events that follow, up to the next `Stage`,
    /// are this stage's (its `AS` name, or its index). Sent only when stages run in
    /// parallel, before the first event of a stage and whenever another stage's
    /// events come in between.
    Stage {
        /// The stage's name.
        name: &'a str,
    },
    /// `ONBUILD` triggers of the base image about to run.
    Triggers(usize),
    /// The step's result came from the cache.
    UsingCache,
    /// A `RUN` command starts.
    Running {
        /// Its command line.
        command: &'a str,
    },
    /// Output of a `RUN` command, as it comes.
    Output(&'a [u8]),
    /// The step is done: the image it made (or `FROM`'s image).
    StepDone {
        /// The image id; `None` for `FROM scratch`.
        id: Option<&'a Digest>,
    },
    /// Something docker warns about.
    Warning(&'a str),
}

/// What [`build`] made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image.
    pub image: Image,
    /// Tags set, as stored.
    pub tags: Vec<String>,
    /// Steps in the build.
    pub steps: usize,
    /// Steps whose result came from the cache.
    pub cached: usize,
    /// Steps that ran (`RUN` commands run, `COPY` layers written, config commits made).
    pub executed: usize,
    /// Warnings (unused build arguments, empty continuation lines).
    pub warnings: Vec<String>,
}

/// Build the Dockerfile of `context` into `store`; `observe` sees each step.
pub fn build(store: &Store, context: &Path, opts: &BuildOptions, observe: &mut dyn FnMut(&Event<'_>)) -> Result<Built> {
    let df_path = opts.dockerfile.clone().unwrap_or_else(|| context.join("Dockerfile"));
    let text = std::fs::read_to_string(&df_path).map_err(Error::io("read", &df_path))?;
    let name = df_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "Dockerfile".into());
    let df = Dockerfile::parse(&name, &text)?;
    let ignore_path = context.join(".dockerignore");
    let ignore = match std::fs::read_to_string(&ignore_path) {
        Ok(t) => Ignore::parse(&t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err(Error::Io(strata_spec::IoError::new("read", ignore_path, e))),
    };
    build_dockerfile(store, context, &df, &ignore, opts, observe)
}

/// Build a parsed Dockerfile (see [`build`]).
pub fn build_dockerfile(
    store: &Store,
    context: &Path,
    df: &Dockerfile,
    ignore: &Ignore,
    opts: &BuildOptions,
    observe: &mut dyn FnMut(&Event<'_>),
) -> Result<Built> {
    // Tags are checked before any work, as `docker build -t` checks them.
    for t in &opts.tags {
        strata_image::new_tag(t)?;
    }
    let last = match &opts.target {
        Some(t) => df.stage_index(t).ok_or_else(|| Error::StageNotFound { name: t.clone() })?,
        None => df.stages.len() - 1,
    };
    // Docker's classic builder counts the ARGs before the first FROM as steps too.
    let total: usize =
        df.global_args.len() + df.stages[..=last].iter().map(|s| 1 + s.instructions.len()).sum::<usize>();
    let _lease = store.lease()?;
    let epoch = match opts.source_date_epoch {
        Some(secs) => Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)),
        None => strata_commit::source_date_epoch()?,
    };
    let mut write = opts.write.clone();
    if let Some(t) = epoch {
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        write.mtime_clamp = Some(i64::try_from(secs).unwrap_or(i64::MAX));
    }
    let runner: std::result::Result<Arc<dyn Runner>, String> = match &opts.runner {
        Some(r) => Ok(r.clone()),
        // An installed OCI runtime first (as `strata run`), else namespaces and chroot.
        None => OciRunner::detect()
            .map(|r| Arc::new(r) as Arc<dyn Runner>)
            .or_else(|_| NamespaceRunner::detect().map(|r| Arc::new(r) as Arc<dyn Runner>)),
    };
    let mut warnings = df.warnings.clone();
    let imported = Imported::load(&opts.cache_from, &opts.registry, &mut warnings)?;
    // Each stage's FROM is step `offsets[i]`; the global ARGs come first.
    let mut offsets = Vec::new();
    let mut n = df.global_args.len();
    for s in &df.stages[..=last] {
        offsets.push(n + 1);
        n += 1 + s.instructions.len();
    }
    let mount_tmp = match store.path() {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("strata-build-mounts-")
                .tempdir_in(opts.work_dir.clone().unwrap_or_else(std::env::temp_dir))
                .map_err(Error::io("create a directory in", std::env::temp_dir()))?,
        ),
    };
    let b = Builder {
        store,
        context,
        df,
        ignore,
        opts,
        scope: Scope::new(df, opts),
        runner,
        cache: Mutex::new(Cache::load(store)?),
        memo: Mutex::new(HashMemo::new()),
        hashed: AtomicU64::new(0),
        stages: Mutex::new(vec![None; df.stages.len()]),
        used_args: Mutex::new(BTreeSet::new()),
        offsets,
        total,
        cached: AtomicUsize::new(0),
        executed: AtomicUsize::new(0),
        warnings: Mutex::new(warnings.clone()),
        imported: Mutex::new(imported),
        exported: Mutex::new(Vec::new()),
        remote_hits: Mutex::new(Vec::new()),
        mount_tmp,
        epoch,
        write,
    };
    for w in &warnings {
        observe(&Event::Warning(w));
    }
    for (i, g) in df.global_args.iter().enumerate() {
        observe(&Event::Step { index: i + 1, total, text: &g.text });
        observe(&Event::StepDone { id: None });
    }
    let result = graph::build_stages(&b, last, observe)?;
    let unused: Vec<String> = {
        let used = lock(&b.used_args);
        opts.build_args.keys().filter(|k| !used.contains(*k)).cloned().collect()
    };
    if !unused.is_empty() {
        let w = format!("[Warning] One or more build-args [{}] were not consumed", unused.join(" "));
        observe(&Event::Warning(&w));
        lock(&b.warnings).push(w);
    }
    let image = match result {
        Some(i) => i,
        None => {
            return Err(Error::NoImage);
        }
    };
    // The result is whole in the store, whatever came from an imported cache.
    b.complete(&image)?;
    let remote_hits = std::mem::take(&mut *lock(&b.remote_hits));
    for (key, desc) in remote_hits {
        if b.has_layers(&desc)? {
            lock(&b.cache).put(store, &key, &desc)?;
        }
    }
    let mut tags = Vec::new();
    for t in &opts.tags {
        tags.push(store.tag(&image, t)?);
    }
    if !opts.cache_to.is_empty() {
        // Steps whose layers this store has (an imported step that nothing needed
        // stays where it came from).
        let mut entries = Vec::new();
        for (k, d) in lock(&b.exported).iter() {
            if b.has_layers(d)? {
                entries.push((k.clone(), d.clone()));
            }
        }
        for spec in &opts.cache_to {
            shared_cache::export(store, &entries, spec, &opts.registry)?;
        }
    }
    if tags.is_empty() {
        keep_untagged(store, image.descriptor())?;
    }
    let Builder { cache, cached, executed, warnings, .. } = b;
    let cache = cache.into_inner().unwrap_or_else(|e| e.into_inner());
    cache.finish(store, opts.cache_limit)?;
    let image = match tags.first() {
        Some(t) => store.image(t)?,
        None => image,
    };
    Ok(Built {
        image,
        tags,
        steps: total,
        cached: cached.into_inner(),
        executed: executed.into_inner(),
        warnings: warnings.into_inner().unwrap_or_else(|e| e.into_inner()),
    })
}

/// An untagged result stays listed (`<none>`), like docker's dangling images.
fn keep_untagged(store: &Store, desc: &Descriptor) -> Result<()> {
    store.backend().update_index(&mut |index| {
        let listed = index
            .manifests
            .iter()
            .any(|d| d.digest == desc.digest && d.annotation(cache::ANNOTATION_BUILD_CACHE).is_none());
        if !listed {
            let mut d = desc.clone();
            d.annotations = None;
            index.manifests.push(d);
        }
        Ok(())
    })?;
    Ok(())
}

pub(crate) struct Builder<'a> {
    store: &'a Store,
    context: &'a Path,
    pub(crate) df: &'a Dockerfile,
    ignore: &'a Ignore,
    pub(crate) opts: &'a BuildOptions,
    /// What the step planner sees of the build (options, global and platform `ARG`s).
    scope: Scope<'a>,
    runner: std::result::Result<Arc<dyn Runner>, String>,
    cache: Mutex<Cache>,
    memo: Mutex<HashMemo>,
    hashed: AtomicU64,
    /// Result of each finished stage (`None` until it is; `Some(None)` for an empty
    /// `FROM scratch` stage).
    pub(crate) stages: Mutex<Vec<Option<Option<Image>>>>,
    used_args: Mutex<BTreeSet<String>>,
    /// The step number of each stage's `FROM`.
    offsets: Vec<usize>,
    total: usize,
    cached: AtomicUsize,
    executed: AtomicUsize,
    warnings: Mutex<Vec<String>>,
    /// Cache mounts of a store in memory.
    mount_tmp: Option<tempfile::TempDir>,
    /// `SOURCE_DATE_EPOCH`: the time of every step, and the latest mtime in new layers.
    epoch: Option<SystemTime>,
    /// How layers are written (the options', with the epoch's mtime clamp).
    write: WriteOptions,
    /// Caches of `--cache-from`.
    imported: Mutex<Imported>,
    /// Every step's key and manifest, for `--cache-to`.
    exported: Mutex<Vec<(String, Descriptor)>>,
    /// Steps taken from an imported cache, kept in this store's cache once whole.
    remote_hits: Mutex<Vec<(String, Descriptor)>>,
}

/// Lock `m`, also after a panic elsewhere (what it guards stays consistent: each use
/// is one push, insert or lookup).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
