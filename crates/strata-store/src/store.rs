//! The store traits: blobs ([`BlobStore`]) and the index, refs and maintenance ([`Backend`]).

use std::io::{Read, Write};

use strata_spec::{ANNOTATION_REF_NAME, Algorithm, Descriptor, Digest, Index};

use crate::blob::{BlobInfo, BlobReader, BlobWriter, Expected};
use crate::error::{Error, Result, truncate};
use crate::file_bytes::FileBytes;
use crate::fsck::{FsckOptions, FsckReport};
use crate::gc::{GcOptions, GcReport};
use crate::lease::Lease;
use crate::record::{self, ImageRecord, LayerRecord, RecordKind, RecordUpdate};

/// The largest manifest, index or config strata reads into memory: 8 MiB, twice the
/// 4 MiB manifest limit of the distribution registry (configs with long histories stay
/// far below it). Larger documents are refused with [`Error::TooLarge`].
pub const MAX_DOCUMENT_SIZE: u64 = 8 << 20;

/// A content-addressed blob store: bytes named by their digest.
///
/// Every read is verified against the name; every write is hashed as it streams and
/// verified before it becomes visible. Implementations are [`OciDir`](crate::OciDir)
/// and [`MemoryStore`](crate::MemoryStore); the trait is object safe, so callers can
/// hold a `&dyn BlobStore` or an `Arc<dyn Backend>`.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// The size of a blob, or `None` if the store does not have it.
    fn stat(&self, digest: &Digest) -> Result<Option<u64>>;

    /// Open a blob for a verified, streaming read ([`Error::NotFound`] if absent).
    fn open(&self, digest: &Digest) -> Result<BlobReader>;

    /// Start writing a blob hashed with `algorithm`.
    fn begin_write_with(&self, algorithm: Algorithm) -> Result<BlobWriter>;

    /// Delete a blob. Returns whether it existed. Deleting a blob that is still
    /// referenced breaks the store: prefer [`Backend::gc`].
    fn delete(&self, digest: &Digest) -> Result<bool>;

    /// Every blob in the store, sorted. Files that are not blobs (wrong names, not
    /// regular files) are skipped; [`Backend::fsck`] reports them.
    fn list(&self) -> Result<Vec<Digest>>;

    /// Whether every blob was verified against its name when it was stored (a store
    /// that writes through a verifying writer), so a reader that checks the bytes
    /// another way, or needs only their structure, may skip hashing them. `false` for a
    /// store over bytes nobody verified ([`RangeStore`](crate::RangeStore)): readers
    /// hash what they read.
    fn verified_at_rest(&self) -> bool {
        true
    }

    /// Start writing a SHA-256 blob.
    fn begin_write(&self) -> Result<BlobWriter> {
        self.begin_write_with(Algorithm::Sha256)
    }

    /// Whether the store has a blob.
    fn contains(&self, digest: &Digest) -> Result<bool> {
        Ok(self.stat(digest)?.is_some())
    }

    /// Store `bytes` as a SHA-256 blob.
    fn put_blob(&self, bytes: &[u8]) -> Result<BlobInfo> {
        self.put_blob_expected(bytes, Expected::none())
    }

    /// Store `bytes`, which must match `expected` (its digest's algorithm is used).
    fn put_blob_expected(&self, bytes: &[u8], expected: Expected) -> Result<BlobInfo> {
        let algorithm = expected.digest.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let mut w = self.begin_write_with(algorithm)?;
        w.write_all(bytes).map_err(|e| Error::from_io(e, "write blob", "<blob writer>"))?;
        w.commit(expected)
    }

    /// Open a blob that `desc` points to; fails with [`Error::SizeMismatch`] before
    /// reading if the stored size differs, and the reader verifies `desc.size`.
    fn open_descriptor(&self, desc: &Descriptor) -> Result<BlobReader> {
        let r = self.open(&desc.digest)?;
        if r.size() != desc.size {
            return Err(Error::SizeMismatch { digest: desc.digest.clone(), expected: desc.size, actual: r.size() });
        }
        Ok(r)
    }

    /// Read a whole blob into memory, verified, refusing blobs over `limit` bytes
    /// ([`Error::TooLarge`]). For JSON documents use [`MAX_DOCUMENT_SIZE`].
    fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let r = self.open(digest)?;
        read_all(r, limit)
    }

    /// Read the blob `desc` points to into memory, verifying digest and `desc.size`,
    /// refusing blobs over `limit` bytes.
    fn read_descriptor(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        if desc.size > limit {
            return Err(Error::TooLarge { digest: desc.digest.clone(), size: desc.size, limit });
        }
        let r = self.open_descriptor(desc)?;
        read_all(r, limit)
    }
}

