//! The union merge onto disk: apply layers, in order, onto a root directory.
//!
//! Each layer is read as stored (compressed) and decompressed on a second thread (a
//! [`LayerStream`]); the calling thread hashes the tar and runs the union rules
//! ([`crate::union`]) on the directory ([`Disk`], every path resolved inside the root by
//! [`crate::fsops`]); writer threads create, write and close small files (`files`). See the crate documentation for the semantics and
//! `docs/security.md` for the threat model.

mod dirs;
mod disk;
mod files;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_spec::progress::{ProgressHook, ProgressReader};
use strata_spec::{Compression, Digest};

use crate::error::{Error, Result};
use crate::fsops::{Resolver, Root};
use crate::plan::Plan;
use crate::read::{Limits, TarReader};
use crate::source::{LayerSource, stream_options};
use crate::stream::LayerStream;
use crate::union::{Header, HeaderPrint, Union, classify};

use disk::Disk;

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
    /// Create every file on the calling thread, in layer order, as a single thread
    /// would (writer threads only write and close them). By default small files in
    /// directories the unpack made are created by the writer threads too, which gives
    /// the same tree faster; this is for comparisons and debugging (also set by the
    /// environment variable `STRATA_UNPACK_SEQUENTIAL=1`).
    pub sequential_create: bool,
    /// Entries not to write because a later layer deletes or replaces them, planned
    /// from these same layers' headers (see [`Plan`]). Each layer's headers are checked
    /// against the plan's.
    pub plan: Option<Arc<Plan>>,
    /// Told the bytes read of each layer as given (`Layer*` events, without
    /// descriptors: a [`LayerSource`] has none), for progress bars.
    pub progress: ProgressHook,
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

    /// Set [`ApplyOptions::sequential_create`].
    pub fn sequential_create(mut self, sequential: bool) -> Self {
        self.sequential_create = sequential;
        self
    }

    /// Set [`ApplyOptions::plan`].
    pub fn plan(mut self, plan: Arc<Plan>) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Set [`ApplyOptions::progress`].
    pub fn progress(mut self, hook: ProgressHook) -> Self {
        self.progress = hook;
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
    let root_fd = Root::open(root, opts.resolver)
        .map_err(|source| Error::Io(strata_spec::IoError::new("open root", root.to_path_buf(), source)))?;
    let rootless = match opts.ownership {
        Ownership::Apply => false,
        Ownership::Record => true,
        Ownership::Auto => !rustix::process::geteuid().is_root(),
    };
    let a = Applier { disk: Disk::new(root_fd, root, rootless), union: Union::default(), plan: opts.plan.clone() };
    let mut reports = Vec::new();
    // Each layer's decompression starts while the layer before it is still being
    // written, so the pipeline never drains at a layer boundary; small files are
    // created, written and closed on writer threads (see `files`). The applier lives
    // inside the scope: an error or a panic drops it, and with it the writers' queue, so
    // the scope's threads always end.
    let mut a = std::thread::scope(|s| -> Result<Applier> {
        let mut a = a;
        let scope = (!opts.single_thread).then_some(s);
        let writers = match scope {
            Some(s) => {
                let (queue, handles) =
                    files::Queue::start(s, a.disk.meta.clone(), files::default_writers()).map_err(|source| {
                        Error::Io(strata_spec::IoError::new("start the file writer thread", root.to_path_buf(), source))
                    })?;
                a.disk.files = Some(queue);
                let sequential =
                    opts.sequential_create || std::env::var_os("STRATA_UNPACK_SEQUENTIAL").is_some_and(|v| v == "1");
                if !sequential {
                    a.disk.parallel_create();
                }
                handles
            }
            None => Vec::new(),
        };
        let layers: Vec<LayerSource<R>> = layers.into_iter().collect();
        let count = layers.len();
        let start = |(index, l): (usize, LayerSource<R>)| -> Result<Started<'_>> {
            let reader = ProgressReader::new(l.reader, opts.progress.clone(), index, count, None);
            let l = LayerSource { reader, compression: l.compression, diff_id: l.diff_id, name: l.name };
            let name = l.name.clone();
            let opts = stream_options(l.diff_id.as_ref(), &opts.limits);
            let (dec, diff_id) = l.decoder()?;
            Ok(Started { name, diff_id, stream: LayerStream::start(scope, dec, &opts)? })
        };
        let mut layers = layers.into_iter().enumerate();
        let mut next = layers.next().map(start);
        let mut applied = Ok(());
        while let Some(current) = next.take() {
            next = layers.next().map(start);
            match current.and_then(|c| a.layer(c, &opts.limits)) {
                Ok(report) => reports.push(report),
                Err(e) => {
                    applied = Err(e);
                    break;
                }
            }
        }
        // Every file written and closed before directory times are set; a writer's
        // own error explains a failed hand-over.
        if let Some(queue) = a.disk.files.take()
            && applied.is_ok()
        {
            queue.close();
        }
        let mut first = None;
        for handle in writers {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first = first.or(Some(e)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        applied.map(|()| a)
    })?;
    // A plan that counted on later layers deleting what was skipped needs them applied.
    if let Some(plan) = &a.plan
        && reports.len() != plan.layers()
    {
        return Err(Error::LayerChanged {
            layer: reports.last().map(|r| r.name.clone()).unwrap_or_default(),
            reason: format!("{} layers applied, the plan is of {}", reports.len(), plan.layers()),
        });
    }
    a.disk.finish_dirs()?;
    Ok(ApplyReport {
        layers: reports,
        resolver: a.disk.resolver(),
        rootless,
        recorded: a.disk.take_recorded(),
        xattrs_skipped: a.disk.meta.xattrs_skipped.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// A layer whose stream is running.
struct Started<'s> {
    name: String,
    diff_id: Option<Digest>,
    stream: LayerStream<'s>,
}

/// The union rules on the directory, layer after layer.
struct Applier {
    disk: Disk,
    union: Union,
    plan: Option<Arc<Plan>>,
}

impl Applier {
    /// Apply one layer whose stream is running.
    fn layer(&mut self, l: Started<'_>, limits: &Limits) -> Result<LayerReport> {
        let index = self.disk.begin(&l.name);
        let plan = match &self.plan {
            Some(plan) => Some(plan.layer(index).cloned().ok_or_else(|| Error::LayerChanged {
                layer: l.name.clone(),
                reason: format!("layer {} of a stack the plan says has {}", index + 1, plan.layers()),
            })?),
            None => None,
        };
        self.disk.plan = plan;
        self.union.begin();
        let mut print = self.disk.plan.is_some().then(HeaderPrint::default);
        let mut tar = TarReader::new(l.stream, limits.clone(), &l.name);
        let applied = self.entries(&mut tar, &l.name, print.as_mut());
        let mut stream = tar.into_inner();
        let end = match applied {
            // The stream's own error explains a reader's error (e.g. truncation).
            Err(e) => return Err(stream.explain(e)),
            // Read the stream to its true end so the digest covers every byte.
            Ok(()) => stream.finish()?,
        };
        let diff_id = end.digest.ok_or_else(|| Error::InvalidTar {
            layer: l.name.clone(),
            entry: None,
            reason: "the layer was not hashed".into(),
        })?;
        // At the end of a layer: its headers must be the ones the plan was made from.
        if let (Some(print), Some(plan)) = (print, &self.disk.plan) {
            plan.check(print).map_err(|reason| Error::LayerChanged { layer: l.name.clone(), reason })?;
        }
        if let Some(expected) = l.diff_id
            && expected != diff_id
        {
            return Err(Error::DiffIdMismatch { layer: l.name, expected, actual: diff_id });
        }
        Ok(LayerReport {
            name: l.name,
            compression: end.compression,
            diff_id,
            size: end.size,
            entries: self.union.entries,
            whiteouts: self.union.whiteouts,
            skipped: self.disk.skipped,
            skipped_bytes: self.disk.skipped_bytes,
        })
    }

    fn entries(
        &mut self,
        tar: &mut TarReader<LayerStream<'_>>,
        layer: &str,
        mut print: Option<&mut HeaderPrint>,
    ) -> Result<()> {
        let mut ordinal = 0u64;
        while let Some(e) = tar.next_entry()? {
            if let Some(print) = print.as_deref_mut() {
                print.add(e.kind, &e.path, &e.link, e.size);
            }
            let entry = classify(Header::of(e, ordinal, 0), layer)?;
            ordinal += 1;
            self.union.apply(&mut self.disk, entry, tar, layer)?;
        }
        Ok(())
    }
}
