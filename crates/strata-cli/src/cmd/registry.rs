//! Registries: pull, push, login (strata-registry).

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use strata_image::{Store, human_size};
use strata_registry::spec::{Platform, Reference};
use strata_registry::{Credentials, Event, PullOptions, Pulled, PushOptions, RegistryOptions};

use crate::cli::RegistryArgs;
use crate::ctx::Ctx;
use crate::output::print_json;
use crate::progress::Bars;

pub fn registry_options(args: &RegistryArgs) -> RegistryOptions {
    RegistryOptions { insecure: args.insecure, tls_ca_files: args.tls_ca.clone(), ..Default::default() }
}

/// A reference, or docker's reason why not (`invalid reference format`), as
/// `docker pull` and `docker push` say it.
fn parse_reference(s: &str) -> Result<Reference> {
    Ok(Reference::parse(s)?)
}

/// Pull `reference` into `store`, with progress bars, recording each image's layer sizes
/// (so that listing never reads a layer).
pub fn pull_into(ctx: &Ctx, store: &Store, reference: &Reference, options: &PullOptions) -> Result<Pulled> {
    let bars = Bars::new(ctx).transfer();
    let pulled = strata_registry::pull(store.backend(), reference, options, &|e: &Event<'_>| bars.event(e));
    bars.clear();
    let pulled = pulled?;
    for m in &pulled.manifests {
        store.image_at(m, &Platform::host())?.layer_sizes()?;
    }
    Ok(pulled)
}

pub fn pull(
    ctx: &Ctx,
    reference: &str,
    platform: Option<&str>,
    all_platforms: bool,
    referrers: bool,
    args: &RegistryArgs,
) -> Result<ExitCode> {
    let parsed = parse_reference(reference)?;
    let platform = platform.map(|p| Platform::parse(p).with_context(|| format!("--platform {p:?}"))).transpose()?;
    let options =
        PullOptions { registry: registry_options(args), platform, all_platforms, referrers, ..Default::default() };
    let store = ctx.write_store()?;
    let pulled = pull_into(ctx, &store, &parsed, &options)?;
    let id = pulled.config.as_ref().map(|c| c.digest.to_string());
    if ctx.json {
        print_json(&json!({
            "Reference": pulled.reference.to_string(),
            "Tag": pulled.ref_name,
            "Digest": pulled.descriptor.digest.to_string(),
            "MediaType": pulled.descriptor.media_type.to_string(),
            "ID": id,
            "Manifests": pulled.manifests.len(),
            "BlobsFetched": pulled.blobs_fetched,
            "BlobsSkipped": pulled.blobs_skipped,
            "BytesFetched": pulled.bytes_fetched,
            "Referrers": pulled.referrers.iter().map(|d| d.digest.to_string()).collect::<Vec<_>>(),
        }))?;
    } else if ctx.quiet {
        writeln!(std::io::stdout().lock(), "{}", pulled.ref_name)?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Pulled {}: {} blobs fetched ({}), {} already present",
            pulled.ref_name,
            pulled.blobs_fetched,
            human_size(pulled.bytes_fetched),
            pulled.blobs_skipped
        )?;
        writeln!(out, "Digest: {}", pulled.descriptor.digest)?;
        if let Some(id) = id {
            writeln!(out, "Image ID: {id}")?;
        }
        if referrers {
            writeln!(out, "Referrers: {} fetched", pulled.referrers.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn push(ctx: &Ctx, local: &str, dest: Option<&str>, referrers: bool, args: &RegistryArgs) -> Result<ExitCode> {
    let dest_text = dest.unwrap_or(local);
    let dest = parse_reference(dest_text)?;
    let store = ctx.read_store()?;
    let img = store.image(local)?;
    let mount_from = Reference::parse(local).ok().and_then(|l| strata_registry::mount_source(&l, &dest));
    let options = PushOptions { registry: registry_options(args), mount_from, referrers, ..Default::default() };
    let bars = Bars::new(ctx).transfer();
    let pushed =
        strata_registry::push(store.backend(), img.tag_target(), &dest, &options, &|e: &Event<'_>| bars.event(e));
    bars.clear();
    let pushed = pushed?;
    if ctx.json {
        print_json(&json!({
            "Reference": pushed.reference.to_string(),
            "Digest": pushed.descriptor.digest.to_string(),
            "MediaType": pushed.descriptor.media_type.to_string(),
            "Size": pushed.descriptor.size,
            "Manifests": pushed.manifests,
            "BlobsUploaded": pushed.blobs_uploaded,
            "BlobsSkipped": pushed.blobs_skipped,
            "BlobsMounted": pushed.blobs_mounted,
            "BytesUploaded": pushed.bytes_uploaded,
            "Referrers": pushed.referrers,
            "ReferrersTagged": pushed.referrers_tagged,
        }))?;
    } else if ctx.quiet {
        writeln!(std::io::stdout().lock(), "{}", pushed.descriptor.digest)?;
    } else {
        // docker push's last line: `TAG: digest: sha256:… size: N`.
        writeln!(
            std::io::stdout().lock(),
            "Pushed {dest_text}: {} blobs uploaded ({}), {} already there, {} mounted\n{}: digest: {} size: {}",
            pushed.blobs_uploaded,
            human_size(pushed.bytes_uploaded),
            pushed.blobs_skipped,
            pushed.blobs_mounted,
            dest.tag().unwrap_or("latest"),
            pushed.descriptor.digest,
            pushed.descriptor.size
        )?;
        if pushed.referrers > 0 {
            writeln!(
                std::io::stdout().lock(),
                "{} referrers pushed ({} through the referrers tag schema)",
                pushed.referrers,
                pushed.referrers_tagged
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn login(ctx: &Ctx, registry: &str, username: &str, password_stdin: bool, args: &RegistryArgs) -> Result<ExitCode> {
    if !password_stdin {
        bail!("strata login reads the password from stdin only: pass --password-stdin");
    }
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("read the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    let credentials = Credentials::new(username, password);
    let file = strata_registry::login(registry, &credentials, &registry_options(args))?;
    if ctx.json {
        print_json(&json!({ "Status": "Login Succeeded", "Registry": registry, "CredentialsFile": file.path() }))?;
    } else if !ctx.quiet {
        eprintln!("Credentials saved in {}", file.path().display());
        writeln!(std::io::stdout().lock(), "Login Succeeded")?;
    }
    Ok(ExitCode::SUCCESS)
}
