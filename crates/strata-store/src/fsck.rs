//! fsck: re-hash every blob and check every reference.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

use strata_spec::{Compression, Descriptor, Digest, ImageConfig, ManifestOrIndex, MediaType};

use crate::error::{Error, Result};
use crate::gc::TempFile;
use crate::store::{Backend, IndexEntries, MAX_DOCUMENT_SIZE};

/// What points at a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Referrer {
    /// The store's index (`index.json`), through the ref name if the entry has one.
    Index(Option<String>),
    /// A manifest or index blob.
    Blob(Digest),
}

impl fmt::Display for Referrer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Referrer::Index(Some(name)) => write!(f, "index.json (ref {name:?})"),
            Referrer::Index(None) => f.write_str("index.json"),
            Referrer::Blob(d) => write!(f, "{d}"),
        }
    }
}

/// One thing wrong with a store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A blob's bytes do not hash to its name.
    Corrupt {
        /// The blob's name.
        digest: Digest,
        /// What its bytes hash to.
        actual: Digest,
    },
    /// A blob could not be read.
    Unreadable {
        /// The blob.
        digest: Digest,
        /// The error.
        error: String,
    },
    /// A descriptor points to a blob the store does not have (foreign layers excepted).
    Dangling {
        /// The missing blob.
        digest: Digest,
        /// The descriptor's media type.
        media_type: MediaType,
        /// Who points to it.
        referrer: Referrer,
    },
    /// A descriptor's size differs from the blob's.
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size the descriptor says.
        expected: u64,
        /// The blob's size.
        actual: u64,
        /// Who points to it.
        referrer: Referrer,
    },
    /// A manifest, index or config that does not parse, or whose own media type
    /// disagrees with the descriptor pointing to it.
    BadDocument {
        /// The blob.
        digest: Digest,
        /// The descriptor's media type.
        media_type: MediaType,
        /// Who points to it.
        referrer: Referrer,
        /// The parse error.
        error: String,
    },
    /// A descriptor of the wrong kind in its place (say, a layer type as a manifest's config).
    WrongKind {
        /// The blob.
        digest: Digest,
        /// The descriptor's media type.
        media_type: MediaType,
        /// Who points to it.
        referrer: Referrer,
        /// What belongs there.
        wanted: &'static str,
    },
    /// Several descriptors with different digests carry the same ref name.
    AmbiguousRef {
        /// The ref name.
        name: String,
        /// How many descriptors carry it.
        count: usize,
    },
    /// A file or directory under `blobs/` that is not a blob (or under strata's records
    /// that is not a record): a bad name, an unknown algorithm, a symlink, a directory
    /// or device where a file belongs. It is never read, listed or followed.
    Stray {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record (see [`crate::record`]) that cannot be read or does not parse. Readers
    /// ignore it, as if it were not there.
    BadRecord {
        /// The record's file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest whose config lists a different number of `diff_ids` than it has
    /// layers: no layer can be checked against its diff_id, and unpack refuses it.
    LayerCount {
        /// The manifest.
        manifest: Digest,
        /// Its layers.
        layers: usize,
        /// The config's `rootfs.diff_ids`.
        diff_ids: usize,
    },
    /// A layer blob whose first bytes say another compression than its media type
    /// (zstd bytes labelled gzip, a plain tar labelled gzip): unpack refuses it.
    CompressionMismatch {
        /// The layer blob.
        digest: Digest,
        /// The descriptor's media type.
        media_type: MediaType,
        /// What the blob's magic bytes say.
        found: Compression,
        /// Who points to it.
        referrer: Referrer,
    },
    /// A layer whose uncompressed bytes do not hash to the config's `diff_id` for it
    /// (found by a deep check: [`FsckOptions::deep`]).
    DiffIdMismatch {
        /// The layer blob.
        digest: Digest,
        /// The config's diff_id.
        diff_id: Digest,
        /// What its uncompressed bytes hash to.
        actual: Digest,
        /// The manifest it is a layer of.
        referrer: Referrer,
    },
    /// A layer blob that does not decompress (found by a deep check).
    BadLayer {
        /// The layer blob.
        digest: Digest,
        /// Why.
        error: String,
        /// The manifest it is a layer of.
        referrer: Referrer,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Corrupt { digest, actual } => write!(f, "corrupt blob {digest}: its bytes hash to {actual}"),
            Problem::Unreadable { digest, error } => write!(f, "unreadable blob {digest}: {error}"),
            Problem::Dangling { digest, media_type, referrer } => {
                write!(f, "missing blob {digest} ({media_type}), referenced by {referrer}")
            }
            Problem::SizeMismatch { digest, expected, actual, referrer } => {
                write!(f, "blob {digest} is {actual} bytes, but {referrer} says {expected}")
            }
            Problem::BadDocument { digest, media_type, referrer, error } => {
                write!(f, "blob {digest} ({media_type}, referenced by {referrer}) is not a valid document: {error}")
            }
            Problem::WrongKind { digest, media_type, referrer, wanted } => {
                write!(f, "{referrer} points to {digest} of type {media_type} where {wanted} belongs")
            }
            Problem::AmbiguousRef { name, count } => write!(f, "ref {name:?} names {count} different descriptors"),
            Problem::Stray { path, reason } => write!(f, "stray {}: {reason}", path.display()),
            Problem::BadRecord { path, reason } => write!(f, "bad record {}: {reason}", path.display()),
            Problem::LayerCount { manifest, layers, diff_ids } => {
                write!(f, "manifest {manifest} has {layers} layers but its config lists {diff_ids} diff_ids")
            }
            Problem::CompressionMismatch { digest, media_type, found, referrer } => write!(
                f,
                "layer {digest} (referenced by {referrer}) is {media_type} but its bytes are {}",
                match found {
                    Compression::None => "not compressed",
                    Compression::Gzip => "gzip",
                    Compression::Zstd => "zstd",
                }
            ),
            Problem::DiffIdMismatch { digest, diff_id, actual, referrer } => write!(
                f,
                "layer {digest} of {referrer} decompresses to {actual}, but the config's diff_id is {diff_id}"
            ),
            Problem::BadLayer { digest, error, referrer } => {
                write!(f, "layer {digest} of {referrer} does not decompress: {error}")
            }
        }
    }
}

