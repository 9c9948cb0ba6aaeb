//! The planner as tables: each case a Dockerfile, planned from an empty `FROM scratch`
//! stage with no store, no context and no disk.

use std::collections::BTreeMap;

use strata_layer::WriteOptions;
use strata_spec::{Digest, Platform};

use super::history::{go_quote_list, go_quote_rune, healthcheck_created_by};
use super::{Action, BuildOptions, FromPlan, Scope, Step, Vars, absolute_dest, cache_key};
use crate::dockerfile::{Dockerfile, HealthcheckArgs};
use crate::error::{Error, Result};
use crate::run::Network;

/// The hash a `COPY` case stands its sources for (the executor's
/// [`crate::copy::source_hash`]).
const HASH: &str = "file:0123";

/// The platform `ARG`s of a build for linux/amd64 on a linux/arm64 machine.
fn platform() -> BTreeMap<String, String> {
    [
        ("TARGETPLATFORM", "linux/amd64"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "amd64"),
        ("TARGETVARIANT", ""),
        ("BUILDPLATFORM", "linux/arm64"),
        ("BUILDOS", "linux"),
        ("BUILDARCH", "arm64"),
        ("BUILDVARIANT", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn parse(dockerfile: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", dockerfile).unwrap_or_else(|e| panic!("{dockerfile:?}: {e}"))
}

/// Plan the last stage of `dockerfile` (its instructions after `FROM`) on `base`.
fn plan_on(dockerfile: &str, opts: &BuildOptions, base: Vars) -> Result<Vec<Step>> {
    let df = parse(dockerfile);
    let scope = Scope::with_platform_args(&df, opts, platform());
    let mut vars = base;
    let mut steps = Vec::new();
    for s in &df.stages[df.stages.len() - 1].instructions {
        let step = scope.instruction(&vars, &s.instruction)?;
        vars = step.after.clone();
        steps.push(step);
    }
    Ok(steps)
}

/// The last step of `body` in a `FROM scratch` stage, with `opts`.
fn last_with(body: &str, opts: &BuildOptions) -> Result<Step> {
    let steps = plan_on(&format!("FROM scratch\n{body}\n"), opts, Vars::of_base(None, None))?;
    Ok(steps.into_iter().next_back().expect("a step"))
}

fn last(body: &str) -> Step {
    last_with(body, &BuildOptions::default()).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

/// The history text of a step (a `COPY` with its sources hashed to [`HASH`]).
fn created_by(step: &Step) -> String {
    match &step.action {
        Action::Config { created_by } | Action::Workdir { created_by, .. } => created_by.clone(),
        Action::Run(r) => r.created_by.clone(),
        Action::Copy(c) => c.created_by(HASH),
    }
}

fn env(step: &Step) -> Vec<String> {
    step.after.config.env.clone().unwrap_or_default()
}

const PATH: &str = super::DEFAULT_PATH;

/// `--build-arg`s of a case.
type BuildArgs = &'static [(&'static str, &'static str)];

fn with_args(args: BuildArgs) -> BuildOptions {
    args.iter().fold(BuildOptions::default(), |o, (k, v)| o.build_arg(*k, *v))
}

#[test]
fn history_texts_are_dockers() {
    // (instructions, the last one's `created_by`, its empty_layer when the plan knows).
    let cases: &[(&str, &str, Option<bool>)] = &[
        ("RUN echo hi", "/bin/sh -c echo hi", None),
        ("RUN [\"echo\", \"hi there\"]", "echo hi there", None),
        ("ARG V=1\nRUN echo $V", "|1 V=1 /bin/sh -c echo $V", None),
        ("ARG B=2 A=1\nRUN true", "|2 A=1 B=2 /bin/sh -c true", None),
        ("ARG V=1\nENV V=2\nRUN true", "/bin/sh -c true", None),
        ("ARG V\nRUN true", "/bin/sh -c true", None),
        ("SHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nRUN true", "/bin/bash -eu -c true", None),
        ("SHELL [\"/bin/bash\", \"-c\"]", "/bin/bash -c #(nop)  SHELL [/bin/bash -c]", Some(true)),
        ("COPY a b/", "/bin/sh -c #(nop) COPY file:0123 in b/ ", Some(false)),
        ("COPY --chown=1:2 a /b", "/bin/sh -c #(nop) COPY --chown=1:2 file:0123 in /b ", Some(false)),
        ("ARG U=7\nCOPY --chown=$U a /b", "/bin/sh -c #(nop) COPY --chown=7 file:0123 in /b ", Some(false)),
        ("ADD a /b", "/bin/sh -c #(nop) ADD file:0123 in /b ", Some(false)),
        ("SHELL [\"/bin/ash\", \"-c\"]\nADD a /b", "/bin/ash -c #(nop) ADD file:0123 in /b ", Some(false)),
        ("ENV A=1 B=\"two words\"", "/bin/sh -c #(nop)  ENV A=1 B=two words", Some(true)),
        ("ENV A 1", "/bin/sh -c #(nop)  ENV A=1", Some(true)),
        ("ENV A=1\nENV B=${A}2", "/bin/sh -c #(nop)  ENV B=12", Some(true)),
        ("LABEL a=b \"c d\"=e", "/bin/sh -c #(nop)  LABEL a=b c d=e", Some(true)),
        ("ARG A=1 B", "/bin/sh -c #(nop)  ARG A=1 B", Some(true)),
        ("ARG A=1\nARG B=$A", "/bin/sh -c #(nop)  ARG B=1", Some(true)),
        ("CMD [\"a\", \"b c\"]", "/bin/sh -c #(nop)  CMD [\"a\" \"b c\"]", Some(true)),
        ("CMD echo \"hi\"", r#"/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo \"hi\""]"#, Some(true)),
        ("ENTRYPOINT [\"/e\"]", "/bin/sh -c #(nop)  ENTRYPOINT [\"/e\"]", Some(true)),
        ("WORKDIR /app", "/bin/sh -c #(nop) WORKDIR /app", None),
        ("USER 1000:1000", "/bin/sh -c #(nop)  USER 1000:1000", Some(true)),
        // The ports as written, as docker does (the config has them as `port/proto`).
        ("EXPOSE 80 53/udp", "/bin/sh -c #(nop)  EXPOSE 80 53/udp", Some(true)),
        ("VOLUME /a /b", "/bin/sh -c #(nop)  VOLUME [/a /b]", Some(true)),
        ("VOLUME [\"/a\"]", "/bin/sh -c #(nop)  VOLUME [/a]", Some(true)),
        ("STOPSIGNAL SIGKILL", "/bin/sh -c #(nop)  STOPSIGNAL SIGKILL", Some(true)),
        (
            "HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1",
            r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] "5m0s" "3s" "0s" '\x03'}"#,
            Some(true),
        ),
        ("HEALTHCHECK NONE", r#"/bin/sh -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\x00'}"#, Some(true)),
        ("ONBUILD RUN echo hi", "/bin/sh -c #(nop)  ONBUILD RUN echo hi", Some(true)),
        ("MAINTAINER me <me@example.com>", "/bin/sh -c #(nop)  MAINTAINER me <me@example.com>", Some(true)),
    ];
    for (body, want, empty) in cases {
        let step = last(body);
        assert_eq!(created_by(&step), *want, "{body:?}");
        assert_eq!(step.action.empty_layer(), *empty, "{body:?}");
    }
}

#[test]
fn config_after_each_instruction() {
    let step = last("ENV A=1 B=\"two words\"");
    assert_eq!(env(&step), [PATH, "A=1", "B=two words"]);
    let step = last("ENV PATH=/x:$PATH");
    assert_eq!(env(&step), [format!("PATH=/x:{}", &PATH["PATH=".len()..])]);
    let step = last("LABEL a=b \"c d\"=e");
    let labels = step.after.config.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("c d").map(String::as_str), Some("e"));
    assert_eq!(last("USER app").after.config.user.as_deref(), Some("app"));
    let ports = last("EXPOSE 80 53/udp").after.config.exposed_ports.unwrap_or_default();
    assert_eq!(ports.keys().collect::<Vec<_>>(), ["53/udp", "80/tcp"]);
    let volumes = last("VOLUME /a /b").after.config.volumes.unwrap_or_default();
    assert_eq!(volumes.keys().collect::<Vec<_>>(), ["/a", "/b"]);
    assert_eq!(last("STOPSIGNAL SIGKILL").after.config.stop_signal.as_deref(), Some("SIGKILL"));
    let sh = last("SHELL [\"/bin/bash\", \"-c\"]").after.config.shell;
    assert_eq!(sh, Some(vec!["/bin/bash".to_owned(), "-c".to_owned()]));
    let on_build = last("ONBUILD RUN echo hi").after.config.on_build;
    assert_eq!(on_build, Some(vec!["RUN echo hi".to_owned()]));
    let hc = last("HEALTHCHECK --interval=5m --retries=3 CMD curl -f http://localhost/").after.config.healthcheck;
    let hc = hc.expect("a healthcheck");
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "curl -f http://localhost/"]));
    assert_eq!(hc["Interval"], 300_000_000_000_u64);
    assert_eq!(last("MAINTAINER me").after.author.as_deref(), Some("me"));

    // CMD: the shell form through the stage's shell; ENTRYPOINT keeps a CMD of this stage
    // only.
    let cmd = last("SHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi").after.config.cmd;
    assert_eq!(cmd, Some(vec!["/bin/bash".to_owned(), "-c".to_owned(), "echo hi".to_owned()]));
    let step = last("CMD [\"c\"]\nENTRYPOINT [\"e\"]");
    assert_eq!(step.after.config.cmd, Some(vec!["c".to_owned()]));
    assert_eq!(step.after.config.entrypoint, Some(vec!["e".to_owned()]));
    let mut base = Vars::of_base(None, None);
    base.config.cmd = Some(vec!["base".into()]);
    let steps = plan_on("FROM scratch\nENTRYPOINT [\"e\"]\n", &BuildOptions::default(), base.clone()).expect("plan");
    assert_eq!(steps[0].after.config.cmd, None, "a base image's CMD goes with a new ENTRYPOINT");
    let steps = plan_on("FROM scratch\nCMD []\nENTRYPOINT [\"e\"]\n", &BuildOptions::default(), base).expect("plan");
    assert!(!steps[0].after.cmd_set, "an empty exec-form CMD does not count as set");
    assert_eq!(steps[1].after.config.cmd, None);

    // Nothing but its own field changes.
    let before = Vars::of_base(None, None);
    let step = last("USER app");
    assert_eq!(
        Vars { config: strata_spec::ContainerConfig { user: None, ..step.after.config.clone() }, ..step.after },
        before
    );
}

