//! A streaming reader of layer tars with hard limits, for hostile input.
//!
//! The `tar` crate parses the fields of each 512-byte header (octal and base-256
//! numbers, the ustar prefix); this module does the framing around them, because the
//! framing is where the limits must be: a PAX extended header or a GNU long name is
//! read into memory, so its size is checked against [`Limits`] *before* it is read.
//!
//! Framing follows Go's `archive/tar`, which docker, containerd and umoci use, so that
//! strata reads the same entries from a tar as they do (differential parsing is how
//! CVE-2025-62518 smuggled entries past a validator):
//! - a PAX `size` record always overrides the header's size field (CVE-2025-62518,
//!   CVE-2026-33055);
//! - hard links, symlinks, devices, fifos and directories carry no data, whatever their
//!   size field says;
//! - a PAX global header (`g`) is parsed (within the limits) and ignored;
//! - sparse files in all four of GNU tar's encodings are read (see [`crate::sparse`]):
//!   [`Entry::size`] is the file's size, [`Entry::sparse`] where its stored bytes go;
//! - a GNU dumpdir (`D`) is a directory; its payload (a listing for incremental
//!   backups) is skipped;
//! - the archive ends at the first zero block, or at a clean end of stream between
//!   entries. The caller reads the rest of the stream (the second zero block and any
//!   padding) so that the `diff_id` covers every byte.

use std::io::{self, BufRead};

use crate::error::{Error, Result};
use crate::sparse::SparseMap;

mod pax;
mod sparse;

use pax::{Pax, PaxProblem, PaxRecords, SparsePax, parse_pax};

/// Limits on what one layer may make the reader and the applier spend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest PAX extended header (`x` or `g`) read into memory. Default 1 MiB.
    pub max_pax_size: u64,
    /// Longest entry name, after PAX or GNU long names. Default 4096 (Linux `PATH_MAX`).
    pub max_path_len: usize,
    /// Longest link target (symlink or hard link). Default 4096 (Linux `PATH_MAX`).
    pub max_link_len: usize,
    /// Largest single xattr value. Default 65536 (Linux `XATTR_SIZE_MAX`).
    pub max_xattr_value: usize,
    /// Largest uncompressed layer, if any. Default none: a bomb then costs time and disk
    /// space, never memory.
    pub max_layer_size: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pax_size: 1 << 20,
            max_path_len: 4096,
            max_link_len: 4096,
            max_xattr_value: 65536,
            max_layer_size: None,
        }
    }
}

impl Limits {
    /// Set [`Limits::max_layer_size`].
    pub fn max_layer_size(mut self, bytes: Option<u64>) -> Self {
        self.max_layer_size = bytes;
        self
    }

    /// Set [`Limits::max_pax_size`].
    pub fn max_pax_size(mut self, bytes: u64) -> Self {
        self.max_pax_size = bytes;
        self
    }

    /// Set [`Limits::max_path_len`].
    pub fn max_path_len(mut self, bytes: usize) -> Self {
        self.max_path_len = bytes;
        self
    }
}

/// The type of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file (`0`, NUL, `7`).
    File,
    /// Directory (`5`, or an old-style NUL-typed entry whose name ends in `/`).
    Dir,
    /// Symbolic link (`2`).
    Symlink,
    /// Hard link to an earlier entry (`1`).
    Hardlink,
    /// Character device (`3`).
    Char,
    /// Block device (`4`).
    Block,
    /// Named pipe (`6`).
    Fifo,
}

impl EntryKind {
    /// The one-byte code strata's own binary records (layer indexes, union dumps) give
    /// this kind.
    pub(crate) fn code(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Dir => 1,
            EntryKind::Symlink => 2,
            EntryKind::Hardlink => 3,
            EntryKind::Char => 4,
            EntryKind::Block => 5,
            EntryKind::Fifo => 6,
        }
    }

    /// The kind of a [`EntryKind::code`], if it is one.
    pub(crate) fn from_code(code: u8) -> Option<EntryKind> {
        Some(match code {
            0 => EntryKind::File,
            1 => EntryKind::Dir,
            2 => EntryKind::Symlink,
            3 => EntryKind::Hardlink,
            4 => EntryKind::Char,
            5 => EntryKind::Block,
            6 => EntryKind::Fifo,
            _ => return None,
        })
    }
}

