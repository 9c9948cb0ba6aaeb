//! Faults: a registry killed mid-pull, wrong bytes, cut connections, odd answers.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_registry::spec::{Digest, Reference};
use strata_registry::store::{Backend, BlobStore, MemoryStore, OciDir};
use strata_registry::{Error, Event, NoProgress, PullOptions, PushOptions, pull, push};

use crate::common::*;

/// An image a fake registry serves: manifest bytes and blobs by digest.
#[derive(Clone)]
struct Fake {
    manifest: Vec<u8>,
    digest: Digest,
    media_type: String,
    blobs: HashMap<String, Vec<u8>>,
}

fn fake_image(seed: u64) -> (TestImage, Fake) {
    let (store, img) = small_image(seed);
    let manifest = store.read_blob(&img.manifest.digest, u64::MAX).unwrap();
    let blobs = img.blobs().iter().map(|d| (d.to_string(), store.read_blob(d, u64::MAX).unwrap())).collect();
    let fake =
        Fake { manifest, digest: img.manifest.digest.clone(), media_type: img.manifest.media_type.to_string(), blobs };
    (img, fake)
}

/// Answer like a registry: `/v2/`, the manifest by tag `t` or digest, blobs (with
/// `Range`).
fn serve(f: &Fake, req: &Seen, stream: &mut TcpStream) {
    let path = req.path();
    if path == "/v2/" {
        return respond(stream, 200, &[], b"{}");
    }
    if let Some(r) = path.strip_prefix("/v2/x/manifests/")
        && (r == "t" || r == f.digest.as_str())
    {
        let headers = [("Content-Type", f.media_type.clone()), ("Docker-Content-Digest", f.digest.to_string())];
        return respond(stream, 200, &headers, &f.manifest);
    }
    if let Some(d) = path.strip_prefix("/v2/x/blobs/")
        && let Some(bytes) = f.blobs.get(d)
    {
        return serve_blob(req, stream, bytes);
    }
    respond(stream, 404, &[], br#"{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}"#);
}

fn serve_blob(req: &Seen, stream: &mut TcpStream, bytes: &[u8]) {
    match req.header("range").and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.strip_suffix('-')) {
        Some(start) => {
            let start: usize = start.parse().unwrap();
            let range = format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len());
            respond(stream, 206, &[("Content-Range", range)], &bytes[start..]);
        }
        None => respond(stream, 200, &[], bytes),
    }
}

fn reference(server: &FakeServer, r: &str) -> Reference {
    Reference::parse(&format!("{}/x{r}", server.host())).unwrap()
}

fn pull_opts(dir: &Path) -> PullOptions {
    PullOptions { registry: options(dir), ..Default::default() }
}

/// Nothing but `allowed` blobs in the store, no refs, and fsck clean.
fn assert_untouched(store: &OciDir, allowed: &[Digest]) {
    for d in store.list().unwrap() {
        assert!(allowed.contains(&d), "unexpected blob {d} in the store");
    }
    assert!(store.refs().unwrap().is_empty());
    let report = store.fsck().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn wrong_blob_bytes_are_refused_and_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, fake) = fake_image(10);
    let layer = img.layers[1].clone();
    let mut wrong = fake.blobs[layer.digest.as_str()].clone();
    wrong[100] ^= 1;
    let wrong_digest = Digest::sha256_of(&wrong);
    let f = fake.clone();
    let served = wrong.clone();
    let server = FakeServer::start(move |req, _, stream| {
        if req.path().ends_with(layer.digest.as_str()) {
            return serve_blob(req, stream, &served);
        }
        serve(&f, req, stream)
    });
    let store = OciDir::create(tmp.path().join("s")).unwrap();
    let err = pull(&store, &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
    match &err {
        Error::DigestMismatch { expected, actual, what } => {
            assert_eq!(*expected, img.layers[1].digest);
            assert_eq!(*actual, wrong_digest);
            assert!(what.contains(img.layers[1].digest.as_str()), "{what}");
        }
        e => panic!("expected a digest mismatch, got {e}"),
    }
    assert!(!store.contains(&img.layers[1].digest).unwrap());
    assert!(!store.contains(&wrong_digest).unwrap());
    assert_untouched(&store, &img.blobs());
}

#[test]
fn oversized_blob_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, fake) = fake_image(11);
    let layer = img.layers[0].clone();
    let mut longer = fake.blobs[layer.digest.as_str()].clone();
    longer.extend_from_slice(b"trailing bytes");
    let f = fake.clone();
    let server = FakeServer::start(move |req, _, stream| {
        if req.path().ends_with(layer.digest.as_str()) {
            return respond(stream, 200, &[], &longer);
        }
        serve(&f, req, stream)
    });
    let store = OciDir::create(tmp.path().join("s")).unwrap();
    let err = pull(&store, &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { expected, actual, .. } if expected == img.layers[0].size && actual == expected + 14),
        "{err}"
    );
    assert!(!store.contains(&img.layers[0].digest).unwrap());
    assert_untouched(&store, &img.blobs());
}

