//! Layer indexers: work done on a layer while it is read anyway, so that it is never
//! read again for it.
//!
//! A store reads a layer it takes in once: `load` to check its `diff_id` and measure it
//! ([`Store::layer_size`]), and `pull` and `commit` take it in without reading it. A
//! [`LayerIndexer`] set on the store ([`Store::with_indexer`]) is handed the index of
//! each such layer (its headers, and the content of the files it asks for) from that one
//! read: strata-scan's scan cache is filled this way, so that the first scan after a
//! `load`, `pull` or `commit` reads no layer blob. After a pull or a commit the new
//! layers are read once for it (and their size recorded on the way), which a store
//! without an indexer skips.

use std::io::BufReader;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_layer::{IndexedLayer, LayerIndex, LayerSource, Limits};
use strata_spec::{Descriptor, Digest};
use strata_store::LayerRecord;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::store::Store;

/// Read buffer for indexing a layer blob (the blob store's own buffer size).
const INDEX_BUFFER: usize = 256 * 1024;

/// Work a store does on each layer it takes in (see the [module documentation](self)).
pub trait LayerIndexer: Send + Sync {
    /// Whether the layer blob `layer` of `store` still needs indexing (false when what
    /// the indexer keeps about it is already there).
    fn wants(&self, store: &Store, layer: &Digest) -> bool;
    /// Whether to keep the content of the regular file named `path` (as stored in the
    /// tar) of `size` bytes.
    fn keep(&self, path: &[u8], size: u64) -> bool;
    /// The largest file kept; larger ones are not handed over.
    fn max_file(&self) -> u64;
    /// The layer `layer`, read and its `diff_id` checked. Failing to keep what it
    /// wants is the indexer's own business: the store's operation goes on.
    fn indexed(&self, store: &Store, layer: &Descriptor, read: IndexedLayer);
}

/// Indexing.
impl Store {
    /// This store with `indexer` handed each layer the store takes in (see the
    /// [module documentation](self)).
    pub fn with_indexer(mut self, indexer: std::sync::Arc<dyn LayerIndexer>) -> Store {
        self.indexer = Some(indexer);
        self
    }

    /// The indexer set with [`Store::with_indexer`], when it wants `layer`.
    pub(crate) fn indexer_for(&self, layer: &Digest) -> Option<&dyn LayerIndexer> {
        let ix = self.indexer.as_deref()?;
        (self.backend().keeps_records() && ix.wants(self, layer)).then_some(ix)
    }

    /// Hand every layer of `image` that the store's indexer still wants to it, reading
    /// each once (on up to one thread per core), and record the size of each layer read
    /// that has no [`LayerRecord`] yet. Nothing is read without an indexer, or when the
    /// store keeps no records. A layer whose `diff_id` is not the config's is an error.
    pub fn index_layers(&self, image: &Image) -> Result<()> {
        let pairs: Vec<(&Descriptor, &Digest)> = image
            .layers()
            .iter()
            .zip(&image.config().rootfs.diff_ids)
            .filter(|(d, _)| self.indexer_for(&d.digest).is_some())
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(pairs.len());
        let next = AtomicUsize::new(0);
        let failed: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while let Some((desc, diff_id)) = pairs.get(next.fetch_add(1, Ordering::SeqCst)) {
                        if let Err(e) = self.index_layer(desc, diff_id) {
                            failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(e);
                            next.store(pairs.len(), Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        match failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Index one layer (see [`Store::index_layers`]).
    fn index_layer(&self, desc: &Descriptor, diff_id: &Digest) -> Result<()> {
        let Some(ix) = self.indexer_for(&desc.digest) else { return Ok(()) };
        let record = read_indexed(self, desc, Some(diff_id), ix)?;
        let backend = self.backend();
        if backend.layer_record(&desc.digest)?.is_none_or(|r| r != record) {
            // A cache: one that cannot be written costs a later listing a read.
            let _ = backend.put_layer_record(&desc.digest, &record);
        }
        Ok(())
    }
}

/// Read the layer `desc` once: its index (handed to `ix`) and its [`LayerRecord`]; its
/// `diff_id` is checked against `diff_id` when given.
pub(crate) fn read_indexed(
    store: &Store,
    desc: &Descriptor,
    diff_id: Option<&Digest>,
    ix: &dyn LayerIndexer,
) -> Result<LayerRecord> {
    let blob = store.backend().open_descriptor(desc)?;
    let src = LayerSource::from_descriptor(desc, diff_id.cloned(), BufReader::with_capacity(INDEX_BUFFER, blob));
    let mut keep = |path: &[u8], size: u64| ix.keep(path, size);
    let read = LayerIndex::read(src, &Limits::default(), ix.max_file(), &mut keep)?;
    let record = LayerRecord { diff_id: read.index.diff_id().clone(), size: read.index.content_size() };
    ix.indexed(store, desc, read);
    Ok(record)
}
