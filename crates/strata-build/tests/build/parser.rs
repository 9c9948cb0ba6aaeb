//! The parser on a table of real-world snippets, odd corners included, and bad input.

use strata_build::dockerfile::{CommandForm, Dockerfile, Instruction, RunArgs};

fn one(text: &str) -> Instruction {
    let df =
        Dockerfile::parse("Dockerfile", &format!("FROM scratch\n{text}")).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(df.stages[0].instructions.len(), 1, "{text}");
    df.stages[0].instructions[0].instruction.clone()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn real_world_snippets() {
    use CommandForm::{Exec, Shell};
    let table: Vec<(&str, Instruction)> = vec![
        // nginx-style continuation with && chains and comment lines inside
        (
            "RUN set -x \\\n    && apt-get update \\\n# a comment inside the continuation\n    && apt-get install -y curl",
            Instruction::Run(RunArgs::new(Shell("set -x     && apt-get update     && apt-get install -y curl".into()))),
        ),
        // empty continuation line (docker warns, keeps going)
        ("RUN echo a \\\n\n    b", Instruction::Run(RunArgs::new(Shell("echo a     b".into())))),
        // JSON split over lines
        (
            "CMD [\"nginx\", \\\n     \"-g\", \\\n     \"daemon off;\"]",
            Instruction::Cmd(Exec(s(&["nginx", "-g", "daemon off;"]))),
        ),
        // not-quite-JSON is the shell form
        ("CMD [echo, hi]", Instruction::Cmd(Shell("[echo, hi]".into()))),
        ("ENTRYPOINT [\"/docker-entrypoint.sh\"]", Instruction::Entrypoint(Exec(s(&["/docker-entrypoint.sh"])))),
        ("run echo lower-case keyword", Instruction::Run(RunArgs::new(Shell("echo lower-case keyword".into())))),
        // ENV forms: several pairs, quotes kept for substitution, legacy form
        (
            "ENV A=1 B=\"two words\" C=x\\ y",
            Instruction::Env(pairs(&[("A", "1"), ("B", "\"two words\""), ("C", "x\\ y")])),
        ),
        ("ENV PATH /usr/local/bin:$PATH", Instruction::Env(pairs(&[("PATH", "/usr/local/bin:$PATH")]))),
        (
            "LABEL org.opencontainers.image.title=\"web app\" version=1",
            Instruction::Label(pairs(&[("org.opencontainers.image.title", "\"web app\""), ("version", "1")])),
        ),
        // COPY flags and JSON form
        (
            "COPY --chown=app:app --chmod=640 [\"a b.txt\", \"/dest dir/\"]",
            Instruction::Copy(strata_build::dockerfile::CopyArgs {
                sources: s(&["a b.txt"]),
                dest: "/dest dir/".into(),
                from: None,
                chown: Some("app:app".into()),
                chmod: Some("640".into()),
                ..Default::default()
            }),
        ),
        (
            "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/x.tgz /x/",
            Instruction::Add(strata_build::dockerfile::CopyArgs {
                sources: s(&["https://example.com/x.tgz"]),
                dest: "/x/".into(),
                checksum: Some("sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d".into()),
                ..Default::default()
            }),
        ),
        (
            "COPY --from=builder /out/app /usr/local/bin/",
            Instruction::Copy(strata_build::dockerfile::CopyArgs {
                sources: s(&["/out/app"]),
                dest: "/usr/local/bin/".into(),
                from: Some("builder".into()),
                ..Default::default()
            }),
        ),
        ("EXPOSE 80 443/tcp ${PORT}", Instruction::Expose(s(&["80", "443/tcp", "${PORT}"]))),
        ("VOLUME [\"/data\", \"/logs\"]", Instruction::Volume(s(&["/data", "/logs"]))),
        ("VOLUME /var/lib/mysql", Instruction::Volume(s(&["/var/lib/mysql"]))),
        (
            "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]",
            Instruction::Shell(s(&["/bin/bash", "-o", "pipefail", "-c"])),
        ),
        ("STOPSIGNAL SIGQUIT", Instruction::StopSignal("SIGQUIT".into())),
        ("USER 1000:1000", Instruction::User("1000:1000".into())),
        ("WORKDIR /usr/src/app", Instruction::Workdir("/usr/src/app".into())),
        ("ONBUILD COPY . /app", Instruction::OnBuild("COPY . /app".into())),
        (
            "ARG VERSION=1.0 DEBUG",
            Instruction::Arg(vec![("VERSION".into(), Some("1.0".into())), ("DEBUG".into(), None)]),
        ),
        ("MAINTAINER Jane <jane@example.com>", Instruction::Maintainer("Jane <jane@example.com>".into())),
        (
            "HEALTHCHECK --interval=5m --timeout=3s --retries=3 \\\n  CMD curl -f http://localhost/ || exit 1",
            Instruction::Healthcheck(strata_build::dockerfile::HealthcheckArgs {
                test: s(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
                interval: Some(300_000_000_000),
                timeout: Some(3_000_000_000),
                retries: Some(3),
                ..Default::default()
            }),
        ),
        (
            "HEALTHCHECK NONE",
            Instruction::Healthcheck(strata_build::dockerfile::HealthcheckArgs {
                test: s(&["NONE"]),
                ..Default::default()
            }),
        ),
        (
            "HEALTHCHECK CMD [\"/bin/check\", \"-q\"]",
            Instruction::Healthcheck(strata_build::dockerfile::HealthcheckArgs {
                test: s(&["CMD", "/bin/check", "-q"]),
                ..Default::default()
            }),
        ),
    ];
    for (text, want) in table {
        assert_eq!(one(text), want, "{text}");
    }
}

#[test]
fn directives_stages_lines_and_args() {
    let text = "# syntax=docker/dockerfile:1\n# escape=`\n\nARG BASE=alpine\nFROM ${BASE} AS Build\nRUN dir C:\\ `\n  /w\n\n# comment\nFROM scratch\nCOPY --from=build /x /x\n";
    let df = Dockerfile::parse("Dockerfile.win", text).unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"), "stage names are lower-cased");
    assert_eq!(df.stages[0].from.line, 5);
    let run = &df.stages[0].instructions[0];
    assert_eq!(run.line, 6);
    assert_eq!(run.instruction, Instruction::Run(RunArgs::new(CommandForm::Shell("dir C:\\   /w".into()))));
    assert_eq!(df.stages[1].instructions[0].line, 11);
    assert_eq!(df.stage_index("BUILD"), Some(0));
    assert_eq!(df.stage_index("1"), Some(1));
    // A directive after a comment is a comment; CRLF line ends work.
    let df = Dockerfile::parse("D", "# hello\n# escape=`\r\nFROM a\r\nRUN x \\\r\n y\r\n").unwrap();
    assert_eq!(df.escape, '\\');
    assert_eq!(
        df.stages[0].instructions[0].instruction,
        Instruction::Run(RunArgs::new(CommandForm::Shell("x  y".into())))
    );
    assert!(df.warnings.is_empty());
    let df = Dockerfile::parse("D", "FROM a\nRUN a \\\n\n b\n").unwrap();
    assert_eq!(df.warnings.len(), 1);
}

#[test]
fn bad_input_names_file_line_and_instruction() {
    for (text, line, needle) in [
        ("FROM a\nRUN ok\nCOPY onlyone\n", 3, "Dockerfile:3: COPY: COPY requires at least two arguments"),
        ("FROM a\n\nFOO bar\n", 3, "unknown instruction: FOO"),
        ("RUN x\nFROM a\n", 1, "RUN: no build stage"),
        ("", 1, "no FROM"),
        ("FROM a\nSHELL /bin/bash -c\n", 2, "SHELL requires the arguments to be in JSON form"),
        ("FROM a\nHEALTHCHECK --interval=5 CMD x\n", 2, "missing unit"),
        ("FROM a\nHEALTHCHECK --retries=0 CMD x\n", 2, "--retries must be at least 1"),
        ("FROM a\nHEALTHCHECK FOO\n", 2, "Unknown type"),
        ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD"),
        ("FROM a\nONBUILD FROM b\n", 2, "isn't allowed as an ONBUILD trigger"),
        ("FROM a AS 1x\n", 1, "invalid name for build stage"),
        ("FROM a AS x\nFROM b AS x\n", 2, "duplicate stage name"),
        ("FROM a b\n", 1, "one or three arguments"),
        ("FROM a\nRUN --mount make\n", 2, "missing a value on flag: --mount"),
        ("FROM a\nRUN --network=bridge make\n", 2, "expected default, none or host"),
        ("FROM a\nCOPY --link=maybe a b\n", 2, "expected true or false"),
        ("FROM a\nADD --parents a b\n", 2, "unknown flag: --parents"),
        ("FROM a\nRUN <<EOF\necho\n", 2, "unterminated heredoc"),
        ("FROM a\nCOPY 3<<EOF /x\nhi\nEOF\n", 2, "file descriptor"),
        ("# syntax=example.com/my/frontend:1\nFROM a\n", 1, "other frontend images are not supported"),
        ("FROM a\nCOPY --chown a b\n", 2, "missing a value on flag"),
        ("FROM a\nENV A\n", 2, "ENV must have two arguments"),
        ("FROM a\nLABEL a=1 b\n", 2, "can't find ="),
        ("FROM a\nONBUILD RUN <<EOF\n", 2, "heredocs are only allowed"),
        ("# escape=x\nFROM a\n", 1, "invalid escape token"),
        ("FROM a\nUSER\n", 2, "USER requires exactly one argument"),
        ("FROM a\nVOLUME [\"\"]\n", 2, "empty string"),
        ("FROM a\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
        ("FROM a\nCMD [\"a\", 1]\n", 2, "arrays must be comprised of strings only"),
    ] {
        let e = Dockerfile::parse("Dockerfile", text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
    }
    // USER, WORKDIR and STOPSIGNAL take the rest of the line, spaces and all, as docker.
    let df = Dockerfile::parse("Dockerfile", "FROM a\nUSER a b\nWORKDIR /x y\n").unwrap();
    assert_eq!(df.stages[0].instructions[0].instruction, Instruction::User("a b".into()));
    assert_eq!(df.stages[0].instructions[1].instruction, Instruction::Workdir("/x y".into()));
}
