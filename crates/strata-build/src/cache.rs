//! The build cache: the image each step made, found again by a key over what the step
//! depends on, kept in the store's own index so that GC keeps it alive.
//!
//! A cache entry is an untagged `index.json` entry pointing at the step's image
//! manifest, annotated with [`ANNOTATION_BUILD_CACHE`] (the key, hex) and
//! [`ANNOTATION_CACHE_USED`] (when it was last made or used, Unix seconds). `strata
//! images` does not list such entries; GC keeps everything they reach, like any index
//! entry. The cache is bounded: past [`DEFAULT_CACHE_LIMIT`] entries (or the limit
//! given), the least recently used go first, like `docker builder prune`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_image::Store;
use strata_spec::{Descriptor, Digest};

pub use strata_image::ANNOTATION_BUILD_CACHE;

use crate::error::Result;

/// When a cache entry was last made or used, in Unix seconds.
pub const ANNOTATION_CACHE_USED: &str = "io.strata.build.cache-used";
/// Cache entries kept after a build, the least recently used dropped first: about one
/// hundred 10-step builds.
pub const DEFAULT_CACHE_LIMIT: usize = 1000;
/// Version of the key derivation: a change to what goes into keys changes this.
const KEY_VERSION: &str = "strata-build cache v1";

/// The key of a step: the parent image (its config digest, or `scratch` and the
/// platform), what the step does (its history `created_by`, or a text standing for it),
/// and the runtime config it leaves.
pub(crate) fn key(parent: &str, step: &str, config_json: &[u8], extra: &str) -> String {
    let mut text = Vec::new();
    for part in [KEY_VERSION.as_bytes(), parent.as_bytes(), step.as_bytes(), config_json, extra.as_bytes()] {
        text.extend_from_slice(&(part.len() as u64).to_le_bytes());
        text.extend_from_slice(part);
    }
    Digest::sha256_of(&text).hex().to_owned()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The cache as a build sees it: read once from the index, written as steps finish.
pub(crate) struct Cache {
    entries: HashMap<String, Descriptor>,
    hits: Vec<String>,
}

impl Cache {
    /// The entries of the store's index.
    pub fn load(store: &Store) -> Result<Cache> {
        let index = store.backend().index()?;
        let mut entries = HashMap::new();
        for d in index.manifests {
            if d.ref_name().is_none()
                && let Some(k) = d.annotation(ANNOTATION_BUILD_CACHE)
            {
                entries.insert(k.to_owned(), d.clone());
            }
        }
        Ok(Cache { entries, hits: Vec::new() })
    }

    /// The manifest cached under `key`.
    pub fn get(&self, key: &str) -> Option<&Descriptor> {
        self.entries.get(key)
    }

    /// Note a hit (its time is refreshed when the build ends).
    pub fn hit(&mut self, key: &str) {
        self.hits.push(key.to_owned());
    }

    /// Record `manifest` under `key` in the index now (so that a build failing later
    /// keeps the steps it finished).
    pub fn put(&mut self, store: &Store, key: &str, manifest: &Descriptor) -> Result<()> {
        let mut entry = manifest.clone();
        entry.annotations = None;
        entry.set_annotation(ANNOTATION_BUILD_CACHE, key);
        entry.set_annotation(ANNOTATION_CACHE_USED, now_secs().to_string());
        store.backend().update_index(&mut |index| {
            index.manifests.retain(|d| !(d.ref_name().is_none() && d.annotation(ANNOTATION_BUILD_CACHE) == Some(key)));
            index.manifests.push(entry.clone());
            Ok(())
        })?;
        self.entries.insert(key.to_owned(), entry);
        Ok(())
    }

    /// Refresh the hits' times and drop the least recently used entries beyond `limit`:
    /// one index write.
    pub fn finish(self, store: &Store, limit: usize) -> Result<usize> {
        let now = now_secs().to_string();
        let mut dropped = 0;
        let hits = self.hits;
        store.backend().update_index(&mut |index| {
            for d in index.manifests.iter_mut() {
                if d.ref_name().is_none()
                    && let Some(k) = d.annotation(ANNOTATION_BUILD_CACHE)
                    && hits.iter().any(|h| h == k)
                {
                    d.set_annotation(ANNOTATION_CACHE_USED, now.clone());
                }
            }
            dropped = prune_index(index, limit);
            Ok(())
        })?;
        Ok(dropped)
    }
}

/// Drop the least recently used cache entries of `index` beyond `keep`; how many.
fn prune_index(index: &mut strata_spec::Index, keep: usize) -> usize {
    let used = |d: &Descriptor| d.annotation(ANNOTATION_CACHE_USED).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
    let mut cache: Vec<(u64, usize)> = index
        .manifests
        .iter()
        .enumerate()
        .filter(|(_, d)| d.ref_name().is_none() && d.annotation(ANNOTATION_BUILD_CACHE).is_some())
        .map(|(i, d)| (used(d), i))
        .collect();
    if cache.len() <= keep {
        return 0;
    }
    cache.sort_unstable();
    let drop: std::collections::BTreeSet<usize> = cache[..cache.len() - keep].iter().map(|(_, i)| *i).collect();
    let mut i = 0;
    index.manifests.retain(|_| {
        let kept = !drop.contains(&i);
        i += 1;
        kept
    });
    drop.len()
}

/// Drop build cache entries beyond the `keep` most recently used (0: all of them), like
/// `docker builder prune`. Returns how many were dropped; their blobs go at the next GC
/// unless a tagged image still uses them.
pub fn prune(store: &Store, keep: usize) -> Result<usize> {
    let mut dropped = 0;
    store.backend().update_index(&mut |index| {
        dropped = prune_index(index, keep);
        Ok(())
    })?;
    Ok(dropped)
}

/// How many build cache entries the store holds.
pub fn entries(store: &Store) -> Result<usize> {
    Ok(store
        .backend()
        .index()?
        .manifests
        .iter()
        .filter(|d| d.ref_name().is_none() && d.annotation(ANNOTATION_BUILD_CACHE).is_some())
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_spec::{Index, MediaType};

    fn entry(key: &str, used: u64) -> Descriptor {
        let mut d = Descriptor::new(MediaType::OciManifest, Digest::sha256_of(key.as_bytes()), 1);
        d.set_annotation(ANNOTATION_BUILD_CACHE, key);
        d.set_annotation(ANNOTATION_CACHE_USED, used.to_string());
        d
    }

    #[test]
    fn prune_drops_least_recently_used_first_and_keeps_tags() {
        let mut tagged = Descriptor::new(MediaType::OciManifest, Digest::sha256_of(b"t"), 1);
        tagged.set_annotation(strata_spec::ANNOTATION_REF_NAME, "app:1");
        let mut index = Index {
            manifests: vec![entry("a", 30), tagged.clone(), entry("b", 10), entry("c", 20), entry("d", 40)],
            ..Default::default()
        };
        assert_eq!(prune_index(&mut index, 2), 2);
        let keys: Vec<_> = index.manifests.iter().map(|d| d.annotation(ANNOTATION_BUILD_CACHE)).collect();
        assert_eq!(keys, [Some("a"), None, Some("d")]);
        assert_eq!(prune_index(&mut index, 5), 0);
        assert_eq!(prune_index(&mut index, 0), 2);
        assert_eq!(index.manifests, [tagged]);
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key("a", "bc", b"", ""), key("ab", "c", b"", ""));
        assert_eq!(key("a", "b", b"{}", "x"), key("a", "b", b"{}", "x"));
    }
}
