//! Test support: run the built `strata` binary against a temp store, and fixtures made
//! in code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A temp directory with a store in it; every command runs with `--store` pointing there
/// and a HOME of its own (no credentials or store of the machine's leak in).
pub struct Env {
    pub dir: tempfile::TempDir,
    /// Environment variables every command of this Env gets.
    pub vars: Vec<(&'static str, &'static str)>,
}

/// What a run printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap(), vars: Vec::new() }
    }

    /// This Env with `name=value` set for each of its commands.
    pub fn with_var(mut self, name: &'static str, value: &'static str) -> Env {
        self.vars.push((name, value));
        self
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// The command, with `--store` and a private HOME, run in the temp dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
        c.arg("--store").arg(self.store()).args(args);
        self.isolate(&mut c);
        c
    }

    /// The command without `--store` (tests of the default location).
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
        c.args(args);
        self.isolate(&mut c);
        c
    }

    fn isolate(&self, c: &mut Command) {
        c.current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("home/.local/share"))
            .env("REGISTRY_AUTH_FILE", self.path("home/auth.json"))
            .env_remove("STRATA_STORE")
            .env_remove("DOCKER_CONFIG")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        c.envs(self.vars.iter().copied());
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(self.cmd(args))
    }

    /// Run, expecting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "strata {args:?} failed:\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
        r.stdout
    }

    /// Run, expecting exit code `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        assert_eq!(r.code, code, "strata {args:?}:\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
        assert_clean_error(&r.stderr);
        r.stderr
    }

    /// Run with `input` on stdin.
    pub fn with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        to_run(out)
    }

    /// The image id of `reference`, from `inspect`.
    pub fn image_id(&self, reference: &str) -> String {
        let v = self.inspect(reference);
        v[0]["Id"].as_str().unwrap().to_owned()
    }

    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["inspect", reference])).unwrap()
    }
}

pub fn run(mut c: Command) -> Run {
    to_run(c.output().unwrap())
}

fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An error run prints no panic and no backtrace.
pub fn assert_clean_error(stderr: &str) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace", "internal error"] {
        assert!(!stderr.contains(bad), "stderr shows {bad:?}:\n{stderr}");
    }
}

/// The base rootfs of the story: `webapps.dist/ROOT/index.html`, an empty `webapps/`,
/// and a little more.
pub fn tomcat_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("webapps.dist/ROOT")).unwrap();
    std::fs::create_dir_all(dir.join("webapps")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("webapps.dist/ROOT/index.html"), "<h1>tomcat</h1>\n").unwrap();
    std::fs::write(dir.join("bin/catalina.sh"), "#!/bin/sh\necho run\n").unwrap();
}

/// A tar file with the given entries, written raw so that hostile names survive
/// (the `tar` crate's path setters refuse `..`).
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A hard link to another entry.
    Link(&'a str, &'a str),
}

pub fn write_tar(path: &Path, entries: &[Entry<'_>]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data): (&str, &[u8]) = match e {
            Entry::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                (n, d)
            }
            Entry::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                (n, &[])
            }
            Entry::Symlink(n, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                h.set_link_name_literal(target).unwrap();
                (n, &[])
            }
            Entry::Link(n, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                h.set_link_name_literal(target).unwrap();
                (n, &[])
            }
        };
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.finish().unwrap();
}

/// Put an image whose one layer is `tar` (uncompressed, as given) into the store at
/// `store` under `tag`, written by hand: blob, config, manifest and an index.json entry,
/// with no check of what the tar holds (the way another tool may have written it).
pub fn hand_made_image(store: &Path, tag: &str, tar: &[u8]) {
    use strata_spec::{
        ANNOTATION_REF_NAME, Descriptor, Digest, History, ImageConfig, Index, Manifest, MediaType, Platform,
    };
    let blobs = store.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    if !store.join("oci-layout").exists() {
        std::fs::write(store.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }
    let put = |bytes: &[u8]| {
        let d = Digest::sha256_of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let mut config = ImageConfig::new(&Platform::host());
    config.push_layer(Digest::sha256_of(tar), History { created_by: Some("by hand".into()), ..Default::default() });
    let cj = config.to_canonical_json();
    let layer = Descriptor::new(MediaType::OciLayer, put(tar), tar.len() as u64);
    let manifest = Manifest::new(
        MediaType::OciManifest,
        Descriptor::new(MediaType::OciConfig, put(&cj), cj.len() as u64),
        vec![layer],
    );
    let mj = manifest.to_canonical_json();
    let mut md = Descriptor::new(MediaType::OciManifest, put(&mj), mj.len() as u64);
    md.set_annotation(ANNOTATION_REF_NAME, tag);
    let index_path = store.join("index.json");
    let mut index = match std::fs::read(&index_path) {
        Ok(bytes) => Index::from_slice(&bytes).unwrap(),
        Err(_) => Index::new(Some(MediaType::OciIndex)),
    };
    index.manifests.push(md);
    std::fs::write(index_path, index.to_canonical_json()).unwrap();
}

/// Every file under `dir` (relative paths, sorted): what a store holds.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub use strata_testkit::Registry;

/// Whether containers can run here: root, and runc (and busybox for the images). Outside
/// CI a missing one skips the test with a message; under CI it fails it.
pub fn containers_ready() -> bool {
    if !strata_testkit::root_user() {
        assert!(std::env::var_os("CI").is_none(), "containers need root and CI runs as root");
        eprintln!("skipping: containers need root");
        return false;
    }
    strata_testkit::require_tool("runc") && strata_testkit::require_tool("busybox")
}

/// A tiny rootfs that runs: busybox (static) as /bin/busybox and its applets as links,
/// plus `extra` files.
pub fn busybox_rootfs(dir: &Path, extra: &[(&str, &str)]) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "sleep", "cp", "echo", "httpd", "nc", "wget", "mkdir", "env", "id", "pwd", "true"]
    {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for (path, content) in extra {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Poll `f` every 50 ms until it is true; panics with `what` after `secs` seconds.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
