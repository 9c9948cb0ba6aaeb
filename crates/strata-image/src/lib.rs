#![doc = include_str!("../README.md")]

mod archive;
mod archive_view;
mod container;
pub mod containers;
mod error;
mod fsck;
mod image;
mod indexer;
pub mod inspect;
mod merged;
mod ops;
pub mod progress;
mod referrers;
#[cfg(feature = "registry")]
mod remote;
mod remove;
mod resolve;
mod runtime;
mod size;
mod store;
mod summary;
mod tags;

pub use archive::{ArchiveFormat, ArchiveManifestEntry, Loaded};
pub use archive_view::ArchiveView;
pub use container::{BundleState, Container, PlanMode, ROOTFS_DIR, SNAPSHOT_FILE, STATE_FILE, UnpackOptions};
pub use error::{ArchiveProblem, Conflict, Error, ErrorKind, MemberProblem, Result};
pub use image::Image;
pub use indexer::LayerIndexer;
pub use inspect::{HistoryRow, Inspect, human_duration, human_size, time_ago};
pub use merged::{ImageAnalysis, LayerAnalysis, MergedView, WastedPath};
pub use ops::LayerInput;
pub use progress::{Event, NoProgress, Progress, ProgressHook};
pub use remove::{RemoveOptions, RemoveReport, Removed};
pub use resolve::{layout_reference, new_tag, normalize_tag, repo_tag, split_name};
pub use runtime::{
    CommandConfig, DOCKER_CAPABILITIES, ProcessOverrides, RUNTIME_CONFIG_FILE, RuntimeConfig, RuntimeConfigOptions,
};
pub use store::{ANNOTATION_BUILD_CACHE, ImageSummary, Store};
pub use strata_commit::{Change, CommitOptions, Committed, Source};
pub use strata_layer::{ApplyReport, Changes, LayerBuilder, WriteOptions};
pub use strata_spec::{Compression, Digest, Family, Platform, Reference};
/// The store backend's error, as [`Error::Store`] carries it: callers match its variants
/// (`GcAborted`, `ReadOnly`...) without depending on strata-store themselves.
pub use strata_store::Error as StoreError;
pub use strata_store::{FsckOptions, FsckReport, GcOptions, GcReport, Lease, Problem};
pub use tags::Tag;
