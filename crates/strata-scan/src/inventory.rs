//! The inventory of an image: its distribution and packages, each with the layers that
//! introduced and changed it.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use strata_image::Image;
use strata_layer::{LayerIndex, MergeOptions, MergedIndex, MergedTree};
use strata_spec::Digest;

use crate::cache::{self, CacheStats};
use crate::catalog;
use crate::error::Result;
use crate::image_cache;
use crate::package::{Distro, Package};
use crate::root::{IndexRoot, Root, TreeRoot};

/// Something the inventory could not tell, said plainly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Warning {
    /// The image has an RPM database in a format strata does not read (Berkeley DB
    /// `Packages` of rpm before 4.16, or SUSE's NDB `Packages.db`): its RPM packages
    /// are missing from the inventory.
    UnreadableRpmDb {
        /// The database's path.
        path: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::UnreadableRpmDb { path } => write!(
                f,
                "/{path}: an RPM database in Berkeley DB or NDB format, which strata cannot read \
                 (only rpm's SQLite rpmdb.sqlite); RPM packages are not listed"
            ),
        }
    }
}

/// One layer of the image, as the inventory names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// The layer blob's digest.
    pub digest: String,
    /// Its diff_id.
    pub diff_id: String,
    /// The history entry that made it, when the config has one.
    pub created_by: Option<String>,
}

/// What [`Inventory::of_image`] does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Find the layer that introduced each package by reading every layer's headers
    /// once more (a package upgraded by a later layer is then said to be introduced
    /// where it first appeared, and changed by the upgrade). Without it, layers come
    /// from the final tree alone: the first layer that still holds one of its files is
    /// called the introducing one. On by default; single-layer images never need it.
    pub layer_history: bool,
    /// Use the store's per-layer scan cache: a layer whose record is there and sound is
    /// not read, and a layer read has its record written (when the store keeps
    /// records). On by default; off, every layer is read and nothing is written.
    pub cache: bool,
    /// With [`ScanOptions::cache`], also keep the whole inventory of each image scanned
    /// in the store, named by its manifest digest, and take it from there next time:
    /// then neither a layer nor a layer's record is read, nor the layers folded. On by
    /// default; off, the inventory is made from the layers' records (what a new image
    /// made of known layers costs) and the image's is neither read nor written.
    pub image_cache: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { layer_history: true, cache: true, image_cache: true }
    }
}

impl ScanOptions {
    /// Set [`ScanOptions::cache`].
    pub fn cache(mut self, on: bool) -> Self {
        self.cache = on;
        self
    }

    /// Set [`ScanOptions::image_cache`].
    pub fn image_cache(mut self, on: bool) -> Self {
        self.image_cache = on;
        self
    }

    /// Set [`ScanOptions::layer_history`].
    pub fn layer_history(mut self, on: bool) -> Self {
        self.layer_history = on;
        self
    }
}

/// Everything installed in an image.
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The image's name, when it was opened by one.
    pub image: Option<String>,
    /// The image's manifest digest.
    pub digest: Option<String>,
    /// The distribution, from os-release.
    pub distro: Option<Distro>,
    /// The layers, base first (what [`Package::layer`] indexes).
    pub layers: Vec<LayerRef>,
    /// The packages, sorted by kind, name, version, architecture and location.
    pub packages: Vec<Package>,
    /// What could not be read.
    pub warnings: Vec<Warning>,
    /// The digest of this inventory's JSON (`serde_json`, compact), from which the SBOMs'
    /// unique identifiers are derived, when a scan already knows it: set by
    /// [`Inventory::of_image`] when it reads or writes the image's scan record, so that
    /// an SBOM need not write the inventory as JSON again to hash it. Not part of the
    /// JSON, nor compared by `==`. Set it to `None` after changing any other field (the
    /// SBOM writers then hash the inventory as it is).
    #[serde(skip)]
    pub content_id: Option<Digest>,
}

impl PartialEq for Inventory {
    /// The same contents ([`Inventory::content_id`], derived from them, is not compared).
    fn eq(&self, other: &Inventory) -> bool {
        let Inventory { image, digest, distro, layers, packages, warnings, content_id: _ } = self;
        (image, digest, distro, layers, packages, warnings)
            == (&other.image, &other.digest, &other.distro, &other.layers, &other.packages, &other.warnings)
    }
}

