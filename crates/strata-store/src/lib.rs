#![doc = include_str!("../README.md")]

mod blob;
pub mod codec;
mod error;
mod file_bytes;
mod fsck;
mod gc;
pub mod lease;
mod memory;
mod oci_dir;
mod ranges;
pub mod record;
mod referrers;
mod store;
mod table;

pub use blob::{BlobInfo, BlobReader, BlobWriter, Expected};
pub use error::{Error, Result};
pub use file_bytes::FileBytes;
pub use fsck::{FsckOptions, FsckReport, Problem, Referrer};
pub use gc::{GcOptions, GcReport, TempFile};
pub use lease::Lease;
pub use memory::MemoryStore;
pub use oci_dir::OciDir;
pub use ranges::{ByteRange, RangeStore};
pub use record::{ImageRecord, LayerRecord, RecordKind, RecordUpdate};
pub use referrers::Referrers;
pub use store::{Backend, BlobStore, IndexEntries, IndexEntry, MAX_DOCUMENT_SIZE, validate_ref_name};

/// The traits, for `use strata_store::prelude::*;`: their methods need them in scope.
pub mod prelude {
    pub use crate::{Backend, BlobStore};
}

/// The spec crate, re-exported so callers use the same `Digest`, `Descriptor` and `Index`.
pub use strata_spec as spec;
