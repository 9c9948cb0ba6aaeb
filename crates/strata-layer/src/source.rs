//! One layer to read: its blob as stored, and what is known about it.

use std::io::Read;

use strata_spec::{Algorithm, Compression, Descriptor, Digest};

use crate::decompress::Decoder;
use crate::error::Result;
use crate::read::Limits;
use crate::stream::StreamOptions;

/// One layer to apply, fold or read: its blob as stored, and what is known about it.
#[derive(Debug)]
pub struct LayerSource<R> {
    /// The blob as stored (compressed or not).
    pub reader: R,
    /// The compression its media type declares; `None` to trust the magic bytes alone.
    pub compression: Option<Compression>,
    /// The expected digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Option<Digest>,
    /// A name for errors and the report: its digest, or its position in the manifest.
    pub name: String,
}

impl<R: Read> LayerSource<R> {
    /// A layer named `name` (used in every error about it) read from `reader`.
    pub fn new(name: impl Into<String>, reader: R) -> Self {
        LayerSource { reader, compression: None, diff_id: None, name: name.into() }
    }

    /// A layer described by a manifest's layer descriptor: named by its digest, its
    /// compression declared by its media type, its `diff_id` from the image config.
    pub fn from_descriptor(descriptor: &Descriptor, diff_id: Option<Digest>, reader: R) -> Self {
        LayerSource {
            reader,
            compression: descriptor.media_type.layer_compression(),
            diff_id,
            name: descriptor.digest.to_string(),
        }
    }

    /// Declare the compression (checked against the magic bytes).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Expect this `diff_id` (checked once the layer has streamed through).
    pub fn diff_id(mut self, diff_id: Digest) -> Self {
        self.diff_id = Some(diff_id);
        self
    }

    /// The decoder of this layer: when its `diff_id` is known, every byte of the tar is
    /// hashed against it, so gzip's CRC-32 is not computed as well (it is the slow
    /// thread's work).
    pub(crate) fn decoder(self) -> Result<(Decoder<R>, Option<Digest>)> {
        let dec = if self.diff_id.is_some() {
            Decoder::without_gzip_crc(self.reader, self.compression, &self.name)
        } else {
            Decoder::new(self.reader, self.compression, &self.name)
        }?;
        Ok((dec, self.diff_id))
    }
}

/// The stream options for a layer: hashed with its `diff_id`'s algorithm, bounded by
/// the limits.
pub(crate) fn stream_options(diff_id: Option<&Digest>, limits: &Limits) -> StreamOptions {
    StreamOptions::default()
        .digest(Some(diff_id.map_or(Algorithm::Sha256, Digest::algorithm)))
        .max_size(limits.max_layer_size)
}
