//! Listings: `images` in docker's order with docker's relative times, `history` with
//! docker's columns, ids of the images the store has and times, and `diff` with the
//! same lines as `docker diff` for the same changes.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{Env, run, tomcat_rootfs};
use crate::docker::{cells, docker_rows, header, strata_rows, trimmed};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// `strata ARGS` with the images it makes created `age` seconds ago.
fn ok_aged(env: &Env, age: u64, args: &[&str]) -> String {
    let mut c = env.cmd(args);
    c.env("SOURCE_DATE_EPOCH", (now() - age).to_string());
    let r = run(c);
    assert_eq!(r.code, 0, "strata {args:?}: {}", r.stderr);
    r.stdout
}

#[test]
fn images_and_history_read_as_docker_s() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let repo = docker.unique("strata-listings");
    let tag = |t: &str| format!("{repo}:{t}");
    // Ages well inside go-units' steps, so that a few seconds of test time change nothing:
    // "3 days", "2 hours", "About a minute".
    ok_aged(&env, 3 * 86_400 + 600, &["import", "rootfs", &tag("base"), "-m", "the base"]);
    ok_aged(&env, 2 * 3600 + 60, &["config", &tag("base"), &tag("cfg"), "-c", "ENV X=1", "-m", "set X"]);
    env.ok(&["unpack", &tag("cfg"), "c"]);
    std::fs::write(env.path("c/rootfs/webapps/new.txt"), "new\n").unwrap();
    let long_message = "a commit message long enough to be cut by docker's history table? no: comments are whole";
    ok_aged(&env, 90, &["commit", "c", &tag("top"), "-m", long_message]);
    // A second tag of the base: two rows of one image.
    env.ok(&["tag", &tag("base"), &tag("also-base")]);
    env.ok(&["save", &tag("base"), &tag("cfg"), &tag("top"), &tag("also-base"), "-o", "all.tar"]);
    docker.load(&env.path("all.tar"));

    // images: newest first, docker's times, same rows (tags of one image in either order).
    let ours = strata_rows(&env, &["images"], &repo);
    let theirs = docker_rows(docker, &["images", &repo], &repo);
    let order = |rows: &[Vec<String>]| -> Vec<String> { rows.iter().map(|r| r[2].clone()).collect() };
    assert_eq!(order(&ours), order(&theirs), "image order:\n{ours:?}\n{theirs:?}");
    let as_set = |rows: &[Vec<String>]| -> BTreeSet<Vec<String>> { rows.iter().cloned().collect() };
    assert_eq!(as_set(&ours), as_set(&theirs));
    let created: Vec<&str> = ours.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(created, ["About a minute ago", "2 hours ago", "3 days ago", "3 days ago"], "{ours:?}");
    assert_eq!(header(&env.ok(&["images"])), header(&docker.ok(&["images"])));

    // history: the whole table, as docker prints it: the ids of the images both stores
    // have (docker from the archive's parent links, strata from the store), docker's
    // columns, times and sizes.
    for t in ["top", "cfg", "base"] {
        let ours = env.ok(&["history", &tag(t)]);
        let theirs = docker.ok(&["history", &tag(t)]);
        assert_eq!(trimmed(&ours), trimmed(&theirs), "history of {t}");
    }
    let rows = cells(&env.ok(&["history", &tag("top")]));
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let short = |t: &str| env.image_id(&tag(t))["sha256:".len().."sha256:".len() + 12].to_owned();
    assert_eq!(ids, [short("top"), short("cfg"), short("base")]);
    // --no-trunc: full ids and whole commands, as docker.
    let ours = env.ok(&["history", "--no-trunc", &tag("top")]);
    let theirs = docker.ok(&["history", "--no-trunc", &tag("top")]);
    assert_eq!(trimmed(&ours), trimmed(&theirs));
    docker.cleanup(&[&tag("top"), &tag("cfg"), &tag("also-base"), &tag("base")], &[]);
}

