//! strata: OCI container images as Rust libraries.
//!
//! The workspace's crates, re-exported under short names:
//!
//! | module | crate | feature | what |
//! |---|---|---|---|
//! | [`spec`] | strata-spec | | digests, media types, manifests, configs, references, [`spec::progress`] |
//! | [`store`] | strata-store | | content-addressed blob store: OCI image layout, in memory ([`store::Backend`]) |
//! | [`layer`] | strata-layer | | layer codec: unpack, differ, writer, [`layer::LayerBuilder`], compression |
//! | [`commit`] | strata-commit | | base + changes -> layer, config, history, manifest |
//! | [`image`] | strata-image | | the image model: [`Store`], [`Image`], [`Container`], archives, tags |
//! | [`template`] | strata-template | | Go templates as docker's `--format` runs them, over JSON |
//! | `registry` | strata-registry | `registry` | pull and push over the OCI distribution API; `Store::pull`/`Store::push` |
//! | `build` | strata-build | `build` | Dockerfile builds (implies `registry`) |
//! | `scan` | strata-scan | `scan` | package inventory, SBOMs, offline vulnerability matching |
//!
//! The three features are off by default: the core alone has no HTTP/TLS stack, no
//! Dockerfile builder and no SQLite. Enable the ones you use. The registry's TLS backend
//! is a feature too: `rustls` (the default: ring, Mozilla's roots compiled in) or
//! `native-tls` (the system's OpenSSL and roots; `default-features = false`, and with
//! both on native-tls is used); `registry::TLS_BACKEND`
//! says which one a build has. Neither compiles anything unless `registry` is on. The
//! default `zstd` feature reads and writes zstd layers through the C zstd library;
//! without it a zstd layer is a typed error (`layer::Error::UnsupportedCompression`). [`serde_json`] (the JSON of configs and
//! inspect output) and [`Compression`] are re-exported for the public types that use
//! them.
//!
//! The image model's main types are also at the top level:
//!
//! ```
//! use strata::{CommitOptions, LayerInput, Store};
//!
//! let work = tempfile::tempdir()?;
//! let store = Store::open_or_create(work.path().join("store"))?;
//! let rootfs = work.path().join("rootfs");
//! std::fs::create_dir_all(rootfs.join("etc"))?;
//! std::fs::write(rootfs.join("etc/motd"), "hello\n")?;
//! let image = store.import(LayerInput::Dir(&rootfs), &CommitOptions::default().tag("base:1"))?;
//! assert_eq!(store.image("base:1")?.id(), image.id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "build")]
pub use strata_build as build;
pub use strata_commit as commit;
pub use strata_image as image;
pub use strata_layer as layer;
#[cfg(feature = "registry")]
pub use strata_registry as registry;
#[cfg(feature = "scan")]
pub use strata_scan as scan;
pub use strata_spec as spec;
pub use strata_store as store;
pub use strata_template as template;

pub use strata_image::{
    ArchiveFormat, Change, CommitOptions, Container, Error, ErrorKind, Image, Inspect, LayerBuilder, LayerInput,
    Result, Store, Tag, UnpackOptions,
};
pub use strata_spec::Compression;
pub use strata_spec::progress::{Event, Progress, ProgressHook};

/// The JSON crate strata's public types use (`Inspect::config`, `ImageConfig` extras).
pub use serde_json;
