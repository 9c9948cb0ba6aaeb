//! `ADD <url>`: off by default (an error naming the URL, the line and the flag); when
//! enabled, downloaded from a tiny HTTP server run by the test itself, and the image
//! unpacked to check the tree: names, modes, owners, times, no extraction, checksums,
//! errors, the size limit, redirects, and the cache.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_build::{BuildOptions, Error, FetchOptions};
use strata_image::{Image, Store, UnpackOptions};
use strata_spec::Digest;
use strata_testkit::{Kind, Tree};

use crate::common::*;

/// A canned answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send `Content-Length` (else the body ends when the connection closes).
    length: bool,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply { status: 200, headers: Vec::new(), body: body.into(), length: true }
    }
    fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: b"error page".to_vec(), length: true }
    }
    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn no_length(mut self) -> Reply {
        self.length = false;
        self
    }
}

/// An HTTP/1.1 server on 127.0.0.1 answering each path with its reply (404 else), one
/// connection at a time, `Connection: close`.
struct Server {
    base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let (r, h) = (routes.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let _ = serve(conn, &r);
            }
        });
        Server { base, routes, hits }
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.into(), reply);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, routes: &Mutex<HashMap<String, Reply>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let reply = routes.lock().unwrap().get(&path).cloned().unwrap_or_else(|| Reply::status(404));
    let mut head = format!("HTTP/1.1 {} Canned\r\nConnection: close\r\n", reply.status);
    if reply.length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut w = conn;
    w.write_all(head.as_bytes())?;
    // A client that gives up early (the size limit) closes the connection: fine.
    let _ = w.write_all(&reply.body);
    w.flush()
}

/// The image's tree, unpacked by strata (owners as recorded when not root).
fn unpacked(img: &Image) -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    let report = img.unpack_raw(&root, &UnpackOptions::default()).unwrap();
    let mut tree = Tree::capture(&root).unwrap();
    for (p, r) in &report.recorded {
        if let Some(e) = tree.entries.get_mut(p.strip_prefix("/").unwrap_or(p)) {
            (e.uid, e.gid) = (r.uid, r.gid);
        }
    }
    tree
}

fn digest_of(content: &[u8]) -> Digest {
    Digest::sha256_of(content)
}

fn fetching() -> BuildOptions {
    BuildOptions::default().fetch_urls(true)
}

const HELLO: &[u8] = b"hello from the server\n";
const TOOL: &[u8] = b"#!/bin/sh\necho tool\n";

fn tar_gz() -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "inside/file.txt", &b"inside"[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn disabled_by_default_with_an_error_naming_url_line_and_flag() {
    let server = Server::start();
    server.route("/f.txt", Reply::ok(HELLO));
    let store = Store::in_memory();
    base(&store, "base:1");
    let url = server.url("/f.txt");
    let ctx = context(&format!("FROM base:1\nLABEL a=b\nADD {url} /f.txt\n"), &[]);
    let e = build_logged(&store, ctx.path(), &BuildOptions::default().tag("x")).0.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e.root_cause(), Error::UrlSource { url: u } if *u == url), "{e:?}");
    assert!(msg.starts_with(&format!("Dockerfile:3: ADD {url} /f.txt: {url}: ")), "{msg}");
    assert!(msg.contains("--allow-url-fetch"), "{msg}");
    assert_eq!(server.hits(), 0, "nothing is fetched");
    assert!(store.image("x").is_err(), "nothing tagged");
}

#[test]
fn downloads_name_mode_owner_time_checksum_redirects_no_extraction() {
    let server = Server::start();
    server.route("/files/hello.txt", Reply::ok(HELLO));
    server.route("/bin/tool", Reply::ok(TOOL));
    server.route("/dated.txt", Reply::ok("dated").header("Last-Modified", "Wed, 01 Mar 2023 00:00:00 GMT"));
    server.route("/pkg.tar.gz", Reply::ok(tar_gz()));
    server.route("/moved", Reply::status(302).header("Location", "/files/hello.txt"));
    server.route("/dir/", Reply::ok("no name").header("Content-Disposition", "attachment; filename=\"named.bin\""));
    server.route("/streamed", Reply::ok("no length").no_length());
    let u = |p: &str| server.url(p);
    let sum = digest_of(HELLO);
    let df = format!(
        "FROM base:1
WORKDIR /app
ADD {hello} /opt/
ADD {hello} /etc/renamed.txt
ADD {hello} rel/
ADD {hello} rel-file
ADD --chmod=755 --chown=app:staff {tool} /usr/local/bin/
ADD {dated} /dated.txt
ADD {pkg} /pkg/
ADD --checksum={sum} {hello} /checked
ADD {moved} /redirected/
ADD {dir} /disposition/
ADD {streamed} local.txt /mixed/
",
        hello = u("/files/hello.txt"),
        tool = u("/bin/tool"),
        dated = u("/dated.txt"),
        pkg = u("/pkg.tar.gz"),
        moved = u("/moved"),
        dir = u("/dir/"),
        streamed = u("/streamed"),
    );
    let store = Store::in_memory();
    base(&store, "base:1");
    let ctx = context(&df, &[("local.txt", "from the context")]);
    let built = build_logged(&store, ctx.path(), &fetching().tag("fetched")).0.unwrap();
    let tree = unpacked(&built.image);
    let e =
        |p: &str| tree.entries.get(Path::new(p)).unwrap_or_else(|| panic!("{p} missing: {:?}", tree.entries.keys()));
    let file = |p: &str, content: &[u8]| {
        let entry = e(p);
        assert_eq!(entry.kind, Kind::File(digest_of(content)), "{p}");
        entry
    };
    // Name from the URL into a directory; a file path as given; WORKDIR-relative.
    for p in ["opt/hello.txt", "etc/renamed.txt", "app/rel/hello.txt", "app/rel-file", "checked"] {
        let f = file(p, HELLO);
        assert_eq!((f.mode, f.uid, f.gid), (0o600, 0, 0), "{p}: 0600 and root's, as docker");
        assert_eq!(f.mtime.0, 0, "{p}: no Last-Modified: the epoch, as BuildKit");
    }
    let tool = file("usr/local/bin/tool", TOOL);
    assert_eq!((tool.mode, tool.uid, tool.gid), (0o755, 1000, 50), "--chmod and --chown");
    assert_eq!(file("dated.txt", b"dated").mtime.0, 1_677_628_800, "Last-Modified");
    // A tar.gz from a URL is saved, not extracted.
    file("pkg/pkg.tar.gz", &tar_gz());
    assert!(!tree.entries.contains_key(Path::new("pkg/inside")));
    // Redirects are followed; the name is the URL's as written.
    file("redirected/moved", HELLO);
    file("disposition/named.bin", b"no name");
    file("mixed/streamed", b"no length");
    file("mixed/local.txt", b"from the context");
    let history = created_by(&built.image);
    assert!(history.iter().any(|h| h.starts_with("/bin/sh -c #(nop) ADD file:") && h.ends_with(" in /opt/ ")));
    assert!(history.iter().any(|h| h.contains("ADD multi:") && h.ends_with(" in /mixed/ ")));
}

