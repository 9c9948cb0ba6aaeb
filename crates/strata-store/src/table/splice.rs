//! Changing a table and its `index.json` together: a plan of the new `index.json` (the
//! unchanged byte ranges of the old one, the new entries between them) and the new
//! table are made first, in memory; the plan is then written, the ranges copied by the
//! kernel where it can, while the caller does something else with the table (writes it
//! out on another thread: a tag at 250,000 entries does both in the time of the copy).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use strata_spec::{ANNOTATION_REF_NAME, Descriptor, Digest, MediaType};

use super::build::Builder;
use super::{HEADER, NO_NAME, RECORD, Table, u32_at};

/// A new entry for [`Table::splice`]: its descriptor (with the ref name, if any).
pub(crate) struct NewEntry {
    pub(crate) desc: Descriptor,
}

/// # Changing
impl Table {
    /// Plan the index that `index.json` (the file this table describes) becomes when
    /// the entries `remove` (positions) go and `insert` come in at position `at`
    /// (before the old entry `at`; the end when `at` is the number of entries): the
    /// unchanged byte ranges are copied as they are ([`Plan::write`]). Takes time in
    /// the number of changes, not of entries.
    pub(crate) fn plan_splice(&self, remove: &[usize], at: usize, insert: &[NewEntry]) -> io::Result<Plan> {
        let parts = self.parts(remove, at, insert.len());
        let (w, placed) = self.lay_out(&parts, insert)?;
        Ok(Plan { pieces: w.pieces, parts, placed, len: w.out_pos })
    }

    /// The table of the index `plan` (made by [`Table::plan_splice`] with the same
    /// `insert`) describes, keyed by this one's key (with the new size) until the caller
    /// sets the new file's: the kept entries' records and names copied a run at a time,
    /// their offsets moved by what comes before them; the same bytes a fresh build of
    /// the new index gives.
    pub(crate) fn splice(&self, plan: &Plan, insert: &[NewEntry]) -> io::Result<Table> {
        let Plan { parts, placed, len, .. } = plan;
        let kept: usize = parts.iter().map(|p| if let Part::Run(a, b) = *p { b - a } else { 0 }).sum();
        let n = kept + insert.len();
        let mut b = Builder::new(n, self.names_len + 64 * insert.len());
        b.targets = self.targets.clone();
        // Old position -> new (u32::MAX: removed), and the positions of the new entries.
        let mut moved = vec![u32::MAX; self.n];
        let mut added = Vec::with_capacity(insert.len());
        let mut next_insert = insert.iter().zip(&placed.inserted);
        for (part, shift) in parts.iter().zip(&placed.shifts) {
            match *part {
                Part::Run(first, end) => {
                    // The run's names, as one range of the old names section.
                    let names_from = self.entry(first).name_start as usize;
                    let last = self.entry(end - 1);
                    let names_to =
                        last.name_start as usize + if last.name_len == NO_NAME { 0 } else { last.name_len as usize };
                    let name_shift = (b.bytes.len() - b.names_at) as i64 - names_from as i64;
                    let names = self
                        .bytes
                        .get(self.names_at + names_from..self.names_at + names_to)
                        .ok_or_else(|| io::Error::other("index table names out of range"))?;
                    b.bytes.extend_from_slice(names);
                    let start = b.next as u32;
                    for (to, k) in moved[first..end].iter_mut().zip(start..) {
                        *to = k;
                    }
                    b.put_records(&self.bytes[HEADER + first * RECORD..HEADER + end * RECORD], *shift, name_shift)?;
                }
                Part::Insert => {
                    for (e, &(off, len)) in next_insert.by_ref() {
                        let d = &e.desc;
                        let target = target_of(&mut b.targets, d);
                        added.push(b.push(off, len, target, d.ref_name().map(str::as_bytes), is_simple(d))?);
                    }
                }
            }
        }
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
        // Targets are numbered in order of first use: only a removed entry (which can
        // leave a target unused) or a new target (which may be used first before old
        // ones) changes that numbering.
        if kept < self.n || b.targets.len() != self.targets.len() {
            b.drop_unused_targets();
        }
        let mut key = self.key;
        key.size = *len;
        b.finish(key, self.open, placed.close, by_name)
    }

