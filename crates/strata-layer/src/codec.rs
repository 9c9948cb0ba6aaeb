//! The little binary codec of strata's own files (metadata snapshots, layer indexes):
//! little-endian integers, LEB128 varints, zigzag for signed values, and a cursor that
//! checks every read against the end of the buffer.

use crate::entry::Timestamp;
use crate::error::{Error, Result};

/// Append `v` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append `b` as its length (a varint) and its bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A signed value as an unsigned one whose varint is short when it is near zero.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads a buffer front to back; every error is made by `bad`, the format's own error.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    bad: fn(String) -> Error,
}

impl<'a> Cursor<'a> {
    /// A cursor at `pos` of `buf`.
    pub(crate) fn new(buf: &'a [u8], pos: usize, bad: fn(String) -> Error) -> Cursor<'a> {
        Cursor { buf, pos, bad }
    }

    #[cold]
    fn bad(&self, reason: &str) -> Error {
        (self.bad)(reason.to_owned())
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| self.bad("truncated"))?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| self.bad("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    #[inline(always)]
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| self.bad("truncated"))?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| self.bad("truncated"))?))
    }
    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<u64> {
        // Most values of an index (lengths, kinds, ids, small sizes) fit in one byte:
        // read it without the loop (the records' decoding is mostly varints), inline
        // at every call, the rest out of line.
        if let Some(&b) = self.buf.get(self.pos)
            && b & 0x80 == 0
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_long()
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else { return Err(self.bad("truncated")) };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.bad("varint longer than 10 bytes"))
    }
    #[inline(always)]
    pub(crate) fn u32v(&mut self) -> Result<u32> {
        u32::try_from(self.varint()?).map_err(|_| self.bad("value out of range"))
    }
    #[inline(always)]
    pub(crate) fn len(&mut self) -> Result<usize> {
        let n = usize::try_from(self.varint()?).map_err(|_| self.bad("length out of range"))?;
        if n > self.buf.len() - self.pos {
            return Err(self.bad("length beyond the end"));
        }
        Ok(n)
    }
    /// Bytes written by [`put_bytes`].
    #[inline(always)]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
    #[inline(always)]
    pub(crate) fn time(&mut self) -> Result<Timestamp> {
        let sec = unzigzag(self.varint()?);
        let nsec = self.u32v()?;
        if nsec >= 1_000_000_000 {
            return Err(self.bad("nanoseconds out of range"));
        }
        Ok(Timestamp { sec, nsec })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Cursor::new(&out, 0, |r| Error::InvalidSnapshot { reason: r }).varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
