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
//! - The file ends with a checksum of its bytes; a table that does not check out, or
//!   whose ranges do not fit the index, is ignored and rebuilt.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::codec::{Reader, put_str};
use serde::Deserialize;
use serde_json::value::RawValue;
use strata_spec::{ANNOTATION_REF_NAME, Descriptor, Digest, Document, Index, MediaType};

/// The table's name in `.strata/`.
pub(crate) const TABLE_FILE: &str = "index.table";
/// First bytes of a table file, with its format version.
const MAGIC: &[u8] = b"strata index table 1\n";
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
    pub(crate) fn of_size(size: u64) -> FileKey {
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
}

/// One entry of the index's `manifests`, in index order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// Byte range of the entry's JSON object in `index.json`.
    off: u64,
    len: u64,
    /// Its media type, digest and size: an index into [`Table::targets`].
    target: u32,
    /// Its ref name: a range of [`Table::names`] (`len` [`NO_NAME`] for none).
    name_start: u32,
    name_len: u32,
    /// Whether media type, digest, size and the ref name are all the entry has (then its
    /// descriptor is built from the table alone).
    simple: bool,
}

/// What a table says of one `index.json`.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) key: FileKey,
    /// Offsets of the `[` and `]` of the `manifests` array.
    open: u64,
    close: u64,
    /// Distinct (media type, digest, size) of the entries.
    targets: Vec<(MediaType, Digest, u64)>,
    names: String,
    entries: Vec<Entry>,
}

/// A new entry for [`Table::splice`]: its descriptor (with the ref name, if any).
pub(crate) struct NewEntry {
    pub(crate) desc: Descriptor,
}

/// An index entry as the table's fast path reads it: exactly these fields, a ref name
/// as the only annotation, no nulls.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lite<'a> {
    #[serde(rename = "mediaType")]
    media_type: MediaType,
    digest: Digest,
    size: u64,
    #[serde(borrow)]
    annotations: Option<LiteAnnotations<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiteAnnotations<'a> {
    #[serde(rename = "org.opencontainers.image.ref.name", borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    manifests: &'a RawValue,
}

fn json_err(source: serde_json::Error) -> strata_spec::Error {
    strata_spec::Error::Json { document: Document::Index, source }
}

/// Where `part` (a slice of `whole`) starts in it.
fn offset_in(whole: &[u8], part: &str) -> u64 {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize) as u64
}

/// Table-building state: targets deduplicated as they come.
#[derive(Default)]
struct Builder {
    targets: Vec<(MediaType, Digest, u64)>,
    seen: HashMap<(String, String, u64), u32>,
    names: String,
    entries: Vec<Entry>,
}

impl Builder {
    fn target(&mut self, media_type: &MediaType, digest: &Digest, size: u64) -> u32 {
        let key = (media_type.to_string(), digest.to_string(), size);
        let next = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
        *self.seen.entry(key).or_insert_with(|| {
            self.targets.push((media_type.clone(), digest.clone(), size));
            next
        })
    }

    fn push(&mut self, off: u64, len: u64, target: u32, name: Option<&str>, simple: bool) {
        let (name_start, name_len) = match name {
            Some(n) => {
                let start = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
                self.names.push_str(n);
                (start, u32::try_from(n.len()).unwrap_or(u32::MAX))
            }
            None => (0, NO_NAME),
        };
        self.entries.push(Entry { off, len, target, name_start, name_len, simple });
    }

    fn finish(self, key: FileKey, open: u64, close: u64) -> Table {
        Table { key, open, close, targets: self.targets, names: self.names, entries: self.entries }
    }
}

