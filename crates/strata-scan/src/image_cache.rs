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
//! | (layer_history u8, name (len u64, as JSON), content id (len u64, digest)
//!    , JSON length u64, the Inventory as JSON without its name)*
//! | crc32 of all before, u32
//! ```
//!
//! The content id is [`Inventory::content_id`] of the inventory named by the name beside
//! it (the one the image was opened by when the record was written, as the JSON of
//! [`Inventory::image`]: `null` or a string): what the SBOMs derive their identifiers
//! from, kept so that an SBOM from the record does not write the inventory as JSON again
//! to hash it. An image opened by another name gets it from the JSON in the record,
//! hashed with that name in place of `null` (the name is the JSON's first field).

use strata_image::Image;
use strata_spec::{Algorithm, Digest, Digester};
use strata_store::RecordKind;
use strata_store::record::MAX_SCAN_RECORD_SIZE;

use crate::cache::{seal, take, u64_of, unseal};
use std::borrow::Cow;

use crate::inventory::{Inventory, ScanOptions, Warning};
use crate::sbom::{Input, SbomFormat, SbomOptions, render_input, table_of};

const MAGIC: &[u8; 8] = b"STRSINV\0";
/// The record format, and what the catalogers find: bump it with any change to what an
/// inventory holds for the same image, so that an older record is not trusted.
/// 2: each inventory has its name and content id beside it.
const VERSION: u32 = 2;

/// How the JSON of an inventory without a name begins (`image` is its first field).
const NAMELESS: &[u8] = b"{\"image\":null";

/// One inventory of a record.
#[derive(Clone, Copy)]
struct Variant<'a> {
    /// [`ScanOptions::layer_history`] when it was made.
    history: bool,
    /// The name it was made under, as JSON.
    name: &'a [u8],
    /// [`Inventory::content_id`] under that name, as a digest string.
    id: &'a [u8],
    /// The inventory as JSON, without a name.
    json: &'a [u8],
}

/// The inventory of `image` for `opts`, when the store has a sound record of it. Its
/// [`Inventory::image`] is the name `image` was opened by, and its
/// [`Inventory::content_id`] is set.
pub(crate) fn get(image: &Image, opts: &ScanOptions) -> Option<Inventory> {
    let bytes = read(image)?;
    let (json, content_id) = find(&bytes, image, opts, true)?;
    let mut inv: Inventory = serde_json::from_slice(json).ok()?;
    if inv.digest.as_deref() != Some(image.digest().as_str()) || inv.image.is_some() {
        return None;
    }
    inv.image = image.name().map(str::to_owned);
    inv.content_id = content_id;
    Some(inv)
}

/// The SBOM of `image` for `opts` in `format` from the store's record of its inventory,
/// with that inventory's warnings, when the store has a sound record: what
/// [`crate::render`] makes of [`get`]'s inventory, without making it (the record's
/// JSON is read into [`Input`], which borrows its strings and skips the files each
/// package owns).
pub(crate) fn render(
    image: &Image,
    opts: &ScanOptions,
    format: SbomFormat,
    sbom: &SbomOptions,
) -> Option<(Vec<u8>, Vec<Warning>)> {
    let bytes = read(image)?;
    let (json, content_id) = find(&bytes, image, opts, format != SbomFormat::Table)?;
    let mut input: Input<'_> = serde_json::from_slice(json).ok()?;
    if input.digest.as_deref() != Some(image.digest().as_str()) || input.image.is_some() {
        return None;
    }
    input.image = image.name().map(Cow::Borrowed);
    let doc = match format {
        SbomFormat::Table => table_of(&input).into_bytes(),
        // A record whose content id does not parse: the inventory is made again.
        _ => render_input(&input, &content_id?, format, sbom),
    };
    Some((doc, std::mem::take(&mut input.warnings)))
}

/// The record of `image`, unchecked.
fn read(image: &Image) -> Option<strata_store::FileBytes> {
    image.store().backend().record(RecordKind::Scan, image.digest()).ok().flatten()
}

/// The JSON of the inventory for `opts` in `bytes`, a record of `image`, when every
/// check passes; with its [`Inventory::content_id`] under the name `image` was opened
/// by, if `id` asks for it (hashing the JSON when that is not the name in the record).
fn find<'a>(bytes: &'a [u8], image: &Image, opts: &ScanOptions, id: bool) -> Option<(&'a [u8], Option<Digest>)> {
    let v = variants(bytes, image)?.into_iter().find(|v| v.history == opts.layer_history)?;
    if !id {
        return Some((v.json, None));
    }
    let name = serde_json::to_vec(&image.name()).ok()?;
    let id = if name == v.name { Digest::parse(std::str::from_utf8(v.id).ok()?).ok() } else { named_id(v.json, &name) };
    Some((v.json, id))
}

/// Keep `inv`, the inventory of `image` for `opts`, beside the one for the other
/// [`ScanOptions::layer_history`] setting, if the record has it. Returns its
/// [`Inventory::content_id`] when it was kept.
pub(crate) fn put(image: &Image, opts: &ScanOptions, inv: &Inventory) -> Option<Digest> {
    let backend = image.store().backend();
    if !backend.keeps_records() {
        return None;
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
    let json = serde_json::to_vec(inv).ok()?;
    let name = serde_json::to_vec(&image.name()).ok()?;
    let id = named_id(&json, &name)?;
    let id_str = id.to_string();
    let new = Variant { history: opts.layer_history, name: &name, id: id_str.as_bytes(), json: &json };
    // A cache that cannot be written costs the next scan time, not this one its result.
    let _ = backend.update_record(RecordKind::Scan, image.digest(), &mut |old| {
        let mut all: Vec<Variant<'_>> = old
            .and_then(|b| variants(b, image))
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.history != new.history)
            .collect();
        all.push(new);
        all.sort_by_key(|v| v.history);
        let bytes = encode(image, &all);
        Ok((bytes.len() as u64 <= MAX_SCAN_RECORD_SIZE).then_some(bytes))
    });
    Some(id)
}

/// The digest of the JSON of an inventory named `name` (as JSON) whose JSON without a
/// name is `json`: `json` with `name` in place of its `null`, hashed as it goes.
fn named_id(json: &[u8], name: &[u8]) -> Option<Digest> {
    let rest = json.strip_prefix(NAMELESS)?;
    let mut d = Digester::new(Algorithm::Sha256);
    d.update(&NAMELESS[..NAMELESS.len() - b"null".len()]);
    d.update(name);
    d.update(rest);
    Some(d.finish())
}

fn encode(image: &Image, all: &[Variant<'_>]) -> Vec<u8> {
    let size = all.iter().map(|v| v.name.len() + v.id.len() + v.json.len() + 25).sum::<usize>();
    let mut out = Vec::with_capacity(size + 256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for part in [env!("CARGO_PKG_VERSION").as_bytes(), image.digest().as_str().as_bytes()] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&(all.len() as u64).to_le_bytes());
    for v in all {
        out.push(u8::from(v.history));
        for part in [v.name, v.id, v.json] {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    seal(&mut out);
    out
}

/// The inventories of a record of `image`, when every check passes.
fn variants<'a>(bytes: &'a [u8], image: &Image) -> Option<Vec<Variant<'a>>> {
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
        let mut part = || -> Option<&'a [u8]> {
            let n = usize::try_from(u64_of(&mut c)?).ok()?;
            take(&mut c, n)
        };
        let (name, id, json) = (part()?, part()?, part()?);
        out.push(Variant { history, name, id, json });
    }
    (c.is_empty() && out.len() as u64 == count).then_some(out)
}
