//! `strata build` and `strata builder prune`: docker-like step output, the cache, -q.

use crate::common::Env;

#[test]
fn build_prints_steps_uses_the_cache_and_tags() {
    let env = Env::new();
    let root = env.path("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    env.ok(&["import", root.to_str().unwrap(), "base:1"]);
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM base:1\nARG V=1\nENV V=$V\nCOPY a.txt /a.txt\nCMD [\"true\"]\n")
        .unwrap();
    std::fs::write(ctx.join("a.txt"), "a").unwrap();
    let c = ctx.to_str().unwrap();
    let out = env.ok(&["build", "-t", "app:1", "--build-arg", "V=2", c]);
    assert!(out.contains("Step 1/5 : FROM base:1\n"), "{out}");
    assert!(out.contains("Step 4/5 : COPY a.txt /a.txt\n"), "{out}");
    assert!(out.contains("Successfully tagged app:1\n"), "{out}");
    assert!(!out.contains("Using cache"));
    let again = env.ok(&["build", "-t", "app:1", "--build-arg", "V=2", c]);
    assert_eq!(again.matches(" ---> Using cache").count(), 4, "{again}");
    let id = env.ok(&["build", "-q", "--build-arg", "V=2", c]);
    assert!(id.trim().starts_with("sha256:") && id.lines().count() == 1, "{id}");
    let images = env.ok(&["images"]);
    assert_eq!(images.lines().count(), 3, "header, base, app; cache entries hidden: {images}");
    let inspect = env.ok(&["inspect", "app:1"]);
    assert!(inspect.contains("V=2"));
    let pruned = env.ok(&["builder", "prune"]);
    assert!(pruned.starts_with("Dropped 4 build cache entries"), "{pruned}");
    let err = env.fails(&["build", env.path("nope").to_str().unwrap()], 1);
    assert!(err.contains("not a directory"), "{err}");
}

/// A one-file HTTP server on 127.0.0.1: every request gets `body`, with a
/// `Last-Modified`; returns its base URL and a count of requests.
fn serve(body: &'static [u8]) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 01 Mar 2023 00:00:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body));
        }
    });
    (base, hits)
}