/// A modification time: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mtime {
    /// Seconds since the epoch (may be negative).
    pub secs: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nanos: u32,
}

/// The header of one entry, with PAX and GNU extensions folded in. Buffers are reused
/// from entry to entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The type.
    pub kind: EntryKind,
    /// The name as stored (not normalised: see [`crate::path::normalize`]).
    pub path: Vec<u8>,
    /// The link target (symlinks and hard links), as stored.
    pub link: Vec<u8>,
    /// Permission and special bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time (nanoseconds from PAX `mtime` when present).
    pub mtime: Mtime,
    /// Size of the file's content (0 for every type but regular files): for a sparse
    /// file, its whole size, holes included.
    pub size: u64,
    /// Where a sparse file's stored bytes go (`None` for an ordinary file).
    pub sparse: Option<SparseMap>,
    /// The size the header declares (a PAX `size` record, else the size field), for
    /// every type: what Go's `archive/tar` reports as `Header.Size`, and so what docker
    /// adds up as a layer's size. Equal to [`Entry::size`] for regular files.
    pub declared_size: u64,
    /// Device major number (character and block devices).
    pub dev_major: u32,
    /// Device minor number.
    pub dev_minor: u32,
    /// Extended attributes from PAX `SCHILY.xattr.<name>` records, in order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            kind: EntryKind::File,
            path: Vec::new(),
            link: Vec::new(),
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: Mtime::default(),
            size: 0,
            sparse: None,
            declared_size: 0,
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
        }
    }
}

impl Entry {
    /// The name for error messages (lossy UTF-8).
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

const BLOCK: usize = 512;

/// A streaming reader of tar entries from a buffered reader.
///
/// ```
/// use strata_layer::read::{EntryKind, Limits, TarReader};
///
/// let mut b = tar::Builder::new(Vec::new());
/// let mut h = tar::Header::new_gnu();
/// h.set_size(5);
/// h.set_mode(0o644);
/// h.set_cksum();
/// b.append_data(&mut h, "etc/motd", &b"hello"[..]).unwrap();
/// let bytes = b.into_inner().unwrap();
///
/// let mut r = TarReader::new(&bytes[..], Limits::default(), "layer 0");
/// let e = r.next_entry().unwrap().unwrap();
/// assert_eq!((e.kind, &e.path[..], e.size), (EntryKind::File, &b"etc/motd"[..], 5));
/// let mut data = Vec::new();
/// r.read_data(|chunk| -> strata_layer::Result<()> { data.extend_from_slice(chunk); Ok(()) }).unwrap();
/// assert_eq!(data, b"hello");
/// assert!(r.next_entry().unwrap().is_none());
/// ```
pub struct TarReader<R: BufRead> {
    inner: R,
    limits: Limits,
    layer: String,
    entry: Entry,
    /// Data bytes of the current entry not yet read (stored bytes, for a sparse file).
    remaining: u64,
    /// Of a sparse file's stored bytes, those already read.
    stored_read: u64,
    /// Padding after the current entry's data.
    padding: u64,
    block: [u8; BLOCK],
    /// PAX header bytes (reused).
    pax_buf: Vec<u8>,
    /// PAX global header bytes (reused).
    global_buf: Vec<u8>,
    /// GNU long name / long link (reused).
    long_name: Vec<u8>,
    long_link: Vec<u8>,
    done: bool,
    /// Bytes consumed from `inner` so far.
    offset: u64,
}

impl<R: BufRead> std::fmt::Debug for TarReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarReader").field("layer", &self.layer).field("offset", &self.offset).finish()
    }
}

impl<R: BufRead> TarReader<R> {
    /// Read tar entries from `inner`; `layer` names the layer in errors.
    pub fn new(inner: R, limits: Limits, layer: &str) -> Self {
        TarReader {
            inner,
            limits,
            layer: layer.to_owned(),
            entry: Entry::default(),
            remaining: 0,
            stored_read: 0,
            padding: 0,
            block: [0; BLOCK],
            pax_buf: Vec::new(),
            global_buf: Vec::new(),
            long_name: Vec::new(),
            long_link: Vec::new(),
            done: false,
            offset: 0,
        }
    }

