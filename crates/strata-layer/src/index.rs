//! A layer's index: the headers of its tar entries (and, when asked for, the content of a
//! few of its files), kept so that the union merge can be folded again without reading
//! the layer. A scanner that keeps one beside each layer blob reads a layer once, ever.
//!
//! Serialised form (little-endian, varints LEB128, signed values zigzag-encoded):
//!
//! ```text
//! magic "STRLIDX\0" | version u32
//! compression u8 | diff_id (len, bytes) | tar size | blob size | entries
//! per entry: path (len, bytes) | kind u8 | mode | uid | gid | mtime s | mtime ns
//!            | size | declared size | dev major | dev minor | link (len, bytes)
//!            | xattrs: count, (name, value)* | sparse: 0, or 1 + count + (offset, len)*
//!            | offset of the data
//! crc32 of everything before it, u32
//! ```
//!
//! Entries are in tar order; an entry's ordinal is its position.

use std::io::Read;

use strata_spec::{Compression, Digest};

use crate::codec::{Cursor, put_bytes, put_varint, zigzag};
use crate::entry::Timestamp;
use crate::error::{Error, Result};
use crate::fold::{Capture, MergeOptions, Msg, Scanned, fold_layers, scan_with};
use crate::merged::MergedTree;
use crate::read::{EntryKind, Limits, Mtime};
use crate::source::LayerSource;
use crate::sparse::SparseMap;
use crate::union::Header;

pub(crate) const MAGIC: &[u8; 8] = b"STRLIDX\0";
pub(crate) const VERSION: u32 = 1;
/// Headers per message to the fold (as the layer scan sends them).
const BATCH: usize = 512;

fn bad(reason: String) -> Error {
    Error::InvalidIndex { reason }
}

/// The headers of one layer's tar entries, in order, with the layer's `diff_id`: what
/// the union merge needs of a layer, without its content.
#[derive(Debug, Clone)]
pub struct LayerIndex {
    headers: Vec<Header>,
    compression: Compression,
    diff_id: Digest,
    size: u64,
    compressed: u64,
}

/// One entry of a [`LayerIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexEntry<'a> {
    /// The name as stored in the tar (not normalised).
    pub path: &'a [u8],
    /// Its position in the layer's tar stream (0 for the first).
    pub ordinal: u64,
    /// Its type.
    pub kind: EntryKind,
    /// Its content size (the logical size of a sparse file).
    pub size: u64,
    /// Whether it is a sparse file.
    pub sparse: bool,
}

/// A layer read once by [`LayerIndex::read`]: its index and the content of the files
/// asked for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IndexedLayer {
    /// The layer's index.
    pub index: LayerIndex,
    /// `(ordinal, content)` of each regular file kept, in tar order.
    pub files: Vec<(u64, Vec<u8>)>,
}

impl LayerIndex {
    /// Read one layer to its end (content skipped, every byte hashed; its `diff_id`
    /// checked when `src` gives one): its index, and the content of the regular files
    /// that `keep` selects (given each file's name as stored and its size), those of
    /// at most `max_file` bytes and not sparse.
    pub fn read<R: Read>(
        src: LayerSource<R>,
        limits: &Limits,
        max_file: u64,
        keep: &mut dyn FnMut(&[u8], u64) -> bool,
    ) -> Result<IndexedLayer> {
        let name = src.name.clone();
        let expected = src.diff_id.clone();
        let mut keep_header = |h: &Header| keep(&h.path, h.size);
        let mut capture = Capture { keep: &mut keep_header, max: max_file, kept: Vec::new() };
        let mut headers = Vec::new();
        let mut outcome = None;
        scan_with(src, limits, true, Some(&mut capture), &mut |msg| match msg {
            Msg::Entries(v) => {
                headers.extend(v);
                true
            }
            Msg::Done(s) => {
                outcome = Some(Ok(s));
                true
            }
            Msg::Failed(e) => {
                outcome = Some(Err(e));
                false
            }
        });
        let s = outcome.unwrap_or_else(|| {
            Err(Error::InvalidTar { layer: name.clone(), entry: None, reason: "reading stopped early".into() })
        })?;
        if let Some(expected) = expected
            && expected != s.diff_id
        {
            return Err(Error::DiffIdMismatch { layer: name, expected, actual: s.diff_id });
        }
        let index = LayerIndex {
            headers,
            compression: s.compression,
            diff_id: s.diff_id,
            size: s.size,
            compressed: s.compressed,
        };
        Ok(IndexedLayer { index, files: capture.kept })
    }

