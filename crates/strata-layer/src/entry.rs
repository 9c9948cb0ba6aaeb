//! Metadata of one layer entry: what the writer encodes and what the differs compare.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::path::OPAQUE_MARKER;

/// A point in time as seconds and nanoseconds since the Unix epoch (`nsec < 1e9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds (negative before 1970).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

impl Timestamp {
    /// A timestamp from seconds and nanoseconds; out-of-range nanoseconds are carried
    /// into the seconds.
    pub fn new(sec: i64, nsec: i64) -> Self {
        let sec = sec.saturating_add(nsec.div_euclid(1_000_000_000));
        // rem_euclid of a positive modulus is in 0..1e9, which fits a u32.
        let nsec = u32::try_from(nsec.rem_euclid(1_000_000_000)).unwrap_or(0);
        Timestamp { sec, nsec }
    }

    /// `SOURCE_DATE_EPOCH` semantics: a time later than `epoch` seconds becomes `epoch`.
    pub fn clamped(self, epoch: Option<i64>) -> Self {
        match epoch {
            Some(e) if self > Timestamp { sec: e, nsec: 0 } => Timestamp { sec: e, nsec: 0 },
            _ => self,
        }
    }
}

/// The type of an entry, with what only that type carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Regular file; its content follows the header (`size` bytes).
    File,
    /// Directory.
    Dir,
    /// Symbolic link, with its target exactly as stored (never resolved).
    Symlink {
        /// Link target.
        target: PathBuf,
    },
    /// Hard link to another entry of the same layer (or of a lower one), named by its
    /// path relative to the root.
    HardLink {
        /// The entry this one is a link to.
        target: PathBuf,
    },
    /// Character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// Named pipe.
    Fifo,
}

impl EntryKind {
    /// A short name for messages (`file`, `dir`, `symlink`...).
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink { .. } => "symlink",
            EntryKind::HardLink { .. } => "hardlink",
            EntryKind::CharDevice { .. } => "char device",
            EntryKind::BlockDevice { .. } => "block device",
            EntryKind::Fifo => "fifo",
        }
    }
}

/// Metadata of one entry of a layer, independent of where it came from (a directory
/// walk, a snapshot, a caller building a layer by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// Path relative to the root, normalised (no `.`/`..`/empty components, no leading
    /// or trailing `/`); the root itself is the empty path.
    pub path: PathBuf,
    /// Type.
    pub kind: EntryKind,
    /// Permission bits with setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner (numeric; names are never looked up unless asked for).
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Content size in bytes: regular files only, 0 otherwise.
    pub size: u64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Extended attributes, by name. Written as PAX `SCHILY.xattr.<name>` records.
    pub xattrs: BTreeMap<OsString, Vec<u8>>,
}

impl EntryMeta {
    /// A new entry with mode 0o644 (0o755 for directories), owner 0:0, mtime 0, no
    /// xattrs.
    pub fn new(path: impl Into<PathBuf>, kind: EntryKind) -> Self {
        let mode = if kind == EntryKind::Dir { 0o755 } else { 0o644 };
        EntryMeta {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: Timestamp::default(),
            xattrs: BTreeMap::new(),
        }
    }

    /// Set the size (builder style).
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    /// Set the mode (builder style).
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Set owner and group (builder style).
    pub fn with_owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Set the modification time (builder style).
    pub fn with_mtime(mut self, mtime: Timestamp) -> Self {
        self.mtime = mtime;
        self
    }
}

/// The order in which strata writes layer entries: paths compared component by
/// component, bytewise (so a directory comes right before its contents and `a/b` before
/// `a-b`), except that an opaque marker (`.wh..wh..opq`) comes first among its siblings
/// so that it is seen before anything the same layer puts in that directory.
///
/// This is the order of a depth-first walk that visits each directory's names sorted
/// bytewise, which is what every walk in this crate does.
pub fn tar_order(a: &Path, b: &Path) -> Ordering {
    let mut ia = a.as_os_str().as_bytes().split(|&c| c == b'/').filter(|c| !c.is_empty());
    let mut ib = b.as_os_str().as_bytes().split(|&c| c == b'/').filter(|c| !c.is_empty());
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                if x == y {
                    continue;
                }
                let marker = OPAQUE_MARKER.as_bytes();
                if x == marker {
                    return Ordering::Less;
                }
                if y == marker {
                    return Ordering::Greater;
                }
                return x.cmp(y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_order_is_depth_first() {
        let mut v: Vec<PathBuf> = ["a-b", "a/b", "a", "", "a/.wh..wh..opq", "a/!x", "b", "a/b/c", "a/.wh.z"]
            .iter()
            .map(PathBuf::from)
            .collect();
        v.sort_by(|a, b| tar_order(a, b));
        let got: Vec<_> = v.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(got, ["", "a", "a/.wh..wh..opq", "a/!x", "a/.wh.z", "a/b", "a/b/c", "a-b", "b"]);
    }

    #[test]
    fn timestamps_normalise_and_clamp() {
        assert_eq!(Timestamp::new(1, -1), Timestamp { sec: 0, nsec: 999_999_999 });
        assert_eq!(Timestamp::new(1, 2_000_000_001), Timestamp { sec: 3, nsec: 1 });
        let t = Timestamp { sec: 100, nsec: 5 };
        assert_eq!(t.clamped(Some(100)), Timestamp { sec: 100, nsec: 0 });
        assert_eq!(t.clamped(Some(101)), t);
        assert_eq!(t.clamped(None), t);
    }
}
