//! Random inputs.
