//! strata: OCI container images as Rust libraries.
//!
//! The workspace's crates, re-exported under short names:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`spec`] | strata-spec | digests, media types, manifests, configs, references |
//! | [`store`] | strata-store | content-addressed blob store: OCI image layout, in memory |
//! | [`layer`] | strata-layer | layer codec: unpack, differ, writer, compression |
//! | [`commit`] | strata-commit | base + changes -> layer, config, history, manifest |
//! | [`image`] | strata-image | the image model: store, image, container, archives |
//! | [`registry`] | strata-registry | pull and push over the OCI distribution API |
//! | [`build`] | strata-build | Dockerfile builds |
//! | [`template`] | strata-template | Go templates as docker's `--format` runs them, over JSON |
//! | [`scan`] | strata-scan | package inventory, SBOMs, offline vulnerability matching |
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
    ArchiveFormat, Change, CommitOptions, Container, Error, Image, Inspect, LayerInput, Result, Store, UnpackOptions,
};
