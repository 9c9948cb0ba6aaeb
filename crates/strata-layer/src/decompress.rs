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
    GzipNoCrc(Box<GzipMembers<Sniffed<R>>>),
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
    pub fn new(reader: R, declared: Option<Compression>, layer: &str) -> Result<Self> {
        Self::build(reader, declared, layer, true)
    }

    /// As [`Decoder::new`], but gzip members' CRC-32 is not computed: for a caller that
    /// hashes every decompressed byte against a digest it knows (a layer's `diff_id`),
    /// which the CRC cannot add to. Each member's size field is still checked, and
    /// everything else about the stream (headers, deflate data, what follows a member)
    /// is as strict as [`Decoder::new`]. zstd frames and plain tars are read as there.
    pub fn without_gzip_crc(reader: R, declared: Option<Compression>, layer: &str) -> Result<Self> {
        Self::build(reader, declared, layer, false)
    }

    fn build(mut reader: R, declared: Option<Compression>, layer: &str, gzip_crc: bool) -> Result<Self> {
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
            Compression::Gzip if gzip_crc => Inner::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(sniffed))),
            Compression::Gzip => Inner::GzipNoCrc(Box::new(GzipMembers::new(sniffed, Inflater::default()))),
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
            Inner::GzipNoCrc(r) => r.read(buf),
            #[cfg(feature = "zstd")]
            Inner::Zstd(r) => r.read(buf),
        }
    }
}

/// What inflates the deflate data of gzip members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inflater {
    /// flate2 on zlib-rs.
    ZlibRs,
    /// ISA-L's igzip (built in when the system has libisal: see `build.rs`).
    #[cfg(strata_isal)]
    Isal,
}

impl Default for Inflater {
    /// ISA-L when built in and the system's libisal loads (the first time this is
    /// asked), unless `STRATA_INFLATE=zlib-rs` says otherwise (to compare).
    fn default() -> Self {
        #[cfg(strata_isal)]
        if std::env::var_os("STRATA_INFLATE").is_none_or(|v| v != "zlib-rs") && crate::isal::available() {
            return Inflater::Isal;
        }
        Inflater::ZlibRs
    }
}

/// gzip members (RFC 1952) one after the other, their deflate data inflated as a raw
/// stream (by zlib-rs or ISA-L), without the CRC-32 (see [`Decoder::without_gzip_crc`]).
/// Headers are parsed here: the optional extra field, name and comment are skipped as
/// they stream by (never stored, whatever their length); each member's `ISIZE` must equal
/// the bytes it inflated to (mod 2^32); after a member comes another one or the end,
/// anything else is an error, as with flate2's `MultiGzDecoder`.
pub(crate) struct GzipMembers<B: BufRead> {
    state: Members<B>,
    /// Bytes the current member has inflated to.
    size: u64,
    /// Members started so far (an empty stream is not a gzip stream).
    members: u64,
    inflater: Inflater,
}

enum Members<B: BufRead> {
    /// Before a member's header (or the end of the stream).
    Between(Prefixed<B>),
    /// Inside a member's deflate data.
    Body(Body<B>),
    /// The stream ended (or failed: reads keep failing).
    Done,
}

enum Body<B: BufRead> {
    ZlibRs(flate2::bufread::DeflateDecoder<Prefixed<B>>),
    #[cfg(strata_isal)]
    Isal(crate::isal::Deflate<Prefixed<B>>),
}

/// A reader with bytes given back in front of it: what an inflater read past the end of
/// its deflate stream (ISA-L reads up to 8 bytes ahead).
pub(crate) struct Prefixed<B> {
    front: Vec<u8>,
    pos: usize,
    inner: B,
}

impl<B> Prefixed<B> {
    fn new(inner: B) -> Self {
        Prefixed { front: Vec::new(), pos: 0, inner }
    }

    /// Put `bytes` back in front of what is left to read.
    #[cfg_attr(not(strata_isal), allow(dead_code))]
    fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut front = bytes.to_vec();
        front.extend_from_slice(self.front.get(self.pos..).unwrap_or_default());
        self.front = front;
        self.pos = 0;
    }
}

impl<B: BufRead> Read for Prefixed<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

/// `Read::read` for a type whose reading is its `BufRead`: a copy out of `fill_buf`.
pub(crate) fn read_buffered<B: BufRead + ?Sized>(r: &mut B, buf: &mut [u8]) -> io::Result<usize> {
    let avail = r.fill_buf()?;
    let n = avail.len().min(buf.len());
    buf[..n].copy_from_slice(&avail[..n]);
    r.consume(n);
    Ok(n)
}

