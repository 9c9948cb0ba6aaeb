//! The union merge onto disk: apply layers, in order, onto a root directory.
//!
//! Each layer is read as stored (compressed) and decompressed on a second thread; the
//! calling thread hashes the tar and writes its entries, every path resolved inside the
//! root by [`crate::fsops`]. See the crate documentation for the semantics and
//! `docs/security.md` for the threat model.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::Bound;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use strata_spec::{Algorithm, Compression, Descriptor, Digest, Digester, HashingReader};

use crate::decompress::{Decoder, drain, read_buffered, read_full};
use crate::error::{Error, Result};
use crate::fsops::{self, Resolver, Root, errno};
use crate::path::{self, Class, WHITEOUT_PREFIX};
use crate::plan::{HeaderPrint, Plan};
use crate::read::{EntryKind, Limits, Mtime, TarReader};

/// One layer to apply: its blob as stored, and what is known about it.
#[derive(Debug)]
pub struct LayerSource<R> {
    /// The blob as stored (compressed or not).
    pub reader: R,
    /// The compression its media type declares; `None` to trust the magic bytes alone.
    pub compression: Option<Compression>,
    /// The expected digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Option<Digest>,
    /// A name for errors and the report: its digest, or its position in the manifest.
    pub name: String,
}

impl<R: Read> LayerSource<R> {
    /// A layer named `name` (used in every error about it) read from `reader`.
    pub fn new(name: impl Into<String>, reader: R) -> Self {
        LayerSource { reader, compression: None, diff_id: None, name: name.into() }
    }

    /// A layer described by a manifest's layer descriptor: named by its digest, its
    /// compression declared by its media type, its `diff_id` from the image config.
    pub fn from_descriptor(descriptor: &Descriptor, diff_id: Option<Digest>, reader: R) -> Self {
        LayerSource {
            reader,
            compression: descriptor.media_type.layer_compression(),
            diff_id,
            name: descriptor.digest.to_string(),
        }
    }

    /// Declare the compression (checked against the magic bytes).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Expect this `diff_id` (checked once the layer has streamed through).
    pub fn diff_id(mut self, diff_id: Digest) -> Self {
        self.diff_id = Some(diff_id);
        self
    }
}

/// Whether ownership is applied to the tree or recorded in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Ownership {
    /// [`Ownership::Apply`] when running as root, [`Ownership::Record`] otherwise.
    #[default]
    Auto,
    /// `lchown` every entry to its uid/gid and create device nodes (needs root).
    Apply,
    /// Rootless: no `chown`; device nodes become empty regular files; owners that are
    /// not 0:0 and device numbers are recorded in [`ApplyReport::recorded`].
    Record,
}

/// Options of [`apply_layers`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// Apply or record ownership.
    pub ownership: Ownership,
    /// How paths are resolved inside the root.
    pub resolver: Resolver,
    /// Limits on header sizes and layer size.
    pub limits: Limits,
    /// Decompress and hash on the calling thread instead of a second one (slower; for
    /// debugging and fuzzing).
    pub single_thread: bool,
    /// Entries not to write because a later layer deletes or replaces them, planned
    /// from these same layers' headers (see [`Plan`]). Each layer's headers are checked
    /// against the plan's.
    pub plan: Option<Arc<Plan>>,
}

impl ApplyOptions {
    /// Set [`ApplyOptions::ownership`].
    pub fn ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }

    /// Set [`ApplyOptions::resolver`].
    pub fn resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = resolver;
        self
    }

    /// Set [`ApplyOptions::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Set [`ApplyOptions::single_thread`].
    pub fn single_thread(mut self, single_thread: bool) -> Self {
        self.single_thread = single_thread;
        self
    }

    /// Set [`ApplyOptions::plan`].
    pub fn plan(mut self, plan: Arc<Plan>) -> Self {
        self.plan = Some(plan);
        self
    }
}

/// A device node recorded instead of created (rootless mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// Character device.
    Char {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Block device.
    Block {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// What rootless mode could not apply to one path: its owner, and the device it stands
/// for when it is a placeholder file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Owner in the image.
    pub uid: u32,
    /// Group in the image.
    pub gid: u32,
    /// The device node this empty regular file stands for.
    pub device: Option<Device>,
}

/// What one applied layer was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerReport {
    /// The layer's name.
    pub name: String,
    /// The compression detected.
    pub compression: Compression,
    /// The digest of the uncompressed tar, every byte of it (verified when expected).
    pub diff_id: Digest,
    /// Uncompressed size.
    pub size: u64,
    /// Entries applied (whiteouts included, extension headers not).
    pub entries: u64,
    /// Whiteouts and opaque markers among them.
    pub whiteouts: u64,
    /// Entries not written because the [`Plan`] says a later layer deletes or replaces
    /// them (regular files, and hard links to them).
    pub skipped: u64,
    /// Bytes of those regular files.
    pub skipped_bytes: u64,
}

/// The result of [`apply_layers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Each layer, in order.
    pub layers: Vec<LayerReport>,
    /// The resolver used (never `Auto`).
    pub resolver: Resolver,
    /// Whether ownership was recorded rather than applied.
    pub rootless: bool,
    /// Rootless mode: every path of the final tree whose owner is not 0:0, or that is a
    /// placeholder for a device node, with what the image says it is. Paths absent
    /// here are owned by 0:0 in the image. Empty when ownership was applied.
    pub recorded: BTreeMap<PathBuf, Recorded>,
    /// Extended attributes the file system or the lack of privilege refused
    /// (`EPERM`, `EOPNOTSUPP`), skipped rather than failing the unpack.
    pub xattrs_skipped: u64,
}

/// Apply one layer onto `root`. See [`apply_layers`].
pub fn apply_layer<R: Read + Send>(root: &Path, layer: LayerSource<R>, opts: &ApplyOptions) -> Result<ApplyReport> {
    apply_layers(root, [layer], opts)
}

