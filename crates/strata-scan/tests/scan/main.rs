//! strata-scan's integration tests: inventories of generated images, compared with
//! what the package managers' own tools say.

mod cache;
mod fixture;
mod image_cache;
mod inventory;
mod sbom;
mod version;
mod vuln;
