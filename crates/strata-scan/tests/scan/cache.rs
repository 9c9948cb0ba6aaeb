//! The per-layer scan cache: a warm scan reads no layer blob and says exactly what a
//! cold one says; a damaged record, or one that is not the layer's, is never trusted;
//! gc removes the records of layers gone from the store.

use std::path::{Path, PathBuf};

use strata_scan::{Inventory, SbomFormat, SbomOptions, ScanIndexer, ScanOptions, render};

use crate::fixture::{image, store, write};
use crate::sbom::mixed_image;

pub(crate) fn cold() -> ScanOptions {
    ScanOptions::default().cache(false)
}

/// The per-layer cache alone: the inventory made from the layers' records, the image's
/// own record neither read nor written.
pub(crate) fn layers_only() -> ScanOptions {
    ScanOptions::default().image_cache(false)
}

fn blob_path(store: &strata_image::Store, d: &strata_spec::Digest) -> PathBuf {
    store.path().unwrap().join("blobs").join(d.algorithm().name()).join(d.hex())
}

pub(crate) fn record_path(store: &strata_image::Store, d: &strata_spec::Digest) -> PathBuf {
    store.path().unwrap().join(".strata/records/scan").join(d.algorithm().name()).join(d.hex())
}

/// Move the image's layer blobs away (returned, to put back): a scan that reads a
/// layer fails.
pub(crate) fn hide_layers(img: &strata_image::Image, dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut moved = Vec::new();
    for (i, d) in img.layers().iter().enumerate() {
        let from = blob_path(img.store(), &d.digest);
        let to = dir.join(format!("hidden-{i}"));
        std::fs::rename(&from, &to).unwrap();
        moved.push((from, to));
    }
    moved
}

pub(crate) fn unhide(moved: Vec<(PathBuf, PathBuf)>) {
    for (from, to) in moved {
        std::fs::rename(to, from).unwrap();
    }
}

pub(crate) fn sboms(inv: &Inventory) -> Vec<Vec<u8>> {
    let opts = SbomOptions::default().created(1_700_000_000);
    [SbomFormat::SpdxJson, SbomFormat::CycloneDxJson, SbomFormat::Table]
        .iter()
        .map(|f| render(inv, *f, &opts))
        .collect()
}

#[test]
fn warm_scan_reads_no_layer_blob_and_says_the_same() {
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    let want: Vec<Inventory> =
        [true, false].iter().map(|&h| Inventory::of_image(&img, &cold().layer_history(h)).unwrap()).collect();
    for l in img.layers() {
        assert!(!record_path(&store, &l.digest).exists(), "--no-cache wrote a record");
    }
    let first = Inventory::of_image(&img, &layers_only()).unwrap();
    assert_eq!(first, want[0]);
    for l in img.layers() {
        assert!(record_path(&store, &l.digest).is_file(), "no record for {}", l.digest);
    }
    assert!(!record_path(&store, img.digest()).exists(), "image_cache(false) wrote the image's record");
    let moved = hide_layers(&img, dir.path());
    // Without the cache the layers are needed: they are really gone.
    assert!(Inventory::of_image(&img, &cold()).is_err());
    for (history, want) in [true, false].into_iter().zip(&want) {
        let warm = Inventory::of_image(&img, &layers_only().layer_history(history)).unwrap();
        assert_eq!(&warm, want, "layer_history {history}");
        assert_eq!(sboms(&warm), sboms(want), "layer_history {history}");
    }
    unhide(moved);
}

/// A way of damaging a record's bytes.
pub(crate) type Damage = fn(&mut Vec<u8>);