/// The result of [`Backend::fsck`].
#[derive(Clone, Debug, Default)]
pub struct FsckReport {
    /// Blobs re-hashed.
    pub blobs_checked: usize,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Descriptors followed from the index.
    pub descriptors_checked: usize,
    /// Records parsed (see [`crate::record`]).
    pub records_checked: usize,
    /// Everything wrong, in the order found.
    pub problems: Vec<Problem>,
    /// Temp files in the store's private area. Left by a crash they are harmless (GC
    /// removes them) and do not make the store unclean.
    pub temp_files: Vec<TempFile>,
}

impl FsckReport {
    /// No problems (temp files don't count).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for FsckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} blobs ({} bytes) re-hashed, {} descriptors checked, {} records, {} problems, {} temp files",
            self.blobs_checked,
            self.bytes_checked,
            self.descriptors_checked,
            self.records_checked,
            self.problems.len(),
            self.temp_files.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// What [`Backend::fsck_with`] checks beyond the structure (every descriptor followed from
/// the index, every manifest, index and config parsed, layer counts against diff_ids,
/// layer compression against media types, records), which is always checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsckOptions {
    /// Re-hash every blob against its name (default: yes). Without it fsck reads only
    /// the documents and the first bytes of each layer: fast on a big store, but a
    /// flipped bit in a layer goes unseen.
    pub rehash: bool,
    /// Decompress every layer and compare it with the config's `diff_id`, as unpack
    /// does (default: no). The blob store has no decompressors: strata-image's
    /// `Backend::fsck_with` does this part.
    pub deep: bool,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions { rehash: true, deep: false }
    }
}

/// Re-hash every blob in `blobs` (unless told not to), then follow every descriptor from
/// the index. Linear in the index and the blobs: each ref name, blob and document is
/// looked at once.
pub(crate) fn check(
    store: &dyn Backend,
    blobs: &[Digest],
    options: &FsckOptions,
    report: &mut FsckReport,
) -> Result<()> {
    let index = store.index()?;
    check_entries(store, blobs, &IndexEntries::of(index.manifests), index.subject, options, report)
}

