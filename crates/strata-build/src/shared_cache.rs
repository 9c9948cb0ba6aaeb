//! The build cache shared between machines: exported after a build (`--cache-to`) to a
//! registry or a directory, imported before one (`--cache-from`).
//!
//! What travels is an OCI artifact (described in `docs/build-cache.md`): an image index
//! with `artifactType` [`CACHE_ARTIFACT_TYPE`] whose `manifests` are the images the
//! build's steps made, each annotated with its step's cache key
//! ([`ANNOTATION_BUILD_CACHE`](crate::cache::ANNOTATION_BUILD_CACHE)). Each is an
//! ordinary image manifest, so a registry stores it like any image and shares its
//! layers with the image that was built. In a registry the index is a tag
//! (`type=registry,ref=REG/REPO:cache`); in a directory (`type=local,dest=DIR`) it is
//! the ref [`LOCAL_CACHE_REF`] of an OCI image layout.
//!
//! Importing reads the index only. When a step's key is found there, the build takes
//! its manifest and config (small), and its layers only when something needs the
//! content: a later step that runs, or the result, whose layers a build must have.

use std::collections::HashMap;
use std::path::PathBuf;

use strata_image::Store;
use strata_registry::{NoProgress, PullOptions, PushOptions, RegistryOptions};
use strata_spec::{Descriptor, Digest, Index, MediaType, Reference};
use strata_store::{Expected, MAX_DOCUMENT_SIZE};

use crate::cache::ANNOTATION_BUILD_CACHE;
use crate::error::{Error, Result};

/// `artifactType` of a strata build cache index.
pub const CACHE_ARTIFACT_TYPE: &str = "application/vnd.strata.build.cache.v1+json";
/// The ref of the cache index in a `type=local` directory.
pub const LOCAL_CACHE_REF: &str = "cache";

/// Where a build cache goes to or comes from (`--cache-to`, `--cache-from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSpec {
    /// `type=registry,ref=REG/REPO:TAG` (or the reference alone).
    Registry(Reference),
    /// `type=local,dest=DIR` (export) or `type=local,src=DIR` (import): an OCI image
    /// layout directory.
    Local(PathBuf),
}

impl CacheSpec {
    /// Parse docker buildx's syntax: `type=registry,ref=R`, `type=local,dest=DIR` or
    /// `type=local,src=DIR`, or a bare reference. `mode=min|max` is accepted (strata
    /// always exports every step of the build, as `mode=max`).
    pub fn parse(spec: &str) -> std::result::Result<CacheSpec, String> {
        if !spec.contains('=') {
            return Reference::parse(spec).map(CacheSpec::Registry).map_err(|e| format!("{spec}: {e}"));
        }
        let mut kind = None;
        let mut reference = None;
        let mut dir = None;
        for field in spec.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| format!("{spec}: {field:?} is not key=value"))?;
            match k.trim() {
                "type" => kind = Some(v.trim().to_owned()),
                "ref" => reference = Some(v.trim().to_owned()),
                "dest" | "src" => dir = Some(PathBuf::from(v.trim())),
                "mode" if matches!(v, "min" | "max") => {}
                "mode" => return Err(format!("{spec}: mode={v}: expected min or max")),
                other => return Err(format!("{spec}: unsupported cache option {other:?}")),
            }
        }
        match (kind.as_deref().unwrap_or("registry"), reference, dir) {
            ("registry", Some(r), None) => {
                Reference::parse(&r).map(CacheSpec::Registry).map_err(|e| format!("{spec}: ref={r}: {e}"))
            }
            ("registry", _, _) => Err(format!("{spec}: type=registry needs ref=REGISTRY/REPOSITORY:TAG")),
            ("local", None, Some(d)) => Ok(CacheSpec::Local(d)),
            ("local", _, _) => Err(format!("{spec}: type=local needs dest=DIR (export) or src=DIR (import)")),
            (other, _, _) => Err(format!("{spec}: unsupported cache type {other:?} (registry or local)")),
        }
    }
}

