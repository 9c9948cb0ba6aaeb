//! Containers: unpack an image into a bundle, diff it, commit it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use strata_image::{Container, Event, ProgressHook, RUNTIME_CONFIG_FILE, UnpackOptions, human_size};
use strata_layer::ChangeKind;
use strata_spec::Platform;

use crate::cli::CommitMeta;
use crate::ctx::Ctx;
use crate::format::{Format, Listing};
use crate::output::print_json;
use crate::progress::Bars;

/// What `strata unpack` makes.
pub struct UnpackWhat {
    /// `--rootless`.
    pub rootless: bool,
    /// `--raw`: the rootfs alone.
    pub raw: bool,
    /// Write `config.json` (not with `--no-runtime-config`, never with `--raw`).
    pub runtime_config: bool,
    /// `--plan`.
    pub plan: strata_image::PlanMode,
}

pub fn unpack(ctx: &Ctx, reference: &str, dir: &Path, what: UnpackWhat, platform: Option<&str>) -> Result<ExitCode> {
    let UnpackWhat { rootless, raw, runtime_config, plan } = what;
    let store = ctx.read_store()?;
    let wanted = platform.map(|p| Platform::parse(p).with_context(|| format!("--platform {p:?}"))).transpose()?;
    let img = store.image_for(reference, wanted.as_ref().unwrap_or(&Platform::host()))?;
    // An image picked out of an index matches; a lone manifest is used whatever its
    // platform, unless one was asked for.
    if let Some(want) = wanted.as_ref().filter(|_| img.tag_target().digest == *img.digest()) {
        let has = img.config().platform();
        if strata_spec::select_platform([Some(&has)], want).is_none() {
            bail!("image {reference:?} is for {has}, not {want}");
        }
    }
    let total: u64 = img.layers().iter().map(|l| l.size).sum();
    let count = img.layers().len();
    let bar = Bars::new(ctx).bytes("unpacking", Some(total));
    bar.set_message(format!("0/{count} layers"));
    let hook = {
        let bar = bar.clone();
        let per_layer = Arc::new(Mutex::new(vec![(0u64, false); count]));
        ProgressHook::new(move |e: &Event<'_>| {
            let (index, bytes, done) = match e {
                Event::LayerProgress { index, bytes, .. } => (*index, *bytes, false),
                Event::LayerDone { index, bytes, .. } => (*index, *bytes, true),
                _ => return,
            };
            let Ok(mut v) = per_layer.lock() else { return };
            if let Some(slot) = v.get_mut(index) {
                *slot = (bytes, done);
            }
            bar.set_position(v.iter().map(|s| s.0).sum());
            bar.set_message(format!("{}/{count} layers", v.iter().filter(|s| s.1).count()));
        })
    };
    let mut opts = UnpackOptions::default().progress(hook).runtime_config(runtime_config).plan(plan);
    if rootless {
        opts = opts.rootless(true);
    }
    let rootfs = if raw {
        img.unpack_raw(dir, &opts)?;
        dir.to_path_buf()
    } else {
        img.unpack_with(dir, &opts)?.rootfs()
    };
    bar.finish_and_clear();
    if ctx.json {
        print_json(&json!({
            "Image": reference,
            "ID": img.id().to_string(),
            "Digest": img.digest().to_string(),
            "Rootfs": rootfs,
            "Bundle": if raw { Value::Null } else { json!(dir) },
            "RuntimeConfig": if raw || !runtime_config { Value::Null } else { json!(dir.join(RUNTIME_CONFIG_FILE)) },
            "Layers": count,
            "Size": total,
        }))?;
    } else if !ctx.quiet {
        writeln!(
            std::io::stdout().lock(),
            "Unpacked {reference} ({}, {count} layer{}, {}) into {}",
            img.id().short(),
            if count == 1 { "" } else { "s" },
            human_size(total),
            rootfs.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Open a bundle with the store it was unpacked from (recorded in its state), unless a
/// store was named with `--store`: its base image lives there.
fn open_bundle(ctx: &Ctx, dir: &Path, write: bool) -> Result<Container> {
    let state = Container::open(&strata_image::Store::in_memory(), dir)?.state().clone();
    let store = match state.store {
        Some(recorded) if !ctx.store_is_explicit() && recorded.is_dir() => strata_image::Store::open(&recorded)
            .with_context(|| {
                format!("open store {} (where {} was unpacked from)", recorded.display(), dir.display())
            })?,
        _ if write => ctx.write_store()?,
        _ => ctx.read_store()?,
    };
    Ok(Container::open(&store, dir)?)
}

/// `diff` rows: `A`, `C` or `D`, and the path.
const DIFF: Listing = Listing { row_type: "diff change", headers: &[("Kind", "KIND"), ("Path", "PATH")] };

const DIFF_TABLE: &str = "table {{.Kind}}\t{{.Path}}";

/// A bundle directory when `what` is a path that exists, else a container's bundle.
fn bundle_or_container(ctx: &Ctx, what: &Path, write: bool) -> Result<Container> {
    if what.exists() {
        return open_bundle(ctx, what, write);
    }
    let store = if write { ctx.write_store()? } else { ctx.read_store()? };
    if store.path().is_none() {
        bail!(strata_image::Error::ContainerNotFound(what.display().to_string()));
    }
    Ok(store.containers()?.bundle(&what.to_string_lossy())?.1)
}

pub fn diff(ctx: &Ctx, dir: &Path, format: Option<&str>) -> Result<ExitCode> {
    let container = bundle_or_container(ctx, dir, false)?;
    let changes = container.diff()?;
    if let Some(f) = format.filter(|_| !ctx.json) {
        let rows: Vec<Value> = changes
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    ChangeKind::Modified => "C",
                    ChangeKind::Added => "A",
                    ChangeKind::Deleted => "D",
                };
                json!({ "Kind": kind, "Path": format!("/{}", c.path.display()) })
            })
            .collect();
        Format::parse(f, DIFF_TABLE)?.print(&DIFF, &rows, &mut std::io::stdout().lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.json {
        // The shape of docker's API (`GET /containers/{id}/changes`): Kind 0 changed,
        // 1 added, 2 deleted.
        let rows: Vec<Value> = changes
            .docker_listing()
            .into_iter()
            .map(|(kind, path)| {
                let kind = match kind {
                    ChangeKind::Modified => 0,
                    ChangeKind::Added => 1,
                    ChangeKind::Deleted => 2,
                };
                json!({ "Path": format!("/{}", path.display()), "Kind": kind })
            })
            .collect();
        print_json(&rows)?;
    } else {
        std::io::stdout().lock().write_all(changes.docker_diff().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn commit(ctx: &Ctx, dir: &Path, new_ref: &str, meta: &CommitMeta, pause: bool) -> Result<ExitCode> {
    let opts = super::commit_options(meta, new_ref)?;
    let bar = Bars::new(ctx).spinner(&format!("committing {}", dir.display()));
    let img = if dir.exists() {
        open_bundle(ctx, dir, true)?.commit(&opts)?
    } else {
        ctx.write_store()?.containers()?.commit(&dir.to_string_lossy(), &opts, pause)?
    };
    bar.finish_and_clear();
    print_new_image(ctx, &img)
}

/// What commit, import, append and config print: the new image id (as `docker commit`).
pub fn print_new_image(ctx: &Ctx, img: &strata_image::Image) -> Result<ExitCode> {
    if ctx.json {
        print_json(&json!({
            "ID": img.id().to_string(),
            "Digest": img.digest().to_string(),
            "Tag": img.name(),
            "Layers": img.layers().len(),
            "Size": img.size()?,
        }))?;
    } else {
        writeln!(std::io::stdout().lock(), "{}", img.id())?;
    }
    Ok(ExitCode::SUCCESS)
}