#[test]
fn build_adds_urls_only_with_allow_url_fetch() {
    let (base, hits) = serve(b"downloaded\n");
    let env = Env::new();
    let root = env.path("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    env.ok(&["import", root.to_str().unwrap(), "base:1"]);
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM base:1\nADD {base}/files/tool.sh /opt/\n")).unwrap();
    let c = ctx.to_str().unwrap();

    // Off by default: the error names the line, the URL and the flag; nothing fetched.
    let err = env.fails(&["build", "-t", "app:1", c], 1);
    assert!(err.contains(&format!("Dockerfile:2: ADD {base}/files/tool.sh /opt/")), "{err}");
    assert!(err.contains("--allow-url-fetch"), "{err}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    let out = env.ok(&["build", "--allow-url-fetch", "-t", "app:1", c]);
    assert!(out.contains("Successfully tagged app:1\n"), "{out}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The file in the image, as docker makes it: 0600, root's, the server's time.
    let dir = env.path("unpacked");
    env.ok(&["unpack", "app:1", dir.to_str().unwrap()]);
    let file = dir.join("rootfs/opt/tool.sh");
    assert_eq!(std::fs::read(&file).unwrap(), b"downloaded\n");
    let md = std::fs::metadata(&file).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((md.mode() & 0o7777, md.mtime()), (0o600, 1_677_628_800));

    // Again: from the cache (the server is asked, the content is the same).
    let again = env.ok(&["build", "--allow-url-fetch", "-t", "app:1", c]);
    assert_eq!(again.matches(" ---> Using cache").count(), 1, "{again}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// `--cache-to` a loopback registry from one store, `--cache-from` it in an empty one:
/// every step cached, the same image; `--source-date-epoch` makes the two builds'
/// manifests equal too. Independent stages print their lines with the stage's name.
#[test]
fn build_cache_through_a_registry_reproducible_and_parallel_stages() {
    if !strata_testkit::require_tool("docker-registry") {
        return;
    }
    let reg = crate::common::Registry::start("", "");
    let a = Env::new();
    let ctx = a.path("ctx");
    std::fs::create_dir_all(ctx.join("rootfs/etc")).unwrap();
    std::fs::write(ctx.join("rootfs/etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(ctx.join("one.txt"), "1").unwrap();
    std::fs::write(ctx.join("two.txt"), "2").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "# syntax=docker/dockerfile:1\nFROM scratch AS left\nCOPY rootfs/ /\nCOPY one.txt /one.txt\n\
         FROM scratch AS right\nCOPY two.txt /two.txt\n\
         FROM left\nCOPY --from=right /two.txt /two.txt\nCOPY <<EOF /etc/motd\nhi\nEOF\nCMD [\"/bin/sh\"]\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let cache = format!("type=registry,ref={}/app:buildcache", reg.host());
    let out =
        a.ok(&["build", "--jobs", "2", "--source-date-epoch", "1700000000", "--cache-to", &cache, "-t", "app:1", c]);
    assert!(out.contains("[left] Step 1/9 : FROM scratch AS left\n"), "{out}");
    assert!(out.contains("[right] Step 4/9 : FROM scratch AS right\n"), "{out}");
    let b = Env::new();
    let again = b.ok(&["build", "--source-date-epoch", "1700000000", "--cache-from", &cache, "-t", "app:1", c]);
    assert_eq!(again.matches(" ---> Using cache").count(), 6, "every step but the FROMs: {again}");
    assert!(!again.contains("Running"), "{again}");
    assert_eq!(b.image_id("app:1"), a.image_id("app:1"));
    // The same manifest, byte for byte.
    assert_eq!(manifest_digest(&a, "app:1"), manifest_digest(&b, "app:1"));
    assert_eq!(a.inspect("app:1")[0]["Created"], "2023-11-14T22:13:20Z");
    // Bad flags say what is wrong.
    let err = b.fails(&["build", "--secret", "src=/x", c], 1);
    assert!(err.contains("needs id=ID"), "{err}");
    let err = b.fails(&["build", "--allow", "everything", c], 1);
    assert!(err.contains("unknown entitlement"), "{err}");
    let err = b.fails(&["build", "--cache-to", "type=gha", c], 1);
    assert!(err.contains("unsupported cache type"), "{err}");
}

/// The digest of the manifest `tag` names in the env's store (its `index.json`).
fn manifest_digest(env: &Env, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.store().join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag);
    entry.unwrap()["digest"].as_str().unwrap().to_owned()
}

/// `SOURCE_DATE_EPOCH` in the environment: two fresh stores, contexts written a second
/// apart (another clock, other mtimes), the same manifest digest; without it, two.
#[test]
fn build_with_source_date_epoch_is_reproducible() {
    let build = |epoch: Option<&str>| {
        let env = Env::new();
        let ctx = env.path("ctx");
        std::fs::create_dir_all(ctx.join("etc")).unwrap();
        std::fs::write(ctx.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY etc/ /etc/\nWORKDIR /app\nENV A=1\n").unwrap();
        let mut c = env.cmd(&["build", "-q", "-t", "app:1", ctx.to_str().unwrap()]);
        match epoch {
            Some(e) => c.env("SOURCE_DATE_EPOCH", e),
            None => c.env_remove("SOURCE_DATE_EPOCH"),
        };
        let r = crate::common::run(c);
        assert_eq!(r.code, 0, "{}", r.stderr);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let digest = manifest_digest(&env, "app:1");
        (digest, env.inspect("app:1")[0]["Created"].clone())
    };
    let (a, created) = build(Some("1700000000"));
    let (b, _) = build(Some("1700000000"));
    assert_eq!(a, b, "same inputs, same SOURCE_DATE_EPOCH: same manifest");
    assert_eq!(created, "2023-11-14T22:13:20Z");
    let (c, _) = build(None);
    let (d, _) = build(None);
    assert_ne!(c, d, "without an epoch the clock shows (the test can tell)");
    // A bad value is an error that names it.
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nENV A=1\n").unwrap();
    let mut c = env.cmd(&["build", ctx.to_str().unwrap()]);
    c.env("SOURCE_DATE_EPOCH", "yesterday");
    let r = crate::common::run(c);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("SOURCE_DATE_EPOCH=\"yesterday\""), "{}", r.stderr);
}

/// `--platform`: the image is made for it (no RUN needed); a malformed one is refused.
#[test]
fn build_for_another_platform() {
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nARG TARGETARCH\nLABEL arch=$TARGETARCH\n").unwrap();
    let c = ctx.to_str().unwrap();
    env.ok(&["build", "-q", "--platform", "linux/arm64", "-t", "app:arm", c]);
    let v = env.inspect("app:arm");
    assert_eq!(v[0]["Architecture"], "arm64");
    assert_eq!(v[0]["Config"]["Labels"]["arch"], "arm64");
    let err = env.fails(&["build", "--platform", "arm64", c], 1);
    assert!(err.contains("--platform arm64"), "{err}");
}
