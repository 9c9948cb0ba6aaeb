//! Tars as real tools write them, through the commands: `strata import` keeps what GNU
//! tar, bsdtar, Python's `tarfile` and the `tar` crate wrote, `strata unpack --raw`
//! gives the tree GNU tar extracts from the same tar, and `strata ls` and `strata cat`
//! show that tree without unpacking it.

use std::path::Path;

use strata_testkit::tars::{FULL, NO_XATTRS, Profile, USTAR, Writer, gnu_extract, make_tar, make_tree};
use strata_testkit::{Compare, Kind, Tree, require_tool, root_user};

use crate::common::Env;

fn check(env: &Env, name: &str, writer: &Writer, profile: Profile) {
    let case = env.path(name);
    let src = case.join("src");
    make_tree(&src, profile);
    let tar = case.join("layer.tar");
    make_tar(writer, &src, &tar);
    let theirs = gnu_extract(&tar, &case.join("gnu"));
    let tag = format!("conformance:{}", name.replace(' ', "-"));
    env.ok(&["import", tar.to_str().unwrap(), &tag]);
    let out = case.join("ours");
    env.ok(&["unpack", "--raw", &tag, out.to_str().unwrap()]);
    let ours = Tree::capture(&out).unwrap();
    // Directory mtimes as GNU tar leaves them depend on the archive's order (see
    // strata-layer's merged/conformance.rs); everything else must agree.
    let cmp = Compare { dir_mtime: false, owners: root_user(), ..Compare::default() };
    let diff = theirs.diff(&ours, &cmp);
    assert!(diff.is_empty(), "{name}: import + unpack --raw vs GNU tar:\n{}", diff.join("\n"));
    assert!(ours.entries.contains_key(Path::new("a/file")), "{name}");

    // The merged view lists every path with its type, mode and size, and reads each file.
    let listed: serde_json::Value = serde_json::from_str(&env.ok(&["ls", "--json", &tag, "/"])).unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|e| e["Path"].as_str().unwrap()).collect();
    let top: Vec<String> =
        ours.entries.keys().filter(|p| p.components().count() == 1).map(|p| format!("/{}", p.display())).collect();
    assert_eq!(names, top, "{name}: ls /");
    for (path, e) in &ours.entries {
        let Kind::File(digest) = &e.kind else { continue };
        let out = env.cmd(&["cat", &tag, path.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{name}: cat {}", path.display());
        assert_eq!(&strata_spec::Digest::sha256_of(&out.stdout), digest, "{name}: cat {}", path.display());
    }
}

#[test]
fn import_and_unpack_what_real_tar_writers_write() {
    if !require_tool("tar") || !require_tool("bsdtar") || !require_tool("python3") {
        return;
    }
    let env = Env::new();
    let cases: &[(&str, Writer, Profile)] = &[
        ("gnu posix sparse", Writer::Gnu(&["--format=posix", "--xattrs", "--sparse"]), FULL),
        ("gnu oldgnu sparse", Writer::Gnu(&["--format=oldgnu", "--sparse"]), NO_XATTRS),
        ("gnu ustar", Writer::Gnu(&["--format=ustar"]), USTAR),
        ("bsdtar pax", Writer::Bsd(&["--format=pax", "--read-sparse"]), FULL),
        ("python gnu", Writer::Python("GNU_FORMAT"), NO_XATTRS),
        ("tar crate", Writer::TarCrate, NO_XATTRS),
    ];
    for (name, writer, profile) in cases {
        check(&env, name, writer, *profile);
    }
}
