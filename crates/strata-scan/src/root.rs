//! What the catalogers read: files of the final tree of an image, by path, without
//! unpacking it, and the layer each came from.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read};

use std::cell::OnceCell;
use strata_image::{Image, MergedView};

use strata_layer::read::EntryKind as TarKind;
use strata_layer::read::{Limits, TarReader};
use strata_layer::{Decoder, EntryKind};
use strata_layer::{LayerIndex, MergeOptions, MergedIndex, MergedTree};

use crate::error::{Error, Result};

/// The largest file a cataloger reads into memory (an RPM database of a large
/// distribution is tens of MiB; 512 MiB leaves room and still stops a hostile image
/// from exhausting memory).
pub const MAX_DATABASE_SIZE: u64 = 512 << 20;

/// A read-only file tree the catalogers look into. Paths are relative, `/`-separated,
/// without a leading `/`.
pub trait Root {
    /// The content of the regular file at `path` (symlinks followed inside the root), or
    /// `None` when there is no regular file there.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The contents of many regular files at once (those that exist), by path. A merged
    /// view reads each layer once for all of them, where [`Root::read`] decompresses a
    /// layer up to the file every time; files it has in memory already are borrowed.
    fn read_many(&self, paths: &[String]) -> Result<HashMap<String, Cow<'_, [u8]>>> {
        let mut out = HashMap::new();
        for p in paths {
            if let Some(b) = self.read(p)? {
                out.insert(p.clone(), Cow::Owned(b));
            }
        }
        Ok(out)
    }
    /// Whether `path` is a directory (a last symlink not followed).
    fn is_dir(&self, path: &str) -> bool;
    /// Whether `path` is a regular file (a last symlink followed).
    fn is_file(&self, path: &str) -> bool {
        self.read(path).ok().flatten().is_some()
    }
    /// The layer that made the file at `path` (not following a last symlink), when
    /// there is one.
    fn layer(&self, path: &str) -> Option<usize>;
    /// What is at `path` (a last symlink not followed), in one lookup: whether it is a
    /// directory ([`Root::is_dir`]) and its layer ([`Root::layer`]); `None` when nothing
    /// is there.
    fn stat(&self, path: &str) -> Option<PathStat> {
        self.layer(path).map(|layer| PathStat { is_dir: self.is_dir(path), layer })
    }
    /// Every regular file's path, in a stable order.
    fn files(&self) -> Vec<String>;
    /// The paths of [`Root::files`] that `wanted` accepts, in the same order: a root
    /// that can find them without listing every file does.
    fn files_where(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.files().into_iter().filter(|f| wanted(f)).collect()
    }
    /// [`Root::files_where`] for a `wanted` that accepts package databases alone (files
    /// a scan reads, which its cache lists for each layer): a root that knows where
    /// those are looks there alone. The same answer.
    fn database_files_where(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.files_where(wanted)
    }
}

/// What is at a path of a [`Root`] ([`Root::stat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStat {
    /// Whether it is a directory (a last symlink not followed).
    pub is_dir: bool,
    /// The layer that made it.
    pub layer: usize,
}

/// The final tree of an image as a [`Root`]: a merged tree, the image whose layers it
/// folds, and the files of those layers already read (by layer, then entry ordinal),
/// which are not read again.
pub(crate) struct TreeRoot<'a> {
    pub(crate) tree: &'a MergedTree,
    pub(crate) image: &'a Image,
    pub(crate) cached: &'a [&'a HashMap<u64, Vec<u8>>],
}

impl TreeRoot<'_> {
    /// A file already read: the regular file (or the file a symlink leads to) at `path`.
    fn cached(&self, path: &str) -> Option<&Vec<u8>> {
        let e = self.tree.stat_follow(path).ok()?;
        let src = e.source.filter(|_| matches!(e.meta.kind, EntryKind::File))?;
        self.cached.get(src.layer)?.get(&src.entry)
    }
}

