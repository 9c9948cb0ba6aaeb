//! `inspect`: strata prints every key docker's image inspect has, with the same values,
//! for images strata made (loaded into docker) and images docker made (loaded into
//! strata).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::{Env, tomcat_rootfs};

/// Keys the engine here (20.10) prints that current docker (API 1.45+) no longer does;
/// strata follows current docker (`docs/docker-compat.md`).
const DROPPED_BY_DOCKER: [&str; 3] = ["Container", "ContainerConfig", "VirtualSize"];
/// strata's keys docker 20.10 does not print: `Descriptor` (current docker prints it
/// with the containerd image store) and `Strata`, strata's own.
const STRATA_ONLY: [&str; 2] = ["Descriptor", "Strata"];
/// Keys whose values must agree.
const SAME_VALUES: [&str; 14] = [
    "Id",
    "RepoTags",
    "RepoDigests",
    "Parent",
    "Comment",
    "Created",
    "DockerVersion",
    "Author",
    "Config",
    "Architecture",
    "Os",
    "Size",
    "RootFS",
    "GraphDriver",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// strata's inspect of `reference` against docker's: the same keys but the documented
/// ones, the same values for [`SAME_VALUES`] (GraphDriver: the same keys and `Data`).
fn compare(env: &Env, docker: &strata_testkit::Docker, reference: &str) {
    let ours = env.inspect(reference)[0].clone();
    let theirs = docker.inspect(reference);
    let mut want = keys(&theirs);
    for k in DROPPED_BY_DOCKER {
        want.remove(k);
    }
    let mut got = keys(&ours);
    for k in STRATA_ONLY {
        assert!(got.remove(k), "{reference}: no {k}");
    }
    assert_eq!(got, want, "{reference}: keys\nstrata: {ours:#}\ndocker: {theirs:#}");
    for k in SAME_VALUES {
        if k == "GraphDriver" {
            assert_eq!(keys(&ours[k]), keys(&theirs[k]), "{reference}: {k}");
            assert_eq!(ours[k]["Data"], theirs[k]["Data"], "{reference}: {k}");
            continue;
        }
        assert_eq!(ours[k], theirs[k], "{reference}: {k}\nstrata: {:#}\ndocker: {:#}", ours[k], theirs[k]);
    }
    // Metadata.LastTagTime: a time in both (docker's zero time after a load; strata's
    // the time the tag was set in its store, see docs/docker-compat.md).
    for v in [&ours, &theirs] {
        let t = v["Metadata"]["LastTagTime"].as_str().unwrap();
        assert!(strata_spec::time::parse_rfc3339(t).is_some(), "{reference}: {t}");
    }
    assert_eq!(ours.get("Variant"), theirs.get("Variant"), "{reference}: Variant");
}

#[test]
fn inspect_matches_docker_for_strata_images() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let repo = docker.unique("strata-inspect");
    let (base, child) = (format!("{repo}:base"), format!("{repo}:child"));
    env.ok(&[
        "import",
        "rootfs",
        &base,
        "-m",
        "imported",
        "-a",
        "someone <s@example.com>",
        "-c",
        "CMD [\"catalina.sh\", \"run\"]",
        "-c",
        "ENV A=1",
        "-c",
        "EXPOSE 8080",
        "-c",
        "LABEL k=v",
    ]);
    env.ok(&["unpack", &base, "c"]);
    std::fs::write(env.path("c/rootfs/webapps/app.war"), "war").unwrap();
    env.ok(&["commit", "c", &child, "-m", "add app", "-c", "WORKDIR /webapps", "-c", "USER 1000"]);
    // The child's parent is the base, in strata and (from the archive) in docker.
    assert_eq!(env.inspect(&child)[0]["Parent"], env.image_id(&base).as_str());
    env.ok(&["save", &base, &child, "-o", "out.tar"]);
    docker.load(&env.path("out.tar"));
    compare(&env, docker, &base);
    compare(&env, docker, &child);
    // Neither came from a registry: no RepoDigests in either.
    assert_eq!(env.inspect(&child)[0]["RepoDigests"], serde_json::json!([]));
    docker.cleanup(&[&child, &base], &[]);
}

#[test]
fn inspect_matches_docker_for_docker_images() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let repo = docker.unique("strata-inspect-d");
    let (base, child) = (format!("{repo}:base"), format!("{repo}:child"));
    // Made by docker: import, then a commit with a message, author and changes (docker
    // records docker_version, container_config and a nanosecond creation time).
    let tar = env.path("rootfs.tar");
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(env.path("rootfs"))
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success());
    docker.ok(&["import", "-m", "imported by docker", "-c", "CMD [\"/bin/sh\"]", tar.to_str().unwrap(), &base]);
    let ctr = docker.unique("strata-inspect-ctr");
    docker.ok(&["create", "--name", &ctr, &base, "true"]);
    docker.ok(&[
        "commit",
        "-m",
        "committed by docker",
        "-a",
        "docker user",
        "-c",
        "ENV B=2",
        "-c",
        "ENTRYPOINT [\"/bin/true\"]",
        &ctr,
        &child,
    ]);
    docker.save(&[&base, &child], &env.path("docker.tar"));
    env.ok(&["load", "-i", "docker.tar"]);
    compare(&env, docker, &base);
    compare(&env, docker, &child);
    assert_ne!(env.inspect(&child)[0]["DockerVersion"], "", "docker's config records its version");
    docker.cleanup(&[&child, &base], &[&ctr]);
}
