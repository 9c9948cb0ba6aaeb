//! Fixtures made in code: small trees on disk, layer tars built with the `tar` crate,
//! images imported into fresh stores, and snapshots of a layout's files.

use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, XattrFlags};
use strata_image::{CommitOptions, Image, LayerInput, Store};
use strata_testkit::{Compare, Tree};

/// A fixed creation time, so digests do not depend on the clock.
pub fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Commit options with a fixed creation time.
pub fn opts(secs: u64) -> CommitOptions {
    CommitOptions::default().created(at(secs))
}

/// A fresh scratch directory.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("strata-image-").tempdir().unwrap()
}

/// Set the mtime of `p` (not following symlinks).
pub fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let t = Timespec { tv_sec: sec, tv_nsec: nsec };
    rustix::fs::utimensat(CWD, p, &Timestamps { last_access: t, last_modification: t }, AtFlags::SYMLINK_NOFOLLOW)
        .unwrap_or_else(|e| panic!("utimensat {}: {e}", p.display()));
}

pub fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {}: {e}", p.display()));
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn chown(p: &Path, uid: u32, gid: u32) {
    lchown(p, Some(uid), Some(gid)).unwrap();
}

/// Write `files` (path, content) under `root`, creating parents.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

/// The rootfs of the seed's story: a tomcat-like tree with `webapps.dist/ROOT/index.html`,
/// an empty `webapps/`, a symlink, a hard link, a setuid file, an owned file and an xattr.
pub fn tomcat_rootfs(root: &Path) {
    write_files(
        root,
        &[
            ("usr/local/tomcat/webapps.dist/ROOT/index.html", "<h1>tomcat</h1>\n"),
            ("usr/local/tomcat/webapps.dist/ROOT/RELEASE-NOTES.txt", "notes\n"),
            ("usr/local/tomcat/bin/catalina.sh", "#!/bin/sh\necho run\n"),
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\ntomcat:x:1000:1000::/usr/local/tomcat:/bin/sh\n"),
            ("etc/motd", "hello\n"),
            ("usr/bin/su", "setuid\n"),
        ],
    );
    fs::create_dir_all(root.join("usr/local/tomcat/webapps")).unwrap();
    chmod(&root.join("usr/local/tomcat/bin/catalina.sh"), 0o755);
    chmod(&root.join("usr/bin/su"), 0o4755);
    chown(&root.join("usr/local/tomcat/webapps"), 1000, 1000);
    symlink("catalina.sh", root.join("usr/local/tomcat/bin/startup.sh")).unwrap();
    fs::hard_link(root.join("etc/motd"), root.join("etc/motd.link")).unwrap();
    set_xattr(&root.join("usr/bin/su"), "user.origin", b"fixture");
    for p in ["etc/motd", "usr/bin/su", "usr/local/tomcat/bin/catalina.sh"] {
        set_mtime(&root.join(p), 1_600_000_000, 123_000_000);
    }
}

/// A store in `dir/store` with the tomcat image imported as `tomcat:latest`.
pub fn tomcat_store(dir: &Path) -> (Store, Image) {
    let store = Store::create(dir.join("store")).unwrap();
    let img = tomcat_image(&store, dir);
    (store, img)
}

