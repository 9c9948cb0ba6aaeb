#![doc = include_str!("../README.md")]

pub mod change;
mod commit;
pub mod dockerfile;
mod error;

pub use change::{ALLOWED, Change, ChangeError, apply_changes, apply_settings, valid_signal};
pub use commit::{
    ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, Base, CommitOptions, Committed, Source, commit, finish, put_document,
    source_date_epoch, store_layer, write_layer,
};
pub use dockerfile::CommandForm;
pub use error::{Error, Result};
pub use strata_layer::{LayerInfo, Snapshot, WriteOptions};
