//! `--format`, `--filter`, `--digests`, `--no-trunc` and `-H=false`: the same template
//! on the same images prints the same in strata and in docker.
//!
//! The images are made by strata and loaded into docker (`strata save` | `docker load`),
//! and one is made by docker (`docker commit`) and loaded into strata, so both sides hold
//! the same image ids. Some fields legitimately differ for now, and the comparisons leave
//! them out:
//! - `Size`, `VirtualSize` (and history's `SIZE`): strata counts the layer blobs as
//!   stored, docker the unpacked layer bytes (issue 13, point 1);
//! - `CreatedSince`: a relative time, worded differently until point 7 lands, and the
//!   clock moves between the two runs; `CreatedAt` carries the same instant and is compared;
//! - `Digest` with `--digests` (and templates naming `{{.Digest}}`): each tool shows the
//!   image's own `RepoDigests`, which strata reports for every tag and docker only for
//!   images that came from a registry (point 6); each side is checked against its own
//!   inspect;
//! - lower history rows of a `docker commit` image: docker knows the base image id,
//!   strata prints `<missing>` (point 7).

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use strata_testkit::Docker;

use crate::common::{Env, Registry, Run, tomcat_rootfs};

/// Names and ids of the images both sides hold.
struct Fixture {
    env: Env,
    docker: &'static Docker,
    /// `REPO:1`, `REPO:2`: image A (labels a=b and team=<x&y>, env, cmd), made first.
    /// `REPO:3`, `REPO-x:1`: image B, A plus a layer and label a=c, made a second later.
    repo: String,
    a: String,
    b: String,
    cleanup: Vec<String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let refs: Vec<&str> = self.cleanup.iter().map(String::as_str).collect();
        self.docker.cleanup(&refs, &[]);
    }
}

fn to_run(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn fixture(prefix: &str) -> Option<Fixture> {
    let docker = strata_testkit::docker()?;
    let env = Env::new();
    let repo = docker.unique(prefix);
    tomcat_rootfs(&env.path("rootfs"));
    let t = |tag: &str| format!("{repo}:{tag}");
    env.ok(&[
        "import",
        "rootfs",
        &t("1"),
        "-m",
        "imported <base>",
        "-c",
        "LABEL a=b team=<x&y>",
        "-c",
        "ENV X=1 Y=<y>",
        "-c",
        "CMD [\"catalina.sh\", \"run\"]",
    ]);
    env.ok(&["tag", &t("1"), &t("2")]);
    // B is made a moment later: before= and since= tell them apart by creation time.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::create_dir_all(env.path("extra")).unwrap();
    std::fs::write(env.path("extra/more"), "more\n").unwrap();
    env.ok(&["append", &t("1"), "extra", &t("3"), "-m", "second <step>", "-c", "LABEL a=c"]);
    let x = format!("{repo}-x:1");
    env.ok(&["tag", &t("3"), &x]);
    env.ok(&["save", &t("1"), &t("2"), &t("3"), &x, "-o", "all.tar"]);
    let f = Fixture {
        a: env.image_id(&t("1")),
        b: env.image_id(&t("3")),
        cleanup: vec![t("1"), t("2"), t("3"), x],
        env,
        docker,
        repo,
    };
    docker.load(&f.env.path("all.tar"));
    Some(f)
}

impl Fixture {
    fn tag(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repo)
    }

    fn strata(&self, args: &[&str]) -> Run {
        self.env.run(args)
    }

    /// `docker ARGS`, with times in UTC as strata prints them.
    fn docker(&self, args: &[&str]) -> Run {
        to_run(self.docker.cmd(args).env("TZ", "UTC").output().expect("run docker"))
    }

    /// Both succeed; their outputs.
    fn both_ok(&self, strata: &[&str], docker: &[&str]) -> (String, String) {
        let s = self.strata(strata);
        assert_eq!(s.code, 0, "strata {strata:?}: {}", s.stderr);
        let d = self.docker(docker);
        assert_eq!(d.code, 0, "docker {docker:?}: {}", d.stderr);
        (s.stdout, d.stdout)
    }

    /// Lines that name this fixture's repositories (the engine is shared).
    fn ours(&self, out: &str) -> Vec<String> {
        let mut lines: Vec<String> = out.lines().filter(|l| l.contains(&self.repo)).map(str::to_owned).collect();
        lines.sort();
        lines
    }
}

