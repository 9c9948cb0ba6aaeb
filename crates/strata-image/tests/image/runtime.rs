//! The bundle's `config.json`: the OCI runtime configuration made from the image config
//! (the image spec's conversion rules), its user lookup inside the rootfs, and umoci's
//! agreement on the fields the conversion defines.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use strata_image::{
    CommitOptions, Error, Image, RUNTIME_CONFIG_FILE, RuntimeConfigOptions, STATE_FILE, Store, UnpackOptions,
};
use strata_spec::ContainerConfig;
use strata_testkit::{require_tool, run};

use crate::fixture::{E, layer_entries, layer_tar, opts, scratch};

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
bob:x:1001:1001::/home/bob:/bin/sh\n";
const GROUP: &[u8] = b"root:x:0:\nalice:x:1000:\nbob:x:1001:\nwheel:x:10:alice,bob\naudio:x:29:alice\nstaff:x:50:\n";

/// A tree with `/etc/passwd` and `/etc/group`.
fn accounts_tar() -> Vec<u8> {
    layer_tar(&[E::Dir("etc/", 0o755), E::File("etc/passwd", PASSWD, 0o644, 0), E::File("etc/group", GROUP, 0o644, 0)])
}

/// Import `tar` as an image tagged `tag` whose runtime config is `config`.
fn image(store: &Store, tar: &[u8], config: ContainerConfig, tag: &str) -> Image {
    let o: CommitOptions = opts(1_700_000_000).author("fixture").config(config).tag(tag);
    store.import(strata_image::LayerInput::Tar(&mut &tar[..]), &o).unwrap()
}

fn user_config(user: &str) -> ContainerConfig {
    ContainerConfig { user: Some(user.to_owned()), ..ContainerConfig::default() }
}

/// Unpack `img` into `dir` and read its `config.json`.
fn unpacked_config(img: &Image, dir: &Path) -> Value {
    img.unpack(dir).unwrap();
    serde_json::from_slice(&fs::read(dir.join(RUNTIME_CONFIG_FILE)).unwrap()).unwrap()
}

/// An optional list of strings, as the config fields are.
type Strings = Option<Vec<String>>;

fn strs(v: &[&str]) -> Strings {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[test]
fn args_are_entrypoint_then_cmd() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = accounts_tar();
    let table: &[(Strings, Strings, Value)] = &[
        (strs(&["/bin/sh", "-c"]), strs(&["echo hi"]), json!(["/bin/sh", "-c", "echo hi"])),
        (strs(&["/entry"]), None, json!(["/entry"])),
        (None, strs(&["/bin/true", "x"]), json!(["/bin/true", "x"])),
        (None, None, Value::Null),
        (strs(&[]), strs(&[]), Value::Null),
    ];
    for (i, (entrypoint, cmd, want)) in table.iter().enumerate() {
        let c = ContainerConfig { entrypoint: entrypoint.clone(), cmd: cmd.clone(), ..ContainerConfig::default() };
        let img = image(&store, &tar, c, &format!("args{i}"));
        let v = unpacked_config(&img, &tmp.path().join(format!("b{i}")));
        assert_eq!(&v["process"]["args"], want, "case {i}: {entrypoint:?} + {cmd:?}");
    }
}

