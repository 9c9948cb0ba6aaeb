//! Sparse entries: the map of each of GNU tar's encodings read into the entry (see
//! [`crate::sparse`] for the formats and the checks).

use std::io::{self, BufRead, Read};

use super::{EntryKind, SparsePax, TarReader, numeric};
use crate::error::Result;
use crate::sparse::{self, SparseMap};

impl<R: BufRead> TarReader<R> {
    /// Most segments a sparse map may have: as many as fit the PAX header limit.
    fn max_segments(&self) -> usize {
        usize::try_from(self.limits.max_pax_size / 24).unwrap_or(usize::MAX).max(4)
    }

    /// A sparse file's map and size, checked against the stored data.
    fn set_sparse(&mut self, segments: Vec<(u64, u64)>, size: u64) -> Result<()> {
        if i64::try_from(size).is_err() {
            return Err(self.entry_error(format!("sparse file size {size} out of range")));
        }
        let map = SparseMap::new(segments, size)
            .ok_or_else(|| self.entry_error("sparse map segments out of order, overlapping or past the file's size"))?;
        if map.stored() != self.remaining {
            return Err(self.entry_error(format!(
                "sparse map has {} bytes of data, the entry stores {}",
                map.stored(),
                self.remaining
            )));
        }
        self.entry.size = size;
        self.entry.sparse = Some(map);
        // Go reports a sparse file's real size as its size, and docker adds that up.
        self.entry.declared_size = size;
        Ok(())
    }

    /// Old GNU sparse (type `S`): four entries in the header, more in extension blocks,
    /// the real size at byte 483.
    pub(super) fn old_gnu_sparse(&mut self) -> Result<()> {
        let max = self.max_segments();
        let mut segments = Vec::new();
        let realsize = numeric(&self.block[483..495]).ok_or_else(|| self.entry_error("bad sparse real size field"))?;
        let ended =
            sparse::old_gnu_entries(&self.block, 386, 4, numeric, &mut segments).map_err(|p| self.entry_error(p))?;
        let mut extended = !ended && self.block[482] != 0;
        while extended {
            if !self.read_block()? {
                return Err(self.entry_error("archive ends in a sparse header"));
            }
            let ended =
                sparse::old_gnu_entries(&self.block, 0, 21, numeric, &mut segments).map_err(|p| self.entry_error(p))?;
            if segments.len() > max {
                return Err(self.entry_error(format!("sparse map of over {max} segments")));
            }
            extended = !ended && self.block[504] != 0;
        }
        self.set_sparse(segments, realsize)
    }

    /// PAX sparse (GNU formats 0.0, 0.1 and 1.0), detected as Go's `archive/tar` does.
    pub(super) fn pax_sparse(&mut self, sp: &SparsePax) -> Result<()> {
        let v1 = match (sp.major, sp.minor) {
            (Some(0), Some(0 | 1)) => false,
            (Some(1), Some(0)) => true,
            (None, None) if sp.map.is_some() => false,
            (None, None) => return Ok(()),
            (major, minor) => {
                return Err(self.entry_error(format!(
                    "unknown GNU sparse format {}.{}",
                    major.map_or("?".into(), |v| v.to_string()),
                    minor.map_or("?".into(), |v| v.to_string())
                )));
            }
        };
        if self.entry.kind != EntryKind::File {
            return Err(self.entry_error("a sparse map on an entry that is not a regular file"));
        }
        let size = sp.size.or(sp.realsize).unwrap_or(self.entry.size);
        let max = self.max_segments();
        let segments = if v1 {
            let limit = self.limits.max_pax_size.min(self.remaining);
            let mut data = Limited { inner: &mut self.inner, left: limit, offset: &mut self.offset };
            let read = sparse::read_map_1x0(&mut data, limit, max);
            let (segments, used) = read.map_err(|p| self.entry_error(p))?;
            self.remaining -= used;
            segments
        } else {
            let map = sp.map.as_deref().unwrap_or_default();
            let Some(numblocks) = sp.numblocks else {
                return Err(self.entry_error("GNU.sparse.numblocks missing"));
            };
            sparse::parse_map_0x1(map, Some(numblocks), max).map_err(|p| self.entry_error(p))?
        };
        self.set_sparse(segments, size)
    }
}

/// The data of the current entry as a `Read`, at most `left` bytes (the sparse map of a
/// PAX 1.0 entry is read through it).
struct Limited<'a, R> {
    inner: &'a mut R,
    left: u64,
    offset: &'a mut u64,
}

impl<R: BufRead> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let avail = self.inner.fill_buf()?;
        let n = avail.len().min(buf.len()).min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&avail[..n]);
        self.inner.consume(n);
        self.left -= n as u64;
        *self.offset += n as u64;
        Ok(n)
    }
}
