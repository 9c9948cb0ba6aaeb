//! A layer from entries given in memory, in any order: [`LayerBuilder`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::entry::{EntryKind, EntryMeta, Timestamp, tar_order};
use crate::error::{Error, Result};
use crate::path::{WHITEOUT_PREFIX, normalize};
use crate::write::{LayerInfo, LayerWriter, WriteOptions};

/// Builds a layer from files, directories, links and whiteouts given in any order.
///
/// Paths may start with `/` and are normalised; `..` is refused. Parent directories are
/// implied (mode 0o755, owner 0:0) unless given; files default to mode 0o644, owner
/// 0:0, and every entry to mtime 0 (the epoch: reproducible) unless set with
/// [`LayerBuilder::mtime`] or per entry. An entry given twice keeps the last one. The
/// layer is written in tar order, so the same entries always give the same blob.
///
/// ```
/// use strata_layer::{EntryMeta, EntryKind, LayerBuilder, WriteOptions};
///
/// let mut layer = LayerBuilder::new();
/// layer.file("/usr/local/bin/hello", b"#!/bin/sh\necho hello\n".to_vec()).mode(0o755);
/// layer.file("/etc/motd", b"hi\n".to_vec());
/// layer.symlink("/usr/bin/hello", "../local/bin/hello");
/// let (info, blob) = layer.write(Vec::new(), &WriteOptions::default())?;
/// // ./, etc/, etc/motd, usr/, usr/bin/, usr/bin/hello, usr/local/, usr/local/bin/, and the file.
/// assert_eq!(info.entries, 9);
/// # let _ = (blob, EntryMeta::new("x", EntryKind::File));
/// # Ok::<(), strata_layer::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct LayerBuilder {
    /// By path in the layer (for a whiteout: its `.wh.` marker's path).
    entries: BTreeMap<PathBuf, Item>,
    /// Marker path -> the path a whiteout deletes.
    whiteouts: BTreeMap<PathBuf, PathBuf>,
    /// Refusals met while adding (reported by `write`, so adding can chain).
    problems: Vec<(PathBuf, String)>,
    mtime: Timestamp,
}

/// One entry given: its metadata, content, and the mtime it was given, if any (else the
/// builder's, applied when the layer is written).
#[derive(Debug, Clone)]
struct Item {
    meta: EntryMeta,
    content: Vec<u8>,
    mtime: Option<Timestamp>,
}

/// The entry just added to a [`LayerBuilder`], to set its metadata.
#[derive(Debug)]
pub struct EntryRef<'a> {
    item: Option<&'a mut Item>,
}

