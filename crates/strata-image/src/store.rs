//! The store handle of the image model: a blob store plus everything that works on
//! whole images (resolve, list, tag, remove, GC).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use strata_spec::time::parse_rfc3339;
use strata_spec::{Descriptor, Digest, ManifestOrIndex, Platform};
use strata_store::{GcOptions, GcReport, MAX_DOCUMENT_SIZE, MemoryStore, OciDir};

use crate::error::{Error, Result};
use crate::image::Image;
use crate::resolve::{self, Match};

/// A store of images: by default an OCI image layout directory.
///
/// Cheap to clone (an `Arc` inside). Any OCI image layout works, including ones umoci,
/// skopeo and podman wrote; commands that only read never modify it.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn strata_store::Store>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "Store({})", p.display()),
            None => f.write_str("Store(memory)"),
        }
    }
}

/// Annotation marking an index entry as a build cache entry (`strata-build`): an
/// untagged image kept alive for reuse by later builds. [`Store::images`] does not list
/// such entries; GC keeps them like any other index entry.
pub const ANNOTATION_BUILD_CACHE: &str = "io.strata.build.cache-key";

/// One line of [`Store::images`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageSummary {
    /// The ref name as stored (`tomcat02:1.0`), or `None` for an untagged index entry.
    pub name: Option<String>,
    /// Repository part of the name (`tomcat02`), `<none>` when there is none.
    pub repository: String,
    /// Tag part of the name (`1.0`), `<none>` when there is none.
    pub tag: String,
    /// Image id (config digest), when the image could be read.
    pub id: Option<Digest>,
    /// Digest of what the ref points at (manifest or index).
    pub digest: Digest,
    /// Creation time from the config, RFC 3339.
    pub created: Option<String>,
    /// The image's size as docker reports it: the bytes of content its layers hold,
    /// whatever their compression ([`Image::size`]).
    pub size: u64,
    /// Bytes of the image's layer blobs and config as stored ([`Image::stored_size`]).
    pub stored_size: u64,
    /// Why the image could not be read, when it could not.
    pub problem: Option<String>,
    /// An untagged image another image of the store is built on (see
    /// [`ImageConfig::is_child_of`](strata_spec::ImageConfig::is_child_of)): what docker
    /// calls an intermediate image, listed only by `docker images -a`, and never dangling.
    pub intermediate: bool,
}

/// Opening.
impl Store {
    /// Open an existing OCI image layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        Ok(Store::from_backend(Arc::new(OciDir::open(path)?), Some(path.to_path_buf())))
    }

    /// Create a new, empty layout (the directory may exist if empty).
    pub fn create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        Ok(Store::from_backend(Arc::new(OciDir::create(path)?), Some(path.to_path_buf())))
    }

    /// Open a layout, creating it if it does not exist.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        Ok(Store::from_backend(Arc::new(OciDir::open_or_create(path)?), Some(path.to_path_buf())))
    }

    /// A store that lives in memory (tests, scratch work).
    pub fn in_memory() -> Store {
        Store::from_backend(Arc::new(MemoryStore::new()), None)
    }

    /// Wrap any blob store backend.
    pub fn from_backend(backend: Arc<dyn strata_store::Store>, path: Option<PathBuf>) -> Store {
        Store { backend, path }
    }

    /// The backend, for blob-level work.
    pub fn backend(&self) -> &dyn strata_store::Store {
        &*self.backend
    }

    /// The layout directory, for a directory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Finding images.
impl Store {
    /// The image `name` names, for this machine's platform when it is an index, looked up
    /// in docker's order: an image id or manifest digest (`sha256:…`, 64 hex digits,
    /// `name@sha256:…`), then a tag (`tomcat02:1.0`, `ubuntu`,
    /// `127.0.0.1:5000/base:latest`), then the start of an image id of any length that
    /// only one image has (`3f2a9c1d`, `3f`). A name that is not a reference is
    /// [`Error::Spec`] with docker's reason (`invalid reference format`).
    pub fn image(&self, name: &str) -> Result<Image> {
        self.image_for(name, &Platform::host())
    }

    /// The image `name` names, picking `platform` out of an index.
    pub fn image_for(&self, name: &str, platform: &Platform) -> Result<Image> {
        let refs = self.backend.refs()?;
        match resolve::classify(&refs, name) {
            Match::Ref(stored, desc) => Image::open(self.clone(), desc, Some(stored), platform),
            Match::Digest(d) => self.image_by_digest(name, &d, platform),
            Match::Prefix(p) => self.image_by_prefix(name, &p, platform),
            Match::None => Err(Error::ImageNotFound(name.to_owned())),
            Match::Invalid(e) => Err(e.into()),
        }
    }

    /// Open the manifest or index at `desc` directly.
    pub fn image_at(&self, desc: &Descriptor, platform: &Platform) -> Result<Image> {
        Image::open(self.clone(), desc.clone(), None, platform)
    }

