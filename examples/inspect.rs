//! `docker inspect` and `docker history` of an image in any OCI image layout.
//!
//! ```text
//! cargo run --example inspect -- [STORE [REF]]
//! ```
//!
//! STORE is an image layout (strata's, umoci's, skopeo's...), REF a tag, a digest or a
//! short image id. Without REF it inspects the layout's first tag. When STORE has no
//! images, or does not exist, a tiny image is built there first (imported, committed,
//! configured), so that there is something to show; without arguments that happens in a
//! temporary directory.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use strata::image::{human_size, time_ago};
use strata::spec::time::parse_rfc3339;
use strata::{CommitOptions, LayerInput, Store};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scratch = tempfile::tempdir()?;
    let path = args.first().map_or_else(|| scratch.path().join("store"), PathBuf::from);
    let store = Store::open_or_create(&path)?;
    let name = match (args.get(1), store.images()?.into_iter().find_map(|s| s.name)) {
        (Some(r), _) => r.clone(),
        (None, Some(first)) => first,
        (None, None) => build_demo(&store, scratch.path())?,
    };
    let image = store.image(&name)?;

    println!("== inspect {name} (store {})", path.display());
    println!("{}", serde_json::to_string_pretty(&image.inspect()?)?);

    println!("\n== history {name}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    println!("{:<14} {:<22} {:<48} {:>8}  COMMENT", "IMAGE", "CREATED", "CREATED BY", "SIZE");
    for row in image.history()? {
        let id = row.image.as_ref().map_or_else(|| "<missing>".to_owned(), |d| d.short().to_owned());
        let created = parse_rfc3339(&row.created_at).map_or_else(|| row.created_at.clone(), |(t, _)| time_ago(t, now));
        let mut by = row.created_by.clone();
        if by.len() > 45 {
            by = format!("{}...", &by[..by.char_indices().nth(44).map_or(by.len(), |(i, _)| i)]);
        }
        println!("{id:<14} {created:<22} {by:<48} {:>8}  {}", human_size(row.size), row.comment);
    }

    println!("\n== layers of {name}");
    for (l, diff_id) in image.layers().iter().zip(&image.config().rootfs.diff_ids) {
        println!("{} {:>8} {}  (diff_id {})", l.digest, human_size(l.size), l.media_type, diff_id);
    }
    Ok(())
}

/// A tiny image in three steps, so the history has a layer, a commit and a config-only
/// step: import a directory, commit a container change, set the command. Returns its tag.
fn build_demo(store: &Store, work: &Path) -> Result<String, Box<dyn Error>> {
    let rootfs = work.join("demo-rootfs");
    fs::create_dir_all(rootfs.join("etc"))?;
    fs::create_dir_all(rootfs.join("usr/bin"))?;
    fs::write(rootfs.join("etc/motd"), "hello from strata\n")?;
    fs::write(rootfs.join("usr/bin/hello"), "#!/bin/sh\ncat /etc/motd\n")?;
    let base = store.import(LayerInput::Dir(&rootfs), &CommitOptions::default().tag("demo-base:1.0"))?;
    println!("built demo-base:1.0 ({}) from {}", &base.id().hex()[..12], rootfs.display());

    let container = base.unpack(work.join("demo-container"))?;
    fs::write(container.rootfs().join("etc/motd"), "hello again\n")?;
    let committed =
        container.commit(&CommitOptions::default().message("edit motd").author("strata example").tag("demo:1.0"))?;
    print!("committed demo:1.0 ({}), changes:\n{}", &committed.id().hex()[..12], container.diff()?.docker_diff());

    let done = committed.with_config(&CommitOptions::default().change(r#"CMD ["/usr/bin/hello"]"#)?.tag("demo:1.0"))?;
    println!("set CMD on demo:1.0 ({})\n", &done.id().hex()[..12]);
    Ok("demo:1.0".to_owned())
}