#[test]
fn failures_are_clear_errors_and_tag_nothing() {
    let server = Server::start();
    server.route("/ok", Reply::ok(HELLO));
    server.route("/broken", Reply::status(500));
    server.route("/big", Reply::ok(vec![7u8; 64 << 10]));
    server.route("/big-unsized", Reply::ok(vec![7u8; 64 << 10]).no_length());
    server.route("/loop", Reply::status(302).header("Location", "/loop"));
    server.route("/", Reply::ok("root"));
    let mut small = FetchOptions::default();
    (small.enabled, small.max_bytes) = (true, 4096);
    let store = Store::in_memory();
    base(&store, "base:1");
    let wrong = digest_of(b"something else");
    for (line, want) in [
        (format!("ADD {} /x", server.url("/missing")), "HTTP 404"),
        (format!("ADD {} /x", server.url("/broken")), "HTTP 500"),
        (format!("ADD --checksum={wrong} {} /x", server.url("/ok")), "checksum mismatch"),
        (format!("ADD --checksum=sha256:nothex {} /x", server.url("/ok")), "--checksum=sha256:nothex"),
        (format!("ADD --checksum={wrong} local.txt /x"), "exactly one source"),
        (format!("ADD {} /x", server.url("/big")), "larger than the limit of 4096 bytes"),
        (format!("ADD {} /x", server.url("/big-unsized")), "larger than the limit of 4096 bytes"),
        (format!("ADD {} /x", server.url("/loop")), "redirects"),
        (format!("ADD {} /dir/", server.url("/")), "cannot determine a file name"),
        ("ADD ftp://example.com/f /x".to_owned(), "only http:// and https:// URLs"),
        ("ADD http://127.0.0.1:1/refused /x".to_owned(), "download failed"),
        (format!("COPY {} /x", server.url("/ok")), "COPY sources can't be URLs"),
    ] {
        let ctx = context(&format!("FROM base:1\n{line}\n"), &[("local.txt", "l")]);
        let opts = BuildOptions::default().fetch_options(small.clone()).tag("bad");
        let e = build_logged(&store, ctx.path(), &opts).0.unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("Dockerfile:2: ") && msg.contains(&line[..20]), "{line}: {msg}");
        assert!(msg.contains(want), "{line}: {msg}");
        assert!(store.image("bad").is_err(), "{line}: nothing tagged");
    }
    let e = build_logged(
        &store,
        context(&format!("FROM base:1\nADD {} /x\n", server.url("/big")), &[]).path(),
        &BuildOptions::default().fetch_options(small),
    )
    .0
    .unwrap_err();
    assert!(matches!(e.root_cause(), Error::FetchTooLarge { limit: 4096, .. }), "{e:?}");
}

#[test]
fn cache_hits_on_unchanged_content_and_rebuilds_from_a_changed_download_on() {
    let server = Server::start();
    server.route("/a.txt", Reply::ok("version 1"));
    let df = format!("FROM base:1\nENV A=1\nADD {} /srv/\nLABEL after=1\n", server.url("/a.txt"));
    let store = Store::in_memory();
    base(&store, "base:1");
    let ctx = context(&df, &[]);
    let opts = fetching().tag("app");
    let first = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!((first.cached, first.executed), (0, 3));

    // Same content: every step from the cache, the same image; the server is asked again.
    let hits = server.hits();
    let (again, log) = build_logged(&store, ctx.path(), &opts);
    let again = again.unwrap();
    assert_eq!((again.cached, again.executed), (3, 0), "{log:#?}");
    assert_eq!(again.image.id(), first.image.id());
    assert_eq!(server.hits(), hits + 1, "downloaded again to compare content");

    // New content: ENV from the cache, the ADD and everything after rebuilt.
    server.route("/a.txt", Reply::ok("version 2"));
    let changed = build_logged(&store, ctx.path(), &opts).0.unwrap();
    assert_eq!((changed.cached, changed.executed), (1, 2));
    assert_ne!(changed.image.id(), first.image.id());
    assert_eq!(unpacked(&changed.image).entries[Path::new("srv/a.txt")].kind, Kind::File(digest_of(b"version 2")));

    // --no-cache runs everything.
    let nc = build_logged(&store, ctx.path(), &opts.clone().no_cache(true)).0.unwrap();
    assert_eq!((nc.cached, nc.executed), (0, 3));
}
