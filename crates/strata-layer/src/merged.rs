//! The union merge in memory: fold the layers' headers into an index of the final tree,
//! without writing anything; list, stat, read one file, export the flattened tree as one
//! tar, and say how much of each layer the final tree still uses.
//!
//! The fold is the applier's algorithm ([`crate::apply_layers`]) run against an
//! in-memory tree instead of a directory: the same name checks ([`crate::path`]), the
//! same whiteout, opaque and replacement rules, the same resolution of parent paths
//! through symlinks inside the root, the same typed errors. See `docs/merged.md`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::Bound;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rustix::io::Errno;
use strata_spec::{Algorithm, Compression, Digest, Digester};

use crate::apply::LayerSource;
use crate::decompress::{Decoder, drain};
use crate::entry::{EntryKind, EntryMeta, Timestamp};
use crate::error::{Error, Result};
use crate::path::{self, Class, WHITEOUT_PREFIX};
use crate::plan::{HeaderPrint, Records};
use crate::read::{self, Limits, TarReader};
use crate::resolve::{self, Lookup, Node};
use crate::write::{LayerInfo, LayerWriter, WriteOptions};

/// Buffer between the decoder and the tar reader: 256 KiB, as the applier's.
const CHUNK: usize = 256 * 1024;
/// Headers sent from a scanning thread to the fold in one message.
const BATCH: usize = 512;
/// Batches in flight per layer between its scanning thread and the fold: 16 x 512
/// headers (about 2 MiB with their names), whatever the layer's size.
const DEPTH: usize = 16;

/// Options of [`MergedTree::build`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MergeOptions {
    /// Limits on header sizes and layer size (the applier's).
    pub limits: Limits,
    /// Threads decompressing and hashing layers at once; 0 means one per core, 1 reads
    /// every layer on the calling thread. Never changes the result.
    pub threads: usize,
}

impl MergeOptions {
    /// Set [`MergeOptions::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Set [`MergeOptions::threads`].
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
}

/// Where the content of a regular file is: which layer, which entry of its tar stream,
/// and where its bytes start in the uncompressed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataSource {
    /// Index of the layer (base first).
    pub layer: usize,
    /// Position of the entry in the layer's tar stream (0 for the first entry;
    /// extension headers are not entries).
    pub entry: u64,
    /// Offset of the first content byte in the uncompressed tar stream.
    pub offset: u64,
}

/// One path of the merged tree, with the metadata the unpacked tree has.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergedEntry {
    /// Path (relative, normalised; the root is the empty path), type, mode, owner, size,
    /// mtime and xattrs. The kind is never [`EntryKind::HardLink`]: the paths of one
    /// inode share it and its metadata, as `lstat` shows them; see
    /// [`MergedEntry::nlink`]. A symlink's mode is `0o777`, as on Linux.
    pub meta: EntryMeta,
    /// The layer that made this file (or last declared this directory).
    pub layer: usize,
    /// Identity of the file: paths with the same inode are hard links to one another.
    pub inode: u64,
    /// Paths of the final tree that share the inode (1 unless hard linked; 1 for
    /// directories).
    pub nlink: u32,
    /// A directory no layer declared (a missing parent, or an opaque marker's
    /// directory): mode 0755, owner 0:0, mtime 0 here, while the applier leaves such a
    /// directory at the time of the unpack.
    pub implicit: bool,
    /// Where the content is (regular files).
    pub source: Option<DataSource>,
}

/// What one layer is and how much of it the final tree uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// The layer's name (from its [`LayerSource`]).
    pub name: String,
    /// The compression detected.
    pub compression: Compression,
    /// Digest of the uncompressed tar, every byte of it (verified when expected).
    pub diff_id: Digest,
    /// Bytes read from the blob as stored (the descriptor's size for a whole blob).
    pub compressed_size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Tar entries (extension headers not counted), whiteouts included.
    pub entries: u64,
    /// Regular file entries (hard links not counted).
    pub files: u64,
    /// Whiteouts and opaque markers.
    pub whiteouts: u64,
    /// Content bytes of its regular file entries.
    pub bytes_added: u64,
    /// Of [`LayerStats::bytes_added`], the bytes of files that are not in the final
    /// tree under any path: deleted or overwritten by a later layer, or by a later entry
    /// of this layer.
    pub bytes_wasted: u64,
}

/// The whole image: totals of [`LayerStats`] and the efficiency figure.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Analysis {
    /// Sum of the layers' blob sizes.
    pub compressed_size: u64,
    /// Sum of the layers' uncompressed sizes.
    pub uncompressed_size: u64,
    /// Sum of [`LayerStats::bytes_added`].
    pub bytes_added: u64,
    /// Sum of [`LayerStats::bytes_wasted`].
    pub bytes_wasted: u64,
    /// Content bytes of the final tree, each file once however many paths it has:
    /// `bytes_added - bytes_wasted`.
    pub final_bytes: u64,
    /// `1 - bytes_wasted / bytes_added` (1 when nothing is added).
    pub efficiency: f64,
    /// Paths in the final tree (the root included).
    pub paths: u64,
    /// Regular files in the final tree (each inode once).
    pub files: u64,
}

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

// ---------------------------------------------------------------------------------------
// The tree

/// Type of an inode, with what only that type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
struct Inode {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timestamp,
    size: u64,
    /// Symlink target as stored; empty for other types.
    link: Box<[u8]>,
    /// Boxed: most files have none, and an inode per path is what the view's memory is.
    #[allow(clippy::box_collection)]
    xattrs: Option<Box<BTreeMap<OsString, Vec<u8>>>>,
    layer: usize,
    source: Option<DataSource>,
    /// Paths pointing at this inode; 0 for a free slot.
    nlink: u32,
    implicit: bool,
}

impl Inode {
    fn implicit_dir(layer: usize) -> Inode {
        Inode {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: Timestamp::default(),
            size: 0,
            link: Box::default(),
            xattrs: None,
            layer,
            source: None,
            nlink: 0,
            implicit: true,
        }
    }
}

/// Paths are keyed by their bytes with `/` replaced by NUL (which no name holds), so
/// that the map's byte order is [`crate::tar_order`]: a directory, then its whole
/// subtree, then its next sibling. The root is the empty key.
fn key_of(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().iter().map(|&b| if b == b'/' { 0 } else { b }).collect()
}

fn path_of(k: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(k.iter().map(|&b| if b == 0 { b'/' } else { b }).collect()))
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parent.len() + 1 + name.len());
    k.extend_from_slice(parent);
    if !parent.is_empty() {
        k.push(0);
    }
    k.extend_from_slice(name);
    k
}

/// Split a key into its parent and last component.
fn split_last(k: &[u8]) -> (&[u8], &[u8]) {
    match k.iter().rposition(|&b| b == 0) {
        Some(i) => (k.get(..i).unwrap_or_default(), k.get(i + 1..).unwrap_or_default()),
        None => (&[], k),
    }
}

/// The key range of `k`'s strict descendants.
fn subtree(k: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    if k.is_empty() {
        return (Bound::Excluded(Vec::new()), Bound::Unbounded);
    }
    let mut lo = k.to_vec();
    lo.push(0);
    let mut hi = k.to_vec();
    hi.push(1);
    (Bound::Included(lo), Bound::Excluded(hi))
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// The tree itself: path keys to inode slots.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    map: BTreeMap<Vec<u8>, usize>,
    inodes: Vec<Inode>,
    free: Vec<usize>,
    /// Bytes of regular files that left the tree, by the layer that added them.
    wasted: Vec<u64>,
}

