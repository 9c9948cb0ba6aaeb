//! The per-image inventory cache: a scan of an image scanned before reads neither its
//! layers nor their records and says exactly what a cold scan says, under whatever name
//! the image is opened by; a damaged record, or another image's, is never trusted.

use strata_scan::{Inventory, SbomFormat, SbomOptions, ScanOptions, render_image};

use crate::cache::{cold, damages, hide_layers, layers_only, record_path, sboms, unhide};
use crate::fixture::{image, store, write};
use crate::sbom::mixed_image;

/// Move the layers' scan records away too: only the image's record is left.
fn hide_layer_records(img: &strata_image::Image) {
    for l in img.layers() {
        std::fs::remove_file(record_path(img.store(), &l.digest)).unwrap();
    }
}

#[test]
fn a_scanned_image_is_answered_from_its_record_alone() {
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    let want: Vec<Inventory> =
        [true, false].iter().map(|&h| Inventory::of_image(&img, &cold().layer_history(h)).unwrap()).collect();
    assert!(!record_path(&store, img.digest()).exists(), "--no-cache wrote the image's record");
    // Both settings of layer_history kept in the one record.
    for (history, want) in [true, false].into_iter().zip(&want) {
        let first = Inventory::of_image(&img, &ScanOptions::default().layer_history(history)).unwrap();
        assert_eq!(&first, want);
        // The content id of the inventory just written: its SBOMs are those of its JSON.
        assert!(first.content_id.is_some(), "layer_history {history}");
        assert_eq!(sboms(&first), sboms(want), "layer_history {history}");
    }
    assert!(record_path(&store, img.digest()).is_file(), "no record for the image");
    hide_layer_records(&img);
    let moved = hide_layers(&img, dir.path());
    for (history, want) in [true, false].into_iter().zip(&want) {
        let warm = Inventory::of_image(&img, &ScanOptions::default().layer_history(history)).unwrap();
        assert_eq!(&warm, want, "layer_history {history}");
        // The SBOMs' identifiers from the content id kept in the record, the same as
        // those of the cold inventory (which has none and hashes its JSON).
        assert!(warm.content_id.is_some() && want.content_id.is_none(), "layer_history {history}");
        assert_eq!(sboms(&warm), sboms(want), "layer_history {history}");
    }
    // Without it the layers (or their records) are needed: they are really gone.
    assert!(Inventory::of_image(&img, &layers_only()).is_err());
    // Opened by another name: the inventory says that name.
    store.tag(&img, "other:2").unwrap();
    let other = store.image("other:2").unwrap();
    let inv = Inventory::of_image(&other, &ScanOptions::default()).unwrap();
    assert_eq!(inv.image.as_deref(), Some("other:2"));
    assert_eq!(Inventory { image: want[0].image.clone(), ..inv.clone() }, want[0]);
    // Its content id is that of the inventory under that name, not the record's name.
    assert_eq!(sboms(&inv), sboms(&Inventory { content_id: None, ..inv.clone() }));
    assert_ne!(inv.content_id, Inventory::of_image(&img, &ScanOptions::default()).unwrap().content_id);
    // Opened by its digest.
    let by_digest = store.image(img.digest().as_str()).unwrap();
    let inv = Inventory::of_image(&by_digest, &ScanOptions::default()).unwrap();
    assert!(inv.content_id.is_some());
    assert_eq!(sboms(&inv), sboms(&Inventory { content_id: None, ..inv.clone() }));
    unhide(moved);
}

#[test]
fn a_damaged_image_record_is_ignored_and_rebuilt() {
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    let want = Inventory::of_image(&img, &cold()).unwrap();
    Inventory::of_image(&img, &ScanOptions::default()).unwrap();
    let record = record_path(&store, img.digest());
    let good = std::fs::read(&record).unwrap();
    for (what, damage) in damages() {
        let mut b = good.clone();
        damage(&mut b);
        std::fs::write(&record, b).unwrap();
        assert_eq!(Inventory::of_image(&img, &ScanOptions::default()).unwrap(), want, "{what}");
        assert_eq!(std::fs::read(&record).unwrap(), good, "{what}: record not rebuilt");
    }
}

