//! A small driver for benchmarks and manual checks of the writing side.
//!
//! ```text
//! layer_tool tree     ROOT OUT [opts]        write ROOT as one layer (write_tree)
//! layer_tool snapshot ROOT SNAP              capture a snapshot of ROOT into SNAP
//! layer_tool since    SNAP ROOT OUT [opts]   load SNAP, diff ROOT against it, write the layer
//! layer_tool trees    LOWER UPPER OUT [opts] diff two trees, write the layer
//! layer_tool overlay  UPPERDIR OUT [opts]    diff an overlayfs upper dir, write the layer
//! layer_tool reencode TAR OUT [opts]         hash and compress an existing tar
//! opts: --gzip|--zstd|--none  --level N  --threads N  --block-size BYTES
//! ```
//!
//! OUT may be `-` for stdout. Prints one line of `key=value` facts (sizes, digests,
//! change counts, milliseconds per phase) to stderr.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use strata_layer::diff::{self, DiffOptions};
use strata_layer::{LayerInfo, Snapshot, WriteOptions};
use strata_spec::Compression;

fn usage() -> ! {
    eprintln!(
        "usage: layer_tool tree|snapshot|since|trees|overlay|reencode ARGS... [--gzip|--zstd|--none] [--level N] [--threads N] [--block-size B]"
    );
    std::process::exit(2)
}

fn sink(out: &str) -> Box<dyn Write> {
    if out == "-" {
        Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock()))
    } else {
        Box::new(BufWriter::with_capacity(1 << 20, File::create(out).unwrap_or_else(|e| panic!("create {out}: {e}"))))
    }
}

fn report(what: &str, info: &LayerInfo, extra: &str, ms: f64) {
    eprintln!(
        "{what}: {extra} entries={} tar_bytes={} blob_bytes={} diff_id={} digest={} total_ms={ms:.1}",
        info.entries, info.uncompressed_size, info.size, info.diff_id, info.digest
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = WriteOptions::default();
    let mut i = 0;
    while i < args.len() {
        let take = |args: &mut Vec<String>, i: usize| -> String {
            let v = args.get(i + 1).cloned().unwrap_or_else(|| usage());
            args.drain(i..=i + 1);
            v
        };
        match args[i].as_str() {
            "--gzip" | "--zstd" | "--none" => {
                opts = opts.compression(match args.remove(i).as_str() {
                    "--gzip" => Compression::Gzip,
                    "--zstd" => Compression::Zstd,
                    _ => Compression::None,
                });
            }
            "--level" => opts = opts.level(take(&mut args, i).parse()?),
            "--threads" => opts = opts.threads(take(&mut args, i).parse()?),
            "--block-size" => opts = opts.block_size(take(&mut args, i).parse()?),
            _ => i += 1,
        }
    }
    let a = |n: usize| args.get(n).map(String::as_str).unwrap_or_else(|| usage());
    let t0 = Instant::now();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    match a(0) {
        "tree" => {
            let (info, _) = strata_layer::write_tree(Path::new(a(1)), sink(a(2)), &opts)?;
            report("tree", &info, "", ms(t0));
        }
        "snapshot" => {
            let snap = Snapshot::capture(Path::new(a(1)))?;
            let t1 = Instant::now();
            let bytes = snap.to_bytes();
            std::fs::write(a(2), &bytes)?;
            eprintln!(
                "snapshot: entries={} bytes={} capture_ms={:.1} save_ms={:.1}",
                snap.len(),
                bytes.len(),
                t1.duration_since(t0).as_secs_f64() * 1000.0,
                ms(t1)
            );
        }
        "since" => {
            let bytes = std::fs::read(a(1))?;
            let snap = Snapshot::from_bytes(&bytes)?;
            let t1 = Instant::now();
            let changes = diff::since(&snap, Path::new(a(2)), &DiffOptions::default())?;
            let t2 = Instant::now();
            let info = changes.write_layer(Path::new(a(2)), sink(a(3)), &opts)?;
            let extra = format!(
                "changes={} load_ms={:.1} diff_ms={:.1} write_ms={:.1}",
                changes.len(),
                t1.duration_since(t0).as_secs_f64() * 1000.0,
                t2.duration_since(t1).as_secs_f64() * 1000.0,
                ms(t2)
            );
            report("since", &info, &extra, ms(t0));
        }
        "trees" => {
            let changes = diff::trees(Path::new(a(1)), Path::new(a(2)), &DiffOptions::default())?;
            let t1 = Instant::now();
            let info = changes.write_layer(Path::new(a(2)), sink(a(3)), &opts)?;
            let extra =
                format!("changes={} diff_ms={:.1}", changes.len(), t1.duration_since(t0).as_secs_f64() * 1000.0);
            report("trees", &info, &extra, ms(t0));
        }
        "overlay" => {
            let changes = diff::overlay(Path::new(a(1)), &DiffOptions::default())?;
            let info = changes.write_layer(Path::new(a(1)), sink(a(2)), &opts)?;
            report("overlay", &info, &format!("changes={}", changes.len()), ms(t0));
        }
        "reencode" => {
            let input = std::io::BufReader::with_capacity(1 << 20, File::open(a(1))?);
            let info = strata_layer::reencode_tar(input, sink(a(2)), &opts)?;
            report("reencode", &info, "", ms(t0));
        }
        _ => usage(),
    }
    Ok(())
}
