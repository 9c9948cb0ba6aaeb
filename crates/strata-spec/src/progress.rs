//! Progress of long operations, one trait for all of them: pull and push, save and load,
//! unpack, commit and import, writing and applying layers.
//!
//! An operation that can take long accepts a [`Progress`] (a closure works) and reports
//! [`Event`]s to it: blob transfers (pull, push) as `Blob*` events, layers read or
//! written (unpack, commit, import, `write_tree`, `apply_layers`) as `Layer*` events,
//! archives written or read (save, load) as `Archive*` events. Both carry byte counts so far, so one callback can drive a progress bar or
//! print bytes for every step:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use strata_spec::progress::{Event, ProgressHook, ProgressReader};
//!
//! let read = Arc::new(AtomicU64::new(0));
//! let seen = read.clone();
//! let hook = ProgressHook::new(move |e: &Event<'_>| {
//!     if let Event::LayerDone { bytes, .. } = e {
//!         seen.store(*bytes, Ordering::Relaxed);
//!     }
//! });
//! let data = vec![0u8; 1 << 20];
//! let mut r = ProgressReader::new(&data[..], hook, 0, 1, None);
//! std::io::copy(&mut r, &mut std::io::sink())?;
//! assert_eq!(read.load(Ordering::Relaxed), 1 << 20);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use crate::Descriptor;

/// Why a blob was not transferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Pull: the local store already has it.
    Present,
    /// Push: the registry already has it in the destination repository.
    Exists,
    /// Push: the registry mounted it from the `mount_from` repository.
    Mounted,
    /// A non-distributable (foreign) layer with URLs: neither pulled nor pushed, as
    /// docker does.
    Foreign,
}

/// Something that happened during a long operation.
///
/// Blob events come from several threads at once (one per concurrent transfer); each
/// blob gets `BlobStarted`, then `BlobProgress` events, then `BlobDone` — or just
/// `BlobSkipped`. A resumed or restarted download sends `BlobProgress` with the byte
/// count it continues from. Layer events likewise: `LayerStarted`, `LayerProgress`,
/// `LayerDone`, possibly from another thread than the caller's.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A blob transfer starts (pull, push).
    BlobStarted {
        /// The blob (its `size` is the total for a progress bar).
        descriptor: &'a Descriptor,
    },
    /// Bytes of a blob transferred so far (not a delta).
    BlobProgress {
        /// The blob.
        descriptor: &'a Descriptor,
        /// Bytes done, out of `descriptor.size`.
        bytes: u64,
    },
    /// A blob was transferred and verified (pull: stored; push: the registry has it).
    BlobDone {
        /// The blob.
        descriptor: &'a Descriptor,
    },
    /// A blob needed no transfer.
    BlobSkipped {
        /// The blob.
        descriptor: &'a Descriptor,
        /// Why.
        reason: SkipReason,
    },
    /// A manifest or index was stored (pull) or uploaded (push).
    ManifestDone {
        /// The manifest or index.
        descriptor: &'a Descriptor,
    },
    /// A transient failure; the request is retried after `delay`.
    Retrying {
        /// The blob, manifest or index being transferred (`None` for the first
        /// manifest of a pull, whose descriptor is not known yet, and for tokens).
        descriptor: Option<&'a Descriptor>,
        /// Which retry this is (1 for the first).
        attempt: u32,
        /// How long until the retry.
        delay: Duration,
        /// What failed.
        error: &'a (dyn std::error::Error + 'static),
    },
    /// A layer starts being read (unpack) or written (commit, import).
    LayerStarted {
        /// Position of the layer among those the operation works through (0-based).
        index: usize,
        /// How many layers the operation works through.
        count: usize,
        /// The layer blob, when it exists already (unpack); `None` for a layer being
        /// written, whose digest is known only at its end.
        descriptor: Option<&'a Descriptor>,
    },
    /// Bytes of a layer done so far (not a delta): of the stored blob read (unpack), or
    /// of the uncompressed tar written (commit, import, `write_tree`).
    LayerProgress {
        /// Position of the layer (0-based).
        index: usize,
        /// How many layers the operation works through.
        count: usize,
        /// The layer blob, when known (see [`Event::LayerStarted`]).
        descriptor: Option<&'a Descriptor>,
        /// Bytes done.
        bytes: u64,
    },
    /// A layer was read to its end, or written and stored.
    LayerDone {
        /// Position of the layer (0-based).
        index: usize,
        /// How many layers the operation works through.
        count: usize,
        /// The layer blob read (unpack); `None` for a layer written, whose descriptor
        /// the operation's result holds.
        descriptor: Option<&'a Descriptor>,
        /// Bytes done in all.
        bytes: u64,
    },
    /// Bytes of an archive written (save) or read (load) so far.
    ArchiveProgress {
        /// Bytes done.
        bytes: u64,
    },
    /// An archive was written to its end (save) or read and loaded (load).
    ArchiveDone {
        /// Bytes in all.
        bytes: u64,
    },
}

