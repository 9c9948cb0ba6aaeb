//! The child side of multi-process tests. Parents re-execute this test binary with
//! `STRATA_STORE_CHILD=<mode>` and `--exact child::child_main`; without the variable
//! this test does nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strata_store::{Backend, BlobStore, OciDir};

use crate::common::write_image;

/// Start this binary as a child in `mode` on the layout at `layout`.
pub fn spawn(mode: &str, layout: &Path, id: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child::child_main", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("STRATA_STORE_CHILD", mode)
        .env("STRATA_STORE_CHILD_LAYOUT", layout)
        .env("STRATA_STORE_CHILD_ID", id.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The file a child creates when it reaches the point the parent waits for.
pub fn marker(layout: &Path, id: usize) -> PathBuf {
    layout.parent().unwrap().join(format!("ready-{id}"))
}

/// Wait until `path` exists (the child got there), failing if the child died first.
pub fn wait_for(path: &Path, child: &mut Child) {
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early ({status}) before {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How many tags each tagger sets.
pub const TAGS_PER_CHILD: usize = 50;

pub fn tag_name(id: usize, j: usize) -> String {
    format!("127.0.0.1:5000/child{id}:tag{j}")
}

#[test]
fn child_main() {
    let Ok(mode) = std::env::var("STRATA_STORE_CHILD") else { return };
    let layout = PathBuf::from(std::env::var("STRATA_STORE_CHILD_LAYOUT").unwrap());
    let id: usize = std::env::var("STRATA_STORE_CHILD_ID").unwrap().parse().unwrap();
    let store = OciDir::open(&layout).unwrap();
    match mode.as_str() {
        // Write 50 images and tag each, each under a lease, as a real writer would.
        "tagger" => {
            for j in 0..TAGS_PER_CHILD {
                let lease = store.lease().unwrap();
                let img = write_image(&store, &format!("child {id} image {j}"));
                // The same blob from every child at once: concurrent commits of one digest.
                store.put_blob(b"shared by every child").unwrap();
                store.set_ref(&tag_name(id, j), &img.manifest).unwrap();
                drop(lease);
            }
        }
        // Start a large blob, signal, then hang mid-write until killed.
        "slow-writer" => {
            let mut w = store.begin_write().unwrap();
            let chunk = vec![0x5au8; 1 << 20];
            for _ in 0..4 {
                w.write_all(&chunk).unwrap();
            }
            w.flush().unwrap();
            std::fs::write(marker(&layout, id), b"").unwrap();
            loop {
                w.write_all(&chunk[..4096]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Rewrite index.json forever: re-point tags between two images.
        "index-writer" => {
            let a = write_image(&store, "index writer a");
            let b = write_image(&store, "index writer b");
            let mut n = 0usize;
            loop {
                let img = if n.is_multiple_of(2) { &a } else { &b };
                store.set_ref(&format!("spin{}", n % 64), &img.manifest).unwrap();
                if n == 64 {
                    std::fs::write(marker(&layout, id), b"").unwrap();
                }
                n += 1;
            }
        }
        // Hold a lease over untagged blobs until told to go on, then tag them.
        "lease-holder" => {
            let lease = store.lease().unwrap();
            let img = write_image(&store, "leased by a child");
            std::fs::write(marker(&layout, id), b"").unwrap();
            let go = layout.parent().unwrap().join("go");
            while !go.exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
            store.set_ref("leased", &img.manifest).unwrap();
            drop(lease);
        }
        other => panic!("unknown child mode {other}"),
    }
}
