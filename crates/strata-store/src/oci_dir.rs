//! [`OciDir`]: a store that is an OCI image layout directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use rustix::fs::{FlockOperation, Mode, OFlags};
use strata_spec::{Algorithm, Descriptor, Digest, Index, MediaType};
use tempfile::NamedTempFile;

use crate::blob::{BlobReader, BlobWriter, Sink};
use crate::error::{Error, Result};
use crate::file_bytes::FileBytes;
use crate::fsck::{self, FsckOptions, FsckReport, Problem};
use crate::gc::{self, GcOptions, GcReport, TempFile};
use crate::lease::Lease;
use crate::record::{RecordKind, RecordUpdate};
use crate::store::{Backend, BlobStore, IndexEntries};
use crate::table::{NewEntry, Table};

mod index;
mod records;
mod spare;

/// The `oci-layout` file's content written by [`OciDir::create`].
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
/// Largest `oci-layout` file read: it is a one-field JSON object.
const MAX_OCI_LAYOUT_SIZE: u64 = 64 * 1024;
/// Largest `index.json` read: 256 MiB is about a million tagged descriptors (a
/// descriptor with a ref name takes ~220 bytes), four times the 250,000 entries strata is
/// measured with (`benches/scale.sh`).
const MAX_INDEX_SIZE: u64 = 256 << 20;
/// strata's private directory in a layout. OCI tools ignore files they do not know at
/// the top of a layout; nothing here is under `blobs/`, so no tool mistakes it for content.
const PRIVATE_DIR: &str = ".strata";
/// Blobs are world-readable, like those umoci and skopeo write.
const BLOB_MODE: u32 = 0o644;
/// The coarsest tick of the clock Linux stamps files with (a jiffy at HZ=100): a change
/// of `index.json` this long after another has a later ctime (see [`crate::table`]).
const TIMESTAMP_TICK: Duration = Duration::from_millis(10);
/// First bytes of a cache file ([`Backend::cache`]), with its format version.
/// (Version 2: the checksum of [`crate::table`] reads four words at a time.)
const CACHE_MAGIC: &[u8] = b"strata cache 2\n";
/// The largest cache file read or written.
const MAX_CACHE_SIZE: u64 = 256 << 20;

/// An OCI image layout directory used as a [`Backend`]:
///
/// ```text
/// <root>/oci-layout           {"imageLayoutVersion":"1.0.0"}
/// <root>/index.json           the image index; refs are org.opencontainers.image.ref.name
/// <root>/blobs/<alg>/<hex>    blobs
/// <root>/.strata/             strata's locks, temp files, records (see
///                             [`crate::record`]), the index table (a compact copy
///                             of index.json's entries, see `table.rs`) and the
///                             spare (the index.json the last change replaced, which
///                             the next writes over: `oci_dir/spare.rs`), created on
///                             first write
/// ```
///
/// Layouts written by umoci, skopeo, podman and buildah open as they are. Opening and
/// reading never modify the directory; `.strata/` is created by the first operation that
/// writes (a blob write, a lease, a ref change, GC).
#[derive(Debug, Clone)]
pub struct OciDir {
    root: PathBuf,
    /// (device, inode) of `root`: identifies the layout for in-process lease sharing.
    key: (u64, u64),
}

/// The last index table this process used, by layout (device, inode of the root): a
/// lookup after another, through any handle, then costs a `stat` of `index.json`.
static TABLE: Mutex<Option<CachedTable>> = Mutex::new(None);

/// A layout (device, inode of its root) and its index table.
type CachedTable = ((u64, u64), Arc<Table>);

/// Live leases per layout in this process, so that nested leases share one `flock`.
static LEASES: Mutex<BTreeMap<(u64, u64), Weak<OciLease>>> = Mutex::new(BTreeMap::new());

/// A shared lock on `.strata/gc.lock`, released when the last [`Lease`] clone drops.
#[derive(Debug)]
struct OciLease {
    _file: File,
}