#[test]
fn manifest_digest_is_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, fake) = fake_image(12);
    let (_, other) = fake_image(13);
    // Asked by digest, served another manifest.
    let (f, o) = (fake.clone(), other.clone());
    let server = FakeServer::start(move |req, _, stream| {
        if req.path() == format!("/v2/x/manifests/{}", f.digest) {
            return respond(stream, 200, &[("Content-Type", o.media_type.clone())], &o.manifest);
        }
        serve(&f, req, stream)
    });
    let store = OciDir::create(tmp.path().join("s")).unwrap();
    let err = pull(&store, &reference(&server, &format!("@{}", fake.digest)), &pull_opts(tmp.path()), &NoProgress)
        .unwrap_err();
    assert!(matches!(&err, Error::DigestMismatch { expected, .. } if *expected == fake.digest), "{err}");
    assert_untouched(&store, &[]);

    // Asked by tag, with a Docker-Content-Digest that the bytes do not match.
    let (f, o) = (fake.clone(), other.clone());
    let server = FakeServer::start(move |req, _, stream| {
        if req.path() == "/v2/x/manifests/t" {
            let h = [("Content-Type", o.media_type.clone()), ("Docker-Content-Digest", f.digest.to_string())];
            return respond(stream, 200, &h, &o.manifest);
        }
        serve(&f, req, stream)
    });
    let err = pull(&store, &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
    assert!(matches!(&err, Error::DigestMismatch { expected, .. } if *expected == fake.digest), "{err}");
    assert_untouched(&store, &[]);
}

#[test]
fn interrupted_download_resumes_with_range() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, fake) = fake_image(14);
    let layer = img.layers[1].clone();
    let half = (layer.size / 2) as usize;
    let f = fake.clone();
    let cuts = Arc::new(AtomicUsize::new(0));
    let c = cuts.clone();
    let d = layer.digest.clone();
    let server = FakeServer::start(move |req, _, stream| {
        let bytes = &f.blobs[d.as_str()];
        if req.path().ends_with(d.as_str()) && req.header("range").is_none() {
            c.fetch_add(1, Ordering::SeqCst);
            return respond_partial(stream, 200, &[], bytes, half);
        }
        serve(&f, req, stream)
    });
    let retries = Mutex::new(Vec::new());
    let on = |e: &Event<'_>| {
        if let Event::Retrying { descriptor, error, .. } = e {
            retries.lock().unwrap().push((
                descriptor.map(|d| d.digest.clone()),
                error.downcast_ref::<strata_registry::Error>().is_some_and(|e| e.is_transient()),
            ));
        }
    };
    let store = OciDir::create(tmp.path().join("s")).unwrap();
    let pulled = pull(&store, &reference(&server, ":t"), &pull_opts(tmp.path()), &on).unwrap();
    assert_eq!(cuts.load(Ordering::SeqCst), 1);
    let layer_requests: Vec<Seen> =
        server.requests().into_iter().filter(|r| r.path().ends_with(layer.digest.as_str())).collect();
    assert_eq!(layer_requests.len(), 2);
    assert_eq!(layer_requests[1].header("range"), Some(format!("bytes={half}-").as_str()));
    // Nothing was fetched twice.
    let total: u64 = img.config.size + img.layers.iter().map(|l| l.size).sum::<u64>();
    assert_eq!(pulled.bytes_fetched, total);
    assert_eq!(*retries.lock().unwrap(), vec![(Some(layer.digest.clone()), true)]);
    assert_eq!(store.read_blob(&layer.digest, u64::MAX).unwrap(), fake.blobs[layer.digest.as_str()]);
    assert!(store.fsck().unwrap().is_clean());
}

#[test]
fn a_registry_that_ignores_range_is_read_again_from_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, fake) = fake_image(15);
    let layer = img.layers[1].clone();
    let half = (layer.size / 2) as usize;
    let f = fake.clone();
    let first = Arc::new(AtomicBool::new(true));
    let d = layer.digest.clone();
    let server = FakeServer::start(move |req, _, stream| {
        if req.path().ends_with(d.as_str()) {
            let bytes = &f.blobs[d.as_str()];
            let send = if first.swap(false, Ordering::SeqCst) { half } else { bytes.len() };
            return respond_partial(stream, 200, &[], bytes, send);
        }
        serve(&f, req, stream)
    });
    let store = MemoryStore::new();
    let pulled = pull(&store, &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap();
    let total: u64 = img.config.size + img.layers.iter().map(|l| l.size).sum::<u64>();
    assert_eq!(pulled.bytes_fetched, total + half as u64);
    assert_eq!(store.read_blob(&layer.digest, u64::MAX).unwrap(), fake.blobs[layer.digest.as_str()]);
}