impl std::fmt::Display for CacheSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheSpec::Registry(r) => write!(f, "type=registry,ref={r}"),
            CacheSpec::Local(d) => write!(f, "type=local,dir={}", d.display()),
        }
    }
}

/// Where imported entries' blobs come from.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Origin {
    Registry { reference: Reference, registry: RegistryOptions },
    Local(Store),
}

impl Origin {
    /// Bring the manifest `desc` into `store`: a registry serves it as a manifest, not
    /// as a blob.
    fn fetch_manifest(&self, store: &Store, desc: &Descriptor) -> Result<()> {
        match self {
            Origin::Registry { reference, registry } if store.backend().stat(&desc.digest)? != Some(desc.size) => {
                let pinned = reference.with_digest(desc.digest.clone());
                let (_, bytes) = strata_registry::fetch_document(&pinned, registry)?;
                store.backend().put_blob_expected(&bytes, Expected::descriptor(desc))?;
                Ok(())
            }
            Origin::Registry { .. } => Ok(()),
            Origin::Local(_) => self.fetch(store, std::slice::from_ref(desc)),
        }
    }

    /// Bring `blobs` into `store` (those it has are skipped).
    fn fetch(&self, store: &Store, blobs: &[Descriptor]) -> Result<()> {
        let missing: Vec<Descriptor> = blobs
            .iter()
            .filter(|d| !matches!(store.backend().stat(&d.digest), Ok(Some(n)) if n == d.size))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        match self {
            Origin::Registry { reference, registry } => {
                let opts = PullOptions { registry: registry.clone(), ..Default::default() };
                strata_registry::fetch_blobs(store.backend(), reference, &missing, &opts)?;
            }
            Origin::Local(from) => copy_blobs(from, store, &missing)?,
        }
        Ok(())
    }
}

/// Copy blobs between stores, verified against their descriptors.
fn copy_blobs(from: &Store, to: &Store, blobs: &[Descriptor]) -> Result<()> {
    for d in blobs {
        if to.backend().stat(&d.digest)? == Some(d.size) {
            continue;
        }
        let mut r = from.backend().open_descriptor(d)?;
        let mut w = to.backend().begin_write_with(d.digest.algorithm())?;
        std::io::copy(&mut r, &mut w).map_err(Error::io("copy blob", d.digest.to_string()))?;
        w.commit(Expected::descriptor(d))?;
    }
    Ok(())
}

/// The entries of every `--cache-from`, and where their blobs are.
#[derive(Default)]
pub(crate) struct Imported {
    /// Key -> the step's manifest and the index of its origin.
    entries: HashMap<String, (Descriptor, usize)>,
    origins: Vec<Origin>,
    /// Manifests taken from an origin whose layers may not be here yet.
    pending: HashMap<Digest, usize>,
}

impl Imported {
    /// Read the cache index of each spec. A cache that is not there yet is a warning,
    /// as in buildx (the first build has nothing to import).
    pub fn load(specs: &[CacheSpec], registry: &RegistryOptions, warnings: &mut Vec<String>) -> Result<Imported> {
        let mut imported = Imported::default();
        for spec in specs {
            let found = match spec {
                CacheSpec::Registry(reference) => match strata_registry::fetch_document(reference, registry) {
                    Ok((_, bytes)) => {
                        Some((bytes, Origin::Registry { reference: reference.clone(), registry: registry.clone() }))
                    }
                    Err(e) if e.is_status(404) => None,
                    Err(e) => return Err(e.into()),
                },
                CacheSpec::Local(dir) if dir.join("index.json").is_file() => {
                    let store = Store::open(dir)?;
                    match store.backend().resolve_ref(LOCAL_CACHE_REF) {
                        Ok(desc) => {
                            let bytes = store.backend().read_descriptor(&desc, MAX_DOCUMENT_SIZE)?;
                            Some((bytes, Origin::Local(store)))
                        }
                        Err(_) => None,
                    }
                }
                CacheSpec::Local(_) => None,
            };
            let Some((bytes, origin)) = found else {
                warnings.push(format!("importing cache from {spec}: not found (nothing imported)"));
                continue;
            };
            let index = Index::from_slice(&bytes)?;
            if index.artifact_type.as_ref().map(MediaType::as_str) != Some(CACHE_ARTIFACT_TYPE) {
                return Err(Error::NotACache { reference: spec.to_string(), artifact_type: CACHE_ARTIFACT_TYPE });
            }
            let at = imported.origins.len();
            imported.origins.push(origin);
            for d in index.manifests {
                if let Some(k) = d.annotation(ANNOTATION_BUILD_CACHE) {
                    imported.entries.entry(k.to_owned()).or_insert_with(|| (d.clone(), at));
                }
            }
        }
        Ok(imported)
    }

