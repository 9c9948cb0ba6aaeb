//! strata-layer: the layer tar codec (under construction).
#![doc = include_str!("../doc/unpack.md")]

mod apply;
mod decompress;
mod error;
mod fsops;
pub mod path;
pub mod read;

pub use apply::{
    ApplyOptions, ApplyReport, Device, LayerReport, LayerSource, Ownership, Recorded, apply_layer, apply_layers,
};
pub use decompress::Decoder;
pub use error::{Error, Result};
pub use fsops::Resolver;
pub use read::Limits;