/// # Building
impl Table {
    /// The table of `bytes`, the content of the `index.json` that `key` describes. Fails
    /// as [`Index::from_slice`] would on an index that is not valid.
    pub(crate) fn build(bytes: &[u8], key: FileKey) -> Result<Table, strata_spec::Error> {
        let top: Top<'_> = serde_json::from_slice(bytes).map_err(json_err)?;
        let array = top.manifests.get();
        if !array.starts_with('[') {
            // Not an array: the full parser says what is wrong.
            return Err(Index::from_slice(bytes).err().unwrap_or_else(|| strata_spec::Error::Invalid {
                document: Document::Index,
                reason: "manifests is not an array".into(),
            }));
        }
        let open = offset_in(bytes, array);
        let close = open + array.len() as u64 - 1;
        // The index without its entries: checked as the full parser checks it.
        let (head, tail) = split(bytes, open, close);
        Index::from_slice(&[head, b"[]", tail].concat())?;
        let items: Vec<&RawValue> = serde_json::from_str(array).map_err(json_err)?;
        let mut b = Builder::default();
        for item in items {
            let text = item.get();
            let off = offset_in(bytes, text);
            let len = text.len() as u64;
            // `null` anywhere (a value, or text inside a string) takes the full parser,
            // which keeps explicit nulls apart from absent fields.
            let lite = if text.contains("null") { None } else { serde_json::from_str::<Lite<'_>>(text).ok() };
            match lite {
                Some(l) => {
                    let target = b.target(&l.media_type, &l.digest, l.size);
                    b.push(off, len, target, l.annotations.as_ref().map(|a| &*a.name), true);
                }
                None => {
                    let d: Descriptor = serde_json::from_str(text).map_err(json_err)?;
                    let target = b.target(&d.media_type, &d.digest, d.size);
                    b.push(off, len, target, d.ref_name(), false);
                }
            }
        }
        Ok(b.finish(key, open, close))
    }
}

/// `bytes` before `open` (with the `[`... not included) and from `close` on.
fn split(bytes: &[u8], open: u64, close: u64) -> (&[u8], &[u8]) {
    let open = usize::try_from(open).unwrap_or(usize::MAX).min(bytes.len());
    let close = usize::try_from(close).unwrap_or(usize::MAX).min(bytes.len());
    (&bytes[..open], bytes.get(close + 1..).unwrap_or_default())
}

/// # Reading
impl Table {
    /// How many entries the index has.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many distinct targets (media type, digest, size) the entries have.
    pub(crate) fn targets(&self) -> usize {
        self.targets.len()
    }

    /// The target of entry `i`: below [`Table::targets`].
    pub(crate) fn target(&self, i: usize) -> usize {
        self.entries[i].target as usize
    }

    /// The ref name of entry `i`.
    pub(crate) fn name(&self, i: usize) -> Option<&str> {
        let e = self.entries.get(i)?;
        if e.name_len == NO_NAME {
            return None;
        }
        let start = e.name_start as usize;
        self.names.get(start..start + e.name_len as usize)
    }

