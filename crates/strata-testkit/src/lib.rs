//! Test support for strata's crates (not published).
//!
//! - [`require_tool`]: gate a test on a peer tool (umoci, skopeo...). Outside CI a
//!   missing tool skips the test with a message; with `CI` set it fails the test,
//!   because CI installs every tool the tests use.
//! - [`Tree`]: a snapshot of a directory tree (types, modes, owners, contents, link
//!   targets, xattrs, mtimes, link counts) and a readable diff of two snapshots.
//! - [`docker`]: a real docker engine (`DOCKER_HOST`, or one started for the tests),
//!   for the tests that compare strata with docker.
//! - [`tars`]: trees with every kind of tar entry, and the real tools that write and
//!   extract them.
//! - [`proptest_config`]: the configuration of every property test: a fixed seed under
//!   CI ([`CI_SEED`]), a fresh one locally, the seed printed so a failure can be
//!   repeated, case counts scaled up by the soak script (`benches/soak.sh`).
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("testkit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(dir.join("a")).unwrap();
//! std::fs::write(dir.join("a/f"), b"x").unwrap();
//! let t = strata_testkit::Tree::capture(&dir).unwrap();
//! assert!(t.entries.contains_key(std::path::Path::new("a/f")));
//! assert!(t.diff(&t, &strata_testkit::Compare::default()).is_empty());
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_spec::Digest;

mod docker;
mod prop;
mod registry;
pub mod tars;

pub use docker::{Docker, LOCAL_ENGINE_DIR, docker};

pub use prop::{CI_SEED, SCALE_VAR, proptest_config};
pub use registry::Registry;

/// Whether a peer tool is on `PATH`. When it is not: with `CI` set, panic (the test
/// fails, as CI must have installed it); otherwise print why the test is skipped and
/// return `false`.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("peer tool `{tool}` is missing and CI is set: .ci/run must install it");
    }
    eprintln!("skipping: peer tool `{tool}` is not installed (set CI=1 to make this a failure)");
    false
}

/// Whether the tests run as root (owners, devices and some peers need it).
pub fn root_user() -> bool {
    rustix::process::geteuid().is_root()
}

/// Run a command, panicking with its stderr when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The type of a tree entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Regular file, with the digest of its content.
    File(Digest),
    /// Directory.
    Dir,
    /// Symbolic link, with its target.
    Symlink(PathBuf),
    /// Named pipe.
    Fifo,
    /// Character device, with its device number.
    Char(u64),
    /// Block device, with its device number.
    Block(u64),
    /// Socket.
    Socket,
}

/// Metadata of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Type (and content digest or link target).
    pub kind: Kind,
    /// Permission and special bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Hard link count.
    pub nlink: u64,
    /// Extended attributes (name -> value), `security.selinux` excluded.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// A snapshot of a directory tree, keyed by path relative to the root (the root is `""`).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Entries by relative path.
    pub entries: BTreeMap<PathBuf, Entry>,
}

/// What [`Tree::diff`] compares beyond type, content, mode, owner and link target.
#[derive(Debug, Clone)]
pub struct Compare {
    /// Compare mtimes of non-directories.
    pub file_mtime: bool,
    /// Compare mtimes of directories.
    pub dir_mtime: bool,
    /// Compare only the seconds of mtimes (tar headers without PAX times have seconds).
    pub mtime_seconds_only: bool,
    /// Compare hard link counts.
    pub nlink: bool,
    /// Compare xattrs.
    pub xattrs: bool,
    /// Compare owners.
    pub owners: bool,
    /// Compare the root entry's own metadata.
    pub root: bool,
}

impl Default for Compare {
    fn default() -> Self {
        Compare {
            file_mtime: true,
            dir_mtime: false,
            mtime_seconds_only: false,
            nlink: true,
            xattrs: true,
            owners: true,
            root: false,
        }
    }
}

impl Tree {
    /// Capture the tree under `root` (not following symlinks).
    pub fn capture(root: &Path) -> io::Result<Tree> {
        let mut t = Tree::default();
        walk(root, Path::new(""), &mut t)?;
        Ok(t)
    }

    /// Human-readable differences from `self` (expected) to `other` (actual); empty when
    /// they agree.
    pub fn diff(&self, other: &Tree, cmp: &Compare) -> Vec<String> {
        let mut out = Vec::new();
        for (p, a) in &self.entries {
            if p.as_os_str().is_empty() && !cmp.root {
                continue;
            }
            let Some(b) = other.entries.get(p) else {
                out.push(format!("missing: {}", p.display()));
                continue;
            };
            let mut d = Vec::new();
            if a.kind != b.kind {
                d.push(format!("kind {:?} != {:?}", a.kind, b.kind));
            }
            if a.mode != b.mode {
                d.push(format!("mode {:o} != {:o}", a.mode, b.mode));
            }
            if cmp.owners && (a.uid, a.gid) != (b.uid, b.gid) {
                d.push(format!("owner {}:{} != {}:{}", a.uid, a.gid, b.uid, b.gid));
            }
            let is_dir = a.kind == Kind::Dir;
            let check_mtime = if is_dir { cmp.dir_mtime } else { cmp.file_mtime };
            let (ma, mb) = if cmp.mtime_seconds_only { ((a.mtime.0, 0), (b.mtime.0, 0)) } else { (a.mtime, b.mtime) };
            if check_mtime && ma != mb {
                d.push(format!("mtime {:?} != {:?}", a.mtime, b.mtime));
            }
            if cmp.nlink && !is_dir && a.nlink != b.nlink {
                d.push(format!("nlink {} != {}", a.nlink, b.nlink));
            }
            if cmp.xattrs && a.xattrs != b.xattrs {
                d.push(format!("xattrs {:?} != {:?}", a.xattrs.keys(), b.xattrs.keys()));
            }
            if !d.is_empty() {
                out.push(format!("{}: {}", p.display(), d.join("; ")));
            }
        }
        for p in other.entries.keys() {
            if !self.entries.contains_key(p) {
                out.push(format!("unexpected: {}", p.display()));
            }
        }
        out
    }
}

fn walk(root: &Path, rel: &Path, t: &mut Tree) -> io::Result<()> {
    let full = root.join(rel);
    let md = fs::symlink_metadata(&full)?;
    let ft = md.file_type();
    let kind = if ft.is_file() {
        Kind::File(Digest::sha256_of(&fs::read(&full)?))
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink(fs::read_link(&full)?)
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() {
        Kind::Char(md.rdev())
    } else if ft.is_block_device() {
        Kind::Block(md.rdev())
    } else {
        Kind::Socket
    };
    let entry = Entry {
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        size: if ft.is_file() { md.len() } else { 0 },
        mtime: (md.mtime(), md.mtime_nsec()),
        nlink: md.nlink(),
        xattrs: xattrs(&full),
    };
    t.entries.insert(rel.to_path_buf(), entry);
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(&full)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.sort();
        for n in names {
            walk(root, &rel.join(n), t)?;
        }
    }
    Ok(())
}

fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names) else { return out };
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name == "security.selinux" {
            continue;
        }
        let mut val = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut val) {
            val.truncate(len);
            out.insert(name, val);
        }
    }
    out
}
