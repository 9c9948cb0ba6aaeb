//! A layer's uncompressed stream: decoded on a thread of its own (or on the caller's),
//! counted, hashed, bounded, and read as one [`BufRead`].
//!
//! The applier, the merged view (its header scans and its export) and strata-image's
//! archive writer all read layers through this one type: one place to tune buffer sizes,
//! one error path that names the layer, one `finish` that reads to the true end of the
//! stream and returns what every byte hashes to.
//!
//! On a thread, the decoder fills fixed-size buffers that go to the reader through a
//! bounded channel and come back through another to be reused: at most `depth + 2`
//! buffers exist, whatever the layer's size.

use std::io::{self, BufRead, Read};
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

use strata_spec::{Algorithm, Compression, Digest, Digester};

use crate::decompress::{Decoder, read_full};
use crate::error::{Error, Result};

/// Which thread hashes the stream (see [`StreamOptions::hash_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HashOn {
    /// The decoding thread when the layer is uncompressed (it has little else to do),
    /// the reading thread otherwise (decompression is the decoding thread's work): on
    /// two cores the two threads are then about even, as measured on the corpus.
    #[default]
    Auto,
    /// The decoding thread.
    Decoder,
    /// The reading thread.
    Reader,
}

/// How a [`LayerStream`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Bytes per buffer (a multiple of the 512-byte tar block, so that a header never
    /// straddles two buffers). Default [`StreamOptions::DEFAULT_CHUNK`].
    pub chunk: usize,
    /// Buffers the decoding thread may have ready ahead of the reader. Default
    /// [`StreamOptions::DEFAULT_DEPTH`].
    pub depth: usize,
    /// Hash every byte with this algorithm (the `diff_id`'s), or not at all.
    pub digest: Option<Algorithm>,
    /// Which thread hashes.
    pub hash_on: HashOn,
    /// Fail with [`Error::LimitExceeded`] past this many uncompressed bytes.
    pub max_size: Option<u64>,
}

impl StreamOptions {
    /// 256 KiB: large enough that channel traffic is noise, a multiple of the tar block.
    pub const DEFAULT_CHUNK: usize = 256 * 1024;
    /// 16 buffers (4 MiB of decompressed tar at most in flight per layer). Measured on
    /// the corpus: 8 to 64 perform alike, 16 evens out the runs.
    pub const DEFAULT_DEPTH: usize = 16;

    /// Set [`StreamOptions::chunk`] (rounded up to a whole tar block).
    pub fn chunk(mut self, bytes: usize) -> Self {
        self.chunk = bytes.max(1).div_ceil(512) * 512;
        self
    }

    /// Set [`StreamOptions::depth`] (at least 1).
    pub fn depth(mut self, buffers: usize) -> Self {
        self.depth = buffers.max(1);
        self
    }

    /// Set [`StreamOptions::digest`].
    pub fn digest(mut self, algorithm: Option<Algorithm>) -> Self {
        self.digest = algorithm;
        self
    }

    /// Set [`StreamOptions::hash_on`].
    pub fn hash_on(mut self, side: HashOn) -> Self {
        self.hash_on = side;
        self
    }

    /// Set [`StreamOptions::max_size`].
    pub fn max_size(mut self, bytes: Option<u64>) -> Self {
        self.max_size = bytes;
        self
    }
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            chunk: Self::DEFAULT_CHUNK,
            depth: Self::DEFAULT_DEPTH,
            digest: Some(Algorithm::Sha256),
            hash_on: HashOn::Auto,
            max_size: None,
        }
    }
}

/// What the whole stream was, once read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finished {
    /// The digest of every uncompressed byte (when [`StreamOptions::digest`] asked for
    /// one): the layer's `diff_id`.
    pub digest: Option<Digest>,
    /// Uncompressed bytes.
    pub size: u64,
    /// The compression of the blob.
    pub compression: Compression,
}

/// How the decoding thread ended: the digest it computed, if it hashed, or its error
/// (`None`: the reader hung up first).
type ThreadEnd = std::result::Result<Option<Digest>, Option<Error>>;

