//! Image summaries: what `images` and the parent search need of an image (its id,
//! creation time, sizes, and fingerprints of its history and diff_ids), kept in one
//! cache beside the index ([`Backend::cache`](strata_store::Backend::cache)), so that
//! neither opens every image of a big store (two blob reads and a config parse each).
//!
//! A summary is named by the media type and digest of the manifest it describes. The
//! manifest names its config and layers by digest, and an image's size comes from its
//! layers' records (named by digest too), so what a summary says stays true for as long
//! as the manifest exists: a summary is never stale. What can change is whether the
//! blobs are still there, so a user of a kept summary checks that its manifest and
//! config blobs exist before trusting it (a damaged blob is `fsck`'s business, as it is
//! for the layer records). Only summaries of images that opened and measured without
//! error, with no foreign layer (whose size depends on whether its blob is present), and
//! reached through a manifest (not picked from an index for a platform) are kept.
//!
//! The cache is rewritten, holding the summaries of the index's current targets only,
//! when a lookup had to open an image it did not have; a cache that does not decode is
//! ignored (and replaced by the next such lookup).

use std::collections::HashMap;

use strata_spec::{Descriptor, Digest, ImageConfig, MediaType, Platform};
use strata_store::codec::{Reader, put_str, put_u64};

use crate::error::Result;
use crate::image::Image;
use crate::store::Store;

/// The cache's name in the store.
const CACHE_NAME: &str = "image-summaries";
/// First bytes of the cache's body, with its format version.
const FORMAT: &[u8] = b"summaries 1\n";

/// 128 bits of a SHA-256, as hex: one step of a fingerprint chain.
type Fp = [u8; 32];

/// Fingerprints of an image's history and diff_ids, one per prefix: entry `k` stands for
/// the first `k + 1` items (a chained hash of their canonical JSON), so whether one image
/// is built on another ([`ImageConfig::is_child_of`]) is two comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lineage {
    history: Vec<Fp>,
    diff_ids: Vec<Fp>,
}

impl Lineage {
    pub(crate) fn of(config: &ImageConfig) -> Lineage {
        Lineage { history: chain(config.history()), diff_ids: chain(&config.rootfs.diff_ids) }
    }

    /// How many history entries the image has.
    pub(crate) fn history_len(&self) -> usize {
        self.history.len()
    }

    /// [`ImageConfig::is_child_of`] on the fingerprints: `parent` has a history, a
    /// shorter one than this image, and both its history and its diff_ids start this
    /// image's.
    pub(crate) fn is_child_of(&self, parent: &Lineage) -> bool {
        let (n, m) = (parent.history.len(), parent.diff_ids.len());
        n > 0
            && n < self.history.len()
            && self.history[n - 1] == parent.history[n - 1]
            && m <= self.diff_ids.len()
            && (m == 0 || self.diff_ids[m - 1] == parent.diff_ids[m - 1])
    }
}

fn chain<T: serde::Serialize>(items: &[T]) -> Vec<Fp> {
    let mut prev: Fp = [b'0'; 32];
    items
        .iter()
        .map(|item| {
            // Canonical JSON: equal values, equal bytes (whatever order their keys came in).
            let mut bytes = prev.to_vec();
            bytes.extend_from_slice(&strata_spec::to_canonical_json(item).unwrap_or_default());
            let d = Digest::sha256_of(&bytes);
            let mut fp = [0; 32];
            fp.copy_from_slice(&d.hex().as_bytes()[..32]);
            prev = fp;
            fp
        })
        .collect()
}

/// What listing and the parent search need of one image.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    /// The manifest's digest.
    pub(crate) manifest: Digest,
    /// The image id (config digest).
    pub(crate) id: Digest,
    pub(crate) created: Option<String>,
    /// [`Image::stored_size`].
    pub(crate) stored_size: u64,
    /// [`Image::size`], or why it could not be worked out.
    pub(crate) size: std::result::Result<u64, String>,
    pub(crate) lineage: Lineage,
    /// Whether it may be kept (see the module doc).
    keep: bool,
}

impl Summary {
    pub(crate) fn of(img: &Image) -> Summary {
        let size = img.size().map_err(|e| e.to_string());
        let keep = size.is_ok()
            && img.tag_target().media_type.is_manifest()
            && img.tag_target().digest == img.descriptor().digest
            && !img.layers().iter().any(|l| l.media_type.is_foreign_layer());
        Summary {
            manifest: img.descriptor().digest.clone(),
            id: img.id().clone(),
            created: img.config().created.clone(),
            stored_size: img.stored_size(),
            size,
            lineage: Lineage::of(img.config()),
            keep,
        }
    }
}

