//! strata-layer: the layer tar codec (under construction).

mod error;
pub mod path;

pub use error::{Error, Result};