#[test]
fn a_stage_starts_with_dockers_default_path() {
    assert_eq!(Vars::of_base(None, None).config.env, Some(vec![PATH.to_owned()]));
    let base = strata_spec::ContainerConfig { env: Some(vec!["A=1".into()]), ..Default::default() };
    let vars = Vars::of_base(Some(base), Some("me".into()));
    assert_eq!(vars.config.env, Some(vec![PATH.to_owned(), "A=1".to_owned()]));
    assert_eq!(vars.author.as_deref(), Some("me"));
    let base = strata_spec::ContainerConfig { env: Some(vec!["PATH=/bin".into()]), ..Default::default() };
    assert_eq!(Vars::of_base(Some(base), None).config.env, Some(vec!["PATH=/bin".to_owned()]));
}

#[test]
fn workdir_resolves_against_the_last_one() {
    // (instructions, the working directory after, where `COPY x <dest>` then lands).
    let cases: &[(&str, &str, &str, &str)] = &[
        ("WORKDIR /app", "/app", "y", "/app/y"),
        ("WORKDIR /a\nWORKDIR b/../c", "/a/c", ".", "/a/c/."),
        ("WORKDIR /a\nENV D=d\nWORKDIR $D/", "/a/d", "y/", "/a/d/y/"),
        // An absolute one is taken as written (docker cleans only a relative one).
        ("WORKDIR /app/", "/app/", "z", "/app/z"),
        ("WORKDIR /app", "/app", "/abs", "/abs"),
        ("WORKDIR rel", "/rel", "y", "/rel/y"),
    ];
    for (body, wd, dest, target) in cases {
        let step = last(body);
        assert_eq!(step.after.config.working_dir.as_deref(), Some(*wd), "{body:?}");
        match &step.action {
            Action::Workdir { path, created_by } => {
                assert_eq!(path, wd, "{body:?}");
                assert_eq!(created_by, &format!("/bin/sh -c #(nop) WORKDIR {wd}"));
            }
            other => panic!("{body:?}: {other:?}"),
        }
        let Action::Copy(copy) = last(&format!("{body}\nCOPY x {dest}")).action else { panic!("{body:?}: not a copy") };
        assert_eq!(copy.target, *target, "{body:?}");
        assert_eq!(copy.dest, *dest, "{body:?}: the history keeps the destination as written");
    }
    // No WORKDIR: the root.
    let Action::Copy(copy) = last("COPY x y").action else { panic!("not a copy") };
    assert_eq!(copy.target, "/y");
    assert_eq!(absolute_dest(".", Some("/app")), "/app/.");
    assert_eq!(absolute_dest("x/", Some("/app/")), "/app/x/");
    assert_eq!(absolute_dest("/abs", Some("/app")), "/abs");
    assert_eq!(absolute_dest("x", Some("")), "/x");
}

