//! Comparison with umoci.