impl Tree {
    /// The entries, as `(layer, position in its tar stream)`, whose contents are in
    /// the final tree: the regular files some path still names.
    pub(crate) fn live_sources(&self) -> std::collections::HashSet<(usize, u64)> {
        self.inodes
            .iter()
            .filter(|n| n.nlink > 0 && n.kind == Kind::File)
            .filter_map(|n| n.source.map(|s| (s.layer, s.entry)))
            .collect()
    }

    fn new() -> Tree {
        let mut t = Tree::default();
        let root = t.alloc(Inode::implicit_dir(0));
        t.link(Vec::new(), root);
        t
    }

    fn alloc(&mut self, inode: Inode) -> usize {
        match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.inodes.get_mut(i) {
                    *slot = inode;
                }
                i
            }
            None => {
                self.inodes.push(inode);
                self.inodes.len() - 1
            }
        }
    }

    fn link(&mut self, key: Vec<u8>, ino: usize) {
        if let Some(n) = self.inodes.get_mut(ino) {
            n.nlink += 1;
        }
        if let Some(old) = self.map.insert(key, ino) {
            self.unref(old);
        }
    }

    fn unref(&mut self, ino: usize) {
        let Some(n) = self.inodes.get_mut(ino) else { return };
        n.nlink = n.nlink.saturating_sub(1);
        if n.nlink == 0 {
            if n.kind == Kind::File
                && let Some(w) = self.wasted.get_mut(n.layer)
            {
                *w += n.size;
            }
            n.xattrs = None;
            n.link = Box::default();
            self.free.push(ino);
        }
    }

    fn get(&self, key: &[u8]) -> Option<(usize, &Inode)> {
        let &ino = self.map.get(key)?;
        self.inodes.get(ino).map(|n| (ino, n))
    }

    fn is_dir(&self, key: &[u8]) -> bool {
        self.get(key).is_some_and(|(_, n)| n.kind == Kind::Dir)
    }

    /// Remove `key` and everything under it.
    fn remove_all(&mut self, key: &[u8]) {
        let doomed: Vec<Vec<u8>> = self.map.range::<Vec<u8>, _>(subtree(key)).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            if let Some(ino) = self.map.remove(&k) {
                self.unref(ino);
            }
        }
        if !key.is_empty()
            && let Some(ino) = self.map.remove(key)
        {
            self.unref(ino);
        }
    }

    /// Names directly in directory `key`, in order.
    fn children(&self, key: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let (mut lo, hi) = subtree(key);
        let skip = if key.is_empty() { 0 } else { key.len() + 1 };
        while let Some((k, _)) = self.map.range::<Vec<u8>, _>((lo.clone(), hi.clone())).next() {
            let rest = k.get(skip..).unwrap_or_default();
            // Every key's parent is in the map, so the first key past a child's subtree
            // is the next child; take the first component in any case.
            let name_len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let name = rest.get(..name_len).unwrap_or_default().to_vec();
            let mut next = join(key, &name);
            next.push(1);
            lo = Bound::Included(next);
            out.push(name);
        }
        out
    }

    /// Resolve `path` (a key) inside the root as `openat2(RESOLVE_IN_ROOT)` would, with
    /// the applier's own walk ([`resolve::resolve`]), to the key of what it names. The
    /// last component is followed too when `follow_last`; without it, or when it is not a
    /// directory, it is returned as it is.
    fn walk(&self, path: &[u8], follow_last: bool) -> std::result::Result<Vec<u8>, Errno> {
        resolve::resolve(self, path, 0, follow_last).map(|r| r.path)
    }

    /// The directory `path` resolves to.
    fn open_dir(&self, path: &[u8]) -> std::result::Result<Vec<u8>, Errno> {
        let k = self.walk(path, true)?;
        if self.is_dir(&k) { Ok(k) } else { Err(Errno::NOTDIR) }
    }

    /// The directory `path` resolves to, made (mode 0755) with its missing ancestors
    /// when it does not exist, as the applier's `ensure_dir`.
    fn ensure_dir(&mut self, path: &[u8], layer: usize) -> std::result::Result<Vec<u8>, Errno> {
        match self.open_dir(path) {
            Err(Errno::NOENT) => {}
            r => return r,
        }
        if path.is_empty() {
            return Err(Errno::NOENT);
        }
        let (parent, name) = split_last(path);
        let pk = self.ensure_dir(parent, layer)?;
        let child = join(&pk, name);
        if self.get(&child).is_none() {
            let ino = self.alloc(Inode::implicit_dir(layer));
            self.link(child, ino);
        }
        self.open_dir(path)
    }
}

/// Keys are real paths with NUL for `/`: a lookup is one map lookup of the key.
impl Lookup for Tree {
    type Dir = ();

    fn lookup(&self, _: Option<&()>, key: &[u8], _: &[u8]) -> std::result::Result<Node<'_, ()>, Errno> {
        let Some((_, n)) = self.get(key) else { return Err(Errno::NOENT) };
        Ok(match n.kind {
            Kind::Dir => Node::Dir(()),
            Kind::Symlink => Node::Symlink(Cow::Borrowed(&n.link)),
            _ => Node::Other,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Reading layers

/// Counts the bytes read from a blob as stored.
struct CountRead<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The uncompressed stream of one layer: decoded, hashed, counted; its first error (a
/// decompression error, the layer size limit) kept, as it explains whatever the tar
/// reader makes of the failed read.
struct LayerStream<R: Read> {
    dec: Decoder<CountRead<R>>,
    digester: Option<Digester>,
    size: u64,
    max: Option<u64>,
    error: Option<Error>,
}

impl<R: Read> LayerStream<R> {
    fn open(
        reader: R,
        compression: Option<Compression>,
        name: &str,
        algorithm: Option<Algorithm>,
        max: Option<u64>,
    ) -> Result<(LayerStream<R>, Arc<AtomicU64>)> {
        let count = Arc::new(AtomicU64::new(0));
        let dec = Decoder::new(CountRead { inner: reader, count: count.clone() }, compression, name)?;
        Ok((LayerStream { dec, digester: algorithm.map(Digester::new), size: 0, max, error: None }, count))
    }

    fn fail(&mut self, e: Error) -> io::Error {
        let msg = e.to_string();
        if self.error.is_none() {
            self.error = Some(e);
        }
        io::Error::other(msg)
    }

    /// The stream's own error, if any, else `e`.
    fn explain(&mut self, e: Error) -> Error {
        self.error.take().unwrap_or(e)
    }
}

impl<R: Read> Read for LayerStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("layer stream failed"));
        }
        let n = match self.dec.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let err = self.dec.error(e);
                return Err(self.fail(err));
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        if let Some(d) = &mut self.digester {
            d.update(chunk);
        }
        self.size += n as u64;
        if let Some(limit) = self.max
            && self.size > limit
        {
            let err = Error::LimitExceeded {
                layer: self.dec.layer().to_owned(),
                entry: None,
                what: "uncompressed layer",
                actual: self.size,
                limit,
            };
            return Err(self.fail(err));
        }
        Ok(n)
    }
}

