//! Verified blob readers and hashing blob writers, shared by every store.

use std::fmt;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use strata_spec::{Algorithm, Descriptor, Digest, Digester, HashingWriter};

use crate::error::{Error, Result};
use crate::lease::Lease;

/// Buffer size for reading and writing blobs: 256 KiB. With SHA-NI, sha2 hashes about
/// 1.6 GiB/s (benches/store.rs), so a buffer this size takes ~0.15 ms and per-call costs
/// (a syscall, a hasher call) stay well under 1%; larger buffers only cost cache (the
/// bench was slower with 128 KiB and no faster with 1 MiB).
pub(crate) const IO_BUFFER: usize = 256 * 1024;

/// What a writer's bytes must turn out to be. Empty means "whatever was written".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// The digest the bytes must hash to.
    pub digest: Option<Digest>,
    /// The number of bytes.
    pub size: Option<u64>,
}

impl Expected {
    /// No expectation: commit whatever was written, under its own digest.
    pub fn none() -> Self {
        Expected::default()
    }

    /// Expect a digest.
    pub fn digest(digest: Digest) -> Self {
        Expected { digest: Some(digest), size: None }
    }

    /// Expect the digest and size of a descriptor (as when copying a blob from a registry).
    pub fn descriptor(desc: &Descriptor) -> Self {
        Expected { digest: Some(desc.digest.clone()), size: Some(desc.size) }
    }
}

/// A committed blob: its digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobInfo {
    /// The digest, which is the blob's name.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the store already had it (the write only confirmed it).
    pub existed: bool,
}

/// The backend half of a [`BlobWriter`]: where the bytes go, and how they become a blob.
pub(crate) trait Sink: Write + Send {
    /// Make the written bytes the blob `digest` (already verified by the caller).
    /// Returns whether the blob already existed.
    fn commit(self: Box<Self>, digest: &Digest, size: u64) -> Result<bool>;
    /// Where the bytes are going, for error messages.
    fn location(&self) -> PathBuf;
    /// Whether writes are slow enough (a file, not memory) that large blobs gain from
    /// writing on a second thread while the caller's thread hashes.
    fn wants_pipeline(&self) -> bool {
        false
    }
}

/// A blob this large is written on a second thread, overlapping the file writes with
/// hashing: 16 MiB, where the thread's start-up (~20 µs) is lost in the noise and
/// small blobs (manifests, configs, most layers of a commit) never pay for it.
const PIPELINE_THRESHOLD: u64 = 16 << 20;
/// Size of the buffers handed to the writing thread, and how many can be in flight:
/// 4 x 1 MiB keeps the thread busy without holding much memory.
const PIPELINE_CHUNK: usize = 1 << 20;
const PIPELINE_DEPTH: usize = 4;

/// A placeholder while a sink is being moved; never written to.
struct NullSink;

impl Write for NullSink {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("blob sink is being moved to its writer thread"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for NullSink {
    fn commit(self: Box<Self>, _: &Digest, _: u64) -> Result<bool> {
        Err(Error::Io(strata_spec::IoError::new(
            "commit",
            PathBuf::from("<moving>"),
            io::Error::other("blob sink is being moved to its writer thread"),
        )))
    }

    fn location(&self) -> PathBuf {
        PathBuf::from("<moving>")
    }
}

/// What the writing thread hands back: the real sink and how its writes went.
type WriterDone = (Box<dyn Sink>, io::Result<()>);

/// A [`Sink`] that hands filled buffers to a thread which writes them to the real sink.
/// Buffers come back on a second channel, so nothing is allocated per chunk.
struct PipedSink {
    location: PathBuf,
    current: Vec<u8>,
    to_writer: Option<mpsc::SyncSender<Vec<u8>>>,
    recycled: mpsc::Receiver<Vec<u8>>,
    writer: Option<thread::JoinHandle<Option<WriterDone>>>,
}

impl PipedSink {
    /// Start the writing thread; if no thread can be had, the sink comes back unchanged.
    fn start(inner: Box<dyn Sink>) -> std::result::Result<PipedSink, Box<dyn Sink>> {
        let location = inner.location();
        let (hand_over, receive_sink) = mpsc::channel::<Box<dyn Sink>>();
        let (to_writer, from_caller) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_DEPTH);
        let (give_back, recycled) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_DEPTH + 2);
        let spawned = thread::Builder::new().name("strata-blob-writer".into()).spawn(move || {
            let Ok(mut inner) = receive_sink.recv() else {
                return None;
            };
            for mut buf in from_caller {
                if let Err(e) = inner.write_all(&buf) {
                    return Some((inner, Err(e)));
                }
                buf.clear();
                let _ = give_back.try_send(buf);
            }
            Some((inner, Ok(())))
        });
        let Ok(writer) = spawned else { return Err(inner) };
        if let Err(mpsc::SendError(inner)) = hand_over.send(inner) {
            return Err(inner);
        }
        Ok(PipedSink {
            location,
            current: Vec::with_capacity(PIPELINE_CHUNK),
            to_writer: Some(to_writer),
            recycled,
            writer: Some(writer),
        })
    }

