//! fsck of a store of images: the blob store's own checks, then, when asked, every layer
//! decompressed and compared with its `diff_id` as unpack compares it.

use std::collections::BTreeSet;
use std::io::{self, Read};

use strata_layer::Decoder;
use strata_spec::{Descriptor, Digest, Digester, ImageConfig, ManifestOrIndex};
use strata_store::{FsckOptions, FsckReport, MAX_DOCUMENT_SIZE, Problem, Referrer};

use crate::error::Result;
use crate::store::Store;

/// Bytes read from a decoder at a time: the decoder's own input buffer size.
const CHUNK: usize = 128 * 1024;

/// Checking.
impl Store {
    /// Check every blob and reference ([`FsckOptions::default`]: blobs re-hashed, no
    /// layer decompressed).
    pub fn fsck(&self) -> Result<FsckReport> {
        self.fsck_with(&FsckOptions::default())
    }

    /// Check the store as `options` say. Structure is always checked (every document
    /// parsed, layer counts against diff_ids, layer compression against media types);
    /// [`FsckOptions::deep`] also decompresses every layer of every image the index
    /// reaches and compares it with its diff_id ([`Problem::DiffIdMismatch`],
    /// [`Problem::BadLayer`]).
    pub fn fsck_with(&self, options: &FsckOptions) -> Result<FsckReport> {
        let mut report = self.backend().fsck_with(options)?;
        if options.deep {
            self.check_diff_ids(&mut report)?;
        }
        Ok(report)
    }

    /// Decompress each (layer, diff_id) pair of the images the index reaches, once.
    fn check_diff_ids(&self, report: &mut FsckReport) -> Result<()> {
        let backend = self.backend();
        let index = backend.index()?;
        let mut work: Vec<Descriptor> = index.manifests;
        let mut seen = BTreeSet::new();
        let mut checked = BTreeSet::new();
        while let Some(desc) = work.pop() {
            if !(desc.media_type.is_manifest() || desc.media_type.is_index()) || !seen.insert(desc.digest.clone()) {
                continue;
            }
            // What cannot be read was reported by the structural checks.
            let Ok(bytes) = backend.read_descriptor(&desc, MAX_DOCUMENT_SIZE) else { continue };
            let manifest = match ManifestOrIndex::from_slice_as(&bytes, &desc.media_type) {
                Ok(ManifestOrIndex::Manifest(m)) => m,
                Ok(ManifestOrIndex::Index(i)) => {
                    work.extend(i.manifests);
                    continue;
                }
                Err(_) => continue,
            };
            if !manifest.config.media_type.is_config() {
                continue;
            }
            let Ok(config) = backend
                .read_descriptor(&manifest.config, MAX_DOCUMENT_SIZE)
                .map_err(drop)
                .and_then(|b| ImageConfig::from_slice(&b).map_err(drop))
            else {
                continue;
            };
            let diff_ids = &config.rootfs.diff_ids;
            if diff_ids.len() != manifest.layers.len() {
                continue;
            }
            for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
                if !layer.media_type.is_layer() || !checked.insert((layer.digest.clone(), diff_id.clone())) {
                    continue;
                }
                let referrer = Referrer::Blob(desc.digest.clone());
                if let Some(problem) = check_layer(self, layer, diff_id, referrer) {
                    report.problems.push(problem);
                }
            }
        }
        Ok(())
    }
}

/// Decompress one layer blob and compare its digest with `diff_id`.
fn check_layer(store: &Store, layer: &Descriptor, diff_id: &Digest, referrer: Referrer) -> Option<Problem> {
    // Missing blobs, wrong sizes and corrupt bytes were reported by the other checks.
    let blob = store.backend().open_descriptor(layer).ok()?.without_digest_check();
    let bad = |error: String| Problem::BadLayer { digest: layer.digest.clone(), error, referrer: referrer.clone() };
    let mut decoder = match Decoder::new(blob, layer.media_type.layer_compression(), layer.digest.as_str()) {
        Ok(d) => d,
        // Reported by the structural check (the magic bytes).
        Err(strata_layer::Error::CompressionMismatch { .. }) => return None,
        Err(e) => return Some(bad(e.to_string())),
    };
    let mut hasher = Digester::new(diff_id.algorithm());
    let mut buf = vec![0u8; CHUNK];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(bad(e.to_string())),
        }
    }
    let actual = hasher.finish();
    (actual != *diff_id).then(|| Problem::DiffIdMismatch {
        digest: layer.digest.clone(),
        diff_id: diff_id.clone(),
        actual,
        referrer,
    })
}