/// A buffered reader that counts the bytes consumed: where the tar reader is.
struct Counting<B> {
    inner: B,
    pos: u64,
}

impl<B: BufRead> Read for Counting<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<B: BufRead> BufRead for Counting<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

type LayerTar<R> = TarReader<Counting<BufReader<LayerStream<R>>>>;

fn layer_tar<R: Read>(stream: LayerStream<R>, limits: Limits, name: &str) -> LayerTar<R> {
    TarReader::new(Counting { inner: BufReader::with_capacity(CHUNK, stream), pos: 0 }, limits, name)
}

/// One header, as the fold needs it.
pub(crate) struct Raw {
    pub(crate) path: Vec<u8>,
    pub(crate) kind: read::EntryKind,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: read::Mtime,
    pub(crate) size: u64,
    pub(crate) dev: (u32, u32),
    pub(crate) link: Vec<u8>,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) ordinal: u64,
    pub(crate) offset: u64,
}

impl Raw {
    /// The header of `e`, the `ordinal`-th entry of its layer, its data at `offset`.
    pub(crate) fn of(e: &read::Entry, ordinal: u64, offset: u64) -> Raw {
        Raw {
            path: e.path.clone(),
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            size: e.size,
            dev: (e.dev_major, e.dev_minor),
            link: if matches!(e.kind, read::EntryKind::Symlink | read::EntryKind::Hardlink) {
                e.link.clone()
            } else {
                Vec::new()
            },
            xattrs: e.xattrs.clone(),
            ordinal,
            offset,
        }
    }
}

/// What a layer's scan found once it reached the end.
pub(crate) struct Scanned {
    pub(crate) compression: Compression,
    pub(crate) diff_id: Digest,
    pub(crate) size: u64,
    pub(crate) compressed: u64,
}

/// What a layer's scan sends to the fold.
pub(crate) enum Msg {
    Entries(Vec<Raw>),
    Done(Scanned),
    Failed(Error),
}