fn sorted(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// A table's header line and its rows in any order (both tools may order the rows of
/// one listing differently; the columns' widths still depend on all rows).
fn table(out: &str) -> (String, Vec<String>) {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default().to_owned();
    let mut rows: Vec<String> = lines.map(str::to_owned).collect();
    rows.sort();
    (header, rows)
}

/// JSON lines, parsed, without the fields that legitimately differ, sorted.
fn json_rows(out: &str, skip: &[&str]) -> Vec<Value> {
    let mut rows: Vec<Value> = out
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            for k in skip {
                v.as_object_mut().unwrap().remove(*k);
            }
            v
        })
        .collect();
    rows.sort_by_key(|v| v.to_string());
    rows
}

/// Templates over `images` rows whose fields must agree.
const IMAGE_TEMPLATES: &[&str] = &[
    "{{.Repository}}:{{.Tag}} {{.ID}} {{.CreatedAt}}",
    "{{.Containers}}|{{.SharedSize}}|{{.UniqueSize}}",
    r"{{.Repository}}\t{{.Tag}}",
    "{{upper .Repository}} {{lower .Tag}} {{title .Repository}} {{split .Repository \"-\"}} {{join (split .Repository \"-\") \"+\"}}",
    "{{pad .Tag 2 1}}|{{truncate .ID 4}}|{{len .ID}}|{{index .ID 0}}|{{slice .ID 0 3}}",
    "{{printf \"%-14s|%5s|%q|%v|%x\" .Tag .Tag .ID .Tag .Tag}}",
    "{{if eq .Tag \"1\"}}one{{else if eq .Tag \"2\"}}two{{else}}{{.Tag}}{{end}} {{with .Tag}}[{{.}}]{{end}} {{and .Tag .ID}} {{or \"\" .Tag}} {{not .Tag}}",
    "{{range $i, $p := split .Repository \"-\"}}{{if $i}}/{{end}}{{$p}}{{end}}",
    "{{- .Tag -}}  x  {{- /* a comment */ -}}  {{ .Repository }}",
    "{{$r := .Repository}}{{$t := .Tag}}{{printf \"%s=%s\" $r $t | upper}}",
    "{{json .ID}} {{json .Tag}} {{.ID | len | printf \"%03d\"}}",
    "{{println .Tag .ID}}",
];

