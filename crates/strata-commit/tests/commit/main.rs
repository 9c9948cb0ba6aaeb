//! strata-commit: what a commit writes, for each source of changes.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use strata_commit::{Base, CommitOptions, Committed, Error, Source, commit};
use strata_spec::{Family, ImageConfig, Manifest, MediaType};
use strata_store::{Backend, BlobStore, MAX_DOCUMENT_SIZE, MemoryStore, OciDir};

fn tree(root: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn base_of(store: &dyn Backend, c: &Committed, name: &str) -> Base {
    let bytes = store.read_descriptor(&c.manifest, MAX_DOCUMENT_SIZE).unwrap();
    let manifest = Manifest::from_slice_as(&bytes, &c.manifest.media_type).unwrap();
    let cbytes = store.read_descriptor(&manifest.config, MAX_DOCUMENT_SIZE).unwrap();
    Base {
        descriptor: c.manifest.clone(),
        manifest,
        config: ImageConfig::from_slice(&cbytes).unwrap(),
        name: Some(name.to_owned()),
    }
}

fn import(store: &dyn Backend, files: &[(&str, &str)], opts: CommitOptions) -> (tempfile::TempDir, Committed) {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), files);
    let c = commit(store, None, Source::Tree { root: dir.path() }, &opts).unwrap();
    (dir, c)
}

#[test]
fn scratch_import_writes_layer_config_manifest_and_tag() {
    let store = MemoryStore::new();
    let opts = CommitOptions::default().message("imported").created(at(1_700_000_000)).tag("tomcat:latest");
    let (_d, c) = import(&store, &[("webapps.dist/ROOT/index.html", "<h1>hi</h1>")], opts);
    let layer = c.layer.as_ref().expect("a layer");
    assert!(store.contains(&layer.digest).unwrap());
    assert_eq!(c.config.rootfs.diff_ids, vec![layer.diff_id.clone()]);
    assert_eq!(c.config.history().len(), 1);
    assert_eq!(c.config.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(c.config.comment.as_deref(), Some("imported"));
    assert_eq!(c.manifest.media_type, MediaType::OciManifest);
    assert_eq!(store.resolve_ref("tomcat:latest").unwrap().digest, c.manifest.digest);
    // The stored config is exactly the returned one, and the manifest points at it.
    let base = base_of(&store, &c, "tomcat:latest");
    assert_eq!(base.config, c.config);
    assert_eq!(base.manifest.config.digest, c.config_digest);
    assert_eq!(base.manifest.layers[0].media_type, MediaType::OciLayerGzip);
    // The layer's record: its diff_id, and its size as docker reports it (the content).
    let record = store.layer_record(&layer.digest).unwrap().expect("a layer record");
    assert_eq!(record.diff_id, layer.diff_id);
    assert_eq!(record.size, "<h1>hi</h1>".len() as u64);
    assert_eq!(record.size, layer.content_size);
    assert!(store.fsck().unwrap().is_clean());
}

#[test]
fn trees_commit_appends_layer_history_author_comment() {
    let store = MemoryStore::new();
    let (lower, first) = import(&store, &[("a", "1"), ("dir/b", "2")], CommitOptions::default().created(at(1000)));
    let base = base_of(&store, &first, "base:1");

    let upper = tempfile::tempdir().unwrap();
    tree(upper.path(), &[("a", "1"), ("dir/c", "3")]);
    // Same metadata for the unchanged file, so only dir/b (deleted) and dir/c (added) differ.
    let m = fs::metadata(lower.path().join("a")).unwrap();
    fs::File::options().write(true).open(upper.path().join("a")).unwrap().set_modified(m.modified().unwrap()).unwrap();

    let opts = CommitOptions::default()
        .message("edit webapps dir")
        .author("xiao")
        .created(at(2000))
        .change("ENV A=1")
        .unwrap()
        .tag("tomcat02:1.0");
    let c = commit(&store, Some(&base), Source::Trees { lower: lower.path(), upper: upper.path() }, &opts).unwrap();
    assert_eq!(c.config.rootfs.diff_ids.len(), 2);
    assert_eq!(c.config.rootfs.diff_ids[0], first.config.rootfs.diff_ids[0]);
    let h = c.config.history();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].author.as_deref(), Some("xiao"));
    assert_eq!(h[1].comment.as_deref(), Some("edit webapps dir"));
    assert!(h[1].created_by.as_deref().unwrap().contains("ENV A=1"));
    assert_eq!(c.config.author.as_deref(), Some("xiao"));
    assert_eq!(c.config.config.as_ref().unwrap().env.as_deref(), Some(&["A=1".to_string()][..]));
    let stored = base_of(&store, &c, "tomcat02:1.0");
    assert_eq!(stored.manifest.layers.len(), 2);
    let ann = stored.manifest.annotations.as_ref().unwrap();
    assert_eq!(ann[strata_commit::ANNOTATION_BASE_DIGEST], first.manifest.digest.to_string());
    assert_eq!(ann[strata_commit::ANNOTATION_BASE_NAME], "docker.io/library/base:1");
}

