//! The layer writer: entries in, one pass of tar -> diff_id -> compressor -> digest and
//! size -> sink out.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd};
use strata_spec::progress::{ByteCount, Event, ProgressHook};
use strata_spec::{Algorithm, Compression, Descriptor, Digest, Digester, Family, MediaType};

use crate::compress::{Encoder, EncoderConfig};
use crate::entry::{EntryKind, EntryMeta, Timestamp, tar_order};
use crate::error::{Error, Result};
use crate::header::{self, BLOCK, Header};
use crate::path::{Class, OPAQUE_MARKER, WHITEOUT_PREFIX, classify, normalize};
use crate::scan::{self, FileKind, ReadAhead, Stat, Visitor};

/// Default gzip level: libdeflate's level 4, which compresses as well as zlib's default
/// level 6 (what `gzip`, `pigz` and most image tools use): on the Debian minbase rootfs
/// (121 MB of tar) it gives 48.9 MB against `pigz -6`'s 48.5 MB, in 60% of the time of
/// libdeflate's own level 6 (47.9 MB). Ask for level 6 when size matters more than time.
pub const DEFAULT_GZIP_LEVEL: i32 = 4;
/// Default zstd level: zstd's own default.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Default gzip block size. 1 MiB blocks lose about 0.1% of ratio against 4 MiB ones on
/// a Debian rootfs (each member restarts deflate's 32 KiB window) while giving a
/// 60 MB layer ~50 units of parallel work; pgzip uses the same size.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
/// Smallest accepted block size.
pub const MIN_BLOCK_SIZE: usize = 4096;
/// Largest accepted block size (memory is about `4 * threads * block_size`).
pub const MAX_BLOCK_SIZE: usize = 64 << 20;
/// Size of the buffer file contents are copied through.
const COPY_BUF: usize = 256 << 10;

/// How to write a layer. The defaults give a gzip layer at level 4 ([`DEFAULT_GZIP_LEVEL`]) on all cores, with
/// numeric owners only and mtimes as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Compression of the blob (default gzip).
    pub compression: Compression,
    /// Compression level; `None` is [`DEFAULT_GZIP_LEVEL`] or [`DEFAULT_ZSTD_LEVEL`].
    /// gzip takes 0..=12 (libdeflate's scale; 1-9 match zlib's meaning), zstd its own range.
    pub level: Option<i32>,
    /// Compression threads; 0 means one per core. Never changes the output.
    pub threads: usize,
    /// Uncompressed bytes per gzip member (see [`DEFAULT_BLOCK_SIZE`]). Changes the
    /// output, so keep it fixed where digests must be reproducible.
    pub block_size: usize,
    /// `SOURCE_DATE_EPOCH`: mtimes later than this many seconds since the epoch are
    /// written as exactly this.
    pub mtime_clamp: Option<i64>,
    /// Owner and group names to write as uname/gname. `None` (the default) writes none:
    /// numeric ids are what every applier uses, and names make output depend on the host.
    pub owner_names: Option<OwnerNames>,
    /// Told the uncompressed tar bytes written (`Layer*` events: started, progress every
    /// 256 KiB, done), for progress bars.
    pub progress: ProgressHook,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Gzip,
            level: None,
            threads: 0,
            block_size: DEFAULT_BLOCK_SIZE,
            mtime_clamp: None,
            owner_names: None,
            progress: ProgressHook::default(),
        }
    }
}

