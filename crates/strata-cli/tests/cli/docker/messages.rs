//! Messages and exit codes against docker's: a missing image, verb by verb, says what the
//! engine says (`No such image: nope:latest`) after strata's `strata: error: ` prefix, and
//! exits 1 as the docker CLI does; usage errors exit 2 (docker: 1, or 125 for flags).

use super::both::{Outcome, api_message};
use crate::common::Env;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One command through both, and the engine's API call for the same thing.
struct Case {
    strata: Vec<String>,
    docker: Vec<String>,
    method: &'static str,
    path: String,
}

#[test]
fn a_missing_image_is_reported_in_the_engines_words() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let nope = docker.unique("strata-nope");
    let tagged = format!("{nope}:1");
    let short = "abcdef012345";
    let same = |args: &[&str], method: &'static str, path: String| Case {
        strata: args.iter().map(|a| (*a).to_owned()).collect(),
        docker: args.iter().map(|a| (*a).to_owned()).collect(),
        method,
        path,
    };
    let cases = vec![
        Case {
            strata: vec!["inspect".into(), nope.clone()],
            docker: vec!["image".into(), "inspect".into(), nope.clone()],
            method: "GET",
            path: format!("/images/{nope}/json"),
        },
        same(&["history", &nope], "GET", format!("/images/{nope}/history")),
        same(&["history", &tagged], "GET", format!("/images/{tagged}/history")),
        same(&["history", short], "GET", format!("/images/{short}/history")),
        same(&["rmi", &nope], "DELETE", format!("/images/{nope}")),
        same(&["rmi", HEX], "DELETE", format!("/images/{HEX}")),
        same(&["rmi", &format!("sha256:{HEX}")], "DELETE", format!("/images/sha256:{HEX}")),
        same(
            &["tag", &nope, "strata-nope-target:1"],
            "POST",
            format!("/images/{nope}/tag?repo=strata-nope-target&tag=1"),
        ),
    ];
    for Case { strata: s_args, docker: d_args, method, path } in cases {
        let s_args: Vec<&str> = s_args.iter().map(String::as_str).collect();
        let d_args: Vec<&str> = d_args.iter().map(String::as_str).collect();
        // The 20.10 engine wraps inspect's (`no such image: x: No such image: x:latest`).
        let engine = api_message(docker, method, &path);
        let engine = engine.rfind("No such image: ").map_or(engine.as_str(), |i| &engine[i..]).to_owned();
        let s = Outcome::strata(env.run(&s_args));
        let d = Outcome::docker(docker.output(&d_args));
        assert_eq!(s.code, d.code, "{s_args:?}: exit code");
        assert_eq!(s.error(), engine, "{s_args:?}");
        assert!(engine.starts_with("No such image: "), "{engine}");
    }
    // save: the 20.10 engine says "reference does not exist" for a missing tag (current
    // engines "No such image"); strata says "No such image" for every verb.
    let d = Outcome::docker(docker.output(&["save", "-o", env.path("x.tar").to_str().unwrap(), &tagged]));
    let s = Outcome::strata(env.run(&["save", "-o", "x.tar", &tagged]));
    assert_eq!((s.code, d.code), (1, 1));
    assert!(
        ["reference does not exist".to_owned(), format!("No such image: {tagged}")].contains(&d.error().to_owned())
    );
    assert_eq!(s.error(), format!("No such image: {tagged}"));
    assert!(!env.path("x.tar").exists());
}

#[test]
fn usage_errors_exit_2_where_docker_exits_1_or_125() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    for (args, docker_code) in
        [(&["history"][..], 1), (&["tag", "only-one"], 1), (&["build", "--no-such-flag", "."], 125)]
    {
        let d = docker.output(args);
        assert_eq!(d.status.code(), Some(docker_code), "docker {args:?}");
        let s = env.run(args);
        assert_eq!(s.code, 2, "strata {args:?}: {}", s.stderr);
        assert!(s.stderr.starts_with("error: "), "{}", s.stderr);
    }
}