impl<B: BufRead> BufRead for Prefixed<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.front.len() {
            return Ok(self.front.get(self.pos..).unwrap_or_default());
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if self.pos < self.front.len() {
            self.pos = (self.pos + amt).min(self.front.len());
        } else {
            self.inner.consume(amt);
        }
    }
}

/// gzip header flags (RFC 1952 2.3.1).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt gzip stream: {what}"))
}

fn next_byte<B: BufRead>(r: &mut B) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// Skip `n` bytes of `r`.
fn skip<B: BufRead>(r: &mut B, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let k = avail.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        r.consume(k);
        n -= k as u64;
    }
    Ok(())
}

/// Skip a zero-terminated field.
fn skip_cstr<B: BufRead>(r: &mut B) -> io::Result<()> {
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match avail.iter().position(|&b| b == 0) {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = avail.len();
                r.consume(n);
            }
        }
    }
}

impl<B: BufRead> GzipMembers<B> {
    pub(crate) fn new(inner: B, inflater: Inflater) -> Self {
        GzipMembers { state: Members::Between(Prefixed::new(inner)), size: 0, members: 0, inflater }
    }

    /// Read a member's header from `r`; `Ok(false)` at the clean end of the stream
    /// (allowed only after the first member).
    fn header(r: &mut Prefixed<B>, first: bool) -> io::Result<bool> {
        if r.fill_buf()?.is_empty() {
            return if first { Err(corrupt("no member")) } else { Ok(false) };
        }
        let mut fixed = [0u8; 10];
        r.read_exact(&mut fixed)?;
        let [id1, id2, cm, flags, ..] = fixed;
        if id1 != 0x1f || id2 != 0x8b {
            return Err(corrupt("bytes after the last member are not another member"));
        }
        if cm != 8 {
            return Err(corrupt("compression method is not deflate"));
        }
        if flags & FRESERVED != 0 {
            return Err(corrupt("reserved header flags set"));
        }
        if flags & FEXTRA != 0 {
            let len = u16::from_le_bytes([next_byte(r)?, next_byte(r)?]);
            skip(r, u64::from(len))?;
        }
        if flags & FNAME != 0 {
            skip_cstr(r)?;
        }
        if flags & FCOMMENT != 0 {
            skip_cstr(r)?;
        }
        if flags & FHCRC != 0 {
            skip(r, 2)?;
        }
        Ok(true)
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.state = Members::Done;
        e
    }
}

