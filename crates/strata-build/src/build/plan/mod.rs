//! The step planner: what each Dockerfile instruction does, decided without touching the
//! disk or the store.
//!
//! [`Scope::instruction`] takes an instruction and the stage's [`Vars`] (runtime config,
//! author, `ARG`s) and returns a [`Step`]: the stage after it, the history text docker
//! writes for it, whether it makes a layer, what it copies or runs, and what its cache
//! key is made of. The executor (`exec`) carries steps out: it finds the sources, looks
//! the key up in the cache, runs, copies and commits. What a step needs from the disk
//! (the hash of `COPY`'s sources, what a `RUN` mount binds) completes the plan there
//! through [`CopyPlan::created_by`] and [`RunPlan::key_text`].

use std::collections::BTreeMap;

use strata_image::Change;
use strata_layer::WriteOptions;
use strata_spec::{ContainerConfig, Digest, Platform};

use super::{BuildOptions, DEFAULT_PATH};
use crate::cache;
use crate::dockerfile::{
    CommandForm, CopyArgs, Dockerfile, Ignore, Instruction, Lexer, Mount, MountKind, RunArgs, RunCommand,
};
use crate::error::{Error, Result};
use crate::fetch;
use crate::run::Network;

mod history;
#[cfg(test)]
mod tests;

use history::{go_quote_list, healthcheck_created_by};

/// What a stage's instructions read and change, besides its tree.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Vars {
    /// The runtime config so far.
    pub(super) config: ContainerConfig,
    /// `MAINTAINER`, else the base image's author.
    pub(super) author: Option<String>,
    /// `CMD` was set in this stage (`ENTRYPOINT` then keeps it).
    pub(super) cmd_set: bool,
    /// `ARG`s declared in this stage, with their values.
    pub(super) args: BTreeMap<String, Option<String>>,
}

impl Vars {
    /// A stage's start on a base image's runtime config and author: docker's default
    /// `PATH` added when the config has none.
    pub(super) fn of_base(config: Option<ContainerConfig>, author: Option<String>) -> Vars {
        let mut config = config.unwrap_or_default();
        let has_path = config.env.as_deref().unwrap_or_default().iter().any(|e| e.starts_with("PATH="));
        if !has_path {
            config.env.get_or_insert_with(Vec::new).insert(0, DEFAULT_PATH.to_owned());
        }
        Vars { config, author, cmd_set: false, args: BTreeMap::new() }
    }