/// Apply `layers`, base first, onto the directory `root` (created if missing), verifying
/// each layer's `diff_id` as it streams.
///
/// On error the tree is left part-applied: unpack into a fresh directory and discard it
/// when this fails. Directory modification times are set once all layers are applied.
pub fn apply_layers<R, I>(root: &Path, layers: I, opts: &ApplyOptions) -> Result<ApplyReport>
where
    R: Read + Send,
    I: IntoIterator<Item = LayerSource<R>>,
{
    let root_fd = Root::open(root, opts.resolver).map_err(|source| Error::Io {
        op: "open root",
        path: root.to_path_buf(),
        source,
    })?;
    let rootless = match opts.ownership {
        Ownership::Apply => false,
        Ownership::Record => true,
        Ownership::Auto => !rustix::process::geteuid().is_root(),
    };
    let mut a = Applier {
        resolver: root_fd.resolver(),
        root: root_fd,
        rootless,
        layer: String::new(),
        added: BTreeSet::new(),
        dirs: BTreeMap::new(),
        dir_seq: 0,
        recorded: BTreeMap::new(),
        xattrs_skipped: 0,
        entries: 0,
        whiteouts: 0,
        name_buf: Vec::new(),
        root_path: root.to_path_buf(),
        plan: opts.plan.clone(),
        index: None,
        print: None,
        skipped: 0,
        skipped_bytes: 0,
    };
    let mut reports = Vec::new();
    if opts.single_thread {
        for layer in layers {
            reports.push(a.apply_sync(layer, opts)?);
        }
    } else {
        // Each layer's decompression starts while the layer before it is still being
        // written, so the pipeline never drains at a layer boundary.
        std::thread::scope(|s| -> Result<()> {
            let mut layers = layers.into_iter();
            let mut next = layers.next().map(|l| Pipeline::start(s, l, opts));
            while let Some(current) = next.take() {
                next = layers.next().map(|l| Pipeline::start(s, l, opts));
                reports.push(a.apply_threaded(current?, opts)?);
            }
            Ok(())
        })?;
    }
    // A plan that counted on later layers deleting what was skipped needs them applied.
    if let Some(plan) = &a.plan {
        let applied = a.index.map_or(0, |i| i + 1);
        if applied != plan.layers() {
            return Err(Error::LayerChanged {
                layer: a.layer.clone(),
                reason: format!("{applied} layers applied, the plan is of {}", plan.layers()),
            });
        }
    }
    a.finish_dirs()?;
    Ok(ApplyReport {
        layers: reports,
        resolver: a.resolver,
        rootless,
        recorded: a.recorded.into_iter().map(|(k, v)| (PathBuf::from(OsStr::from_bytes(&k)), v)).collect(),
        xattrs_skipped: a.xattrs_skipped,
    })
}

/// The decoder of a layer: when its `diff_id` is known, every byte of the tar is hashed
/// against it, so gzip's CRC-32 is not computed as well (it is the slow thread's work).
fn decoder<R: Read>(reader: R, compression: Option<Compression>, name: &str, diff_id: bool) -> Result<Decoder<R>> {
    if diff_id { Decoder::without_gzip_crc(reader, compression, name) } else { Decoder::new(reader, compression, name) }
}

/// Size of the buffers passed from the decompressing thread: 256 KiB, a multiple of
/// the 512-byte tar block (so headers never straddle two buffers) and large enough that
/// channel traffic is noise.
const CHUNK: usize = 256 * 1024;
/// Buffers in flight between the two threads of a layer: 16 x 256 KiB = 4 MiB of
/// decompressed tar at most, whatever the layer's size (two layers' pipelines exist at
/// once). Measured on the corpus: 8 to 64 perform alike, 16 evens out the runs.
const DEPTH: usize = 16;

/// The consuming end of the decompressing thread: a `BufRead` over the buffers it sends.
///
/// It hashes each buffer as it arrives: on two cores, decompression on one thread and
/// hashing plus writing on the other are about even. Measured on the corpus and not
/// kept, as no faster: a third thread for the hash (slower), a hash queue that either
/// thread works off when it would wait, and deeper buffers with the next layer
/// decompressed ahead at the lowest priority (both within noise, more code and memory).
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    back: mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    /// `None` when the producer hashes (an uncompressed layer: its thread has little
    /// else to do).
    digester: Option<Digester>,
    count: u64,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.cur.len() {
            let old = std::mem::take(&mut self.cur);
            if old.capacity() > 0 {
                // Recycle: the producer reuses it rather than allocating.
                let _ = self.back.try_send(old);
            }
            self.pos = 0;
            // A closed channel is the end of the stream (or the producer's error,
            // which the caller collects when it joins the thread).
            if let Ok(v) = self.rx.recv() {
                if let Some(d) = &mut self.digester {
                    d.update(&v);
                }
                self.count += v.len() as u64;
                self.cur = v;
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
    }
}

/// Decompress on this thread, sending buffers to the applier, and hash them here when
/// given a digester (returning the digest). `Err(None)`: the applier hung up (it
/// failed, and its error is the one to report).
fn produce<R: Read>(
    mut dec: Decoder<R>,
    tx: mpsc::SyncSender<Vec<u8>>,
    back: mpsc::Receiver<Vec<u8>>,
    max: Option<u64>,
    mut digester: Option<Digester>,
) -> std::result::Result<Option<Digest>, Option<Error>> {
    let mut total = 0u64;
    loop {
        let mut buf = back.try_recv().unwrap_or_default();
        buf.resize(CHUNK, 0);
        let n = read_full(&mut dec, &mut buf).map_err(|e| Some(dec.error(e)))?;
        if n == 0 {
            return Ok(digester.map(Digester::finish));
        }
        buf.truncate(n);
        if let Some(d) = &mut digester {
            d.update(&buf);
        }
        total += n as u64;
        if let Some(limit) = max
            && total > limit
        {
            return Err(Some(Error::LimitExceeded {
                layer: dec.layer().to_owned(),
                entry: None,
                what: "uncompressed layer",
                actual: total,
                limit,
            }));
        }
        if tx.send(buf).is_err() {
            return Err(None);
        }
    }
}

