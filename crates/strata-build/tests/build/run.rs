//! RUN: through a test double (anywhere), and through the namespace runner as root with
//! a busybox base (unpacked by umoci afterwards: exactly the expected tree).

use std::path::Path;
use std::sync::{Arc, Mutex};

use strata_build::{BuildOptions, Error, NamespaceRunner, OciRunner, RunSpec, Runner};
use strata_image::Store;
use strata_testkit::Kind;

use crate::common::*;

/// What the double saw: args, env, uid, gid, workdir.
type Seen = (Vec<String>, Vec<String>, u32, u32, String);

/// Writes a file named after the command into the rootfs; exits with 3 on `fail`.
#[derive(Default)]
struct Double {
    seen: Mutex<Vec<Seen>>,
}

impl Runner for Double {
    fn run(&self, spec: &RunSpec<'_>, output: &mut dyn std::io::Write) -> strata_build::Result<i32> {
        self.seen.lock().unwrap().push((
            spec.args.to_vec(),
            spec.env.to_vec(),
            spec.uid,
            spec.gid,
            spec.workdir.to_owned(),
        ));
        let last = spec.args.last().cloned().unwrap_or_default();
        if last == "fail" {
            output.write_all(b"about to fail\n").unwrap();
            return Ok(3);
        }
        std::fs::write(spec.rootfs.join("ran.txt"), &last).unwrap();
        output.write_all(format!("ran {last}\n").as_bytes()).unwrap();
        Ok(0)
    }
}

#[test]
fn run_goes_through_the_runner_with_env_user_workdir_and_build_args() {
    let store = Store::in_memory();
    base(&store, "base:1");
    let df = "FROM base:1\nARG V=1\nENV E=e\nUSER app\nWORKDIR /w\nRUN make $V\nRUN [\"/bin/x\", \"y\"]\nCOPY a /a\nRUN fail\n";
    let ctx = context(df, &[("a", "a")]);
    let double = Arc::new(Double::default());
    let opts = BuildOptions::default().runner(double.clone()).build_arg("V", "2");
    let (r, log) = build_logged(&store, ctx.path(), &opts);
    let e = r.unwrap_err();
    assert!(
        e.to_string().contains("Dockerfile:9: RUN fail: the command '/bin/sh -c fail' returned a non-zero code: 3"),
        "{e}"
    );
    assert!(matches!(e.root_cause(), Error::RunFailed { code: 3, .. }));
    assert!(log.contains(&"out:ran make $V\n".to_owned()), "output streams to the caller: {log:#?}");
    assert!(log.contains(&"out:about to fail\n".to_owned()));
    let seen = double.seen.lock().unwrap();
    let (args, env, uid, gid, wd) = &seen[0];
    assert_eq!(args, &["/bin/sh", "-c", "make $V"]);
    assert!(
        env.contains(&"E=e".to_owned())
            && env.contains(&"V=2".to_owned())
            && env.contains(&"HOME=/home/app".to_owned())
    );
    assert_eq!((*uid, *gid, wd.as_str()), (1000, 1000, "/w"));
    assert_eq!(seen[1].0, ["/bin/x", "y"]);
    drop(seen);

    // The steps before the failure are cached: their image has the RUN layers.
    let ok = context(
        "FROM base:1\nARG V=1\nENV E=e\nUSER app\nWORKDIR /w\nRUN make $V\nRUN [\"/bin/x\", \"y\"]\nCOPY a /a\n",
        &[("a", "a")],
    );
    let built = build_logged(&store, ok.path(), &opts).0.unwrap();
    assert_eq!(built.executed, 0, "every step before the failure was kept in the cache");
    let h = created_by(&built.image);
    assert_eq!(h[h.len() - 3], "|1 V=2 /bin/sh -c make $V", "build args in created_by, docker's way");
    assert_eq!(h[h.len() - 2], "|1 V=2 /bin/x y");
    let view = built.image.merged().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut view.read_file("/ran.txt").unwrap(), &mut text).unwrap();
    assert_eq!(text, "y", "the second RUN's change, committed");
    assert!(view.stat("/a").is_ok(), "COPY after RUN lands in the image");
}

#[test]
fn run_in_namespaces_as_root_builds_the_expected_tree() {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: RUN must be tested");
        eprintln!("skipping: not root");
        return;
    }
    let runner = match NamespaceRunner::detect() {
        Ok(r) => r,
        Err(e) => panic!("root, but no runner: {e}"),
    };
    builds_the_expected_tree(Arc::new(runner));
}

#[test]
fn run_through_an_oci_runtime_builds_the_same_tree() {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: RUN must be tested");
        eprintln!("skipping: not root");
        return;
    }
    let runner = match OciRunner::with_runtime(Path::new("runc")) {
        Ok(r) => r,
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI has runc: {e}"),
        Err(e) => return eprintln!("skipping: {e}"),
    };
    builds_the_expected_tree(Arc::new(runner.clone()));

    // The runtime's own failure is the build's error, in its words; the mount points it
    // made are gone.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("store")).unwrap();
    let Some(_) = busybox_base(&store, "bb:1") else { return };
    let ctx = context("FROM bb:1\nRUN [\"/no/such/program\"]\n", &[]);
    let opts = BuildOptions::default().runner(Arc::new(runner));
    let e = build_logged(&store, ctx.path(), &opts).0.unwrap_err();
    assert!(e.to_string().contains("/no/such/program"), "{e}");
    assert!(matches!(e.root_cause(), Error::RuntimeFailed { .. }), "{e:?}");
}

