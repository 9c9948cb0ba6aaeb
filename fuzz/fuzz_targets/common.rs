//! Shared by the apply targets: a sandbox with a canary beside the root.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub root2: PathBuf,
    before: Vec<(PathBuf, u32, u32, u32, i64, i64, u64, Vec<u8>)>,
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, u32, i64, i64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let name = p.strip_prefix(dir).unwrap().to_path_buf();
        if name.starts_with("root") || name.starts_with("root2") {
            continue;
        }
        let content = if m.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
        out.push((name, m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec(), m.nlink(), content));
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap();
        let root = dir.path().join("root");
        let root2 = dir.path().join("root2");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&root2).unwrap();
        std::fs::create_dir_all(dir.path().join("canary/dir")).unwrap();
        std::fs::write(dir.path().join("canary/secret"), b"secret").unwrap();
        let before = snapshot(dir.path());
        Sandbox { dir, root, root2, before }
    }

    pub fn canary(&self) -> String {
        self.dir.path().join("canary").to_str().unwrap().to_string()
    }

    pub fn check(&self) {
        assert!(self.before == snapshot(self.dir.path()), "something outside the root changed");
    }
}