/// One layer on its way: decompressed on its own thread, its buffers waiting in a
/// bounded channel for the applier.
struct Pipeline<'scope> {
    name: String,
    diff_id: Option<Digest>,
    compression: Compression,
    reader: ChannelReader,
    producer: std::thread::ScopedJoinHandle<'scope, std::result::Result<Option<Digest>, Option<Error>>>,
}

impl<'scope> Pipeline<'scope> {
    fn start<'env, R: Read + Send + 'scope>(
        s: &'scope std::thread::Scope<'scope, 'env>,
        layer: LayerSource<R>,
        opts: &ApplyOptions,
    ) -> Result<Pipeline<'scope>> {
        let algorithm = layer.diff_id.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let dec = decoder(layer.reader, layer.compression, &layer.name, layer.diff_id.is_some())?;
        let compression = dec.compression();
        let (tx, rx) = mpsc::sync_channel(DEPTH);
        let (back_tx, back_rx) = mpsc::sync_channel(DEPTH + 2);
        let max = opts.limits.max_layer_size;
        let spawn_err = |source| Error::Io { op: "spawn thread", path: PathBuf::new(), source };
        // Whichever thread has time hashes: the applier when the other one decompresses,
        // the reading thread when there is nothing to decompress.
        let (here, there) = match compression {
            Compression::None => (None, Some(Digester::new(algorithm))),
            _ => (Some(Digester::new(algorithm)), None),
        };
        let producer = std::thread::Builder::new()
            .name("strata-inflate".into())
            .spawn_scoped(s, move || produce(dec, tx, back_rx, max, there))
            .map_err(spawn_err)?;
        Ok(Pipeline {
            name: layer.name,
            diff_id: layer.diff_id,
            compression,
            reader: ChannelReader { rx, back: back_tx, cur: Vec::new(), pos: 0, digester: here, count: 0 },
            producer,
        })
    }
}

/// A directory whose metadata is set at the end.
struct DirMeta {
    mtime: Mtime,
    /// The mode, when it could not be set at once (rootless, no `u+rwx`).
    mode: Option<u32>,
    /// Order of declaration (see [`Applier::finish_dirs`]).
    seq: u64,
    /// Device and inode of the directory declared: the directory at its real path by
    /// the end is another one only if something removed it without forgetting it.
    id: (u64, u64),
}

struct Applier {
    root: Root,
    root_path: PathBuf,
    resolver: Resolver,
    rootless: bool,
    /// The layer being applied (for errors).
    layer: String,
    /// Paths this layer created, as the layer names them (symlinks on the way not
    /// resolved, as the merged view): whiteouts and opaque markers do not touch them.
    /// (Keys of these maps are normalised paths as bytes: in byte order a directory's
    /// descendants are exactly the keys in `[dir + "/", dir + "0")`, since `'0'` follows
    /// `'/'`, and comparing bytes is much cheaper than comparing path components.)
    added: BTreeSet<Vec<u8>>,
    /// Directory metadata to apply last (mtimes, and deferred modes), by *real* path
    /// (see [`fsops::Dir::path`]): the one name a directory has in the tree, whichever
    /// name declared it, and under which its removal forgets it.
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    /// Directories declared so far (see [`DirMeta::seq`]).
    dir_seq: u64,
    /// Rootless: owners and devices, by real path (the paths of the final tree).
    recorded: BTreeMap<Vec<u8>, Recorded>,
    xattrs_skipped: u64,
    entries: u64,
    whiteouts: u64,
    name_buf: Vec<u8>,
    /// The plan, if any, and the position of the layer being applied.
    plan: Option<Arc<Plan>>,
    index: Option<usize>,
    /// The digest of this layer's headers, checked against the plan's at its end.
    print: Option<HeaderPrint>,
    skipped: u64,
    skipped_bytes: u64,
}

/// The parts of an entry's header the applier needs once it starts reading data.
struct Meta {
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Mtime,
    dev: (u32, u32),
    link: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn timestamps(m: Mtime) -> Timestamps {
    let t = Timespec { tv_sec: m.secs, tv_nsec: i64::from(m.nanos) };
    Timestamps { last_access: t, last_modification: t }
}

fn is(e: &io::Error, code: Errno) -> bool {
    e.raw_os_error() == Some(code.raw_os_error())
}

impl Applier {
    fn begin(&mut self, name: &str) -> Result<()> {
        self.layer.clear();
        self.layer.push_str(name);
        self.added.clear();
        self.root.invalidate();
        self.entries = 0;
        self.whiteouts = 0;
        self.skipped = 0;
        self.skipped_bytes = 0;
        let index = self.index.map_or(0, |i| i + 1);
        self.index = Some(index);
        if let Some(plan) = &self.plan {
            if plan.layer(index).is_none() {
                return Err(Error::LayerChanged {
                    layer: name.to_owned(),
                    reason: format!("layer {} of a stack the plan says has {}", index + 1, plan.layers()),
                });
            }
            self.print = Some(HeaderPrint::default());
        }
        Ok(())
    }

    /// The plan of the layer being applied, if there is one.
    fn layer_plan(&self) -> Option<&crate::plan::LayerPlan> {
        self.plan.as_deref().and_then(|p| p.layer(self.index?))
    }

