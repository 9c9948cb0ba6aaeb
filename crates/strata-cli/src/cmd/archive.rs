//! Archives and images made from inputs: save, load, import, append, config.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use strata_image::{ArchiveFormat, LayerInput};

use super::container::print_new_image;
use crate::cli::{CommitMeta, Format};
use crate::ctx::Ctx;
use crate::outfile::OutputFile;
use crate::output::print_json;
use crate::progress::{Bars, CountingReader, CountingWriter};

/// Buffer for archive output: tar entries are written in 512-byte pieces.
const WRITE_BUFFER: usize = 1 << 20;

fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

pub fn save(ctx: &Ctx, refs: &[String], output: Option<&Path>, format: Format) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    // Every name must resolve before anything is written.
    let mut blob_bytes = 0;
    for r in refs {
        blob_bytes += store.image(r)?.stored_size();
    }
    let to_stdout = match output {
        Some(p) => is_dash(p),
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write an archive to a terminal: pass -o FILE, or redirect stdout")
        }
        None => true,
    };
    let (format, total) = match format {
        // Layers are written uncompressed: their size is not known beforehand.
        Format::DockerArchive => (ArchiveFormat::DockerArchive, None),
        // Blobs as stored, plus a few small headers and files.
        Format::OciArchive => (ArchiveFormat::OciArchive, Some(blob_bytes)),
    };
    let names: Vec<&str> = refs.iter().map(String::as_str).collect();
    let bar = Bars::new(ctx).bytes("saving", total);
    match output.filter(|_| !to_stdout) {
        None => {
            let out = CountingWriter { inner: BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout().lock()), bar };
            let mut out = store.save(&names, format, out)?;
            out.flush().context("write archive to stdout")?;
            out.bar.finish_and_clear();
        }
        Some(path) => {
            // Written beside the target and renamed into place: no half archive on failure.
            let target = OutputFile::create(path, ".strata-save-")?;
            let out = CountingWriter { inner: BufWriter::with_capacity(WRITE_BUFFER, target.file()), bar };
            // A file can seek: layers stream into it and their headers are patched after.
            let mut out = if target.seekable() {
                store.save_seekable(&names, format, out)?
            } else {
                store.save(&names, format, out)?
            };
            out.flush().with_context(|| format!("write {}", path.display()))?;
            out.bar.finish_and_clear();
            drop(out);
            target.commit()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn load(ctx: &Ctx, input: Option<&Path>) -> Result<ExitCode> {
    let (reader, total): (Box<dyn Read>, Option<u64>) = match input.filter(|p| !is_dash(p)) {
        Some(p) => {
            let f = File::open(p).with_context(|| format!("open {}", p.display()))?;
            let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            (Box::new(f), len)
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("no archive to load: pass -i FILE, or pipe one to stdin");
            }
            (Box::new(std::io::stdin().lock()), None)
        }
    };
    let store = ctx.write_store()?;
    let bar = Bars::new(ctx).bytes("loading", total);
    let loaded = store.load(CountingReader { inner: reader, bar: bar.clone() })?;
    bar.finish_and_clear();
    if ctx.json {
        let rows: Vec<Value> = loaded
            .iter()
            .map(|l| json!({ "Names": l.names, "ID": l.id.to_string(), "Digest": l.manifest.digest.to_string() }))
            .collect();
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for l in &loaded {
        if ctx.quiet {
            writeln!(out, "{}", l.id)?;
        } else if l.names.is_empty() {
            writeln!(out, "Loaded image ID: {}", l.id)?;
        }
        for n in l.names.iter().filter(|_| !ctx.quiet) {
            writeln!(out, "Loaded image: {n}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A layer input the user named: a directory, a tar file, or `-` for stdin. The tar is
/// read through a byte bar.
enum Input {
    Dir(std::path::PathBuf),
    Tar(CountingReader<Box<dyn Read>>),
}

impl Input {
    fn open(ctx: &Ctx, source: &Path, what: &str) -> Result<Input> {
        if is_dash(source) {
            if std::io::stdin().is_terminal() {
                bail!("no tar on stdin: pipe one in, or name a tar file or directory");
            }
            let bar = Bars::new(ctx).bytes(what, None);
            return Ok(Input::Tar(CountingReader { inner: Box::new(std::io::stdin().lock()), bar }));
        }
        let md = std::fs::metadata(source).with_context(|| format!("open {}", source.display()))?;
        if md.is_dir() {
            return Ok(Input::Dir(source.to_path_buf()));
        }
        let f = File::open(source).with_context(|| format!("open {}", source.display()))?;
        let bar = Bars::new(ctx).bytes(what, md.is_file().then_some(md.len()));
        Ok(Input::Tar(CountingReader { inner: Box::new(f), bar }))
    }

    /// The library's view, and a spinner for a directory (its size is not known).
    fn with<T>(&mut self, ctx: &Ctx, what: &str, f: impl FnOnce(LayerInput<'_>) -> Result<T>) -> Result<T> {
        match self {
            Input::Dir(p) => {
                let bar = Bars::new(ctx).spinner(&format!("{what} {}", p.display()));
                let r = f(LayerInput::Dir(p.as_path()));
                bar.finish_and_clear();
                r
            }
            Input::Tar(r) => {
                let bar = r.bar.clone();
                let out = f(LayerInput::Tar(r));
                bar.finish_and_clear();
                out
            }
        }
    }
}

pub fn import(ctx: &Ctx, source: &Path, new_ref: &str, meta: &CommitMeta) -> Result<ExitCode> {
    let opts = super::commit_options(meta, new_ref)?;
    let mut input = Input::open(ctx, source, "importing")?;
    let store = ctx.write_store()?;
    let img = input.with(ctx, "importing", |i| Ok(store.import(i, &opts)?))?;
    print_new_image(ctx, &img)
}

pub fn append(ctx: &Ctx, reference: &str, source: &Path, new_ref: &str, meta: &CommitMeta) -> Result<ExitCode> {
    let opts = super::commit_options(meta, new_ref)?;
    let base = ctx.read_store()?.image(reference)?;
    let mut input = Input::open(ctx, source, "appending")?;
    let img = input.with(ctx, "appending", |i| Ok(base.append(i, &opts)?))?;
    print_new_image(ctx, &img)
}

pub fn config(ctx: &Ctx, reference: &str, new_ref: &str, meta: &CommitMeta) -> Result<ExitCode> {
    let opts = super::commit_options(meta, new_ref)?;
    let base = ctx.read_store()?.image(reference)?;
    let img = base.with_config(&opts)?;
    print_new_image(ctx, &img)
}