    fn send_current(&mut self) -> io::Result<()> {
        let next = self.recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(PIPELINE_CHUNK));
        let full = std::mem::replace(&mut self.current, next);
        let sent = self.to_writer.as_ref().map(|tx| tx.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped: it failed a write. Collect its error.
            _ => Err(self.stop().err().unwrap_or_else(|| io::Error::other("blob writer thread stopped"))),
        }
    }

    /// Stop the thread and get the real sink back, with the first write error if any.
    fn stop(&mut self) -> io::Result<Box<dyn Sink>> {
        self.to_writer = None;
        let handle = self.writer.take().ok_or_else(|| io::Error::other("blob writer thread already stopped"))?;
        let (inner, result) =
            handle.join().ok().flatten().ok_or_else(|| io::Error::other("blob writer thread panicked"))?;
        result.map(|()| inner)
    }
}

impl Write for PipedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = PIPELINE_CHUNK - self.current.len();
        let n = room.min(buf.len());
        self.current.extend_from_slice(&buf[..n]);
        if self.current.len() == PIPELINE_CHUNK {
            self.send_current()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for PipedSink {
    fn commit(mut self: Box<Self>, digest: &Digest, size: u64) -> Result<bool> {
        if !self.current.is_empty() {
            self.send_current().map_err(Error::io("write", self.location.clone()))?;
        }
        let inner = self.stop().map_err(Error::io("write", self.location.clone()))?;
        inner.commit(digest, size)
    }

    fn location(&self) -> PathBuf {
        self.location.clone()
    }
}

impl Drop for PipedSink {
    fn drop(&mut self) {
        // Join the thread so that the real sink (and its temp file) is gone when the
        // writer is.
        if self.writer.is_some() {
            let _ = self.stop();
        }
    }
}

/// A blob being written: a [`std::io::Write`] sink that hashes and counts what passes
/// through, then [`commit`](BlobWriter::commit)s it under its digest.
///
/// Dropping a writer without committing discards what was written (its temp file is
/// removed). While the writer is open it holds a [`Lease`] on the store, so a
/// concurrent GC waits for it.
pub struct BlobWriter {
    inner: io::BufWriter<HashingWriter<Box<dyn Sink>>>,
    /// Whether the sink may still be moved to a writing thread.
    may_pipeline: bool,
    _lease: Lease,
}

impl BlobWriter {
    pub(crate) fn new(sink: Box<dyn Sink>, algorithm: Algorithm, lease: Lease) -> Self {
        let may_pipeline = sink.wants_pipeline();
        let hashing = HashingWriter::with_algorithm(sink, algorithm);
        BlobWriter { inner: io::BufWriter::with_capacity(IO_BUFFER, hashing), may_pipeline, _lease: lease }
    }

    /// Once a blob is large, move its file writes to a second thread.
    fn maybe_pipeline(&mut self) -> io::Result<()> {
        if !self.may_pipeline || self.inner.get_ref().count() < PIPELINE_THRESHOLD {
            return Ok(());
        }
        self.may_pipeline = false;
        let slot = self.inner.get_mut().get_mut();
        let real = std::mem::replace(slot, Box::new(NullSink));
        *slot = match PipedSink::start(real) {
            Ok(piped) => Box::new(piped),
            // No thread to be had: go on writing on this one.
            Err(real) => real,
        };
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.inner.get_ref().count() + self.inner.buffer().len() as u64
    }

    /// Verify what was written against `expected`, make it durable and give it its name.
    ///
    /// On a mismatch nothing is stored and the error says what was expected and found.
    /// Committing a blob the store already has is cheap and leaves the existing file.
    pub fn commit(self, expected: Expected) -> Result<BlobInfo> {
        let location = self.inner.get_ref().get_ref().location();
        let hashing = self.inner.into_inner().map_err(|e| Error::from_io(e.into_error(), "write", location))?;
        let (sink, digest, size) = hashing.finish();
        if let Some(want) = &expected.digest {
            if want.algorithm() != digest.algorithm() {
                return Err(Error::AlgorithmMismatch { expected: want.clone(), algorithm: digest.algorithm() });
            }
            if *want != digest {
                return Err(Error::DigestMismatch { expected: want.clone(), actual: digest });
            }
        }
        if let Some(want) = expected.size
            && want != size
        {
            return Err(Error::SizeMismatch { digest, expected: want, actual: size });
        }
        let existed = sink.commit(&digest, size)?;
        Ok(BlobInfo { digest, size, existed })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.maybe_pipeline()?;
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.maybe_pipeline()?;
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobWriter")
            .field("location", &self.inner.get_ref().get_ref().location())
            .field("bytes_written", &self.bytes_written())
            .finish()
    }
}

/// What a [`BlobReader`] reads from: a stream that can also skip ahead (a file seeks,
/// bytes in memory move a cursor).
pub(crate) trait Source: Read + Send {
    /// Skip `n` bytes. Past the end is not an error here (the reader checks the size).
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

impl Source for std::fs::File {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "skip out of range"))?;
        self.seek(SeekFrom::Current(n)).map(drop)
    }
}

