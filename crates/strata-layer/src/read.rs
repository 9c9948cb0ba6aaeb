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
//! - the archive ends at the first zero block, or at a clean end of stream between
//!   entries. The caller reads the rest of the stream (the second zero block and any
//!   padding) so that the `diff_id` covers every byte.

use std::io::{self, BufRead};

use crate::error::{Error, Result};

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
    /// Bytes of data that follow (0 for every type but regular files).
    pub size: u64,
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

/// Values a PAX extended header overrides in the entry that follows it.
#[derive(Default)]
struct Pax {
    present: bool,
    path: Option<(usize, usize)>,
    link: Option<(usize, usize)>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<Mtime>,
}

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
    /// Data bytes of the current entry not yet read.
    remaining: u64,
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
        if let Some((s, l)) = pax.path {
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
            b'0' | b'7' => EntryKind::File,
            0 if self.entry.path.last() == Some(&b'/') => EntryKind::Dir,
            0 => EntryKind::File,
            b'1' => EntryKind::Hardlink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::Char,
            b'4' => EntryKind::Block,
            b'5' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            b'S' => return Err(self.entry_error("GNU sparse files are not supported")),
            t => return Err(self.entry_error(format!("unsupported entry type {:?}", t as char))),
        };
        if pax.present && pax_has_sparse(pax_bytes) {
            return Err(self.entry_error("PAX sparse files (GNU.sparse.*) are not supported"));
        }
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
        // PAX size always wins (CVE-2025-62518); header-only types carry no data. Sizes
        // past i64::MAX are refused, as Go refuses them (and `remaining + padding` must
        // not overflow).
        let declared_size = pax.size.unwrap_or(raw_size);
        let size = if kind == EntryKind::File { declared_size } else { 0 };
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
        (e.kind, e.mode, e.uid, e.gid, e.mtime, e.size) = (kind, mode, uid, gid, mtime, size);
        e.declared_size = declared_size;
        (e.dev_major, e.dev_minor) = (dev_major, dev_minor);
        self.remaining = size;
        self.padding = pad(size);
        Ok(())
    }

    /// The current entry (after [`TarReader::next_entry`] returned one).
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Pass the current entry's data to `f` in chunks, as they come from the stream (no
    /// copy). An error of `f` stops the reading and is returned as it is.
    pub fn read_data<E: From<Error>>(
        &mut self,
        mut f: impl FnMut(&[u8]) -> std::result::Result<(), E>,
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
            let take = (buf.len() as u64).min(self.remaining) as usize;
            f(&buf[..take])?;
            self.inner.consume(take);
            self.offset += take as u64;
            self.remaining -= take as u64;
        }
        Ok(())
    }
}

impl<R: BufRead + io::Seek> TarReader<R> {
    /// Skip what is left of the current entry's data, and its padding, by seeking
    /// rather than reading: for an uncompressed tar read only for its headers.
    pub(crate) fn seek_past_data(&mut self) -> Result<()> {
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

enum PaxProblem {
    Invalid(String),
    Limit { what: &'static str, actual: u64, limit: u64 },
}

/// Iterator over `"<len> <key>=<value>\n"` records.
struct PaxRecords<'a> {
    rest: &'a [u8],
}

impl<'a> PaxRecords<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        PaxRecords { rest: bytes }
    }
}

impl<'a> Iterator for PaxRecords<'a> {
    type Item = std::result::Result<(&'a [u8], &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        // Trailing NULs pad some writers' PAX data.
        if self.rest.is_empty() || self.rest.iter().all(|&b| b == 0) {
            return None;
        }
        let rec = (|| {
            let sp = self.rest.iter().position(|&b| b == b' ').ok_or("record without a length")?;
            let len_str = &self.rest[..sp];
            if len_str.is_empty() || len_str.len() > 20 || !len_str.iter().all(u8::is_ascii_digit) {
                return Err("bad record length".to_string());
            }
            let len: usize = std::str::from_utf8(len_str)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "bad record length".to_string())?;
            if len <= sp + 1 || len > self.rest.len() {
                return Err(format!("record length {len} out of bounds"));
            }
            let rec = &self.rest[sp + 1..len];
            let Some((&b'\n', kv)) = rec.split_last() else {
                return Err("record does not end with a newline".to_string());
            };
            let eq = kv.iter().position(|&b| b == b'=').ok_or("record without '='")?;
            let (k, v) = (&kv[..eq], &kv[eq + 1..]);
            if k.is_empty() {
                return Err("record with an empty key".to_string());
            }
            self.rest = &self.rest[len..];
            Ok((k, v))
        })();
        if rec.is_err() {
            self.rest = &[];
        }
        Some(rec)
    }
}

