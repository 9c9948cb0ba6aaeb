//! What the image model promises: name resolution, tags and removal, listing, inspect,
//! history, multi-platform selection.

use std::collections::BTreeSet;
use std::fs;

use strata_image::{
    ArchiveFormat, Conflict, Digest, Error, Image, LayerInput, Platform, RemoveOptions, RemoveReport, Removed, Store,
};
use strata_spec::{Descriptor, Index, MediaType};

use crate::fixture::{content_bytes, opts, scratch, tomcat_store, write_files};

#[test]
fn names_resolve_by_tag_reference_digest_and_id() {
    let tmp = scratch();
    let (store, img) = tomcat_store(tmp.path());
    // `tomcat` is stored in its familiar, normalised form.
    let names: Vec<String> = store.backend().refs().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["tomcat:latest"]);
    let id = img.id().clone();
    let manifest = img.digest().clone();
    let by = |name: &str| store.image(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    for name in [
        "tomcat".to_owned(),
        "tomcat:latest".to_owned(),
        "docker.io/library/tomcat".to_owned(),
        "docker.io/library/tomcat:latest".to_owned(),
        "library/tomcat".to_owned(),
        manifest.to_string(),
        format!("tomcat@{manifest}"),
        id.to_string(),
        id.hex()[..12].to_owned(),
        format!("sha256:{}", &id.hex()[..12]),
        // Any length, as docker: one image here.
        id.hex()[..1].to_owned(),
    ] {
        let found = by(&name);
        assert_eq!(found.id(), &id, "{name}");
        assert_eq!(found.digest(), &manifest, "{name}");
    }
    // A tag lookup remembers the name; a digest lookup of a tagged image finds it too.
    assert_eq!(by("tomcat").name(), Some("tomcat:latest"));
    assert_eq!(by(manifest.as_str()).name(), Some("tomcat:latest"));

    // Things that do not exist: typed errors naming what was asked for.
    let absent = Digest::sha256_of(b"no such image");
    let unused_prefix = (0..16u32)
        .map(|i| format!("{i:x}{i:x}{i:x}{i:x}{i:x}"))
        .find(|p| !id.hex().starts_with(p.as_str()) && !manifest.hex().starts_with(p.as_str()))
        .unwrap();
    // The start of a manifest digest is not an image id (docker has none); whole
    // manifest digests are found.
    let manifest_start = manifest.hex()[..10].to_owned();
    for name in ["nope", "tomcat:2", "other/tomcat", absent.as_str(), &unused_prefix, &manifest_start] {
        match store.image(name) {
            Err(Error::ImageNotFound(n)) => assert_eq!(n, name),
            other => panic!("{name}: expected ImageNotFound, got {other:?}"),
        }
    }
    // Not a reference at all: docker's reason.
    match store.image("Tomcat") {
        Err(Error::Spec(e)) => {
            assert_eq!(e.to_string(), "invalid reference format: repository name (library/Tomcat) must be lowercase")
        }
        other => panic!("expected an invalid reference, got {other:?}"),
    }
}

#[test]
fn an_ambiguous_short_id_is_an_error_and_a_longer_one_resolves() {
    // Config-only images differ by their creation time; make them until two ids share
    // their first 4 hex digits (deterministic: the times are fixed).
    let tmp = scratch();
    let store = Store::in_memory();
    let base = crate::fixture::tomcat_image(&store, tmp.path());
    let mut seen: std::collections::BTreeMap<String, Digest> = Default::default();
    let (a, b) = (0..4000u64)
        .find_map(|i| {
            let img = base.with_config(&opts(1_700_000_000 + i).tag(format!("v:{i}"))).unwrap();
            let p = img.id().hex()[..4].to_owned();
            seen.insert(p, img.id().clone()).map(|other| (other, img.id().clone()))
        })
        .expect("a 4-hex-digit collision among 4000 ids");
    let prefix = &a.hex()[..4];
    match store.image(prefix) {
        Err(Error::AmbiguousId { prefix: p, count }) => {
            assert_eq!(p, prefix);
            assert!(count >= 2);
        }
        other => panic!("expected AmbiguousId, got {other:?}"),
    }
    // The shortest unique prefixes resolve to each.
    let common = a.hex().chars().zip(b.hex().chars()).take_while(|(x, y)| x == y).count();
    assert_eq!(store.image(&a.hex()[..=common]).unwrap().id(), &a);
    assert_eq!(store.image(&b.hex()[..=common]).unwrap().id(), &b);
}