    /// The manifest cached under `key`, brought into `store` with its config (its layers
    /// when [`Imported::complete`] asks for them).
    pub fn take(&mut self, store: &Store, key: &str) -> Result<Option<Descriptor>> {
        let Some((desc, at)) = self.entries.get(key).cloned() else { return Ok(None) };
        let origin = &self.origins[at];
        let mut plain = desc.clone();
        plain.annotations = None;
        origin.fetch_manifest(store, &plain)?;
        let bytes = store.backend().read_descriptor(&plain, MAX_DOCUMENT_SIZE)?;
        let manifest = strata_spec::Manifest::from_slice(&bytes)?;
        origin.fetch(store, std::slice::from_ref(&manifest.config))?;
        self.pending.insert(plain.digest.clone(), at);
        Ok(Some(plain))
    }

    /// Bring the layers of the image whose manifest is `manifest` (if it came from an
    /// imported cache and they are missing).
    pub fn complete(&self, store: &Store, manifest: &Digest, layers: &[Descriptor]) -> Result<()> {
        match self.pending.get(manifest) {
            Some(at) => self.origins[*at].fetch(store, layers),
            None => Ok(()),
        }
    }
}

/// Export `entries` (key, step manifest) as the cache artifact to `spec`.
pub(crate) fn export(
    store: &Store,
    entries: &[(String, Descriptor)],
    spec: &CacheSpec,
    registry: &RegistryOptions,
) -> Result<Descriptor> {
    let mut manifests = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (key, desc) in entries {
        if !seen.insert(key.clone()) {
            continue;
        }
        let mut d = desc.clone();
        d.annotations = None;
        d.set_annotation(ANNOTATION_BUILD_CACHE, key);
        manifests.push(d);
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(MediaType::OciIndex),
        artifact_type: Some(MediaType::new(CACHE_ARTIFACT_TYPE)),
        manifests,
        ..Default::default()
    };
    let bytes = index.to_canonical_json();
    let info = store.backend().put_blob(&bytes)?;
    let desc = Descriptor::new(MediaType::OciIndex, info.digest, info.size);
    match spec {
        CacheSpec::Registry(reference) => {
            let opts = PushOptions { registry: registry.clone(), ..Default::default() };
            strata_registry::push(store.backend(), &desc, reference, &opts, &NoProgress)?;
        }
        CacheSpec::Local(dir) => {
            let to = Store::open_or_create(dir)?;
            let _lease = to.backend().lease()?;
            for d in &index.manifests {
                let mut plain = d.clone();
                plain.annotations = None;
                let m =
                    strata_spec::Manifest::from_slice(&store.backend().read_descriptor(&plain, MAX_DOCUMENT_SIZE)?)?;
                let mut blobs = vec![m.config.clone()];
                blobs.extend(m.layers.iter().cloned());
                blobs.push(plain);
                copy_blobs(store, &to, &blobs)?;
            }
            copy_blobs(store, &to, std::slice::from_ref(&desc))?;
            to.backend().set_ref(LOCAL_CACHE_REF, &desc)?;
        }
    }
    Ok(desc)
}
