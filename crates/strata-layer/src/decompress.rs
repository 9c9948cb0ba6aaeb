//! Reading a layer blob as stored: detect its compression from the magic bytes, check it
//! against what the media type declares, and decode it as a stream.
//!
//! Memory does not grow with the blob: gzip and zstd decoders keep a fixed window (32 KiB
//! for deflate, at most the frame's window for zstd, which [`ZSTD_WINDOW_LOG_MAX`] caps),
//! so a decompression bomb costs time and output bytes, never memory.

use std::io::{self, BufRead, BufReader, Read};

use strata_spec::Compression;

use crate::error::{Error, Result};

/// Size of the buffer between the blob reader and the decoder. 128 KiB: large enough that
/// the decoder rarely waits on tiny reads, small enough to stay in L2.
const INPUT_BUFFER: usize = 128 * 1024;

/// The largest zstd window accepted, as a power of two: 2^27 = 128 MiB is zstd's own
/// default limit for decoding (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`); frames asking for more
/// are refused rather than allowed to allocate up to 2 GiB (`--long=31`).
#[cfg(feature = "zstd")]
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// The bytes read ahead to detect the compression (zstd's magic is 4 bytes).
const SNIFF_LEN: usize = 4;

/// A decoder of one layer blob: reads the blob as stored and yields the uncompressed tar.
///
/// ```
/// use std::io::Read;
/// use strata_layer::Decoder;
/// use strata_spec::Compression;
///
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// std::io::Write::write_all(&mut gz, b"hello").unwrap();
/// let blob = gz.finish().unwrap();
/// let mut d = Decoder::new(&blob[..], Some(Compression::Gzip), "layer 0").unwrap();
/// assert_eq!(d.compression(), Compression::Gzip);
/// let mut out = String::new();
/// d.read_to_string(&mut out).unwrap();
/// assert_eq!(out, "hello");
/// ```
pub struct Decoder<R: Read> {
    inner: Inner<R>,
    compression: Compression,
    layer: String,
}

type Sniffed<R> = BufReader<io::Chain<io::Take<io::Cursor<[u8; SNIFF_LEN]>>, R>>;

enum Inner<R: Read> {
    Plain(Sniffed<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Sniffed<R>>>),
    #[cfg(feature = "zstd")]
    Zstd(Box<zstd::stream::read::Decoder<'static, Sniffed<R>>>),
}

impl<R: Read> std::fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("compression", &self.compression).field("layer", &self.layer).finish()
    }
}

impl<R: Read> Decoder<R> {
    /// Start decoding `reader`, the blob of layer `layer` (a name used in errors).
    ///
    /// The compression is detected from the first bytes (gzip `1f 8b`, zstd
    /// `28 b5 2f fd`, anything else is taken as plain tar). When `declared` (from the
    /// media type) is given and disagrees, this fails with
    /// [`Error::CompressionMismatch`]. gzip streams of several members (pigz, pgzip) are
    /// read to the end of the last member.
    pub fn new(mut reader: R, declared: Option<Compression>, layer: &str) -> Result<Self> {
        let mut head = [0u8; SNIFF_LEN];
        let mut got = 0;
        while got < SNIFF_LEN {
            match reader.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Decompress {
                        layer: layer.to_owned(),
                        compression: declared.unwrap_or(Compression::None),
                        source,
                    });
                }
            }
        }
        let detected = Compression::sniff(&head[..got]);
        if let Some(declared) = declared
            && declared != detected
        {
            return Err(Error::CompressionMismatch { layer: layer.to_owned(), declared, detected });
        }
        // Put the sniffed bytes (only those read: a blob shorter than 4 bytes must not
        // gain zeros) back in front of the rest of the stream.
        let prefix = io::Read::take(io::Cursor::new(head), got as u64);
        let sniffed: Sniffed<R> = BufReader::with_capacity(INPUT_BUFFER, prefix.chain(reader));
        let inner = match detected {
            Compression::None => Inner::Plain(sniffed),
            Compression::Gzip => Inner::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(sniffed))),
            Compression::Zstd => {
                #[cfg(feature = "zstd")]
                {
                    let mut d = zstd::stream::read::Decoder::with_buffer(sniffed).map_err(|source| {
                        Error::Decompress { layer: layer.to_owned(), compression: detected, source }
                    })?;
                    d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(|source| Error::Decompress {
                        layer: layer.to_owned(),
                        compression: detected,
                        source,
                    })?;
                    Inner::Zstd(Box::new(d))
                }
                #[cfg(not(feature = "zstd"))]
                {
                    return Err(Error::UnsupportedCompression { layer: layer.to_owned(), compression: detected });
                }
            }
        };
        Ok(Decoder { inner, compression: detected, layer: layer.to_owned() })
    }

    /// The compression detected (and, when one was declared, checked).
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The layer name given to [`Decoder::new`].
    pub fn layer(&self) -> &str {
        &self.layer
    }

    /// Turn an I/O error of this decoder into this crate's error, naming the layer.
    pub fn error(&self, source: io::Error) -> Error {
        Error::Decompress { layer: self.layer.clone(), compression: self.compression, source }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(r) => r.read(buf),
            #[cfg(feature = "zstd")]
            Inner::Zstd(r) => r.read(buf),
        }
    }
}

