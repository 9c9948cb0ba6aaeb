//! Directory metadata set last: a directory's mtime changes whenever an entry is made
//! or removed in it, so every directory's mtime (and, rootless, a mode without `u+rwx`)
//! is set once all layers are applied.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io;
use std::ops::Bound;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::disk::{key, timestamps};
use crate::error::{Error, Result};
use crate::fsops::{self, Root, errno};
use crate::read::Mtime;

/// A directory whose metadata is set at the end.
struct DirMeta {
    mtime: Mtime,
    /// The mode, when it could not be set at once (rootless, no `u+rwx`).
    mode: Option<u32>,
    /// Order of declaration (see [`Dirs::finish`]).
    seq: u64,
    /// Device and inode of the directory declared: the directory at its real path by
    /// the end is another one only if something removed it without forgetting it.
    id: (u64, u64),
}

/// The directories declared so far, by *real* path (see [`crate::fsops::Dir::path`]):
/// the one name a directory has in the tree, whichever name declared it, and under
/// which its removal forgets it.
pub(super) struct Dirs {
    map: BTreeMap<Vec<u8>, DirMeta>,
    seq: u64,
    root_path: PathBuf,
}

/// The key range of `p`'s descendants: `[p/, p0)`; `None` as the end for the root,
/// whose descendants are every key but `""`.
fn subtree(p: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let k = key(p);
    if k.is_empty() {
        return (Vec::new(), None);
    }
    let mut lo = k.to_vec();
    lo.push(b'/');
    let mut hi = k.to_vec();
    hi.push(b'0');
    (lo, Some(hi))
}

/// Drop the removed subtree `p` from a map keyed by real path.
pub(super) fn forget_under<V>(map: &mut BTreeMap<Vec<u8>, V>, p: &Path) {
    let (lo, hi) = subtree(p);
    let Some(hi) = hi else {
        // The root is never removed, only emptied: keep its own entry.
        let root = map.remove(&b""[..]);
        map.clear();
        if let Some(v) = root {
            map.insert(Vec::new(), v);
        }
        return;
    };
    map.remove(key(p));
    let doomed: Vec<Vec<u8>> =
        map.range::<[u8], _>((Bound::Included(&lo[..]), Bound::Excluded(&hi[..]))).map(|(k, _)| k.clone()).collect();
    for k in doomed {
        map.remove(&k);
    }
}

fn is(e: &io::Error, code: Errno) -> bool {
    e.raw_os_error() == Some(code.raw_os_error())
}

impl Dirs {
    pub(super) fn new(root_path: &Path) -> Dirs {
        Dirs { map: BTreeMap::new(), seq: 0, root_path: root_path.to_path_buf() }
    }

    /// The directory at `real` (device and inode `id`) was declared with this mtime
    /// and, when it must wait, this mode.
    pub(super) fn declare(&mut self, real: &Path, mtime: Mtime, mode: Option<u32>, id: (u64, u64)) {
        self.seq += 1;
        self.map.insert(key(real).to_vec(), DirMeta { mtime, mode, seq: self.seq, id });
    }

    /// `real` and its subtree were removed.
    pub(super) fn forget_under(&mut self, real: &Path) {
        forget_under(&mut self.map, real);
    }

    /// Directory modes (deferred ones) and mtimes, deepest first, once every layer is in.
    ///
    /// Keyed by real path, whatever name each layer used (`lib/d` and `usr/lib/d` with
    /// `lib -> usr/lib` both declare `usr/lib/d`; `/a/b` with `a -> /` declares `b`,
    /// however `a/b` resolves by the end): a later declaration replaces an earlier one,
    /// and removing a directory forgets it and its subtree by that same name, so each
    /// directory still there gets the metadata of its last declaration. Belt and braces,
    /// each is checked to be the inode declared (a mismatch is skipped), and an inode
    /// declared under two names takes the last declaration.
    pub(super) fn finish(&mut self, root: &Root) -> Result<()> {
        let dirs = std::mem::take(&mut self.map);
        let mut last: HashMap<(u64, u64), u64> = HashMap::new();
        for meta in dirs.values() {
            let seq = last.entry(meta.id).or_insert(meta.seq);
            *seq = (*seq).max(meta.seq);
        }
        for (path, meta) in dirs.iter().rev() {
            if last.get(&meta.id) != Some(&meta.seq) {
                continue;
            }
            let Some(fd) = self.open_declared(root, path)? else { continue };
            let st = rustix::fs::fstat(&fd).map_err(|e| self.err("stat", path)(errno(e)))?;
            if (st.st_dev, st.st_ino) != meta.id {
                continue;
            }
            if let Some(mode) = meta.mode {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| self.err("chmod", path)(errno(e)))?;
            }
            rustix::fs::futimens(&fd, &timestamps(meta.mtime)).map_err(|e| self.err("set mtime", path)(errno(e)))?;
        }
        Ok(())
    }

    fn err(&self, op: &'static str, path: &[u8]) -> impl FnOnce(io::Error) -> Error {
        let path = self.root_path.join(Path::new(OsStr::from_bytes(path)));
        move |source: io::Error| Error::Io(strata_spec::IoError::new(op, path, source))
    }

    /// The directory a declared name leads to now, if it is still there.
    fn open_declared(&self, root: &Root, path: &[u8]) -> Result<Option<OwnedFd>> {
        let path = Path::new(OsStr::from_bytes(path));
        if path.as_os_str().is_empty() {
            let fd = rustix::fs::openat(
                root.fd(),
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.err("open root", b"")(errno(e)))?;
            return Ok(Some(fd));
        }
        let (Some(name), Some(parent)) = (path.file_name(), path.parent()) else { return Ok(None) };
        let key = path.as_os_str().as_bytes();
        let dir = match root.open_dir(parent) {
            Ok(d) => d,
            Err(e) if is(&e, Errno::NOENT) || is(&e, Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(self.err("resolve directory", key)(e)),
        };
        match fsops::open_subdir(dir.fd.as_fd(), name) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if is(&e, Errno::NOENT) || is(&e, Errno::NOTDIR) || is(&e, Errno::LOOP) => Ok(None),
            Err(e) => Err(self.err("open directory", key)(e)),
        }
    }
}
