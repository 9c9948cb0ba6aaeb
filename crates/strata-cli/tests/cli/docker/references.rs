//! References against docker's: the names `tag`, `commit`, `import`, `build -t` and
//! `load` take and refuse (with docker's message), and how a name resolves (ids and
//! digests first, then tags, then the start of an id of any length).

use std::io::Read;

use super::both::{Outcome, api_message, same_message, shared_image};
use crate::common::Env;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Names no new tag may have, for docker.
fn bad_names() -> Vec<String> {
    let mut v: Vec<String> = ["UPPER", "Bad:Tag", "user/App:1", "a b", "x:", ":x", "x:-a", "x@sha256:abc", "a//b", ""]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    v.extend([
        HEX.to_owned(),
        format!("sha256:{HEX}"),
        "sha256".to_owned(),
        format!("x@sha256:{HEX}"),
        format!("x:{}", "a".repeat(129)),
        format!("x@md5:{HEX}"),
        format!("x@sha256:{}", HEX.to_uppercase()),
        format!("x@sha256:{}", "a".repeat(40)),
    ]);
    v
}

fn assert_same(what: &str, d: &Outcome, s: &Outcome) {
    assert_eq!(s.code, d.code, "{what}: exit code\ndocker: {d:?}\nstrata: {s:?}");
    assert!(same_message(d.error(), s.error()), "{what}:\ndocker: {}\nstrata: {}", d.error(), s.error());
}

#[test]
fn tag_refuses_and_takes_the_names_docker_does() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let repo = docker.unique("strata-ref");
    let src = format!("{repo}:src");
    shared_image(&env, docker, &src, &[]);
    for name in bad_names() {
        let d = Outcome::docker(docker.output(&["tag", &src, &name]));
        let s = Outcome::strata(env.run(&["tag", &src, &name]));
        assert_same(&format!("tag {name:?}"), &d, &s);
    }
    // Accepted alike, and listed alike.
    let good = [
        format!("{repo}:v_1.2-x"),
        format!("docker.io/library/{repo}:full"),
        format!("Reg.example.com/{repo}/app"),
        format!("reg.example.com:99999999/{repo}"),
        repo.clone(),
    ];
    for name in &good {
        docker.ok(&["tag", &src, name]);
        env.ok(&["tag", &src, name]);
    }
    let tags = |v: &serde_json::Value| {
        let mut t: Vec<String> =
            v["RepoTags"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect();
        t.sort();
        t
    };
    assert_eq!(tags(&env.inspect(&src)[0]), tags(&docker.inspect(&src)));
    let mut all: Vec<&str> = good.iter().map(String::as_str).collect();
    all.push(&src);
    docker.cleanup(&all, &[]);
}

/// The other commands that name a new image refuse the same names with the same words.
#[test]
fn commit_import_build_and_load_refuse_like_docker() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let src = format!("{}:src", docker.unique("strata-ref-new"));
    shared_image(&env, docker, &src, &["CMD [\"true\"]"]);
    let ctr = docker.unique("strata-ref-ctr");
    docker.ok(&["create", "--name", &ctr, &src, "true"]);
    env.ok(&["unpack", &src, "c"]);
    env.ok(&["save", &src, "-o", "src.tar"]);
    std::fs::create_dir(env.path("ctx")).unwrap();
    std::fs::write(env.path("ctx/Dockerfile"), format!("FROM {src}\n")).unwrap();
    crate::common::write_tar(&env.path("one.tar"), &[crate::common::Entry::File("f", b"f")]);
    let tar = env.path("one.tar");
    let tar = tar.to_str().unwrap();

    for name in ["UPPER", "Bad:Tag", "a b", HEX, &format!("sha256:{HEX}")] {
        let d = Outcome::docker(docker.output(&["commit", &ctr, name]));
        let s = Outcome::strata(env.run(&["commit", "c", name]));
        assert_same(&format!("commit {name:?}"), &d, &s);
        let d = Outcome::docker(docker.output(&["import", tar, name]));
        let s = Outcome::strata(env.run(&["import", tar, name]));
        assert_same(&format!("import {name:?}"), &d, &s);
        // load: an archive whose RepoTags has the name.
        let archive = with_repo_tag(&env.path("src.tar"), name, &env.path("renamed.tar"));
        let d = Outcome::docker(docker.output(&["load", "-i", archive.to_str().unwrap()]));
        let s = Outcome::strata(env.run(&["load", "-i", archive.to_str().unwrap()]));
        if name.starts_with("sha256:") {
            // docker loads the image and drops the tag without a word (its tag store
            // refuses it; the loader ignores the error): strata refuses the archive.
            assert_eq!((d.code, d.errors.len()), (0, 0), "docker load {name:?}: {d:?}");
            assert_eq!(s.code, 1);
            assert_eq!(s.error(), "refusing to create an ambiguous tag using digest algorithm as name");
        } else {
            assert_same(&format!("load {name:?}"), &d, &s);
        }
        // build -t: a usage error in both (docker exit 125, strata 2), with docker's reason.
        if !name.starts_with("sha256:") {
            let d = Outcome::docker(docker.output(&["build", "-q", "-t", name, env.path("ctx").to_str().unwrap()]));
            let s = env.run(&["build", "-t", name, "ctx"]);
            assert_eq!((d.code, s.code), (125, 2), "build -t {name:?}: {d:?} / {}", s.stderr);
            let reason = d.errors[0].rsplit("flag: ").next().unwrap();
            assert!(
                s.stderr.contains(reason) || super::both::without_repository(&s.stderr).contains(reason),
                "build -t {name:?}: docker {reason:?}, strata {}",
                s.stderr
            );
        }
    }
    docker.cleanup(&[&src], &[&ctr]);
}

