//! The byte format of the files strata keeps beside a layout (the index table, the image
//! model's caches): little-endian integers and length-prefixed strings, read back with
//! [`Reader`], which answers `None` rather than panicking on short or damaged input;
//! and their framing: a magic, the body, and a checksum that catches damage.

/// Append `v`, little-endian.
pub fn put_u64(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_le_bytes());
}

/// Append `s` as its length ([`put_u64`]) and its bytes.
pub fn put_str(o: &mut Vec<u8>, s: &str) {
    put_u64(o, s.len() as u64);
    o.extend_from_slice(s.as_bytes());
}

/// A cursor over bytes written with [`put_u64`] and [`put_str`]: each read takes from the
/// front, and is `None` when the bytes run out or do not decode.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `b`.
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.b.split_at_checked(n)?;
        self.b = rest;
        Some(head)
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A little-endian `i64`.
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A string written by [`put_str`] (UTF-8).
    pub fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.u64()?).ok()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.b.len()
    }
}

/// Append the checksum of `bytes` (which start with their magic) to them: [`seal`] in
/// place.
pub(crate) fn seal_in_place(bytes: &mut Vec<u8>) {
    let sum = checksum(bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
}

/// `body` framed as a file strata keeps beside the layout (the index table, the
/// store's caches): `magic`, the body, and a
/// checksum of both.
pub(crate) fn seal(magic: &[u8], body: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(magic.len() + body.len() + 8);
    o.extend_from_slice(magic);
    o.extend_from_slice(body);
    seal_in_place(&mut o);
    o
}

/// The body of a file [`seal`] made with `magic`, if it checks out.
pub(crate) fn unseal<'a>(magic: &[u8], bytes: &'a [u8]) -> Option<&'a [u8]> {
    let (framed, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if checksum(framed) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    framed.strip_prefix(magic)
}

/// A 64-bit checksum of `bytes` (four lanes of 8-byte words, each multiplied and
/// rotated in, so that the lanes run side by side: a 10 MB table in about a millisecond;
/// the lanes are folded together, then the bytes past the last 32 go in). It catches a
/// damaged or truncated file; it is no defence against someone forging one, who could
/// as well edit `index.json`.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let seed = bytes.len() as u64 ^ K;
    let mut lanes = [seed, seed.rotate_left(16), seed.rotate_left(32), seed.rotate_left(48)];
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        for (lane, w) in lanes.iter_mut().zip(c.chunks_exact(8)) {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            *lane = (lane.rotate_left(23) ^ w).wrapping_mul(K);
        }
    }
    let mut h = lanes[0] ^ lanes[1].rotate_left(17) ^ lanes[2].rotate_left(31) ^ lanes[3].rotate_left(47);
    for &b in chunks.remainder() {
        h = (h.rotate_left(23) ^ u64::from(b)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}
