//! Leases: how writers keep GC away from blobs they have written but not yet tagged.
//!
//! # The protocol
//!
//! A blob becomes safe from GC once something in `index.json` reaches it. Between
//! committing a blob and tagging the manifest that reaches it, a writer must hold a
//! [`Lease`]:
//!
//! - [`Backend::lease`](crate::Store::lease) returns a guard; every
//!   [`BlobWriter`](crate::BlobWriter) also holds one while it is open.
//! - GC runs only when no lease is held by any process, and no lease can be taken while
//!   GC runs. So GC either finished before the writer started (and the writer's blobs did
//!   not exist yet), or starts after the writer tagged its work (and the tag keeps it).
//! - A program that writes blobs and then tags them holds one lease across the whole
//!   sequence: `let _lease = store.lease()?; write...; store.set_ref(...)?;`.
//! - Leases within one process are shared: taking a second lease while one is alive costs
//!   nothing and never blocks. [`Backend::gc`](crate::Store::gc) called by a process that
//!   holds a lease fails with [`Error::LeaseHeld`](crate::Error::LeaseHeld) rather than
//!   wait for itself.
//!
//! For an [`OciDir`](crate::OciDir) a lease is a shared `flock(2)` on
//! `<layout>/.strata/gc.lock` that GC takes exclusively. So that a stream of writers cannot
//! starve GC, a lease is taken while briefly holding a shared lock on
//! `<layout>/.strata/gc.gate`, which GC holds exclusively while it waits and runs.
//! `flock` locks die with their process, so a crashed writer never blocks GC.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, Weak};

/// A guard that keeps GC from running on a store while it lives; see the
/// [module documentation](self) for the protocol. Cloning is cheap and shares the guard.
#[derive(Clone)]
pub struct Lease {
    _inner: Arc<dyn Any + Send + Sync>,
}

impl Lease {
    pub(crate) fn new(inner: Arc<dyn Any + Send + Sync>) -> Self {
        Lease { _inner: inner }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lease")
    }
}

/// In-process leases and GC exclusion for the in-memory store.
#[derive(Debug, Default)]
pub(crate) struct MemoryLeases {
    state: Mutex<MemoryLeaseState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct MemoryLeaseState {
    /// The live shared lease, if any.
    current: Weak<MemoryLeaseToken>,
    gc_running: bool,
}

/// Lives as long as some [`Lease`] on a memory store does.
#[derive(Debug)]
struct MemoryLeaseToken;

/// Held by a running GC on a memory store.
pub(crate) struct MemoryGcGuard<'a>(&'a MemoryLeases);

impl Drop for MemoryGcGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.gc_running = false;
        self.0.cv.notify_all();
    }
}

impl MemoryLeases {
    pub(crate) fn lease(&self) -> Lease {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(t) = st.current.upgrade() {
                return Lease::new(t);
            }
            if !st.gc_running {
                break;
            }
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let token = Arc::new(MemoryLeaseToken);
        st.current = Arc::downgrade(&token);
        Lease::new(token)
    }

    /// Start GC, or `None` if a lease is alive.
    pub(crate) fn begin_gc(&self) -> Option<MemoryGcGuard<'_>> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while st.gc_running {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.current.strong_count() > 0 {
            return None;
        }
        st.gc_running = true;
        Some(MemoryGcGuard(self))
    }
}