impl<T: AsRef<[u8]> + Send> Source for io::Cursor<T> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        self.set_position(self.position().saturating_add(n));
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    Reading,
    /// EOF reached and the digest and size were right.
    Verified,
}

/// A blob opened for reading. It hashes and counts what it returns and, at the end,
/// checks both against the blob's digest and expected size: a mismatch is returned as an
/// `io::Error` of kind `InvalidData` wrapping [`Error::DigestMismatch`] or
/// [`Error::SizeMismatch`] (get it back with [`Error::from_io`]), never as a clean end.
/// Reading more bytes than the expected size fails at once.
///
/// It is buffered and implements [`BufRead`]; don't wrap it in another `BufReader`.
/// Once its digest check is off ([`BlobReader::without_digest_check`]) it also seeks
/// forward ([`Seek`]): a reader of an uncompressed layer's headers skips the data.
pub struct BlobReader {
    inner: Box<dyn Source>,
    digest: Digest,
    size: u64,
    digester: Option<Digester>,
    count: u64,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    state: State,
    /// The verification failure, recreated for every read after it.
    failure: Option<(Option<Digest>, u64)>,
    location: PathBuf,
}

impl BlobReader {
    /// A reader over `inner` that must yield exactly `size` bytes hashing to `digest`.
    /// `location` names the source in error messages.
    pub(crate) fn new(inner: Box<dyn Source>, digest: Digest, size: u64, location: PathBuf) -> Self {
        let buf_len = usize::try_from(size).map_or(IO_BUFFER, |s| s.clamp(1, IO_BUFFER));
        BlobReader {
            inner,
            digester: Some(Digester::new(digest.algorithm())),
            digest,
            size,
            count: 0,
            buf: vec![0u8; buf_len].into_boxed_slice(),
            pos: 0,
            filled: 0,
            state: State::Reading,
            failure: None,
            location,
        }
    }

