//! strata-image: the proof of the image model (issue 4).
//!
//! - `law`: unpack(commit(container)) == the container's rootfs, generated and Debian-like.
//! - `peers`: umoci, oci-image-tool, skopeo and podman read what strata writes, and
//!   strata reads what they write.
//! - `crash`: SIGKILL during commit never leaves a tag on a missing or corrupt blob.
//! - `bad_input`: typed errors, and the store unchanged.
//! - `listing`: docker's sizes from layer records, docker's order, bare layout names.
//! - `model`, `rootless`: names, tags, removal, listing, inspect, history, platforms,
//!   rootless unpack and commit.
//! - `runtime`: the bundle's `config.json` (OCI runtime configuration), against umoci.

mod archive;
mod archive_view;
mod bad_input;
mod containers;
mod crash;
mod damaged;
mod fixture;
mod law;
mod listing;
mod many_tags;
mod model;
mod peers;
mod referrers;
mod rootless;
mod runtime;
