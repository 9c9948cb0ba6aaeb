//! Push and pull against the real registry: round trips, skipping, chunks, mounts.

use std::collections::BTreeMap;
use std::sync::Mutex;

use strata_registry::spec::{Digest, MediaType};
use strata_registry::store::{Backend, BlobStore, MemoryStore, OciDir};
use strata_registry::{Error, Event, NoProgress, PullOptions, PushOptions, SkipReason, pull, push};

use crate::common::*;

/// Events seen for one blob: (started, done, skipped reasons, last progress).
type BlobEvents = (u32, u32, Vec<SkipReason>, u64);

/// Records events per blob.
#[derive(Default)]
struct Recorder {
    blobs: Mutex<BTreeMap<Digest, BlobEvents>>,
    manifests: Mutex<Vec<Digest>>,
}

impl Recorder {
    fn on(&self, e: &Event<'_>) {
        let mut b = self.blobs.lock().unwrap();
        match e {
            Event::BlobStarted { descriptor } => b.entry(descriptor.digest.clone()).or_default().0 += 1,
            Event::BlobDone { descriptor } => b.entry(descriptor.digest.clone()).or_default().1 += 1,
            Event::BlobSkipped { descriptor, reason } => {
                b.entry(descriptor.digest.clone()).or_default().2.push(*reason)
            }
            Event::BlobProgress { descriptor, bytes } => {
                let entry = b.entry(descriptor.digest.clone()).or_default();
                assert!(*bytes >= entry.3 || *bytes == 0, "progress went backwards for {}", descriptor.digest);
                assert!(*bytes <= descriptor.size);
                entry.3 = *bytes;
            }
            Event::ManifestDone { descriptor } => self.manifests.lock().unwrap().push(descriptor.digest.clone()),
            _ => {}
        }
    }

    /// Every blob of `img` was transferred once, with progress up to its size.
    fn assert_transferred(&self, img: &TestImage) {
        let b = self.blobs.lock().unwrap();
        for d in std::iter::once(&img.config).chain(&img.layers) {
            let (started, done, skipped, last) = b.get(&d.digest).cloned().unwrap_or_default();
            assert_eq!((started, done, skipped.len()), (1, 1, 0), "{}", d.digest);
            assert_eq!(last, d.size, "{}", d.digest);
        }
    }

    fn assert_skipped(&self, img: &TestImage, reason: SkipReason) {
        let b = self.blobs.lock().unwrap();
        for d in img.blobs() {
            let (started, done, skipped, _) = b.get(&d).cloned().unwrap_or_default();
            assert_eq!((started, done, skipped), (0, 0, vec![reason]), "{d}");
        }
    }
}

fn same_blobs(a: &dyn BlobStore, b: &dyn BlobStore, digests: &[Digest]) {
    for d in digests {
        assert_eq!(a.read_blob(d, u64::MAX).unwrap(), b.read_blob(d, u64::MAX).unwrap(), "{d}");
    }
}