/// Read one layer's headers (content skipped, every byte hashed), sending them in
/// batches; the last message is `Done` or `Failed`. Stops when `send` returns false.
pub(crate) fn scan<R: Read>(src: LayerSource<R>, limits: &Limits, send: &mut dyn FnMut(Msg) -> bool) {
    let algorithm = src.diff_id.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
    let (stream, count) =
        match LayerStream::open(src.reader, src.compression, &src.name, Some(algorithm), limits.max_layer_size) {
            Ok(v) => v,
            Err(e) => {
                send(Msg::Failed(e));
                return;
            }
        };
    let compression = stream.dec.compression();
    let mut tar = layer_tar(stream, limits.clone(), &src.name);
    let mut batch = Vec::with_capacity(BATCH);
    let mut ordinal = 0u64;
    let failed = loop {
        let raw = match tar.next_entry() {
            // The data starts where the reader stands once the header is read.
            Ok(Some(_)) => {
                let offset = tar.get_mut().pos;
                Raw::of(tar.entry(), ordinal, offset)
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        // The applier reads the content of the regular files it creates, and so reports
        // a stream that ends inside one as truncated data of that entry: read it too.
        let creates_file = raw.kind == read::EntryKind::File
            && raw.size > 0
            && path::normalize(&raw.path).is_ok_and(|p| path::classify(&p) == Ok(Class::Plain));
        batch.push(raw);
        ordinal += 1;
        if creates_file && let Err(e) = tar.read_data(|_| Ok::<(), Error>(())) {
            break Some(e);
        }
        if batch.len() == BATCH && !send(Msg::Entries(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))) {
            return;
        }
    };
    if !batch.is_empty() && !send(Msg::Entries(batch)) {
        return;
    }
    let mut rest = tar.into_inner();
    let failed = failed.or_else(|| {
        // Read the stream to its true end so that the digest covers every byte.
        drain(&mut rest).err().map(|e| Error::InvalidTar {
            layer: src.name.clone(),
            entry: None,
            reason: format!("reading after the end of the archive: {e}"),
        })
    });
    let mut stream = rest.inner.into_inner();
    if let Some(e) = failed {
        send(Msg::Failed(stream.explain(e)));
        return;
    }
    if let Some(e) = stream.error.take() {
        send(Msg::Failed(e));
        return;
    }
    let diff_id = stream.digester.take().unwrap_or_else(|| Digester::new(algorithm)).finish();
    send(Msg::Done(Scanned { compression, diff_id, size: stream.size, compressed: count.load(Ordering::Relaxed) }));
}

// ---------------------------------------------------------------------------------------
// The fold

/// The applier's algorithm over the in-memory tree.
struct Fold {
    tree: Tree,
    layer: usize,
    name: String,
    /// Paths (as named by the entries, not resolved) this layer made: whiteouts and
    /// opaque markers do not touch them.
    added: BTreeSet<Vec<u8>>,
    /// The last parent directory resolved (logical key -> physical key); dropped
    /// whenever anything is removed.
    cache: Option<(Vec<u8>, Vec<u8>)>,
    stats: LayerStats,
    /// What a [`crate::Plan`] is made of, when one is being made.
    records: Option<Records>,
}

impl Fold {
    fn begin(&mut self, layer: usize, name: &str) {
        if let Some(r) = &mut self.records {
            r.prints.push(HeaderPrint::default());
        }
        self.layer = layer;
        self.name.clear();
        self.name.push_str(name);
        self.added.clear();
        self.cache = None;
        self.tree.wasted.push(0);
        self.stats = LayerStats {
            name: name.to_owned(),
            compression: Compression::None,
            diff_id: Digest::sha256_of(b""),
            compressed_size: 0,
            uncompressed_size: 0,
            entries: 0,
            files: 0,
            whiteouts: 0,
            bytes_added: 0,
            bytes_wasted: 0,
        };
    }

    fn end(&mut self, s: Scanned, expected: Option<Digest>) -> Result<LayerStats> {
        if let Some(expected) = expected
            && expected != s.diff_id
        {
            return Err(Error::DiffIdMismatch { layer: self.name.clone(), expected, actual: s.diff_id });
        }
        let mut stats = self.stats.clone();
        stats.compression = s.compression;
        stats.diff_id = s.diff_id;
        stats.uncompressed_size = s.size;
        stats.compressed_size = s.compressed;
        Ok(stats)
    }

    fn unsafe_entry(&self, entry: &[u8], reason: String) -> Error {
        Error::UnsafeEntry { layer: self.name.clone(), entry: String::from_utf8_lossy(entry).into_owned(), reason }
    }

    fn fs(&self, entry: &[u8], op: &'static str, e: Errno) -> Error {
        Error::Apply {
            layer: self.name.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            op,
            source: errno(e),
        }
    }

    fn entry(&mut self, r: Raw) -> Result<()> {
        self.stats.entries += 1;
        if let Some(print) = self.records.as_mut().and_then(|rec| rec.prints.last_mut()) {
            print.add(r.kind, &r.path, &r.link, r.size);
        }
        let path = path::normalize(&r.path).map_err(|p| self.unsafe_entry(&r.path, p.to_string()))?;
        let class = path::classify(&path).map_err(|p| self.unsafe_entry(&r.path, p.to_string()))?;
        if class == Class::AufsMeta {
            return Ok(());
        }
        if let Some(parent) = path.parent()
            && parent.iter().any(|c| c.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(self.unsafe_entry(&r.path, "whiteout prefix in a parent directory".into()));
        }
        match class {
            Class::Whiteout { target } => {
                self.stats.whiteouts += 1;
                self.whiteout(&key_of(&target), &r.path)
            }
            Class::Opaque { dir } => {
                self.stats.whiteouts += 1;
                self.opaque(&key_of(&dir), &r.path)
            }
            Class::Plain => {
                let uid = u32::try_from(r.uid).ok().filter(|&u| u != u32::MAX);
                let gid = u32::try_from(r.gid).ok().filter(|&g| g != u32::MAX);
                let (Some(uid), Some(gid)) = (uid, gid) else {
                    return Err(Error::InvalidTar {
                        layer: self.name.clone(),
                        entry: Some(String::from_utf8_lossy(&r.path).into_owned()),
                        reason: format!("owner {}:{} out of range", r.uid, r.gid),
                    });
                };
                self.create(&key_of(&path), &r, uid, gid)
            }
            Class::AufsMeta => Ok(()),
        }
    }

    fn has_added_under(&self, k: &[u8]) -> bool {
        if k.is_empty() {
            return !self.added.is_empty();
        }
        self.added.range::<Vec<u8>, _>(subtree(k)).next().is_some()
    }

    /// The resolved parent directory of `k` (made when `create`), and `k`'s last name.
    fn parent<'k>(&mut self, k: &'k [u8], create: bool) -> std::result::Result<(Vec<u8>, &'k [u8]), Errno> {
        let (parent, name) = split_last(k);
        if let Some((lk, pk)) = &self.cache
            && lk == parent
        {
            return Ok((pk.clone(), name));
        }
        let pk = if create { self.tree.ensure_dir(parent, self.layer)? } else { self.tree.open_dir(parent)? };
        self.cache = Some((parent.to_vec(), pk.clone()));
        Ok((pk, name))
    }

    fn remove_all(&mut self, k: &[u8]) {
        self.tree.remove_all(k);
        self.cache = None;
    }

    fn whiteout(&mut self, target: &[u8], entry: &[u8]) -> Result<()> {
        if self.added.contains(target) {
            return Ok(());
        }
        let (pk, name) = match self.parent(target, false) {
            Ok(v) => v,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(self.fs(entry, "resolve whiteout parent", e)),
        };
        let k = join(&pk, name);
        let Some((_, n)) = self.tree.get(&k) else { return Ok(()) };
        if n.kind == Kind::Dir && self.has_added_under(target) {
            self.clear_lower(&k, target);
        } else {
            self.remove_all(&k);
        }
        Ok(())
    }

    fn opaque(&mut self, dir: &[u8], entry: &[u8]) -> Result<()> {
        let k = if dir.is_empty() {
            Vec::new()
        } else {
            let (pk, name) = self.parent(dir, true).map_err(|e| self.fs(entry, "resolve parent directory", e))?;
            let k = join(&pk, name);
            if !self.tree.is_dir(&k) {
                if self.tree.get(&k).is_some() {
                    self.remove_all(&k);
                }
                let ino = self.tree.alloc(Inode::implicit_dir(self.layer));
                self.tree.link(k.clone(), ino);
            }
            k
        };
        self.clear_lower(&k, dir);
        self.cache = None;
        Ok(())
    }

    /// Remove from directory `k` (named `logical` by the layer) everything lower layers
    /// put there, keeping what this layer added and the directories leading to it.
    fn clear_lower(&mut self, k: &[u8], logical: &[u8]) {
        for name in self.tree.children(k) {
            let child = join(k, &name);
            let child_logical = join(logical, &name);
            let added = self.added.contains(&child_logical);
            if self.tree.is_dir(&child) && (added || self.has_added_under(&child_logical)) {
                self.clear_lower(&child, &child_logical);
            } else if !added {
                self.remove_all(&child);
            }
        }
    }

    fn create(&mut self, logical: &[u8], r: &Raw, uid: u32, gid: u32) -> Result<()> {
        let entry = &r.path[..];
        let mut xattrs = BTreeMap::new();
        for (k, v) in &r.xattrs {
            xattrs.insert(OsString::from_vec(k.clone()), v.clone());
        }
        let mtime = Timestamp::new(r.mtime.secs, i64::from(r.mtime.nanos));
        if logical.is_empty() {
            if r.kind != read::EntryKind::Dir {
                return Err(self.unsafe_entry(entry, format!("the root can only be a directory, not a {:?}", r.kind)));
            }
            // As the applier, the root is not counted among the paths this layer made.
            self.dir_meta(Vec::new(), r.mode, uid, gid, mtime, xattrs);
            return Ok(());
        }
        let (pk, name) = self.parent(logical, true).map_err(|e| self.fs(entry, "resolve parent directory", e))?;
        let k = join(&pk, name);
        let new = |kind: Kind, mode: u32, size: u64, link: &[u8], source: Option<DataSource>| Inode {
            kind,
            mode,
            uid,
            gid,
            mtime,
            size,
            link: link.into(),
            xattrs: None,
            layer: 0,
            source,
            nlink: 0,
            implicit: false,
        };
        let inode = match r.kind {
            read::EntryKind::Dir => {
                if self.tree.is_dir(&k) {
                    self.dir_meta(k, r.mode, uid, gid, mtime, xattrs);
                } else {
                    self.replace(k, new(Kind::Dir, r.mode, 0, b"", None), xattrs);
                }
                self.added.insert(logical.to_vec());
                return Ok(());
            }
            read::EntryKind::File => {
                self.stats.files += 1;
                self.stats.bytes_added += r.size;
                let source = DataSource { layer: self.layer, entry: r.ordinal, offset: r.offset };
                if let Some(rec) = &mut self.records {
                    rec.files.push((self.layer, r.ordinal, r.size));
                }
                new(Kind::File, r.mode, r.size, b"", Some(source))
            }
            read::EntryKind::Symlink => {
                if r.link.is_empty() || r.link.contains(&0) {
                    return Err(self.unsafe_entry(entry, "symlink with an empty target or a NUL in it".into()));
                }
                new(Kind::Symlink, 0o777, 0, &r.link, None)
            }
            read::EntryKind::Hardlink => {
                self.hardlink(logical, k, r)?;
                self.added.insert(logical.to_vec());
                return Ok(());
            }
            read::EntryKind::Char => new(Kind::Char(r.dev.0, r.dev.1), r.mode, 0, b"", None),
            read::EntryKind::Block => new(Kind::Block(r.dev.0, r.dev.1), r.mode, 0, b"", None),
            read::EntryKind::Fifo => new(Kind::Fifo, r.mode, 0, b"", None),
        };
        self.replace(k, inode, xattrs);
        self.added.insert(logical.to_vec());
        Ok(())
    }

    /// Put a new inode at `k`, replacing whatever is there (a directory with its
    /// subtree).
    fn replace(&mut self, k: Vec<u8>, mut inode: Inode, xattrs: BTreeMap<OsString, Vec<u8>>) {
        if self.tree.get(&k).is_some() {
            self.remove_all(&k);
        }
        inode.layer = self.layer;
        inode.xattrs = (!xattrs.is_empty()).then(|| Box::new(xattrs));
        let ino = self.tree.alloc(inode);
        self.tree.link(k, ino);
    }

    /// A directory entry over an existing directory: its contents stay; mode, owner and
    /// mtime are replaced; xattrs are set over the ones it has (the applier sets, never
    /// removes).
    fn dir_meta(
        &mut self,
        k: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Timestamp,
        xattrs: BTreeMap<OsString, Vec<u8>>,
    ) {
        let layer = self.layer;
        let Some(&ino) = self.tree.map.get(&k) else { return };
        let Some(n) = self.tree.inodes.get_mut(ino) else { return };
        (n.mode, n.uid, n.gid, n.mtime, n.layer, n.implicit) = (mode, uid, gid, mtime, layer, false);
        if !xattrs.is_empty() {
            n.xattrs.get_or_insert_with(Box::default).extend(xattrs);
        }
    }

    fn hardlink(&mut self, logical: &[u8], k: Vec<u8>, r: &Raw) -> Result<()> {
        let entry = &r.path[..];
        let target = path::normalize(&r.link).map_err(|p| {
            self.unsafe_entry(entry, format!("hard link target {:?}: {p}", String::from_utf8_lossy(&r.link)))
        })?;
        if target.as_os_str().is_empty() {
            return Err(self.unsafe_entry(entry, "hard link to the root".into()));
        }
        let target = key_of(&target);
        if target == logical {
            return Ok(()); // a link to itself: nothing to do
        }
        let (tparent, tname) = split_last(&target);
        let tdir = self.tree.open_dir(tparent).map_err(|e| self.fs(entry, "resolve hard link target", e))?;
        let tk = join(&tdir, tname);
        // linkat(2): the old name is looked up first, then the new one (EEXIST: the
        // applier removes what is there and links again), then a directory is refused.
        let Some((_, _)) = self.tree.get(&tk) else { return Err(self.fs(entry, "link", Errno::NOENT)) };
        if self.tree.get(&k).is_some() {
            self.remove_all(&k);
        }
        let Some((ino, n)) = self.tree.get(&tk) else { return Err(self.fs(entry, "link", Errno::NOENT)) };
        if n.kind == Kind::Dir {
            return Err(self.fs(entry, "link", Errno::PERM));
        }
        let source = n.source.map(|s| (s.layer, s.entry));
        self.tree.link(k, ino);
        if let Some(rec) = &mut self.records {
            rec.links.push((self.layer, r.ordinal, source));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The merged tree

/// The final tree of a stack of layers, folded from their headers in memory.
///
/// Memory grows with the number of paths (about 150 bytes each plus their names), never
/// with the layers' sizes: contents are skipped while folding, and read again from the
/// layers only when asked for ([`MergedTree::read_file`], [`MergedTree::export_to`]).
#[derive(Debug)]
pub struct MergedTree {
    tree: Tree,
    layers: Vec<LayerStats>,
    limits: Limits,
}

/// Building.
impl MergedTree {
    /// Fold `layers`, base first, into the final tree, verifying each layer's `diff_id`
    /// when its source gives one (an [`Error::DiffIdMismatch`] naming the layer).
    ///
    /// Every rule of [`crate::apply_layers`] applies, with the same errors for hostile
    /// input (the applier's [`Error::Apply`] errors carry the `errno` the file system
    /// would have given). Layers are decompressed and hashed on up to
    /// [`MergeOptions::threads`] threads at once, each reading ahead a bounded number of
    /// headers; the fold itself runs on the calling thread, layer after layer.
    pub fn build<R, I>(layers: I, opts: &MergeOptions) -> Result<MergedTree>
    where
        R: Read + Send,
        I: IntoIterator<Item = LayerSource<R>>,
    {
        let (tree, stats, _) = fold_sources(layers, opts, false)?;
        Ok(MergedTree { tree, layers: stats, limits: opts.limits.clone() })
    }
}

/// [`fold_layers`] over layer sources, decompressed and hashed by [`scan`], each
/// `diff_id` checked.
pub(crate) fn fold_sources<R, I>(layers: I, opts: &MergeOptions, records: bool) -> Result<Folded>
where
    R: Read + Send,
    I: IntoIterator<Item = LayerSource<R>>,
{
    let sources: Vec<LayerSource<R>> = layers.into_iter().collect();
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let expected: Vec<Option<Digest>> = sources.iter().map(|s| s.diff_id.clone()).collect();
    fold_layers(sources, &names, &expected, &opts.limits, opts.threads, scan, records)
}

/// A tree folded from layers, with the figures of each layer and, when asked for, what a
/// [`crate::Plan`] is made of.
pub(crate) type Folded = (Tree, Vec<LayerStats>, Option<Records>);

/// Fold `sources`, base first: `scanner` reads one layer's headers and sends them (see
/// [`scan`]), on up to `threads` threads at once (0: one per core), while the fold runs
/// on the calling thread, layer after layer. `names` and `expected` give each layer's
/// name and the `diff_id` to check its scan against.
pub(crate) fn fold_layers<S, F>(
    sources: Vec<S>,
    names: &[String],
    expected: &[Option<Digest>],
    limits: &Limits,
    threads: usize,
    scanner: F,
    records: bool,
) -> Result<Folded>
where
    S: Send,
    F: Fn(S, &Limits, &mut dyn FnMut(Msg) -> bool) + Sync,
{
    {
        let n = sources.len();
        let threads = match threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            t => t,
        }
        .min(n);
        let mut fold = Fold {
            tree: Tree::new(),
            layer: 0,
            name: String::new(),
            added: BTreeSet::new(),
            cache: None,
            stats: LayerStats {
                name: String::new(),
                compression: Compression::None,
                diff_id: Digest::sha256_of(b""),
                compressed_size: 0,
                uncompressed_size: 0,
                entries: 0,
                files: 0,
                whiteouts: 0,
                bytes_added: 0,
                bytes_wasted: 0,
            },
            records: records.then(Records::default),
        };
        let mut stats = Vec::with_capacity(n);
        let layer_name = |i: usize| names.get(i).cloned().unwrap_or_default();
        let expected = |i: usize| expected.get(i).and_then(Option::as_ref);

        /// Fold one message; `Ok(Some)` at the end of the layer.
        fn take(fold: &mut Fold, msg: Msg, expected: Option<&Digest>) -> Result<Option<LayerStats>> {
            match msg {
                Msg::Entries(v) => {
                    for r in v {
                        fold.entry(r)?;
                    }
                    Ok(None)
                }
                Msg::Done(s) => fold.end(s, expected.cloned()).map(Some),
                Msg::Failed(e) => Err(e),
            }
        }

        if threads <= 1 {
            for (i, src) in sources.into_iter().enumerate() {
                fold.begin(i, &layer_name(i));
                let mut outcome: Option<Result<LayerStats>> = None;
                scanner(src, limits, &mut |msg| match take(&mut fold, msg, expected(i)) {
                    Ok(None) => true,
                    Ok(Some(s)) => {
                        outcome = Some(Ok(s));
                        true
                    }
                    Err(e) => {
                        outcome = Some(Err(e));
                        false
                    }
                });
                match outcome {
                    Some(r) => stats.push(r?),
                    None => {
                        return Err(Error::InvalidTar {
                            layer: layer_name(i),
                            entry: None,
                            reason: "reading stopped early".into(),
                        });
                    }
                }
            }
        } else {
            let slots: Vec<Mutex<Option<S>>> = sources.into_iter().map(|s| Mutex::new(Some(s))).collect();
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::sync_channel::<Msg>(DEPTH)).unzip();
            let next = AtomicUsize::new(0);
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| -> Result<()> {
                for _ in 0..threads {
                    let (slots, txs, next, stop, scanner) = (&slots, &txs, &next, &stop, &scanner);
                    std::thread::Builder::new()
                        .name("strata-merge".into())
                        .spawn_scoped(s, move || {
                            // Layers are taken in order, so the layer the fold waits for
                            // is always being read (or done).
                            loop {
                                let i = next.fetch_add(1, Ordering::SeqCst);
                                if i >= slots.len() || stop.load(Ordering::SeqCst) {
                                    return;
                                }
                                let src = slots.get(i).and_then(|m| m.lock().ok().and_then(|mut g| g.take()));
                                let (Some(src), Some(tx)) = (src, txs.get(i)) else { return };
                                scanner(src, limits, &mut |m| !stop.load(Ordering::SeqCst) && tx.send(m).is_ok());
                            }
                        })
                        .map_err(|source| Error::Io { op: "spawn thread", path: PathBuf::new(), source })?;
                }
                let result = (|| {
                    for (i, rx) in rxs.iter().enumerate() {
                        fold.begin(i, &layer_name(i));
                        loop {
                            let Ok(msg) = rx.recv() else {
                                return Err(Error::InvalidTar {
                                    layer: layer_name(i),
                                    entry: None,
                                    reason: "reading stopped early".into(),
                                });
                            };
                            if let Some(st) = take(&mut fold, msg, expected(i))? {
                                stats.push(st);
                                break;
                            }
                        }
                    }
                    Ok(())
                })();
                if result.is_err() {
                    stop.store(true, Ordering::SeqCst);
                    // Unblock senders: drain what is queued so that every thread sees
                    // the stop flag at its next send.
                    for rx in &rxs {
                        while rx.try_recv().is_ok() {}
                    }
                }
                drop(rxs);
                result
            })?;
        }
        let mut tree = fold.tree;
        for (st, w) in stats.iter_mut().zip(&tree.wasted) {
            st.bytes_wasted = *w;
        }
        tree.wasted.clear();
        Ok((tree, stats, fold.records))
    }
}

