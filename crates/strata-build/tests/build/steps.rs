//! Builds without RUN: every instruction's config field and history entry, the tree,
//! the cache, multi-stage builds, ONBUILD, and errors with their lines.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use strata_build::{BuildOptions, cache};
use strata_image::Store;
use strata_testkit::Kind;

use crate::common::*;

const DOCKERFILE: &str = r#"ARG GREETING=hello
FROM base:1
ARG GREETING
ARG WHO
ENV NAME=${WHO:-world} MSG="$GREETING, \$NAME" SINGLE='$GREETING'
LABEL version="1.0" org.example.name=web
WORKDIR /app
COPY a.txt .
COPY --chown=app:staff --chmod=640 conf/ /etc/app/
COPY *.md docs/
ADD files.tar.gz /opt/
COPY x /var/run/
USER app
EXPOSE 80 443/udp
VOLUME ["/data"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --retries=3 CMD ["/bin/check"]
SHELL ["/bin/bash", "-c"]
ENTRYPOINT ["/entry"]
CMD run $NAME
ONBUILD COPY trigger.txt /trigger.txt
"#;

fn tar_gz() -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (name, data, uid) in [("pkg/bin/tool", "#!/bin/sh\n", 7u64), ("pkg/README", "readme", 0)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn full_context() -> tempfile::TempDir {
    let ctx = context(
        DOCKERFILE,
        &[
            ("a.txt", "a"),
            ("conf/app.conf", "k=v"),
            ("conf/sub/more.conf", "m"),
            ("one.md", "1"),
            ("two.md", "2"),
            ("x", "x"),
            ("secret.key", "no"),
            ("trigger.txt", "t"),
        ],
    );
    fs::write(ctx.path().join("files.tar.gz"), tar_gz()).unwrap();
    fs::write(ctx.path().join(".dockerignore"), "*.key\n").unwrap();
    ctx
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn every_instruction_lands_in_config_history_and_tree() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("store");
    let store = Store::open_or_create(&layout).unwrap();
    base(&store, "base:1");
    let ctx = full_context();
    let opts = BuildOptions::default().tag("web").build_arg("WHO", "strata");
    let (built, log) = build_logged(&store, ctx.path(), &opts);
    let built = built.unwrap_or_else(|e| panic!("{e}\n{log:#?}"));
    assert_eq!(built.steps, 21);
    assert_eq!((built.cached, built.executed), (0, 19), "every step but the FROMs commits");
    assert!(log.contains(&"Step 8/21 : COPY a.txt .".to_owned()), "{log:#?}");

    let img = &built.image;
    let c = img.config().config.clone().unwrap();
    assert_eq!(
        c.env.as_deref().unwrap(),
        s(&[
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "NAME=strata",
            "MSG=hello, $NAME",
            "SINGLE=$GREETING"
        ])
    );
    assert_eq!(c.labels.as_ref().unwrap()["version"], "1.0");
    assert_eq!(c.working_dir.as_deref(), Some("/app"));
    assert_eq!(c.user.as_deref(), Some("app"));
    assert_eq!(c.exposed_ports.as_ref().unwrap().keys().collect::<Vec<_>>(), ["443/udp", "80/tcp"]);
    assert!(c.volumes.as_ref().unwrap().contains_key("/data"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(
        c.healthcheck,
        Some(serde_json::json!({"Test": ["CMD", "/bin/check"], "Interval": 30_000_000_000u64, "Retries": 3}))
    );
    assert_eq!(c.shell, Some(s(&["/bin/bash", "-c"])));
    assert_eq!(c.entrypoint, Some(s(&["/entry"])));
    assert_eq!(c.cmd, Some(s(&["/bin/bash", "-c", "run $NAME"])), "CMD is not substituted, and uses SHELL");
    assert_eq!(c.on_build, Some(s(&["COPY trigger.txt /trigger.txt"])));

    let h = created_by(img);
    let mine = &h[1..]; // after the base's own entry
    let want_prefix = [
        "/bin/sh -c #(nop)  ARG GREETING",
        "/bin/sh -c #(nop)  ARG WHO",
        "/bin/sh -c #(nop)  ENV NAME=strata MSG=hello, $NAME SINGLE=$GREETING",
        "/bin/sh -c #(nop)  LABEL version=1.0 org.example.name=web",
        "/bin/sh -c #(nop) WORKDIR /app",
    ];
    assert_eq!(&mine[..5], &want_prefix);
    assert!(mine[5].starts_with("/bin/sh -c #(nop) COPY file:") && mine[5].ends_with(" in . "), "{}", mine[5]);
    assert!(
        mine[6].starts_with("/bin/sh -c #(nop) COPY --chown=app:staff dir:") && mine[6].ends_with(" in /etc/app/ ")
    );
    assert!(mine[7].starts_with("/bin/sh -c #(nop) COPY multi:") && mine[7].ends_with(" in docs/ "));
    assert!(mine[8].starts_with("/bin/sh -c #(nop) ADD file:") && mine[8].ends_with(" in /opt/ "));
    assert_eq!(
        &mine[10..],
        &[
            "/bin/sh -c #(nop)  USER app",
            "/bin/sh -c #(nop)  EXPOSE 80 443/udp",
            "/bin/sh -c #(nop)  VOLUME [/data]",
            "/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT",
            r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "/bin/check"] "30s" "0s" "0s" '\x03'}"#,
            "/bin/bash -c #(nop)  SHELL [/bin/bash -c]",
            r#"/bin/bash -c #(nop)  ENTRYPOINT ["/entry"]"#,
            r#"/bin/bash -c #(nop)  CMD ["/bin/bash" "-c" "run $NAME"]"#,
            "/bin/bash -c #(nop)  ONBUILD COPY trigger.txt /trigger.txt",
        ]
    );
    let empty = empty_layers(img);
    // WORKDIR /app made the directory: a layer; COPY/ADD: layers; the rest: empty.
    let layered: Vec<usize> = empty.iter().enumerate().filter(|(_, e)| !**e).map(|(i, _)| i).collect();
    assert_eq!(layered, [0, 5, 6, 7, 8, 9, 10]);
    assert_eq!(img.config().rootfs.diff_ids.len(), 7);

    // The tree, as umoci unpacks it.
    let Some(tree) = umoci_tree(&layout, "web:latest") else { return };
    let e = |p: &str| tree.entries.get(Path::new(p)).unwrap_or_else(|| panic!("{p} missing"));
    assert!(matches!(e("app/a.txt").kind, Kind::File(_)));
    let conf = e("etc/app/app.conf");
    assert_eq!((conf.mode, conf.uid, conf.gid), (0o640, 1000, 50), "--chown names from the image, --chmod");
    let d = e("etc/app");
    assert_eq!((d.uid, d.gid), (1000, 50), "the destination directory it made gets --chown");
    assert_eq!(e("etc/app/sub/more.conf").mode, 0o640);
    assert!(
        tree.entries.contains_key(Path::new("app/docs/one.md"))
            && tree.entries.contains_key(Path::new("app/docs/two.md"))
    );
    let tool = e("opt/pkg/bin/tool");
    assert_eq!((tool.uid, tool.mode, tool.mtime.0), (7, 0o755, 1_600_000_000), "ADD keeps the archive's owners");
    assert!(matches!(e("var/run").kind, Kind::Symlink(_)), "the symlink in the destination is followed, not replaced");
    assert!(tree.entries.contains_key(Path::new("run/x")));
    assert!(!tree.entries.keys().any(|p| p.ends_with("secret.key")), ".dockerignore");
    assert!(!tree.entries.contains_key(Path::new("app/Dockerfile")));
}

#[test]
fn cache_reuses_steps_and_rebuilds_from_a_changed_file_on() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let ctx = full_context();
    let opts = BuildOptions::default().tag("web:1");
    let first = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!((first.cached, first.executed), (0, 19));

    // Again: all from the cache, nothing executed, the same image.
    let (again, log) = build_logged(&store, ctx.path(), &opts);
    let again = again.unwrap();
    assert_eq!((again.cached, again.executed), (19, 0));
    assert_eq!(again.image.id(), first.image.id());
    assert_eq!(log.iter().filter(|l| *l == " ---> Using cache").count(), 19);

    // The cache entries are hidden from `images`, kept by GC.
    let mut names: Vec<_> = store.images().unwrap().into_iter().map(|i| i.name).collect();
    names.sort();
    assert_eq!(names, [Some("base:1".to_owned()), Some("web:1".to_owned())]);
    assert!(cache::entries(&store).unwrap() >= 19);
    store.gc(false).unwrap();
    let after_gc = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!((after_gc.cached, after_gc.executed), (19, 0));

    // One copied file changes: the steps before its COPY come from the cache, that one
    // and every later one run.
    fs::write(ctx.path().join("conf/sub/more.conf"), "changed").unwrap();
    let changed = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!((changed.cached, changed.executed), (6, 13), "steps 3-8 cached, 9-21 rebuilt");
    assert_ne!(changed.image.id(), first.image.id());
    // mtimes alone do not change the key.
    let f = fs::File::options().write(true).open(ctx.path().join("a.txt")).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
    let touched = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!(touched.executed, 0);

    // --no-cache runs everything; a build argument change reruns from its first use.
    let nc = build_logged(&store, ctx.path(), &opts.clone().no_cache(true)).0.unwrap();
    assert_eq!((nc.cached, nc.executed), (0, 19));
    let arg = build_logged(&store, ctx.path(), &opts.clone().build_arg("WHO", "you")).0.unwrap();
    assert_eq!((arg.cached, arg.executed), (2, 17), "ENV NAME=${{WHO}} is the first step the value changes");

    // Pruning to nothing: the next build runs every step.
    assert!(cache::prune(&store, 0).unwrap() >= 19);
    assert_eq!(cache::entries(&store).unwrap(), 0);
    let pruned = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!(pruned.executed, 19);
}

#[test]
fn onbuild_triggers_run_when_the_image_is_a_base() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let ctx = context(
        "FROM base:1\nONBUILD COPY trigger.txt /from-trigger\nONBUILD ENV TRIGGERED=yes\n",
        &[("trigger.txt", "t")],
    );
    build_logged(&store, ctx.path(), &BuildOptions::default().tag("parent")).0.unwrap();
    let child = context("FROM parent\nLABEL child=1\n", &[("trigger.txt", "from the child's context")]);
    let (built, log) = build_logged(&store, child.path(), &BuildOptions::default().tag("child"));
    let built = built.unwrap();
    assert!(log.contains(&"# Executing 2 build triggers".to_owned()), "{log:#?}");
    let c = built.image.config().config.clone().unwrap();
    assert!(c.env.unwrap().contains(&"TRIGGERED=yes".to_owned()));
    assert_eq!(c.on_build, None, "triggers are consumed");
    let view = built.image.merged().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut view.read_file("/from-trigger").unwrap(), &mut text).unwrap();
    assert_eq!(text, "from the child's context");
}

