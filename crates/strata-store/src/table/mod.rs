//! The index table: a compact copy of what `index.json` lists, kept beside it in
//! `.strata/index.table`, so that looking up a ref or changing one reads only what it
//! needs instead of parsing (and holding) the whole index.
//!
//! `index.json` stays the real index, the one umoci, skopeo and oci-image-tool read; the
//! table is a cache of it and never the other way round:
//!
//! - It is keyed by what `stat` says of the `index.json` it describes (device, inode,
//!   size, mtime and ctime, to the nanosecond). A table whose key is not that of the
//!   current `index.json` is stale and is rebuilt from `index.json`, so another tool
//!   editing the index (in place or by renaming a new file over it) is seen at once.
//! - A change within one tick of the file-timestamp clock leaves mtime and ctime as they
//!   were. strata's own writers therefore return only once that clock has moved past
//!   their rename's ctime (a file they touch then gets a later ctime), and a reader stores a table it built only when the index it read was older
//!   than a tick: any later edit, in place and of the same size, moves the ctime (which
//!   no tool can set back).
//! - Each entry holds its byte range in `index.json`: a change rewrites `index.json` by
//!   copying the unchanged ranges (in the kernel) around the entries it removes or adds,
//!   and descriptors with more than a media type, digest, size and ref name are read
//!   from their range when needed.
//! - It also says which file the spare is (`.strata/index.spare`, the `index.json` the
//!   change before replaced) and how many first bytes it shares with the `index.json`
//!   the table describes: the next change writes over the spare from there on.
//! - The file ends with a checksum of its bytes; a table that does not check out, or
//!   whose ranges do not fit the index, is ignored and rebuilt.
//! - It is read in place: fixed-size entry records, the ref names in one section and
//!   the named entries' positions sorted by name (see [`Table`]), so that a lookup by
//!   name is a binary search and one by part of a name a single search of the names,
//!   with no copy of the entries made.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use strata_spec::{ANNOTATION_REF_NAME, Descriptor, Digest, Document, Index, MediaType};

use crate::codec::{Reader, seal_in_place, unseal};

mod build;
mod splice;

/// Tables of this many bytes or more are mapped rather than read.
const MAP_FROM: u64 = 1 << 20;

use crate::file_bytes::FileBytes as Bytes;

pub(crate) use splice::{NewEntry, is_simple};

/// A JSON error of `index.json`.
fn json_err(source: serde_json::Error) -> strata_spec::Error {
    strata_spec::Error::Json { document: Document::Index, source }
}

/// The table's name in `.strata/`.
pub(crate) const TABLE_FILE: &str = "index.table";
/// First bytes of a table file, with its format version. Version 2 is read in place
/// (fixed-size entry records, a by-name section); version 3 adds the spare ([`Spare`]).
/// A table of another version fails this check and is rebuilt from `index.json`.
const MAGIC: &[u8] = b"strata index table 3\n";
/// Where the key starts: right after the magic.
const KEY_AT: usize = MAGIC.len();
/// Bytes of a [`FileKey`] as stored: 7 numbers.
const KEY_LEN: usize = 7 * 8;
/// Where the spare's key and its same-prefix length start: right after the key.
const SPARE_AT: usize = KEY_AT + KEY_LEN;
/// Where the `[` and `]` offsets and the entry count start: after the spare.
const COUNTS_AT: usize = SPARE_AT + KEY_LEN + 8;
/// The header: the key, the spare's key and same-prefix length, the `[` and `]` offsets
/// and the entry count, 8 bytes each.
const HEADER: usize = COUNTS_AT + 3 * 8;
/// Bytes of an entry record: its offset and length in `index.json`, its target (the
/// top bit: [`SIMPLE`]), its name's start and length in the names section; `u32` each
/// (`index.json` is at most 256 MiB: `MAX_INDEX_SIZE` in `oci_dir.rs`).
const RECORD: usize = 20;
/// Target bit of an entry that holds no more than its target and ref name.
const SIMPLE: u32 = 1 << 31;
/// An entry without a ref name has this name length.
const NO_NAME: u32 = u32::MAX;

