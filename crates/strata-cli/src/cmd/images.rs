//! Commands over the store's images: images, inspect, history, tag, rmi, gc, fsck.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};
use strata_image::{RemoveOptions, Removed, human_size};
use strata_spec::ReferenceError;

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
            since(s.created.as_deref().unwrap_or_default()),
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
    let rows = img.history();
    // docker shows the image id on the top row and `<missing>` below (no per-step images).
    let id_at = |i: usize| if i == 0 { Some(img.id().clone()) } else { None };
    if ctx.json {
        let rows: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "Comment": r.comment,
                    "CreatedAt": r.created_at,
                    "CreatedBy": r.created_by,
                    "CreatedSince": since(&r.created_at),
                    "ID": id_at(i).map_or_else(|| "<missing>".to_owned(), |d| d.to_string()),
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
    let mut out = std::io::stdout().lock();
    if ctx.quiet {
        for i in 0..rows.len() {
            let id = id_at(i).map_or_else(|| "<missing>".to_owned(), |d| d.short().to_owned());
            writeln!(out, "{id}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT", "AUTHOR"]);
    for (i, r) in rows.iter().enumerate() {
        let id = match id_at(i) {
            Some(d) if no_trunc => d.to_string(),
            Some(d) => d.short().to_owned(),
            None => "<missing>".to_owned(),
        };
        let by = r.created_by.replace(['\n', '\t'], " ");
        t.row(vec![
            id,
            since(&r.created_at),
            if no_trunc { by } else { truncate(&by, CREATED_BY_WIDTH) },
            human_size(r.size),
            r.comment.clone(),
            r.author.clone(),
        ]);
    }
    t.print(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

pub fn tag(ctx: &Ctx, source: &str, target: &str) -> Result<ExitCode> {
    // The target first, as docker checks it before looking for the source; a name that
    // breaks the grammar is worded as `docker tag` words it.
    if let Err(e) = strata_image::new_tag(target) {
        let grammar = !matches!(
            &e,
            strata_spec::Error::InvalidReference {
                reason: ReferenceError::TagWithDigest | ReferenceError::DigestAlgorithmAsName,
                ..
            }
        );
        if grammar {
            anyhow::bail!("Error parsing reference: {target:?} is not a valid repository/tag: {e}");
        }
        return Err(e.into());
    }
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

/// `docker rmi`: a line per tag removed and per image (and layer stack) deleted, then the
/// names that failed on stderr. Exit 1 when one failed, except that with `-f` names that
/// do not exist are only reported (as docker does).
pub fn rmi(ctx: &Ctx, refs: &[String], force: bool, no_prune: bool) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let names: Vec<&str> = refs.iter().map(String::as_str).collect();
    let report = store.remove(&names, &RemoveOptions::default().force(force).prune(!no_prune))?;
    let lines: Vec<(&str, String)> = report
        .removed
        .iter()
        .filter_map(|r| match r {
            Removed::Untagged(n) => Some(("Untagged", n.clone())),
            Removed::Image(d) | Removed::Layer(d) => Some(("Deleted", d.to_string())),
            _ => None,
        })
        .collect();
    if ctx.json {
        // The shape of docker's API answer (`DELETE /images/{name}`).
        let rows: Vec<Value> = lines.iter().map(|(k, v)| json!({ *k: v })).collect();
        print_json(&rows)?;
    } else if !ctx.quiet {
        let mut out = std::io::stdout().lock();
        for (k, v) in &lines {
            writeln!(out, "{k}: {v}")?;
        }
    }
    let mut fatal = false;
    for (_, e) in report.failed {
        fatal |=
            !force || !matches!(e, strata_image::Error::ImageNotFound(_) | strata_image::Error::AmbiguousId { .. });
        eprintln!("strata: error: {}", crate::error_line(&e.into()));
    }
    Ok(if fatal { ExitCode::FAILURE } else { ExitCode::SUCCESS })
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