/// Receives [`Event`]s. Implemented for closures, so `&|e: &Event<'_>| ...` works;
/// [`NoProgress`] ignores everything. Called from several threads: keep it quick.
pub trait Progress: Send + Sync {
    /// Handle one event.
    fn event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Send + Sync> Progress for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// A [`Progress`] that ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &Event<'_>) {}
}

/// A shared [`Progress`], as operation options hold one (`UnpackOptions::progress`,
/// `CommitOptions::progress`...): cheap to clone, printable in `Debug` output, and
/// reporting nothing by default.
#[derive(Clone, Default)]
pub struct ProgressHook(Option<Arc<dyn Progress>>);

impl ProgressHook {
    /// Wrap a [`Progress`] (a closure `|e: &Event<'_>| ...` is one).
    pub fn new(p: impl Progress + 'static) -> Self {
        ProgressHook(Some(Arc::new(p)))
    }

    /// Whether anything listens (readers skip counting when nothing does).
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Report `event`, if anything listens.
    pub fn event(&self, event: &Event<'_>) {
        if let Some(p) = &self.0 {
            p.event(event);
        }
    }
}

impl Progress for ProgressHook {
    fn event(&self, event: &Event<'_>) {
        ProgressHook::event(self, event)
    }
}

/// Two hooks are equal when they are the same hook (or both unset).
impl PartialEq for ProgressHook {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for ProgressHook {}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() { "ProgressHook(set)" } else { "ProgressHook(none)" })
    }
}

/// Report at most every this many bytes (plus at the end): often enough for a smooth
/// bar, rare enough that the observer costs nothing next to hashing and inflating.
pub const REPORT_EVERY: u64 = 256 << 10;

/// Bytes done so far, and whether a progress report is due: every counting reader and
/// writer of strata (layers read and written, archives) reports on the same rhythm.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteCount {
    bytes: u64,
    reported: u64,
}

impl ByteCount {
    /// Count `n` more bytes; returns the total when [`REPORT_EVERY`] bytes have passed
    /// since the last report (which this then is).
    pub fn add(&mut self, n: usize) -> Option<u64> {
        self.bytes += n as u64;
        (self.bytes - self.reported >= REPORT_EVERY).then(|| {
            self.reported = self.bytes;
            self.bytes
        })
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A reader that reports the bytes read through it as layer `index` of `count`:
/// [`Event::LayerStarted`] at the first read, [`Event::LayerProgress`] every
/// [`REPORT_EVERY`] bytes, [`Event::LayerDone`] once at the end of the stream.
pub struct ProgressReader<R> {
    inner: R,
    progress: ProgressHook,
    descriptor: Option<Descriptor>,
    index: usize,
    count: usize,
    counted: ByteCount,
    started: bool,
    done: bool,
}

impl<R> ProgressReader<R> {
    /// Count what is read from `inner`, reporting to `progress`.
    pub fn new(inner: R, progress: ProgressHook, index: usize, count: usize, descriptor: Option<&Descriptor>) -> Self {
        ProgressReader {
            inner,
            progress,
            descriptor: descriptor.cloned(),
            index,
            count,
            counted: ByteCount::default(),
            started: false,
            done: false,
        }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.counted.bytes()
    }

    /// The reader inside.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.progress.is_set() {
            return self.inner.read(buf);
        }
        let (index, count, descriptor) = (self.index, self.count, self.descriptor.as_ref());
        if !self.started {
            self.started = true;
            self.progress.event(&Event::LayerStarted { index, count, descriptor });
        }
        let n = self.inner.read(buf)?;
        let due = self.counted.add(n);
        if n == 0 && !buf.is_empty() && !self.done {
            self.done = true;
            self.progress.event(&Event::LayerDone { index, count, descriptor, bytes: self.counted.bytes() });
        } else if let Some(bytes) = due {
            self.progress.event(&Event::LayerProgress { index, count, descriptor, bytes });
        }
        Ok(n)
    }
}