impl Root for TreeRoot<'_> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if let Some(b) = self.cached(path) {
            return Ok(Some(b.clone()));
        }
        let entry = match self.tree.stat(path) {
            Ok(e) => e,
            Err(_) => return Ok(None),
        };
        let image = self.image;
        let open = move |i: usize| -> std::io::Result<_> {
            let desc = image.layers().get(i).ok_or_else(|| std::io::Error::other(format!("no layer {i}")))?;
            image.store().backend().open_descriptor(desc).map_err(std::io::Error::other)
        };
        let entry = match entry.meta.kind {
            EntryKind::Symlink { .. } => match self.tree.read_file(path, open) {
                // A symlink: let the merged tree follow it.
                Ok(r) => return read_limited(path, r, MAX_DATABASE_SIZE).map(Some),
                Err(_) => return Ok(None),
            },
            EntryKind::File => entry,
            _ => return Ok(None),
        };
        if entry.meta.size > MAX_DATABASE_SIZE {
            return Err(Error::TooLarge { path: path.to_owned(), size: entry.meta.size, limit: MAX_DATABASE_SIZE });
        }
        let r = self.tree.read_file(path, open).map_err(strata_image::Error::from)?;
        read_limited(path, r, MAX_DATABASE_SIZE).map(Some)
    }

    fn read_many(&self, paths: &[String]) -> Result<HashMap<String, Cow<'_, [u8]>>> {
        let mut out = HashMap::new();
        // layer -> entry ordinal -> (paths, size)
        let mut wanted: BTreeMap<usize, HashMap<u64, (Vec<&String>, u64)>> = BTreeMap::new();
        for p in paths {
            if let Some(b) = self.cached(p) {
                out.insert(p.clone(), Cow::Borrowed(&b[..]));
                continue;
            }
            let Ok(e) = self.tree.stat(p) else { continue };
            match (&e.meta.kind, e.source) {
                (EntryKind::File, Some(src)) => {
                    if e.meta.size > MAX_DATABASE_SIZE {
                        return Err(Error::TooLarge { path: p.clone(), size: e.meta.size, limit: MAX_DATABASE_SIZE });
                    }
                    let slot =
                        wanted.entry(src.layer).or_default().entry(src.entry).or_insert((Vec::new(), e.meta.size));
                    slot.0.push(p);
                }
                (EntryKind::Symlink { .. }, _) => {
                    if let Some(b) = self.read(p)? {
                        out.insert(p.clone(), Cow::Owned(b));
                    }
                }
                _ => {}
            }
        }
        let backend = self.image.store().backend();
        for (layer, mut want) in wanted {
            let Some(desc) = self.image.layers().get(layer) else { continue };
            let name = desc.digest.to_string();
            let blob = backend.open_descriptor(desc).map_err(strata_image::Error::from)?;
            let dec = Decoder::new(blob, desc.media_type.layer_compression(), &name)?;
            let mut tar = TarReader::new(BufReader::with_capacity(1 << 16, dec), Limits::default(), &name);
            let mut ordinal = 0u64;
            while !want.is_empty() {
                let Some(e) = tar.next_entry()? else { break };
                match want.remove(&ordinal) {
                    Some((ps, size)) => {
                        let first = ps.first().map_or(String::new(), |p| (*p).clone());
                        if e.size != size {
                            let reason =
                                format!("layer {name} changed: entry {ordinal} has {} bytes, not {size}", e.size);
                            return Err(Error::Read { path: first, source: std::io::Error::other(reason) });
                        }
                        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                        tar.read_data(|chunk| {
                            buf.extend_from_slice(chunk);
                            Ok::<(), strata_layer::Error>(())
                        })?;
                        for p in ps {
                            out.insert(p.clone(), Cow::Owned(buf.clone()));
                        }
                    }
                    None => tar.skip_data()?,
                }
                ordinal += 1;
            }
        }
        Ok(out)
    }

    fn is_dir(&self, path: &str) -> bool {
        self.tree.is_dir(path)
    }

    fn is_file(&self, path: &str) -> bool {
        self.tree.stat_follow(path).is_ok_and(|e| matches!(e.meta.kind, EntryKind::File))
    }

    fn layer(&self, path: &str) -> Option<usize> {
        self.tree.layer_of(path)
    }

    fn stat(&self, path: &str) -> Option<PathStat> {
        // Two lookups of the folded tree are cheaper than the entry `stat` builds.
        let layer = self.tree.layer_of(path)?;
        Some(PathStat { is_dir: self.tree.is_dir(path), layer })
    }

    fn files(&self) -> Vec<String> {
        self.tree.file_paths().filter_map(|p| p.into_os_string().into_string().ok()).collect()
    }
}

