//! Real peers read what strata writes: gzip, pigz, zstd and GNU tar read the streams;
//! `umoci unpack` turns an image with a strata-written diff layer into the changed tree.

use std::fs;
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use strata_layer::diff::{self, DiffOptions};
use strata_layer::{Changes, LayerInfo, Snapshot, WriteOptions, write_tree};
use strata_spec::Compression;
use strata_testkit::{Compare, Tree, require_tool, run};

use crate::differs::{base, changed, real_overlay};
use crate::fixture::{self, Spec, arb_ops, arb_spec, file};
use crate::layers::{list, oci_layout};

fn layer_of(root: &Path) -> (Vec<u8>, LayerInfo) {
    let mut blob = Vec::new();
    let (info, _) = write_tree(root, &mut blob, &WriteOptions::default()).unwrap();
    (blob, info)
}

fn diff_layer(c: &Changes, root: &Path) -> (Vec<u8>, LayerInfo) {
    let mut blob = Vec::new();
    let info = c.write_layer(root, &mut blob, &WriteOptions::default().block_size(4096)).unwrap();
    (blob, info)
}

/// Unpack `layers` with umoci and compare the result with `want`.
fn umoci_gives(tmp: &Path, layers: &[(Vec<u8>, LayerInfo)], want: &Tree) -> Result<(), String> {
    let layout = tmp.join("oci");
    let bundle = tmp.join("bundle");
    let _ = fs::remove_dir_all(&layout);
    let _ = fs::remove_dir_all(&bundle);
    oci_layout(&layout, layers, "test");
    run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:test", layout.display())).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let got = Tree::capture(&rootfs).unwrap();
    if let Some(p) = got.entries.keys().find(|p| p.to_string_lossy().contains(".wh.")) {
        return Err(format!("whiteout file left in the unpacked tree: {}", p.display()));
    }
    let d = want.diff(&got, &Compare { dir_mtime: true, ..Compare::default() });
    if d.is_empty() { Ok(()) } else { Err(d.join("\n")) }
}

#[test]
fn gzip_pigz_and_tar_read_multi_member_layers() {
    if !require_tool("pigz") || !require_tool("gzip") || !require_tool("tar") || !require_tool("zstd") {
        return;
    }
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "root");
    let mut s = base();
    for i in 0..30 {
        s.0.insert(
            format!("opt/blob{i}"),
            file(&(0..20_000u32).map(|x| (x * 7 + i) as u8).collect::<Vec<_>>(), 0o644, 5),
        );
    }
    s.build(&root);
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut blob = Vec::new();
        let (info, _) =
            write_tree(&root, &mut blob, &WriteOptions::default().compression(c).block_size(16384)).unwrap();
        let path = tmp.path().join(format!("layer.{c}"));
        fs::write(&path, &blob).unwrap();
        let tools: &[&str] = if c == Compression::Gzip { &["gzip", "pigz"] } else { &["zstd"] };
        for tool in tools {
            run(Command::new(tool).arg("-t").arg(&path));
            let out = Command::new(tool).arg("-dc").arg(&path).output().unwrap();
            assert!(out.status.success());
            assert_eq!(strata_spec::Digest::sha256_of(&out.stdout), info.diff_id, "{tool}");
        }
        let listing = run(Command::new("tar").arg("-tf").arg(&path));
        let ours: Vec<String> = list(&crate::layers::decompress(&blob, c)).into_iter().map(|s| s.name).collect();
        assert_eq!(listing.lines().collect::<Vec<_>>(), ours);
        if c == Compression::Gzip {
            let members = blob.windows(10).filter(|w| *w == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]).count();
            assert!(members > 10, "{members} members: the test must cover multi-member output");
        }
    }
}

#[test]
fn umoci_unpacks_a_trees_layer_to_the_changed_tree() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = fixture::scratch();
    let (lower, upper) = (fixture::subdir(tmp.path(), "lower"), fixture::subdir(tmp.path(), "upper"));
    base().build(&lower);
    changed().build(&upper);
    let c = diff::trees(&lower, &upper, &DiffOptions::default()).unwrap();
    let layers = [layer_of(&lower), diff_layer(&c, &upper)];
    umoci_gives(tmp.path(), &layers, &Tree::capture(&upper).unwrap()).unwrap();
}

#[test]
fn umoci_unpacks_a_since_layer_to_the_changed_tree() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = fixture::scratch();
    let root = fixture::subdir(tmp.path(), "rootfs");
    base().build(&root);
    let first = layer_of(&root);
    let snap = Snapshot::capture(&root).unwrap();
    base().sync(&changed(), &root);
    fs::hard_link(root.join("etc/motd"), root.join("home/motd-link")).unwrap();
    let c = diff::since(&snap, &root, &DiffOptions::default()).unwrap();
    let layers = [first, diff_layer(&c, &root)];
    umoci_gives(tmp.path(), &layers, &Tree::capture(&root).unwrap()).unwrap();
}

#[test]
fn umoci_unpacks_an_overlay_layer_to_the_merged_tree() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = fixture::scratch();
    let Some((lower, upper, merged)) = real_overlay(tmp.path()) else { return };
    let c = diff::overlay(&upper, &DiffOptions::default()).unwrap();
    let layers = [layer_of(&lower), diff_layer(&c, &upper)];
    umoci_gives(tmp.path(), &layers, &merged).unwrap();
}

proptest! {
    // Each case runs umoci twice: keep the count small.
    #![proptest_config(strata_testkit::proptest_config(10))]

    /// Applying diff(a, b) on top of a gives b, with umoci as the applier, for layers
    /// from `trees` and from `since`.
    #[test]
    fn umoci_applies_generated_diffs(a in arb_spec(), ops in arb_ops()) {
        if !require_tool("umoci") {
            return Ok(());
        }
        let b: Spec = a.mutate(&ops);
        let tmp = fixture::scratch();
        let (da, db) = (fixture::subdir(tmp.path(), "a"), fixture::subdir(tmp.path(), "b"));
        a.build(&da);
        b.build(&db);
        let want = Tree::capture(&db).unwrap();
        let first = layer_of(&da);
        let t = diff::trees(&da, &db, &DiffOptions::default()).unwrap();
        let r = umoci_gives(tmp.path(), &[first.clone(), diff_layer(&t, &db)], &want);
        prop_assert!(r.is_ok(), "trees layer ({:?}):\n{}\n{}", ops, t.docker_diff(), r.unwrap_err());

        let snap = Snapshot::capture(&da).unwrap();
        a.sync(&b, &da);
        let s = diff::since(&snap, &da, &DiffOptions::default()).unwrap();
        let r = umoci_gives(tmp.path(), &[first, diff_layer(&s, &da)], &want);
        prop_assert!(r.is_ok(), "since layer ({:?}):\n{}\n{}", ops, s.docker_diff(), r.unwrap_err());
    }
}