    /// The shell of `RUN`, `CMD` and `ENTRYPOINT` in shell form (`SHELL`, else
    /// `/bin/sh -c`).
    pub(super) fn shell(&self) -> Vec<String> {
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

/// One planned step.
#[derive(Debug)]
pub(super) struct Step {
    /// The stage after the step (the config its image gets).
    pub(super) after: Vars,
    /// Build arguments the step consumed (the rest are warned about).
    pub(super) used_args: Vec<String>,
    /// What the step does besides changing the config.
    pub(super) action: Action,
}

/// What a step does to the tree.
#[derive(Debug)]
pub(super) enum Action {
    /// Nothing: a history entry with `empty_layer`.
    Config {
        /// The history entry's `created_by` (also what the cache key stands on).
        created_by: String,
    },
    /// `RUN`: a layer of what the command changed (none when it changed nothing).
    Run(RunPlan),
    /// `COPY`/`ADD`: a layer of the sources placed at the destination.
    Copy(CopyPlan),
    /// `WORKDIR`: a layer of the directories when some are missing, else none.
    Workdir {
        /// The history entry's `created_by`.
        created_by: String,
        /// The absolute working directory.
        path: String,
    },
}

impl Action {
    /// Whether the step's history entry is `empty_layer` whatever the tree holds
    /// (`Some(true)`: never a layer; `Some(false)`: always one), `None` when the tree
    /// decides (`RUN` that changes nothing, `WORKDIR` of an existing directory).
    pub(super) fn empty_layer(&self) -> Option<bool> {
        match self {
            Action::Config { .. } => Some(true),
            Action::Copy(_) => Some(false),
            Action::Run(_) | Action::Workdir { .. } => None,
        }
    }
}

/// A `RUN` step.
#[derive(Debug)]
pub(super) struct RunPlan {
    /// The history entry's `created_by`: `|N K=V ...` for build arguments, then the
    /// command line.
    pub(super) created_by: String,
    /// The command line (the shell form through the stage's shell).
    pub(super) args: Vec<String>,
    /// The environment: the config's, then build arguments it does not set.
    pub(super) env: Vec<String>,
    /// `--network`, or the build's.
    pub(super) network: Network,
    /// `--mount`s, parsed.
    pub(super) mounts: Vec<MountPlan>,
    /// A `#!` here-document: its name and content, run from `/dev/pipes/<name>`.
    pub(super) script: Option<(String, String)>,
}

/// A `RUN --mount`, parsed with the stage's variables substituted.
#[derive(Debug)]
pub(super) struct MountPlan {
    /// The mount (its `from` as written: the key has it so).
    pub(super) mount: Mount,
    /// A bind mount's `from=` (a stage or image), substituted.
    pub(super) from: Option<String>,
}

impl RunPlan {
    /// The text the cache key stands on: the history text, the network, each mount's
    /// key (with what its source holds, [`crate::mounts::Prepared::key`]) and the
    /// script.
    pub(super) fn key_text(&self, mount_keys: &[String]) -> String {
        let mut k = format!("{}\0network={:?}", self.created_by, self.network);
        for m in mount_keys {
            k.push_str("\0mount=");
            k.push_str(m);
        }
        if let Some((name, content)) = &self.script {
            k.push_str(&format!("\0script={name}\0{content}"));
        }
        k
    }
}

/// A `COPY` or `ADD` step.
#[derive(Debug)]
pub(super) struct CopyPlan {
    /// `COPY` or `ADD`.
    pub(super) keyword: &'static str,
    /// The stage's shell, for the history text.
    shell: Vec<String>,
    /// Sources that are not here-documents, substituted: context paths or patterns,
    /// URLs (`ADD`), paths in `from`.
    pub(super) sources: Vec<String>,
    /// Here-documents: name and content (expanded when the delimiter was unquoted).
    pub(super) heredocs: Vec<(String, String)>,
    /// `--exclude` patterns, substituted and parsed.
    pub(super) exclude: Option<Ignore>,
    /// `--exclude` as written (the key has it so).
    exclude_written: Vec<String>,
    /// The destination as substituted (the history text has it so).
    pub(super) dest: String,
    /// The destination made absolute against the working directory.
    pub(super) target: String,
    /// `--chown`, substituted.
    pub(super) chown: Option<String>,
    /// `--chmod`.
    pub(super) chmod: Option<u32>,
    /// `--checksum` of the one URL source.
    pub(super) checksum: Option<Digest>,
    /// `--from`: the stage or image to copy from, substituted.
    pub(super) from: Option<String>,
    /// `--parents`.
    pub(super) parents: bool,
    /// `--link`: paths resolve in an empty tree, not in the image below.
    pub(super) link: bool,
}

impl CopyPlan {
    /// `ADD`: local archives are extracted, URLs downloaded.
    pub(super) fn is_add(&self) -> bool {
        self.keyword == "ADD"
    }

    /// The hash of `COPY --from`'s sources: the image id stands for its content, so
    /// that a cache hit needs no unpacking.
    pub(super) fn image_hash(&self, image: &Digest) -> String {
        let spec = serde_json::to_string(&self.sources).unwrap_or_default();
        format!("from:{}:{}", image.hex(), Digest::sha256_of(spec.as_bytes()).hex())
    }

    /// The history entry's `created_by`, given the hash of the sources
    /// ([`crate::copy::source_hash`], or [`CopyPlan::image_hash`]).
    pub(super) fn created_by(&self, hash: &str) -> String {
        let chown = self.chown.as_ref().map(|c| format!("--chown={c} ")).unwrap_or_default();
        format!("{} #(nop) {} {chown}{hash} in {} ", self.shell.join(" "), self.keyword, self.dest)
    }

    /// The text the cache key stands on: the history text and the options it leaves
    /// out.
    pub(super) fn key_text(&self, created_by: &str) -> String {
        format!(
            "{created_by}\0chmod={:?}\0link={}\0parents={}\0exclude={:?}",
            self.chmod, self.link, self.parents, self.exclude_written
        )
    }
}

/// `FROM`, planned: the base image's name and the platform asked for.
#[derive(Debug, PartialEq)]
pub(super) struct FromPlan {
    /// The name (an earlier stage, `scratch`, or an image reference), substituted.
    pub(super) name: String,
    /// `--platform`, else the build's.
    pub(super) platform: Option<Platform>,
}

/// What every stage of a build sees: the options, the global `ARG`s and the platform
/// `ARG`s.
pub(super) struct Scope<'a> {
    lexer: Lexer,
    opts: &'a BuildOptions,
    /// Each global `ARG` (declared before the first `FROM`) with its value.
    pub(super) globals: BTreeMap<String, Option<String>>,
    /// The platform `ARG`s ([`platform_args`]).
    platform: BTreeMap<String, String>,
}

impl<'a> Scope<'a> {
    /// The scope of `df` built with `opts`.
    pub(super) fn new(df: &Dockerfile, opts: &'a BuildOptions) -> Scope<'a> {
        Scope::with_platform_args(df, opts, platform_args(opts.platform.as_ref()))
    }

    /// [`Scope::new`] with the platform `ARG`s given (this machine's are not a table's).
    pub(super) fn with_platform_args(
        df: &Dockerfile,
        opts: &'a BuildOptions,
        platform: BTreeMap<String, String>,
    ) -> Scope<'a> {
        let lexer = df.lexer();
        // The last declaration's default counts.
        let mut declared = BTreeMap::new();
        for g in &df.global_args {
            if let Instruction::Arg(args) = &g.instruction {
                for (k, v) in args {
                    declared.insert(k.clone(), v.clone());
                }
            }
        }
        let globals = declared
            .into_iter()
            .map(|(k, default)| {
                let value = match opts.build_args.get(&k) {
                    Some(v) => Some(v.clone()),
                    None => default.and_then(|v| lexer.process_word(&v, &|_| None).ok()),
                };
                (k, value)
            })
            .collect();
        Scope { lexer, opts, globals, platform }
    }

