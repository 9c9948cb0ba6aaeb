//! Save images as a docker-archive and as an OCI archive, load each into a second store,
//! and show that the images agree: same ids (config digests), layers and tags.
//!
//! ```text
//! cargo run --example save_load -- [WORKDIR]
//! ```
//!
//! WORKDIR (default: a temporary directory) receives the first store (`store-a/`), the
//! two archives, and one store per archive loaded (`store-docker-archive/`,
//! `store-oci-archive/`).

use std::error::Error;
use std::fs;
use std::path::PathBuf;

use strata::image::human_size;
use strata::{ArchiveFormat, CommitOptions, LayerInput, Store};

fn main() -> Result<(), Box<dyn Error>> {
    let scratch = tempfile::tempdir()?;
    let work = std::env::args().nth(1).map_or_else(|| scratch.path().to_path_buf(), PathBuf::from);
    fs::create_dir_all(&work)?;

    // Two images that share their base layer, and three tags.
    let a = Store::open_or_create(work.join("store-a"))?;
    let site = work.join("site");
    fs::create_dir_all(site.join("srv/www"))?;
    fs::write(site.join("srv/www/index.html"), "<h1>version 1.0</h1>\n")?;
    let v1 = a.import(LayerInput::Dir(&site), &CommitOptions::default().author("strata example").tag("web:1.0"))?;
    let patch = work.join("patch");
    fs::create_dir_all(patch.join("srv/www"))?;
    fs::write(patch.join("srv/www/index.html"), "<h1>version 1.1</h1>\n")?;
    let v11 = v1.append(LayerInput::Dir(&patch), &CommitOptions::default().message("1.1").tag("web:1.1"))?;
    a.tag(&v11, "web:latest")?;
    let names = ["web:1.0", "web:1.1", "web:latest"];
    println!(
        "store {}: web:1.0 {} (1 layer), web:1.1 = web:latest {} (2 layers)",
        a.path().unwrap().display(),
        short(v1.id()),
        short(v11.id())
    );

    let mut all_agree = true;
    for (format, label) in
        [(ArchiveFormat::DockerArchive, "docker-archive"), (ArchiveFormat::OciArchive, "oci-archive")]
    {
        let file = work.join(format!("web.{label}.tar"));
        a.save(&names, format, fs::File::create(&file)?)?;
        println!(
            "\nsaved {} as {label}: {} ({})",
            names.join(", "),
            file.display(),
            human_size(fs::metadata(&file)?.len())
        );

        let b = Store::open_or_create(work.join(format!("store-{label}")))?;
        for l in b.load(fs::File::open(&file)?)? {
            println!(
                "  loaded {} as {}",
                short(&l.id),
                if l.names.is_empty() { "<untagged>".into() } else { l.names.join(", ") }
            );
        }
        for name in names {
            let (x, y) = (a.image(name)?, b.image(name)?);
            let agree = x.id() == y.id() && x.config().rootfs.diff_ids == y.config().rootfs.diff_ids;
            all_agree &= agree;
            println!(
                "  {name:<11} id {} -> {}  diff_ids {}  {}",
                short(x.id()),
                short(y.id()),
                y.config().rootfs.diff_ids.len(),
                if agree { "agree" } else { "DIFFER" }
            );
        }
        let report = b.fsck()?;
        println!("  fsck of {}: {}", b.path().unwrap().display(), report.to_string().trim_end());
        all_agree &= report.is_clean();
    }
    if !all_agree {
        return Err("the loaded images differ from the saved ones".into());
    }
    println!("\nboth archives load as the same images");
    Ok(())
}

fn short(d: &strata::spec::Digest) -> &str {
    &d.hex()[..12]
}