/// # Opening and creating
impl OciDir {
    /// Open an existing layout. Checks `oci-layout` (an `imageLayoutVersion` of 1.x) and
    /// that `index.json` exists; changes nothing.
    pub fn open(root: impl AsRef<Path>) -> Result<OciDir> {
        let root = root.as_ref().to_path_buf();
        let md = fs::metadata(&root).map_err(Error::io("open layout", &root))?;
        if !md.is_dir() {
            return Err(Error::InvalidLayout { path: root, reason: "not a directory".into() });
        }
        let dir = OciDir { key: (md.dev(), md.ino()), root };
        dir.check_layout_file()?;
        let index = dir.index_path();
        match fs::symlink_metadata(&index) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(Error::InvalidLayout { path: index, reason: "index.json is not a regular file".into() });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::InvalidLayout { path: index, reason: "no index.json".into() });
            }
            Err(e) => return Err(Error::io("stat", index)(e)),
        }
        Ok(dir)
    }

    /// Create a new, empty layout at `root` (the directory may exist but must not hold a
    /// layout already).
    pub fn create(root: impl AsRef<Path>) -> Result<OciDir> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(Error::io("create directory", &root))?;
        for name in ["oci-layout", "index.json"] {
            let p = root.join(name);
            if fs::symlink_metadata(&p).is_ok() {
                return Err(Error::InvalidLayout {
                    path: p,
                    reason: "already exists: not creating a layout here".into(),
                });
            }
        }
        let md = fs::metadata(&root).map_err(Error::io("stat", &root))?;
        let dir = OciDir { key: (md.dev(), md.ino()), root };
        let sha256 = dir.root.join("blobs").join(Algorithm::Sha256.name());
        fs::create_dir_all(&sha256).map_err(Error::io("create directory", &sha256))?;
        sync_dir(&dir.root.join("blobs"))?;
        dir.ensure_private_dirs()?;
        let index = Index::new(Some(MediaType::OciIndex));
        dir.replace_file(&dir.index_path(), &index.to_canonical_json())?;
        // oci-layout last: its presence marks a complete layout.
        dir.replace_file(&dir.root.join("oci-layout"), OCI_LAYOUT.as_bytes())?;
        Ok(dir)
    }

    /// Open the layout at `root`, creating it if there is no `oci-layout` file.
    pub fn open_or_create(root: impl AsRef<Path>) -> Result<OciDir> {
        let root = root.as_ref();
        match fs::symlink_metadata(root.join("oci-layout")) {
            Ok(_) => OciDir::open(root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => OciDir::create(root),
            Err(e) => Err(Error::io("stat", root.join("oci-layout"))(e)),
        }
    }

    fn check_layout_file(&self) -> Result<()> {
        let path = self.root.join("oci-layout");
        let bytes = match read_capped(&path, MAX_OCI_LAYOUT_SIZE) {
            Ok(b) => b,
            Err(Error::Io(e)) if e.is_not_found() => {
                return Err(Error::InvalidLayout { path, reason: "no oci-layout file".into() });
            }
            Err(e) => return Err(e),
        };
        let invalid = |reason: String| Error::InvalidLayout { path: path.clone(), reason };
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("oci-layout is not JSON: {e}")))?;
        let version = v
            .get("imageLayoutVersion")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid("oci-layout has no imageLayoutVersion string".into()))?;
        let major = version.split('.').next().unwrap_or_default();
        if major != "1" || !version.contains('.') {
            return Err(Error::UnsupportedLayoutVersion { path, version: version.to_owned() });
        }
        Ok(())
    }
}