#[test]
fn unknown_manifest_media_types_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, fake) = fake_image(16);
    for (content_type, body, want, hint) in [
        (
            "application/vnd.example.thing.v1+json",
            fake.manifest.clone(),
            "application/vnd.example.thing.v1+json",
            "OCI",
        ),
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            b"{}".to_vec(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "schema1",
        ),
        (
            "application/json",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.example.other+json"}"#.to_vec(),
            "application/vnd.example.other+json",
            "OCI",
        ),
    ] {
        let server = FakeServer::start(move |req, _, stream| {
            if req.path() == "/v2/" {
                return respond(stream, 200, &[], b"{}");
            }
            respond(stream, 200, &[("Content-Type", content_type.to_owned())], &body)
        });
        let err =
            pull(&MemoryStore::new(), &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
        assert!(matches!(&err, Error::UnsupportedMediaType { media_type, .. } if media_type == want), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(want) && msg.contains(hint) && msg.contains("/x:t"), "{msg}");
    }
}

#[test]
fn a_document_that_disagrees_with_its_content_type_is_refused() {
    // An index served as a manifest (the ambiguity of CVE-2021-41190).
    let tmp = tempfile::tempdir().unwrap();
    let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let server = FakeServer::start(move |req, _, stream| {
        if req.path() == "/v2/" {
            return respond(stream, 200, &[], b"{}");
        }
        respond(stream, 200, &[("Content-Type", "application/vnd.oci.image.manifest.v1+json".into())], index)
    });
    let err = pull(&MemoryStore::new(), &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::BadDocument { .. }), "{err}");
}

#[test]
fn oversized_manifest_is_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let server = FakeServer::start(move |req, _, stream| {
        if req.path() == "/v2/" {
            return respond(stream, 200, &[], b"{}");
        }
        let big = vec![b' '; 9 << 20];
        respond_partial(stream, 200, &[("Content-Type", "application/vnd.oci.image.manifest.v1+json".into())], &big, 0)
    });
    let err = pull(&MemoryStore::new(), &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit, .. } if limit == 8 << 20), "{err}");
}

#[test]
fn transient_errors_are_retried_and_permanent_ones_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, fake) = fake_image(17);
    let f = fake.clone();
    let failed: Arc<Mutex<std::collections::HashSet<String>>> = Default::default();
    let fl = failed.clone();
    let server = FakeServer::start(move |req, _, stream| {
        // The first request for each manifest or blob gets a 503.
        if req.path() != "/v2/" && fl.lock().unwrap().insert(req.path().to_owned()) {
            return respond(stream, 503, &[], br#"{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}"#);
        }
        serve(&f, req, stream)
    });
    let count = AtomicUsize::new(0);
    let on = |e: &Event<'_>| {
        if let Event::Retrying { error, .. } = e {
            assert!(error.downcast_ref::<strata_registry::Error>().is_some_and(|e| e.is_status(503)), "{error}");
            count.fetch_add(1, Ordering::SeqCst);
        }
    };
    let store = MemoryStore::new();
    pull(&store, &reference(&server, ":t"), &pull_opts(tmp.path()), &on).unwrap();
    // Blob retries are reported; the manifest's retry too.
    assert!(count.load(Ordering::SeqCst) >= img.blobs().len(), "{}", count.load(Ordering::SeqCst));

    // A registry that always fails: retries + 1 attempts, then its error codes.
    let server = FakeServer::start(move |req, _, stream| {
        if req.path() == "/v2/" {
            return respond(stream, 200, &[], b"{}");
        }
        respond(stream, 500, &[], br#"{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}"#)
    });
    let err = pull(&store, &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
    assert!(err.is_status(500), "{err}");
    assert!(err.to_string().contains("UNKNOWN: disk on fire"), "{err}");
    let manifest_requests = server.requests().iter().filter(|r| r.path() != "/v2/").count();
    assert_eq!(manifest_requests, 3, "2 retries");
}

#[test]
fn hostile_auth_answers_give_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (challenge, check) in [
        (None, "without a Basic or Bearer"),
        (Some("Bearer realm=\"ftp://evil/token\""), "not an http(s) URL"),
        (Some("Bearer service=x"), "without a Basic or Bearer"),
        // Not even a valid header: a malformed response.
        (Some("Negotiate \u{7f}\"\"=,"), ""),
    ] {
        let server = FakeServer::start(move |_, _, stream| {
            let h: Vec<(&str, String)> = challenge.map(|c| ("WWW-Authenticate", c.to_owned())).into_iter().collect();
            respond(stream, 401, &h, b"")
        });
        let err =
            pull(&MemoryStore::new(), &reference(&server, ":t"), &pull_opts(tmp.path()), &NoProgress).unwrap_err();
        assert!(
            matches!(err, Error::InvalidResponse { .. }) && err.to_string().contains(check),
            "{challenge:?}: {err}"
        );
    }
}

