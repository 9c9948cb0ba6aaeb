//! Changing a table and its `index.json` together: the unchanged byte ranges of the
//! index copied as they are (by the kernel where it can), the new entries written
//! between them, and the new table made on the way.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use strata_spec::{ANNOTATION_REF_NAME, Descriptor};

use super::build::Builder;
use super::{Table, u32_at};

/// A new entry for [`Table::splice`]: its descriptor (with the ref name, if any).
pub(crate) struct NewEntry {
    pub(crate) desc: Descriptor,
}

/// # Changing
impl Table {
    /// Write to `out` the index that `index` (the file this table describes) becomes
    /// when the entries `remove` (sorted positions) go and `insert` come in at position
    /// `at` (before the old entry `at`; the end when `at` is the number of entries):
    /// the unchanged byte ranges are copied as they are. Returns the new table, keyed
    /// by `index`'s key (with the new size) until the caller sets the new file's.
    pub(crate) fn splice(
        &self,
        index: &File,
        remove: &[usize],
        at: usize,
        insert: &[NewEntry],
        out: &mut File,
    ) -> io::Result<Table> {
        let mut remove: Vec<usize> = remove.iter().copied().filter(|&i| i < self.n).collect();
        remove.dedup();
        let n = self.n - remove.len() + insert.len();
        let mut w = Splicer { src: index, out, pending: (0, 0), out_pos: 0 };
        let mut b = Builder::new(n, self.names_len + 64 * insert.len());
        b.targets = self.targets.clone();
        for (k, (mt, d, s)) in self.targets.iter().enumerate() {
            b.seen.insert((mt.to_string(), d.to_string(), *s), u32::try_from(k).unwrap_or(u32::MAX));
        }
        // Old position -> new (u32::MAX: removed), and the positions of the new entries.
        let mut moved = Vec::with_capacity(self.n);
        let mut added = Vec::with_capacity(insert.len());
        // The head, through `[`.
        w.old(0, self.open + 1)?;
        let mut last = Last::Head;
        let mut removed = remove.iter().copied().peekable();
        for i in 0..=self.n {
            if i == at {
                for e in insert {
                    let bytes = strata_spec::to_canonical_json(&e.desc).map_err(io::Error::other)?;
                    if last != Last::Head {
                        w.bytes(b",")?;
                    }
                    let off = w.out_pos;
                    w.bytes(&bytes)?;
                    let d = &e.desc;
                    let target = b.target(&d.media_type, &d.digest, d.size);
                    let name = d.ref_name().map(str::as_bytes);
                    added.push(b.push(off, bytes.len() as u64, target, name, is_simple(d))?);
                    last = Last::New;
                }
            }
            if i == self.n {
                break;
            }
            if removed.peek() == Some(&i) {
                removed.next();
                moved.push(u32::MAX);
                continue;
            }
            let e = self.entry(i);
            let (start, end) = (u64::from(e.off), u64::from(e.off) + u64::from(e.len));
            let follows = match last {
                Last::Head => i == 0,
                Last::Old(j) => j + 1 == i,
                Last::New => false,
            };
            let off = if follows {
                // Right after its old neighbour (or the head): the separator comes along.
                w.extend(start, end)
            } else {
                if last != Last::Head {
                    w.bytes(b",")?;
                }
                let off = w.out_pos;
                w.old(start, end)?;
                off
            };
            moved.push(b.push(off, u64::from(e.len), e.target, self.name_bytes(i), e.simple)? as u32);
            last = Last::Old(i);
        }
        w.flush()?;
        let close = w.out_pos;
        w.old(self.close, self.key.size)?;
        w.flush()?;
        // The old order by name holds for the entries kept (positions only shift), and
        // the new named entries go in where they sort.
        let mut by_name: Vec<u32> = Vec::with_capacity(self.by_name_n + insert.len());
        for j in 0..self.by_name_n {
            let p = moved[u32_at(&self.bytes, self.by_name_at + j * 4) as usize];
            if p != u32::MAX {
                by_name.push(p);
            }
        }
        b.merge_by_name(&mut by_name, &added);
        b.drop_unused_targets();
        let mut key = self.key;
        key.size = w.out_pos;
        b.finish(key, self.open, close, by_name)
    }
}

/// What [`Table::splice`] wrote last.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Head,
    Old(usize),
    New,
}

/// Whether a descriptor is all the table holds of a simple entry.
pub(crate) fn is_simple(d: &Descriptor) -> bool {
    d.urls.is_none()
        && d.platform.is_none()
        && d.artifact_type.is_none()
        && d.data.is_none()
        && d.extra.is_empty()
        && d.nulls.is_empty()
        && d.annotations.as_ref().is_none_or(|a| a.len() == 1 && a.contains_key(ANNOTATION_REF_NAME))
}

/// Writes a file made of ranges of another file and new bytes; ranges that follow each
/// other are copied in one go (by the kernel, where it can).
pub(super) struct Splicer<'a> {
    src: &'a File,
    out: &'a mut File,
    /// The source range waiting to be copied.
    pending: (u64, u64),
    /// Bytes of output so far, the pending range included.
    out_pos: u64,
}

impl Splicer<'_> {
    /// Copy `[start, end)` of the source next.
    pub(super) fn old(&mut self, start: u64, end: u64) -> io::Result<()> {
        if self.pending.1 != start {
            self.flush()?;
            self.pending = (start, start);
        }
        self.pending.1 = end;
        self.out_pos += end - start;
        Ok(())
    }

    /// Copy the source on from where the pending range ends through `end` (the bytes
    /// before `start` are a separator); returns where `start` lands in the output.
    pub(super) fn extend(&mut self, start: u64, end: u64) -> u64 {
        let at = self.out_pos + start.saturating_sub(self.pending.1);
        self.out_pos += end.saturating_sub(self.pending.1);
        self.pending.1 = end;
        at
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.flush()?;
        self.out.write_all(bytes)?;
        self.out_pos += bytes.len() as u64;
        Ok(())
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        let (start, end) = self.pending;
        if end > start {
            let mut src = self.src;
            src.seek(SeekFrom::Start(start))?;
            let copied = io::copy(&mut src.take(end - start), self.out)?;
            if copied != end - start {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "index.json shrank while being copied"));
            }
        }
        self.pending = (end, end);
        Ok(())
    }
}
