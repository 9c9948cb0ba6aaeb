//! The index and its table: `index.json` as opened with its [`Table`], the table kept in
//! `.strata/index.table` and in memory, and how a change replaces `index.json` (whole,
//! or spliced around the entries it changes; over the spare when it can: `spare.rs`) and
//! then waits out the timestamp tick.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use strata_spec::{Descriptor, Index};
use tempfile::NamedTempFile;

use super::{MAX_INDEX_SIZE, OciDir, TABLE, TIMESTAMP_TICK};
use crate::error::{Error, Result};
use crate::store::{IndexEntries, IndexEntry};
use crate::table::{FileKey, NewEntry, Spare, TABLE_FILE, Table};

/// `index.json` as opened, with its table.
pub(super) struct Current {
    pub(super) file: File,
    pub(super) table: Arc<Table>,
}

impl Current {
    pub(super) fn index(&self, dir: &OciDir) -> Result<Index> {
        self.table
            .index(&self.file)
            .map_err(Error::io("read", dir.index_path()))?
            .map_err(|source| Error::BadIndex { path: dir.index_path(), source })
    }

    /// The entries named `name`, in index order.
    pub(super) fn named(&self, name: &str) -> Vec<usize> {
        self.table.named(name)
    }

    /// The refs of the entries at `positions`, with their descriptors.
    pub(super) fn refs_at(&self, dir: &OciDir, positions: &[usize]) -> Result<Vec<(String, Descriptor)>> {
        let mut out = Vec::with_capacity(positions.len());
        for &i in positions {
            if let Some(n) = self.table.name(i) {
                out.push((n.to_owned(), self.descriptor(dir, i)?));
            }
        }
        Ok(out)
    }

    /// The index without its entries.
    pub(super) fn shell(&self, dir: &OciDir) -> Result<Index> {
        self.table
            .shell(&self.file)
            .map_err(Error::io("read", dir.index_path()))?
            .map_err(|source| Error::BadIndex { path: dir.index_path(), source })
    }

    /// The entries with their targets listed once ([`Backend::index_entries`]).
    pub(super) fn entries(&self, dir: &OciDir) -> Result<IndexEntries> {
        let t = &self.table;
        let mut out = IndexEntries {
            targets: (0..t.targets()).map(|k| t.target_descriptor(k)).collect(),
            entries: Vec::with_capacity(t.len()),
        };
        for i in 0..t.len() {
            let full = if t.is_simple_entry(i) { None } else { Some(Box::new(self.descriptor(dir, i)?)) };
            out.entries.push(IndexEntry { name: t.name(i).map(str::to_owned), target: t.target(i), full });
        }
        Ok(out)
    }

    pub(super) fn descriptor(&self, dir: &OciDir, i: usize) -> Result<Descriptor> {
        self.table
            .descriptor(i, &self.file)
            .map_err(Error::io("read", dir.index_path()))?
            .map_err(|source| Error::BadIndex { path: dir.index_path(), source })
    }
}

