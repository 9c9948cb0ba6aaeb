//! fsck: re-hash every blob and check every reference.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::PathBuf;

use strata_spec::{Descriptor, Digest, ImageConfig, ManifestOrIndex, MediaType};

use crate::error::{Error, Result};
use crate::gc::TempFile;
use crate::store::{MAX_DOCUMENT_SIZE, Store};

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
        }
    }
}

/// The result of [`Store::fsck`].
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

/// Re-hash every blob in `blobs`, then follow every descriptor from the index.
pub(crate) fn check(store: &dyn Store, blobs: &[Digest], report: &mut FsckReport) -> Result<()> {
    for digest in blobs {
        rehash(store, digest, report);
    }
    let corrupt: BTreeSet<Digest> = report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::Corrupt { digest, .. } | Problem::Unreadable { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect();

    let index = store.index()?;
    let mut names = BTreeSet::new();
    for d in &index.manifests {
        if let Some(name) = d.ref_name()
            && names.insert(name)
        {
            let digests: BTreeSet<_> =
                index.manifests.iter().filter(|e| e.ref_name() == Some(name)).map(|e| &e.digest).collect();
            if digests.len() > 1 {
                report.problems.push(Problem::AmbiguousRef { name: name.to_owned(), count: digests.len() });
            }
        }
    }

    let mut work: Vec<(Descriptor, Referrer, Slot)> = index
        .manifests
        .iter()
        .map(|d| (d.clone(), Referrer::Index(d.ref_name().map(str::to_owned)), Slot::IndexEntry))
        .collect();
    work.extend(index.subject.clone().map(|d| (d, Referrer::Index(None), Slot::Subject)));
    let mut parsed = BTreeSet::new();
    while let Some((desc, referrer, slot)) = work.pop() {
        report.descriptors_checked += 1;
        let mt = &desc.media_type;
        if let Some(wanted) = slot.wrong_kind(mt) {
            report.problems.push(Problem::WrongKind {
                digest: desc.digest.clone(),
                media_type: mt.clone(),
                referrer: referrer.clone(),
                wanted,
            });
        }
        let Some(size) = store.stat(&desc.digest)? else {
            // Foreign layers and subjects may legitimately live elsewhere.
            if !mt.is_foreign_layer() && slot != Slot::Subject {
                report.problems.push(Problem::Dangling {
                    digest: desc.digest.clone(),
                    media_type: mt.clone(),
                    referrer,
                });
            }
            continue;
        };
        if size != desc.size {
            report.problems.push(Problem::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: size,
                referrer,
            });
            continue;
        }
        if corrupt.contains(&desc.digest) || !(mt.is_manifest() || mt.is_index() || mt.is_config()) {
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
            if let Err(e) = ImageConfig::from_slice(&bytes) {
                report.problems.push(bad(e.to_string()));
            }
            continue;
        }
        let me = Referrer::Blob(desc.digest.clone());
        match ManifestOrIndex::from_slice_as(&bytes, mt) {
            Err(e) => report.problems.push(bad(e.to_string())),
            Ok(ManifestOrIndex::Manifest(m)) => {
                work.push((m.config, me.clone(), Slot::Config));
                work.extend(m.layers.into_iter().map(|l| (l, me.clone(), Slot::Layer)));
                work.extend(m.subject.map(|s| (s, me.clone(), Slot::Subject)));
            }
            Ok(ManifestOrIndex::Index(i)) => {
                work.extend(i.manifests.into_iter().map(|d| (d, me.clone(), Slot::IndexEntry)));
                work.extend(i.subject.map(|s| (s, me.clone(), Slot::Subject)));
            }
        }
    }
    Ok(())
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

fn rehash(store: &dyn Store, digest: &Digest, report: &mut FsckReport) {
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