    /// At the end of a layer: its headers must be the ones the plan was made from.
    fn check_plan(&mut self) -> Result<()> {
        let Some(print) = self.print.take() else { return Ok(()) };
        match self.layer_plan().map(|p| p.check(print)) {
            Some(Err(reason)) => Err(Error::LayerChanged { layer: self.layer.clone(), reason }),
            _ => Ok(()),
        }
    }

    fn report(
        &self,
        name: String,
        expected: Option<Digest>,
        compression: Compression,
        diff_id: Digest,
        size: u64,
    ) -> Result<LayerReport> {
        if let Some(expected) = expected
            && expected != diff_id
        {
            return Err(Error::DiffIdMismatch { layer: name, expected, actual: diff_id });
        }
        Ok(LayerReport {
            name,
            compression,
            diff_id,
            size,
            entries: self.entries,
            whiteouts: self.whiteouts,
            skipped: self.skipped,
            skipped_bytes: self.skipped_bytes,
        })
    }

    fn after_end(layer: &str, e: io::Error) -> Error {
        Error::InvalidTar {
            layer: layer.to_owned(),
            entry: None,
            reason: format!("reading after the end of the archive: {e}"),
        }
    }

    /// Apply one layer, decompressing and hashing on this thread.
    fn apply_sync<R: Read + Send>(&mut self, layer: LayerSource<R>, opts: &ApplyOptions) -> Result<LayerReport> {
        self.begin(&layer.name)?;
        let algorithm = layer.diff_id.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let dec = decoder(layer.reader, layer.compression, &layer.name, layer.diff_id.is_some())?;
        let compression = dec.compression();
        let hashing = HashingReader::with_algorithm(dec, algorithm);
        let mut tar = TarReader::new(BufReader::with_capacity(CHUNK, hashing), opts.limits.clone(), &layer.name);
        self.entries_of(&mut tar)?;
        let mut rest = tar.into_inner();
        // Read the stream to its true end so the digest covers every byte.
        drain(&mut rest).map_err(|e| Self::after_end(&layer.name, e))?;
        let (_, diff_id, size) = rest.into_inner().finish();
        if let Some(limit) = opts.limits.max_layer_size
            && size > limit
        {
            return Err(Error::LimitExceeded {
                layer: layer.name,
                entry: None,
                what: "uncompressed layer",
                actual: size,
                limit,
            });
        }
        self.check_plan()?;
        self.report(layer.name, layer.diff_id, compression, diff_id, size)
    }

    /// Apply one layer whose pipeline is running.
    fn apply_threaded(&mut self, p: Pipeline<'_>, opts: &ApplyOptions) -> Result<LayerReport> {
        self.begin(&p.name)?;
        let mut tar = TarReader::new(p.reader, opts.limits.clone(), &p.name);
        let applied = self.entries_of(&mut tar).and_then(|()| {
            // Read the stream to its true end so the digest covers every byte.
            drain(tar.get_mut()).map(|_| ()).map_err(|e| Self::after_end(&p.name, e))
        });
        let reader = tar.into_inner();
        let (digester, size) = (reader.digester, reader.count);
        drop(reader.rx); // hang up: a producer still sending stops
        let produced = p.producer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (diff_id, size) = match (applied, produced) {
            // The stream's own error explains a consumer error (e.g. truncation).
            (_, Err(Some(e))) => return Err(e),
            (Err(e), _) => return Err(e),
            // One of the two threads hashed (see `Pipeline::start`).
            (Ok(()), Ok(digest)) => match digest.or_else(|| digester.map(Digester::finish)) {
                Some(d) => (d, size),
                None => {
                    return Err(Error::InvalidTar {
                        layer: p.name,
                        entry: None,
                        reason: "the layer was not hashed".into(),
                    });
                }
            },
            (Ok(()), Err(None)) => {
                return Err(Error::InvalidTar {
                    layer: p.name,
                    entry: None,
                    reason: "decompression stopped early".into(),
                });
            }
        };
        self.check_plan()?;
        self.report(p.name, p.diff_id, p.compression, diff_id, size)
    }

    fn entries_of<B: BufRead>(&mut self, tar: &mut TarReader<B>) -> Result<()> {
        while let Some(e) = tar.next_entry()? {
            self.entries += 1;
            if let Some(print) = &mut self.print {
                print.add(e.kind, &e.path, &e.link, e.size);
            }
            // The raw name, for errors, in a buffer reused from entry to entry.
            let mut raw_name = std::mem::take(&mut self.name_buf);
            raw_name.clear();
            raw_name.extend_from_slice(&e.path);
            let path = path::normalize(&e.path).map_err(|p| self.unsafe_entry(&raw_name, p.to_string()))?;
            let class = path::classify(&path).map_err(|p| self.unsafe_entry(&raw_name, p.to_string()))?;
            if class == Class::AufsMeta {
                self.name_buf = raw_name;
                continue;
            }
            // A whiteout prefix in a parent component: `.wh.x/y` names nothing a union
            // file system can hold, and `.wh.../x` has fooled appliers into `../x`.
            if let Some(parent) = path.parent()
                && parent.iter().any(|c| c.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
            {
                return Err(self.unsafe_entry(&raw_name, "whiteout prefix in a parent directory".into()));
            }
            match class {
                Class::Whiteout { target } => {
                    self.whiteouts += 1;
                    self.whiteout(&target, &raw_name)?;
                }
                Class::Opaque { dir } => {
                    self.whiteouts += 1;
                    self.opaque(&dir, &raw_name)?;
                }
                Class::Plain => {
                    let uid = u32::try_from(e.uid).ok().filter(|&u| u != u32::MAX);
                    let gid = u32::try_from(e.gid).ok().filter(|&g| g != u32::MAX);
                    let (Some(uid), Some(gid)) = (uid, gid) else {
                        return Err(Error::InvalidTar {
                            layer: self.layer.clone(),
                            entry: Some(e.display_name()),
                            reason: format!("owner {}:{} out of range", e.uid, e.gid),
                        });
                    };
                    let meta = Meta {
                        kind: e.kind,
                        mode: e.mode,
                        uid,
                        gid,
                        mtime: e.mtime,
                        dev: (e.dev_major, e.dev_minor),
                        link: if matches!(e.kind, EntryKind::Symlink | EntryKind::Hardlink) {
                            e.link.clone()
                        } else {
                            Vec::new()
                        },
                        xattrs: e.xattrs.clone(),
                    };
                    self.create(&path, &raw_name, &meta, tar)?;
                }
                Class::AufsMeta => {}
            }
            self.name_buf = raw_name;
        }
        Ok(())
    }

    fn unsafe_entry(&self, entry: &[u8], reason: String) -> Error {
        Error::UnsafeEntry { layer: self.layer.clone(), entry: String::from_utf8_lossy(entry).into_owned(), reason }
    }

    /// An error maker for a file system operation on `entry`: it allocates the error's
    /// strings only when called.
    fn fs<'a>(&'a self, entry: &'a [u8], op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Apply {
            layer: self.layer.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            op,
            source,
        }
    }

