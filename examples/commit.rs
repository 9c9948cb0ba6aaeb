//! The seed's story, end to end: make a base image ("tomcat"), unpack it as a container,
//! change the container (copy `webapps.dist/*` into `webapps/`), commit the change with a
//! message and an author as `tomcat02:1.0`, and show what `docker inspect`, `docker
//! history` and `docker diff` would.
//!
//! ```sh
//! cargo run --example commit              # store in ./strata-demo
//! cargo run --example commit -- /tmp/s    # store in /tmp/s
//! ```
//! The container bundle goes beside the store (`./strata-demo-bundle`); both can be
//! opened by umoci and skopeo (`umoci ls --layout strata-demo`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use strata::image::{HistoryRow, human_size};
use strata::{CommitOptions, LayerInput, Store};

/// The base image's files: a tiny Tomcat-shaped tree.
const ROOTFS: &[(&str, &str)] = &[
    ("usr/local/tomcat/bin/catalina.sh", "#!/bin/sh\necho \"Tomcat started on port 8080\"\n"),
    ("usr/local/tomcat/conf/server.xml", "<Server port=\"8005\"><Service name=\"Catalina\"/></Server>\n"),
    ("usr/local/tomcat/webapps.dist/ROOT/index.html", "<html><body><h1>It works!</h1></body></html>\n"),
    ("usr/local/tomcat/webapps.dist/ROOT/WEB-INF/web.xml", "<web-app version=\"4.0\"/>\n"),
    ("usr/local/tomcat/webapps.dist/docs/index.html", "<html><body>Documentation</body></html>\n"),
    ("etc/os-release", "NAME=\"strata demo\"\nID=strata\n"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store_path = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("strata-demo"));
    let bundle = bundle_path(&store_path);
    let store = Store::open_or_create(&store_path)?;
    println!("store: {} (an OCI image layout)", store_path.display());

    // 1. The base image, from files made here (like `docker import`).
    let src = tempfile::tempdir()?;
    for (path, content) in ROOTFS {
        let p = src.path().join(path);
        fs::create_dir_all(p.parent().ok_or("path without parent")?)?;
        fs::write(&p, content)?;
    }
    fs::set_permissions(src.path().join("usr/local/tomcat/bin/catalina.sh"), fs::Permissions::from_mode(0o755))?;
    fs::create_dir_all(src.path().join("usr/local/tomcat/webapps"))?;
    let base_opts = CommitOptions::default()
        .change("ENV CATALINA_HOME=/usr/local/tomcat")?
        .change("WORKDIR /usr/local/tomcat")?
        .change("EXPOSE 8080")?
        .change(r#"CMD ["catalina.sh", "run"]"#)?
        .message("tomcat base")
        .tag("tomcat:latest");
    let base = store.import(LayerInput::Dir(src.path()), &base_opts)?;
    println!("imported tomcat:latest      id {}  ({} layer)", base.id().short(), base.layers().len());

    // 2. Unpack it as a container: DIR/rootfs plus the state and snapshot beside it.
    if bundle.exists() {
        fs::remove_dir_all(&bundle)?;
    }
    let container = store.image("tomcat:latest")?.unpack(&bundle)?;
    println!("unpacked to {}", container.rootfs().display());

    // 3. The container's change: copy webapps.dist/* into webapps/.
    let tomcat = container.rootfs().join("usr/local/tomcat");
    copy_dir(&tomcat.join("webapps.dist"), &tomcat.join("webapps"))?;
    println!("copied webapps.dist/* to webapps/");
    let diff = container.diff()?;
    println!("docker diff:");
    for line in diff.docker_diff().lines() {
        println!("  {line}");
    }

    // 4. docker commit -m "edit webapps dir" -a "xiao" <container> tomcat02:1.0
    let opts = CommitOptions::default().message("edit webapps dir").author("xiao").tag("tomcat02:1.0");
    let image = container.commit(&opts)?;
    println!("committed tomcat02:1.0      id {}  ({} layers)", image.id().short(), image.layers().len());

    // 5. What docker inspect and docker history show.
    let inspect = image.inspect()?;
    println!("inspect:");
    println!("  Id          {}", inspect.id);
    println!("  RepoTags    {}", inspect.repo_tags.join(", "));
    println!("  Parent      {}", inspect.parent);
    println!("  Created     {}", inspect.created);
    println!("  Author      {}", inspect.author);
    println!("  Comment     {}", inspect.comment);
    println!("  Os/Arch     {}/{}", inspect.os, inspect.architecture);
    println!("  Cmd         {}", inspect.config["Cmd"]);
    println!("  RootFS      {} layers", inspect.root_fs.layers.len());
    for l in &inspect.root_fs.layers {
        println!("              {l}");
    }
    println!("history:");
    println!("  {:<14} {:<20} {:<28} {:>8}  {:<8} COMMENT", "IMAGE", "CREATED", "CREATED BY", "SIZE", "AUTHOR");
    for row in image.history()? {
        print_row(&row);
    }
    assert_eq!(inspect.root_fs.layers.len(), 2, "the commit adds exactly one layer");
    Ok(())
}

fn print_row(row: &HistoryRow) {
    let shown = row.image.as_ref().map_or_else(|| "<missing>".to_owned(), |d| d.short().to_owned());
    let mut by = row.created_by.clone();
    if by.chars().count() > 28 {
        by = by.chars().take(25).collect::<String>() + "...";
    }
    println!(
        "  {:<14} {:<20} {:<28} {:>8}  {:<8} {}",
        shown,
        row.created_at.get(..19).unwrap_or(&row.created_at),
        by,
        human_size(row.size),
        row.author,
        row.comment
    );
}

fn bundle_path(store: &Path) -> PathBuf {
    let name = store.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "strata".into());
    store.with_file_name(format!("{name}-bundle"))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