    /// The layer name.
    pub fn layer(&self) -> &str {
        &self.layer
    }

    /// The wrapped reader (positioned after the end-of-archive block once
    /// [`TarReader::next_entry`] returned `None`).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Bytes of the stream consumed so far: once [`TarReader::next_entry`] returned an
    /// entry, where its data starts.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The wrapped reader, mutably.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn invalid(&self, entry: Option<&[u8]>, reason: impl Into<String>) -> Error {
        Error::InvalidTar {
            layer: self.layer.clone(),
            entry: entry.map(|e| String::from_utf8_lossy(e).into_owned()),
            reason: reason.into(),
        }
    }

    fn io(&self, e: io::Error) -> Error {
        io_error(&self.layer, self.offset, e)
    }

    fn limit(&self, entry: Option<&[u8]>, what: &'static str, actual: u64, limit: u64) -> Error {
        Error::LimitExceeded {
            layer: self.layer.clone(),
            entry: entry.map(|e| String::from_utf8_lossy(e).into_owned()),
            what,
            actual,
            limit,
        }
    }

    /// Skip `n` bytes of the stream.
    fn skip(&mut self, mut n: u64) -> Result<()> {
        while n > 0 {
            let avail = self.inner.fill_buf().map_err(|e| io_error(&self.layer, self.offset, e))?.len();
            if avail == 0 {
                return Err(self.invalid(None, format!("truncated at byte {}", self.offset)));
            }
            let take = (avail as u64).min(n) as usize;
            self.inner.consume(take);
            self.offset += take as u64;
            n -= take as u64;
        }
        Ok(())
    }

    /// Read one block into `self.block`; `Ok(false)` at a clean end of stream.
    fn read_block(&mut self) -> Result<bool> {
        let mut got = 0;
        while got < BLOCK {
            let buf = self.inner.fill_buf().map_err(|e| io_error(&self.layer, self.offset, e))?;
            if buf.is_empty() {
                if got == 0 {
                    return Ok(false);
                }
                return Err(self.invalid(None, format!("truncated header at byte {}", self.offset)));
            }
            let take = buf.len().min(BLOCK - got);
            self.block[got..got + take].copy_from_slice(&buf[..take]);
            self.inner.consume(take);
            got += take;
        }
        self.offset += BLOCK as u64;
        Ok(true)
    }

    /// Read `size` bytes of an extension entry (and its padding) into `out`.
    fn read_extension(&mut self, size: u64, which: u8) -> Result<Vec<u8>> {
        let mut out = match which {
            b'x' => std::mem::take(&mut self.pax_buf),
            b'g' => std::mem::take(&mut self.global_buf),
            b'L' => std::mem::take(&mut self.long_name),
            _ => std::mem::take(&mut self.long_link),
        };
        out.clear();
        let mut n = size as usize; // checked against a limit that fits usize by the caller
        while n > 0 {
            let buf = self.inner.fill_buf().map_err(|e| io_error(&self.layer, self.offset, e))?;
            if buf.is_empty() {
                return Err(self.invalid(None, format!("truncated extension header at byte {}", self.offset)));
            }
            let take = buf.len().min(n);
            out.extend_from_slice(&buf[..take]);
            self.inner.consume(take);
            self.offset += take as u64;
            n -= take;
        }
        self.skip(pad(size))?;
        Ok(out)
    }

    /// Advance to the next entry, skipping what is left of the current one. `None` at the
    /// end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<&Entry>> {
        if self.done {
            return Ok(None);
        }
        let left = self.remaining.saturating_add(self.padding);
        self.remaining = 0;
        self.padding = 0;
        self.skip(left)?;

        let mut pax = Pax::default();
        let mut have_long_name = false;
        let mut have_long_link = false;
        let mut pax_bytes = std::mem::take(&mut self.pax_buf);
        loop {
            if !self.read_block()? {
                // A clean end of stream between entries: accepted as the end, as Go does.
                if pax.present || have_long_name || have_long_link {
                    return Err(self.invalid(None, "archive ends after an extension header"));
                }
                self.done = true;
                self.pax_buf = pax_bytes;
                return Ok(None);
            }
            if self.block.iter().all(|&b| b == 0) {
                if pax.present || have_long_name || have_long_link {
                    return Err(self.invalid(None, "end of archive right after an extension header"));
                }
                self.done = true;
                self.pax_buf = pax_bytes;
                return Ok(None);
            }
            self.check_checksum()?;
            let typeflag = self.block[156];
            let raw_size = numeric(&self.block[124..136]).ok_or_else(|| self.invalid(None, "bad size field"))?;
            match typeflag {
                b'x' | b'g' => {
                    if raw_size > self.limits.max_pax_size {
                        return Err(self.limit(None, "PAX header", raw_size, self.limits.max_pax_size));
                    }
                    if typeflag == b'x' && pax.present {
                        return Err(self.invalid(None, "two PAX headers for one entry"));
                    }
                    if typeflag == b'x' {
                        self.pax_buf = pax_bytes;
                        let bytes = self.read_extension(raw_size, typeflag)?;
                        pax = parse_pax(&bytes, &self.limits).map_err(|r| self.pax_error(r))?;
                        pax_bytes = bytes;
                    } else {
                        // Global headers are validated and ignored (as docker, containerd
                        // and umoci ignore them), in their own buffer: the spans of a
                        // pending `x` header point into `pax_bytes`.
                        let bytes = self.read_extension(raw_size, typeflag)?;
                        let parsed = parse_pax(&bytes, &self.limits).map(|_| ());
                        self.global_buf = bytes;
                        parsed.map_err(|r| self.pax_error(r))?;
                    }
                }
                b'L' | b'K' => {
                    let (limit, what) = if typeflag == b'L' {
                        (self.limits.max_path_len, "GNU long name")
                    } else {
                        (self.limits.max_link_len, "GNU long link")
                    };
                    // The stored name ends with a NUL.
                    if raw_size > limit as u64 + 1 {
                        return Err(self.limit(None, what, raw_size, limit as u64));
                    }
                    let already = if typeflag == b'L' { have_long_name } else { have_long_link };
                    if already {
                        return Err(self.invalid(None, format!("two {what} headers for one entry")));
                    }
                    let mut v = self.read_extension(raw_size, typeflag)?;
                    if let Some(nul) = v.iter().position(|&b| b == 0) {
                        v.truncate(nul);
                    }
                    if typeflag == b'L' {
                        self.long_name = v;
                        have_long_name = true;
                    } else {
                        self.long_link = v;
                        have_long_link = true;
                    }
                }
                _ => {
                    let r = self.fill_entry(typeflag, raw_size, &pax, &pax_bytes, have_long_name, have_long_link);
                    self.pax_buf = pax_bytes;
                    r?;
                    return Ok(Some(&self.entry));
                }
            }
        }
    }

    /// An `InvalidTar` error naming the current entry.
    fn entry_error(&self, reason: impl Into<String>) -> Error {
        self.invalid(Some(&self.entry.path), reason)
    }

    fn pax_error(&self, r: PaxProblem) -> Error {
        match r {
            PaxProblem::Invalid(reason) => self.invalid(None, format!("PAX header: {reason}")),
            PaxProblem::Limit { what, actual, limit } => self.limit(None, what, actual, limit),
        }
    }

    fn check_checksum(&self) -> Result<()> {
        let stored = numeric(&self.block[148..156])
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| self.invalid(None, "bad checksum field"))?;
        let mut unsigned: u32 = 0;
        let mut signed: i32 = 0;
        for (i, &b) in self.block.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u32::from(b);
            signed += i32::from(b as i8);
        }
        if stored != unsigned && i64::from(stored) != i64::from(signed) {
            return Err(self.invalid(
                None,
                format!(
                    "header checksum mismatch at byte {} (stored {stored}, computed {unsigned})",
                    self.offset - 512
                ),
            ));
        }
        Ok(())
    }

    fn fill_entry(
        &mut self,
        typeflag: u8,
        raw_size: u64,
        pax: &Pax,
        pax_bytes: &[u8],
        long_name: bool,
        long_link: bool,
    ) -> Result<()> {
        let header = tar::Header::from_byte_slice(&self.block);
        let e = &mut self.entry;
        e.path.clear();
        if let Some((s, l)) = pax.sparse.as_ref().and_then(|sp| sp.name) {
            // A sparse file's real name (GNU tar puts a made-up one in `path`).
            e.path.extend_from_slice(&pax_bytes[s..s + l]);
        } else if let Some((s, l)) = pax.path {
            e.path.extend_from_slice(&pax_bytes[s..s + l]);
        } else if long_name {
            e.path.extend_from_slice(&self.long_name);
        } else {
            e.path.extend_from_slice(&header.path_bytes());
        }
        e.link.clear();
        if let Some((s, l)) = pax.link {
            e.link.extend_from_slice(&pax_bytes[s..s + l]);
        } else if long_link {
            e.link.extend_from_slice(&self.long_link);
        } else if let Some(l) = header.link_name_bytes() {
            e.link.extend_from_slice(&l);
        }
        e.xattrs.clear();
        if pax.present {
            for rec in PaxRecords::new(pax_bytes) {
                let Ok((k, v)) = rec else { break };
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    e.xattrs.push((name.to_vec(), v.to_vec()));
                }
            }
        }
        // The numbers, with `self` borrowed immutably so that errors can name the entry.
        let kind = match typeflag {
            b'0' | b'7' | b'S' => EntryKind::File,
            0 if self.entry.path.last() == Some(&b'/') => EntryKind::Dir,
            0 => EntryKind::File,
            b'1' => EntryKind::Hardlink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::Char,
            b'4' => EntryKind::Block,
            // A GNU dumpdir: a directory, its payload a listing for incremental backups.
            b'5' | b'D' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            t => return Err(self.entry_error(format!("unsupported entry type {:?}", t as char))),
        };
        let field = |what: &str, range: std::ops::Range<usize>| {
            numeric(&self.block[range]).ok_or_else(|| self.entry_error(format!("bad {what} field")))
        };
        let mode = (field("mode", 100..108)? & 0o7777) as u32;
        let uid = match pax.uid {
            Some(u) => u,
            None => field("uid", 108..116)?,
        };
        let gid = match pax.gid {
            Some(g) => g,
            None => field("gid", 116..124)?,
        };
        let mtime = match pax.mtime {
            Some(m) => m,
            None => Mtime { secs: i64::try_from(field("mtime", 136..148)?).unwrap_or(i64::MAX), nanos: 0 },
        };
        // PAX size always wins (CVE-2025-62518); header-only types carry no data (a
        // dumpdir's listing is data to skip), whatever size they declare. Sizes past
        // i64::MAX are refused, as Go refuses them (and `remaining + padding` must not
        // overflow).
        let declared_size = pax.size.unwrap_or(raw_size);
        let data = match kind {
            EntryKind::File => declared_size,
            EntryKind::Dir if typeflag == b'D' => declared_size,
            _ => 0,
        };
        if i64::try_from(declared_size).is_err() {
            return Err(self.entry_error(format!("size {declared_size} out of range")));
        }
        let (dev_major, dev_minor) = if matches!(kind, EntryKind::Char | EntryKind::Block) {
            let dev = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            (dev(field("device major", 329..337)?), dev(field("device minor", 337..345)?))
        } else {
            (0, 0)
        };
        let (path_len, link_len) = (self.entry.path.len(), self.entry.link.len());
        if path_len > self.limits.max_path_len {
            return Err(self.limit(Some(&self.entry.path), "path", path_len as u64, self.limits.max_path_len as u64));
        }
        if link_len > self.limits.max_link_len {
            return Err(self.limit(
                Some(&self.entry.path),
                "link target",
                link_len as u64,
                self.limits.max_link_len as u64,
            ));
        }
        let e = &mut self.entry;
        (e.kind, e.mode, e.uid, e.gid, e.mtime) = (kind, mode, uid, gid, mtime);
        e.declared_size = declared_size;
        (e.dev_major, e.dev_minor) = (dev_major, dev_minor);
        e.size = if kind == EntryKind::File { data } else { 0 };
        e.sparse = None;
        self.remaining = data;
        self.stored_read = 0;
        self.padding = pad(data);
        if typeflag == b'S' {
            self.old_gnu_sparse()?;
        } else if let Some(sp) = &pax.sparse {
            self.pax_sparse(sp)?;
        }
        Ok(())
    }
}

