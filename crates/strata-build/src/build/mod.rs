//! The builder: stages and steps, each step a commit on top of the previous one, found
//! in the cache when it can be.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use strata_commit::{Base, CommitOptions, Source};
use strata_image::{Change, Image, Store, UnpackOptions};
use strata_layer::{ApplyOptions, LayerSource, Snapshot, Timestamp, WriteOptions};
use strata_registry::{NoProgress, PullOptions, RegistryOptions};
use strata_spec::{ContainerConfig, Descriptor, Digest, Platform, Reference};

use crate::cache::{self, Cache, DEFAULT_CACHE_LIMIT};
use crate::copy::{self, CopyPolicy, HashMemo, SourceItem, SourceRoot};
use crate::dockerfile::{
    CommandForm, CopyArgs, Dockerfile, HealthcheckArgs, Ignore, Instruction, Lexer, Mount, MountKind, RunArgs,
    RunCommand, Spanned, format_duration, parse_instruction,
};
use crate::error::{Error, Result};
use crate::fetch::{self, FetchOptions};
use crate::graph;
use crate::mounts::{self, Origin, Prepared, SecretSource};
use crate::oci_run::OciRunner;
use crate::run::{NamespaceRunner, Network, RunMount, RunMountKind, RunSpec, Runner};
use crate::shared_cache::{self, CacheSpec, Imported};
use crate::tree::{DiskView, MergedTreeView, Node, TreeView, resolve};
use crate::users;

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
        Err(e) => return Err(Error::Io { op: "read", path: ignore_path, source: e }),
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
        Some(t) => df.stage_index(t).ok_or_else(|| Error::StageNotFound(t.clone()))?,
        None => df.stages.len() - 1,
    };
    // Docker's classic builder counts the ARGs before the first FROM as steps too.
    let total: usize =
        df.global_args.len() + df.stages[..=last].iter().map(|s| 1 + s.instructions.len()).sum::<usize>();
    let _lease = store.backend().lease()?;
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
            return Err(Error::Instruction(
                "the build made no image: the target stage is FROM scratch with no instructions".into(),
            ));
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

/// A stage being built.
struct State {
    /// The image so far; `None` for `FROM scratch` before its first step.
    image: Option<Image>,
    /// The runtime config so far.
    config: ContainerConfig,
    platform: Platform,
    author: Option<String>,
    /// `CMD` was set in this stage (`ENTRYPOINT` then keeps it).
    cmd_set: bool,
    /// `ARG`s declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// The unpacked rootfs, once a `RUN` needed it.
    work: Option<WorkDir>,
    /// The merged view of `image`, once a `COPY` needed it.
    merged: Option<(Digest, MergedTreeView)>,
    /// Directories a step's sources live in until its layer is written.
    temps: Vec<tempfile::TempDir>,
}

struct WorkDir {
    _dir: tempfile::TempDir,
    rootfs: PathBuf,
    snapshot: Snapshot,
    /// The image the rootfs is the tree of.
    image: Option<Digest>,
}

/// What a `RUN` step runs with.
struct RunStep {
    args: Vec<String>,
    env: Vec<String>,
    mounts: Vec<Prepared>,
    network: Network,
    /// A `#!` here-document: its name and content, run from `/dev/pipes/<name>`.
    script: Option<(String, String)>,
}

/// The sources of a `COPY`/`ADD`.
#[allow(clippy::large_enum_variant)]
enum CopyItems {
    /// Matched and hashed (the build context).
    Ready(Vec<(SourceItem, bool)>),
    /// In another image (`COPY --from`): matched only when the step runs, so that a
    /// cache hit does not unpack it.
    FromImage { image: Image, sources: Vec<String>, parents: bool, exclude: Option<Ignore> },
}

/// What one step changes.
#[allow(clippy::large_enum_variant)]
enum Fs {
    /// Config only.
    None,
    /// `RUN`.
    Run(RunStep),
    /// `COPY`/`ADD`.
    Copy {
        items: CopyItems,
        dest: String,
        chown: Option<String>,
        chmod: Option<u32>,
        keyword: &'static str,
        /// `--link`: paths resolve in an empty tree, not in the image below.
        link: bool,
    },
    /// `WORKDIR`: make the directory when it is missing.
    Workdir(String),
}

impl State {
    fn parent_key(&self) -> String {
        match &self.image {
            Some(i) => i.id().to_string(),
            None => format!("scratch:{}", self.platform),
        }
    }

    fn shell(&self) -> Vec<String> {
        match &self.config.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// `created_by` of a metadata step, as docker's classic builder writes it.
    fn nop(&self, comment: &str) -> String {
        format!("{} #(nop)  {comment}", self.shell().join(" "))
    }

    /// `created_by` of `WORKDIR`, `COPY` and `ADD` (docker's one-argument form).
    fn nop1(&self, comment: &str) -> String {
        format!("{} #(nop) {comment}", self.shell().join(" "))
    }

    /// Build arguments with a value that `ENV` does not override, `K=V`, sorted.
    fn build_env(&self) -> Vec<String> {
        let env = self.config.env.as_deref().unwrap_or_default();
        let mut out: Vec<String> = self
            .args
            .iter()
            .filter_map(|(k, v)| {
                let v = v.as_ref()?;
                let shadowed = env.iter().any(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k);
                (!shadowed).then(|| format!("{k}={v}"))
            })
            .collect();
        out.sort();
        out
    }

    /// The value of `name` for substitution: `ENV` first, then `ARG`s.
    fn lookup(&self, name: &str) -> Option<String> {
        let env = self.config.env.as_deref().unwrap_or_default();
        for e in env.iter().rev() {
            if let Some((k, v)) = e.split_once('=')
                && k == name
            {
                return Some(v.to_owned());
            }
        }
        self.args.get(name).cloned().flatten()
    }
}

/// The platform ARGs BuildKit defines: `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
/// `TARGETVARIANT` from the platform built for (`--platform`, else this machine's), and
/// `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` from this machine's.
pub(crate) fn platform_args(target: Option<&Platform>) -> BTreeMap<String, String> {
    let host = Platform::host();
    let target = target.unwrap_or(&host);
    let mut out = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", &host)] {
        let variant = p.variant.clone().unwrap_or_default();
        let full = if variant.is_empty() {
            format!("{}/{}", p.os, p.architecture)
        } else {
            format!("{}/{}/{variant}", p.os, p.architecture)
        };
        out.insert(format!("{prefix}PLATFORM"), full);
        out.insert(format!("{prefix}OS"), p.os.clone());
        out.insert(format!("{prefix}ARCH"), p.architecture.clone());
        out.insert(format!("{prefix}VARIANT"), variant);
    }
    out
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" "))
}