    fn subst(&self, vars: &Vars, word: &str) -> Result<String> {
        self.lexer
            .process_word(word, &|n| vars.lookup(n))
            .map_err(|reason| Error::Substitution { word: word.to_owned(), reason })
    }

    /// `change` with the stage's ENV and ARG values substituted, as docker's builder
    /// expands its instruction (the same expansion `docker commit --change` gets).
    fn expand(&self, vars: &Vars, change: &Change) -> Result<Change> {
        change
            .expand(self.lexer, &|n| vars.lookup(n))
            .map_err(|e| Error::Substitution { word: e.input, reason: e.reason })
    }

    /// `FROM image [--platform=p]`: the global `ARG`s substituted, and the platform
    /// `ARG`s where no global one has the name.
    pub(super) fn from(&self, image: &str, platform: Option<&str>) -> Result<FromPlan> {
        let lookup = |n: &str| match self.globals.get(n) {
            Some(v) => v.clone(),
            None => self.platform.get(n).cloned(),
        };
        let word = |w: &str| {
            self.lexer.process_word(w, &lookup).map_err(|reason| Error::Substitution { word: w.to_owned(), reason })
        };
        let name = word(image)?;
        let platform = match platform {
            Some(p) => {
                let p = word(p)?;
                Some(Platform::parse(&p).map_err(|e| Error::Flag {
                    flag: "--platform",
                    reason: e.to_string(),
                    value: p,
                })?)
            }
            None => self.opts.platform.clone(),
        };
        Ok(FromPlan { name, platform })
    }

