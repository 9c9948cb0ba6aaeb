//! Blob store throughput: write (hash + temp file + fsync + rename) and verified read of a
//! 256 MiB blob, against `openssl dgst -sha256` on the same bytes (the hashing floor) and
//! sha2 hashing the bytes in memory.
//!
//! Run: `cargo bench --bench store -- --warm-up-time 1 --measurement-time 5`.
//! Files live on /dev/shm when it exists, so the disk does not dominate.

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata::spec::Digest;
use strata::store::{BlobStore, Expected, OciDir};

const SIZE: usize = 256 << 20;
/// The chunk size callers write and read with: 1 MiB, as a decompressor or a copy loop
/// would; the store's own buffers are 256 KiB.
const CHUNK: usize = 1 << 20;

/// Deterministic incompressible bytes (xorshift64*).
fn data() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(SIZE);
    while v.len() < SIZE {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v
}

fn scratch() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm).unwrap() } else { tempfile::tempdir().unwrap() }
}

fn bench(c: &mut Criterion) {
    let bytes = data();
    let dir = scratch();
    let raw = dir.path().join("blob.bin");
    std::fs::write(&raw, &bytes).unwrap();
    let store = OciDir::create(dir.path().join("layout")).unwrap();
    let digest = Digest::sha256_of(&bytes);

    let mut g = c.benchmark_group("blob_256MiB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);

    g.bench_function("sha2_in_memory", |b| b.iter(|| black_box(Digest::sha256_of(black_box(&bytes)))));

    g.bench_function("openssl_dgst_sha256", |b| {
        b.iter(|| {
            let out = Command::new("openssl").args(["dgst", "-sha256", "-r"]).arg(&raw).output().unwrap();
            assert!(out.status.success());
            assert!(String::from_utf8_lossy(&out.stdout).starts_with(digest.hex()));
        })
    });

    g.bench_function("store_write", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                store.delete(&digest).unwrap();
                let start = Instant::now();
                let mut w = store.begin_write().unwrap();
                for chunk in bytes.chunks(CHUNK) {
                    w.write_all(chunk).unwrap();
                }
                let info = w.commit(Expected::none()).unwrap();
                total += start.elapsed();
                assert_eq!(info.digest, digest);
            }
            total
        })
    });

    g.bench_function("store_read_verify", |b| {
        let mut buf = vec![0u8; CHUNK];
        b.iter(|| {
            let mut r = store.open(&digest).unwrap();
            let mut n = 0;
            loop {
                let k = r.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                n += k;
            }
            assert!(r.is_verified() && n == SIZE);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