#[test]
fn env_cwd_and_home() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = accounts_tar();
    // (Env, User, WorkingDir) -> (process.env, process.cwd)
    let table: &[(Strings, &str, Option<&str>, Value, &str)] = &[
        (None, "", None, json!([DEFAULT_PATH, "HOME=/root"]), "/"),
        (
            strs(&["FOO=bar", "A=1=2"]),
            "alice",
            Some("/srv"),
            json!([DEFAULT_PATH, "FOO=bar", "A=1=2", "HOME=/home/alice"]),
            "/srv",
        ),
        // The image's PATH and HOME win; a later duplicate replaces the earlier in place.
        (strs(&["PATH=/bin", "X=1", "HOME=/h", "X=2"]), "bob", Some(""), json!(["PATH=/bin", "X=2", "HOME=/h"]), "/"),
        // A uid without a passwd entry has no home.
        (strs(&["E="]), "4242", Some("/w"), json!([DEFAULT_PATH, "E="]), "/w"),
    ];
    for (i, (env, user, wd, want_env, want_cwd)) in table.iter().enumerate() {
        let c = ContainerConfig {
            env: env.clone(),
            user: Some((*user).to_owned()),
            working_dir: wd.map(str::to_owned),
            ..ContainerConfig::default()
        };
        let img = image(&store, &tar, c, &format!("env{i}"));
        let v = unpacked_config(&img, &tmp.path().join(format!("b{i}")));
        assert_eq!(&v["process"]["env"], want_env, "case {i}");
        assert_eq!(v["process"]["cwd"], *want_cwd, "case {i}");
    }
    // An Env entry that is not NAME=value: a typed error, and no bundle left behind.
    let c = ContainerConfig { env: strs(&["NOEQUALS"]), ..ContainerConfig::default() };
    let img = image(&store, &tar, c, "badenv");
    let dir = tmp.path().join("bad");
    match img.unpack(&dir) {
        Err(Error::Unconvertible { field, reason }) => {
            assert_eq!(field, "config.Env");
            assert!(reason.contains("NOEQUALS"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.exists(), "a failed unpack left {}", dir.display());
}

#[test]
fn users_and_groups_resolve_in_the_images_own_accounts() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = accounts_tar();
    // Config.User -> process.user
    let table: &[(&str, Value)] = &[
        ("", json!({"uid": 0, "gid": 0})),
        ("alice", json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 29]})),
        ("bob", json!({"uid": 1001, "gid": 1001, "additionalGids": [10]})),
        // A group given: no additionalGids (the conversion says so).
        ("alice:staff", json!({"uid": 1000, "gid": 50})),
        ("alice:77", json!({"uid": 1000, "gid": 77})),
        // Numeric: verbatim; the primary gid from passwd when the uid has an entry.
        ("1000", json!({"uid": 1000, "gid": 1000})),
        ("4242", json!({"uid": 4242, "gid": 0})),
        ("4242:4343", json!({"uid": 4242, "gid": 4343})),
        ("4242:wheel", json!({"uid": 4242, "gid": 10})),
    ];
    for (i, (user, want)) in table.iter().enumerate() {
        let img = image(&store, &tar, user_config(user), &format!("user{i}"));
        let v = unpacked_config(&img, &tmp.path().join(format!("b{i}")));
        assert_eq!(&v["process"]["user"], want, "User {user:?}");
        // Without a rootfs, the same from the image's layers.
        let from_layers = img.runtime_config(&RuntimeConfigOptions::default()).unwrap();
        assert_eq!(from_layers.as_value(), &v, "User {user:?} from the layers");
    }
}

#[test]
fn a_user_or_group_the_image_lacks_is_a_typed_error() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let no_accounts = layer_tar(&[E::Dir("etc/", 0o755), E::File("etc/motd", b"hi\n", 0o644, 0)]);
    let cases: &[(&[u8], &str, &str, &str, &str)] = &[
        (&accounts_tar(), "mallory", "user", "mallory", "/etc/passwd"),
        (&accounts_tar(), "alice:nogroup", "group", "nogroup", "/etc/group"),
        (&no_accounts, "alice", "user", "alice", "/etc/passwd"),
    ];
    for (i, (tar, user, kind, name, file)) in cases.iter().enumerate() {
        let img = image(&store, tar, user_config(user), &format!("unknown{i}"));
        let dir = tmp.path().join(format!("b{i}"));
        let err = img.unpack(&dir).unwrap_err();
        match &err {
            Error::UnknownUser { spec, kind: k, name: n, file: f } => {
                assert_eq!((spec.as_str(), *k, n.as_str(), *f), (*user, *kind, *name, *file));
            }
            other => panic!("{user}: {other:?}"),
        }
        assert!(err.to_string().contains(name), "{err}");
        assert!(!dir.exists(), "a failed unpack left {}", dir.display());
        // The same without a rootfs.
        assert!(matches!(img.runtime_config(&RuntimeConfigOptions::default()), Err(Error::UnknownUser { .. })));
        // Skipping the runtime config, the rootfs unpacks.
        img.unpack_with(&dir, &UnpackOptions::default().runtime_config(false)).unwrap();
        assert!(!dir.join(RUNTIME_CONFIG_FILE).exists() && dir.join(STATE_FILE).is_file());
    }
    // Numeric ids need no entry, even with no /etc/passwd at all.
    let img = image(&store, &no_accounts, user_config("7:8"), "numeric");
    let v = unpacked_config(&img, &tmp.path().join("numeric"));
    assert_eq!(v["process"]["user"], json!({"uid": 7, "gid": 8}));
}

