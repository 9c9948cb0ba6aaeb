#![doc = include_str!("../README.md")]
#![doc = include_str!("../docs/union.md")]
#![doc = include_str!("../docs/unpack.md")]
#![doc = include_str!("../docs/writing.md")]
#![doc = include_str!("../docs/merged.md")]

mod apply;
mod builder;
mod codec;
mod compress;
mod decompress;
pub mod diff;
mod entry;
mod error;
mod fold;
mod fsops;
mod header;
mod import;
mod index;
#[cfg(strata_isal)]
mod isal;
mod mem;
mod memtree;
mod merged;
pub mod path;
mod plan;
pub mod read;
mod resolve;
mod scan;
pub mod snapshot;
mod source;
pub mod sparse;
mod stack;
mod stats;
mod stream;
mod union;
mod write;

pub use apply::{ApplyOptions, ApplyReport, Device, LayerReport, Ownership, Recorded, apply_layer, apply_layers};
pub use builder::{EntryRef, LayerBuilder};
pub use decompress::Decoder;
pub use diff::{Change, ChangeKind, Changes, DiffOptions};
pub use entry::{EntryKind, EntryMeta, Timestamp, tar_order};
pub use error::{Error, Result};
pub use fold::MergeOptions;
pub use fsops::{Resolver, open_in_root};
pub use import::{reencode_tar, reencode_tar_onto};
pub use index::{IndexEntry, IndexedLayer, LayerIndex};
pub use memtree::DataSource;
pub use merged::{Analysis, ExportOptions, ExportReport, FEED_DEPTH, FileReader, MergedEntry, MergedTree, WastedFile};
pub use plan::Plan;
pub use read::Limits;
pub use scan::FileKind;
pub use snapshot::{RecordedDevice, RecordedOwner, RecordedOwners, Snapshot, SnapshotEntry};
pub use source::LayerSource;
pub use sparse::SparseMap;
pub use stack::{IndexRef, IndexedNode, MergedIndex};
pub use stats::LayerStats;
pub use stream::{Finished, HashOn, LayerStream, StreamOptions};
pub use write::{
    DEFAULT_BLOCK_SIZE, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, LayerInfo, LayerWriter, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE,
    OwnerNames, WriteOptions, write_tree,
};
