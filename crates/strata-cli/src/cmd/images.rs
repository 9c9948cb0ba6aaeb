//! Commands over the store's images: images, inspect, history, tag, rmi, gc, fsck.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};
use strata_image::human_size;

use crate::ctx::Ctx;
use crate::output::{Table, docker_time, print_json, since, truncate};

/// docker's width of the CREATED BY column.
const CREATED_BY_WIDTH: usize = 45;

pub fn images(ctx: &Ctx, no_trunc: bool) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let list = store.images()?;
    let id_of = |d: &strata_spec::Digest| if no_trunc { d.to_string() } else { d.short().to_owned() };
    for s in &list {
        if let Some(p) = &s.problem {
            eprintln!("strata: warning: {} ({}): {p}", s.name.as_deref().unwrap_or("<none>"), s.digest);
        }
    }
    if ctx.json {
        let rows: Vec<Value> = list
            .iter()
            .map(|s| {
                let created = s.created.clone().unwrap_or_default();
                json!({
                    "Containers": "N/A",
                    "CreatedAt": docker_time(&created),
                    "CreatedSince": since(&created),
                    "Digest": s.digest.to_string(),
                    "ID": s.id.as_ref().map(id_of).unwrap_or_default(),
                    "Repository": s.repository,
                    "SharedSize": "N/A",
                    "Size": human_size(s.size),
                    "Tag": s.tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human_size(s.size),
                    // Not in docker's output: exact figures for scripts.
                    "Name": s.name,
                    "Created": created,
                    "SizeBytes": s.size,
                    "StoredSizeBytes": s.stored_size,
                    "Problem": s.problem,
                })
            })
            .collect();
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if ctx.quiet {
        let mut seen = Vec::new();
        for s in &list {
            if let Some(id) = &s.id
                && !seen.contains(&id)
            {
                seen.push(id);
                writeln!(out, "{}", id_of(id))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    for s in &list {
        t.row(vec![
            s.repository.clone(),
            s.tag.clone(),
            s.id.as_ref().map_or_else(|| "<unreadable>".to_owned(), id_of),
            or_na(since(s.created.as_deref().unwrap_or_default())),
            human_size(s.size),
        ]);
    }
    t.print(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(ctx: &Ctx, refs: &[String]) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let mut found = Vec::new();
    let mut failed = None;
    for r in refs {
        match store.image(r).and_then(|img| img.inspect()) {
            Ok(i) => found.push(i),
            Err(e) => {
                eprintln!("strata: error: {}", crate::error_line(&e.into()));
                failed = Some(());
            }
        }
    }
    // Like `docker inspect`: the images found, as an array, even when some were not.
    print_json(&found)?;
    Ok(if failed.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn history(ctx: &Ctx, reference: &str, no_trunc: bool) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let img = store.image(reference)?;
    let rows = img.history()?;
    let missing = || "<missing>".to_owned();
    if ctx.json {
        let rows: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "Comment": r.comment,
                    "CreatedAt": r.created_at,
                    "CreatedBy": r.created_by,
                    "CreatedSince": since(&r.created_at),
                    "ID": r.image.as_ref().map_or_else(missing, ToString::to_string),
                    "Size": human_size(r.size),
                    // Not in docker's output.
                    "Author": r.author,
                    "SizeBytes": r.size,
                    "EmptyLayer": r.empty_layer,
                    "Layer": r.id,
                })
            })
            .collect();
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let id_of = |d: &strata_spec::Digest| if no_trunc { d.to_string() } else { d.short().to_owned() };
    let mut out = std::io::stdout().lock();
    if ctx.quiet {
        for r in &rows {
            writeln!(out, "{}", r.image.as_ref().map_or_else(missing, id_of))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // docker's columns; the author is in --json.
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for r in &rows {
        // docker turns tabs into spaces; strata newlines too, which would break the table.
        let by = r.created_by.replace(['\n', '\t'], " ");
        t.row(vec![
            r.image.as_ref().map_or_else(missing, id_of),
            or_na(since(&r.created_at)),
            if no_trunc { by } else { truncate(&by, CREATED_BY_WIDTH) },
            human_size(r.size),
            r.comment.clone(),
        ]);
    }
    t.print(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// `N/A` for a time docker does not have, as its tables show it.
fn or_na(since: String) -> String {
    if since.is_empty() { "N/A".to_owned() } else { since }
}

pub fn tag(ctx: &Ctx, source: &str, target: &str) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let img = store.image(source)?;
    let store = ctx.write_store()?;
    let stored = store.tag(&img, target)?;
    // Silent, like `docker tag`; --json says what was stored.
    if ctx.json {
        print_json(
            &json!({ "Tag": stored, "ID": img.id().to_string(), "Digest": img.tag_target().digest.to_string() }),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(ctx: &Ctx, refs: &[String]) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    // Like docker: every name that resolves is removed; the others are reported.
    let mut ok = Vec::new();
    let mut failed = false;
    for r in refs {
        match store.image(r) {
            Ok(_) => ok.push(r.as_str()),
            Err(e) => {
                eprintln!("strata: error: {}", crate::error_line(&e.into()));
                failed = true;
            }
        }
    }
    let mut lines: Vec<Value> = Vec::new();
    if !ok.is_empty() {
        let report = store.remove(&ok)?;
        for (name, _) in &report.untagged {
            lines.push(json!({ "Untagged": name }));
        }
        for (d, _) in report.gc.iter().flat_map(|g| &g.removed) {
            lines.push(json!({ "Deleted": d.to_string() }));
        }
    }
    if ctx.json {
        print_json(&lines)?;
    } else if !ctx.quiet {
        let mut out = std::io::stdout().lock();
        for l in &lines {
            if let Some(Value::String(n)) = l.get("Untagged") {
                writeln!(out, "Untagged: {n}")?;
            } else if let Some(Value::String(d)) = l.get("Deleted") {
                writeln!(out, "Deleted: {d}")?;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn gc(ctx: &Ctx, dry_run: bool) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let r = store.gc(dry_run)?;
    if ctx.json {
        print_json(&json!({
            "DryRun": r.dry_run,
            "Kept": r.kept,
            "Removed": r.removed.iter().map(|(d, s)| json!({ "Digest": d.to_string(), "Size": s })).collect::<Vec<_>>(),
            "RemovedBytes": r.removed_bytes,
            "TempFilesRemoved": r.temp_removed.iter().map(|t| json!({ "Path": t.path, "Size": t.size })).collect::<Vec<_>>(),
            "SpaceReclaimed": r.freed_bytes(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let verb = if dry_run { "Would remove" } else { "Removed" };
    for (d, s) in &r.removed {
        writeln!(out, "{verb} {d} ({})", human_size(*s))?;
    }
    for t in &r.temp_removed {
        writeln!(out, "{verb} temp file {} ({})", t.path.display(), human_size(t.size))?;
    }
    let reclaim = if dry_run { "would be reclaimed" } else { "reclaimed" };
    writeln!(
        out,
        "{} blobs kept, {} removed{}; {} {reclaim}",
        r.kept,
        r.removed.len(),
        if r.temp_removed.is_empty() { String::new() } else { format!(" and {} temp files", r.temp_removed.len()) },
        human_size(r.freed_bytes())
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn fsck(ctx: &Ctx) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let r = store.fsck()?;
    if ctx.json {
        print_json(&json!({
            "Clean": r.is_clean(),
            "BlobsChecked": r.blobs_checked,
            "BytesChecked": r.bytes_checked,
            "DescriptorsChecked": r.descriptors_checked,
            "Problems": r.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "TempFiles": r.temp_files.iter().map(|t| json!({ "Path": t.path, "Size": t.size, "InUse": t.in_use })).collect::<Vec<_>>(),
        }))?;
    } else if !ctx.quiet || !r.is_clean() {
        let mut out = std::io::stdout().lock();
        write!(out, "{r}")?;
        if r.is_clean() {
            writeln!(out, "store is clean")?;
        }
    }
    Ok(if r.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