#[test]
fn a_hostile_etc_passwd_reads_nothing_outside_the_rootfs() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    // On the host, outside any rootfs: accounts the image must never see.
    let outside = tmp.path().join("host-etc");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("passwd"), "evil:x:4242:4242::/evil:/bin/sh\n").unwrap();
    fs::write(outside.join("group"), "evilgrp:x:4343:evil\n").unwrap();
    let abs = outside.join("passwd").to_str().unwrap().to_owned();
    let rel = format!("../../../../../../../../..{abs}");
    for (i, target) in [abs.as_str(), rel.as_str(), "/proc/self/root/etc/passwd"].into_iter().enumerate() {
        let tar = layer_tar(&[E::Dir("etc/", 0o755), E::Symlink("etc/passwd", target)]);
        let img = image(&store, &tar, user_config("evil"), &format!("hostile{i}"));
        let dir = tmp.path().join(format!("b{i}"));
        match img.unpack(&dir) {
            Err(Error::UnknownUser { name, .. }) => assert_eq!(name, "evil", "{target}"),
            other => panic!("/etc/passwd -> {target}: {other:?}"),
        }
    }
    // The group file too: a group only the host has is not found.
    let tar = layer_tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/passwd", PASSWD, 0o644, 0),
        E::Symlink("etc/group", outside.join("group").to_str().unwrap()),
    ]);
    let img = image(&store, &tar, user_config("alice:evilgrp"), "hostile-group");
    assert!(matches!(img.unpack(tmp.path().join("g")), Err(Error::UnknownUser { kind: "group", .. })));
    // A symlink that stays inside resolves inside: /etc/passwd -> /lib/accounts/passwd
    // (absolute, so relative to the rootfs), /etc/group -> ../lib/accounts/group.
    let tar = layer_tar(&[
        E::Dir("etc/", 0o755),
        E::Dir("lib/", 0o755),
        E::Dir("lib/accounts/", 0o755),
        E::File("lib/accounts/passwd", PASSWD, 0o644, 0),
        E::File("lib/accounts/group", GROUP, 0o644, 0),
        E::Symlink("etc/passwd", "/lib/accounts/passwd"),
        E::Symlink("etc/group", "../lib/accounts/group"),
    ]);
    let img = image(&store, &tar, user_config("alice"), "inside");
    let v = unpacked_config(&img, &tmp.path().join("inside"));
    assert_eq!(v["process"]["user"], json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 29]}));
    // Not a regular file: an error, not a hang or an endless read.
    let tar = layer_tar(&[E::Dir("etc/", 0o755), E::Dir("etc/passwd/", 0o755)]);
    let img = image(&store, &tar, user_config("alice"), "dir-passwd");
    match img.unpack(tmp.path().join("d")) {
        Err(Error::Io(strata_spec::IoError { path, source, .. })) => {
            assert!(path.ends_with("etc/passwd"), "{}", path.display());
            assert!(source.to_string().contains("not a regular file"), "{source}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn annotations_labels_win_and_volumes_are_tmpfs() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let c = ContainerConfig {
        labels: Some(BTreeMap::from([
            ("a".to_owned(), "b".to_owned()),
            ("org.opencontainers.image.stopSignal".to_owned(), "SIGUSR1".to_owned()),
        ])),
        exposed_ports: Some(BTreeMap::from([("80/tcp".to_owned(), json!({})), ("53/udp".to_owned(), json!({}))])),
        stop_signal: Some("SIGTERM".to_owned()),
        volumes: Some(BTreeMap::from([("/data".to_owned(), json!({})), ("/cache".to_owned(), json!({}))])),
        ..ContainerConfig::default()
    };
    let img = image(&store, &accounts_tar(), c, "annotated");
    let v = unpacked_config(&img, &tmp.path().join("b"));
    let platform = img.config().platform();
    let want = json!({
        "a": "b",
        "org.opencontainers.image.os": "linux",
        "org.opencontainers.image.architecture": platform.architecture,
        "org.opencontainers.image.author": "fixture",
        "org.opencontainers.image.created": img.config().created.clone().unwrap(),
        "org.opencontainers.image.exposedPorts": "53/udp,80/tcp",
        // Config.Labels win over the implicit annotation.
        "org.opencontainers.image.stopSignal": "SIGUSR1",
    });
    let mut want = want;
    if let Some(variant) = &img.config().variant {
        want["org.opencontainers.image.variant"] = json!(variant);
    }
    assert_eq!(v["annotations"], want);
    let vols: Vec<&Value> =
        v["mounts"].as_array().unwrap().iter().filter(|m| m["source"] == "none").collect::<Vec<_>>();
    assert_eq!(vols.len(), 2, "{:#}", v["mounts"]);
    assert_eq!((vols[0]["destination"].as_str(), vols[1]["destination"].as_str()), (Some("/cache"), Some("/data")));
    assert!(vols.iter().all(|m| m["type"] == "tmpfs"));
    // The skeleton: rootfs beside the config, read-write, the default mounts and namespaces.
    assert_eq!(v["root"], json!({"path": "rootfs", "readonly": false}));
    assert_eq!(v["process"]["terminal"], false);
    let dests: Vec<&str> = v["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
    assert_eq!(
        dests,
        ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/cache", "/data"]
    );
    let ns: Vec<&str> =
        v["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
    assert!(v["linux"]["maskedPaths"].as_array().unwrap().contains(&json!("/proc/kcore")));
}

#[test]
fn the_same_image_gives_the_same_bytes_with_sorted_keys() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let c = ContainerConfig {
        user: Some("alice".into()),
        env: strs(&["Z=1", "A=2"]),
        labels: Some(BTreeMap::from([("z".into(), "1".into()), ("a".into(), "2".into()), ("m".into(), "3".into())])),
        ..ContainerConfig::default()
    };
    let img = image(&store, &accounts_tar(), c, "det");
    img.unpack(tmp.path().join("one")).unwrap();
    img.unpack(tmp.path().join("two")).unwrap();
    let one = fs::read(tmp.path().join("one").join(RUNTIME_CONFIG_FILE)).unwrap();
    let two = fs::read(tmp.path().join("two").join(RUNTIME_CONFIG_FILE)).unwrap();
    assert_eq!(one, two);
    let from_layers = img.runtime_config(&RuntimeConfigOptions::default()).unwrap().to_vec();
    assert_eq!(one, from_layers);
    // Keys sorted at every level: re-serializing through sorted maps changes nothing.
    fn sort(v: Value) -> Value {
        match v {
            Value::Object(m) => {
                let b: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::to_value(b).unwrap()
            }
            Value::Array(a) => Value::Array(a.into_iter().map(sort).collect()),
            o => o,
        }
    }
    let v: Value = serde_json::from_slice(&one).unwrap();
    let mut again = serde_json::to_vec_pretty(&sort(v)).unwrap();
    again.push(b'\n');
    assert_eq!(String::from_utf8(one).unwrap(), String::from_utf8(again).unwrap());
}

#[test]
fn rootless_maps_the_caller_and_drops_what_a_user_namespace_forbids() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let img = image(&store, &accounts_tar(), user_config("alice"), "rl");
    let dir = tmp.path().join("b");
    img.unpack_with(&dir, &UnpackOptions::default().rootless(true)).unwrap();
    let v: Value = serde_json::from_slice(&fs::read(dir.join(RUNTIME_CONFIG_FILE)).unwrap()).unwrap();
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    assert_eq!(v["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": euid, "size": 1}]));
    assert_eq!(v["linux"]["gidMappings"], json!([{"containerID": 0, "hostID": egid, "size": 1}]));
    let ns: Vec<&str> =
        v["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "user"]);
    assert_eq!(v["process"]["user"], json!({"uid": 1000, "gid": 1000}), "no additionalGids: setgroups is denied");
    assert!(v["linux"].get("resources").is_none());
    let mounts = v["mounts"].as_array().unwrap();
    let text = serde_json::to_string(mounts).unwrap();
    assert!(!text.contains("gid=") && !text.contains("uid="), "{text}");
    let sys: Vec<&Value> = mounts.iter().filter(|m| m["destination"].as_str().unwrap().starts_with("/sys")).collect();
    assert_eq!(sys.len(), 1);
    assert_eq!(sys[0]["type"], "bind");
    assert!(mounts.iter().any(|m| m["destination"] == "/etc/resolv.conf" && m["type"] == "bind"));
    // Rootful, the same image has the full set.
    let rootful = img.runtime_config(&RuntimeConfigOptions::default().rootless(false)).unwrap();
    assert_eq!(rootful.as_value()["process"]["user"]["additionalGids"], json!([10, 29]));
    assert!(rootful.as_value()["linux"].get("uidMappings").is_none());
}

