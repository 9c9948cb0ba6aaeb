//! strata-commit: container changes + base image -> new image (under construction).

pub mod change;

pub use change::{Change, ChangeError};