#[test]
fn images_templates_print_the_same() {
    let Some(f) = fixture("strata-fmt-images") else { return };
    for template in IMAGE_TEMPLATES {
        let (s, d) = f.both_ok(&["images", &f.repo, "--format", template], &["images", &f.repo, "--format", template]);
        assert_eq!(sorted(&s), sorted(&d), "--format {template:?}");
    }
    // --no-trunc: full ids.
    let t = "{{.Tag}} {{.ID}}";
    let (s, d) =
        f.both_ok(&["images", "--no-trunc", &f.repo, "--format", t], &["images", "--no-trunc", &f.repo, "--format", t]);
    assert_eq!(sorted(&s), sorted(&d));
    assert!(s.contains(&f.a), "{s}");

    // Tables: docker's header names, column widths and alignment.
    for template in [
        r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedAt}}",
        r"table {{upper .Repository}}\t{{pad .Tag 1 1}}\t{{json .ID}}\t{{truncate .CreatedAt 10}}",
        "table {{.ID}}: {{.Containers}} {{.SharedSize}} {{.UniqueSize}}",
        r"table {{.Tag}}\t\t{{.Repository}}",
    ] {
        let (s, d) = f.both_ok(&["images", &f.repo, "--format", template], &["images", &f.repo, "--format", template]);
        assert_eq!(table(&s), table(&d), "--format {template:?}");
    }
    // The default table and `--format table` are the same, headed as docker heads them
    // (the CREATED and SIZE values differ: see the module comment).
    let (s, d) = f.both_ok(&["images", &f.repo], &["images", &f.repo]);
    assert_eq!(table(&s).0.split_whitespace().collect::<Vec<_>>(), table(&d).0.split_whitespace().collect::<Vec<_>>());
    // CREATED reads "N seconds ago": the two runs agree when they fall in one second.
    let same = (0..5)
        .any(|_| f.strata(&["images", &f.repo]).stdout == f.strata(&["images", &f.repo, "--format", "table"]).stdout);
    assert!(same, "images and images --format table differ");

    // json: one object per line with docker's keys and values (`--format json` is docker
    // 23's name for `{{json .}}`, which this engine's client predates). The rows escape
    // HTML as docker's rows marshal themselves (`\u003cnone\u003e`).
    let skip = ["Size", "VirtualSize", "CreatedSince"];
    let (s, d) = f.both_ok(&["images", &f.repo, "--format", "json"], &["images", &f.repo, "--format", "{{json .}}"]);
    assert_eq!(json_rows(&s, &skip), json_rows(&d, &skip));
    assert!(s.contains(r#""Digest":"\u003cnone\u003e""#), "{s}");
    // `--format json` is `{{json .}}`, byte for byte; CreatedSince ("N seconds ago") can
    // tick between two runs, so a pair of runs that falls in one second is looked for.
    let same = (0..5).any(|_| {
        f.strata(&["images", &f.repo, "--format", "json"]).stdout
            == f.strata(&["images", &f.repo, "--format", "{{json .}}"]).stdout
    });
    assert!(same, "images --format json and --format '{{{{json .}}}}' differ");
    assert_eq!(s.lines().count(), 3, "{s}");

    // -q: the same ids (docker repeats an id for each of its tags; strata prints it once).
    let (s, d) = f.both_ok(&["images", "-q", &f.repo], &["images", "-q", &f.repo]);
    let unique = |o: &str| o.lines().map(str::to_owned).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(unique(&s), unique(&d));
    assert_eq!(s.lines().count(), 2, "{s}");
    // -q gives way to a template, as in docker.
    let (s, d) = f.both_ok(
        &["images", "-q", &f.repo, "--format", "{{.Tag}}"],
        &["images", "-q", &f.repo, "--format", "{{.Tag}}"],
    );
    assert_eq!(sorted(&s), sorted(&d));
}

#[test]
fn images_filters_select_the_same_rows() {
    let Some(f) = fixture("strata-fmt-filter") else { return };
    let t = "{{.Repository}}:{{.Tag}} {{.ID}}";
    let x = format!("{}-x", f.repo);
    let cases: Vec<Vec<String>> = vec![
        vec![f.repo.clone()],
        vec![f.tag("1")],
        vec![f.tag("[12]")],
        vec![format!("{}*:?", f.repo)],
        vec![x.clone()],
        vec!["--filter".into(), format!("reference={}", f.repo)],
        vec!["--filter".into(), format!("reference={}*", f.repo)],
        vec![
            "--filter".into(),
            format!("reference={}", f.tag("1")),
            "--filter".into(),
            format!("reference={}:3", f.repo),
        ],
        vec!["--filter".into(), format!("reference={}*", f.repo), "--filter".into(), "label=a".into()],
        vec!["--filter".into(), format!("reference={}*", f.repo), "--filter".into(), "label=a=c".into()],
        vec![
            "--filter".into(),
            format!("reference={}*", f.repo),
            "-f".into(),
            "label=a=b".into(),
            "-f".into(),
            "label=team".into(),
        ],
        vec!["--filter".into(), format!("reference={}*", f.repo), "--filter".into(), "label=nope".into()],
        vec!["--filter".into(), format!("before={}", f.tag("3")), f.repo.clone()],
        vec!["--filter".into(), format!("since={}", f.tag("1")), "--filter".into(), format!("reference={}*", f.repo)],
        vec!["--filter".into(), format!("since={}", f.tag("3")), f.repo.clone()],
        vec!["--filter".into(), "dangling=false".into(), "--filter".into(), format!("reference={}*", f.repo)],
        vec!["--filter".into(), format!("REFERENCE = {}", f.tag("2"))],
    ];
    for args in &cases {
        let mut s_args = vec!["images", "--format", t];
        s_args.extend(args.iter().map(String::as_str));
        let (s, d) = f.both_ok(&s_args, &s_args);
        assert_eq!(f.ours(&s), f.ours(&d), "images {args:?}");
    }
    // The filters select what they should (so that agreeing is not agreeing on nothing).
    let rows = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        a.extend_from_slice(args);
        f.ours(&f.strata(&a).stdout)
    };
    assert_eq!(rows(&[&f.tag("[12]")]), [f.tag("1"), f.tag("2")]);
    assert_eq!(rows(&["-f", &format!("reference={}*", f.repo), "-f", "label=a=c"]), [format!("{x}:1"), f.tag("3")]);
    assert_eq!(rows(&["-f", &format!("before={}", f.tag("3")), &f.repo]), [f.tag("1"), f.tag("2")]);
}

