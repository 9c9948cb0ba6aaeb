//! Listing 1,000 images (`strata images`): sizes come from the layers' records, so the
//! listing costs what reading each image's manifest and config costs, the floor any
//! listing pays, and never reads a layer. Compared in the same run with that floor, and
//! with the same listing of a layout with no records (one another tool wrote), where
//! every layer is measured again (here 3 layers of 1 MiB of content, gzip, shared by
//! all the images).
//!
//! Run: `cargo bench --bench images -- --warm-up-time 1 --measurement-time 5`.
//! The store lives on /dev/shm when it exists, so fsyncs do not dominate the set-up.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use strata::image::Store;
use strata::layer::{EntryKind, EntryMeta, LayerInfo, LayerWriter, Timestamp, WriteOptions};
use strata::spec::{Descriptor, History, ImageConfig, Manifest, MediaType, Platform};
use strata::store::MAX_DOCUMENT_SIZE;

const IMAGES: usize = 1000;
const LAYERS: usize = 3;
const LAYER_CONTENT: usize = 1 << 20;

fn scratch() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm).unwrap() } else { tempfile::tempdir().unwrap() }
}

/// One gzip layer holding a file of `LAYER_CONTENT` bytes that depend on `seed`.
fn layer(store: &Store, seed: usize) -> LayerInfo {
    let data: Vec<u8> = (0..LAYER_CONTENT).map(|i| (i.wrapping_mul(31).wrapping_add(seed * 7) % 251) as u8).collect();
    strata::commit::store_layer(store.backend(), |w| {
        let mut lw = LayerWriter::new(w, &WriteOptions::default())?;
        let meta = EntryMeta {
            path: format!("data{seed}").into(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: data.len() as u64,
            mtime: Timestamp::default(),
            xattrs: Default::default(),
        };
        lw.append_file(&meta, &mut &data[..])?;
        Ok::<_, strata::commit::Error>(lw.finish()?.0)
    })
    .unwrap()
}

/// A store of `IMAGES` tagged images sharing `LAYERS` layers, each with its own config.
fn build(root: &std::path::Path) -> Store {
    let store = Store::create(root).unwrap();
    let backend = store.backend();
    let layers: Vec<LayerInfo> = (0..LAYERS).map(|i| layer(&store, i)).collect();
    let mut entries = Vec::new();
    for n in 0..IMAGES {
        let mut config = ImageConfig::new(&Platform::host());
        config.created = Some(format!("2024-01-01T00:{:02}:{:02}Z", n / 60 % 60, n % 60));
        for l in &layers {
            config.push_layer(
                l.diff_id.clone(),
                History { created_by: Some(format!("step of {n}")), ..Default::default() },
            );
        }
        let c = backend.put_blob(&config.to_canonical_json()).unwrap();
        let manifest = Manifest::new(
            MediaType::OciManifest,
            Descriptor::new(MediaType::OciConfig, c.digest, c.size),
            layers.iter().map(|l| l.descriptor(strata::spec::Family::Oci)).collect(),
        );
        let m = backend.put_blob(&manifest.to_canonical_json()).unwrap();
        let mut d = Descriptor::new(MediaType::OciManifest, m.digest, m.size);
        d.set_annotation(strata::spec::ANNOTATION_REF_NAME, format!("image{n}:1"));
        entries.push(d);
    }
    backend
        .update_index(&mut |i| {
            i.manifests.extend(entries.iter().cloned());
            Ok(())
        })
        .unwrap();
    store
}

fn bench(c: &mut Criterion) {
    let dir = scratch();
    let root = dir.path().join("layout");
    let store = build(&root);
    let expected = (LAYERS * LAYER_CONTENT) as u64;
    let list = store.images().unwrap();
    assert_eq!(list.len(), IMAGES);
    assert!(list.iter().all(|s| s.size == expected && s.problem.is_none()));

    let mut g = c.benchmark_group("images_1000");
    g.sample_size(10);
    g.bench_function("list_with_records", |b| b.iter(|| black_box(store.images().unwrap())));
    g.bench_function("read_manifests_and_configs", |b| {
        b.iter(|| {
            let backend = store.backend();
            for d in backend.index().unwrap().manifests {
                let m = Manifest::from_slice(&backend.read_descriptor(&d, MAX_DOCUMENT_SIZE).unwrap()).unwrap();
                black_box(backend.read_descriptor(&m.config, MAX_DOCUMENT_SIZE).unwrap());
            }
        })
    });
    g.finish();
    // The same layout as another tool leaves it: no records, every layer measured at
    // every listing. Seconds per run, so timed once.
    std::fs::remove_dir_all(root.join(".strata")).unwrap();
    let foreign = Store::open(&root).unwrap();
    let start = std::time::Instant::now();
    let list = black_box(foreign.images().unwrap());
    assert!(list.iter().all(|s| s.size == expected));
    println!("images_1000/list_without_records: {:.2?} (one run)", start.elapsed());
}

criterion_group!(benches, bench);
criterion_main!(benches);
