//! Unpack an image of an OCI image layout onto a directory, as `umoci unpack` does for
//! its rootfs (the benchmark driver of `benches/unpack.sh`).
//!
//! usage: unpack_layout LAYOUT TAG DEST [--rootless] [--fallback] [--single-thread]
//!        [--plan auto|always|never]
//!
//! `--plan`: read the layers' headers first and skip the files a later layer deletes or
//! replaces (`auto`, the default: when every layer is an uncompressed tar, as
//! strata-image does; `always`: decompressing compressed layers twice).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_layer::{ApplyOptions, LayerSource, Limits, MergeOptions, Ownership, Plan, Resolver, apply_layers};
use strata_spec::{ANNOTATION_REF_NAME, Compression, Descriptor, ImageConfig, Index, Manifest};

fn blob(layout: &Path, d: &Descriptor) -> PathBuf {
    layout.join("blobs").join(d.digest.algorithm().name()).join(d.digest.hex())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [layout, tag, dest, ..] = &args[1..] else {
        eprintln!(
            "usage: unpack_layout LAYOUT TAG DEST [--rootless] [--fallback] [--single-thread] [--plan auto|always|never]"
        );
        std::process::exit(2);
    };
    let flag = |f: &str| args.iter().any(|a| a == f);
    let layout = Path::new(layout);
    let index = Index::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let desc = index
        .manifests
        .iter()
        .find(|d| d.annotation(ANNOTATION_REF_NAME) == Some(tag.as_str()))
        .ok_or_else(|| format!("no tag {tag} in {}", layout.display()))?;
    let manifest = Manifest::from_slice(&std::fs::read(blob(layout, desc))?)?;
    let config = ImageConfig::from_slice(&std::fs::read(blob(layout, &manifest.config))?)?;
    let diff_ids = config.rootfs.diff_ids.clone();
    let mut layers = Vec::new();
    for (i, l) in manifest.layers.iter().enumerate() {
        layers.push(LayerSource::from_descriptor(l, diff_ids.get(i).cloned(), File::open(blob(layout, l))?));
    }
    let mut opts = ApplyOptions::default();
    if flag("--rootless") {
        opts = opts.ownership(Ownership::Record);
    }
    if flag("--fallback") {
        opts = opts.resolver(Resolver::Fallback);
    }
    if flag("--single-thread") {
        opts = opts.single_thread(true);
    }
    let mode = args.iter().position(|a| a == "--plan").and_then(|i| args.get(i + 1)).map_or("auto", String::as_str);
    let plain = manifest.layers.iter().all(|l| l.media_type.layer_compression() == Some(Compression::None));
    let sources = |i: usize, l: &Descriptor| -> std::io::Result<LayerSource<File>> {
        Ok(LayerSource::from_descriptor(l, diff_ids.get(i).cloned(), File::open(blob(layout, l))?))
    };
    let plan = match mode {
        "never" => None,
        _ if manifest.layers.len() < 2 || (mode == "auto" && !plain) => None,
        "auto" | "always" if plain => {
            let mut tars = Vec::new();
            for (i, l) in manifest.layers.iter().enumerate() {
                let s = sources(i, l)?;
                tars.push(LayerSource {
                    reader: BufReader::new(s.reader),
                    compression: s.compression,
                    diff_id: s.diff_id,
                    name: s.name,
                });
            }
            Some(Plan::from_tars(tars, &Limits::default())?)
        }
        "always" => {
            let all: std::io::Result<Vec<_>> = manifest.layers.iter().enumerate().map(|(i, l)| sources(i, l)).collect();
            Some(Plan::from_layers(all?, &MergeOptions::default())?)
        }
        other => return Err(format!("--plan {other:?}: auto, always or never").into()),
    };
    if let Some(plan) = plan {
        println!("plan: {} entries, {} bytes not to write", plan.skipped_entries(), plan.skipped_bytes());
        opts = opts.plan(Arc::new(plan));
    }
    let report = apply_layers(Path::new(dest), layers, &opts)?;
    for l in &report.layers {
        println!(
            "{} {} {} bytes, {} entries, {} whiteouts, {} skipped ({} bytes)",
            l.name, l.compression, l.size, l.entries, l.whiteouts, l.skipped, l.skipped_bytes
        );
    }
    println!("resolver {:?}, rootless {}, {} recorded", report.resolver, report.rootless, report.recorded.len());
    Ok(())
}
