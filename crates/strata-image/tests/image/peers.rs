//! Real peers: what strata writes, umoci, oci-image-tool, skopeo and podman read; what
//! skopeo and podman write, strata reads. Each test needs its tools
//! (`strata_testkit::require_tool`). podman runs on storage of its own under the test's
//! temp directory (vfs driver, its own root, runroot and tmpdir, no events, no network),
//! never the machine's.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_image::{ArchiveFormat, Container, Image, LayerInput, Store};
use strata_testkit::{Compare, Tree, require_tool, run};

use crate::fixture::{chmod, chown, law_compare, opts, scratch, set_xattr, tomcat_store, whiteouts_in, write_files};

/// The seed's story: unpack tomcat, change it in every way a layer can say, commit it as
/// `tomcat02:1.0`, then a config-only step on top (an empty layer in the history).
fn committed(tmp: &Path) -> (Store, Container, Image) {
    let (store, base) = tomcat_store(tmp);
    let c = base.unpack(tmp.join("c")).unwrap();
    let r = c.rootfs();
    let tc = r.join("usr/local/tomcat");
    fs::copy(tc.join("webapps.dist/ROOT/index.html"), tc.join("webapps/index.html")).unwrap();
    fs::remove_dir_all(tc.join("webapps.dist")).unwrap();
    fs::remove_file(r.join("etc/motd.link")).unwrap();
    fs::write(r.join("etc/motd"), "welcome to tomcat02\n").unwrap();
    chmod(&r.join("usr/bin/su"), 0o755);
    chown(&tc.join("webapps/index.html"), 1000, 1000);
    set_xattr(&tc.join("webapps/index.html"), "user.edited", b"yes");
    fs::remove_file(tc.join("bin/startup.sh")).unwrap();
    symlink("/usr/local/tomcat/bin/catalina.sh", tc.join("bin/startup.sh")).unwrap();
    fs::hard_link(tc.join("bin/catalina.sh"), r.join("usr/bin/catalina")).unwrap();
    write_files(&r, &[("var/lib/tomcat/work/a/b/c/state", "deep\n")]);
    let img = c
        .commit(
            &opts(1_700_000_100)
                .message("edit webapps dir")
                .author("xiao")
                .change(r#"CMD ["catalina.sh", "run"]"#)
                .unwrap()
                .tag("tomcat02:1.0"),
        )
        .unwrap();
    let img =
        img.with_config(&opts(1_700_000_200).author("ops").change("EXPOSE 8080").unwrap().tag("tomcat02:1.0")).unwrap();
    assert_eq!(img.layers().len(), 2);
    assert_eq!(img.history().unwrap().len(), 3);
    (store, c, img)
}

fn layout(store: &Store) -> &Path {
    store.path().unwrap()
}

#[test]
fn umoci_unpacks_a_strata_commit_to_the_committed_tree() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = scratch();
    let (store, c, _img) = committed(tmp.path());
    let bundle = tmp.path().join("umoci-bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:tomcat02:1.0", layout(&store).display()))
        .arg(&bundle));
    let theirs = Tree::capture(&bundle.join("rootfs")).unwrap();
    assert!(whiteouts_in(&theirs).is_empty(), "{:?}", whiteouts_in(&theirs));
    let ours = Tree::capture(&c.rootfs()).unwrap();
    let d = ours.diff(&theirs, &law_compare());
    assert!(d.is_empty(), "umoci's unpack differs from the container:\n{}", d.join("\n"));
    // And strata's own unpack of the same image agrees with both.
    let mine = tmp.path().join("mine");
    store.image("tomcat02:1.0").unwrap().unpack_raw(&mine, &Default::default()).unwrap();
    assert!(Tree::capture(&mine).unwrap().diff(&theirs, &law_compare()).is_empty());
}

/// `oci-image-tool validate --type image --ref name=TAG LAYOUT`.
///
/// oci-image-tool 1.0.0-rc1 filters `index.json` by ref name with a loop that skips the
/// entry after each one it drops, so with three or more entries it reports "descriptor
/// ... is not unique". So each ref is validated in a copy of the layout (blobs hard
/// linked) whose `index.json` holds that ref's entry alone, as strata wrote it.
fn validate(layout: &Path, tag: &str) {
    let name = format!("{}-validate-{}", layout.file_name().unwrap().to_string_lossy(), tag.replace([':', '/'], "_"));
    let copy = layout.with_file_name(name);
    fs::create_dir_all(copy.join("blobs/sha256")).unwrap();
    for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        fs::hard_link(e.path(), copy.join("blobs/sha256").join(e.file_name())).unwrap();
    }
    fs::copy(layout.join("oci-layout"), copy.join("oci-layout")).unwrap();
    let mut index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array_mut().unwrap();
    manifests.retain(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag);
    assert_eq!(manifests.len(), 1, "{tag} in {}", layout.display());
    fs::write(copy.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    run(Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref"])
        .arg(format!("name={tag}"))
        .arg(&copy));
    fs::remove_dir_all(&copy).unwrap();
}

