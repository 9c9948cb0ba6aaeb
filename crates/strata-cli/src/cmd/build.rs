//! `strata build` and `strata builder prune` (strata-build).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use strata_build::{BuildOptions, Event, Network};

use crate::cli::{NetworkMode, RegistryArgs};
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
    let Flags { no_cache, network, allow_url_fetch } = flags;
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
    let store = ctx.write_store()?;
    let bars = Bars::new(ctx);
    let mut hashing: Option<indicatif::ProgressBar> = None;
    let quiet = ctx.quiet || ctx.json;
    let mut p = Printer { out: std::io::stdout().lock(), err: None };
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
            Event::Step { index, total, text } => p.line(&format!("Step {index}/{total} : {text}")),
            Event::UsingCache => p.line(" ---> Using cache"),
            Event::Running { command } => p.line(&format!(" ---> Running: {command}")),
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
struct Printer<W: Write> {
    out: W,
    err: Option<std::io::Error>,
}

impl<W: Write> Printer<W> {
    fn raw(&mut self, bytes: &[u8]) {
        if self.err.is_none()
            && let Err(e) = self.out.write_all(bytes)
        {
            self.err = Some(e);
        }
    }

    fn line(&mut self, line: &str) {
        self.raw(line.as_bytes());
        self.raw(b"\n");
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
