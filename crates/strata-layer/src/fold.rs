//! Folding layers' headers into the tree in memory: each layer's headers are read (its
//! content skipped, every byte hashed) on up to one thread per core, while the union
//! rules run on the calling thread, layer after layer, on a [`MemTree`]. The merged
//! view, the plan, flatten and the layer analysis are all made of this fold.

use std::io::{BufRead, Read, Seek};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use strata_spec::{Compression, Digest};

use crate::diff::Changes;
use crate::error::{Error, Result};
use crate::memtree::{MemTree, Records, Tree};
use crate::path::{self, Class};
use crate::read::{self, Limits, TarReader};
use crate::source::{LayerSource, stream_options};
use crate::stats::LayerStats;
use crate::stream::LayerStream;
use crate::union::{Header, NoData, Union, classify};

/// Headers sent from a scanning thread to the fold in one message.
const BATCH: usize = 512;
/// Batches in flight per layer between its scanning thread and the fold: 16 x 512
/// headers (about 2 MiB with their names), whatever the layer's size.
const DEPTH: usize = 16;

/// Options of [`crate::MergedTree::build`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MergeOptions {
    /// Limits on header sizes and layer size (the applier's).
    pub limits: Limits,
    /// Threads decompressing and hashing layers at once; 0 means one per core, 1 reads
    /// every layer on the calling thread. Never changes the result.
    pub threads: usize,
    /// Keep what each layer changes, path by path, with the metadata of what it writes
    /// ([`crate::MergedTree::layer_changes`]); memory then grows with the entries of
    /// all layers, not only with the paths of the final tree.
    pub changes: bool,
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

    /// Set [`MergeOptions::changes`].
    pub fn changes(mut self, changes: bool) -> Self {
        self.changes = changes;
        self
    }
}

/// Counts the bytes read from a blob as stored.
pub(crate) struct CountRead<R> {
    pub(crate) inner: R,
    pub(crate) count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
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
    Entries(Vec<Header>),
    Done(Scanned),
    Failed(Error),
}

/// Read one layer's headers (content skipped, every byte hashed), sending them in
/// batches; the last message is `Done` or `Failed`. Stops when `send` returns false.
pub(crate) fn scan<R: Read>(src: LayerSource<R>, limits: &Limits, send: &mut dyn FnMut(Msg) -> bool) {
    scan_with(src, limits, true, None, send);
}

/// What a scan keeps of the content it reads: the regular files `keep` selects (by
/// header), as `(ordinal, bytes)`, each at most `max` bytes.
pub(crate) struct Capture<'a> {
    pub(crate) keep: &'a mut dyn FnMut(&Header) -> bool,
    pub(crate) max: u64,
    pub(crate) kept: Vec<(u64, Vec<u8>)>,
}

