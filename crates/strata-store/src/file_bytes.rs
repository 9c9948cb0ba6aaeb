//! A file's bytes as the store reads its own files (the index table, records): read
//! into memory, or, from a size on, the file mapped and read in place.
//!
//! Reading a 10.5 MB table (250,000 entries) into fresh memory costs the kernel a page
//! fault, a zeroed page and a copy per 4 KiB, about 10 ms, most of a lookup's time;
//! mapping the file uses the page cache's own pages (about 1.5 ms, checksum included).
//! A scan reading its layers' records (3 MB for a Debian image) pays the same.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::sync::Arc;

/// The bytes of one of the store's files (see the module doc): derefs to `[u8]`.
#[derive(Clone)]
pub struct FileBytes(Inner);

#[derive(Clone)]
enum Inner {
    Built(Vec<u8>),
    Mapped(Arc<memmap2::Mmap>),
}

impl FileBytes {
    /// The first `len` bytes of `file` (its length, as the caller found it): mapped
    /// when `len` is `map_from` or more, else read. Only for the store's own files,
    /// which it never writes in place (see [`map`]).
    pub(crate) fn of(file: &File, len: u64, map_from: u64) -> io::Result<FileBytes> {
        if len >= map_from && len > 0 {
            return map(file, len).map(|m| FileBytes(Inner::Mapped(Arc::new(m))));
        }
        let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, 0)?;
        Ok(FileBytes(Inner::Built(buf)))
    }

    /// The bytes as a vector to change (mapped ones copied).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Inner::Built(b) => b,
            Inner::Mapped(m) => m.to_vec(),
        }
    }
}

impl Default for FileBytes {
    fn default() -> FileBytes {
        FileBytes(Inner::Built(Vec::new()))
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(b: Vec<u8>) -> FileBytes {
        FileBytes(Inner::Built(b))
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Built(b) => b,
            Inner::Mapped(m) => m,
        }
    }
}

impl AsRef<[u8]> for FileBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for FileBytes {
    fn eq(&self, other: &FileBytes) -> bool {
        **self == **other
    }
}

impl Eq for FileBytes {}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if matches!(self.0, Inner::Mapped(_)) { "mapped" } else { "read" };
        write!(f, "FileBytes({} bytes, {how})", self.len())
    }
}

/// The first `len` bytes of `file` mapped read-only. Its pages are mapped as they are
/// read, sixteen at a time (the kernel's fault-around), not up front: mapping every
/// page of a scan's records before reading them was measured slower (2%, interleaved
/// runs).
#[allow(unsafe_code)]
fn map(file: &File, len: u64) -> io::Result<memmap2::Mmap> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: a mapping must not change while it is read. strata never writes a table
    // or a record in place: each is written whole to a temporary file and renamed over
    // the old one, so the inode mapped here keeps its bytes (a rename or a removal by
    // gc leaves the mapping as it was). The caller checks their checksum on these bytes
    // before using any. Another program writing or truncating one of these files in
    // place while strata reads it is outside what the store supports
    // (docs/security.md).
    unsafe { memmap2::MmapOptions::new().len(len).map(file) }
}
