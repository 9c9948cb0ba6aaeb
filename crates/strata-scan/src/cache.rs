//! The per-layer analysis cache: what a scan needs from a layer (its headers, as a
//! [`LayerIndex`], and the content of the package-database files it holds), kept in the
//! store as a record named by the layer blob's digest ([`RecordKind::Scan`]), so that
//! the next scan of any image holding the layer reads no blob. Trivy keeps the same per
//! layer, keyed by diff_id.
//!
//! A record is named by the bytes it describes, so it never goes stale; it is written
//! atomically by the store, removed by `gc` with its blob, and checked before use: its
//! checksum, format version, and `diff_id` (against the image config's), and each file's
//! size against its header. A record that fails any check is ignored, and the layer is
//! read and its record written again.
//!
//! ```text
//! magic "STRSCAN\0" | version u32 | index length u64 | LayerIndex bytes
//! | table length u64 | the index's table ([`IndexRef::table`]; empty: none)
//! | files u64 | (ordinal u64, length u64, bytes)*
//! | wanted u64 | ordinal u64 * (the entries whose names the catalogers read, kept or not)
//! | crc32 of all before, u32
//! ```

use std::collections::HashMap;
use std::io::BufReader;

use strata_image::{Image, LayerIndexer, Store};
use strata_layer::read::EntryKind;
use strata_layer::{IndexRef, IndexedLayer, LayerIndex, LayerSource, Limits};
use strata_spec::{Descriptor, Digest};
use strata_store::record::MAX_SCAN_RECORD_SIZE;
use strata_store::{Backend, FileBytes, RecordKind};

use crate::catalog;
use crate::error::Result;

const MAGIC: &[u8; 8] = b"STRSCAN\0";
/// The record format; a change of what is kept (the files [`catalog::wanted`] selects)
/// bumps it too, so that an older record is read again rather than trusted. 2: a crc32
/// at the end instead of a sha256. 3: the index's table, read instead of decoding the
/// index, and the entries whose names the catalogers want. 4: the table keeps the
/// layer's says, which the merge reads instead of going through its entries.
const VERSION: u32 = 4;
/// The largest file kept in a record: larger databases are read from the layer.
const MAX_CACHED_FILE: u64 = 64 << 20;

/// One layer as a scan sees it: its index, and the content of the database files it
/// holds, by entry ordinal.
#[derive(Debug)]
pub(crate) struct LayerData {
    pub(crate) index: LayerIndex,
    pub(crate) files: HashMap<u64, Vec<u8>>,
}

/// Where each layer of a scan came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheStats {
    /// Layers read from their cache record.
    pub(crate) hits: usize,
    /// Layers read from their blob.
    pub(crate) misses: usize,
}

/// The scan record of each layer of `image` the store has, unchecked.
pub(crate) fn records(image: &Image) -> Vec<Option<FileBytes>> {
    let backend = image.store().backend();
    image.layers().iter().map(|desc| backend.record(RecordKind::Scan, &desc.digest).ok().flatten()).collect()
}

/// Every layer of `image`, base first: from its record (`records`, as [`records`]
/// reads them; all `None` without the cache) when it is sound, else read from the blob
/// (and its record written, when `use_cache` and the store keeps records).
pub(crate) fn layers_from(
    image: &Image,
    use_cache: bool,
    records: Vec<Option<FileBytes>>,
) -> Result<(Vec<LayerData>, CacheStats)> {
    let backend = image.store().backend();
    let write = use_cache && backend.keeps_records();
    let pairs: Vec<(&Descriptor, &Digest)> = image.layers().iter().zip(&image.config().rootfs.diff_ids).collect();
    let mut slots: Vec<Option<LayerData>> =
        pairs.iter().zip(records).map(|((_, diff_id), bytes)| decode(&bytes?, diff_id)).collect();
    let hits = slots.iter().filter(|s| s.is_some()).count();
    let missing: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_none()).collect();
    let read = read_layers(image, &pairs, &missing)?;
    for (i, data) in missing.iter().zip(read) {
        if write {
            put(backend, &pairs[*i].0.digest, &data);
        }
        slots[*i] = Some(data);
    }
    let stats = CacheStats { hits, misses: missing.len() };
    Ok((slots.into_iter().flatten().collect(), stats))
}

