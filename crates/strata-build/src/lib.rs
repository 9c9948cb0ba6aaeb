#![doc = include_str!("../README.md")]

mod build;
pub mod cache;
mod copy;
pub mod dockerfile;
mod error;
mod fetch;
mod graph;
mod mounts;
mod oci_run;
mod platform;
mod run;
mod shared_cache;
mod tree;
mod users;

pub use build::{BuildOptions, Built, DEFAULT_PATH, Event, build, build_dockerfile};
pub use error::{Error, MountProblem, Result, SecretKind, SecretProblem, StageProblem};
pub use fetch::{DEFAULT_FETCH_LIMIT, FetchOptions};
pub use mounts::SecretSource;
pub use oci_run::OciRunner;
pub use run::{NamespaceRunner, Network, RunMount, RunMountKind, RunSpec, Runner};
pub use shared_cache::{CACHE_ARTIFACT_TYPE, CacheSpec, LOCAL_CACHE_REF};