/// `RUN`'s environment and history from `body` with `build_args`.
fn run_of(body: &str, build_args: BuildArgs) -> (String, Vec<String>) {
    let step =
        last_with(&format!("{body}\nRUN true"), &with_args(build_args)).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    let Action::Run(run) = step.action else { panic!("{body:?}: not a run") };
    (run.created_by, run.env)
}

#[test]
fn arg_expansion() {
    // (Dockerfile before `RUN true`, build arguments, RUN's created_by).
    let cases: &[(&str, BuildArgs, &str)] = &[
        ("FROM scratch\nARG V=d", &[], "|1 V=d /bin/sh -c true"),
        ("FROM scratch\nARG V=d", &[("V", "b")], "|1 V=b /bin/sh -c true"),
        ("FROM scratch\nARG V", &[("V", "b")], "|1 V=b /bin/sh -c true"),
        // A global ARG reaches a stage only when the stage declares it again.
        ("ARG V=g\nFROM scratch", &[], "/bin/sh -c true"),
        ("ARG V=g\nFROM scratch\nARG V", &[], "|1 V=g /bin/sh -c true"),
        ("ARG V=g\nFROM scratch\nARG V", &[("V", "b")], "|1 V=b /bin/sh -c true"),
        ("ARG V=g\nFROM scratch\nARG V=s", &[], "|1 V=s /bin/sh -c true"),
        // The platform ARGs, declared without a value.
        (
            "FROM scratch\nARG TARGETARCH BUILDPLATFORM",
            &[],
            "|2 BUILDPLATFORM=linux/arm64 TARGETARCH=amd64 /bin/sh -c true",
        ),
        // One default sees the ones before it; ENV sees ARGs.
        ("FROM scratch\nARG A=1 B=${A}2", &[], "|2 A=1 B=12 /bin/sh -c true"),
        ("FROM scratch\nARG A=1\nENV A=${A}0", &[], "/bin/sh -c true"),
    ];
    for (dockerfile, args, want) in cases {
        let steps = plan_on(&format!("{dockerfile}\nRUN true\n"), &with_args(args), Vars::of_base(None, None))
            .unwrap_or_else(|e| panic!("{dockerfile:?}: {e}"));
        assert_eq!(created_by(steps.last().expect("a step")), *want, "{dockerfile:?} {args:?}");
    }
    let (_, env) = run_of("ARG A=1\nENV A=${A}0", &[]);
    assert_eq!(env, [PATH, "A=10"], "ENV shadows the ARG of the same name");
    let (_, env) = run_of("ARG V=x", &[]);
    assert_eq!(env, [PATH, "V=x"], "RUN sees the build arguments in its environment");

    // Every ARG named is used, whatever its value came from.
    let step = last("ARG A B=1");
    assert_eq!(step.used_args, ["A", "B"]);
    assert_eq!(step.after.args.get("A"), Some(&None));
    assert_eq!(step.after.args.get("B"), Some(&Some("1".to_owned())));
}

