//! `commit --change` against docker's: the same changes on the same base image give the
//! same config, and the changes docker refuses are refused with docker's message.

use serde_json::Value;

use super::both::{Outcome, shared_image};
use crate::common::Env;

/// The base: what `docker import -c ...` would make.
const BASE: &[&str] = &["ENV PATH=/usr/bin:/bin", "CMD [\"true\"]", "LABEL base=1", "WORKDIR /srv"];

/// Change lists, each applied on its own to the base.
const CASES: &[&[&str]] = &[
    &["ENV A=$PATH:/x"],
    &["ENV PATH=$PATH:/x"],
    &["ENV A=1", "ENV B=$A C=${PATH}:x"],
    &["ENV A=1 B=$A"],
    &["ENV X='a $PATH'", "ENV Y=\"$PATH\""],
    &["ENV X \"a b\""],
    &["ENV X a b"],
    &["ENV ${X:-a}=1"],
    &["ENTRYPOINT [\"/bin/sh\"]"],
    &["CMD [\"a\"]", "ENTRYPOINT [\"/bin/sh\"]"],
    &["ENTRYPOINT [\"/bin/sh\"]", "CMD [\"a\"]"],
    &["ENTRYPOINT /bin/sh -c x"],
    &["ENTRYPOINT []"],
    &["CMD []"],
    &["CMD"],
    &["CMD echo hi"],
    &["CMD [\"echo\", \"$PATH\"]"],
    &["CMD [echo, hi]"],
    &["EXPOSE 80 53/udp 8000-8002/tcp 90/TCP"],
    &["EXPOSE $NOPE"],
    &["LABEL a=$PATH \"b c\"=\"d e\" f=g\\ h"],
    &["LABEL base=2"],
    &["ONBUILD RUN echo $PATH"],
    &["USER $PATH"],
    &["USER a b"],
    &["VOLUME $PATH /v"],
    &["VOLUME [\"/a\", \"$PATH\"]"],
    &["WORKDIR rel", "WORKDIR ../x/./y"],
    &["WORKDIR /a/../b/"],
    &["WORKDIR $PATH"],
    &["HEALTHCHECK --interval=5s --retries=3 CMD [\"true\"]"],
    &["HEALTHCHECK CMD true"],
    &["HEALTHCHECK NONE"],
    &["ENV A=1 \\\n B=2"],
    // Engines before 23.0 refuse STOPSIGNAL ("stopsignal is not a valid change command");
    // compared when the engine takes it.
    &["STOPSIGNAL SIGKILL"],
];

/// Changes docker refuses, each with its own message.
const REFUSED: &[&str] = &[
    "RUN true",
    "run true",
    "FROM scratch",
    "ADD a b",
    "COPY a b",
    "SHELL [\"/bin/bash\", \"-c\"]",
    "MAINTAINER me",
    "FOO bar",
    "",
    "USER",
    "WORKDIR",
    "ENV",
    "ENV A",
    "LABEL a",
    "ENV =x",
    "VOLUME",
    "VOLUME [\"\"]",
    "EXPOSE 99999",
    "EXPOSE 90-80",
    "EXPOSE 80/xyz",
    "ENTRYPOINT [\"a\",1]",
    "ONBUILD ONBUILD RUN x",
    "ONBUILD FROM x",
    "HEALTHCHECK --interval=1s CMD",
    "HEALTHCHECK --retries=0 CMD x",
    "ENV A=\"unterminated",
    "USER ${NOPE:?must}",
    "WORKDIR $NOPE",
];

/// The fields a change can touch, with docker's empty spellings made one (`null`).
fn projection(config: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in [
        "Cmd",
        "Entrypoint",
        "Env",
        "ExposedPorts",
        "Healthcheck",
        "Labels",
        "OnBuild",
        "StopSignal",
        "User",
        "Volumes",
        "WorkingDir",
    ] {
        let v = config.get(key).cloned().unwrap_or(Value::Null);
        let empty = match &v {
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            // docker commit always writes `Labels: {}` (its merge with the container's
            // config); strata keeps the base's `null`.
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        out.insert(key.to_owned(), if empty { Value::Null } else { v });
    }
    Value::Object(out)
}

fn args<'a>(changes: &[&'a str]) -> Vec<&'a str> {
    changes.iter().flat_map(|c| ["--change", c]).collect()
}

#[test]
fn changes_give_the_config_docker_gives() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    let repo = docker.unique("strata-change");
    let base = format!("{repo}:base");
    shared_image(&env, docker, &base, BASE);
    // docker commits a container; `docker create IMAGE true` gives it the base's command.
    let ctr = docker.unique("strata-change-ctr");
    docker.ok(&["create", "--name", &ctr, &base, "true"]);
    env.ok(&["unpack", &base, "c"]);
    let mut made = vec![base.clone()];
    for (i, changes) in CASES.iter().enumerate() {
        let tag = format!("{repo}:{i}");
        let mut d_args = vec!["commit"];
        d_args.extend(args(changes));
        d_args.extend([ctr.as_str(), tag.as_str()]);
        let d = docker.output(&d_args);
        if !d.status.success() && changes[0].starts_with("STOPSIGNAL") {
            let msg = Outcome::docker(d);
            assert_eq!(msg.error(), "stopsignal is not a valid change command", "an engine before 23.0");
            continue;
        }
        assert!(d.status.success(), "docker commit {changes:?}: {}", String::from_utf8_lossy(&d.stderr));
        made.push(tag.clone());
        let mut s_args = vec!["commit", "c", tag.as_str()];
        s_args.extend(args(changes));
        env.ok(&s_args);
        let want = projection(&docker.inspect(&tag)["Config"]);
        let got = projection(&env.inspect(&tag)[0]["Config"]);
        assert_eq!(got, want, "{changes:?}");
    }
    // Refused changes: the same message, nothing made.
    for change in REFUSED {
        let tag = format!("{repo}:refused");
        let d = Outcome::docker(docker.output(&["commit", "--change", change, &ctr, &tag]));
        let s = Outcome::strata(env.run(&["commit", "c", &tag, "--change", change]));
        assert_eq!((s.code, s.error()), (d.code, d.error()), "{change:?}");
        assert_ne!(env.run(&["inspect", &tag]).code, 0, "{change:?} made an image");
    }
    let made: Vec<&str> = made.iter().map(String::as_str).collect();
    docker.cleanup(&made, &[&ctr]);
}
