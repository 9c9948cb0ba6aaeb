//! Every command's ordinary use, and what it prints (tables and JSON).

use std::process::Command;

use serde_json::{Value, json};

use crate::common::{Entry, Env, run, tomcat_rootfs, write_tar};

/// An env with `tomcat:latest` imported; returns its image id.
fn with_base() -> (Env, String) {
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let id = env.ok(&["import", "rootfs", "tomcat:latest"]).trim().to_owned();
    (env, id)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn images_table_json_and_quiet() {
    let (env, id) = with_base();
    env.ok(&["tag", "tomcat:latest", "tomcat:9"]);
    let table = env.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(lines[0].contains(col), "{table}");
    }
    let short = &id[7..19];
    assert!(lines[1].starts_with("tomcat ") && lines[1].contains(short), "{table}");
    // docker's relative time: just made, so seconds ago.
    assert!(lines[1].contains("second") && lines[1].contains(" ago"), "{table}");
    assert!(table.contains(" 9 ") && table.contains(" latest "), "{table}");

    let v = json(&env.ok(&["images", "--json"]));
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let latest = rows.iter().find(|r| r["Tag"] == "latest").unwrap();
    assert_eq!(latest["Repository"], "tomcat");
    assert_eq!(latest["ID"], short);
    assert!(latest["Digest"].as_str().unwrap().starts_with("sha256:"));
    let created = latest["CreatedAt"].as_str().unwrap();
    assert!(created.ends_with(" +0000 UTC") && created.len() == "2024-01-15 10:30:00 +0000 UTC".len(), "{created}");
    assert!(latest["Size"].as_str().unwrap().ends_with('B'));
    assert!(latest["SizeBytes"].as_u64().unwrap() > 0);
    let since = latest["CreatedSince"].as_str().unwrap();
    assert!(since.ends_with("ago") && since.contains("second"), "{since}");

    // -q: unique ids; --no-trunc: full ids
    assert_eq!(env.ok(&["images", "-q"]), format!("{short}\n"));
    assert!(env.ok(&["images", "--no-trunc"]).contains(&id));
}