/// Go's `%q` of an int: a quoted rune.
fn go_quote_rune(n: u64) -> String {
    match char::from_u32(n as u32) {
        Some('\x07') => "'\\a'".into(),
        Some('\x08') => "'\\b'".into(),
        Some('\t') => "'\\t'".into(),
        Some('\n') => "'\\n'".into(),
        Some('\x0b') => "'\\v'".into(),
        Some('\x0c') => "'\\f'".into(),
        Some('\r') => "'\\r'".into(),
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if n < 0x20 || n == 0x7f => format!("'\\x{:02x}'", c as u32),
        Some(c) if !c.is_control() => format!("'{c}'"),
        _ => format!("'\\u{n:04x}'"),
    }
}

/// What docker's classic builder writes for `HEALTHCHECK` (Go's `%q` of its struct).
fn healthcheck_created_by(h: &HealthcheckArgs) -> String {
    let d = |v: Option<u64>| go_quote(&format_duration(v.unwrap_or(0)));
    format!(
        "HEALTHCHECK &{{{} {} {} {} {}}}",
        go_quote_list(&h.test),
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        go_quote_rune(h.retries.unwrap_or(0))
    )
}

/// Shortened instruction text for error messages.
fn short(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(MAX).collect();
    s.push('…');
    s
}

