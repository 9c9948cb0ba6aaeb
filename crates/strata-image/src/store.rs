//! The store handle of the image model: a blob store plus everything that works on
//! whole images (resolve, list, tag, remove, GC).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use strata_spec::time::parse_rfc3339;
use strata_spec::{Descriptor, Digest, Index, ManifestOrIndex, MediaType, Platform};
use strata_store::{GcOptions, GcReport, IndexEntries, IndexEntry, MAX_DOCUMENT_SIZE, MemoryStore, OciDir};

use crate::error::{Error, Result};
use crate::image::Image;
use crate::resolve::{self, Match};
use crate::summary::{Check, Summaries, Summary};

/// A store of images: by default an OCI image layout directory.
///
/// Cheap to clone (an `Arc` inside). Any OCI image layout works, including ones umoci,
/// skopeo and podman wrote; commands that only read never modify it.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn strata_store::Backend>,
    path: Option<PathBuf>,
    /// Handed each layer the store takes in ([`Store::with_indexer`]).
    pub(crate) indexer: Option<Arc<dyn crate::indexer::LayerIndexer>>,
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
    pub fn from_backend(backend: Arc<dyn strata_store::Backend>, path: Option<PathBuf>) -> Store {
        Store { backend, path, indexer: None }
    }

    /// The backend, for blob-level work.
    pub fn backend(&self) -> &dyn strata_store::Backend {
        &*self.backend
    }

    /// The layout directory, for a directory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// The images an index lists, each opened once however many entries (tags) name it: a
/// store with 250,000 tags of 2,000 images opens 2,000 manifests, not 250,000.
pub(crate) struct Listed {
    /// Per index entry, in index order: its image's place in `images`.
    pub(crate) entry: Vec<usize>,
    /// Per distinct descriptor (digest and media type): the image, or why it cannot be
    /// opened for the platform. Images carry no ref name ([`Listed::find`] gives one).
    pub(crate) images: Vec<Result<Image>>,
}

impl Listed {
    /// The image of index entry `i`, if it opened.
    pub(crate) fn image(&self, i: usize) -> Option<&Image> {
        self.entry.get(i).and_then(|&s| self.images[s].as_ref().ok())
    }