impl<R: BufRead> TarReader<R> {
    /// The current entry (after [`TarReader::next_entry`] returned one).
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Pass the current entry's content to `f` in chunks, as they come from the stream
    /// (no copy), a sparse file's holes as zeros. An error of `f` stops the reading and
    /// is returned as it is.
    pub fn read_data<E: From<Error>>(
        &mut self,
        mut f: impl FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let size = self.entry.size;
        if self.entry.sparse.is_none() {
            return self.read_content(|_, chunk| f(chunk));
        }
        let mut pos = 0u64;
        self.read_content(|at, chunk| {
            zeros(&mut pos, at, &mut f)?;
            pos = at + chunk.len() as u64;
            f(chunk)
        })?;
        zeros(&mut pos, size, &mut f)
    }

    /// Pass the current entry's stored data to `f` in chunks, each with its offset in
    /// the file (a sparse file's holes are jumped over, never given). An error of `f`
    /// stops the reading and is returned as it is.
    pub fn read_content<E: From<Error>>(
        &mut self,
        mut f: impl FnMut(u64, &[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        while self.remaining > 0 {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(self.io(e).into()),
            };
            if buf.is_empty() {
                return Err(self
                    .invalid(Some(&self.entry.path), format!("data truncated at byte {}", self.offset))
                    .into());
            }
            let mut take = (buf.len() as u64).min(self.remaining) as usize;
            let at = match &self.entry.sparse {
                None => self.stored_read,
                Some(map) => match map.locate(self.stored_read) {
                    Some((at, contiguous)) => {
                        take = take.min(usize::try_from(contiguous).unwrap_or(usize::MAX));
                        at
                    }
                    None => return Err(self.invalid(Some(&self.entry.path), "data past the sparse map").into()),
                },
            };
            f(at, &buf[..take])?;
            self.inner.consume(take);
            self.offset += take as u64;
            self.remaining -= take as u64;
            self.stored_read += take as u64;
        }
        Ok(())
    }

    /// Skip the current entry's data (reading it: a truncated stream is an error here).
    pub fn skip_data(&mut self) -> Result<()> {
        self.read_content(|_, _| Ok::<(), Error>(()))
    }
}

/// Give `f` zeros from `pos` up to `to`: a sparse file's hole.
fn zeros<E>(
    pos: &mut u64,
    to: u64,
    f: &mut impl FnMut(&[u8]) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while *pos < to {
        let n = usize::try_from(to - *pos).unwrap_or(usize::MAX).min(ZEROS.len());
        f(&ZEROS[..n])?;
        *pos += n as u64;
    }
    Ok(())
}

impl<R: BufRead + io::Seek> TarReader<R> {
    /// Skip what is left of the current entry's data, and its padding, by seeking
    /// rather than reading: for an uncompressed tar read only for its headers. Seeking
    /// past the end of a file is not an error here: a caller that trusts no size checks
    /// the length of what it seeks over.
    pub fn seek_past_data(&mut self) -> Result<()> {
        let left = self.remaining.saturating_add(self.padding);
        if left == 0 {
            return Ok(());
        }
        let by = i64::try_from(left).map_err(|_| self.invalid(Some(&self.entry.path), "entry size out of range"))?;
        self.inner.seek(io::SeekFrom::Current(by)).map_err(|e| io_error(&self.layer, self.offset, e))?;
        self.offset = self.offset.saturating_add(left);
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }
}

/// A layer's size as docker reports it (`docker history`, the `Size` of `docker image
/// inspect` summed over layers): the sum of the sizes its tar entries declare, which for
/// ordinary layers is the bytes of file content it holds. Docker's layer store adds up
/// `Header.Size` of every entry while it applies a layer (moby's `archive.UnpackLayer`);
/// [`Entry::declared_size`] is that figure.
///
/// Reads the whole stream to its end, past the end-of-archive blocks, so that a hashing
/// reader underneath sees every byte (to check a `diff_id` in the same pass).
pub fn content_size<R: BufRead>(input: R, layer: &str) -> Result<u64> {
    let mut tar = TarReader::new(input, Limits::default(), layer);
    let mut total = 0u64;
    while let Some(e) = tar.next_entry()? {
        total = total.saturating_add(e.declared_size);
    }
    let mut rest = tar.into_inner();
    crate::decompress::drain(&mut rest).map_err(|e| io_error(layer, 0, e))?;
    Ok(total)
}

/// [`content_size`] of an uncompressed tar that can seek: only the headers are read,
/// the data is seeked over (one seek per entry), and nothing is verified.
pub fn content_size_seeking<R: BufRead + io::Seek>(input: R, layer: &str) -> Result<u64> {
    let mut tar = TarReader::new(input, Limits::default(), layer);
    let mut total = 0u64;
    while let Some(e) = tar.next_entry()? {
        total = total.saturating_add(e.declared_size);
        tar.seek_past_data()?;
    }
    Ok(total)
}

/// An I/O error of the stream under the tar (decompression, the blob reader).
fn io_error(layer: &str, offset: u64, e: io::Error) -> Error {
    let reason = if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("truncated at byte {offset}")
    } else {
        format!("reading at byte {offset}: {e}")
    };
    Error::InvalidTar { layer: layer.to_owned(), entry: None, reason }
}

