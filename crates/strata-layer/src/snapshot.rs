//! Metadata snapshots of an unpacked tree, for [`crate::diff::since`].
//!
//! A snapshot records, for every entry under a root right after unpack, what moves when
//! the entry is touched: type, mode, owner, size, mtime and ctime (ns), inode and device,
//! link count, device number, symlink target and a fingerprint of the xattrs. Comparing
//! a tree against it needs one `lstat` per entry and reads only what moved.
//!
//! # Serialised form (version 1)
//!
//! Little-endian, varints are LEB128, signed values zigzag-encoded:
//!
//! ```text
//! magic "STRSNAP\0" | version u32 = 1 | entry count varint | recorded count varint
//! entries, in tar order, each:
//!   shared prefix length with the previous path varint | suffix length varint | suffix
//!   kind u8 | mode | uid | gid | size | mtime s (zigzag) | mtime ns | ctime s (zigzag)
//!   | ctime ns | ino | dev | nlink | rdev   (all varints)
//!   | xattr fingerprint u64 | symlinks only: target length varint | target
//! recorded owners, in path order, each:
//!   path length varint | path | uid varint | gid varint
//!   | device u8 (0 none, 1 char, 2 block) [| major varint | minor varint]
//! CRC-32 of everything above, u32
//! ```
//!
//! A 7,000-entry rootfs takes about 50 bytes an entry and loads in well under a
//! millisecond per thousand entries. Loading checks the magic, version, checksum, bounds
//! and that paths are normalised and in strictly increasing tar order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd};

use crate::entry::{Timestamp, tar_order};
use crate::error::{Error, Result};
use crate::scan::{self, FileKind, Stat, Visitor};

const MAGIC: &[u8; 8] = b"STRSNAP\0";
const VERSION: u32 = 1;

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
        struct Cap<'a> {
            root: &'a Path,
            entries: Vec<SnapshotEntry>,
        }
        impl Visitor for Cap<'_> {
            fn visit(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, st: &Stat) -> Result<bool> {
                let target = if st.kind == FileKind::Symlink {
                    Some(scan::read_link_at(dir, name).map_err(|e| scan::io_err("readlink", rel, e))?)
                } else {
                    None
                };
                let xh = scan::xattr_hash(&scan::layer_xattrs(&self.root.join(rel))?);
                self.entries.push(SnapshotEntry::from_stat(rel.to_path_buf(), st, target, xh));
                Ok(true)
            }
        }
        let fd = scan::open_root(root)?;
        let st = scan::fstat(fd.as_fd()).map_err(|e| scan::io_err("stat", root, e))?;
        let xh = scan::xattr_hash(&scan::layer_xattrs(root)?);
        let mut cap = Cap { root, entries: vec![SnapshotEntry::from_stat(PathBuf::new(), &st, None, xh)] };
        scan::walk(root, &mut cap)?;
        Ok(Snapshot { entries: cap.entries, recorded })
    }
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

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// What [`crate::path::normalize`] would leave unchanged, checked without allocating: no NUL, no
/// leading or trailing `/`, no empty, `.` or `..` component.
fn is_normalised(p: &[u8]) -> bool {
    p.is_empty() || (!p.contains(&0) && p.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b".."))
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidSnapshot { reason: reason.into() }
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| bad("truncated"))?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| bad("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| bad("truncated"))?))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| bad("truncated"))?))
    }
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint longer than 10 bytes"))
    }
    fn u32v(&mut self) -> Result<u32> {
        u32::try_from(self.varint()?).map_err(|_| bad("value out of range"))
    }
    fn len(&mut self) -> Result<usize> {
        let n = usize::try_from(self.varint()?).map_err(|_| bad("length out of range"))?;
        if n > self.buf.len() - self.pos {
            return Err(bad("length beyond the end"));
        }
        Ok(n)
    }
    fn time(&mut self) -> Result<Timestamp> {
        let sec = unzigzag(self.varint()?);
        let nsec = self.u32v()?;
        if nsec >= 1_000_000_000 {
            return Err(bad("nanoseconds out of range"));
        }
        Ok(Timestamp { sec, nsec })
    }
}