/// [`check`] of an index given as its entries (`index`) and its `subject`: a store that
/// reads them from a table of the index builds no descriptor per entry.
pub(crate) fn check_entries(
    store: &dyn Backend,
    blobs: &[Digest],
    index: &IndexEntries,
    subject: Option<Descriptor>,
    options: &FsckOptions,
    report: &mut FsckReport,
) -> Result<()> {
    if options.rehash {
        for digest in blobs {
            rehash(store, digest, report);
        }
    }
    let corrupt: BTreeSet<Digest> = report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::Corrupt { digest, .. } | Problem::Unreadable { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect();

    // Ref name -> its first entry, the digest that names and any others it names (no
    // set allocated for the usual name of one digest).
    let mut names: HashMap<&str, (usize, &Digest, BTreeSet<&Digest>)> = HashMap::with_capacity(index.entries.len());
    for (i, e) in index.entries.iter().enumerate() {
        if let Some(name) = e.name.as_deref() {
            let digest = &index.targets[e.target].digest;
            let (_, first, others) = names.entry(name).or_insert_with(|| (i, digest, BTreeSet::new()));
            if *first != digest {
                others.insert(digest);
            }
        }
    }
    let mut ambiguous: Vec<(usize, &str, usize)> = names
        .iter()
        .filter(|(_, (_, _, others))| !others.is_empty())
        .map(|(n, (i, _, others))| (*i, *n, others.len() + 1))
        .collect();
    ambiguous.sort_unstable();
    for (_, name, count) in ambiguous {
        report.problems.push(Problem::AmbiguousRef { name: name.to_owned(), count });
    }

    let mut parsed = BTreeSet::new();
    // Blob sizes, each looked up once however many descriptors name it.
    let mut sizes: HashMap<Digest, Option<u64>> = HashMap::new();
    // Index entries first, each on its own (its problems name its ref), without copying
    // it: a big index has many entries (a tag each) for few targets, and what a target
    // leads to is followed once, below.
    // (descriptor, what points at it, its slot, whether its shallow checks are done)
    let mut work: Vec<(Descriptor, Referrer, Slot, bool)> = Vec::new();
    let mut queued: HashMap<(&Digest, &MediaType), ()> = HashMap::new();
    // Per target: its blob's size, and whether it is queued (its entries pass or fail
    // alike: what is checked of an entry is its target's).
    let mut target_size: Vec<Option<Option<u64>>> = vec![None; index.targets.len()];
    let mut target_queued = vec![false; index.targets.len()];
    for (i, e) in index.entries.iter().enumerate() {
        let d = e.full.as_deref().unwrap_or(&index.targets[e.target]);
        let referrer = || Referrer::Index(e.name.clone());
        let size = match target_size[e.target] {
            Some(s) => s,
            None => *target_size[e.target].insert(blob_size(store, &d.digest, &mut sizes)?),
        };
        if shallow_check(d, Slot::IndexEntry, &referrer, size, report)
            && !corrupt.contains(&d.digest)
            && !std::mem::replace(&mut target_queued[e.target], true)
            && queued.insert((&d.digest, &d.media_type), ()).is_none()
        {
            work.push((index.descriptor(i), referrer(), Slot::IndexEntry, true));
        }
    }
    work.extend(subject.map(|d| (d, Referrer::Index(None), Slot::Subject, false)));
    // The diff_id counts of the configs parsed, and (manifest, config, layers) to
    // compare them with once every config is known.
    let mut diff_ids: HashMap<Digest, usize> = HashMap::new();
    let mut layer_counts: Vec<(Digest, Digest, usize)> = Vec::new();
    let mut sniffed = BTreeSet::new();
    while let Some((desc, referrer, slot, checked)) = work.pop() {
        if !checked {
            let size = blob_size(store, &desc.digest, &mut sizes)?;
            if !shallow_check(&desc, slot, &|| referrer.clone(), size, report) {
                continue;
            }
        }
        let mt = &desc.media_type;
        if corrupt.contains(&desc.digest) {
            continue;
        }
        if slot == Slot::Layer {
            if let Some(declared) = mt.layer_compression()
                && sniffed.insert((desc.digest.clone(), mt.clone()))
            {
                check_compression(store, &desc, declared, referrer, report);
            }
            continue;
        }
        if !(mt.is_manifest() || mt.is_index() || mt.is_config()) {
            continue;
        }
        if !parsed.insert((desc.digest.clone(), mt.clone())) {
            continue;
        }
        let bad = |error: String| Problem::BadDocument {
            digest: desc.digest.clone(),
            media_type: mt.clone(),
            referrer: referrer.clone(),
            error,
        };
        let bytes = match store.read_descriptor(&desc, MAX_DOCUMENT_SIZE) {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(bad(e.to_string()));
                continue;
            }
        };
        if mt.is_config() {
            match ImageConfig::from_slice(&bytes) {
                Ok(c) => {
                    diff_ids.insert(desc.digest.clone(), c.rootfs.diff_ids.len());
                }
                Err(e) => report.problems.push(bad(e.to_string())),
            }
            continue;
        }
        let me = Referrer::Blob(desc.digest.clone());
        match ManifestOrIndex::from_slice_as(&bytes, mt) {
            Err(e) => report.problems.push(bad(e.to_string())),
            Ok(ManifestOrIndex::Manifest(m)) => {
                if m.config.media_type.is_config() {
                    layer_counts.push((desc.digest.clone(), m.config.digest.clone(), m.layers.len()));
                }
                work.push((m.config, me.clone(), Slot::Config, false));
                work.extend(m.layers.into_iter().map(|l| (l, me.clone(), Slot::Layer, false)));
                work.extend(m.subject.map(|s| (s, me.clone(), Slot::Subject, false)));
            }
            Ok(ManifestOrIndex::Index(i)) => {
                work.extend(i.manifests.into_iter().map(|d| (d, me.clone(), Slot::IndexEntry, false)));
                work.extend(i.subject.map(|s| (s, me.clone(), Slot::Subject, false)));
            }
        }
    }
    layer_counts.sort();
    layer_counts.dedup();
    for (manifest, config, layers) in layer_counts {
        if let Some(&n) = diff_ids.get(&config)
            && n != layers
        {
            report.problems.push(Problem::LayerCount { manifest, layers, diff_ids: n });
        }
    }
    Ok(())
}