/// Dropping a stream drops the receiving end of the channel first thing, so that a
/// decoding thread blocked on a full channel ends before its scope joins it.
enum Source<'s> {
    /// Decoded on the reading thread.
    Inline(Box<dyn Read + 's>),
    /// Decoded on a thread of its own.
    Thread {
        rx: Option<mpsc::Receiver<Vec<u8>>>,
        back: mpsc::SyncSender<Vec<u8>>,
        handle: Option<ScopedJoinHandle<'s, ThreadEnd>>,
    },
}

/// A layer's uncompressed stream (see the module documentation).
///
/// ```
/// use std::io::Read;
/// use strata_layer::{Decoder, LayerStream, StreamOptions};
///
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// std::io::Write::write_all(&mut gz, b"a tar, say").unwrap();
/// let blob = gz.finish().unwrap();
/// std::thread::scope(|s| {
///     let dec = Decoder::new(&blob[..], None, "layer 0")?;
///     let mut stream = LayerStream::spawn(s, dec, &StreamOptions::default())?;
///     let mut head = [0u8; 5];
///     stream.read_exact(&mut head).unwrap();
///     assert_eq!(&head, b"a tar");
///     let end = stream.finish()?; // reads the rest: the digest covers every byte
///     assert_eq!(end.digest, Some(strata_spec::Digest::sha256_of(b"a tar, say")));
///     assert_eq!(end.size, 10);
///     Ok::<(), strata_layer::Error>(())
/// })?;
/// # Ok::<(), strata_layer::Error>(())
/// ```
pub struct LayerStream<'s> {
    layer: String,
    compression: Compression,
    source: Source<'s>,
    chunk: usize,
    cur: Vec<u8>,
    at: usize,
    /// Hashing on the reading thread (or inline).
    digester: Option<Digester>,
    /// The decoding thread's digest, once it ended.
    thread_digest: Option<Digest>,
    /// Bytes received (decoded so far, from the reader's side).
    received: u64,
    /// Bytes consumed by the reader: where it stands in the stream.
    consumed: u64,
    max: Option<u64>,
    /// The first failure of the stream itself (decompression, the size limit): it
    /// explains whatever the reader made of the failed read.
    error: Option<Error>,
    ended: bool,
}

impl std::fmt::Debug for LayerStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerStream")
            .field("layer", &self.layer)
            .field("compression", &self.compression)
            .field("consumed", &self.consumed)
            .finish()
    }
}

fn limit_error(layer: &str, actual: u64, limit: u64) -> Error {
    Error::LimitExceeded { layer: layer.to_owned(), entry: None, what: "uncompressed layer", actual, limit }
}

/// Decode on this (spawned) thread into buffers for the reader, hashing when given a
/// digester.
fn decode<R: Read>(
    mut dec: Decoder<R>,
    tx: mpsc::SyncSender<Vec<u8>>,
    back: mpsc::Receiver<Vec<u8>>,
    chunk: usize,
    max: Option<u64>,
    mut digester: Option<Digester>,
) -> ThreadEnd {
    let mut total = 0u64;
    loop {
        let mut buf = back.try_recv().unwrap_or_default();
        buf.resize(chunk, 0);
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
            return Err(Some(limit_error(dec.layer(), total, limit)));
        }
        if tx.send(buf).is_err() {
            return Err(None);
        }
    }
}

