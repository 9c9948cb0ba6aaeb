//! `COPY` and `ADD`: sources from a directory (the build context, an extracted tar, an
//! unpacked stage), their digest for the cache key, and the layer that puts them at
//! their destination in the image — written directly, without unpacking the image.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use strata_image::Store;
use strata_layer::{EntryKind, EntryMeta, LayerInfo, LayerWriter, Timestamp, WriteOptions, tar_order};
use strata_spec::{Algorithm, Digest, Digester};

use crate::dockerfile::Ignore;
use crate::dockerfile::ignore::{clean, glob_match, has_wildcards};
use crate::error::{Error, Result};
use crate::fetch::Fetched;
use crate::tree::{DiskView, Node, TreeView, resolve};

/// A directory sources come from.
pub(crate) struct SourceRoot<'a> {
    /// The directory.
    pub root: PathBuf,
    /// `.dockerignore` of the build context.
    pub ignore: Option<&'a Ignore>,
    /// `COPY --exclude` patterns: matched against paths relative to the root and to the
    /// source being copied.
    pub exclude: Option<&'a Ignore>,
    /// Keep the owners of the files (an extracted tar, another image) rather than
    /// 0:0 or `--chown`.
    pub keep_owners: bool,
    /// Owners recorded by a rootless extraction, by path relative to `root`.
    pub recorded: BTreeMap<PathBuf, (u32, u32)>,
}

/// One file, directory, link or node to copy.
#[derive(Debug, Clone)]
pub(crate) struct SourceEntry {
    /// Path below the item's target (empty for a single-file item).
    pub rel: PathBuf,
    /// Where it is on disk.
    pub abs: PathBuf,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: Timestamp,
}

/// A source as matched: a file, or a directory whose contents are copied.
#[derive(Debug, Clone)]
pub(crate) struct SourceItem {
    /// The file name (for a file copied into a directory).
    pub name: PathBuf,
    pub is_dir: bool,
    /// For a file: itself; for a directory: everything below it, in path order.
    pub entries: Vec<SourceEntry>,
    /// `file:<hex>` or `dir:<hex>`, over contents and metadata (not mtimes).
    pub hash: String,
    /// The URL a downloaded file came from (`ADD <url>`).
    pub url: Option<String>,
    /// `COPY --parents`: the directories above it (after a `/./` pivot), kept under the
    /// destination.
    pub parents: PathBuf,
}

/// Mode of a file `ADD` downloads, as docker gives it.
pub(crate) const URL_FILE_MODE: u32 = 0o600;

/// Digests of file contents already hashed in this build, by identity.
pub(crate) type HashMemo = HashMap<(u64, u64, u64, i64, i64), Digest>;

/// The item of a here-document source (`COPY <<EOF /dest`): a file named after the
/// delimiter with the text as its content, mode 0644, owned by root, made in `dir`.
pub(crate) fn heredoc_item(dir: &Path, name: &str, text: &str, now: Timestamp) -> Result<SourceItem> {
    let file = dir.join("heredoc");
    fs::write(&file, text).map_err(Error::io("write", &file))?;
    let entry = SourceEntry {
        rel: PathBuf::new(),
        abs: file,
        kind: EntryKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: text.len() as u64,
        mtime: now,
    };
    let hex = Digest::sha256_of(format!("heredoc\0{name}\0{text}").as_bytes()).hex().to_owned();
    Ok(SourceItem {
        name: PathBuf::from(name),
        is_dir: false,
        entries: vec![entry],
        hash: format!("file:{hex}"),
        url: None,
        parents: PathBuf::new(),
    })
}