/// A build with `RUN`s as root, through `runner`, gives exactly the expected tree.
fn builds_the_expected_tree(runner: Arc<dyn Runner>) {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("store");
    let store = Store::open_or_create(&layout).unwrap();
    let Some(_) = busybox_base(&store, "bb:1") else { return };
    let df = r#"FROM bb:1
RUN echo 'web:x:2000:2000:web:/home/web:/bin/sh' >> /etc/passwd && echo 'web:x:2000:' >> /etc/group && mkdir -p /home/web && chown web:web /home/web
ENV GREETING="hello there"
WORKDIR /srv/app
COPY site/ ./site/
RUN echo "$GREETING" > greeting.txt && rm site/remove-me.txt && mkdir -p /var/log && touch /var/log/app.log && rm -rf /tmp
USER web
RUN id -u > /home/web/uid && pwd > /home/web/pwd && echo $HOME > /home/web/home && hostname > /home/web/hostname.txt
RUN ls /proc/self > /dev/null && echo ok > /dev/null && test ! -e /sys/kernel || true
CMD ["/bin/sh", "-c", "cat greeting.txt"]
"#;
    let ctx = context(df, &[("site/index.html", "<h1>hi</h1>"), ("site/remove-me.txt", "x")]);
    let opts = BuildOptions::default().runner(runner).tag("app:1");
    let (built, log) = build_logged(&store, ctx.path(), &opts);
    let built = built.unwrap_or_else(|e| panic!("{e}\n{log:#?}"));
    let img = &built.image;
    let h = created_by(img);
    assert!(h[1].starts_with("/bin/sh -c echo 'web:x:2000"), "{h:#?}");
    assert_eq!(h.len(), 10);
    assert_eq!(img.config().config.as_ref().unwrap().cmd.as_ref().unwrap()[2], "cat greeting.txt");

    let Some(tree) = umoci_tree(&layout, "app:1") else { return };
    let content = |p: &str| match &tree.entries.get(Path::new(p)).unwrap_or_else(|| panic!("{p} missing")).kind {
        Kind::File(d) => d.clone(),
        k => panic!("{p}: {k:?}"),
    };
    let digest = |s: &str| strata_spec::Digest::sha256_of(s.as_bytes());
    assert_eq!(content("srv/app/greeting.txt"), digest("hello there\n"));
    assert_eq!(content("srv/app/site/index.html"), digest("<h1>hi</h1>"));
    assert!(!tree.entries.contains_key(Path::new("srv/app/site/remove-me.txt")), "deleted by RUN");
    assert!(!tree.entries.contains_key(Path::new("tmp")), "deleted by RUN");
    assert_eq!(content("home/web/uid"), digest("2000\n"), "USER by name, from the passwd RUN wrote");
    assert_eq!(content("home/web/pwd"), digest("/srv/app\n"));
    assert_eq!(content("home/web/home"), digest("/home/web\n"));
    let home = &tree.entries[Path::new("home/web")];
    assert_eq!((home.uid, home.gid), (2000, 2000));
    assert!(tree.entries.contains_key(Path::new("var/log/app.log")));
    assert!(String::from_utf8_lossy(&std::fs::read(layout.join("index.json")).unwrap()).contains("app:1"));
    // Nothing of the mounts reached the image.
    for p in ["proc", "dev", "sys"] {
        let extra: Vec<_> = tree.entries.keys().filter(|k| k.starts_with(p)).collect();
        assert!(extra.is_empty(), "{p}: {extra:?}");
    }
    let passwd = std::fs::read_to_string(layout.join("x")).ok();
    assert!(passwd.is_none());
    // A second build runs nothing.
    let again = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!((again.executed, again.image.id()), (0, img.id()));
    // A failing command fails the build, naming the line.
    let bad = context("FROM bb:1\nRUN echo before\nRUN exit 7\n", &[]);
    let e = build_logged(&store, bad.path(), &opts).0.unwrap_err();
    assert!(
        e.to_string().contains("Dockerfile:3: RUN exit 7: the command '/bin/sh -c exit 7' returned a non-zero code: 7"),
        "{e}"
    );
    // No network unless asked for: only a loopback that is down.
    let net = context("FROM bb:1\nRUN ip -o link | grep -v ' lo:' | wc -l > /links\n", &[]);
    let b = build_logged(&store, net.path(), &opts.clone().tag("net:1")).0.unwrap();
    let mut links = String::new();
    std::io::Read::read_to_string(&mut b.image.merged().unwrap().read_file("/links").unwrap(), &mut links).unwrap();
    assert_eq!(links.trim(), "0");
}