/// Construction.
impl<'s> LayerStream<'s> {
    /// Decode `decoder` on a new thread of `scope`.
    pub fn spawn<'e, R: Read + Send + 's>(
        scope: &'s Scope<'s, 'e>,
        decoder: Decoder<R>,
        opts: &StreamOptions,
    ) -> Result<LayerStream<'s>> {
        let layer = decoder.layer().to_owned();
        let compression = decoder.compression();
        let on_thread = match opts.hash_on {
            HashOn::Auto => compression == Compression::None,
            HashOn::Decoder => true,
            HashOn::Reader => false,
        };
        let (there, here) = match opts.digest {
            Some(a) if on_thread => (Some(Digester::new(a)), None),
            Some(a) => (None, Some(Digester::new(a))),
            None => (None, None),
        };
        let depth = opts.depth.max(1);
        let (tx, rx) = mpsc::sync_channel(depth);
        let (back, back_rx) = mpsc::sync_channel(depth + 2);
        let (chunk, max) = (opts.chunk.max(512), opts.max_size);
        let handle = std::thread::Builder::new()
            .name("strata-inflate".into())
            .spawn_scoped(scope, move || decode(decoder, tx, back_rx, chunk, max, there))
            .map_err(|source| Error::Io(strata_spec::IoError::new("spawn thread", layer.clone(), source)))?;
        Ok(LayerStream {
            source: Source::Thread { rx: Some(rx), back, handle: Some(handle) },
            digester: here,
            ..Self::empty(layer, compression, opts)
        })
    }

    /// Decode `decoder` on the reading thread.
    pub fn inline<R: Read + 's>(decoder: Decoder<R>, opts: &StreamOptions) -> LayerStream<'s> {
        let layer = decoder.layer().to_owned();
        let compression = decoder.compression();
        LayerStream {
            source: Source::Inline(Box::new(decoder)),
            digester: opts.digest.map(Digester::new),
            ..Self::empty(layer, compression, opts)
        }
    }

    /// On a thread of `scope` when there is one, else inline.
    pub fn start<'e, R: Read + Send + 's>(
        scope: Option<&'s Scope<'s, 'e>>,
        decoder: Decoder<R>,
        opts: &StreamOptions,
    ) -> Result<LayerStream<'s>> {
        match scope {
            Some(s) => Self::spawn(s, decoder, opts),
            None => Ok(Self::inline(decoder, opts)),
        }
    }

    fn empty(layer: String, compression: Compression, opts: &StreamOptions) -> LayerStream<'s> {
        LayerStream {
            layer,
            compression,
            source: Source::Inline(Box::new(io::empty())),
            chunk: opts.chunk.max(512),
            cur: Vec::new(),
            at: 0,
            digester: None,
            thread_digest: None,
            received: 0,
            consumed: 0,
            max: opts.max_size,
            error: None,
            ended: false,
        }
    }
}

/// Reading.
impl LayerStream<'_> {
    /// The layer's name (as its decoder was given it).
    pub fn layer(&self) -> &str {
        &self.layer
    }

    /// The compression of the blob.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Uncompressed bytes consumed so far: the position in the stream.
    pub fn position(&self) -> u64 {
        self.consumed
    }

    /// The stream's own failure (decompression, the size limit), if it failed, else
    /// `e`: what to report when reading it gave `e`. Stops a decoding thread.
    pub fn explain(&mut self, e: Error) -> Error {
        if let Some(own) = self.error.take() {
            return own;
        }
        match self.stop() {
            Err(Some(own)) => own,
            _ => e,
        }
    }

    /// Hang up on the decoding thread and wait for it.
    fn stop(&mut self) -> ThreadEnd {
        let Source::Thread { rx, handle, .. } = &mut self.source else { return Ok(None) };
        drop(rx.take()); // a thread still sending stops
        match handle.take().map(ScopedJoinHandle::join) {
            Some(Ok(end)) => end,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(None),
        }
    }

    /// Read what is left to the end of the stream (every byte is hashed and counted)
    /// and say what the whole stream was.
    pub fn finish(mut self) -> Result<Finished> {
        loop {
            match self.fill_buf() {
                Ok([]) => break,
                Ok(b) => {
                    let n = b.len();
                    self.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let err = Error::InvalidTar {
                        layer: self.layer.clone(),
                        entry: None,
                        reason: format!("reading after the end of the archive: {e}"),
                    };
                    return Err(self.explain(err));
                }
            }
        }
        let digest = match self.digester.take() {
            Some(d) => Some(d.finish()),
            None => self.thread_digest.take(),
        };
        Ok(Finished { digest, size: self.received, compression: self.compression })
    }

    /// Record the stream's own failure and turn it into an I/O error for the reader.
    fn fail(&mut self, e: Error) -> io::Error {
        let msg = e.to_string();
        self.error.get_or_insert(e);
        io::Error::other(msg)
    }

    /// The next buffer of the stream into `cur` (empty at the end).
    fn next_buffer(&mut self) -> io::Result<()> {
        let old = std::mem::take(&mut self.cur);
        self.at = 0;
        let received = match &mut self.source {
            Source::Thread { rx, back, .. } => {
                if old.capacity() > 0 {
                    let _ = back.try_send(old); // reused by the decoding thread
                }
                rx.as_ref().and_then(|rx| rx.recv().ok())
            }
            Source::Inline(dec) => {
                let mut buf = old;
                buf.resize(self.chunk, 0);
                match read_full(dec, &mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        Some(buf)
                    }
                    Err(source) => {
                        let e = Error::Decompress { layer: self.layer.clone(), compression: self.compression, source };
                        return Err(self.fail(e));
                    }
                }
            }
        };
        match received {
            Some(buf) if !buf.is_empty() => self.cur = buf,
            // The end of the stream, or (a closed channel) the decoding thread's failure.
            _ => {
                match self.stop() {
                    Ok(digest) => self.thread_digest = digest,
                    Err(Some(e)) => return Err(self.fail(e)),
                    Err(None) => {
                        let e = Error::InvalidTar {
                            layer: self.layer.clone(),
                            entry: None,
                            reason: "decompression stopped early".into(),
                        };
                        return Err(self.fail(e));
                    }
                }
                self.ended = true;
                return Ok(());
            }
        }
        if let Some(d) = &mut self.digester {
            d.update(&self.cur);
        }
        self.received += self.cur.len() as u64;
        if let Some(limit) = self.max
            && self.received > limit
        {
            let e = limit_error(&self.layer, self.received, limit);
            return Err(self.fail(e));
        }
        Ok(())
    }
}

