//! Progress events of a pull or push, for per-blob progress bars.

use std::time::Duration;

use strata_spec::Descriptor;

use crate::error::Error;

/// Why a blob was not transferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Pull: the local store already has it.
    Present,
    /// Push: the registry already has it in the destination repository.
    Exists,
    /// Push: the registry mounted it from the `mount_from` repository.
    Mounted,
    /// A non-distributable (foreign) layer with URLs: neither pulled nor pushed, as
    /// docker does.
    Foreign,
}

/// Something that happened during a pull or push.
///
/// Blob events come from several threads at once (one per concurrent transfer); each
/// blob gets `BlobStarted`, then `BlobProgress` events, then `BlobDone` — or just
/// `BlobSkipped`. A resumed or restarted download sends `BlobProgress` with the byte
/// count it continues from.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A blob transfer starts.
    BlobStarted {
        /// The blob (its `size` is the total for a progress bar).
        descriptor: &'a Descriptor,
    },
    /// Bytes of a blob transferred so far (not a delta).
    BlobProgress {
        /// The blob.
        descriptor: &'a Descriptor,
        /// Bytes done, out of `descriptor.size`.
        bytes: u64,
    },
    /// A blob was transferred and verified (pull: stored; push: the registry has it).
    BlobDone {
        /// The blob.
        descriptor: &'a Descriptor,
    },
    /// A blob needed no transfer.
    BlobSkipped {
        /// The blob.
        descriptor: &'a Descriptor,
        /// Why.
        reason: SkipReason,
    },
    /// A manifest or index was stored (pull) or uploaded (push).
    ManifestDone {
        /// The manifest or index.
        descriptor: &'a Descriptor,
    },
    /// A transient failure; the request is retried after `delay`.
    Retrying {
        /// The blob, manifest or index being transferred (`None` for the first
        /// manifest of a pull, whose descriptor is not known yet, and for tokens).
        descriptor: Option<&'a Descriptor>,
        /// Which retry this is (1 for the first).
        attempt: u32,
        /// How long until the retry.
        delay: Duration,
        /// What failed.
        error: &'a Error,
    },
}

/// Receives [`Event`]s. Implemented for closures, so `&|e: &Event<'_>| ...` works;
/// [`NoProgress`] ignores everything. Called from several threads: keep it quick.
pub trait Progress: Sync {
    /// Handle one event.
    fn event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Sync> Progress for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// A [`Progress`] that ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &Event<'_>) {}
}