/// The summaries of a store's images: those kept in its cache, and those worked out
/// since it was read.
pub(crate) struct Summaries {
    store: Store,
    /// By (media type, digest) of the manifest.
    known: HashMap<(String, Digest), Summary>,
    /// Whether a summary was worked out that the cache did not have.
    added: bool,
}

/// Whether a kept summary's blobs are to be checked before it is used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Now, for each summary looked up.
    Blobs,
    /// Later, by the caller, on the few summaries it uses ([`Summaries::blobs_exist`]).
    Later,
}

impl Summaries {
    /// The summaries kept in `store`'s cache (none when it is missing or damaged).
    pub(crate) fn load(store: &Store) -> Summaries {
        let known = store.backend().cache(CACHE_NAME).and_then(|b| decode(&b)).unwrap_or_default();
        Summaries { store: store.clone(), known, added: false }
    }

    /// The summary of the image `desc` (an entry of the index) points at, for
    /// `platform`: the kept one when there is one (see [`Check`]), else worked out by
    /// opening the image.
    pub(crate) fn get(&mut self, desc: &Descriptor, platform: &Platform, check: Check) -> Result<Summary> {
        let key = (desc.media_type.to_string(), desc.digest.clone());
        if desc.media_type.is_manifest()
            && let Some(s) = self.known.get(&key)
            && (check == Check::Later || self.blobs_exist(s))
        {
            return Ok(s.clone());
        }
        let img = Image::open(self.store.clone(), desc.clone(), None, platform)?;
        let s = Summary::of(&img);
        if s.keep {
            self.known.insert(key, s.clone());
            self.added = true;
        }
        Ok(s)
    }

    /// Whether the manifest and config blobs of `s` are in the store.
    pub(crate) fn blobs_exist(&self, s: &Summary) -> bool {
        let b = self.store.backend();
        b.contains(&s.manifest).unwrap_or(false) && b.contains(&s.id).unwrap_or(false)
    }

    /// Keep the summaries of `targets` (the index's distinct targets) in the store's
    /// cache, when one was worked out that it did not have.
    pub(crate) fn save<'a>(&self, targets: impl IntoIterator<Item = &'a Descriptor>) {
        if !self.added {
            return;
        }
        let mut out: Vec<(&(String, Digest), &Summary)> = Vec::new();
        for d in targets {
            if let Some((k, s)) = self.known.get_key_value(&(d.media_type.to_string(), d.digest.clone())) {
                out.push((k, s));
            }
        }
        out.sort_by(|a, b| a.0.cmp(b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        self.store.backend().put_cache(CACHE_NAME, &encode(&out));
    }
}

fn encode(summaries: &[(&(String, Digest), &Summary)]) -> Vec<u8> {
    let mut o = Vec::with_capacity(64 + summaries.len() * 512);
    o.extend_from_slice(FORMAT);
    put_u64(&mut o, summaries.len() as u64);
    for ((media_type, _), s) in summaries {
        put_str(&mut o, media_type);
        put_str(&mut o, s.manifest.as_str());
        put_str(&mut o, s.id.as_str());
        match &s.created {
            Some(c) => {
                o.push(1);
                put_str(&mut o, c);
            }
            None => o.push(0),
        }
        put_u64(&mut o, s.stored_size);
        put_u64(&mut o, *s.size.as_ref().unwrap_or(&0));
        for fps in [&s.lineage.history, &s.lineage.diff_ids] {
            put_u64(&mut o, fps.len() as u64);
            for fp in fps {
                o.extend_from_slice(fp);
            }
        }
    }
    o
}

fn decode(bytes: &[u8]) -> Option<HashMap<(String, Digest), Summary>> {
    let mut r = Reader::new(bytes.strip_prefix(FORMAT)?);
    let n = usize::try_from(r.u64()?).ok()?;
    let mut out = HashMap::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let media_type = r.str()?.to_owned();
        let manifest = Digest::parse(r.str()?).ok()?;
        let id = Digest::parse(r.str()?).ok()?;
        let created = match r.take(1)?[0] {
            0 => None,
            1 => Some(r.str()?.to_owned()),
            _ => return None,
        };
        let stored_size = r.u64()?;
        let size = r.u64()?;
        let mut fps = [Vec::new(), Vec::new()];
        for list in &mut fps {
            let k = usize::try_from(r.u64()?).ok()?;
            if k > r.remaining() / 32 {
                return None;
            }
            for _ in 0..k {
                list.push(r.take(32)?.try_into().ok()?);
            }
        }
        let [history, diff_ids] = fps;
        if !MediaType::from(media_type.as_str()).is_manifest() {
            return None;
        }
        let s = Summary {
            manifest: manifest.clone(),
            id,
            created,
            stored_size,
            size: Ok(size),
            lineage: Lineage { history, diff_ids },
            keep: true,
        };
        out.insert((media_type, manifest), s);
    }
    (r.remaining() == 0).then_some(out)
}
