//! A small driver for benchmarks and scripts (benches/image.sh): one library call per
//! subcommand, so that `/usr/bin/time` measures strata and not a shell.
//!
//! ```text
//! image_tool unpack     STORE REF BUNDLE          Image::unpack (rootfs + state + snapshot)
//! image_tool unpack-raw STORE REF DIR             Image::unpack_raw
//! image_tool commit     STORE BUNDLE TAG          Container::commit
//! image_tool diff       STORE BUNDLE              Container::diff, like docker diff
//! image_tool save       STORE FORMAT OUT REF...   Store::save (docker-archive | oci-archive)
//! image_tool load       STORE ARCHIVE             Store::load (creates STORE if needed)
//! image_tool fsck       STORE                     Store::fsck
//! image_tool compare    DIR_A DIR_B               trees equal? (types, contents, modes,
//!                                                 owners, links, xattrs, mtimes, not /)
//! ```

use std::error::Error;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use strata_image::{ArchiveFormat, CommitOptions, Container, Store};
use strata_testkit::{Compare, Tree};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("image_tool: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode, Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["unpack", store, name, bundle] => {
            let c = Store::open(store)?.image(name)?.unpack(bundle)?;
            println!("unpacked {name} into {}", c.dir().display());
        }
        ["unpack-raw", store, name, dir] => {
            let r = Store::open(store)?.image(name)?.unpack_raw(dir, &Default::default())?;
            println!("unpacked {name} into {dir}: {} layers", r.layers.len());
        }
        ["commit", store, bundle, tag] => {
            let store = Store::open(store)?;
            let img = Container::open(&store, bundle)?.commit(&CommitOptions::default().tag(*tag))?;
            println!("committed {tag}: {}", img.id());
        }
        ["diff", store, bundle] => {
            print!("{}", Container::open(&Store::open(store)?, bundle)?.diff()?.docker_diff());
        }
        ["save", store, format, out, names @ ..] => {
            let format: ArchiveFormat = format.parse()?;
            let out_file = BufWriter::with_capacity(1 << 20, File::create(out)?);
            let w = Store::open(store)?.save_seekable(names, format, out_file)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            println!("saved {} to {out}", names.join(", "));
        }
        ["load", store, archive] => {
            for l in Store::open_or_create(store)?.load(File::open(archive)?)? {
                println!("loaded {} {}", l.id, l.names.join(", "));
            }
        }
        ["fsck", store] => {
            let r = Store::open(store)?.fsck()?;
            print!("{r}");
            if !r.is_clean() {
                return Ok(ExitCode::FAILURE);
            }
        }
        ["compare", x, y] => {
            let (tx, ty) = (Tree::capture(x.as_ref())?, Tree::capture(y.as_ref())?);
            let d = tx.diff(&ty, &Compare { dir_mtime: true, ..Compare::default() });
            let mut out = std::io::stdout().lock();
            for line in d.iter().take(50) {
                writeln!(out, "{line}")?;
            }
            writeln!(out, "{} entries, {} differences", tx.entries.len(), d.len())?;
            if !d.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        _ => {
            eprintln!("usage: image_tool unpack|unpack-raw|commit|diff|save|load|fsck|compare ... (see the source)");
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}