/// Read from `r` until `buf` is full or the stream ends; returns the bytes read.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Drain a buffered reader to its end, returning how many bytes were skipped.
pub(crate) fn drain<R: BufRead + ?Sized>(r: &mut R) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        let len = r.fill_buf()?.len();
        if len == 0 {
            return Ok(n);
        }
        r.consume(len);
        n += len as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(blob: &[u8], declared: Option<Compression>) -> Result<(Compression, Vec<u8>)> {
        let mut d = Decoder::new(blob, declared, "l")?;
        let mut out = Vec::new();
        d.read_to_end(&mut out).map_err(|e| d.error(e))?;
        Ok((d.compression(), out))
    }

    #[test]
    fn detects_and_decodes_each_compression() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(decode(&data, None).unwrap(), (Compression::None, data.clone()));
        assert_eq!(decode(&data, Some(Compression::None)).unwrap(), (Compression::None, data.clone()));
        assert_eq!(decode(&gz(&data), Some(Compression::Gzip)).unwrap(), (Compression::Gzip, data.clone()));
        #[cfg(feature = "zstd")]
        {
            let z = zstd::encode_all(&data[..], 3).unwrap();
            assert_eq!(decode(&z, Some(Compression::Zstd)).unwrap(), (Compression::Zstd, data.clone()));
        }
    }

    #[test]
    fn short_blobs_are_not_padded() {
        for len in 0..4 {
            let data = &b"abc"[..len.min(3)];
            assert_eq!(decode(data, None).unwrap().1, data);
        }
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let mut blob = gz(b"first ");
        blob.extend(gz(b"second ")); // pigz / pgzip write concatenated members
        blob.extend(gz(b"third"));
        assert_eq!(decode(&blob, Some(Compression::Gzip)).unwrap().1, b"first second third");
    }

    #[test]
    fn declared_and_detected_must_agree() {
        let err = decode(&gz(b"x"), Some(Compression::None)).unwrap_err();
        assert!(
            matches!(err, Error::CompressionMismatch { declared: Compression::None, detected: Compression::Gzip, .. }),
            "{err}"
        );
        let err = decode(b"plain tar bytes", Some(Compression::Gzip)).unwrap_err();
        assert!(matches!(err, Error::CompressionMismatch { detected: Compression::None, .. }), "{err}");
        let err = decode(b"", Some(Compression::Zstd)).unwrap_err();
        assert!(matches!(err, Error::CompressionMismatch { .. }), "{err}");
    }

    #[test]
    fn corrupt_streams_are_typed_errors() {
        let mut blob = gz(&[7u8; 10_000]);
        let n = blob.len();
        blob.truncate(n - 12); // cut the trailer and some data
        assert!(matches!(decode(&blob, None).unwrap_err(), Error::Decompress { compression: Compression::Gzip, .. }));
        let mut blob = gz(b"hello world");
        blob.extend_from_slice(b"garbage after the member");
        assert!(matches!(decode(&blob, None).unwrap_err(), Error::Decompress { .. }));
    }

    #[test]
    fn a_gzip_bomb_streams_through_a_fixed_buffer() {
        // 64 MiB of zeros compress to ~64 KiB; decoding them through a 64 KiB buffer
        // never holds more than the buffer and the decoder's window.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        let blob = e.finish().unwrap();
        assert!(blob.len() < 200_000);
        let mut d = Decoder::new(&blob[..], None, "bomb").unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = d.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        assert_eq!(total, 64 << 20);
    }
}