    /// The digest of the layer's uncompressed tar.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The compression of the blob it was read from.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The layer's size as docker reports it: the sizes its entries declare, added up
    /// ([`crate::read::content_size`] of the same layer).
    pub fn content_size(&self) -> u64 {
        self.headers.iter().fold(0u64, |t, h| t.saturating_add(h.declared_size))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether the layer has no entry.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The entries, in tar order.
    pub fn entries(&self) -> impl Iterator<Item = IndexEntry<'_>> + '_ {
        self.headers.iter().map(|h| IndexEntry {
            path: &h.path,
            ordinal: h.ordinal,
            kind: h.kind,
            size: h.size,
            sparse: h.sparse.is_some(),
        })
    }

    /// The entry at `ordinal`.
    pub fn entry(&self, ordinal: u64) -> Option<IndexEntry<'_>> {
        let h = self.headers.get(usize::try_from(ordinal).ok()?)?;
        Some(IndexEntry { path: &h.path, ordinal: h.ordinal, kind: h.kind, size: h.size, sparse: h.sparse.is_some() })
    }

    /// The serialised form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.headers.len() * 96);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(match self.compression {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Zstd => 2,
        });
        put_bytes(&mut out, self.diff_id.to_string().as_bytes());
        put_varint(&mut out, self.size);
        put_varint(&mut out, self.compressed);
        put_varint(&mut out, self.headers.len() as u64);
        for h in &self.headers {
            put_bytes(&mut out, &h.path);
            out.push(h.kind.code());
            for v in [u64::from(h.mode), h.uid, h.gid] {
                put_varint(&mut out, v);
            }
            put_varint(&mut out, zigzag(h.mtime.secs));
            put_varint(&mut out, u64::from(h.mtime.nanos));
            for v in [h.size, h.declared_size, u64::from(h.dev.0), u64::from(h.dev.1)] {
                put_varint(&mut out, v);
            }
            put_bytes(&mut out, &h.link);
            put_varint(&mut out, h.xattrs.len() as u64);
            for (k, v) in &h.xattrs {
                put_bytes(&mut out, k);
                put_bytes(&mut out, v);
            }
            match &h.sparse {
                None => out.push(0),
                Some(m) => {
                    out.push(1);
                    put_varint(&mut out, m.segments().len() as u64);
                    for &(o, l) in m.segments() {
                        put_varint(&mut out, o);
                        put_varint(&mut out, l);
                    }
                }
            }
            put_varint(&mut out, h.offset);
        }
        let crc = libdeflater::crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parse the serialised form, checking it throughout (an
    /// [`Error::InvalidIndex`] for anything damaged, truncated or of another version).
    pub fn from_bytes(bytes: &[u8]) -> Result<LayerIndex> {
        let mut p = Parser::new(bytes)?;
        let mut headers = Vec::new();
        while let Some(e) = p.next_entry()? {
            headers.push(Header {
                path: e.path.to_vec(),
                kind: e.kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
                size: e.size,
                declared_size: e.declared_size,
                dev: e.dev,
                link: e.link.to_vec(),
                xattrs: e.xattrs.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect(),
                sparse: e.sparse,
                ordinal: e.ordinal,
                offset: e.offset,
            });
        }
        let Parser { compression, diff_id, size, compressed, .. } = p;
        Ok(LayerIndex { headers, compression, diff_id, size, compressed })
    }
}

/// The serialised form of a [`LayerIndex`], read in place: its head checked and read by
/// [`Parser::new`], then one entry a call ([`Parser::next_entry`]). The one reader of the
/// format: [`LayerIndex::from_bytes`] copies what it gives, [`crate::IndexRef`] keeps
/// the borrowed names.
pub(crate) struct Parser<'a> {
    c: Cursor<'a>,
    pub(crate) compression: Compression,
    pub(crate) diff_id: Digest,
    pub(crate) size: u64,
    pub(crate) compressed: u64,
    /// Entries in all, and read so far.
    pub(crate) n: u64,
    next: u64,
}

/// One entry as the serialised index has it, borrowed from it.
pub(crate) struct RawHeader<'a> {
    pub(crate) path: &'a [u8],
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: Mtime,
    pub(crate) size: u64,
    pub(crate) declared_size: u64,
    pub(crate) dev: (u32, u32),
    pub(crate) link: &'a [u8],
    pub(crate) xattrs: Vec<(&'a [u8], &'a [u8])>,
    pub(crate) sparse: Option<SparseMap>,
    pub(crate) ordinal: u64,
    pub(crate) offset: u64,
}