/// The damages every scan record (a layer's, an image's) must survive: each is ignored
/// and rebuilt.
pub(crate) fn damages() -> [(&'static str, Damage); 4] {
    [
        ("truncated", |b| b.truncate(b.len() / 2)),
        ("empty", |b| b.clear()),
        ("a byte flipped", |b| {
            let i = b.len() / 3;
            b[i] ^= 0x40;
        }),
        ("garbage", |b| *b = b"not a scan record".to_vec()),
    ]
}

#[test]
fn a_damaged_record_is_ignored_and_rebuilt() {
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    let want = Inventory::of_image(&img, &cold()).unwrap();
    Inventory::of_image(&img, &layers_only()).unwrap();
    let records: Vec<PathBuf> = img.layers().iter().map(|l| record_path(&store, &l.digest)).collect();
    let good: Vec<Vec<u8>> = records.iter().map(|r| std::fs::read(r).unwrap()).collect();
    for (what, damage) in damages() {
        for (r, g) in records.iter().zip(&good) {
            let mut b = g.clone();
            damage(&mut b);
            std::fs::write(r, b).unwrap();
        }
        assert_eq!(Inventory::of_image(&img, &layers_only()).unwrap(), want, "{what}");
        // Rebuilt: the next scan needs no layer.
        for (r, g) in records.iter().zip(&good) {
            assert_eq!(&std::fs::read(r).unwrap(), g, "{what}: record not rebuilt");
        }
        let moved = hide_layers(&img, dir.path());
        assert_eq!(Inventory::of_image(&img, &layers_only()).unwrap(), want, "{what}");
        unhide(moved);
    }
}

#[test]
fn a_record_whose_kept_file_changed_is_not_trusted() {
    // A change inside a database a record keeps decodes as well as the original: only
    // the record's checksum (checked beside the reading, on another thread) tells.
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    let want = Inventory::of_image(&img, &cold()).unwrap();
    Inventory::of_image(&img, &layers_only()).unwrap();
    let changed = img
        .layers()
        .iter()
        .map(|l| record_path(&store, &l.digest))
        .find_map(|r| {
            let mut b = std::fs::read(&r).unwrap();
            let at = b.windows(17).position(|w| w == b"Version: 3.0.11-1")?;
            b[at + 9] = b'4';
            std::fs::write(&r, &b).unwrap();
            Some(r)
        })
        .expect("a record keeps the status file");
    let got = Inventory::of_image(&img, &layers_only()).unwrap();
    assert_eq!(got, want);
    assert!(got.packages.iter().any(|p| p.version == "3.0.11-1~deb12u2"));
    // And the record is written again, sound.
    assert!(!std::fs::read(&changed).unwrap().windows(17).any(|w| w == b"Version: 4.0.11-1"));
}

#[test]
fn a_record_of_another_layer_is_not_trusted() {
    let (dir, store) = store();
    let a = dir.path().join("a");
    write(
        &a,
        "var/lib/dpkg/status",
        "Package: alpha\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n",
    );
    let b = dir.path().join("b");
    write(
        &b,
        "var/lib/dpkg/status",
        "Package: beta\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.0-1\n\n",
    );
    let img_a = image(&store, "a:1", &[&a]);
    let img_b = image(&store, "b:1", &[&b]);
    Inventory::of_image(&img_a, &layers_only()).unwrap();
    // A's record where B's would be: its diff_id is not B's.
    let (ra, rb) = (record_path(&store, &img_a.layers()[0].digest), record_path(&store, &img_b.layers()[0].digest));
    std::fs::copy(&ra, &rb).unwrap();
    let inv = Inventory::of_image(&img_b, &layers_only()).unwrap();
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["beta"]);
    assert_eq!(inv, Inventory::of_image(&img_b, &cold()).unwrap());
    assert_ne!(std::fs::read(&rb).unwrap(), std::fs::read(&ra).unwrap(), "B's record was not rewritten");
}

#[test]
fn gc_removes_the_records_of_layers_gone() {
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    // The layers' records and the image's.
    let records: Vec<PathBuf> =
        img.layers().iter().map(|l| &l.digest).chain([img.digest()]).map(|d| record_path(&store, d)).collect();
    store.gc(false).unwrap();
    assert!(records.iter().all(|r| r.is_file()), "gc removed the records of a live image");
    store.untag("mixed:1").unwrap();
    let report = store.gc(false).unwrap();
    assert!(report.records_removed >= records.len(), "{report:?}");
    for r in &records {
        assert!(!r.exists(), "{} outlived its blob", r.display());
    }
}

/// A store given the [`ScanIndexer`] writes each layer's record when it takes the layer
/// in (import and append here; load from both archive formats), and a scan from those
/// records, with every layer blob moved away, says what a cold scan says.
#[test]
fn the_scan_indexer_fills_the_cache_on_import_append_and_load() {
    let (dir, store) = store();
    let store = store.with_indexer(std::sync::Arc::new(ScanIndexer));
    let img = mixed_image(dir.path(), &store);
    let assert_warm = |img: &strata_image::Image, store: &strata_image::Store, dir: &Path| {
        for l in img.layers() {
            assert!(record_path(store, &l.digest).is_file(), "no record for {}", l.digest);
        }
        let want = Inventory::of_image(img, &cold()).unwrap();
        let moved = hide_layers(img, dir);
        assert!(Inventory::of_image(img, &cold()).is_err());
        assert_eq!(Inventory::of_image(img, &layers_only()).unwrap(), want);
        unhide(moved);
    };
    assert_warm(&img, &store, dir.path());
    for format in [strata_image::ArchiveFormat::DockerArchive, strata_image::ArchiveFormat::OciArchive] {
        let tar = store.save(&["mixed:1"], format, Vec::new()).unwrap();
        let (other_dir, other) = crate::fixture::store();
        let other = other.with_indexer(std::sync::Arc::new(ScanIndexer));
        other.load(&tar[..]).unwrap();
        assert_warm(&other.image("mixed:1").unwrap(), &other, other_dir.path());
        // Without the indexer, load leaves the records to the first scan.
        let (_plain_dir, plain) = crate::fixture::store();
        plain.load(&tar[..]).unwrap();
        for l in plain.image("mixed:1").unwrap().layers() {
            assert!(!record_path(&plain, &l.digest).exists(), "a store without the indexer wrote a record");
        }
    }
}

