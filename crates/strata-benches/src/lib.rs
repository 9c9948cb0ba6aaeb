//! strata's criterion benchmarks: `cargo bench -p strata-benches --bench NAME`. The
//! sources are in the workspace's `benches/` directory beside the comparison scripts;
//! this crate exists so that criterion is compiled only for them.
//!
//! ```
//! // The benches use the facade like any embedder.
//! let store = strata::Store::in_memory();
//! assert!(store.images()?.is_empty());
//! # Ok::<(), strata::Error>(())
//! ```
