//! `--platform` (BuildOptions::platform) and `FROM --platform`: the matching image of a
//! multi-platform base, the platform ARGs of that platform, a clear error for a base
//! without it or of another platform, and `RUN` refused in a stage whose programs
//! cannot run on this machine.

use std::io::Read;
use std::path::Path;

use strata_build::{BuildOptions, Error, RunSpec, Runner};
use strata_image::{CommitOptions, Image, LayerInput, Store};
use strata_spec::{Descriptor, Index, MediaType, Platform};

use crate::common::*;

/// `multi:1`: an index of a linux/amd64 and a linux/arm64 image, each with `/arch`
/// naming its own architecture; `single:1`: a linux/amd64 image alone.
fn bases(store: &Store) {
    let mut index = Index::new(Some(MediaType::OciIndex));
    for arch in ["amd64", "arm64"] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("arch", &format!("{arch}\n")), ("etc/passwd", PASSWD)]);
        let opts = CommitOptions {
            platform: Some(Platform::parse(&format!("linux/{arch}")).unwrap()),
            ..CommitOptions::default()
        };
        if arch == "amd64" {
            store.import(LayerInput::Dir(dir.path()), &opts.clone().tag("single:1")).unwrap();
        }
        let img = store.import(LayerInput::Dir(dir.path()), &opts).unwrap();
        let mut d = img.descriptor().clone();
        d.annotations = None;
        d.platform = Some(img.config().platform());
        index.manifests.push(d);
    }
    let info = store.backend().put_blob(&index.to_canonical_json()).unwrap();
    store.backend().set_ref("multi:1", &Descriptor::new(MediaType::OciIndex, info.digest, info.size)).unwrap();
}

fn arch_file(img: &Image) -> String {
    let mut s = String::new();
    img.merged().unwrap().read_file(Path::new("/arch")).unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Says yes to every `RUN`.
struct Succeeds;

impl Runner for Succeeds {
    fn run(&self, _: &RunSpec<'_>, _: &mut dyn std::io::Write) -> strata_build::Result<i32> {
        Ok(0)
    }
}

#[test]
fn platform_picks_the_base_image_and_sets_the_platform_args() {
    let store = Store::in_memory();
    bases(&store);
    let arm64 = Platform::parse("linux/arm64").unwrap();
    let ctx = context("FROM multi:1\nARG TARGETARCH\nLABEL arch=$TARGETARCH\n", &[]);
    // --platform on the build.
    let built = build_logged(&store, ctx.path(), &BuildOptions::default().platform(arm64.clone())).0.unwrap();
    assert_eq!(arch_file(&built.image), "arm64\n");
    assert_eq!(built.image.config().architecture, "arm64");
    let labels = built.image.config().config.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels["arch"], "arm64");
    // --platform on FROM, whatever the build's.
    let ctx = context("FROM --platform=linux/arm64 multi:1\n", &[]);
    let built = build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap();
    assert_eq!(arch_file(&built.image), "arm64\n");
    let ctx = context("FROM --platform=linux/amd64 multi:1\n", &[]);
    let built = build_logged(&store, ctx.path(), &BuildOptions::default().platform(arm64.clone())).0.unwrap();
    assert_eq!(arch_file(&built.image), "amd64\n");
    // Neither: this machine's.
    let host = Platform::host();
    if matches!(host.architecture.as_str(), "amd64" | "arm64") {
        let ctx = context("FROM multi:1\n", &[]);
        let built = build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap();
        assert_eq!(arch_file(&built.image), format!("{}\n", host.architecture));
    }
    // A platform the index lacks: the error names it and what there is.
    let ctx = context("FROM multi:1\n", &[]);
    let s390x = BuildOptions::default().platform(Platform::parse("linux/s390x").unwrap());
    let e = build_logged(&store, ctx.path(), &s390x).0.unwrap_err().to_string();
    assert!(e.contains("linux/s390x") && e.contains("linux/arm64") && e.contains("linux/amd64"), "{e}");
    // A single-platform base of another platform, as docker: refused.
    let ctx = context("FROM --platform=linux/arm64 single:1\n", &[]);
    let e = build_logged(&store, ctx.path(), &BuildOptions::default()).0.unwrap_err();
    assert!(matches!(e.root_cause(), Error::PlatformMismatch { .. }), "{e}");
    assert!(e.to_string().contains("base image \"single:1\" is linux/amd64, not the requested linux/arm64"), "{e}");
}

#[test]
fn run_needs_a_platform_this_machine_runs() {
    let store = Store::in_memory();
    let opts = BuildOptions::default().runner(std::sync::Arc::new(Succeeds));
    let host = Platform::host();
    let foreign = if host.architecture == "s390x" { "linux/arm64" } else { "linux/s390x" };
    let emulated = Path::new("/proc/sys/fs/binfmt_misc").join(if foreign == "linux/s390x" {
        "qemu-s390x"
    } else {
        "qemu-aarch64"
    });
    let ctx = context(&format!("FROM --platform={foreign} scratch\nRUN true\n"), &[]);
    let result = build_logged(&store, ctx.path(), &opts).0;
    if std::fs::read_to_string(&emulated).is_ok_and(|s| s.starts_with("enabled")) {
        result.unwrap();
    } else {
        let e = result.unwrap_err();
        assert!(matches!(e.root_cause(), Error::CannotRun { .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains(&format!("RUN in a {foreign} stage cannot run here")) && e.contains("binfmt_misc"), "{e}");
    }
    // Steps without RUN build for any platform; the host's own runs.
    let ctx = context(&format!("FROM --platform={foreign} scratch\nENV A=1\n"), &[]);
    let built = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!(built.image.config().platform().to_string(), foreign);
    let ctx = context(&format!("FROM --platform={host} scratch\nRUN true\n"), &[]);
    build_logged(&store, ctx.path(), &opts).0.unwrap();
    if host.architecture == "amd64" {
        let ctx = context("FROM --platform=linux/386 scratch\nRUN true\n", &[]);
        build_logged(&store, ctx.path(), &opts).0.unwrap();
    }
}
