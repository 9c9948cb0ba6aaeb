//! Interop with the real tools: what strata writes, oci-image-tool and skopeo accept;
//! what umoci and skopeo write, strata opens, lists and checks clean.

use std::path::Path;
use std::process::Command;

use strata_store::spec::MediaType;
use strata_store::{Backend, BlobStore, GcOptions, MAX_DOCUMENT_SIZE, OciDir};
use strata_testkit::{require_tool, run};

use crate::common::write_image;

/// Open a layout another tool wrote, list it, check it clean; returns the store.
fn open_list_check(root: &Path, tag: &str) -> OciDir {
    let store = OciDir::open(root).unwrap();
    let refs = store.refs().unwrap();
    assert!(refs.iter().any(|(n, _)| n == tag), "{}: refs {refs:?}", root.display());
    let desc = store.resolve_ref(tag).unwrap();
    assert!(desc.media_type.is_manifest(), "{}", desc.media_type);
    let manifest = strata_store::spec::Manifest::from_slice_as(
        &store.read_descriptor(&desc, MAX_DOCUMENT_SIZE).unwrap(),
        &desc.media_type,
    )
    .unwrap();
    store.read_descriptor(&manifest.config, MAX_DOCUMENT_SIZE).unwrap();
    for layer in &manifest.layers {
        let mut r = store.open_descriptor(layer).unwrap();
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert!(r.is_verified());
    }
    assert!(!store.list().unwrap().is_empty());
    let report = store.fsck().unwrap();
    assert!(report.is_clean(), "{}: {report}", root.display());
    assert!(report.temp_files.is_empty());
    store
}

#[test]
fn strata_layouts_pass_oci_image_tool_and_skopeo() {
    if !require_tool("oci-image-tool") || !require_tool("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("strata");
    let store = OciDir::create(&root).unwrap();
    let img = write_image(&store, "interop");
    store.set_ref("v1", &img.manifest).unwrap();
    store.set_ref("tomcat02:1.0", &img.manifest).unwrap();
    // Junk and a GC, so that what the tools see went through strata's whole write path.
    write_image(&store, "garbage");
    assert_eq!(store.gc(&GcOptions::default()).unwrap().removed.len(), 3);

    run(Command::new("oci-image-tool").args(["validate", "--type", "image", "--ref", "name=v1"]).arg(&root));
    let out = run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:v1", root.display())));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], img.manifest.digest.as_str());
    assert_eq!(v["Layers"][0], img.layer.digest.as_str());
    assert_eq!(v["Os"], "linux");

    // skopeo copies it out (tag with a colon in it) and strata reads the copy.
    let copy = dir.path().join("copy");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:tomcat02:1.0", root.display()))
        .arg(format!("oci:{}:copied", copy.display())));
    let copied = open_list_check(&copy, "copied");
    // skopeo re-serialises the manifest (its own key order), but the config is ours.
    let desc = copied.resolve_ref("copied").unwrap();
    let manifest =
        strata_store::spec::Manifest::from_slice(&copied.read_descriptor(&desc, MAX_DOCUMENT_SIZE).unwrap()).unwrap();
    assert_eq!(manifest.config.digest, img.config.digest);
}

#[test]
fn umoci_layouts_open_list_and_check_clean() {
    if !require_tool("umoci") || !require_tool("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("umoci");
    run(Command::new("umoci").args(["init", "--layout"]).arg(&root));
    let image = format!("{}:base", root.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args(["config", "--image", &image, "--config.cmd", "sh", "--author", "strata tests"]));
    let file = dir.path().join("hello");
    std::fs::write(&file, b"hello\n").unwrap();
    run(Command::new("umoci").args(["insert", "--image", &image]).arg(&file).arg("/hello"));

    // Reading commands change nothing in another tool's layout (not even `.strata/`).
    let before = crate::common::snapshot(&root);
    let store = open_list_check(&root, "base");
    store.gc(&GcOptions::dry_run()).unwrap();
    crate::common::assert_unchanged(&before, &crate::common::snapshot(&root), "reading a umoci layout");
    assert!(!root.join(".strata").exists());
    let desc = store.resolve_ref("base").unwrap();
    assert_eq!(desc.media_type, MediaType::OciManifest);
    // umoci leaves the superseded manifests and configs behind: unreferenced, not problems.
    let before = store.list().unwrap().len();
    let report = store.gc(&GcOptions::default()).unwrap();
    assert!(!report.removed.is_empty());
    assert_eq!(report.kept + report.removed.len(), before);
    // strata tags into umoci's layout; umoci and skopeo still read it.
    store.set_ref("strata-tag", &desc).unwrap();
    let ls = run(Command::new("umoci").args(["ls", "--layout"]).arg(&root));
    assert_eq!(ls.lines().collect::<Vec<_>>(), ["base", "strata-tag"]);
    run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:strata-tag", root.display())));
    open_list_check(&root, "strata-tag");
}

#[test]
fn podman_layouts_open_list_and_check_clean() {
    if !require_tool("podman") || !require_tool("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("strata");
    let store = OciDir::create(&root).unwrap();
    let img = write_image(&store, "for podman");
    store.set_ref("v1", &img.manifest).unwrap();
    // Into a private podman storage (vfs, no daemon), then out again with `podman save`.
    let (graph, runroot) = (dir.path().join("graph"), dir.path().join("run"));
    let storage = format!("containers-storage:[vfs@{}+{}]localhost/strata:v1", graph.display(), runroot.display());
    run(Command::new("skopeo").args(["copy", "--quiet"]).arg(format!("oci:{}:v1", root.display())).arg(&storage));
    let saved = dir.path().join("podman-saved");
    run(Command::new("podman")
        .args(["--storage-driver", "vfs", "--root"])
        .arg(&graph)
        .arg("--runroot")
        .arg(&runroot)
        .args(["save", "--quiet", "--format", "oci-dir", "-o"])
        .arg(&saved)
        .arg("localhost/strata:v1"));
    let podman = open_list_check(&saved, "localhost/strata:v1");
    let desc = podman.resolve_ref("localhost/strata:v1").unwrap();
    let manifest =
        strata_store::spec::Manifest::from_slice(&podman.read_descriptor(&desc, MAX_DOCUMENT_SIZE).unwrap()).unwrap();
    assert_eq!(manifest.layers.len(), 1);
}