    /// Whether entry `i` holds no more than its target and ref name.
    pub(crate) fn is_simple_entry(&self, i: usize) -> bool {
        self.entries[i].simple
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

    /// The digest entry `i` points at.
    pub(crate) fn digest(&self, i: usize) -> &Digest {
        &self.targets[self.entries[i].target as usize].1
    }

    /// The media type of entry `i`.
    pub(crate) fn media_type(&self, i: usize) -> &MediaType {
        &self.targets[self.entries[i].target as usize].0
    }

    /// The descriptor of entry `i`; `index` is the `index.json` the table describes,
    /// read only for entries with more than the table holds.
    pub(crate) fn descriptor(&self, i: usize, index: &File) -> io::Result<Result<Descriptor, strata_spec::Error>> {
        let e = self.entries[i];
        if e.simple {
            let (mt, digest, size) = &self.targets[e.target as usize];
            let mut d = Descriptor::new(mt.clone(), digest.clone(), *size);
            if let Some(n) = self.name(i) {
                d.set_annotation(ANNOTATION_REF_NAME, n);
            }
            return Ok(Ok(d));
        }
        let text = read_range(index, e.off, e.len)?;
        Ok(serde_json::from_slice(&text).map_err(json_err))
    }

    /// The whole index.
    pub(crate) fn index(&self, index: &File) -> io::Result<Result<Index, strata_spec::Error>> {
        let head = read_range(index, 0, self.open)?;
        let tail = read_range(index, self.close + 1, self.key.size.saturating_sub(self.close + 1))?;
        let mut out = match Index::from_slice(&[&head[..], b"[]", &tail[..]].concat()) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        out.manifests.reserve(self.entries.len());
        for i in 0..self.entries.len() {
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

/// # Changing
impl Table {
    /// Write to `out` the index that `index` (the file this table describes) becomes
    /// when the entries `remove` (sorted positions) go and `insert` come in at position
    /// `at` (before the old entry `at`; the end when `at` is the number of entries):
    /// the unchanged byte ranges are copied as they are. Returns the new table, keyed
    /// by `index`'s key until the caller sets the new file's.
    pub(crate) fn splice(
        &self,
        index: &File,
        remove: &[usize],
        at: usize,
        insert: &[NewEntry],
        out: &mut File,
    ) -> io::Result<Table> {
        let mut w = Splicer { src: index, out, pending: (0, 0), out_pos: 0 };
        let mut b = Builder { targets: self.targets.clone(), ..Builder::default() };
        for (k, (mt, d, s)) in self.targets.iter().enumerate() {
            b.seen.insert((mt.to_string(), d.to_string(), *s), u32::try_from(k).unwrap_or(u32::MAX));
        }
        b.entries.reserve(self.entries.len() + insert.len());
        b.names.reserve(self.names.len());
        // The head, through `[`.
        w.old(0, self.open + 1)?;
        let mut last = Last::Head;
        let mut removed = remove.iter().copied().peekable();
        for i in 0..=self.entries.len() {
            if i == at {
                for n in insert {
                    let bytes = strata_spec::to_canonical_json(&n.desc).map_err(io::Error::other)?;
                    if last != Last::Head {
                        w.bytes(b",")?;
                    }
                    let off = w.out_pos;
                    w.bytes(&bytes)?;
                    let d = &n.desc;
                    let target = b.target(&d.media_type, &d.digest, d.size);
                    b.push(off, bytes.len() as u64, target, d.ref_name(), is_simple(d));
                    last = Last::New;
                }
            }
            if i == self.entries.len() {
                break;
            }
            if removed.peek() == Some(&i) {
                removed.next();
                continue;
            }
            let e = self.entries[i];
            let follows = match last {
                Last::Head => i == 0,
                Last::Old(j) => j + 1 == i,
                Last::New => false,
            };
            let off = if follows {
                // Right after its old neighbour (or the head): the separator comes along.
                w.extend(e.off, e.off + e.len)
            } else {
                if last != Last::Head {
                    w.bytes(b",")?;
                }
                let off = w.out_pos;
                w.old(e.off, e.off + e.len)?;
                off
            };
            b.push(off, e.len, e.target, self.name(i), e.simple);
            last = Last::Old(i);
        }
        w.flush()?;
        let close = w.out_pos;
        w.old(self.close, self.key.size)?;
        w.flush()?;
        let mut t = b.finish(self.key, self.open, close);
        t.key.size = w.out_pos;
        t.drop_unused_targets();
        Ok(t)
    }

    fn drop_unused_targets(&mut self) {
        let mut used = vec![u32::MAX; self.targets.len()];
        let mut kept = Vec::new();
        for e in &mut self.entries {
            let t = e.target as usize;
            if used[t] == u32::MAX {
                used[t] = u32::try_from(kept.len()).unwrap_or(u32::MAX);
                kept.push(self.targets[t].clone());
            }
            e.target = used[t];
        }
        self.targets = kept;
    }
}

/// What [`Table::splice`] wrote last.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Head,
    Old(usize),
    New,
}

/// Whether a descriptor is all the table holds of a simple entry.
pub(crate) fn is_simple(d: &Descriptor) -> bool {
    d.urls.is_none()
        && d.platform.is_none()
        && d.artifact_type.is_none()
        && d.data.is_none()
        && d.extra.is_empty()
        && d.nulls.is_empty()
        && d.annotations.as_ref().is_none_or(|a| a.len() == 1 && a.contains_key(ANNOTATION_REF_NAME))
}

/// Writes a file made of ranges of another file and new bytes; ranges that follow each
/// other are copied in one go (by the kernel, where it can).
struct Splicer<'a> {
    src: &'a File,
    out: &'a mut File,
    /// The source range waiting to be copied.
    pending: (u64, u64),
    /// Bytes of output so far, the pending range included.
    out_pos: u64,
}

impl Splicer<'_> {
    /// Copy `[start, end)` of the source next.
    fn old(&mut self, start: u64, end: u64) -> io::Result<()> {
        if self.pending.1 != start {
            self.flush()?;
            self.pending = (start, start);
        }
        self.pending.1 = end;
        self.out_pos += end - start;
        Ok(())
    }

    /// Copy the source on from where the pending range ends through `end` (the bytes
    /// before `start` are a separator); returns where `start` lands in the output.
    fn extend(&mut self, start: u64, end: u64) -> u64 {
        let at = self.out_pos + start.saturating_sub(self.pending.1);
        self.out_pos += end.saturating_sub(self.pending.1);
        self.pending.1 = end;
        at
    }

    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.flush()?;
        self.out.write_all(bytes)?;
        self.out_pos += bytes.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let (start, end) = self.pending;
        if end > start {
            let mut src = self.src;
            src.seek(SeekFrom::Start(start))?;
            let copied = io::copy(&mut src.take(end - start), self.out)?;
            if copied != end - start {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "index.json shrank while being copied"));
            }
        }
        self.pending = (end, end);
        Ok(())
    }
}

