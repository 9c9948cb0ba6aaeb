//! Reproducible images: with `SOURCE_DATE_EPOCH`, the same Dockerfile and context give
//! the same manifest digest in two fresh stores, built at different times from contexts
//! written at different times; without it they do not.

use std::sync::Arc;
use std::time::Duration;

use strata_build::{BuildOptions, NamespaceRunner};
use strata_image::Store;

use crate::common::*;

const EPOCH: u64 = 1_700_000_000;

/// A context whose Dockerfile builds everything from scratch (a busybox rootfs copied
/// in), written now.
fn fresh_context(with_run: bool) -> tempfile::TempDir {
    let mut df = String::from("FROM scratch\nCOPY rootfs/ /\nENV A=1\nWORKDIR /app\nCOPY app.txt .\n");
    if with_run {
        df.push_str("RUN echo built > /app/out && mkdir -p /var/lib/x && touch /var/lib/x/f /app/app.txt\n");
    }
    df.push_str("COPY <<EOF /etc/motd\nhello\nEOF\nCMD [\"/bin/sh\"]\n");
    let ctx = context(&df, &[("app.txt", "app"), ("rootfs/etc/passwd", PASSWD), ("rootfs/etc/group", GROUP)]);
    let bin = ctx.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    if let Some(bb) = which("busybox") {
        std::fs::copy(bb, bin.join("busybox")).unwrap();
        for applet in ["sh", "echo", "mkdir", "touch"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    ctx
}

fn build_once(opts: &BuildOptions, with_run: bool) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("store")).unwrap();
    let ctx = fresh_context(with_run);
    let (built, log) = build_logged(&store, ctx.path(), opts);
    let built = built.unwrap_or_else(|e| panic!("{e}\n{log:#?}"));
    (built.image.descriptor().digest.to_string(), built.image.config().created.clone().unwrap_or_default())
}

#[test]
fn source_date_epoch_gives_the_same_manifest_digest_in_fresh_stores() {
    let with_run = is_root() && which("busybox").is_some();
    let mut opts = BuildOptions::default();
    if with_run {
        opts = opts.runner(Arc::new(NamespaceRunner::detect().unwrap()));
    }
    let reproducible = opts.clone().source_date_epoch(EPOCH);
    let (a, created) = build_once(&reproducible, with_run);
    // Another second on the clock, new context files, a new store.
    std::thread::sleep(Duration::from_millis(1100));
    let (b, _) = build_once(&reproducible, with_run);
    assert_eq!(a, b, "same inputs, same SOURCE_DATE_EPOCH: same manifest");
    assert_eq!(created, "2023-11-14T22:13:20Z");
    // Without the epoch, time shows.
    let (c, _) = build_once(&opts, with_run);
    std::thread::sleep(Duration::from_millis(1100));
    let (d, _) = build_once(&opts, with_run);
    assert_ne!(c, d, "without an epoch the builds differ (the test can tell)");
    assert_ne!(a, c);
}
