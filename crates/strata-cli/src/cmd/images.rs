//! Commands over the store's images: images, inspect, history, tag, rmi, gc, fsck.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};
use strata_image::{Image, ImageSummary, RemoveOptions, Removed, Store, human_size};
use strata_spec::time::parse_rfc3339;
use strata_spec::{Digest, ReferenceError};
use strata_template::{MissingKey, Options, Root, Schema, Template};

use crate::ctx::Ctx;
use crate::filter::ImageFilters;
use crate::format::{Format, Listing, template_error, write_table};
use crate::output::{docker_time, print_json, since, truncate};

/// docker's width of the CREATED BY column.
const CREATED_BY_WIDTH: usize = 45;

/// How `images` lists: filters, digests, full ids, format.
pub struct ListImages {
    pub filters: ImageFilters,
    /// Intermediate images too (`-a`).
    pub all: bool,
    pub digests: bool,
    pub no_trunc: bool,
    pub format: Option<String>,
}

/// docker's `images` rows: each field and its column header.
const IMAGES: Listing = Listing {
    row_type: "*formatter.imageContext",
    headers: &[
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ],
};

/// docker's default `images` table, and the one `--digests` asks for.
const IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

/// docker's `raw` format of `images`.
const IMAGES_RAW: &str = "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n";
const IMAGES_RAW_DIGESTS: &str = "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n";

/// The cells of an `images` row that depend on the image alone, worked out once per
/// image: a big store has many tags per image (250,000 rows of 2,000 images), and the
/// times and sizes are the slow part of a row.
struct ImageCells {
    id: String,
    created_at: String,
    created_since: String,
    size: String,
}

/// The [`ImageCells`] of each image, by image id (`None`: the unreadable images, which
/// have no creation time and no size).
#[derive(Default)]
struct CellCache(HashMap<Option<Digest>, ImageCells>);

impl CellCache {
    fn cells(&mut self, s: &ImageSummary, no_trunc: bool) -> &ImageCells {
        self.0.entry(s.id.clone()).or_insert_with(|| {
            let created = s.created.as_deref().unwrap_or_default();
            ImageCells {
                id: match &s.id {
                    Some(d) if no_trunc => d.to_string(),
                    Some(d) => d.short().to_owned(),
                    None => "<unreadable>".to_owned(),
                },
                created_at: docker_time(created),
                created_since: or_na(since(created)),
                size: human_size(s.size),
            }
        })
    }
}

/// An `images` row with docker's fields. `digest`: the repository's digest, or `<none>`.
fn image_row(s: &ImageSummary, cells: &ImageCells, digest: String) -> Value {
    json!({
        "Containers": "N/A",
        "CreatedAt": cells.created_at,
        "CreatedSince": cells.created_since,
        "Digest": digest,
        "ID": cells.id,
        "Repository": s.repository,
        "SharedSize": "N/A",
        "Size": cells.size,
        "Tag": s.tag,
        "UniqueSize": "N/A",
        "VirtualSize": cells.size,
    })
}

/// docker's default `images` table (`IMAGES_TABLE`) written straight from the rows,
/// without a JSON row and a template run per row: the same text, in a tenth of the time
/// on a big store.
fn default_table(list: &[&ImageSummary], no_trunc: bool, out: &mut impl Write) -> Result<()> {
    let mut cache = CellCache::default();
    let mut body = String::new();
    for s in list {
        let c = cache.cells(s, no_trunc);
        for cell in [&s.repository, &s.tag, &c.id, &c.created_since, &c.size] {
            body.push_str(cell);
            body.push('\t');
        }
        body.pop();
        body.push('\n');
    }
    write_table("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE", &body, out)
}

/// The image a listing entry is: opened by the digest the entry points at.
fn open_summary(store: &Store, s: &ImageSummary) -> Result<Image> {
    Ok(store.image(s.digest.as_str())?)
}

/// The creation time of `reference`, for `before=` and `since=`.
fn created_of(store: &Store, reference: &str) -> Result<Option<(i64, u32)>> {
    let img = store.image(reference)?;
    Ok(img.config().created.as_deref().and_then(parse_rfc3339))
}

