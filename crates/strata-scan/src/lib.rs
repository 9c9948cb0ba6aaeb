#![doc = include_str!("../README.md")]

mod cache;
mod catalog;
mod error;
mod files;
mod image_cache;
mod inventory;
mod license;
mod package;
mod root;
mod sbom;
pub mod version;
pub mod vuln;

pub use cache::ScanIndexer;
pub use catalog::python::normalize as normalize_python_name;
pub use error::{Error, Result};
pub use files::Files;
pub use inventory::{Inventory, LayerRef, ScanOptions, Warning};
pub use license::{SpdxLicense, spdx_license};
pub use package::{Distro, Kind, Package, purl, purl_encode};
pub use root::{DirRoot, MAX_DATABASE_SIZE, PathStat, Root};
pub use sbom::{
    ANNOTATION_CREATED, Rendered, SbomFormat, SbomOptions, TOOL_NAME, TOOL_VERSION, attach, cyclonedx,
    is_spdx_expression, render, render_image, spdx, table,
};
pub use vuln::{AdvisoryDb, Finding, Severity, match_inventory};

/// Paths of the package databases the inventory reads, inside the image.
pub mod paths {
    pub use crate::catalog::apk::INSTALLED as APK_INSTALLED;
    pub use crate::catalog::dpkg::{STATUS as DPKG_STATUS, STATUS_D as DPKG_STATUS_D};
    pub use crate::catalog::rpm::{OTHER_PATHS as RPM_UNREADABLE, SQLITE_PATHS as RPM_SQLITE};
}