#[test]
fn registry_digest_for_a_pushed_manifest_must_match() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, img) = small_image(18);
    let server = FakeServer::start(move |req, _, stream| match req.method.as_str() {
        "GET" => respond(stream, 200, &[], b"{}"),
        "HEAD" => respond(stream, 200, &[], b""),
        _ => {
            let other = Digest::sha256_of(b"something else");
            respond(stream, 201, &[("Docker-Content-Digest", other.to_string())], b"")
        }
    });
    let opts = PushOptions { registry: options(tmp.path()), ..Default::default() };
    let err = push(&src, &img.manifest, &reference(&server, ":t"), &opts, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, Error::ManifestDigestMismatch { expected, .. } if *expected == img.manifest.digest),
        "{err}"
    );
}

/// Build an image with one large incompressible layer, push it to `reg`.
fn push_big_image(reg: &Registry, dir: &Path, size: usize) -> TestImage {
    let src = MemoryStore::new();
    let img = make_image(&src, &[vec![("big", random_bytes(99, size))]], "linux/amd64", false, None);
    let opts = PushOptions { registry: options(dir), ..Default::default() };
    push(&src, &img.manifest, &reg.reference("big:1"), &opts, &NoProgress).unwrap();
    img
}

#[test]
fn registry_killed_mid_pull_leaves_no_partial_blob_and_a_rerun_finishes() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(Mode::Plain);
    // 48 MiB: far more than the loopback socket buffers hold once the registry is gone.
    let img = push_big_image(&reg, tmp.path(), 48 << 20);
    let big = img.layers[0].clone();
    let store = OciDir::create(tmp.path().join("s")).unwrap();
    let pid = reg.pid();
    let killed = AtomicBool::new(false);
    let on = |e: &Event<'_>| {
        if let Event::BlobProgress { descriptor, bytes } = e
            && descriptor.digest == big.digest
            && *bytes >= 8 << 20
            && !killed.swap(true, Ordering::SeqCst)
        {
            kill_pid(pid);
        }
    };
    let err = pull(&store, &reg.reference("big:1"), &pull_opts(tmp.path()), &on).unwrap_err();
    assert!(killed.load(Ordering::SeqCst));
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(!store.contains(&big.digest).unwrap(), "a partial blob was stored");
    assert!(!store.blob_path(&big.digest).exists());
    assert_untouched(&store, &img.blobs());
    let report = store.fsck().unwrap();
    assert!(report.temp_files.is_empty(), "temp files left: {:?}", report.temp_files);

    reg.kill();
    reg.restart();
    let pulled = pull(&store, &reg.reference("big:1"), &pull_opts(tmp.path()), &NoProgress).unwrap();
    assert_eq!(pulled.descriptor.digest, img.manifest.digest);
    assert!(store.contains(&big.digest).unwrap());
    assert!(store.fsck().unwrap().is_clean());
}

#[test]
fn registry_restarted_during_retries_resumes_the_download() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let img = push_big_image(&reg, tmp.path(), 24 << 20);
    let big = img.layers[0].clone();
    let reference = reg.reference("big:1");
    let pid = reg.pid();
    let reg = Arc::new(Mutex::new(reg));
    let killed = Arc::new(AtomicBool::new(false));

    // Restart the registry shortly after the progress callback killed it.
    let (r, k) = (reg.clone(), killed.clone());
    let restarter = std::thread::spawn(move || {
        while !k.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut reg = r.lock().unwrap();
        reg.kill();
        std::thread::sleep(Duration::from_millis(100));
        reg.restart();
    });
    let store = OciDir::create(tmp.path().join("s")).unwrap();
    let mut opts = pull_opts(tmp.path());
    opts.registry.retries = 8;
    opts.registry.retry_delay = Duration::from_millis(100);
    let k = killed.clone();
    let on = move |e: &Event<'_>| {
        if let Event::BlobProgress { descriptor, bytes } = e
            && descriptor.digest == big.digest
            && *bytes >= 6 << 20
            && !k.swap(true, Ordering::SeqCst)
        {
            kill_pid(pid);
        }
    };
    let pulled = pull(&store, &reference, &opts, &on).unwrap();
    restarter.join().unwrap();
    let total: u64 = img.config.size + img.layers[0].size;
    // Resumed, not started over (which would fetch the first 6 MiB twice).
    assert!(pulled.bytes_fetched < total + (6 << 20), "fetched {} of {total}", pulled.bytes_fetched);
    assert!(store.fsck().unwrap().is_clean());
    assert_eq!(store.resolve_ref(&pulled.ref_name).unwrap().digest, img.manifest.digest);
}