fn read_all(mut r: BlobReader, limit: u64) -> Result<Vec<u8>> {
    if r.size() > limit {
        return Err(Error::TooLarge { digest: r.digest().clone(), size: r.size(), limit });
    }
    let mut out = Vec::with_capacity(usize::try_from(r.size()).unwrap_or(0));
    r.read_to_end(&mut out).map_err(|e| Error::from_io(e, "read", r.location()))?;
    Ok(out)
}

/// A blob store with an image index (`index.json`), refs (tags), leases, GC and fsck.
///
/// Refs follow the image-layout convention that umoci and skopeo use: a ref is the
/// `org.opencontainers.image.ref.name` annotation of a descriptor in the index, and names
/// one descriptor. Every read-modify-write of the index is atomic and serialised
/// across processes.
pub trait Backend: BlobStore {
    /// The current index.
    fn index(&self) -> Result<Index>;

    /// Read-modify-write the index atomically: `f` edits a fresh copy under an exclusive
    /// lock, and the result replaces the index unless `f` fails or changes nothing.
    /// Returns the index as written.
    fn update_index(&self, f: &mut dyn FnMut(&mut Index) -> Result<()>) -> Result<Index>;

    /// Take a lease that keeps GC away until dropped; see [`crate::lease`].
    fn lease(&self) -> Result<Lease>;

    /// Remove every blob not reachable from the index, and stale temp files. A referrer
    /// entry (untagged, its document has a `subject`: an SBOM attached to an image) is
    /// kept only while its subject is reachable otherwise; when the subject goes, GC drops
    /// the entry from the index too ([`GcReport::referrers_removed`]).
    fn gc(&self, options: &GcOptions) -> Result<GcReport>;

    /// Check the whole store without changing it, as `options` say.
    fn fsck_with(&self, options: &FsckOptions) -> Result<FsckReport>;

    /// Check the whole store without changing it: every blob re-hashed, every reference
    /// followed ([`FsckOptions::default`]).
    fn fsck(&self) -> Result<FsckReport> {
        self.fsck_with(&FsckOptions::default())
    }

    /// The bytes of the record of `kind` named `digest`, if the store has one (see
    /// [`crate::record`]); a big record's file is mapped rather than copied.
    fn record(&self, kind: RecordKind, digest: &Digest) -> Result<Option<FileBytes>>;

