//! Garbage collection: mark from the index, sweep the rest.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use strata_spec::{Descriptor, Digest, Index, ManifestOrIndex, MediaType};

use crate::error::{Error, Result};
use crate::referrers;
use crate::store::{Backend, MAX_DOCUMENT_SIZE};

/// How GC runs.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Report what would be removed, remove nothing, take no locks.
    pub dry_run: bool,
    /// A temp file is removed only when no process holds its lock (its writer is gone)
    /// *and* it has not been modified for this long. The lock is the real test; the age
    /// is a backstop for filesystems where `flock` is not enforced. Default: 60 s.
    pub temp_grace: Duration,
    /// Collect even when a manifest or index that `index.json` lists is missing: what
    /// only it kept alive goes too. Without it GC aborts ([`Error::GcAborted`]), as for
    /// one that cannot be read: nothing can be proven unreachable while a listed image's
    /// blobs are unknown.
    pub force: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { dry_run: false, temp_grace: Duration::from_secs(60), force: false }
    }
}

impl GcOptions {
    /// Options for a dry run.
    pub fn dry_run() -> Self {
        GcOptions { dry_run: true, ..GcOptions::default() }
    }
}

/// A temp file in the store's private area (`.strata/tmp/` of an [`OciDir`](crate::OciDir)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Time since it was last modified.
    pub age: Duration,
    /// Whether a live process holds its lock (a writer is using it).
    pub in_use: bool,
}

/// What GC removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Blobs reachable from the index and present, which were kept.
    pub kept: usize,
    /// Blobs removed, with their sizes, sorted by digest.
    pub removed: Vec<(Digest, u64)>,
    /// Total bytes of the removed blobs.
    pub removed_bytes: u64,
    /// Stale temp files removed.
    pub temp_removed: Vec<TempFile>,
    /// Records removed because their blob was gone (see [`crate::record`]); always 0 in
    /// a dry run.
    pub records_removed: usize,
    /// Referrers (untagged index entries with a `subject`) whose subject is gone, dropped
    /// from the index (in a dry run: that would be), sorted by digest.
    pub referrers_removed: Vec<Digest>,
}

impl GcReport {
    /// Total bytes freed: removed blobs and temp files.
    pub fn freed_bytes(&self) -> u64 {
        self.removed_bytes + self.temp_removed.iter().map(|t| t.size).sum::<u64>()
    }
}

/// What [`mark`] found.
pub(crate) struct Marked {
    /// Every digest reachable from the index.
    pub(crate) reachable: BTreeSet<Digest>,
    /// Referrer entries of the index (untagged, with a `subject`) whose subject is no
    /// longer reachable: GC drops them from the index, and their blobs with them.
    pub(crate) orphans: BTreeSet<Digest>,
}

impl Marked {
    /// `index` without the entries of orphaned referrers.
    pub(crate) fn pruned(&self, index: &Index) -> Index {
        let mut out = index.clone();
        out.manifests.retain(|d| d.ref_name().is_some() || !self.orphans.contains(&d.digest));
        out
    }
}

/// Every digest reachable from `index`: its descriptors, and through manifests and
/// indexes their configs, layers, manifests and subjects. Blobs of unknown media types
/// are kept but not looked into; Docker schema1 manifests keep their `fsLayers`.
///
/// A referrer entry (untagged, its document has a `subject`: an SBOM attached to an
/// image) is not a root: it is marked only once its subject is reachable (and present)
/// from the other entries, or from referrers marked before it; the others are
/// [`Marked::orphans`].
///
/// A reachable manifest or index that is present but unreadable (corrupt, wrong size,
/// not a valid document) aborts with [`Error::GcAborted`]: GC cannot know what it keeps
/// alive. So does a missing one that `index.json` lists, unless `force`: its image's
/// config and layers may still be in the store, and would go. One that only an index
/// blob lists keeps nothing (a pull of one platform leaves the others' out).
pub(crate) fn mark(store: &dyn Backend, index: &Index, force: bool) -> Result<Marked> {
    let mut marker = Marker {
        store,
        force,
        reachable: BTreeSet::new(),
        listed: index.manifests.iter().map(|d| &d.digest).collect(),
    };
    let mut roots: Vec<Descriptor> = Vec::new();
    let mut pending: Vec<(Descriptor, Digest)> = Vec::new();
    for d in &index.manifests {
        match referrers::referrer_entry_subject(store, d) {
            Some(subject) => pending.push((d.clone(), subject)),
            None => roots.push(d.clone()),
        }
    }
    roots.extend(index.subject.clone());
    marker.run(roots)?;
    loop {
        let (live, rest): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, subject)| marker.reachable.contains(subject) && store.contains(subject).unwrap_or(false));
        pending = rest;
        if live.is_empty() {
            break;
        }
        marker.run(live.into_iter().map(|(d, _)| d).collect())?;
    }
    let orphans = pending.into_iter().map(|(d, _)| d.digest).filter(|d| !marker.reachable.contains(d)).collect();
    Ok(Marked { reachable: marker.reachable, orphans })
}

