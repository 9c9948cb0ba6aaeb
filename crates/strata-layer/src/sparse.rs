//! Sparse files in tar: where each run of stored bytes goes in the file, read from the
//! four encodings GNU tar writes (`--sparse`), as Go's `archive/tar` reads them:
//!
//! - old GNU (`--format=gnu` or `oldgnu`): type `S`, four (offset, length) pairs in the
//!   header, more in extension blocks after it, the real size in the header;
//! - PAX 0.0: `GNU.sparse.offset` / `GNU.sparse.numbytes` records in turn, the real size
//!   in `GNU.sparse.size`;
//! - PAX 0.1: `GNU.sparse.map` (`offset,length,...`), `GNU.sparse.name`,
//!   `GNU.sparse.size`;
//! - PAX 1.0: `GNU.sparse.major=1`, `GNU.sparse.minor=0`, the map in decimal lines at
//!   the start of the data (padded to a block), `GNU.sparse.name`,
//!   `GNU.sparse.realsize`.
//!
//! The stored data is the segments' bytes, one after the other, exactly: a map whose
//! segments overlap, run backwards, end past the real size, or do not add up to the
//! stored bytes is refused, as Go refuses it.

use std::io::{self, Read};

/// The data segments of a sparse file: `(offset in the file, length)`, ascending and
/// non-overlapping. The stored data is their bytes one after the other; everything
/// else of the file, up to its size, is a hole (zeros).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SparseMap {
    segments: Vec<(u64, u64)>,
}

impl SparseMap {
    /// A map of these segments, checked against the file's size: each in bounds, in
    /// order, not overlapping. `None` when they are not.
    pub fn new(segments: Vec<(u64, u64)>, size: u64) -> Option<SparseMap> {
        let mut end = 0u64;
        for &(offset, len) in &segments {
            let stop = offset.checked_add(len)?;
            if offset < end || stop > size {
                return None;
            }
            end = stop;
        }
        Some(SparseMap { segments })
    }

    /// The segments, `(offset, length)`, ascending.
    pub fn segments(&self) -> &[(u64, u64)] {
        &self.segments
    }

    /// Bytes stored in the archive: the sum of the segments' lengths.
    pub fn stored(&self) -> u64 {
        self.segments.iter().map(|&(_, len)| len).sum()
    }

    /// Where the stored byte at `pos` (counted from the start of the stored data) goes
    /// in the file, and how many stored bytes from there are contiguous in the file.
    pub(crate) fn locate(&self, pos: u64) -> Option<(u64, u64)> {
        let mut base = 0u64;
        for &(offset, len) in &self.segments {
            if pos < base + len {
                return Some((offset + (pos - base), base + len - pos));
            }
            base += len;
        }
        None
    }
}

/// Why a sparse map was refused.
pub(crate) type Problem = String;

/// A decimal number of a sparse map.
fn number(s: &[u8]) -> Result<u64, Problem> {
    std::str::from_utf8(s)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("sparse map number {:?} is not a number", String::from_utf8_lossy(s)))
}

