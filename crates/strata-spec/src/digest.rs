//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and hashing readers and writers.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::Digest as _;

use crate::error::{DigestError, Error};

/// A digest algorithm strata can compute and verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// SHA-256, the algorithm every registry and tool supports; the default.
    Sha256,
    /// SHA-512, allowed by the OCI image spec.
    Sha512,
}

impl Algorithm {
    /// The name used in a digest string (`sha256`).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding of a digest of this algorithm.
    pub const fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated content digest such as `sha256:e3b0c442...`.
///
/// Parsing is strict: a known algorithm, a colon, and exactly the right number of
/// lowercase hex digits. A `Digest` can therefore be used safely as a file name
/// (`blobs/<algorithm>/<hex>`): it never contains `/`, `.` or other path characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    /// The whole `algorithm:hex` string.
    repr: Box<str>,
}

impl Digest {
    /// Parse and validate a digest string.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (algo, hex) =
            s.split_once(':').ok_or_else(|| DigestError::new(s, "missing ':' between algorithm and hex"))?;
        let algorithm = Algorithm::from_name(algo).ok_or_else(|| {
            DigestError::new(s, format!("unsupported algorithm {algo:?} (expected sha256 or sha512)"))
        })?;
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::new(
                s,
                format!("{algo} needs {} hex digits, found {}", algorithm.hex_len(), hex.len()),
            ));
        }
        if let Some(bad) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(DigestError::new(s, format!("character {bad:?} is not lowercase hex")));
        }
        Ok(Digest { algorithm, repr: s.into() })
    }

    /// Build a digest from an algorithm and raw hash bytes.
    fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut repr = String::with_capacity(algorithm.name().len() + 1 + bytes.len() * 2);
        repr.push_str(algorithm.name());
        repr.push(':');
        repr.push_str(&to_hex(bytes));
        Digest { algorithm, repr: repr.into() }
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Digest::of(Algorithm::Sha256, bytes)
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut d = Digester::new(algorithm);
        d.update(bytes);
        d.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.repr[self.algorithm.name().len() + 1..]
    }

    /// The whole `algorithm:hex` string.
    pub fn as_str(&self) -> &str {
        &self.repr
    }

    /// The first 12 hex digits, as `docker images` shows an image id.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

impl Ord for Digest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.repr.cmp(&other.repr)
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.repr)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(Digest::parse(s)?)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.repr
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.repr)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// An incremental hasher that produces a [`Digest`].
pub struct Digester {
    state: State,
}

impl Digester {
    /// A new hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Digester { state }
    }

    /// The algorithm being computed.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    /// Finish and return the digest.
    pub fn finish(self) -> Digest {
        match self.state {
            State::Sha256(h) => Digest::from_bytes(Algorithm::Sha256, &h.finalize()),
            State::Sha512(h) => Digest::from_bytes(Algorithm::Sha512, &h.finalize()),
        }
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester").field("algorithm", &self.algorithm()).finish()
    }
}

/// A writer that hashes and counts every byte written through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    digester: Digester,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`, hashing with SHA-256.
    pub fn new(inner: W) -> Self {
        Self::with_algorithm(inner, Algorithm::Sha256)
    }

    /// Wrap `inner`, hashing with `algorithm`.
    pub fn with_algorithm(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter { inner, digester: Digester::new(algorithm), count: 0 }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The wrapped writer, mutably. Bytes written to it directly are not hashed.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Finish: the wrapped writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.digester.finish(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.digester.update(buf);
        self.count += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts every byte read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    digester: Digester,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`, hashing with SHA-256.
    pub fn new(inner: R) -> Self {
        Self::with_algorithm(inner, Algorithm::Sha256)
    }

    /// Wrap `inner`, hashing with `algorithm`.
    pub fn with_algorithm(inner: R, algorithm: Algorithm) -> Self {
        HashingReader { inner, digester: Digester::new(algorithm), count: 0 }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Finish: the wrapped reader, the digest and the byte count of what was read.
    pub fn finish(self) -> (R, Digest, u64) {
        (self.inner, self.digester.finish(), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"").unwrap();
        assert_eq!(w.finish().1.as_str(), EMPTY);
    }

    #[test]
    fn sha512_has_its_length() {
        let d = Digest::of(Algorithm::Sha512, b"abc");
        assert_eq!(d.hex().len(), 128);
        assert!(d.as_str().starts_with("sha512:ddaf35a1"));
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
    }

    #[test]
    fn strict_parsing_rejects_each_kind_of_bad_digest() {
        let good_hex = &EMPTY[7..];
        for bad in [
            "",
            "sha256",
            good_hex,
            &format!("sha256:{}", &good_hex[1..]),
            &format!("sha256:{good_hex}0"),
            &format!("sha256:{}", good_hex.to_uppercase()),
            &format!("SHA256:{good_hex}"),
            &format!("md5:{good_hex}"),
            "sha256:../../x",
            &format!("sha256:{}/{}", &good_hex[..31], &good_hex[32..]),
            &format!("sha256:{} ", &good_hex[..63]),
        ] {
            assert!(Digest::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(Digest::parse(EMPTY).unwrap().hex(), good_hex);
    }

    #[test]
    fn reader_and_writer_agree() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        let mut sink = Vec::new();
        io::copy(&mut r, &mut sink).unwrap();
        let (_, d, n) = r.finish();
        assert_eq!(n, 100_000);
        assert_eq!(d, Digest::sha256_of(&data));
    }
}
