//! Containers against docker's: `run`'s exit codes and output, `ps`'s fields, `rm` of a
//! running container, and `rmi` of an image containers use (messages and lines), with
//! the same busybox image in both. docker runs its containers with `--network none`
//! (the engine here has no bridge), which is strata's default network.

use super::both::Outcome;
use crate::common::{Env, busybox_rootfs, containers_ready};

/// A busybox image made by strata (`CMD ["sh"]`), tagged `tag` in `env`'s store and
/// loaded into docker; its id.
fn busybox_image(env: &Env, docker: &strata_testkit::Docker, tag: &str) -> String {
    busybox_rootfs(&env.path("rootfs"), &[]);
    env.ok(&["import", "rootfs", tag, "-c", "CMD [\"sh\"]"]);
    env.ok(&["save", tag, "-o", "bb.tar"]);
    docker.load(&env.path("bb.tar"));
    env.image_id(tag)
}

/// An outcome with the containers' ids (full and short) replaced by placeholders.
fn masked(mut o: Outcome, ids: &[&str]) -> Outcome {
    let mask = |s: &str| {
        let mut s = s.to_owned();
        for id in ids {
            s = s.replace(id, "<ID>").replace(&id[..12], "<CID>");
        }
        s
    };
    o.stdout = mask(&o.stdout);
    o.errors = o.errors.iter().map(|e| mask(e)).collect();
    o
}

#[test]
fn run_exit_codes_and_output_agree_with_docker() {
    let Some(docker) = strata_testkit::docker() else { return };
    if !containers_ready() {
        return;
    }
    let env = Env::new();
    let tag = format!("{}:1", docker.unique("strata-run"));
    busybox_image(&env, docker, &tag);
    // docker's privileges: its default capabilities, no_new_privs off.
    let privileges = "while read -r l; do case $l in Cap*|NoNewPrivs*) echo $l;; esac; done </proc/self/status";
    let cases: [&[&str]; 6] = [
        &["sh", "-c", "echo out; exit 3"],
        &["nope"],
        &["/bin"],
        &["true"],
        &["sh", "-c", "echo $HOME $PATH; pwd"],
        &["sh", "-c", privileges],
    ];
    for args in cases {
        let mut d = vec!["run", "--rm", "--network", "none", &tag];
        d.extend_from_slice(args);
        let mut s = vec!["run", "--rm", &tag];
        s.extend_from_slice(args);
        let (d, s) = (docker.output(&d), env.run(&s));
        assert_eq!(
            (s.code, s.stdout.as_str()),
            (d.status.code().unwrap_or(-1), String::from_utf8_lossy(&d.stdout).as_ref()),
            "run {args:?}: strata said {}",
            s.stderr
        );
    }
    docker.cleanup(&[&tag], &[]);
}

#[test]
fn ps_rm_and_rmi_agree_with_docker() {
    let Some(docker) = strata_testkit::docker() else { return };
    if !containers_ready() {
        return;
    }
    let env = Env::new();
    let tag = format!("{}:1", docker.unique("strata-ps"));
    let image = busybox_image(&env, docker, &tag);
    let short = &image[7..19];
    let name = docker.unique("strata-ctr");
    let cmd = ["sh", "-c", "echo a command longer than twenty; sleep 300"];
    let mut d = vec!["run", "-d", "--network", "none", "--name", &name, &tag];
    d.extend_from_slice(&cmd);
    let did = docker.ok(&d).trim().to_owned();
    let mut s = vec!["run", "-d", "--name", &name, &tag];
    s.extend_from_slice(&cmd);
    let sid = env.ok(&s).trim().to_owned();
    let ids = [did.as_str(), sid.as_str()];

    let fields = "{{.Image}}|{{.Command}}|{{.State}}|{{.Names}}|{{.Networks}}|{{.Ports}}|{{.Mounts}}";
    let filter = format!("name=^{name}$");
    let ps_docker = || docker.ok(&["ps", "-a", "--filter", &filter, "--format", fields]);
    assert_eq!(env.ok(&["ps", "-a", "--format", fields]), ps_docker());
    let (d, s) = (
        docker.output(&["ps", "--no-trunc", "-a", "--filter", &filter, "--format", "{{.Command}}"]),
        env.run(&["ps", "--no-trunc", "--format", "{{.Command}}"]),
    );
    assert_eq!(s.stdout, String::from_utf8_lossy(&d.stdout));

    // rm of a running container; rmi of its image by tag and by id.
    for args in [vec!["rm", name.as_str()], vec!["rmi", &tag], vec!["rmi", short]] {
        let d = masked(Outcome::docker(docker.output(&args)), &ids);
        let s = masked(Outcome::strata(env.run(&args)), &ids);
        assert_eq!(s, d, "{args:?}");
    }
    docker.ok(&["stop", "-t", "1", &name]);
    env.ok(&["stop", "-t", "1", &name]);
    let status = "{{.State}} {{.Status}}";
    let d = docker.ok(&["ps", "-a", "--filter", &filter, "--format", status]);
    let s = env.ok(&["ps", "-a", "--format", status]);
    assert!(
        d.starts_with("exited Exited (137) ") && s.starts_with("exited Exited (137) "),
        "docker {d:?}, strata {s:?}"
    );
    // Stopped: by id it must be forced; by tag with -f the image goes (the container
    // keeps what it needs).
    for args in [vec!["rmi", short], vec!["rmi", "-f", &tag]] {
        let d = masked(Outcome::docker(docker.output(&args)), &ids);
        let s = masked(Outcome::strata(env.run(&args)), &ids);
        assert_eq!(s, d, "{args:?}");
    }
    // The container still commits and its image is no longer listed.
    env.ok(&["commit", &name, &format!("{tag}-after")]);
    assert!(!env.ok(&["images", "-q"]).contains(short), "deleted as in docker");
    docker.cleanup(&[&tag], &[&name]);
    env.ok(&["rm", &name]);
}