#[test]
fn another_images_record_is_not_trusted() {
    let (dir, store) = store();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let status =
        |name: &str| format!("Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n");
    write(&a, "var/lib/dpkg/status", status("alpha"));
    write(&b, "var/lib/dpkg/status", status("beta"));
    let (img_a, img_b) = (image(&store, "a:1", &[&a]), image(&store, "b:1", &[&b]));
    Inventory::of_image(&img_a, &ScanOptions::default()).unwrap();
    // A's record where B's would be: it is A's inventory, named by A's manifest.
    std::fs::copy(record_path(&store, img_a.digest()), record_path(&store, img_b.digest())).unwrap();
    let inv = Inventory::of_image(&img_b, &ScanOptions::default()).unwrap();
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["beta"]);
    assert_eq!(inv, Inventory::of_image(&img_b, &cold()).unwrap());
}

/// The SBOMs `render_image` writes for `img` under `scan`: SPDX, CycloneDX, the table.
fn rendered(img: &strata_image::Image, scan: &ScanOptions) -> Vec<Vec<u8>> {
    let opts = SbomOptions::default().created(1_700_000_000);
    [SbomFormat::SpdxJson, SbomFormat::CycloneDxJson, SbomFormat::Table]
        .iter()
        .map(|f| render_image(img, scan, *f, &opts).unwrap().document)
        .collect()
}

#[test]
fn sboms_from_the_record_are_those_of_the_inventory() {
    let (dir, store) = store();
    let img = mixed_image(dir.path(), &store);
    store.tag(&img, "other:2").unwrap();
    let names = ["mixed:1", "other:2", img.digest().as_str()];
    // What a cold scan's inventory gives, under each name and layer_history setting.
    let mut want = Vec::new();
    for name in names {
        let by = store.image(name).unwrap();
        for history in [true, false] {
            want.push(sboms(&Inventory::of_image(&by, &cold().layer_history(history)).unwrap()));
        }
    }
    // No record yet: made from the layers (and the record written on the way).
    assert_eq!(rendered(&img, &ScanOptions::default()), want[0]);
    Inventory::of_image(&img, &ScanOptions::default().layer_history(false)).unwrap();
    // From the record alone, under every name.
    hide_layer_records(&img);
    let moved = hide_layers(&img, dir.path());
    let mut i = 0;
    for name in names {
        let by = store.image(name).unwrap();
        for history in [true, false] {
            assert_eq!(rendered(&by, &ScanOptions::default().layer_history(history)), want[i], "{name} {history}");
            i += 1;
        }
    }
    unhide(moved);
    // A damaged record: the inventory is made again, the same documents.
    let record = record_path(&store, img.digest());
    let good = std::fs::read(&record).unwrap();
    for (what, damage) in damages() {
        let mut b = good.clone();
        damage(&mut b);
        std::fs::write(&record, b).unwrap();
        assert_eq!(rendered(&img, &ScanOptions::default()), want[0], "{what}");
    }
}

#[test]
fn sboms_from_the_record_carry_its_warnings() {
    let (dir, store) = store();
    let layer = dir.path().join("l");
    write(&layer, "var/lib/rpm/Packages", "not a database strata reads");
    let img = image(&store, "rpm:1", &[&layer]);
    let want = Inventory::of_image(&img, &cold()).unwrap().warnings;
    assert_eq!(want.len(), 1, "{want:?}");
    let opts = SbomOptions::default();
    // Made from the layer, then from the record it wrote.
    for _ in 0..2 {
        let r = render_image(&img, &ScanOptions::default(), SbomFormat::Table, &opts).unwrap();
        assert_eq!(r.warnings, want);
    }
    assert!(record_path(&store, img.digest()).is_file());
}