    /// The digest the blob must have.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The size the blob must have.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the bytes come from (a file path, or a description), for messages.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Check only the size from here on, not the digest: for a caller that verifies the
    /// content another way that covers every byte, such as a compressed layer whose
    /// decompressed bytes are checked against the image config's `diff_id` (a blob that
    /// differs from its name either fails to decompress or fails that check, so hashing
    /// it twice buys nothing). The size is still enforced as before: reading past it
    /// fails at once, and ending short of it is an error. Call it before the first read.
    pub fn without_digest_check(mut self) -> Self {
        if self.count == 0 {
            self.digester = None;
        }
        self
    }

    /// Whether the whole blob has been read and verified.
    pub fn is_verified(&self) -> bool {
        matches!(self.state, State::Verified)
    }

    fn failure_error(&self, actual: Option<Digest>, count: u64) -> io::Error {
        match actual {
            Some(actual) => Error::DigestMismatch { expected: self.digest.clone(), actual }.into_io(),
            None => Error::SizeMismatch { digest: self.digest.clone(), expected: self.size, actual: count }.into_io(),
        }
    }

    /// Account for `n` new bytes at `bytes`; fail if they overrun the expected size.
    fn absorb(&mut self, bytes_start: usize, n: usize, external: Option<&[u8]>) -> io::Result<()> {
        self.count += n as u64;
        if self.count > self.size {
            self.failure = Some((None, self.count));
            return Err(self.failure_error(None, self.count));
        }
        if let Some(d) = &mut self.digester {
            match external {
                Some(b) => d.update(&b[..n]),
                None => d.update(&self.buf[bytes_start..bytes_start + n]),
            }
        }
        Ok(())
    }

    /// The underlying source hit EOF: verify.
    fn finish(&mut self) -> io::Result<()> {
        if matches!(self.state, State::Verified) {
            return Ok(());
        }
        if self.count != self.size {
            self.failure = Some((None, self.count));
            return Err(self.failure_error(None, self.count));
        }
        let actual = match self.digester.take() {
            Some(d) => d.finish(),
            None => return Ok(()),
        };
        if actual != self.digest {
            self.failure = Some((Some(actual.clone()), self.count));
            return Err(self.failure_error(Some(actual), self.count));
        }
        self.state = State::Verified;
        Ok(())
    }

    fn check_failed(&self) -> io::Result<()> {
        match &self.failure {
            Some((actual, count)) => Err(self.failure_error(actual.clone(), *count)),
            None => Ok(()),
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.check_failed()?;
        if out.is_empty() {
            return Ok(0);
        }
        // Large reads with an empty buffer bypass it: hash straight from the caller's buffer.
        if self.pos == self.filled && out.len() >= self.buf.len() && matches!(self.state, State::Reading) {
            let n = self.read_inner(out)?;
            if n == 0 {
                self.finish()?;
                return Ok(0);
            }
            self.absorb(0, n, Some(out))?;
            return Ok(n);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Forward only, and only without the digest check (skipped bytes cannot be hashed): any
/// other seek is an `Unsupported` error. Seeking past the blob's size is an error too;
/// the size is still checked at the end.
impl Seek for BlobReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.check_failed()?;
        let buffered = (self.filled - self.pos) as u64;
        let here = self.count - buffered;
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => here.checked_add_signed(d),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek to a negative or overflowing position"))?;
        if target == here {
            return Ok(here);
        }
        if target < here || self.digester.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a blob reader seeks forward only, and only without its digest check",
            ));
        }
        if target > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("seek to byte {target} of a {}-byte blob", self.size),
            ));
        }
        let n = target - here;
        if n <= buffered {
            self.pos += n as usize; // n <= buffered, a usize
            return Ok(target);
        }
        self.pos = self.filled;
        self.inner.skip(n - buffered)?;
        self.count += n - buffered;
        Ok(target)
    }
}

impl BufRead for BlobReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check_failed()?;
        if self.pos == self.filled && matches!(self.state, State::Reading) {
            let mut buf = std::mem::take(&mut self.buf);
            let r = self.read_inner(&mut buf);
            self.buf = buf;
            let n = r?;
            self.pos = 0;
            self.filled = 0;
            if n == 0 {
                self.finish()?;
            } else {
                self.absorb(0, n, None)?;
                self.filled = n;
            }
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}

impl fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("read", &self.count)
            .field("location", &self.location)
            .finish()
    }
}