    /// Plan one instruction of a stage whose state is `vars`.
    pub(super) fn instruction(&self, vars: &Vars, instruction: &Instruction) -> Result<Step> {
        let mut after = vars.clone();
        let mut used_args = Vec::new();
        let config_step = |created_by: String| Action::Config { created_by };
        let action = match instruction {
            Instruction::From { image, .. } => return Err(Error::MisplacedFrom { text: format!("FROM {image}") }),
            Instruction::Arg(args) => {
                let mut parts = Vec::new();
                for (k, default) in args {
                    // A default sees the ARGs declared before it, in this instruction too.
                    let default = default.as_ref().map(|d| self.subst(&after, d)).transpose()?;
                    used_args.push(k.clone());
                    let value = match self.opts.build_args.get(k) {
                        Some(v) => Some(v.clone()),
                        None => default
                            .clone()
                            .or_else(|| self.globals.get(k).cloned().flatten())
                            .or_else(|| self.platform.get(k).cloned()),
                    };
                    after.args.insert(k.clone(), value);
                    parts.push(match &default {
                        Some(d) => format!("{k}={d}"),
                        None => k.clone(),
                    });
                }
                // The values reach RUN through its created_by (`|N K=V`), not the key.
                config_step(vars.nop(&format!("ARG {}", parts.join(" "))))
            }
            Instruction::Env(pairs) | Instruction::Label(pairs) => {
                let change = if matches!(instruction, Instruction::Env(_)) {
                    Change::Env(pairs.clone())
                } else {
                    Change::Label(pairs.clone())
                };
                let change = self.expand(vars, &change)?;
                change.apply(&mut after.config);
                // `ENV k=v ...`, as docker's classic builder records it.
                config_step(vars.nop(&change.to_string()))
            }
            Instruction::Run(run) => Action::Run(self.run(vars, run)?),
            Instruction::Cmd(form) => {
                let cmd = form.resolve(Some(&vars.shell()));
                let created_by = vars.nop(&format!("CMD {}", go_quote_list(&cmd)));
                after.config.cmd = Some(cmd);
                if !matches!(form, CommandForm::Exec(v) if v.is_empty()) {
                    after.cmd_set = true;
                }
                config_step(created_by)
            }
            Instruction::Entrypoint(form) => {
                let ep = form.resolve(Some(&vars.shell()));
                let created_by = vars.nop(&format!("ENTRYPOINT {}", go_quote_list(&ep)));
                after.config.entrypoint = Some(ep);
                if !vars.cmd_set {
                    after.config.cmd = None;
                }
                config_step(created_by)
            }
            Instruction::Copy(args) | Instruction::Add(args) => {
                Action::Copy(self.copy(vars, args, instruction.keyword())?)
            }
            Instruction::Workdir(w) => {
                self.expand(vars, &Change::Workdir(w.clone()))?.apply(&mut after.config);
                let path = after.config.working_dir.clone().unwrap_or_else(|| "/".into());
                Action::Workdir { created_by: vars.nop1(&format!("WORKDIR {path}")), path }
            }
            Instruction::User(words) => self.config_change(vars, &mut after, Change::User(words.clone()))?,
            Instruction::Expose(words) => self.config_change(vars, &mut after, Change::Expose(words.clone()))?,
            Instruction::StopSignal(sig) => self.config_change(vars, &mut after, Change::StopSignal(sig.clone()))?,
            Instruction::Volume(words) => {
                let change = self.expand(vars, &Change::Volume(words.clone()))?;
                // Go's `%v` of the list, as docker's classic builder records it.
                let paths = match &change {
                    Change::Volume(v) => v.join(" "),
                    _ => String::new(),
                };
                change.apply(&mut after.config);
                config_step(vars.nop(&format!("VOLUME [{paths}]")))
            }
            Instruction::Shell(sh) => {
                after.config.shell = Some(sh.clone());
                config_step(format!("{} #(nop)  SHELL [{}]", sh.join(" "), sh.join(" ")))
            }
            Instruction::Healthcheck(h) => {
                after.config.healthcheck = Some(h.to_config());
                config_step(vars.nop(&healthcheck_created_by(h)))
            }
            Instruction::OnBuild(t) => {
                Change::OnBuild(t.clone()).apply(&mut after.config);
                config_step(vars.nop(&format!("ONBUILD {t}")))
            }
            Instruction::Maintainer(m) => {
                after.author = Some(m.clone());
                config_step(vars.nop(&format!("MAINTAINER {m}")))
            }
        };
        Ok(Step { after, used_args, action })
    }

    /// A config change whose history text is the change as written back (`USER`,
    /// `EXPOSE`, `STOPSIGNAL`).
    fn config_change(&self, vars: &Vars, after: &mut Vars, change: Change) -> Result<Action> {
        let change = self.expand(vars, &change)?;
        change.apply(&mut after.config);
        Ok(Action::Config { created_by: vars.nop(&change.to_string()) })
    }

    fn run(&self, vars: &Vars, run: &RunArgs) -> Result<RunPlan> {
        let (form, script) = match run.resolve() {
            RunCommand::Form(f) => (f, None),
            RunCommand::Script { name, content } => {
                (CommandForm::Shell(format!("/dev/pipes/{name}")), Some((name, content)))
            }
        };
        let args = form.resolve(Some(&vars.shell()));
        let build_env = vars.build_env();
        let mut shown = Vec::new();
        if !build_env.is_empty() {
            shown.push(format!("|{}", build_env.len()));
            shown.extend(build_env.iter().cloned());
        }
        shown.extend(args.iter().cloned());
        let mut env = vars.config.env.clone().unwrap_or_default();
        env.extend(build_env);
        let network = self.run_network(run)?;
        let mounts = run.mounts.iter().map(|raw| self.run_mount(vars, raw)).collect::<Result<_>>()?;
        Ok(RunPlan { created_by: shown.join(" "), args, env, network, mounts, script })
    }

