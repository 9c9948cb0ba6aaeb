//! Real peers: the merged view of an image written as an OCI layout by hand lists the
//! tree `umoci unpack` makes of it (paths, types, sizes, link targets; contents read
//! back), and its export, extracted by GNU `tar -xpf`, is that tree (contents, types,
//! modes, owners, link counts, symlink targets, xattrs, file mtimes).

use std::fs::File;
use std::path::Path;
use std::process::Command;

use strata_layer::{ExportOptions, LayerSource, MergeOptions, MergedTree, WriteOptions};
use strata_spec::{
    ANNOTATION_REF_NAME, Compression, Descriptor, Digest, History, ImageConfig, Index, Manifest, MediaType, Platform,
};
use strata_testkit::{Compare, Tree, require_tool, run};

use crate::common::{root_user, view};
use crate::util::*;

/// Three layers: whiteouts, an opaque directory, replacements, hard links whose first
/// name goes away, symlinked parents, devices, xattrs, long names.
fn image_layers() -> Vec<Vec<E>> {
    let long = format!("usr/share/{}/{}", "long-directory-name".repeat(4), "x".repeat(120));
    vec![
        vec![
            dir("etc").mtime(1_500_000_000),
            file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            file("etc/shadow", b"root:*::\n").mode(0o640).owner(0, 42),
            dir("usr"),
            dir("usr/bin"),
            dir("usr/lib"),
            sym("lib", "usr/lib"),
            file("usr/bin/su", b"#!/bin/sh\n").mode(0o4755),
            file("usr/bin/dash", b"dash binary").mode(0o755),
            link("usr/bin/sh", "usr/bin/dash"),
            link("usr/bin/sh2", "usr/bin/dash"),
            dir("dev"),
            chr("dev/null", 1, 3),
            fifo("dev/initctl").mode(0o600),
            dir("usr/share"),
            dir(&long[..long.rfind('/').unwrap()]),
            file(&long, b"long name"),
            file("usr/bin/ping", b"ping").xattr("user.cap", b"not really"),
            dir("opq"),
            file("opq/lower", b"lower"),
            dir("gone"),
            file("gone/a", b"a"),
            file("f2d", b"file"),
            dir("d2f"),
            file("d2f/x", b"x"),
        ],
        vec![
            wh("etc/shadow"),
            wh("gone"),
            wh("usr/bin/dash"),
            dir("opq"),
            opq("opq"),
            file("opq/after", b"a"),
            dir("f2d"),
            file("f2d/inside", b"i"),
            file("d2f", b"now a file"),
            file("lib/libx.so", b"through the lib symlink"),
        ],
        vec![file("usr/bin/sh2", b"replaced"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:\n")],
    ]
}

fn write_layout(dir: &Path, layers: &[Vec<u8>]) -> Vec<(Descriptor, Digest)> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::sha256_of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let mut config = ImageConfig::new(&Platform::new("linux", "amd64", None));
    let mut descs = Vec::new();
    for tar in layers {
        let blob = gzip(tar);
        descs.push((Descriptor::new(MediaType::OciLayerGzip, put(&blob), blob.len() as u64), Digest::sha256_of(tar)));
        config.push_layer(
            Digest::sha256_of(tar),
            History { created_by: Some("strata test".into()), ..Default::default() },
        );
    }
    let cj = config.to_canonical_json();
    let manifest = Manifest::new(
        MediaType::OciManifest,
        Descriptor::new(MediaType::OciConfig, put(&cj), cj.len() as u64),
        descs.iter().map(|(d, _)| d.clone()).collect(),
    );
    let mj = manifest.to_canonical_json();
    let mut md = Descriptor::new(MediaType::OciManifest, put(&mj), mj.len() as u64);
    md.set_annotation(ANNOTATION_REF_NAME, "test");
    let mut index = Index::new(Some(MediaType::OciIndex));
    index.manifests.push(md);
    std::fs::write(dir.join("index.json"), index.to_canonical_json()).unwrap();
    descs
}

#[test]
fn merged_view_and_export_agree_with_umoci_and_gnu_tar() {
    if !require_tool("umoci") || !require_tool("tar") {
        return;
    }
    if !root_user() {
        eprintln!("skipping: the umoci comparison needs root (devices, owners)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tars: Vec<Vec<u8>> = image_layers().iter().map(|l| tar(l)).collect();
    let layout = t.path().join("oci");
    let descs = write_layout(&layout, &tars);
    let bundle = t.path().join("bundle");
    run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:test", layout.display())).arg(&bundle));
    let theirs = Tree::capture(&bundle.join("rootfs")).unwrap();

    let blob = |d: &Descriptor| layout.join("blobs/sha256").join(d.digest.hex());
    let sources = descs
        .iter()
        .map(|(d, diff_id)| LayerSource::from_descriptor(d, Some(diff_id.clone()), File::open(blob(d)).unwrap()));
    let m = MergedTree::build(sources, &MergeOptions::default()).unwrap();
    // The merged view lists umoci's tree: paths, types, sizes, link targets and (read
    // back from the blobs) contents; modes, owners, link counts and file mtimes too.
    let blobs: Vec<Vec<u8>> = descs.iter().map(|(d, _)| std::fs::read(blob(d)).unwrap()).collect();
    let ours = view(&m, &blobs);
    let cmp = Compare { dir_mtime: false, ..Compare::default() };
    let d = theirs.diff(&ours, &cmp);
    assert!(d.is_empty(), "merged view vs umoci unpack:\n{}", d.join("\n"));
    assert!(ours.entries.contains_key(Path::new("usr/lib/libx.so")), "written through the lib symlink");
    assert_eq!(ours.entries[Path::new("usr/bin/sh")].nlink, 1);

    // Export (gzip, as flatten writes it), extracted by GNU tar.
    let out = t.path().join("flat.tar.gz");
    let open = |i: usize| File::open(blob(&descs[i].0));
    let opts = WriteOptions::default().compression(Compression::Gzip);
    let (info, _) = m.export(File::create(&out).unwrap(), &opts, open, &ExportOptions::default()).unwrap();
    assert_eq!(info.digest, Digest::sha256_of(&std::fs::read(&out).unwrap()));
    let x = t.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar").arg("-C").arg(&x).arg("--xattrs").arg("--xattrs-include=*").arg("-xpzf").arg(&out));
    let extracted = Tree::capture(&x).unwrap();
    let d = theirs.diff(&extracted, &cmp);
    assert!(d.is_empty(), "export extracted by GNU tar vs umoci unpack:\n{}", d.join("\n"));
}