/// [`scan`], hashing the stream or not (`Done` then reports the digest of nothing),
/// keeping the content `capture` asks for.
pub(crate) fn scan_with<R: Read>(
    src: LayerSource<R>,
    limits: &Limits,
    hash: bool,
    mut capture: Option<&mut Capture<'_>>,
    send: &mut dyn FnMut(Msg) -> bool,
) {
    let count = Arc::new(AtomicU64::new(0));
    let mut opts = stream_options(src.diff_id.as_ref(), limits);
    if !hash {
        opts = opts.digest(None);
    }
    let name = src.name.clone();
    let counted = LayerSource {
        reader: CountRead { inner: src.reader, count: count.clone() },
        compression: src.compression,
        diff_id: src.diff_id,
        name: src.name,
    };
    let stream = match counted.decoder() {
        Ok((dec, _)) => LayerStream::inline(dec, &opts),
        Err(e) => {
            send(Msg::Failed(e));
            return;
        }
    };
    let mut tar = TarReader::new(stream, limits.clone(), &name);
    let mut batch = Vec::with_capacity(BATCH);
    let mut ordinal = 0u64;
    let failed = loop {
        let header = match tar.next_entry() {
            // The data starts where the reader stands once the header is read.
            Ok(Some(_)) => {
                let offset = tar.get_mut().position();
                Header::of(tar.entry(), ordinal, offset)
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        // The applier reads the content of the regular files it creates, and so reports
        // a stream that ends inside one as truncated data of that entry: read it too.
        let creates_file = header.kind == read::EntryKind::File
            && header.size > 0
            && path::normalize(&header.path).is_ok_and(|p| path::classify(&p) == Ok(Class::Plain));
        let wanted = match capture.as_deref_mut() {
            Some(c) => creates_file && header.sparse.is_none() && header.size <= c.max && (c.keep)(&header),
            None => false,
        };
        let kept = match capture.as_deref_mut() {
            Some(c) if wanted => {
                let mut buf = Vec::with_capacity(usize::try_from(header.size).unwrap_or(0));
                if let Err(e) = tar.read_data(|chunk| {
                    buf.extend_from_slice(chunk);
                    Ok::<(), Error>(())
                }) {
                    break Some(e);
                }
                c.kept.push((ordinal, buf));
                true
            }
            _ => false,
        };
        batch.push(header);
        ordinal += 1;
        if creates_file
            && !kept
            && let Err(e) = tar.read_data(|_| Ok::<(), Error>(()))
        {
            break Some(e);
        }
        if batch.len() == BATCH && !send(Msg::Entries(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))) {
            return;
        }
    };
    if !batch.is_empty() && !send(Msg::Entries(batch)) {
        return;
    }
    let mut stream = tar.into_inner();
    if let Some(e) = failed {
        send(Msg::Failed(stream.explain(e)));
        return;
    }
    match stream.finish() {
        Ok(end) => {
            let diff_id = end.digest.unwrap_or_else(|| Digest::sha256_of(b""));
            let compressed = count.load(Ordering::Relaxed);
            send(Msg::Done(Scanned { compression: end.compression, diff_id, size: end.size, compressed }));
        }
        Err(e) => {
            send(Msg::Failed(e));
        }
    }
}

/// Read the headers of an uncompressed tar, seeking over the data, and send them to the
/// fold (see [`scan`]). Nothing is hashed: the `diff_id` reported is a placeholder.
pub(crate) fn scan_tar<R: BufRead + Seek>(src: LayerSource<R>, limits: &Limits, send: &mut dyn FnMut(Msg) -> bool) {
    let LayerSource { mut reader, compression, name, .. } = src;
    let compressed = |what: &str| Error::InvalidTar {
        layer: name.clone(),
        entry: None,
        reason: format!("{what}: a plan from the headers alone needs an uncompressed tar"),
    };
    if let Some(c) = compression
        && c != Compression::None
    {
        send(Msg::Failed(compressed(&format!("its media type says {c}"))));
        return;
    }
    match reader.fill_buf() {
        Ok(b) if b.starts_with(&[0x1f, 0x8b]) || b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) => {
            send(Msg::Failed(compressed("it is compressed")));
            return;
        }
        Ok(_) => {}
        Err(e) => {
            send(Msg::Failed(Error::InvalidTar { layer: name.clone(), entry: None, reason: format!("reading: {e}") }));
            return;
        }
    }
    let mut tar = TarReader::new(reader, limits.clone(), &name);
    let mut batch = Vec::with_capacity(BATCH);
    let mut position = 0u64;
    loop {
        match tar.next_entry() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                send(Msg::Failed(e));
                return;
            }
        }
        // The data offset is not known without counting every byte, and no plan needs it.
        batch.push(Header::of(tar.entry(), position, 0));
        position += 1;
        if let Err(e) = tar.seek_past_data() {
            send(Msg::Failed(e));
            return;
        }
        if batch.len() == BATCH && !send(Msg::Entries(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))) {
            return;
        }
    }
    if !batch.is_empty() && !send(Msg::Entries(batch)) {
        return;
    }
    send(Msg::Done(Scanned {
        compression: Compression::None,
        diff_id: Digest::sha256_of(b""),
        size: 0,
        compressed: 0,
    }));
}

/// A tree folded from layers, with the figures of each layer and, when asked for, what a
/// [`crate::Plan`] is made of and what each layer changes.
pub(crate) type Folded = (Tree, Vec<LayerStats>, Option<Records>, Vec<Changes>);

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
    fold_layers(sources, &names, &expected, opts, scan, records)
}

/// The fold's side: the union rules on the tree in memory.
struct Folder {
    tree: MemTree,
    union: Union,
    name: String,
}

impl Folder {
    fn begin(&mut self, layer: usize, name: &str) {
        self.tree.begin(layer, name);
        self.union.begin();
        self.name.clear();
        self.name.push_str(name);
    }