/// # Paths
impl OciDir {
    /// The layout's root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (`blobs/<alg>/<hex>`); safe because a [`Digest`] cannot hold
    /// path characters.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().name()).join(digest.hex())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn private_dir(&self) -> PathBuf {
        self.root.join(PRIVATE_DIR)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.private_dir().join("tmp")
    }

    fn ensure_private_dirs(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp).map_err(Error::io("create directory", &tmp))
    }

    fn lock(&self, name: &str, op: FlockOperation) -> Result<File> {
        self.ensure_private_dirs()?;
        let path = self.private_dir().join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open lock file", &path))?;
        flock(&file, op).map_err(Error::io("lock", &path))?;
        Ok(file)
    }

    /// The lock `name` if nobody holds it, without waiting (and without creating
    /// `.strata/`).
    fn try_lock(&self, name: &str) -> Option<File> {
        let path = self.private_dir().join(name);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).ok()?;
        rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).ok()?;
        Some(file)
    }

    /// A temp file in `.strata/tmp/`, locked by us until dropped (so GC knows it is live).
    fn temp_file(&self, prefix: &str) -> Result<NamedTempFile> {
        self.ensure_private_dirs()?;
        let tmp = self.tmp_dir();
        let file =
            tempfile::Builder::new().prefix(prefix).tempfile_in(&tmp).map_err(Error::io("create temp file", &tmp))?;
        flock(file.as_file(), FlockOperation::LockExclusive).map_err(Error::io("lock", file.path()))?;
        Ok(file)
    }

    /// Atomically replace `dest` with `bytes`: temp file, fsync, rename, fsync the dir.
    fn replace_file(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        self.replace_file_with(dest, &mut |f| f.write_all(bytes)).map(drop)
    }

    /// Replace `dest`, a file that checks itself (a checksum) and can be rebuilt, with
    /// `bytes`: temp file and rename, no fsync (a crash may leave it torn, and then it
    /// fails its check and is rebuilt).
    fn replace_cache_file(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.stage_cache_file(bytes)?;
        tmp.persist(dest).map_err(|e| Error::io("rename into place", dest)(e.error))?;
        Ok(())
    }

    /// The first half of [`OciDir::replace_cache_file`]: `bytes` in a temporary file,
    /// to be renamed into place.
    fn stage_cache_file(&self, bytes: &[u8]) -> Result<NamedTempFile> {
        let mut tmp = self.temp_file("cache-")?;
        let tmp_path = tmp.path().to_path_buf();
        tmp.as_file_mut().write_all(bytes).map_err(Error::io("write", &tmp_path))?;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(BLOB_MODE)).map_err(Error::io("chmod", &tmp_path))?;
        Ok(tmp)
    }

    /// Atomically replace `dest` with what `fill` writes; returns the new file.
    fn replace_file_with(&self, dest: &Path, fill: &mut dyn FnMut(&mut File) -> io::Result<()>) -> Result<File> {
        let mut tmp = self.temp_file("file-")?;
        let tmp_path = tmp.path().to_path_buf();
        fill(tmp.as_file_mut()).map_err(Error::io("write", &tmp_path))?;
        finish_file(tmp.as_file(), &tmp_path)?;
        let file = tmp.persist(dest).map_err(|e| Error::io("rename into place", dest)(e.error))?;
        sync_dir(dest.parent().unwrap_or(&self.root))?;
        Ok(file)
    }
}

/// # Scanning
impl OciDir {
    /// Walk `blobs/`: the blobs, and everything there that is not one.
    fn scan_blobs(&self) -> Result<(Vec<Digest>, Vec<Problem>)> {
        let blobs = self.root.join("blobs");
        let mut digests = Vec::new();
        let mut strays = Vec::new();
        let entries = match fs::read_dir(&blobs) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((digests, strays)),
            Err(e) => return Err(Error::io("read directory", blobs)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("read directory", &blobs))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(Error::io("stat", &path))?;
            let Some(alg) = entry
                .file_name()
                .to_str()
                .and_then(|n| [Algorithm::Sha256, Algorithm::Sha512].into_iter().find(|a| a.name() == n))
            else {
                strays.push(Problem::Stray { path, reason: "not a known digest algorithm" });
                continue;
            };
            if !ft.is_dir() {
                strays.push(Problem::Stray { path, reason: "not a directory (symlinks are not followed)" });
                continue;
            }
            for blob in fs::read_dir(&path).map_err(Error::io("read directory", &path))? {
                let blob = blob.map_err(Error::io("read directory", &path))?;
                let bpath = blob.path();
                let digest = blob.file_name().to_str().and_then(|hex| Digest::parse(&format!("{alg}:{hex}")).ok());
                let Some(digest) = digest else {
                    strays.push(Problem::Stray { path: bpath, reason: "name is not a digest" });
                    continue;
                };
                let bft = blob.file_type().map_err(Error::io("stat", &bpath))?;
                if bft.is_file() {
                    digests.push(digest);
                } else if bft.is_symlink() {
                    strays
                        .push(Problem::Stray { path: bpath, reason: "a symlink where a blob belongs (not followed)" });
                } else {
                    strays.push(Problem::Stray { path: bpath, reason: "not a regular file" });
                }
            }
        }
        digests.sort();
        Ok((digests, strays))
    }

    /// Temp files in `.strata/tmp/`, with whether their writer is alive.
    fn temp_files(&self) -> Result<Vec<TempFile>> {
        let tmp = self.tmp_dir();
        let entries = match fs::read_dir(&tmp) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", tmp)(e)),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("read directory", &tmp))?;
            let path = entry.path();
            let md = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // finished meanwhile
                Err(e) => return Err(Error::io("stat", path)(e)),
            };
            if md.is_dir() {
                continue;
            }
            let age = md.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
            let in_use = md.is_file() && is_locked(&path);
            out.push(TempFile { path, size: md.len(), age, in_use });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn read_index(&self) -> Result<Index> {
        let c = self.current(true)?;
        c.index(self)
    }
}