impl<'a> Parser<'a> {
    /// Check the framing (length, magic, checksum, version) and read the head.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Parser<'a>> {
        Parser::framed(bytes, true)
    }

    /// [`Parser::new`] without the checksum, for bytes the caller checks some other way
    /// (an index inside a record under the record's checksum).
    pub(crate) fn new_unchecked(bytes: &'a [u8]) -> Result<Parser<'a>> {
        Parser::framed(bytes, false)
    }

    fn framed(bytes: &'a [u8], checksum: bool) -> Result<Parser<'a>> {
        if bytes.len() < MAGIC.len() + 4 + 4 {
            return Err(bad("too short".into()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if body.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(bad("not a strata layer index (bad magic)".into()));
        }
        let want = u32::from_le_bytes(crc.try_into().map_err(|_| bad("truncated".into()))?);
        if checksum && libdeflater::crc32(body) != want {
            return Err(bad("checksum mismatch (file damaged)".into()));
        }
        let mut c = Cursor::new(body, MAGIC.len(), bad);
        let version = c.u32()?;
        if version != VERSION {
            return Err(bad(format!("version {version} is not supported (this build reads {VERSION})")));
        }
        let compression = match c.u8()? {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Zstd,
            t => return Err(bad(format!("unknown compression {t}"))),
        };
        let diff_id = std::str::from_utf8(c.bytes()?)
            .ok()
            .and_then(|s| Digest::parse(s).ok())
            .ok_or_else(|| bad("diff_id is not a digest".into()))?;
        let size = c.varint()?;
        let compressed = c.varint()?;
        let n = c.varint()?;
        Ok(Parser { c, compression, diff_id, size, compressed, n, next: 0 })
    }

    /// The next entry; `None` after the last, once the bytes are checked to end there.
    pub(crate) fn next_entry(&mut self) -> Result<Option<RawHeader<'a>>> {
        let mut rest = Rest::default();
        let Some(lean) = self.next_with(&mut rest)? else { return Ok(None) };
        let Lean { path, kind, uid, gid, size, link, sparse: _, ordinal, offset } = lean;
        let Rest { mode, mtime, declared_size, dev, xattrs, sparse } = rest;
        let mtime = Mtime { secs: mtime.sec, nanos: mtime.nsec };
        Ok(Some(RawHeader {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size,
            declared_size,
            dev,
            link,
            xattrs,
            sparse,
            ordinal,
            offset,
        }))
    }

    /// The next entry, what a lookup needs of it ([`crate::IndexRef`]): every field
    /// read and checked as [`Parser::next_entry`] does, the others kept nowhere.
    pub(crate) fn next_lean(&mut self) -> Result<Option<Lean<'a>>> {
        self.next_with(&mut NoRest)
    }

    /// The one decoder of an entry: what a lookup needs is returned, the rest given to
    /// `rest` (which keeps it or not).
    #[inline(always)]
    fn next_with<R: Keep<'a>>(&mut self, rest: &mut R) -> Result<Option<Lean<'a>>> {
        let c = &mut self.c;
        if self.next == self.n {
            if !c.at_end() {
                return Err(bad("bytes after the last entry".into()));
            }
            return Ok(None);
        }
        let ordinal = self.next;
        self.next += 1;
        let path = c.bytes()?;
        let kind = EntryKind::from_code(c.u8()?).ok_or_else(|| bad(format!("entry {ordinal}: unknown kind")))?;
        rest.mode(c.u32v()?);
        let (uid, gid) = (c.varint()?, c.varint()?);
        rest.mtime(c.time()?);
        let (size, declared_size) = (c.varint()?, c.varint()?);
        rest.declared_size(declared_size);
        rest.dev((c.u32v()?, c.u32v()?));
        let link = c.bytes()?;
        let nx = c.len()?;
        rest.xattrs(nx);
        for _ in 0..nx {
            rest.xattr(c.bytes()?, c.bytes()?);
        }
        let sparse = match c.u8()? {
            0 => false,
            1 => {
                let ns = c.len()?;
                let mut segs = Vec::with_capacity(ns.min(1024));
                for _ in 0..ns {
                    segs.push((c.varint()?, c.varint()?));
                }
                let map = SparseMap::new(segs, size).ok_or_else(|| bad(format!("entry {ordinal}: bad sparse map")))?;
                rest.sparse(map);
                true
            }
            t => return Err(bad(format!("entry {ordinal}: unknown sparse tag {t}"))),
        };
        let offset = c.varint()?;
        Ok(Some(Lean { path, kind, uid, gid, size, link, sparse, ordinal, offset }))
    }
}

/// What a lookup needs of an entry of the serialised index, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lean<'a> {
    pub(crate) path: &'a [u8],
    pub(crate) kind: EntryKind,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    pub(crate) link: &'a [u8],
    /// Whether it is a sparse file.
    pub(crate) sparse: bool,
    pub(crate) ordinal: u64,
    pub(crate) offset: u64,
}

