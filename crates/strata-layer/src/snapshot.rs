//! Metadata snapshots of an unpacked tree, for [`crate::diff::since`].
//!
//! A snapshot records, for every entry under a root right after unpack, what moves when
//! the entry is touched: type, mode, owner, size, mtime and ctime (ns), inode and device,
//! link count, device number, symlink target and a fingerprint of the xattrs. Comparing
//! a tree against it needs one `lstat` per entry and reads only what moved.
//!
//! # Serialised form (version 2)
//!
//! Little-endian, varints are LEB128, signed values zigzag-encoded:
//!
//! ```text
//! magic "STRSNAP\0" | version u32 = 2
//! entries, in tar order, each: u8 1 |
//!   shared prefix length with the previous path varint | suffix length varint | suffix
//!   kind u8 | mode | uid | gid | size | mtime s (zigzag) | mtime ns | ctime s (zigzag)
//!   | ctime ns | ino | dev | nlink | rdev   (all varints)
//!   | xattr fingerprint u64 | symlinks only: target length varint | target
//! u8 0 | recorded count varint
//! recorded owners, in path order, each:
//!   path length varint | path | uid varint | gid varint
//!   | device u8 (0 none, 1 char, 2 block) [| major varint | minor varint]
//! entry count varint
//! CRC-32 of everything above, u32
//! ```
//!
//! The counts come last so that a snapshot is written as the tree is walked, in memory
//! that does not grow with the tree ([`Snapshot::capture_to`]: a million-entry rootfs
//! is snapshotted in a few MiB). Version 1 (both counts after the version, entries
//! without a tag) is still read. A 7,000-entry rootfs takes about 50 bytes an entry and
//! loads in well under a millisecond per thousand entries. Loading checks the magic,
//! version, checksum, bounds and that paths are normalised and in strictly increasing
//! tar order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd};

use crate::codec::{Cursor, put_varint, zigzag};
use crate::entry::{Timestamp, tar_order};
use crate::error::{Error, Result};
use crate::scan::{self, FileKind, Stat, Visitor};

const MAGIC: &[u8; 8] = b"STRSNAP\0";
const VERSION: u32 = 2;

/// A device node that a rootless unpack could not create (it made an empty regular file
/// instead) and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordedDevice {
    /// Character device.
    Char {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Block device.
    Block {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// Ownership (and device type) an unpack recorded instead of applying, when it ran
/// without the right to `chown` or `mknod` (rootless). The differs use it in place of
/// what is on disk, both to compare and to write headers, so a rootless commit writes
/// the owners the image intended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordedOwner {
    /// Intended owner.
    pub uid: u32,
    /// Intended group.
    pub gid: u32,
    /// Intended device node, when the entry on disk is an empty regular file standing in
    /// for one.
    pub device: Option<RecordedDevice>,
}

/// Recorded ownership by path (relative to the root, normalised).
pub type RecordedOwners = BTreeMap<PathBuf, RecordedOwner>;

/// One entry of a [`Snapshot`]: what `lstat` said (plus link target and xattrs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// Path relative to the root (the root is the empty path).
    pub path: PathBuf,
    /// Type.
    pub kind: FileKind,
    /// `mode & 0o7777`.
    pub mode: u32,
    /// Owner on disk.
    pub uid: u32,
    /// Group on disk.
    pub gid: u32,
    /// Size (regular files; 0 otherwise).
    pub size: u64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Status change time.
    pub ctime: Timestamp,
    /// Inode number.
    pub ino: u64,
    /// Device of the file system holding it.
    pub dev: u64,
    /// Hard link count.
    pub nlink: u64,
    /// Device number (device nodes).
    pub rdev: u64,
    /// Symlink target.
    pub link_target: Option<PathBuf>,
    /// Fingerprint of the xattrs kept in layers (0: none).
    pub xattr_hash: u64,
}

impl SnapshotEntry {
    pub(crate) fn from_stat(path: PathBuf, st: &Stat, link_target: Option<PathBuf>, xattr_hash: u64) -> Self {
        SnapshotEntry {
            path,
            kind: st.kind,
            mode: st.perm,
            uid: st.uid,
            gid: st.gid,
            size: st.size,
            mtime: st.mtime,
            ctime: st.ctime,
            ino: st.ino,
            dev: st.dev,
            nlink: st.nlink,
            rdev: st.rdev,
            link_target,
            xattr_hash,
        }
    }

