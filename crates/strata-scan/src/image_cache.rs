//! The per-image inventory cache: the inventory of an image as a scan last found it,
//! kept in the store as a scan record named by the image's manifest digest
//! ([`RecordKind::Scan`]), so that scanning the same image again reads neither a layer
//! nor the layers' own records ([`crate::cache`]), nor folds them.
//!
//! The manifest names the config and every layer by digest, so what the catalogers find
//! in an image never changes: the record goes stale only when the catalogers change,
//! which bumps [`VERSION`] (and any new release of this crate, whose version is part of
//! the record). It is removed by `gc` with its manifest, checked before use (its
//! checksum, the format, the crate's version, the manifest digest), and ignored when any
//! check fails, the inventory then being made from the layers' records and written again.
//!
//! One record per image holds one inventory per [`ScanOptions::layer_history`] setting:
//!
//! ```text
//! magic "STRSINV\0" | version u32 | crate version (len u64, bytes)
//! | manifest digest (len u64, bytes) | inventories u64
//! | (layer_history u8, JSON length u64, the Inventory as JSON)*
//! | crc32 of all before, u32
//! ```

use strata_image::Image;
use strata_store::RecordKind;
use strata_store::record::MAX_SCAN_RECORD_SIZE;

use crate::cache::{seal, take, u64_of, unseal};
use crate::inventory::{Inventory, ScanOptions};

const MAGIC: &[u8; 8] = b"STRSINV\0";
/// The record format, and what the catalogers find: bump it with any change to what an
/// inventory holds for the same image, so that an older record is not trusted.
const VERSION: u32 = 1;

/// The inventory of `image` for `opts`, when the store has a sound record of it. Its
/// [`Inventory::image`] is the name `image` was opened by.
pub(crate) fn get(image: &Image, opts: &ScanOptions) -> Option<Inventory> {
    let bytes = image.store().backend().record(RecordKind::Scan, image.digest()).ok().flatten()?;
    let json = variants(&bytes, image)?.into_iter().find(|(h, _)| *h == opts.layer_history)?.1;
    let mut inv: Inventory = serde_json::from_slice(json).ok()?;
    if inv.digest.as_deref() != Some(image.digest().as_str()) {
        return None;
    }
    inv.image = image.name().map(str::to_owned);
    Some(inv)
}

/// Keep `inv`, the inventory of `image` for `opts`, beside the one for the other
/// [`ScanOptions::layer_history`] setting, if the record has it.
pub(crate) fn put(image: &Image, opts: &ScanOptions, inv: &Inventory) {
    let backend = image.store().backend();
    if !backend.keeps_records() {
        return;
    }
    // The name it was opened by is not the image's: it is set again on reading.
    let named = inv.image.is_some();
    let mut bare;
    let inv = if named {
        bare = inv.clone();
        bare.image = None;
        &bare
    } else {
        inv
    };
    let Ok(json) = serde_json::to_vec(inv) else { return };
    // A cache that cannot be written costs the next scan time, not this one its result.
    let _ = backend.update_record(RecordKind::Scan, image.digest(), &mut |old| {
        let mut all: Vec<(bool, &[u8])> = old
            .and_then(|b| variants(b, image))
            .unwrap_or_default()
            .into_iter()
            .filter(|(h, _)| *h != opts.layer_history)
            .collect();
        all.push((opts.layer_history, &json));
        all.sort_by_key(|(h, _)| *h);
        let bytes = encode(image, &all);
        Ok((bytes.len() as u64 <= MAX_SCAN_RECORD_SIZE).then_some(bytes))
    });
}

fn encode(image: &Image, all: &[(bool, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(all.iter().map(|(_, j)| j.len() + 9).sum::<usize>() + 256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for part in [env!("CARGO_PKG_VERSION").as_bytes(), image.digest().as_str().as_bytes()] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&(all.len() as u64).to_le_bytes());
    for (history, json) in all {
        out.push(u8::from(*history));
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(json);
    }
    seal(&mut out);
    out
}

/// The inventories of a record of `image` (by [`ScanOptions::layer_history`]), when
/// every check passes.
fn variants<'a>(bytes: &'a [u8], image: &Image) -> Option<Vec<(bool, &'a [u8])>> {
    let mut c = unseal(bytes)?;
    if take(&mut c, MAGIC.len())? != MAGIC || u32::from_le_bytes(take(&mut c, 4)?.try_into().ok()?) != VERSION {
        return None;
    }
    for want in [env!("CARGO_PKG_VERSION").as_bytes(), image.digest().as_str().as_bytes()] {
        let n = usize::try_from(u64_of(&mut c)?).ok()?;
        if take(&mut c, n)? != want {
            return None;
        }
    }
    let count = u64_of(&mut c)?;
    let mut out = Vec::new();
    for _ in 0..count.min(2) {
        let history = match take(&mut c, 1)? {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        let n = usize::try_from(u64_of(&mut c)?).ok()?;
        out.push((history, take(&mut c, n)?));
    }
    (c.is_empty() && out.len() as u64 == count).then_some(out)
}
