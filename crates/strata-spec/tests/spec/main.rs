//! Integration tests of strata-spec: lossless JSON, canonical output, media type rules.

mod json;
mod props;