#[test]
fn oci_image_tool_validates_every_layout_strata_writes() {
    if !require_tool("oci-image-tool") {
        return;
    }
    let tmp = scratch();
    // import, commit and config-only (tomcat:latest, tomcat02:1.0 and its first commit).
    let (store, c, img) = committed(tmp.path());
    let first = c.commit(&opts(1_700_000_300).tag("second-commit")).unwrap();
    // append, from a directory and from a tar.
    let d = tmp.path().join("extra");
    write_files(&d, &[("srv/x", "x\n")]);
    let appended = img.append(LayerInput::Dir(&d), &opts(1_700_000_400).tag("appended")).unwrap();
    let tar = crate::fixture::layer_tar(&[crate::fixture::E::File("srv/y", b"y\n", 0o644, 0)]);
    appended.append(LayerInput::Tar(&mut &tar[..]), &opts(1_700_000_500).tag("appended-tar")).unwrap();
    for tag in ["tomcat:latest", "tomcat02:1.0", "second-commit:latest", "appended:latest", "appended-tar:latest"] {
        validate(layout(&store), tag);
    }
    assert_ne!(first.id(), img.id());
    // Archive loads, both formats, into fresh layouts.
    for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
        let archive = store.save(&["tomcat02:1.0", "appended"], format, Vec::new()).unwrap();
        let other = Store::create(tmp.path().join(format!("{format:?}"))).unwrap();
        other.load(&archive[..]).unwrap();
        validate(layout(&other), "tomcat02:1.0");
        validate(layout(&other), "appended:latest");
    }
    // An OCI archive is a layout: unpacked as is, it validates too.
    let archive = store.save(&["tomcat02:1.0"], ArchiveFormat::OciArchive, Vec::new()).unwrap();
    let dir = tmp.path().join("oci-archive");
    tar::Archive::new(&archive[..]).unpack(&dir).unwrap();
    validate(&dir, "tomcat02:1.0");
}

/// Image id, diff_ids and history of an image, to compare across tools.
fn identity(img: &Image) -> (String, Vec<String>, serde_json::Value) {
    let diff_ids = img.config().rootfs.diff_ids.iter().map(ToString::to_string).collect();
    let history = serde_json::to_value(img.config().history()).unwrap();
    (img.id().to_string(), diff_ids, history)
}

#[test]
fn skopeo_docker_archives_load_with_the_same_image() {
    if !require_tool("skopeo") {
        return;
    }
    let tmp = scratch();
    let (store, _c, img) = committed(tmp.path());
    // skopeo writes a docker-archive from strata's layout; strata loads it.
    let archive = tmp.path().join("skopeo.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:tomcat02:1.0", layout(&store).display()))
        .arg(format!("docker-archive:{}:tomcat02:1.0", archive.display())));
    let other = Store::create(tmp.path().join("from-skopeo")).unwrap();
    let loaded = other.load(fs::File::open(&archive).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].names, ["tomcat02:1.0"]);
    let theirs = other.image("tomcat02:1.0").unwrap();
    assert_eq!(identity(&theirs), identity(&img));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    img.unpack_raw(&a, &Default::default()).unwrap();
    theirs.unpack_raw(&b, &Default::default()).unwrap();
    assert!(Tree::capture(&a).unwrap().diff(&Tree::capture(&b).unwrap(), &law_compare()).is_empty());

    // skopeo reads strata's docker-archive and OCI archive: copied to a `dir:` (which keeps
    // the manifest's kind and the config's bytes), the config is strata's and each layer
    // is what the config's diff_ids say.
    for (format, transport) in
        [(ArchiveFormat::DockerArchive, "docker-archive"), (ArchiveFormat::OciArchive, "oci-archive")]
    {
        let path = tmp.path().join(format!("strata-{transport}.tar"));
        store.save(&["tomcat02:1.0"], format, fs::File::create(&path).unwrap()).unwrap();
        let copy = tmp.path().join(format!("copy-{transport}"));
        let src = match format {
            ArchiveFormat::DockerArchive => format!("docker-archive:{}", path.display()),
            ArchiveFormat::OciArchive => format!("oci-archive:{}:tomcat02:1.0", path.display()),
        };
        run(Command::new("skopeo").args(["copy", "--quiet"]).arg(&src).arg(format!("dir:{}", copy.display())));
        let m: serde_json::Value = serde_json::from_slice(&fs::read(copy.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["config"]["digest"], img.id().as_str(), "{transport}");
        let config = fs::read(copy.join(img.id().hex())).unwrap();
        assert_eq!(strata_spec::Digest::sha256_of(&config), *img.id());
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        for (l, diff_id) in layers.iter().zip(&img.config().rootfs.diff_ids) {
            let blob = fs::read(copy.join(&l["digest"].as_str().unwrap()[7..])).unwrap();
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut strata_layer::Decoder::new(&blob[..], None, "l").unwrap(), &mut plain)
                .unwrap();
            assert_eq!(strata_spec::Digest::sha256_of(&plain), *diff_id, "{transport}");
        }
    }

    // And an OCI archive skopeo wrote loads too.
    let oa = tmp.path().join("skopeo-oci.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:tomcat02:1.0", layout(&store).display()))
        .arg(format!("oci-archive:{}:tomcat02:1.0", oa.display())));
    let other = Store::create(tmp.path().join("from-skopeo-oci")).unwrap();
    other.load(fs::File::open(&oa).unwrap()).unwrap();
    assert_eq!(identity(&other.image(img.id().as_str()).unwrap()), identity(&img));
}