/// What [`Parser::next_with`] does with the fields a lookup does not need.
trait Keep<'a> {
    fn mode(&mut self, _: u32) {}
    fn mtime(&mut self, _: Timestamp) {}
    fn declared_size(&mut self, _: u64) {}
    fn dev(&mut self, _: (u32, u32)) {}
    fn xattrs(&mut self, _: usize) {}
    fn xattr(&mut self, _: &'a [u8], _: &'a [u8]) {}
    fn sparse(&mut self, _: SparseMap) {}
}

/// Keeps nothing.
struct NoRest;

impl Keep<'_> for NoRest {}

/// Keeps everything, for a [`RawHeader`].
#[derive(Default)]
struct Rest<'a> {
    mode: u32,
    mtime: Timestamp,
    declared_size: u64,
    dev: (u32, u32),
    xattrs: Vec<(&'a [u8], &'a [u8])>,
    sparse: Option<SparseMap>,
}

impl<'a> Keep<'a> for Rest<'a> {
    fn mode(&mut self, v: u32) {
        self.mode = v;
    }
    fn mtime(&mut self, v: Timestamp) {
        self.mtime = v;
    }
    fn declared_size(&mut self, v: u64) {
        self.declared_size = v;
    }
    fn dev(&mut self, v: (u32, u32)) {
        self.dev = v;
    }
    fn xattrs(&mut self, n: usize) {
        self.xattrs.reserve(n.min(64));
    }
    fn xattr(&mut self, k: &'a [u8], v: &'a [u8]) {
        self.xattrs.push((k, v));
    }
    fn sparse(&mut self, m: SparseMap) {
        self.sparse = Some(m);
    }
}

