//! Building a table from the bytes of an `index.json`: the entries read with a fast
//! path (a ref name as the only annotation), the records and names written as they
//! come, targets deduplicated. [`Builder`] is shared with [`Table::splice`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::io;

use serde::Deserialize;
use serde_json::value::RawValue;
use strata_spec::{Descriptor, Digest, Document, Index, MediaType};

use super::{
    COUNTS_AT, Entry, FileKey, HEADER, KEY_AT, MAGIC, NO_NAME, RECORD, SIMPLE, SPARE_AT, Spare, Table, entry_at,
    json_err, u32_at,
};
use crate::codec::{put_str, put_u64, seal_in_place};

/// An index entry as the table's fast path reads it: exactly these fields, a ref name
/// as the only annotation, no nulls.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Lite<'a> {
    #[serde(rename = "mediaType")]
    media_type: MediaType,
    digest: Digest,
    size: u64,
    #[serde(borrow)]
    annotations: Option<LiteAnnotations<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LiteAnnotations<'a> {
    #[serde(rename = "org.opencontainers.image.ref.name", borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
pub(super) struct Top<'a> {
    #[serde(borrow)]
    manifests: &'a RawValue,
}

/// Where `part` (a slice of `whole`) starts in it.
pub(super) fn offset_in(whole: &[u8], part: &str) -> u64 {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize) as u64
}

/// An offset or length in `index.json` as a record holds it.
pub(super) fn small(v: u64) -> io::Result<u32> {
    u32::try_from(v).map_err(|_| io::Error::other("index.json over 4 GiB"))
}

/// Table-building state: the file's bytes as they grow (the records' room made
/// up front, names appended after it), targets deduplicated as they come.
pub(super) struct Builder {
    pub(super) bytes: Vec<u8>,
    pub(super) n: usize,
    /// Records written so far.
    pub(super) next: usize,
    /// Where the names start in `bytes`.
    pub(super) names_at: usize,
    pub(super) targets: Vec<(MediaType, Digest, u64)>,
    seen: HashMap<(String, String, u64), u32>,
}

impl Builder {
    /// A builder for `n` entries with about `names` bytes of names.
    pub(super) fn new(n: usize, names: usize) -> Builder {
        let mut bytes = Vec::with_capacity(HEADER + n * (RECORD + 4) + names + 64);
        bytes.extend_from_slice(MAGIC);
        bytes.resize(HEADER + n * RECORD + 8, 0);
        let names_at = bytes.len();
        Builder { bytes, n, next: 0, names_at, targets: Vec::new(), seen: HashMap::new() }
    }

    pub(super) fn target(&mut self, media_type: &MediaType, digest: &Digest, size: u64) -> u32 {
        let key = (media_type.to_string(), digest.to_string(), size);
        let next = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
        *self.seen.entry(key).or_insert_with(|| {
            self.targets.push((media_type.clone(), digest.clone(), size));
            next
        })
    }

    /// Append entry `self.next`; returns its position.
    pub(super) fn push(
        &mut self,
        off: u64,
        len: u64,
        target: u32,
        name: Option<&[u8]>,
        simple: bool,
    ) -> io::Result<usize> {
        if self.next >= self.n {
            return Err(io::Error::other("more index entries than counted"));
        }
        let name_start = small((self.bytes.len() - self.names_at) as u64)?;
        let name_len = match name {
            Some(n) => {
                self.bytes.extend_from_slice(n);
                small(n.len() as u64)
                    .and_then(|l| if l == NO_NAME { Err(io::Error::other("name too long")) } else { Ok(l) })?
            }
            None => NO_NAME,
        };
        self.put_record(Entry { off: small(off)?, len: small(len)?, target, simple, name_start, name_len })?;
        Ok(self.next - 1)
    }