/// # The index and its table (see [`crate::table`])
impl OciDir {
    /// Where the cache `name` is kept: `.strata/<name>.cache` (none for a name with
    /// other than letters, digits and `-`).
    pub(super) fn cache_path(&self, name: &str) -> Option<PathBuf> {
        let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| self.private_dir().join(format!("{name}.cache")))
    }

    pub(super) fn table_path(&self) -> PathBuf {
        self.private_dir().join(TABLE_FILE)
    }

    pub(super) fn open_index(&self) -> Result<(File, FileKey)> {
        let path = self.index_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::InvalidLayout { path, reason: "no index.json".into() });
            }
            Err(e) => return Err(Error::io("open", path)(e)),
        };
        let md = file.metadata().map_err(Error::io("stat", &path))?;
        if !md.is_file() {
            return Err(Error::InvalidLayout { path, reason: "index.json is not a regular file".into() });
        }
        if md.len() > MAX_INDEX_SIZE {
            return Err(Error::InvalidLayout {
                path,
                reason: format!("{} bytes, over the limit of {MAX_INDEX_SIZE}", md.len()),
            });
        }
        Ok((file, FileKey::of(&md)))
    }

    /// `index.json` and its table: the stored one when it is this `index.json`'s, else
    /// built from it (and stored, when `store` and the index is settled: see
    /// [`crate::table`]).
    pub(super) fn current(&self, store: bool) -> Result<Current> {
        let path = self.index_path();
        // An index replaced while being read is read again; a few times at most.
        for _ in 0..4 {
            let (file, key) = self.open_index()?;
            if let Some(table) = self.cached_table(key) {
                return Ok(Current { file, table });
            }
            if let Some(table) = self.stored_table().filter(|t| t.key() == key) {
                return Ok(Current { file, table: self.cache_table(table) });
            }
            let mut bytes = Vec::with_capacity(usize::try_from(key.size).unwrap_or(0));
            (&file).take(MAX_INDEX_SIZE + 1).read_to_end(&mut bytes).map_err(Error::io("read", &path))?;
            let after = FileKey::of(&file.metadata().map_err(Error::io("stat", &path))?);
            if after != key || bytes.len() as u64 != key.size {
                continue;
            }
            let table = Table::build(&bytes, key).map_err(|source| Error::BadIndex { path: path.clone(), source })?;
            // Kept (on disk, and for the next lookup of this handle) only when settled: a
            // same-size edit in this timestamp tick would not change the key.
            if !settled(&key) {
                return Ok(Current { file, table: Arc::new(table) });
            }
            if store {
                self.store_table(&table);
            }
            return Ok(Current { file, table: self.cache_table(table) });
        }
        Err(Error::InvalidLayout { path, reason: "index.json kept changing while being read".into() })
    }

    /// `seen` again under the lock, when `index.json` has not changed since.
    pub(super) fn current_again(&self, seen: Current) -> Result<Current> {
        let (file, key) = self.open_index()?;
        if key == seen.table.key() {
            return Ok(Current { file, table: seen.table });
        }
        self.current(false)
    }

    pub(super) fn cached_table(&self, key: FileKey) -> Option<Arc<Table>> {
        let cache = TABLE.lock().unwrap_or_else(|p| p.into_inner());
        cache.as_ref().filter(|(layout, t)| *layout == self.key && t.key() == key).map(|(_, t)| t.clone())
    }

    pub(super) fn cache_table(&self, table: Table) -> Arc<Table> {
        let table = Arc::new(table);
        *TABLE.lock().unwrap_or_else(|p| p.into_inner()) = Some((self.key, table.clone()));
        table
    }

    pub(super) fn stored_table(&self) -> Option<Table> {
        let file = File::open(self.table_path()).ok()?;
        Table::read(&file).ok().flatten()
    }

    /// Keep a table a reader built, when strata keeps its files in this layout and no
    /// writer is at work (best effort: the table is only a cache).
    pub(super) fn store_table(&self, table: &Table) {
        if !self.private_dir().is_dir() {
            return;
        }
        let Some(_lock) = self.try_lock("index.lock") else { return };
        if fs::metadata(self.index_path()).is_ok_and(|md| FileKey::of(&md) == table.key()) {
            let _ = self.replace_cache_file(&self.table_path(), table.encode());
        }
    }

    /// Replace `index.json` (the file `replaced` describes) with `bytes`, over the
    /// spare when it can be (see `spare.rs`), then store the table, keyed by the new
    /// file; returns once a timestamp tick has passed since the rename. Called under
    /// `index.lock`.
    pub(super) fn replace_index(&self, replaced: &FileKey, bytes: &[u8]) -> Result<()> {
        let table = Table::build(bytes, FileKey::of_size(bytes.len() as u64))
            .map_err(|source| Error::BadIndex { path: self.index_path(), source })?;
        let written = self.write_new_index(self.take_spare().map(|t| (t, 0)), &|out, _| {
            out.write_all(bytes)?;
            out.set_len(bytes.len() as u64)
        })?;
        let (file, spare) = self.install_index(written, 0, replaced)?;
        self.settle_index(&file, table, None, spare)
    }

    /// After a change: the new file's table stored, keyed
    /// by it and knowing `spare` (from `staged`, its bytes already in a temporary file
    /// with the old keys, when given), and the timestamp clock waited for.
    pub(super) fn settle_index(
        &self,
        file: &File,
        mut table: Table,
        staged: Option<NamedTempFile>,
        spare: Spare,
    ) -> Result<()> {
        let key = FileKey::of(&file.metadata().map_err(Error::io("stat", self.index_path()))?);
        if key.size != table.key().size {
            // Cannot happen; the next read builds the table from index.json anyway.
            let _ = fs::remove_file(self.table_path());
            return Ok(());
        }
        table.set_keys(key, spare);
        if fs::metadata(self.index_path()).is_ok_and(|md| FileKey::of(&md) == key) {
            match staged {
                Some(tmp) => self.commit_staged_table(tmp, &table)?,
                None => self.replace_cache_file(&self.table_path(), table.encode())?,
            }
            self.cache_table(table);
        }
        // The spare was renamed after index.json: a later edit of either must change
        // its key.
        self.wait_for_clock(if spare.key.ctime > key.ctime { spare.key } else { key });
        Ok(())
    }

    /// Settle: a later change of index.json (or of the file `key` describes) gets a
    /// later ctime than `key`'s. Done once a
    /// file touched now (the lock file, whose times mean nothing) gets a later ctime
    /// than index.json's: the clock files are stamped with has moved on. That takes a
    /// tick of it (4 ms at HZ=250, 1 ms at HZ=1000), or nothing where the kernel stamps
    /// fine-grained times; at most a [`TIMESTAMP_TICK`] past the ctime, as before.
    fn wait_for_clock(&self, key: FileKey) {
        let probe = OpenOptions::new().write(true).open(self.private_dir().join("index.lock")).ok();
        let clock_moved = || {
            probe.as_ref().is_some_and(|p| {
                p.set_times(fs::FileTimes::new().set_modified(SystemTime::now())).is_ok()
                    && p.metadata().is_ok_and(|md| FileKey::of(&md).ctime > key.ctime)
            })
        };
        let give_up = Instant::now() + 2 * TIMESTAMP_TICK;
        while !clock_moved() && !settled(&key) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_micros(250));
        }
    }

    /// Rewrite the index without the entries `remove` and with `insert` at `at`,
    /// copying the rest as it is. Called under `index.lock`.
    ///
    /// The new index is written over the spare when it can be (see `spare.rs`), from
    /// the first byte it does not already share with the new index on; else to a new
    /// file. On a big index a full write is most of the time (56 MB at 250,000
    /// entries), so it runs on a second thread from a plan made first, while this one
    /// makes the new table and writes it to a temporary file; once `index.json` is in
    /// place, only the table's keys and checksum are written again before it is renamed
    /// into place too. `c` holds the replaced `index.json`'s last open file here: when
    /// it is not kept as the spare, closing it frees the file, which on a big index
    /// takes a while too, so another thread closes it while this one stores the table
    /// and waits for the clock.
    pub(super) fn splice_index(&self, c: Current, remove: &[usize], at: usize, insert: &[NewEntry]) -> Result<()> {
        let plan = c.table.plan_splice(remove, at, insert).map_err(Error::io("write", self.index_path()))?;
        let spare = self.take_spare().map(|t| {
            let same = c.table.spare_same(&t.key).min(plan.same_prefix());
            (t, same)
        });
        let copy = |spare| self.write_new_index(spare, &|out, from| plan.write_from(&c.file, out, from));
        let (written, staged) = std::thread::scope(|s| {
            let copying =
                std::thread::Builder::new().name("index-copy".into()).spawn_scoped(s, move || copy(spare)).ok();
            // A table not made or staged is not stored: the next read builds it from
            // index.json.
            let staged = c.table.splice(&plan, insert).ok().and_then(|t| {
                let tmp = self.stage_cache_file(t.encode()).ok()?;
                Some((t, tmp))
            });
            let written = match copying {
                Some(t) => t.join().unwrap_or_else(|_| {
                    Err(Error::io("write", self.index_path())(io::Error::other("the copying thread panicked")))
                }),
                // No thread could be started (the spare went with the closure): a new
                // file, written on this one.
                None => copy(None),
            };
            (written, staged)
        });
        let (file, spare) = self.install_index(written?, plan.same_prefix(), &c.table.key())?;
        // When no thread can be started, `c` is dropped here, on this one.
        let release = std::thread::Builder::new().name("index-release".into()).spawn(move || drop(c)).ok();
        let stored = match staged {
            Some((table, tmp)) => self.settle_index(&file, table, Some(tmp), spare),
            None => {
                let _ = fs::remove_file(self.table_path());
                Ok(())
            }
        };
        if let Some(release) = release {
            let _ = release.join();
        }
        stored
    }

    /// The table file written by [`OciDir::stage_cache_file`] with `table`'s bytes
    /// before its keys were set: the keys and the checksum (the only bytes that changed)
    /// written again, then renamed into place.
    fn commit_staged_table(&self, tmp: NamedTempFile, table: &Table) -> Result<()> {
        let path = tmp.path().to_path_buf();
        let bytes = table.encode();
        for range in [table.key_range(), bytes.len() - 8..bytes.len()] {
            tmp.as_file().write_all_at(&bytes[range.clone()], range.start as u64).map_err(Error::io("write", &path))?;
        }
        let dest = self.table_path();
        tmp.persist(&dest).map_err(|e| Error::io("rename into place", &dest)(e.error))?;
        Ok(())
    }
}

/// Whether an index with this key was last changed more than a timestamp tick ago.
pub(super) fn settled(key: &FileKey) -> bool {
    SystemTime::now().duration_since(key.changed()).is_ok_and(|age| age > TIMESTAMP_TICK)
}
