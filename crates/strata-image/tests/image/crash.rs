//! Crash safety: a commit killed with SIGKILL at a random point never leaves a tag on a
//! missing or corrupt blob, and the store stays fsck-clean (temp files aside, which GC
//! removes).
//!
//! The parent re-executes this test binary as a child (`STRATA_IMAGE_CHILD=commit-loop`,
//! `--exact crash::child_main`) that unpacks the base image once and then commits in a
//! loop: one commit in three carries 2 MiB of fresh incompressible data (kills land in
//! the layer write), one a small edit, one config changes only (kills land in the
//! config, manifest and index writes). The parent kills it after a random delay, checks the store, and goes
//! on with a fresh child on the same store.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strata_image::{Container, Store};
use strata_store::GcOptions;

use crate::fixture::{opts, scratch, tomcat_store};

const RUNS: usize = 50;
const TAG: &str = "crash:latest";

fn spawn_child(layout: &Path, bundle: &Path, marker: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["crash::child_main", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("STRATA_IMAGE_CHILD", "commit-loop")
        .env("STRATA_IMAGE_CHILD_LAYOUT", layout)
        .env("STRATA_IMAGE_CHILD_BUNDLE", bundle)
        .env("STRATA_IMAGE_CHILD_MARKER", marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// xorshift64: deterministic delays without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..n / 8).flat_map(|_| r.next().to_le_bytes()).collect()
}

/// Where a kill landed, from what it left in `.strata/tmp/`: a half-written index, layer
/// (gzip) or config/manifest (JSON), or nothing (between writes).
fn landed(layout: &Path) -> &'static str {
    let mut what = "between writes";
    for e in fs::read_dir(layout.join(".strata/tmp")).into_iter().flatten() {
        let e = e.unwrap();
        let head: Vec<u8> = fs::read(e.path()).unwrap().into_iter().take(2).collect();
        what = if e.file_name().to_string_lossy().starts_with("file-") {
            "mid-index"
        } else if head.starts_with(b"\x1f\x8b") {
            "mid-layer"
        } else if head.starts_with(b"{") {
            "mid-config/manifest"
        } else {
            "blob just begun"
        };
    }
    what
}

#[test]
fn sigkill_during_commit_never_leaves_a_bad_tag() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let layout = store.path().unwrap().to_path_buf();
    // Many tags make index.json larger (~60 KB), so that its rewrite is long enough for
    // kills to land in it too.
    let desc = store.backend().resolve_ref("tomcat:latest").unwrap();
    store
        .backend()
        .update_index(&mut |idx| {
            for i in 0..300 {
                let mut d = desc.clone();
                d.set_annotation(strata_spec::ANNOTATION_REF_NAME, format!("127.0.0.1:5000/padding/tomcat:{i}"));
                idx.manifests.push(d);
            }
            Ok(())
        })
        .unwrap();
    let mut rng = Rng(0x5eed_cafe_f00d);
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut images = std::collections::BTreeSet::new();
    for run in 0..RUNS {
        let bundle = tmp.path().join(format!("bundle-{run}"));
        let marker = tmp.path().join(format!("ready-{run}"));
        let mut child = spawn_child(&layout, &bundle, &marker);
        while !marker.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("run {run}: child exited early ({status})");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 400_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        *seen.entry(landed(&layout)).or_default() += 1;

        // Every tag resolves to a whole image whose blobs are all there and intact.
        let report = store.fsck().unwrap();
        assert!(report.is_clean(), "run {run}: {report}");
        let mut targets = std::collections::BTreeMap::new();
        for (name, desc) in store.backend().refs().unwrap() {
            targets.entry(desc.digest.clone()).or_insert((name, desc));
        }
        for (name, desc) in targets.values() {
            let img = store.image_at(desc, &strata_image::Platform::host());
            let img = img.unwrap_or_else(|e| panic!("run {run}: tag {name}: {e}"));
            for l in img.layers() {
                assert!(store.backend().contains(&l.digest).unwrap(), "run {run}: {name}: layer {} missing", l.digest);
            }
        }
        assert_eq!(store.image("tomcat").unwrap().id(), base.id());
        if let Ok(img) = store.image(TAG) {
            assert_eq!(&img.config().rootfs.diff_ids[0], &base.config().rootfs.diff_ids[0]);
            images.insert(img.id().clone());
            if run % 10 == 0 {
                let out = tmp.path().join(format!("out-{run}"));
                img.unpack_raw(&out, &Default::default()).unwrap();
                fs::remove_dir_all(&out).unwrap();
            }
        }
        // GC takes the dead writer's temp files (their locks died with it) and the
        // images that lost their tag; then nothing is left over.
        store.backend().gc(&GcOptions { dry_run: false, temp_grace: Duration::ZERO, ..GcOptions::default() }).unwrap();
        let report = store.fsck().unwrap();
        assert!(report.is_clean() && report.temp_files.is_empty(), "run {run}: {report}");
        fs::remove_dir_all(&bundle).unwrap();
    }
    eprintln!("{RUNS} kills: {seen:?}; {} distinct images tagged {TAG} after a kill", images.len());
    // The kills did land inside commits, not only between them.
    assert!(seen.keys().any(|k| k.starts_with("mid-")), "{seen:?}");
    // And the store works on: a commit after all that.
    let c = base.unpack(tmp.path().join("after")).unwrap();
    fs::write(c.rootfs().join("etc/motd"), "after the crashes\n").unwrap();
    c.commit(&opts(1_700_000_999).tag(TAG)).unwrap();
    assert!(store.fsck().unwrap().is_clean());
}

/// The child side; without `STRATA_IMAGE_CHILD` this test does nothing.
#[test]
fn child_main() {
    let Ok(mode) = std::env::var("STRATA_IMAGE_CHILD") else { return };
    assert_eq!(mode, "commit-loop");
    let var = |k: &str| PathBuf::from(std::env::var_os(k).unwrap());
    let (layout, bundle, marker) =
        (var("STRATA_IMAGE_CHILD_LAYOUT"), var("STRATA_IMAGE_CHILD_BUNDLE"), var("STRATA_IMAGE_CHILD_MARKER"));
    let store = Store::open(&layout).unwrap();
    let c: Container = store.image("tomcat").unwrap().unpack(&bundle).unwrap();
    fs::write(&marker, b"").unwrap();
    // Start at a commit kind that depends on the pid, so early kills hit every kind.
    let seed = u64::from(std::process::id());
    for i in seed % 3.. {
        let o = opts(1_700_000_000 + i).message(format!("commit {i}")).tag(TAG);
        match i % 3 {
            0 => fs::write(c.rootfs().join("opt-big.bin"), noise(2 << 20, seed + i)).unwrap(),
            1 => fs::write(c.rootfs().join("etc/motd"), format!("commit {i}\n")).unwrap(),
            _ => {
                // Config only: a config, a manifest and the index, no layer.
                let base = store.image("tomcat").unwrap();
                base.with_config(&o.change(&format!("ENV I={i}")).unwrap()).unwrap();
                continue;
            }
        }
        c.commit(&o).unwrap();
    }
}