    /// Append entry `self.next` as `e` says, its name already among the names.
    pub(super) fn put_record(&mut self, e: Entry) -> io::Result<()> {
        if self.next >= self.n {
            return Err(io::Error::other("more index entries than counted"));
        }
        let t = e.target | if e.simple { SIMPLE } else { 0 };
        let at = HEADER + self.next * RECORD;
        for (k, v) in [e.off, e.len, t, e.name_start, e.name_len].into_iter().enumerate() {
            self.bytes[at + k * 4..at + k * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        self.next += 1;
        Ok(())
    }

    /// Append the records `records` (whole records, as a table holds them, their names
    /// already among the names), their offsets in `index.json` moved by `shift` and their
    /// names' starts by `name_shift`: copied as they are when both are 0 (the entries
    /// before a change).
    pub(super) fn put_records(&mut self, records: &[u8], shift: i64, name_shift: i64) -> io::Result<()> {
        let count = records.len() / RECORD;
        if self.next + count > self.n || !records.len().is_multiple_of(RECORD) {
            return Err(io::Error::other("more index entries than counted"));
        }
        let at = HEADER + self.next * RECORD;
        let out = &mut self.bytes[at..at + records.len()];
        out.copy_from_slice(records);
        if shift != 0 || name_shift != 0 {
            for r in out.chunks_exact_mut(RECORD) {
                for (field, by) in [(0, shift), (12, name_shift)] {
                    let v = small(i64::from(u32_at(r, field)).wrapping_add(by) as u64)?;
                    r[field..field + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        self.next += count;
        Ok(())
    }

    pub(super) fn entry(&self, i: usize) -> Entry {
        entry_at(&self.bytes, HEADER + i * RECORD)
    }

    /// The name of entry `i` as bytes (`None`: it has none).
    pub(super) fn name(&self, i: usize) -> Option<&[u8]> {
        let e = self.entry(i);
        (e.name_len != NO_NAME).then(|| {
            let start = self.names_at + e.name_start as usize;
            &self.bytes[start..start + e.name_len as usize]
        })
    }

    /// The named entries, sorted by name, then position.
    pub(super) fn sorted_by_name(&self) -> Vec<u32> {
        let mut out: Vec<u32> = (0..self.n).filter(|&i| self.entry(i).name_len != NO_NAME).map(|i| i as u32).collect();
        out.sort_by(|&a, &b| self.name(a as usize).cmp(&self.name(b as usize)).then(a.cmp(&b)));
        out
    }

    /// Put the named entries `new` into `by_name` (sorted by name, then position).
    pub(super) fn merge_by_name(&self, by_name: &mut Vec<u32>, new: &[usize]) {
        for &p in new {
            let Some(name) = self.name(p) else { continue };
            let at = by_name
                .partition_point(|&q| (self.name(q as usize), q as usize).cmp(&(Some(name), p)) == Ordering::Less);
            by_name.insert(at, p as u32);
        }
    }

    /// Forget the targets no entry points at any more (renumbering the others).
    pub(super) fn drop_unused_targets(&mut self) {
        let mut used = vec![u32::MAX; self.targets.len()];
        let mut kept = Vec::new();
        for i in 0..self.next {
            let t = self.entry(i).target as usize;
            if used[t] == u32::MAX {
                used[t] = kept.len() as u32;
                kept.push(t);
            }
        }
        if kept.len() == self.targets.len() && kept.iter().enumerate().all(|(k, &t)| k == t) {
            return;
        }
        for i in 0..self.next {
            let at = HEADER + i * RECORD + 8;
            let t = u32_at(&self.bytes, at);
            let new = used[(t & !SIMPLE) as usize] | (t & SIMPLE);
            self.bytes[at..at + 4].copy_from_slice(&new.to_le_bytes());
        }
        let old = std::mem::take(&mut self.targets);
        let mut old: Vec<Option<_>> = old.into_iter().map(Some).collect();
        self.targets = kept.into_iter().filter_map(|t| old[t].take()).collect();
    }

    pub(super) fn finish(mut self, key: FileKey, open: u64, close: u64, by_name: Vec<u32>) -> io::Result<Table> {
        if self.next != self.n {
            return Err(io::Error::other("fewer index entries than counted"));
        }
        let names_len = self.bytes.len() - self.names_at;
        self.bytes[self.names_at - 8..self.names_at].copy_from_slice(&(names_len as u64).to_le_bytes());
        key.put(&mut self.bytes[KEY_AT..SPARE_AT]);
        for (k, v) in [open, close, self.n as u64].into_iter().enumerate() {
            let at = COUNTS_AT + k * 8;
            self.bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        put_u64(&mut self.bytes, by_name.len() as u64);
        let by_name_at = self.bytes.len();
        for p in &by_name {
            self.bytes.extend_from_slice(&p.to_le_bytes());
        }
        put_u64(&mut self.bytes, self.targets.len() as u64);
        for (mt, d, s) in &self.targets {
            put_str(&mut self.bytes, &mt.to_string());
            put_str(&mut self.bytes, d.as_str());
            put_u64(&mut self.bytes, *s);
        }
        seal_in_place(&mut self.bytes);
        Ok(Table {
            key,
            spare: Spare::NONE,
            open,
            close,
            n: self.n,
            targets: self.targets,
            bytes: self.bytes.into(),
            names_at: self.names_at,
            names_len,
            by_name_at,
            by_name_n: by_name.len(),
        })
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
        let too_big = |e: io::Error| strata_spec::Error::Invalid { document: Document::Index, reason: e.to_string() };
        small(bytes.len() as u64).map_err(too_big)?;
        let items: Vec<&RawValue> = serde_json::from_str(array).map_err(json_err)?;
        let mut b = Builder::new(items.len(), items.len() * 24);
        for item in items {
            let text = item.get();
            let off = offset_in(bytes, text);
            let len = text.len() as u64;
            // `null` anywhere (a value, or text inside a string) takes the full parser,
            // which keeps explicit nulls apart from absent fields.
            let lite = if text.contains("null") { None } else { serde_json::from_str::<Lite<'_>>(text).ok() };
            let pushed = match lite {
                Some(l) => {
                    let target = b.target(&l.media_type, &l.digest, l.size);
                    b.push(off, len, target, l.annotations.as_ref().map(|a| a.name.as_bytes()), true)
                }
                None => {
                    let d: Descriptor = serde_json::from_str(text).map_err(json_err)?;
                    let target = b.target(&d.media_type, &d.digest, d.size);
                    b.push(off, len, target, d.ref_name().map(str::as_bytes), false)
                }
            };
            pushed.map_err(too_big)?;
        }
        let by_name = b.sorted_by_name();
        b.finish(key, open, close, by_name).map_err(too_big)
    }
}

/// `bytes` before `open` (with the `[`... not included) and from `close` on.
pub(super) fn split(bytes: &[u8], open: u64, close: u64) -> (&[u8], &[u8]) {
    let open = usize::try_from(open).unwrap_or(usize::MAX).min(bytes.len());
    let close = usize::try_from(close).unwrap_or(usize::MAX).min(bytes.len());
    (&bytes[..open], bytes.get(close + 1..).unwrap_or_default())
}