/// Builders.
impl WriteOptions {
    /// Set the compression.
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    /// Set the compression level.
    pub fn level(mut self, level: i32) -> Self {
        self.level = Some(level);
        self
    }
    /// Set the number of compression threads (0: one per core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }
    /// Set the gzip block size.
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes;
        self
    }
    /// Clamp mtimes to `SOURCE_DATE_EPOCH`.
    pub fn mtime_clamp(mut self, epoch: i64) -> Self {
        self.mtime_clamp = Some(epoch);
        self
    }
    /// Read `SOURCE_DATE_EPOCH` from the environment, if set to an integer.
    pub fn mtime_clamp_from_env(mut self) -> Self {
        self.mtime_clamp = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok());
        self
    }
    /// Report progress to `hook` ([`WriteOptions::progress`]).
    pub fn progress(mut self, hook: ProgressHook) -> Self {
        self.progress = hook;
        self
    }
    /// Write these owner names.
    pub fn owner_names(mut self, names: OwnerNames) -> Self {
        self.owner_names = Some(names);
        self
    }

    fn encoder_config(&self) -> Result<EncoderConfig> {
        let bad = |reason: String| Error::InvalidOption { reason };
        let level = match self.compression {
            Compression::None => 0,
            Compression::Gzip => {
                let l = self.level.unwrap_or(DEFAULT_GZIP_LEVEL);
                if !(0..=12).contains(&l) {
                    return Err(bad(format!("gzip level {l} is not in 0..=12")));
                }
                l
            }
            #[cfg(feature = "zstd")]
            Compression::Zstd => {
                let l = self.level.unwrap_or(DEFAULT_ZSTD_LEVEL);
                if !zstd::compression_level_range().contains(&l) {
                    return Err(bad(format!("zstd level {l} is not in {:?}", zstd::compression_level_range())));
                }
                l
            }
            #[cfg(not(feature = "zstd"))]
            Compression::Zstd => {
                return Err(Error::UnsupportedCompression {
                    layer: "new layer".into(),
                    compression: Compression::Zstd,
                });
            }
        };
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            return Err(bad(format!("block size {} is not in {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}", self.block_size)));
        }
        let threads = match self.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        };
        Ok(EncoderConfig { compression: self.compression, level, threads, block_size: self.block_size })
    }
}

/// Owner and group names by id, for uname/gname fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerNames {
    /// User names by uid.
    pub users: BTreeMap<u32, String>,
    /// Group names by gid.
    pub groups: BTreeMap<u32, String>,
}

impl OwnerNames {
    /// The names in a root filesystem's own `etc/passwd` and `etc/group` (the image's
    /// users, not the host's). Missing files give empty tables.
    pub fn from_root(root: &Path) -> Result<OwnerNames> {
        let fd = scan::open_root(root)?;
        let table = |rel: &str| -> Result<BTreeMap<u32, String>> {
            let rel = Path::new(rel);
            let mut text = String::new();
            match scan::open_in_root(fd.as_fd(), rel) {
                Ok(mut f) => {
                    let mut bytes = Vec::new();
                    f.read_to_end(&mut bytes).map_err(|e| scan::io_err("read", rel, e))?;
                    text = String::from_utf8_lossy(&bytes).into_owned();
                }
                Err(Error::Io(e)) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            let mut map = BTreeMap::new();
            for line in text.lines() {
                let mut f = line.split(':');
                if let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next())
                    && let Ok(id) = id.parse::<u32>()
                {
                    // The first line for an id wins, as getpwuid does.
                    map.entry(id).or_insert_with(|| name.to_string());
                }
            }
            Ok(map)
        };
        Ok(OwnerNames { users: table("etc/passwd")?, groups: table("etc/group")? })
    }
}

/// What a written layer is: everything needed for its descriptor and the config's
/// `rootfs.diff_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// SHA-256 of the uncompressed tar (goes into the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// SHA-256 of the blob as written to the sink (the descriptor's digest).
    pub digest: Digest,
    /// Bytes written to the sink (the descriptor's size).
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The sum of the sizes the tar's entries declare: the layer's size as docker reports
    /// it (see [`crate::read::content_size`]).
    pub content_size: u64,
    /// Compression of the blob.
    pub compression: Compression,
    /// Number of tar entries written (PAX headers not counted).
    pub entries: u64,
}

impl LayerInfo {
    /// The layer media type in `family` (OCI or Docker) for this compression.
    pub fn media_type(&self, family: Family) -> MediaType {
        MediaType::layer(family, self.compression)
    }

    /// A descriptor of the blob.
    pub fn descriptor(&self, family: Family) -> Descriptor {
        Descriptor::new(self.media_type(family), self.digest.clone(), self.size)
    }
}

/// Writes one layer in a single pass: tar bytes are hashed into the `diff_id`, compressed,
/// hashed again into the `digest` and counted on their way to the sink. Memory stays
/// bounded (a few blocks per compression thread) whatever the layer size.
///
/// Entries must be appended in tar order ([`tar_order`]): the writer refuses anything
/// else, which is what makes its output deterministic. If a call fails the layer is
/// incomplete: drop the writer and discard what reached the sink.
pub struct LayerWriter<W: Write> {
    enc: Encoder<W>,
    diff: Digester,
    tar_bytes: u64,
    /// Sum of the entries' declared sizes.
    content: u64,
    compression: Compression,
    clamp: Option<i64>,
    names: Option<OwnerNames>,
    last: Option<PathBuf>,
    entries: u64,
    hdr: Vec<u8>,
    copy: Vec<u8>,
    progress: ProgressHook,
    /// The tar bytes, for progress reports only (`tar_bytes` is the record).
    counted: ByteCount,
}

