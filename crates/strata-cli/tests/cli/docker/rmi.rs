//! `rmi` against docker's: what is untagged, what is deleted (the lines printed), what
//! is refused (the message), the exit codes; with tags, `-f`, parents and `--no-prune`.

use super::both::{Outcome, shared_image};
use crate::common::Env;

fn strata_rmi(env: &Env, args: &[&str]) -> Outcome {
    let mut all = vec!["rmi"];
    all.extend_from_slice(args);
    Outcome::strata(env.run(&all))
}

fn docker_rmi(docker: &strata_testkit::Docker, args: &[&str]) -> Outcome {
    let mut all = vec!["rmi"];
    all.extend_from_slice(args);
    Outcome::docker(docker.output(&all))
}

/// The same image under the same tags in both; then the same rmi commands, one after
/// the other: every outcome (lines, messages, exit codes) is the same.
#[test]
fn tags_ids_and_force_agree_with_docker() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let repo = docker.unique("strata-rmi");
    let other = docker.unique("strata-rmi-other");
    let tag1 = format!("{repo}:1");
    let id = shared_image(&env, docker, &tag1, &[]);
    let short = &id[7..19];
    let (tag2, tag3) = (format!("{repo}:2"), format!("{other}:1"));
    for t in [&tag2, &tag3] {
        env.ok(&["tag", &tag1, t]);
        docker.ok(&["tag", &tag1, t]);
    }
    let steps: Vec<Vec<&str>> = vec![
        // By id, with three tags: refused unless forced.
        vec![short],
        vec![&id],
        // A tag among others: untagged only.
        vec![&tag2],
        // A name that does not exist, and one that does: the second is still removed.
        vec!["strata-rmi-nope:1", &tag3],
        // By id again, forced: the last tag goes, then the image and its layer.
        vec!["-f", short],
        // Gone.
        vec![&tag1],
        vec!["-f", &tag1],
    ];
    for args in steps {
        let d = docker_rmi(docker, &args);
        let s = strata_rmi(&env, &args);
        assert_eq!(s, d, "rmi {args:?}");
    }
    docker.cleanup(&[&tag1, &tag2, &tag3], &[]);
}

/// An image another was committed on: not deleted by id even with `-f` (docker: "cannot
/// be forced"), only untagged by tag, and deleted with its child (unless `--no-prune`).
/// The child is made by each tool's own commit, so its id differs: it is compared by
/// role.
#[test]
fn parents_and_children_agree_with_docker() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let repo = docker.unique("strata-rmi-parent");
    let base = format!("{repo}:base");
    let id = shared_image(&env, docker, &base, &["CMD [\"true\"]"]);

    // Two children in each: committed on the base with nothing changed.
    let ctr = docker.unique("strata-rmi-ctr");
    docker.ok(&["create", "--name", &ctr, &base, "true"]);
    env.ok(&["unpack", &base, "c"]);
    let mut children = Vec::new();
    for n in 1..=2 {
        let child = format!("{repo}:child{n}");
        docker.ok(&["commit", "-m", &format!("child {n}"), &ctr, &child]);
        env.ok(&["commit", "c", &child, "-m", &format!("child {n}")]);
        let d = docker.inspect(&child)["Id"].as_str().unwrap().to_owned();
        let s = env.image_id(&child);
        assert_eq!(docker.inspect(&child)["Parent"], id.as_str(), "docker records the parent");
        children.push((child, d, s));
    }
    docker.ok(&["rm", &ctr]);
    // Lines with each side's child ids named by role.
    let roles = |o: Outcome, side: usize| -> Outcome {
        let mut o = o;
        for (i, c) in children.iter().enumerate() {
            let own = if side == 0 { &c.1 } else { &c.2 };
            o.stdout = o.stdout.replace(own.as_str(), &format!("<child{}>", i + 1));
        }
        o
    };
    let steps: Vec<Vec<&str>> = vec![
        vec![&id[7..19]],
        vec!["-f", &id[7..19]],
        // By tag: untagged, kept for its children.
        vec![&base],
        // The first child, without pruning: the untagged base stays.
        vec!["--no-prune", &children[0].0],
        // Still a parent.
        vec!["-f", &id],
        // The second child: it goes, and the untagged base with it, and its layer.
        vec![&children[1].0],
        vec![&id],
    ];
    for args in steps {
        let d = roles(docker_rmi(docker, &args), 0);
        let s = roles(strata_rmi(&env, &args), 1);
        assert_eq!(s, d, "rmi {args:?}");
    }
    assert_ne!(env.run(&["inspect", &id]).code, 0);
    docker.cleanup(&[&children[0].0, &children[1].0, &base], &[&ctr]);
}

/// Docker records parents only for images it committed or built (and `docker save` of
/// both together): a loaded image whose layers and history another loaded image extends
/// is no parent to docker, and goes with its tag. strata reads the relation from the
/// configs, so the image stays (untagged) while the other needs it: the difference
/// docs/docker-compat.md describes.
#[test]
fn a_loaded_prefix_image_is_a_parent_to_strata_only() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let repo = docker.unique("strata-rmi-prefix");
    let (base, child) = (format!("{repo}:base"), format!("{repo}:child"));
    let id = shared_image(&env, docker, &base, &[]);
    std::fs::create_dir_all(env.path("extra/opt")).unwrap();
    std::fs::write(env.path("extra/opt/x"), "x").unwrap();
    env.ok(&["append", &base, "extra", &child]);
    env.ok(&["save", &child, "-o", "child.tar"]);
    docker.load(&env.path("child.tar"));
    assert_eq!(docker.inspect(&child)["Parent"], "", "no parent for a loaded image");

    let d = docker_rmi(docker, &[&base]);
    assert_eq!((d.code, d.stdout.as_str()), (0, format!("Untagged: {base}\nDeleted: {id}\n").as_str()));
    let s = strata_rmi(&env, &[&base]);
    assert_eq!((s.code, s.stdout.as_str()), (0, format!("Untagged: {base}\n").as_str()));
    assert_eq!(env.image_id(&id), id, "kept, untagged, for its child");
    docker.cleanup(&[&child, &base], &[]);
}
