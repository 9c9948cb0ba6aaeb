//! The build cache shared through a registry (`--cache-to`/`--cache-from
//! type=registry`) and a directory (`type=local`): a build in an empty store takes
//! every step from the cache, makes the same image, and fetches only the layers the
//! result needs.

use std::sync::Arc;

use strata_build::{BuildOptions, CacheSpec, NamespaceRunner};
use strata_image::Store;
use strata_registry::{NoProgress, PushOptions};
use strata_spec::Reference;
use strata_testkit::{Registry, require_tool};

use crate::common::*;

/// A base image pushed to the registry as `REG/base:1`, and the Dockerfile to build on
/// it: a build stage with a layer the result does not need, and a final stage.
fn setup(reg: &Registry) -> (String, Option<Arc<NamespaceRunner>>) {
    let seed = Store::in_memory();
    let runner = if is_root() { NamespaceRunner::detect().ok().map(Arc::new) } else { None };
    let img = match &runner {
        Some(_) => busybox_base(&seed, "base:1"),
        None => None,
    };
    let img = img.unwrap_or_else(|| base(&seed, "base:1"));
    let base_ref = format!("{}/base:1", reg.host());
    strata_registry::push(
        seed.backend(),
        img.descriptor(),
        &Reference::parse(&base_ref).unwrap(),
        &PushOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let made = if runner.is_some() { "RUN echo compiled > /out.bin" } else { "COPY gen.txt /out.bin" };
    let df = format!(
        "FROM {base_ref} AS build\n{made}\nCOPY big.bin /big.bin\n\
         FROM {base_ref}\nENV MODE=prod\nWORKDIR /app\nCOPY --from=build /out.bin ./out.bin\nCOPY app.txt .\n\
         CMD [\"/app/out.bin\"]\n"
    );
    (df, runner)
}

fn files() -> [(&'static str, &'static str); 3] {
    [("gen.txt", "compiled\n"), ("big.bin", "only the build stage has this"), ("app.txt", "app")]
}

fn opts(runner: &Option<Arc<NamespaceRunner>>) -> BuildOptions {
    match runner {
        Some(r) => BuildOptions::default().runner(r.clone()),
        None => BuildOptions::default(),
    }
}

#[test]
fn registry_cache_makes_every_step_cached_in_an_empty_store() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start("", "");
    let (df, runner) = setup(&reg);
    let cache = CacheSpec::parse(&format!("type=registry,ref={}/app:buildcache,mode=max", reg.host())).unwrap();

    // Machine A builds and exports its cache.
    let a = Store::in_memory();
    let ctx = context(&df, &files());
    let built = build_logged(&a, ctx.path(), &opts(&runner).cache_to(cache.clone()).tag("app:1")).0.unwrap();
    assert_eq!(built.cached, 0);
    let big_layer = {
        let build_stage = a.image(&format!("{}/base:1", reg.host())).unwrap();
        // The build stage's last layer (COPY big.bin): find it among A's blobs as the
        // only layer not in the base nor in the result.
        let result: Vec<_> = built.image.layers().iter().map(|d| d.digest.clone()).collect();
        let base: Vec<_> = build_stage.layers().iter().map(|d| d.digest.clone()).collect();
        let all = a.backend().list().unwrap();
        let layers_of_a: Vec<_> = all
            .into_iter()
            .filter(|d| !result.contains(d) && !base.contains(d))
            .filter(|d| {
                let bytes = a.backend().read_blob(d, 1 << 20).unwrap();
                bytes.starts_with(&[0x1f, 0x8b])
            })
            .collect();
        assert_eq!(layers_of_a.len(), 2, "the build stage's two layers: {layers_of_a:?}");
        layers_of_a
    };

    // Machine B: an empty store, a fresh copy of the context, the cache imported.
    let b = Store::in_memory();
    let ctx_b = context(&df, &files());
    let (again, log) = build_logged(&b, ctx_b.path(), &opts(&runner).cache_from(cache.clone()).tag("app:1"));
    let again = again.unwrap_or_else(|e| panic!("{e}\n{log:#?}"));
    assert_eq!(again.executed, 0, "every step from the cache: {log:#?}");
    assert_eq!(again.cached, again.steps - 2, "all but the two FROMs");
    assert_eq!(again.image.id(), built.image.id());
    assert_eq!(again.image.descriptor().digest, built.image.descriptor().digest);
    assert_eq!(log.iter().filter(|l| l.contains("Using cache")).count(), again.cached);
    // The result is whole; the build stage's layers were never fetched.
    for l in again.image.layers() {
        assert_eq!(b.backend().stat(&l.digest).unwrap(), Some(l.size), "{}", l.digest);
    }
    for d in &big_layer {
        assert!(!b.backend().contains(d).unwrap(), "{d}: a layer the result does not need was fetched");
    }
    let report = b.fsck().unwrap();
    assert!(report.is_clean(), "{report:?}");
    // A change rebuilds from the changed step on; the rest still comes from the cache.
    write(ctx_b.path(), &[("app.txt", "changed")]);
    let changed = build_logged(&b, ctx_b.path(), &opts(&runner).cache_from(cache)).0.unwrap();
    assert_eq!(changed.executed, 2, "COPY app.txt and CMD");
}

#[test]
fn local_cache_directory_round_trips() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start("", "");
    let (df, runner) = setup(&reg);
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let a = Store::in_memory();
    let ctx = context(&df, &files());
    let to = CacheSpec::parse(&format!("type=local,dest={}", cache_dir.display())).unwrap();
    let built = build_logged(&a, ctx.path(), &opts(&runner).cache_to(to)).0.unwrap();
    assert!(cache_dir.join("index.json").is_file() && cache_dir.join("oci-layout").is_file());

    let b = Store::in_memory();
    let from = CacheSpec::parse(&format!("type=local,src={}", cache_dir.display())).unwrap();
    let again = build_logged(&b, context(&df, &files()).path(), &opts(&runner).cache_from(from)).0.unwrap();
    assert_eq!((again.executed, again.image.id()), (0, built.image.id()));

    // A cache that is not there yet is a warning, not an error (the first build).
    let missing = CacheSpec::parse(&format!("type=local,src={}", dir.path().join("none").display())).unwrap();
    let first = build_logged(&Store::in_memory(), context(&df, &files()).path(), &opts(&runner).cache_from(missing));
    let first = first.0.unwrap();
    assert!(first.warnings.iter().any(|w| w.contains("not found")), "{:?}", first.warnings);
}

#[test]
fn cache_specs_parse_like_buildx() {
    assert_eq!(
        CacheSpec::parse("type=registry,ref=127.0.0.1:5000/app:cache").unwrap(),
        CacheSpec::Registry(Reference::parse("127.0.0.1:5000/app:cache").unwrap())
    );
    assert_eq!(
        CacheSpec::parse("127.0.0.1:5000/app:cache").unwrap(),
        CacheSpec::Registry(Reference::parse("127.0.0.1:5000/app:cache").unwrap())
    );
    assert_eq!(CacheSpec::parse("type=local,dest=/tmp/c").unwrap(), CacheSpec::Local("/tmp/c".into()));
    for bad in ["type=gha", "type=registry", "type=local", "type=registry,ref=x,mode=all", "type=local,src=/a,foo=1"] {
        assert!(CacheSpec::parse(bad).is_err(), "{bad}");
    }
}