    /// Whether `st` differs from this entry in anything that moves when a file is
    /// written, replaced, chmod-ed, chown-ed, relinked or has its xattrs changed (ctime
    /// catches the last, and content restored to an old mtime).
    pub(crate) fn moved(&self, st: &Stat) -> bool {
        self.kind != st.kind
            || self.mode != st.perm
            || self.uid != st.uid
            || self.gid != st.gid
            || self.size != st.size
            || self.mtime != st.mtime
            || self.ctime != st.ctime
            || self.ino != st.ino
            || self.dev != st.dev
            || self.nlink != st.nlink
            || self.rdev != st.rdev
    }
}

/// The metadata of every entry under a root, in tar order, with the ownership a rootless
/// unpack recorded. See the [module docs](self) for the format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    entries: Vec<SnapshotEntry>,
    recorded: RecordedOwners,
}

/// Capturing.
impl Snapshot {
    /// Snapshot the tree under `root` (not following symlinks).
    pub fn capture(root: &Path) -> Result<Snapshot> {
        Snapshot::capture_with(root, RecordedOwners::new())
    }

    /// Snapshot the tree under `root`, keeping the ownership a rootless unpack recorded.
    pub fn capture_with(root: &Path, recorded: RecordedOwners) -> Result<Snapshot> {
        let mut entries = Vec::new();
        walk_entries(root, &mut |e| {
            entries.push(e);
            Ok(())
        })?;
        Ok(Snapshot { entries, recorded })
    }

    /// Snapshot the tree under `root` straight into `w`, serialised (see the module
    /// docs), entry by entry as the tree is walked: memory does not grow with the tree.
    /// Returns the number of entries. [`Snapshot::read_from`] reads it back.
    pub fn capture_to<W: Write>(root: &Path, recorded: &RecordedOwners, w: W) -> Result<u64> {
        let write_err =
            |e: std::io::Error| Error::Io(strata_spec::IoError::new("write snapshot", root.to_path_buf(), e));
        let mut writer = Writer::new(w);
        walk_entries(root, &mut |e| writer.entry(&e).map_err(write_err))?;
        let count = writer.count;
        writer.finish(recorded).map_err(write_err)?;
        Ok(count)
    }
}

/// Each entry under `root` (the root first), in tar order, to `sink`.
fn walk_entries(root: &Path, sink: &mut dyn FnMut(SnapshotEntry) -> Result<()>) -> Result<()> {
    struct Cap<'a, 's> {
        root: &'a Path,
        sink: &'s mut dyn FnMut(SnapshotEntry) -> Result<()>,
    }
    impl Visitor for Cap<'_, '_> {
        fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool> {
            let target = if st.kind == FileKind::Symlink {
                Some(scan::read_link_at(dir, name).map_err(|e| scan::io_err("readlink", rel, e))?)
            } else {
                None
            };
            let xh = scan::xattr_hash(&scan::layer_xattrs(&self.root.join(rel))?);
            (self.sink)(SnapshotEntry::from_stat(rel.to_path_buf(), st, target, xh))?;
            Ok(true)
        }
    }
    let fd = scan::open_root(root)?;
    let st = scan::fstat(fd.as_fd()).map_err(|e| scan::io_err("stat", root, e))?;
    let xh = scan::xattr_hash(&scan::layer_xattrs(root)?);
    sink(SnapshotEntry::from_stat(PathBuf::new(), &st, None, xh))?;
    scan::walk(root, &mut Cap { root, sink }).map(|_| ())
}

/// Reading.
impl Snapshot {
    /// All entries in tar order; the first is the root.
    pub fn entries(&self) -> &[SnapshotEntry] {
        &self.entries
    }

    /// Number of entries (the root included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries (only for a default-constructed snapshot).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `path`.
    pub fn get(&self, path: &Path) -> Option<&SnapshotEntry> {
        self.entries.binary_search_by(|e| tar_order(&e.path, path)).ok().and_then(|i| self.entries.get(i))
    }

    /// The recorded ownership (rootless unpacks).
    pub fn recorded(&self) -> &RecordedOwners {
        &self.recorded
    }
}

// ---- serialisation ----

/// What [`crate::path::normalize`] would leave unchanged, checked without allocating: no NUL, no
/// leading or trailing `/`, no empty, `.` or `..` component.
fn is_normalised(p: &[u8]) -> bool {
    p.is_empty() || (!p.contains(&0) && p.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b".."))
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidSnapshot { reason: reason.into() }
}