    fn image_by_digest(&self, name: &str, digest: &Digest, platform: &Platform) -> Result<Image> {
        let index = self.backend.index()?;
        // A manifest or index the layout lists.
        if let Some(d) = index.manifests.iter().find(|d| &d.digest == digest) {
            return Image::open(self.clone(), d.clone(), d.ref_name().map(str::to_owned), platform);
        }
        // An image id (config digest) of a listed image.
        for d in &index.manifests {
            if let Ok(img) = Image::open(self.clone(), d.clone(), d.ref_name().map(str::to_owned), platform)
                && img.id() == digest
            {
                return Ok(img);
            }
        }
        // A manifest blob the index does not list (a child of an index, say).
        if self.backend.contains(digest)? {
            let bytes = self.backend.read_blob(digest, MAX_DOCUMENT_SIZE)?;
            if let Ok(doc) = ManifestOrIndex::from_slice(&bytes) {
                let media_type = match &doc {
                    ManifestOrIndex::Manifest(m) => m.effective_media_type(),
                    ManifestOrIndex::Index(i) => i.media_type.clone().unwrap_or(strata_spec::MediaType::OciIndex),
                };
                let desc = Descriptor::new(media_type, digest.clone(), bytes.len() as u64);
                return Image::open(self.clone(), desc, None, platform);
            }
        }
        Err(Error::ImageNotFound(name.to_owned()))
    }

    fn image_by_prefix(&self, name: &str, prefix: &str, platform: &Platform) -> Result<Image> {
        let index = self.backend.index()?;
        let mut found: Vec<Image> = Vec::new();
        for d in &index.manifests {
            let Ok(img) = Image::open(self.clone(), d.clone(), d.ref_name().map(str::to_owned), platform) else {
                continue;
            };
            // Image ids only, as docker: manifest digests are found whole.
            if img.id().hex().starts_with(prefix) && !found.iter().any(|f| f.id() == img.id()) {
                found.push(img);
            }
        }
        match found.len() {
            0 => Err(Error::ImageNotFound(name.to_owned())),
            1 => Ok(found.remove(0)),
            count => Err(Error::AmbiguousId { prefix: name.to_owned(), count }),
        }
    }

    /// Every entry of the index, as `docker images` lists them: one line per tag,
    /// untagged entries too (except build cache entries: see [`ANNOTATION_BUILD_CACHE`]),
    /// newest image first (entries created at the same second, or images that cannot be
    /// read, in index order). Sizes come from the layers' records: listing reads no
    /// layer (see [`Store::layer_size`]).
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let index = self.backend.index()?;
        let host = Platform::host();
        let mut out = Vec::new();
        let mut configs = Vec::new();
        for d in &index.manifests {
            if d.ref_name().is_none() && d.annotation(ANNOTATION_BUILD_CACHE).is_some() {
                continue;
            }
            let name = d.ref_name().map(str::to_owned);
            let (repository, tag) = match &name {
                Some(n) => resolve::split_name(n),
                None => ("<none>".to_owned(), "<none>".to_owned()),
            };
            let mut summary = ImageSummary {
                name,
                repository,
                tag,
                id: None,
                digest: d.digest.clone(),
                created: None,
                size: 0,
                stored_size: 0,
                problem: None,
                intermediate: false,
            };
            match Image::open(self.clone(), d.clone(), None, &host) {
                Ok(img) => {
                    configs.push((img.id().clone(), img.config().clone()));
                    summary.id = Some(img.id().clone());
                    summary.created = img.config().created.clone();
                    summary.stored_size = img.stored_size();
                    match img.size() {
                        Ok(size) => summary.size = size,
                        Err(e) => summary.problem = Some(e.to_string()),
                    }
                }
                Err(e) => summary.problem = Some(e.to_string()),
            }
            out.push(summary);
        }
        // Untagged images something is built on are intermediate (few: only untagged ones
        // are compared with the others).
        for s in out.iter_mut().filter(|s| s.name.is_none()) {
            let Some((_, mine)) = configs.iter().find(|(id, _)| s.id.as_ref() == Some(id)) else { continue };
            s.intermediate = configs.iter().any(|(_, c)| c.is_child_of(mine));
        }
        // Docker sorts by creation time in whole seconds, newest first; a time that is
        // missing or does not parse counts as Go's zero time, the oldest there is.
        out.sort_by_key(|s| {
            std::cmp::Reverse(
                s.created.as_deref().and_then(parse_rfc3339).map_or(crate::inspect::GO_ZERO_TIME, |t| t.0),
            )
        });
        Ok(out)
    }
}

/// Tags and removal.
impl Store {
    /// Tag `image` as `name`, a reference by docker's rules for a new tag
    /// ([`Reference::parse_tag`](strata_spec::Reference::parse_tag)); stored in its
    /// familiar form (`tomcat02` as `tomcat02:latest`), which is returned. The tag points
    /// at what the image was opened through (its index, when it came from one).
    pub fn tag(&self, image: &Image, name: &str) -> Result<String> {
        let stored = resolve::new_tag(name)?;
        let mut desc = image.tag_target().clone();
        desc.annotations = None;
        self.backend.set_ref(&stored, &desc)?;
        Ok(stored)
    }

    /// Remove the tag `name` (as typed: normalised the same way as lookups), and nothing
    /// else: what only it reached stays until GC. Returns the name as stored and what it
    /// pointed to. [`Store::remove`] is `docker rmi`.
    pub fn untag(&self, name: &str) -> Result<(String, Descriptor)> {
        let refs = self.backend.refs()?;
        let stored = match resolve::classify(&refs, name) {
            Match::Ref(stored, _) => stored,
            Match::Invalid(e) => return Err(e.into()),
            _ => return Err(Error::ImageNotFound(name.to_owned())),
        };
        let desc = self.backend.remove_ref(&stored)?;
        Ok((stored, desc))
    }

    /// Remove every blob no tag reaches (and stale temp files); `dry_run` only reports.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        let opts = if dry_run { GcOptions::dry_run() } else { GcOptions::default() };
        Ok(self.backend.gc(&opts)?)
    }

    /// Check every blob and reference.
    pub fn fsck(&self) -> Result<strata_store::FsckReport> {
        Ok(self.backend.fsck()?)
    }
}