/// What `stat` says of one version of `index.json`: any write, in place or by rename,
/// changes it (up to the tick of the file-timestamp clock; see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
    pub(crate) size: u64,
    mtime: (i64, i64),
    pub(crate) ctime: (i64, i64),
}

impl FileKey {
    pub(crate) fn of(md: &Metadata) -> FileKey {
        FileKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }

    /// A key with only a size, for a table whose file is yet to be written.
    pub(crate) const fn of_size(size: u64) -> FileKey {
        FileKey { dev: 0, ino: 0, size, mtime: (0, 0), ctime: (0, 0) }
    }

    /// The ctime as a time, for the one-tick rule.
    pub(crate) fn changed(&self) -> std::time::SystemTime {
        let (s, ns) = self.ctime;
        let base = std::time::UNIX_EPOCH;
        let ns = u32::try_from(ns).unwrap_or(0);
        match u64::try_from(s) {
            Ok(s) => base + std::time::Duration::new(s, ns),
            // Before 1970: long settled.
            Err(_) => base,
        }
    }

    /// Whether `other` is the same file with the same bytes as far as `stat` tells
    /// (everything but the ctime, which a new name moves).
    pub(crate) fn same_content(&self, other: &FileKey) -> bool {
        (self.dev, self.ino, self.size, self.mtime) == (other.dev, other.ino, other.size, other.mtime)
    }

    /// A key as [`FileKey::put`] stored it.
    fn take(r: &mut Reader<'_>) -> Option<FileKey> {
        Some(FileKey {
            dev: r.u64()?,
            ino: r.u64()?,
            size: r.u64()?,
            mtime: (r.i64()?, r.i64()?),
            ctime: (r.i64()?, r.i64()?),
        })
    }

    fn put(&self, o: &mut [u8]) {
        let words = [
            self.dev,
            self.ino,
            self.size,
            self.mtime.0 as u64,
            self.mtime.1 as u64,
            self.ctime.0 as u64,
            self.ctime.1 as u64,
        ];
        for (k, w) in words.iter().enumerate() {
            o[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
    }
}

/// What a table knows of the spare: a file holding an earlier version of `index.json`
/// (the one before the version the table describes), kept so that the next change
/// writes over its pages instead of filling a new file (see `oci_dir/spare.rs`).
/// Its first `same` bytes are those of the `index.json` the table describes, as long as
/// the spare is still the file `key` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spare {
    pub(crate) key: FileKey,
    pub(crate) same: u64,
}

impl Spare {
    /// No spare known.
    pub(crate) const NONE: Spare = Spare { key: FileKey::of_size(0), same: 0 };
}

/// One entry record, decoded.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Byte range of the entry's JSON object in `index.json`.
    off: u32,
    len: u32,
    /// Its media type, digest and size: an index into [`Table::targets`].
    target: u32,
    /// Whether media type, digest, size and the ref name are all the entry has (then its
    /// descriptor is built from the table alone).
    simple: bool,
    /// Its ref name: a range of the names section (`len` [`NO_NAME`] for none; then
    /// `start` is where the next name starts, so starts never decrease).
    name_start: u32,
    name_len: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn entry_at(b: &[u8], at: usize) -> Entry {
    let t = u32_at(b, at + 8);
    Entry {
        off: u32_at(b, at),
        len: u32_at(b, at + 4),
        target: t & !SIMPLE,
        simple: t & SIMPLE != 0,
        name_start: u32_at(b, at + 12),
        name_len: u32_at(b, at + 16),
    }
}

/// What a table says of one `index.json`, read in place from the table file's bytes:
///
/// ```text
/// magic, key (dev, ino, size, mtime, ctime), the spare's key and same-prefix length,
/// `[` and `]` offsets, entry count n
/// n entry records (RECORD bytes each, in index order)
/// names: their length, then the ref names of the entries, in index order
/// by name: a count, then the positions of the named entries sorted by name, then position
/// targets: a count, then each distinct (media type, digest, size)
/// checksum
/// ```
///
/// Nothing is copied out of the bytes but the few targets: a lookup reads the file and
/// checks it, and a change writes a new one.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    key: FileKey,
    spare: Spare,
    /// Offsets of the `[` and `]` of the `manifests` array.
    open: u64,
    close: u64,
    n: usize,
    /// Distinct (media type, digest, size) of the entries.
    targets: Vec<(MediaType, Digest, u64)>,
    /// The table file, checksum included.
    bytes: Bytes,
    /// Where the names section's bytes start, and its length.
    names_at: usize,
    names_len: usize,
    /// Where the by-name positions start, and how many there are.
    by_name_at: usize,
    by_name_n: usize,
}