/// A numeric header field, as Go's `archive/tar` reads it: base-256 when the high bit of
/// the first byte is set (positive values only), else octal with spaces and NULs trimmed
/// at both ends, an empty field being 0.
fn numeric(field: &[u8]) -> Option<u64> {
    let (&first, rest) = field.split_first()?;
    if first & 0x80 != 0 {
        if first & 0x40 != 0 {
            return None; // negative
        }
        let mut v = u64::from(first & 0x3f);
        for &b in rest {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let start = field.iter().position(|&b| b != b' ' && b != 0).unwrap_or(field.len());
    let end = field.iter().rposition(|&b| b != b' ' && b != 0).map_or(start, |i| i + 1);
    let digits = &field[start..end];
    let mut v: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(name: &str, typeflag: u8, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.as_mut_bytes()[156] = typeflag;
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn a_global_header_between_a_pax_header_and_its_entry() {
        // Regression: the global header once reused the pending PAX header's buffer.
        let mut t = block("x", b'x', b"15 path=from-x\n");
        t.extend(block("g", b'g', b"29 comment=a global comment.\n"));
        t.extend(block("plain", b'0', b"data"));
        t.extend([0u8; 1024]);
        let mut r = TarReader::new(&t[..], Limits::default(), "l");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, b"from-x");
        assert_eq!(e.size, 4);
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn two_long_names_or_pax_headers_for_one_entry_are_ambiguous() {
        // Which one applies depends on the reader: refused outright.
        for (first, second, what) in [
            (block("././@LongLink", b'L', b"a\0"), block("././@LongLink", b'L', b"b\0"), "two GNU long name"),
            (block("././@LongLink", b'K', b"a\0"), block("././@LongLink", b'K', b"b\0"), "two GNU long link"),
            (block("x", b'x', b"10 path=a\n"), block("x", b'x', b"10 path=b\n"), "two PAX headers"),
        ] {
            let mut t = first;
            t.extend(second);
            t.extend(block("f", b'0', b""));
            t.extend([0u8; 1024]);
            let err = TarReader::new(&t[..], Limits::default(), "l").next_entry().unwrap_err();
            assert!(matches!(&err, Error::InvalidTar { reason, .. } if reason.contains(what)), "{what}: {err}");
        }
    }

    #[test]
    fn sparse_entries_of_each_encoding_read_as_their_files() {
        // (size 12) "\0\0abc\0\0\0de\0\0" as old GNU S, PAX 0.0, 0.1 and 1.0.
        let want = b"\0\0abc\0\0\0de\0\0";
        let num = |v: u64| format!("{v:011o}\0").into_bytes();
        let mut s = block("s", b'S', b"abcde");
        for (i, (off, len)) in [(2u64, 3u64), (8, 2)].into_iter().enumerate() {
            s[386 + i * 24..398 + i * 24].copy_from_slice(&num(off));
            s[398 + i * 24..410 + i * 24].copy_from_slice(&num(len));
        }
        s[483..495].copy_from_slice(&num(12));
        let sum: u32 =
            s[..512].iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        s[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        // PAX records, each with its own length.
        let pax = |recs: &[(&str, &str)]| -> Vec<u8> {
            let mut out = Vec::new();
            for (k, v) in recs {
                let body = k.len() + v.len() + 3;
                let len = (1..).map(|d| body + d).find(|&n| n.to_string().len() + body == n).unwrap();
                out.extend(format!("{len} {k}={v}\n").into_bytes());
            }
            out
        };
        let pax0 = pax(&[
            ("GNU.sparse.size", "12"),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.offset", "2"),
            ("GNU.sparse.numbytes", "3"),
            ("GNU.sparse.offset", "8"),
            ("GNU.sparse.numbytes", "2"),
        ]);
        let mut p0 = block("x", b'x', &pax0);
        p0.extend(block("s", b'0', b"abcde"));
        let pax1 = pax(&[
            ("GNU.sparse.size", "12"),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.map", "2,3,8,2"),
            ("GNU.sparse.name", "s"),
        ]);
        let mut p1 = block("x", b'x', &pax1);
        p1.extend(block("GNUSparseFile.1/s", b'0', b"abcde"));
        let pax10 = pax(&[
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.name", "s"),
            ("GNU.sparse.realsize", "12"),
        ]);
        let mut data10 = b"2\n2\n3\n8\n2\n".to_vec();
        data10.resize(512, 0);
        data10.extend_from_slice(b"abcde");
        let mut p10 = block("x", b'x', &pax10);
        p10.extend(block("GNUSparseFile.1/s", b'0', &data10));
        for (name, mut t) in [("old GNU", s), ("PAX 0.0", p0), ("PAX 0.1", p1), ("PAX 1.0", p10)] {
            t.extend(block("after", b'0', b"next"));
            t.extend([0u8; 1024]);
            let mut r = TarReader::new(&t[..], Limits::default(), "l");
            let e = r.next_entry().unwrap_or_else(|e| panic!("{name}: {e}")).unwrap();
            assert_eq!((&e.path[..], e.size), (&b"s"[..], 12), "{name}");
            assert_eq!(e.sparse.as_ref().map(|m| m.segments().to_vec()), Some(vec![(2, 3), (8, 2)]), "{name}");
            let mut got = Vec::new();
            r.read_data(|c| -> Result<()> {
                got.extend_from_slice(c);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, want, "{name}");
            let next = r.next_entry().unwrap().unwrap();
            assert_eq!(next.path, b"after", "{name}: framing after the sparse entry");
        }
    }

    #[test]
    fn a_gnu_dumpdir_is_a_directory_whose_listing_is_skipped() {
        let mut t = block("d/", b'D', b"Nfile\0Ysub\0\0");
        t.extend(block("d/file", b'0', b"x"));
        t.extend([0u8; 1024]);
        let mut r = TarReader::new(&t[..], Limits::default(), "l");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.kind, e.size), (EntryKind::Dir, 0));
        assert_eq!(r.next_entry().unwrap().unwrap().path, b"d/file");
    }

    #[test]
    fn sizes_past_i64_are_refused() {
        let mut t = block("x", b'x', b"29 size=18446744073709551615\n");
        t.extend(block("f", b'0', b""));
        let mut r = TarReader::new(&t[..], Limits::default(), "l");
        let err = r.next_entry().unwrap_err();
        assert!(matches!(&err, Error::InvalidTar { reason, .. } if reason.contains("out of range")), "{err}");
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"  644 \0"), Some(0o644));
        assert_eq!(numeric(b"\0\0\0\0"), Some(0));
        assert_eq!(numeric(b""), None);
        assert_eq!(numeric(b"12 34"), None);
        assert_eq!(numeric(b"9"), None);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(numeric(&[0xff, 0xff]), None);
        assert_eq!(numeric(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
