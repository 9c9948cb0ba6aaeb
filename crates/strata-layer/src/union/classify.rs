//! What one tar entry means for the union merge, decided once for every consumer: the
//! normalised path, whiteouts and opaque markers, AUFS metadata, the owner range, the
//! root entry, symlink and hard link targets. Pure: no file system, no tree.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::path::{self, Class, WHITEOUT_PREFIX};
use crate::read::{self, EntryKind, Mtime};
use crate::sparse::SparseMap;

/// The parts of a tar header the union merge needs, owned (the applier reads the
/// entry's data after classifying it; the merged view's scan sends headers across
/// threads).
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The name as stored.
    pub(crate) path: Vec<u8>,
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: Mtime,
    /// Content size (the logical size of a sparse file).
    pub(crate) size: u64,
    /// The size the header declares, for every type (see
    /// [`crate::read::Entry::declared_size`]).
    pub(crate) declared_size: u64,
    pub(crate) dev: (u32, u32),
    /// Link target (symlinks and hard links only).
    pub(crate) link: Vec<u8>,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The data segments of a sparse file.
    pub(crate) sparse: Option<SparseMap>,
    /// Position of the entry in its layer's tar stream (0 for the first).
    pub(crate) ordinal: u64,
    /// Offset of its data in the uncompressed stream (0 where nobody needs it).
    pub(crate) offset: u64,
}

impl Header {
    /// The header of `e`, the `ordinal`-th entry of its layer, its data at `offset`.
    pub(crate) fn of(e: &read::Entry, ordinal: u64, offset: u64) -> Header {
        Header {
            path: e.path.clone(),
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            size: e.size,
            declared_size: e.declared_size,
            dev: (e.dev_major, e.dev_minor),
            link: if matches!(e.kind, EntryKind::Symlink | EntryKind::Hardlink) { e.link.clone() } else { Vec::new() },
            xattrs: e.xattrs.clone(),
            sparse: e.sparse.clone(),
            ordinal,
            offset,
        }
    }
}

/// What a new node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// A regular file; its content follows the header.
    File,
    Dir,
    /// A symlink to this target (never empty, no NUL).
    Symlink(Vec<u8>),
    /// A hard link to this normalised path (never the root, never itself).
    HardLink(PathBuf),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// A node to create (or, for the root, whose metadata to set).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: Mtime,
    pub(crate) size: u64,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) sparse: Option<SparseMap>,
    /// See [`Header::ordinal`].
    pub(crate) ordinal: u64,
    /// See [`Header::offset`].
    pub(crate) offset: u64,
}

/// What one entry does.
#[derive(Debug)]
pub(crate) enum Op {
    /// Nothing (AUFS metadata).
    Skip,
    /// Delete `target` as lower layers left it.
    Whiteout { target: PathBuf },
    /// Hide what lower layers put in `dir` (the empty path is the root).
    Opaque { dir: PathBuf },
    /// Set the root's own metadata (an entry named `./`: only a directory may be).
    Root(Node),
    /// A hard link to itself: nothing changes, but the path counts as this layer's.
    Keep { path: PathBuf },
    /// Create `path` (replacing what is there; a directory over a directory merges).
    Create { path: PathBuf, node: Node },
}

/// An entry with its name as stored, for errors.
#[derive(Debug)]
pub(crate) struct Classified {
    pub(crate) op: Op,
    /// The name as stored.
    pub(crate) raw: Vec<u8>,
}

fn unsafe_entry(layer: &str, raw: &[u8], reason: String) -> Error {
    Error::UnsafeEntry { layer: layer.to_owned(), entry: String::from_utf8_lossy(raw).into_owned(), reason }
}

/// Classify one entry of layer `layer`. Errors for what no layer may hold: an unsafe
/// name, a whiteout prefix in a parent directory, an owner out of range, a root that is
/// not a directory, a symlink with an empty target, a hard link to the root or with a
/// `..` in its target.
pub(crate) fn classify(h: Header, layer: &str) -> Result<Classified> {
    let raw = h.path;
    let path = path::normalize(&raw).map_err(|p| unsafe_entry(layer, &raw, p.to_string()))?;
    let class = path::classify(&path).map_err(|p| unsafe_entry(layer, &raw, p.to_string()))?;
    if class == Class::AufsMeta {
        return Ok(Classified { op: Op::Skip, raw });
    }
    // A whiteout prefix in a parent component: `.wh.x/y` names nothing a union file
    // system can hold, and `.wh.../x` has fooled appliers into `../x`.
    if path::names_whiteout(path.as_os_str().as_bytes())
        && let Some(parent) = path.parent()
        && parent.iter().any(|c| c.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
    {
        return Err(unsafe_entry(layer, &raw, "whiteout prefix in a parent directory".into()));
    }
    let op = match class {
        Class::Whiteout { target } => Op::Whiteout { target },
        Class::Opaque { dir } => Op::Opaque { dir },
        Class::AufsMeta => Op::Skip,
        Class::Plain => {
            let uid = u32::try_from(h.uid).ok().filter(|&u| u != u32::MAX);
            let gid = u32::try_from(h.gid).ok().filter(|&g| g != u32::MAX);
            let (Some(uid), Some(gid)) = (uid, gid) else {
                return Err(Error::InvalidTar {
                    layer: layer.to_owned(),
                    entry: Some(String::from_utf8_lossy(&raw).into_owned()),
                    reason: format!("owner {}:{} out of range", h.uid, h.gid),
                });
            };
            if path.as_os_str().is_empty() && h.kind != EntryKind::Dir {
                return Err(unsafe_entry(layer, &raw, format!("the root can only be a directory, not a {:?}", h.kind)));
            }
            let kind = match h.kind {
                EntryKind::File => NodeKind::File,
                EntryKind::Dir => NodeKind::Dir,
                EntryKind::Symlink => {
                    if h.link.is_empty() || h.link.contains(&0) {
                        return Err(unsafe_entry(layer, &raw, "symlink with an empty target or a NUL in it".into()));
                    }
                    NodeKind::Symlink(h.link)
                }
                EntryKind::Hardlink => {
                    let target = path::normalize(&h.link).map_err(|p| {
                        unsafe_entry(
                            layer,
                            &raw,
                            format!("hard link target {:?}: {p}", String::from_utf8_lossy(&h.link)),
                        )
                    })?;
                    if target.as_os_str().is_empty() {
                        return Err(unsafe_entry(layer, &raw, "hard link to the root".into()));
                    }
                    if target == path {
                        return Ok(Classified { op: Op::Keep { path }, raw });
                    }
                    NodeKind::HardLink(target)
                }
                EntryKind::Char => NodeKind::Char(h.dev.0, h.dev.1),
                EntryKind::Block => NodeKind::Block(h.dev.0, h.dev.1),
                EntryKind::Fifo => NodeKind::Fifo,
            };
            let node = Node {
                kind,
                mode: h.mode,
                uid,
                gid,
                mtime: h.mtime,
                size: h.size,
                xattrs: h.xattrs,
                sparse: h.sparse,
                ordinal: h.ordinal,
                offset: h.offset,
            };
            if path.as_os_str().is_empty() { Op::Root(node) } else { Op::Create { path, node } }
        }
    };
    Ok(Classified { op, raw })
}

/// The last component of a non-empty normalised path.
pub(crate) fn last_name(path: &Path) -> &OsStr {
    path.file_name().unwrap_or_else(|| OsStr::from_bytes(b""))
}
