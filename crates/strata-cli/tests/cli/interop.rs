//! Interop through the CLI: layouts made by umoci and skopeo unpack with strata, and a
//! layout made by `strata commit` unpacks with umoci.

use std::path::Path;
use std::process::Command;

use strata_testkit::{require_tool, run};

use crate::common::{Env, tomcat_rootfs};

/// Every path under `root` whose name starts with `.wh.`.
fn whiteouts(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with(".wh.") {
                found.push(e.path().display().to_string());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    found
}

#[test]
fn strata_unpacks_a_layout_umoci_made() {
    if !require_tool("umoci") {
        return;
    }
    let env = Env::new();
    let layout = env.path("umoci-layout");
    let image = format!("{}:base", layout.display());
    run(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    // Two layers: a tree, then an edit with a deletion (a whiteout in umoci's layer).
    let bundle = env.path("umoci-bundle");
    run(Command::new("umoci").args(["unpack", "--rootless", "--image", &image]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    tomcat_rootfs(&rootfs);
    std::fs::write(rootfs.join("gone.txt"), "soon gone").unwrap();
    run(Command::new("umoci").args(["repack", "--image", &image]).arg(&bundle));
    std::fs::remove_dir_all(&bundle).unwrap();
    run(Command::new("umoci").args(["unpack", "--rootless", "--image", &image]).arg(&bundle));
    std::fs::remove_file(rootfs.join("gone.txt")).unwrap();
    std::fs::write(rootfs.join("bin/catalina.sh"), "#!/bin/sh\necho edited\n").unwrap();
    run(Command::new("umoci").args(["repack", "--image", &image]).arg(&bundle));

    let store = layout.to_str().unwrap();
    let before = strata_testkit::Tree::capture(&layout).unwrap();
    let images = env.ok(&["--store", store, "images"]);
    assert!(images.contains("base"), "{images}");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["--store", store, "inspect", "base"])).unwrap();
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    env.ok(&["--store", store, "unpack", "base", "c"]);
    let c = env.path("c/rootfs");
    assert_eq!(std::fs::read_to_string(c.join("webapps.dist/ROOT/index.html")).unwrap(), "<h1>tomcat</h1>\n");
    assert_eq!(std::fs::read_to_string(c.join("bin/catalina.sh")).unwrap(), "#!/bin/sh\necho edited\n");
    assert!(!c.join("gone.txt").exists());
    assert!(whiteouts(&c).is_empty());
    // Read-only commands left umoci's layout exactly as it was; umoci still reads it.
    env.ok(&["--store", store, "fsck"]);
    env.ok(&["--store", store, "history", "base"]);
    env.ok(&["--store", store, "save", "base", "-o", "base.tar"]);
    env.ok(&["--store", store, "gc", "--dry-run"]);
    let cmp = strata_testkit::Compare { file_mtime: true, dir_mtime: true, root: true, ..Default::default() };
    let diff = before.diff(&strata_testkit::Tree::capture(&layout).unwrap(), &cmp);
    assert!(diff.is_empty(), "a read-only command changed the layout: {diff:?}");
    run(Command::new("umoci").args(["stat", "--image", &image]));
}

#[test]
fn strata_unpacks_a_layout_skopeo_made() {
    if !require_tool("skopeo") {
        return;
    }
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let id = env.ok(&["import", "rootfs", "tomcat:latest", "-c", "CMD [\"catalina.sh\"]"]).trim().to_owned();
    let src = format!("oci:{}:tomcat:latest", env.store().display());
    let dst_dir = env.path("skopeo-layout");
    let dst = format!("oci:{}:copied", dst_dir.display());
    run(Command::new("skopeo").args(["copy", "--quiet", &src, &dst]));

    let store = dst_dir.to_str().unwrap();
    let images = env.ok(&["--store", store, "images"]);
    assert!(images.contains("copied"), "{images}");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["--store", store, "inspect", "copied"])).unwrap();
    assert_eq!(v[0]["Id"], id, "skopeo kept the config byte for byte");
    assert_eq!(v[0]["Config"]["Cmd"][0], "catalina.sh");
    env.ok(&["--store", store, "unpack", "copied", "c"]);
    assert_eq!(
        std::fs::read_to_string(env.path("c/rootfs/webapps.dist/ROOT/index.html")).unwrap(),
        "<h1>tomcat</h1>\n"
    );
    // And a commit on top of skopeo's image goes back into skopeo's layout.
    std::fs::write(env.path("c/rootfs/webapps/app.war"), "war").unwrap();
    env.ok(&["--store", store, "commit", "c", "copied:2"]);
    env.ok(&["--store", store, "fsck"]);
}

#[test]
fn umoci_unpacks_a_layout_strata_committed() {
    if !require_tool("umoci") {
        return;
    }
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    env.ok(&["import", "rootfs", "tomcat:latest"]);
    env.ok(&["unpack", "tomcat:latest", "c"]);
    let c = env.path("c/rootfs");
    std::fs::create_dir(c.join("webapps/ROOT")).unwrap();
    std::fs::copy(c.join("webapps.dist/ROOT/index.html"), c.join("webapps/ROOT/index.html")).unwrap();
    std::fs::remove_file(c.join("bin/catalina.sh")).unwrap();
    env.ok(&["commit", "c", "tomcat02:1.0", "-m", "edit webapps dir", "-a", "xiao"]);

    let image = format!("{}:tomcat02:1.0", env.store().display());
    let bundle = env.path("umoci-bundle");
    run(Command::new("umoci").args(["unpack", "--rootless", "--image", &image]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("webapps/ROOT/index.html")).unwrap(), "<h1>tomcat</h1>\n");
    assert!(rootfs.join("webapps.dist/ROOT/index.html").is_file());
    assert!(!rootfs.join("bin/catalina.sh").exists(), "the deletion was not applied");
    assert!(rootfs.join("bin").is_dir());
    assert_eq!(whiteouts(&rootfs), Vec::<String>::new());
    let stat = run(Command::new("umoci").args(["stat", "--image", &image]));
    assert!(stat.contains("edit webapps dir"), "{stat}");
}
