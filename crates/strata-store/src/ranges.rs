//! [`RangeStore`]: a read-only store whose blobs are byte ranges of one file, such as an
//! image archive read in place, and a few small documents held in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_spec::{Algorithm, Digest, Index};

use crate::blob::{BlobReader, BlobWriter, Source};
use crate::error::{Error, Result};
use crate::file_bytes::FileBytes;
use crate::fsck::{self, FsckOptions, FsckReport};
use crate::gc::{GcOptions, GcReport};
use crate::lease::{Lease, MemoryLeases};
use crate::record::{RecordKind, RecordUpdate};
use crate::store::{Backend, BlobStore};

/// Where a blob lies in the file: `size` bytes from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub offset: u64,
    /// How many bytes.
    pub size: u64,
}

/// A [`Backend`] that reads blobs from ranges of one file and writes nothing.
///
/// Each blob is a [`ByteRange`] of the file, read with positioned reads (`pread`), so
/// any number of readers share the one open file; or a document the caller made (a
/// manifest synthesised for a docker-archive) held in memory. Every read is verified
/// against the blob's name as for any store: bytes that do not hash to their digest
/// end the read with [`Error::DigestMismatch`]. The index is fixed when the store is
/// made. Writing, deleting, GC and records fail with [`Error::ReadOnly`].
#[derive(Clone)]
pub struct RangeStore {
    inner: Arc<Inner>,
}

struct Inner {
    file: Arc<File>,
    path: PathBuf,
    ranges: BTreeMap<Digest, ByteRange>,
    documents: BTreeMap<Digest, Arc<[u8]>>,
    index: Index,
    leases: MemoryLeases,
}

impl RangeStore {
    /// A store over `file` (named `path` in messages): the blobs `ranges`, the
    /// `documents` (stored under their SHA-256 digest) and `index`. A range that ends
    /// past the end of the file fails with [`Error::SizeMismatch`] (the bytes the file
    /// holds of it as `actual`).
    pub fn new(
        file: File,
        path: impl Into<PathBuf>,
        ranges: BTreeMap<Digest, ByteRange>,
        documents: Vec<Vec<u8>>,
        index: Index,
    ) -> Result<RangeStore> {
        let path = path.into();
        let len = file.metadata().map_err(Error::io("stat", path.clone()))?.len();
        for (digest, r) in &ranges {
            let end = r.offset.checked_add(r.size);
            if end.is_none_or(|end| end > len) {
                let actual = len.saturating_sub(r.offset);
                return Err(Error::SizeMismatch { digest: digest.clone(), expected: r.size, actual });
            }
        }
        let documents = documents.into_iter().map(|d| (Digest::sha256_of(&d), Arc::from(d))).collect();
        let inner = Inner { file: Arc::new(file), path, ranges, documents, index, leases: MemoryLeases::default() };
        Ok(RangeStore { inner: Arc::new(inner) })
    }

    /// The file the blobs are read from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Where blob `digest` lies in the file; `None` for a document held in memory or a
    /// blob the store does not have.
    pub fn range(&self, digest: &Digest) -> Option<ByteRange> {
        self.inner.ranges.get(digest).copied()
    }

    fn read_only(&self, op: &'static str) -> Error {
        Error::ReadOnly { op, path: self.inner.path.clone() }
    }
}

impl fmt::Debug for RangeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeStore")
            .field("path", &self.inner.path)
            .field("ranges", &self.inner.ranges.len())
            .field("documents", &self.inner.documents.len())
            .finish()
    }
}

/// A reader of one range of a shared file, by positioned reads.
struct RangeReader {
    file: Arc<File>,
    /// The next byte to read, as an offset in the file.
    pos: u64,
    end: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Source for RangeReader {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        self.pos = self.pos.saturating_add(n).min(self.end);
        Ok(())
    }
}

impl BlobStore for RangeStore {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        if let Some(r) = self.inner.ranges.get(digest) {
            return Ok(Some(r.size));
        }
        Ok(self.inner.documents.get(digest).map(|d| d.len() as u64))
    }

    fn open(&self, digest: &Digest) -> Result<BlobReader> {
        if let Some(r) = self.inner.ranges.get(digest) {
            let reader = RangeReader { file: self.inner.file.clone(), pos: r.offset, end: r.offset + r.size };
            let at = PathBuf::from(format!("{}@{}", self.inner.path.display(), r.offset));
            return Ok(BlobReader::new(Box::new(reader), digest.clone(), r.size, at));
        }
        let doc = self.inner.documents.get(digest).ok_or_else(|| Error::NotFound(digest.clone()))?;
        let size = doc.len() as u64;
        Ok(BlobReader::new(Box::new(Cursor::new(doc.clone())), digest.clone(), size, PathBuf::from("<memory>")))
    }

    fn begin_write_with(&self, _: Algorithm) -> Result<BlobWriter> {
        Err(self.read_only("write a blob"))
    }

    fn delete(&self, _: &Digest) -> Result<bool> {
        Err(self.read_only("delete a blob"))
    }

    fn verified_at_rest(&self) -> bool {
        false
    }

    fn list(&self) -> Result<Vec<Digest>> {
        let mut all: Vec<Digest> = self.inner.ranges.keys().chain(self.inner.documents.keys()).cloned().collect();
        all.sort();
        all.dedup();
        Ok(all)
    }
}

impl Backend for RangeStore {
    fn index(&self) -> Result<Index> {
        Ok(self.inner.index.clone())
    }

    fn update_index(&self, _: &mut dyn FnMut(&mut Index) -> Result<()>) -> Result<Index> {
        Err(self.read_only("change the index"))
    }

    fn lease(&self) -> Result<Lease> {
        Ok(self.inner.leases.lease())
    }

    fn gc(&self, _: &GcOptions) -> Result<GcReport> {
        Err(self.read_only("collect garbage"))
    }

    fn fsck_with(&self, options: &FsckOptions) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        fsck::check(self, &self.list()?, options, &mut report)?;
        Ok(report)
    }

    fn record(&self, _: RecordKind, _: &Digest) -> Result<Option<FileBytes>> {
        Ok(None)
    }

    fn update_record(&self, _: RecordKind, _: &Digest, _: &mut RecordUpdate<'_>) -> Result<()> {
        Err(self.read_only("write a record"))
    }

    fn keeps_records(&self) -> bool {
        false
    }
}