struct Marker<'a> {
    store: &'a dyn Backend,
    force: bool,
    reachable: BTreeSet<Digest>,
    listed: BTreeSet<&'a Digest>,
}

impl Marker<'_> {
    fn run(&mut self, mut work: Vec<Descriptor>) -> Result<()> {
        let store = self.store;
        while let Some(desc) = work.pop() {
            if !self.reachable.insert(desc.digest.clone()) {
                continue;
            }
            let mt = &desc.media_type;
            let is_schema1 = matches!(mt, MediaType::DockerSchema1Manifest | MediaType::DockerSchema1SignedManifest);
            if !(mt.is_manifest() || mt.is_index() || is_schema1) {
                continue;
            }
            let abort = |source: Error| Error::GcAborted { digest: desc.digest.clone(), source: Box::new(source) };
            if !store.contains(&desc.digest)? {
                if self.listed.contains(&desc.digest) && !self.force {
                    return Err(abort(Error::NotFound(desc.digest.clone())));
                }
                continue;
            }
            let bytes = store.read_descriptor(&desc, MAX_DOCUMENT_SIZE).map_err(abort)?;
            if is_schema1 {
                work.extend(schema1_layers(&bytes).map_err(abort)?);
                continue;
            }
            let doc = ManifestOrIndex::from_slice_as(&bytes, mt)
                .map_err(|source| abort(Error::BadDocument { digest: desc.digest.clone(), source }))?;
            match doc {
                ManifestOrIndex::Manifest(m) => {
                    work.push(m.config);
                    work.extend(m.layers);
                    work.extend(m.subject);
                }
                ManifestOrIndex::Index(i) => {
                    work.extend(i.manifests);
                    work.extend(i.subject);
                }
            }
        }
        Ok(())
    }
}

/// The layer blobs of a Docker schema1 manifest (`fsLayers[].blobSum`), as descriptors
/// of unknown type and size (only their digests matter for marking).
fn schema1_layers(bytes: &[u8]) -> Result<Vec<Descriptor>> {
    let bad = |reason: String| Error::BadDocument {
        digest: Digest::sha256_of(bytes),
        source: strata_spec::Error::Invalid { document: strata_spec::Document::Manifest, reason },
    };
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("schema1 manifest: {e}")))?;
    let mut out = Vec::new();
    if let Some(layers) = v.get("fsLayers").and_then(|l| l.as_array()) {
        for l in layers {
            let sum = l.get("blobSum").and_then(|s| s.as_str()).unwrap_or_default();
            let digest = Digest::parse(sum).map_err(|e| bad(format!("schema1 blobSum: {e}")))?;
            out.push(Descriptor::new(MediaType::Other(String::new()), digest, 0));
        }
    }
    Ok(out)
}

/// Remove (or list, in a dry run) every blob not in `reachable`.
pub(crate) fn sweep(store: &dyn Backend, marked: &Marked, report: &mut GcReport) -> Result<()> {
    let reachable = &marked.reachable;
    report.referrers_removed = marked.orphans.iter().cloned().collect();
    for digest in store.list()? {
        if reachable.contains(&digest) {
            report.kept += 1;
            continue;
        }
        let Some(size) = store.stat(&digest)? else { continue };
        if !report.dry_run && !store.delete(&digest)? {
            continue;
        }
        report.removed_bytes += size;
        report.removed.push((digest, size));
    }
    Ok(())
}