/// A rootfs that runs in docker: busybox-static and the links the change script uses.
fn busybox_rootfs(root: &Path) -> bool {
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"].iter().map(Path::new).find(|p| p.exists()) else {
        return false;
    };
    for d in ["bin", "etc/sub", "etc2", "a", "a.b", "deldir/inner", "keep"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for tool in ["sh", "rm", "touch", "mkdir", "echo", "chmod", "ln"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    for (p, c) in [
        ("etc/motd", "hi\n"),
        ("etc/sub/f", "x\n"),
        ("etc2/g", "y\n"),
        ("a/z", "z\n"),
        ("deldir/inner/file", "gone\n"),
        ("keep/same", "same\n"),
        ("keep/mode", "mode\n"),
    ] {
        std::fs::write(root.join(p), c).unwrap();
    }
    true
}

/// The changes, as a shell script for docker and as the same operations for strata.
const SCRIPT: &str = "echo more >> /etc/motd; rm /etc/sub/f; touch /a/new /a.b/new2 /etc2/h; \
                      mkdir -p /n/m; echo q > /n/m/q; rm -r /deldir; chmod 600 /keep/mode; ln -s motd /etc/l";

fn apply_changes(root: &Path) {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    std::fs::OpenOptions::new().append(true).open(root.join("etc/motd")).unwrap().write_all(b"more\n").unwrap();
    std::fs::remove_file(root.join("etc/sub/f")).unwrap();
    for p in ["a/new", "a.b/new2", "etc2/h"] {
        std::fs::write(root.join(p), "").unwrap();
    }
    std::fs::create_dir_all(root.join("n/m")).unwrap();
    std::fs::write(root.join("n/m/q"), "q\n").unwrap();
    std::fs::remove_dir_all(root.join("deldir")).unwrap();
    std::fs::set_permissions(root.join("keep/mode"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("motd", root.join("etc/l")).unwrap();
}

#[test]
fn diff_lists_what_docker_diff_lists() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    if !busybox_rootfs(&env.path("rootfs")) {
        assert!(std::env::var_os("CI").is_none(), "busybox-static is not installed");
        eprintln!("skipping: no busybox");
        return;
    }
    let image = format!("{}:1", docker.unique("strata-diff"));
    env.ok(&["import", "rootfs", &image]);
    env.ok(&["save", &image, "-o", "img.tar"]);
    docker.load(&env.path("img.tar"));

    let ctr = docker.unique("strata-diff-ctr");
    docker.ok(&["run", "--name", &ctr, "--network", "none", &image, "/bin/sh", "-c", SCRIPT]);
    let theirs = docker.ok(&["diff", &ctr]);
    env.ok(&["unpack", &image, "c"]);
    apply_changes(&env.path("c/rootfs"));
    let ours = env.ok(&["diff", "c"]);

    // The same lines: every change, and `C` for each directory that holds one.
    let lines = |s: &str| -> BTreeSet<String> { s.lines().map(str::to_owned).collect() };
    assert_eq!(lines(&ours), lines(&theirs), "strata:\n{ours}\ndocker:\n{theirs}");
    for l in ["C /etc", "C /etc/sub", "D /etc/sub/f", "A /n/m", "D /deldir", "C /keep", "C /keep/mode", "A /etc/l"] {
        assert!(lines(&ours).contains(l), "{l} in\n{ours}");
    }
    let ours: Vec<&str> = ours.lines().collect();
    // Docker's order is its storage driver's (vfs: siblings in no fixed order, parents
    // first); strata's is depth first with names sorted, which overlay2 gives too.
    let path = |l: &&str| l[2..].to_owned();
    let mut sorted = ours.clone();
    sorted.sort_by(|a, b| strata_layer::tar_order(Path::new(&path(a)), Path::new(&path(b))));
    assert_eq!(ours, sorted);
    for listing in [ours.clone(), theirs.lines().collect()] {
        for (i, l) in listing.iter().enumerate() {
            let p = path(l);
            let parent = Path::new(&p).parent().unwrap().to_str().unwrap().to_owned();
            if parent != "/" {
                let at = listing.iter().position(|x| path(x) == parent);
                assert!(at.is_some_and(|at| at < i), "{parent} before {p}: {listing:?}");
            }
        }
    }
    // --json: docker's API shape, the same entries.
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["diff", "--json", "c"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), ours.len());
    docker.cleanup(&[&image], &[&ctr]);
}

#[test]
fn untagged_images_other_images_build_on_are_listed_with_all_only() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let repo = docker.unique("strata-intermediate");
    let tag = |t: &str| format!("{repo}:{t}");
    env.ok(&["import", "rootfs", &tag("base")]);
    env.ok(&["config", &tag("base"), &tag("child"), "-c", "ENV X=1"]);
    // An untagged image nothing builds on, for the dangling filter.
    env.ok(&["import", "rootfs", &tag("lone"), "-m", "lone"]);
    let base = env.image_id(&tag("base"));
    let lone = env.image_id(&tag("lone"));
    env.ok(&["save", &tag("base"), &tag("child"), &tag("lone"), "-o", "both.tar"]);
    docker.load(&env.path("both.tar"));
    for args in [["rmi", &tag("base")], ["rmi", &tag("lone")]] {
        docker.ok(&args);
        env.ok(&args);
    }
    let lone_kept = env.ok(&["images", "-q", "--no-trunc", "-a"]).contains(&lone);
    // The base stays (its child needs it) but is hidden without -a, in both; the lone
    // image is gone in both (nothing needs it).
    let ids = |out: String| -> BTreeSet<String> { out.lines().map(str::to_owned).collect() };
    let child = env.image_id(&tag("child"));
    for (args, want) in [
        (vec!["images", "-q", "--no-trunc"], vec![child.clone()]),
        (vec!["images", "-q", "--no-trunc", "-a"], vec![child.clone(), base.clone()]),
        (vec!["images", "-q", "--no-trunc", "-a", "--filter", "dangling=true"], vec![]),
    ] {
        let want: BTreeSet<String> = want.into_iter().collect();
        let mine: BTreeSet<String> = ids(env.ok(&args)).into_iter().filter(|i| *i == child || *i == base).collect();
        let theirs: BTreeSet<String> =
            ids(docker.ok(&args)).into_iter().filter(|i| *i == child || *i == base).collect();
        assert_eq!(mine, want, "strata {args:?}");
        assert_eq!(theirs, want, "docker {args:?}");
    }
    assert!(!lone_kept, "rmi of the lone image's last tag deletes it");
    docker.cleanup(&[&tag("child"), &base], &[]);
}