#[test]
fn raw_unpack_writes_no_config_and_commit_ignores_it() {
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let img = image(&store, &accounts_tar(), user_config("alice"), "c");
    let raw = tmp.path().join("raw");
    img.unpack_raw(&raw, &UnpackOptions::default()).unwrap();
    assert!(!raw.join(RUNTIME_CONFIG_FILE).exists());
    assert!(raw.join("etc/passwd").is_file());

    let c = img.unpack(tmp.path().join("b")).unwrap();
    assert!(c.dir().join(RUNTIME_CONFIG_FILE).is_file());
    assert!(!c.rootfs().join(RUNTIME_CONFIG_FILE).exists());
    assert!(c.diff().unwrap().is_empty(), "{}", c.diff().unwrap().docker_diff());
    let c = strata_image::Container::open(&store, c.dir()).unwrap();
    fs::write(c.rootfs().join("etc/motd"), "hi\n").unwrap();
    assert_eq!(c.diff().unwrap().docker_diff(), "C /etc\nA /etc/motd\n");
    let committed = c.commit(&opts(1_700_000_100).tag("c2")).unwrap();
    let entries = layer_entries(&store, &committed.layers()[1]);
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["etc/", "etc/motd"]);
}

/// The fields the conversion defines, as umoci writes them and as strata does.
#[test]
fn umoci_unpack_agrees_on_the_converted_fields() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let c = ContainerConfig {
        user: Some("alice".into()),
        env: strs(&["FOO=bar", "PATH=/usr/bin:/bin"]),
        entrypoint: strs(&["/bin/sh", "-c"]),
        cmd: strs(&["echo hi"]),
        working_dir: Some("/srv".into()),
        labels: Some(BTreeMap::from([("a".into(), "b".into())])),
        exposed_ports: Some(BTreeMap::from([("80/tcp".to_owned(), json!({})), ("53/udp".to_owned(), json!({}))])),
        stop_signal: Some("SIGTERM".into()),
        volumes: Some(BTreeMap::from([("/data".to_owned(), json!({}))])),
        ..ContainerConfig::default()
    };
    let img = image(&store, &accounts_tar(), c, "peer:1");
    let ours = unpacked_config(&img, &tmp.path().join("strata"));
    for rootless in [false, true] {
        let bundle = tmp.path().join(format!("umoci-{rootless}"));
        let mut cmd = Command::new("umoci");
        cmd.arg("unpack");
        if rootless {
            cmd.arg("--rootless");
        }
        run(cmd.arg("--image").arg(format!("{}:peer:1", store.path().unwrap().display())).arg(&bundle));
        let theirs: Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
        let ours = if rootless {
            let dir = tmp.path().join("strata-rootless");
            img.unpack_with(&dir, &UnpackOptions::default().rootless(true)).unwrap();
            serde_json::from_slice(&fs::read(dir.join(RUNTIME_CONFIG_FILE)).unwrap()).unwrap()
        } else {
            ours.clone()
        };
        for field in ["/process/args", "/process/cwd", "/process/user", "/root/path", "/linux/namespaces"] {
            assert_eq!(ours.pointer(field), theirs.pointer(field), "{field} (rootless: {rootless})");
        }
        // umoci adds TERM=xterm (its bundles have a terminal; ours do not).
        let their_env: Vec<&Value> =
            theirs["process"]["env"].as_array().unwrap().iter().filter(|e| *e != "TERM=xterm").collect();
        let our_env: Vec<&Value> = ours["process"]["env"].as_array().unwrap().iter().collect();
        assert_eq!(our_env, their_env, "env (rootless: {rootless})");
        // umoci writes the annotations of absent fields as empty strings; strata omits them.
        let mut their_ann = theirs["annotations"].as_object().unwrap().clone();
        their_ann.retain(|_, v| v != "");
        assert_eq!(ours["annotations"].as_object().unwrap(), &their_ann, "annotations (rootless: {rootless})");
        let dests = |v: &Value| -> Vec<String> {
            let mut d: Vec<String> =
                v["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap().to_owned()).collect();
            d.sort();
            d
        };
        assert_eq!(dests(&ours), dests(&theirs), "mounts (rootless: {rootless})");
        assert_eq!(ours["linux"]["uidMappings"], theirs["linux"]["uidMappings"]);
        assert_eq!(ours["linux"]["gidMappings"], theirs["linux"]["gidMappings"]);
    }
}

