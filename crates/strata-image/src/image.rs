//! An image in a store: manifest + config, reached by tag, digest or id.

use strata_spec::time::parse_rfc3339;
use strata_spec::{
    Descriptor, Digest, ImageConfig, Index, Manifest, ManifestOrIndex, MediaType, Platform, select_platform,
};
use strata_store::MAX_DOCUMENT_SIZE;

use crate::error::{Error, Result};
use crate::inspect::{
    DescriptorView, GO_ZERO_TIME_TEXT, GraphDriver, HistoryRow, Inspect, Metadata, RootFsView, StrataView,
    docker_config_value, docker_created, history_rows,
};
use crate::store::Store;
use crate::summary::{Check, Lineage, Summaries};

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

    /// Whether the manifest is Docker schema2 (otherwise OCI).
    pub fn is_docker(&self) -> bool {
        self.descriptor.media_type == MediaType::DockerManifest
    }

    /// `docker image inspect` of this image (see [`Inspect`]): tags from the whole
    /// store, registry names and tag time from the store's records, the parent and the
    /// size as docker reports them.
    pub fn inspect(&self) -> Result<Inspect> {
        let backend = self.store.backend();
        // Only the refs to this image, and each image of the index once for the parent:
        // on a big index, not a descriptor per entry.
        let mine = backend.refs_to(&[&self.top.digest, &self.descriptor.digest])?;
        let mut ref_names = Vec::new();
        let mut repo_tags = Vec::new();
        for (name, _) in mine {
            if let Some(t) = crate::resolve::repo_tag(&name)
                && !repo_tags.contains(&t)
            {
                repo_tags.push(t);
            }
            ref_names.push(name);
        }
        let mut repo_digests: Vec<String> = Vec::new();
        let mut last_tag_time: Option<String> = None;
        let mut targets = vec![&self.top.digest];
        if self.descriptor.digest != self.top.digest {
            targets.push(&self.descriptor.digest);
        }
        for target in targets {
            let record = backend.image_record(target)?;
            for n in record.repo_digests {
                if !repo_digests.contains(&n) {
                    repo_digests.push(n);
                }
            }
            let later = |t: &String| {
                last_tag_time
                    .as_ref()
                    .is_none_or(|l| parse_rfc3339(t).unwrap_or_default() > parse_rfc3339(l).unwrap_or_default())
            };
            if let Some(t) = record.last_tag_time.filter(later) {
                last_tag_time = Some(t);
            }
        }
        let config = &self.config;
        let comment = match config.comment.as_deref() {
            Some(c) if !c.is_empty() => c.to_owned(),
            _ => config.history().last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        };
        Ok(Inspect {
            id: self.config_digest.clone(),
            repo_tags,
            repo_digests,
            parent: self
                .ancestors_among(&backend.index_targets()?)
                .pop()
                .map(|(_, id)| id.to_string())
                .unwrap_or_default(),
            comment,
            created: docker_created(config.created.as_deref()),
            docker_version: config.extra.get("docker_version").and_then(|v| v.as_str()).unwrap_or_default().to_owned(),
            author: config.author.clone().unwrap_or_default(),
            config: docker_config_value(config.config.as_ref()),
            architecture: config.architecture.clone(),
            variant: config.variant.clone().unwrap_or_default(),
            os: config.os.clone(),
            os_version: config.os_version.clone().unwrap_or_default(),
            size: self.size()?,
            graph_driver: GraphDriver {
                data: None,
                name: if self.store.path().is_some() { "oci-layout" } else { "memory" }.to_owned(),
            },
            root_fs: RootFsView { kind: config.rootfs.kind.clone(), layers: config.rootfs.diff_ids.clone() },
            metadata: Metadata {
                last_tag_time: last_tag_time.map_or_else(|| GO_ZERO_TIME_TEXT.to_owned(), |t| docker_created(Some(&t))),
            },
            descriptor: DescriptorView {
                media_type: self.descriptor.media_type.to_string(),
                digest: self.descriptor.digest.clone(),
                size: self.descriptor.size,
            },
            strata: StrataView { ref_names, stored_size: self.stored_size() },
        })
    }

    /// The images of the store this one is built on ([`ImageConfig::is_child_of`]), as
    /// `(number of history entries, image id)`, shortest first; one per length (the
    /// first in index order). Images that cannot be read are skipped.
    pub fn ancestors(&self) -> Result<Vec<(usize, Digest)>> {
        Ok(self.ancestors_among(&self.store.backend().index_targets()?))
    }

    /// [`Image::ancestors`] among the images `targets` (each distinct descriptor of the
    /// index once) point at.
    fn ancestors_among(&self, targets: &[Descriptor]) -> Vec<(usize, Digest)> {
        let platform = self.config.platform();
        let mine = Lineage::of(&self.config);
        // Summaries, not images: on a big store, no blob read per image (see
        // [`crate::summary`]); the blobs of the few that match are checked below.
        let mut summaries = Summaries::load(&self.store);
        let mut candidates = Vec::new();
        for d in targets {
            let Ok(other) = summaries.get(d, &platform, Check::Later) else { continue };
            if other.id != *self.id() && mine.is_child_of(&other.lineage) {
                candidates.push(other);
            }
        }
        summaries.save(targets);
        let mut found: Vec<(usize, Digest)> = Vec::new();
        for other in candidates {
            let n = other.lineage.history_len();
            if !found.iter().any(|(len, _)| *len == n) && summaries.blobs_exist(&other) {
                found.push((n, other.id));
            }
        }
        found.sort_by_key(|(n, _)| *n);
        found
    }

    /// The parent image: the closest of [`Image::ancestors`] (what `docker inspect`
    /// calls `Parent` for a committed or built image), if the store has one.
    pub fn parent(&self) -> Result<Option<Digest>> {
        Ok(self.ancestors()?.pop().map(|(_, id)| id))
    }

    /// `docker history`: one row per history entry, newest first, with docker's layer
    /// sizes and the id of each step's image where the store has it: this image on the
    /// top row, its ancestors ([`Image::ancestors`]) on the rows of their last steps.
    pub fn history(&self) -> Result<Vec<HistoryRow>> {
        let mut rows = history_rows(&self.config, &self.layer_sizes()?);
        if !self.config.history().is_empty() {
            for (n, id) in self.ancestors()? {
                if let Some(row) = rows.get_mut(n - 1) {
                    row.image = Some(id);
                }
            }
        }
        if let Some(top) = rows.last_mut() {
            top.image = Some(self.config_digest.clone());
        }
        rows.reverse();
        Ok(rows)
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