#[test]
fn dangling_images_filter_the_same() {
    let Some(f) = fixture("strata-fmt-dangling") else { return };
    // An image without tags on both sides: docker saves it by id, the tag moves away.
    let c = f.tag("d");
    std::fs::create_dir_all(f.env.path("dangling")).unwrap();
    std::fs::write(f.env.path("dangling/only-here"), f.repo.as_bytes()).unwrap();
    f.env.ok(&["append", &f.tag("1"), "dangling", &c]);
    let id = f.env.image_id(&c);
    f.env.ok(&["save", &c, "-o", "d.tar"]);
    f.docker.load(&f.env.path("d.tar"));
    f.docker.save(&[&id], &f.env.path("by-id.tar"));
    f.docker.ok(&["tag", &f.tag("1"), &c]);
    f.env.ok(&["tag", &f.tag("1"), &c]);
    f.env.ok(&["load", "-i", "by-id.tar"]);

    let t = "{{.ID}} {{.Repository}}:{{.Tag}}";
    let line = format!("{} <none>:<none>", id);
    for filter in ["dangling=true", "dangling=false"] {
        let args = ["images", "--no-trunc", "--filter", filter, "--format", t];
        let (s, d) = f.both_ok(&args, &args);
        let has = |out: &str| out.lines().any(|l| l == line);
        assert_eq!(has(&s), has(&d), "{filter}: strata\n{s}\ndocker\n{d}");
        assert_eq!(has(&s), filter == "dangling=true", "{filter}: {s}");
    }
    // A reference filter never shows an image without references.
    let args = ["images", "--no-trunc", "--filter", "reference=*", "--format", t];
    let (s, d) = f.both_ok(&args, &args);
    assert!(!s.contains(&line) && !d.contains(&line), "{s}\n{d}");
    f.docker.cleanup(&[&c, &id], &[]);
}

#[test]
fn images_digests() {
    let Some(f) = fixture("strata-fmt-digests") else { return };
    // --digests adds docker's DIGEST column; a table format gets it appended.
    let (s, d) = f.both_ok(&["images", "--digests", &f.repo], &["images", "--digests", &f.repo]);
    let words = |t: &str| table(t).0.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(&s), words(&d));
    assert_eq!(words(&s), ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]);
    let (s, d) = f.both_ok(
        &["images", "--digests", &f.repo, "--format", r"table {{.Tag}}\t{{.ID}}"],
        &["images", "--digests", &f.repo, "--format", r"table {{.Tag}}\t{{.ID}}"],
    );
    assert_eq!(words(&s), words(&d));
    assert_eq!(words(&s), ["TAG", "IMAGE", "ID", "DIGEST"]);
    // Each side's digest is the repository's digest its own inspect reports, or <none>.
    let t = "{{.Repository}}:{{.Tag}} {{.Digest}}";
    let (s, d) = f.both_ok(&["images", &f.repo, "--format", t], &["images", &f.repo, "--format", t]);
    for (out, inspect) in [
        (&s, Box::new(|r: &str| f.env.inspect(r)[0].clone()) as Box<dyn Fn(&str) -> Value>),
        (&d, Box::new(|r: &str| f.docker.inspect(r))),
    ] {
        for l in out.lines() {
            let (reference, digest) = l.split_once(' ').unwrap();
            let repo_digests = inspect(reference)["RepoDigests"].clone();
            let want = repo_digests
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .find_map(|rd| rd.strip_prefix(&format!("{}@", f.repo)))
                .unwrap_or("<none>")
                .to_owned();
            assert_eq!(digest, want, "{l}");
        }
    }
    // Without --digests and without {{.Digest}} in the format, docker shows <none>.
    let t = "{{.Tag}} {{ .Digest }}";
    let (s, d) = f.both_ok(&["images", &f.repo, "--format", t], &["images", &f.repo, "--format", t]);
    assert_eq!(sorted(&s), sorted(&d));
}