/// A Debian-like image of three layers made from tar entries: `/lib` a symlink to
/// `usr/lib` (the `.list` files name `/lib/...`), a hard link, then a layer that whites
/// out a package's files and makes a directory opaque, and one that upgrades a package
/// (its `.list` and files rewritten) and adds a Python distribution. With `through`, the
/// top layer also writes a file through the `/lib` symlink, which the fold alone handles.
fn layered_image(store: &strata_image::Store, tag: &str, through: bool) -> strata_image::Image {
    use strata_image::{CommitOptions, LayerInput};
    use strata_layer::LayerBuilder;
    let status = |pkgs: &[(&str, &str)]| {
        pkgs.iter()
            .map(|(n, v)| format!("Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"))
            .collect::<String>()
    };
    let mut a = LayerBuilder::new();
    a.file("usr/lib/os-release", b"ID=debian\nVERSION_ID=\"12\"\n".to_vec());
    a.symlink("etc/os-release", "../usr/lib/os-release");
    a.symlink("lib", "usr/lib");
    a.file("var/lib/dpkg/status", status(&[("libc6", "2.36-9"), ("tool", "1.0-1"), ("gone", "0.1-1")]));
    a.file("var/lib/dpkg/info/libc6:amd64.list", "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n");
    a.file("usr/lib/x86_64-linux-gnu/libc.so.6", b"libc".to_vec());
    a.file("var/lib/dpkg/info/tool.list", "/usr/bin/tool\n/usr/bin/tool2\n/opt/tool/data\n");
    a.file("usr/bin/tool", b"tool".to_vec());
    a.hardlink("usr/bin/tool2", "usr/bin/tool");
    a.file("opt/tool/data", b"data".to_vec());
    a.file("opt/tool/cache", b"cache".to_vec());
    a.file("var/lib/dpkg/info/gone.list", "/usr/share/gone/file\n");
    a.file("usr/share/gone/file", b"g".to_vec());
    let mut b = LayerBuilder::new();
    b.whiteout("usr/share/gone");
    b.whiteout("opt/tool/.wh..opq");
    b.file("opt/tool/data", b"data, new".to_vec());
    b.whiteout("usr/bin/tool2");
    let mut c = LayerBuilder::new();
    c.file("var/lib/dpkg/status", status(&[("libc6", "2.36-9+deb12u1"), ("tool", "1.0-1"), ("gone", "0.1-1")]));
    c.file("usr/lib/x86_64-linux-gnu/libc.so.6", b"libc, patched".to_vec());
    c.file(
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        b"Name: six\nVersion: 1.16.0\nLicense: MIT\n\n".to_vec(),
    );
    c.file("usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD", b"six.py,,\n".to_vec());
    c.file("usr/lib/python3/dist-packages/six.py", b"# six".to_vec());
    if through {
        c.file("lib/x86_64-linux-gnu/libextra.so", b"extra".to_vec());
    }
    let opts = CommitOptions::default().tag(tag);
    let mut img = store.import(LayerInput::Files(&a), &opts).unwrap();
    for l in [&b, &c] {
        img = img.append(LayerInput::Files(l), &opts).unwrap();
    }
    img
}

#[test]
fn the_inventory_from_the_layers_records_is_the_cold_one() {
    let (dir, store) = store();
    for (tag, through) in [("plain", false), ("through-a-symlink", true)] {
        let img = layered_image(&store, tag, through);
        let want: Vec<Inventory> =
            [true, false].iter().map(|&h| Inventory::of_image(&img, &cold().layer_history(h)).unwrap()).collect();
        // The fixture says what it should: `tool` was changed by the second layer (a
        // file rewritten under the opaque directory, its hard link whited out), libc6
        // owns its files through the `/lib` symlink, and the Python package is found.
        let pkg = |n: &str| want[0].packages.iter().find(|p| p.name == n).unwrap();
        assert_eq!((pkg("tool").layer, pkg("tool").changed_in.clone()), (Some(0), vec![1]), "{tag}");
        assert!(pkg("libc6").files.contains("lib/x86_64-linux-gnu/libc.so.6"), "{tag}");
        assert_eq!(pkg("libc6").version, "2.36-9+deb12u1", "{tag}");
        assert!(want[0].packages.iter().any(|p| p.name == "six"), "{tag}");
        // The first scan writes the records (and reads the layers); the next one reads
        // the records alone.
        let first = Inventory::of_image(&img, &layers_only()).unwrap();
        assert_eq!(first, want[0], "{tag}");
        let moved = hide_layers(&img, dir.path());
        for (history, want) in [true, false].into_iter().zip(&want) {
            let warm = Inventory::of_image(&img, &layers_only().layer_history(history)).unwrap();
            assert_eq!(&warm, want, "{tag}, layer_history {history}");
            assert_eq!(sboms(&warm), sboms(want), "{tag}, layer_history {history}");
        }
        unhide(moved);
    }
}
