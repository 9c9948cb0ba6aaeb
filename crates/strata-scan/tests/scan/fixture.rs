//! Images made from directories the tests write.

use std::fs;
use std::path::Path;
use std::process::Command;

use strata_image::{CommitOptions, Image, LayerInput, Store};

/// A store in a temporary directory.
pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("store")).unwrap();
    (dir, store)
}

/// Write `content` at `root/rel`, creating parents.
pub fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// An image of one layer per directory, base first.
pub fn image(store: &Store, tag: &str, layers: &[&Path]) -> Image {
    let opts = CommitOptions::default().tag(tag);
    let mut img = store.import(LayerInput::Dir(layers[0]), &opts).unwrap();
    for l in &layers[1..] {
        img = img.append(LayerInput::Dir(l), &opts).unwrap();
    }
    img
}

/// Run a command, returning stdout (panics with stderr on failure).
pub fn run(cmd: &mut Command) -> String {
    strata_testkit::run(cmd)
}

/// Sorted non-empty lines.
pub fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    v.sort();
    v
}

/// Run `sh -s` with `script` on its standard input (too long for an argument), returning
/// stdout.
pub fn sh(script: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("sh")
        .arg("-s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sh -s failed: {}", out.status);
    String::from_utf8(out.stdout).unwrap()
}
