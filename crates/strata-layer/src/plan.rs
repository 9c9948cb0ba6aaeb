//! Planning an unpack from the layers' headers: which regular files a later layer deletes
//! or replaces, so that [`crate::apply_layers`] need not write them at all.
//!
//! A plan is the merged view's fold ([`crate::MergedTree`]) run over every layer's
//! headers before anything is written. A regular file whose contents no path of the
//! final tree names (deleted, replaced, hidden by an opaque directory, its directory
//! removed, with every hard link to it gone too) is *dead*; so is a hard link to a dead
//! file. When the applier meets a dead entry it removes whatever is at its path, as
//! creating it would have, reads its data through the `diff_id` hash, and writes nothing.
//! Until a later entry removes or replaces it, the path is empty where it would have held
//! a file nobody will see: no later entry can tell the difference, because the fold
//! follows the applier's rules exactly (a later entry that would have used the dead file
//! as a directory, or linked to it, makes it live or fails the fold).
//!
//! The headers are read twice, once for the plan and once to apply: every layer's
//! headers are checked to be the ones the plan was made from (a SHA-256 of each entry's
//! type, name, link target and size), and a layer that differs fails with
//! [`Error::LayerChanged`] (the tree is then part-applied, as after any failed apply).
//!
//! Reading headers is cheap for an uncompressed tar that can seek ([`Plan::from_tars`]:
//! the data is seeked over) and costs a second decompression for a compressed one
//! ([`Plan::from_layers`]): on a fast file system that is more than the writes saved, on
//! a slow one it is less. `docs/unpack.md` has the measurements.

use std::io::{BufRead, Read, Seek};

use strata_spec::Digest;

use crate::error::Result;
use crate::fold::MergeOptions;
use crate::fold::{Folded, fold_layers, fold_sources, scan_tar};
use crate::read::Limits;
use crate::source::LayerSource;
use crate::union::HeaderPrint;

/// The plan of one layer.
#[derive(Debug, Clone)]
pub(crate) struct LayerPlan {
    /// Positions of the entries not to write, ascending.
    skip: Vec<u64>,
    skipped_bytes: u64,
    print: Digest,
    entries: u64,
}

impl LayerPlan {
    /// Whether the entry at `position` in the layer's tar stream is dead.
    pub(crate) fn skips(&self, position: u64) -> bool {
        self.skip.binary_search(&position).is_ok()
    }

    /// Check the headers the applier read against the ones planned from.
    pub(crate) fn check(&self, print: HeaderPrint) -> std::result::Result<(), String> {
        let (digest, entries) = print.finish();
        if entries != self.entries {
            return Err(format!("{entries} entries applied, the plan was made from {}", self.entries));
        }
        if digest != self.print {
            return Err("its headers differ from the ones the plan was made from".into());
        }
        Ok(())
    }
}

/// Which entries of a stack of layers [`crate::apply_layers`] need not write, because a
/// later layer deletes or replaces them. Pass it with [`crate::ApplyOptions::plan`].
///
/// ```
/// use std::io::Cursor;
/// use std::sync::Arc;
/// use strata_layer::{ApplyOptions, LayerSource, Plan, apply_layers};
///
/// let layer = |entries: &[(&str, &[u8])]| {
///     let mut b = tar::Builder::new(Vec::new());
///     for (name, data) in entries {
///         let mut h = tar::Header::new_gnu();
///         h.set_size(data.len() as u64);
///         h.set_mode(0o644);
///         h.set_cksum();
///         b.append_data(&mut h, name, *data).unwrap();
///     }
///     b.into_inner().unwrap()
/// };
/// let blobs = vec![
///     layer(&[("big.bin", &[7u8; 4096][..]), ("keep", b"kept")]),
///     layer(&[(".wh.big.bin", b"")]),
/// ];
/// let sources = || blobs.iter().enumerate().map(|(i, b)| LayerSource::new(format!("layer {i}"), Cursor::new(&b[..])));
///
/// // Headers only: the data of an uncompressed tar is seeked over.
/// let plan = Plan::from_tars(sources(), &Default::default())?;
/// assert_eq!((plan.skipped_entries(), plan.skipped_bytes()), (1, 4096));
///
/// let root = tempfile::tempdir()?;
/// let report = apply_layers(root.path(), sources(), &ApplyOptions::default().plan(Arc::new(plan)))?;
/// assert_eq!(report.layers[0].skipped, 1); // big.bin was never written
/// assert!(!root.path().join("big.bin").exists());
/// assert_eq!(std::fs::read(root.path().join("keep"))?, b"kept");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Plan {
    layers: Vec<LayerPlan>,
}

impl Plan {
    /// Plan from uncompressed tar layers, base first, reading their headers only: the
    /// data of each entry is seeked over. A layer whose media type or magic bytes say it
    /// is compressed is an error (see [`Plan::from_layers`]). Nothing is verified here
    /// (not the `diff_id`: that would read every byte); the applier checks the headers it
    /// applies against these.
    ///
    /// Fails with the error the applier would give when the layers cannot be applied
    /// (an unsafe name, a hard link to nothing): apply without a plan to get it there.
    pub fn from_tars<R, I>(layers: I, limits: &Limits) -> Result<Plan>
    where
        R: BufRead + Seek + Send,
        I: IntoIterator<Item = LayerSource<R>>,
    {
        let sources: Vec<LayerSource<R>> = layers.into_iter().collect();
        let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
        let expected = vec![None; sources.len()];
        let opts = MergeOptions::default().limits(limits.clone()).threads(1);
        Ok(Plan::of(fold_layers(sources, &names, &expected, &opts, scan_tar, true)?))
    }

    /// Plan from layers of any compression, base first, decompressing each one (on up to
    /// [`MergeOptions::threads`] threads at once) and verifying its `diff_id` when given.
    /// For compressed layers this is a second decompression: worth it only where writing
    /// costs more than decompressing (see the module's documentation).
    pub fn from_layers<R, I>(layers: I, opts: &MergeOptions) -> Result<Plan>
    where
        R: Read + Send,
        I: IntoIterator<Item = LayerSource<R>>,
    {
        Ok(Plan::of(fold_sources(layers, opts, true)?))
    }

    fn of((tree, _, records, _): Folded) -> Plan {
        let live = tree.live_sources();
        let records = records.unwrap_or_default();
        let mut layers: Vec<LayerPlan> = records
            .prints
            .into_iter()
            .map(|p| {
                let (print, entries) = p.finish();
                LayerPlan { skip: Vec::new(), skipped_bytes: 0, print, entries }
            })
            .collect();
        for (layer, position, size) in records.files {
            if !live.contains(&(layer, position))
                && let Some(l) = layers.get_mut(layer)
            {
                l.skip.push(position);
                l.skipped_bytes += size;
            }
        }
        for (layer, position, target) in records.links {
            if let Some(target) = target
                && !live.contains(&target)
                && let Some(l) = layers.get_mut(layer)
            {
                l.skip.push(position);
            }
        }
        for l in &mut layers {
            l.skip.sort_unstable();
            l.skip.dedup();
        }
        Plan { layers }
    }

    /// The number of layers planned.
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Entries (regular files and hard links to them) the applier will not write.
    pub fn skipped_entries(&self) -> u64 {
        self.layers.iter().map(|l| l.skip.len() as u64).sum()
    }

    /// Bytes of regular files the applier will not write.
    pub fn skipped_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.skipped_bytes).sum()
    }

    pub(crate) fn layer(&self, index: usize) -> Option<&LayerPlan> {
        self.layers.get(index)
    }
}