fn removed(r: &RemoveReport) -> Vec<String> {
    r.removed
        .iter()
        .map(|x| match x {
            Removed::Untagged(n) => format!("Untagged: {n}"),
            Removed::Image(d) => format!("Deleted: {d}"),
            Removed::Layer(d) => format!("Deleted layer: {d}"),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn chain_top(img: &Image) -> String {
    format!("Deleted layer: {}", img.config().rootfs.chain_ids().last().unwrap())
}

fn failed(r: &RemoveReport) -> Vec<String> {
    r.failed.iter().map(|(n, e)| format!("{n}: {e}")).collect()
}

#[test]
fn tag_untag_and_rmi_remove_exactly_what_became_unreachable() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let layer_dir = |name: &str| {
        let d = tmp.path().join(name);
        write_files(&d, &[(&format!("{name}/file"), name)]);
        d
    };
    let (d1, d2) = (layer_dir("one"), layer_dir("two"));
    let one = base.append(LayerInput::Dir(&d1), &opts(1_700_000_010).tag("one")).unwrap();
    let two = base.append(LayerInput::Dir(&d2), &opts(1_700_000_020).tag("two")).unwrap();
    assert_eq!(store.tag(&one, "one:extra").unwrap(), "one:extra");
    assert_eq!(store.tag(&one, "docker.io/library/one:v2").unwrap(), "one:v2");
    let blobs = || -> BTreeSet<Digest> { store.backend().list().unwrap().into_iter().collect() };
    let all = blobs();
    let rmi = |names: &[&str], force: bool| store.remove(names, &RemoveOptions::default().force(force)).unwrap();

    // Removing one of several tags removes only the tag.
    let r = rmi(&["one:extra"], false);
    assert_eq!(removed(&r), ["Untagged: one:extra"]);
    assert!(r.gc.is_none() && r.failed.is_empty());
    assert_eq!(blobs(), all);
    assert!(matches!(store.untag("one:extra"), Err(Error::ImageNotFound(_))));
    assert_eq!(store.untag("one:v2").unwrap().0, "one:v2");
    assert_eq!(store.image("one").unwrap().id(), one.id());

    // Removing the last tag deletes the image; what only it used goes, the shared base
    // layer (and its chain) stays.
    let r = rmi(&["one"], false);
    assert_eq!(removed(&r), ["Untagged: one:latest".to_owned(), format!("Deleted: {}", one.id()), chain_top(&one)]);
    let gone: BTreeSet<Digest> = r.gc.unwrap().removed.into_iter().map(|(d, _)| d).collect();
    let only_one: BTreeSet<Digest> =
        [one.digest().clone(), one.id().clone(), one.layers()[1].digest.clone()].into_iter().collect();
    assert_eq!(gone, only_one);
    assert_eq!(blobs(), all.difference(&only_one).cloned().collect());
    assert!(blobs().contains(&base.layers()[0].digest));

    // By short id, an image two tags name is refused without force, and nothing changes.
    store.tag(&two, "two:again").unwrap();
    let short = &two.id().hex()[..12];
    let r = rmi(&[short], false);
    assert!(r.removed.is_empty() && r.gc.is_none());
    assert_eq!(
        failed(&r),
        [format!(
            "{short}: conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )]
    );
    assert!(matches!(r.failed[0].1, Error::Conflict { reason: Conflict::MultipleTags, .. }));
    // With force every tag goes (in docker's order), then the image; a later name for
    // the same image is no longer there, and the names before it are removed all the same.
    let r = rmi(&[short, "two:again"], true);
    assert_eq!(
        removed(&r),
        [
            "Untagged: two:again".to_owned(),
            "Untagged: two:latest".into(),
            format!("Deleted: {}", two.id()),
            chain_top(&two)
        ]
    );
    assert_eq!(failed(&r), ["two:again: No such image: two:again"]);
    let gone: BTreeSet<Digest> = r.gc.unwrap().removed.into_iter().map(|(d, _)| d).collect();
    assert_eq!(gone, [two.digest().clone(), two.id().clone(), two.layers()[1].digest.clone()].into());

    // What is left is the base, whole.
    let left: Vec<String> = store.backend().refs().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(left, ["tomcat:latest"]);
    assert!(store.fsck().unwrap().is_clean());
    let c = store.image("tomcat").unwrap().unpack(tmp.path().join("bundle")).unwrap();
    assert!(c.rootfs().join("usr/local/tomcat/webapps.dist/ROOT/index.html").is_file());
    assert!(matches!(&rmi(&["two"], false).failed[0].1, Error::ImageNotFound(_)));
}

/// An image made on top of another (a commit, an append, a config change) is its child:
/// the parent is never deleted while the child is there (not even with force), its last
/// tag only untags it, and deleting the child deletes the untagged parent (unless
/// `prune` is off).
#[test]
fn parents_stay_while_children_need_them() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let d = tmp.path().join("extra");
    write_files(&d, &[("extra/file", "x")]);
    let child = base.append(LayerInput::Dir(&d), &opts(1_700_000_010).tag("child")).unwrap();
    let grandchild = child.with_config(&opts(1_700_000_020).change("USER app").unwrap().tag("grandchild")).unwrap();
    assert!(child.config().is_child_of(base.config()) && grandchild.config().is_child_of(base.config()));
    assert_eq!(grandchild.parent().unwrap().as_ref(), Some(child.id()));
    let rmi = |names: &[&str], opts: RemoveOptions| store.remove(names, &opts).unwrap();
    let all = store.backend().list().unwrap();

    for force in [false, true] {
        let r = rmi(&[base.id().as_str()], RemoveOptions::default().force(force));
        let short = base.id().short();
        assert_eq!(
            failed(&r),
            [format!(
                "{}: conflict: unable to delete {short} (cannot be forced) - image has dependent child images",
                base.id()
            )]
        );
        assert!(matches!(r.failed[0].1, Error::Conflict { reason: Conflict::DependentChildren, .. }));
    }
    // The last tag goes; the image stays, untagged, and keeps its blobs.
    let r = rmi(&["tomcat"], RemoveOptions::default());
    assert_eq!(removed(&r), ["Untagged: tomcat:latest"]);
    assert_eq!(store.image(base.id().as_str()).unwrap().id(), base.id());
    let rows: Vec<(String, String)> = store.images().unwrap().into_iter().map(|s| (s.repository, s.tag)).collect();
    assert!(rows.contains(&("<none>".into(), "<none>".into())), "{rows:?}");
    assert_eq!(store.backend().list().unwrap(), all);
    // The grandchild's parent is tagged: it goes alone.
    store.tag(&child, "child:2").unwrap();
    let r = rmi(&["grandchild"], RemoveOptions::default().prune(false));
    assert_eq!(removed(&r), ["Untagged: grandchild:latest".to_owned(), format!("Deleted: {}", grandchild.id())]);
    // A tagged parent is never pruned: removing the child's tags one by one deletes it
    // with the last, then its untagged parent (the base) with its layers.
    assert_eq!(removed(&rmi(&["child"], RemoveOptions::default())), ["Untagged: child:latest"]);
    let r = rmi(&["child:2"], RemoveOptions::default());
    let chains = child.config().rootfs.chain_ids();
    assert_eq!(
        removed(&r),
        [
            "Untagged: child:2".to_owned(),
            format!("Deleted: {}", child.id()),
            format!("Deleted layer: {}", chains[1]),
            format!("Deleted: {}", base.id()),
            format!("Deleted layer: {}", chains[0]),
        ]
    );
    assert!(store.images().unwrap().is_empty());
    assert!(store.backend().list().unwrap().is_empty());
}

#[test]
fn rmi_works_on_an_in_memory_store() {
    let tmp = scratch();
    let store = Store::in_memory();
    let base = crate::fixture::tomcat_image(&store, tmp.path());
    let r = store.remove(&["tomcat"], &RemoveOptions::default()).unwrap();
    assert_eq!(
        removed(&r),
        ["Untagged: tomcat:latest".to_owned(), format!("Deleted: {}", base.id()), chain_top(&base)]
    );
    assert!(store.backend().list().unwrap().is_empty());
}

#[test]
fn no_prune_keeps_the_untagged_parent() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let child = base.with_config(&opts(1_700_000_010).change("USER app").unwrap().tag("child")).unwrap();
    store.remove(&["tomcat"], &RemoveOptions::default()).unwrap();
    let r = store.remove(&["child"], &RemoveOptions::default().prune(false)).unwrap();
    // Same layers as its parent: no layer stack goes with the child.
    assert_eq!(removed(&r), ["Untagged: child:latest".to_owned(), format!("Deleted: {}", child.id())]);
    let left: Vec<Option<Digest>> = store.images().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(left, [Some(base.id().clone())]);
    // Now without children, by id: deleted with its layer.
    let r = store.remove(&[&base.id().hex()[..3]], &RemoveOptions::default()).unwrap();
    assert_eq!(removed(&r), [format!("Deleted: {}", base.id()), chain_top(&base)]);
}

#[test]
fn images_lists_every_entry_untagged_ones_too() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    store.tag(&base, "127.0.0.1:5000/tomcat:8").unwrap();
    // An image saved by id has no tags: loaded, it is an untagged index entry.
    let archive = store.save(&[&base.id().hex()[..12]], ArchiveFormat::DockerArchive, Vec::new()).unwrap();
    let other = Store::create(tmp.path().join("other")).unwrap();
    let loaded = other.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(loaded[0].names.is_empty());
    assert_eq!(&loaded[0].id, base.id());

    let list = store.images().unwrap();
    let rows: Vec<(&str, &str)> = list.iter().map(|s| (s.repository.as_str(), s.tag.as_str())).collect();
    assert_eq!(rows, [("tomcat", "latest"), ("127.0.0.1:5000/tomcat", "8")]);
    for s in &list {
        assert_eq!(s.id.as_ref(), Some(base.id()));
        assert_eq!(&s.digest, base.digest());
        assert_eq!(s.size, base.size().unwrap());
        assert_eq!(s.stored_size, base.stored_size());
        assert_eq!(s.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert!(s.problem.is_none());
    }

    let list = other.images().unwrap();
    assert_eq!(list.len(), 1);
    let s = &list[0];
    assert_eq!((s.name.as_deref(), s.repository.as_str(), s.tag.as_str()), (None, "<none>", "<none>"));
    assert_eq!(s.id.as_ref(), Some(base.id()));
    // The untagged image is still reachable by id, and survives GC.
    other.gc(false).unwrap();
    assert_eq!(other.image(&base.id().hex()[..8]).unwrap().id(), base.id());
    // Removing it by id drops the index entry, then its blobs.
    let r = other.remove(&[base.id().as_str()], &RemoveOptions::default()).unwrap();
    assert_eq!(removed(&r), [format!("Deleted: {}", base.id()), chain_top(&base)]);
    assert!(other.images().unwrap().is_empty());
    assert!(other.backend().list().unwrap().is_empty());
}

#[test]
fn inspect_shows_dockers_fields() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let c = base.unpack(tmp.path().join("c")).unwrap();
    let webapps = c.rootfs().join("usr/local/tomcat/webapps");
    fs::copy(webapps.with_file_name("webapps.dist/ROOT/index.html"), webapps.join("index.html")).unwrap();
    let img = c
        .commit(
            &opts(1_700_000_100)
                .message("edit webapps dir")
                .author("xiao")
                .change("ENV CATALINA_HOME=/usr/local/tomcat")
                .unwrap()
                .change(r#"CMD ["catalina.sh", "run"]"#)
                .unwrap()
                .change("EXPOSE 8080")
                .unwrap()
                .tag("tomcat02:1.0"),
        )
        .unwrap();
    let i = img.inspect().unwrap();
    assert_eq!(&i.id, img.id());
    assert_eq!(i.repo_tags, ["tomcat02:1.0"]);
    // Never pulled nor pushed: no registry names, as in docker.
    assert!(i.repo_digests.is_empty(), "{:?}", i.repo_digests);
    assert_eq!(i.parent, base.id().to_string());
    assert_eq!(i.comment, "edit webapps dir");
    assert_eq!(i.created, "2023-11-14T22:15:00Z");
    assert_eq!(i.author, "xiao");
    let host = Platform::host();
    assert_eq!((i.architecture.as_str(), i.os.as_str()), (host.architecture.as_str(), "linux"));
    assert_eq!(i.root_fs.kind, "layers");
    assert_eq!(i.root_fs.layers.len(), 2);
    assert_eq!(i.root_fs.layers[0], base.config().rootfs.diff_ids[0]);
    assert_eq!(i.root_fs.layers, img.config().rootfs.diff_ids);
    // Size: docker's, the content bytes of the layers (counted here by the tar crate);
    // what the blobs take as stored is strata's own key.
    let content: u64 = img.layers().iter().map(|l| content_bytes(&store, l)).sum();
    assert_eq!(i.size, content);
    assert_eq!(content, base.size().unwrap() + "<h1>tomcat</h1>\n".len() as u64);
    let on_disk: u64 = img
        .layers()
        .iter()
        .map(|l| &l.digest)
        .chain([img.id()])
        .map(|d| store.backend().stat(d).unwrap().unwrap())
        .sum();
    assert_eq!(i.strata.stored_size, on_disk);
    assert_eq!(i.strata.ref_names, ["tomcat02:1.0"]);
    assert_eq!(i.graph_driver.name, "oci-layout");
    // Tagged by the commit just now.
    let tagged = strata_spec::time::parse_rfc3339(&i.metadata.last_tag_time).unwrap().0;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - tagged).abs() < 600, "{}", i.metadata.last_tag_time);

    let v = serde_json::to_value(&i).unwrap();
    for key in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Author",
        "Architecture",
        "Os",
        "Config",
        "RootFS",
        "Size",
        "Metadata",
        "GraphDriver",
        "DockerVersion",
        "Descriptor",
        "Strata",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {v:#}");
    }
    // Docker omits these when empty; strata's own keys are under "Strata" only.
    for key in ["Variant", "OsVersion", "Name", "StoredSize", "RefNames"] {
        assert!(v.get(key).is_none(), "{key} in {v:#}");
    }
    assert_eq!(v["Metadata"]["LastTagTime"], i.metadata.last_tag_time.as_str());
    assert_eq!(v["GraphDriver"], serde_json::json!({ "Data": null, "Name": "oci-layout" }));
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"][1], img.config().rootfs.diff_ids[1].as_str());
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["catalina.sh", "run"]));
    assert_eq!(v["Config"]["Env"], serde_json::json!(["CATALINA_HOME=/usr/local/tomcat"]));
    assert!(v["Config"]["ExposedPorts"].get("8080/tcp").is_some(), "{:#}", v["Config"]);
    assert_eq!(v["Config"]["Entrypoint"], serde_json::Value::Null);

    // The base: no parent in the store, its own tag.
    let bi = base.inspect().unwrap();
    assert_eq!(bi.parent, "");
    assert_eq!(bi.repo_tags, ["tomcat:latest"]);
    assert_eq!(bi.author, "fixture");
}