impl<W: Write> std::fmt::Debug for LayerWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerWriter")
            .field("compression", &self.compression)
            .field("entries", &self.entries)
            .field("tar_bytes", &self.tar_bytes)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl<W: Write> LayerWriter<W> {
    /// A writer sending the (compressed) layer to `sink`.
    pub fn new(sink: W, opts: &WriteOptions) -> Result<Self> {
        let cfg = opts.encoder_config()?;
        let enc = Encoder::new(sink, cfg).map_err(|source| Error::Sink { source })?;
        Ok(LayerWriter {
            enc,
            diff: Digester::new(Algorithm::Sha256),
            tar_bytes: 0,
            content: 0,
            compression: opts.compression,
            clamp: opts.mtime_clamp,
            names: opts.owner_names.clone(),
            last: None,
            entries: 0,
            hdr: Vec::with_capacity(2 * BLOCK),
            copy: Vec::new(),
            progress: {
                opts.progress.event(&Event::LayerStarted { index: 0, count: 1, descriptor: None });
                opts.progress.clone()
            },
            counted: ByteCount::default(),
        })
    }

    /// Feed raw tar bytes into the pipeline.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.diff.update(bytes);
        self.tar_bytes += bytes.len() as u64;
        if self.progress.is_set()
            && let Some(bytes) = self.counted.add(bytes.len())
        {
            self.progress.event(&Event::LayerProgress { index: 0, count: 1, descriptor: None, bytes });
        }
        self.enc.write_all(bytes).map_err(|source| Error::Sink { source })
    }

    /// Check a path: normalised, and after the previous entry in tar order.
    fn check_order(&mut self, path: &Path) -> Result<()> {
        match normalize(path.as_os_str().as_bytes()) {
            Ok(n) if n == path => {}
            _ => {
                return Err(Error::Unrepresentable {
                    path: path.to_path_buf(),
                    reason: "path is not normalised (relative, no '.', '..' or empty components)".into(),
                });
            }
        }
        if let Some(prev) = &self.last
            && tar_order(prev, path) != std::cmp::Ordering::Less
        {
            return Err(Error::OutOfOrder { previous: prev.clone(), path: path.to_path_buf() });
        }
        self.last = Some(path.to_path_buf());
        Ok(())
    }

    /// Append an entry without content: a directory, symlink, hard link, device, fifo,
    /// or an empty regular file.
    pub fn append(&mut self, meta: &EntryMeta) -> Result<()> {
        if meta.kind == EntryKind::File && meta.size != 0 {
            return Err(Error::Unrepresentable {
                path: meta.path.clone(),
                reason: "a regular file with content needs append_file".into(),
            });
        }
        self.append_header(meta)
    }

    /// Append a regular file, copying exactly `meta.size` bytes from `content`. A source
    /// with fewer bytes is an error ([`Error::SourceChanged`]); bytes beyond are not read.
    pub fn append_file(&mut self, meta: &EntryMeta, content: &mut dyn Read) -> Result<()> {
        if meta.kind != EntryKind::File {
            return Err(Error::Unrepresentable {
                path: meta.path.clone(),
                reason: format!("append_file called for a {}", meta.kind.name()),
            });
        }
        self.append_header(meta)?;
        let mut left = meta.size;
        if self.copy.len() < COPY_BUF {
            self.copy.resize(COPY_BUF, 0);
        }
        let mut copy = std::mem::take(&mut self.copy);
        let result = (|| {
            while left > 0 {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(copy.len());
                let n = match content.read(&mut copy[..want]) {
                    Ok(0) => {
                        return Err(Error::SourceChanged {
                            path: meta.path.clone(),
                            reason: format!("ended {left} bytes short of its size {}", meta.size),
                        });
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(scan::io_err("read", &meta.path, e)),
                };
                self.put(&copy[..n])?;
                left -= n as u64;
            }
            Ok(())
        })();
        self.copy = copy;
        result?;
        let rem = (meta.size % BLOCK as u64) as usize;
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// [`LayerWriter::append_file`] of content already in memory (`content.len()` must be
    /// `meta.size`): no copy through the writer's buffer.
    pub(crate) fn append_content(&mut self, meta: &EntryMeta, content: &[u8]) -> Result<()> {
        if meta.kind != EntryKind::File || content.len() as u64 != meta.size {
            return Err(Error::Unrepresentable {
                path: meta.path.clone(),
                reason: format!(
                    "append_content of {} bytes for a {} of size {}",
                    content.len(),
                    meta.kind.name(),
                    meta.size
                ),
            });
        }
        self.append_header(meta)?;
        self.put(content)?;
        let rem = content.len() % BLOCK;
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Append a whiteout for `path`: `.wh.<name>` in its parent directory, which deletes
    /// `path` as lower layers left it.
    pub fn append_whiteout(&mut self, path: &Path) -> Result<()> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::Unrepresentable {
                path: path.to_path_buf(),
                reason: "the root cannot be whited out".into(),
            });
        };
        let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
        wh.extend_from_slice(name.as_bytes());
        let wpath = parent.join(OsStr::from_bytes(&wh));
        self.append_marker(&wpath)
    }

    /// Append an opaque marker for directory `dir` (`dir/.wh..wh..opq`): what lower layers
    /// put in `dir` is hidden, what this layer puts there stays. Tar order places it
    /// right after `dir` itself, before the directory's contents.
    pub fn append_opaque(&mut self, dir: &Path) -> Result<()> {
        self.append_marker(&dir.join(OPAQUE_MARKER))
    }

    /// Whiteouts and opaque markers: empty regular files, mode 0, owner 0:0, mtime 0.
    fn append_marker(&mut self, path: &Path) -> Result<()> {
        self.check_order(path)?;
        let h = Header {
            name: path.as_os_str().as_bytes(),
            typeflag: b'0',
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: Timestamp::default(),
            linkname: b"",
            uname: b"",
            gname: b"",
            devmajor: 0,
            devminor: 0,
            xattrs: None,
        };
        self.emit(&h, path)
    }

    fn emit(&mut self, h: &Header<'_>, path: &Path) -> Result<()> {
        let mut buf = std::mem::take(&mut self.hdr);
        buf.clear();
        let r =
            header::encode(h, &mut buf).map_err(|reason| Error::Unrepresentable { path: path.to_path_buf(), reason });
        let r = r.and_then(|()| self.put(&buf));
        self.hdr = buf;
        r?;
        self.entries += 1;
        self.content = self.content.saturating_add(h.size);
        Ok(())
    }

    fn append_header(&mut self, meta: &EntryMeta) -> Result<()> {
        let path = &meta.path;
        if path.as_os_str().is_empty() && meta.kind != EntryKind::Dir {
            return Err(Error::Unrepresentable { path: path.clone(), reason: "the root must be a directory".into() });
        }
        match classify(path) {
            Ok(Class::Plain) => {}
            _ => {
                return Err(Error::Unrepresentable {
                    path: path.clone(),
                    reason: "the name is reserved for whiteouts (.wh. prefix)".into(),
                });
            }
        }
        self.check_order(path)?;
        let mut name = path.as_os_str().as_bytes().to_vec();
        if meta.kind == EntryKind::Dir {
            if name.is_empty() {
                name.push(b'.');
            }
            name.push(b'/');
        }
        let (typeflag, linkname, dev): (u8, &[u8], (u32, u32)) = match &meta.kind {
            EntryKind::File => (b'0', b"", (0, 0)),
            EntryKind::Dir => (b'5', b"", (0, 0)),
            EntryKind::Symlink { target } => (b'2', target.as_os_str().as_bytes(), (0, 0)),
            EntryKind::HardLink { target } => {
                match normalize(target.as_os_str().as_bytes()) {
                    Ok(n) if n == *target && !n.as_os_str().is_empty() && n != *path => {}
                    _ => {
                        return Err(Error::Unrepresentable {
                            path: path.clone(),
                            reason: format!("hard link target {:?} is not a normalised path", target),
                        });
                    }
                }
                (b'1', target.as_os_str().as_bytes(), (0, 0))
            }
            EntryKind::CharDevice { major, minor } => (b'3', b"", (*major, *minor)),
            EntryKind::BlockDevice { major, minor } => (b'4', b"", (*major, *minor)),
            EntryKind::Fifo => (b'6', b"", (0, 0)),
        };
        let (uname, gname) = match &self.names {
            Some(n) => (
                n.users.get(&meta.uid).map(String::as_bytes).unwrap_or(b"").to_vec(),
                n.groups.get(&meta.gid).map(String::as_bytes).unwrap_or(b"").to_vec(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let h = Header {
            name: &name,
            typeflag,
            mode: meta.mode & 0o7777,
            uid: u64::from(meta.uid),
            gid: u64::from(meta.gid),
            size: if meta.kind == EntryKind::File { meta.size } else { 0 },
            mtime: meta.mtime.clamped(self.clamp),
            linkname,
            uname: &uname,
            gname: &gname,
            devmajor: dev.0,
            devminor: dev.1,
            xattrs: (!meta.xattrs.is_empty()).then_some(&meta.xattrs),
        };
        self.emit(&h, path)
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Write the end-of-archive blocks, finish compression and return what was written
    /// with the sink.
    pub fn finish(mut self) -> Result<(LayerInfo, W)> {
        self.put(&[0u8; 2 * BLOCK])?;
        let diff_id = self.diff.finish();
        let (sink, digest, size) = self.enc.finish().map_err(|source| Error::Sink { source })?;
        self.progress.event(&Event::LayerDone { index: 0, count: 1, descriptor: None, bytes: self.tar_bytes });
        let info = LayerInfo {
            diff_id,
            digest,
            size,
            uncompressed_size: self.tar_bytes,
            content_size: self.content,
            compression: self.compression,
            entries: self.entries,
        };
        Ok((info, sink))
    }
}

/// Open the regular file `name` in `dir` for its content, checking it is still the
/// inode the walk saw with the size it saw.
pub(crate) fn open_checked(dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, seen: &Stat) -> Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| scan::io_err("open", rel, e))?;
    let st = scan::fstat(fd.as_fd()).map_err(|e| scan::io_err("stat", rel, e))?;
    check_same(rel, seen, &st)?;
    Ok(std::fs::File::from(fd))
}

/// The file opened is the file the walk saw, with the same size.
pub(crate) fn check_same(rel: &Path, seen: &Stat, now: &Stat) -> Result<()> {
    if now.kind != FileKind::File || now.id() != seen.id() {
        return Err(Error::SourceChanged { path: rel.to_path_buf(), reason: "was replaced".into() });
    }
    if now.size != seen.size {
        return Err(Error::SourceChanged {
            path: rel.to_path_buf(),
            reason: format!("size went from {} to {} bytes", seen.size, now.size),
        });
    }
    Ok(())
}

/// Write the whole tree under `root` as one layer (`docker import` of a directory,
/// `FROM scratch`): every entry in tar order, the root itself as `./`, hard links kept
/// as links (the first path of each group in tar order carries the content), sockets
/// skipped. Reads through directory fds and never follows a symlink.
pub fn write_tree<W: Write>(root: &Path, sink: W, opts: &WriteOptions) -> Result<(LayerInfo, W)> {
    write_tree_with(root, sink, opts, scan::walk_threads())
}

/// [`write_tree`] with `walk_threads` threads listing directories and reading small
/// files ahead of the writer (0: everything on the calling thread). The output does not
/// depend on it.
pub(crate) fn write_tree_with<W: Write>(
    root: &Path,
    sink: W,
    opts: &WriteOptions,
    walk_threads: usize,
) -> Result<(LayerInfo, W)> {
    let mut w = LayerWriter::new(sink, opts)?;
    let root_fd = scan::open_root(root)?;
    let st = scan::fstat(root_fd.as_fd()).map_err(|e| scan::io_err("stat", root, e))?;
    let meta = scan::entry_meta(Path::new(""), &st, None, scan::layer_xattrs(root)?)?;
    w.append(&meta)?;

    struct Tree<'a, W: Write> {
        root: &'a Path,
        w: LayerWriter<W>,
        links: HashMap<(u64, u64), PathBuf>,
    }
    /// Where a regular file's content comes from.
    enum Content {
        /// Read ahead by a walk thread.
        Ahead(ReadAhead),
        /// Opened here, read while written.
        Open(std::fs::File),
    }
    impl<W: Write> Visitor for Tree<'_, W> {
        fn reads_files(&self) -> bool {
            true
        }

        fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool> {
            self.visit_read(dir, name, rel, st, None)
        }

        fn visit_read(
            &mut self,
            dir: BorrowedFd<'_>,
            name: &OsStr,
            rel: &Path,
            st: &Stat,
            ahead: Option<ReadAhead>,
        ) -> Result<bool> {
            if st.kind == FileKind::Socket {
                return Ok(false);
            }
            // A file with content is opened first and its xattrs read through the fd
            // (no path lookup), unless a walk thread did both already; a second name of
            // a hard link is not opened.
            let linked = st.nlink > 1 && self.links.contains_key(&st.id());
            let mut file = match ahead {
                _ if st.kind != FileKind::File || st.size == 0 || linked => None,
                Some(a) => Some(Content::Ahead(a)),
                None => Some(Content::Open(open_checked(dir, name, rel, st)?)),
            };
            let mut meta = match &mut file {
                Some(Content::Ahead(a)) => scan::entry_meta(rel, st, None, std::mem::take(&mut a.xattrs))?,
                Some(Content::Open(f)) => scan::entry_meta(rel, st, None, scan::layer_xattrs_fd(f.as_fd(), rel)?)?,
                None => scan::full_meta(self.root, Some((dir, name)), rel, st)?,
            };
            if st.kind == FileKind::File && st.nlink > 1 {
                if let Some(first) = self.links.get(&st.id()) {
                    meta.kind = EntryKind::HardLink { target: first.clone() };
                    meta.size = 0;
                    self.w.append(&meta)?;
                    return Ok(false);
                }
                self.links.insert(st.id(), rel.to_path_buf());
            }
            match file {
                Some(Content::Ahead(a)) => self.w.append_content(&meta, &a.content)?,
                Some(Content::Open(mut f)) => self.w.append_file(&meta, &mut f)?,
                None => self.w.append(&meta)?,
            }
            Ok(true)
        }
    }
    let mut t = Tree { root, w, links: HashMap::new() };
    scan::walk_with(root, &mut t, walk_threads)?;
    t.w.finish()
}

