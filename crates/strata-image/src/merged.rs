//! The merged view of an image, without unpacking: list and read files, export the
//! flattened tree (`docker export`), flatten into one layer, and analyse how much of each
//! layer the final tree still uses (what `dive` shows).

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use strata_commit::{Base, CommitOptions};
use strata_layer::{
    Analysis, Changes, ExportOptions, ExportReport, FileReader, LayerInfo, LayerSource, LayerWriter, MergeOptions,
    MergedEntry, MergedTree, WriteOptions,
};
use strata_spec::{Compression, Descriptor, Digest, RootFs};
use strata_store::BlobReader;

use crate::error::Result;
use crate::image::Image;
use crate::resolve::new_tag;

/// An image's layers folded into one tree in memory (headers only; contents stay in the
/// layer blobs and are read back on demand).
pub struct MergedView {
    image: Image,
    tree: MergedTree,
}

impl std::fmt::Debug for MergedView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergedView").field("image", &self.image).field("paths", &self.tree.len()).finish()
    }
}

/// One layer of [`Image::analyze`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerAnalysis {
    /// The layer blob's digest.
    pub digest: Digest,
    /// Its diff_id.
    pub diff_id: Digest,
    /// Blob size as stored.
    pub size: u64,
    /// Uncompressed tar size.
    pub uncompressed_size: u64,
    /// Regular files it adds.
    pub files: u64,
    /// Whiteouts and opaque markers.
    pub whiteouts: u64,
    /// Content bytes it adds.
    pub bytes_added: u64,
    /// Of those, bytes of files a later layer (or a later entry of the same layer)
    /// deletes or overwrites: carried by the image, invisible in the container.
    pub bytes_wasted: u64,
    /// The history entry that made it.
    pub created_by: String,
    /// Paths it creates that the layers below did not have.
    pub paths_added: u64,
    /// Paths it writes over what the layers below had.
    pub paths_modified: u64,
    /// Paths of the layers below its whiteouts remove.
    pub paths_removed: u64,
    /// The layer's tar has no entries (a `WORKDIR` or `RUN` that changed nothing, as
    /// some builders still write).
    pub empty: bool,
}

/// A path of [`ImageAnalysis::wasted_files`]: content some layer wrote that a later
/// entry deleted or overwrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WastedPath {
    /// The path, from the root (`/etc/app.conf`).
    pub path: String,
    /// Content bytes of the copies the final tree does not have.
    pub bytes_wasted: u64,
    /// Times a regular file was written at this path (the final copy included).
    pub writes: u32,
    /// The layers (indexes, base first) that wrote the copies that were lost.
    pub layers: Vec<usize>,
}

/// [`Image::analyze`]: per layer, and for the whole image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageAnalysis {
    /// Each layer, base first.
    pub layers: Vec<LayerAnalysis>,
    /// Sum of layer blob sizes.
    pub size: u64,
    /// Content bytes all layers add.
    pub bytes_added: u64,
    /// Content bytes wasted.
    pub bytes_wasted: u64,
    /// `1 - bytes_wasted / bytes_added`: the share of what the layers carry that the
    /// final tree uses (1.0 when nothing is wasted).
    pub efficiency: f64,
    /// Paths in the final tree.
    pub paths: u64,
    /// Regular files in the final tree.
    pub files: u64,
    /// Content bytes the layers above the base add.
    pub user_bytes_added: u64,
    /// `bytes_wasted / user_bytes_added`, as dive computes its `userWastedPercent` (a
    /// fraction, 0.1 is 10%): 0 when nothing is wasted, infinite (`null` in JSON) when
    /// bytes are wasted and the layers above the base add none.
    pub user_wasted_percent: f64,
    /// The wasted files by path, the most bytes first.
    pub wasted_files: Vec<WastedPath>,
}

impl Image {
    fn open_layer(&self, i: usize) -> io::Result<BlobReader> {
        let desc = self.layers().get(i).ok_or_else(|| io::Error::other(format!("no layer {i}")))?;
        self.store().backend().open_descriptor(desc).map_err(io::Error::other)
    }

    /// Fold the layers into the merged view (each layer decompressed once, its
    /// `diff_id` verified; memory grows with the number of paths, not bytes).
    pub fn merged(&self) -> Result<MergedView> {
        self.merged_with(&MergeOptions::default())
    }

    fn merged_with(&self, opts: &MergeOptions) -> Result<MergedView> {
        let backend = self.store().backend();
        let mut sources = Vec::new();
        for (desc, diff_id) in self.layers().iter().zip(&self.config().rootfs.diff_ids) {
            sources.push(LayerSource::from_descriptor(desc, Some(diff_id.clone()), backend.open_descriptor(desc)?));
        }
        let tree = MergedTree::build(sources, opts)?;
        Ok(MergedView { image: self.clone(), tree })
    }

    /// Write the flattened filesystem as one plain tar, like `docker export`.
    pub fn export<W: Write>(&self, out: W) -> Result<(LayerInfo, ExportReport)> {
        self.merged()?.export(out, &WriteOptions::default().compression(Compression::None))
    }

