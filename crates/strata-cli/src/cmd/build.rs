//! `strata build` and `strata builder prune` (strata-build).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use strata_build::{BuildOptions, CacheSpec, Event, Network, SecretSource};

use crate::cli::{BuildFeatureArgs, NetworkMode, RegistryArgs};
use crate::ctx::Ctx;
use crate::output::print_json;
use crate::progress::Bars;

/// The on/off switches of `strata build`.
pub struct Flags {
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--network`.
    pub network: NetworkMode,
    /// `--allow-url-fetch`.
    pub allow_url_fetch: bool,
    /// `--secret`, `--ssh`, `--platform`, `--cache-*`...
    pub features: BuildFeatureArgs,
}

/// `--secret id=ID,src=FILE|env=VAR` as buildx reads it; `id=ID` alone is the
/// variable `ID`.
fn parse_secret(spec: &str) -> Result<(String, SecretSource)> {
    let mut id = None;
    let mut source = None;
    let mut kind = None;
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "id" => id = Some(v.to_owned()),
            "src" | "source" => source = Some(v.to_owned()),
            "env" => {
                kind = Some("env");
                source = Some(v.to_owned());
            }
            "type" if v == "file" || v == "env" => kind = Some(if v == "env" { "env" } else { "file" }),
            _ => bail!("--secret {spec}: unexpected {field:?} (id=ID,src=FILE or id=ID,env=VAR)"),
        }
    }
    let Some(id) = id.filter(|i| !i.is_empty()) else { bail!("--secret {spec}: needs id=ID") };
    let source = match (kind, source) {
        (Some("env"), Some(v)) => SecretSource::Env(v),
        (_, Some(path)) => SecretSource::File(PathBuf::from(path)),
        (_, None) => SecretSource::Env(id.clone()),
    };
    Ok((id, source))
}

#[allow(clippy::too_many_arguments)]
pub fn build(
    ctx: &Ctx,
    context: &Path,
    tags: &[String],
    file: Option<PathBuf>,
    build_args: &[String],
    target: Option<String>,
    flags: Flags,
    registry: &RegistryArgs,
) -> Result<ExitCode> {
    let Flags { no_cache, network, allow_url_fetch, features } = flags;
    if !context.is_dir() {
        bail!("build context {}: not a directory", context.display());
    }
    let mut args = BTreeMap::new();
    for a in build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                args.insert(k.to_owned(), v.to_owned());
            }
            // `--build-arg K`: the value from the environment, when set.
            None => {
                if let Ok(v) = std::env::var(a) {
                    args.insert(a.clone(), v);
                }
            }
        }
    }
    let mut opts = BuildOptions::default()
        .no_cache(no_cache)
        .network(match network {
            NetworkMode::None => Network::None,
            NetworkMode::Host => Network::Host,
        })
        .fetch_urls(allow_url_fetch);
    opts.tags = tags.to_vec();
    opts.build_args = args;
    opts.target = target;
    opts.dockerfile = file;
    opts.registry = super::registry::registry_options(registry);
    for s in &features.secrets {
        let (id, source) = parse_secret(s)?;
        opts.secrets.insert(id, source);
    }
    for s in &features.ssh {
        let (id, sock) = match s.split_once('=') {
            Some((id, path)) => (id.to_owned(), PathBuf::from(path)),
            None => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(p) => (s.clone(), PathBuf::from(p)),
                None => bail!("--ssh {s}: SSH_AUTH_SOCK is not set (give ID=SOCKET)"),
            },
        };
        opts.ssh.insert(id, sock);
    }
    for a in &features.allow {
        if !matches!(a.as_str(), "network.host" | "security.insecure") {
            bail!("--allow {a}: unknown entitlement (network.host or security.insecure)");
        }
        opts.allow.insert(a.clone());
    }
    if let Some(p) = &features.platform {
        opts.platform = Some(strata_spec::Platform::parse(p).with_context(|| format!("--platform {p}"))?);
    }
    opts.source_date_epoch = features.source_date_epoch;
    for c in &features.cache_from {
        opts.cache_from.push(CacheSpec::parse(c).map_err(|e| anyhow::anyhow!("--cache-from {e}"))?);
    }
    for c in &features.cache_to {
        opts.cache_to.push(CacheSpec::parse(c).map_err(|e| anyhow::anyhow!("--cache-to {e}"))?);
    }
    opts.jobs = features.jobs;
    let store = ctx.write_store()?;
    let bars = Bars::new(ctx);
    let mut hashing: Option<indicatif::ProgressBar> = None;
    let quiet = ctx.quiet || ctx.json;
    let mut p = Printer { out: std::io::stdout().lock(), err: None, stage: None, at_line_start: true };
    let result = strata_build::build(&store, context, &opts, &mut |e| {
        if let Event::ContextHashed(n) = e {
            hashing.get_or_insert_with(|| bars.bytes("hashing context", None)).set_position(*n);
            return;
        }
        if let Some(b) = hashing.take() {
            b.finish_and_clear();
        }
        if quiet {
            return;
        }
        match e {
            Event::Stage { name } => p.stage(name),
            Event::Step { index, total, text } => p.line(&format!("Step {index}/{total} : {text}")),
            Event::UsingCache => p.line(" ---> Using cache"),
            Event::Running { command } => p.line(&format!(" ---> Running: {}", command.trim_end())),
            Event::Output(bytes) => p.raw(bytes),
            Event::StepDone { id: Some(id) } => p.line(&format!(" ---> {}", &id.hex()[..12])),
            Event::StepDone { id: None } => p.line(" ---> <scratch>"),
            Event::Triggers(n) => p.line(&format!("# Executing {n} build trigger{}", if *n == 1 { "" } else { "s" })),
            Event::Warning(w) => p.line(w),
            _ => {}
        }
    });
    if let Some(b) = hashing.take() {
        b.finish_and_clear();
    }
    let built = result?;
    if let Some(e) = p.err.take() {
        return Err(e.into());
    }
    let mut out = p.out;
    let id = built.image.id();
    if ctx.json {
        print_json(&json!({
            "ID": id.to_string(),
            "Tags": built.tags,
            "Steps": built.steps,
            "Cached": built.cached,
            "Executed": built.executed,
            "Warnings": built.warnings,
        }))?;
    } else if ctx.quiet {
        writeln!(out, "{id}")?;
    } else {
        writeln!(out, "Successfully built {}", &id.hex()[..12])?;
        for t in &built.tags {
            writeln!(out, "Successfully tagged {t}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes build output, keeping the first write error (a closed pipe) for the end.
/// While stages build in parallel, every line starts with `[stage] `.
struct Printer<W: Write> {
    out: W,
    err: Option<std::io::Error>,
    /// The stage whose lines come now (parallel builds only).
    stage: Option<String>,
    at_line_start: bool,
}

impl<W: Write> Printer<W> {
    fn write(&mut self, bytes: &[u8]) {
        if self.err.is_none()
            && let Err(e) = self.out.write_all(bytes)
        {
            self.err = Some(e);
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        let Some(stage) = self.stage.clone() else {
            self.write(bytes);
            return;
        };
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            if self.at_line_start {
                self.write(format!("[{stage}] ").as_bytes());
            }
            self.write(piece);
            self.at_line_start = piece.ends_with(b"\n");
        }
    }

    fn line(&mut self, line: &str) {
        self.raw(line.as_bytes());
        self.raw(b"\n");
    }

    /// Another stage's events follow: end a line it left open.
    fn stage(&mut self, name: &str) {
        if !self.at_line_start {
            self.raw(b"\n");
        }
        self.stage = Some(name.to_owned());
    }
}

pub fn prune(ctx: &Ctx, keep: usize) -> Result<ExitCode> {
    let store = ctx.write_store()?;
    let dropped = strata_build::cache::prune(&store, keep).context("prune the build cache")?;
    let gc = store.gc(false)?;
    if ctx.json {
        print_json(
            &json!({"EntriesDropped": dropped, "BlobsRemoved": gc.removed.len(), "SpaceReclaimed": gc.freed_bytes()}),
        )?;
    } else if !ctx.quiet {
        writeln!(
            std::io::stdout().lock(),
            "Dropped {dropped} build cache entries; total reclaimed space: {}",
            strata_image::human_size(gc.freed_bytes())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
