//! Unpack an image of an OCI image layout onto a directory, as `umoci unpack` does for
//! its rootfs (the benchmark driver of `benches/unpack.sh`).
//!
//! usage: unpack_layout LAYOUT TAG DEST [--rootless] [--fallback] [--single-thread]

use std::fs::File;
use std::path::{Path, PathBuf};

use strata_layer::{ApplyOptions, LayerSource, Ownership, Resolver, apply_layers};
use strata_spec::{ANNOTATION_REF_NAME, Descriptor, ImageConfig, Index, Manifest};

fn blob(layout: &Path, d: &Descriptor) -> PathBuf {
    layout.join("blobs").join(d.digest.algorithm().name()).join(d.digest.hex())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [layout, tag, dest, ..] = &args[1..] else {
        eprintln!("usage: unpack_layout LAYOUT TAG DEST [--rootless] [--fallback] [--single-thread]");
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
    let report = apply_layers(Path::new(dest), layers, &opts)?;
    for l in &report.layers {
        println!("{} {} {} bytes, {} entries, {} whiteouts", l.name, l.compression, l.size, l.entries, l.whiteouts);
    }
    println!("resolver {:?}, rootless {}, {} recorded", report.resolver, report.rootless, report.recorded.len());
    Ok(())
}
