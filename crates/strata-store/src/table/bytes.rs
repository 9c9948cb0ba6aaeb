//! A table's bytes: built in memory, or its file mapped and read in place.
//!
//! Reading a 10.5 MB table (250,000 entries) into fresh memory costs the kernel a page
//! fault, a zeroed page and a copy per 4 KiB, about 10 ms, most of a lookup's time;
//! mapping the file uses the page cache's own pages (about 1.5 ms, checksum included).

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::sync::Arc;

/// Tables of this many bytes or more are mapped rather than read.
const MAP_FROM: u64 = 1 << 20;

/// A table's bytes (see the module doc).
#[derive(Debug, Clone)]
pub(super) enum Bytes {
    Built(Vec<u8>),
    Mapped(Arc<memmap2::Mmap>),
}

impl Bytes {
    /// The whole of `file`: mapped when it is big, else read.
    pub(super) fn of(file: &File) -> io::Result<Bytes> {
        let len = file.metadata()?.len();
        if len >= MAP_FROM {
            return map(file).map(|m| Bytes::Mapped(Arc::new(m)));
        }
        let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, 0)?;
        Ok(Bytes::Built(buf))
    }

    /// The bytes as a vector to change (a mapped table copied).
    pub(super) fn into_vec(self) -> Vec<u8> {
        match self {
            Bytes::Built(b) => b,
            Bytes::Mapped(m) => m.to_vec(),
        }
    }
}

impl Default for Bytes {
    fn default() -> Bytes {
        Bytes::Built(Vec::new())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(b: Vec<u8>) -> Bytes {
        Bytes::Built(b)
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Built(b) => b,
            Bytes::Mapped(m) => m,
        }
    }
}

/// `file` mapped read-only, its pages mapped up front.
#[allow(unsafe_code)]
fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: a mapping must not change while it is read. strata never writes a table
    // file in place: each is written whole to a temporary file and renamed over
    // `.strata/index.table`, so the inode mapped here keeps its bytes (a rename or a
    // removal leaves the mapping as it was). Its checksum is checked on these bytes
    // before any is used. Another program writing or truncating a table file in place
    // while strata reads it is outside what the store supports (docs/security.md).
    unsafe { memmap2::MmapOptions::new().populate().map(file) }
}
