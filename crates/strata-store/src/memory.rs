//! [`MemoryStore`]: a store in memory, for tests and short-lived work.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Cursor, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use strata_spec::{Algorithm, Digest, Index, MediaType};

use crate::blob::{BlobReader, BlobWriter, Sink};
use crate::error::{Error, Result};
use crate::file_bytes::FileBytes;
use crate::fsck::{self, FsckOptions, FsckReport};
use crate::gc::{self, GcOptions, GcReport};
use crate::lease::{Lease, MemoryLeases};
use crate::record::{RecordKind, RecordUpdate};
use crate::store::{Backend, BlobStore};

/// A [`Backend`] held in memory, with the same semantics as [`OciDir`](crate::OciDir):
/// verified reads and writes, refs in an index, leases, GC and fsck. Clones share the
/// same contents.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    blobs: RwLock<BTreeMap<Digest, Arc<[u8]>>>,
    index: Mutex<Option<Index>>,
    records: Mutex<BTreeMap<(RecordKind, Digest), Vec<u8>>>,
    leases: MemoryLeases,
}

impl MemoryStore {
    /// An empty store whose index is an empty OCI image index.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Put bytes under a digest **without verifying them**, to test how readers, fsck and
    /// GC handle corruption. Never use it for anything else.
    pub fn insert_unverified(&self, digest: Digest, bytes: impl Into<Arc<[u8]>>) {
        self.inner.blobs.write().unwrap_or_else(|p| p.into_inner()).insert(digest, bytes.into());
    }

    fn blob(&self, digest: &Digest) -> Option<Arc<[u8]>> {
        self.inner.blobs.read().unwrap_or_else(|p| p.into_inner()).get(digest).cloned()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.blobs.read().map(|b| b.len()).unwrap_or_default();
        f.debug_struct("MemoryStore").field("blobs", &n).finish()
    }
}

struct MemorySink {
    buf: Vec<u8>,
    store: MemoryStore,
}

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for MemorySink {
    fn commit(self: Box<Self>, digest: &Digest, size: u64) -> Result<bool> {
        let mut blobs = self.store.inner.blobs.write().unwrap_or_else(|p| p.into_inner());
        if blobs.get(digest).is_some_and(|b| b.len() as u64 == size) {
            return Ok(true);
        }
        blobs.insert(digest.clone(), self.buf.into());
        Ok(false)
    }

    fn location(&self) -> PathBuf {
        PathBuf::from("<memory>")
    }
}

impl BlobStore for MemoryStore {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.blob(digest).map(|b| b.len() as u64))
    }

    fn open(&self, digest: &Digest) -> Result<BlobReader> {
        let bytes = self.blob(digest).ok_or_else(|| Error::NotFound(digest.clone()))?;
        let size = bytes.len() as u64;
        Ok(BlobReader::new(Box::new(Cursor::new(bytes)), digest.clone(), size, PathBuf::from("<memory>")))
    }

    fn begin_write_with(&self, algorithm: Algorithm) -> Result<BlobWriter> {
        let lease = self.lease()?;
        Ok(BlobWriter::new(Box::new(MemorySink { buf: Vec::new(), store: self.clone() }), algorithm, lease))
    }

    fn delete(&self, digest: &Digest) -> Result<bool> {
        Ok(self.inner.blobs.write().unwrap_or_else(|p| p.into_inner()).remove(digest).is_some())
    }

    fn list(&self) -> Result<Vec<Digest>> {
        Ok(self.inner.blobs.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect())
    }
}

impl Backend for MemoryStore {
    fn index(&self) -> Result<Index> {
        let index = self.inner.index.lock().unwrap_or_else(|p| p.into_inner());
        Ok(index.clone().unwrap_or_else(|| Index::new(Some(MediaType::OciIndex))))
    }

    fn update_index(&self, f: &mut dyn FnMut(&mut Index) -> Result<()>) -> Result<Index> {
        let mut guard = self.inner.index.lock().unwrap_or_else(|p| p.into_inner());
        let mut new = guard.clone().unwrap_or_else(|| Index::new(Some(MediaType::OciIndex)));
        f(&mut new)?;
        // Store what a reader of index.json would get back, as OciDir does.
        let stored = Index::from_slice(&new.to_canonical_json())
            .map_err(|source| Error::BadIndex { path: PathBuf::from("<memory>"), source })?;
        *guard = Some(stored.clone());
        Ok(stored)
    }

    fn lease(&self) -> Result<Lease> {
        Ok(self.inner.leases.lease())
    }

    fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        let mut report = GcReport { dry_run: options.dry_run, ..GcReport::default() };
        if options.dry_run {
            let marked = gc::mark(self, &self.index()?, options.force)?;
            gc::sweep(self, &marked, &mut report)?;
            return Ok(report);
        }
        let Some(_guard) = self.inner.leases.begin_gc() else {
            return Err(Error::LeaseHeld { path: PathBuf::from("<memory>") });
        };
        let mut guard = self.inner.index.lock().unwrap_or_else(|p| p.into_inner());
        let index = guard.clone().unwrap_or_else(|| Index::new(Some(MediaType::OciIndex)));
        let marked = gc::mark(self, &index, options.force)?;
        if !marked.orphans.is_empty() {
            *guard = Some(marked.pruned(&index));
        }
        gc::sweep(self, &marked, &mut report)?;
        let mut records = self.inner.records.lock().unwrap_or_else(|p| p.into_inner());
        let before = records.len();
        records.retain(|(_, d), _| self.blob(d).is_some());
        report.records_removed = before - records.len();
        Ok(report)
    }

    fn fsck_with(&self, options: &FsckOptions) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let blobs = self.list()?;
        fsck::check(self, &blobs, options, &mut report)?;
        let records = self.inner.records.lock().unwrap_or_else(|p| p.into_inner());
        for ((kind, digest), bytes) in records.iter() {
            report.records_checked += 1;
            if let Err(reason) = kind.check(bytes) {
                let path = PathBuf::from(format!("<memory>/records/{}/{digest}", kind.name()));
                report.problems.push(fsck::Problem::BadRecord { path, reason });
            }
        }
        Ok(report)
    }

    fn record(&self, kind: RecordKind, digest: &Digest) -> Result<Option<FileBytes>> {
        let records = self.inner.records.lock().unwrap_or_else(|p| p.into_inner());
        Ok(records.get(&(kind, digest.clone())).cloned().map(FileBytes::from))
    }

    fn update_record(&self, kind: RecordKind, digest: &Digest, f: &mut RecordUpdate<'_>) -> Result<()> {
        let mut records = self.inner.records.lock().unwrap_or_else(|p| p.into_inner());
        let key = (kind, digest.clone());
        if let Some(new) = f(records.get(&key).map(Vec::as_slice))? {
            records.insert(key, new);
        }
        Ok(())
    }

    fn keeps_records(&self) -> bool {
        true
    }
}