/// Pairs of numbers into segments, at most `max` of them.
fn pairs(numbers: Vec<u64>, max: usize) -> Result<Vec<(u64, u64)>, Problem> {
    if !numbers.len().is_multiple_of(2) {
        return Err("sparse map with an odd count of numbers".into());
    }
    if numbers.len() / 2 > max {
        return Err(format!("sparse map of {} segments, over the limit of {max}", numbers.len() / 2));
    }
    Ok(numbers.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

/// The PAX 0.1 map `offset,length,...` (0.0's records, joined by the reader, too),
/// with `numblocks` pairs when given.
pub(crate) fn parse_map_0x1(map: &[u8], numblocks: Option<u64>, max: usize) -> Result<Vec<(u64, u64)>, Problem> {
    let numbers = if map.is_empty() {
        Vec::new()
    } else {
        map.split(|&b| b == b',').map(number).collect::<Result<Vec<u64>, Problem>>()?
    };
    let segments = pairs(numbers, max)?;
    if let Some(n) = numblocks
        && n != segments.len() as u64
    {
        return Err(format!("GNU.sparse.numblocks is {n}, the map has {} segments", segments.len()));
    }
    Ok(segments)
}

/// The PAX 1.0 map at the start of the data: a count, then offset and length on lines of
/// their own, padded with zeros to a whole block. Reads it from `data` (at most
/// `max_bytes`); returns the segments and the bytes the map took (a multiple of 512).
pub(crate) fn read_map_1x0(data: &mut dyn Read, max_bytes: u64, max: usize) -> Result<(Vec<(u64, u64)>, u64), Problem> {
    let mut buf: Vec<u8> = Vec::new();
    let mut block = [0u8; 512];
    let mut lines: Vec<u64> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut want: Option<usize> = None;
    loop {
        if buf.len() as u64 + 512 > max_bytes {
            return Err(format!("sparse map over {max_bytes} bytes"));
        }
        data.read_exact(&mut block).map_err(|e| format!("reading the sparse map: {e}"))?;
        buf.extend_from_slice(&block);
        for &b in &block {
            if want.is_some_and(|w| lines.len() > 2 * w) {
                break;
            }
            if b == b'\n' {
                lines.push(number(&line)?);
                line.clear();
                if lines.len() == 1 {
                    let n = usize::try_from(lines[0]).map_err(|_| "sparse map count out of range".to_string())?;
                    if n > max {
                        return Err(format!("sparse map of {n} segments, over the limit of {max}"));
                    }
                    want = Some(n);
                }
            } else {
                if line.len() >= 20 {
                    return Err("sparse map line too long".into());
                }
                line.push(b);
            }
        }
        if let Some(w) = want
            && lines.len() > 2 * w
        {
            let segments = pairs(lines[1..1 + 2 * w].to_vec(), max)?;
            return Ok((segments, buf.len() as u64));
        }
    }
}

/// The old GNU sparse entries of a 512-byte block from `start`, `count` of them
/// (24 bytes each: offset and length, octal or base-256); entries whose offset field is
/// empty end the list. Returns whether the list ended.
pub(crate) fn old_gnu_entries(
    block: &[u8],
    start: usize,
    count: usize,
    numeric: impl Fn(&[u8]) -> Option<u64>,
    out: &mut Vec<(u64, u64)>,
) -> Result<bool, Problem> {
    for i in 0..count {
        let at = start + i * 24;
        let (Some(off), Some(len)) = (block.get(at..at + 12), block.get(at + 12..at + 24)) else {
            return Err("truncated sparse header".into());
        };
        if off.iter().all(|&b| b == 0) {
            return Ok(true);
        }
        let (Some(o), Some(l)) = (numeric(off), numeric(len)) else {
            return Err("bad number in a sparse header".into());
        };
        out.push((o, l));
    }
    Ok(false)
}

/// The logical content of a sparse file from its stored data: holes as zeros.
pub(crate) struct Expand<R> {
    stored: R,
    map: SparseMap,
    size: u64,
    /// Position in the file.
    pos: u64,
    /// Index of the next segment, and bytes of it already given.
    seg: usize,
    done_in_seg: u64,
}

impl<R: Read> Expand<R> {
    pub(crate) fn new(stored: R, map: SparseMap, size: u64) -> Expand<R> {
        Expand { stored, map, size, pos: 0, seg: 0, done_in_seg: 0 }
    }
}

impl<R: Read> Read for Expand<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let seg = self.map.segments.get(self.seg).copied();
        match seg {
            Some((offset, len)) if self.pos >= offset => {
                let left = len - self.done_in_seg;
                if left == 0 {
                    self.seg += 1;
                    self.done_in_seg = 0;
                    return self.read(buf);
                }
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let n = self.stored.read(buf.get_mut(..want).unwrap_or_default())?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "sparse file data ends early"));
                }
                self.done_in_seg += n as u64;
                self.pos += n as u64;
                Ok(n)
            }
            _ => {
                // A hole up to the next segment or the end.
                let until = seg.map_or(self.size, |(offset, _)| offset.min(self.size));
                let n = usize::try_from(until - self.pos).unwrap_or(usize::MAX).min(buf.len());
                buf.get_mut(..n).unwrap_or_default().fill(0);
                self.pos += n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_checked() {
        assert!(SparseMap::new(vec![(0, 10), (10, 5), (100, 0)], 100).is_some());
        assert!(SparseMap::new(vec![(10, 5), (0, 1)], 100).is_none(), "backwards");
        assert!(SparseMap::new(vec![(0, 10), (5, 1)], 100).is_none(), "overlap");
        assert!(SparseMap::new(vec![(90, 11)], 100).is_none(), "past the end");
        assert!(SparseMap::new(vec![(u64::MAX, 2)], u64::MAX).is_none(), "overflow");
        let m = SparseMap::new(vec![(4, 2), (10, 3)], 20).unwrap();
        assert_eq!(m.stored(), 5);
        assert_eq!(m.locate(0), Some((4, 2)));
        assert_eq!(m.locate(3), Some((11, 2)));
        assert_eq!(m.locate(5), None);
    }

    #[test]
    fn expansion_fills_holes() {
        let m = SparseMap::new(vec![(2, 3), (8, 2)], 12).unwrap();
        let mut out = Vec::new();
        Expand::new(&b"abcde"[..], m, 12).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"\0\0abc\0\0\0de\0\0");
        let m = SparseMap::new(vec![(2, 3)], 12).unwrap();
        assert!(Expand::new(&b"ab"[..], m, 12).read_to_end(&mut Vec::new()).is_err(), "short data");
    }

    #[test]
    fn pax_maps() {
        assert_eq!(parse_map_0x1(b"4096,4096,598016,4096,1048576,0", Some(3), 10).unwrap().len(), 3);
        assert!(parse_map_0x1(b"1,2,3", None, 10).is_err());
        assert!(parse_map_0x1(b"1,2", Some(2), 10).is_err());
        assert!(parse_map_0x1(b"1,x", None, 10).is_err());
        assert!(parse_map_0x1(b"1,2,3,4", None, 1).is_err());
        assert_eq!(parse_map_0x1(b"", Some(0), 10).unwrap(), vec![]);
        let mut data = b"2\n0\n5\n10\n3\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"abcdefgh");
        let mut r = &data[..];
        let (segs, used) = read_map_1x0(&mut r, 1 << 20, 10).unwrap();
        assert_eq!((segs, used), (vec![(0, 5), (10, 3)], 512));
        assert_eq!(r, b"abcdefgh");
        let mut long = b"1\n".to_vec();
        long.extend(std::iter::repeat_n(b'9', 600));
        assert!(read_map_1x0(&mut &long[..], 1 << 20, 10).is_err());
        assert!(read_map_1x0(&mut &b"3\n1\n"[..], 1 << 20, 10).is_err(), "truncated");
    }
}
