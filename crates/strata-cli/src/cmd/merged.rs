//! Commands over an image's merged tree, without unpacking: ls, cat, export, layers,
//! flatten.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use strata_image::human_size;
use strata_layer::{EntryKind, MergedEntry};

use super::container::print_new_image;
use crate::ctx::Ctx;
use crate::format::{Format, Listing};
use crate::outfile::OutputFile;
use crate::output::{print_json, truncate};
use crate::progress::{Bars, CountingWriter};

/// `-rwxr-xr-x` for an entry.
fn mode_string(e: &MergedEntry) -> String {
    let t = match e.meta.kind {
        EntryKind::Dir => 'd',
        EntryKind::Symlink { .. } => 'l',
        EntryKind::CharDevice { .. } => 'c',
        EntryKind::BlockDevice { .. } => 'b',
        EntryKind::Fifo => 'p',
        EntryKind::File | EntryKind::HardLink { .. } => '-',
    };
    let m = e.meta.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |x: char, set: bool, special_set: bool, s: char, big: char| match (set, special_set) {
        (true, true) => s,
        (false, true) => big,
        (true, false) => x,
        (false, false) => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special('x', m & 0o100 != 0, m & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special('x', m & 0o010 != 0, m & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special('x', m & 0o001 != 0, m & 0o1000 != 0, 't', 'T'));
    s
}

fn entry_json(e: &MergedEntry) -> serde_json::Value {
    let (kind, target, device) = match &e.meta.kind {
        EntryKind::Symlink { target } => ("symlink", Some(target.display().to_string()), None),
        EntryKind::CharDevice { major, minor } => ("char", None, Some(format!("{major}:{minor}"))),
        EntryKind::BlockDevice { major, minor } => ("block", None, Some(format!("{major}:{minor}"))),
        k => (k.name(), None, None),
    };
    json!({
        "Path": format!("/{}", e.meta.path.display()),
        "Type": kind,
        "Mode": format!("{:04o}", e.meta.mode),
        "Uid": e.meta.uid,
        "Gid": e.meta.gid,
        "Size": e.meta.size,
        "Mtime": strata_spec::time::format_rfc3339(e.meta.mtime.sec, e.meta.mtime.nsec),
        "LinkTarget": target,
        "Device": device,
        "Nlink": e.nlink,
        "Layer": e.layer,
    })
}

/// `ls` rows: the entry as `--json` has it, and the table's columns as shown.
const LS: Listing = Listing {
    row_type: "ls entry",
    headers: &[
        ("Mode", "MODE"),
        ("Owner", "OWNER"),
        ("Size", "SIZE"),
        ("Modified", "MODIFIED"),
        ("Name", "NAME"),
        ("Path", "PATH"),
        ("Type", "TYPE"),
        ("Uid", "UID"),
        ("Gid", "GID"),
        ("LinkTarget", "TARGET"),
        ("Layer", "LAYER"),
    ],
};

const LS_TABLE: &str = "table {{.Mode}}\t{{.Owner}}\t{{.Size}}\t{{.Modified}}\t{{.Name}}";

fn ls_row(e: &MergedEntry) -> serde_json::Value {
    let name = e.meta.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
    let name = match &e.meta.kind {
        EntryKind::Symlink { target } => format!("{name} -> {}", target.display()),
        _ => name,
    };
    let size = match e.meta.kind {
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            format!("{major}, {minor}")
        }
        _ => e.meta.size.to_string(),
    };
    let mtime = strata_spec::time::format_rfc3339(e.meta.mtime.sec, 0);
    let mtime = mtime.get(..16).unwrap_or(&mtime).replace('T', " ");
    let mut row = entry_json(e);
    row["Mode"] = json!(mode_string(e));
    row["Owner"] = json!(format!("{}:{}", e.meta.uid, e.meta.gid));
    row["Size"] = json!(size);
    row["Modified"] = json!(mtime);
    row["Name"] = json!(name);
    row["LinkTarget"] = json!(row["LinkTarget"].as_str().unwrap_or_default());
    row["Layer"] = json!(row["Layer"].to_string());
    row
}

pub fn ls(ctx: &Ctx, reference: &str, path: Option<&str>, format: Option<&str>) -> Result<ExitCode> {
    let img = ctx.read_store()?.image(reference)?;
    let view = img.merged()?;
    let path = path.unwrap_or("/");
    let entry = view.stat(path)?;
    let entries = if matches!(entry.meta.kind, EntryKind::Dir) { view.list(path)? } else { vec![entry] };
    if ctx.json {
        return print_json(&entries.iter().map(entry_json).collect::<Vec<_>>()).map(|_| ExitCode::SUCCESS);
    }
    let rows: Vec<serde_json::Value> = entries.iter().map(ls_row).collect();
    Format::parse(format.unwrap_or(LS_TABLE), LS_TABLE)?.print(&LS, &rows, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

pub fn cat(ctx: &Ctx, reference: &str, path: &str) -> Result<ExitCode> {
    let img = ctx.read_store()?.image(reference)?;
    let view = img.merged()?;
    let mut reader = view.read_file(path)?;
    let mut out = std::io::stdout().lock();
    match std::io::copy(&mut reader, &mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).with_context(|| format!("read {path} of {reference}")),
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn export(ctx: &Ctx, reference: &str, output: Option<&Path>) -> Result<ExitCode> {
    let img = ctx.read_store()?.image(reference)?;
    let to_stdout = match output {
        Some(p) => p.as_os_str() == "-",
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write a tar to a terminal: pass -o FILE, or redirect stdout")
        }
        None => true,
    };
    let bar = Bars::new(ctx).bytes("exporting", None);
    if to_stdout {
        let out = CountingWriter { inner: BufWriter::with_capacity(1 << 20, std::io::stdout().lock()), bar };
        let (_, _) = img.export(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let path: PathBuf = output.map(Path::to_path_buf).unwrap_or_default();
    let target = OutputFile::create(&path, ".strata-export-")?;
    {
        let mut out = CountingWriter { inner: BufWriter::with_capacity(1 << 20, target.file()), bar };
        img.export(&mut out)?;
        out.flush().with_context(|| format!("write {}", path.display()))?;
        out.bar.finish_and_clear();
    }
    target.commit()?;
    Ok(ExitCode::SUCCESS)
}

/// `layers` rows: the table's columns, and the layer's full digest.
const LAYERS: Listing = Listing {
    row_type: "layers row",
    headers: &[
        ("Layer", "LAYER"),
        ("Size", "SIZE"),
        ("Unpacked", "UNPACKED"),
        ("Files", "FILES"),
        ("Added", "ADDED"),
        ("Wasted", "WASTED"),
        ("CreatedBy", "CREATED BY"),
        ("Digest", "DIGEST"),
    ],
};

const LAYERS_TABLE: &str =
    "table {{.Layer}}\t{{.Size}}\t{{.Unpacked}}\t{{.Files}}\t{{.Added}}\t{{.Wasted}}\t{{.CreatedBy}}";

pub fn layers(ctx: &Ctx, reference: &str, format: Option<&str>) -> Result<ExitCode> {
    let img = ctx.read_store()?.image(reference)?;
    let spinner = Bars::new(ctx).spinner("reading layers");
    let a = img.analyze()?;
    spinner.finish_and_clear();
    if ctx.json {
        print_json(&a)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<serde_json::Value> = a
        .layers
        .iter()
        .map(|l| {
            json!({
                "Layer": l.digest.short(),
                "Size": human_size(l.size),
                "Unpacked": human_size(l.uncompressed_size),
                "Files": l.files.to_string(),
                "Added": human_size(l.bytes_added),
                "Wasted": human_size(l.bytes_wasted),
                "CreatedBy": truncate(&l.created_by, 45),
                "Digest": l.digest.to_string(),
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    Format::parse(format.unwrap_or(LAYERS_TABLE), LAYERS_TABLE)?.print(&LAYERS, &rows, &mut out)?;
    if format.is_none() {
        writeln!(
            out,
            "\n{} layers, {} stored; {} added, {} wasted (deleted or overwritten by a later layer); efficiency {:.1}%",
            a.layers.len(),
            human_size(a.size),
            human_size(a.bytes_added),
            human_size(a.bytes_wasted),
            a.efficiency * 100.0
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn flatten(ctx: &Ctx, reference: &str, new_ref: &str) -> Result<ExitCode> {
    let store = ctx.write_store()?;
    let img = store.image(reference)?;
    let spinner = Bars::new(ctx).spinner("flattening");
    let flat = img.flatten(&strata_image::CommitOptions::default().tag(new_ref))?;
    spinner.finish_and_clear();
    print_new_image(ctx, &flat)
}
