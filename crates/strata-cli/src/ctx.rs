//! What every command gets: the store location, `--quiet`, `--json`, and how to open
//! the store for reading or writing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use strata_image::Store;

use crate::cli::Cli;

/// The global options, resolved.
pub struct Ctx {
    /// `--store` / `STRATA_STORE`, if given.
    explicit_store: Option<PathBuf>,
    /// `--quiet`.
    pub quiet: bool,
    /// `--json`.
    pub json: bool,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Ctx {
        Ctx { explicit_store: cli.store.clone(), quiet: cli.quiet, json: cli.json }
    }

    /// Whether the store was named (`--store` or `STRATA_STORE`) rather than defaulted.
    pub fn store_is_explicit(&self) -> bool {
        self.explicit_store.is_some()
    }

    /// The store directory: `--store`, else `$XDG_DATA_HOME/strata`, else
    /// `~/.local/share/strata`.
    pub fn store_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.explicit_store {
            return Ok(p.clone());
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return Ok(PathBuf::from(x).join("strata"));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(PathBuf::from(h).join(".local/share/strata")),
            None => bail!("no store: pass --store DIR or set STRATA_STORE (neither XDG_DATA_HOME nor HOME is set)"),
        }
    }

    /// The store for a command that only reads. A store that does not exist yet (or an
    /// empty directory) holds no images; nothing is created.
    pub fn read_store(&self) -> Result<Store> {
        let path = self.store_path()?;
        self.read_store_at(&path)
    }

    /// [`Ctx::read_store`] at a given path.
    pub fn read_store_at(&self, path: &Path) -> Result<Store> {
        if is_missing_or_empty(path) {
            return Ok(Store::in_memory());
        }
        Store::open(path).with_context(|| format!("open store {}", path.display()))
    }

    /// The store for a command that writes; created when missing or empty. A directory
    /// with other things in it is not turned into a store.
    pub fn write_store(&self) -> Result<Store> {
        let path = self.store_path()?;
        if !is_missing_or_empty(&path) && path.is_dir() && std::fs::symlink_metadata(path.join("oci-layout")).is_err() {
            bail!(
                "{} is not an OCI image layout (no oci-layout file) and is not empty: not making a store there",
                path.display()
            );
        }
        let store = Store::open_or_create(&path).with_context(|| format!("open store {}", path.display()))?;
        // STRATA_SCAN_CACHE=fill: layers that load, pull and commit take in get their scan
        // record from a read of them, so the first `sbom`/`scan` after them reads no blob.
        // Not the default: it doubles the time of a commit and of a docker-archive load
        // (docs/benchmarks.md, "Scan"); otherwise the first scan writes the records.
        if std::env::var_os("STRATA_SCAN_CACHE").is_some_and(|v| v == "fill") {
            return Ok(store.with_indexer(std::sync::Arc::new(strata_scan::ScanIndexer)));
        }
        Ok(store)
    }
}

fn is_missing_or_empty(path: &Path) -> bool {
    match std::fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}