fn not_found(path: &Path, e: Errno) -> Error {
    let reason = match e {
        Errno::LOOP => "too many levels of symbolic links",
        Errno::NOTDIR => "a component is not a directory",
        _ => "no such file or directory",
    };
    Error::PathNotFound { path: path.to_path_buf(), reason }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Char(..) => "char device",
        Kind::Block(..) => "block device",
        Kind::Fifo => "fifo",
    }
}

/// Looking things up.
impl MergedTree {
    /// The layers, base first, with their sizes and what the final tree keeps of them.
    pub fn layers(&self) -> &[LayerStats] {
        &self.layers
    }

    /// Paths in the final tree, the root included.
    pub fn len(&self) -> usize {
        self.tree.map.len()
    }

    /// Whether the tree is only its root.
    pub fn is_empty(&self) -> bool {
        self.tree.map.len() <= 1
    }

    fn entry(&self, key: &[u8], ino: usize, n: &Inode) -> MergedEntry {
        let kind = match n.kind {
            Kind::File => EntryKind::File,
            Kind::Dir => EntryKind::Dir,
            Kind::Symlink => EntryKind::Symlink { target: PathBuf::from(OsStr::from_bytes(&n.link)) },
            Kind::Char(major, minor) => EntryKind::CharDevice { major, minor },
            Kind::Block(major, minor) => EntryKind::BlockDevice { major, minor },
            Kind::Fifo => EntryKind::Fifo,
        };
        MergedEntry {
            meta: EntryMeta {
                path: path_of(key),
                kind,
                mode: n.mode,
                uid: n.uid,
                gid: n.gid,
                size: n.size,
                mtime: n.mtime,
                xattrs: n.xattrs.as_deref().cloned().unwrap_or_default(),
            },
            layer: n.layer,
            inode: ino as u64,
            nlink: if n.kind == Kind::Dir { 1 } else { n.nlink },
            implicit: n.implicit,
            source: n.source,
        }
    }