/// A writer that reports the bytes written through it as [`Event::LayerProgress`] of
/// layer `index` of `count` (a layer being written: no descriptor yet). The caller
/// reports [`Event::LayerStarted`] and [`Event::LayerDone`], which it knows.
pub struct ProgressWriter<W> {
    inner: W,
    progress: ProgressHook,
    index: usize,
    count: usize,
    counted: ByteCount,
}

impl<W> ProgressWriter<W> {
    /// Count what is written to `inner`, reporting to `progress`.
    pub fn new(inner: W, progress: ProgressHook, index: usize, count: usize) -> Self {
        ProgressWriter { inner, progress, index, count, counted: ByteCount::default() }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.counted.bytes()
    }

    /// The writer inside.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// The writer inside, by reference.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: io::Write> io::Write for ProgressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(bytes) = self.counted.add(n) {
            let (index, count) = (self.index, self.count);
            self.progress.event(&Event::LayerProgress { index, count, descriptor: None, bytes });
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<(&'static str, usize, u64)>>>;

    fn recorder() -> (Seen, ProgressHook) {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        (seen, ProgressHook::new(move |e: &Event<'_>| record(&s, e)))
    }

    fn record(seen: &Mutex<Vec<(&'static str, usize, u64)>>, e: &Event<'_>) {
        let row = match e {
            Event::LayerStarted { index, .. } => ("started", *index, 0),
            Event::LayerProgress { index, bytes, .. } => ("progress", *index, *bytes),
            Event::LayerDone { index, bytes, .. } => ("done", *index, *bytes),
            _ => ("other", 0, 0),
        };
        seen.lock().unwrap().push(row);
    }

    #[test]
    fn a_reader_reports_start_progress_and_the_end_once() {
        let data = vec![7u8; (REPORT_EVERY as usize) * 2 + 10];
        let (seen, hook) = recorder();
        let mut r = ProgressReader::new(&data[..], hook, 1, 3, None);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.first(), Some(&("started", 1, 0)));
        assert_eq!(seen.last(), Some(&("done", 1, data.len() as u64)));
        assert_eq!(seen.iter().filter(|s| s.0 == "done").count(), 1, "{seen:?}");
        assert_eq!(seen.iter().filter(|s| s.0 == "progress").count(), 2, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0].2 <= w[1].2));
    }

    #[test]
    fn a_writer_reports_bytes_written() {
        let (seen, hook) = recorder();
        let mut w = ProgressWriter::new(Vec::new(), hook, 0, 1);
        w.write_all(&vec![1u8; REPORT_EVERY as usize * 3]).unwrap();
        assert_eq!(w.bytes(), REPORT_EVERY * 3);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.last(), Some(&("progress", 0, REPORT_EVERY * 3)));
        assert_eq!(w.into_inner().len() as u64, REPORT_EVERY * 3);
    }

    #[test]
    fn a_hook_is_quiet_until_set() {
        let none = ProgressHook::default();
        assert!(!none.is_set());
        none.event(&Event::LayerStarted { index: 0, count: 1, descriptor: None });
        let seen = Arc::new(Mutex::new(0));
        let s = seen.clone();
        let hook = ProgressHook::new(move |_: &Event<'_>| *s.lock().unwrap() += 1);
        hook.clone().event(&Event::LayerStarted { index: 0, count: 1, descriptor: None });
        assert_eq!(*seen.lock().unwrap(), 1);
        assert_eq!(format!("{hook:?}"), "ProgressHook(set)");
    }
}
