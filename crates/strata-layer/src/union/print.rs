//! A digest of the headers of one layer, so that a plan made from them can be checked
//! against the headers the applier reads.

use strata_spec::{Algorithm, Digest, Digester};

use crate::read::EntryKind;

/// Each entry's type, name, link target and size, in order, hashed. Both the plan and
/// the applier compute it, from the same fields of [`crate::read::Entry`].
pub(crate) struct HeaderPrint {
    digester: Digester,
    entries: u64,
}

impl Default for HeaderPrint {
    fn default() -> Self {
        HeaderPrint { digester: Digester::new(Algorithm::Sha256), entries: 0 }
    }
}

impl HeaderPrint {
    /// Add one entry (its link target counts for symlinks and hard links only).
    pub(crate) fn add(&mut self, kind: EntryKind, path: &[u8], link: &[u8], size: u64) {
        let link = if matches!(kind, EntryKind::Symlink | EntryKind::Hardlink) { link } else { &[] };
        let tag = kind.code();
        let d = &mut self.digester;
        d.update(&[tag]);
        d.update(&(path.len() as u64).to_le_bytes());
        d.update(path);
        d.update(&(link.len() as u64).to_le_bytes());
        d.update(link);
        d.update(&size.to_le_bytes());
        self.entries += 1;
    }

    /// The digest and the number of entries.
    pub(crate) fn finish(self) -> (Digest, u64) {
        (self.digester.finish(), self.entries)
    }
}
