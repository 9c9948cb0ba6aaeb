//! The stage graph: a multi-stage Dockerfile with two independent stages, built one
//! stage at a time (`jobs(1)`) and with independent stages at once (`jobs(2)`); wall
//! time of each. Each stage copies 1 MiB of its own and runs one `RUN`, measured two
//! ways: a runner that waits 300 ms (a step bound by latency: a download, a remote
//! call), and, as root with busybox installed, a CPU-bound busybox shell loop through
//! the namespace runner (which gains only from cores nothing else is using). Every
//! iteration builds in a fresh store, without cache.
//!
//! Run: `cargo bench --bench build_stages -- --warm-up-time 1 --measurement-time 10`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use strata::build::{BuildOptions, NamespaceRunner, RunSpec, Runner};
use strata::image::{CommitOptions, LayerInput, Store};

/// Stands for a compiler when `RUN` cannot run for real here.
struct Sleeper;

impl Runner for Sleeper {
    fn run(&self, spec: &RunSpec<'_>, _: &mut dyn std::io::Write) -> strata::build::Result<i32> {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(spec.rootfs.join("out"), spec.args.join(" ")).unwrap();
        Ok(0)
    }
}

/// Deterministic incompressible bytes (xorshift64*), different per seed.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v
}

fn busybox() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("busybox")).find(|p| p.is_file())
}

fn base_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    if let Some(bb) = busybox() {
        std::fs::copy(bb, dir.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    }
}

const DOCKERFILE: &str = "FROM base:1 AS left
COPY left.bin /left.bin
RUN i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i > /out
FROM base:1 AS right
COPY right.bin /right.bin
RUN i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i > /out
FROM base:1
COPY --from=left /out /left.out
COPY --from=right /out /right.out
";

fn bench(c: &mut Criterion) {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    base_rootfs(&rootfs);
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(ctx.join("left.bin"), data(1, 1 << 20)).unwrap();
    std::fs::write(ctx.join("right.bin"), data(2, 1 << 20)).unwrap();
    let mut runners: Vec<(&str, Arc<dyn Runner>)> = vec![("latency-bound RUN", Arc::new(Sleeper))];
    if let (Ok(r), Some(_)) = (NamespaceRunner::detect(), busybox()) {
        runners.push(("CPU-bound RUN", Arc::new(r)));
    }
    let build = |runner: &Arc<dyn Runner>, jobs: usize| {
        let dir = tempfile::tempdir_in(work.path()).unwrap();
        let store = Store::open_or_create(dir.path().join("store")).unwrap();
        store.import(LayerInput::Dir(&rootfs), &CommitOptions::default().tag("base:1")).unwrap();
        let opts = BuildOptions::default().runner(runner.clone()).no_cache(true).jobs(jobs);
        strata::build::build(&store, &ctx, &opts, &mut |_| {}).unwrap();
    };
    for (what, runner) in &runners {
        let mut g = c.benchmark_group(format!("two independent stages, {what}"));
        g.sample_size(10);
        g.bench_function("serial (jobs 1)", |b| b.iter(|| build(runner, 1)));
        g.bench_function("parallel (jobs 2)", |b| b.iter(|| build(runner, 2)));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