#[test]
fn stages_copy_from_and_target() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let df = "FROM base:1 AS builder\nWORKDIR /out\nCOPY src/ ./\nFROM scratch AS empty\nFROM base:1\nCOPY --from=builder /out/app.bin /usr/local/bin/app\nCOPY --from=0 /out/lib /lib/\n";
    let ctx = context(df, &[("src/app.bin", "binary"), ("src/lib/libx.so", "lib")]);
    let built = build_logged(&store, ctx.path(), &BuildOptions::default().tag("final")).0.unwrap();
    let view = built.image.merged().unwrap();
    assert!(view.stat("/usr/local/bin/app").is_ok());
    assert!(view.stat("/lib/libx.so").is_ok());
    assert!(view.stat("/out").is_err(), "the final stage has only what it copied");
    let h = created_by(&built.image);
    assert!(h.last().unwrap().contains("COPY from:"), "{h:?}");
    // Cached: the --from source is not unpacked again (nothing executes).
    let again = build_logged(&store, ctx.path(), &BuildOptions::default().tag("final")).0.unwrap();
    assert_eq!(again.executed, 0);
    // --target stops at a stage.
    let t = build_logged(&store, ctx.path(), &BuildOptions::default().target("builder").tag("b")).0.unwrap();
    assert_eq!(t.steps, 3);
    assert!(t.image.merged().unwrap().stat("/out/app.bin").is_ok());
    let e = build_logged(&store, ctx.path(), &BuildOptions::default().target("nope")).0.unwrap_err();
    assert!(e.to_string().contains("\"nope\" not found"), "{e}");
}

