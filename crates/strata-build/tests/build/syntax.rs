//! Dockerfile syntax 1.x as BuildKit's frontend documents it (the Dockerfile reference:
//! here-documents, `RUN --mount`, `RUN --network`, `COPY --link|--parents|--exclude`,
//! the `syntax` and `check` directives, the platform ARGs), case by case. Debian's
//! docker has no BuildKit and buildah 1.28 predates heredocs, so the expected outcomes
//! are the reference's own examples, written out here.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use strata_build::dockerfile::{CommandForm, Dockerfile, Heredoc, Instruction, RunCommand};
use strata_build::{BuildOptions, Error, RunSpec, Runner};
use strata_image::{Image, Store};

use crate::common::*;

fn run_of(text: &str) -> strata_build::dockerfile::RunArgs {
    let df = Dockerfile::parse("Dockerfile", &format!("FROM scratch\n{text}")).unwrap_or_else(|e| panic!("{e}"));
    match &df.stages[0].instructions[0].instruction {
        Instruction::Run(r) => r.clone(),
        other => panic!("{other:?}"),
    }
}

fn shell(s: &str) -> RunCommand {
    RunCommand::Form(CommandForm::Shell(s.into()))
}

#[test]
fn run_heredocs_resolve_as_buildkit_runs_them() {
    for (text, want) in [
        // One heredoc that is the whole command: its lines run by the shell.
        ("RUN <<EOF\napt-get update\napt-get install -y vim\nEOF\n", shell("apt-get update\napt-get install -y vim\n")),
        // Lines that look like comments or instructions are content.
        ("RUN <<EOF\n# not a comment\nFROM x\nEOF\n", shell("# not a comment\nFROM x\n")),
        // `<<-`: leading tabs stripped, the delimiter may be indented with tabs.
        ("RUN <<-EOF\n\techo test\n\t\tx\n\tEOF\n", shell("echo test\nx\n")),
        ("RUN <<EMPTY\nEMPTY\n", shell("")),
        // A command with heredocs: the line and the documents go to the shell as they are.
        ("RUN <<EOT bash\n  set -ex\n  echo $HOME\nEOT\n", shell("<<EOT bash\n  set -ex\n  echo $HOME\nEOT")),
        ("RUN python3 <<'EOF'\nprint(\"hi\")\nEOF\n", shell("python3 <<'EOF'\nprint(\"hi\")\nEOF")),
        (
            "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n",
            shell("<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2"),
        ),
        ("RUN 3<<EOF cat <&3\nx\nEOF\n", shell("3<<EOF cat <&3\nx\nEOF")),
        // `#!` makes it a script, run from a file.
        (
            "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n",
            RunCommand::Script { name: "EOF".into(), content: "#!/usr/bin/env python3\nprint(1)\n".into() },
        ),
        // Not heredocs: quoted, or the JSON form.
        ("RUN \"<<NOHEREDOC\"\n", shell("\"<<NOHEREDOC\"")),
        ("RUN [\"echo\", \"<<EOF\"]\n", RunCommand::Form(CommandForm::Exec(vec!["echo".into(), "<<EOF".into()]))),
    ] {
        assert_eq!(run_of(text).resolve(), want, "{text:?}");
    }
}

#[test]
fn heredoc_words_quotes_and_following_instructions() {
    let df = Dockerfile::parse(
        "Dockerfile",
        "FROM scratch\nCOPY <<-\"EOT\" <<robots.txt /srv/\n\tliteral ${X}\n\tEOT\nUser-agent: *\nrobots.txt\nENV A=1\n",
    )
    .unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(ins.len(), 2, "the instruction after the heredocs is parsed: {ins:?}");
    assert_eq!(ins[1].line, 7);
    let Instruction::Copy(c) = &ins[0].instruction else { panic!() };
    assert_eq!(c.sources, ["<<-\"EOT\"", "<<robots.txt"]);
    assert_eq!(c.dest, "/srv/");
    let eot = c.heredoc("<<-\"EOT\"").unwrap();
    assert_eq!((eot.name.as_str(), eot.chomp, eot.expand, eot.text().as_str()), ("EOT", true, false, "literal ${X}\n"));
    let robots = c.heredoc("<<robots.txt").unwrap();
    assert_eq!(
        robots,
        &Heredoc {
            word: "<<robots.txt".into(),
            name: "robots.txt".into(),
            content: "User-agent: *\n".into(),
            chomp: false,
            expand: true,
            fd: None,
        }
    );
}