    /// The new index as parts, in order: runs of old entries that stay neighbours
    /// (split by the removed ones and by `at`), and where the `inserted` new ones go.
    fn parts(&self, remove: &[usize], at: usize, inserted: usize) -> Vec<Part> {
        let mut remove: Vec<usize> = remove.iter().copied().filter(|&i| i < self.n).collect();
        remove.sort_unstable();
        remove.dedup();
        let at = at.min(self.n);
        let mut parts = Vec::with_capacity(remove.len() + 3);
        let run = |parts: &mut Vec<Part>, from: usize, to: usize| {
            // [from, to) without the removed entries.
            let mut a = from;
            for &r in remove.iter().filter(|&&r| r >= from && r < to) {
                if r > a {
                    parts.push(Part::Run(a, r));
                }
                a = r + 1;
            }
            if to > a {
                parts.push(Part::Run(a, to));
            }
        };
        run(&mut parts, 0, at);
        if inserted > 0 {
            parts.push(Part::Insert);
        }
        run(&mut parts, at, self.n);
        parts
    }

    /// Lay the parts out in the new file: its pieces, and where each part landed.
    fn lay_out(&self, parts: &[Part], insert: &[NewEntry]) -> io::Result<(Splicer, Placed)> {
        let mut w = Splicer { pieces: Vec::new(), pending: (0, 0), out_pos: 0 };
        let mut placed = Placed { shifts: Vec::with_capacity(parts.len()), inserted: Vec::new(), close: 0 };
        // The head, through `[`.
        w.old(0, self.open + 1);
        let mut last = Last::Head;
        for part in parts {
            match *part {
                Part::Run(first, end) => {
                    let e = self.entry(first);
                    let start = u64::from(e.off);
                    let follows = match last {
                        Last::Head => first == 0,
                        Last::Old(j) => j + 1 == first,
                        Last::New => false,
                    };
                    let out = if follows {
                        // Right after its old neighbour (or the head): the separator
                        // comes along.
                        w.extend(start, start)
                    } else {
                        if last != Last::Head {
                            w.bytes(b",");
                        }
                        let out = w.out_pos;
                        w.old(start, start);
                        out
                    };
                    // The rest of the run follows, separators and all.
                    let l = self.entry(end - 1);
                    w.extend(u64::from(l.off), u64::from(l.off) + u64::from(l.len));
                    placed.shifts.push(out as i64 - start as i64);
                    last = Last::Old(end - 1);
                }
                Part::Insert => {
                    for e in insert {
                        let bytes = strata_spec::to_canonical_json(&e.desc).map_err(io::Error::other)?;
                        if last != Last::Head {
                            w.bytes(b",");
                        }
                        placed.inserted.push((w.out_pos, bytes.len() as u64));
                        w.bytes(&bytes);
                        last = Last::New;
                    }
                    placed.shifts.push(0);
                }
            }
        }
        w.flush();
        placed.close = w.out_pos;
        w.old(self.close, self.key.size);
        w.flush();
        Ok((w, placed))
    }
}

/// A part of a new index: a run of old entries (`[first, end)`, neighbours in the old
/// index and the new), or the new entries.
#[derive(Clone, Copy, Debug)]
enum Part {
    Run(usize, usize),
    Insert,
}

/// Where [`Table::lay_out`] put the parts.
struct Placed {
    /// Per part: how far a run's bytes moved (0 for the new entries).
    shifts: Vec<i64>,
    /// The new entries' offsets and lengths.
    inserted: Vec<(u64, u64)>,
    /// Where the `]` of the new index is.
    close: u64,
}