#[test]
fn errors_name_the_file_line_and_instruction() {
    let store = Store::in_memory();
    base(&store, "base:1");
    for (df, needle) in [
        (
            "FROM base:1\nENV A=1\nCOPY missing.txt /x\n",
            "Dockerfile:3: COPY missing.txt /x: missing.txt: not found in the build context",
        ),
        (
            "FROM base:1\nCOPY ../etc/passwd /x\n",
            "Dockerfile:2: COPY ../etc/passwd /x: ../etc/passwd: forbidden path outside the build context",
        ),
        ("FROM base:1\nCOPY a b /x\n", "must be a directory and end with a /"),
        (
            "FROM base:1\nCOPY --chown=nobody a /x\n",
            "unable to find user \"nobody\": no matching entries in /etc/passwd",
        ),
        (
            "FROM base:1\nADD https://example.com/x.tgz /x\n",
            "Dockerfile:2: ADD https://example.com/x.tgz /x: https://example.com/x.tgz: ADD of a URL needs URL fetching",
        ),
        ("FROM base:1\nENV A=\"${B:?B must be set}\"\n", "B must be set"),
        ("FROM base:1\nSTOPSIGNAL SIGNOPE\n", "Invalid signal: SIGNOPE"),
        ("FROM base:1\nCOPY a /etc/passwd/x\n", "not a directory"),
        ("FROM nosuchimage:1\n", "Dockerfile:1: FROM nosuchimage:1: base image \"nosuchimage:1\""),
        ("FROM base:1\nCOPY --chmod=u+x a /x\n", "not an octal mode"),
    ] {
        let ctx = context(df, &[("a", "a"), ("b", "b")]);
        let mut opts = BuildOptions::default();
        opts.registry.retries = 0;
        let e = build_logged(&store, ctx.path(), &opts).0.unwrap_err();
        assert!(e.to_string().contains(needle), "{df:?}: {e}");
    }
    // Unused build arguments are a warning, as in docker.
    let ctx = context("FROM base:1\nLABEL a=b\n", &[]);
    let built = build_logged(&store, ctx.path(), &BuildOptions::default().build_arg("UNUSED", "1")).0.unwrap();
    assert!(built.warnings.iter().any(|w| w.contains("[UNUSED] were not consumed")));
}