#[test]
fn an_image_without_an_os_is_taken_as_linux_and_another_os_is_refused() {
    // A docker-archive whose config names no OS (old and hand-made images omit it).
    let tmp = scratch();
    let store = Store::create(tmp.path().join("store")).unwrap();
    let tar = accounts_tar();
    let diff_id = strata_spec::Digest::sha256_of(&tar);
    for (os, ok) in [("", true), ("windows", false)] {
        let mut config: Value =
            serde_json::from_slice(&crate::fixture::config_for(std::slice::from_ref(&diff_id))).unwrap();
        config["os"] = json!(os);
        let config = serde_json::to_vec(&config).unwrap();
        let cfg_name = format!("{}.json", strata_spec::Digest::sha256_of(&config).hex());
        let tag = format!("os{}:1", if os.is_empty() { "none" } else { os });
        let manifest =
            serde_json::to_vec(&json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["l.tar"]}])).unwrap();
        let archive = crate::fixture::archive_tar(&[
            crate::fixture::A::File("manifest.json", &manifest),
            crate::fixture::A::File(&cfg_name, &config),
            crate::fixture::A::File("l.tar", &tar),
        ]);
        let loaded = store.load(&archive[..]).unwrap();
        let img = store.image_at(&loaded[0].manifest, &strata_spec::Platform::host()).unwrap();
        let dir = tmp.path().join(format!("b-{}", if os.is_empty() { "none" } else { os }));
        match (img.unpack(&dir), ok) {
            (Ok(_), true) => assert!(dir.join(RUNTIME_CONFIG_FILE).is_file()),
            (Err(Error::Unconvertible { field: "os", .. }), false) => assert!(!dir.join("rootfs").exists()),
            (other, _) => panic!("os {os:?}: {:?}", other.map(drop)),
        }
    }
}