impl Inventory {
    /// The inventory of any [`Root`] (a merged view, a directory). Layers come from
    /// [`Root::layer`] of each package's files.
    pub fn of_root(root: &dyn Root) -> Result<Inventory> {
        let distro = catalog::distro(root)?;
        let found = catalog::all(root, distro.as_ref())?;
        let mut packages = found.packages;
        for p in &mut packages {
            // A cataloger that looked its files up already gave their layers.
            if p.layer.is_some() {
                continue;
            }
            let mut seen = BTreeSet::new();
            for f in p.files.iter().chain(p.record.as_deref()) {
                if let Some(l) = root.layer(f) {
                    seen.insert(l);
                }
            }
            if seen.is_empty() {
                // Only a shared database names it: that database's layer.
                seen.extend(root.layer(&p.location));
            }
            let mut it = seen.into_iter();
            p.layer = it.next();
            p.changed_in = it.collect();
        }
        let mut inv = Inventory {
            image: None,
            digest: None,
            distro,
            layers: Vec::new(),
            packages,
            warnings: found.warnings,
            content_id: None,
        };
        inv.sort();
        Ok(inv)
    }

    /// The inventory of an image, read from its merged tree (the layers' headers
    /// folded in memory, the package databases read from their layers; nothing is
    /// unpacked). Each layer is read once, or not at all when the store's scan cache
    /// has it (see [`ScanOptions::cache`]).
    pub fn of_image(image: &Image, opts: &ScanOptions) -> Result<Inventory> {
        Ok(Inventory::of_image_counted(image, opts)?.0)
    }

    /// [`Inventory::of_image`], with how many layers came from the cache.
    pub(crate) fn of_image_counted(image: &Image, opts: &ScanOptions) -> Result<(Inventory, CacheStats)> {
        let image_cache = opts.cache && opts.image_cache;
        if image_cache && let Some(inv) = image_cache::get(image, opts) {
            return Ok((inv, CacheStats { hits: image.layers().len(), misses: 0 }));
        }
        let records = if opts.cache { cache::records(image) } else { vec![None; image.layers().len()] };
        if records.iter().all(Option::is_some)
            && let Some(inv) = Inventory::from_records(image, opts, &records)?
        {
            let mut inv = inv;
            if image_cache {
                inv.content_id = image_cache::put(image, opts, &inv);
            }
            return Ok((inv, CacheStats { hits: image.layers().len(), misses: 0 }));
        }
        let (layers, stats) = cache::layers_from(image, opts.cache, records)?;
        let indexes: Vec<&LayerIndex> = layers.iter().map(|l| &l.index).collect();
        let names: Vec<String> = image.layers().iter().map(|d| d.digest.to_string()).collect();
        let tree = MergedTree::from_indexes(&indexes, &names, &MergeOptions::default())?;
        let cached: Vec<&HashMap<u64, Vec<u8>>> = layers.iter().map(|l| &l.files).collect();
        let root = TreeRoot { tree: &tree, image, cached: &cached };
        let inv = Inventory::of_root(&root)?;
        let entries = indexes.iter().map(|i| i.entries().map(|e| e.path));
        let mut inv = Inventory::finish(image, opts, inv, |packages| attribute_layers(entries, packages));
        if image_cache {
            inv.content_id = image_cache::put(image, opts, &inv);
        }
        Ok((inv, stats))
    }

    /// The inventory of `image` from its layers' scan records (`records`, one for every
    /// layer) without folding them ([`MergedIndex`]); `None` when a record fails a check
    /// or the layers' union is not plain enough for that, and the layers must be folded.
    fn from_records(
        image: &Image,
        opts: &ScanOptions,
        records: &[Option<strata_store::FileBytes>],
    ) -> Result<Option<Inventory>> {
        // Each record's checksum checked before anything is read from it, on this
        // thread: checking them on a second one while this one read them was 1-3%
        // slower on a 2-vCPU machine (the thread's start and the other core's page
        // mappings cost more than the 0.9 M instructions of the checksums).
        let mut indexes = Vec::with_capacity(records.len());
        let mut cached = Vec::with_capacity(records.len());
        let mut serialised = Vec::with_capacity(records.len());
        let mut wanted = Vec::with_capacity(records.len());
        for (bytes, diff_id) in records.iter().zip(&image.config().rootfs.diff_ids) {
            let Some(r) = bytes.as_deref().and_then(|b| cache::decode_ref(b, diff_id)) else {
                return Ok(None);
            };
            indexes.push(r.index);
            cached.push(r.files);
            serialised.push(r.index_bytes);
            wanted.push(r.wanted);
        }
        if indexes.len() != image.layers().len() {
            return Ok(None);
        }
        let Some(view) = MergedIndex::new(&indexes) else { return Ok(None) };
        let root = IndexRoot {
            view: &view,
            image,
            cached: &cached,
            wanted: &wanted,
            indexes: &serialised,
            tree: Default::default(),
        };
        let inv = Inventory::of_root(&root)?;
        // The layers writing each file, from the view's table (what `attribute_layers`
        // finds going through every layer's entries).
        let attribute = |packages: &mut [Package]| {
            for p in packages {
                let mut seen = BTreeSet::new();
                let mut last = None;
                for f in p.files.iter().chain(p.record.as_deref()) {
                    for l in view.writers(f.as_bytes()) {
                        // Mostly the layer of the file before.
                        if last != Some(l) {
                            seen.insert(l);
                            last = Some(l);
                        }
                    }
                }
                set_history(p, seen);
            }
        };
        Ok(Some(Inventory::finish(image, opts, inv, attribute)))
    }