    /// The key `path` names: normalised, parents resolved inside the root (symlinks
    /// followed as the applier follows them), the last component followed when
    /// `follow`.
    fn lookup(&self, path: &Path, follow: bool) -> Result<Vec<u8>> {
        let norm = path::normalize(path.as_os_str().as_bytes()).map_err(|p| Error::PathNotFound {
            path: path.to_path_buf(),
            reason: match p {
                path::NameProblem::Nul => "path has a NUL byte",
                _ => "path has a '..' component",
            },
        })?;
        self.tree.walk(&key_of(&norm), follow).map_err(|e| not_found(path, e))
    }

    /// The entry at `path` (`/etc/passwd` and `etc/passwd` alike), like `lstat` inside
    /// the unpacked tree: symlinks in parent components are followed inside the root,
    /// the last component is not. The entry's path is where it really is.
    pub fn stat(&self, path: impl AsRef<Path>) -> Result<MergedEntry> {
        let path = path.as_ref();
        let k = self.lookup(path, false)?;
        let (ino, n) = self.tree.get(&k).ok_or_else(|| not_found(path, Errno::NOENT))?;
        Ok(self.entry(&k, ino, n))
    }

    /// The entries directly in directory `dir` (symlinks followed), sorted by name.
    pub fn list(&self, dir: impl AsRef<Path>) -> Result<Vec<MergedEntry>> {
        let dir = dir.as_ref();
        let k = self.lookup(dir, true)?;
        match self.tree.get(&k) {
            Some((_, n)) if n.kind == Kind::Dir => {}
            Some((_, n)) => {
                return Err(Error::WrongKind { path: dir.to_path_buf(), expected: "dir", found: kind_name(n.kind) });
            }
            None => return Err(not_found(dir, Errno::NOENT)),
        }
        let mut out = Vec::new();
        for name in self.tree.children(&k) {
            let ck = join(&k, &name);
            if let Some((ino, n)) = self.tree.get(&ck) {
                out.push(self.entry(&ck, ino, n));
            }
        }
        Ok(out)
    }

    /// Every path of the final tree, the root first, in tar order ([`crate::tar_order`]).
    pub fn iter(&self) -> impl Iterator<Item = MergedEntry> + '_ {
        self.tree.map.iter().filter_map(|(k, &ino)| self.tree.inodes.get(ino).map(|n| self.entry(k, ino, n)))
    }

    /// Per layer and whole-image figures: how many bytes each layer adds and how many of
    /// them the final tree no longer has (see `docs/merged.md` for the definitions).
    pub fn analysis(&self) -> Analysis {
        let sum = |f: fn(&LayerStats) -> u64| self.layers.iter().map(f).sum::<u64>();
        let (added, wasted) = (sum(|l| l.bytes_added), sum(|l| l.bytes_wasted));
        let files = self.tree.inodes.iter().filter(|n| n.nlink > 0 && n.kind == Kind::File).count() as u64;
        Analysis {
            compressed_size: sum(|l| l.compressed_size),
            uncompressed_size: sum(|l| l.uncompressed_size),
            bytes_added: added,
            bytes_wasted: wasted,
            final_bytes: added.saturating_sub(wasted),
            efficiency: if added == 0 { 1.0 } else { 1.0 - wasted as f64 / added as f64 },
            paths: self.tree.map.len() as u64,
            files,
        }
    }
}

