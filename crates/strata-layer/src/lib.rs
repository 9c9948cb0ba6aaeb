//! strata-layer: the layer tar codec (under construction).

mod compress;
mod entry;
mod error;
mod header;
pub mod path;
mod scan;
mod write;

pub use entry::{EntryKind, EntryMeta, Timestamp, tar_order};
pub use error::{Error, Result};
pub use write::{
    DEFAULT_BLOCK_SIZE, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, LayerInfo, LayerWriter, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE,
    OwnerNames, WriteOptions, reencode_tar, write_tree,
};
