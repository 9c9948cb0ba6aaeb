//! Merging layers given as entry lists, and the merged tree as a `strata_testkit::Tree`
//! (contents read back through `read_file`) to compare with what the applier unpacks.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_layer::{
    ApplyOptions, ApplyReport, EntryKind, ExportOptions, ExportReport, LayerSource, Limits, MergeOptions, MergedTree,
    Plan, Result, WriteOptions, apply_layers,
};
use strata_spec::{Compression, Digest};
use strata_testkit::{Compare, Entry, Kind, Tree};

use crate::util::{E, tar};

pub fn root_user() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn blobs(layers: &[Vec<E>]) -> Vec<Vec<u8>> {
    layers.iter().map(|l| tar(l)).collect()
}

pub fn sources(blobs: &[Vec<u8>]) -> Vec<LayerSource<&[u8]>> {
    blobs.iter().enumerate().map(|(i, b)| LayerSource::new(format!("layer {i}"), &b[..])).collect()
}

pub fn merge_blobs(blobs: &[Vec<u8>], threads: usize) -> Result<MergedTree> {
    MergedTree::build(sources(blobs), &MergeOptions::default().threads(threads))
}

pub fn merge(layers: &[Vec<E>]) -> MergedTree {
    merge_blobs(&blobs(layers), 1).unwrap()
}

/// The reopening function over in-memory blobs.
pub fn opener<'a>(blobs: &'a [Vec<u8>]) -> impl FnMut(usize) -> std::io::Result<&'a [u8]> + 'a {
    move |i| Ok(&blobs[i][..])
}

pub fn read(m: &MergedTree, blobs: &[Vec<u8>], path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    m.read_file(path, opener(blobs)).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// The merged tree as the applier's trees are captured: every path, contents by digest.
pub fn view(m: &MergedTree, blobs: &[Vec<u8>]) -> Tree {
    let mut t = Tree::default();
    for e in m.iter() {
        let meta = &e.meta;
        let kind = match &meta.kind {
            EntryKind::File => {
                let mut data = Vec::new();
                m.read_file(&meta.path, opener(blobs)).unwrap().read_to_end(&mut data).unwrap();
                assert_eq!(data.len() as u64, meta.size, "{}", meta.path.display());
                Kind::File(Digest::sha256_of(&data))
            }
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink { target } => Kind::Symlink(target.clone()),
            EntryKind::Fifo => Kind::Fifo,
            EntryKind::CharDevice { major, minor } => Kind::Char(rustix::fs::makedev(*major, *minor)),
            EntryKind::BlockDevice { major, minor } => Kind::Block(rustix::fs::makedev(*major, *minor)),
            EntryKind::HardLink { .. } => panic!("the merged view shows inodes, never hard link entries"),
        };
        let entry = Entry {
            kind,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            size: if meta.kind == EntryKind::File { meta.size } else { 0 },
            mtime: (meta.mtime.sec, i64::from(meta.mtime.nsec)),
            nlink: u64::from(e.nlink),
            xattrs: meta.xattrs.iter().map(|(k, v)| (k.to_string_lossy().into_owned(), v.clone())).collect(),
        };
        t.entries.insert(meta.path.clone(), entry);
    }
    t
}

/// Unpack blobs with the applier into a fresh directory and capture the tree.
pub fn unpack(blobs: &[Vec<u8>]) -> Result<Tree> {
    let d = tempfile::tempdir().unwrap();
    apply_layers(d.path(), sources(blobs), &ApplyOptions::default())?;
    Ok(Tree::capture(d.path()).unwrap())
}

/// The layers' plan, from their headers alone (the data seeked over).
pub fn plan(blobs: &[Vec<u8>]) -> Result<Plan> {
    let sources = blobs.iter().enumerate().map(|(i, b)| LayerSource::new(format!("layer {i}"), Cursor::new(&b[..])));
    Plan::from_tars(sources, &Limits::default())
}

/// Unpack blobs with the applier and a plan into a fresh directory and capture the tree.
pub fn unpack_planned(blobs: &[Vec<u8>], plan: Plan) -> Result<(Tree, ApplyReport)> {
    let d = tempfile::tempdir().unwrap();
    let report = apply_layers(d.path(), sources(blobs), &ApplyOptions::default().plan(Arc::new(plan)))?;
    Ok((Tree::capture(d.path()).unwrap(), report))
}

/// What both must agree on: everything but the root's own metadata. Directories no
/// layer declares have the time of the unpack on disk and 0 in the merged view: see
/// [`with_unpack_times`].
pub fn cmp() -> Compare {
    Compare { dir_mtime: true, owners: root_user(), ..Compare::default() }
}

/// The merged view's tree with the mtimes of its implicit directories taken from the
/// unpacked tree (where they are the time of the unpack).
pub fn with_unpack_times(m: &MergedTree, mut view: Tree, unpacked: &Tree) -> Tree {
    for e in m.iter().filter(|e| e.implicit) {
        if let (Some(v), Some(u)) = (view.entries.get_mut(&e.meta.path), unpacked.entries.get(&e.meta.path)) {
            v.mtime = u.mtime;
        }
    }
    view
}

pub fn assert_same(expected: &Tree, actual: &Tree, what: &str) {
    let d = expected.diff(actual, &cmp());
    assert!(d.is_empty(), "{what}:\n{}", d.join("\n"));
}

/// Export as a plain tar.
pub fn export(m: &MergedTree, blobs: &[Vec<u8>]) -> (Vec<u8>, ExportReport) {
    export_with(m, blobs, true)
}

/// Export as a plain tar, the layers decompressed on threads of their own or not.
pub fn export_with(m: &MergedTree, blobs: &[Vec<u8>], threads: bool) -> (Vec<u8>, ExportReport) {
    let mut out = Vec::new();
    let opts = ExportOptions::default().threads(threads);
    let (info, report) =
        m.export(&mut out, &WriteOptions::default().compression(Compression::None), opener(blobs), &opts).unwrap();
    assert_eq!(info.diff_id, Digest::sha256_of(&out));
    (out, report)
}

/// Entry names of a plain tar, with hard link targets (`name -> target`).
pub fn names(tar_bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            match e.header().entry_type() {
                tar::EntryType::Link => {
                    format!("{name} -> {}", String::from_utf8_lossy(&e.link_name_bytes().unwrap()))
                }
                _ => name,
            }
        })
        .collect()
}

pub fn paths(m: &MergedTree) -> Vec<PathBuf> {
    m.iter().map(|e| e.meta.path).collect()
}

pub fn p(s: &str) -> &Path {
    Path::new(s)
}