/// # Reading
impl Table {
    /// What `stat` said of the `index.json` this table describes.
    pub(crate) fn key(&self) -> FileKey {
        self.key
    }

    /// Key the table by `key` (the `index.json` just written, which it describes), with
    /// what is known of the spare.
    pub(crate) fn set_keys(&mut self, key: FileKey, spare: Spare) {
        self.key = key;
        self.spare = spare;
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        key.put(&mut bytes[KEY_AT..SPARE_AT]);
        spare.key.put(&mut bytes[SPARE_AT..SPARE_AT + KEY_LEN]);
        bytes[SPARE_AT + KEY_LEN..COUNTS_AT].copy_from_slice(&spare.same.to_le_bytes());
        bytes.truncate(bytes.len() - 8);
        seal_in_place(&mut bytes);
        self.bytes = Bytes::from(bytes);
    }

    /// Where the keys are in the table's bytes ([`Table::encode`]).
    pub(crate) fn key_range(&self) -> std::ops::Range<usize> {
        KEY_AT..COUNTS_AT
    }

    /// How many first bytes the spare whose key is `spare` has in common with the
    /// `index.json` this table describes: none unless it is the spare the table knows.
    pub(crate) fn spare_same(&self, spare: &FileKey) -> u64 {
        if self.spare.key == *spare && self.spare.key.ino != 0 { self.spare.same } else { 0 }
    }

