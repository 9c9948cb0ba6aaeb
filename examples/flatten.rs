//! Flatten an image into one layer, after looking at what its layers waste.
//!
//! ```sh
//! cargo run --example flatten                      # builds a 3-layer image in a temp store
//! cargo run --example flatten -- STORE REF NEW_REF # flattens REF of an existing layout
//! ```
//! The analysis is what `dive` shows: for each layer, the bytes it adds that a later
//! layer deletes or overwrites.

use std::fs;
use std::path::Path;

use strata::image::human_size;
use strata::{CommitOptions, Image, LayerInput, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp = tempfile::tempdir()?;
    let (store, image, new_ref) = match args.as_slice() {
        [store, reference, new_ref] => {
            let store = Store::open(store)?;
            let image = store.image(reference)?;
            (store, image, new_ref.clone())
        }
        [] | [_] => {
            let path = args.first().map(Into::into).unwrap_or_else(|| tmp.path().join("store"));
            let store = Store::open_or_create(&path)?;
            println!("store: {}", path.display());
            let image = build_layered(&store, tmp.path())?;
            (store, image, "app:flat".to_owned())
        }
        _ => return Err("usage: flatten [STORE [REF NEW_REF]]".into()),
    };

    let a = image.analyze()?;
    println!("{} ({} layers, {} stored):", image.name().unwrap_or("image"), a.layers.len(), human_size(a.size));
    for l in &a.layers {
        println!(
            "  {}  {:>8} stored  {:>5} files  {:>8} added  {:>8} wasted  {}",
            l.digest.short(),
            human_size(l.size),
            l.files,
            human_size(l.bytes_added),
            human_size(l.bytes_wasted),
            l.created_by
        );
    }
    println!(
        "  efficiency {:.1}% ({} of {} added bytes are hidden by later layers)",
        a.efficiency * 100.0,
        human_size(a.bytes_wasted),
        human_size(a.bytes_added)
    );

    let flat = image.flatten(&CommitOptions::default().tag(new_ref.as_str()))?;
    println!(
        "flattened into {new_ref}: 1 layer, {} stored (was {}), id {}",
        human_size(flat.stored_size()),
        human_size(image.stored_size()),
        flat.id().short()
    );
    println!("history kept (older steps marked empty):");
    for row in flat.history()? {
        let size = if row.empty_layer { "(empty)".to_owned() } else { human_size(row.size) };
        println!("  {size:<7} {}", row.created_by);
    }

    // The flattened image has exactly the same files.
    let before: Vec<_> = image.merged()?.tree().iter().map(|e| (e.meta.path, e.meta.size)).collect();
    let after: Vec<_> = flat.merged()?.tree().iter().map(|e| (e.meta.path, e.meta.size)).collect();
    assert_eq!(before.len(), after.len(), "same paths before and after");
    assert!(before.iter().zip(&after).all(|(b, a)| b == a), "same paths and sizes");
    println!("same {} paths and sizes before and after", after.len());
    let _ = store;
    Ok(())
}

/// An image of three layers where the later ones delete and overwrite what the first added.
fn build_layered(store: &Store, work: &Path) -> Result<Image, Box<dyn std::error::Error>> {
    let base = work.join("base");
    fs::create_dir_all(base.join("app/cache"))?;
    fs::write(base.join("app/cache/big.bin"), pseudo_random(100_000))?;
    fs::create_dir_all(base.join("app/lib"))?;
    fs::write(base.join("app/lib/core.so"), pseudo_random(300_000))?;
    fs::write(base.join("app/config.ini"), "debug=true\n")?;
    fs::write(base.join("app/main.sh"), "#!/bin/sh\necho app\n")?;
    let img = store.import(LayerInput::Dir(&base), &CommitOptions::default().created_by("ADD base /").tag("app:1"))?;

    // Layer 2: a container that deletes the cache and edits the config.
    let bundle = work.join("bundle");
    let c = img.unpack(&bundle)?;
    fs::remove_dir_all(c.rootfs().join("app/cache"))?;
    fs::write(c.rootfs().join("app/config.ini"), "debug=false\n")?;
    let img = c.commit(&CommitOptions::default().created_by("rm -rf /app/cache && edit config").tag("app:2"))?;

    // Layer 3: appended files.
    let extra = work.join("extra");
    fs::create_dir_all(extra.join("app/docs"))?;
    fs::write(extra.join("app/docs/README"), "read me\n")?;
    let img =
        img.append(LayerInput::Dir(&extra), &CommitOptions::default().created_by("ADD docs /app/docs").tag("app:3"))?;
    Ok(img)
}

/// Incompressible bytes, the same on every run.
fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