impl Builder<'_> {
    fn lexer(&self) -> Lexer {
        self.df.lexer()
    }

    /// `change` with the stage's ENV and ARG values substituted, as docker's builder
    /// expands its instruction (the same expansion `docker commit --change` gets).
    fn expand(&self, st: &State, change: &Change) -> Result<Change> {
        change.expand(self.lexer(), &|n| st.lookup(n)).map_err(|e| Error::Instruction(e.reason))
    }

    fn subst(&self, st: &State, word: &str) -> Result<String> {
        self.lexer()
            .process_word(word, &|n| st.lookup(n))
            .map_err(|reason| Error::Substitution { word: word.to_owned(), reason })
    }

    fn at(&self, s: &Spanned, e: Error) -> Error {
        match e {
            e @ Error::Step { .. } => e,
            e => Error::Step {
                file: self.df.file.clone(),
                line: s.line,
                instruction: short(&s.text),
                source: Box::new(e),
            },
        }
    }

    /// Build stage `index`: its `FROM`, then each instruction. Returns its image.
    pub(crate) fn stage(
        &self,
        index: usize,
        stage: &crate::dockerfile::Stage,
        observe: &mut dyn FnMut(&Event<'_>),
    ) -> Result<Option<Image>> {
        let mut step = self.offsets[index];
        observe(&Event::Step { index: step, total: self.total, text: &stage.from.text });
        let mut st = self.from(index, &stage.from).map_err(|e| self.at(&stage.from, e))?;
        observe(&Event::StepDone { id: st.image.as_ref().map(Image::id) });
        if let Some(triggers) = st.config.on_build.take().filter(|t| !t.is_empty()) {
            observe(&Event::Triggers(triggers.len()));
            for t in triggers {
                let spanned = parse_instruction(&self.df.file, stage.from.line, &t, self.df.escape)?;
                self.instruction(&mut st, &spanned, observe).map_err(|e| self.at(&stage.from, e))?;
            }
        }
        for s in &stage.instructions {
            step += 1;
            observe(&Event::Step { index: step, total: self.total, text: &s.text });
            self.instruction(&mut st, s, observe).map_err(|e| self.at(s, e))?;
            observe(&Event::StepDone { id: st.image.as_ref().map(Image::id) });
        }
        Ok(st.image)
    }

    /// The value of a global `ARG` (declared before the first `FROM`).
    fn global_arg(&self, name: &str) -> Option<String> {
        let mut value = None;
        let mut declared = false;
        for g in &self.df.global_args {
            if let Instruction::Arg(args) = &g.instruction {
                for (k, v) in args {
                    if k == name {
                        declared = true;
                        value = v.clone();
                    }
                }
            }
        }
        if !declared {
            return None;
        }
        lock(&self.used_args).insert(name.to_owned());
        match self.opts.build_args.get(name) {
            Some(v) => Some(v.clone()),
            None => value.and_then(|v| self.lexer().process_word(&v, &|_| None).ok()),
        }
    }

    fn from(&self, index: usize, s: &Spanned) -> Result<State> {
        let Instruction::From { image, platform, .. } = &s.instruction else {
            return Err(Error::Instruction("not a FROM instruction".into()));
        };
        let names: Vec<String> = self
            .df
            .global_args
            .iter()
            .flat_map(|g| match &g.instruction {
                Instruction::Arg(a) => a.iter().map(|(k, _)| k.clone()).collect(),
                _ => Vec::new(),
            })
            .collect();
        let values: BTreeMap<String, Option<String>> = names.iter().map(|n| (n.clone(), self.global_arg(n))).collect();
        // The platform ARGs are set in the global scope without being declared.
        let auto = platform_args(self.opts.platform.as_ref());
        let lookup = |n: &str| match values.get(n) {
            Some(v) => v.clone(),
            None => auto.get(n).cloned(),
        };
        let name = self
            .lexer()
            .process_word(image, &lookup)
            .map_err(|reason| Error::Substitution { word: image.clone(), reason })?;
        let platform = match platform {
            Some(p) => {
                let p = self
                    .lexer()
                    .process_word(p, &lookup)
                    .map_err(|reason| Error::Substitution { word: p.clone(), reason })?;
                Some(Platform::parse(&p).map_err(|e| Error::Instruction(format!("--platform={p}: {e}")))?)
            }
            None => self.opts.platform.clone(),
        };
        let lower = name.to_ascii_lowercase();
        let image = if let Some(i) =
            self.df.stages[..index].iter().position(|st| st.name.as_deref() == Some(lower.as_str()))
        {
            lock(&self.stages).get(i).cloned().flatten().flatten()
        } else if lower == "scratch" {
            None
        } else {
            let image = self.base_image(&name, platform.as_ref())?;
            // A single-platform image of another platform than asked for: docker
            // refuses it too ("does not match the specified platform").
            let actual = image.config().platform();
            if let Some(wanted) = &platform
                && !actual.architecture.is_empty()
                && !actual.matches(wanted)
            {
                return Err(Error::PlatformMismatch { name, actual: actual.to_string(), wanted: wanted.to_string() });
            }
            Some(image)
        };
        let mut config = image.as_ref().and_then(|i| i.config().config.clone()).unwrap_or_default();
        let has_path = config.env.as_deref().unwrap_or_default().iter().any(|e| e.starts_with("PATH="));
        if !has_path {
            config.env.get_or_insert_with(Vec::new).insert(0, DEFAULT_PATH.to_owned());
        }
        let platform = match &image {
            Some(i) => i.config().platform(),
            None => platform.unwrap_or_else(Platform::host),
        };
        let author = image.as_ref().and_then(|i| i.config().author.clone());
        Ok(State {
            image,
            config,
            platform,
            author,
            cmd_set: false,
            args: BTreeMap::new(),
            work: None,
            merged: None,
            temps: Vec::new(),
        })
    }

    /// A base image: from the store, else pulled from its registry.
    fn base_image(&self, name: &str, platform: Option<&Platform>) -> Result<Image> {
        let host = Platform::host();
        let platform = platform.unwrap_or(&host);
        match self.store.image_for(name, platform) {
            Ok(i) => return Ok(i),
            Err(strata_image::Error::ImageNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let reference = Reference::parse(name)
            .map_err(|e| Error::BaseImage { name: name.to_owned(), reason: format!("not in the store, and {e}") })?;
        let pull = PullOptions {
            registry: self.opts.registry.clone(),
            platform: Some(platform.clone()),
            ..Default::default()
        };
        let pulled = strata_registry::pull(self.store.backend(), &reference, &pull, &NoProgress).map_err(|e| {
            Error::BaseImage { name: name.to_owned(), reason: format!("not in the store, and pulling it failed: {e}") }
        })?;
        Ok(self.store.image_for(&pulled.ref_name, platform)?)
    }

    fn instruction(&self, st: &mut State, s: &Spanned, observe: &mut dyn FnMut(&Event<'_>)) -> Result<()> {
        let mut config = st.config.clone();
        let mut author = st.author.clone();
        let mut key_text = None;
        let fs: Fs;
        let created_by: String;
        match &s.instruction {
            Instruction::From { .. } => return Err(Error::Instruction("FROM inside a stage".into())),
            Instruction::Arg(args) => {
                let mut parts = Vec::new();
                for (k, default) in args {
                    let default = default.as_ref().map(|d| self.subst(st, d)).transpose()?;
                    lock(&self.used_args).insert(k.clone());
                    let value = match self.opts.build_args.get(k) {
                        Some(v) => Some(v.clone()),
                        None => default
                            .clone()
                            .or_else(|| self.global_arg(k))
                            .or_else(|| platform_args(self.opts.platform.as_ref()).remove(k.as_str())),
                    };
                    st.args.insert(k.clone(), value);
                    parts.push(match &default {
                        Some(d) => format!("{k}={d}"),
                        None => k.clone(),
                    });
                }
                created_by = st.nop(&format!("ARG {}", parts.join(" ")));
                // The values reach RUN through its created_by (`|N K=V`), not the key.
                fs = Fs::None;
            }
            Instruction::Env(pairs) | Instruction::Label(pairs) => {
                let change = if matches!(s.instruction, Instruction::Env(_)) {
                    Change::Env(pairs.clone())
                } else {
                    Change::Label(pairs.clone())
                };
                let change = self.expand(st, &change)?;
                // `ENV k=v ...`, as docker's classic builder records it.
                created_by = st.nop(&change.to_string());
                change.apply(&mut config);
                fs = Fs::None;
            }
            Instruction::Run(run) => {
                let (form, script) = match run.resolve() {
                    RunCommand::Form(f) => (f, None),
                    RunCommand::Script { name, content } => {
                        (CommandForm::Shell(format!("/dev/pipes/{name}")), Some((name, content)))
                    }
                };
                let args = form.resolve(Some(&st.shell()));
                let build_env = st.build_env();
                let mut shown = Vec::new();
                if !build_env.is_empty() {
                    shown.push(format!("|{}", build_env.len()));
                    shown.extend(build_env.iter().cloned());
                }
                shown.extend(args.iter().cloned());
                created_by = shown.join(" ");
                let mut env = config.env.clone().unwrap_or_default();
                env.extend(build_env);
                let (mounts, network) = self.run_options(st, run)?;
                let mut k = format!("{created_by}\0network={network:?}");
                for m in &mounts {
                    k.push_str("\0mount=");
                    k.push_str(&m.key());
                }
                if let Some((name, content)) = &script {
                    k.push_str(&format!("\0script={name}\0{content}"));
                }
                key_text = Some(k);
                fs = Fs::Run(RunStep { args, env, mounts, network, script });
            }
            Instruction::Cmd(form) => {
                let cmd = form.resolve(Some(&st.shell()));
                created_by = st.nop(&format!("CMD {}", go_quote_list(&cmd)));
                config.cmd = Some(cmd);
                fs = Fs::None;
            }
            Instruction::Entrypoint(form) => {
                let ep = form.resolve(Some(&st.shell()));
                created_by = st.nop(&format!("ENTRYPOINT {}", go_quote_list(&ep)));
                config.entrypoint = Some(ep);
                if !st.cmd_set {
                    config.cmd = None;
                }
                fs = Fs::None;
            }
            Instruction::Copy(args) | Instruction::Add(args) => {
                let keyword = s.instruction.keyword();
                let (items, dest, chown, chmod, hash) = self.copy_sources(st, args, keyword == "ADD", observe)?;
                let chown_part = chown.as_ref().map(|c| format!("--chown={c} ")).unwrap_or_default();
                created_by = st.nop1(&format!("{keyword} {chown_part}{hash} in {dest} "));
                key_text = Some(format!(
                    "{created_by}\0chmod={chmod:?}\0link={}\0parents={}\0exclude={:?}",
                    args.link, args.parents, args.exclude
                ));
                fs = Fs::Copy { items, dest, chown, chmod, keyword, link: args.link };
            }
            Instruction::Workdir(w) => {
                self.expand(st, &Change::Workdir(w.clone()))?.apply(&mut config);
                let wd = config.working_dir.clone().unwrap_or_else(|| "/".into());
                created_by = st.nop1(&format!("WORKDIR {wd}"));
                fs = Fs::Workdir(wd);
            }
            Instruction::User(u) => {
                let change = self.expand(st, &Change::User(u.clone()))?;
                created_by = st.nop(&change.to_string());
                change.apply(&mut config);
                fs = Fs::None;
            }
            Instruction::Expose(words) => {
                let change = self.expand(st, &Change::Expose(words.clone()))?;
                created_by = st.nop(&change.to_string());
                change.apply(&mut config);
                fs = Fs::None;
            }
            Instruction::Volume(words) => {
                let change = self.expand(st, &Change::Volume(words.clone()))?;
                // Go's `%v` of the list, as docker's classic builder records it.
                let paths = match &change {
                    Change::Volume(v) => v.join(" "),
                    _ => String::new(),
                };
                created_by = st.nop(&format!("VOLUME [{paths}]"));
                change.apply(&mut config);
                fs = Fs::None;
            }
            Instruction::StopSignal(sig) => {
                let change = self.expand(st, &Change::StopSignal(sig.clone()))?;
                created_by = st.nop(&change.to_string());
                change.apply(&mut config);
                fs = Fs::None;
            }
            Instruction::Shell(sh) => {
                config.shell = Some(sh.clone());
                created_by = format!("{} #(nop)  SHELL [{}]", sh.join(" "), sh.join(" "));
                fs = Fs::None;
            }
            Instruction::Healthcheck(h) => {
                config.healthcheck = Some(h.to_config());
                created_by = st.nop(&healthcheck_created_by(h));
                fs = Fs::None;
            }
            Instruction::OnBuild(t) => {
                Change::OnBuild(t.clone()).apply(&mut config);
                created_by = st.nop(&format!("ONBUILD {t}"));
                fs = Fs::None;
            }
            Instruction::Maintainer(m) => {
                author = Some(m.clone());
                created_by = st.nop(&format!("MAINTAINER {m}"));
                fs = Fs::None;
            }
        }
        if let Instruction::Cmd(form) = &s.instruction
            && !matches!(form, CommandForm::Exec(v) if v.is_empty())
        {
            st.cmd_set = true;
        }

        let config_json = serde_json::to_vec(&config).unwrap_or_default();
        let key = cache::key(
            &st.parent_key(),
            key_text.as_deref().unwrap_or(&created_by),
            &config_json,
            &format!("author={author:?}\0write={:?}\0epoch={:?}", self.write.compression, self.write.mtime_clamp),
        );
        let found = if self.opts.no_cache {
            None
        } else {
            let local = lock(&self.cache).get(&key).cloned();
            match local {
                Some(d) => Some(d),
                None => {
                    let d = lock(&self.imported).take(self.store, &key)?;
                    if let Some(d) = &d {
                        lock(&self.remote_hits).push((key.clone(), d.clone()));
                    }
                    d
                }
            }
        };
        if let Some(desc) = found
            && let Ok(img) = self.store.image_at(&desc, &st.platform)
        {
            lock(&self.exported).push((key.clone(), desc));
            observe(&Event::UsingCache);
            // Downloads and extractions made for the key are not needed.
            st.temps.clear();
            lock(&self.cache).hit(&key);
            self.cached.fetch_add(1, Ordering::Relaxed);
            st.config = img.config().config.clone().unwrap_or_default();
            st.author = author;
            st.image = Some(img);
            return Ok(());
        }

        let commit_opts = CommitOptions {
            created_by: Some(created_by.clone()),
            author: author.clone(),
            config: Some(config.clone()),
            created: self.epoch,
            write: self.write.clone(),
            platform: Some(st.platform.clone()),
            ..Default::default()
        };
        let base = st.image.as_ref().map(Image::as_base);
        let committed = match fs {
            Fs::None => strata_commit::commit(self.store.backend(), base.as_ref(), Source::ConfigOnly, &commit_opts)?,
            Fs::Run(step) => self.run(st, &config, step, base.as_ref(), &commit_opts, observe)?,
            Fs::Copy { items, dest, chown, chmod, keyword, link } => {
                let dest = absolute_dest(&dest, config.working_dir.as_deref());
                let how = CopyHow { chown: chown.as_deref(), chmod, keyword, link };
                self.copy(st, items, &dest, &how, base.as_ref(), &commit_opts)?
            }
            Fs::Workdir(wd) => self.workdir(st, &wd, base.as_ref(), &commit_opts)?,
        };
        self.executed.fetch_add(1, Ordering::Relaxed);
        st.temps.clear();
        let img = self.store.image_at(&committed.manifest, &st.platform)?;
        lock(&self.cache).put(self.store, &key, &committed.manifest)?;
        lock(&self.exported).push((key, committed.manifest.clone()));
        if let Some(w) = &mut st.work
            && w.image.as_ref() == st.image.as_ref().map(Image::id)
            && committed.layer.is_none()
        {
            // A config-only step leaves the tree as it was.
            w.image = Some(img.id().clone());
        }
        st.config = config;
        st.author = author;
        st.image = Some(img);
        Ok(())
    }

    /// Sources of a `COPY`/`ADD`: substituted, matched, hashed. Returns the items, the
    /// destination, `--chown`, `--chmod`, and the hash for `created_by`.
    #[allow(clippy::type_complexity)]
    fn copy_sources(
        &self,
        st: &mut State,
        args: &CopyArgs,
        is_add: bool,
        observe: &mut dyn FnMut(&Event<'_>),
    ) -> Result<(CopyItems, String, Option<String>, Option<u32>, String)> {
        let mut sources = Vec::new();
        let mut heredocs = Vec::new();
        for s in &args.sources {
            match args.heredoc(s) {
                Some(h) => {
                    let text = if h.expand {
                        self.lexer()
                            .process_heredoc(&h.text(), &|n| st.lookup(n))
                            .map_err(|reason| Error::Substitution { word: h.word.clone(), reason })?
                    } else {
                        h.text()
                    };
                    heredocs.push((h.name.clone(), text));
                }
                None => sources.push(self.subst(st, s)?),
            }
        }
        let exclude = if args.exclude.is_empty() {
            None
        } else {
            let mut patterns = Vec::new();
            for e in &args.exclude {
                patterns.push(self.subst(st, e)?);
            }
            Some(Ignore::parse(&patterns.join("\n"))?)
        };
        let dest = self.subst(st, &args.dest)?;
        let chown = args.chown.as_ref().map(|c| self.subst(st, c)).transpose()?;
        let chmod = match &args.chmod {
            Some(m) => {
                let m = self.subst(st, m)?;
                Some(u32::from_str_radix(&m, 8).ok().filter(|v| *v <= 0o7777).ok_or_else(|| {
                    Error::Instruction(format!("--chmod={m}: not an octal mode (symbolic modes are not supported)"))
                })?)
            }
            None => None,
        };
        for s in sources.iter().filter(|s| fetch::is_url(s)) {
            if !is_add {
                return Err(Error::Instruction(format!("{s}: COPY sources can't be URLs")));
            }
            if !self.opts.fetch.enabled {
                return Err(Error::UrlSource { url: s.clone() });
            }
            if !fetch::is_http(s) {
                return Err(Error::UrlScheme { url: s.clone() });
            }
        }
        let checksum = match &args.checksum {
            Some(c) => {
                let c = self.subst(st, c)?;
                if !matches!(sources.as_slice(), [one] if fetch::is_http(one)) {
                    return Err(Error::Instruction(format!(
                        "--checksum={c}: needs exactly one source, an http:// or https:// URL"
                    )));
                }
                Some(Digest::parse(&c).map_err(|e| Error::Instruction(format!("--checksum={c}: {e}")))?)
            }
            None => None,
        };
        if let Some(f) = &args.from {
            if !heredocs.is_empty() {
                return Err(Error::Instruction("COPY --from cannot copy a here-document".into()));
            }
            let f = self.subst(st, f)?;
            let image = self.image_for_copy_from(&f, &st.platform)?;
            // The image id stands for its content: no need to read it for the key.
            let spec = serde_json::to_string(&sources).unwrap_or_default();
            let hash = format!("from:{}:{}", image.id().hex(), Digest::sha256_of(spec.as_bytes()).hex());
            let items = CopyItems::FromImage { image, sources, parents: args.parents, exclude };
            return Ok((items, dest, chown, chmod, hash));
        }
        let src = SourceRoot {
            root: self.context.to_path_buf(),
            ignore: Some(self.ignore),
            exclude: exclude.as_ref(),
            keep_owners: false,
            recorded: BTreeMap::new(),
        };
        let mut memo = lock(&self.memo).clone();
        let mut items = Vec::new();
        if !heredocs.is_empty() {
            let dir = self.tempdir()?;
            let now = self.now()?;
            for (i, (name, text)) in heredocs.iter().enumerate() {
                let d = dir.path().join(i.to_string());
                std::fs::create_dir(&d).map_err(Error::io("mkdir", &d))?;
                items.push(copy::heredoc_item(&d, name, text, now)?);
            }
            st.temps.push(dir);
        }
        for s in &sources {
            if fetch::is_url(s) {
                // Downloaded every time, as docker does: the key is over the content.
                items.push(self.download(st, s, checksum.as_ref())?);
                continue;
            }
            items.extend(copy::expand(&src, std::slice::from_ref(s), args.parents, &mut memo, &mut |n| {
                let total = self.hashed.fetch_add(n, Ordering::Relaxed) + n;
                observe(&Event::ContextHashed(total));
            })?);
        }
        lock(&self.memo).extend(memo);
        let hash = copy::source_hash(&items);
        let mut out = Vec::new();
        for item in items {
            // A downloaded archive is saved as it is, never extracted (docker's rule).
            if is_add
                && !item.is_dir
                && item.url.is_none()
                && let Some(extracted) = self.extract_if_archive(st, &item)?
            {
                out.push((extracted, true));
                continue;
            }
            out.push((item, false));
        }
        Ok((CopyItems::Ready(out), dest, chown, chmod, hash))
    }

    /// The items of `COPY --from`: the image unpacked into a directory kept until the
    /// layer is written.
    fn items_of_image(
        &self,
        st: &mut State,
        image: &Image,
        sources: &[String],
        parents: bool,
        exclude: Option<&Ignore>,
    ) -> Result<Vec<(SourceItem, bool)>> {
        self.complete(image)?;
        let dir = self.tempdir()?;
        let root = dir.path().join("rootfs");
        image.unpack_raw(&root, &UnpackOptions::default())?;
        st.temps.push(dir);
        let src = SourceRoot { root, ignore: None, exclude, keep_owners: false, recorded: BTreeMap::new() };
        let mut memo = HashMemo::new();
        let items = copy::expand(&src, sources, parents, &mut memo, &mut |_| {})?;
        Ok(items.into_iter().map(|i| (i, false)).collect())
    }

    /// Bring the layers of `img` into the store when it came from an imported cache.
    fn complete(&self, img: &Image) -> Result<()> {
        lock(&self.imported).complete(self.store, &img.descriptor().digest, img.layers())
    }

    /// Whether the store has every layer of the manifest `desc`.
    fn has_layers(&self, desc: &Descriptor) -> Result<bool> {
        let m = strata_spec::Manifest::from_slice(
            &self.store.backend().read_descriptor(desc, strata_store::MAX_DOCUMENT_SIZE)?,
        )?;
        for l in &m.layers {
            if self.store.backend().stat(&l.digest)? != Some(l.size) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Where `RUN --mount=type=cache` directories live: beside the store's blobs, so
    /// that they outlive the build (a temporary directory for a store in memory).
    fn cache_mount_root(&self) -> PathBuf {
        match (self.store.path(), &self.mount_tmp) {
            (Some(p), _) => p.join("strata-build").join("mounts"),
            (None, Some(t)) => t.path().to_path_buf(),
            (None, None) => std::env::temp_dir(),
        }
    }

    /// The time of what a step makes before its commit (here-document files).
    fn now(&self) -> Result<Timestamp> {
        step_time(&CommitOptions { created: self.epoch, ..Default::default() })
    }

    fn tempdir(&self) -> Result<tempfile::TempDir> {
        let base = self.opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        tempfile::Builder::new()
            .prefix("strata-build-")
            .tempdir_in(&base)
            .map_err(Error::io("create a directory in", base))
    }

    /// `ADD <url>`: the file downloaded into a directory kept until the layer is written.
    fn download(&self, st: &mut State, url: &str, checksum: Option<&Digest>) -> Result<SourceItem> {
        let dir = self.tempdir()?;
        let path = dir.path().join("download");
        st.temps.push(dir);
        let fetched = fetch::fetch(url, &path, &self.opts.fetch, checksum)?;
        Ok(copy::url_item(url, &fetched))
    }

    /// `COPY --from`: an earlier stage (by name or index), else an image.
    fn image_for_copy_from(&self, name: &str, platform: &Platform) -> Result<Image> {
        if let Some(i) = self.df.stage_index(name) {
            return match lock(&self.stages).get(i).cloned() {
                Some(Some(Some(img))) => Ok(img),
                Some(Some(None)) => Err(Error::Instruction(format!("stage {name:?} is an empty scratch stage"))),
                _ => Err(Error::Instruction(format!("stage {name:?} is not built yet (it comes later)"))),
            };
        }
        self.base_image(name, Some(platform))
    }

    /// `ADD` of a local archive: extracted (with the applier's rules) into a directory
    /// whose contents are then copied, owners kept.
    fn extract_if_archive(&self, st: &mut State, item: &SourceItem) -> Result<Option<SourceItem>> {
        let Some(e) = item.entries.first() else { return Ok(None) };
        if e.kind != strata_layer::EntryKind::File {
            return Ok(None);
        }
        let mut head = [0u8; 6];
        let n = {
            let mut f = std::fs::File::open(&e.abs).map_err(Error::io("open", &e.abs))?;
            std::io::Read::read(&mut f, &mut head).map_err(Error::io("read", &e.abs))?
        };
        if head[..n].starts_with(b"BZh") || head[..n].starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            return Err(Error::Instruction(format!(
                "{}: bzip2 and xz archives are not supported by ADD (use gzip, zstd or plain tar)",
                item.name.display()
            )));
        }
        if !is_tar(&e.abs) {
            return Ok(None);
        }
        let dir = self.tempdir()?;
        let root = dir.path().join("x");
        let f = std::fs::File::open(&e.abs).map_err(Error::io("open", &e.abs))?;
        let report = strata_layer::apply_layer(
            &root,
            LayerSource::new(item.name.display().to_string(), f),
            &ApplyOptions::default(),
        )?;
        let recorded = report.recorded.iter().map(|(p, r)| (p.clone(), (r.uid, r.gid))).collect();
        let src = SourceRoot { root: root.clone(), ignore: None, exclude: None, keep_owners: true, recorded };
        let mut memo = HashMemo::new();
        let mut items = copy::expand_sources(&src, &[".".into()], &mut memo, &mut |_| {})?;
        st.temps.push(dir);
        Ok(items.pop().map(|mut i| {
            i.name = item.name.clone();
            i
        }))
    }

    /// The working rootfs of `st`, unpacked (or brought up to date) for its image.
    fn work<'s>(&self, st: &'s mut State) -> Result<&'s mut WorkDir> {
        let want = st.image.as_ref().map(|i| i.id().clone());
        let stale = st.work.as_ref().is_some_and(|w| w.image != want);
        if stale {
            st.work = None;
        }
        if st.work.is_none() {
            let dir = self.tempdir()?;
            let rootfs = dir.path().join("rootfs");
            match &st.image {
                Some(img) => {
                    self.complete(img)?;
                    img.unpack_raw(&rootfs, &UnpackOptions::default().rootless(false))?;
                }
                None => std::fs::create_dir(&rootfs).map_err(Error::io("mkdir", &rootfs))?,
            }
            let snapshot = Snapshot::capture(&rootfs)?;
            st.work = Some(WorkDir { _dir: dir, rootfs, snapshot, image: want });
        }
        st.work.as_mut().ok_or_else(|| Error::Instruction("no working rootfs".into()))
    }

    /// `RUN --network`, `--security` and `--mount`: checked, and each mount's sources
    /// found (they are part of the step's key).
    fn run_options(&self, st: &State, run: &RunArgs) -> Result<(Vec<Prepared>, Network)> {
        let entitled = |e: &str, what: &str| -> Result<()> {
            if self.opts.allow.contains(e) {
                Ok(())
            } else {
                Err(Error::Entitlement { entitlement: e.to_owned(), what: what.to_owned() })
            }
        };
        let network = match run.network.as_deref() {
            None | Some("default") => self.opts.network,
            Some("none") => Network::None,
            Some("host") => {
                entitled("network.host", "RUN --network=host")?;
                Network::Host
            }
            Some(other) => {
                return Err(Error::Instruction(format!("--network={other}: expected default, none or host")));
            }
        };
        if run.security.as_deref() == Some("insecure") {
            entitled("security.insecure", "RUN --security=insecure")?;
        }
        let mut out = Vec::new();
        for raw in &run.mounts {
            let spec = self.subst(st, raw)?;
            let mount = Mount::parse(&spec).map_err(|e| Error::Instruction(format!("--mount={spec}: {e}")))?;
            let origin = match (mount.kind, &mount.from) {
                (MountKind::Bind, Some(from)) => {
                    let from = self.subst(st, from)?;
                    let image = self.image_for_copy_from(&from, &st.platform)?;
                    self.complete(&image)?;
                    Origin::Image(image)
                }
                (MountKind::Bind, None) => {
                    let source = mount.source.clone().unwrap_or_else(|| ".".into());
                    let mut memo = lock(&self.memo).clone();
                    let origin = mounts::context_origin(self.context, self.ignore, &source, &mut memo)?;
                    lock(&self.memo).extend(memo);
                    origin
                }
                (MountKind::Cache, Some(_)) => {
                    return Err(Error::Instruction(format!(
                        "--mount={spec}: a cache mount seeded from a stage (from=) is not supported"
                    )));
                }
                _ => Origin::None,
            };
            out.push(Prepared { mount, origin });
        }
        Ok((out, network))
    }

    fn run(
        &self,
        st: &mut State,
        config: &ContainerConfig,
        step: RunStep,
        base: Option<&Base>,
        commit_opts: &CommitOptions,
        observe: &mut dyn FnMut(&Event<'_>),
    ) -> Result<strata_commit::Committed> {
        let runner = self.runner.clone().map_err(|reason| Error::NoRunner { reason })?;
        crate::platform::can_run(&st.platform)
            .map_err(|reason| Error::CannotRun { platform: st.platform.to_string(), reason })?;
        let RunStep { args, mut env, mounts, network, script } = step;
        if args.is_empty() {
            return Err(Error::Instruction("RUN with an empty command".into()));
        }
        let temp_base = self.opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let cache_root = self.cache_mount_root();
        let work = self.work(st)?;
        let rootfs = work.rootfs.clone();
        let view = DiskView(&rootfs);
        let (uid, gid, home) = users::run_user(&view, config.user.as_deref().unwrap_or(""))?;
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(DEFAULT_PATH.to_owned());
        }
        let workdir = config.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
        // The runtime makes a missing working directory (it lands in the layer).
        let r = resolve(&view, Path::new(&workdir), true)?;
        if !r.missing.is_empty() {
            let p = rootfs.join(r.path());
            std::fs::create_dir_all(&p).map_err(Error::io("mkdir", &p))?;
        } else if r.node != Some(Node::Dir) {
            return Err(Error::NotADirectory { path: r.existing });
        }
        let inputs = mounts::Inputs {
            cache_root: &cache_root,
            secrets: &self.opts.secrets,
            ssh: &self.opts.ssh,
            temp_base: &temp_base,
        };
        let mut active = mounts::activate(&mounts, &rootfs, &inputs)?;
        // A `#!` here-document: a read-only file at /dev/pipes/<name>, as BuildKit runs it.
        let _script_dir = match &script {
            Some((name, content)) => {
                let dir = self.tempdir()?;
                let file = dir.path().join("script");
                std::fs::write(&file, content).map_err(Error::io("write", &file))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                    .map_err(Error::io("chmod", &file))?;
                if name.contains('/') || name == ".." || name == "." {
                    return Err(Error::Instruction(format!("heredoc name {name:?} is not a file name")));
                }
                active.mounts.push(RunMount {
                    target: PathBuf::from(format!("dev/pipes/{name}")),
                    kind: RunMountKind::Bind { source: file, readonly: true },
                });
                Some(dir)
            }
            None => None,
        };
        env.extend(active.env.iter().cloned());
        let command = args.join(" ");
        observe(&Event::Running { command: &command });
        let spec = RunSpec {
            rootfs: &rootfs,
            args: &args,
            env: &env,
            uid,
            gid,
            workdir: &workdir,
            network,
            mounts: &active.mounts,
        };
        let code = {
            let mut sink = Sink(observe);
            runner.run(&spec, &mut sink)
        };
        active.cleanup();
        let code = code?;
        if code != 0 {
            // The tree is no longer the image's.
            st.work = None;
            return Err(Error::RunFailed { command, code });
        }
        let work = st.work.as_mut().ok_or_else(|| Error::Instruction("no working rootfs".into()))?;
        let committed = strata_commit::commit(
            self.store.backend(),
            base,
            Source::Since { root: &work.rootfs, snapshot: &work.snapshot },
            commit_opts,
        )?;
        work.snapshot = Snapshot::capture(&work.rootfs)?;
        work.image = Some(committed.config_digest.clone());
        Ok(committed)
    }

    /// The view `COPY`, `ADD` and `WORKDIR` resolve paths in.
    fn with_view<T>(&self, st: &mut State, f: impl FnOnce(&dyn TreeView) -> Result<T>) -> Result<T> {
        let want = st.image.as_ref().map(|i| i.id().clone());
        if let Some(w) = &st.work
            && w.image == want
        {
            return f(&DiskView(&w.rootfs));
        }
        let Some(img) = &st.image else {
            return f(&EmptyView);
        };
        let fresh = st.merged.as_ref().is_some_and(|(id, _)| id == img.id());
        if !fresh {
            self.complete(img)?;
            st.merged = Some((img.id().clone(), MergedTreeView(img.merged()?)));
        }
        match &st.merged {
            Some((_, v)) => f(v),
            None => f(&EmptyView),
        }
    }

    /// After a layer is written: the working rootfs (if any, and current) gets it too.
    fn apply_to_work(
        &self,
        st: &mut State,
        parent: Option<&Digest>,
        committed: &strata_commit::Committed,
    ) -> Result<()> {
        let Some(w) = &mut st.work else { return Ok(()) };
        if w.image.as_ref() != parent {
            st.work = None;
            return Ok(());
        }
        if let Some(layer) = &committed.layer {
            let desc = layer.descriptor(strata_spec::Family::Oci);
            let reader = self.store.backend().open_descriptor(&desc)?;
            strata_layer::apply_layer(
                &w.rootfs,
                LayerSource::from_descriptor(&desc, Some(layer.diff_id.clone()), reader),
                &ApplyOptions::default(),
            )?;
            w.snapshot = Snapshot::capture(&w.rootfs)?;
        }
        w.image = Some(committed.config_digest.clone());
        Ok(())
    }

    fn copy(
        &self,
        st: &mut State,
        items: CopyItems,
        dest: &str,
        how: &CopyHow<'_>,
        base: Option<&Base>,
        commit_opts: &CommitOptions,
    ) -> Result<strata_commit::Committed> {
        let now = step_time(commit_opts)?;
        let items = match items {
            CopyItems::Ready(i) => i,
            CopyItems::FromImage { image, sources, parents, exclude } => {
                self.items_of_image(st, &image, &sources, parents, exclude.as_ref())?
            }
        };
        let planned = self.with_view(st, |view| {
            let chown = how.chown.map(|c| users::chown_ids(view, c)).transpose()?;
            let policy = CopyPolicy { chown, chmod: how.chmod, now };
            // `--link`: the layer stands on its own, its paths made from the root.
            let target: &dyn TreeView = if how.link { &EmptyView } else { view };
            copy::plan(target, &items, dest, &policy, how.keyword)
        })?;
        let layer = copy::write_layer(self.store.backend(), &planned, &self.write)?;
        let committed = strata_commit::finish(self.store.backend(), base, Some(layer), commit_opts)?;
        let parent = st.image.as_ref().map(|i| i.id().clone());
        self.apply_to_work(st, parent.as_ref(), &committed)?;
        Ok(committed)
    }

    /// `WORKDIR`: a layer with the directories when they are missing, else config only.
    fn workdir(
        &self,
        st: &mut State,
        wd: &str,
        base: Option<&Base>,
        commit_opts: &CommitOptions,
    ) -> Result<strata_commit::Committed> {
        let now = step_time(commit_opts)?;
        let planned = self.with_view(st, |view| {
            let r = resolve(view, Path::new(wd), true)?;
            if r.missing.is_empty() {
                if r.node != Some(Node::Dir) {
                    return Err(Error::NotADirectory { path: r.existing });
                }
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            let mut p = r.existing.clone();
            for m in &r.missing {
                p.push(m);
                out.push(copy::Planned {
                    meta: strata_layer::EntryMeta::new(p.clone(), strata_layer::EntryKind::Dir)
                        .with_mode(0o755)
                        .with_mtime(now),
                    content: None,
                });
            }
            Ok(out)
        })?;
        let layer = if planned.is_empty() {
            None
        } else {
            Some(copy::write_layer(self.store.backend(), &planned, &self.write)?)
        };
        let committed = strata_commit::finish(self.store.backend(), base, layer, commit_opts)?;
        let parent = st.image.as_ref().map(|i| i.id().clone());
        self.apply_to_work(st, parent.as_ref(), &committed)?;
        Ok(committed)
    }
}

/// How a `COPY`/`ADD` places its sources.
struct CopyHow<'a> {
    chown: Option<&'a str>,
    chmod: Option<u32>,
    keyword: &'static str,
    link: bool,
}

/// An empty tree (`FROM scratch` before anything is in it).
struct EmptyView;

impl TreeView for EmptyView {
    fn lstat(&self, path: &Path) -> Result<Option<Node>> {
        Ok(path.as_os_str().is_empty().then_some(Node::Dir))
    }
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        Err(Error::Io { op: "read", path: path.to_path_buf(), source: std::io::ErrorKind::NotFound.into() })
    }
}

/// The time of the step: the commit's creation time (`SOURCE_DATE_EPOCH` when set).
fn step_time(opts: &CommitOptions) -> Result<Timestamp> {
    let t = match opts.created {
        Some(t) => t,
        None => strata_commit::source_date_epoch()?.unwrap_or_else(SystemTime::now),
    };
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Ok(Timestamp::new(d.as_secs() as i64, i64::from(d.subsec_nanos())))
}

/// `COPY`'s destination made absolute against the working directory (a trailing `/`
/// kept).
fn absolute_dest(dest: &str, workdir: Option<&str>) -> String {
    if dest.starts_with('/') {
        return dest.to_owned();
    }
    let wd = workdir.filter(|w| !w.is_empty()).unwrap_or("/");
    let mut out = format!("{}/{dest}", wd.trim_end_matches('/'));
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

/// Whether the file is a tar archive, plain or gzip/zstd-compressed.
fn is_tar(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else { return false };
    let Ok(mut d) = strata_layer::Decoder::new(f, None, "archive") else { return false };
    let mut block = vec![0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match std::io::Read::read(&mut d, &mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    if got < 512 {
        return false;
    }
    // ustar magic, or a v7 header whose checksum adds up.
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u32 =
        block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u32::from(*b) }).sum();
    stored == Some(sum) && block[0] != 0
}

/// `RUN` output into events.
struct Sink<'a>(&'a mut dyn FnMut(&Event<'_>));

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)(&Event::Output(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(
            go_quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"\n".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#
        );
        assert_eq!(go_quote_rune(3), "'\\x03'");
        assert_eq!(go_quote_rune(0), "'\\x00'");
        assert_eq!(go_quote_rune(65), "'A'");
        let h = HealthcheckArgs {
            test: vec!["CMD-SHELL".into(), "curl -f http://localhost/ || exit 1".into()],
            interval: Some(300_000_000_000),
            timeout: Some(3_000_000_000),
            retries: Some(3),
            ..Default::default()
        };
        assert_eq!(
            healthcheck_created_by(&h),
            r#"HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] "5m0s" "3s" "0s" '\x03'}"#
        );
        assert_eq!(absolute_dest(".", Some("/app")), "/app/.");
        assert_eq!(absolute_dest("x/", Some("/app/")), "/app/x/");
        assert_eq!(absolute_dest("/abs", Some("/app")), "/abs");
    }
}