#[test]
fn read_only_commands_do_not_create_the_default_store() {
    let env = Env::new();
    let default = env.path("home/.local/share/strata");
    let r = run(env.bare(&["images"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "header only: {}", r.stdout);
    assert_eq!(run(env.bare(&["images", "--json"])).stdout.trim(), "[]");
    let r = run(env.bare(&["inspect", "ubuntu"]));
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "strata: error: No such image: ubuntu:latest\n");
    for args in [&["history", "x"][..], &["fsck"], &["gc", "--dry-run"], &["unpack", "x", "d"]] {
        run(env.bare(args));
    }
    assert!(!default.exists(), "a read-only command created {}", default.display());

    // The first write creates it ($XDG_DATA_HOME/strata).
    tomcat_rootfs(&env.path("rootfs"));
    let r = run(env.bare(&["import", "rootfs", "base:1"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(default.join("index.json").is_file());
    assert!(run(env.bare(&["images"])).stdout.contains("base "));

    // STRATA_STORE names another.
    let mut c = env.bare(&["images", "-q"]);
    c.env("STRATA_STORE", env.path("elsewhere"));
    assert_eq!(run(c).stdout, "");
}

#[test]
fn inspect_is_a_json_array_with_docker_fields() {
    let (env, id) = with_base();
    env.ok(&["config", "tomcat:latest", "tomcat:cfg", "-c", "CMD [\"catalina.sh\", \"run\"]", "-c", "ENV A=1"]);
    let v = json(&env.ok(&["inspect", "tomcat:latest", "tomcat:cfg"]));
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for key in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "Metadata",
    ] {
        assert!(arr[0].get(key).is_some(), "no {key} in {}", arr[0]);
    }
    assert_eq!(arr[0]["Id"], id);
    assert_eq!(arr[0]["RootFS"]["Type"], "layers");
    assert_eq!(arr[1]["Config"]["Cmd"], serde_json::json!(["catalina.sh", "run"]));
    assert_eq!(arr[1]["Config"]["Env"], serde_json::json!(["A=1"]));
    // By short id too, and one missing: the found ones, exit 1.
    let r = env.run(&["inspect", &id[7..19], "nope:1"]);
    assert_eq!(r.code, 1);
    assert_eq!(json(&r.stdout)[0]["Id"], id);
    assert_eq!(r.stderr, "strata: error: No such image: nope:1\n");
    // --json changes nothing: it is JSON either way.
    assert_eq!(json(&env.ok(&["--json", "inspect", "tomcat:latest"]))[0]["Id"], id);
}

#[test]
fn history_table_json_and_no_trunc() {
    let (env, base_id) = with_base();
    let long = "x".repeat(80);
    env.ok(&["unpack", "tomcat:latest", "c"]);
    std::fs::write(env.path("c/rootfs/new"), "n").unwrap();
    env.ok(&["commit", "c", "t:2", "-m", &long, "-a", "xiao <x@example.com>"]);
    let v = json(&env.ok(&["history", "--json", "t:2"]));
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for key in ["ID", "CreatedAt", "CreatedSince", "CreatedBy", "Size", "Comment"] {
        assert!(rows[0].get(key).is_some(), "{key}");
    }
    assert_eq!(rows[0]["ID"], env.image_id("t:2"));
    assert_eq!(rows[0]["Comment"], long.as_str());
    assert_eq!(rows[0]["Author"], "xiao <x@example.com>");
    // The base is in the store: its id, where docker would show the parent image's.
    assert_eq!(rows[1]["ID"], base_id);
    assert!(rows[1]["CreatedBy"].as_str().unwrap().starts_with("strata import"));
    let full = env.ok(&["history", "--no-trunc", "t:2"]);
    assert!(full.contains(&env.image_id("t:2")), "{full}");
    let short = env.ok(&["history", "t:2"]);
    assert!(!short.contains(&env.image_id("t:2")), "{short}");
}

#[test]
fn tag_and_rmi() {
    let (env, id) = with_base();
    env.ok(&["tag", "tomcat:latest", "127.0.0.1:5000/tomcat"]);
    env.ok(&["tag", &id[7..19], "mine"]);
    let v = env.inspect("tomcat:latest");
    let tags: Vec<&str> = v[0]["RepoTags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert!(tags.contains(&"127.0.0.1:5000/tomcat:latest") && tags.contains(&"mine:latest"), "{tags:?}");

    // rmi of one tag: untagged, nothing deleted (other tags hold the image)
    assert_eq!(env.ok(&["rmi", "mine"]), "Untagged: mine:latest\n");
    // rmi by id of an image two tags name: refused without -f, as docker does
    let err = env.fails(&["rmi", &id[7..19]], 1);
    assert_eq!(
        err,
        format!(
            "strata: error: conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories\n",
            &id[7..19]
        )
    );
    // -f: every tag goes (in docker's order: by full reference), then the image and its
    // layer (its chain id: the one layer's diff_id)
    let diff_id = env.inspect("tomcat:latest")[0]["RootFS"]["Layers"][0].as_str().unwrap().to_owned();
    let out = env.ok(&["rmi", "-f", &id[7..19]]);
    assert_eq!(
        out,
        format!("Untagged: 127.0.0.1:5000/tomcat:latest\nUntagged: tomcat:latest\nDeleted: {id}\nDeleted: {diff_id}\n")
    );
    assert_eq!(env.ok(&["images", "-q"]), "");
    let blobs = std::fs::read_dir(env.store().join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0);
}

#[test]
fn rmi_json_and_partial_failure() {
    let (env, _) = with_base();
    env.ok(&["tag", "tomcat:latest", "other:1"]);
    let r = env.run(&["--json", "rmi", "nope", "other:1"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "strata: error: No such image: nope:latest\n");
    assert_eq!(json(&r.stdout), serde_json::json!([{ "Untagged": "other:1" }]));
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1);
    // With -f, names that do not exist are reported and do not fail the command (docker);
    // other failures still do.
    let r = env.run(&["rmi", "-f", "nope"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, "strata: error: No such image: nope:latest\n"));
    assert_eq!(env.run(&["rmi", "-f", "Nope"]).code, 1);
}

#[test]
fn gc_dry_run_then_gc() {
    let (env, _) = with_base();
    // An unreferenced blob, as an interrupted tool might leave.
    let data = b"garbage blob";
    let hex = strata_spec::Digest::sha256_of(data).hex().to_owned();
    let stray = env.store().join("blobs/sha256").join(&hex);
    std::fs::write(&stray, data).unwrap();
    let v = json(&env.ok(&["gc", "--dry-run", "--json"]));
    assert_eq!(v["DryRun"], true);
    assert_eq!(v["Removed"][0]["Digest"], format!("sha256:{hex}"));
    assert_eq!(v["Removed"][0]["Size"], data.len());
    assert!(v["Kept"].as_u64().unwrap() >= 3);
    assert!(stray.exists(), "a dry run removed the blob");
    let out = env.ok(&["gc"]);
    assert!(out.contains(&format!("Removed sha256:{hex}")), "{out}");
    assert!(!stray.exists());
    assert_eq!(json(&env.ok(&["gc", "--json"]))["Removed"], serde_json::json!([]));
    env.ok(&["unpack", "tomcat:latest", "c"]);
}

#[test]
fn fsck_clean_and_corrupt() {
    let (env, _) = with_base();
    let out = env.ok(&["fsck"]);
    assert!(out.contains("0 problems") && out.contains("store is clean"), "{out}");
    let v = json(&env.ok(&["fsck", "--json"]));
    assert_eq!(v["Clean"], true);
    assert!(v["BlobsChecked"].as_u64().unwrap() >= 3);
    // Corrupt the manifest: fsck names it and exits 1.
    let v = env.inspect("tomcat:latest");
    let manifest = v[0]["Descriptor"]["digest"].as_str().unwrap().to_owned();
    let path = env.store().join("blobs/sha256").join(&manifest["sha256:".len()..]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let r = env.run(&["fsck"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("corrupt blob {manifest}")), "{}", r.stderr);
    assert!(r.stdout.contains("1 problems"), "{}", r.stdout);
    let r = env.run(&["fsck", "--json"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("corrupt blob {manifest}")), "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["Clean"], false);
    assert!(v["Problems"][0].as_str().unwrap().contains(&manifest));
}

/// What unpack refuses, fsck reports (on stderr, in --json, exit 1): a config whose
/// diff_id is wrong only with --deep, a diff_id count that disagrees always. gc removes
/// nothing while a tagged manifest is missing, unless --force.
#[test]
fn fsck_deep_and_gc_of_a_missing_manifest() {
    let (env, _) = with_base();
    let blob = |d: &str| env.store().join("blobs/sha256").join(&d["sha256:".len()..]);
    let put = |bytes: &[u8]| {
        let d = strata_spec::Digest::sha256_of(bytes);
        std::fs::write(blob(d.as_str()), bytes).unwrap();
        (d.to_string(), bytes.len())
    };
    let v = env.inspect("tomcat:latest");
    let manifest = v[0]["Descriptor"]["digest"].as_str().unwrap().to_owned();
    let mut m: Value = serde_json::from_slice(&std::fs::read(blob(&manifest)).unwrap()).unwrap();
    let config = m["config"]["digest"].as_str().unwrap().to_owned();
    let mut c: Value = serde_json::from_slice(&std::fs::read(blob(&config)).unwrap()).unwrap();
    let wrong = strata_spec::Digest::sha256_of(b"not the layer").to_string();
    for (tag, diff_ids, deep_only) in [("wrong:1", json!([wrong]), true), ("count:1", json!([wrong, wrong]), false)] {
        c["rootfs"]["diff_ids"] = diff_ids;
        let (cd, cs) = put(&serde_json::to_vec(&c).unwrap());
        m["config"]["digest"] = json!(cd);
        m["config"]["size"] = json!(cs);
        let (md, ms) = put(&serde_json::to_vec(&m).unwrap());
        let index_path = env.store().join("index.json");
        let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }));
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        assert_ne!(env.run(&["unpack", "--raw", tag, &format!("x/{tag}/a/b")]).code, 0, "{tag}");
        assert!(!env.path("x").exists(), "{tag}: a failed unpack left its parents");
        let r = env.run(&["fsck", "--quick"]);
        assert_eq!(r.code, if deep_only { 0 } else { 1 }, "{tag}: {}", r.stderr);
        let r = env.run(&["fsck", "--quick", "--deep", "--json"]);
        assert_eq!(r.code, 1, "{tag}");
        let problems = json(&r.stdout)["Problems"].clone();
        let line = if deep_only { "decompresses to" } else { "diff_ids" };
        assert!(problems.as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains(line)), "{tag}: {problems}");
        assert!(r.stderr.contains(line), "{tag}: {}", r.stderr);
        env.ok(&["rmi", tag]);
    }
    // A tagged manifest that is missing: gc removes nothing, --force collects.
    let junk = put(b"junk").0;
    std::fs::remove_file(blob(&manifest)).unwrap();
    let r = env.run(&["gc"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert!(blob(&junk).exists() && blob(&config).exists());
    env.ok(&["gc", "--force"]);
    assert!(!blob(&junk).exists() && !blob(&config).exists());
}

#[test]
fn unpack_bundle_raw_rootless_platform() {
    let (env, id) = with_base();
    let out = env.ok(&["unpack", "tomcat:latest", "c"]);
    assert!(out.starts_with("Unpacked tomcat:latest") && out.contains("1 layer,"), "{out}");
    assert!(env.path("c/rootfs/bin/catalina.sh").is_file());
    assert!(env.path("c/strata-bundle.json").is_file());
    // config.json beside the rootfs: the OCI runtime configuration runc and crun run.
    let config = json(&std::fs::read_to_string(env.path("c/config.json")).unwrap());
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["cwd"], "/");
    assert_eq!(config["process"]["user"], json!({"uid": 0, "gid": 0}));
    assert_eq!(config["annotations"]["org.opencontainers.image.os"], "linux");
    assert!(!env.path("c/rootfs/config.json").exists());
    // It is not part of the container: diff sees nothing.
    assert_eq!(env.ok(&["diff", "c"]), "");
    // --raw: the tree alone
    env.ok(&["unpack", "--raw", "--rootless", "tomcat:latest", "raw"]);
    assert!(env.path("raw/webapps.dist/ROOT/index.html").is_file());
    assert!(!env.path("raw/strata-bundle.json").exists() && !env.path("raw/rootfs").exists());
    assert!(!env.path("raw/config.json").exists());
    // --no-runtime-config: the bundle without config.json
    env.ok(&["unpack", "--no-runtime-config", "tomcat:latest", "nc"]);
    assert!(env.path("nc/strata-bundle.json").is_file() && !env.path("nc/config.json").exists());
    // --plan: the same tree whether the layers' headers are read first or not.
    for plan in ["always", "never"] {
        env.ok(&["unpack", "--raw", "--plan", plan, "tomcat:latest", &format!("plan-{plan}")]);
        assert!(env.path(&format!("plan-{plan}/webapps.dist/ROOT/index.html")).is_file());
    }
    assert!(env.fails(&["unpack", "--raw", "--plan", "sometimes", "tomcat:latest", "p"], 2).contains("sometimes"));
    // The image config's CMD, ENV, WORKDIR, USER and LABEL carried over; rootless maps the caller.
    env.ok(&[
        "config",
        "tomcat:latest",
        "tomcat:run",
        "-c",
        "CMD [\"catalina.sh\", \"run\"]",
        "-c",
        "ENV A=1",
        "-c",
        "WORKDIR /bin",
        "-c",
        "USER 1000:1000",
        "-c",
        "LABEL l=v",
    ]);
    env.ok(&["unpack", "--rootless", "tomcat:run", "rl"]);
    let config = json(&std::fs::read_to_string(env.path("rl/config.json")).unwrap());
    assert_eq!(config["process"]["args"], json!(["catalina.sh", "run"]));
    assert_eq!(config["process"]["env"][1], "A=1");
    assert_eq!(config["process"]["cwd"], "/bin");
    assert_eq!(config["process"]["user"], json!({"uid": 1000, "gid": 1000}));
    assert_eq!(config["annotations"]["l"], "v");
    let ns = config["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.contains(&json!({"type": "user"})) && !ns.contains(&json!({"type": "network"})), "{ns:?}");
    // --platform of this machine; --json
    let host = strata_spec::Platform::host().to_string();
    let v = json(&env.ok(&["unpack", "--json", "--platform", &host, &id, "p"]));
    assert_eq!(v["ID"], id);
    assert_eq!(v["Layers"], 1);
    assert_eq!(v["Rootfs"], "p/rootfs");
    assert_eq!(v["RuntimeConfig"], "p/config.json");
    // nothing on stderr when it is not a terminal (no progress bars on a pipe)
    let r = env.run(&["unpack", "tomcat:latest", "q"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    // -q: nothing at all
    let r = env.run(&["-q", "unpack", "tomcat:latest", "q2"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn diff_json_and_commit_with_changes() {
    let (env, base) = with_base();
    env.ok(&["unpack", "tomcat:latest", "c"]);
    std::fs::remove_file(env.path("c/rootfs/bin/catalina.sh")).unwrap();
    std::fs::write(env.path("c/rootfs/webapps/app.war"), "war").unwrap();
    let v = json(&env.ok(&["diff", "--json", "c"]));
    assert_eq!(
        v,
        serde_json::json!([
            { "Path": "/bin", "Kind": 0 },
            { "Path": "/bin/catalina.sh", "Kind": 2 },
            { "Path": "/webapps", "Kind": 0 },
            { "Path": "/webapps/app.war", "Kind": 1 },
        ])
    );
    let v = json(&env.ok(&[
        "commit",
        "--json",
        "c",
        "web:2",
        "-c",
        "EXPOSE 8080",
        "-c",
        "WORKDIR /webapps",
        "-m",
        "deploy",
    ]));
    assert_eq!(v["Tag"], "web:2");
    assert_eq!(v["Layers"], 2);
    let i = env.inspect("web:2");
    assert_eq!(i[0]["Config"]["WorkingDir"], "/webapps");
    assert!(i[0]["Config"]["ExposedPorts"].get("8080/tcp").is_some(), "{}", i[0]["Config"]);
    assert_eq!(i[0]["Parent"], base);
    // The committed image has the deletion as a whiteout that unpack honours.
    env.ok(&["unpack", "--raw", "web:2", "check"]);
    assert!(!env.path("check/bin/catalina.sh").exists());
    assert_eq!(std::fs::read_to_string(env.path("check/webapps/app.war")).unwrap(), "war");
    // Committing with the default store location finds the bundle's own store.
    std::fs::write(env.path("c/rootfs/more"), "m").unwrap();
    let r = run(env.bare(&["commit", "c", "web:3"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.ok(&["images"]).contains("web "));
}

#[test]
fn save_load_both_formats_and_pipes() {
    let (env, id) = with_base();
    env.ok(&["tag", "tomcat:latest", "copy:1"]);
    // oci-archive to a file
    env.ok(&["save", "tomcat:latest", "copy:1", "--format", "oci-archive", "-o", "oci.tar"]);
    let v = json(&env.ok(&["--store", "s2", "load", "--json", "-i", "oci.tar"]));
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["Names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["copy:1", "tomcat:latest"]);
    assert_eq!(v[0]["ID"], id);
    // docker-archive through a pipe: save -o - | load (stdin)
    let saved = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--store", env.store().to_str().unwrap(), "save", "tomcat:latest", "-o", "-"])
        .output()
        .unwrap();
    assert!(saved.status.success());
    let r = env.with_stdin(&["--store", "s3", "load"], &saved.stdout);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Loaded image: tomcat:latest\n");
    let r = env.with_stdin(&["--store", "s3", "inspect", "tomcat:latest"], b"");
    assert_eq!(json(&r.stdout)[0]["Id"], id);
    // The file is complete and readable, and no temp file is left beside it.
    env.ok(&["save", &id[7..19], "-o", "byid.tar"]);
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strata-save"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let r = env.run(&["--store", "s4", "load", "-i", "byid.tar"]);
    assert_eq!(r.stdout, format!("Loaded image ID: {id}\n"));
}

#[test]
fn save_and_export_write_into_a_fifo_or_device_never_replacing_it() {
    use std::os::unix::fs::FileTypeExt;
    let (env, id) = with_base();
    let fifo = env.path("pipe");
    for args in [
        &["save", "tomcat:latest", "-o"][..],
        &["save", "--format", "oci-archive", "tomcat:latest", "-o"],
        &["export", "tomcat:latest", "-o"],
    ] {
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o600), 0)
            .unwrap();
        // The reader: what `docker save -o /dev/stdout | ...` or a named pipe gets.
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let mut full = args.to_vec();
        let path = fifo.to_str().unwrap();
        full.push(path);
        env.ok(&full);
        let bytes = reader.join().unwrap();
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "{args:?} replaced the FIFO");
        // A whole tar came through: it loads (archives) or lists (export).
        if args[0] == "save" {
            std::fs::write(env.path("got.tar"), &bytes).unwrap();
            let r = env.run(&["--store", "s5", "load", "-q", "-i", "got.tar"]);
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
            assert_eq!(env.run(&["--store", "s5", "inspect", "tomcat:latest"]).code, 0);
            assert!(env.ok(&["--store", "s5", "images", "-q", "--no-trunc"]).contains(&id));
        } else {
            let names: Vec<String> = tar::Archive::new(&bytes[..])
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
                .collect();
            assert!(names.iter().any(|n| n.ends_with("bin/catalina.sh")), "{names:?}");
        }
        std::fs::remove_file(&fifo).unwrap();
    }
    // A directory is an error, and nothing is written.
    std::fs::create_dir(env.path("adir")).unwrap();
    let err = env.fails(&["export", "tomcat:latest", "-o", "adir"], 1);
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn import_from_tar_stdin_and_append_config() {
    let env = Env::new();
    write_tar(&env.path("l.tar"), &[Entry::Dir("etc"), Entry::File("etc/motd", b"hello\n")]);
    let tar = std::fs::read(env.path("l.tar")).unwrap();
    // a tar file, with -c and -m
    let id1 = env.ok(&["import", "l.tar", "base:1", "-c", "CMD [\"/bin/sh\"]", "-m", "from a tar"]).trim().to_owned();
    let i = env.inspect("base:1");
    assert_eq!(i[0]["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(i[0]["Comment"], "from a tar");
    // the same tar on stdin
    let r = env.with_stdin(&["import", "-", "base:2"], &tar);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.inspect("base:2")[0]["RootFS"], i[0]["RootFS"]);
    // append a directory, then a gzip tar
    std::fs::create_dir_all(env.path("extra/opt")).unwrap();
    std::fs::write(env.path("extra/opt/tool"), "t").unwrap();
    env.ok(&["append", "base:1", "extra", "base:3", "-m", "tools"]);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "opt/patch", &b"p\n"[..]).unwrap();
    std::fs::write(env.path("patch.tar.gz"), b.into_inner().unwrap().finish().unwrap()).unwrap();
    env.ok(&["append", "base:3", "patch.tar.gz", "base:4"]);
    let i4 = env.inspect("base:4");
    assert_eq!(i4[0]["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    env.ok(&["unpack", "--raw", "base:4", "u"]);
    assert_eq!(std::fs::read_to_string(env.path("u/etc/motd")).unwrap(), "hello\n");
    assert_eq!(std::fs::read_to_string(env.path("u/opt/tool")).unwrap(), "t");
    assert_eq!(std::fs::read_to_string(env.path("u/opt/patch")).unwrap(), "p\n");
    // config: no new layer, an empty-layer history entry
    env.ok(&["config", "base:4", "base:5", "-c", "USER nobody", "-c", "LABEL a=b", "-a", "me"]);
    let i5 = env.inspect("base:5");
    assert_eq!(i5[0]["RootFS"], i4[0]["RootFS"]);
    assert_eq!(i5[0]["Config"]["User"], "nobody");
    assert_eq!(i5[0]["Config"]["Labels"]["a"], "b");
    let h = json(&env.ok(&["history", "--json", "base:5"]));
    assert_eq!(h[0]["EmptyLayer"], true);
    assert_eq!(h[0]["Author"], "me");
    assert_ne!(env.image_id("base:5"), id1);
}

#[test]
fn merged_view_commands_ls_cat_export_layers_flatten() {
    let (env, _) = with_base();
    // A second layer that overwrites a file: the first version's bytes are wasted.
    std::fs::create_dir_all(env.path("extra/bin")).unwrap();
    std::fs::write(env.path("extra/bin/catalina.sh"), "#!/bin/sh\necho run v2\n").unwrap();
    env.ok(&["append", "tomcat:latest", "extra", "tomcat:2"]);

    // ls: a directory, a single file, JSON.
    let ls = env.ok(&["ls", "tomcat:2", "/"]);
    assert!(ls.contains("webapps.dist") && ls.contains("bin"), "{ls}");
    let ls = env.ok(&["ls", "tomcat:2", "/bin/catalina.sh"]);
    assert!(ls.contains("-rw-r--r--") && ls.contains("catalina.sh"), "{ls}");
    let js = json(&env.ok(&["--json", "ls", "tomcat:2", "/webapps.dist/ROOT"]));
    assert_eq!(js[0]["Path"], "/webapps.dist/ROOT/index.html");
    assert_eq!(js[0]["Type"], "file");
    assert_eq!(js[0]["Size"], 16);

    // cat reads the top-most version.
    assert_eq!(env.ok(&["cat", "tomcat:2", "/bin/catalina.sh"]), "#!/bin/sh\necho run v2\n");
    assert_eq!(env.ok(&["cat", "tomcat:latest", "bin/catalina.sh"]), "#!/bin/sh\necho run\n");
    let err = env.fails(&["cat", "tomcat:2", "/nope"], 1);
    assert!(err.contains("nope"), "{err}");
    let err = env.fails(&["cat", "tomcat:2", "/bin"], 1);
    assert!(err.contains("bin"), "{err}");

    // export: one plain tar of the merged tree, which tar lists.
    env.ok(&["export", "tomcat:2", "-o", "x.tar"]);
    let listing = std::process::Command::new("tar").arg("-tf").arg(env.path("x.tar")).output().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("webapps.dist/ROOT/index.html"), "{listing}");
    assert_eq!(listing.matches("bin/catalina.sh").count(), 1, "{listing}");

    // layers: the overwritten catalina.sh of layer 1 is wasted.
    let a = json(&env.ok(&["--json", "layers", "tomcat:2"]));
    assert_eq!(a["layers"].as_array().unwrap().len(), 2);
    assert_eq!(a["layers"][0]["bytes_wasted"], "#!/bin/sh\necho run\n".len());
    assert_eq!(a["layers"][1]["bytes_wasted"], 0);
    assert!(a["efficiency"].as_f64().unwrap() < 1.0);
    let table = env.ok(&["layers", "tomcat:2"]);
    assert!(table.contains("efficiency"), "{table}");

    // flatten: one layer, the same tree, history kept.
    env.ok(&["flatten", "tomcat:2", "flat:1"]);
    let i = env.inspect("flat:1");
    assert_eq!(i[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let h = json(&env.ok(&["history", "--json", "flat:1"]));
    assert_eq!(h.as_array().unwrap().len(), 3);
    assert_eq!(h[1]["EmptyLayer"], true);
    env.ok(&["unpack", "--raw", "flat:1", "u"]);
    assert_eq!(std::fs::read_to_string(env.path("u/bin/catalina.sh")).unwrap(), "#!/bin/sh\necho run v2\n");
    assert_eq!(std::fs::read_to_string(env.path("u/webapps.dist/ROOT/index.html")).unwrap(), "<h1>tomcat</h1>\n");

    // Missing refs fail cleanly, and export writes nothing.
    for args in [
        &["ls", "nope:1"][..],
        &["cat", "nope:1", "/x"],
        &["export", "nope:1", "-o", "y.tar"],
        &["layers", "nope:1"],
        &["flatten", "nope:1", "z:1"],
    ] {
        let err = env.fails(args, 1);
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!env.path("y.tar").exists());
}

#[test]
fn completions_and_help() {
    let env = Env::new();
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef strata"), ("fish", "complete -c strata")] {
        let out = env.ok(&["completions", shell]);
        assert!(out.contains(marker), "{shell}: {}", &out[..out.len().min(200)]);
        assert!(out.contains("unpack") && (out.contains("--store") || out.contains("-l store")), "{shell}");
    }
    let commands = [
        "images",
        "inspect",
        "history",
        "tag",
        "rmi",
        "gc",
        "fsck",
        "unpack",
        "diff",
        "commit",
        "save",
        "load",
        "import",
        "export",
        "ls",
        "cat",
        "layers",
        "flatten",
        "sbom",
        "scan",
        "append",
        "config",
        "pull",
        "push",
        "login",
        "completions",
    ];
    let top = env.ok(&["--help"]);
    for c in commands {
        assert!(top.contains(&format!("  {c}")), "--help lacks {c}");
        let help = env.ok(&[c, "--help"]);
        assert!(help.contains("Example"), "{c} --help has no example:\n{help}");
        assert!(help.contains(&format!("strata {c}")), "{c} --help example does not use it:\n{help}");
    }
    assert!(env.ok(&["--version"]).starts_with("strata "));
}