/// # The file
impl Table {
    /// The table as stored.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(64 + self.names.len() + self.entries.len() * 33 + self.targets.len() * 100);
        let k = &self.key;
        for v in [k.dev, k.ino, k.size] {
            o.extend_from_slice(&v.to_le_bytes());
        }
        for v in [k.mtime.0, k.mtime.1, k.ctime.0, k.ctime.1] {
            o.extend_from_slice(&v.to_le_bytes());
        }
        o.extend_from_slice(&self.open.to_le_bytes());
        o.extend_from_slice(&self.close.to_le_bytes());
        o.extend_from_slice(&(self.targets.len() as u64).to_le_bytes());
        for (mt, d, s) in &self.targets {
            put_str(&mut o, &mt.to_string());
            put_str(&mut o, d.as_str());
            o.extend_from_slice(&s.to_le_bytes());
        }
        put_str(&mut o, &self.names);
        o.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            o.extend_from_slice(&e.off.to_le_bytes());
            o.extend_from_slice(&e.len.to_le_bytes());
            o.extend_from_slice(&e.target.to_le_bytes());
            o.extend_from_slice(&e.name_start.to_le_bytes());
            o.extend_from_slice(&e.name_len.to_le_bytes());
            o.push(u8::from(e.simple));
        }
        seal(MAGIC, &o)
    }

    /// A stored table, if `bytes` is one that checks out (checksum, bounds, entries in
    /// order inside the `manifests` array).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Table> {
        let mut r = Reader::new(unseal(MAGIC, bytes)?);
        let key = FileKey {
            dev: r.u64()?,
            ino: r.u64()?,
            size: r.u64()?,
            mtime: (r.i64()?, r.i64()?),
            ctime: (r.i64()?, r.i64()?),
        };
        let (open, close) = (r.u64()?, r.u64()?);
        if open >= close || close >= key.size {
            return None;
        }
        let n = usize::try_from(r.u64()?).ok()?;
        let mut targets = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let mt = MediaType::from(r.str()?);
            let d = Digest::parse(r.str()?).ok()?;
            targets.push((mt, d, r.u64()?));
        }
        let names = r.str()?.to_owned();
        let n = usize::try_from(r.u64()?).ok()?;
        let mut entries = Vec::with_capacity(n.min(1 << 24));
        let mut prev_end = open + 1;
        for _ in 0..n {
            let e = Entry {
                off: r.u64()?,
                len: r.u64()?,
                target: r.u32()?,
                name_start: r.u32()?,
                name_len: r.u32()?,
                simple: r.take(1)?[0] == 1,
            };
            let end = e.off.checked_add(e.len)?;
            let name_ok = e.name_len == NO_NAME
                || names
                    .get(e.name_start as usize..(e.name_start as usize).checked_add(e.name_len as usize)?)
                    .is_some();
            if e.off < prev_end || end > close || e.len < 2 || e.target as usize >= targets.len() || !name_ok {
                return None;
            }
            prev_end = end;
            entries.push(e);
        }
        if r.remaining() != 0 {
            return None;
        }
        Some(Table { key, open, close, targets, names, entries })
    }

    /// Read a stored table from `file`.
    pub(crate) fn read(mut file: &File) -> io::Result<Option<Table>> {
        let len = file.metadata()?.len();
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
        file.read_to_end(&mut bytes)?;
        Ok(Table::decode(&bytes))
    }
}

/// `body` framed as a file strata keeps beside the layout: `magic`, the body, and a
/// checksum of both.
pub(crate) fn seal(magic: &[u8], body: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(magic.len() + body.len() + 8);
    o.extend_from_slice(magic);
    o.extend_from_slice(body);
    let sum = checksum(&o);
    o.extend_from_slice(&sum.to_le_bytes());
    o
}

/// The body of a file [`seal`] made with `magic`, if it checks out.
pub(crate) fn unseal<'a>(magic: &[u8], bytes: &'a [u8]) -> Option<&'a [u8]> {
    let (framed, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if checksum(framed) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    framed.strip_prefix(magic)
}

/// A 64-bit checksum of `bytes` (word at a time, multiply and rotate: it catches a
/// damaged or truncated table; it is no defence against someone forging one, who could
/// as well edit `index.json`).
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = bytes.len() as u64 ^ K;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
        h = (h.rotate_left(23) ^ w).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(23) ^ u64::from(b)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(t.entries[0].simple && !t.entries[1].simple);
        let bytes = t.encode();
        let back = Table::decode(&bytes).expect("decodes");
        assert_eq!(back.encode(), bytes);
        for i in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Table::decode(&bad).is_none(), "flipped byte {i}");
        }
        assert!(Table::decode(&bytes[..bytes.len() - 3]).is_none());
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