#[test]
fn push_then_pull_round_trip() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let (src, img) = small_image(1);
    let source = src.resolve_ref("src").unwrap();

    let rec = Recorder::default();
    let opts = PushOptions { registry: options(tmp.path()), ..Default::default() };
    let pushed = push(&src, &source, &reg.reference("app:v1"), &opts, &|e: &Event<'_>| rec.on(e)).unwrap();
    assert_eq!(pushed.reference.to_string(), format!("{}/app:v1@{}", reg.host(), img.manifest.digest));
    assert_eq!((pushed.blobs_uploaded, pushed.blobs_skipped, pushed.manifests), (3, 0, 1));
    assert_eq!(pushed.bytes_uploaded, img.config.size + img.layers.iter().map(|l| l.size).sum::<u64>());
    rec.assert_transferred(&img);
    assert_eq!(*rec.manifests.lock().unwrap(), vec![img.manifest.digest.clone()]);

    // Again: the registry has every blob.
    let rec = Recorder::default();
    let pushed = push(&src, &source, &reg.reference("app:v1"), &opts, &|e: &Event<'_>| rec.on(e)).unwrap();
    assert_eq!((pushed.blobs_uploaded, pushed.blobs_skipped), (0, 3));
    rec.assert_skipped(&img, SkipReason::Exists);

    // Pull into an OCI layout.
    let dst = OciDir::create(tmp.path().join("dst")).unwrap();
    let popts = PullOptions { registry: options(tmp.path()), ..Default::default() };
    let rec = Recorder::default();
    let pulled = pull(&dst, &reg.reference("app:v1"), &popts, &|e: &Event<'_>| rec.on(e)).unwrap();
    assert_eq!(pulled.ref_name, format!("{}/app:v1", reg.host()));
    assert_eq!(pulled.descriptor.digest, img.manifest.digest);
    assert_eq!(pulled.descriptor.media_type, MediaType::OciManifest);
    assert_eq!(pulled.config.as_ref().map(|c| &c.digest), Some(&img.config.digest));
    assert_eq!(pulled.reference.digest(), Some(&img.manifest.digest));
    assert_eq!((pulled.blobs_fetched, pulled.blobs_skipped), (3, 0));
    assert_eq!(pulled.bytes_fetched, img.config.size + img.layers.iter().map(|l| l.size).sum::<u64>());
    rec.assert_transferred(&img);
    assert_eq!(dst.resolve_ref(&pulled.ref_name).unwrap().digest, img.manifest.digest);
    let mut all = img.blobs();
    all.push(img.manifest.digest.clone());
    same_blobs(&src, &dst, &all);
    assert!(dst.fsck().unwrap().is_clean());

    // Again: everything is in the store already.
    let rec = Recorder::default();
    let again = pull(&dst, &reg.reference("app:v1"), &popts, &|e: &Event<'_>| rec.on(e)).unwrap();
    assert_eq!((again.blobs_fetched, again.blobs_skipped, again.bytes_fetched), (0, 3, 0));
    rec.assert_skipped(&img, SkipReason::Present);

    // By digest, under a name of the caller's choosing.
    let by_digest = reg.reference(&format!("app@{}", img.manifest.digest));
    let named = PullOptions { ref_name: Some("mine:1".into()), ..popts.clone() };
    let mem = MemoryStore::new();
    let p = pull(&mem, &by_digest, &named, &NoProgress).unwrap();
    assert_eq!(p.ref_name, "mine:1");
    assert_eq!(mem.resolve_ref("mine:1").unwrap().digest, img.manifest.digest);
    // The default name of a digest reference is the reference itself.
    let p = pull(&mem, &by_digest, &popts, &NoProgress).unwrap();
    assert_eq!(p.ref_name, format!("{}/app@{}", reg.host(), img.manifest.digest));
}

#[test]
fn docker_schema2_round_trip_keeps_media_types() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let src = MemoryStore::new();
    let img = make_image(&src, &[vec![("a", b"docker".to_vec())]], "linux/amd64", true, Some("d"));
    let opts = PushOptions { registry: options(tmp.path()), ..Default::default() };
    push(&src, &img.manifest, &reg.reference("docker:1"), &opts, &NoProgress).unwrap();
    let dst = MemoryStore::new();
    let popts = PullOptions { registry: options(tmp.path()), ..Default::default() };
    let pulled = pull(&dst, &reg.reference("docker:1"), &popts, &NoProgress).unwrap();
    assert_eq!(pulled.descriptor.media_type, MediaType::DockerManifest);
    assert_eq!(pulled.descriptor.digest, img.manifest.digest);
    assert_eq!(pulled.config.unwrap().media_type, MediaType::DockerConfig);
}

#[test]
fn chunked_upload_and_cross_repository_mount() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    let (src, img) = small_image(2);
    // Every blob over 1 KiB goes in 64 KiB chunks (the 200 KB layer in 4).
    let opts = PushOptions {
        registry: options(tmp.path()),
        chunked_threshold: 1024,
        chunk_size: 64 * 1024,
        ..Default::default()
    };
    let pushed = push(&src, &img.manifest, &reg.reference("base:1"), &opts, &NoProgress).unwrap();
    assert_eq!(pushed.blobs_uploaded, 3);

    // The registry assembled the chunks into the right blobs.
    let back = MemoryStore::new();
    let popts = PullOptions { registry: options(tmp.path()), ..Default::default() };
    pull(&back, &reg.reference("base:1"), &popts, &NoProgress).unwrap();
    same_blobs(&src, &back, &img.blobs());

    // Into another repository, mounting from the first: nothing is uploaded.
    let rec = Recorder::default();
    let mopts = PushOptions { mount_from: Some("base".into()), ..opts.clone() };
    let pushed = push(&src, &img.manifest, &reg.reference("other/copy:2"), &mopts, &|e: &Event<'_>| rec.on(e)).unwrap();
    assert_eq!((pushed.blobs_mounted, pushed.blobs_uploaded, pushed.bytes_uploaded), (3, 0, 0));
    rec.assert_skipped(&img, SkipReason::Mounted);
    let again = MemoryStore::new();
    pull(&again, &reg.reference("other/copy:2"), &popts, &NoProgress).unwrap();
    same_blobs(&src, &again, &img.blobs());
}

#[test]
fn corrupt_local_blob_is_not_pushed() {
    if !have_registry() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Mode::Plain);
    for chunked in [false, true] {
        let (src, img) = small_image(3);
        let layer = &img.layers[1];
        let mut bytes = src.read_blob(&layer.digest, u64::MAX).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        src.insert_unverified(layer.digest.clone(), bytes);
        let threshold = if chunked { 1024 } else { u64::MAX };
        let opts = PushOptions {
            registry: options(tmp.path()),
            chunked_threshold: threshold,
            chunk_size: 64 * 1024,
            ..Default::default()
        };
        let tag = format!("bad:{chunked}");
        let err = push(&src, &img.manifest, &reg.reference(&tag), &opts, &NoProgress).unwrap_err();
        assert!(matches!(&err, Error::DigestMismatch { expected, .. } if *expected == layer.digest), "{err}");

        // The registry has neither the blob nor the manifest.
        let popts = PullOptions { registry: options(tmp.path()), ..Default::default() };
        let err = pull(&MemoryStore::new(), &reg.reference(&tag), &popts, &NoProgress).unwrap_err();
        assert!(err.is_status(404), "{err}");
        assert_eq!(err.registry_errors()[0].code, "MANIFEST_UNKNOWN", "{err}");
        let url = format!("http://{}/v2/bad/blobs/{}", reg.host(), layer.digest);
        let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).http_status_as_error(false).build().into();
        let status = agent.head(&url).call().unwrap().status();
        assert_eq!(status.as_u16(), 404);
    }
}

