//! `strata dive --archive FILE`: the archive read in place, in every form strata, docker
//! and skopeo write; the analysis equal to that of the same archive loaded into a
//! store; no temporary store made and nothing copied.

use std::path::Path;

use serde_json::Value;

use crate::common::{Env, run};
use crate::dive::waste_image;

/// Rules off, so the exit code says only whether the analysis was made.
const NO_RULES: [&str; 3] =
    ["--lowestEfficiency=disabled", "--highestWastedBytes=disabled", "--highestUserWastedPercent=disabled"];

/// `strata dive --ci --json` on `archive` read in place, with TMPDIR a path no
/// directory can be made under (a temporary store cannot be made) and a store that
/// must stay absent: the analysis.
fn dive_in_place(archive: &Path) -> Value {
    let env = Env::new();
    let mut c = env.cmd(&["dive", "--ci", "--json=a.json", "--archive", archive.to_str().unwrap()]);
    c.args(NO_RULES).env("TMPDIR", "/dev/null/no-temporary-files");
    let r = run(c);
    assert_eq!(r.code, 0, "{}: {}{}", archive.display(), r.stdout, r.stderr);
    assert!(!env.store().exists(), "dive --archive made a store");
    serde_json::from_slice(&std::fs::read(env.path("a.json")).unwrap()).unwrap()
}

/// `strata load` of `archive` into a fresh store, then `strata dive --ci --json` of
/// `reference`: the analysis.
fn dive_loaded(archive: &Path, reference: &str) -> Value {
    let env = Env::new();
    env.ok(&["load", "-i", archive.to_str().unwrap()]);
    let mut args = vec!["dive", "--ci", "--json=b.json", reference];
    args.extend(NO_RULES);
    env.ok(&args);
    serde_json::from_slice(&std::fs::read(env.path("b.json")).unwrap()).unwrap()
}

fn assert_same_analysis(archive: &Path, reference: &str) {
    let in_place = dive_in_place(archive);
    assert_eq!(in_place, dive_loaded(archive, reference), "{}", archive.display());
    // The image of `waste_image`, whatever the form.
    assert_eq!(in_place["bytes_wasted"], 1010, "{}", archive.display());
}

#[test]
fn strata_save_archives_are_read_in_place_with_the_numbers_of_a_load() {
    let env = waste_image();
    env.ok(&["save", "waste:1", "-o", "d.tar"]);
    env.ok(&["save", "waste:1", "--format", "oci-archive", "-o", "o.tar"]);
    assert_same_analysis(&env.path("d.tar"), "waste:1");
    assert_same_analysis(&env.path("o.tar"), "waste:1");
    // A compressed archive cannot be read in place: it is loaded into a temporary
    // store, which needs a TMPDIR (this is what the runs above would have needed).
    let gz = std::process::Command::new("gzip").arg("-k").arg(env.path("d.tar")).status().unwrap();
    assert!(gz.success());
    let other = Env::new();
    let gz = env.path("d.tar.gz");
    let mut c = other.cmd(&["dive", "--ci", "--json=g.json", "--archive", gz.to_str().unwrap()]);
    c.args(NO_RULES).env("TMPDIR", "/dev/null/no-temporary-files");
    let r = run(c);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("temporary store"), "{}", r.stderr);
    let mut c = other.cmd(&["dive", "--ci", "--json=g.json", "--archive", gz.to_str().unwrap()]);
    c.args(NO_RULES);
    assert_eq!(run(c).code, 0);
    let g: Value = serde_json::from_slice(&std::fs::read(other.path("g.json")).unwrap()).unwrap();
    assert_eq!(g, dive_in_place(&env.path("d.tar")));
}

#[test]
fn a_docker_save_archive_is_read_in_place() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = waste_image();
    let name = docker.unique("dive-archive");
    let tag = format!("{name}:1");
    env.ok(&["tag", "waste:1", &tag]);
    env.ok(&["save", &tag, "-o", "d.tar"]);
    docker.load(&env.path("d.tar"));
    docker.save(&[&tag], &env.path("docker.tar"));
    docker.cleanup(&[&tag], &[]);
    assert_same_analysis(&env.path("docker.tar"), &tag);
}

#[test]
fn skopeo_archives_are_read_in_place() {
    if !strata_testkit::require_tool("skopeo") {
        return;
    }
    let env = waste_image();
    env.ok(&["save", "waste:1", "-o", "d.tar"]);
    for dest in ["docker-archive:sk.tar:waste:1", "oci-archive:sko.tar:waste:1"] {
        let out = std::process::Command::new("skopeo")
            .current_dir(env.dir.path())
            .args(["--insecure-policy", "copy", "-q", "docker-archive:d.tar", dest])
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo copy {dest}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_same_analysis(&env.path("sk.tar"), "waste:1");
    assert_same_analysis(&env.path("sko.tar"), "waste:1");
}

#[test]
fn a_hostile_archive_is_a_clean_error() {
    let env = waste_image();
    env.ok(&["save", "waste:1", "-o", "d.tar"]);
    let whole = std::fs::read(env.path("d.tar")).unwrap();
    // Cut inside the last layer's data: truncated.
    std::fs::write(env.path("cut.tar"), &whole[..whole.len() - 2048]).unwrap();
    let err = env.fails(&["dive", "--ci", "--archive", "cut.tar"], 1);
    assert!(err.contains("truncated"), "{err}");
    // Not an archive of images.
    std::fs::write(env.path("none.tar"), &whole[..0]).unwrap();
    let err = env.fails(&["dive", "--ci", "--archive", "none.tar"], 1);
    assert!(err.contains("manifest.json"), "{err}");
}
