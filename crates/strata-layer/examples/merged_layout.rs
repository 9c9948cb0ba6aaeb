//! The merged view of an image of an OCI image layout: build it, print the layer
//! analysis, list a directory, export the flattened tree (the benchmark driver of
//! `benches/merged.sh`).
//!
//! usage: merged_layout LAYOUT TAG [--export FILE [--gzip] [--inline]] [--ls DIR] [--paths] [--threads N]
//!
//! `--inline` decompresses the layers of the export on the calling thread.
//! `--paths` prints every path of the merged tree with its kind, size and link target
//! (one per line, tab-separated), for comparing with an unpacked tree.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_layer::{EntryKind, ExportOptions, LayerSource, MergeOptions, MergedTree, WriteOptions};
use strata_spec::{ANNOTATION_REF_NAME, Compression, Descriptor, ImageConfig, Index, Manifest};

fn blob(layout: &Path, d: &Descriptor) -> PathBuf {
    layout.join("blobs").join(d.digest.algorithm().name()).join(d.digest.hex())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [layout, tag, ..] = &args[1..] else {
        eprintln!(
            "usage: merged_layout LAYOUT TAG [--export FILE [--gzip] [--inline]] [--ls DIR] [--paths] [--threads N]"
        );
        std::process::exit(2);
    };
    let value = |f: &str| args.iter().position(|a| a == f).and_then(|i| args.get(i + 1)).cloned();
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
    let mut opts = MergeOptions::default();
    if let Some(t) = value("--threads") {
        opts = opts.threads(t.parse()?);
    }
    let t0 = Instant::now();
    let tree = MergedTree::build(layers, &opts)?;
    let built = t0.elapsed();

    if flag("--paths") {
        let mut out = BufWriter::new(std::io::stdout().lock());
        for e in tree.iter() {
            let (kind, target) = match &e.meta.kind {
                EntryKind::File => ("file", String::new()),
                EntryKind::Dir => ("dir", String::new()),
                EntryKind::Symlink { target } => ("symlink", target.display().to_string()),
                EntryKind::CharDevice { .. } => ("char", String::new()),
                EntryKind::BlockDevice { .. } => ("block", String::new()),
                EntryKind::Fifo => ("fifo", String::new()),
                EntryKind::HardLink { .. } => ("hardlink", String::new()),
            };
            let size = if kind == "file" { e.meta.size } else { 0 };
            writeln!(out, "{}\t{kind}\t{size}\t{target}", e.meta.path.display())?;
        }
        return Ok(());
    }

    println!("built the merged tree of {tag}: {} paths in {:.3} s", tree.len(), built.as_secs_f64());
    println!(
        "{:<12} {:>12} {:>12} {:>8} {:>8} {:>12} {:>12}",
        "layer", "blob", "tar", "entries", "files", "added", "wasted"
    );
    for l in tree.layers() {
        println!(
            "{:<12} {:>12} {:>12} {:>8} {:>8} {:>12} {:>12}",
            &l.name.get(7..19).unwrap_or(&l.name),
            l.compressed_size,
            l.uncompressed_size,
            l.entries,
            l.files,
            l.bytes_added,
            l.bytes_wasted
        );
    }
    let a = tree.analysis();
    println!(
        "image: {} bytes added, {} wasted, {} in the final tree ({} files, {} paths), efficiency {:.4}",
        a.bytes_added, a.bytes_wasted, a.final_bytes, a.files, a.paths, a.efficiency
    );
    if let Some(dir) = value("--ls") {
        for e in tree.list(&dir)? {
            println!(
                "{:?} {:o} {}:{} {} {}",
                e.meta.kind,
                e.meta.mode,
                e.meta.uid,
                e.meta.gid,
                e.meta.size,
                e.meta.path.display()
            );
        }
    }
    if let Some(out) = value("--export") {
        let compression = if flag("--gzip") { Compression::Gzip } else { Compression::None };
        let open = |i: usize| File::open(blob(layout, &manifest.layers[i]));
        let t1 = Instant::now();
        let sink = BufWriter::with_capacity(1 << 20, File::create(&out)?);
        let mut export = ExportOptions::default();
        if flag("--inline") {
            export = export.threads(false);
        }
        let (info, report) = tree.export(sink, &WriteOptions::default().compression(compression), open, &export)?;
        println!(
            "exported {} entries ({} hard links, {} content bytes, {} spooled, {} layers read) in {:.3} s: {} bytes, diff_id {}",
            report.entries,
            report.hardlinks,
            report.content_bytes,
            report.spooled_bytes,
            report.layers_read,
            t1.elapsed().as_secs_f64(),
            info.size,
            info.diff_id
        );
    }
    Ok(())
}