#[test]
fn from_takes_global_args() {
    let plan = |dockerfile: &str, args: BuildArgs| -> Result<FromPlan> {
        let df = parse(dockerfile);
        let opts = with_args(args);
        let scope = Scope::with_platform_args(&df, &opts, platform());
        let crate::dockerfile::Instruction::From { image, platform, .. } = &df.stages[0].from.instruction else {
            panic!("not a FROM")
        };
        scope.from(image, platform.as_deref())
    };
    let amd64 = Platform::parse("linux/amd64").ok();
    let arm64 = Platform::parse("linux/arm64").ok();
    // (Dockerfile, build arguments, the base's name, its platform).
    let cases: &[(&str, BuildArgs, &str, Option<Platform>)] = &[
        ("ARG BASE=alpine\nARG TAG=3\nFROM ${BASE}:${TAG}", &[], "alpine:3", None),
        ("ARG BASE=alpine\nARG TAG=3\nFROM ${BASE}:${TAG}", &[("TAG", "edge")], "alpine:edge", None),
        ("ARG TAG=1\nARG TAG=2\nFROM x:$TAG", &[], "x:2", None),
        ("ARG TAG\nFROM x:${TAG:-latest}", &[], "x:latest", None),
        ("FROM x:$UNDECLARED", &[("UNDECLARED", "1")], "x:", None),
        ("FROM --platform=$BUILDPLATFORM x", &[], "x", arm64.clone()),
        ("FROM --platform=$TARGETPLATFORM x", &[], "x", amd64),
        ("ARG P=linux/arm64\nFROM --platform=$P x", &[], "x", arm64),
    ];
    for (dockerfile, args, name, platform) in cases {
        let got = plan(dockerfile, args).unwrap_or_else(|e| panic!("{dockerfile:?}: {e}"));
        assert_eq!(got, FromPlan { name: (*name).to_owned(), platform: platform.clone() }, "{dockerfile:?}");
    }
    assert!(matches!(plan("FROM --platform=nope/x/y/z x", &[]), Err(Error::Flag { flag: "--platform", .. })));
}