/// Expand the sources of one `COPY`/`ADD` (after substitution) into items; with
/// `parents` (`COPY --parents`), each keeps the directories above it.
pub(crate) fn expand(
    src: &SourceRoot<'_>,
    patterns: &[String],
    parents: bool,
    memo: &mut HashMemo,
    hashed: &mut dyn FnMut(u64),
) -> Result<Vec<SourceItem>> {
    let mut out = Vec::new();
    for pat in patterns {
        // `a/./b/c`: what is after the pivot is kept, what is before it is not.
        let skip = match pat.find("/./") {
            Some(i) => clean(&pat[..i]).split('/').filter(|c| !c.is_empty() && *c != ".").count(),
            None => 0,
        };
        let cleaned = clean_source(pat)?;
        let rels: Vec<PathBuf> = if has_wildcards(&cleaned) {
            glob_paths(src, &cleaned)?
        } else {
            vec![PathBuf::from(if cleaned == "." { "" } else { cleaned.as_str() })]
        };
        if rels.is_empty() {
            return Err(Error::SourceNotFound { path: pat.clone() });
        }
        for rel in rels {
            let mut it = item(src, pat, &rel, memo, hashed)?;
            if !parents {
                out.push(it);
                continue;
            }
            let kept: PathBuf = rel.components().skip(skip).collect();
            it.parents = if it.is_dir { kept } else { kept.parent().map(Path::to_path_buf).unwrap_or_default() };
            out.push(it);
        }
    }
    Ok(out)
}

/// Expand the sources of one `COPY`/`ADD` (after substitution) into items.
pub(crate) fn expand_sources(
    src: &SourceRoot<'_>,
    patterns: &[String],
    memo: &mut HashMemo,
    hashed: &mut dyn FnMut(u64),
) -> Result<Vec<SourceItem>> {
    expand(src, patterns, false, memo, hashed)
}

/// A source as written -> a clean relative path; `..` out of the root is refused.
fn clean_source(pat: &str) -> Result<String> {
    let mut depth: i64 = 0;
    for c in pat.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(Error::OutsideContext { path: pat.to_owned() });
                }
            }
            _ => depth += 1,
        }
    }
    Ok(clean(pat))
}

fn ignored(src: &SourceRoot<'_>, rel: &Path) -> bool {
    if rel.as_os_str().is_empty() {
        return false;
    }
    let text = rel.to_string_lossy();
    src.ignore.is_some_and(|ig| ig.is_ignored(&text)) || src.exclude.is_some_and(|ex| ex.is_ignored(&text))
}

/// Whether `--exclude` leaves out an entry, by its path below the source copied.
fn excluded_below(src: &SourceRoot<'_>, rel: &Path) -> bool {
    !rel.as_os_str().is_empty() && src.exclude.is_some_and(|ex| ex.is_ignored(&rel.to_string_lossy()))
}

