//! Integration tests of the `strata` binary: every command, its errors, the seed's story,
//! interop with umoci and skopeo, and pull/push against a real registry.

mod build;
mod commands;
mod common;
mod conformance;
mod containers;
mod dive;
mod dive_archive;
mod docker;
mod errors;
mod explorer;
mod interop;
mod registry;
mod scan;
mod story;
mod terminal;