    /// The image's part of an inventory made by [`Inventory::of_root`] on its final
    /// tree: its layers, name and digest, and (with [`ScanOptions::layer_history`]) each
    /// package's layers from the layers that wrote its files (`attribute`).
    fn finish(
        image: &Image,
        opts: &ScanOptions,
        mut inv: Inventory,
        attribute: impl FnOnce(&mut [Package]),
    ) -> Inventory {
        let mut history = image.config().history().iter().filter(|h| !h.is_empty_layer());
        inv.layers = image
            .layers()
            .iter()
            .zip(&image.config().rootfs.diff_ids)
            .map(|(d, id)| LayerRef {
                digest: d.digest.to_string(),
                diff_id: id.to_string(),
                created_by: history.next().and_then(|h| h.created_by.clone()),
            })
            .collect();
        inv.image = image.name().map(str::to_owned);
        inv.digest = Some(image.digest().to_string());
        if opts.layer_history && image.layers().len() > 1 {
            attribute(&mut inv.packages);
        }
        inv.sort();
        inv
    }

    fn sort(&mut self) {
        self.packages.sort_by(|a, b| {
            (a.kind, &a.name, &a.version, &a.arch, &a.location).cmp(&(
                b.kind,
                &b.name,
                &b.version,
                &b.arch,
                &b.location,
            ))
        });
    }
}

/// Go through every layer's entries (from its index) and note, for each package, the
/// layers that wrote (or whited out) one of its files or its own record: the first is
/// where it was introduced, the others changed it. A package that has neither (an entry
/// in a shared database, owning no file) keeps the layer the final tree gives it.
fn attribute_layers<'p, E: Iterator<Item = &'p [u8]>>(layers: impl Iterator<Item = E>, packages: &mut [Package]) {
    let mut owners: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, p) in packages.iter().enumerate() {
        for f in p.files.iter().chain(p.record.as_deref()) {
            owners.entry(f).or_default().push(i as u32);
        }
    }
    let mut seen: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); packages.len()];
    for (l, paths) in layers.enumerate() {
        for raw in paths {
            let Ok(path) = strata_layer::path::normalized(raw) else { continue };
            let Ok(path) = std::str::from_utf8(&path) else { continue };
            // A whiteout changes the file it deletes.
            let path = match path.rsplit_once('/') {
                Some((dir, base)) => match base.strip_prefix(".wh.") {
                    Some(b) => std::borrow::Cow::Owned(format!("{dir}/{b}")),
                    None => std::borrow::Cow::Borrowed(path),
                },
                None => path.strip_prefix(".wh.").map_or(std::borrow::Cow::Borrowed(path), |b| b.to_owned().into()),
            };
            if let Some(ps) = owners.get(path.as_ref()) {
                for &p in ps {
                    seen[p as usize].insert(l);
                }
            }
        }
    }
    for (p, s) in packages.iter_mut().zip(seen) {
        set_history(p, s);
    }
}

/// A package's layers from those that wrote its files or its record (`seen`): the first
/// introduced it, the others changed it. Unchanged when none did (an entry in a shared
/// database, owning no file, keeps the layer the final tree gives it).
fn set_history(p: &mut Package, seen: BTreeSet<usize>) {
    let mut it = seen.into_iter();
    if let Some(first) = it.next() {
        p.layer = Some(first);
        p.changed_in = it.collect();
    }
}