#[test]
fn untagged_results_are_listed_like_dangling_images() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let ctx = context("FROM base:1\nLABEL a=b\n", &[]);
    let built = build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap();
    let listed: BTreeMap<_, _> = store.images().unwrap().into_iter().map(|i| (i.repository.clone(), i.id)).collect();
    assert_eq!(listed.get("<none>"), Some(&Some(built.image.id().clone())));
    build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap();
    assert_eq!(store.images().unwrap().len(), 2, "a rebuild does not add another <none>");
}

#[test]
fn the_cache_tells_same_content_files_apart_by_name() {
    // `COPY a.txt /d/` and `COPY b.txt /d/` with the same bytes give different trees
    // (/d/a.txt, /d/b.txt): the second must not reuse the first's layer.
    let store = Store::in_memory();
    base(&store, "base:1");
    let files = [("a.txt", "same bytes"), ("b.txt", "same bytes")];
    let first = context("FROM base:1\nCOPY a.txt /d/\n", &files);
    let a = build_logged(&store, first.path(), &BuildOptions::default().tag("a:1")).0.unwrap();
    let second = context("FROM base:1\nCOPY b.txt /d/\n", &files);
    let b = build_logged(&store, second.path(), &BuildOptions::default().tag("b:1")).0.unwrap();
    assert_eq!((b.cached, b.executed), (0, 1), "the COPY of b.txt came from the cache");
    let view = b.image.merged().unwrap();
    assert!(view.stat("/d/b.txt").is_ok());
    assert!(view.stat("/d/a.txt").is_err());
    assert!(a.image.merged().unwrap().stat("/d/a.txt").is_ok());
    // The same file under a destination that names it is the same layer either way.
    let named = context("FROM base:1\nCOPY a.txt /d/f\n", &files);
    let n1 = build_logged(&store, named.path(), &BuildOptions::default()).0.unwrap();
    let n2 = build_logged(&store, named.path(), &BuildOptions::default()).0.unwrap();
    assert_eq!((n2.cached, n2.executed), (1, 0));
    assert_eq!(n1.image.id(), n2.image.id());
}