/// Whether another open file description holds a lock on `path`.
fn is_locked(path: &Path) -> bool {
    let Ok(fd) =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
    else {
        return false;
    };
    // A filesystem without flock support answers with another error: treat as unlocked
    // and let the age test decide.
    matches!(rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive), Err(e) if e == rustix::io::Errno::WOULDBLOCK)
}

fn flock(file: &File, op: FlockOperation) -> io::Result<()> {
    loop {
        match rustix::fs::flock(file, op) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// A file written whole, before it is renamed into place: world-readable like the blobs
/// umoci and skopeo write ([`BLOB_MODE`]), and synced.
fn finish_file(file: &File, path: &Path) -> Result<()> {
    file.set_permissions(fs::Permissions::from_mode(BLOB_MODE)).map_err(Error::io("chmod", path))?;
    file.sync_all().map_err(Error::io("fsync", path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io("fsync directory", dir))
}

/// Records of this many bytes or more are mapped rather than read (a layer's scan record
/// is some hundreds of KiB to a few MiB).
const RECORD_MAP_FROM: u64 = 64 << 10;

fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(Error::io("open", path))?;
    let len = len_capped(&file, path, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(Error::io("read", path))?;
    if bytes.len() as u64 > limit {
        return Err(Error::InvalidLayout {
            path: path.to_path_buf(),
            reason: format!("grew over the limit of {limit} bytes"),
        });
    }
    Ok(bytes)
}

/// The length of the open `file` at `path`, when it is at most `limit`.
fn len_capped(file: &File, path: &Path, limit: u64) -> Result<u64> {
    let len = file.metadata().map_err(Error::io("stat", path))?.len();
    if len > limit {
        return Err(Error::InvalidLayout {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, over the limit of {limit}"),
        });
    }
    Ok(len)
}

/// Where an [`OciDir`] blob is written: a locked temp file in `.strata/tmp/`.
struct OciSink {
    tmp: NamedTempFile,
    dir: OciDir,
}

impl Write for OciSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.as_file_mut().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.as_file_mut().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for OciSink {
    fn commit(self: Box<Self>, digest: &Digest, size: u64) -> Result<bool> {
        let OciSink { tmp, dir } = *self;
        let dest = dir.blob_path(digest);
        match fs::symlink_metadata(&dest) {
            // Already there with the right size: keep it (the temp file is removed on drop).
            Ok(m) if m.is_file() && m.len() == size => return Ok(true),
            // Anything else there (a truncated file, a symlink) is replaced below.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", dest)(e)),
        }
        let alg_dir = dir.root.join("blobs").join(digest.algorithm().name());
        if !alg_dir.is_dir() {
            fs::create_dir_all(&alg_dir).map_err(Error::io("create directory", &alg_dir))?;
            sync_dir(&dir.root.join("blobs"))?;
        }
        let file = tmp.as_file();
        let tmp_path = tmp.path().to_path_buf();
        finish_file(file, &tmp_path)?;
        tmp.persist(&dest).map_err(|e| Error::io("rename into place", &dest)(e.error))?;
        sync_dir(&alg_dir)?;
        Ok(false)
    }

    fn location(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    fn wants_pipeline(&self) -> bool {
        true
    }
}

impl BlobStore for OciDir {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(Error::InvalidLayout {
                path,
                reason: "blob is not a regular file (symlinks are not followed)".into(),
            }),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(Error::io("stat", path)(e)),
        }
    }

    fn open(&self, digest: &Digest) -> Result<BlobReader> {
        let path = self.blob_path(digest);
        // O_NOFOLLOW: a symlink planted in blobs/ is not followed; O_NONBLOCK: a FIFO
        // there does not hang the open (it fails the regular-file check below).
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(&path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Err(Error::NotFound(digest.clone())),
            Err(rustix::io::Errno::LOOP) => {
                return Err(Error::InvalidLayout { path, reason: "blob is a symlink (not followed)".into() });
            }
            Err(e) => return Err(Error::io("open", path)(e.into())),
        };
        let file = File::from(fd);
        let md = file.metadata().map_err(Error::io("stat", &path))?;
        if !md.is_file() {
            return Err(Error::InvalidLayout { path, reason: "blob is not a regular file".into() });
        }
        Ok(BlobReader::new(Box::new(file), digest.clone(), md.len(), path))
    }

    fn begin_write_with(&self, algorithm: Algorithm) -> Result<BlobWriter> {
        let lease = self.lease()?;
        let tmp = self.temp_file("blob-")?;
        Ok(BlobWriter::new(Box::new(OciSink { tmp, dir: self.clone() }), algorithm, lease))
    }

    fn delete(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(false),
            Err(e) => Err(Error::io("remove", path)(e)),
        }
    }

    fn list(&self) -> Result<Vec<Digest>> {
        Ok(self.scan_blobs()?.0)
    }
}

impl Backend for OciDir {
    fn index(&self) -> Result<Index> {
        self.read_index()
    }

    fn update_index(&self, f: &mut dyn FnMut(&mut Index) -> Result<()>) -> Result<Index> {
        // A damaged index fails here, before `.strata/` is created.
        let seen = self.current(true)?;
        let _lock = self.lock("index.lock", FlockOperation::LockExclusive)?;
        let c = self.current_again(seen)?;
        let old = c.index(self)?;
        let mut new = old.clone();
        f(&mut new)?;
        if new != old {
            self.replace_index(&c.table.key(), &new.to_canonical_json())?;
        }
        Ok(new)
    }

    fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        self.refs_where(&mut |_, _| true)
    }

    fn refs_where(&self, pred: &mut dyn FnMut(&str, &Digest) -> bool) -> Result<Vec<(String, Descriptor)>> {
        let c = self.current(true)?;
        let mut out = Vec::new();
        for i in 0..c.table.len() {
            let Some(n) = c.table.name(i) else { continue };
            if pred(n, c.table.digest(i)) {
                out.push((n.to_owned(), c.descriptor(self, i)?));
            }
        }
        Ok(out)
    }

    fn refs_named(&self, name: &str) -> Result<Vec<(String, Descriptor)>> {
        let c = self.current(true)?;
        c.refs_at(self, &c.named(name))
    }

    fn refs_containing(&self, part: &str) -> Result<Vec<(String, Descriptor)>> {
        let c = self.current(true)?;
        c.refs_at(self, &c.table.named_with(part))
    }

    fn refs_to(&self, digests: &[&Digest]) -> Result<Vec<(String, Descriptor)>> {
        let c = self.current(true)?;
        let t = &c.table;
        let wanted: Vec<bool> = (0..t.targets()).map(|k| digests.contains(&t.target_digest(k))).collect();
        let mut out = Vec::new();
        // The target first: a name is checked to be UTF-8 only for the entries wanted.
        for i in (0..t.len()).filter(|&i| wanted[t.target(i)]) {
            if let Some(n) = t.name(i) {
                out.push((n.to_owned(), c.descriptor(self, i)?));
            }
        }
        Ok(out)
    }

    fn index_targets(&self) -> Result<Vec<Descriptor>> {
        let c = self.current(true)?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut target_seen = vec![false; c.table.targets()];
        for i in 0..c.table.len() {
            // Entries of one target have one digest and media type: looked at once.
            let t = c.table.target(i);
            if std::mem::replace(&mut target_seen[t], true) {
                continue;
            }
            if seen.insert((c.table.digest(i), c.table.media_type(i).to_string())) {
                out.push(c.descriptor(self, i)?);
            }
        }
        Ok(out)
    }

    fn index_entries(&self) -> Result<IndexEntries> {
        self.current(true)?.entries(self)
    }

    fn put_ref_entry(&self, name: &str, entry: &Descriptor) -> Result<Option<Descriptor>> {
        let seen = self.current(true)?;
        let _lock = self.lock("index.lock", FlockOperation::LockExclusive)?;
        let c = self.current_again(seen)?;
        let named = c.named(name);
        let previous = named.first().map(|&i| c.descriptor(self, i)).transpose()?;
        if named.len() == 1 && previous.as_ref() == Some(entry) {
            return Ok(previous);
        }
        let at = named.first().copied().unwrap_or(c.table.len());
        self.splice_index(c, &named, at, &[NewEntry { desc: entry.clone() }])?;
        Ok(previous)
    }

    fn remove_ref(&self, name: &str) -> Result<Descriptor> {
        let seen = self.current(true)?;
        let _lock = self.lock("index.lock", FlockOperation::LockExclusive)?;
        let c = self.current_again(seen)?;
        let named = c.named(name);
        let found = named.iter().map(|&i| Ok((name.to_owned(), c.descriptor(self, i)?))).collect::<Result<_>>()?;
        let found = crate::store::resolve_in(found, name)?;
        let len = c.table.len();
        self.splice_index(c, &named, len, &[])?;
        Ok(found)
    }

    fn remove_ref_if_shared(&self, name: &str) -> Result<Option<Descriptor>> {
        let seen = self.current(true)?;
        let _lock = self.lock("index.lock", FlockOperation::LockExclusive)?;
        let c = self.current_again(seen)?;
        let [at] = c.named(name)[..] else { return Ok(None) };
        let t = &c.table;
        // The targets of the same content (the same digest and media type; the size may
        // differ), then one pass over the entries' targets.
        let same: Vec<bool> = (0..t.targets())
            .map(|k| t.target_digest(k) == t.digest(at) && t.target_media_type(k) == t.media_type(at))
            .collect();
        let shared = (0..t.len()).any(|i| i != at && same[t.target(i)] && t.has_name(i));
        if !shared {
            return Ok(None);
        }
        let found = c.descriptor(self, at)?;
        let len = t.len();
        self.splice_index(c, &[at], len, &[])?;
        Ok(Some(found))
    }

    fn lease(&self) -> Result<Lease> {
        if let Some(l) = live_lease(self.key) {
            return Ok(Lease::new(l));
        }
        // Block without holding the registry: the gate waits for a running GC.
        let gate = self.lock("gc.gate", FlockOperation::LockShared)?;
        let file = self.lock("gc.lock", FlockOperation::LockShared)?;
        drop(gate);
        let mut reg = LEASES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = reg.get(&self.key).and_then(Weak::upgrade) {
            return Ok(Lease::new(l));
        }
        let l = Arc::new(OciLease { _file: file });
        reg.insert(self.key, Arc::downgrade(&l));
        reg.retain(|_, w| w.strong_count() > 0);
        Ok(Lease::new(l))
    }

    fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        // Check first without locks, so that a damaged layout fails before `.strata/` is
        // created, and a dry run changes nothing at all.
        let index = self.read_index()?;
        let marked = gc::mark(self, &index, options.force)?;
        let mut report = GcReport { dry_run: options.dry_run, ..GcReport::default() };
        if options.dry_run {
            gc::sweep(self, &marked, &mut report)?;
            report.temp_removed =
                self.temp_files()?.into_iter().filter(|t| !t.in_use && t.age >= options.temp_grace).collect();
            return Ok(report);
        }
        if live_lease(self.key).is_some() {
            return Err(Error::LeaseHeld { path: self.root.clone() });
        }
        // Lock order, everywhere: gc.gate, gc.lock, index.lock.
        let _gate = self.lock("gc.gate", FlockOperation::LockExclusive)?;
        let _gc = self.lock("gc.lock", FlockOperation::LockExclusive)?;
        let _index = self.lock("index.lock", FlockOperation::LockExclusive)?;
        let index = self.read_index()?;
        let marked = gc::mark(self, &index, options.force)?;
        if !marked.orphans.is_empty() {
            // The index first: a crash after it leaves unreferenced blobs for the next GC,
            // never an index entry without its blobs.
            self.replace_file(&self.index_path(), &marked.pruned(&index).to_canonical_json())?;
        }
        gc::sweep(self, &marked, &mut report)?;
        if !report.removed.is_empty() {
            for alg in [Algorithm::Sha256, Algorithm::Sha512] {
                let dir = self.root.join("blobs").join(alg.name());
                if dir.is_dir() {
                    sync_dir(&dir)?;
                }
            }
        }
        report.records_removed = self.sweep_records()?;
        for t in self.temp_files()? {
            if t.in_use || t.age < options.temp_grace {
                continue;
            }
            match fs::remove_file(&t.path) {
                Ok(()) => report.temp_removed.push(t),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", t.path)(e)),
            }
        }
        Ok(report)
    }

    fn fsck_with(&self, options: &FsckOptions) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let (digests, strays) = self.scan_blobs()?;
        report.problems.extend(strays);
        // The entries from the table (a descriptor built only for those with more than a
        // target and a ref name) and the subject, of one version of `index.json`.
        let c = self.current(true)?;
        let entries = c.entries(self)?;
        let subject = c.shell(self)?.subject;
        drop(c);
        fsck::check_entries(self, &digests, &entries, subject, options, &mut report)?;
        self.check_records(&mut report)?;
        report.temp_files = self.temp_files()?;
        Ok(report)
    }

    fn record(&self, kind: RecordKind, digest: &Digest) -> Result<Option<FileBytes>> {
        let path = self.record_path(kind, digest);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(Error::InvalidLayout {
                    path,
                    reason: "record is not a regular file (symlinks are not followed)".into(),
                });
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(None),
            Err(e) => return Err(Error::io("stat", path)(e)),
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            // Removed by GC since the stat.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let len = len_capped(&file, &path, kind.max_size())?;
        // A record is never written in place (it is replaced whole, as `replace_file`
        // does), so a big one can be mapped.
        FileBytes::of(&file, len, RECORD_MAP_FROM).map(Some).map_err(Error::io("read", path))
    }

    fn update_record(&self, kind: RecordKind, digest: &Digest, f: &mut RecordUpdate<'_>) -> Result<()> {
        let _lock = self.lock("records.lock", FlockOperation::LockExclusive)?;
        let old = self.record(kind, digest)?;
        let Some(new) = f(old.as_deref())? else { return Ok(()) };
        let path = self.record_path(kind, digest);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        }
        self.replace_file(&path, &new)
    }

    fn keeps_records(&self) -> bool {
        self.private_dir().is_dir()
    }

    fn cache(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.cache_path(name)?;
        let file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        if len > MAX_CACHE_SIZE {
            return None;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).ok()?);
        file.take(MAX_CACHE_SIZE).read_to_end(&mut bytes).ok()?;
        crate::codec::unseal(CACHE_MAGIC, &bytes).map(<[u8]>::to_vec)
    }

    fn put_cache(&self, name: &str, bytes: &[u8]) {
        let Some(path) = self.cache_path(name) else { return };
        if !self.keeps_records() || bytes.len() as u64 > MAX_CACHE_SIZE - 64 {
            return;
        }
        // Best effort: a cache that is not kept is rebuilt.
        let _ = self.replace_cache_file(&path, &crate::codec::seal(CACHE_MAGIC, bytes));
    }
}

fn live_lease(key: (u64, u64)) -> Option<Arc<OciLease>> {
    LEASES.lock().unwrap_or_else(|p| p.into_inner()).get(&key).and_then(Weak::upgrade)
}
