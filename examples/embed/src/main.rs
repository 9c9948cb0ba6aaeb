//! strata embedded in another program, through the public API only: open a layout,
//! build an image from in-memory files, list tags, read a file from the merged view,
//! unpack, change, commit with typed setters, save and load, with one progress callback
//! printing the bytes of every step.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use strata::image::{ArchiveFormat, CommitOptions, LayerBuilder, LayerInput, Store, UnpackOptions};
use strata::spec::progress::{Event, ProgressHook};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    // One callback for every step: what it prints is the bytes each step moved.
    let total = Arc::new(AtomicU64::new(0));
    let seen = total.clone();
    let progress = ProgressHook::new(move |e: &Event<'_>| match e {
        Event::LayerDone { index, count, bytes, .. } => {
            seen.fetch_add(*bytes, Ordering::Relaxed);
            println!("  progress: layer {}/{count} done, {bytes} bytes", index + 1);
        }
        Event::ArchiveDone { bytes } => {
            seen.fetch_add(*bytes, Ordering::Relaxed);
            println!("  progress: archive done, {bytes} bytes");
        }
        _ => {}
    });

    // Open (create) an OCI image layout.
    let store = Store::open_or_create(work.path().join("layout"))?;

    // An image from in-memory files, given in any order; parents are implied.
    println!("build an image from memory");
    let mut files = LayerBuilder::new();
    files.file("/app/bin/hello", b"#!/bin/sh\necho hello from strata\n".to_vec()).mode(0o755);
    files.file("/etc/os-release", b"ID=embed\n".to_vec());
    files.file("/app/share/greeting", b"hello\n".to_vec());
    let opts = CommitOptions::default()
        .entrypoint(["/app/bin/hello"])
        .env("GREETING", "hello")
        .label("org.example.demo", "embed")
        .workdir("/app")
        .tag("demo:1")
        .progress(progress.clone());
    let base = store.import(LayerInput::Files(&files), &opts)?;

    // The tags, typed.
    let tags = store.tags()?;
    for t in &tags {
        println!("tag {} -> {}", t.name, t.descriptor.digest);
    }
    assert_eq!(tags.len(), 1);

    // A file from the merged view, without unpacking.
    let mut greeting = String::new();
    std::io::Read::read_to_string(&mut base.merged()?.read_file("app/share/greeting")?, &mut greeting)?;
    println!("merged view: app/share/greeting = {greeting:?}");
    assert_eq!(greeting, "hello\n");

    // Unpack into a container bundle, change it, commit with typed setters.
    println!("unpack");
    let container = store
        .image("demo:1")?
        .unpack_with(work.path().join("bundle"), &UnpackOptions::default().progress(progress.clone()))?;
    std::fs::write(container.rootfs().join("app/share/greeting"), "bonjour\n")?;
    println!("commit");
    let committed = container.commit(
        &CommitOptions::default()
            .message("say bonjour")
            .author("embed example")
            .env("GREETING", "bonjour")
            .expose(8080)
            .tag("demo:2")
            .progress(progress.clone()),
    )?;
    let config = committed.config().config.clone().unwrap_or_default();
    println!(
        "demo:2 env {:?}, ports {:?}",
        config.env,
        config.exposed_ports.map(|p| p.into_keys().collect::<Vec<_>>())
    );
    assert_eq!(committed.layers().len(), 2);

    // Save as an OCI archive and load it into a second store.
    println!("save");
    let archive = work.path().join("demo.tar");
    store.save_with(&["demo:2"], ArchiveFormat::OciArchive, std::fs::File::create(&archive)?, &progress)?;
    println!("load");
    let other = Store::open_or_create(work.path().join("other"))?;
    let loaded = other.load_with(std::fs::File::open(&archive)?, &progress)?;
    let back = other.image("demo:2")?;
    println!("loaded {} image(s); demo:2 id {}", loaded.len(), back.id());
    assert_eq!(back.id(), committed.id());

    println!("{} bytes reported in all", total.load(Ordering::Relaxed));
    assert!(total.load(Ordering::Relaxed) > 0);
    Ok(())
}
