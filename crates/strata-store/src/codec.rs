//! The byte format of the files strata keeps beside a layout (the index table, the image
//! model's caches): little-endian integers and length-prefixed strings, read back with
//! [`Reader`], which answers `None` rather than panicking on short or damaged input.

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