/// The content of one file of the merged tree, read from its layer. Returned by
/// [`MergedTree::read_file`].
pub struct FileReader<R: Read> {
    inner: Counting<BufReader<LayerStream<R>>>,
    left: u64,
    layer: String,
}

impl<R: Read> std::fmt::Debug for FileReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader").field("layer", &self.layer).field("left", &self.left).finish()
    }
}

impl<R: Read> Read for FileReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("layer {}: file content ends {} bytes short", self.layer, self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reading contents.
impl MergedTree {
    /// A reader of the content of the regular file at `path` (symlinks followed inside
    /// the root, as `open` would; a hard link reads its inode's content, wherever it came
    /// from). `open_layer(i)` opens layer `i`'s blob as stored again; the layer is
    /// decompressed up to the file's entry, whose header is checked against the one
    /// folded ([`Error::LayerChanged`] if it is not the same layer). The `diff_id` is
    /// not checked again: that needs the whole layer (use a verifying blob reader, or
    /// [`MergedTree::export_to`], which checks it).
    pub fn read_file<R, F>(&self, path: impl AsRef<Path>, open_layer: F) -> Result<FileReader<R>>
    where
        R: Read,
        F: FnOnce(usize) -> io::Result<R>,
    {
        let path = path.as_ref();
        let k = self.lookup(path, true)?;
        let (_, n) = self.tree.get(&k).ok_or_else(|| not_found(path, Errno::NOENT))?;
        let (Kind::File, Some(src)) = (n.kind, n.source) else {
            return Err(Error::WrongKind { path: path.to_path_buf(), expected: "file", found: kind_name(n.kind) });
        };
        let stats = self.layers.get(src.layer).ok_or_else(|| not_found(path, Errno::NOENT))?;
        let name = stats.name.clone();
        let reader = open_layer(src.layer).map_err(|source| Error::OpenLayer { layer: name.clone(), source })?;
        let (stream, _) = LayerStream::open(reader, Some(stats.compression), &name, None, self.limits.max_layer_size)?;
        let mut tar = layer_tar(stream, self.limits.clone(), &name);
        let changed = |reason: String| Error::LayerChanged { layer: name.clone(), reason };
        let mut ordinal = 0u64;
        loop {
            let size = match tar.next_entry() {
                Ok(Some(e)) => e.size,
                Ok(None) => return Err(changed(format!("it ends before entry {}", src.entry))),
                Err(e) => {
                    let mut inner = tar.into_inner().inner.into_inner();
                    return Err(inner.explain(e));
                }
            };
            if ordinal == src.entry {
                let at = tar.get_mut().pos;
                if size != n.size || at != src.offset {
                    return Err(changed(format!(
                        "entry {} has {size} bytes at offset {at}, not {} at {}",
                        src.entry, n.size, src.offset
                    )));
                }
                return Ok(FileReader { inner: tar.into_inner(), left: n.size, layer: name });
            }
            ordinal += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Export

/// What a layer's decompressing thread ends with: the stream's error, or its digest.
type FeedEnd = std::result::Result<Option<Digest>, Error>;

/// A layer's uncompressed stream as the export reads it: decoded on this thread, or on a
/// thread of its own that sends buffers through a bounded channel.
enum Feed<'s, R: Read> {
    Inline(Box<LayerStream<R>>),
    Thread {
        rx: Option<mpsc::Receiver<Vec<u8>>>,
        back: mpsc::SyncSender<Vec<u8>>,
        cur: Vec<u8>,
        at: usize,
        handle: Option<std::thread::ScopedJoinHandle<'s, FeedEnd>>,
        layer: String,
    },
}

impl<'s, R: Read + Send + 's> Feed<'s, R> {
    fn start<'e>(stream: LayerStream<R>, scope: Option<&'s std::thread::Scope<'s, 'e>>, layer: &str) -> Result<Self> {
        let Some(scope) = scope else { return Ok(Feed::Inline(Box::new(stream))) };
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(FEED_DEPTH);
        let (back, back_rx) = mpsc::sync_channel::<Vec<u8>>(FEED_DEPTH + 2);
        let name = layer.to_owned();
        let handle = std::thread::Builder::new()
            .name("strata-export".into())
            .spawn_scoped(scope, move || -> FeedEnd {
                let mut stream = stream;
                loop {
                    let mut b = back_rx.try_recv().unwrap_or_default();
                    b.resize(FEED_CHUNK, 0);
                    match crate::decompress::read_full(&mut stream, &mut b) {
                        Ok(0) => break,
                        Ok(n) => {
                            b.truncate(n);
                            if tx.send(b).is_err() {
                                return Ok(None); // the export stopped
                            }
                        }
                        Err(e) => {
                            let err = Error::LayerChanged { layer: name, reason: e.to_string() };
                            return Err(stream.explain(err));
                        }
                    }
                }
                Ok(stream.digester.take().map(Digester::finish))
            })
            .map_err(|source| Error::Io { op: "spawn thread", path: PathBuf::new(), source })?;
        Ok(Feed::Thread { rx: Some(rx), back, cur: Vec::new(), at: 0, handle: Some(handle), layer: layer.to_owned() })
    }

    /// The stream's own error, if it failed, else `e`. (Stops a decompressing thread.)
    fn explain(&mut self, e: Error) -> Error {
        match self {
            Feed::Inline(s) => s.explain(e),
            Feed::Thread { rx, handle, .. } => {
                drop(rx.take());
                match handle.take().map(|h| h.join()) {
                    Some(Ok(Err(err))) => err,
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    _ => e,
                }
            }
        }
    }

    /// Read to the end and return the digest of the whole stream.
    fn finish(mut self, buf: &mut [u8]) -> Result<Option<Digest>> {
        loop {
            match self.read(buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let layer = match &self {
                        Feed::Inline(s) => s.dec.layer().to_owned(),
                        Feed::Thread { layer, .. } => layer.clone(),
                    };
                    let err = Error::LayerChanged { layer, reason: e.to_string() };
                    return Err(self.explain(err));
                }
            }
        }
        match self {
            Feed::Inline(mut s) => Ok(s.digester.take().map(Digester::finish)),
            Feed::Thread { rx, mut handle, layer, .. } => {
                drop(rx);
                match handle.take().map(|h| h.join()) {
                    Some(Ok(end)) => end,
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    None => Err(Error::LayerChanged { layer, reason: "read after it failed".into() }),
                }
            }
        }
    }
}

