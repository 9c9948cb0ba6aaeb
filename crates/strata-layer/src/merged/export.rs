//! Export: the flattened tree as one tar, its contents streamed from the layers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::{MergedTree, not_found};
use crate::decompress::Decoder;
use crate::entry::EntryKind;
use crate::error::{Error, Result};
use crate::memtree::{Inode, Kind};
use crate::sparse::{Expand, SparseMap};
use crate::stream::{HashOn, LayerStream, StreamOptions};
use crate::write::{LayerInfo, LayerWriter, WriteOptions};

/// Buffer for copying content: 256 KiB.
const CHUNK: usize = 256 * 1024;

/// What [`MergedTree::export_to`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportReport {
    /// Entries written.
    pub entries: u64,
    /// Of those, hard links.
    pub hardlinks: u64,
    /// Content bytes copied.
    pub content_bytes: u64,
    /// Content bytes that came out of their layer before the export needed them and
    /// went through the spool file (0 when every layer is in tar order).
    pub spooled_bytes: u64,
    /// Layers read (those holding content of the final tree), each once.
    pub layers_read: usize,
}

/// Options of [`MergedTree::export_to`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Directory of the spool file (an unnamed temporary file, made only when a layer
    /// is not in tar order); default the system's temporary directory.
    pub spool_dir: Option<PathBuf>,
    /// Decompress each layer on a thread of its own (up to [`FEED_DEPTH`] buffers of
    /// 128 KiB ahead of the export); `false` decompresses on the calling thread. The
    /// default does so when the machine has more than one core. Never changes the
    /// output.
    pub threads: Option<bool>,
}

/// Buffers a layer's decompressing thread may have ready ahead of the export: with
/// 128 KiB buffers, 512 KiB per layer being read.
pub const FEED_DEPTH: usize = 4;
/// Size of those buffers: a multiple of the tar block, large enough that channel
/// traffic is noise.
const FEED_CHUNK: usize = 128 * 1024;

impl ExportOptions {
    /// Set [`ExportOptions::threads`].
    pub fn threads(mut self, on: bool) -> Self {
        self.threads = Some(on);
        self
    }

    /// Set [`ExportOptions::spool_dir`].
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }
}

/// One layer being read by the export.
struct Cursor<'s> {
    stream: LayerStream<'s>,
    /// The inodes whose content the export needs from this layer, by offset (4 bytes
    /// a file: the tree has their offsets and sizes), and how many of them are done.
    needed: Vec<u32>,
    done: usize,
}

impl Cursor<'_> {
    /// Read and discard up to `to`.
    fn skip_to(&mut self, to: u64, buf: &mut [u8]) -> io::Result<()> {
        while self.stream.position() < to {
            let want = usize::try_from(to - self.stream.position()).unwrap_or(usize::MAX).min(buf.len());
            let n = self.stream.read(buf.get_mut(..want).unwrap_or_default())?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends early"));
            }
        }
        Ok(())
    }
}

/// Bytes a file's content takes in its layer: less than its size for a sparse file.
fn stored_size(n: &Inode, sparse: Option<&SparseMap>) -> u64 {
    sparse.map_or(n.size, SparseMap::stored)
}

/// A file's content from its stored bytes: a sparse file's holes as zeros.
fn content<'r, R: Read + 'r>(stored: R, n: &Inode, sparse: Option<&SparseMap>) -> Box<dyn Read + 'r> {
    match sparse {
        Some(map) => Box::new(Expand::new(stored, map.clone(), n.size)),
        None => Box::new(stored),
    }
}

/// Content of one file on its way to the writer: from its layer or from the spool.
enum DataReader<'a, 's> {
    Stream { cursor: &'a mut Cursor<'s>, left: u64 },
    Spool { file: &'a File, at: u64, left: u64 },
}

impl Read for DataReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DataReader::Stream { cursor, left } => {
                let want = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = cursor.stream.read(buf.get_mut(..want).unwrap_or_default())?;
                *left -= n as u64;
                Ok(n)
            }
            DataReader::Spool { file, at, left } => {
                let want = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = file.read_at(buf.get_mut(..want).unwrap_or_default(), *at)?;
                *at += n as u64;
                *left -= n as u64;
                Ok(n)
            }
        }
    }
}

/// The spool file: contents a layer gave before the export needed them.
struct Spool {
    file: Option<File>,
    len: u64,
    /// Where each spooled inode's content starts.
    at: HashMap<usize, u64>,
}

impl Spool {
    fn put(
        &mut self,
        cursor: &mut Cursor<'_>,
        ino: usize,
        size: u64,
        dir: Option<&Path>,
        buf: &mut [u8],
    ) -> Result<std::result::Result<(), io::Error>> {
        let path = || dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = match dir {
                    Some(d) => tempfile::tempfile_in(d),
                    None => tempfile::tempfile(),
                }
                .map_err(|source| Error::Io(strata_spec::IoError::new("create spool file", path(), source)))?;
                self.file.insert(f)
            }
        };
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let got = match cursor.stream.read(buf.get_mut(..want).unwrap_or_default()) {
                Ok(0) => return Ok(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends early"))),
                Ok(g) => g,
                Err(e) => return Ok(Err(e)),
            };
            file.write_all(buf.get(..got).unwrap_or_default())
                .map_err(|source| Error::Io(strata_spec::IoError::new("write spool file", path(), source)))?;
            left -= got as u64;
        }
        self.at.insert(ino, self.len);
        self.len += size;
        Ok(Ok(()))
    }
}