#[test]
fn directives_syntax_and_check_are_accepted() {
    for syntax in [
        "docker/dockerfile:1",
        "docker/dockerfile:1.7-labs",
        "docker.io/docker/dockerfile:1.4",
        "docker/dockerfile-upstream:master",
        "docker/dockerfile@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021",
    ] {
        let df = Dockerfile::parse(
            "D",
            &format!("# syntax={syntax}\n# check=skip=JSONArgsRecommended;error=true\nFROM a\n"),
        )
        .unwrap_or_else(|e| panic!("{syntax}: {e}"));
        assert_eq!(df.syntax.as_deref(), Some(syntax));
        assert_eq!(df.check.as_deref(), Some("skip=JSONArgsRecommended;error=true"));
    }
    let e = Dockerfile::parse("D", "# syntax=tonistiigi/dockerfile:runmount\nFROM a\n").unwrap_err();
    assert!(e.to_string().contains("not supported"), "{e}");
}

/// A file of the built image.
fn read(img: &Image, path: &str) -> String {
    let merged = img.merged().unwrap();
    let mut s = String::new();
    merged.read_file(Path::new(path)).unwrap().read_to_string(&mut s).unwrap();
    s
}

fn mode(img: &Image, path: &str) -> u32 {
    img.merged().unwrap().stat(Path::new(path)).unwrap().meta.mode
}

#[test]
fn copy_heredocs_make_files_expanded_unless_quoted() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let df = "# syntax=docker/dockerfile:1\nFROM base:1\nARG FOO=bar\nWORKDIR /app\n\
COPY <<EOF foo\nhello ${FOO} \"quoted\" \\$FOO\nEOF\n\
COPY <<-'EOT' /app/raw\n\thello ${FOO}\n\tEOT\n\
COPY --chmod=755 <<a.sh <<b.txt /bin/\n#!/bin/sh\na.sh\nB\nb.txt\n\
ADD <<EOF /added\nadd too\nEOF\n";
    let ctx = context(df, &[]);
    let built = build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap();
    let img = &built.image;
    assert_eq!(read(img, "/app/foo"), "hello bar \"quoted\" $FOO\n");
    assert_eq!(read(img, "/app/raw"), "hello ${FOO}\n");
    assert_eq!(read(img, "/bin/a.sh"), "#!/bin/sh\n");
    assert_eq!(read(img, "/bin/b.txt"), "B\n");
    assert_eq!(read(img, "/added"), "add too\n");
    assert_eq!(mode(img, "/app/foo"), 0o644);
    assert_eq!(mode(img, "/bin/a.sh"), 0o755);
    // The same again: cached; other content: not.
    let again = build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap();
    assert_eq!((again.executed, again.image.id()), (0, built.image.id()));
    let other = build_logged(&store, ctx.path(), &BuildOptions::default().build_arg("FOO", "baz")).0.unwrap();
    assert_eq!(read(&other.image, "/app/foo"), "hello baz \"quoted\" $FOO\n");
}

#[test]
fn copy_parents_exclude_and_link() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let files = [
        ("src/a/x.txt", "x"),
        ("src/a/skip.md", "md"),
        ("src/b/y.txt", "y"),
        ("src/b/deep/z.txt", "z"),
        ("top.md", "t"),
    ];
    let df = "FROM base:1\n\
COPY --parents src/*/x.txt src/b /parents/\n\
COPY --parents ./src/./b/deep/z.txt /pivot/\n\
COPY --exclude=**/*.md --exclude=b/deep src/ /ex/\n\
COPY --exclude=src/a src/* /ex2/\n\
COPY --link src/a/x.txt /var/run/linked/\n";
    let ctx = context(df, &files);
    let built = build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap();
    let img = &built.image;
    let merged = img.merged().unwrap();
    let has = |p: &str| merged.stat(Path::new(p)).is_ok();
    assert_eq!(read(img, "/parents/src/a/x.txt"), "x");
    assert_eq!(read(img, "/parents/src/b/y.txt"), "y", "a directory keeps its path too");
    assert_eq!(read(img, "/parents/src/b/deep/z.txt"), "z");
    assert!(!has("/parents/src/a/skip.md"));
    assert_eq!(read(img, "/pivot/b/deep/z.txt"), "z", "only what is after /./ is kept");
    assert!(has("/ex/a/x.txt") && has("/ex/b/y.txt"));
    assert!(!has("/ex/a/skip.md") && !has("/ex/b/deep"), "excluded below the source");
    assert!(!has("/ex2/x.txt") && has("/ex2/y.txt"), "excluded by its path in the context");
    // --link: the layer makes /var/run as a directory of its own, not through the
    // base's var/run -> /run symlink.
    let layer = img.layers().last().unwrap().clone();
    let paths = layer_paths(&store, &layer);
    assert!(paths.contains(&"var/run/linked/x.txt".to_owned()), "{paths:?}");
}

