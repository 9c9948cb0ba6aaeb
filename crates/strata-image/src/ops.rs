//! Images made from other images: import (`docker import`), append a layer
//! (`crane append`, `umoci insert`), change the config (`umoci config`).

use std::io::Read;
use std::path::Path;

use strata_commit::{Base, CommitOptions, Committed, Source};
use strata_layer::{Decoder, LayerBuilder};
use strata_spec::Platform;

use crate::error::Result;
use crate::image::Image;
use crate::merged::MergedView;
use crate::resolve::new_tag;
use crate::store::Store;

/// A layer's content, as given by a user.
pub enum LayerInput<'a> {
    /// A directory: every entry under it becomes an entry of the layer.
    Dir(&'a Path),
    /// A tar stream, plain or gzip/zstd-compressed; its entries are kept as they are
    /// (whiteouts in it act as whiteouts).
    Tar(&'a mut dyn Read),
    /// Files, directories, links and whiteouts given in memory, in any order.
    Files(&'a LayerBuilder),
}

impl std::fmt::Debug for LayerInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerInput::Dir(p) => write!(f, "Dir({})", p.display()),
            LayerInput::Tar(_) => f.write_str("Tar"),
            LayerInput::Files(b) => write!(f, "Files({} entries)", b.len()),
        }
    }
}

fn normalized(opts: &CommitOptions, default_created_by: &str) -> Result<CommitOptions> {
    let mut opts = opts.clone();
    if let Some(t) = &opts.tag {
        opts.tag = Some(new_tag(t)?);
    }
    if opts.created_by.is_none() {
        // Like strata-commit's own default: the command, then the config changes it made.
        let mut created_by = default_created_by.to_owned();
        for c in &opts.changes {
            created_by.push_str(&format!(" --change '{c}'"));
        }
        opts.created_by = Some(created_by);
    }
    Ok(opts)
}

fn commit_input(store: &Store, base: Option<&Base>, input: LayerInput<'_>, opts: &CommitOptions) -> Result<Image> {
    let done = match input {
        LayerInput::Dir(root) => strata_commit::commit(store.backend(), base, Source::Tree { root }, opts)?,
        LayerInput::Files(files) => strata_commit::commit(store.backend(), base, Source::Files(files), opts)?,
        LayerInput::Tar(reader) => {
            let mut plain = Decoder::new(reader, None, "input")?;
            // Checked on top of the base's layers, as unpacking will apply it.
            let lower = match base {
                Some(b) => Some(store.image_at(&b.descriptor, &b.config.platform())?.merged()?),
                None => None,
            };
            let lower = lower.as_ref().map(MergedView::tree);
            strata_commit::commit(store.backend(), base, Source::Tar { reader: &mut plain, lower }, opts)?
        }
    };
    let platform = done.config.platform();
    let img = store.image_at(&done.manifest, &platform)?;
    store.index_layers(&img)?;
    Ok(img.with_name(done.tag))
}

impl Store {
    /// Commit `source` on top of `base` (`None`: an image from scratch) and return what
    /// was written: the step that `docker commit`, [`Image::append`], [`Store::import`]
    /// and a Dockerfile build's every instruction are made of. `opts` are taken as
    /// given (no default `created_by`, tag or platform is filled in); the blobs go in
    /// layer, config, manifest order, then the tag, so a crash leaves no tag pointing
    /// at something missing.
    ///
    /// A layer written beforehand with [`Store::write_layer`] is committed with
    /// [`Source::Layer`]; hold a [`Store::lease`] across both so that a concurrent
    /// `gc` cannot take the layer in between.
    pub fn commit(&self, base: Option<&Image>, source: Source<'_>, opts: &CommitOptions) -> Result<Committed> {
        let base = base.map(Image::as_base);
        Ok(strata_commit::commit(self.backend(), base.as_ref(), source, opts)?)
    }

    /// Write one layer blob into the store: `write` gets the blob writer to wrap in a
    /// [`strata_layer::LayerWriter`] (or to hand to [`LayerBuilder::write`]) and returns
    /// the writer's [`LayerInfo`](strata_layer::LayerInfo); the blob is committed under
    /// the digest it reports and its `diff_id` recorded, so listing images never reads
    /// it. The layer is not referenced by any image until [`Store::commit`] with
    /// [`Source::Layer`].
    pub fn write_layer<E>(
        &self,
        write: impl FnOnce(&mut strata_store::BlobWriter) -> std::result::Result<strata_layer::LayerInfo, E>,
    ) -> std::result::Result<strata_layer::LayerInfo, E>
    where
        E: From<strata_store::Error>,
    {
        strata_commit::store_layer(self.backend(), write)
    }

    /// Keep every blob written from now until the lease is dropped out of `gc`'s reach,
    /// even before an image references it (a build between its steps).
    pub fn lease(&self) -> Result<strata_store::Lease> {
        Ok(self.backend().lease()?)
    }

    /// Create a one-layer image from a directory or a tar, like `docker import`. The
    /// platform is `opts.platform` (default: this machine's).
    pub fn import(&self, input: LayerInput<'_>, opts: &CommitOptions) -> Result<Image> {
        let what = match &input {
            LayerInput::Dir(p) => format!("strata import {}", p.display()),
            LayerInput::Tar(_) => "strata import (tar)".to_owned(),
            LayerInput::Files(_) => "strata import (files)".to_owned(),
        };
        let mut opts = normalized(opts, &what)?;
        if opts.platform.is_none() {
            opts.platform = Some(Platform::host());
        }
        commit_input(self, None, input, &opts)
    }
}

impl Image {
    /// The base for a commit on top of this image.
    pub fn as_base(&self) -> Base {
        Base {
            descriptor: self.descriptor().clone(),
            manifest: self.manifest().clone(),
            config: self.config().clone(),
            name: self.name().map(str::to_owned),
        }
    }

    /// A new image: this one plus a layer made from a directory or a tar, like
    /// `crane append` / `umoci insert`.
    pub fn append(&self, input: LayerInput<'_>, opts: &CommitOptions) -> Result<Image> {
        let opts = normalized(opts, "strata append")?;
        commit_input(self.store(), Some(&self.as_base()), input, &opts)
    }

    /// A new image with only config changes (`opts.changes`, author, message): an
    /// `empty_layer` history entry records them, like `umoci config`.
    pub fn with_config(&self, opts: &CommitOptions) -> Result<Image> {
        let opts = normalized(opts, "strata config")?;
        let done = strata_commit::commit(self.store().backend(), Some(&self.as_base()), Source::ConfigOnly, &opts)?;
        let img = self.store().image_at(&done.manifest, &self.config().platform())?;
        Ok(img.with_name(done.tag))
    }
}