fn pax_has_sparse(bytes: &[u8]) -> bool {
    PaxRecords::new(bytes).any(|r| r.is_ok_and(|(k, _)| k.starts_with(b"GNU.sparse.")))
}

fn parse_pax(bytes: &[u8], limits: &Limits) -> std::result::Result<Pax, PaxProblem> {
    let mut pax = Pax { present: true, ..Pax::default() };
    let base = bytes.as_ptr() as usize;
    let num = |k: &[u8], v: &[u8]| -> std::result::Result<u64, PaxProblem> {
        std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                PaxProblem::Invalid(format!(
                    "{} is not a number: {:?}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                ))
            })
    };
    for rec in PaxRecords::new(bytes) {
        let (k, v) = rec.map_err(PaxProblem::Invalid)?;
        let span = (v.as_ptr() as usize - base, v.len());
        // An empty value deletes the record: the header field applies.
        let empty = v.is_empty();
        match k {
            b"path" if !empty => pax.path = Some(span),
            b"linkpath" if !empty => pax.link = Some(span),
            b"size" if !empty => pax.size = Some(num(k, v)?),
            b"uid" if !empty => pax.uid = Some(num(k, v)?),
            b"gid" if !empty => pax.gid = Some(num(k, v)?),
            b"mtime" if !empty => {
                pax.mtime = Some(parse_pax_time(v).ok_or_else(|| {
                    PaxProblem::Invalid(format!("mtime is not a time: {:?}", String::from_utf8_lossy(v)))
                })?)
            }
            _ => {
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    if name.is_empty() || name.contains(&0) {
                        return Err(PaxProblem::Invalid("xattr with an empty name or a NUL in it".into()));
                    }
                    if v.len() > limits.max_xattr_value {
                        return Err(PaxProblem::Limit {
                            what: "xattr value",
                            actual: v.len() as u64,
                            limit: limits.max_xattr_value as u64,
                        });
                    }
                }
            }
        }
    }
    Ok(pax)
}

/// Parse a PAX time: `[-]secs[.frac]`.
fn parse_pax_time(v: &[u8]) -> Option<Mtime> {
    let (neg, v) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &[][..]),
    };
    if int.is_empty() || int.len() > 18 || !int.iter().all(u8::is_ascii_digit) || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs: i64 = std::str::from_utf8(int).ok()?.parse().ok()?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Some(if !neg {
        Mtime { secs, nanos }
    } else if nanos == 0 {
        Mtime { secs: -secs, nanos: 0 }
    } else {
        Mtime { secs: -secs - 1, nanos: 1_000_000_000 - nanos }
    })
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

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000.5"), Some(Mtime { secs: 1_700_000_000, nanos: 500_000_000 }));
        assert_eq!(parse_pax_time(b"12"), Some(Mtime { secs: 12, nanos: 0 }));
        assert_eq!(parse_pax_time(b"1.0000000019"), Some(Mtime { secs: 1, nanos: 1 }));
        assert_eq!(parse_pax_time(b"-1.25"), Some(Mtime { secs: -2, nanos: 750_000_000 }));
        assert_eq!(parse_pax_time(b""), None);
        assert_eq!(parse_pax_time(b"1e9"), None);
        assert_eq!(parse_pax_time(b"99999999999999999999"), None);
    }

    #[test]
    fn pax_records() {
        let recs: Vec<_> = PaxRecords::new(b"11 path=ab\n8 uid=7\n").collect();
        assert_eq!(recs, vec![Ok((&b"path"[..], &b"ab"[..])), Ok((&b"uid"[..], &b"7"[..]))]);
        for bad in [&b"x path=ab\n"[..], b"99 path=ab\n", b"10 path=ab", b"6 ab\n", b"3 =\n"] {
            assert!(PaxRecords::new(bad).next().unwrap().is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
