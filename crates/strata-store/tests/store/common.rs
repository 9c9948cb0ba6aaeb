//! Fixtures built in code: tiny images, stores of both kinds, tree snapshots.

use std::path::Path;
use std::sync::Arc;

use strata_store::spec::{Descriptor, Digest, History, ImageConfig, Manifest, MediaType, Platform};
use strata_store::{Backend, BlobStore, MemoryStore, OciDir};
use strata_testkit::{Compare, Tree};

/// A fresh store of each kind, named, each with its tempdir kept alive.
pub fn stores() -> Vec<(&'static str, Arc<dyn Backend>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let oci = OciDir::create(dir.path().join("layout")).unwrap();
    vec![("memory", Arc::new(MemoryStore::new()), None), ("oci-dir", Arc::new(oci), Some(dir))]
}

/// A small uncompressed layer tar with one file whose content depends on `seed`.
pub fn layer_tar(seed: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let content = format!("hello from {seed}\n");
    let mut h = tar::Header::new_ustar();
    h.set_path("etc/greeting").unwrap();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, content.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

/// The blobs of a one-layer image.
pub struct Image {
    /// The manifest's descriptor (what a tag points to).
    pub manifest: Descriptor,
    /// The config's descriptor.
    pub config: Descriptor,
    /// The layer's descriptor.
    pub layer: Descriptor,
}

impl Image {
    /// Every blob digest of the image.
    pub fn digests(&self) -> Vec<Digest> {
        vec![self.manifest.digest.clone(), self.config.digest.clone(), self.layer.digest.clone()]
    }
}

/// Write a one-layer OCI image into `store` (not tagged).
pub fn write_image(store: &dyn BlobStore, seed: &str) -> Image {
    let tar = layer_tar(seed);
    let layer = store.put_blob(&tar).unwrap();
    let layer = Descriptor::new(MediaType::OciLayer, layer.digest, layer.size);
    let mut config = ImageConfig::new(&Platform::parse("linux/amd64").unwrap());
    let history = History { created_by: Some(format!("strata test {seed}")), ..Default::default() };
    config.push_layer(layer.digest.clone(), history);
    let c = store.put_blob(&config.to_canonical_json()).unwrap();
    let config = Descriptor::new(MediaType::OciConfig, c.digest, c.size);
    let manifest = Manifest::new(MediaType::OciManifest, config.clone(), vec![layer.clone()]);
    let m = store.put_blob(&manifest.to_canonical_json()).unwrap();
    Image { manifest: Descriptor::new(MediaType::OciManifest, m.digest, m.size), config, layer }
}

/// Snapshot a layout, to prove an operation changed nothing.
pub fn snapshot(dir: &Path) -> Tree {
    Tree::capture(dir).unwrap()
}

/// Assert two snapshots agree, including file mtimes and what exists.
pub fn assert_unchanged(before: &Tree, after: &Tree, what: &str) {
    let diff = before.diff(after, &Compare { dir_mtime: true, ..Compare::default() });
    assert!(diff.is_empty(), "{what} modified the layout: {diff:#?}");
}

/// A predicate on an error, for tables of cases.
pub type ErrCheck = fn(&strata_store::Error) -> bool;