/// Export.
impl MergedTree {
    /// The sparse map of inode `ino`, if it is a sparse file.
    fn sparse_of(&self, ino: u32) -> Option<&SparseMap> {
        self.tree.extra(ino).and_then(|e| e.sparse.as_ref())
    }

    /// Where the content of inode `ino` is, if the export copies it from a layer (a
    /// non-empty regular file).
    fn needs_content(&self, ino: u32) -> Option<crate::memtree::DataSource> {
        self.tree.inode(ino).filter(|n| n.kind() == Kind::File && n.size > 0).and_then(Inode::source)
    }

    /// The offset and stored size of the content of inode `ino` in its layer.
    fn stored_at(&self, ino: u32) -> Option<(u64, u64)> {
        let src = self.needs_content(ino)?;
        let n = self.tree.inode(ino)?;
        Some((src.offset, stored_size(n, self.sparse_of(ino))))
    }

    /// Write the flattened tree as one tar (`docker export`, `crane export`) in a single
    /// pass: a [`LayerInfo`] with its `diff_id` and the blob's `digest`, compressed as
    /// `opts` says ([`strata_spec::Compression::None`] for a plain tar). See
    /// [`MergedTree::export_to`].
    pub fn export<W, R, F>(
        &self,
        sink: W,
        opts: &WriteOptions,
        open_layer: F,
        export: &ExportOptions,
    ) -> Result<(LayerInfo, ExportReport)>
    where
        W: Write,
        R: Read + Send,
        F: FnMut(usize) -> io::Result<R>,
    {
        let mut w = LayerWriter::new(sink, opts)?;
        let report = self.export_to(&mut w, open_layer, export)?;
        Ok((w.finish()?.0, report))
    }