    /// `RUN --network` and `--security`, checked against the entitlements granted.
    fn run_network(&self, run: &RunArgs) -> Result<Network> {
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
                return Err(Error::Flag {
                    flag: "--network",
                    value: other.to_owned(),
                    reason: "expected default, none or host".into(),
                });
            }
        };
        if run.security.as_deref() == Some("insecure") {
            entitled("security.insecure", "RUN --security=insecure")?;
        }
        Ok(network)
    }

    /// One `RUN --mount=...`, substituted and parsed.
    fn run_mount(&self, vars: &Vars, raw: &str) -> Result<MountPlan> {
        let spec = self.subst(vars, raw)?;
        let mount = Mount::parse(&spec).map_err(|e| Error::Flag {
            flag: "--mount",
            value: spec.clone(),
            reason: e.to_string(),
        })?;
        let from = match (mount.kind, &mount.from) {
            (MountKind::Bind, Some(from)) => Some(self.subst(vars, from)?),
            (MountKind::Cache, Some(_)) => {
                return Err(Error::Flag {
                    flag: "--mount",
                    value: spec,
                    reason: "a cache mount seeded from a stage (from=) is not supported".into(),
                });
            }
            _ => None,
        };
        Ok(MountPlan { mount, from })
    }

    /// `COPY`/`ADD`: every word substituted, modes parsed, URL sources checked.
    fn copy(&self, vars: &Vars, args: &CopyArgs, keyword: &'static str) -> Result<CopyPlan> {
        let mut sources = Vec::new();
        let mut heredocs = Vec::new();
        for s in &args.sources {
            match args.heredoc(s) {
                Some(h) => {
                    let text = if h.expand {
                        self.lexer
                            .process_heredoc(&h.text(), &|n| vars.lookup(n))
                            .map_err(|reason| Error::Substitution { word: h.word.clone(), reason })?
                    } else {
                        h.text()
                    };
                    heredocs.push((h.name.clone(), text));
                }
                None => sources.push(self.subst(vars, s)?),
            }
        }
        let exclude = if args.exclude.is_empty() {
            None
        } else {
            let mut patterns = Vec::new();
            for e in &args.exclude {
                patterns.push(self.subst(vars, e)?);
            }
            Some(Ignore::parse(&patterns.join("\n"))?)
        };
        let dest = self.subst(vars, &args.dest)?;
        let chown = args.chown.as_ref().map(|c| self.subst(vars, c)).transpose()?;
        let chmod = match &args.chmod {
            Some(m) => {
                let m = self.subst(vars, m)?;
                Some(u32::from_str_radix(&m, 8).ok().filter(|v| *v <= 0o7777).ok_or_else(|| Error::Flag {
                    flag: "--chmod",
                    value: m.clone(),
                    reason: "not an octal mode (symbolic modes are not supported)".into(),
                })?)
            }
            None => None,
        };
        for s in sources.iter().filter(|s| fetch::is_url(s)) {
            if keyword != "ADD" {
                return Err(Error::UrlInCopy { url: s.clone() });
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
                let c = self.subst(vars, c)?;
                if !matches!(sources.as_slice(), [one] if fetch::is_http(one)) {
                    return Err(Error::Flag {
                        flag: "--checksum",
                        value: c,
                        reason: "needs exactly one source, an http:// or https:// URL".into(),
                    });
                }
                Some(Digest::parse(&c).map_err(|e| Error::Flag {
                    flag: "--checksum",
                    reason: e.to_string(),
                    value: c,
                })?)
            }
            None => None,
        };
        let from = match &args.from {
            Some(f) if !heredocs.is_empty() => {
                return Err(Error::Flag {
                    flag: "--from",
                    value: f.clone(),
                    reason: "COPY --from cannot copy a here-document".into(),
                });
            }
            Some(f) => Some(self.subst(vars, f)?),
            None => None,
        };
        Ok(CopyPlan {
            keyword,
            shell: vars.shell(),
            sources,
            heredocs,
            exclude,
            exclude_written: args.exclude.clone(),
            target: absolute_dest(&dest, vars.config.working_dir.as_deref()),
            dest,
            chown,
            chmod,
            checksum,
            from,
            parents: args.parents,
            link: args.link,
        })
    }
}

/// The cache key of a step on `parent` (its image id, or `scratch:<platform>`): what the
/// step does (`key_text`), the config and author it leaves, and how layers are written.
pub(super) fn cache_key(parent: &str, key_text: &str, after: &Vars, write: &WriteOptions) -> String {
    let config_json = serde_json::to_vec(&after.config).unwrap_or_default();
    cache::key(
        parent,
        key_text,
        &config_json,
        &format!("author={:?}\0write={:?}\0epoch={:?}", after.author, write.compression, write.mtime_clamp),
    )
}

/// The platform ARGs BuildKit defines: `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
/// `TARGETVARIANT` from the platform built for (`--platform`, else this machine's), and
/// `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` from this machine's.
pub(super) fn platform_args(target: Option<&Platform>) -> BTreeMap<String, String> {
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

/// `COPY`'s destination made absolute against the working directory (a trailing `/`
/// kept).
pub(super) fn absolute_dest(dest: &str, workdir: Option<&str>) -> String {
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
