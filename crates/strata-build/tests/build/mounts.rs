//! `RUN --mount` and here-documents through the namespace runner (root, busybox base):
//! cache mounts persist in the store between builds, secrets and bind mounts are seen
//! and never stored, tmpfs is a tmpfs, `#!` heredocs run as scripts. Then the same
//! mounts through buildah 1.28 (`--isolation chroot`), whose trees must agree.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use strata_build::{BuildOptions, NamespaceRunner, SecretSource};
use strata_image::{Image, Store};
use strata_testkit::{Compare, require_tool, run};

use crate::common::*;

fn read(img: &Image, path: &str) -> Option<String> {
    let merged = img.merged().unwrap();
    let mut s = String::new();
    merged.read_file(Path::new(path)).ok()?.read_to_string(&mut s).unwrap();
    Some(s)
}

/// Every layer of the image, uncompressed, as one byte string.
fn layer_bytes(store: &Store, img: &Image) -> Vec<u8> {
    let mut all = Vec::new();
    for d in img.layers() {
        let r = store.backend().open_descriptor(d).unwrap();
        strata_layer::Decoder::new(r, None, "layer").unwrap().read_to_end(&mut all).unwrap();
    }
    all
}

fn runner() -> Option<Arc<NamespaceRunner>> {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: RUN must be tested");
        return None;
    }
    Some(Arc::new(NamespaceRunner::detect().expect("root, but no runner")))
}

const SECRET: &str = "s3cret-value-7f3a";

#[test]
fn mounts_and_heredocs_run_for_real() {
    let Some(runner) = runner() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("store")).unwrap();
    let Some(_) = busybox_base(&store, "bb:1") else { return };
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, SECRET).unwrap();
    let df = r#"# syntax=docker/dockerfile:1.7
FROM bb:1
RUN --mount=type=cache,target=/var/cache/app,sharing=locked sh -c 'echo run >> /var/cache/app/log; cat /var/cache/app/log > /seen-cache'
RUN --mount=type=secret,id=tok sh -c 'cat /run/secrets/tok > /dev/null && echo readable > /secret-read'
RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'echo ${#TOKEN} > /secret-env'
RUN --mount=type=bind,source=conf,target=/conf cat /conf/a > /bound
RUN --mount=type=bind,source=conf,target=/conf,rw sh -c 'echo changed > /conf/a && cat /conf/a > /bound-rw'
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && cat /proc/mounts > /mounts'
RUN <<EOF
#!/bin/sh
echo "script $0" > /from-script
EOF
RUN cat <<EOF > /heredoc && cat <<-'RAW' >> /heredoc
home=$HOME
EOF
	raw=$HOME
	RAW
"#;
    let ctx = context(df, &[("conf/a", "from-context\n")]);
    let opts = BuildOptions::default().runner(runner).secret("tok", SecretSource::File(secret_file));
    let (built, log) = build_logged(&store, ctx.path(), &opts);
    let img = built.unwrap_or_else(|e| panic!("{e}\n{log:#?}")).image;
    assert_eq!(read(&img, "/seen-cache").unwrap(), "run\n");
    assert_eq!(read(&img, "/secret-env").unwrap(), format!("{}\n", SECRET.len()), "the secret as a variable");
    assert_eq!(read(&img, "/secret-read").unwrap(), "readable\n");
    assert_eq!(read(&img, "/bound").unwrap(), "from-context\n");
    assert_eq!(read(&img, "/bound-rw").unwrap(), "changed\n");
    assert_eq!(std::fs::read_to_string(ctx.path().join("conf/a")).unwrap(), "from-context\n", "rw binds a copy");
    assert!(read(&img, "/mounts").unwrap().contains(" /scratch tmpfs "), "a tmpfs");
    assert_eq!(read(&img, "/from-script").unwrap(), "script /dev/pipes/EOF\n");
    assert_eq!(read(&img, "/heredoc").unwrap(), "home=/root\nraw=$HOME\n");
    // Mount points made for the runs are gone; nothing mounted is in a layer.
    for p in ["/var/cache/app", "/conf", "/scratch", "/run/secrets", "/dev/pipes"] {
        assert!(img.merged().unwrap().stat(Path::new(p)).is_err(), "{p} is in the image");
    }
    let bytes = layer_bytes(&store, &img);
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is in a layer");
    let history = serde_json::to_string(img.config()).unwrap();
    assert!(!history.contains(SECRET), "the secret is in the config");
    // The cache mount persists in the store: a second build (no cache) sees the first's
    // file; the step cache keeps what it made too.
    let again = build_logged(&store, ctx.path(), &opts.clone().no_cache(true)).0.unwrap().image;
    assert_eq!(read(&again, "/seen-cache").unwrap(), "run\nrun\n");
    assert!(dir.path().join("store/strata-build/mounts").is_dir());
}