    /// Append the flattened tree to `writer`, every path in tar order, with the
    /// writer's normalised headers:
    ///
    /// - no whiteouts (the tree has none); the root as `./` only when a layer declared
    ///   it; directories no layer declared as mode 0755, owner 0:0, mtime 0;
    /// - the paths of one inode (a hard link group) as one entry carrying the content,
    ///   under the first of its paths in tar order, and hard links to it, whichever of
    ///   its paths (if any) carried the content in the layers;
    /// - contents streamed from the layers: `open_layer(i)` is called at most once per
    ///   layer, only for layers holding content of the final tree, and each is read
    ///   once, from its start to its end (so its `diff_id` is verified again:
    ///   [`Error::DiffIdMismatch`] for a blob that is not the one folded), decompressed
    ///   on a thread of its own ([`ExportOptions::threads`]). Content a layer holds
    ///   before the export needs it (a layer not in tar order) goes through an unnamed
    ///   spool file ([`ExportOptions::spool_dir`]); memory stays bounded.
    pub fn export_to<W, R, F>(
        &self,
        writer: &mut LayerWriter<W>,
        open_layer: F,
        opts: &ExportOptions,
    ) -> Result<ExportReport>
    where
        W: Write,
        R: Read + Send,
        F: FnMut(usize) -> io::Result<R>,
    {
        let threads =
            opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() > 1).unwrap_or(false));
        if threads {
            std::thread::scope(|s| self.export_in(writer, open_layer, opts, Some(s)))
        } else {
            self.export_in(writer, open_layer, opts, None)
        }
    }

    fn export_in<'s, 'e, W, R, F>(
        &self,
        writer: &mut LayerWriter<W>,
        mut open_layer: F,
        opts: &ExportOptions,
        scope: Option<&'s std::thread::Scope<'s, 'e>>,
    ) -> Result<ExportReport>
    where
        W: Write,
        R: Read + Send + 's,
        F: FnMut(usize) -> io::Result<R>,
    {
        let mut report = ExportReport::default();
        // What each layer must give, in the order it holds it.
        let mut needed: Vec<Vec<u32>> = vec![Vec::new(); self.layers.len()];
        for (ino, _) in self.tree.inodes() {
            if let Some(src) = self.needs_content(ino)
                && let Some(v) = needed.get_mut(src.layer)
            {
                v.push(ino);
            }
        }
        for v in &mut needed {
            v.shrink_to_fit();
            // Inodes are mostly numbered in layer order already: nearly sorted.
            v.sort_unstable_by_key(|&ino| (self.needs_content(ino).map_or(0, |s| s.offset), ino));
        }
        // Dropped on every return, so that decompressing threads blocked on a full
        // channel see it closed and end before the scope joins them.
        let mut cursors: Vec<Option<Cursor<'s>>> = (0..self.layers.len()).map(|_| None).collect();
        let mut spool = Spool { file: None, len: 0, at: HashMap::new() };
        let mut first: HashMap<usize, PathBuf> = HashMap::new();
        let mut buf = vec![0u8; CHUNK];

        for (node, path) in self.tree.walk_tar_order() {
            let Some((ino32, n)) = self.tree.get(node) else { continue };
            if path.is_empty() && n.implicit() {
                continue;
            }
            let sparse = self.sparse_of(ino32);
            let ino = ino32 as usize;
            let mut e = self.entry(path, ino32, n);
            if n.kind() != Kind::Dir && n.nlink > 1 {
                if let Some(target) = first.get(&ino) {
                    e.meta.kind = EntryKind::HardLink { target: target.clone() };
                    e.meta.size = 0;
                    writer.append(&e.meta)?;
                    report.entries += 1;
                    report.hardlinks += 1;
                    continue;
                }
                first.insert(ino, e.meta.path.clone());
            }
            report.entries += 1;
            let Some(src) = n.source().filter(|_| n.kind() == Kind::File && n.size > 0) else {
                writer.append(&e.meta)?;
                continue;
            };
            report.content_bytes += n.size;
            let layer_name = || self.layers.get(src.layer).map(|l| l.name.clone()).unwrap_or_default();
            if let Some(at) = spool.at.remove(&ino) {
                let file = spool.file.as_ref().ok_or_else(|| Error::LayerChanged {
                    layer: layer_name(),
                    reason: "spooled content lost".into(),
                })?;
                let rd = DataReader::Spool { file, at, left: stored_size(n, sparse) };
                writer.append_file(&e.meta, &mut content(rd, n, sparse))?;
                continue;
            }
            let cursor = match cursors.get_mut(src.layer) {
                Some(Some(c)) => c,
                Some(slot) => {
                    let stats = self.layers.get(src.layer).ok_or_else(|| not_found(&e.meta.path, Errno::NOENT))?;
                    let reader = open_layer(src.layer)
                        .map_err(|source| Error::OpenLayer { layer: stats.name.clone(), source })?;
                    let dec = Decoder::without_gzip_crc(reader, Some(stats.compression), &stats.name)?;
                    // The decoding thread hashes: this one compresses the export.
                    let opts = StreamOptions::default()
                        .chunk(FEED_CHUNK)
                        .depth(FEED_DEPTH)
                        .digest(Some(stats.diff_id.algorithm()))
                        .hash_on(HashOn::Decoder);
                    let stream = LayerStream::start(scope, dec, &opts)?;
                    report.layers_read += 1;
                    let needed = needed.get_mut(src.layer).map(std::mem::take).unwrap_or_default();
                    slot.insert(Cursor { stream, needed, done: 0 })
                }
                None => return Err(not_found(&e.meta.path, Errno::NOENT)),
            };
            let changed = |c: &mut Cursor<'s>, e: io::Error| {
                let err = Error::LayerChanged { layer: layer_name(), reason: e.to_string() };
                c.stream.explain(err)
            };
            // Content of this layer before this one goes to the spool: the export needs
            // it later (each is needed once, and what was written already was passed).
            while let Some(&other) = cursor.needed.get(cursor.done) {
                let Some((off, size)) = self.stored_at(other) else {
                    cursor.done += 1;
                    continue;
                };
                if off >= src.offset {
                    break;
                }
                cursor.done += 1;
                if other == ino32 {
                    continue;
                }
                if let Err(e) = cursor.skip_to(off, &mut buf) {
                    return Err(changed(cursor, e));
                }
                if let Err(e) = spool.put(cursor, other as usize, size, opts.spool_dir.as_deref(), &mut buf)? {
                    return Err(changed(cursor, e));
                }
                report.spooled_bytes += size;
            }
            if cursor.needed.get(cursor.done) == Some(&ino32) {
                cursor.done += 1;
            }
            if cursor.stream.position() > src.offset {
                return Err(Error::LayerChanged { layer: layer_name(), reason: "content offsets out of order".into() });
            }
            if let Err(e) = cursor.skip_to(src.offset, &mut buf) {
                return Err(changed(cursor, e));
            }
            let rd = DataReader::Stream { cursor: &mut *cursor, left: stored_size(n, sparse) };
            let r = writer.append_file(&e.meta, &mut content(rd, n, sparse));
            if let Err(err) = r {
                // A failed read of the layer says more than the writer's view of it.
                return Err(match err {
                    Error::SourceChanged { .. } | Error::Io(_) => changed(cursor, io::Error::other(err.to_string())),
                    other => other,
                });
            }
        }
        // Every layer read is read to its end and its digest checked.
        for (i, c) in cursors.into_iter().enumerate() {
            let (Some(c), Some(stats)) = (c, self.layers.get(i)) else { continue };
            if let Some(actual) = c.stream.finish()?.digest
                && actual != stats.diff_id
            {
                return Err(Error::DiffIdMismatch {
                    layer: stats.name.clone(),
                    expected: stats.diff_id.clone(),
                    actual,
                });
            }
        }
        Ok(report)
    }
}