    /// Read-modify-write the record of `kind` named `digest` under an exclusive
    /// cross-process lock: `f` gets the current bytes (`None` when there are none) and
    /// returns the new ones, or `None` to leave the record as it is. The new record
    /// replaces the old atomically.
    fn update_record(&self, kind: RecordKind, digest: &Digest, f: &mut RecordUpdate<'_>) -> Result<()>;

    /// Whether the store keeps records already. A reader that computed what a record
    /// holds stores it only then: an [`OciDir`](crate::OciDir) that strata has only ever
    /// read (a layout umoci wrote) is never modified by reading it.
    fn keeps_records(&self) -> bool;

    /// The bytes last kept as the cache `name` ([`Backend::put_cache`]), if they are
    /// there and check out (a damaged or truncated cache file reads as none). A cache
    /// holds what the caller derived from content named by digest (so it never goes
    /// stale) and can rebuild at any time; the store only keeps the bytes intact.
    fn cache(&self, name: &str) -> Option<Vec<u8>> {
        let _ = name;
        None
    }

    /// Keep `bytes` as the cache `name` (letters, digits and `-`), best effort: nothing
    /// is kept by a store that keeps no records ([`Backend::keeps_records`]), nor on a
    /// failure. Concurrent writers are safe: the last one's bytes win, whole.
    fn put_cache(&self, name: &str, bytes: &[u8]) {
        let _ = (name, bytes);
    }

    /// The [`LayerRecord`] of the layer blob `blob`, if there is a readable one.
    fn layer_record(&self, blob: &Digest) -> Result<Option<LayerRecord>> {
        Ok(self.record(RecordKind::Layer, blob)?.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Record what a layer blob holds (a no-op when the same record is there).
    fn put_layer_record(&self, blob: &Digest, layer: &LayerRecord) -> Result<()> {
        let bytes = record::to_bytes(layer);
        self.update_record(RecordKind::Layer, blob, &mut |old| {
            Ok((old != Some(bytes.as_slice())).then(|| bytes.clone()))
        })
    }

    /// The [`ImageRecord`] of what a tag points at (`digest`: a manifest or index);
    /// empty when there is none or it cannot be read.
    fn image_record(&self, digest: &Digest) -> Result<ImageRecord> {
        Ok(self.record(RecordKind::Image, digest)?.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default())
    }

    /// Change the [`ImageRecord`] of `digest` under the record lock.
    fn update_image_record(&self, digest: &Digest, f: &mut dyn FnMut(&mut ImageRecord)) -> Result<()> {
        self.update_record(RecordKind::Image, digest, &mut |old| {
            let before: ImageRecord = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            let mut after = before.clone();
            f(&mut after);
            Ok((after != before || old.is_none()).then(|| record::to_bytes(&after)))
        })
    }

    /// Point ref `name` at `desc`, replacing whatever descriptor held the name before
    /// (returned). The stored descriptor is `desc` plus the ref-name annotation. The
    /// time is recorded as the [`ImageRecord::last_tag_time`] of `desc`.
    fn set_ref(&self, name: &str, desc: &Descriptor) -> Result<Option<Descriptor>> {
        validate_ref_name(name)?;
        let mut entry = desc.clone();
        entry.set_annotation(ANNOTATION_REF_NAME, name);
        let previous = self.put_ref_entry(name, &entry)?;
        let now = strata_spec::time::format_system_time(std::time::SystemTime::now());
        self.update_image_record(&desc.digest, &mut |r| r.last_tag_time = Some(now.clone()))?;
        Ok(previous)
    }

    /// The index part of [`Backend::set_ref`]: `entry` (which carries the ref name `name`)
    /// takes the place of the first entry named `name`, or goes at the end; the other
    /// entries of that name go. Returns the first entry that had the name.
    fn put_ref_entry(&self, name: &str, entry: &Descriptor) -> Result<Option<Descriptor>> {
        let mut previous = None;
        self.update_index(&mut |index| {
            previous = None;
            let mut slot = None;
            let mut i = 0;
            while i < index.manifests.len() {
                if index.manifests[i].ref_name() == Some(name) {
                    let old = index.manifests.remove(i);
                    previous.get_or_insert(old);
                    slot.get_or_insert(i);
                } else {
                    i += 1;
                }
            }
            let at = slot.unwrap_or(index.manifests.len());
            index.manifests.insert(at, entry.clone());
            Ok(())
        })?;
        Ok(previous)
    }

    /// The descriptor ref `name` points to.
    fn resolve_ref(&self, name: &str) -> Result<Descriptor> {
        resolve_in(self.refs_named(name)?, name)
    }

    /// Every ref and its descriptor, in index order.
    fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self.index()?.manifests.into_iter().filter_map(|d| Some((d.ref_name()?.to_owned(), d))).collect())
    }

    /// The refs whose name and digest satisfy `pred`, with their descriptors, in index
    /// order: on a big index, much less work than [`Backend::refs`] when few match (an
    /// [`OciDir`](crate::OciDir) builds only their descriptors).
    fn refs_where(&self, pred: &mut dyn FnMut(&str, &Digest) -> bool) -> Result<Vec<(String, Descriptor)>> {
        Ok(self.refs()?.into_iter().filter(|(n, d)| pred(n, &d.digest)).collect())
    }

    /// The entries named exactly `name`, with their descriptors, in index order
    /// ([`Backend::refs_where`] by name; an [`OciDir`](crate::OciDir) finds them by a
    /// binary search of its index table, not a pass over every name).
    fn refs_named(&self, name: &str) -> Result<Vec<(String, Descriptor)>> {
        self.refs_where(&mut |n, _| n == name)
    }

    /// The refs whose name holds `part`, with their descriptors, in index order
    /// ([`Backend::refs_where`] by substring; an [`OciDir`](crate::OciDir) searches its
    /// index table's names in one pass).
    fn refs_containing(&self, part: &str) -> Result<Vec<(String, Descriptor)>> {
        self.refs_where(&mut |n, _| n.contains(part))
    }

    /// The refs that point at one of `digests`, with their descriptors, in index order
    /// ([`Backend::refs_where`] by digest; an [`OciDir`](crate::OciDir) compares each
    /// distinct target once, not each entry).
    fn refs_to(&self, digests: &[&Digest]) -> Result<Vec<(String, Descriptor)>> {
        self.refs_where(&mut |_, d| digests.contains(&d))
    }

    /// The first entry of the index for each distinct digest and media type, in index
    /// order: what the index points at, each once however many tags name it.
    fn index_targets(&self) -> Result<Vec<Descriptor>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for d in self.index()?.manifests {
            if seen.insert((d.digest.clone(), d.media_type.to_string())) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Every entry of the index, in index order, with the distinct targets (media type,
    /// digest, size) they point at listed once: what a listing of a big index needs,
    /// without a [`Descriptor`] per entry when the entry holds no more than a target and
    /// a ref name (an [`OciDir`](crate::OciDir) reads them from its index table).
    fn index_entries(&self) -> Result<IndexEntries> {
        Ok(IndexEntries::of(self.index()?.manifests))
    }

    /// Remove ref `name` only while another ref points at the same digest and media
    /// type (the content stays tagged), atomically; otherwise change nothing. Returns
    /// the removed descriptor, or `None` when nothing was removed (no such ref, several
    /// entries of that name, or no other ref to the same content).
    fn remove_ref_if_shared(&self, name: &str) -> Result<Option<Descriptor>> {
        let mut removed = None;
        self.update_index(&mut |index| {
            removed = None;
            let named: Vec<usize> =
                (0..index.manifests.len()).filter(|&i| index.manifests[i].ref_name() == Some(name)).collect();
            let [at] = named[..] else { return Ok(()) };
            let d = &index.manifests[at];
            let shared = index.manifests.iter().enumerate().any(|(i, o)| {
                i != at && o.ref_name().is_some() && o.digest == d.digest && o.media_type == d.media_type
            });
            if shared {
                removed = Some(index.manifests.remove(at));
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Remove ref `name`, returning the descriptor it pointed to. The blobs stay until GC.
    fn remove_ref(&self, name: &str) -> Result<Descriptor> {
        let mut removed = None;
        self.update_index(&mut |index| {
            let named = index.manifests.iter().filter(|d| d.ref_name() == Some(name));
            let found = resolve_in(named.map(|d| (name.to_owned(), d.clone())).collect(), name)?;
            index.manifests.retain(|d| d.ref_name() != Some(name));
            removed = Some(found);
            Ok(())
        })?;
        removed.ok_or_else(|| Error::RefNotFound(name.to_owned()))
    }
}

/// The one descriptor `found` (the entries named `name`) stands for: several entries of
/// one name are fine when they agree on the digest.
pub(crate) fn resolve_in(found: Vec<(String, Descriptor)>, name: &str) -> Result<Descriptor> {
    let mut found = found.into_iter().map(|(_, d)| d);
    let first = found.next().ok_or_else(|| Error::RefNotFound(name.to_owned()))?;
    let others = found.filter(|d| d.digest != first.digest).count();
    if others > 0 {
        return Err(Error::AmbiguousRef { name: name.to_owned(), count: others + 1 });
    }
    Ok(first)
}

/// Check a ref name: non-empty, at most 4096 bytes, no control characters. Names are
/// otherwise stored verbatim (`base`, `tomcat02:1.0`, `127.0.0.1:5000/base:latest`),
/// as other tools write them.
pub fn validate_ref_name(name: &str) -> Result<()> {
    /// Far above any real name (a full reference is at most ~400 bytes), low enough that
    /// a name cannot bloat the index.
    const MAX_REF_NAME: usize = 4096;
    let bad = |reason| Err(Error::InvalidRefName { name: truncate(name), reason });
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_REF_NAME {
        return bad("longer than 4096 bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    Ok(())
}

/// The entries of an index with their targets shared ([`Backend::index_entries`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexEntries {
    /// The distinct targets, in order of first use: descriptors with a media type,
    /// digest and size only.
    pub targets: Vec<Descriptor>,
    /// The entries, in index order.
    pub entries: Vec<IndexEntry>,
}

/// One entry of [`IndexEntries`].
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    /// Its ref name, if any.
    pub name: Option<String>,
    /// What it points at: a position in [`IndexEntries::targets`].
    pub target: usize,
    /// The entry whole, when it has more than its target and ref name (other
    /// annotations, a platform, an artifact type...). Boxed: few entries have one, and
    /// a descriptor is big (a listing of 250,000 entries held 100 MB of them unboxed).
    pub full: Option<Box<Descriptor>>,
}

impl IndexEntries {
    /// The entries of `manifests` (an index's).
    pub fn of(manifests: Vec<Descriptor>) -> IndexEntries {
        let mut out = IndexEntries::default();
        let mut seen: std::collections::HashMap<(String, Digest, u64), usize> = std::collections::HashMap::new();
        for d in manifests {
            let next = out.targets.len();
            let target = *seen.entry((d.media_type.to_string(), d.digest.clone(), d.size)).or_insert_with(|| {
                out.targets.push(Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size));
                next
            });
            let name = d.ref_name().map(str::to_owned);
            let full = (!crate::table::is_simple(&d)).then(|| Box::new(d));
            out.entries.push(IndexEntry { name, target, full });
        }
        out
    }

    /// The descriptor of entry `i` as the index holds it.
    pub fn descriptor(&self, i: usize) -> Descriptor {
        let e = &self.entries[i];
        if let Some(d) = &e.full {
            return (**d).clone();
        }
        let mut d = self.targets[e.target].clone();
        if let Some(n) = &e.name {
            d.set_annotation(ANNOTATION_REF_NAME, n);
        }
        d
    }
}
