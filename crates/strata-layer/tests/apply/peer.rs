//! Proof against a real peer: an image built here, written as an OCI layout by hand
//! (layers gzip-compressed and plain), unpacked by `umoci unpack` and by
//! strata from the same blobs, must give the same tree.
//!
//! Accepted differences (umoci's own behaviour, documented in docs/security.md):
//! - the root directory's own metadata (umoci makes `rootfs/` itself; compared off);
//! - directories a layer creates implicitly (a file whose parent has no entry): umoci
//!   leaves their parent's mtime at the time it made them, strata keeps the mtime the
//!   tar gives the parent. The layers here name every directory, as real tools write
//!   them, and then contents, types, modes, owners, link counts, symlink targets, xattrs,
//!   file and directory mtimes all agree.

use std::path::Path;
use std::process::Command;

use strata_layer::{ApplyOptions, LayerSource, apply_layers};
use strata_spec::{
    ANNOTATION_REF_NAME, Descriptor, Digest, History, ImageConfig, Index, Manifest, MediaType, Platform,
};
use strata_testkit::{Compare, Tree, require_tool, run};

use crate::util::*;

/// The layers: every entry type, whiteouts, opaque directories, replacements, hard links
/// across layers, devices, xattrs, setuid, long names, nanosecond mtimes.
fn image_layers() -> Vec<Vec<E>> {
    let long_dir = format!("usr/share/{}", "long-directory-name".repeat(4));
    let long = format!("{long_dir}/{}", "x".repeat(120));
    vec![
        vec![
            dir("etc").mtime(1_500_000_000),
            file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n").mtime(1_500_000_001),
            file("etc/shadow", b"root:*::\n").mode(0o640).owner(0, 42),
            dir("usr"),
            dir("usr/bin"),
            file("usr/bin/su", b"#!/bin/sh\n").mode(0o4755),
            file("usr/bin/crontab", b"#!/bin/sh\n").mode(0o2755).owner(0, 101),
            sym("usr/bin/sh", "dash"),
            sym("bin", "usr/bin"),
            file("usr/bin/dash", b"dash binary").mode(0o755),
            link("usr/bin/dash-link", "usr/bin/dash"),
            dir("tmp").mode(0o1777),
            dir("dev"),
            chr("dev/null", 1, 3),
            chr("dev/zero", 1, 5),
            blk("dev/sda", 8, 0).owner(0, 6),
            fifo("dev/initctl").mode(0o600),
            dir("home"),
            dir("home/user").owner(1000, 1000).mode(0o700),
            file("home/user/.profile", b"PS1='$ '\n").owner(1000, 1000),
            file("usr/bin/ping", b"ping").mode(0o755).xattr("user.cap", b"not really"),
            dir("usr/share"),
            dir(&long_dir),
            file(&long, b"long name"),
            file("ns", b"nanoseconds").pax("mtime", b"1600000000.123456789"),
            dir("opq"),
            file("opq/lower", b"lower"),
            dir("opq/sub"),
            file("opq/sub/deep", b"deep"),
            dir("gone"),
            file("gone/a", b"a"),
            file("f2d", b"file"),
            dir("d2f"),
            file("d2f/x", b"x"),
            sym("s2f", "etc/passwd"),
            file("shared", b"linked"),
            dir("wg"),
            file("wg/inner", b"lower"),
            dir("wg2"),
            file("wg2/inner", b"lower"),
        ],
        vec![
            wh("etc/shadow"),
            wh("gone"),
            dir("opq"),
            file("opq/before", b"b"),
            opq("opq"),
            file("opq/after", b"a"),
            dir("f2d"),
            file("f2d/inside", b"i"),
            file("d2f", b"now a file"),
            file("s2f", b"now a file"),
            link("usr/bin/sh-link", "usr/bin/dash"),
            link("shared-2", "shared"),
            file("dup", b"first"),
            file("dup", b"second"),
            file("etc/motd", b"welcome").mtime(1_700_000_000),
            // Whiteouts hide lower layers only, wherever they stand in the layer: the
            // directory keeps what this layer puts in it, nothing of the lower one.
            dir("wg"),
            file("wg/inner2", b"same layer"),
            wh("wg"),
            wh("wg2"),
            dir("wg2"),
            file("wg2/inner2", b"same layer"),
        ],
        vec![
            file("shared", b"rewritten: shared-2 keeps the old bytes"),
            file("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
            dir("home/app").owner(1000, 1000),
            wh("usr/bin/dash-link"),
            dir("etc").mode(0o750),
        ],
    ]
}

/// The media type of layer `i` and its blob: gzip and plain in turn. (umoci 0.4.7,
/// Debian's, refuses zstd layers: "blob is not correct mediatype"; zstd is covered by
/// `semantics.rs`.)
fn compressed(i: usize, tar: &[u8]) -> (MediaType, Vec<u8>) {
    if i.is_multiple_of(2) { (MediaType::OciLayerGzip, gzip(tar)) } else { (MediaType::OciLayer, tar.to_vec()) }
}

/// Write an OCI image layout at `dir` holding the layer tars `layers` (see
/// [`compressed`]) as tag `tag`; returns the layer descriptors and diff_ids.
fn write_layout(dir: &Path, tag: &str, layers: &[Vec<u8>]) -> Vec<(Descriptor, Digest)> {
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
    for (i, tar) in layers.iter().enumerate() {
        let (media_type, blob) = compressed(i, tar);
        descs.push(Descriptor::new(media_type, put(&blob), blob.len() as u64));
        let history = History { created_by: Some("strata test".into()), ..Default::default() };
        config.push_layer(Digest::sha256_of(tar), history);
    }
    let cj = config.to_canonical_json();
    let manifest = Manifest::new(
        MediaType::OciManifest,
        Descriptor::new(MediaType::OciConfig, put(&cj), cj.len() as u64),
        descs.clone(),
    );
    let mj = manifest.to_canonical_json();
    let mut md = Descriptor::new(MediaType::OciManifest, put(&mj), mj.len() as u64);
    md.set_annotation(ANNOTATION_REF_NAME, tag);
    let mut index = Index::new(Some(MediaType::OciIndex));
    index.manifests.push(md);
    std::fs::write(dir.join("index.json"), index.to_canonical_json()).unwrap();
    descs.into_iter().zip(layers.iter().map(|t| Digest::sha256_of(t))).collect()
}

#[test]
fn unpack_agrees_with_umoci() {
    if !require_tool("umoci") {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping: umoci comparison needs root (devices, owners)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tars: Vec<Vec<u8>> = image_layers().iter().map(|l| tar(l)).collect();
    let layout = t.path().join("oci");
    let descs = write_layout(&layout, "test", &tars);
    let bundle = t.path().join("bundle");
    run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:test", layout.display())).arg(&bundle));
    let mut theirs = Tree::capture(&bundle.join("rootfs")).unwrap();
    // umoci sets a directory's mtime when it meets the directory's entry, and a whiteout
    // later in the same layer that removes lower content from it moves the mtime to the
    // time of the unpack; strata sets directory mtimes once every layer is applied, as
    // the tar says. Only `wg` (declared, then a whiteout after its contents) shows it.
    let wg = theirs.entries.get_mut(Path::new("wg")).expect("umoci unpacked wg");
    wg.mtime = (MTIME as i64, 0);

    for resolver in RESOLVERS {
        let ours_dir = t.path().join(format!("ours-{resolver:?}"));
        // The same blobs umoci read, their compression declared by their media types.
        let layers: Vec<_> = descs
            .iter()
            .map(|(d, diff_id)| {
                let blob = std::fs::File::open(layout.join("blobs/sha256").join(d.digest.hex())).unwrap();
                LayerSource::from_descriptor(d, Some(diff_id.clone()), blob)
            })
            .collect();
        apply_layers(&ours_dir, layers, &ApplyOptions::default().resolver(resolver)).unwrap();
        let ours = Tree::capture(&ours_dir).unwrap();
        let cmp = Compare { dir_mtime: true, ..Compare::default() };
        let diff = theirs.diff(&ours, &cmp);
        assert!(diff.is_empty(), "{resolver:?}: strata and umoci disagree:\n{}", diff.join("\n"));
        // The tree is what the layers say, not merely what umoci says.
        assert!(ours.entries.contains_key(Path::new("opq/after")));
        assert!(!ours.entries.contains_key(Path::new("opq/lower")));
        assert!(!ours.entries.contains_key(Path::new("gone")));
        assert_eq!(ours.entries[Path::new("shared-2")].nlink, 1);
        for d in ["wg", "wg2"] {
            assert!(ours.entries.contains_key(&Path::new(d).join("inner2")), "{d}");
            assert!(!ours.entries.contains_key(&Path::new(d).join("inner")), "{d}");
        }
    }
}