/// Building from indexes.
impl MergedTree {
    /// Fold layers from their indexes, base first, with every rule and error of
    /// [`MergedTree::build`], reading no layer. `names` name the layers in errors and
    /// in [`MergedTree::layers`] (the blobs' digests), as [`MergedTree::read_file`]
    /// opens them. Each index's own `diff_id` is the layer's: check it against the
    /// image config's before calling this.
    pub fn from_indexes(indexes: &[&LayerIndex], names: &[String], opts: &MergeOptions) -> Result<MergedTree> {
        let expected: Vec<Option<Digest>> = indexes.iter().map(|i| Some(i.diff_id.clone())).collect();
        let opts = opts.clone().threads(1);
        let send_index = |index: &LayerIndex, _: &Limits, send: &mut dyn FnMut(Msg) -> bool| {
            for chunk in index.headers.chunks(BATCH) {
                if !send(Msg::Entries(chunk.to_vec())) {
                    return;
                }
            }
            send(Msg::Done(Scanned {
                compression: index.compression,
                diff_id: index.diff_id.clone(),
                size: index.size,
                compressed: index.compressed,
            }));
        };
        let sources: Vec<&LayerIndex> = indexes.to_vec();
        let (tree, layers, _, changes) =
            fold_layers(sources, names, &expected, &opts, |i: &LayerIndex, l, s| send_index(i, l, s), false)?;
        Ok(MergedTree::from_parts(tree, layers, opts.limits, changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LayerBuilder, WriteOptions};

    fn layers() -> Vec<(Vec<u8>, Digest)> {
        let mut a = LayerBuilder::new();
        a.file("etc/os-release", b"ID=debian\n".to_vec());
        a.file("usr/bin/tool", b"binary".to_vec()).mode(0o755).xattr("user.x", b"1".to_vec());
        a.symlink("usr/lib/os-release", "../../etc/os-release");
        a.file("var/old", b"old".to_vec());
        let mut b = LayerBuilder::new();
        b.whiteout("var/old");
        b.file("etc/os-release", b"ID=debian\nVERSION_ID=12\n".to_vec());
        b.hardlink("usr/bin/tool2", "usr/bin/tool");
        [a, b]
            .iter()
            .map(|l| {
                let (info, blob) = l.write(Vec::new(), &WriteOptions::default()).unwrap();
                (blob, info.diff_id)
            })
            .collect()
    }

    #[test]
    fn a_tree_from_indexes_is_the_tree_from_the_layers() {
        let layers = layers();
        let names: Vec<String> = (0..layers.len()).map(|i| format!("layer {i}")).collect();
        let mut indexes = Vec::new();
        let mut kept = Vec::new();
        for ((blob, diff_id), name) in layers.iter().zip(&names) {
            let src = LayerSource::new(name.clone(), &blob[..]).diff_id(diff_id.clone());
            let read =
                LayerIndex::read(src, &Limits::default(), 1 << 20, &mut |p, _| p.ends_with(b"os-release")).unwrap();
            // Through its serialised form.
            let index = LayerIndex::from_bytes(&read.index.to_bytes()).unwrap();
            assert_eq!(index.to_bytes(), read.index.to_bytes());
            assert_eq!(index.diff_id(), diff_id);
            indexes.push(index);
            kept.push(read.files);
        }
        assert_eq!(kept[1].len(), 1);
        assert_eq!(kept[1][0].1, b"ID=debian\nVERSION_ID=12\n");
        let refs: Vec<&LayerIndex> = indexes.iter().collect();
        let from_indexes = MergedTree::from_indexes(&refs, &names, &MergeOptions::default()).unwrap();
        let sources = layers
            .iter()
            .zip(&names)
            .map(|((blob, diff_id), name)| LayerSource::new(name.clone(), &blob[..]).diff_id(diff_id.clone()));
        let from_layers = MergedTree::build(sources, &MergeOptions::default()).unwrap();
        let a: Vec<MergedEntryView> = from_indexes.iter().map(view).collect();
        let b: Vec<MergedEntryView> = from_layers.iter().map(view).collect();
        assert_eq!(a, b);
        assert!(from_indexes.stat("var/old").is_err(), "the whiteout was not applied");
        // The regular files' paths alone, as the entries say them.
        let files: Vec<std::path::PathBuf> = from_layers
            .iter()
            .filter(|e| matches!(e.meta.kind, crate::entry::EntryKind::File))
            .map(|e| e.meta.path)
            .collect();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(from_indexes.file_paths().collect::<Vec<_>>(), files);
        let followed = from_indexes.stat_follow("usr/lib/os-release").unwrap();
        assert_eq!(followed.source.map(|s| (s.layer, s.entry)), Some((1, kept[1][0].0)));
        // Reading a file opens its layer, as for a tree folded from the layers.
        let mut content = Vec::new();
        from_indexes.read_file("usr/bin/tool2", |i| Ok(&layers[i].0[..])).unwrap().read_to_end(&mut content).unwrap();
        assert_eq!(content, b"binary");
    }

    type MergedEntryView = (crate::EntryMeta, usize, u32, Option<crate::DataSource>);

    fn view(e: crate::MergedEntry) -> MergedEntryView {
        (e.meta, e.layer, e.nlink, e.source)
    }

    #[test]
    fn damaged_indexes_are_refused() {
        let (blob, diff_id) = layers().remove(0);
        let src = LayerSource::new("l", &blob[..]).diff_id(diff_id);
        let bytes = LayerIndex::read(src, &Limits::default(), 0, &mut |_, _| false).unwrap().index.to_bytes();
        for cut in [0, 4, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(LayerIndex::from_bytes(&bytes[..cut]), Err(Error::InvalidIndex { .. })), "cut at {cut}");
        }
        for at in [0, 9, bytes.len() / 2, bytes.len() - 2] {
            let mut b = bytes.clone();
            b[at] ^= 1;
            assert!(matches!(LayerIndex::from_bytes(&b), Err(Error::InvalidIndex { .. })), "flip at {at}");
        }
        // A diff_id that is not the layer's is refused while reading.
        let src = LayerSource::new("l", &blob[..]).diff_id(Digest::sha256_of(b"other"));
        assert!(matches!(
            LayerIndex::read(src, &Limits::default(), 0, &mut |_, _| false),
            Err(Error::DiffIdMismatch { .. })
        ));
    }
}