    /// Fold one message; `Ok(Some)` at the end of the layer.
    /// Fold what one scan of a layer sends (`scan` runs it with the sink to send to):
    /// the layer's figures, or the error that stopped the fold; `None` when the scan
    /// ended without saying the layer was done.
    fn fold_scan(
        &mut self,
        expected: Option<&Digest>,
        scan: impl FnOnce(&mut dyn FnMut(Msg) -> bool),
    ) -> Option<Result<LayerStats>> {
        let mut outcome = None;
        scan(&mut |msg| match self.take(msg, expected) {
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
        outcome
    }

    fn take(&mut self, msg: Msg, expected: Option<&Digest>) -> Result<Option<LayerStats>> {
        match msg {
            Msg::Entries(v) => {
                for h in v {
                    self.tree.stats.content_size = self.tree.stats.content_size.saturating_add(h.declared_size);
                    if let Some(print) = self.tree.print() {
                        print.add(h.kind, &h.path, &h.link, h.size);
                    }
                    let entry = classify(h, &self.name)?;
                    self.union.apply(&mut self.tree, entry, &mut NoData, &self.name)?;
                }
                Ok(None)
            }
            Msg::Done(s) => {
                if let Some(expected) = expected
                    && *expected != s.diff_id
                {
                    return Err(Error::DiffIdMismatch {
                        layer: self.name.clone(),
                        expected: expected.clone(),
                        actual: s.diff_id,
                    });
                }
                let mut stats = self.tree.stats.clone();
                (stats.entries, stats.whiteouts) = (self.union.entries, self.union.whiteouts);
                stats.compression = s.compression;
                stats.diff_id = s.diff_id;
                stats.uncompressed_size = s.size;
                stats.compressed_size = s.compressed;
                Ok(Some(stats))
            }
            Msg::Failed(e) => Err(e),
        }
    }
}

/// Fold the headers of one more layer, `src`, onto `lower` (the tree of the layers
/// below and how many they are; `None`: nothing below), with every rule and error of
/// the applier, and return its figures (its `diff_id` only when `hash`). The tree is not
/// kept: this checks that the layer applies.
pub(crate) fn check_layer<R: Read>(
    src: LayerSource<R>,
    limits: &Limits,
    lower: Option<(&Tree, usize)>,
    hash: bool,
) -> Result<LayerStats> {
    let name = src.name.clone();
    let expected = src.diff_id.clone();
    let (tree, index) = match lower {
        Some((tree, layers)) => (MemTree::onto(tree.clone(), layers), layers),
        None => (MemTree::new(false), 0),
    };
    let mut fold = Folder { tree, union: Union::default(), name: String::new() };
    fold.begin(index, &name);
    fold.fold_scan(expected.as_ref().filter(|_| hash), |send| scan_with(src, limits, hash, None, send))
        .unwrap_or_else(|| Err(Error::InvalidTar { layer: name, entry: None, reason: "reading stopped early".into() }))
}

/// Fold `sources`, base first: `scanner` reads one layer's headers and sends them (see
/// [`scan`]), on up to `opts.threads` threads at once (0: one per core), while the fold
/// runs on the calling thread, layer after layer, keeping each layer's changes when
/// `opts.changes`. `names` and `expected` give each layer's name and the `diff_id` to
/// check its scan against.
pub(crate) fn fold_layers<S, F>(
    sources: Vec<S>,
    names: &[String],
    expected: &[Option<Digest>],
    opts: &MergeOptions,
    scanner: F,
    records: bool,
) -> Result<Folded>
where
    S: Send,
    F: Fn(S, &Limits, &mut dyn FnMut(Msg) -> bool) + Sync,
{
    let n = sources.len();
    if n > crate::memtree::MAX_LAYERS {
        return Err(Error::InvalidTar {
            layer: names.get(crate::memtree::MAX_LAYERS).cloned().unwrap_or_default(),
            entry: None,
            reason: format!("a stack of {n} layers: a merged tree holds at most {}", crate::memtree::MAX_LAYERS),
        });
    }
    let (limits, changes) = (&opts.limits, opts.changes);
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        t => t,
    }
    .min(n);
    let mut tree = MemTree::new(records);
    if changes {
        tree.changes = Some(Vec::with_capacity(n));
    }
    let mut fold = Folder { tree, union: Union::default(), name: String::new() };
    let mut stats = Vec::with_capacity(n);
    let layer_name = |i: usize| names.get(i).cloned().unwrap_or_default();
    let expected = |i: usize| expected.get(i).and_then(Option::as_ref);
    let stopped =
        |i: usize| Error::InvalidTar { layer: layer_name(i), entry: None, reason: "reading stopped early".into() };

    if threads <= 1 {
        for (i, src) in sources.into_iter().enumerate() {
            fold.begin(i, &layer_name(i));
            let outcome = fold.fold_scan(expected(i), |send| scanner(src, limits, send));
            stats.push(outcome.unwrap_or_else(|| Err(stopped(i)))?);
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
                        // Layers are taken in order, so the layer the fold waits for is
                        // always being read (or done).
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
                    .map_err(|source| Error::Io(strata_spec::IoError::new("spawn thread", PathBuf::new(), source)))?;
            }
            let result = (|| {
                for (i, rx) in rxs.iter().enumerate() {
                    fold.begin(i, &layer_name(i));
                    loop {
                        let Ok(msg) = rx.recv() else { return Err(stopped(i)) };
                        if let Some(st) = fold.take(msg, expected(i))? {
                            stats.push(st);
                            break;
                        }
                    }
                }
                Ok(())
            })();
            if result.is_err() {
                stop.store(true, Ordering::SeqCst);
                // Unblock senders: drain what is queued so that every thread sees the
                // stop flag at its next send.
                for rx in &rxs {
                    while rx.try_recv().is_ok() {}
                }
            }
            drop(rxs);
            result
        })?;
    }
    let mut tree = fold.tree.tree;
    for (st, w) in stats.iter_mut().zip(&tree.wasted) {
        st.bytes_wasted = *w;
    }
    tree.wasted.clear();
    let changes = fold.tree.changes.unwrap_or_default().into_iter().map(Changes::in_order).collect();
    Ok((tree, stats, fold.tree.records, changes))
}