impl<B: BufRead> Read for GzipMembers<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, Members::Done) {
                Members::Done => return Ok(0),
                Members::Between(mut r) => match Self::header(&mut r, self.members == 0) {
                    Ok(true) => {
                        self.size = 0;
                        self.members += 1;
                        self.state = Members::Body(match self.inflater {
                            Inflater::ZlibRs => Body::ZlibRs(flate2::bufread::DeflateDecoder::new(r)),
                            #[cfg(strata_isal)]
                            Inflater::Isal => match crate::isal::Deflate::new(r) {
                                Ok(d) => Body::Isal(d),
                                Err(e) => return Err(self.fail(e)),
                            },
                        });
                    }
                    Ok(false) => return Ok(0),
                    Err(e) => return Err(self.fail(e)),
                },
                Members::Body(mut d) => {
                    let read = match &mut d {
                        Body::ZlibRs(z) => z.read(buf),
                        #[cfg(strata_isal)]
                        Body::Isal(i) => i.read(buf),
                    };
                    let n = match read {
                        Ok(n) => n,
                        Err(e) => return Err(self.fail(e)),
                    };
                    if n > 0 {
                        self.size += n as u64;
                        self.state = Members::Body(d);
                        return Ok(n);
                    }
                    // The member's deflate data ended: its trailer follows (after what
                    // the inflater read ahead, given back).
                    let mut r = match d {
                        Body::ZlibRs(z) => z.into_inner(),
                        #[cfg(strata_isal)]
                        Body::Isal(i) => {
                            let rest = i.rest().to_vec();
                            let mut r = i.into_inner();
                            r.unread(&rest);
                            r
                        }
                    };
                    let mut trailer = [0u8; 8];
                    if let Err(e) = r.read_exact(&mut trailer) {
                        return Err(self.fail(e));
                    }
                    let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                    if u64::from(isize) != self.size & 0xffff_ffff {
                        return Err(self.fail(corrupt("a member's size field does not match its data")));
                    }
                    self.state = Members::Between(r);
                }
            }
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

    fn decode_no_crc(blob: &[u8]) -> Result<Vec<u8>> {
        let mut d = Decoder::without_gzip_crc(blob, Some(Compression::Gzip), "l")?;
        let mut out = Vec::new();
        d.read_to_end(&mut out).map_err(|e| d.error(e))?;
        Ok(out)
    }

    /// A gzip member with every optional header field, written by hand.
    fn member_with_all_fields(data: &[u8]) -> Vec<u8> {
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(data).unwrap();
        let deflated = raw.finish().unwrap();
        let mut m = vec![0x1f, 0x8b, 8, FHCRC | FEXTRA | FNAME | FCOMMENT, 0, 0, 0, 0, 0, 3];
        m.extend_from_slice(&5u16.to_le_bytes());
        m.extend_from_slice(b"xtra!");
        m.extend_from_slice(b"layer.tar\0");
        m.extend_from_slice(b"a comment\0");
        m.extend_from_slice(&[0xab, 0xcd]); // the header CRC-16: skipped, like the data CRC
        m.extend_from_slice(&deflated);
        let mut crc = flate2::Crc::new();
        crc.update(data);
        m.extend_from_slice(&crc.sum().to_le_bytes());
        m.extend_from_slice(&(data.len() as u32).to_le_bytes());
        m
    }

    #[test]
    fn without_crc_decodes_what_the_checking_decoder_decodes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut multi = gz(b"first ");
        multi.extend(gz(b""));
        multi.extend(gz(&data));
        let mut want_multi = b"first ".to_vec();
        want_multi.extend_from_slice(&data);
        let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
            ("one member", gz(&data), data.clone()),
            ("empty member", gz(b""), Vec::new()),
            ("three members, one empty", multi, want_multi),
            (
                "stored blocks",
                {
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
                    e.write_all(&data).unwrap();
                    e.finish().unwrap()
                },
                data.clone(),
            ),
        ];
        for (case, blob, want) in cases {
            assert_eq!(decode_no_crc(&blob).unwrap(), want, "{case}");
            assert_eq!(decode(&blob, None).unwrap().1, want, "{case}");
        }
        // The optional fields are skipped as they stream by.
        assert_eq!(decode_no_crc(&member_with_all_fields(&data)).unwrap(), data);
    }

    #[test]
    fn without_crc_everything_but_the_crc_is_still_checked() {
        // Varied bytes, so that a flipped bit in the deflate data changes the output.
        let data: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let good = gz(&data);
        let n = good.len();
        let mut bad_crc = good.clone();
        bad_crc[n - 8] ^= 1;
        // The point: a wrong CRC passes (the caller hashes the output), and only it.
        assert_eq!(decode_no_crc(&bad_crc).unwrap(), data);
        assert!(decode(&bad_crc, None).is_err(), "the checking decoder refuses it");
        let mut bad_size = good.clone();
        bad_size[n - 1] ^= 1;
        let mut garbage = good.clone();
        garbage.extend_from_slice(b"garbage after the member");
        let mut bad_method = good.clone();
        bad_method[2] = 7;
        let mut reserved = good.clone();
        reserved[3] |= 0x80;
        let mut flipped = good.clone();
        flipped[n / 2] ^= 0x55;
        let mut name_without_end = vec![0x1f, 0x8b, 8, FNAME, 0, 0, 0, 0, 0, 3];
        name_without_end.extend_from_slice(&[b'a'; 5000]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("size field wrong", bad_size),
            ("truncated trailer", good[..n - 3].to_vec()),
            ("truncated data", good[..n / 2].to_vec()),
            ("header only", good[..10].to_vec()),
            ("garbage after the member", garbage),
            ("not deflate", bad_method),
            ("reserved flag", reserved),
            ("corrupt deflate data", flipped),
            ("a name that never ends", name_without_end),
        ];
        for (case, blob) in cases {
            match decode_no_crc(&blob) {
                Err(Error::Decompress { compression: Compression::Gzip, .. }) => {}
                // Flipped deflate bits can still decode to other bytes of the right
                // length: the caller's hash is what catches those.
                Ok(out) if case == "corrupt deflate data" => assert!(out != data, "{case}: decoded to the data"),
                Ok(out) => panic!("{case}: decoded {} bytes", out.len()),
                Err(e) => panic!("{case}: {e}"),
            }
        }
    }

    #[test]
    fn isa_l_is_built_in_under_ci() {
        // CI installs libisal-dev: the faster inflater must then be the one used.
        if std::env::var_os("CI").is_some() {
            let built_in = inflaters().len() > 1;
            assert!(built_in, "CI is set but strata-layer was built without ISA-L (libisal-dev)");
            #[cfg(strata_isal)]
            assert!(crate::isal::available(), "CI is set but libisal does not load");
            if std::env::var_os("STRATA_INFLATE").is_none() {
                assert_ne!(Inflater::default(), Inflater::ZlibRs);
            }
        }
    }

    /// Every inflater built in, zlib-rs first.
    fn inflaters() -> Vec<Inflater> {
        #[allow(unused_mut)]
        let mut v = vec![Inflater::ZlibRs];
        #[cfg(strata_isal)]
        v.push(Inflater::Isal);
        v
    }

    /// Decode `blob` with `inflater`, the input handed over `chunk` bytes at a time.
    fn members(blob: &[u8], inflater: Inflater, chunk: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzipMembers::new(BufReader::with_capacity(chunk, blob), inflater).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Data that compresses in every way deflate can: runs, text, noise, long matches.
    fn sample(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                match (i / 4096) % 4 {
                    0 => b'a' + (i % 7) as u8,
                    1 => (x >> 24) as u8,
                    2 => b"the quick brown fox "[i % 20],
                    _ => (x % 4) as u8,
                }
            })
            .collect()
    }

    #[test]
    fn every_inflater_reads_the_same_members_however_the_input_comes() {
        // Members of every deflate block type (stored at level 0, fixed and dynamic
        // Huffman), with every header field, back to back: each inflater stops exactly at
        // a member's end (ISA-L reads ahead and gives the bytes back) whatever the input's
        // chunking, and the bytes are the data.
        let mut blob = Vec::new();
        let mut expected = Vec::new();
        for (i, (size, level)) in
            [(0usize, 6u32), (1, 6), (100, 0), (70_000, 0), (5_000, 1), (300_000, 6), (33, 9)].into_iter().enumerate()
        {
            let data = sample(size, i as u32);
            if i % 2 == 0 {
                blob.extend(member_with_all_fields(&data));
            } else {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                e.write_all(&data).unwrap();
                blob.extend(e.finish().unwrap());
            }
            expected.extend(data);
        }
        for inflater in inflaters() {
            for chunk in [1, 2, 3, 7, 8, 9, 64, 4096, 1 << 20] {
                let got = members(&blob, inflater, chunk).unwrap_or_else(|e| panic!("{inflater:?} chunk {chunk}: {e}"));
                assert!(
                    got == expected,
                    "{inflater:?} chunk {chunk}: {} bytes, expected {}",
                    got.len(),
                    expected.len()
                );
            }
        }
    }

    #[test]
    fn every_inflater_refuses_what_zlib_rs_refuses() {
        let data = sample(200_000, 7);
        let good = gz(&data);
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        for cut in [11, 12, good.len() / 2, good.len() - 9, good.len() - 8, good.len() - 1] {
            cases.push((format!("cut at {cut}"), good[..cut].to_vec()));
        }
        let mut garbage = good.clone();
        garbage.extend_from_slice(b"junk after the member");
        cases.push(("garbage after".into(), garbage));
        let mut size = good.clone();
        let n = size.len();
        size[n - 1] ^= 1;
        cases.push(("size field".into(), size));
        for i in 0..40 {
            let mut flipped = good.clone();
            let at = 10 + (i * 7919) % (good.len() - 18);
            flipped[at] ^= 0x10 << (i % 4);
            cases.push((format!("bit flipped at {at}"), flipped));
        }
        for (case, blob) in cases {
            let zlib = members(&blob, Inflater::ZlibRs, 4096);
            for inflater in inflaters() {
                for chunk in [1, 5, 4096] {
                    match (&zlib, members(&blob, inflater, chunk)) {
                        (Err(_), Err(_)) => {}
                        (Ok(a), Ok(b)) => assert!(a == &b, "{case}: {inflater:?} decodes other bytes"),
                        (Err(e), Ok(_)) => panic!("{case}: zlib-rs fails ({e}), {inflater:?} chunk {chunk} does not"),
                        (Ok(_), Err(e)) => panic!("{case}: zlib-rs decodes, {inflater:?} chunk {chunk} fails: {e}"),
                    }
                }
            }
        }
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