/// The entries of the listing that pass `filters`, in listing order.
fn select<'l>(
    store: &Store,
    list: &'l [ImageSummary],
    filters: &ImageFilters,
    all: bool,
) -> Result<Vec<&'l ImageSummary>> {
    let before = filters.before.iter().map(|r| created_of(store, r)).collect::<Result<Vec<_>>>()?;
    let since = filters.since.iter().map(|r| created_of(store, r)).collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    // Labels per image, each image opened once however many tags it has.
    let mut labels_of: HashMap<&Digest, _> = HashMap::new();
    for s in list {
        // Docker lists an untagged image something is built on only with -a, and never as
        // dangling.
        if s.intermediate && !all {
            continue;
        }
        let dangling = s.name.is_none() && !s.intermediate;
        if filters.dangling.is_some_and(|want| want != dangling) {
            continue;
        }
        // Strictly older than each `before`, strictly newer than each `since`; an image
        // without a creation time is older than any.
        let created = s.created.as_deref().and_then(parse_rfc3339);
        if !before.iter().all(|b| created < *b) || !since.iter().all(|x| created > *x) {
            continue;
        }
        if !filters.labels.is_empty() {
            let labels = labels_of.entry(&s.digest).or_insert_with(|| {
                open_summary(store, s)
                    .ok()
                    .and_then(|img| img.config().config.as_ref().and_then(|c| c.labels.clone()))
                    .unwrap_or_default()
            });
            if labels.is_empty() || !filters.labels_match(labels) {
                continue;
            }
        }
        if !filters.references.is_empty() && (dangling || !filters.reference_matches(&s.repository, &s.tag)?) {
            continue;
        }
        out.push(s);
    }
    Ok(out)
}

/// The digest docker shows for a row: the image's repo digest in the row's repository.
fn repo_digest(store: &Store, s: &ImageSummary, cache: &mut HashMap<Digest, Vec<String>>) -> String {
    let digests = cache
        .entry(s.digest.clone())
        .or_insert_with(|| open_summary(store, s).and_then(|img| Ok(img.inspect()?.repo_digests)).unwrap_or_default());
    digests
        .iter()
        .find_map(|rd| rd.split_once('@').filter(|(repo, _)| *repo == s.repository).map(|(_, d)| d.to_owned()))
        .unwrap_or_else(|| "<none>".to_owned())
}