/// Writes the serialised form as entries come, with a running CRC.
struct Writer<W: Write> {
    w: W,
    crc: libdeflater::Crc,
    /// Encoded bytes not yet written (flushed past [`WRITE_CHUNK`]).
    buf: Vec<u8>,
    prev: Vec<u8>,
    count: u64,
}

/// Bytes gathered before a write: 64 KiB.
const WRITE_CHUNK: usize = 64 * 1024;

impl<W: Write> Writer<W> {
    fn new(w: W) -> Writer<W> {
        let mut buf = Vec::with_capacity(WRITE_CHUNK + 4096);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        Writer { w, crc: libdeflater::Crc::new(), buf, prev: Vec::new(), count: 0 }
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.crc.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn entry(&mut self, e: &SnapshotEntry) -> std::io::Result<()> {
        let out = &mut self.buf;
        out.push(1);
        let p = e.path.as_os_str().as_bytes();
        let shared = p.iter().zip(&self.prev).take_while(|(a, b)| a == b).count();
        put_varint(out, shared as u64);
        let suffix = p.get(shared..).unwrap_or_default();
        put_varint(out, suffix.len() as u64);
        out.extend_from_slice(suffix);
        self.prev.clear();
        self.prev.extend_from_slice(p);
        out.push(e.kind.to_u8());
        for v in [u64::from(e.mode), u64::from(e.uid), u64::from(e.gid), e.size] {
            put_varint(out, v);
        }
        for t in [e.mtime, e.ctime] {
            put_varint(out, zigzag(t.sec));
            put_varint(out, u64::from(t.nsec));
        }
        for v in [e.ino, e.dev, e.nlink, e.rdev] {
            put_varint(out, v);
        }
        out.extend_from_slice(&e.xattr_hash.to_le_bytes());
        if e.kind == FileKind::Symlink {
            let t = e.link_target.as_deref().map(|t| t.as_os_str().as_bytes()).unwrap_or_default();
            put_varint(out, t.len() as u64);
            out.extend_from_slice(t);
        }
        self.count += 1;
        if self.buf.len() >= WRITE_CHUNK {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn finish(mut self, recorded: &RecordedOwners) -> std::io::Result<W> {
        let out = &mut self.buf;
        out.push(0);
        put_varint(out, recorded.len() as u64);
        for (p, r) in recorded {
            let p = p.as_os_str().as_bytes();
            put_varint(out, p.len() as u64);
            out.extend_from_slice(p);
            put_varint(out, u64::from(r.uid));
            put_varint(out, u64::from(r.gid));
            match r.device {
                None => out.push(0),
                Some(RecordedDevice::Char { major, minor }) => {
                    out.push(1);
                    put_varint(out, u64::from(major));
                    put_varint(out, u64::from(minor));
                }
                Some(RecordedDevice::Block { major, minor }) => {
                    out.push(2);
                    put_varint(out, u64::from(major));
                    put_varint(out, u64::from(minor));
                }
            }
        }
        put_varint(out, self.count);
        self.flush_buf()?;
        let crc = self.crc.sum();
        self.w.write_all(&crc.to_le_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One entry of the serialised form (after its tag in version 2); `prev` is the path of
/// the entry before, replaced by this one's.
fn parse_entry(
    c: &mut Cursor<'_>,
    prev: &mut Vec<u8>,
    i: usize,
    last: Option<&SnapshotEntry>,
) -> Result<SnapshotEntry> {
    let shared = c.len()?;
    let suffix_len = c.len()?;
    if shared > prev.len() {
        return Err(bad(format!("entry {i}: shared prefix longer than the previous path")));
    }
    prev.truncate(shared);
    prev.extend_from_slice(c.take(suffix_len)?);
    let path = PathBuf::from(OsString::from_vec(prev.clone()));
    if !is_normalised(prev) {
        return Err(bad(format!("entry {i}: path {path:?} is not normalised")));
    }
    if let Some(last) = last
        && tar_order(&last.path, &path) != Ordering::Less
    {
        return Err(bad(format!("entry {i}: {path:?} is out of order")));
    }
    if i == 0 && !prev.is_empty() {
        return Err(bad("the first entry is not the root"));
    }
    let kind = FileKind::from_u8(c.u8()?).ok_or_else(|| bad(format!("entry {i}: unknown kind")))?;
    let mode = c.u32v()?;
    let uid = c.u32v()?;
    let gid = c.u32v()?;
    let size = c.varint()?;
    let mtime = c.time()?;
    let ctime = c.time()?;
    let ino = c.varint()?;
    let dev = c.varint()?;
    let nlink = c.varint()?;
    let rdev = c.varint()?;
    let xattr_hash = c.u64()?;
    let link_target = if kind == FileKind::Symlink {
        let n = c.len()?;
        Some(PathBuf::from(OsStr::from_bytes(c.take(n)?)))
    } else {
        None
    };
    Ok(SnapshotEntry { path, kind, mode, uid, gid, size, mtime, ctime, ino, dev, nlink, rdev, link_target, xattr_hash })
}

/// Serialisation.
impl Snapshot {
    /// The serialised form (see the [module docs](self)).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Vec::with_capacity(16 + self.entries.len() * 48));
        // Writing into a Vec cannot fail.
        for e in &self.entries {
            let _ = w.entry(e);
        }
        w.finish(&self.recorded).unwrap_or_default()
    }

    /// Parse the serialised form, checking it throughout.
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot> {
        if bytes.len() < MAGIC.len() + 4 + 4 {
            return Err(bad("too short"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if body.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(bad("not a strata snapshot (bad magic)"));
        }
        let mut c = Cursor::new(body, MAGIC.len(), bad);
        let version = c.u32()?;
        if version != 1 && version != VERSION {
            return Err(bad(format!("version {version} is not supported (this build reads 1 and {VERSION})")));
        }
        let want = u32::from_le_bytes(crc.try_into().map_err(|_| bad("truncated"))?);
        if libdeflater::crc32(body) != want {
            return Err(bad("checksum mismatch (file damaged)"));
        }
        // Version 1 gives the counts first; version 2 tags each entry and counts last.
        let counts = if version == 1 {
            let count = usize::try_from(c.varint()?).map_err(|_| bad("count out of range"))?;
            let nrec = usize::try_from(c.varint()?).map_err(|_| bad("count out of range"))?;
            Some((count, nrec))
        } else {
            None
        };
        // Every entry takes at least 20 bytes: never trust a count beyond the input.
        let capacity = counts.map_or(0, |(n, _)| n).min(body.len() / 20);
        let mut entries: Vec<SnapshotEntry> = Vec::with_capacity(capacity);
        let mut prev: Vec<u8> = Vec::new();
        for i in 0.. {
            match counts {
                Some((count, _)) if i == count => break,
                Some(_) => {}
                None => match c.u8()? {
                    0 => break,
                    1 => {}
                    t => return Err(bad(format!("entry {i}: unknown tag {t}"))),
                },
            }
            let e = parse_entry(&mut c, &mut prev, i, entries.last())?;
            entries.push(e);
        }
        let nrec = match counts {
            Some((_, nrec)) => nrec,
            None => usize::try_from(c.varint()?).map_err(|_| bad("count out of range"))?,
        };
        let mut recorded = RecordedOwners::new();
        for _ in 0..nrec {
            let n = c.len()?;
            let path = PathBuf::from(OsStr::from_bytes(c.take(n)?));
            let uid = c.u32v()?;
            let gid = c.u32v()?;
            let device = match c.u8()? {
                0 => None,
                1 => Some(RecordedDevice::Char { major: c.u32v()?, minor: c.u32v()? }),
                2 => Some(RecordedDevice::Block { major: c.u32v()?, minor: c.u32v()? }),
                d => return Err(bad(format!("recorded owner of {path:?}: unknown device tag {d}"))),
            };
            recorded.insert(path, RecordedOwner { uid, gid, device });
        }
        if counts.is_none() && c.varint()? != entries.len() as u64 {
            return Err(bad("entry count does not match the entries"));
        }
        if !c.at_end() {
            return Err(bad("trailing bytes after the last record"));
        }
        Ok(Snapshot { entries, recorded })
    }

    /// Write the serialised form to `w`.
    pub fn write_to(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(&self.to_bytes())
    }

    /// Read a serialised snapshot from `r`.
    pub fn read_from(mut r: impl Read) -> Result<Snapshot> {
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).map_err(|e| bad(format!("reading: {e}")))?;
        Snapshot::from_bytes(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::normalize;

    fn sample() -> Snapshot {
        let e = |p: &str, kind: FileKind| SnapshotEntry {
            path: PathBuf::from(p),
            kind,
            mode: 0o755,
            uid: 1000,
            gid: 5,
            size: 42,
            mtime: Timestamp { sec: -5, nsec: 999_999_999 },
            ctime: Timestamp { sec: 1_700_000_000, nsec: 1 },
            ino: u64::MAX,
            dev: 2049,
            nlink: 2,
            rdev: 0,
            link_target: (kind == FileKind::Symlink).then(|| PathBuf::from("../target")),
            xattr_hash: 0x1234,
        };
        let mut recorded = RecordedOwners::new();
        recorded.insert(
            "dev/null".into(),
            RecordedOwner { uid: 0, gid: 0, device: Some(RecordedDevice::Char { major: 1, minor: 3 }) },
        );
        recorded.insert("etc".into(), RecordedOwner { uid: 0, gid: 42, device: None });
        Snapshot {
            entries: vec![
                e("", FileKind::Dir),
                e("dev", FileKind::Dir),
                e("dev/null", FileKind::File),
                e("etc", FileKind::Dir),
                e("etc/link", FileKind::Symlink),
                e("etc-x", FileKind::File),
            ],
            recorded,
        }
    }

    #[test]
    fn round_trips() {
        let s = sample();
        let b = s.to_bytes();
        assert_eq!(Snapshot::from_bytes(&b).unwrap(), s);
        assert_eq!(s.get(Path::new("etc/link")).unwrap().link_target.as_deref(), Some(Path::new("../target")));
        assert!(s.get(Path::new("etc/nope")).is_none());
    }

    #[test]
    fn every_damage_is_detected() {
        let b = sample().to_bytes();
        // Any single flipped bit, any truncation: an error, never a panic or a wrong value.
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x10;
            assert!(Snapshot::from_bytes(&d).is_err(), "bit flip at {i}");
        }
        for n in 0..b.len() {
            assert!(Snapshot::from_bytes(&b[..n]).is_err(), "truncated to {n}");
        }
    }

    #[test]
    fn wrong_version_and_order_are_refused() {
        let mut s = sample();
        let mut b = s.to_bytes();
        b[8] = 3;
        let n = b.len() - 4;
        let crc = libdeflater::crc32(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        assert!(
            matches!(Snapshot::from_bytes(&b), Err(Error::InvalidSnapshot { reason }) if reason.contains("version"))
        );

        s.entries.swap(3, 5);
        assert!(
            matches!(Snapshot::from_bytes(&s.to_bytes()), Err(Error::InvalidSnapshot { reason }) if reason.contains("order"))
        );
    }

    /// Version 1, as the previous writer wrote it: counts first, entries untagged.
    fn to_v1(s: &Snapshot) -> Vec<u8> {
        let v2 = s.to_bytes();
        // Re-encode: the entries of version 2 with their tags dropped, one by one.
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&1u32.to_le_bytes());
        put_varint(&mut out, s.entries.len() as u64);
        put_varint(&mut out, s.recorded.len() as u64);
        let mut w = Writer::new(Vec::new());
        w.buf.clear();
        for e in &s.entries {
            let at = w.buf.len();
            w.entry(e).unwrap();
            w.buf.remove(at);
        }
        out.extend_from_slice(&w.buf);
        // The recorded owners: version 2's, between its end tag and its count.
        let fin = Writer::new(Vec::new()).finish(&s.recorded).unwrap();
        let rec = &fin[MAGIC.len() + 4 + 2..fin.len() - 5];
        out.extend_from_slice(rec);
        let crc = libdeflater::crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        assert_ne!(out, v2);
        out
    }

    #[test]
    fn version_1_is_still_read() {
        let s = sample();
        assert_eq!(Snapshot::from_bytes(&to_v1(&s)).unwrap(), s);
    }

    #[test]
    fn capturing_to_a_writer_gives_the_serialised_snapshot() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("a/b/f", t.path().join("l")).unwrap();
        let mut recorded = RecordedOwners::new();
        recorded.insert(PathBuf::from("a/b/f"), RecordedOwner { uid: 7, gid: 8, device: None });
        let mut out = Vec::new();
        let n = Snapshot::capture_to(t.path(), &recorded, &mut out).unwrap();
        let captured = Snapshot::capture_with(t.path(), recorded).unwrap();
        assert_eq!(n, captured.len() as u64);
        assert_eq!(out, captured.to_bytes());
        assert_eq!(Snapshot::from_bytes(&out).unwrap(), captured);
    }

    #[test]
    fn normalised_check_agrees_with_normalize() {
        for p in ["", "a", "a/b", "/a", "a/", "a//b", "./a", "a/./b", "a/..", "..", ".", "a\0b", ".wh.x", "a.b/..c"] {
            let agree = normalize(p.as_bytes()).is_ok_and(|n| n.as_os_str().as_bytes() == p.as_bytes());
            assert_eq!(is_normalised(p.as_bytes()), agree, "{p:?}");
        }
    }
}
