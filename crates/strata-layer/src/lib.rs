//! strata-layer: the layer tar codec (under construction).
//!
#![doc = include_str!("../docs/writing.md")]

mod compress;
pub mod diff;
mod entry;
mod error;
mod header;
pub mod path;
mod scan;
pub mod snapshot;
mod write;

pub use diff::{Change, ChangeKind, Changes, DiffOptions};
pub use entry::{EntryKind, EntryMeta, Timestamp, tar_order};
pub use error::{Error, Result};
pub use scan::FileKind;
pub use snapshot::{RecordedDevice, RecordedOwner, RecordedOwners, Snapshot, SnapshotEntry};
pub use write::{
    DEFAULT_BLOCK_SIZE, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, LayerInfo, LayerWriter, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE,
    OwnerNames, WriteOptions, reencode_tar, write_tree,
};