/// podman on storage of its own under `dir`: nothing of the machine's is read or written.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        for d in ["root", "runroot", "tmp", "net", "volumes"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        // Config files of its own too, so that the machine's (if any) are not read.
        let (root, runroot) = (dir.join("root"), dir.join("runroot"));
        fs::write(
            dir.join("storage.conf"),
            format!("[storage]\ndriver = \"vfs\"\ngraphroot = {root:?}\nrunroot = {runroot:?}\n"),
        )
        .unwrap();
        fs::write(
            dir.join("containers.conf"),
            format!(
                "[engine]\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\ntmp_dir = {:?}\n\n[network]\nnetwork_config_dir = {:?}\n",
                dir.join("tmp"),
                dir.join("net")
            ),
        )
        .unwrap();
        fs::write(dir.join("registries.conf"), "unqualified-search-registries = []\n").unwrap();
        Podman { dir: dir.to_path_buf() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"])
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .arg("--network-config-dir")
            .arg(self.dir.join("net"))
            .arg("--volumepath")
            .arg(self.dir.join("volumes"))
            .env("TMPDIR", self.dir.join("tmp"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", self.dir.join("registries.conf"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        run(self.cmd().args(args))
    }
}

#[test]
fn podman_loads_strata_archives_and_strata_loads_podmans() {
    if !require_tool("podman") {
        return;
    }
    let tmp = scratch();
    let (store, _c, img) = committed(tmp.path());
    let podman = Podman::new(&tmp.path().join("podman"));
    let archive = tmp.path().join("strata.tar");
    store.save(&["tomcat02:1.0"], ArchiveFormat::DockerArchive, fs::File::create(&archive).unwrap()).unwrap();
    let out = podman.run(&["load", "-q", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("tomcat02:1.0"), "{out}");

    let id = img.id().hex().to_owned();
    let inspect: serde_json::Value = serde_json::from_str(&podman.run(&["image", "inspect", &id])).unwrap();
    let i = &inspect[0];
    assert_eq!(i["Id"], id.as_str());
    let layers: Vec<&str> = i["RootFS"]["Layers"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let diff_ids: Vec<&str> = img.config().rootfs.diff_ids.iter().map(|d| d.as_str()).collect();
    assert_eq!(layers, diff_ids);
    assert_eq!(i["History"], serde_json::to_value(img.config().history()).unwrap());
    assert_eq!(i["Author"], "ops");
    assert!(
        i["RepoTags"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().ends_with("/tomcat02:1.0")),
        "{}",
        i["RepoTags"]
    );

    // What podman saves, in both formats, strata loads as the same image.
    for format in ["docker-archive", "oci-archive"] {
        let path = tmp.path().join(format!("podman-{format}.tar"));
        podman.run(&["save", "-q", "--format", format, "-o", path.to_str().unwrap(), "tomcat02:1.0"]);
        let other = Store::create(tmp.path().join(format!("from-podman-{format}"))).unwrap();
        let loaded = other.load(fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(loaded.len(), 1, "{format}: {loaded:?}");
        let theirs = other.image(loaded[0].id.as_str()).unwrap();
        if format == "docker-archive" {
            assert_eq!(identity(&theirs), identity(&img), "{format}");
        } else {
            // Saving a Docker-schema2 image as OCI, podman converts the config (as skopeo
            // does): re-serialised, so another id, with the same layers and history.
            assert_eq!(identity(&theirs).1, identity(&img).1, "{format}");
            assert_eq!(identity(&theirs).2, identity(&img).2, "{format}");
        }
        assert!(loaded[0].names.iter().any(|n| n.ends_with("tomcat02:1.0")), "{format}: {:?}", loaded[0].names);
        let (a, b) = (tmp.path().join(format!("a-{format}")), tmp.path().join(format!("b-{format}")));
        img.unpack_raw(&a, &Default::default()).unwrap();
        theirs.unpack_raw(&b, &Default::default()).unwrap();
        let d = Tree::capture(&a).unwrap().diff(&Tree::capture(&b).unwrap(), &Compare::default());
        assert!(d.is_empty(), "{format}: {d:?}");
        assert!(other.fsck().unwrap().is_clean());
    }
}