/// The final tree of an image as a [`Root`], answered from its layers' scan records
/// without folding them ([`MergedIndex`]): the files the records keep are read from
/// them; any other file is read through the merged tree folded from the records, made
/// the first time one is asked for (a database reached through a symlink to a file the
/// records do not keep, or one above their size limit).
pub(crate) struct IndexRoot<'a> {
    pub(crate) view: &'a MergedIndex<'a>,
    pub(crate) image: &'a Image,
    /// The kept files, by layer, then entry ordinal.
    pub(crate) cached: &'a [HashMap<u64, &'a [u8]>],
    /// The entries whose names the catalogers read, by layer.
    pub(crate) wanted: &'a [Vec<u64>],
    /// The layers' indexes, serialised, for the fold.
    pub(crate) indexes: &'a [&'a [u8]],
    pub(crate) tree: OnceCell<MergedTree>,
}

impl IndexRoot<'_> {
    /// A file the records keep: the regular file (or the file a symlink leads to) at
    /// `path`.
    fn cached(&self, path: &str) -> Option<&[u8]> {
        let n = self.view.stat_follow(path.as_bytes())?;
        let src = n.source.filter(|_| n.kind == TarKind::File)?;
        self.cached.get(src.layer)?.get(&src.entry).copied()
    }

    /// The merged tree folded from the records, for what they do not keep.
    fn folded(&self) -> Result<TreeRoot<'_>> {
        if self.tree.get().is_none() {
            let mut indexes = Vec::with_capacity(self.indexes.len());
            for b in self.indexes {
                indexes.push(LayerIndex::from_bytes(b)?);
            }
            let refs: Vec<&LayerIndex> = indexes.iter().collect();
            let names: Vec<String> = self.image.layers().iter().map(|d| d.digest.to_string()).collect();
            let tree = MergedTree::from_indexes(&refs, &names, &MergeOptions::default())?;
            let _ = self.tree.set(tree);
        }
        let tree = self.tree.get().ok_or_else(|| Error::Read {
            path: String::new(),
            source: std::io::Error::other("the merged tree was not made"),
        })?;
        Ok(TreeRoot { tree, image: self.image, cached: &[] })
    }

    /// Whether the fold has to read `path`: a regular file the records do not keep (its
    /// size checked), or a symlink.
    fn needs_fold(&self, path: &str) -> Result<bool> {
        let Some(n) = self.view.stat(path.as_bytes()) else { return Ok(false) };
        match n.kind {
            TarKind::File if n.size > MAX_DATABASE_SIZE => {
                Err(Error::TooLarge { path: path.to_owned(), size: n.size, limit: MAX_DATABASE_SIZE })
            }
            TarKind::File | TarKind::Symlink => Ok(true),
            _ => Ok(false),
        }
    }
}

impl Root for IndexRoot<'_> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if let Some(b) = self.cached(path) {
            return Ok(Some(b.to_vec()));
        }
        if !self.needs_fold(path)? {
            return Ok(None);
        }
        self.folded()?.read(path)
    }

    fn read_many(&self, paths: &[String]) -> Result<HashMap<String, Cow<'_, [u8]>>> {
        let mut out = HashMap::new();
        let mut rest = Vec::new();
        for p in paths {
            if let Some(b) = self.cached(p) {
                out.insert(p.clone(), Cow::Borrowed(b));
            } else if self.needs_fold(p)? {
                rest.push(p.clone());
            }
        }
        if !rest.is_empty() {
            let folded = self.folded()?;
            out.extend(folded.read_many(&rest)?.into_iter().map(|(p, b)| (p, Cow::Owned(b.into_owned()))));
        }
        Ok(out)
    }

    fn is_dir(&self, path: &str) -> bool {
        self.view.is_dir(path.as_bytes())
    }

    fn is_file(&self, path: &str) -> bool {
        self.view.stat_follow(path.as_bytes()).is_some_and(|n| n.kind == TarKind::File)
    }

    fn layer(&self, path: &str) -> Option<usize> {
        self.view.layer_of(path.as_bytes())
    }

    fn stat(&self, path: &str) -> Option<PathStat> {
        let (layer, is_dir) = self.view.layer_and_is_dir(path.as_bytes())?;
        Some(PathStat { is_dir, layer })
    }

    fn files(&self) -> Vec<String> {
        self.files_where(&|_| true)
    }

    fn files_where(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        let mut ok = |p: &[u8]| std::str::from_utf8(p).is_ok_and(wanted);
        self.view.file_paths_where(&mut ok).into_iter().filter_map(|p| String::from_utf8(p.to_vec()).ok()).collect()
    }

    fn database_files_where(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        let mut ok = |p: &[u8]| std::str::from_utf8(p).is_ok_and(wanted);
        let entries = self.wanted.iter().enumerate().flat_map(|(l, os)| os.iter().map(move |&o| (l, o)));
        self.view
            .file_paths_among(entries, &mut ok)
            .into_iter()
            .filter_map(|p| String::from_utf8(p.to_vec()).ok())
            .collect()
    }
}