    /// A new image with one layer holding this image's merged tree: history entries are
    /// kept (marked `empty_layer`) and one entry for the flattened layer is added;
    /// config and platform are kept.
    pub fn flatten(&self, opts: &CommitOptions) -> Result<Image> {
        let mut opts = opts.clone();
        if let Some(t) = &opts.tag {
            opts.tag = Some(new_tag(t)?);
        }
        let view = self.merged()?;
        let store = self.store().backend();
        let _lease = store.lease()?;
        let info = strata_commit::store_layer(store, |blob| Ok::<_, crate::Error>(view.export(blob, &opts.write)?.0))?;

        let mut config = self.config().clone();
        config.rootfs = RootFs { diff_ids: Vec::new(), ..config.rootfs };
        if let Some(h) = config.history.as_mut() {
            for e in h.iter_mut() {
                e.empty_layer = Some(true);
            }
        }
        let mut manifest = self.manifest().clone();
        manifest.layers = Vec::new();
        let base =
            Base { descriptor: self.descriptor().clone(), manifest, config, name: self.name().map(str::to_owned) };
        if opts.created_by.is_none() {
            opts.created_by = Some(format!("strata flatten ({} layers)", self.layers().len()));
        }
        let done = strata_commit::finish(store, Some(&base), Some(info), &opts)?;
        let img = self.store().image_at(&done.manifest, &self.config().platform())?;
        Ok(img.with_name(done.tag))
    }

    /// Per-layer sizes, file counts and wasted bytes, and the image's efficiency.
    pub fn analyze(&self) -> Result<ImageAnalysis> {
        Ok(self.analysis_of(&self.merged()?))
    }

    /// [`Image::analyze`], and what each layer changes (the paths it adds, modifies and
    /// removes, with their metadata: [`MergedTree::layer_changes`]), from one read of
    /// the layers: what an explorer of the layers (`strata dive`) shows.
    pub fn analyze_changes(&self) -> Result<(ImageAnalysis, Vec<Changes>)> {
        let view = self.merged_with(&MergeOptions::default().changes(true))?;
        Ok((self.analysis_of(&view), view.tree.layer_changes().to_vec()))
    }

    fn analysis_of(&self, view: &MergedView) -> ImageAnalysis {
        let a: Analysis = view.tree.analysis();
        let mut created_by = self.config().history().iter().filter(|h| !h.is_empty_layer());
        let layers = view
            .tree
            .layers()
            .iter()
            .zip(self.layers())
            .map(|(s, d): (_, &Descriptor)| LayerAnalysis {
                digest: d.digest.clone(),
                diff_id: s.diff_id.clone(),
                size: d.size,
                uncompressed_size: s.uncompressed_size,
                files: s.files,
                whiteouts: s.whiteouts,
                bytes_added: s.bytes_added,
                bytes_wasted: s.bytes_wasted,
                created_by: created_by.next().and_then(|h| h.created_by.clone()).unwrap_or_default(),
                paths_added: s.paths_added,
                paths_modified: s.paths_modified,
                paths_removed: s.paths_removed,
                empty: s.entries == 0,
            })
            .collect();
        let user_bytes_added: u64 = view.tree.layers().iter().skip(1).map(|l| l.bytes_added).sum();
        let user_wasted_percent = match (a.bytes_wasted, user_bytes_added) {
            (0, _) => 0.0,
            (_, 0) => f64::INFINITY,
            (w, u) => w as f64 / u as f64,
        };
        let wasted_files = view
            .tree
            .wasted_files()
            .into_iter()
            .map(|w| WastedPath {
                path: format!("/{}", w.path.display()),
                bytes_wasted: w.bytes_wasted,
                writes: w.writes,
                layers: w.layers,
            })
            .collect();
        ImageAnalysis {
            layers,
            size: self.layers().iter().map(|l| l.size).sum(),
            bytes_added: a.bytes_added,
            bytes_wasted: a.bytes_wasted,
            efficiency: a.efficiency,
            paths: a.paths,
            files: a.files,
            user_bytes_added,
            user_wasted_percent,
            wasted_files,
        }
    }
}

impl MergedView {
    /// The image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The folded tree.
    pub fn tree(&self) -> &MergedTree {
        &self.tree
    }

    /// `lstat` of a path in the final tree.
    pub fn stat(&self, path: impl AsRef<Path>) -> Result<MergedEntry> {
        Ok(self.tree.stat(path)?)
    }

    /// The children of a directory, sorted by name.
    pub fn list(&self, dir: impl AsRef<Path>) -> Result<Vec<MergedEntry>> {
        Ok(self.tree.list(dir)?)
    }

    /// A reader of one file's content (symlinks and hard links followed inside the tree).
    pub fn read_file(&self, path: impl AsRef<Path>) -> Result<FileReader<'static>> {
        let image = self.image.clone();
        Ok(self.tree.read_file(path, move |i| image.open_layer(i))?)
    }

    /// Write the merged tree as one layer (plain tar with `Compression::None`), in one
    /// pass that also gives its diff_id and digest.
    pub fn export<W: Write>(&self, out: W, opts: &WriteOptions) -> Result<(LayerInfo, ExportReport)> {
        let mut w = LayerWriter::new(out, opts)?;
        let report = self.tree.export_to(&mut w, |i| self.image.open_layer(i), &ExportOptions::default())?;
        Ok((w.finish()?.0, report))
    }
}
