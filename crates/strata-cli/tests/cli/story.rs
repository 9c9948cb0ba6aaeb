//! The seed's story, through the CLI only.

use crate::common::{Env, tomcat_rootfs};

#[test]
fn tomcat_import_unpack_edit_commit_save_load() {
    let env = Env::new();
    let rootfs = env.path("rootfs");
    tomcat_rootfs(&rootfs);

    // import a base rootfs as tomcat:latest
    let base_id = env.ok(&["import", rootfs.to_str().unwrap(), "tomcat:latest"]);
    assert!(base_id.trim().starts_with("sha256:"), "{base_id}");

    // unpack it as a container, copy webapps.dist to webapps
    env.ok(&["unpack", "tomcat:latest", "c"]);
    let c = env.path("c/rootfs");
    assert_eq!(std::fs::read_to_string(c.join("webapps.dist/ROOT/index.html")).unwrap(), "<h1>tomcat</h1>\n");
    std::fs::create_dir(c.join("webapps/ROOT")).unwrap();
    std::fs::copy(c.join("webapps.dist/ROOT/index.html"), c.join("webapps/ROOT/index.html")).unwrap();

    // diff: what docker diff prints
    let diff = env.ok(&["diff", "c"]);
    assert_eq!(diff, "C /webapps\nA /webapps/ROOT\nA /webapps/ROOT/index.html\n");

    // commit -m -a as tomcat02:1.0
    let id = env.ok(&["commit", "c", "tomcat02:1.0", "-m", "edit webapps dir", "-a", "xiao"]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id != base_id.trim(), "{id}");

    // history shows the step with its comment, newest first (docker's columns: the
    // author is in inspect)
    let history = env.ok(&["history", "tomcat02:1.0"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    let header: Vec<&str> = lines[0].split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], "{history}");
    assert!(lines[1].starts_with(&id["sha256:".len().."sha256:".len() + 12]), "{history}");
    assert!(lines[1].contains("edit webapps dir"), "{history}");
    // The base image is in the store: its id on the row of its step.
    assert!(lines[2].starts_with(&base_id.trim()["sha256:".len().."sha256:".len() + 12]), "{history}");

    // inspect: two layers, author, comment
    let v = env.inspect("tomcat02:1.0");
    let img = &v[0];
    assert_eq!(img["Id"], id);
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(img["Author"], "xiao");
    assert_eq!(img["Comment"], "edit webapps dir");
    assert_eq!(img["RepoTags"][0], "tomcat02:1.0");
    assert_eq!(img["Parent"], base_id.trim());

    // save as docker-archive, load into a second store: the same image id
    env.ok(&["save", "tomcat02:1.0", "-o", "tomcat02.tar", "--format", "docker-archive"]);
    let listing = std::process::Command::new("tar").arg("-tf").arg(env.path("tomcat02.tar")).output().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.starts_with("manifest.json\nrepositories\n"), "{listing}");
    let other = env.path("store2");
    let loaded = env.ok(&["--store", other.to_str().unwrap(), "load", "-i", "tomcat02.tar"]);
    assert_eq!(loaded, "Loaded image: tomcat02:1.0\n");
    let again = env.ok(&["--store", other.to_str().unwrap(), "inspect", "tomcat02:1.0"]);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again[0]["Id"], id);
    assert_eq!(again[0]["Author"], "xiao");

    // and the loaded image unpacks to the edited tree
    env.ok(&["--store", other.to_str().unwrap(), "unpack", "--raw", "tomcat02:1.0", "check"]);
    assert_eq!(std::fs::read_to_string(env.path("check/webapps/ROOT/index.html")).unwrap(), "<h1>tomcat</h1>\n");
}
