//! Layer writing benchmarks (criterion).
//!
//! - `compress/*`: a 96 MiB layer of rootfs-like data (the host's own `/usr` files, read
//!   into memory first) written through `LayerWriter` at gzip level 6, with one thread
//!   and with all cores; zstd level 3 for comparison.
//! - `snapshot/*`: capture, serialise and load the snapshot of a 7,000-entry tree.
//! - `since/unchanged`: `diff::since` on that tree with nothing changed (the floor of a
//!   commit: one `lstat` per entry).
//!
//! Peers (pigz, umoci) on the real corpus are timed by `benches/commit.sh`.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strata::layer::diff::{self, DiffOptions};
use strata::layer::{EntryKind, EntryMeta, LayerWriter, Snapshot, Timestamp, WriteOptions};
use strata::spec::Compression;

const LAYER_BYTES: usize = 96 << 20;

/// Files of rootfs-like content: the host's /usr, cycled until there are enough bytes.
fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut total = 0;
    let mut stack = vec![PathBuf::from("/usr/lib"), PathBuf::from("/usr/share"), PathBuf::from("/usr/bin")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let Ok(md) = fs::symlink_metadata(&p) else { continue };
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file()
                && md.len() < (8 << 20)
                && let Ok(data) = fs::read(&p)
            {
                total += data.len();
                files.push((p, data));
                if total >= LAYER_BYTES {
                    return files;
                }
            }
        }
    }
    // A small host: repeat what there is.
    let base = files.clone();
    let mut i = 0;
    while total < LAYER_BYTES && !base.is_empty() {
        let (p, d) = &base[i % base.len()];
        total += d.len();
        files.push((PathBuf::from(format!("{}.{i}", p.display())), d.clone()));
        i += 1;
    }
    files
}

fn write_layer(files: &[(PathBuf, Vec<u8>)], opts: &WriteOptions) -> u64 {
    let mut w = LayerWriter::new(std::io::sink(), opts).unwrap();
    // Entries must come in tar order; corpus paths are unique files under /usr.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| strata::layer::tar_order(&files[a].0, &files[b].0));
    for (n, i) in order.into_iter().enumerate() {
        let (p, data) = &files[i];
        let rel = format!("f{n:06}-{}", p.file_name().unwrap().to_string_lossy());
        let meta = EntryMeta::new(rel, EntryKind::File)
            .with_size(data.len() as u64)
            .with_mtime(Timestamp { sec: 1_700_000_000, nsec: 0 });
        w.append_file(&meta, &mut Cursor::new(data)).unwrap();
    }
    w.finish().unwrap().0.size
}

fn compress(c: &mut Criterion) {
    let files = corpus();
    let bytes: usize = files.iter().map(|f| f.1.len()).sum();
    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (name, opts) in [
        ("gzip6-1thread", WriteOptions::default().level(6).threads(1)),
        ("gzip6-all", WriteOptions::default().level(6).threads(0)),
        ("zstd3-all", WriteOptions::default().compression(Compression::Zstd).threads(0)),
    ] {
        g.bench_with_input(BenchmarkId::from_parameter(name), &opts, |b, opts| b.iter(|| write_layer(&files, opts)));
    }
    g.finish();
}

/// A tree of about 7,000 entries (the size of a Debian base rootfs) on tmpfs when there
/// is one.
fn tree() -> tempfile::TempDir {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let tmp = tempfile::Builder::new().prefix("strata-bench-").tempdir_in(base).unwrap();
    for d in 0..70 {
        let dir = tmp.path().join(format!("usr/share/pkg{d:03}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            fs::write(dir.join(format!("file{f:03}")), format!("{d} {f}\n").repeat(20)).unwrap();
        }
    }
    tmp
}

fn snapshot(c: &mut Criterion) {
    let t = tree();
    let snap = Snapshot::capture(t.path()).unwrap();
    let bytes = snap.to_bytes();
    let mut g = c.benchmark_group("snapshot");
    g.bench_function("capture-7k", |b| b.iter(|| Snapshot::capture(t.path()).unwrap()));
    g.bench_function("to_bytes-7k", |b| b.iter(|| snap.to_bytes()));
    g.bench_function("load-7k", |b| b.iter(|| Snapshot::from_bytes(&bytes).unwrap()));
    g.finish();
    let mut g = c.benchmark_group("since");
    g.bench_function("unchanged-7k", |b| {
        b.iter(|| {
            let changes = diff::since(&snap, t.path(), &DiffOptions::default()).unwrap();
            assert!(changes.is_empty());
        })
    });
    g.finish();
}

criterion_group!(benches, compress, snapshot);
criterion_main!(benches);
