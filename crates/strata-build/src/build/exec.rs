//! The executor: a stage's steps carried out against the store and the disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use strata_commit::{CommitOptions, Source};
use strata_image::{Image, UnpackOptions};
use strata_layer::{ApplyOptions, LayerSource, Snapshot, Timestamp};
use strata_registry::{NoProgress, PullOptions};
use strata_spec::{ContainerConfig, Digest, Platform, Reference};

use super::plan::{Action, CopyPlan, FromPlan, RunPlan, Step, Vars, cache_key};
use super::{Builder, DEFAULT_PATH, Event, lock};
use crate::copy::{self, CopyPolicy, SourceItem};
use crate::dockerfile::{Instruction, Spanned, parse_instruction};
use crate::error::{Error, Result};
use crate::mounts::{self, Prepared};
use crate::run::{RunMount, RunMountKind, RunSpec};
use crate::tree::{DiskView, MergedTreeView, Node, TreeView, resolve};
use crate::users;

/// A stage being built.
pub(super) struct State {
    /// The image so far; `None` for `FROM scratch` before its first step.
    pub(super) image: Option<Image>,
    /// The runtime config, author and `ARG`s so far (what the planner reads).
    pub(super) vars: Vars,
    pub(super) platform: Platform,
    /// The unpacked rootfs, once a `RUN` needed it.
    pub(super) work: Option<WorkDir>,
    /// The merged view of `image`, once a `COPY` needed it.
    pub(super) merged: Option<(Digest, MergedTreeView)>,
    /// Directories a step's sources live in until its layer is written.
    pub(super) temps: Vec<tempfile::TempDir>,
}

pub(super) struct WorkDir {
    pub(super) _dir: tempfile::TempDir,
    pub(super) rootfs: PathBuf,
    pub(super) snapshot: Snapshot,
    /// The image the rootfs is the tree of.
    pub(super) image: Option<Digest>,
}

/// The sources of a `COPY`/`ADD`.
#[allow(clippy::large_enum_variant)]
pub(super) enum CopyItems {
    /// Matched and hashed (the build context).
    Ready(Vec<(SourceItem, bool)>),
    /// In another image (`COPY --from`): matched only when the step runs, so that a
    /// cache hit does not unpack it.
    FromImage(Image),
}

/// What one step changes, with what it read from the disk.
#[allow(clippy::large_enum_variant)]
enum Fs {
    /// Config only.
    None,
    /// `RUN`, with its mounts' sources found.
    Run(RunPlan, Vec<Prepared>),
    /// `COPY`/`ADD`, with its sources.
    Copy(CopyPlan, CopyItems),
    /// `WORKDIR`: make the directory when it is missing.
    Workdir(String),
}