#[test]
fn history_is_newest_first_with_empty_layers_shown() {
    let tmp = scratch();
    let (store, base) = tomcat_store(tmp.path());
    let cfg = base
        .with_config(&opts(1_700_000_050).author("ops").message("set env").change("ENV X=1").unwrap().tag("cfg"))
        .unwrap();
    let c = store.image("cfg").unwrap().unpack(tmp.path().join("c")).unwrap();
    fs::write(c.rootfs().join("etc/motd"), "changed\n").unwrap();
    let top = c.commit(&opts(1_700_000_100).author("xiao").message("edit motd").tag("top")).unwrap();

    let rows = top.history().unwrap();
    assert_eq!(rows.len(), 3);
    // Each step's image where the store has it: the top, the config-only image, the base.
    let images: Vec<Option<&Digest>> = rows.iter().map(|r| r.image.as_ref()).collect();
    assert_eq!(images, [Some(top.id()), Some(cfg.id()), Some(base.id())]);
    let (newest, middle, oldest) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(newest.created_at, "2023-11-14T22:15:00Z");
    assert_eq!((newest.author.as_str(), newest.comment.as_str()), ("xiao", "edit motd"));
    assert!(newest.created_by.starts_with("strata commit"), "{}", newest.created_by);
    assert_eq!(newest.id.as_ref(), Some(&top.config().rootfs.diff_ids[1]));
    // docker's size of the layer: the content of the one file it changed.
    assert_eq!(newest.size, "changed\n".len() as u64);
    assert_eq!(newest.size, content_bytes(&store, &top.layers()[1]));
    assert!(!newest.empty_layer);

    assert!(middle.empty_layer);
    assert_eq!((middle.id.as_ref(), middle.size), (None, 0));
    assert_eq!((middle.author.as_str(), middle.comment.as_str()), ("ops", "set env"));
    assert_eq!(middle.created_by, "strata config --change 'ENV X=1'");

    assert_eq!(oldest.id.as_ref(), Some(&base.config().rootfs.diff_ids[0]));
    assert_eq!(oldest.size, content_bytes(&store, &base.layers()[0]));
    assert_eq!(oldest.size, base.size().unwrap());
    assert!(oldest.created_by.starts_with("strata import"), "{}", oldest.created_by);
    // The config-only image has the base's layers and one more history entry.
    assert_eq!(cfg.layers(), base.layers());
    assert_eq!(cfg.history().unwrap().len(), 2);
    assert_eq!(top.inspect().unwrap().parent, cfg.id().to_string());
}

