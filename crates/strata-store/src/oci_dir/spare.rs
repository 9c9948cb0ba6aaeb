//! The spare: the `index.json` a change replaced, kept as `.strata/index.spare`, so that
//! the next change writes the new index over its pages instead of filling a new file
//! and then freeing the old one (at 250,000 entries, 56 MB each way). The index table
//! records how many first bytes the spare shares with the current `index.json`
//! ([`Spare`]): a tag appends at the end, so the next one writes little more than the
//! entries after that point.
//!
//! A file is written over only when nothing else can be reading it:
//!
//! - It is a regular file with one link (not, say, the `index.json` of a layout copied
//!   with `cp -al`, which another store still names).
//! - No one has it open, in this process or any other (a reader that opened
//!   `index.json` before it was replaced, strata or umoci, still reads it): checked by
//!   taking a write lease on it (`F_SETLEASE`), which the kernel grants only when the
//!   caller holds the sole open file, and releasing it at once. Nothing can open the
//!   spare afterwards but by its private name. Where leases are not available (another
//!   owner without `CAP_LEASE`, a file system without them), the new index goes to a new
//!   file, as it always did.
//!
//! The switch keeps `index.json` whole at every step: the spare is written and synced
//! while `index.json` is the old file; the old file gets a second name
//! (`index.spare-next`), the spare is renamed over `index.json`, and the second name
//! becomes the spare. A crash leaves at most a stray `index.spare-next` (removed by the
//! next change) or no spare.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use tempfile::NamedTempFile;

use super::{OciDir, finish_file, sync_dir};
use crate::error::{Error, Result};
use crate::table::{FileKey, Spare};

/// The spare's name in `.strata/`.
const SPARE: &str = "index.spare";
/// The replaced `index.json`'s second name while the switch is under way.
const SPARE_NEXT: &str = "index.spare-next";

/// A new `index.json`, written and synced, before it is put in place.
pub(super) enum Written {
    /// Written over the spare.
    Spare(File),
    /// Written to a new temporary file.
    Temp(NamedTempFile),
}

/// A spare that may be written over, with what `stat` said of it.
pub(super) struct Taken {
    pub(super) file: File,
    pub(super) key: FileKey,
}

impl OciDir {
    fn spare_path(&self) -> PathBuf {
        self.private_dir().join(SPARE)
    }

    /// The spare, when it can be written over (see the module doc). Called under
    /// `index.lock`.
    pub(super) fn take_spare(&self) -> Option<Taken> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(self.spare_path())
            .ok()?;
        let md = file.metadata().ok()?;
        if !md.is_file() || md.nlink() != 1 || !alone(&file) {
            return None;
        }
        Some(Taken { file, key: FileKey::of(&md) })
    }

    /// Write `index.json` with `write` (which is given the file and how many first
    /// bytes it already holds): over `spare`, knowing it shares `same` first bytes with
    /// the new index, or else to a new temporary file. The file is synced, not yet in
    /// place.
    pub(super) fn write_new_index(
        &self,
        spare: Option<(Taken, u64)>,
        write: &dyn Fn(&mut File, u64) -> std::io::Result<()>,
    ) -> Result<Written> {
        let (mut written, path, from) = match spare {
            Some((taken, same)) => (Written::Spare(taken.file), self.spare_path(), same),
            None => {
                let tmp = self.temp_file("file-")?;
                let path = tmp.path().to_path_buf();
                (Written::Temp(tmp), path, 0)
            }
        };
        let file = match &mut written {
            Written::Spare(f) => f,
            Written::Temp(t) => t.as_file_mut(),
        };
        write(file, from).map_err(Error::io("write", &path))?;
        finish_file(file, &path)?;
        Ok(written)
    }

    /// Put `written` in place of `index.json`, keeping the file it replaces (whose key
    /// was `replaced`) as the spare; returns the new `index.json` and what its table is
    /// to know of the spare: it shares `same` first bytes with the new index. Called
    /// under `index.lock`.
    pub(super) fn install_index(&self, written: Written, same: u64, replaced: &FileKey) -> Result<(File, Spare)> {
        let index = self.index_path();
        let next = self.private_dir().join(SPARE_NEXT);
        // A leftover of a switch cut short.
        let _ = fs::remove_file(&next);
        let kept = fs::hard_link(&index, &next).is_ok();
        let renamed = match written {
            Written::Spare(f) => fs::rename(self.spare_path(), &index).map(|()| f),
            Written::Temp(t) => t.persist(&index).map_err(|e| e.error),
        };
        let file = match renamed {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&next);
                return Err(Error::io("rename into place", &index)(e));
            }
        };
        sync_dir(&self.root)?;
        if !kept || fs::rename(&next, self.spare_path()).is_err() {
            let _ = fs::remove_file(&next);
            return Ok((file, Spare::NONE));
        }
        // The replaced file as it was read (its ctime moved with the new name).
        let spare = match fs::symlink_metadata(self.spare_path()) {
            Ok(md) if FileKey::of(&md).same_content(replaced) => Spare { key: FileKey::of(&md), same },
            _ => Spare::NONE,
        };
        Ok((file, spare))
    }
}

/// Whether `file` is the only open file of its inode, in any process: a write lease is
/// granted only then (and only to the file's owner or a holder of `CAP_LEASE`). The
/// lease is released at once; no other process can have seen it.
#[allow(unsafe_code)]
fn alone(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(F_SETLEASE) takes an integer argument and reads or writes no memory
    // of this process; `fd` stays open for the call (borrowed from `file`).
    let taken = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_WRLCK) } == 0;
    if taken {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
    }
    taken
}