/// Read the layers at `which` (positions in `pairs`), on up to one thread per core,
/// each taking the next layer not yet taken; in the order of `which`.
fn read_layers(image: &Image, pairs: &[(&Descriptor, &Digest)], which: &[usize]) -> Result<Vec<LayerData>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(which.len());
    if threads <= 1 {
        return which.iter().map(|&i| read_layer(image, pairs[i].0, pairs[i].1)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<LayerData>>>> =
        which.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&i) = which.get(k) else { return };
                    let r = read_layer(image, pairs[i].0, pairs[i].1);
                    let failed = r.is_err();
                    if let Some(slot) = results.get(k) {
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                    if failed {
                        // Let the other threads stop at their next layer.
                        next.store(which.len(), std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(which.len());
    for r in results {
        match r.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(r) => out.push(r?),
            // Not read: an earlier failure stopped the threads (and is returned first,
            // as layers are taken in order).
            None => break,
        }
    }
    Ok(out)
}

/// Read one layer's blob once: its index and the database files it holds, its
/// `diff_id` checked.
fn read_layer(image: &Image, desc: &Descriptor, diff_id: &Digest) -> Result<LayerData> {
    let blob = image.store().backend().open_descriptor(desc).map_err(strata_image::Error::from)?;
    let src = LayerSource::from_descriptor(desc, Some(diff_id.clone()), BufReader::with_capacity(1 << 16, blob));
    let mut keep = |path: &[u8], _size: u64| kept(path);
    let read = LayerIndex::read(src, &Limits::default(), MAX_CACHED_FILE, &mut keep)?;
    Ok(LayerData { index: read.index, files: read.files.into_iter().collect() })
}

/// Whether a record keeps the content of the file named `path` in a layer's tar.
fn kept(path: &[u8]) -> bool {
    strata_layer::path::normalized(path).ok().is_some_and(|p| std::str::from_utf8(&p).is_ok_and(catalog::wanted))
}

/// Write the record of the layer blob `layer`.
fn put(backend: &dyn Backend, layer: &Digest, data: &LayerData) {
    let bytes = encode(data);
    if bytes.len() as u64 <= MAX_SCAN_RECORD_SIZE {
        // A cache that cannot be written costs the next scan time, not this one its
        // result.
        let _ = backend.update_record(RecordKind::Scan, layer, &mut |_| Ok(Some(bytes.clone())));
    }
}

/// The scan cache as a store's [`LayerIndexer`]: set on a store
/// ([`Store::with_indexer`](strata_image::Store::with_indexer)), it writes the scan
/// record of each layer the store takes in (`load`, `pull`, `commit`) from the read the
/// store makes of it, so that the first scan after them reads no layer blob.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanIndexer;

impl LayerIndexer for ScanIndexer {
    fn wants(&self, store: &Store, layer: &Digest) -> bool {
        !matches!(store.backend().record(RecordKind::Scan, layer), Ok(Some(_)))
    }

    fn keep(&self, path: &[u8], _size: u64) -> bool {
        kept(path)
    }

    fn max_file(&self) -> u64 {
        MAX_CACHED_FILE
    }

    fn indexed(&self, store: &Store, layer: &Descriptor, read: IndexedLayer) {
        put(store.backend(), &layer.digest, &LayerData { index: read.index, files: read.files.into_iter().collect() });
    }
}

/// The record of a layer.
pub(crate) fn encode(data: &LayerData) -> Vec<u8> {
    encode_with(data, MAX_SCAN_RECORD_SIZE)
}

/// [`encode`], the index's table left out when the record would be over `limit` with it.
fn encode_with(data: &LayerData, limit: u64) -> Vec<u8> {
    let index = data.index.to_bytes();
    let mut table = IndexRef::from_bytes(&index).map(|r| r.table()).unwrap_or_default();
    let mut files: Vec<(&u64, &Vec<u8>)> = data.files.iter().collect();
    files.sort();
    // A layer so big that its table would take the record over the limit keeps a record
    // without it (its index is decoded when read) rather than none.
    let contents: usize = files.iter().map(|f| f.1.len() + 16).sum();
    if (index.len() + table.len() + contents + data.index.len() * 8 + 64) as u64 > limit {
        table = Vec::new();
    }
    let mut out =
        Vec::with_capacity(index.len() + table.len() + files.iter().map(|f| f.1.len() + 16).sum::<usize>() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for part in [&index, &table] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&(files.len() as u64).to_le_bytes());
    for (ordinal, bytes) in files {
        out.extend_from_slice(&ordinal.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let wanted: Vec<u64> = data.index.entries().filter(|e| kept(e.path)).map(|e| e.ordinal).collect();
    out.extend_from_slice(&(wanted.len() as u64).to_le_bytes());
    for ordinal in wanted {
        out.extend_from_slice(&ordinal.to_le_bytes());
    }
    seal(&mut out);
    out
}

/// End a record with its checksum: the crc32 of all before, u32. A record is a cache
/// of what its blob says, named by the blob's digest: the checksum finds damage (a torn
/// or truncated file, a flipped bit), which a CRC does as well as a cryptographic hash
/// at a tenth of the cost; whoever can write the record could write any hash with it.
pub(crate) fn seal(out: &mut Vec<u8>) {
    let sum = libdeflater::crc32(out);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// The body of a record ended by [`seal`], when its checksum is right.
pub(crate) fn unseal(bytes: &[u8]) -> Option<&[u8]> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    (u32::from_le_bytes(sum.try_into().ok()?) == libdeflater::crc32(body)).then_some(body)
}

/// A layer's record read in place ([`decode_ref`]).
pub(crate) struct RecordRef<'a> {
    /// The layer's index.
    pub(crate) index: IndexRef<'a>,
    /// Its serialised form.
    pub(crate) index_bytes: &'a [u8],
    /// The content of the files kept, by entry ordinal.
    pub(crate) files: HashMap<u64, &'a [u8]>,
    /// The entries whose names the catalogers read ([`catalog::wanted`]), kept or not.
    pub(crate) wanted: Vec<u64>,
}

/// A record's layer, when every check passes: its checksum and version, its index, its
/// `diff_id` equal to `diff_id`, and each file a regular, not sparse entry of the index
/// with the same size.
pub(crate) fn decode(bytes: &[u8], diff_id: &Digest) -> Option<LayerData> {
    let r = decode_ref(bytes, diff_id)?;
    let index = LayerIndex::from_bytes(r.index_bytes).ok()?;
    Some(LayerData { index, files: r.files.into_iter().map(|(o, b)| (o, b.to_vec())).collect() })
}

/// [`decode`], borrowing the index and the files from `bytes`.
pub(crate) fn decode_ref<'a>(bytes: &'a [u8], diff_id: &Digest) -> Option<RecordRef<'a>> {
    decode_body(unseal(bytes)?, diff_id)
}

/// A record's body (its checksum cut off), decoded and checked as [`decode_ref`] says.
fn decode_body<'a>(body: &'a [u8], diff_id: &Digest) -> Option<RecordRef<'a>> {
    let mut c = body;
    if take(&mut c, MAGIC.len())? != MAGIC || u32::from_le_bytes(take(&mut c, 4)?.try_into().ok()?) != VERSION {
        return None;
    }
    let n = usize::try_from(u64_of(&mut c)?).ok()?;
    let index_bytes = take(&mut c, n)?;
    let n = usize::try_from(u64_of(&mut c)?).ok()?;
    let table = take(&mut c, n)?;
    // The record's checksum (checked before this) covers the index and its table:
    // theirs are not checked again.
    let index = if table.is_empty() {
        IndexRef::from_bytes(index_bytes)
    } else {
        IndexRef::with_table_unchecked(index_bytes, table)
    };
    let index = index.ok()?;
    if index.diff_id() != diff_id {
        return None;
    }
    let count = u64_of(&mut c)?;
    let mut files = HashMap::new();
    for _ in 0..count {
        let ordinal = u64_of(&mut c)?;
        let len = u64_of(&mut c)?;
        let e = index.entry(ordinal)?;
        if e.kind != EntryKind::File || e.sparse || e.size != len {
            return None;
        }
        let content = take(&mut c, usize::try_from(len).ok()?)?;
        if files.insert(ordinal, content).is_some() {
            return None;
        }
    }
    let count = usize::try_from(u64_of(&mut c)?).ok()?;
    if count > c.len() / 8 {
        return None;
    }
    let mut wanted = Vec::with_capacity(count);
    for _ in 0..count {
        let ordinal = u64_of(&mut c)?;
        index.entry(ordinal)?;
        wanted.push(ordinal);
    }
    c.is_empty().then_some(RecordRef { index, index_bytes, files, wanted })
}

