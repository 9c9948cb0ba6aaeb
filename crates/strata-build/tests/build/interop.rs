//! The same RUN-less Dockerfile built by `buildah bud --storage-driver vfs` and by
//! strata: the unpacked trees and the config fields agree.
//!
//! Normalised: directory mtimes (each builder stamps the directories it makes with its
//! own step time), file mtimes to seconds (buildah's layers carry no sub-second times),
//! buildah's `io.buildah.version` label, and in history only the instruction (and for
//! `COPY` the kind of source and the destination) is compared: buildah writes one space
//! after `#(nop)` where docker writes two, writes the instruction as typed (`ENV
//! B="two words"`, `VOLUME ["/v"]`) where docker writes it substituted (`ENV B=two
//! words`, `VOLUME [/v]`), leaves out `--chown`, and hashes sources differently; the
//! exact docker strings are checked in `steps`. `WORKDIR` of a missing directory is an
//! empty layer in buildah and a layer with the directory in strata, as in docker's
//! classic builder.

use std::path::Path;
use std::process::Command;

use strata_build::BuildOptions;
use strata_image::Store;
use strata_spec::ImageConfig;
use strata_testkit::{Compare, require_tool, run};

use crate::common::*;

const BODY: &str = r#"ENV A=1 B="two words"
LABEL org.example.title="same image"
WORKDIR /srv/app
COPY a.txt .
COPY conf/ /etc/app/
COPY --chown=app:staff data/ ./data/
COPY a.txt b.txt /opt/both/
USER app
EXPOSE 8080 53/udp
VOLUME ["/var/cache/app"]
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/bin/app"]
CMD ["--serve"]
"#;

/// The instruction of a history entry, and for `COPY` the kind of source hash and the
/// destination.
fn mask(created_by: &str) -> String {
    let s = created_by.replace("#(nop)  ", "#(nop) ");
    let Some((_, rest)) = s.split_once("#(nop) ") else { return s };
    let words: Vec<&str> = rest.split(' ').filter(|w| !w.starts_with("--chown=")).collect();
    match words.first() {
        Some(&"COPY") => {
            let kind = words.get(1).and_then(|w| w.split_once(':')).map(|(k, _)| k).unwrap_or("");
            format!("COPY {kind} {}", words[2..].join(" "))
        }
        Some(w) => (*w).to_owned(),
        None => String::new(),
    }
}

fn config_of(layout: &Path, tag: &str) -> ImageConfig {
    let store = Store::open(layout).unwrap();
    store.image(tag).unwrap().config().clone()
}

#[test]
fn buildah_and_strata_agree_on_a_run_less_dockerfile() {
    if !require_tool("buildah") || !require_tool("umoci") {
        return;
    }
    // buildah names an image pulled from a layout after its path: keep it lower-case.
    let dir = Lower(std::env::temp_dir().join(format!("strata-build-interop-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(dir.path());
    std::fs::create_dir_all(dir.path()).unwrap();
    let layout = dir.path().join("store");
    let store = Store::open_or_create(&layout).unwrap();
    base(&store, "base:1");
    let files = [("a.txt", "a"), ("b.txt", "b"), ("conf/app.conf", "k=v"), ("conf/d/x", "x"), ("data/one", "1")];

    // strata
    let ctx = context(&format!("FROM base:1\n{BODY}"), &files);
    // Whole-second source mtimes: buildah's layers carry seconds only, and it rounds a
    // fraction to the nearest second where a seconds-only comparison truncates.
    let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for (p, _) in files {
        std::fs::File::options().write(true).open(ctx.path().join(p)).unwrap().set_modified(whole).unwrap();
    }
    let built = build_logged(&store, ctx.path(), &BuildOptions::default().tag("strata:1")).0.unwrap();

    // buildah, from the same base image (pulled from the same layout).
    let root = dir.path().join("buildah-root");
    let runroot = dir.path().join("buildah-run");
    let buildah = |args: &[&str]| {
        let mut c = Command::new("buildah");
        c.arg("--root").arg(&root).arg("--runroot").arg(&runroot).arg("--storage-driver").arg("vfs").args(args);
        run(&mut c)
    };
    let base_ref = format!("oci:{}:base:1", layout.display());
    let id = buildah(&["pull", "-q", &base_ref]);
    buildah(&["tag", id.trim(), "localhost/strata-test-base:1"]);
    let bctx = context(&format!("FROM localhost/strata-test-base:1\n{BODY}"), &files);
    // Same source mtimes in both contexts.
    for (p, _) in files {
        let t = std::fs::metadata(ctx.path().join(p)).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(bctx.path().join(p)).unwrap().set_modified(t).unwrap();
    }
    buildah(&["bud", "--layers", "-q", "-t", "localhost/out:1", bctx.path().to_str().unwrap()]);
    let out = dir.path().join("buildah-out");
    buildah(&["push", "-q", "localhost/out:1", &format!("oci:{}:out:1", out.display())]);

    // Trees.
    let ours = umoci_tree(&layout, "strata:1").unwrap();
    let theirs = umoci_tree(&out, "out:1").unwrap();
    let cmp = Compare { dir_mtime: false, mtime_seconds_only: true, ..Compare::default() };
    let diff = theirs.diff(&ours, &cmp);
    assert!(diff.is_empty(), "buildah vs strata trees:\n{}", diff.join("\n"));
    assert!(ours.entries.contains_key(Path::new("srv/app/data/one")));
    let one = &ours.entries[Path::new("srv/app/data/one")];
    assert_eq!((one.uid, one.gid), (1000, 50));

    // Config fields.
    let a = config_of(&out, "out:1");
    let b = built.image.config().clone();
    let (mut ca, cb) = (a.config.clone().unwrap(), b.config.clone().unwrap());
    if let Some(l) = ca.labels.as_mut() {
        l.remove("io.buildah.version");
    }
    assert_eq!(ca.env, cb.env);
    assert_eq!(ca.labels, cb.labels);
    assert_eq!(ca.working_dir, cb.working_dir);
    assert_eq!(ca.user, cb.user);
    assert_eq!(ca.exposed_ports, cb.exposed_ports);
    assert_eq!(ca.volumes, cb.volumes);
    assert_eq!(ca.stop_signal, cb.stop_signal);
    assert_eq!(ca.entrypoint, cb.entrypoint);
    assert_eq!(ca.cmd, cb.cmd);
    assert_eq!((a.os.as_str(), a.architecture.as_str()), (b.os.as_str(), b.architecture.as_str()));

    // History, normalised.
    let ha: Vec<String> = a.history().iter().map(|h| mask(h.created_by.as_deref().unwrap_or(""))).collect();
    let hb: Vec<String> = b.history().iter().map(|h| mask(h.created_by.as_deref().unwrap_or(""))).collect();
    assert_eq!(ha, hb);
    let layers = |c: &ImageConfig| c.history().iter().map(|h| h.is_empty_layer()).collect::<Vec<_>>();
    let (la, mut lb) = (layers(&a), layers(&b));
    // WORKDIR (entry 3): a layer in strata (docker classic), empty in buildah.
    assert!(!lb[3] && la[3]);
    lb[3] = true;
    assert_eq!(la, lb);
}

/// A directory removed when dropped.
struct Lower(std::path::PathBuf);

impl Lower {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Lower {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