/// Serialisation.
impl Snapshot {
    /// The serialised form (see the [module docs](self)).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 48);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_varint(&mut out, self.entries.len() as u64);
        put_varint(&mut out, self.recorded.len() as u64);
        let mut prev: &[u8] = b"";
        for e in &self.entries {
            let p = e.path.as_os_str().as_bytes();
            let shared = p.iter().zip(prev).take_while(|(a, b)| a == b).count();
            put_varint(&mut out, shared as u64);
            let suffix = p.get(shared..).unwrap_or_default();
            put_varint(&mut out, suffix.len() as u64);
            out.extend_from_slice(suffix);
            prev = p;
            out.push(e.kind.to_u8());
            for v in [u64::from(e.mode), u64::from(e.uid), u64::from(e.gid), e.size] {
                put_varint(&mut out, v);
            }
            for t in [e.mtime, e.ctime] {
                put_varint(&mut out, zigzag(t.sec));
                put_varint(&mut out, u64::from(t.nsec));
            }
            for v in [e.ino, e.dev, e.nlink, e.rdev] {
                put_varint(&mut out, v);
            }
            out.extend_from_slice(&e.xattr_hash.to_le_bytes());
            if e.kind == FileKind::Symlink {
                let t = e.link_target.as_deref().map(|t| t.as_os_str().as_bytes()).unwrap_or_default();
                put_varint(&mut out, t.len() as u64);
                out.extend_from_slice(t);
            }
        }
        for (p, r) in &self.recorded {
            let p = p.as_os_str().as_bytes();
            put_varint(&mut out, p.len() as u64);
            out.extend_from_slice(p);
            put_varint(&mut out, u64::from(r.uid));
            put_varint(&mut out, u64::from(r.gid));
            match r.device {
                None => out.push(0),
                Some(RecordedDevice::Char { major, minor }) => {
                    out.push(1);
                    put_varint(&mut out, u64::from(major));
                    put_varint(&mut out, u64::from(minor));
                }
                Some(RecordedDevice::Block { major, minor }) => {
                    out.push(2);
                    put_varint(&mut out, u64::from(major));
                    put_varint(&mut out, u64::from(minor));
                }
            }
        }
        let crc = libdeflater::crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
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
        let mut c = Cursor { buf: body, pos: MAGIC.len() };
        let version = c.u32()?;
        if version != VERSION {
            return Err(bad(format!("version {version} is not supported (this build reads {VERSION})")));
        }
        let want = u32::from_le_bytes(crc.try_into().map_err(|_| bad("truncated"))?);
        if libdeflater::crc32(body) != want {
            return Err(bad("checksum mismatch (file damaged)"));
        }
        let count = usize::try_from(c.varint()?).map_err(|_| bad("count out of range"))?;
        let nrec = usize::try_from(c.varint()?).map_err(|_| bad("count out of range"))?;
        // Every entry takes at least 20 bytes: never trust a count beyond the input.
        let mut entries: Vec<SnapshotEntry> = Vec::with_capacity(count.min(body.len() / 20));
        let mut prev: Vec<u8> = Vec::new();
        for i in 0..count {
            let shared = c.len()?;
            let suffix_len = c.len()?;
            if shared > prev.len() {
                return Err(bad(format!("entry {i}: shared prefix longer than the previous path")));
            }
            let mut p = prev.get(..shared).unwrap_or_default().to_vec();
            p.extend_from_slice(c.take(suffix_len)?);
            let path = PathBuf::from(OsString::from_vec(p.clone()));
            if !is_normalised(&p) {
                return Err(bad(format!("entry {i}: path {path:?} is not normalised")));
            }
            if let Some(last) = entries.last()
                && tar_order(&last.path, &path) != Ordering::Less
            {
                return Err(bad(format!("entry {i}: {path:?} is out of order")));
            }
            if i == 0 && !p.is_empty() {
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
            entries.push(SnapshotEntry {
                path,
                kind,
                mode,
                uid,
                gid,
                size,
                mtime,
                ctime,
                ino,
                dev,
                nlink,
                rdev,
                link_target,
                xattr_hash,
            });
            prev = p;
        }
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
        if c.pos != body.len() {
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
        b[8] = 2;
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

    #[test]
    fn normalised_check_agrees_with_normalize() {
        for p in ["", "a", "a/b", "/a", "a/", "a//b", "./a", "a/./b", "a/..", "..", ".", "a\0b", ".wh.x", "a.b/..c"] {
            let agree = normalize(p.as_bytes()).is_ok_and(|n| n.as_os_str().as_bytes() == p.as_bytes());
            assert_eq!(is_normalised(p.as_bytes()), agree, "{p:?}");
        }
    }

    #[test]
    fn varints_and_zigzag() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Cursor { buf: &out, pos: 0 }.varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
