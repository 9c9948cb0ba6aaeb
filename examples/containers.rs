//! The seed's story with a running container, as docker tells it: run a tomcat-like
//! image, fix it from inside the running container (copy `webapps.dist/.` into
//! `webapps/`), look inside with exec, stop it, commit the container as `tomcat02:1.0`
//! with a message and an author, and run the new image to print the file.
//!
//! ```sh
//! sudo cargo run --example containers              # store in ./strata-demo-containers
//! sudo cargo run --example containers -- /tmp/s    # store in /tmp/s
//! ```
//! Containers run through an OCI runtime (runc, crun or youki) as root; where there is
//! none, or not root, or no busybox to make the image from, the example says so and
//! stops. This program is also its containers' monitor: `Containers::monitor` names it,
//! and it runs `monitor_main` when started as `containers container-monitor ...`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata::image::containers::{CreateOptions, find_runtime, monitor_main};
use strata::image::{Change, ProcessOverrides};
use strata::{CommitOptions, LayerInput, Store};

const BUSYBOX: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];
const NAME: &str = "tomcat-demo";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "container-monitor") {
        std::process::exit(monitor_main(args.into_iter().skip(1)));
    }
    let Some(why) = cannot_run() else { return story(args.first().map(PathBuf::from)) };
    println!("skipping the containers example: {why}");
    Ok(())
}

/// Why containers cannot run here, if they cannot.
fn cannot_run() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("containers need root (run it with sudo)".into());
    }
    if let Err(e) = find_runtime(None) {
        return Some(e.to_string());
    }
    if !BUSYBOX.iter().any(|b| Path::new(b).exists()) {
        return Some("no busybox to make the image from (Debian: apt-get install busybox-static)".into());
    }
    None
}

fn story(store_path: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let store_path = store_path.unwrap_or_else(|| PathBuf::from("strata-demo-containers"));
    let store = Store::open_or_create(&store_path)?;
    println!("store: {}", store_path.display());

    // A tomcat-like image: busybox, webapps.dist/ROOT/index.html and an empty webapps/.
    let src = tempfile::tempdir()?;
    let root = src.path();
    std::fs::create_dir_all(root.join("bin"))?;
    let busybox = BUSYBOX.iter().find(|b| Path::new(b).exists()).ok_or("no busybox")?;
    std::fs::copy(busybox, root.join("bin/busybox"))?;
    for applet in ["sh", "ls", "cp", "cat", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
    }
    std::fs::create_dir_all(root.join("webapps.dist/ROOT"))?;
    std::fs::create_dir_all(root.join("webapps"))?;
    std::fs::write(root.join("webapps.dist/ROOT/index.html"), "<h1>It works!</h1>\n")?;
    let mut opts = CommitOptions::default().tag("tomcat:latest");
    opts.changes.push(Change::parse("CMD [\"sh\"]")?);
    let base = store.import(LayerInput::Dir(root), &opts)?;
    println!("$ strata import rootfs tomcat:latest\n{}", base.id());

    let containers = store.containers()?.monitor(vec![std::env::current_exe()?.into(), "container-monitor".into()]);
    let _ = containers.remove(NAME, true);

    // strata run -d --name tomcat-demo tomcat:latest sh -c 'cp -r webapps.dist/. webapps/ && sleep 300'
    let mut create = CreateOptions::default();
    create.name = Some(NAME.into());
    let mut process = ProcessOverrides::default();
    process.cmd = ["sh", "-c", "cp -r webapps.dist/. webapps/ && sleep 300"].map(String::from).to_vec();
    create.process = process;
    let rec = containers.create(&base, "tomcat:latest", &create)?;
    containers.start(NAME)?;
    println!(
        "$ strata run -d --name {NAME} tomcat:latest sh -c 'cp -r webapps.dist/. webapps/ && sleep 300'\n{}",
        rec.id
    );

    // Wait for the copy, then look inside the running container.
    let (_, bundle) = containers.bundle(NAME)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bundle.rootfs().join("webapps/ROOT/index.html").exists() {
        if Instant::now() > deadline {
            return Err("the container did not copy webapps.dist".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("$ strata exec {NAME} ls webapps/ROOT");
    let mut exec = strata::image::containers::ExecOptions::default();
    exec.args = ["ls", "webapps/ROOT"].map(String::from).to_vec();
    containers.exec(NAME, &exec)?;
    println!("$ strata diff {NAME}\n{}", bundle.diff()?.docker_diff().trim_end());

    println!("$ strata stop -t 1 {NAME}");
    containers.stop(NAME, Duration::from_secs(1))?;
    let image = containers.commit(
        NAME,
        &CommitOptions::default().message("edit webapps dir").author("xiao").tag("tomcat02:1.0"),
        true,
    )?;
    println!("$ strata commit -m \"edit webapps dir\" -a xiao {NAME} tomcat02:1.0\n{}", image.id());

    // strata run --rm tomcat02:1.0 cat webapps/ROOT/index.html
    println!("$ strata run --rm tomcat02:1.0 cat webapps/ROOT/index.html");
    let mut run = CreateOptions::default();
    run.auto_remove = true;
    let mut process = ProcessOverrides::default();
    process.cmd = ["cat", "webapps/ROOT/index.html"].map(String::from).to_vec();
    run.process = process;
    let new = store.image("tomcat02:1.0")?;
    let rec = containers.create(&new, "tomcat02:1.0", &run)?;
    let code = containers.start_attached(&rec.id)?.relay()?;
    if code != 0 {
        return Err(format!("the new image's container exited with {code}").into());
    }

    let inspect = new.inspect()?;
    println!("Author: {}, Comment: {}, layers: {}", inspect.author, inspect.comment, inspect.root_fs.layers.len());
    containers.remove(NAME, false)?;
    Ok(())
}
