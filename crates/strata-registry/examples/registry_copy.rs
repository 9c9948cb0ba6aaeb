//! Copy an image between an OCI layout and a registry (the driver of
//! `benches/registry.sh`).
//!
//! ```text
//! registry_copy pull LAYOUT TAG REFERENCE [--platform OS/ARCH] [--all-platforms] [--insecure] [--tls-ca FILE] [-j N] [-q]
//! registry_copy push LAYOUT TAG REFERENCE [--mount-from REPO] [--insecure] [--tls-ca FILE] [-j N] [-q]
//! ```

use std::process::ExitCode;

use strata_registry::spec::{Platform, Reference};
use strata_registry::store::{Backend, OciDir};
use strata_registry::{Event, PullOptions, PushOptions, RegistryOptions, SkipReason};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry_copy: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: registry_copy pull|push LAYOUT TAG REFERENCE [options]";
    let (Some(cmd), Some(layout), Some(tag), Some(reference)) = (args.next(), args.next(), args.next(), args.next())
    else {
        return Err(usage.into());
    };
    let mut registry = RegistryOptions::default();
    let mut platform = None;
    let mut all_platforms = false;
    let mut mount_from = None;
    let mut quiet = false;
    let mut concurrency = strata_registry::DEFAULT_CONCURRENCY;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--insecure" => registry.insecure = true,
            "--tls-ca" => registry.tls_ca_files.push(args.next().ok_or("--tls-ca FILE")?.into()),
            "--platform" => platform = Some(Platform::parse(&args.next().ok_or("--platform OS/ARCH")?)?),
            "--all-platforms" => all_platforms = true,
            "--mount-from" => mount_from = Some(args.next().ok_or("--mount-from REPO")?),
            "-j" => concurrency = args.next().ok_or("-j N")?.parse()?,
            "-q" => quiet = true,
            other => return Err(format!("unknown option {other:?}; {usage}").into()),
        }
    }
    let reference = Reference::parse(&reference)?;
    let show = move |e: &Event<'_>| {
        if quiet {
            return;
        }
        match e {
            Event::BlobDone { descriptor } => {
                eprintln!("{} done ({} bytes)", descriptor.digest.short(), descriptor.size)
            }
            Event::BlobSkipped { descriptor, reason } => {
                let why = match reason {
                    SkipReason::Present => "already in the store",
                    SkipReason::Exists => "already in the registry",
                    SkipReason::Mounted => "mounted",
                    SkipReason::Foreign => "foreign layer",
                };
                eprintln!("{} skipped: {why}", descriptor.digest.short());
            }
            Event::Retrying { descriptor, attempt, error, .. } => {
                let what = descriptor.map_or_else(String::new, |d| d.digest.short().to_owned());
                eprintln!("{what} retry {attempt}: {error}");
            }
            _ => {}
        }
    };
    match cmd.as_str() {
        "pull" => {
            let store = OciDir::open_or_create(&layout)?;
            let options =
                PullOptions { registry, platform, all_platforms, ref_name: Some(tag), concurrency, referrers: false };
            let pulled = strata_registry::pull(&store, &reference, &options, &show)?;
            println!(
                "pulled {} as {}: {} fetched ({} bytes), {} skipped",
                pulled.reference, pulled.ref_name, pulled.blobs_fetched, pulled.bytes_fetched, pulled.blobs_skipped
            );
        }
        "push" => {
            let store = OciDir::open(&layout)?;
            let source = store.resolve_ref(&tag)?;
            let options = PushOptions { registry, mount_from, concurrency, ..Default::default() };
            let pushed = strata_registry::push(&store, &source, &reference, &options, &show)?;
            println!(
                "pushed {}: {} uploaded ({} bytes), {} already there, {} mounted",
                pushed.reference,
                pushed.blobs_uploaded,
                pushed.bytes_uploaded,
                pushed.blobs_skipped,
                pushed.blobs_mounted
            );
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