impl Read for LayerStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for LayerStream<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if let Some(e) = &self.error {
            return Err(io::Error::other(e.to_string()));
        }
        if self.at >= self.cur.len() && !self.ended {
            self.next_buffer()?;
        }
        Ok(self.cur.get(self.at..).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.cur.len().saturating_sub(self.at));
        self.at += amt;
        self.consumed += amt as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut g, data).unwrap();
        g.finish().unwrap()
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Every way of reading gives the same bytes, digest and size, wherever the hashing is.
    #[test]
    fn threads_and_hash_sides_agree() {
        let data = sample(3 * StreamOptions::DEFAULT_CHUNK + 1234);
        for blob in [data.clone(), gz(&data)] {
            for threaded in [false, true] {
                for side in [HashOn::Auto, HashOn::Decoder, HashOn::Reader] {
                    let opts = StreamOptions::default().hash_on(side).chunk(4096).depth(2);
                    std::thread::scope(|s| {
                        let dec = Decoder::new(&blob[..], None, "l").unwrap();
                        let scope = threaded.then_some(s);
                        let mut st = LayerStream::start(scope, dec, &opts).unwrap();
                        let mut head = vec![0u8; 1000];
                        st.read_exact(&mut head).unwrap();
                        assert_eq!(head, data[..1000]);
                        assert_eq!(st.position(), 1000);
                        let end = st.finish().unwrap();
                        assert_eq!(end.digest, Some(Digest::sha256_of(&data)), "{threaded} {side:?}");
                        assert_eq!(end.size, data.len() as u64);
                    });
                }
            }
        }
    }

    #[test]
    fn failures_are_the_streams_own() {
        let data = sample(100_000);
        let mut bad = gz(&data);
        let n = bad.len();
        bad.truncate(n - 20);
        for threaded in [false, true] {
            std::thread::scope(|s| {
                let dec = Decoder::new(&bad[..], None, "cut").unwrap();
                let st = LayerStream::start(threaded.then_some(s), dec, &StreamOptions::default()).unwrap();
                let err = st.finish().unwrap_err();
                assert!(matches!(&err, Error::Decompress { layer, .. } if layer == "cut"), "{err}");
            });
            std::thread::scope(|s| {
                let dec = Decoder::new(&data[..], None, "big").unwrap();
                let opts = StreamOptions::default().max_size(Some(50_000)).chunk(4096);
                let st = LayerStream::start(threaded.then_some(s), dec, &opts).unwrap();
                let err = st.finish().unwrap_err();
                assert!(matches!(&err, Error::LimitExceeded { layer, .. } if layer == "big"), "{err}");
            });
        }
    }

    #[test]
    fn a_reader_that_stops_early_ends_the_thread() {
        let data = sample(10 * StreamOptions::DEFAULT_CHUNK);
        std::thread::scope(|s| {
            let dec = Decoder::new(&data[..], None, "l").unwrap();
            let mut st = LayerStream::spawn(s, dec, &StreamOptions::default().depth(1).chunk(512)).unwrap();
            let mut b = [0u8; 10];
            st.read_exact(&mut b).unwrap();
            drop(st); // the scope's join would hang if the thread kept waiting
        });
    }
}
