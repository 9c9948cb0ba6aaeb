#![doc = include_str!("../README.md")]

pub mod change;
mod commit;
mod error;

pub use change::{ALLOWED, Change, ChangeError, Command};
pub use commit::{
    ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, Base, CommitOptions, Committed, Source, commit, finish, put_document,
    source_date_epoch, store_layer, write_layer,
};
pub use error::{Error, Result};
pub use strata_layer::{LayerInfo, Snapshot, WriteOptions};