/// Paths matching a wildcard pattern, component by component (`*` never crosses `/`).
fn glob_paths(src: &SourceRoot<'_>, pattern: &str) -> Result<Vec<PathBuf>> {
    let mut current = vec![PathBuf::new()];
    for comp in pattern.split('/') {
        let mut next = Vec::new();
        for base in &current {
            if !has_wildcards(comp) {
                let p = base.join(unescape(comp));
                if fs::symlink_metadata(src.root.join(&p)).is_ok() {
                    next.push(p);
                }
                continue;
            }
            let dir = src.root.join(base);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            let mut names: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.sort();
            for n in names {
                let name = n.to_string_lossy();
                if glob_match(comp, &name, false)
                    .map_err(|e| Error::Pattern { pattern: pattern.to_owned(), reason: e.to_string() })?
                {
                    next.push(base.join(&n));
                }
            }
        }
        current = next;
    }
    Ok(current.into_iter().filter(|p| !ignored(src, p)).collect())
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One source: the path resolved inside the root (symlinks followed there), then walked.
fn item(
    src: &SourceRoot<'_>,
    pat: &str,
    rel: &Path,
    memo: &mut HashMemo,
    hashed: &mut dyn FnMut(u64),
) -> Result<SourceItem> {
    let view = DiskView(&src.root);
    let r = resolve(&view, rel, true).map_err(|_| Error::SourceNotFound { path: pat.to_owned() })?;
    if !r.missing.is_empty() || ignored(src, rel) || ignored(src, &r.existing) {
        return Err(Error::SourceNotFound { path: pat.to_owned() });
    }
    let phys = r.existing;
    let name = rel.file_name().map(PathBuf::from).unwrap_or_default();
    let mut digester = Digester::new(Algorithm::Sha256);
    let mut entries = Vec::new();
    let is_dir = r.node == Some(Node::Dir);
    if !is_dir {
        // A file keeps its name under a destination directory (`COPY a.txt /d/`), so
        // the name is part of what it brings: two files with the same bytes and
        // different names must not share a cache entry. (A directory's own name is not
        // copied, only what is under it, whose names are recorded below.)
        digester.update(b"name\0");
        digester.update(name.as_os_str().as_bytes());
        digester.update(b"\0");
    }
    if is_dir {
        walk(src, &phys, Path::new(""), &mut entries)?;
    } else {
        let abs = src.root.join(&phys);
        let md = fs::symlink_metadata(&abs).map_err(Error::io("stat", &abs))?;
        entries.push(entry(src, &phys, PathBuf::new(), abs, &md)?);
    }
    for e in &entries {
        record(&mut digester, e, src.keep_owners, memo, hashed)?;
    }
    let hex = digester.finish().hex().to_owned();
    let hash = if is_dir { format!("dir:{hex}") } else { format!("file:{hex}") };
    Ok(SourceItem { name, is_dir, entries, hash, url: None, parents: PathBuf::new() })
}

/// The item of a file downloaded by `ADD <url>`: mode 0600 and owner 0:0 (`--chmod` and
/// `--chown` apply as for any source), the server's time. Its hash covers its name,
/// mode, size and content digest, not its time, as for files of the context.
pub(crate) fn url_item(url: &str, fetched: &Fetched) -> SourceItem {
    let name = fetched.name.clone().unwrap_or_default();
    let entry = SourceEntry {
        rel: PathBuf::new(),
        abs: fetched.path.clone(),
        kind: EntryKind::File,
        mode: URL_FILE_MODE,
        uid: 0,
        gid: 0,
        size: fetched.size,
        mtime: fetched.mtime,
    };
    let mut d = Digester::new(Algorithm::Sha256);
    d.update(format!("url\0{name}\0{:o}\0{}\0{}", entry.mode, entry.size, fetched.digest).as_bytes());
    SourceItem {
        name: PathBuf::from(name),
        is_dir: false,
        entries: vec![entry],
        hash: format!("file:{}", d.finish().hex()),
        url: Some(url.to_owned()),
        parents: PathBuf::new(),
    }
}

fn walk(src: &SourceRoot<'_>, dir_rel: &Path, below: &Path, out: &mut Vec<SourceEntry>) -> Result<()> {
    let dir = src.root.join(dir_rel).join(below);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(Error::io("read", &dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(Error::io("read", &dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for n in names {
        let rel = below.join(&n);
        let ctx_rel = dir_rel.join(&rel);
        let abs = src.root.join(&ctx_rel);
        let md = fs::symlink_metadata(&abs).map_err(Error::io("stat", &abs))?;
        let skip = ignored(src, &ctx_rel) || excluded_below(src, &rel);
        if md.file_type().is_socket() {
            continue;
        }
        if !skip {
            out.push(entry(src, &ctx_rel, rel.clone(), abs, &md)?);
        }
        let has_exceptions =
            src.ignore.is_some_and(Ignore::has_exceptions) || src.exclude.is_some_and(Ignore::has_exceptions);
        if md.is_dir() && (!skip || has_exceptions) {
            walk(src, dir_rel, &rel, out)?;
        }
    }
    Ok(())
}

fn entry(src: &SourceRoot<'_>, ctx_rel: &Path, rel: PathBuf, abs: PathBuf, md: &fs::Metadata) -> Result<SourceEntry> {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink { target: fs::read_link(&abs).map_err(Error::io("readlink", &abs))? }
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_char_device() || ft.is_block_device() {
        let rdev = md.rdev();
        let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
        if ft.is_char_device() {
            EntryKind::CharDevice { major, minor }
        } else {
            EntryKind::BlockDevice { major, minor }
        }
    } else {
        EntryKind::File
    };
    let (uid, gid) = src.recorded.get(ctx_rel).copied().unwrap_or((md.uid(), md.gid()));
    Ok(SourceEntry {
        rel,
        abs,
        size: if kind == EntryKind::File { md.len() } else { 0 },
        kind,
        mode: md.mode() & 0o7777,
        uid,
        gid,
        mtime: Timestamp::new(md.mtime(), md.mtime_nsec()),
    })
}

/// Add one entry to an item's digest: path, type, mode, size, link target, content
/// digest, and owners when they are kept. Not mtimes (docker's cache ignores them).
fn record(
    d: &mut Digester,
    e: &SourceEntry,
    owners: bool,
    memo: &mut HashMemo,
    hashed: &mut dyn FnMut(u64),
) -> Result<()> {
    d.update(e.rel.as_os_str().as_bytes());
    d.update(format!("\0{:?}\0{:o}\0{}", e.kind, e.mode, e.size).as_bytes());
    if owners {
        d.update(format!("\0{}:{}", e.uid, e.gid).as_bytes());
    }
    if e.kind == EntryKind::File {
        let md = fs::metadata(&e.abs).map_err(Error::io("stat", &e.abs))?;
        let key = (md.dev(), md.ino(), md.len(), md.mtime(), md.mtime_nsec());
        let digest = match memo.get(&key) {
            Some(dg) => dg.clone(),
            None => {
                let mut f = fs::File::open(&e.abs).map_err(Error::io("open", &e.abs))?;
                let mut h = Digester::new(Algorithm::Sha256);
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf).map_err(Error::io("read", &e.abs))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    hashed(n as u64);
                }
                let dg = h.finish();
                memo.insert(key, dg.clone());
                dg
            }
        };
        d.update(b"\0");
        d.update(digest.as_str().as_bytes());
    }
    d.update(b"\n");
    Ok(())
}

/// The source hash docker shows in `created_by`: the item's own, or `multi:` over all.
pub(crate) fn source_hash(items: &[SourceItem]) -> String {
    if let [one] = items {
        return one.hash.clone();
    }
    let joined = items.iter().map(|i| i.hash.as_str()).collect::<Vec<_>>().join(",");
    format!("multi:{}", Digest::sha256_of(joined.as_bytes()).hex())
}

/// How the copied entries are owned and moded.
pub(crate) struct CopyPolicy {
    /// `--chown` ids (else 0:0, or the sources' owners when the root keeps them).
    pub chown: Option<(u32, u32)>,
    /// `--chmod` mode.
    pub chmod: Option<u32>,
    /// Time of directories the step makes.
    pub now: Timestamp,
}

/// One entry of the layer to write.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub meta: EntryMeta,
    /// Content of a regular file.
    pub content: Option<PathBuf>,
}

/// Where each item goes in the image (`dest` absolute, trailing `/` kept), resolved in
/// `view`; directories on the way that do not exist are made.
pub(crate) fn plan(
    view: &dyn TreeView,
    items: &[(SourceItem, bool)],
    dest: &str,
    policy: &CopyPolicy,
    keyword: &'static str,
) -> Result<Vec<Planned>> {
    let dir_dest = dest.ends_with('/');
    if items.len() > 1 && !dir_dest {
        return Err(Error::NotADirectoryDestination { keyword });
    }
    let mut out: BTreeMap<PathBuf, Planned> = BTreeMap::new();
    let made_owner = policy.chown.unwrap_or((0, 0));
    let make_dirs = |out: &mut BTreeMap<PathBuf, Planned>, base: &Path, missing: &[std::ffi::OsString]| {
        let mut p = base.to_path_buf();
        for m in missing {
            p.push(m);
            out.entry(p.clone()).or_insert_with(|| Planned {
                meta: EntryMeta::new(p.clone(), EntryKind::Dir)
                    .with_mode(0o755)
                    .with_owner(made_owner.0, made_owner.1)
                    .with_mtime(policy.now),
                content: None,
            });
        }
    };
    for (item, keep_owners) in items {
        let item_dest = if item.parents.as_os_str().is_empty() {
            dest.to_owned()
        } else {
            format!("{}/{}/", dest.trim_end_matches('/'), item.parents.display())
        };
        let dir_dest = dir_dest || !item.parents.as_os_str().is_empty();
        let r = resolve(view, Path::new(&item_dest), true)?;
        let target_dir: PathBuf;
        let file_target: Option<PathBuf>;
        if item.is_dir {
            if r.missing.is_empty() && r.node != Some(Node::Dir) {
                return Err(Error::NotADirectory { path: r.existing });
            }
            make_dirs(&mut out, &r.existing, &r.missing);
            target_dir = r.path();
            file_target = None;
        } else if dir_dest || r.is_dir() {
            if item.name.as_os_str().is_empty() {
                return Err(Error::NoFileName { url: item.url.clone().unwrap_or_default() });
            }
            make_dirs(&mut out, &r.existing, &r.missing);
            target_dir = r.path();
            file_target = Some(target_dir.join(&item.name));
        } else {
            let (last, parents) = match r.missing.split_last() {
                Some((l, p)) => (Some(l.clone()), p.to_vec()),
                None => (None, Vec::new()),
            };
            make_dirs(&mut out, &r.existing, &parents);
            let mut t = r.existing.clone();
            for p in &parents {
                t.push(p);
            }
            if let Some(l) = last {
                t.push(l);
            }
            if t.as_os_str().is_empty() {
                return Err(Error::FileOverRoot { keyword });
            }
            target_dir = t.parent().map(Path::to_path_buf).unwrap_or_default();
            file_target = Some(t);
        }
        for e in &item.entries {
            let path = match &file_target {
                Some(t) => t.clone(),
                None => target_dir.join(&e.rel),
            };
            let (uid, gid) = match (policy.chown, keep_owners) {
                (Some(ids), _) if !keep_owners => ids,
                (_, true) => (e.uid, e.gid),
                _ => (0, 0),
            };
            let mode = match (policy.chmod, &e.kind) {
                (_, EntryKind::Symlink { .. }) => 0o777,
                (Some(m), _) => m,
                (None, _) => e.mode,
            };
            let meta = EntryMeta {
                path: path.clone(),
                kind: e.kind.clone(),
                mode,
                uid,
                gid,
                size: e.size,
                mtime: e.mtime,
                xattrs: BTreeMap::new(),
            };
            let content = (e.kind == EntryKind::File && e.size > 0).then(|| e.abs.clone());
            out.insert(path, Planned { meta, content });
        }
    }
    let mut v: Vec<Planned> = out.into_values().filter(|p| !p.meta.path.as_os_str().is_empty()).collect();
    v.sort_by(|a, b| tar_order(&a.meta.path, &b.meta.path));
    Ok(v)
}

/// Write the planned entries as one layer blob into `store`.
pub(crate) fn write_layer(store: &Store, planned: &[Planned], wopts: &WriteOptions) -> Result<LayerInfo> {
    store.write_layer(|writer| {
        let mut w = LayerWriter::new(writer, wopts)?;
        for p in planned {
            match &p.content {
                Some(path) => {
                    let mut f = fs::File::open(path).map_err(Error::io("open", path))?;
                    w.append_file(&p.meta, &mut f)?;
                }
                None => w.append(&p.meta)?,
            }
        }
        Ok(w.finish()?.0)
    })
}
