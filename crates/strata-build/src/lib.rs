#![doc = include_str!("../README.md")]

mod build;
pub mod cache;
mod copy;
pub mod dockerfile;
mod error;
mod fetch;
mod oci_run;
mod run;
mod tree;
mod users;

pub use build::{BuildOptions, Built, DEFAULT_PATH, Event, build, build_dockerfile};
pub use error::{Error, Result};
pub use fetch::{DEFAULT_FETCH_LIMIT, FetchOptions};
pub use oci_run::OciRunner;
pub use run::{NamespaceRunner, Network, RunSpec, Runner};