    /// The first image that opened and satisfies `pred`, in the order of `index` (the
    /// index it was listed from), named by its entry's ref name.
    pub(crate) fn find(&self, index: &Index, pred: impl Fn(&Image) -> bool) -> Option<Image> {
        index.manifests.iter().enumerate().find_map(|(i, d)| {
            self.image(i).filter(|img| pred(img)).map(|img| img.clone().with_name(d.ref_name().map(str::to_owned)))
        })
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
        match resolve::classify_in(&*self.backend, name)? {
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

    /// Open every image `index` lists for `platform`, once per distinct descriptor (see
    /// [`Listed`]).
    pub(crate) fn open_listed(&self, index: &Index, platform: &Platform) -> Listed {
        let mut seen: std::collections::HashMap<(&Digest, &MediaType), usize> = std::collections::HashMap::new();
        let mut listed = Listed { entry: Vec::with_capacity(index.manifests.len()), images: Vec::new() };
        for d in &index.manifests {
            let slot = *seen.entry((&d.digest, &d.media_type)).or_insert_with(|| {
                listed.images.push(Image::open(self.clone(), d.clone(), None, platform));
                listed.images.len() - 1
            });
            listed.entry.push(slot);
        }
        listed
    }

    fn image_by_digest(&self, name: &str, digest: &Digest, platform: &Platform) -> Result<Image> {
        let index = self.backend.index()?;
        // A manifest or index the layout lists.
        if let Some(d) = index.manifests.iter().find(|d| &d.digest == digest) {
            return Image::open(self.clone(), d.clone(), d.ref_name().map(str::to_owned), platform);
        }
        // An image id (config digest) of a listed image.
        let listed = self.open_listed(&index, platform);
        if let Some(img) = listed.find(&index, |img| img.id() == digest) {
            return Ok(img);
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
        let listed = self.open_listed(&index, platform);
        for (i, d) in index.manifests.iter().enumerate() {
            // Image ids only, as docker: manifest digests are found whole.
            match listed.image(i) {
                Some(img) if img.id().hex().starts_with(prefix) && !found.iter().any(|f| f.id() == img.id()) => {
                    found.push(img.clone().with_name(d.ref_name().map(str::to_owned)));
                }
                _ => {}
            }
        }
        match found.len() {
            0 => Err(Error::ImageNotFound(name.to_owned())),
            1 => Ok(found.remove(0)),
            count => Err(Error::AmbiguousId { prefix: name.to_owned(), count }),
        }
    }

    /// Every entry of the index, as `docker images` lists them: one line per tag,
    /// untagged entries too (except build cache entries, see [`ANNOTATION_BUILD_CACHE`],
    /// those that keep containers' images, see
    /// [`ANNOTATION_CONTAINER`](crate::containers::ANNOTATION_CONTAINER), and artifacts
    /// attached to images, see [`Image::attach`]), newest image
    /// first (entries created at the same second, or images that cannot be read, in index
    /// order). Sizes come from the layers' records: listing reads no layer (see
    /// [`Store::layer_size`]).
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        // Entries by target, not a descriptor each (see [`Backend::index_entries`]).
        let index = self.backend.index_entries()?;
        // Each distinct image once, from its summary (see [`crate::summary`]): on a big
        // store, no blob read per image. A target is opened through its first entry.
        let platform = Platform::host();
        let mut summaries = Summaries::load(self);
        let mut slots: Vec<Option<usize>> = vec![None; index.targets.len()];
        let mut shown: Vec<Result<Summary>> = Vec::new();
        let mut targets: Vec<&Descriptor> = Vec::new();
        let mut entry = Vec::with_capacity(index.entries.len());
        for e in &index.entries {
            let slot = match slots[e.target] {
                Some(s) => s,
                None => {
                    let d = e.full.as_deref().unwrap_or(&index.targets[e.target]);
                    shown.push(summaries.get(d, &platform, Check::Blobs));
                    targets.push(&index.targets[e.target]);
                    slots[e.target] = Some(shown.len() - 1);
                    shown.len() - 1
                }
            };
            entry.push(slot);
        }
        summaries.save(targets);
        // Docker sorts by creation time in whole seconds, newest first; a time that is
        // missing or does not parse counts as Go's zero time, the oldest there is.
        // (Stable, and each image's time parsed once: not once per row.)
        let when: Vec<_> = shown
            .iter()
            .map(|r| {
                let created = r.as_ref().ok().and_then(|s| s.created.as_deref());
                created.and_then(parse_rfc3339).map_or(crate::inspect::GO_ZERO_TIME, |t| t.0)
            })
            .collect();
        let IndexEntries { targets, mut entries } = index;
        // The entries listed, sorted before their rows are made: a row is big to move.
        let mut listed: Vec<usize> = (0..entries.len()).filter(|&i| is_listed(&entries[i])).collect();
        listed.sort_by_key(|&i| std::cmp::Reverse(when[entry[i]]));
        let mut out = Vec::with_capacity(listed.len());
        // Each repository's name parsed once, not once per tag.
        let mut names = resolve::NameSplitter::default();
        for i in listed {
            let e = &mut entries[i];
            let name = e.name.take();
            let (repository, tag) = match &name {
                Some(n) => names.split(n),
                None => ("<none>".to_owned(), "<none>".to_owned()),
            };
            let (id, created, stored_size, size) = match &shown[entry[i]] {
                Ok(s) => (Some(s.id.clone()), s.created.clone(), s.stored_size, s.size.clone()),
                Err(e) => (None, None, 0, Err(e.to_string())),
            };
            out.push(ImageSummary {
                name,
                repository,
                tag,
                id,
                digest: targets[e.target].digest.clone(),
                created,
                size: *size.as_ref().unwrap_or(&0),
                stored_size,
                problem: size.err(),
                intermediate: false,
            });
        }
        // Untagged images something is built on are intermediate (few: only untagged ones
        // are compared with the others).
        let opened: Vec<&Summary> = shown.iter().filter_map(|r| r.as_ref().ok()).collect();
        for s in out.iter_mut().filter(|s| s.name.is_none()) {
            let Some(mine) = opened.iter().find(|o| s.id.as_ref() == Some(&o.id)) else { continue };
            s.intermediate = opened.iter().any(|o| o.lineage.is_child_of(&mine.lineage));
        }
        Ok(out)
    }
}

/// Whether `images` lists an index entry: entries with no more than a target and a ref
/// name are images, always; of the others, not build cache entries, the entries that
/// keep containers' images (not images of their own), nor artifacts attached to images
/// (referrers: SBOMs, signatures).
fn is_listed(e: &IndexEntry) -> bool {
    let Some(d) = &e.full else { return true };
    let build_cache = d.ref_name().is_none() && d.annotation(ANNOTATION_BUILD_CACHE).is_some();
    let container = d.annotation(crate::containers::ANNOTATION_CONTAINER).is_some();
    let artifact = d.ref_name().is_none() && d.artifact_type.is_some();
    !(build_cache || container || artifact)
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
        let stored = match resolve::classify_in(&*self.backend, name)? {
            Match::Ref(stored, _) => stored,
            Match::Invalid(e) => return Err(e.into()),
            _ => return Err(Error::ImageNotFound(name.to_owned())),
        };
        let desc = self.backend.remove_ref(&stored)?;
        Ok((stored, desc))
    }

    /// Remove every blob no tag reaches (and stale temp files); `dry_run` only reports.
    /// Aborts, removing nothing, when an image the index lists cannot be read (see
    /// [`GcOptions::force`]).
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        let opts = if dry_run { GcOptions::dry_run() } else { GcOptions::default() };
        self.gc_with(&opts)
    }

    /// [`Store::gc`] with every option.
    pub fn gc_with(&self, options: &GcOptions) -> Result<GcReport> {
        Ok(self.backend.gc(options)?)
    }
}