#[test]
fn digests_of_a_pushed_image_agree() {
    if !strata_testkit::require_tool("docker-registry") {
        return;
    }
    let Some(mut f) = fixture("strata-fmt-pushed") else { return };
    // strata pushes to a registry, docker pulls from it: both know the manifest digest.
    let reg = Registry::start("", "");
    let remote = format!("{}/{}", reg.host(), f.repo);
    let tag = format!("{remote}:1");
    f.env.ok(&["tag", &f.tag("1"), &tag]);
    let pushed: Value = serde_json::from_str(&f.env.ok(&["push", "--json", &tag])).unwrap();
    let digest = pushed["Digest"].as_str().unwrap().to_owned();
    f.cleanup.push(tag.clone());
    f.docker.ok(&["pull", &tag]);
    for (args, template) in [
        (&["--digests"][..], "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}"),
        (&[][..], "{{.Tag}} {{.Digest}}"),
        (&["--digests", "--no-trunc"][..], r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}"),
    ] {
        let mut a = vec!["images", &remote, "--format", template];
        a.extend_from_slice(args);
        let (s, d) = f.both_ok(&a, &a);
        assert_eq!(s, d, "images {args:?} --format {template:?}");
        assert!(s.contains(&digest), "{s}");
    }
}

#[test]
fn history_formats_print_the_same() {
    let Some(f) = fixture("strata-fmt-history") else { return };
    let b = f.tag("3");
    for (args, template) in [
        (&[][..], "{{.ID}}|{{.CreatedAt}}|{{.CreatedBy}}|{{.Comment}}"),
        (&["--no-trunc"][..], "{{.ID}}|{{.CreatedAt}}|{{.CreatedBy}}|{{.Comment}}"),
        (&["-H=false"][..], "{{.CreatedSince}}|{{.CreatedAt}}"),
        (&["--human=false"][..], "{{.CreatedSince}}"),
        (&[][..], "{{upper .Comment}} {{len .CreatedBy}} {{split .CreatedBy \" \"}} {{printf \"%.6s\" .ID}}"),
        (&[][..], r"table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Comment}}"),
    ] {
        let mut a = vec!["history", "--format", template];
        a.extend_from_slice(args);
        a.push(&b);
        let (s, d) = f.both_ok(&a, &a);
        assert_eq!(s, d, "history {args:?} --format {template:?}");
    }
    // -H=false prints sizes as bytes (the figures differ: see the module comment).
    let (s, d) = f.both_ok(
        &["history", "-H=false", "--format", "{{.Size}}", &b],
        &["history", "-H=false", "--format", "{{.Size}}", &b],
    );
    for out in [&s, &d] {
        assert!(out.lines().all(|l| l.parse::<u64>().is_ok()), "{out}");
    }
    // The default tables: docker's columns, human and not.
    for args in [&[][..], &["-H=false"][..]] {
        let mut a = vec!["history"];
        a.extend_from_slice(args);
        a.push(&b);
        let (s, d) = f.both_ok(&a, &a);
        assert_eq!(
            table(&s).0.split_whitespace().collect::<Vec<_>>(),
            table(&d).0.split_whitespace().collect::<Vec<_>>()
        );
    }
    // json lines.
    let skip = ["Size", "CreatedSince"];
    let (s, d) = f.both_ok(&["history", "--format", "json", &b], &["history", "--format", "{{json .}}", &b]);
    assert_eq!(json_rows(&s, &skip), json_rows(&d, &skip));
    assert!(s.contains(r"second \u003cstep\u003e"), "{s}");
    // -q, -q --no-trunc.
    for args in [&["-q"][..], &["-q", "--no-trunc"]] {
        let mut a = vec!["history"];
        a.extend_from_slice(args);
        a.push(&b);
        let (s, d) = f.both_ok(&a, &a);
        assert_eq!(s, d, "history {args:?}");
    }

    // An image docker made (commit), loaded into strata: the step docker recorded.
    let ctr = f.docker.unique("strata-fmt-ctr");
    let made = f.tag("4");
    f.docker.ok(&["create", "--name", &ctr, &f.tag("1"), "true"]);
    f.docker.ok(&["commit", "-m", "docker <commit>", "-a", "someone", "-c", "ENV Z=3", &ctr, &made]);
    f.docker.save(&[&made], &f.env.path("made.tar"));
    f.env.ok(&["load", "-i", "made.tar"]);
    let t = "{{.CreatedAt}}|{{.CreatedBy}}|{{.Comment}}";
    let (s, d) = f.both_ok(&["history", "--format", t, &made], &["history", "--format", t, &made]);
    assert_eq!(s, d);
    let (s, d) = f.both_ok(&["history", "--format", "{{.ID}}", &made], &["history", "--format", "{{.ID}}", &made]);
    assert_eq!(s.lines().next(), d.lines().next());
    f.docker.cleanup(&[&made], &[&ctr]);
}

