//! Fixtures made in code: base images, contexts, umoci unpacks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_build::{BuildOptions, Built, Event, build};
use strata_image::{CommitOptions, Image, LayerInput, Store};
use strata_testkit::Tree;

pub fn write(root: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
pub const GROUP: &str = "root:x:0:\nstaff:x:50:\napp:x:1000:\n";

/// A small base image: users, groups, a `var/run -> /run` symlink.
pub fn base(store: &Store, tag: &str) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, &[("etc/passwd", PASSWD), ("etc/group", GROUP), ("run/.keep", ""), ("usr/share/doc/README", "base")]);
    std::os::unix::fs::symlink("/run", {
        fs::create_dir_all(r.join("var")).unwrap();
        r.join("var/run")
    })
    .unwrap();
    store.import(LayerInput::Dir(r), &CommitOptions::default().tag(tag)).unwrap()
}

/// A base image with busybox as its shell and tools, when busybox is installed.
pub fn busybox_base(store: &Store, tag: &str) -> Option<Image> {
    if !strata_testkit::require_tool("busybox") {
        return None;
    }
    let busybox = which("busybox")?;
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, &[("etc/passwd", PASSWD), ("etc/group", GROUP)]);
    fs::create_dir_all(r.join("bin")).unwrap();
    fs::create_dir_all(r.join("tmp")).unwrap();
    fs::copy(&busybox, r.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "rm", "mkdir", "touch", "ls", "id", "chmod", "chown", "ln", "printf", "env", "pwd",
        "sleep", "hostname", "ip", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).unwrap();
    }
    Some(store.import(LayerInput::Dir(r), &CommitOptions::default().tag(tag)).unwrap())
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

pub fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    write(d.path(), files);
    d
}

/// Build, collecting the events as text lines.
pub fn build_logged(store: &Store, ctx: &Path, opts: &BuildOptions) -> (strata_build::Result<Built>, Vec<String>) {
    let mut log = Vec::new();
    let r = build(store, ctx, opts, &mut |e| {
        log.push(match e {
            Event::Step { index, total, text } => format!("Step {index}/{total} : {text}"),
            Event::UsingCache => " ---> Using cache".into(),
            Event::Output(b) => format!("out:{}", String::from_utf8_lossy(b)),
            Event::Running { command } => format!("run:{command}"),
            Event::StepDone { id } => format!(" ---> {}", id.map(|d| d.hex()[..12].to_owned()).unwrap_or_default()),
            Event::Triggers(n) => format!("# Executing {n} build triggers"),
            Event::Warning(w) => format!("warning:{w}"),
            other => format!("{other:?}"),
        })
    });
    (r, log)
}

pub fn created_by(img: &Image) -> Vec<String> {
    img.config().history().iter().map(|h| h.created_by.clone().unwrap_or_default()).collect()
}

pub fn empty_layers(img: &Image) -> Vec<bool> {
    img.config().history().iter().map(|h| h.is_empty_layer()).collect()
}

/// The image's tree as `umoci unpack` makes it.
pub fn umoci_tree(layout: &Path, tag: &str) -> Option<Tree> {
    if !strata_testkit::require_tool("umoci") {
        return None;
    }
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    strata_testkit::run(
        Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:{tag}", layout.display())).arg(&bundle),
    );
    Some(Tree::capture(&bundle.join("rootfs")).unwrap())
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
