//! strata: OCI container images as Rust libraries.
//!
//! This facade re-exports the workspace crates under short names:
//! [`spec`] (digests, media types, manifests, configs, references) and
//! [`store`] (the content-addressed blob store, an OCI image layout by default).
//!
//! ```
//! let d = strata::spec::Digest::sha256_of(b"layer bytes");
//! assert!(d.as_str().starts_with("sha256:"));
//! ```

pub use strata_spec as spec;
pub use strata_store as store;