/// buildah 1.28 runs the same mounts (`bud --isolation chroot`): the trees agree.
#[test]
fn buildah_and_strata_agree_on_run_mounts() {
    let Some(runner) = runner() else { return };
    if !require_tool("buildah") || !require_tool("umoci") {
        return;
    }
    let dir = tempfile::Builder::new().prefix("strata-mounts-").tempdir_in("/tmp").unwrap();
    let dir_path = dir.path().to_str().unwrap().to_ascii_lowercase();
    let dir_path = Path::new(&dir_path);
    std::fs::create_dir_all(dir_path).unwrap();
    let layout = dir_path.join("store");
    let store = Store::open_or_create(&layout).unwrap();
    let Some(_) = busybox_base(&store, "bb:1") else { return };
    let secret_file = dir_path.join("token");
    std::fs::write(&secret_file, SECRET).unwrap();
    // A cache id of this run only: buildah keeps its cache mounts on the host.
    let id = format!("strata-test-{}", std::process::id());
    let body = format!(
        "RUN --mount=type=cache,id={id},target=/var/cache/app sh -c 'echo run >> /var/cache/app/log; cat /var/cache/app/log > /seen-cache'
RUN --mount=type=secret,id=tok sh -c 'cat /run/secrets/tok | wc -c > /secret-len'
RUN --mount=type=bind,source=conf,target=/conf cat /conf/a > /bound
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && ls /scratch > /scratch-list'
"
    );
    let ctx = context(&format!("FROM bb:1\n{body}"), &[("conf/a", "from-context\n")]);
    let opts =
        BuildOptions::default().runner(runner).secret("tok", SecretSource::File(secret_file.clone())).no_cache(true);
    build_logged(&store, ctx.path(), &opts).0.unwrap();
    let built = build_logged(&store, ctx.path(), &opts.clone().tag("strata:1")).0.unwrap();
    assert_eq!(read(&built.image, "/seen-cache").unwrap(), "run\nrun\n");
    let bytes = layer_bytes(&store, &built.image);
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is in a layer");

    let root = dir_path.join("buildah-root");
    let runroot = dir_path.join("buildah-run");
    let buildah = |args: &[&str]| {
        let mut c = Command::new("buildah");
        c.arg("--root").arg(&root).arg("--runroot").arg(&runroot).arg("--storage-driver").arg("vfs").args(args);
        run(&mut c)
    };
    let base_ref = format!("oci:{}:bb:1", layout.display());
    let image = buildah(&["pull", "-q", &base_ref]);
    buildah(&["tag", image.trim(), "localhost/strata-test-bb:1"]);
    let bctx = context(&format!("FROM localhost/strata-test-bb:1\n{body}"), &[("conf/a", "from-context\n")]);
    let secret = format!("id=tok,src={}", secret_file.display());
    for _ in 0..2 {
        buildah(&[
            "bud",
            "--isolation",
            "chroot",
            "--runtime",
            "/usr/sbin/runc",
            "--no-cache",
            "--secret",
            &secret,
            "-q",
            "-t",
            "localhost/out:1",
            bctx.path().to_str().unwrap(),
        ]);
    }
    let out = dir_path.join("buildah-out");
    buildah(&["push", "-q", "localhost/out:1", &format!("oci:{}:out:1", out.display())]);
    let ours = umoci_tree(&layout, "strata:1").unwrap();
    let mut theirs = umoci_tree(&out, "out:1").unwrap();
    // buildah leaves the mount points of its runs in the image (and the files it makes
    // for the container: hosts, hostname, resolv.conf); BuildKit and strata remove
    // the ones they made. Everything else must agree.
    for p in
        ["dev", "proc", "sys", "run", "run/secrets", "var", "var/cache", "etc/hostname", "etc/hosts", "etc/resolv.conf"]
    {
        assert!(theirs.entries.remove(Path::new(p)).is_some() || !ours.entries.contains_key(Path::new(p)), "{p}");
    }
    for p in ["seen-cache", "secret-len", "bound", "scratch-list"] {
        assert!(ours.entries.contains_key(Path::new(p)), "{p}");
    }
    let cmp = Compare { dir_mtime: false, file_mtime: false, ..Compare::default() };
    let diff = theirs.diff(&ours, &cmp);
    assert!(diff.is_empty(), "buildah vs strata trees:\n{}", diff.join("\n"));
    let _ = Command::new("rm").arg("-rf").arg(dir_path).status();
}

/// `RUN --mount=type=ssh`: the socket of `--ssh ID=SOCKET` at the target, with
/// `SSH_AUTH_SOCK` naming it; nothing of it in the image; a required agent not given
/// is an error that says how to give it.
#[test]
fn ssh_mount_forwards_the_agent_socket() {
    let Some(runner) = runner() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("store")).unwrap();
    let Some(_) = busybox_base(&store, "bb:1") else { return };
    let socket = dir.path().join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let df = "FROM bb:1\n\
RUN --mount=type=ssh sh -c 'test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /default-sock'\n\
RUN --mount=type=ssh,id=work,target=/tmp/agent sh -c 'test -S /tmp/agent && echo \"$SSH_AUTH_SOCK\" > /work-sock'\n";
    let ctx = context(df, &[]);
    let opts = BuildOptions::default().runner(runner).ssh("default", &socket).ssh("work", &socket);
    let (built, log) = build_logged(&store, ctx.path(), &opts);
    let img = built.unwrap_or_else(|e| panic!("{e}\n{log:#?}")).image;
    let default = read(&img, "/default-sock").unwrap();
    assert!(default.starts_with("/run/buildkit/ssh_agent."), "{default}");
    assert_eq!(read(&img, "/work-sock").unwrap(), "/tmp/agent\n");
    for p in [default.trim_end(), "/tmp/agent"] {
        assert!(img.merged().unwrap().stat(Path::new(p)).is_err(), "{p} is in the image");
    }
    let ctx = context("FROM bb:1\nRUN --mount=type=ssh,id=other,required true\n", &[]);
    let e = build_logged(&store, ctx.path(), &opts).0.unwrap_err();
    assert!(
        matches!(e.root_cause(), strata_build::Error::Secret { kind: strata_build::SecretKind::SshAgent, id, .. } if id == "other"),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(e.contains(": ssh agent \"other\" is required") && e.contains("--ssh other=SOCKET"), "{e}");
}