/// Two images of one tree for two platforms, and an index of both made by hand.
fn two_platform_index(store: &Store, dir: &std::path::Path) -> (strata_image::Image, strata_image::Image) {
    write_files(dir, &[("bin/app", "app\n")]);
    let mut images = Vec::new();
    for (p, secs) in [("linux/amd64", 1_700_000_000), ("linux/arm64/v8", 1_700_000_001)] {
        let mut o = opts(secs);
        o.platform = Some(Platform::parse(p).unwrap());
        images.push(store.import(LayerInput::Dir(dir), &o).unwrap());
    }
    let mut index = Index::new(Some(MediaType::OciIndex));
    for img in &images {
        let mut d = img.descriptor().clone();
        d.annotations = None;
        d.platform = Some(img.config().platform());
        index.manifests.push(d);
    }
    let bytes = index.to_canonical_json();
    let info = store.backend().put_blob(&bytes).unwrap();
    store.backend().set_ref("multi:1", &Descriptor::new(MediaType::OciIndex, info.digest, info.size)).unwrap();
    let arm = images.pop().unwrap();
    (images.pop().unwrap(), arm)
}

#[test]
fn a_multi_platform_index_gives_the_platform_asked_for() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let (amd, arm) = two_platform_index(&store, &tmp.path().join("rootfs"));
    assert_ne!(amd.id(), arm.id());
    let index = store.backend().resolve_ref("multi:1").unwrap();

    let got = store.image_for("multi:1", &Platform::parse("linux/arm64").unwrap()).unwrap();
    assert_eq!(got.id(), arm.id());
    assert_eq!(got.config().architecture, "arm64");
    assert_eq!(got.tag_target().digest, index.digest);
    let got = store.image_for("multi:1", &Platform::parse("linux/amd64").unwrap()).unwrap();
    assert_eq!(got.id(), amd.id());
    // No platform given: this machine's.
    let host = Platform::host();
    let want = if host.architecture == "arm64" { &arm } else { &amd };
    if matches!(host.architecture.as_str(), "amd64" | "arm64") {
        assert_eq!(store.image("multi:1").unwrap().id(), want.id());
    }
    match store.image_for("multi:1", &Platform::parse("linux/s390x").unwrap()) {
        Err(Error::NoMatchingPlatform { platform, available, .. }) => {
            assert_eq!(platform, "linux/s390x");
            assert!(available.contains("linux/amd64") && available.contains("linux/arm64"), "{available}");
        }
        other => panic!("expected NoMatchingPlatform, got {other:?}"),
    }
    // An image picked from the index is tagged in it, and a new tag points at the index.
    let arm_img = store.image_for("multi:1", &Platform::parse("linux/arm64/v8").unwrap()).unwrap();
    assert_eq!(arm_img.inspect().unwrap().repo_tags, ["multi:1"]);
    store.tag(&arm_img, "multi:copy").unwrap();
    assert_eq!(store.backend().resolve_ref("multi:copy").unwrap().digest, index.digest);
    // The child manifests are reachable by digest, and GC keeps both platforms.
    assert_eq!(store.image(arm.digest().as_str()).unwrap().id(), arm.id());
    let gc = store.gc(false).unwrap();
    assert!(gc.removed.is_empty(), "{:?}", gc.removed);
    assert!(store.fsck().unwrap().is_clean());
    // Unpacking the picked image works like any other.
    let c = arm_img.unpack(tmp.path().join("c")).unwrap();
    assert_eq!(fs::read_to_string(c.rootfs().join("bin/app")).unwrap(), "app\n");
}