/// The size of the blob `digest` (`None`: the store has none), each looked up once.
fn blob_size(store: &dyn Backend, digest: &Digest, sizes: &mut HashMap<Digest, Option<u64>>) -> Result<Option<u64>> {
    if let Some(s) = sizes.get(digest) {
        return Ok(*s);
    }
    let s = store.stat(digest)?;
    sizes.insert(digest.clone(), s);
    Ok(s)
}

/// The checks of one descriptor that need no more than its blob's size (`size`): its
/// media type in its slot, the blob there, of the size it says. Whether to look further.
fn shallow_check(
    desc: &Descriptor,
    slot: Slot,
    referrer: &dyn Fn() -> Referrer,
    size: Option<u64>,
    report: &mut FsckReport,
) -> bool {
    report.descriptors_checked += 1;
    let mt = &desc.media_type;
    if let Some(wanted) = slot.wrong_kind(mt) {
        report.problems.push(Problem::WrongKind {
            digest: desc.digest.clone(),
            media_type: mt.clone(),
            referrer: referrer(),
            wanted,
        });
    }
    let Some(size) = size else {
        // Foreign layers and subjects may legitimately live elsewhere.
        if !mt.is_foreign_layer() && slot != Slot::Subject {
            report.problems.push(Problem::Dangling {
                digest: desc.digest.clone(),
                media_type: mt.clone(),
                referrer: referrer(),
            });
        }
        return false;
    };
    if size != desc.size {
        report.problems.push(Problem::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: size,
            referrer: referrer(),
        });
        return false;
    }
    true
}

/// Compare a layer blob's magic bytes with the compression its media type declares, as
/// unpack's decoder does before reading further.
fn check_compression(
    store: &dyn Backend,
    desc: &Descriptor,
    declared: Compression,
    referrer: Referrer,
    report: &mut FsckReport,
) {
    let mut head = [0u8; 4];
    let mut got = 0;
    // Unverified: only the magic bytes are looked at (rehashing checks the rest).
    let read = store.open(&desc.digest).map(|r| r.without_digest_check()).and_then(|mut r| {
        while got < head.len() {
            match r.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::from_io(e, "read", r.location())),
            }
        }
        Ok(())
    });
    match read {
        Ok(()) => {
            let found = Compression::sniff(&head[..got]);
            if found != declared {
                report.problems.push(Problem::CompressionMismatch {
                    digest: desc.digest.clone(),
                    media_type: desc.media_type.clone(),
                    found,
                    referrer,
                });
            }
        }
        Err(e) => report.problems.push(Problem::Unreadable { digest: desc.digest.clone(), error: e.to_string() }),
    }
}

/// Where a descriptor sits, which decides what media types belong there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    IndexEntry,
    Config,
    Layer,
    Subject,
}

impl Slot {
    /// For a known media type that does not belong in this slot, what does belong.
    /// Unknown types (artifacts) are allowed anywhere.
    fn wrong_kind(self, mt: &MediaType) -> Option<&'static str> {
        if !mt.is_known() {
            return None;
        }
        match self {
            Slot::IndexEntry | Slot::Subject => {
                let ok = mt.is_manifest()
                    || mt.is_index()
                    || matches!(mt, MediaType::DockerSchema1Manifest | MediaType::DockerSchema1SignedManifest);
                (!ok).then_some("a manifest or index")
            }
            // Artifacts use the empty descriptor as their config.
            Slot::Config => (!(mt.is_config() || *mt == MediaType::OciEmpty || *mt == MediaType::DockerPluginConfig))
                .then_some("an image config"),
            Slot::Layer => (mt.is_manifest() || mt.is_index() || mt.is_config()).then_some("a layer"),
        }
    }
}

fn rehash(store: &dyn Backend, digest: &Digest, report: &mut FsckReport) {
    let result = store.open(digest).and_then(|mut r| {
        let n = io::copy(&mut r, &mut io::sink()).map_err(|e| Error::from_io(e, "read", r.location()))?;
        Ok(n)
    });
    report.blobs_checked += 1;
    match result {
        Ok(n) => report.bytes_checked += n,
        Err(Error::DigestMismatch { actual, .. }) => {
            report.problems.push(Problem::Corrupt { digest: digest.clone(), actual })
        }
        Err(e) => report.problems.push(Problem::Unreadable { digest: digest.clone(), error: e.to_string() }),
    }
}
