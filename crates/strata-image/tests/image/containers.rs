//! Containers through the library, with runc and the `strata-monitor` program this
//! crate builds: the lifecycle, commit and diff of a container, its image kept from GC,
//! and the runtime configuration `create` writes from its options.

use std::path::Path;

use strata_image::containers::{BindMount, Containers, CreateOptions, Network, Status};
use strata_image::{Error, Image, LayerInput, ProcessOverrides, Store};

use crate::fixture::{opts, scratch};

fn ready() -> bool {
    if !strata_testkit::root_user() {
        eprintln!("skipping: containers need root");
        return false;
    }
    strata_testkit::require_tool("runc") && strata_testkit::require_tool("busybox")
}

/// A store with a busybox image `bb:1` (`CMD ["sh"]`).
fn busybox_store(dir: &Path) -> (Store, Image, Containers) {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let store = Store::create(dir.join("store")).unwrap();
    let mut o = opts(1_700_000_000).tag("bb:1");
    o.changes.push(strata_image::Change::parse("CMD [\"sh\"]").unwrap());
    let img = store.import(LayerInput::Dir(&rootfs), &o).unwrap();
    let containers = store.containers().unwrap().monitor(vec![env!("CARGO_BIN_EXE_strata-monitor").into()]);
    (store, img, containers)
}

fn with_cmd(args: &[&str]) -> CreateOptions {
    let mut process = ProcessOverrides::default();
    process.cmd = args.iter().map(|s| (*s).to_owned()).collect();
    let mut o = CreateOptions::default();
    o.process = process;
    o
}

#[test]
fn an_in_memory_store_has_no_containers() {
    assert!(matches!(Store::in_memory().containers(), Err(Error::ContainersUnsupported(_))));
}

#[test]
fn lifecycle_commit_and_gc() {
    if !ready() {
        return;
    }
    let dir = scratch();
    let (store, img, containers) = busybox_store(dir.path());
    let mut o = with_cmd(&["sh", "-c", "echo made > /made; echo out; exit 6"]);
    o.name = Some("lib".into());
    let rec = containers.create(&img, "bb:1", &o).unwrap();
    assert_eq!((rec.name.as_str(), rec.state.status), ("lib", Status::Created));
    assert_eq!(containers.get(&rec.id[..6]).unwrap().id, rec.id);
    assert!(matches!(containers.create(&img, "bb:1", &o), Err(Error::ContainerNameInUse { .. })));
    containers.start("lib").unwrap();
    assert_eq!(containers.wait("lib").unwrap(), 6);
    let (out, _) = containers.logs("lib").unwrap();
    assert_eq!(std::fs::read_to_string(out).unwrap(), "out\n");
    let (_, bundle) = containers.bundle("lib").unwrap();
    assert_eq!(bundle.diff().unwrap().docker_diff(), "A /made\n");

    // The image is kept while the container exists: not listed, not collected.
    store.untag("bb:1").unwrap();
    assert!(store.images().unwrap().is_empty());
    store.gc(false).unwrap();
    let committed = containers.commit("lib", &opts(1_700_000_100).tag("made:1"), true).unwrap();
    assert_eq!(committed.layers().len(), 2);
    assert_eq!(committed.config().config.as_ref().unwrap().cmd.as_deref(), Some(&["sh".to_owned()][..]));

    containers.remove("lib", false).unwrap();
    assert!(containers.list().unwrap().is_empty());
    let index = store.backend().index().unwrap();
    assert!(index.manifests.iter().all(|d| d.annotation(strata_image::containers::ANNOTATION_CONTAINER).is_none()));
    // Gone with its container: GC takes the old image's config now.
    let before = store.backend().list().unwrap().len();
    store.gc(false).unwrap();
    assert!(store.backend().list().unwrap().len() < before);
}

#[test]
fn a_running_container_commits_paused_and_keeps_running() {
    if !ready() {
        return;
    }
    let dir = scratch();
    let (_store, img, containers) = busybox_store(dir.path());
    let rec = containers.create(&img, "bb:1", &with_cmd(&["sh", "-c", "echo x > /x; sleep 300"])).unwrap();
    containers.start(&rec.id).unwrap();
    let mut seen = false;
    for _ in 0..200 {
        if containers.bundle(&rec.id).unwrap().1.rootfs().join("x").exists() {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen);
    let img2 = containers.commit(&rec.id, &opts(1_700_000_200), true).unwrap();
    assert_eq!(img2.layers().len(), 2);
    assert_eq!(containers.get(&rec.id).unwrap().state.status, Status::Running);
    assert!(matches!(containers.remove(&rec.id, false), Err(Error::ContainerRunning(_))));
    containers.remove(&rec.id, true).unwrap();
}

/// What `docker run`'s flags become in `config.json`.
#[test]
fn create_options_reach_the_runtime_configuration() {
    if !ready() {
        return;
    }
    let dir = scratch();
    let (store, img, containers) = busybox_store(dir.path());
    let mut o = with_cmd(&["echo", "hi"]);
    o.process.env = vec!["A=1".into(), "PATH=/bin".into()];
    o.process.cwd = Some("/tmp".into());
    o.process.user = Some("1000:1000".into());
    o.process.hostname = Some("box".into());
    o.process.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
    o.network = Network::Host;
    o.mounts = vec![BindMount::parse("/etc:/host-etc:ro").unwrap()];
    let rec = containers.create(&img, "bb:1", &o).unwrap();
    assert_eq!(rec.command, ["/bin/sh", "-c", "echo", "hi"]);
    let path = store.path().unwrap().join("containers").join(&rec.id).join("bundle/config.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(v["process"]["env"], serde_json::json!(["PATH=/bin", "A=1"]));
    assert_eq!(v["process"]["cwd"], "/tmp");
    assert_eq!(v["process"]["user"], serde_json::json!({"uid": 1000, "gid": 1000}));
    assert_eq!(v["hostname"], "box");
    let ns: Vec<&str> =
        v["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert!(!ns.contains(&"network"), "{ns:?}");
    let mounts = v["mounts"].as_array().unwrap();
    assert!(
        mounts.iter().any(|m| m["destination"] == "/host-etc" && m["options"] == serde_json::json!(["rbind", "ro"]))
    );
    containers.remove(&rec.id, false).unwrap();
    // No command at all: docker's words, and nothing left.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let bare = store.import(LayerInput::Dir(&empty), &opts(1).tag("empty:1")).unwrap();
    let e = containers.create(&bare, "empty:1", &CreateOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "No command specified");
    assert!(containers.list().unwrap().is_empty());
}
