//! The executor: a stage's steps carried out against the store and the disk.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use strata_commit::{Base, CommitOptions, Source};
use strata_image::{Change, Image, UnpackOptions};
use strata_layer::{ApplyOptions, LayerSource, Snapshot, Timestamp};
use strata_registry::{NoProgress, PullOptions};
use strata_spec::{ContainerConfig, Digest, Platform, Reference};

use super::plan::{absolute_dest, go_quote_list, healthcheck_created_by, platform_args};
use super::{Builder, DEFAULT_PATH, Event, lock};
use crate::cache;
use crate::copy::{self, CopyPolicy, SourceItem};
use crate::dockerfile::{CommandForm, Ignore, Instruction, Lexer, RunCommand, Spanned, parse_instruction};
use crate::error::{Error, Result};
use crate::mounts::{self, Prepared};
use crate::run::{Network, RunMount, RunMountKind, RunSpec};
use crate::tree::{DiskView, MergedTreeView, Node, TreeView, resolve};
use crate::users;

/// A stage being built.
pub(super) struct State {
    /// The image so far; `None` for `FROM scratch` before its first step.
    pub(super) image: Option<Image>,
    /// The runtime config so far.
    pub(super) config: ContainerConfig,
    pub(super) platform: Platform,
    pub(super) author: Option<String>,
    /// `CMD` was set in this stage (`ENTRYPOINT` then keeps it).
    pub(super) cmd_set: bool,
    /// `ARG`s declared in this stage, with their values.
    pub(super) args: BTreeMap<String, Option<String>>,
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

/// What a `RUN` step runs with.
pub(super) struct RunStep {
    pub(super) args: Vec<String>,
    pub(super) env: Vec<String>,
    pub(super) mounts: Vec<Prepared>,
    pub(super) network: Network,
    /// A `#!` here-document: its name and content, run from `/dev/pipes/<name>`.
    pub(super) script: Option<(String, String)>,
}

/// The sources of a `COPY`/`ADD`.
#[allow(clippy::large_enum_variant)]
pub(super) enum CopyItems {
    /// Matched and hashed (the build context).
    Ready(Vec<(SourceItem, bool)>),
    /// In another image (`COPY --from`): matched only when the step runs, so that a
    /// cache hit does not unpack it.
    FromImage { image: Image, sources: Vec<String>, parents: bool, exclude: Option<Ignore> },
}

/// What one step changes.
#[allow(clippy::large_enum_variant)]
pub(super) enum Fs {
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
    pub(super) fn parent_key(&self) -> String {
        match &self.image {
            Some(i) => i.id().to_string(),
            None => format!("scratch:{}", self.platform),
        }
    }

    pub(super) fn shell(&self) -> Vec<String> {
        match &self.config.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// `created_by` of a metadata step, as docker's classic builder writes it.
    pub(super) fn nop(&self, comment: &str) -> String {
        format!("{} #(nop)  {comment}", self.shell().join(" "))
    }

    /// `created_by` of `WORKDIR`, `COPY` and `ADD` (docker's one-argument form).
    pub(super) fn nop1(&self, comment: &str) -> String {
        format!("{} #(nop) {comment}", self.shell().join(" "))
    }

    /// Build arguments with a value that `ENV` does not override, `K=V`, sorted.
    pub(super) fn build_env(&self) -> Vec<String> {
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
    pub(super) fn lookup(&self, name: &str) -> Option<String> {
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
    pub(super) fn lexer(&self) -> Lexer {
        self.df.lexer()
    }

    /// `change` with the stage's ENV and ARG values substituted, as docker's builder
    /// expands its instruction (the same expansion `docker commit --change` gets).
    pub(super) fn expand(&self, st: &State, change: &Change) -> Result<Change> {
        change.expand(self.lexer(), &|n| st.lookup(n)).map_err(|e| Error::Instruction(e.reason))
    }

    pub(super) fn subst(&self, st: &State, word: &str) -> Result<String> {
        self.lexer()
            .process_word(word, &|n| st.lookup(n))
            .map_err(|reason| Error::Substitution { word: word.to_owned(), reason })
    }

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

    /// The working rootfs of `st`, unpacked (or brought up to date) for its image.
    pub(super) fn work<'s>(&self, st: &'s mut State) -> Result<&'s mut WorkDir> {
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