/// A copy of the docker-archive `from` with `RepoTags` set to `[name]`.
fn with_repo_tag(from: &std::path::Path, name: &str, to: &std::path::Path) -> std::path::PathBuf {
    let mut input = tar::Archive::new(std::fs::File::open(from).unwrap());
    let mut out = tar::Builder::new(std::fs::File::create(to).unwrap());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let path = entry.path().unwrap().into_owned();
        if path.to_str() == Some("manifest.json") {
            let mut m: serde_json::Value = serde_json::from_slice(&data).unwrap();
            m[0]["RepoTags"] = serde_json::json!([name]);
            data = serde_json::to_vec(&m).unwrap();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        out.append(&header, &data[..]).unwrap();
    }
    out.finish().unwrap();
    to.to_path_buf()
}

#[test]
fn names_resolve_as_in_docker() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let repo = docker.unique("strata-resolve");
    let (x, y) = (format!("{repo}:x"), format!("{repo}:y"));
    let id_x = shared_image(&env, docker, &x, &[]);
    let id_y = shared_image(&env, docker, &y, &["LABEL y=1"]);
    let hex_x = &id_x[7..];
    let strata_id = |name: &str| env.run(&["inspect", name]);
    let docker_id = |name: &str| docker.output(&["image", "inspect", "-f", "{{.Id}}", name]);

    // Whole ids and digests, and the start of an id, with or without `sha256:`.
    for name in [id_x.clone(), hex_x.to_owned(), hex_x[..12].to_owned(), format!("sha256:{}", &hex_x[..12])] {
        assert_eq!(String::from_utf8_lossy(&docker_id(&name).stdout).trim(), id_x, "docker {name}");
        assert_eq!(env.image_id(&name), id_x, "strata {name}");
    }
    // A tag comes before the start of an id: `<start of x's id>` tagged on y is y.
    let start = &hex_x[..8];
    docker.ok(&["tag", &y, start]);
    env.ok(&["tag", &y, start]);
    assert_eq!(String::from_utf8_lossy(&docker_id(start).stdout).trim(), id_y);
    assert_eq!(env.image_id(start), id_y);
    docker.ok(&["rmi", start]);
    env.ok(&["rmi", start]);
    // Any length: where docker (whose store has other images) finds x by the start of
    // its id, strata finds it too; strata's store has two images, so the starts they do
    // not share are unique there.
    let common = hex_x.chars().zip(id_y[7..].chars()).take_while(|(a, b)| a == b).count();
    for len in 1..=12 {
        let p = &hex_x[..len];
        let d = docker_id(p);
        let s = strata_id(p);
        if d.status.success() {
            assert_eq!(s.code, 0, "{p}: docker finds it, strata does not: {}", s.stderr);
        }
        if len > common {
            assert_eq!(env.image_id(p), id_x, "{p}");
        } else {
            // Not one image: docker's words begin strata's message.
            let engine = api_message(docker, "GET", &format!("/images/{p}/json"));
            let ours = Outcome::strata(s);
            assert!(ours.error().starts_with(&engine), "{p}: docker {engine:?}, strata {:?}", ours.error());
        }
    }
    // Uppercase hex is no reference at all. (A start of the id with a letter in it: six
    // decimal digits read the same in either case, and are a short id.)
    let upper = hex_x[..hex_x.find(|c: char| c.is_ascii_alphabetic()).map_or(6, |i| (i + 1).max(6))].to_uppercase();
    let d = Outcome::docker(docker.output(&["history", &upper]));
    let s = Outcome::strata(env.run(&["history", &upper]));
    assert_same("history <UPPER HEX>", &d, &s);
    docker.cleanup(&[&x, &y], &[]);
}