fn layer_paths(store: &Store, desc: &strata_spec::Descriptor) -> Vec<String> {
    let r = store.backend().open_descriptor(desc).unwrap();
    let d = strata_layer::Decoder::new(r, None, "layer").unwrap();
    let mut a = tar::Archive::new(d);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().trim_end_matches('/').to_owned())
        .collect()
}

/// What a run was given: args, env, mounts, network.
type Seen = (Vec<String>, Vec<String>, Vec<strata_build::RunMount>, strata_build::Network);

/// Records what `RUN` was asked to do.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
}

impl Runner for Recorder {
    fn run(&self, spec: &RunSpec<'_>, _: &mut dyn std::io::Write) -> strata_build::Result<i32> {
        self.seen.lock().unwrap().push((spec.args.to_vec(), spec.env.to_vec(), spec.mounts.to_vec(), spec.network));
        Ok(0)
    }
}

#[test]
fn run_heredocs_network_and_platform_args_reach_the_runner() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let df = "ARG TARGETARCH\nFROM --platform=$BUILDPLATFORM base:1 AS b\nARG TARGETOS\nARG TARGETPLATFORM\n\
RUN <<EOF\necho $TARGETOS\necho two\nEOF\n\
RUN --network=none cat <<EOF > /x\n$TARGETPLATFORM\nEOF\n\
RUN --network=host true\n";
    let ctx = context(df, &[]);
    let rec = Arc::new(Recorder::default());
    let opts = BuildOptions::default().runner(rec.clone());
    let e = build_logged(&store, ctx.path(), &opts).0.unwrap_err();
    assert!(matches!(e.root_cause(), Error::Entitlement { .. }), "{e}");
    assert!(e.to_string().contains("--allow network.host"), "{e}");
    let built = build_logged(&store, ctx.path(), &opts.clone().allow("network.host")).0.unwrap();
    let seen = rec.seen.lock().unwrap();
    let host = strata_spec::Platform::host();
    assert_eq!(seen[0].0, ["/bin/sh", "-c", "echo $TARGETOS\necho two\n"]);
    assert!(seen[0].1.contains(&format!("TARGETOS={}", host.os)), "{:?}", seen[0].1);
    assert_eq!(seen[1].0, ["/bin/sh", "-c", "cat <<EOF > /x\n$TARGETPLATFORM\nEOF"]);
    assert_eq!(seen[1].3, strata_build::Network::None);
    assert_eq!(seen.last().unwrap().3, strata_build::Network::Host);
    let h = created_by(&built.image);
    assert!(h.iter().any(|c| c.ends_with("/bin/sh -c echo $TARGETOS\necho two\n")), "{h:?}");
}

#[test]
fn run_mounts_are_parsed_checked_and_keyed() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let rec = Arc::new(Recorder::default());
    let opts = BuildOptions::default().runner(rec.clone());
    let df = "FROM base:1\nRUN --mount=type=bind,source=conf,target=/conf --mount=type=tmpfs,target=/t,size=1m true\n";
    let ctx = context(df, &[("conf/a", "1")]);
    let first = build_logged(&store, ctx.path(), &opts).0.unwrap();
    {
        let seen = rec.seen.lock().unwrap();
        let mounts = &seen[0].2;
        assert_eq!(mounts.len(), 2);
        assert!(mounts.iter().any(|m| m.target == Path::new("conf")
            && matches!(&m.kind, strata_build::RunMountKind::Bind { readonly: true, .. })));
        assert!(
            mounts
                .iter()
                .any(|m| m.target == Path::new("t")
                    && m.kind == strata_build::RunMountKind::Tmpfs { size: Some(1 << 20) })
        );
    }
    // The mount points made for the run are gone: nothing of them in the layer.
    assert!(first.image.merged().unwrap().stat(Path::new("/conf")).is_err());
    // What a bind mount binds is part of the key: new content, new run.
    let again = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!(again.executed, 0);
    write(ctx.path(), &[("conf/a", "2")]);
    let changed = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!(changed.executed, 1);
    // A required secret that was not given fails; one that was not required is skipped.
    let ctx = context("FROM base:1\nRUN --mount=type=secret,id=tok,required true\n", &[]);
    let e = build_logged(&store, ctx.path(), &opts).0.unwrap_err();
    assert!(e.to_string().contains("secret \"tok\" is required"), "{e}");
    assert!(
        matches!(e.root_cause(), strata_build::Error::Secret { kind: strata_build::SecretKind::Secret, id, problem: strata_build::SecretProblem::NotGiven { .. } } if id == "tok"),
        "{e:?}"
    );
    let ctx = context("FROM base:1\nRUN --mount=type=cache,target=/c,sharing=sometimes true\n", &[]);
    let e = build_logged(&store, ctx.path(), &opts).0.unwrap_err();
    assert!(e.to_string().contains("sharing"), "{e}");
}