/// The position of `d`'s target (media type, digest, size) in `targets`, added if new.
fn target_of(targets: &mut Vec<(MediaType, Digest, u64)>, d: &Descriptor) -> u32 {
    let found = targets.iter().position(|(mt, dg, s)| *s == d.size && dg == &d.digest && mt == &d.media_type);
    let k = found.unwrap_or_else(|| {
        targets.push((d.media_type.clone(), d.digest.clone(), d.size));
        targets.len() - 1
    });
    u32::try_from(k).unwrap_or(u32::MAX)
}

/// What a new `index.json` is made of, in order.
pub(crate) struct Plan {
    pieces: Vec<Piece>,
    /// The parts the pieces were laid out from, where they landed, and the new size:
    /// what [`Table::splice`] makes the new table from.
    parts: Vec<Part>,
    placed: Placed,
    len: u64,
}

/// A part of a new `index.json`.
enum Piece {
    /// A byte range of the old one.
    Old(u64, u64),
    /// New bytes.
    New(Vec<u8>),
}

impl Plan {
    /// Write the new index to `out` from byte `from` on (the bytes before it are there
    /// already), the old one's ranges read from `index`; the kernel copies them where
    /// it can. `out` is cut to the new length. Fails if `index` turns out shorter than
    /// its table said.
    pub(crate) fn write_from(&self, index: &File, out: &mut File, from: u64) -> io::Result<()> {
        out.seek(SeekFrom::Start(from))?;
        let mut pos = 0;
        for piece in &self.pieces {
            let len = match *piece {
                Piece::Old(start, end) => end - start,
                Piece::New(ref bytes) => bytes.len() as u64,
            };
            let skip = from.saturating_sub(pos).min(len);
            pos += len;
            if skip == len {
                continue;
            }
            match *piece {
                Piece::Old(start, end) => {
                    let mut src = index;
                    src.seek(SeekFrom::Start(start + skip))?;
                    let copied = io::copy(&mut src.take(end - start - skip), out)?;
                    if copied != end - start - skip {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "index.json shrank while being copied",
                        ));
                    }
                }
                Piece::New(ref bytes) => out.write_all(&bytes[skip as usize..])?,
            }
        }
        out.set_len(self.len)
    }

    /// How many first bytes the new index has in common with the old one: the old
    /// file's bytes it starts with, where they were.
    pub(crate) fn same_prefix(&self) -> u64 {
        match self.pieces.first() {
            Some(&Piece::Old(0, end)) => end,
            _ => 0,
        }
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

/// Plans a file made of ranges of another file and new bytes; ranges that follow each
/// other become one.
pub(super) struct Splicer {
    pieces: Vec<Piece>,
    /// The source range waiting to become a piece.
    pending: (u64, u64),
    /// Bytes of output so far, the pending range included.
    out_pos: u64,
}

impl Splicer {
    /// Copy `[start, end)` of the source next.
    pub(super) fn old(&mut self, start: u64, end: u64) {
        if self.pending.1 != start {
            self.flush();
            self.pending = (start, start);
        }
        self.pending.1 = end;
        self.out_pos += end - start;
    }

    /// Copy the source on from where the pending range ends through `end` (the bytes
    /// before `start` are a separator); returns where `start` lands in the output.
    pub(super) fn extend(&mut self, start: u64, end: u64) -> u64 {
        let at = self.out_pos + start.saturating_sub(self.pending.1);
        self.out_pos += end.saturating_sub(self.pending.1);
        self.pending.1 = end;
        at
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        self.flush();
        self.pieces.push(Piece::New(bytes.to_vec()));
        self.out_pos += bytes.len() as u64;
    }

    pub(super) fn flush(&mut self) {
        let (start, end) = self.pending;
        if end > start {
            self.pieces.push(Piece::Old(start, end));
        }
        self.pending = (end, end);
    }
}