/// Templates over `docker image inspect` whose values must agree.
const INSPECT_TEMPLATES: &[&str] = &[
    "{{.Id}}",
    "{{.Config.Env}} {{json .Config.Env}} {{len .Config.Env}} {{index .Config.Env 0}}",
    "{{.Config.Labels}} {{json .Config.Labels}} {{.Config.Labels.a}} {{index .Config.Labels \"team\"}}",
    "{{.Config.Labels.nope}}|{{index .Config.Labels \"nope\"}}|{{if .Config.Labels.nope}}y{{else}}n{{end}}",
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
    "{{.Config.Cmd}} {{json .Config.Cmd}} {{range .Config.Cmd}}<{{.}}>{{end}}",
    "{{.Config.Entrypoint}}|{{json .Config.Entrypoint}}|{{with .Config.Entrypoint}}e{{else}}none{{end}}|{{len .Config.Entrypoint}}",
    "{{len .RootFS.Layers}} {{index .RootFS.Layers 0}} {{.RootFS.Type}} {{json .RootFS.Layers}}",
    "{{.Os}}/{{.Architecture}} {{.Author}}|{{.Comment}}",
    "{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.User}}",
    "{{len .RepoTags}} {{if .RepoTags}}tagged{{end}}",
    "{{index .Config \"Env\"}}",
    "{{printf \"%.19s\" .Id}} {{.Id | printf \"%q\"}} {{printf \"%v|%s\" .Config.Env .Config.Labels}}",
];

#[test]
fn inspect_templates_print_the_same() {
    let Some(f) = fixture("strata-fmt-inspect") else { return };
    // One tag only, so that RepoTags agree: A keeps REPO:1 and REPO:2 on both sides.
    for reference in [f.tag("1"), f.tag("3")] {
        for template in INSPECT_TEMPLATES {
            let (s, d) =
                f.both_ok(&["inspect", "-f", template, &reference], &["image", "inspect", "-f", template, &reference]);
            assert_eq!(s, d, "inspect -f {template:?} {reference}");
        }
    }
    // Several images: one line each.
    let (s, d) = f.both_ok(
        &["inspect", "--format", "{{.Id}}", &f.tag("1"), &f.tag("3")],
        &["image", "inspect", "--format", "{{.Id}}", &f.tag("1"), &f.tag("3")],
    );
    assert_eq!(s, d);
    assert_eq!(s, format!("{}\n{}\n", f.a, f.b));

    // `--format json`: the array on one line. The engine's Debian client predates it;
    // compare with a docker client that has it, when one is installed.
    let s = f.strata(&["inspect", "--format", "json", &f.tag("1"), &f.tag("3")]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(s.stdout.lines().count(), 1);
    let arr: Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(arr[1]["Id"], f.b.as_str());
    if let Some(client) = current_client() {
        let o = std::process::Command::new(client)
            .env("DOCKER_HOST", &f.docker.host)
            .args(["image", "inspect", "--format", "json", &f.tag("1"), &f.tag("3")])
            .output()
            .unwrap();
        let d: Value = serde_json::from_slice(&o.stdout).unwrap();
        for key in ["Id", "Os", "Architecture", "Author", "Comment", "RootFS"] {
            assert_eq!(arr[0][key], d[0][key], "{key}");
            assert_eq!(arr[1][key], d[1][key], "{key}");
        }
        // The same tags, in an order each store keeps its own way.
        let tags = |v: &Value| {
            let mut t: Vec<String> = v["RepoTags"].as_array().unwrap().iter().map(|t| t.to_string()).collect();
            t.sort();
            t
        };
        assert_eq!(tags(&arr[1]), tags(&d[1]));
        assert_eq!(arr[0]["Config"]["Env"], d[0]["Config"]["Env"]);
        assert_eq!(arr[0]["Config"]["Labels"], d[0]["Config"]["Labels"]);
    }
}

/// A docker client new enough for `--format json` (23 and later), besides the engine's.
fn current_client() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/local/bin/docker");
    let out = std::process::Command::new(&path).args(["version", "--format", "{{.Client.Version}}"]).output().ok()?;
    let major: u32 = String::from_utf8_lossy(&out.stdout).split('.').next()?.trim().parse().ok()?;
    (major >= 23).then_some(path)
}