impl<W: Write> LayerWriter<W> {
    /// Finish without appending end-of-archive blocks (the input had its own).
    pub(crate) fn finish_raw(self) -> Result<(LayerInfo, W)> {
        let diff_id = self.diff.finish();
        let (sink, digest, size) = self.enc.finish().map_err(|source| Error::Sink { source })?;
        self.progress.event(&Event::LayerDone { index: 0, count: 1, descriptor: None, bytes: self.tar_bytes });
        Ok((
            LayerInfo {
                diff_id,
                digest,
                size,
                uncompressed_size: self.tar_bytes,
                content_size: self.content,
                compression: self.compression,
                entries: self.entries,
            },
            sink,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of many small files over several directories (more than the walk lists
    /// ahead), with files too big to read ahead, empty files, hard links, symlinks and
    /// xattrs where the file system keeps them.
    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in 0..12 {
            let dir = t.path().join(format!("d{d}/e{}", d % 3));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..40 {
                let len = (d * 40 + f) * 37 % 3000;
                std::fs::write(dir.join(format!("f{f}")), vec![b'a' + (f % 26) as u8; len]).unwrap();
            }
            std::fs::write(dir.join("big"), vec![d as u8; scan::READ_AHEAD_FILE_MAX as usize + 1 + d]).unwrap();
            std::fs::hard_link(dir.join("f1"), dir.join("link")).unwrap();
            std::os::unix::fs::symlink("f2", dir.join("sym")).unwrap();
            // Best effort: tmpfs and ext4 keep user xattrs, some file systems do not.
            let _ = rustix::fs::setxattr(dir.join("f3"), "user.k", b"v", rustix::fs::XattrFlags::empty());
        }
        t
    }

    #[test]
    fn write_tree_writes_the_same_bytes_with_and_without_read_ahead() {
        let t = tree();
        let opts = WriteOptions::default();
        let (info, one) = write_tree_with(t.path(), Vec::new(), &opts, 0).unwrap();
        for threads in [1, 2, 4] {
            let (info2, many) = write_tree_with(t.path(), Vec::new(), &opts, threads).unwrap();
            assert_eq!(info2, info, "{threads} threads");
            assert!(many == one, "{threads} threads: the blobs differ");
        }
        // Every file is in it, links as links.
        assert_eq!(info.entries, 1 + 12 * 2 + 12 * 43);
    }
}
