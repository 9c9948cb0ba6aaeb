//! Integration tests of strata-store: one binary, one module per concern.
//!
//! Tests that need real processes (concurrency, crashes) re-execute this binary with
//! `STRATA_STORE_CHILD` set, which makes `child::child_main` act as the child.

mod bad_input;
mod blobs;
mod child;
mod common;
mod concurrency;
mod crash;
mod fsck;
mod gc;
mod interop;
mod props;
mod records;
mod refs;
mod spare;
mod table;