/// Import the tomcat image into `store` as `tomcat:latest` (its rootfs made under `dir`).
pub fn tomcat_image(store: &Store, dir: &Path) -> Image {
    let rootfs = dir.join("tomcat-rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    tomcat_rootfs(&rootfs);
    store.import(LayerInput::Dir(&rootfs), &opts(1_700_000_000).author("fixture").tag("tomcat")).unwrap()
}

/// One entry of a hand-made layer tar.
#[derive(Debug, Clone)]
pub enum E<'a> {
    /// Regular file: path, content, mode, uid/gid.
    File(&'a str, &'a [u8], u32, u32),
    /// Directory: path, mode.
    Dir(&'a str, u32),
    /// Symlink: path, target.
    Symlink(&'a str, &'a str),
    /// Hard link: path, target path.
    Link(&'a str, &'a str),
    /// Character device: path, major, minor, mode.
    Char(&'a str, u32, u32, u32),
    /// Whiteout of a path.
    Whiteout(&'a str),
}

/// A layer tar (uncompressed) made of `entries`, in the order given.
pub fn layer_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_650_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::File(p, data, mode, id) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(u64::from(*id));
                h.set_gid(u64::from(*id));
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Char(p, major, minor, mode) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(*mode);
                h.set_size(0);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Whiteout(p) => {
                let path = Path::new(p);
                let name = format!(".wh.{}", path.file_name().unwrap().to_str().unwrap());
                let wh = path.parent().map_or(PathBuf::from(&name), |d| d.join(&name));
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, wh, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Import a tar as a one-layer image tagged `tag`.
pub fn import_tar(store: &Store, tar: &[u8], tag: &str, secs: u64) -> Image {
    store.import(LayerInput::Tar(&mut &tar[..]), &opts(secs).tag(tag)).unwrap()
}

/// Every file of a layout except strata's private `.strata/` (locks and temp files),
/// for "the store is unchanged" checks.
pub fn layout_tree(root: &Path) -> Tree {
    let mut t = Tree::capture(root).unwrap();
    t.entries.retain(|p, _| !p.starts_with(".strata"));
    t
}

/// Assert the layout at `root` is as `before` (contents, modes, file mtimes).
pub fn assert_layout_unchanged(root: &Path, before: &Tree, what: &str) {
    let after = layout_tree(root);
    let d = before.diff(&after, &Compare::default());
    assert!(d.is_empty(), "{what}: the store changed: {d:#?}");
}

/// Comparison for the commit law: everything, directory mtimes included, except the
/// root directory's own metadata (which no layer diff carries).
pub fn law_compare() -> Compare {
    Compare { dir_mtime: true, ..Compare::default() }
}

/// `tree` paths that look like whiteouts.
pub fn whiteouts_in(tree: &Tree) -> Vec<PathBuf> {
    tree.entries
        .keys()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".wh.")))
        .cloned()
        .collect()
}

/// One entry of a layer as read back with the `tar` crate.
#[derive(Debug, Clone)]
pub struct LayerEntry {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub device: Option<(u32, u32)>,
    pub data: Vec<u8>,
}

/// The entries of a layer blob (any compression), read with the `tar` crate.
pub fn layer_entries(store: &Store, desc: &strata_spec::Descriptor) -> Vec<LayerEntry> {
    let reader = store.backend().open_descriptor(desc).unwrap();
    let plain = strata_layer::Decoder::new(reader, desc.media_type.layer_compression(), "layer").unwrap();
    let mut archive = tar::Archive::new(plain);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let kind = h.entry_type();
        let device = match kind {
            tar::EntryType::Char | tar::EntryType::Block => {
                Some((h.device_major().unwrap().unwrap(), h.device_minor().unwrap().unwrap()))
            }
            _ => None,
        };
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push(LayerEntry {
            path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            kind,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            device,
            data,
        });
    }
    out
}

/// The bytes of file content of a layer blob, counted by the `tar` crate: docker's size
/// of the layer, from an implementation other than strata's.
pub fn content_bytes(store: &Store, desc: &strata_spec::Descriptor) -> u64 {
    layer_entries(store, desc).iter().map(|e| e.data.len() as u64).sum()
}

/// One member of a hand-made archive.
pub enum A<'a> {
    /// A regular file.
    File(&'a str, &'a [u8]),
    /// A symlink.
    Symlink(&'a str, &'a str),
    /// A regular file whose name is written into the header as is (the `tar` crate
    /// refuses `..` in names; hostile archives have them).
    RawName(&'a str, &'a [u8]),
}

/// A tar of `members`, in the order given (for hand-made docker and OCI archives).
pub fn archive_tar(members: &[A<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        match m {
            A::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            A::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            A::RawName(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A config for layers with these diff_ids (one history entry each).
pub fn config_for(diff_ids: &[strata_spec::Digest]) -> Vec<u8> {
    let mut c = strata_spec::ImageConfig::new(&strata_spec::Platform::host());
    for d in diff_ids {
        c.push_layer(d.clone(), strata_spec::History { created_by: Some("test".into()), ..Default::default() });
    }
    c.to_canonical_json()
}