    /// How many entries the index has.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    fn entry(&self, i: usize) -> Entry {
        entry_at(&self.bytes, HEADER + i * RECORD)
    }

    /// How many distinct targets (media type, digest, size) the entries have.
    pub(crate) fn targets(&self) -> usize {
        self.targets.len()
    }

    /// The target of entry `i`: below [`Table::targets`].
    pub(crate) fn target(&self, i: usize) -> usize {
        self.entry(i).target as usize
    }

    fn name_bytes(&self, i: usize) -> Option<&[u8]> {
        let e = self.entry(i);
        if e.name_len == NO_NAME {
            return None;
        }
        let start = self.names_at + e.name_start as usize;
        self.bytes.get(start..start + e.name_len as usize)
    }

    /// The ref name of entry `i` (`None` too for a name that is not UTF-8, which only
    /// a damaged table has: a table is built from names that are).
    pub(crate) fn name(&self, i: usize) -> Option<&str> {
        self.name_bytes(i).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Whether entry `i` has a ref name.
    pub(crate) fn has_name(&self, i: usize) -> bool {
        self.entry(i).name_len != NO_NAME
    }

    /// The entries named `name`, in index order: a binary search of the by-name section.
    pub(crate) fn named(&self, name: &str) -> Vec<usize> {
        let want = Some(name.as_bytes());
        let pos = |j: usize| u32_at(&self.bytes, self.by_name_at + j * 4) as usize;
        let (mut lo, mut hi) = (0, self.by_name_n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.name_bytes(pos(mid)) < want {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.by_name_n).map(pos).take_while(|&p| self.name_bytes(p) == want).collect()
    }

    /// The entries whose ref name holds `part`, in index order: one search of the names
    /// section, each hit mapped to its entry by a binary search of the name starts.
    pub(crate) fn named_with(&self, part: &str) -> Vec<usize> {
        if part.is_empty() {
            return (0..self.n).filter(|&i| self.has_name(i)).collect();
        }
        let names = &self.bytes[self.names_at..self.names_at + self.names_len];
        let finder = memchr::memmem::Finder::new(part.as_bytes());
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(hit) = finder.find(&names[from..]).map(|h| h + from) {
            // The last entry whose name starts at or before the hit: if any name holds
            // it, that one (names are in index order; absent ones take no room).
            let i = self.partition_point(|e| e.name_start as usize <= hit).saturating_sub(1);
            let e = self.entry(i);
            let end = e.name_start as usize + e.name_len as usize;
            if e.name_len != NO_NAME && hit + part.len() <= end {
                out.push(i);
                // The rest of this name need not be searched.
                from = end;
            } else {
                // Across two names: no match.
                from = hit + 1;
            }
        }
        out
    }

    /// The number of leading entries for which `pred` holds (it must hold for a prefix).
    fn partition_point(&self, pred: impl Fn(&Entry) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self.entry(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Whether entry `i` holds no more than its target and ref name.
    pub(crate) fn is_simple_entry(&self, i: usize) -> bool {
        self.entry(i).simple
    }

    /// Target `k` (below [`Table::targets`]) as a descriptor.
    pub(crate) fn target_descriptor(&self, k: usize) -> Descriptor {
        let (mt, digest, size) = &self.targets[k];
        Descriptor::new(mt.clone(), digest.clone(), *size)
    }

    /// The digest of target `k` (below [`Table::targets`]).
    pub(crate) fn target_digest(&self, k: usize) -> &Digest {
        &self.targets[k].1
    }

    /// The media type of target `k` (below [`Table::targets`]).
    pub(crate) fn target_media_type(&self, k: usize) -> &MediaType {
        &self.targets[k].0
    }

    /// The digest entry `i` points at.
    pub(crate) fn digest(&self, i: usize) -> &Digest {
        &self.targets[self.target(i)].1
    }

    /// The media type of entry `i`.
    pub(crate) fn media_type(&self, i: usize) -> &MediaType {
        &self.targets[self.target(i)].0
    }

    /// The descriptor of entry `i`; `index` is the `index.json` the table describes,
    /// read only for entries with more than the table holds.
    pub(crate) fn descriptor(&self, i: usize, index: &File) -> io::Result<Result<Descriptor, strata_spec::Error>> {
        let e = self.entry(i);
        if e.simple {
            let (mt, digest, size) = &self.targets[e.target as usize];
            let mut d = Descriptor::new(mt.clone(), digest.clone(), *size);
            if let Some(n) = self.name(i) {
                d.set_annotation(ANNOTATION_REF_NAME, n);
            }
            return Ok(Ok(d));
        }
        let text = read_range(index, u64::from(e.off), u64::from(e.len))?;
        Ok(serde_json::from_slice(&text).map_err(json_err))
    }

    /// The index without its entries (`manifests` empty): its media type, subject,
    /// annotations.
    pub(crate) fn shell(&self, index: &File) -> io::Result<Result<Index, strata_spec::Error>> {
        let head = read_range(index, 0, self.open)?;
        let tail = read_range(index, self.close + 1, self.key.size.saturating_sub(self.close + 1))?;
        Ok(Index::from_slice(&[&head[..], b"[]", &tail[..]].concat()))
    }

    /// The whole index.
    pub(crate) fn index(&self, index: &File) -> io::Result<Result<Index, strata_spec::Error>> {
        let mut out = match self.shell(index)? {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        out.manifests.reserve(self.n);
        for i in 0..self.n {
            match self.descriptor(i, index)? {
                Ok(d) => out.manifests.push(d),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(out))
    }
}

fn read_range(file: &File, off: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(len).map_err(|_| io::Error::other("range too large"))?];
    file.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

/// # The file
impl Table {
    /// The table as stored.
    pub(crate) fn encode(&self) -> &[u8] {
        &self.bytes
    }

    /// A stored table, if `bytes` is one that checks out (checksum, bounds, entries in
    /// order inside the `manifests` array, names UTF-8, by-name positions of named
    /// entries). The bytes become the table: nothing is copied out of them.
    fn decode(bytes: impl Into<Bytes>) -> Option<Table> {
        let bytes = bytes.into();
        unseal(MAGIC, &bytes)?;
        let end = bytes.len() - 8;
        let mut r = Reader::new(&bytes[KEY_AT..end]);
        let at = |r: &Reader<'_>| end - r.remaining();
        let key = FileKey::take(&mut r)?;
        let spare = Spare { key: FileKey::take(&mut r)?, same: r.u64()? };
        let (open, close) = (r.u64()?, r.u64()?);
        if open >= close || close >= key.size || key.size > u64::from(u32::MAX) {
            return None;
        }
        if spare.same > spare.key.size || spare.same > key.size {
            return None;
        }
        let n = usize::try_from(r.u64()?).ok()?;
        let records = r.take(n.checked_mul(RECORD)?)?;
        let names_len = usize::try_from(r.u64()?).ok()?;
        let names_at = at(&r);
        // Each name is checked to be UTF-8 where it is read (`Table::name`).
        let names = r.take(names_len)?;
        let by_name_n = usize::try_from(r.u64()?).ok()?;
        let by_name_at = at(&r);
        let by_name = r.take(by_name_n.checked_mul(4)?)?;
        let t = usize::try_from(r.u64()?).ok()?;
        let mut targets = Vec::with_capacity(t.min(1 << 20));
        for _ in 0..t {
            let mt = MediaType::from(r.str()?);
            let d = Digest::parse(r.str()?).ok()?;
            targets.push((mt, d, r.u64()?));
        }
        if r.remaining() != 0 {
            return None;
        }
        let mut prev_end = open + 1;
        let mut prev_name = 0;
        // Which entries have a name: for the by-name check below, which then reads
        // 32 KiB at random (at 250,000 entries) instead of 5 MB of records.
        let mut named = vec![0u64; n.div_ceil(64)];
        for i in 0..n {
            let e = entry_at(records, i * RECORD);
            let (start, len) = (e.name_start as usize, e.name_len as usize);
            let name_ok = if e.name_len == NO_NAME {
                start == prev_name
            } else {
                start == prev_name && start.checked_add(len).is_some_and(|end| end <= names.len())
            };
            let end = u64::from(e.off) + u64::from(e.len);
            if u64::from(e.off) < prev_end || end > close || e.len < 2 || e.target as usize >= targets.len() || !name_ok
            {
                return None;
            }
            prev_end = end;
            prev_name = if e.name_len == NO_NAME {
                start
            } else {
                named[i / 64] |= 1 << (i % 64);
                start + len
            };
        }
        if prev_name != names_len {
            return None;
        }
        for j in 0..by_name_n {
            let p = u32_at(by_name, j * 4) as usize;
            if p >= n || named[p / 64] & (1 << (p % 64)) == 0 {
                return None;
            }
        }
        Some(Table { key, spare, open, close, n, targets, bytes, names_at, names_len, by_name_at, by_name_n })
    }

    /// Read a stored table from `file` (a big one is mapped: see `file_bytes.rs`).
    pub(crate) fn read(file: &File) -> io::Result<Option<Table>> {
        Ok(Table::decode(Bytes::of(file, file.metadata()?.len(), MAP_FROM)?))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;
    use crate::codec::seal;

    fn key(size: u64) -> FileKey {
        FileKey { dev: 1, ino: 2, size, mtime: (3, 4), ctime: (5, 6) }
    }

    #[test]
    fn encode_decode_round_trip_and_damage_is_refused() {
        let json = br#"{"manifests":[{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"annotations":{"org.opencontainers.image.ref.name":"a"}},{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"platform":{"os":"linux","architecture":"amd64"}}],"schemaVersion":2}"#;
        let t = Table::build(json, key(json.len() as u64)).expect("builds");
        assert_eq!(t.len(), 2);
        assert_eq!(t.name(0), Some("a"));
        assert_eq!(t.name(1), None);
        assert!(t.is_simple_entry(0) && !t.is_simple_entry(1));
        let bytes = t.encode().to_vec();
        let back = Table::decode(bytes.clone()).expect("decodes");
        assert_eq!(back.encode(), bytes);
        for i in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Table::decode(bad).is_none(), "flipped byte {i}");
        }
        assert!(Table::decode(bytes[..bytes.len() - 3].to_vec()).is_none());
    }

    /// A small deterministic generator (tests only).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    /// Entry `i` of the generated indexes: names of every kind (none, empty, shared,
    /// non-ASCII, many per repository), some entries with more than a target and name.
    fn entry(i: usize) -> Descriptor {
        let mut d = Descriptor::new(MediaType::OciManifest, Digest::sha256_of(&[(i % 5) as u8]), 2 + (i % 3) as u64);
        let name = match i % 9 {
            0 => None,
            1 => Some(String::new()),
            2 => Some("dup".to_owned()),
            3 => Some(format!("\u{e9}{}\u{fc}", i % 4)),
            4 => Some(format!("reg.example:5000/repo{}/x:t{i}", i % 13)),
            _ => Some(format!("r{}:t{}", i % 11, i % 17)),
        };
        if let Some(n) = name {
            d.set_annotation(ANNOTATION_REF_NAME, &n);
        }
        if i % 10 == 7 {
            d.set_annotation("org.example.note", "more");
        }
        d
    }

    fn index_of(manifests: &[Descriptor]) -> Vec<u8> {
        let mut index = Index::new(Some(MediaType::OciIndex));
        index.manifests = manifests.to_vec();
        index.to_canonical_json()
    }

    fn names(t: &Table) -> Vec<Option<String>> {
        (0..t.len()).map(|i| t.name(i).map(str::to_owned)).collect()
    }

    /// A table whose bytes were changed and sealed again (its checksum is no secret: any
    /// local writer can make one that checks out) is refused or, where the changed
    /// bytes still fit the bounds `decode` checks, answers every question without a
    /// panic: the table is read from a file under the layout, which is input.
    #[test]
    fn forged_tables_are_refused_or_answer_without_panics() {
        let manifests: Vec<Descriptor> = (0..60).map(entry).collect();
        let json = index_of(&manifests);
        let built = Table::build(&json, key(json.len() as u64)).expect("builds");
        let good = built.encode().to_vec();
        let body = good.len() - 8;
        let mut rng = Lcg(0x5eed);
        let (mut refused, mut kept) = (0, 0);
        for round in 0..4000 {
            let mut bytes = good[..body].to_vec();
            // One to four bytes anywhere after the magic, to any value; every tenth
            // round a field's high byte, so that counts and offsets go out of range.
            for _ in 0..=rng.below(4) {
                let at = MAGIC.len() + rng.below(body - MAGIC.len());
                bytes[at] = if round % 10 == 0 { 0xff } else { rng.below(256) as u8 };
            }
            seal_in_place(&mut bytes);
            let Some(t) = Table::decode(bytes) else {
                refused += 1;
                continue;
            };
            kept += 1;
            for i in 0..t.len() {
                let _ = (t.name(i), t.has_name(i), t.is_simple_entry(i), t.digest(i), t.media_type(i));
                let k = t.target(i);
                let _ = (t.target_digest(k), t.target_media_type(k), t.target_descriptor(k));
                if let Some(n) = t.name(i) {
                    let _ = (t.named(n), t.named_with(n));
                }
            }
            let _ = (t.named("dup"), t.named_with("repo"), t.named_with(""), t.named("none-such"));
        }
        // Both kinds happened: the test saw forgeries decode checks refuse and ones
        // that pass them (a flipped byte inside a name or a digest's hex).
        assert!(refused > 0 && kept > 0, "refused {refused}, kept {kept}");
    }

    /// Lookups by whole name (binary search) and by part of a name (one search of the
    /// names) find exactly the entries a scan of every name finds, in index order; a
    /// part that spans two names finds neither.
    #[test]
    fn lookups_answer_as_a_scan_of_every_name() {
        let manifests: Vec<Descriptor> = (0..3000).map(entry).collect();
        let json = index_of(&manifests);
        let built = Table::build(&json, key(json.len() as u64)).expect("builds");
        let read = Table::decode(built.encode().to_vec()).expect("decodes");
        for t in [&built, &read] {
            let all = names(t);
            assert_eq!(all.len(), 3000);
            let mut wanted: Vec<String> = all.iter().flatten().cloned().collect();
            wanted.extend(["absent".to_owned(), "r1".to_owned(), "dup2".to_owned(), "\u{e9}".to_owned()]);
            for name in &wanted {
                let scan: Vec<usize> = (0..all.len()).filter(|&i| all[i].as_deref() == Some(name.as_str())).collect();
                assert_eq!(t.named(name), scan, "named {name:?}");
            }
            // Parts, and the end of one name with the start of the next.
            let mut parts: Vec<String> =
                ["", "r1", "t1", ":t", "\u{e9}", "\u{fc}", "dup", "x:t4", "zz", "5000/", "1:t1"]
                    .map(str::to_owned)
                    .to_vec();
            for i in (0..all.len() - 1).step_by(97) {
                if let (Some(a), Some(b)) = (&all[i], &all[i + 1]) {
                    let tail: String = a.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
                    parts.push(format!("{tail}{}", b.chars().take(2).collect::<String>()));
                }
            }
            for part in &parts {
                let scan: Vec<usize> =
                    (0..all.len()).filter(|&i| all[i].as_deref().is_some_and(|n| n.contains(part.as_str()))).collect();
                assert_eq!(t.named_with(part), scan, "named_with {part:?}");
            }
        }
    }

    /// Random removals and insertions through `splice` give the index the same edits
    /// of the whole model give, and a table byte for byte the one a fresh build of the
    /// new `index.json` gives.
    #[test]
    fn splices_give_the_table_a_fresh_build_gives() {
        let mut model: Vec<Descriptor> = (0..400).map(entry).collect();
        let mut file = tempfile::tempfile().unwrap();
        let json = index_of(&model);
        file.write_all(&json).unwrap();
        let mut table = Table::build(&json, key(json.len() as u64)).expect("builds");
        let mut rng = Lcg(17);
        for step in 0..60 {
            // Remove the entries of a name (or none), insert up to three new ones.
            let remove = match rng.below(3) {
                0 => Vec::new(),
                _ => table.named(table.name(rng.below(table.len())).unwrap_or("dup")),
            };
            let at = rng.below(table.len() + 1);
            // Some of them point at content no entry had (a new target: the table's
            // targets are numbered again in order of first use, as a build numbers them).
            let insert: Vec<NewEntry> = (0..rng.below(4))
                .map(|k| {
                    let mut desc = entry(1000 + step * 7 + k);
                    if rng.below(3) == 0 {
                        desc.digest = Digest::sha256_of(format!("new {step} {k}").as_bytes());
                    }
                    NewEntry { desc }
                })
                .collect();
            let mut out = tempfile::tempfile().unwrap();
            let plan = table.plan_splice(&remove, at, &insert).unwrap();
            let mut spliced = table.splice(&plan, &insert).unwrap();
            plan.write_from(&file, &mut out, 0).unwrap();
            // The model: the same edit of the whole list.
            let mut next = Vec::new();
            for (i, d) in model.iter().enumerate() {
                if i == at {
                    next.extend(insert.iter().map(|e| e.desc.clone()));
                }
                if !remove.contains(&i) {
                    next.push(d.clone());
                }
            }
            if at == model.len() {
                next.extend(insert.iter().map(|e| e.desc.clone()));
            }
            model = next;
            let mut bytes = Vec::new();
            out.seek(SeekFrom::Start(0)).unwrap();
            out.read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes, index_of(&model), "step {step}: index.json");
            let k = key(bytes.len() as u64);
            spliced.set_keys(k, Spare::NONE);
            let fresh = Table::build(&bytes, k).expect("builds");
            assert_eq!(names(&spliced), names(&fresh), "step {step}");
            assert_eq!(spliced.encode(), fresh.encode(), "step {step}: table bytes");
            assert_eq!(spliced.len(), model.len());
            for (i, d) in model.iter().enumerate() {
                assert_eq!(&spliced.descriptor(i, &out).unwrap().unwrap(), d, "step {step}, entry {i}");
            }
            (file, table) = (out, spliced);
        }
    }

    /// A table big enough to be mapped reads back as it was written (and so does a
    /// small one, read); a byte damaged anywhere, or the file cut short or grown, is
    /// refused.
    #[test]
    fn a_big_table_reads_back_and_damage_in_either_half_is_refused() {
        let json = index_of(&(0..40_000).map(entry).collect::<Vec<_>>());
        let t = Table::build(&json, key(json.len() as u64)).expect("builds");
        let bytes = t.encode().to_vec();
        assert!(bytes.len() >= 1 << 20, "{} bytes: not mapped", bytes.len());
        let read = |b: &[u8]| {
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(b).unwrap();
            Table::read(&f).unwrap()
        };
        assert_eq!(read(&bytes).expect("reads").encode(), &bytes[..]);
        for at in [100, bytes.len() / 2 - 1, bytes.len() / 2 + 1, bytes.len() - 20] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(read(&bad).is_none(), "damage at {at} of {}", bytes.len());
        }
        assert!(read(&bytes[..bytes.len() - 1]).is_none());
        assert!(read(&[&bytes[..], b"x"].concat()).is_none());
        let little = index_of(&(0..50).map(entry).collect::<Vec<_>>());
        let t = Table::build(&little, key(little.len() as u64)).expect("builds");
        let bytes = t.encode().to_vec();
        assert_eq!(read(&bytes).expect("reads").encode(), &bytes[..]);
        let mut bad = bytes.clone();
        bad[bytes.len() / 2] ^= 0x40;
        assert!(read(&bad).is_none());
    }

    /// A table of the first format (an entry vector and a name copy to decode) is not
    /// read: it fails the magic check, and the store rebuilds it.
    #[test]
    fn a_version_1_table_is_not_read() {
        let json = index_of(&(0..20).map(entry).collect::<Vec<_>>());
        let t = Table::build(&json, key(json.len() as u64)).expect("builds");
        let body = &t.encode()[MAGIC.len()..t.encode().len() - 8];
        assert!(Table::decode(seal(b"strata index table 1\n", body)).is_none());
        assert!(Table::decode(seal(MAGIC, body)).is_some());
    }

    #[test]
    fn an_invalid_index_fails_as_the_full_parser_does() {
        for bad in [
            &b"{}"[..],
            b"{\"manifests\":{},\"schemaVersion\":2}",
            b"{\"manifests\":[],\"schemaVersion\":3}",
            b"{\"manifests\":[{\"size\":1}],\"schemaVersion\":2}",
        ] {
            assert!(Table::build(bad, key(bad.len() as u64)).is_err(), "{}", String::from_utf8_lossy(bad));
            assert!(Index::from_slice(bad).is_err());
        }
    }
}