#[test]
fn empty_diff_adds_an_empty_layer_entry_and_no_layer() {
    let store = MemoryStore::new();
    let (dir, first) = import(&store, &[("a", "1")], CommitOptions::default().created(at(1000)));
    let base = base_of(&store, &first, "b");
    let opts = CommitOptions::default().change("CMD [\"sh\"]").unwrap().created(at(2000));
    let c = commit(&store, Some(&base), Source::Trees { lower: dir.path(), upper: dir.path() }, &opts).unwrap();
    assert!(c.layer.is_none());
    assert_eq!(c.config.rootfs.diff_ids.len(), 1);
    assert_eq!(c.config.history().len(), 2);
    assert!(c.config.history()[1].is_empty_layer());
    assert_eq!(base_of(&store, &c, "x").manifest.layers.len(), 1);
    c.config.check_history().unwrap();
}

#[test]
fn unknown_and_docker_only_fields_of_the_base_survive() {
    let store = MemoryStore::new();
    let (dir, first) = import(&store, &[("a", "1")], CommitOptions::default().format(Family::Docker));
    assert_eq!(first.manifest.media_type, MediaType::DockerManifest);
    let mut base = base_of(&store, &first, "b");
    base.config.extra.insert("docker_version".into(), "24.0.7".into());
    base.config.extra.insert("x-future".into(), serde_json::json!({"k": [1, null]}));
    let cc = base.config.config_mut();
    cc.healthcheck = Some(serde_json::json!({"Test": ["CMD", "true"]}));
    cc.nulls.insert("Entrypoint");
    cc.extra.insert("Hostname".into(), "abc".into());

    let c =
        commit(&store, Some(&base), Source::Trees { lower: dir.path(), upper: dir.path() }, &CommitOptions::default())
            .unwrap();
    // Docker stays Docker.
    assert_eq!(c.manifest.media_type, MediaType::DockerManifest);
    let stored = base_of(&store, &c, "x");
    assert_eq!(stored.manifest.config.media_type, MediaType::DockerConfig);
    assert_eq!(stored.manifest.layers[0].media_type, MediaType::DockerLayerGzip);
    let json: serde_json::Value = serde_json::from_slice(&stored.config.to_canonical_json()).unwrap();
    assert_eq!(json["docker_version"], "24.0.7");
    assert_eq!(json["x-future"]["k"][1], serde_json::Value::Null);
    assert_eq!(json["config"]["Healthcheck"]["Test"][1], "true");
    assert_eq!(json["config"]["Entrypoint"], serde_json::Value::Null);
    assert_eq!(json["config"]["Hostname"], "abc");

    // Asked for OCI, a Docker base converts.
    let c2 = commit(
        &store,
        Some(&stored),
        Source::Trees { lower: dir.path(), upper: dir.path() },
        &CommitOptions::default().format(Family::Oci),
    )
    .unwrap();
    let oci = base_of(&store, &c2, "y");
    assert_eq!(c2.manifest.media_type, MediaType::OciManifest);
    assert_eq!(oci.manifest.config.media_type, MediaType::OciConfig);
    assert_eq!(oci.manifest.layers[0].media_type, MediaType::OciLayerGzip);
}