#[test]
fn chunked_upload_protocol() {
    // A fake registry that checks the chunks: consecutive Content-Ranges, a new
    // Location after each PATCH, and the digest on the final PUT.
    let tmp = tempfile::tempdir().unwrap();
    let (src, img) = small_image(4);
    let received: std::sync::Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Default::default();
    let store = received.clone();
    let server = FakeServer::start(move |req, body, stream| {
        let path = req.path().to_owned();
        match req.method.as_str() {
            "GET" if path == "/v2/" => respond(stream, 200, &[], b"{}"),
            "HEAD" => respond(stream, 404, &[], b""),
            "POST" => {
                let id = format!("u{}", store.lock().unwrap().len());
                store.lock().unwrap().insert(id.clone(), Vec::new());
                respond(stream, 202, &[("Location", format!("/v2/x/blobs/uploads/{id}?_state=0"))], b"");
            }
            "PATCH" => {
                let id = path.rsplit('/').next().unwrap().to_owned();
                let mut all = store.lock().unwrap();
                let data = all.get_mut(&id).unwrap();
                let want = format!("{}-{}", data.len(), data.len() + body.len() - 1);
                if req.header("content-range") != Some(want.as_str()) {
                    return respond(stream, 416, &[], b"");
                }
                data.extend_from_slice(body);
                let n = data.len();
                respond(
                    stream,
                    202,
                    &[("Location", format!("/v2/x/blobs/uploads/{id}?_state={n}")), ("Range", format!("0-{}", n - 1))],
                    b"",
                );
            }
            "PUT" if path.contains("/blobs/uploads/") => {
                let id = path.rsplit('/').next().unwrap().to_owned();
                let mut all = store.lock().unwrap();
                let data = all.get_mut(&id).unwrap();
                data.extend_from_slice(body);
                let digest = Digest::sha256_of(data);
                if req.query("digest") != vec![digest.to_string()] {
                    return respond(stream, 400, &[], br#"{"errors":[{"code":"DIGEST_INVALID","message":"x"}]}"#);
                }
                respond(stream, 201, &[("Docker-Content-Digest", digest.to_string())], b"");
            }
            "PUT" => {
                let digest = Digest::sha256_of(body);
                respond(stream, 201, &[("Docker-Content-Digest", digest.to_string())], b"");
            }
            _ => respond(stream, 405, &[], b""),
        }
    });
    let opts = PushOptions {
        registry: options(tmp.path()),
        chunked_threshold: 100_000,
        chunk_size: 64 * 1024,
        concurrency: 1,
        ..Default::default()
    };
    let dest = strata_registry::spec::Reference::parse(&format!("{}/x:1", server.host())).unwrap();
    push(&src, &img.manifest, &dest, &opts, &NoProgress).unwrap();
    let patches: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.header("content-range").unwrap().to_owned())
        .collect();
    // Only the 200 KB layer is over the threshold: 64 KiB chunks, the last one short.
    let big = img.layers.iter().find(|l| l.size > 100_000).unwrap();
    let mut want = Vec::new();
    let mut at = 0;
    while at < big.size {
        let end = (at + 64 * 1024).min(big.size);
        want.push(format!("{at}-{}", end - 1));
        at = end;
    }
    assert_eq!(patches, want);
    let uploads = received.lock().unwrap();
    let blob = uploads.values().find(|v| v.len() as u64 == big.size).unwrap();
    assert_eq!(Digest::sha256_of(blob), big.digest);
}
