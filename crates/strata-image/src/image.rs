//! An image in a store: manifest + config, reached by tag, digest or id.

use strata_spec::{
    Descriptor, Digest, ImageConfig, Index, Manifest, ManifestOrIndex, MediaType, Platform, Reference, select_platform,
};
use strata_store::MAX_DOCUMENT_SIZE;

use crate::error::{Error, Result};
use crate::inspect::{DescriptorView, HistoryRow, Inspect, history_rows};
use crate::store::Store;

/// How deep indexes may nest before strata refuses (real images use one level).
const MAX_INDEX_DEPTH: usize = 4;

/// An image: a manifest and its config, in a store.
#[derive(Clone)]
pub struct Image {
    store: Store,
    /// The ref name it was opened by, if any.
    name: Option<String>,
    /// What the name points at: the manifest, or the index it was picked from.
    top: Descriptor,
    /// The manifest.
    descriptor: Descriptor,
    manifest: Manifest,
    config_digest: Digest,
    config: ImageConfig,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("name", &self.name)
            .field("id", &self.config_digest)
            .field("manifest", &self.descriptor.digest)
            .finish()
    }
}

impl Image {
    /// Open the manifest or index at `desc`, picking `platform` out of an index.
    pub(crate) fn open(store: Store, desc: Descriptor, name: Option<String>, platform: &Platform) -> Result<Image> {
        let top = desc.clone();
        let mut current = desc;
        for _ in 0..MAX_INDEX_DEPTH {
            let bytes = store.backend().read_descriptor(&current, MAX_DOCUMENT_SIZE)?;
            let doc = ManifestOrIndex::from_slice_as(&bytes, &current.media_type).map_err(|e| {
                if current.media_type.is_manifest() || current.media_type.is_index() {
                    Error::Spec(e)
                } else {
                    Error::NotAnImage {
                        name: name.clone().unwrap_or_else(|| current.digest.to_string()),
                        media_type: current.media_type.to_string(),
                    }
                }
            })?;
            match doc {
                ManifestOrIndex::Manifest(m) => return Image::from_manifest(store, name, top, current, *m),
                ManifestOrIndex::Index(i) => {
                    current = pick(&i, platform, name.as_deref().unwrap_or(top.digest.as_str()))?
                }
            }
        }
        Err(Error::Inconsistent {
            manifest: top.digest,
            reason: format!("indexes nested deeper than {MAX_INDEX_DEPTH}"),
        })
    }

    fn from_manifest(
        store: Store,
        name: Option<String>,
        top: Descriptor,
        descriptor: Descriptor,
        manifest: Manifest,
    ) -> Result<Image> {
        let cfg = &manifest.config;
        if !cfg.media_type.is_config() {
            return Err(Error::NotAnImage {
                name: name.clone().unwrap_or_else(|| descriptor.digest.to_string()),
                media_type: format!("manifest whose config is {}", cfg.media_type),
            });
        }
        let bytes = store.backend().read_descriptor(cfg, MAX_DOCUMENT_SIZE)?;
        let config = ImageConfig::from_slice(&bytes)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Inconsistent {
                manifest: descriptor.digest,
                reason: format!(
                    "{} layers in the manifest but {} diff_ids in the config",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        if let Some(bad) = manifest.layers.iter().find(|l| !l.media_type.is_layer()) {
            return Err(Error::Inconsistent {
                manifest: descriptor.digest,
                reason: format!("layer {} has media type {}, not a layer type", bad.digest, bad.media_type),
            });
        }
        Ok(Image { config_digest: cfg.digest.clone(), store, name, top, descriptor, manifest, config })
    }

    /// The image id: the digest of its config, as docker shows it.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// The manifest's digest.
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// The manifest's descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// What a tag of this image points at: the index it was picked from, or the manifest.
    pub fn tag_target(&self) -> &Descriptor {
        &self.top
    }

    /// This image handle with another name (what it was opened or tagged by).
    pub fn with_name(mut self, name: Option<String>) -> Image {
        self.name = name;
        self
    }

    /// The ref name the image was opened by, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The config.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The store the image lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Layer descriptors, base first.
    pub fn layers(&self) -> &[Descriptor] {
        &self.manifest.layers
    }

    /// Bytes of the layer blobs and config as stored.
    pub fn size(&self) -> u64 {
        self.manifest.layers.iter().map(|l| l.size).sum::<u64>() + self.manifest.config.size
    }

    /// Whether the manifest is Docker schema2 (otherwise OCI).
    pub fn is_docker(&self) -> bool {
        self.descriptor.media_type == MediaType::DockerManifest
    }

    /// `docker inspect` of this image: tags and digests from the whole store.
    pub fn inspect(&self) -> Result<Inspect> {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for (name, d) in self.store.backend().refs()? {
            if d.digest != self.top.digest && d.digest != self.descriptor.digest {
                continue;
            }
            if let Ok(r) = Reference::parse(&name) {
                let repo_digest = format!("{}@{}", r.familiar_name(), d.digest);
                if !digests.contains(&repo_digest) {
                    digests.push(repo_digest);
                }
            }
            tags.push(name);
        }
        let view = DescriptorView {
            media_type: self.descriptor.media_type.to_string(),
            digest: self.descriptor.digest.clone(),
            size: self.descriptor.size,
        };
        let mut inspect = Inspect::new(self.config_digest.clone(), &self.config, view, &self.manifest, tags, digests);
        inspect.parent = self.parent().map(|p| p.to_string()).unwrap_or_default();
        Ok(inspect)
    }

    /// The parent image: the image of the store this one was made on top of, the closest
    /// when there are several (see [`ImageConfig::is_child_of`]; what `docker inspect`
    /// calls `Parent` for committed images).
    pub fn parent(&self) -> Option<Digest> {
        let index = self.store.backend().index().ok()?;
        let mut best: Option<(usize, Digest)> = None;
        for d in &index.manifests {
            let Ok(other) = Image::open(self.store.clone(), d.clone(), None, &self.config.platform()) else { continue };
            if other.id() != self.id()
                && self.config.is_child_of(&other.config)
                && best.as_ref().is_none_or(|(n, _)| other.config.history().len() > *n)
            {
                best = Some((other.config.history().len(), other.id().clone()));
            }
        }
        best.map(|(_, d)| d)
    }

    /// `docker history`: one row per history entry, newest first.
    pub fn history(&self) -> Vec<HistoryRow> {
        let mut rows = history_rows(&self.config, &self.manifest);
        rows.reverse();
        rows
    }
}

fn pick(index: &Index, platform: &Platform, name: &str) -> Result<Descriptor> {
    let images: Vec<&Descriptor> = index.manifests.iter().filter(|d| d.media_type.is_manifest()).collect();
    if images.len() == 1 && images[0].platform.is_none() {
        // A one-image index without platforms (as umoci and skopeo write): that image.
        return Ok(images[0].clone());
    }
    match select_platform(images.iter().map(|d| d.platform.as_ref()), platform) {
        Some(i) => Ok(images[i].clone()),
        None => Err(Error::NoMatchingPlatform {
            name: name.to_owned(),
            platform: platform.to_string(),
            available: images
                .iter()
                .map(|d| d.platform.as_ref().map_or("(none)".to_owned(), ToString::to_string))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