#[test]
fn run_plans() {
    let Action::Run(run) = last("RUN [\"/bin/echo\", \"a b\"]").action else { panic!("not a run") };
    assert_eq!(run.args, ["/bin/echo", "a b"]);
    assert_eq!(run.network, Network::None);
    assert_eq!(run.key_text(&[]), "/bin/echo a b\0network=None");
    assert_eq!(run.key_text(&["k1".into()]), "/bin/echo a b\0network=None\0mount=k1");

    // A `#!` here-document runs as a file.
    let Action::Run(run) = last("RUN <<EOF\n#!/bin/bash\necho hi\nEOF").action else { panic!("not a run") };
    assert_eq!(run.args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert_eq!(run.script, Some(("EOF".to_owned(), "#!/bin/bash\necho hi\n".to_owned())));
    assert!(run.key_text(&[]).ends_with("\0script=EOF\0#!/bin/bash\necho hi\n"));

    // Mounts: substituted, `from` kept as written for the key.
    let Action::Run(run) = last("ARG S=builder\nRUN --mount=type=bind,from=$S,target=/s true").action else {
        panic!("not a run")
    };
    assert_eq!(run.mounts.len(), 1);
    assert_eq!(run.mounts[0].from.as_deref(), Some("builder"));
    let Action::Run(run) = last("RUN --mount=type=cache,target=/c true").action else { panic!("not a run") };
    assert_eq!(run.mounts[0].from, None);

    // Network and entitlements.
    let host = BuildOptions::default().allow("network.host");
    let Action::Run(run) = last_with("RUN --network=host true", &host).expect("granted").action else {
        panic!("not a run")
    };
    assert_eq!(run.network, Network::Host);
    let Action::Run(run) =
        last_with("RUN --network=default true", &BuildOptions::default().network(Network::Host)).expect("plan").action
    else {
        panic!("not a run")
    };
    assert_eq!(run.network, Network::Host, "the build's network by default");
}

#[test]
fn copy_plans() {
    let Action::Copy(copy) = last("ENV N=x\nCOPY <<EOF <<\"RAW\" /d/\n$N\nEOF\n$N\nRAW").action else {
        panic!("not a copy")
    };
    assert_eq!(copy.heredocs, [("EOF".to_owned(), "x\n".to_owned()), ("RAW".to_owned(), "$N\n".to_owned())]);
    assert!(copy.sources.is_empty());

    let Action::Copy(copy) = last("ARG S=stage\nCOPY --from=$S --chmod=0640 --parents a/b /d").action else {
        panic!("not a copy")
    };
    assert_eq!(copy.from.as_deref(), Some("stage"));
    assert_eq!(copy.chmod, Some(0o640));
    assert!(copy.parents && !copy.is_add());
    let id = Digest::sha256_of(b"image");
    let hash = copy.image_hash(&id);
    assert!(hash.starts_with(&format!("from:{}:", id.hex())), "{hash}");
    assert_ne!(hash, copy.image_hash(&Digest::sha256_of(b"other")));
    let created_by = copy.created_by(&hash);
    assert_eq!(created_by, format!("/bin/sh -c #(nop) COPY {hash} in /d "));
    assert_eq!(
        copy.key_text(&created_by),
        format!("{created_by}\0chmod=Some(416)\0link=false\0parents=true\0exclude=[]")
    );

    let Action::Copy(copy) = last("ARG E=*.md\nCOPY --exclude=$E --link . /d").action else { panic!("not a copy") };
    assert!(copy.exclude.is_some() && copy.link);
    assert!(copy.key_text("c").ends_with("\0link=true\0parents=false\0exclude=[\"$E\"]"));

    let url = "https://example.com/a.tgz";
    let fetch = BuildOptions::default().fetch_urls(true);
    let sum = format!("sha256:{}", "0".repeat(64));
    let Action::Copy(copy) = last_with(&format!("ADD --checksum={sum} {url} /d"), &fetch).expect("plan").action else {
        panic!("not a copy")
    };
    assert!(copy.is_add());
    assert_eq!(copy.sources, [url]);
    assert_eq!(copy.checksum.as_ref().map(ToString::to_string), Some(sum));
}

#[test]
fn bad_instructions_are_typed_errors() {
    let fetch = BuildOptions::default().fetch_urls(true);
    let none = BuildOptions::default();
    // (instructions, options, what the error is).
    type Check = fn(&Error) -> bool;
    let cases: &[(&str, &BuildOptions, Check)] = &[
        ("RUN --network=host true", &none, |e| matches!(e, Error::Entitlement { .. })),
        ("RUN --security=insecure true", &none, |e| matches!(e, Error::Entitlement { .. })),
        ("RUN --mount=type=cache,from=x,target=/c true", &none, |e| matches!(e, Error::Flag { flag: "--mount", .. })),
        ("RUN --mount=type=nope,target=/c true", &none, |e| matches!(e, Error::Flag { flag: "--mount", .. })),
        ("COPY https://example.com/a /d", &fetch, |e| matches!(e, Error::UrlInCopy { .. })),
        ("ADD https://example.com/a /d", &none, |e| matches!(e, Error::UrlSource { .. })),
        ("COPY --chmod=u+x a /d", &none, |e| matches!(e, Error::Flag { flag: "--chmod", .. })),
        ("COPY --chmod=17777 a /d", &none, |e| matches!(e, Error::Flag { flag: "--chmod", .. })),
        ("ADD --checksum=sha256:00 a /d", &fetch, |e| matches!(e, Error::Flag { flag: "--checksum", .. })),
        ("COPY --from=x <<EOF /d\nhi\nEOF", &none, |e| matches!(e, Error::Flag { flag: "--from", .. })),
        ("COPY ${X:?unset} /d", &none, |e| matches!(e, Error::Substitution { .. })),
        ("ENV A=${X:?unset}", &none, |e| matches!(e, Error::Substitution { .. })),
    ];
    for (body, opts, check) in cases {
        match last_with(body, opts) {
            Ok(step) => panic!("{body:?}: planned {:?}", step.action),
            Err(e) => assert!(check(&e), "{body:?}: {e:?}"),
        }
    }
}

#[test]
fn from_inside_a_stage_is_a_typed_error() {
    // What an `ONBUILD FROM x` trigger in a base image's config would hand the planner.
    let df = parse("FROM scratch\nFROM busybox AS b\n");
    let opts = BuildOptions::default();
    let scope = Scope::with_platform_args(&df, &opts, platform());
    let from = &df.stages[1].from;
    match scope.instruction(&Vars::of_base(None, None), &from.instruction) {
        Err(Error::MisplacedFrom { text }) => assert_eq!(text, "FROM busybox"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cache_keys_stand_on_every_input() {
    let vars = Vars::of_base(None, None);
    let write = WriteOptions::default();
    let key = cache_key("parent", "step", &vars, &write);
    assert_eq!(key, cache_key("parent", "step", &vars, &write));
    let mut other_config = vars.clone();
    other_config.config.user = Some("x".into());
    let mut other_author = vars.clone();
    other_author.author = Some("x".into());
    let mut clamped = WriteOptions::default();
    clamped.mtime_clamp = Some(1);
    for other in [
        cache_key("other", "step", &vars, &write),
        cache_key("parent", "other", &vars, &write),
        cache_key("parent", "step", &other_config, &write),
        cache_key("parent", "step", &other_author, &write),
        cache_key("parent", "step", &vars, &clamped),
    ] {
        assert_ne!(key, other);
    }
}

#[test]
fn go_formats() {
    assert_eq!(
        go_quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"\n".into()]),
        r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#
    );
    assert_eq!(
        go_quote_list(&["tab\there".into(), "bell\x07".into(), "é\u{7f}".into()]),
        r#"["tab\there" "bell\a" "é\x7f"]"#
    );
    assert_eq!(go_quote_rune(3), "'\\x03'");
    assert_eq!(go_quote_rune(0), "'\\x00'");
    assert_eq!(go_quote_rune(65), "'A'");
    assert_eq!(go_quote_rune(10), "'\\n'");
    let h = HealthcheckArgs {
        test: vec!["CMD-SHELL".into(), "curl -f http://localhost/ || exit 1".into()],
        interval: Some(300_000_000_000),
        timeout: Some(3_000_000_000),
        retries: Some(3),
        ..Default::default()
    };
    assert_eq!(
        healthcheck_created_by(&h),
        r#"HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] "5m0s" "3s" "0s" '\x03'}"#
    );
}