impl EntryRef<'_> {
    /// Set the permission bits (`mode & 0o7777`).
    pub fn mode(self, mode: u32) -> Self {
        self.with(|m| m.mode = mode & 0o7777)
    }

    /// Set the owner and group (numeric).
    pub fn owner(self, uid: u32, gid: u32) -> Self {
        self.with(|m| {
            m.uid = uid;
            m.gid = gid;
        })
    }

    /// Set the modification time (seconds since the epoch).
    pub fn mtime(mut self, secs: i64) -> Self {
        if let Some(item) = self.item.as_deref_mut() {
            item.mtime = Some(Timestamp::new(secs, 0));
        }
        self
    }

    /// Add an extended attribute (`security.capability`, `user.*`...).
    pub fn xattr(self, name: impl Into<std::ffi::OsString>, value: impl Into<Vec<u8>>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.with(move |m| {
            m.xattrs.insert(name, value);
        })
    }

    fn with(mut self, f: impl FnOnce(&mut EntryMeta)) -> Self {
        if let Some(item) = self.item.as_deref_mut() {
            f(&mut item.meta);
        }
        self
    }
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        LayerBuilder::default()
    }

    /// The mtime of entries that set none, implied parents included (default 0).
    pub fn mtime(&mut self, secs: i64) -> &mut Self {
        self.mtime = Timestamp::new(secs, 0);
        self
    }

    /// Add a regular file holding `content`.
    pub fn file(&mut self, path: impl AsRef<Path>, content: impl Into<Vec<u8>>) -> EntryRef<'_> {
        let content = content.into();
        let size = content.len() as u64;
        self.add(path.as_ref(), EntryKind::File, size, content)
    }

    /// Add a directory (its contents may be given before or after it).
    pub fn dir(&mut self, path: impl AsRef<Path>) -> EntryRef<'_> {
        self.add(path.as_ref(), EntryKind::Dir, 0, Vec::new())
    }

    /// Add a symbolic link to `target` (stored as given).
    pub fn symlink(&mut self, path: impl AsRef<Path>, target: impl Into<PathBuf>) -> EntryRef<'_> {
        self.add(path.as_ref(), EntryKind::Symlink { target: target.into() }, 0, Vec::new())
    }

    /// Add a hard link to `target`, another entry of this layer (or of a lower one).
    pub fn hardlink(&mut self, path: impl AsRef<Path>, target: impl AsRef<Path>) -> EntryRef<'_> {
        match normalize(target.as_ref().as_os_str().as_encoded_bytes()) {
            Ok(t) if !t.as_os_str().is_empty() => {
                self.add(path.as_ref(), EntryKind::HardLink { target: t }, 0, Vec::new())
            }
            _ => self.refuse(target.as_ref(), "not a hard link target"),
        }
    }

    /// Delete `path` of the layers below (a `.wh.` whiteout).
    pub fn whiteout(&mut self, path: impl AsRef<Path>) -> EntryRef<'_> {
        let path = path.as_ref();
        let norm = match normalize(path.as_os_str().as_encoded_bytes()) {
            Ok(n) if !n.as_os_str().is_empty() => n,
            _ => return self.refuse(path, "not a path a whiteout can delete"),
        };
        let Some(name) = norm.file_name() else { return self.refuse(path, "not a path a whiteout can delete") };
        let mut marker = std::ffi::OsString::from(WHITEOUT_PREFIX);
        marker.push(name);
        let at = norm.parent().map_or_else(|| PathBuf::from(&marker), |p| p.join(&marker));
        self.whiteouts.insert(at.clone(), norm);
        self.add(&at, EntryKind::File, 0, Vec::new())
    }

    /// How many entries were given (implied parents not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn refuse(&mut self, path: &Path, reason: &str) -> EntryRef<'_> {
        self.problems.push((path.to_path_buf(), reason.to_owned()));
        EntryRef { item: None }
    }

    fn add(&mut self, path: &Path, kind: EntryKind, size: u64, content: Vec<u8>) -> EntryRef<'_> {
        let norm = match normalize(path.as_os_str().as_encoded_bytes()) {
            Ok(n) if !n.as_os_str().is_empty() => n,
            Ok(_) => return self.refuse(path, "the root is implied; give paths under it"),
            Err(e) => return self.refuse(path, &e.to_string()),
        };
        let meta = EntryMeta::new(norm.clone(), kind).with_size(size);
        self.entries.insert(norm.clone(), Item { meta, content, mtime: None });
        EntryRef { item: self.entries.get_mut(&norm) }
    }

    /// Write the layer to `sink` (the root `./` first, then every entry and implied
    /// parent in tar order) and return what was written with the sink. Fails with the
    /// first path refused while adding, before anything is written.
    pub fn write<W: Write>(&self, sink: W, opts: &WriteOptions) -> Result<(LayerInfo, W)> {
        if let Some((path, reason)) = self.problems.first() {
            return Err(Error::Unrepresentable { path: path.clone(), reason: reason.clone() });
        }
        // Parents nobody gave, as plain directories.
        let mut implied: BTreeMap<PathBuf, EntryMeta> = BTreeMap::new();
        for path in self.entries.keys() {
            for parent in path.ancestors().skip(1) {
                if parent.as_os_str().is_empty() {
                    break;
                }
                match self.entries.get(parent) {
                    Some(item) if item.meta.kind == EntryKind::Dir => {}
                    Some(_) => {
                        return Err(Error::Unrepresentable {
                            path: path.clone(),
                            reason: format!("its parent {} is not a directory", parent.display()),
                        });
                    }
                    None => {
                        implied
                            .entry(parent.to_path_buf())
                            .or_insert_with(|| EntryMeta::new(parent, EntryKind::Dir).with_mtime(self.mtime));
                    }
                }
            }
        }
        // (path, metadata, content, mtime): an entry's own mtime, else the builder's.
        let mut order: Vec<(&Path, &EntryMeta, &[u8], Timestamp)> = self
            .entries
            .iter()
            .map(|(p, i)| (p.as_path(), &i.meta, i.content.as_slice(), i.mtime.unwrap_or(self.mtime)))
            .chain(implied.iter().map(|(p, m)| (p.as_path(), m, &[][..], self.mtime)))
            .collect();
        order.sort_by(|a, b| tar_order(a.0, b.0));
        let mut w = LayerWriter::new(sink, opts)?;
        w.append(&EntryMeta::new("", EntryKind::Dir).with_mtime(self.mtime))?;
        for (path, meta, content, mtime) in order {
            if let Some(deleted) = self.whiteouts.get(path) {
                w.append_whiteout(deleted)?;
                continue;
            }
            let meta = EntryMeta { mtime, ..meta.clone() };
            if meta.kind == EntryKind::File && meta.size > 0 {
                w.append_file(&meta, &mut &content[..])?;
            } else {
                w.append(&meta)?;
            }
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(blob: &[u8]) -> Vec<(String, char, u32)> {
        let dec = flate2::read::GzDecoder::new(blob);
        let mut ar = tar::Archive::new(dec);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    h.entry_type().as_byte() as char,
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn entries_in_any_order_come_out_in_tar_order_with_their_parents() {
        let mut a = LayerBuilder::new();
        a.file("/usr/bin/b", b"bb".to_vec()).mode(0o755);
        a.file("etc/motd", b"hi".to_vec());
        a.dir("usr").mode(0o700);
        a.whiteout("/var/old");
        let mut b = LayerBuilder::new();
        b.whiteout("var/old");
        b.dir("usr").mode(0o700);
        b.file("etc/motd", b"hi".to_vec());
        b.file("usr/bin/b", b"bb".to_vec()).mode(0o755);
        let (ia, blob_a) = a.write(Vec::new(), &WriteOptions::default()).unwrap();
        let (ib, blob_b) = b.write(Vec::new(), &WriteOptions::default()).unwrap();
        assert_eq!(blob_a, blob_b, "the order given does not matter");
        assert_eq!(ia.diff_id, ib.diff_id);
        let got = names(&blob_a);
        let want = [
            ("./", '5', 0o755),
            ("etc/", '5', 0o755),
            ("etc/motd", '0', 0o644),
            ("usr/", '5', 0o700),
            ("usr/bin/", '5', 0o755),
            ("usr/bin/b", '0', 0o755),
            ("var/", '5', 0o755),
            ("var/.wh.old", '0', 0),
        ];
        let want: Vec<(String, char, u32)> = want.iter().map(|(n, t, m)| ((*n).to_owned(), *t, *m)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_entry_keeps_its_own_mtime_whatever_the_builder_default_becomes() {
        let mut l = LayerBuilder::new();
        l.file("a", b"x".to_vec()).mtime(7);
        l.file("b", b"y".to_vec());
        l.mtime(100);
        let (_, blob) = l.write(Vec::new(), &WriteOptions::default()).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
        let times: Vec<(String, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), e.header().mtime().unwrap())
            })
            .collect();
        assert_eq!(times, [("./".to_owned(), 100), ("a".to_owned(), 7), ("b".to_owned(), 100)]);
    }

    #[test]
    fn bad_paths_fail_at_write_before_anything_is_written() {
        for bad in ["../escape", "/", "a/../../b"] {
            let mut l = LayerBuilder::new();
            l.file(bad, b"x".to_vec());
            let mut sink = Vec::new();
            let e = l.write(&mut sink, &WriteOptions::default()).unwrap_err();
            assert!(matches!(e, Error::Unrepresentable { .. }), "{bad}: {e}");
            assert!(sink.is_empty(), "{bad}");
        }
        let mut l = LayerBuilder::new();
        l.file("a", b"x".to_vec());
        l.file("a/b", b"y".to_vec());
        assert!(l.write(Vec::new(), &WriteOptions::default()).is_err(), "a file under a file");
    }
}