pub(crate) fn take<'a>(c: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if c.len() < n {
        return None;
    }
    let (head, rest) = c.split_at(n);
    *c = rest;
    Some(head)
}

pub(crate) fn u64_of(c: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(c, 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_layer::{LayerBuilder, WriteOptions};

    #[test]
    fn a_record_without_its_table_reads_the_same() {
        let mut b = LayerBuilder::new();
        b.file("var/lib/dpkg/status", b"Package: a\nVersion: 1\n".to_vec());
        b.file("usr/bin/a", b"a".to_vec());
        b.symlink("bin", "usr/bin");
        let (info, blob) = b.write(Vec::new(), &WriteOptions::default()).unwrap();
        let src = LayerSource::new("layer", &blob[..]).diff_id(info.diff_id.clone());
        let read = LayerIndex::read(src, &Limits::default(), MAX_CACHED_FILE, &mut |p, _| kept(p)).unwrap();
        let data = LayerData { index: read.index, files: read.files.into_iter().collect() };
        let with = encode(&data);
        let without = encode_with(&data, 0);
        assert!(without.len() < with.len(), "the table is left out under the limit");
        let (a, b) = (decode_ref(&with, &info.diff_id).unwrap(), decode_ref(&without, &info.diff_id).unwrap());
        assert_eq!(a.index.entries().collect::<Vec<_>>(), b.index.entries().collect::<Vec<_>>());
        assert_eq!(b.wanted.len(), 1, "the status file is the one database");
        assert_eq!((a.files, a.wanted), (b.files, b.wanted));
    }
}