    /// Forget what was recorded about the real path `real` and everything under it (it
    /// was removed).
    fn forget(&mut self, real: &Path) {
        for map in [&mut self.dirs as &mut dyn Forget, &mut self.recorded] {
            map.forget_under(real);
        }
    }

    fn has_added_under(&self, p: &Path) -> bool {
        let (lo, hi) = subtree(p);
        match hi {
            Some(hi) => {
                self.added.range::<[u8], _>((Bound::Included(&lo[..]), Bound::Excluded(&hi[..]))).next().is_some()
            }
            None => !self.added.is_empty(),
        }
    }

    /// Remove whatever is at `name` in `dir` (the real path `real`) to make room for a
    /// new entry.
    fn remove_existing(&mut self, dir: BorrowedFd<'_>, name: &OsStr, real: &Path, entry: &[u8]) -> Result<()> {
        let removed = fsops::remove_all(dir, name).map_err(self.fs(entry, "remove existing"))?;
        if matches!(removed, Some(FileType::Directory | FileType::Symlink | FileType::Unknown)) {
            self.root.invalidate();
        }
        self.forget(real);
        Ok(())
    }

    /// Run `make` (a creation in `dir`); when the name is taken, remove what is there
    /// and run it once more.
    fn make<T>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        real: &Path,
        entry: &[u8],
        op: &'static str,
        mut make: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<T> {
        match make() {
            Ok(v) => Ok(v),
            Err(Errno::EXIST) => {
                self.remove_existing(dir, name, real, entry)?;
                make().map_err(|e| self.fs(entry, op)(errno(e)))
            }
            Err(e) => Err(self.fs(entry, op)(errno(e))),
        }
    }

    fn record(&mut self, real: &Path, uid: u32, gid: u32, device: Option<Device>) {
        if !self.rootless {
            return;
        }
        if uid == 0 && gid == 0 && device.is_none() {
            self.recorded.remove(key(real));
        } else {
            self.recorded.insert(key(real).to_vec(), Recorded { uid, gid, device });
        }
    }

    fn set_xattrs(&mut self, target: XattrTarget<'_>, meta: &Meta, entry: &[u8]) -> Result<()> {
        for (k, v) in &meta.xattrs {
            let key = OsStr::from_bytes(k);
            let r = match target {
                XattrTarget::Fd(fd) => {
                    rustix::fs::fsetxattr(fd, key, v, rustix::fs::XattrFlags::empty()).map_err(errno)
                }
                XattrTarget::At(dir, name) => fsops::lsetxattr_at(dir, name, key, v),
            };
            match r {
                Ok(()) => {}
                Err(e)
                    if is(&e, Errno::OPNOTSUPP)
                        || (is(&e, Errno::PERM) && self.rootless)
                        || (is(&e, Errno::ACCESS) && self.rootless) =>
                {
                    self.xattrs_skipped += 1;
                }
                Err(e) => return Err(self.fs(entry, "setxattr")(e)),
            }
        }
        Ok(())
    }