pub fn images(ctx: &Ctx, how: &ListImages) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let list = store.images()?;
    for s in &list {
        if let Some(p) = &s.problem {
            eprintln!("strata: warning: {} ({}): {p}", s.name.as_deref().unwrap_or("<none>"), s.digest);
        }
    }
    let list = select(&store, &list, &how.filters, how.all)?;
    let mut cache = CellCache::default();
    if ctx.json {
        let rows: Vec<Value> = list
            .iter()
            .map(|s| {
                let mut row = image_row(s, cache.cells(s, how.no_trunc), s.digest.to_string());
                let created = s.created.clone().unwrap_or_default();
                if s.id.is_none() {
                    row["ID"] = json!("");
                }
                // Not in docker's output: exact figures for scripts.
                row["Name"] = json!(s.name);
                row["Created"] = json!(created);
                row["SizeBytes"] = json!(s.size);
                row["StoredSizeBytes"] = json!(s.stored_size);
                row["Problem"] = json!(s.problem);
                row
            })
            .collect();
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    // docker's choice of format: `table` (or none) is the default table; -q then prints ids.
    let spec = match how.format.as_deref() {
        None | Some("table") if ctx.quiet => {
            // Each id once (docker prints one per row; `strata rmi $(strata images -q)`
            // should not name an image twice).
            let mut seen = HashSet::new();
            for s in &list {
                if let Some(id) = &s.id
                    && seen.insert(id)
                {
                    writeln!(out, "{}", if how.no_trunc { id.to_string() } else { id.short().to_owned() })?;
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        None | Some("table") if how.digests => IMAGES_TABLE_DIGESTS.to_owned(),
        None | Some("table") => return default_table(&list, how.no_trunc, &mut out).map(|()| ExitCode::SUCCESS),
        Some("raw") if how.digests => IMAGES_RAW_DIGESTS.to_owned(),
        Some("raw") => IMAGES_RAW.to_owned(),
        Some(f) if f.starts_with("table") && how.digests && !f.contains("{{.Digest}}") => {
            format!("{f}\t{{{{.Digest}}}}")
        }
        Some(f) => f.to_owned(),
    };
    let format = Format::parse(&spec, IMAGES_TABLE)?;
    let need_digest = how.digests || format.mentions("Digest");
    let mut repo_digests = HashMap::new();
    let rows: Vec<Value> = list
        .iter()
        .map(|s| {
            let digest = if need_digest && s.name.is_some() {
                repo_digest(&store, s, &mut repo_digests)
            } else {
                "<none>".to_owned()
            };
            image_row(s, cache.cells(s, how.no_trunc), digest)
        })
        .collect();
    format.print(&IMAGES, &rows, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// What docker's inspect structs are, where the JSON cannot say: the maps (a missing key
/// prints `<no value>`) and the slices (null prints `[]`).
fn inspect_schema() -> Schema {
    let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect();
    Schema {
        root: Root::Struct,
        maps: names(&["Labels", "ExposedPorts", "Volumes", "Data"]),
        slices: names(&["RepoTags", "RepoDigests", "Env", "Cmd", "Entrypoint", "OnBuild", "Shell", "Layers", "Test"]),
    }
}

/// Exit code of `inspect` for a template that does not parse (docker's).
const INSPECT_BAD_TEMPLATE: u8 = 64;

pub fn inspect(ctx: &Ctx, refs: &[String], format: Option<String>) -> Result<ExitCode> {
    let template = match format.as_deref() {
        None | Some("json") => None,
        Some(text) => match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("strata: error: {}", crate::error_line(&template_error(&e)));
                return Ok(ExitCode::from(INSPECT_BAD_TEMPLATE));
            }
        },
    };
    let store = ctx.read_store()?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for r in refs {
        match store.image(r).and_then(|img| img.inspect()) {
            Ok(i) => found.push(i),
            Err(e) => errors.push(crate::error_line(&e.into())),
        }
    }
    let mut out = std::io::stdout().lock();
    match (&template, format.as_deref()) {
        // Like `docker inspect`: the images found, as an array, even when some were not.
        (None, None) => print_json(&found)?,
        // docker's `--format json`: the same array on one line, as the daemon's JSON is.
        (None, _) => {
            let docs = serde_json::to_value(&found)?;
            writeln!(out, "{}", strata_template::to_go_json(&docs, true))?;
        }
        (Some(t), _) => {
            let mut text = String::new();
            for doc in &found {
                match render_inspect(t, &serde_json::to_value(doc)?) {
                    Ok(s) => {
                        text.push_str(&s);
                        text.push('\n');
                    }
                    Err(e) => errors.push(crate::error_line(&e)),
                }
            }
            // docker prints an empty line when nothing rendered.
            if text.is_empty() {
                text.push('\n');
            }
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    for e in &errors {
        eprintln!("strata: error: {e}");
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// docker's inspect template: run on the typed document; when that fails, again on the
/// JSON as plain maps, where a missing key is an error.
fn render_inspect(t: &Template, doc: &Value) -> Result<String> {
    if let Ok(s) = t.execute(doc, &inspect_schema(), Options::default()) {
        return Ok(s);
    }
    let raw = Options { missing_key: MissingKey::Error, ..Options::default() };
    t.execute(doc, &Schema::default(), raw).map_err(|e| template_error(&e))
}

/// docker's `history` rows.
const HISTORY: Listing = Listing {
    row_type: "*image.historyContext",
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ],
};

const HISTORY_TABLE: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
/// `-H=false`: times as RFC 3339.
const HISTORY_TABLE_RAW: &str = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// RFC 3339 to the second, as docker prints history times; empty when unknown.
fn rfc3339_seconds(created: &str) -> String {
    parse_rfc3339(created).map(|(secs, _)| strata_spec::time::format_rfc3339(secs, 0)).unwrap_or_default()
}

pub fn history(ctx: &Ctx, reference: &str, no_trunc: bool, human: bool, format: Option<&str>) -> Result<ExitCode> {
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
    let table_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let id = match &r.image {
                Some(d) if no_trunc => d.to_string(),
                Some(d) => d.short().to_owned(),
                None => missing(),
            };
            let created_at = rfc3339_seconds(&r.created_at);
            // docker turns tabs into spaces; newlines too here, so that a table stays one
            // line per step.
            let by = r.created_by.replace(['\n', '\t'], " ");
            json!({
                "ID": id,
                "CreatedAt": created_at,
                "CreatedSince": if human { or_na(since(&r.created_at)) } else { created_at.clone() },
                "CreatedBy": if no_trunc { by } else { truncate(&by, CREATED_BY_WIDTH) },
                "Size": if human { human_size(r.size) } else { r.size.to_string() },
                "Comment": r.comment,
            })
        })
        .collect();
    let default_table = if human { HISTORY_TABLE } else { HISTORY_TABLE_RAW };
    let spec = match format {
        None | Some("table") if ctx.quiet => "{{.ID}}",
        None => default_table,
        Some(f) => f,
    };
    Format::parse(spec, default_table)?.print(&HISTORY, &table_rows, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// `N/A` for a time docker does not have, as its tables show it.
fn or_na(since: String) -> String {
    if since.is_empty() { "N/A".to_owned() } else { since }
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

pub fn gc(ctx: &Ctx, dry_run: bool, force: bool) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let opts = strata_image::GcOptions { dry_run, force, ..strata_image::GcOptions::default() };
    let r = match store.gc_with(&opts) {
        Err(strata_image::Error::Store(e @ strata_image::StoreError::GcAborted { .. })) if !force => {
            let missing = matches!(&e, strata_image::StoreError::GcAborted { source, .. } if matches!(**source, strata_image::StoreError::NotFound(_)));
            let hint = if missing { " (--force collects what only the missing image kept)" } else { "" };
            anyhow::bail!("{e}{hint}");
        }
        r => r?,
    };
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

pub fn fsck(ctx: &Ctx, deep: bool, quick: bool) -> Result<ExitCode> {
    let store = ctx.read_store()?;
    let r = store.fsck_with(&strata_image::FsckOptions { rehash: !quick, deep })?;
    if ctx.json {
        print_json(&json!({
            "Clean": r.is_clean(),
            "BlobsChecked": r.blobs_checked,
            "BytesChecked": r.bytes_checked,
            "DescriptorsChecked": r.descriptors_checked,
            "Problems": r.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "TempFiles": r.temp_files.iter().map(|t| json!({ "Path": t.path, "Size": t.size, "InUse": t.in_use })).collect::<Vec<_>>(),
        }))?;
    } else if !ctx.quiet {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{} blobs ({}) re-hashed, {} descriptors checked{}, {} records, {} problems, {} temp files",
            r.blobs_checked,
            human_size(r.bytes_checked),
            r.descriptors_checked,
            if deep { ", layers decompressed" } else { "" },
            r.records_checked,
            r.problems.len(),
            r.temp_files.len()
        )?;
        if r.is_clean() {
            writeln!(out, "store is clean")?;
        }
    }
    // Problems on stderr, whatever the output format.
    for p in &r.problems {
        eprintln!("strata: fsck: {p}");
    }
    Ok(if r.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default table written straight gives the text the template gives.
    #[test]
    fn the_default_table_is_the_template_table() {
        let summary = |name: Option<&str>, id: Option<u8>, created: Option<&str>, size: u64| {
            let (repository, tag) = match name {
                Some(n) => strata_image::split_name(n),
                None => ("<none>".to_owned(), "<none>".to_owned()),
            };
            ImageSummary {
                name: name.map(str::to_owned),
                repository,
                tag,
                id: id.map(|b| Digest::sha256_of(&[b])),
                digest: Digest::sha256_of(b"m"),
                created: created.map(str::to_owned),
                size,
                stored_size: 0,
                problem: None,
                intermediate: false,
            }
        };
        let list = [
            summary(Some("tomcat02:1.0"), Some(1), Some("2024-01-15T10:30:00Z"), 123_456_789),
            summary(
                Some("a-much-longer-repository/name:with-a-long-tag"),
                Some(1),
                Some("2024-01-15T10:30:00Z"),
                123_456_789,
            ),
            summary(None, Some(2), None, 0),
            summary(Some("v1"), None, Some("not a time"), 5),
        ];
        let refs: Vec<&ImageSummary> = list.iter().collect();
        for no_trunc in [false, true] {
            let mut fast = Vec::new();
            default_table(&refs, no_trunc, &mut fast).unwrap();
            let mut cache = CellCache::default();
            let rows: Vec<Value> =
                list.iter().map(|s| image_row(s, cache.cells(s, no_trunc), "<none>".into())).collect();
            let mut slow = Vec::new();
            Format::parse(IMAGES_TABLE, IMAGES_TABLE).unwrap().print(&IMAGES, &rows, &mut slow).unwrap();
            assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
        }
    }
}