impl Root for MergedView {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        TreeRoot { tree: self.tree(), image: self.image(), cached: &[] }.read(path)
    }

    fn read_many(&self, paths: &[String]) -> Result<HashMap<String, Cow<'_, [u8]>>> {
        let root = TreeRoot { tree: self.tree(), image: self.image(), cached: &[] };
        Ok(root.read_many(paths)?.into_iter().map(|(p, b)| (p, Cow::Owned(b.into_owned()))).collect())
    }

    fn is_dir(&self, path: &str) -> bool {
        TreeRoot { tree: self.tree(), image: self.image(), cached: &[] }.is_dir(path)
    }

    fn is_file(&self, path: &str) -> bool {
        TreeRoot { tree: self.tree(), image: self.image(), cached: &[] }.is_file(path)
    }

    fn layer(&self, path: &str) -> Option<usize> {
        TreeRoot { tree: self.tree(), image: self.image(), cached: &[] }.layer(path)
    }

    fn stat(&self, path: &str) -> Option<PathStat> {
        TreeRoot { tree: self.tree(), image: self.image(), cached: &[] }.stat(path)
    }

    fn files(&self) -> Vec<String> {
        TreeRoot { tree: self.tree(), image: self.image(), cached: &[] }.files()
    }
}

fn read_limited(path: &str, r: impl Read, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(limit + 1).read_to_end(&mut buf).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge { path: path.to_owned(), size: buf.len() as u64, limit });
    }
    Ok(buf)
}

/// A directory on the host as a [`Root`] (an unpacked rootfs): what the tests compare
/// the merged view with.
#[derive(Debug, Clone)]
pub struct DirRoot {
    dir: std::path::PathBuf,
}

impl DirRoot {
    /// The tree under `dir`. Symlinks are followed as the host resolves them, so use
    /// it only on trees you trust.
    pub fn new(dir: impl Into<std::path::PathBuf>) -> DirRoot {
        DirRoot { dir: dir.into() }
    }
}

impl Root for DirRoot {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let p = self.dir.join(path);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => {}
            _ => return Ok(None),
        }
        let f = std::fs::File::open(&p).map_err(|e| Error::io("open", &p, e))?;
        read_limited(path, f, MAX_DATABASE_SIZE).map(Some)
    }

    fn is_dir(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.dir.join(path)).is_ok_and(|m| m.is_dir())
    }

    fn is_file(&self, path: &str) -> bool {
        std::fs::metadata(self.dir.join(path)).is_ok_and(|m| m.is_file())
    }

    fn layer(&self, path: &str) -> Option<usize> {
        std::fs::symlink_metadata(self.dir.join(path)).ok().map(|_| 0)
    }

    fn stat(&self, path: &str) -> Option<PathStat> {
        let m = std::fs::symlink_metadata(self.dir.join(path)).ok()?;
        Some(PathStat { is_dir: m.is_dir(), layer: 0 })
    }

    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(self.dir.join(&rel)) else { continue };
            for e in rd.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_owned) else { continue };
                let p = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(p),
                    Ok(t) if t.is_file() => out.push(p),
                    _ => {}
                }
            }
        }
        out.sort();
        out
    }
}
