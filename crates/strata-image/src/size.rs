//! Image and layer sizes as docker reports them.
//!
//! Docker's size of a layer is the sum of the sizes its tar entries declare (the bytes
//! of file content it holds; [`strata_layer::read::content_size`]), and an image's size
//! is the sum over its layers: neither depends on how the layers are compressed, so one
//! image shows one size in every store. strata records each layer's figure in a
//! [`LayerRecord`] when it writes, loads or pulls the layer, so listing images reads
//! records, never layers. A layer with no record (a layout another tool wrote) is read
//! once: its figure is recorded when the store already keeps records, and never written
//! into a layout strata has only read.

use std::io::BufReader;

use strata_layer::Decoder;
use strata_layer::read::{content_size, content_size_seeking};
use strata_spec::{Compression, Descriptor, Digest, HashingReader};
use strata_store::LayerRecord;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::store::Store;

/// Read buffer for measuring a compressed layer: large enough that the decoder is called
/// rarely, the size of the blob store's own buffer.
const MEASURE_BUFFER: usize = 256 * 1024;

/// Sizes.
impl Store {
    /// The size docker reports for the layer blob `desc` of an image whose config gives
    /// it `diff_id`: the recorded figure, or else the figure read from the layer (once:
    /// see the [module documentation](self)). A foreign layer the store does not have
    /// counts 0.
    pub fn layer_size(&self, desc: &Descriptor, diff_id: &Digest) -> Result<u64> {
        let backend = self.backend();
        if let Some(r) = backend.layer_record(&desc.digest)?
            && r.diff_id == *diff_id
        {
            return Ok(r.size);
        }
        if desc.media_type.is_foreign_layer() && !backend.contains(&desc.digest)? {
            return Ok(0);
        }
        let record = measure_layer(self, desc)?;
        if record.diff_id != *diff_id {
            return Err(Error::Layer(strata_layer::Error::DiffIdMismatch {
                layer: desc.digest.to_string(),
                expected: diff_id.clone(),
                actual: record.diff_id,
            }));
        }
        if backend.keeps_records() {
            // A cache: a store that cannot be written to (a read-only layout) just
            // measures again next time.
            let _ = backend.put_layer_record(&desc.digest, &record);
        }
        Ok(record.size)
    }
}

/// What a stored layer is: its `diff_id` and docker's size of it. A compressed layer is
/// decompressed and hashed in one pass; an uncompressed one is its own `diff_id`, and
/// only its headers are read (its data is seeked over).
pub(crate) fn measure_layer(store: &Store, desc: &Descriptor) -> Result<LayerRecord> {
    // The store's indexer gets the layer from this same read (a load's only one).
    if let Some(ix) = store.indexer_for(&desc.digest) {
        return crate::indexer::read_indexed(store, desc, None, ix);
    }
    let name = desc.digest.to_string();
    let compression = desc.media_type.layer_compression().unwrap_or(Compression::None);
    // Every byte is checked another way: the decompressed stream against the diff_id
    // (compressed), or the blob was verified when it was written (uncompressed, in a
    // store that verifies at rest; in one that does not, it is read whole and hashed).
    let reader = store.backend().open_descriptor(desc)?;
    if compression == Compression::None && !store.backend().verified_at_rest() {
        let size = content_size(reader, &name)?;
        return Ok(LayerRecord { diff_id: desc.digest.clone(), size });
    }
    let reader = reader.without_digest_check();
    if compression == Compression::None {
        let size = content_size_seeking(reader, &name)?;
        return Ok(LayerRecord { diff_id: desc.digest.clone(), size });
    }
    let mut hashing = HashingReader::new(Decoder::new(reader, Some(compression), &name)?);
    // `content_size` reads to the end of the stream, so every byte is hashed.
    let size = content_size(BufReader::with_capacity(MEASURE_BUFFER, &mut hashing), &name)?;
    Ok(LayerRecord { diff_id: hashing.finish().1, size })
}

/// Sizes.
impl Image {
    /// Docker's size of each layer, base first (`docker history` shows them).
    pub fn layer_sizes(&self) -> Result<Vec<u64>> {
        self.layers()
            .iter()
            .zip(&self.config().rootfs.diff_ids)
            .map(|(desc, diff_id)| self.store().layer_size(desc, diff_id))
            .collect()
    }

    /// The image's size as docker reports it (`docker images`, `docker image inspect`'s
    /// `Size`): the sum of its layers' sizes. The same image has the same size in every
    /// store, however its layers are compressed.
    pub fn size(&self) -> Result<u64> {
        Ok(self.layer_sizes()?.iter().sum())
    }

    /// Bytes of the image's layer blobs and config as stored (compressed or not).
    pub fn stored_size(&self) -> u64 {
        self.layers().iter().map(|l| l.size).sum::<u64>() + self.manifest().config.size
    }
}
