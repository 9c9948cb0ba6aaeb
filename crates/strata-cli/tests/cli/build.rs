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
