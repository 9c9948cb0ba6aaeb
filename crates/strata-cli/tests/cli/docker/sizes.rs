//! Sizes: the same image shows the same `Size` in `inspect`, the same SIZE in `images`
//! and `history`, in strata and in docker, both ways, whatever the layers' compression.

use std::collections::BTreeMap;

use crate::common::Env;
use crate::docker::{cells, docker_rows, strata_rows};

/// A rootfs whose file contents add up to `999_600` bytes (docker prints `1e+03kB`), with a
/// hard link, a symlink and a directory that count nothing.
fn rootfs(dir: &std::path::Path) -> u64 {
    std::fs::create_dir_all(dir.join("d")).unwrap();
    let big: Vec<u8> = (0..995_600u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("d/big"), &big).unwrap();
    std::fs::write(dir.join("a"), vec![b'a'; 4000]).unwrap();
    std::fs::hard_link(dir.join("a"), dir.join("a.link")).unwrap();
    std::os::unix::fs::symlink("a", dir.join("s")).unwrap();
    999_600
}

#[test]
fn sizes_agree_with_docker_both_ways() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let content = rootfs(&env.path("rootfs"));
    let repo = docker.unique("strata-sizes");
    let (base, child) = (format!("{repo}:base"), format!("{repo}:child"));
    env.ok(&["import", "rootfs", &base]);
    // A second layer on top: one more file of 1234 bytes, and one deleted.
    env.ok(&["unpack", &base, "c"]);
    std::fs::write(env.path("c/rootfs/more"), vec![b'm'; 1234]).unwrap();
    std::fs::remove_file(env.path("c/rootfs/s")).unwrap();
    env.ok(&["commit", "c", &child, "-m", "more"]);

    // strata's figures: the content, not the gzip blobs.
    let size = |r: &str| env.inspect(r)[0]["Size"].as_u64().unwrap();
    assert_eq!(size(&base), content);
    assert_eq!(size(&child), content + 1234);
    let stored = env.inspect(&child)[0]["Strata"]["StoredSize"].as_u64().unwrap();
    assert!(stored < content, "gzip layers of compressible files: {stored}");

    env.ok(&["save", &base, &child, "-o", "strata.tar"]);
    docker.load(&env.path("strata.tar"));
    for r in [&base, &child] {
        assert_eq!(docker.inspect(r)["Size"].as_u64().unwrap(), size(r), "Size of {r}");
    }
    // `images`: the SIZE cell of each tag, and docker's `1e+03kB` for 999,600 bytes.
    let ours = strata_rows(&env, &["images"], &repo);
    let theirs = docker_rows(docker, &["images", &repo], &repo);
    let by_tag = |rows: &[Vec<String>]| -> BTreeMap<String, String> {
        rows.iter().map(|r| (r[1].clone(), r[4].clone())).collect()
    };
    assert_eq!(by_tag(&ours), by_tag(&theirs), "images:\n{ours:?}\n{theirs:?}");
    assert_eq!(by_tag(&ours)["base"], "1e+03kB");
    // `history`: the SIZE of each row (0B for the empty step).
    for r in [&base, &child] {
        let ours: Vec<String> = cells(&env.ok(&["history", r])).into_iter().map(|c| c[3].clone()).collect();
        let theirs: Vec<String> = cells(&docker.ok(&["history", r])).into_iter().map(|c| c[3].clone()).collect();
        assert_eq!(ours, theirs, "history SIZE of {r}");
    }

    // docker -> strata: a docker commit on top, saved by docker (plain tar layers), has
    // the same sizes in strata, and in a strata store where the layers are gzip.
    let ctr = docker.unique("strata-sizes-ctr");
    let from_docker = format!("{repo}:docker");
    docker.ok(&["create", "--name", &ctr, &child, "true"]);
    docker.ok(&["commit", "-m", "by docker", &ctr, &from_docker]);
    docker.save(&[&from_docker], &env.path("docker.tar"));
    env.ok(&["load", "-i", "docker.tar"]);
    assert_eq!(size(&from_docker), docker.inspect(&from_docker)["Size"].as_u64().unwrap());
    let ours: Vec<String> = cells(&env.ok(&["history", &from_docker])).into_iter().map(|c| c[3].clone()).collect();
    let theirs: Vec<String> = cells(&docker.ok(&["history", &from_docker])).into_iter().map(|c| c[3].clone()).collect();
    assert_eq!(ours, theirs);
    // One image, one size, in two strata stores: the loaded one holds plain tars.
    let other = Env::new();
    other.ok(&["load", "-i", env.path("strata.tar").to_str().unwrap()]);
    assert_eq!(other.inspect(&child)[0]["Size"], env.inspect(&child)[0]["Size"]);
    assert_ne!(other.inspect(&child)[0]["Strata"]["StoredSize"], env.inspect(&child)[0]["Strata"]["StoredSize"]);
    docker.cleanup(&[&from_docker, &child, &base], &[&ctr]);
}