#[test]
fn same_inputs_give_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &[("x/y", "z"), ("b", "bb")]);
    let mut w = strata_commit::WriteOptions::default();
    w.mtime_clamp = Some(1_600_000_000);
    let opts = CommitOptions::default().created(at(1_600_000_000)).author("a").write_options(w);
    let digests: Vec<_> = (0..2)
        .map(|_| {
            let store = MemoryStore::new();
            commit(&store, None, Source::Tree { root: dir.path() }, &opts).unwrap().manifest.digest
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn bad_changes_fail_before_anything_is_written() {
    let e = CommitOptions::default().change("RUN rm -rf /").unwrap_err();
    assert!(matches!(e, Error::Change(_)), "{e}");
    assert_eq!(e.to_string(), "run is not a valid change command");
    // One that parses but cannot apply (its variable is unset): no blob is written.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "f").unwrap();
    let store = MemoryStore::new();
    let opts = CommitOptions::default().change("USER ${NOPE:?unset}").unwrap();
    let e = commit(&store, None, Source::Tree { root: dir.path() }, &opts).unwrap_err();
    assert_eq!(e.to_string(), "failed to process \"${NOPE:?unset}\": NOPE: unset");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_tar_source_keeps_its_bytes_as_the_diff_id() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "etc/motd", &b"hi\n"[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = OciDir::create(tmp.path().join("l")).unwrap();
    let c =
        commit(&store, None, Source::Tar { reader: &mut &bytes[..], lower: None }, &CommitOptions::default()).unwrap();
    assert_eq!(c.config.rootfs.diff_ids[0], strata_spec::Digest::sha256_of(&bytes));
    assert!(
        commit(&store, None, Source::Tar { reader: &mut &b"not a tar"[..], lower: None }, &CommitOptions::default())
            .is_err()
    );
    assert!(store.fsck().unwrap().is_clean());
}

#[test]
fn a_given_runtime_config_replaces_the_base_one_before_changes() {
    let store = MemoryStore::new();
    let (_d, c) = import(&store, &[("a", "1")], CommitOptions::default().change("ENV A=1").unwrap());
    let base = base_of(&store, &c, "base");
    let wanted = strata_spec::ContainerConfig {
        shell: Some(vec!["/bin/bash".into(), "-c".into()]),
        healthcheck: Some(serde_json::json!({"Test": ["NONE"]})),
        ..Default::default()
    };
    let opts = CommitOptions::default().config(wanted).change("USER app").unwrap();
    let next = commit(&store, Some(&base), Source::ConfigOnly, &opts).unwrap();
    let cfg = next.config.config.as_ref().unwrap();
    // The base's ENV is gone (replaced), the change applied on top.
    assert_eq!(cfg.env, None);
    assert_eq!(cfg.shell.as_deref(), Some(&["/bin/bash".to_owned(), "-c".to_owned()][..]));
    assert_eq!(cfg.healthcheck, Some(serde_json::json!({"Test": ["NONE"]})));
    assert_eq!(cfg.user.as_deref(), Some("app"));
    assert_eq!(next.config.history().len(), 2);
}

#[test]
fn typed_setters_set_the_config_as_given_after_the_changes() {
    let store = MemoryStore::new();
    let opts = CommitOptions::default()
        .change("ENV HOME=/root")
        .unwrap()
        .change("CMD [\"old\"]")
        .unwrap()
        .env("GREETING", "$HOME stays literal")
        .env("HOME", "/home/app")
        .label("org.example.team", "images")
        .workdir("/srv")
        .workdir("app")
        .user("1000:1000")
        .expose(8080)
        .expose_udp(53)
        .volume("/data")
        .entrypoint(["/bin/server", "--port", "8080"]);
    let (_d, c) = import(&store, &[("srv/app/server", "x")], opts);
    let cfg = c.config.config.as_ref().expect("a runtime config");
    assert_eq!(
        cfg.env.as_deref(),
        Some(&["HOME=/home/app".to_owned(), "GREETING=$HOME stays literal".to_owned()][..]),
        "a typed value is not expanded, and a later one replaces an earlier one in place"
    );
    assert_eq!(cfg.labels.as_ref().unwrap()["org.example.team"], "images");
    assert_eq!(cfg.working_dir.as_deref(), Some("/srv/app"));
    assert_eq!(cfg.user.as_deref(), Some("1000:1000"));
    let ports: Vec<&String> = cfg.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "8080/tcp"]);
    assert!(cfg.volumes.as_ref().unwrap().contains_key("/data"));
    assert_eq!(cfg.entrypoint.as_deref(), Some(&["/bin/server".to_owned(), "--port".into(), "8080".into()][..]));
    // The CMD came from `changes`, before the settings: the entrypoint keeps it, as a
    // Dockerfile's ENTRYPOINT after CMD does.
    assert_eq!(cfg.cmd.as_deref(), Some(&["old".to_owned()][..]));

    // Set alone on a base with a command, an entrypoint drops the base's command.
    let base = base_of(&store, &c, "base");
    let next = commit(
        &store,
        Some(&base),
        Source::ConfigOnly,
        &CommitOptions::default().entrypoint(["/bin/other"]).cmd(["--flag"]),
    )
    .unwrap();
    let cfg = next.config.config.as_ref().unwrap();
    assert_eq!(cfg.entrypoint.as_deref(), Some(&["/bin/other".to_owned()][..]));
    assert_eq!(cfg.cmd.as_deref(), Some(&["--flag".to_owned()][..]), "a CMD set after the entrypoint stays");
}