impl State {
    pub(super) fn parent_key(&self) -> String {
        match &self.image {
            Some(i) => i.id().to_string(),
            None => format!("scratch:{}", self.platform),
        }
    }
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
    pub(super) fn at(&self, s: &Spanned, e: Error) -> Error {
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
        if let Some(triggers) = st.vars.config.on_build.take().filter(|t| !t.is_empty()) {
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

    fn from(&self, index: usize, s: &Spanned) -> Result<State> {
        let Instruction::From { image, platform, .. } = &s.instruction else {
            return Err(Error::MisplacedFrom { text: s.text.clone() });
        };
        // Every global ARG counts as used once a stage starts.
        lock(&self.used_args).extend(self.scope.globals.keys().cloned());
        let FromPlan { name, platform } = self.scope.from(image, platform.as_deref())?;
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
        let vars = Vars::of_base(
            image.as_ref().and_then(|i| i.config().config.clone()),
            image.as_ref().and_then(|i| i.config().author.clone()),
        );
        let platform = match &image {
            Some(i) => i.config().platform(),
            None => platform.unwrap_or_else(Platform::host),
        };
        Ok(State { image, vars, platform, work: None, merged: None, temps: Vec::new() })
    }

    /// A base image: from the store, else pulled from its registry.
    pub(super) fn base_image(&self, name: &str, platform: Option<&Platform>) -> Result<Image> {
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
        // Through the image model, as any embedder pulls.
        let (image, _) = self.store.pull_with(&reference, &pull, &NoProgress).map_err(|e| Error::BaseImage {
            name: name.to_owned(),
            reason: format!("not in the store, and pulling it failed: {e}"),
        })?;
        Ok(image)
    }

    /// One step: planned, its sources read, found in the cache or carried out.
    fn instruction(&self, st: &mut State, s: &Spanned, observe: &mut dyn FnMut(&Event<'_>)) -> Result<()> {
        let Step { after, used_args, action } = self.scope.instruction(&st.vars, &s.instruction)?;
        lock(&self.used_args).extend(used_args);
        let empty_layer = action.empty_layer();
        // What the disk adds to the plan: the sources' hash, what mounts bind.
        let (created_by, key_text, fs) = match action {
            Action::Config { created_by } => (created_by.clone(), created_by, Fs::None),
            Action::Workdir { created_by, path } => (created_by.clone(), created_by, Fs::Workdir(path)),
            Action::Run(run) => {
                let mounts = self.prepare_mounts(st, &run.mounts)?;
                let keys: Vec<String> = mounts.iter().map(Prepared::key).collect();
                (run.created_by.clone(), run.key_text(&keys), Fs::Run(run, mounts))
            }
            Action::Copy(copy) => {
                let (items, hash) = self.copy_sources(st, &copy, observe)?;
                let created_by = copy.created_by(&hash);
                (created_by.clone(), copy.key_text(&created_by), Fs::Copy(copy, items))
            }
        };
        // The ARGs and whether CMD was set hold from here on, whatever the cache has.
        st.vars.args = after.args.clone();
        st.vars.cmd_set = after.cmd_set;

        let key = cache_key(&st.parent_key(), &key_text, &after, &self.write);
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
            st.vars = Vars { config: img.config().config.clone().unwrap_or_default(), ..after };
            st.image = Some(img);
            return Ok(());
        }

        let commit_opts = CommitOptions {
            created_by: Some(created_by),
            author: after.author.clone(),
            config: Some(after.config.clone()),
            created: self.epoch,
            write: self.write.clone(),
            platform: Some(st.platform.clone()),
            ..Default::default()
        };
        // Every step commits through the image model (the same step as `docker commit`).
        let base = st.image.clone();
        let committed = match fs {
            Fs::None => self.store.commit(base.as_ref(), Source::ConfigOnly, &commit_opts)?,
            Fs::Run(run, mounts) => self.run(st, &after.config, run, mounts, base.as_ref(), &commit_opts, observe)?,
            Fs::Copy(copy, items) => self.copy(st, items, &copy, base.as_ref(), &commit_opts)?,
            Fs::Workdir(wd) => self.workdir(st, &wd, base.as_ref(), &commit_opts)?,
        };
        debug_assert!(
            empty_layer.is_none_or(|empty| empty == committed.layer.is_none()),
            "the plan said empty_layer={empty_layer:?}"
        );
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
        st.vars = after;
        st.image = Some(img);
        Ok(())
    }

    /// The working rootfs of `st`, unpacked (or brought up to date) for its image.
    pub(super) fn work<'s>(&self, st: &'s mut State) -> Result<&'s mut WorkDir> {
        let want = st.image.as_ref().map(|i| i.id().clone());
        let stale = st.work.as_ref().is_some_and(|w| w.image != want);
        if stale {
            st.work = None;
        }
        let work = match st.work.take() {
            Some(w) => w,
            None => {
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
                WorkDir { _dir: dir, rootfs, snapshot, image: want }
            }
        };
        Ok(st.work.insert(work))
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        st: &mut State,
        config: &ContainerConfig,
        run: RunPlan,
        mounts: Vec<Prepared>,
        base: Option<&Image>,
        commit_opts: &CommitOptions,
        observe: &mut dyn FnMut(&Event<'_>),
    ) -> Result<strata_commit::Committed> {
        let runner = self.runner.clone().map_err(|reason| Error::NoRunner { reason })?;
        crate::platform::can_run(&st.platform)
            .map_err(|reason| Error::CannotRun { platform: st.platform.to_string(), reason })?;
        let RunPlan { args, mut env, network, script, .. } = run;
        if args.is_empty() {
            return Err(Error::EmptyCommand);
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
                    return Err(Error::HeredocName { name: name.clone() });
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
        // The tree the command changed (the image is the same, so no new unpack).
        let work = self.work(st)?;
        let source = Source::Since { root: &work.rootfs, snapshot: &work.snapshot };
        let committed = self.store.commit(base, source, commit_opts)?;
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
        plan: &CopyPlan,
        base: Option<&Image>,
        commit_opts: &CommitOptions,
    ) -> Result<strata_commit::Committed> {
        let now = step_time(commit_opts)?;
        let items = match items {
            CopyItems::Ready(i) => i,
            CopyItems::FromImage(image) => self.items_of_image(st, &image, plan)?,
        };
        let planned = self.with_view(st, |view| {
            let chown = plan.chown.as_deref().map(|c| users::chown_ids(view, c)).transpose()?;
            let policy = CopyPolicy { chown, chmod: plan.chmod, now };
            // `--link`: the layer stands on its own, its paths made from the root.
            let target: &dyn TreeView = if plan.link { &EmptyView } else { view };
            copy::plan(target, &items, &plan.target, &policy, plan.keyword)
        })?;
        let layer = copy::write_layer(self.store, &planned, &self.write)?;
        let committed = self.store.commit(base, Source::Layer(layer), commit_opts)?;
        let parent = st.image.as_ref().map(|i| i.id().clone());
        self.apply_to_work(st, parent.as_ref(), &committed)?;
        Ok(committed)
    }

    /// `WORKDIR`: a layer with the directories when they are missing, else config only.
    fn workdir(
        &self,
        st: &mut State,
        wd: &str,
        base: Option<&Image>,
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
        let layer = if planned.is_empty() { None } else { Some(copy::write_layer(self.store, &planned, &self.write)?) };
        let source = layer.map_or(Source::ConfigOnly, Source::Layer);
        let committed = self.store.commit(base, source, commit_opts)?;
        let parent = st.image.as_ref().map(|i| i.id().clone());
        self.apply_to_work(st, parent.as_ref(), &committed)?;
        Ok(committed)
    }
}

/// An empty tree (`FROM scratch` before anything is in it).
struct EmptyView;

impl TreeView for EmptyView {
    fn lstat(&self, path: &Path) -> Result<Option<Node>> {
        Ok(path.as_os_str().is_empty().then_some(Node::Dir))
    }
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        Err(Error::Io(strata_spec::IoError::new("read", path.to_path_buf(), std::io::ErrorKind::NotFound.into())))
    }
}

/// The time of the step: the commit's creation time (`SOURCE_DATE_EPOCH` when set).
pub(super) fn step_time(opts: &CommitOptions) -> Result<Timestamp> {
    let t = match opts.created {
        Some(t) => t,
        None => strata_commit::source_date_epoch()?.unwrap_or_else(SystemTime::now),
    };
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Ok(Timestamp::new(d.as_secs() as i64, i64::from(d.subsec_nanos())))
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