#[test]
fn errors_and_exit_codes_are_dockers() {
    let Some(f) = fixture("strata-fmt-errors") else { return };
    let a = f.tag("1");
    // (strata args, docker args, exit code of both)
    let cases: Vec<(Vec<&str>, Vec<&str>, i32)> = vec![
        (vec!["images", &f.repo, "--format", "{{.Nope}}"], vec!["images", &f.repo, "--format", "{{.Nope}}"], 1),
        (vec!["images", &f.repo, "--format", "{{.ID.Nope}}"], vec!["images", &f.repo, "--format", "{{.ID.Nope}}"], 1),
        (vec!["images", &f.repo, "--format", "{{nofunc}}"], vec!["images", &f.repo, "--format", "{{nofunc}}"], 1),
        (vec!["images", &f.repo, "--format", "{{.Tag"], vec!["images", &f.repo, "--format", "{{.Tag"], 1),
        (vec!["images", &f.repo, "--format", "{{ .Tag }"], vec!["images", &f.repo, "--format", "{{ .Tag }"], 1),
        (
            vec!["images", &f.repo, "--format", "{{index .ID 99}}"],
            vec!["images", &f.repo, "--format", "{{index .ID 99}}"],
            1,
        ),
        (vec!["history", "--format", "{{.Nope}}", &a], vec!["history", "--format", "{{.Nope}}", &a], 1),
        (vec!["inspect", "-f", "{{.Nope}}", &a], vec!["image", "inspect", "-f", "{{.Nope}}", &a], 1),
        (vec!["inspect", "-f", "{{.Config.Nope}}", &a], vec!["image", "inspect", "-f", "{{.Config.Nope}}", &a], 1),
        (vec!["inspect", "-f", "{{nofunc}}", &a], vec!["image", "inspect", "-f", "{{nofunc}}", &a], 64),
        (vec!["images", "--filter", "nope=1"], vec!["images", "--filter", "nope=1"], 1),
        (vec!["images", "--filter", "dangling=yes"], vec!["images", "--filter", "dangling=yes"], 1),
        (vec!["images", "--filter", "reference=["], vec!["images", "--filter", "reference=["], 1),
    ];
    for (s_args, d_args, code) in &cases {
        let s = f.strata(s_args);
        let d = f.docker(d_args);
        assert_eq!((s.code, d.code), (*code, *code), "{s_args:?}\nstrata: {}\ndocker: {}", s.stderr, d.stderr);
        // The same message: strata's after its prefix, docker's after the daemon's.
        let d_msg = d.stderr.trim().trim_start_matches("Error response from daemon: ");
        let s_msg = s.stderr.trim().trim_start_matches("strata: error: ");
        assert_eq!(s_msg, d_msg, "{s_args:?}");
        // No partial output (inspect prints its empty line).
        assert_eq!(s.stdout, d.stdout, "{s_args:?}");
    }
    // An image that is not there: the others still print, exit 1.
    let (s, d) = (
        f.strata(&["inspect", "-f", "{{.Id}}", "nope-strata-fmt:1", &a]),
        f.docker(&["image", "inspect", "-f", "{{.Id}}", "nope-strata-fmt:1", &a]),
    );
    assert_eq!((s.code, &s.stdout), (d.code, &d.stdout));
    assert_eq!(s.code, 1);
    // before= an image that is not there fails on both sides.
    let (s, d) = (
        f.strata(&["images", "-f", "before=nope-strata-fmt:1"]),
        f.docker(&["images", "-f", "before=nope-strata-fmt:1"]),
    );
    assert_eq!((s.code, d.code), (1, 1), "{}\n{}", s.stderr, d.stderr);
    // A filter without `=` is a usage error on both sides (docker exits 125, strata 2).
    let (s, d) = (f.strata(&["images", "-f", "x"]), f.docker(&["images", "-f", "x"]));
    assert!(s.stderr.contains("bad format of filter (expected name=value)"), "{}", s.stderr);
    assert!(d.stderr.contains("bad format of filter (expected name=value)"), "{}", d.stderr);
    assert_eq!((s.code, d.code), (2, 125));
}