    fn chown_fd(&self, fd: BorrowedFd<'_>, meta: &Meta, entry: &[u8]) -> Result<()> {
        if self.rootless {
            return Ok(());
        }
        rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(meta.uid)), Some(rustix::fs::Gid::from_raw(meta.gid)))
            .map_err(|e| self.fs(entry, "chown")(errno(e)))
    }

    fn create<B: BufRead>(&mut self, path: &Path, entry: &[u8], meta: &Meta, tar: &mut TarReader<B>) -> Result<()> {
        if path.as_os_str().is_empty() {
            return self.root_entry(entry, meta);
        }
        let (parent, name) = self.root.parent(path, true).map_err(self.fs(entry, "resolve parent directory"))?;
        let dir = parent.fd.as_fd();
        // Where the entry really is: `path` may go through symlinks. What is kept about a
        // path (directory metadata, recorded owners) is kept under this name, the one it
        // has in the final tree.
        let real = parent.path.join(name);
        let real = &real;
        if matches!(meta.kind, EntryKind::File | EntryKind::Hardlink)
            && self.layer_plan().is_some_and(|p| p.skips(self.entries - 1))
        {
            return self.skip(dir, name, path, real, entry, tar);
        }
        match meta.kind {
            EntryKind::Dir => self.dir(dir, name, real, entry, meta)?,
            EntryKind::File => {
                let fd = self.create_file(dir, name, real, entry, meta.mode)?;
                let mut f = std::fs::File::from(fd);
                tar.read_data(|chunk| f.write_all(chunk).map_err(self.fs(entry, "write")))?;
                self.file_meta(f.as_fd(), meta, entry)?;
                self.record(real, meta.uid, meta.gid, None);
            }
            EntryKind::Symlink => {
                let target = OsStr::from_bytes(&meta.link);
                if meta.link.is_empty() || meta.link.contains(&0) {
                    return Err(self.unsafe_entry(entry, "symlink with an empty target or a NUL in it".into()));
                }
                self.make(dir, name, real, entry, "symlink", || rustix::fs::symlinkat(target, dir, name))?;
                self.node_meta(dir, name, meta, entry, false)?;
                self.record(real, meta.uid, meta.gid, None);
            }
            EntryKind::Hardlink => self.hardlink(dir, name, path, real, entry, meta)?,
            EntryKind::Char | EntryKind::Block | EntryKind::Fifo => {
                let (major, minor) = meta.dev;
                let device = match meta.kind {
                    EntryKind::Char => Some(Device::Char { major, minor }),
                    EntryKind::Block => Some(Device::Block { major, minor }),
                    _ => None,
                };
                if self.rootless && device.is_some() {
                    // A placeholder: an empty file, the device recorded.
                    let fd = self.create_file(dir, name, real, entry, meta.mode)?;
                    self.file_meta(fd.as_fd(), meta, entry)?;
                } else {
                    let ft = match meta.kind {
                        EntryKind::Char => FileType::CharacterDevice,
                        EntryKind::Block => FileType::BlockDevice,
                        _ => FileType::Fifo,
                    };
                    let dev = rustix::fs::makedev(major, minor);
                    self.make(dir, name, real, entry, "mknod", || {
                        rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(0o600), dev)
                    })?;
                    self.node_meta(dir, name, meta, entry, true)?;
                }
                self.record(real, meta.uid, meta.gid, device);
            }
        }
        self.added.insert(key(path).to_vec());
        Ok(())
    }

    /// An entry the plan says is dead (a later layer deletes or replaces it): make room
    /// for it as creating it would, read its data through the hash, write nothing.
    fn skip<B: BufRead>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &Path,
        real: &Path,
        entry: &[u8],
        tar: &mut TarReader<B>,
    ) -> Result<()> {
        if fsops::lstat(dir, name).map_err(self.fs(entry, "stat"))?.is_some() {
            self.remove_existing(dir, name, real, entry)?;
        }
        let mut bytes = 0u64;
        tar.read_data(|chunk| {
            bytes += chunk.len() as u64;
            Ok::<(), Error>(())
        })?;
        self.skipped += 1;
        self.skipped_bytes += bytes;
        self.added.insert(key(path).to_vec());
        Ok(())
    }

    fn create_file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        real: &Path,
        entry: &[u8],
        mode: u32,
    ) -> Result<OwnedFd> {
        // O_EXCL | O_NOFOLLOW: never write through what is there (a symlink, or a hard
        // link shared with another name): replacing is unlink + create. Created with the
        // permission bits it will have (less the umask: `file_meta` checks), as only our
        // fd writes to it.
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(mode & 0o777);
        self.make(dir, name, real, entry, "create", || rustix::fs::openat(dir, name, flags, mode))
    }

    /// Owner, mode, xattrs and mtime of a regular file, on its fd (in this order: chown
    /// clears setuid bits, and writing clears file capabilities). One `fstat` tells
    /// which of `fchown` and `fchmod` are needed: most files are created right already.
    fn file_meta(&mut self, fd: BorrowedFd<'_>, meta: &Meta, entry: &[u8]) -> Result<()> {
        let st = rustix::fs::fstat(fd).map_err(|e| self.fs(entry, "stat")(errno(e)))?;
        let chown = !self.rootless && (st.st_uid, st.st_gid) != (meta.uid, meta.gid);
        if chown {
            self.chown_fd(fd, meta, entry)?;
        }
        if chown || st.st_mode & 0o7777 != meta.mode {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| self.fs(entry, "chmod")(errno(e)))?;
        }
        self.set_xattrs(XattrTarget::Fd(fd), meta, entry)?;
        rustix::fs::futimens(fd, &timestamps(meta.mtime)).map_err(|e| self.fs(entry, "set mtime")(errno(e)))
    }

    /// Owner, mode, xattrs and mtime of a node that cannot be opened (symlink, fifo,
    /// device), by name in its directory, never following it.
    fn node_meta(&mut self, dir: BorrowedFd<'_>, name: &OsStr, meta: &Meta, entry: &[u8], chmod: bool) -> Result<()> {
        if !self.rootless {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.fs(entry, "chown")(errno(e)))?;
        }
        if chmod {
            // Not a symlink (we just made it with mknodat), so fchmodat's following of the
            // last component is moot.
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| self.fs(entry, "chmod")(errno(e)))?;
        }
        if !meta.xattrs.is_empty() {
            self.set_xattrs(XattrTarget::At(dir, name), meta, entry)?;
        }
        rustix::fs::utimensat(dir, name, &timestamps(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fs(entry, "set mtime")(errno(e)))
    }

    fn dir(&mut self, dir: BorrowedFd<'_>, name: &OsStr, real: &Path, entry: &[u8], meta: &Meta) -> Result<()> {
        // Made with its permission bits (and u+rwx rootless, see `dir_meta`).
        let initial = Mode::from_raw_mode(if self.rootless { meta.mode & 0o777 | 0o700 } else { meta.mode & 0o777 });
        match rustix::fs::mkdirat(dir, name, initial) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = fsops::lstat(dir, name).map_err(self.fs(entry, "stat"))?;
                // An existing directory is kept (merged); anything else, a symlink above
                // all (CVE-2026-33056), is replaced.
                if !st.as_ref().is_some_and(|st| fsops::file_type(st) == FileType::Directory) {
                    self.remove_existing(dir, name, real, entry)?;
                    rustix::fs::mkdirat(dir, name, initial).map_err(|e| self.fs(entry, "mkdir")(errno(e)))?;
                }
            }
            Err(e) => return Err(self.fs(entry, "mkdir")(errno(e))),
        }
        let fd = fsops::open_subdir(dir, name).map_err(self.fs(entry, "open directory"))?;
        self.dir_meta(fd.as_fd(), real, meta, entry)?;
        self.record(real, meta.uid, meta.gid, None);
        Ok(())
    }

    fn dir_meta(&mut self, fd: BorrowedFd<'_>, real: &Path, meta: &Meta, entry: &[u8]) -> Result<()> {
        // Rootless, a directory we could not write into would stop the layers that
        // follow: keep u+rwx until the end.
        let deferred = self.rootless && meta.mode & 0o700 != 0o700;
        let now = if deferred { meta.mode | 0o700 } else { meta.mode };
        // As for files, one fstat says whether chown and chmod are needed.
        let st = rustix::fs::fstat(fd).map_err(|e| self.fs(entry, "stat")(errno(e)))?;
        let chown = !self.rootless && (st.st_uid, st.st_gid) != (meta.uid, meta.gid);
        if chown {
            self.chown_fd(fd, meta, entry)?;
        }
        if chown || st.st_mode & 0o7777 != now {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(now)).map_err(|e| self.fs(entry, "chmod")(errno(e)))?;
        }
        self.set_xattrs(XattrTarget::Fd(fd), meta, entry)?;
        self.dir_seq += 1;
        let seq = self.dir_seq;
        let id = (st.st_dev, st.st_ino);
        self.dirs
            .insert(key(real).to_vec(), DirMeta { mtime: meta.mtime, mode: deferred.then_some(meta.mode), seq, id });
        Ok(())
    }

    /// The entry naming the root itself (`./`): only a directory may, and its metadata
    /// goes to the root (umoci CVE-2021-29136: a root replaced by a symlink).
    fn root_entry(&mut self, entry: &[u8], meta: &Meta) -> Result<()> {
        if meta.kind != EntryKind::Dir {
            return Err(self.unsafe_entry(entry, format!("the root can only be a directory, not a {:?}", meta.kind)));
        }
        let fd = rustix::fs::openat(
            self.root.fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.fs(entry, "open root")(errno(e)))?;
        self.dir_meta(fd.as_fd(), Path::new(""), meta, entry)?;
        self.record(Path::new(""), meta.uid, meta.gid, None);
        Ok(())
    }

    /// A hard link named `path` by the layer, `real` in the tree.
    fn hardlink(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &Path,
        real: &Path,
        entry: &[u8],
        meta: &Meta,
    ) -> Result<()> {
        let target = path::normalize(&meta.link).map_err(|p| {
            self.unsafe_entry(entry, format!("hard link target {:?}: {p}", String::from_utf8_lossy(&meta.link)))
        })?;
        let (Some(tname), Some(tparent)) = (target.file_name(), target.parent()) else {
            return Err(self.unsafe_entry(entry, "hard link to the root".into()));
        };
        if target == path {
            return Ok(()); // a link to itself: nothing to do
        }
        // The target is resolved inside the root like any path; linkat does not follow
        // a symlink target (it links the symlink itself), so nothing outside is reached.
        let tdir = self.root.open_dir(tparent).map_err(self.fs(entry, "resolve hard link target"))?;
        self.make(dir, name, real, entry, "link", || rustix::fs::linkat(&tdir.fd, tname, dir, name, AtFlags::empty()))?;
        if self.rootless {
            match self.recorded.get(key(&tdir.path.join(tname))).copied() {
                Some(r) => {
                    self.recorded.insert(key(real).to_vec(), r);
                }
                None => {
                    self.recorded.remove(key(real));
                }
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, target: &Path, entry: &[u8]) -> Result<()> {
        // Whiteouts hide lower layers only: what this layer made stays.
        if self.added.contains(key(target)) {
            return Ok(());
        }
        let (parent, name) = match self.root.parent(target, false) {
            Ok(v) => v,
            Err(e) if is(&e, Errno::NOENT) || is(&e, Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(self.fs(entry, "resolve whiteout parent")(e)),
        };
        let dir = parent.fd.as_fd();
        let Some(st) = fsops::lstat(dir, name).map_err(self.fs(entry, "stat"))? else { return Ok(()) };
        let real = parent.path.join(name);
        if fsops::file_type(&st) == FileType::Directory && self.has_added_under(target) {
            let sub = fsops::open_subdir(dir, name).map_err(self.fs(entry, "open directory"))?;
            self.clear_lower(sub.as_fd(), &real, target, entry)?;
        } else {
            fsops::remove_all(dir, name).map_err(self.fs(entry, "remove"))?;
            self.forget(&real);
        }
        self.root.invalidate();
        Ok(())
    }

    fn opaque(&mut self, dir_path: &Path, entry: &[u8]) -> Result<()> {
        let (fd, real) = if dir_path.as_os_str().is_empty() {
            let fd = rustix::fs::openat(
                self.root.fd(),
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.fs(entry, "open root")(errno(e)))?;
            (fd, PathBuf::new())
        } else {
            let (parent, name) =
                self.root.parent(dir_path, true).map_err(self.fs(entry, "resolve parent directory"))?;
            let dir = parent.fd.as_fd();
            let real = parent.path.join(name);
            let st = fsops::lstat(dir, name).map_err(self.fs(entry, "stat"))?;
            match st.map(|s| fsops::file_type(&s)) {
                Some(FileType::Directory) => {}
                Some(_) => {
                    self.remove_existing(dir, name, &real, entry)?;
                    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))
                        .map_err(|e| self.fs(entry, "mkdir")(errno(e)))?;
                }
                None => rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))
                    .map_err(|e| self.fs(entry, "mkdir")(errno(e)))?,
            }
            (fsops::open_subdir(dir, name).map_err(self.fs(entry, "open directory"))?, real)
        };
        self.clear_lower(fd.as_fd(), &real, dir_path, entry)?;
        self.root.invalidate();
        Ok(())
    }

    /// Remove from directory `fd` (at `real`, named `path` by the layer) everything lower
    /// layers put there, keeping what this layer added (and the directories leading to it).
    fn clear_lower(&mut self, fd: BorrowedFd<'_>, real: &Path, path: &Path, entry: &[u8]) -> Result<()> {
        let names = fsops::list_dir(fd).map_err(self.fs(entry, "list directory"))?;
        for (name, mut ft) in names {
            let name = OsStr::from_bytes(&name);
            let child = path.join(name);
            if ft == FileType::Unknown {
                match fsops::lstat(fd, name).map_err(self.fs(entry, "stat"))? {
                    Some(st) => ft = fsops::file_type(&st),
                    None => continue,
                }
            }
            let added = self.added.contains(key(&child));
            if ft == FileType::Directory && (added || self.has_added_under(&child)) {
                let sub = fsops::open_subdir(fd, name).map_err(self.fs(entry, "open directory"))?;
                self.clear_lower(sub.as_fd(), &real.join(name), &child, entry)?;
            } else if !added {
                fsops::remove_all(fd, name).map_err(self.fs(entry, "remove"))?;
                self.forget(&real.join(name));
            }
        }
        Ok(())
    }

    /// Directory modes (deferred ones) and mtimes, deepest first, once every layer is in.
    ///
    /// `dirs` is keyed by real path, whatever name each layer used (`lib/d` and
    /// `usr/lib/d` with `lib -> usr/lib` both declare `usr/lib/d`; `/a/b` with `a -> /`
    /// declares `b`, however `a/b` resolves by the end): a later declaration replaces an
    /// earlier one, and removing a directory forgets it and its subtree by that same
    /// name, so each directory still there gets the metadata of its last declaration.
    /// Belt and braces, each is checked to be the inode declared (a mismatch is
    /// skipped), and an inode declared under two names takes the last declaration.
    fn finish_dirs(&mut self) -> Result<()> {
        self.root.invalidate();
        let dirs = std::mem::take(&mut self.dirs);
        let mut last: HashMap<(u64, u64), u64> = HashMap::new();
        for meta in dirs.values() {
            let seq = last.entry(meta.id).or_insert(meta.seq);
            *seq = (*seq).max(meta.seq);
        }
        for (path, meta) in dirs.iter().rev() {
            if last.get(&meta.id) != Some(&meta.seq) {
                continue;
            }
            let Some(fd) = self.open_declared_dir(path)? else { continue };
            let st = rustix::fs::fstat(&fd).map_err(|e| self.dir_err("stat", path)(errno(e)))?;
            if (st.st_dev, st.st_ino) != meta.id {
                continue;
            }
            if let Some(mode) = meta.mode {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                    .map_err(|e| self.dir_err("chmod", path)(errno(e)))?;
            }
            rustix::fs::futimens(&fd, &timestamps(meta.mtime))
                .map_err(|e| self.dir_err("set mtime", path)(errno(e)))?;
        }
        Ok(())
    }

    fn dir_err(&self, op: &'static str, path: &[u8]) -> impl FnOnce(io::Error) -> Error {
        let path = self.root_path.join(Path::new(OsStr::from_bytes(path)));
        move |source: io::Error| Error::Io { op, path, source }
    }

    /// The directory a declared name leads to now, if it is still there.
    fn open_declared_dir(&self, path: &[u8]) -> Result<Option<OwnedFd>> {
        let path = Path::new(OsStr::from_bytes(path));
        if path.as_os_str().is_empty() {
            let fd = rustix::fs::openat(
                self.root.fd(),
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.dir_err("open root", b"")(errno(e)))?;
            return Ok(Some(fd));
        }
        let (Some(name), Some(parent)) = (path.file_name(), path.parent()) else { return Ok(None) };
        let key = path.as_os_str().as_bytes();
        let dir = match self.root.open_dir(parent) {
            Ok(d) => d,
            Err(e) if is(&e, Errno::NOENT) || is(&e, Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(self.dir_err("resolve directory", key)(e)),
        };
        match fsops::open_subdir(dir.fd.as_fd(), name) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if is(&e, Errno::NOENT) || is(&e, Errno::NOTDIR) || is(&e, Errno::LOOP) => Ok(None),
            Err(e) => Err(self.dir_err("open directory", key)(e)),
        }
    }
}

#[derive(Clone, Copy)]
enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a OsStr),
}

/// A normalised path as the key of the maps above.
fn key(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// The key range of `p`'s descendants: `[p/, p0)`; `None` as the end for the root,
/// whose descendants are every key but `""`.
fn subtree(p: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let k = key(p);
    if k.is_empty() {
        return (Vec::new(), None);
    }
    let mut lo = k.to_vec();
    lo.push(b'/');
    let mut hi = k.to_vec();
    hi.push(b'0');
    (lo, Some(hi))
}

/// Maps keyed by path from which a removed subtree is dropped.
trait Forget {
    fn forget_under(&mut self, p: &Path);
}

impl<V> Forget for BTreeMap<Vec<u8>, V> {
    fn forget_under(&mut self, p: &Path) {
        let (lo, hi) = subtree(p);
        let Some(hi) = hi else {
            // The root is never removed, only emptied: keep its own entry.
            let root = self.remove(&b""[..]);
            self.clear();
            if let Some(v) = root {
                self.insert(Vec::new(), v);
            }
            return;
        };
        self.remove(key(p));
        let doomed: Vec<Vec<u8>> = self
            .range::<[u8], _>((Bound::Included(&lo[..]), Bound::Excluded(&hi[..])))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }
}