impl<R: Read> Read for Feed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Feed::Inline(s) => s.read(buf),
            Feed::Thread { rx, back, cur, at, .. } => {
                if *at >= cur.len() {
                    let old = std::mem::take(cur);
                    if old.capacity() > 0 {
                        let _ = back.try_send(old); // recycled by the producer
                    }
                    *at = 0;
                    // A closed channel is the end of the stream, or the producer's error,
                    // which `explain` and `finish` collect when they join it.
                    match rx.as_ref().map(mpsc::Receiver::recv) {
                        Some(Ok(v)) => *cur = v,
                        _ => return Ok(0),
                    }
                }
                let avail = cur.get(*at..).unwrap_or_default();
                let n = avail.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
                    dst.copy_from_slice(src);
                }
                *at += n;
                Ok(n)
            }
        }
    }
}

/// One layer being read by the export, at `pos` bytes into its uncompressed stream.
struct Cursor<'s, R: Read> {
    feed: Feed<'s, R>,
    pos: u64,
    /// Content the export still needs from this layer: (offset, size, inode), by offset.
    needed: VecDeque<(u64, u64, usize)>,
}

impl<R: Read> Cursor<'_, R> {
    /// Read and discard up to `to`.
    fn skip_to(&mut self, to: u64, buf: &mut [u8]) -> io::Result<()> {
        while self.pos < to {
            let want = usize::try_from(to - self.pos).unwrap_or(usize::MAX).min(buf.len());
            let n = self.feed.read(buf.get_mut(..want).unwrap_or_default())?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends early"));
            }
            self.pos += n as u64;
        }
        Ok(())
    }
}

/// Content of one file on its way to the writer: from its layer or from the spool.
enum DataReader<'a, 's, R: Read> {
    Stream { cursor: &'a mut Cursor<'s, R>, left: u64 },
    Spool { file: &'a File, at: u64, left: u64 },
}

impl<R: Read> Read for DataReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DataReader::Stream { cursor, left } => {
                let want = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = cursor.feed.read(buf.get_mut(..want).unwrap_or_default())?;
                cursor.pos += n as u64;
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
    fn put<R: Read>(
        &mut self,
        cursor: &mut Cursor<'_, R>,
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
                .map_err(|source| Error::Io { op: "create spool file", path: path(), source })?;
                self.file.insert(f)
            }
        };
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let got = match cursor.feed.read(buf.get_mut(..want).unwrap_or_default()) {
                Ok(0) => return Ok(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "layer ends early"))),
                Ok(g) => g,
                Err(e) => return Ok(Err(e)),
            };
            cursor.pos += got as u64;
            file.write_all(buf.get(..got).unwrap_or_default()).map_err(|source| Error::Io {
                op: "write spool file",
                path: path(),
                source,
            })?;
            left -= got as u64;
        }
        self.at.insert(ino, self.len);
        self.len += size;
        Ok(Ok(()))
    }
}

/// Export.
impl MergedTree {
    /// Write the flattened tree as one tar (`docker export`, `crane export`) in a single
    /// pass: a [`LayerInfo`] with its `diff_id` and the blob's `digest`, compressed as
    /// `opts` says ([`Compression::None`] for a plain tar). See
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
        let mut needed: Vec<VecDeque<(u64, u64, usize)>> = vec![VecDeque::new(); self.layers.len()];
        for (ino, n) in self.tree.inodes.iter().enumerate() {
            if n.nlink > 0
                && n.kind == Kind::File
                && n.size > 0
                && let Some(src) = n.source
                && let Some(v) = needed.get_mut(src.layer)
            {
                v.push_back((src.offset, n.size, ino));
            }
        }
        for v in &mut needed {
            v.make_contiguous().sort_unstable();
        }
        // Dropped on every return, so that decompressing threads blocked on a full
        // channel see it closed and end before the scope joins them.
        let mut cursors: Vec<Option<Cursor<'s, R>>> = (0..self.layers.len()).map(|_| None).collect();
        let mut spool = Spool { file: None, len: 0, at: HashMap::new() };
        let mut first: HashMap<usize, PathBuf> = HashMap::new();
        let mut buf = vec![0u8; CHUNK];

        for (k, &ino) in &self.tree.map {
            let Some(n) = self.tree.inodes.get(ino) else { continue };
            if k.is_empty() && n.implicit {
                continue;
            }
            let mut e = self.entry(k, ino, n);
            if n.kind != Kind::Dir && n.nlink > 1 {
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
            let Some(src) = n.source.filter(|_| n.kind == Kind::File && n.size > 0) else {
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
                let mut rd: DataReader<'_, '_, R> = DataReader::Spool { file, at, left: n.size };
                writer.append_file(&e.meta, &mut rd)?;
                continue;
            }
            let cursor = match cursors.get_mut(src.layer) {
                Some(Some(c)) => c,
                Some(slot) => {
                    let stats = self.layers.get(src.layer).ok_or_else(|| not_found(&e.meta.path, Errno::NOENT))?;
                    let reader = open_layer(src.layer)
                        .map_err(|source| Error::OpenLayer { layer: stats.name.clone(), source })?;
                    let (stream, _) = LayerStream::open(
                        reader,
                        Some(stats.compression),
                        &stats.name,
                        Some(stats.diff_id.algorithm()),
                        None,
                    )?;
                    let feed = Feed::start(stream, scope, &stats.name)?;
                    report.layers_read += 1;
                    let needed = needed.get_mut(src.layer).map(std::mem::take).unwrap_or_default();
                    slot.insert(Cursor { feed, pos: 0, needed })
                }
                None => return Err(not_found(&e.meta.path, Errno::NOENT)),
            };
            let changed = |c: &mut Cursor<'s, R>, e: io::Error| {
                let err = Error::LayerChanged { layer: layer_name(), reason: e.to_string() };
                c.feed.explain(err)
            };
            // Content of this layer before this one goes to the spool: the export needs
            // it later (each is needed once, and what was written already was passed).
            while let Some(&(off, size, other)) = cursor.needed.front() {
                if off >= src.offset {
                    break;
                }
                cursor.needed.pop_front();
                if other == ino {
                    continue;
                }
                if let Err(e) = cursor.skip_to(off, &mut buf) {
                    return Err(changed(cursor, e));
                }
                if let Err(e) = spool.put(cursor, other, size, opts.spool_dir.as_deref(), &mut buf)? {
                    return Err(changed(cursor, e));
                }
                report.spooled_bytes += size;
            }
            if cursor.needed.front().is_some_and(|&(off, _, i)| off == src.offset && i == ino) {
                cursor.needed.pop_front();
            }
            if cursor.pos > src.offset {
                return Err(Error::LayerChanged { layer: layer_name(), reason: "content offsets out of order".into() });
            }
            if let Err(e) = cursor.skip_to(src.offset, &mut buf) {
                return Err(changed(cursor, e));
            }
            let r = writer.append_file(&e.meta, &mut DataReader::Stream { cursor: &mut *cursor, left: n.size });
            if let Err(err) = r {
                // A failed read of the layer says more than the writer's view of it.
                return Err(match err {
                    Error::SourceChanged { .. } | Error::Io { .. } => {
                        changed(cursor, io::Error::other(err.to_string()))
                    }
                    other => other,
                });
            }
        }
        // Every layer read is read to its end and its digest checked.
        for (i, c) in cursors.into_iter().enumerate() {
            let (Some(c), Some(stats)) = (c, self.layers.get(i)) else { continue };
            if let Some(actual) = c.feed.finish(&mut buf)?
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
