//! Push: store -> registry.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use strata_spec::{Descriptor, Digest, ManifestOrIndex, Reference};
use strata_store::{Backend, BlobReader, MAX_DOCUMENT_SIZE};

use crate::client::{Body, Client, Method, RegistryOptions, Request, Scope, drain, header, query_escape};
use crate::error::{Error, Result};
use crate::pool;
use crate::progress::{Event, Progress, SkipReason};

/// Options of [`push`].
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// How to reach the registry.
    pub registry: RegistryOptions,
    /// A repository on the same registry that may already have the blobs
    /// (`library/base`): they are mounted from it instead of uploaded.
    pub mount_from: Option<String>,
    /// Blobs larger than this are uploaded in chunks (`PATCH` with `Content-Range`),
    /// each of which can be resumed after a failure; smaller ones in one `PUT`.
    pub chunked_threshold: u64,
    /// The size of a chunk.
    pub chunk_size: u64,
    /// How many blobs to upload at once.
    pub concurrency: usize,
    /// Also push the artifacts the store has attached to the image (SBOMs, signatures:
    /// its referrers, and theirs), each listed for the registry's referrers API, or,
    /// where the registry has none, in the referrers tag schema's index. Default: yes.
    pub referrers: bool,
}

/// Default [`PushOptions::chunked_threshold`]: 64 MiB. Below it a failed upload costs
/// little to redo; above it, chunks save re-sending what the registry already has.
pub const DEFAULT_CHUNKED_THRESHOLD: u64 = 64 << 20;
/// Default [`PushOptions::chunk_size`]: 16 MiB, a few per large layer. Chunks stream
/// from the store, so their size costs no memory.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            registry: RegistryOptions::default(),
            mount_from: None,
            chunked_threshold: DEFAULT_CHUNKED_THRESHOLD,
            chunk_size: DEFAULT_CHUNK_SIZE,
            concurrency: crate::pull::DEFAULT_CONCURRENCY,
            referrers: true,
        }
    }
}

/// What [`push`] did.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// Where the image is now: the destination pinned to the manifest's digest.
    pub reference: Reference,
    /// The manifest or index pushed (media type, digest, size).
    pub descriptor: Descriptor,
    /// Manifests and indexes uploaded (children of an index included).
    pub manifests: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs the registry already had in the repository.
    pub blobs_skipped: usize,
    /// Blobs mounted from [`PushOptions::mount_from`].
    pub blobs_mounted: usize,
    /// Bytes uploaded for blobs (retried bytes included).
    pub bytes_uploaded: u64,
    /// Artifacts attached to the image (referrers) pushed with it.
    pub referrers: usize,
    /// Of those, how many went into the referrers tag schema's index because the
    /// registry did not answer with `OCI-Subject` (it has no referrers API).
    pub referrers_tagged: usize,
}

/// The repository to mount blobs from when pushing an image that came from `source`
/// to `dest`: `source`'s repository when both are on the same registry and the
/// repositories differ (`127.0.0.1:5000/base:1` -> `127.0.0.1:5000/copy:1` mounts
/// from `base`), else `None`. For [`PushOptions::mount_from`].
pub fn mount_source(source: &Reference, dest: &Reference) -> Option<String> {
    (source.registry() == dest.registry() && source.repository() != dest.repository())
        .then(|| source.repository().to_owned())
}

/// How a blob got to the registry.
enum Outcome {
    Uploaded(u64),
    Skipped(SkipReason),
}

/// A manifest or index read from the store.
struct LocalDoc {
    descriptor: Descriptor,
    bytes: Vec<u8>,
    document: ManifestOrIndex,
}

/// Push the image `source` (a manifest or index descriptor in `store`, as
/// [`Backend::resolve_ref`] returns) to `dest`.
///
/// Blobs go first, several at once: those the registry has are skipped (`HEAD`),
/// those in [`PushOptions::mount_from`] are mounted, the rest uploaded (in one `PUT`,
/// or in chunks above [`PushOptions::chunked_threshold`]), streamed and verified from
/// the store. Then manifests, children of an index before the index, the last one
/// under `dest`'s tag (or digest). The digest the registry reports for each manifest
/// must equal ours.
pub fn push(
    store: &dyn Backend,
    source: &Descriptor,
    dest: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<Pushed> {
    if let Some(d) = dest.digest()
        && *d != source.digest
    {
        // The destination pins a digest the image does not have.
        return Err(Error::DigestMismatch {
            what: format!("push of {} to {dest}", source.digest),
            expected: d.clone(),
            actual: source.digest.clone(),
        });
    }
    let top = Descriptor::new(source.media_type.clone(), source.digest.clone(), source.size);
    let mut docs = Vec::new();
    collect_local(store, &top, 0, &mut docs)?;

    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen = HashSet::new();
    for doc in &docs {
        if let ManifestOrIndex::Manifest(m) = &doc.document {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if seen.insert(d.digest.clone()) {
                    blobs.push(d.clone());
                }
            }
        }
    }

    // Largest first: the longest transfer starts at once and the small ones fill in.
    blobs.sort_by_key(|d| std::cmp::Reverse(d.size));
    let client = Client::new(dest.registry(), &options.registry)?;
    let repo = dest.repository();
    let mount_from = options.mount_from.as_deref().filter(|f| *f != repo);
    let scope = Scope::push(repo, mount_from);
    let cancel = AtomicBool::new(false);
    let uploader =
        Uploader { client: &client, store, repo, scope: &scope, options, mount_from, progress, cancel: &cancel };
    let mut outcomes = pool::run(&blobs, options.concurrency, &cancel, |d| uploader.blob(d))?;

    for doc in &docs {
        let target = if doc.descriptor.digest == top.digest {
            dest.tag().map_or_else(|| top.digest.to_string(), str::to_owned)
        } else {
            doc.descriptor.digest.to_string()
        };
        put_manifest(&client, repo, &target, doc, &scope, progress)?;
        progress.event(&Event::ManifestDone { descriptor: &doc.descriptor });
    }
    let (referrers, referrers_tagged) =
        if options.referrers { push_referrers(&uploader, &docs, &mut outcomes)? } else { (0, 0) };

    // The image now has a name in that repository: docker lists it in RepoDigests. A
    // push only reads the store, so this is recorded only in a store that keeps records
    // (never in a layout strata has only read), and a store that cannot be written to
    // does not fail the push that succeeded.
    if store.keeps_records() {
        let repo_digest = format!("{}@{}", dest.familiar_name(), top.digest);
        let _ = store.update_image_record(&source.digest, &mut |r| r.add_repo_digest(&repo_digest));
    }

    let mut pushed = Pushed {
        reference: dest.with_digest(top.digest.clone()),
        descriptor: top,
        manifests: docs.len(),
        blobs_uploaded: 0,
        blobs_skipped: 0,
        blobs_mounted: 0,
        bytes_uploaded: 0,
        referrers,
        referrers_tagged,
    };
    for o in outcomes {
        match o {
            Outcome::Uploaded(n) => {
                pushed.blobs_uploaded += 1;
                pushed.bytes_uploaded += n;
            }
            Outcome::Skipped(SkipReason::Mounted) => pushed.blobs_mounted += 1,
            Outcome::Skipped(_) => pushed.blobs_skipped += 1,
        }
    }
    Ok(pushed)
}

/// Read `desc` and, for an index, its children from the store; children come first.
fn collect_local(store: &dyn Backend, desc: &Descriptor, depth: usize, out: &mut Vec<LocalDoc>) -> Result<()> {
    /// As when pulling: deeper nesting than this is not an image.
    const MAX_DEPTH: usize = 4;
    let what = || format!("local {}", desc.digest);
    if !desc.media_type.is_manifest() && !desc.media_type.is_index() {
        return Err(Error::UnsupportedMediaType { reference: what(), media_type: desc.media_type.to_string() });
    }
    let bytes = store.read_descriptor(desc, MAX_DOCUMENT_SIZE).map_err(|e| Error::from_store(e, what))?;
    let document = ManifestOrIndex::from_slice_as(&bytes, &desc.media_type)
        .map_err(|source| Error::BadDocument { reference: what(), source })?;
    if let ManifestOrIndex::Index(index) = &document {
        if depth >= MAX_DEPTH {
            return Err(Error::UnsupportedMediaType {
                reference: what(),
                media_type: format!("{} nested more than {MAX_DEPTH} deep", desc.media_type),
            });
        }
        for child in &index.manifests {
            if out.iter().any(|d| d.descriptor.digest == child.digest) {
                continue;
            }
            let child = Descriptor::new(child.media_type.clone(), child.digest.clone(), child.size);
            collect_local(store, &child, depth + 1, out)?;
        }
    }
    out.push(LocalDoc { descriptor: desc.clone(), bytes, document });
    Ok(())
}

/// Push the referrers the store has for the documents `pushed` (and their referrers in
/// turn): blobs, then the manifest by digest; a registry that does not confirm the
/// subject (`OCI-Subject`) gets the descriptor in the tag schema's index. Returns how
/// many were pushed and how many of those through the tag schema; blob outcomes go to
/// `outcomes`.
fn push_referrers(up: &Uploader<'_>, pushed: &[LocalDoc], outcomes: &mut Vec<Outcome>) -> Result<(usize, usize)> {
    let all = strata_store::Referrers::scan(up.store)
        .map_err(|e| Error::from_store(e, || "the store's referrers".to_owned()))?;
    let list = all.closure(pushed.iter().map(|d| &d.descriptor.digest));
    let mut tagged = 0;
    for referrer in &list {
        let plain = Descriptor::new(referrer.media_type.clone(), referrer.digest.clone(), referrer.size);
        let mut docs = Vec::new();
        collect_local(up.store, &plain, 0, &mut docs)?;
        let mut blobs: Vec<Descriptor> = Vec::new();
        for doc in &docs {
            if let ManifestOrIndex::Manifest(m) = &doc.document {
                blobs.extend(
                    std::iter::once(&m.config)
                        .chain(&m.layers)
                        .filter(|d| !blobs.iter().any(|b| b.digest == d.digest))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        outcomes.extend(pool::run(&blobs, up.options.concurrency, up.cancel, |d| up.blob(d))?);
        let mut confirmed = None;
        for doc in &docs {
            confirmed = put_manifest(up.client, up.repo, doc.descriptor.digest.as_str(), doc, up.scope, up.progress)?;
            up.progress.event(&Event::ManifestDone { descriptor: &doc.descriptor });
        }
        let Some(top) = docs.last() else { continue };
        let Some(subject) = top.document.subject() else { continue };
        if confirmed.is_none() {
            crate::referrers::add_to_tag_schema(up.client, up.repo, &subject.digest, referrer, up.scope)?;
            tagged += 1;
        }
    }
    Ok((list.len(), tagged))
}

/// `PUT /v2/<repo>/manifests/<target>` with the exact bytes; check the digest the
/// registry reports. Returns the `OCI-Subject` the registry answered with: a registry
/// with the referrers API sends it for a manifest with a `subject`.
fn put_manifest(
    client: &Client,
    repo: &str,
    target: &str,
    doc: &LocalDoc,
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<Option<String>> {
    let url = client.url(&format!("/v2/{repo}/manifests/{target}"))?;
    let reported = client.with_retries(Some(&doc.descriptor), progress, |_| {
        let req = Request::new(Method::Put, url.clone())
            .header("Content-Type", doc.descriptor.media_type.as_str())
            .body(Body::Bytes(&doc.bytes));
        let resp = client.send(req, scope)?;
        let resp = client.check(Method::Put, &url, resp, &[200, 201, 202], scope)?;
        let reported = header(&resp, "docker-content-digest").map(str::to_owned);
        let subject = header(&resp, "oci-subject").map(str::to_owned);
        drain(resp);
        Ok((reported, subject))
    })?;
    let (reported, subject) = reported;
    if let Some(reported) = reported
        && Digest::parse(reported.trim()).ok().as_ref() != Some(&doc.descriptor.digest)
    {
        return Err(Error::ManifestDigestMismatch {
            reference: format!("{}/{repo}:{target}", client.registry()),
            expected: doc.descriptor.digest.clone(),
            reported,
        });
    }
    Ok(subject)
}

/// Where a blob upload stands after `POST /v2/<repo>/blobs/uploads/`.
enum Started {
    /// The registry mounted the blob from another repository: done.
    Mounted,
    /// An upload session, at this URL.
    Session(String),
}

/// Uploads blobs of one push.
struct Uploader<'a> {
    client: &'a Client,
    store: &'a dyn Backend,
    repo: &'a str,
    scope: &'a Scope,
    options: &'a PushOptions,
    mount_from: Option<&'a str>,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
}

impl Uploader<'_> {
    fn blob(&self, desc: &Descriptor) -> Result<Outcome> {
        let client = self.client;
        if desc.media_type.is_foreign_layer() && !self.store.contains(&desc.digest)? {
            self.progress.event(&Event::BlobSkipped { descriptor: desc, reason: SkipReason::Foreign });
            return Ok(Outcome::Skipped(SkipReason::Foreign));
        }
        // Make sure the blob is there before telling the registry anything.
        let size = self.store.stat(&desc.digest)?.ok_or_else(|| strata_store::Error::NotFound(desc.digest.clone()))?;
        if size != desc.size {
            return Err(Error::SizeMismatch {
                what: format!("local blob {}", desc.digest),
                expected: desc.size,
                actual: size,
            });
        }
        let url = client.url(&format!("/v2/{}/blobs/{}", self.repo, desc.digest))?;
        let exists = client.with_retries(Some(desc), self.progress, |_| {
            let resp = client.send(Request::new(Method::Head, url.clone()), self.scope)?;
            match resp.status().as_u16() {
                200 => Ok(true),
                404 => Ok(false),
                _ => Err(client.fail(Method::Head, &url, resp, self.scope)),
            }
        })?;
        if exists {
            self.progress.event(&Event::BlobSkipped { descriptor: desc, reason: SkipReason::Exists });
            return Ok(Outcome::Skipped(SkipReason::Exists));
        }
        let mut session = match self.start(desc, self.mount_from)? {
            Started::Mounted => {
                self.progress.event(&Event::BlobSkipped { descriptor: desc, reason: SkipReason::Mounted });
                return Ok(Outcome::Skipped(SkipReason::Mounted));
            }
            Started::Session(url) => url,
        };
        self.progress.event(&Event::BlobStarted { descriptor: desc });
        let chunked = desc.size > self.options.chunked_threshold;
        let mut sent = 0u64;
        let mut attempt = 0;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let r = if chunked {
                self.chunked(desc, &mut session, attempt > 0, &mut sent)
            } else {
                self.monolithic(desc, &session, &mut sent)
            };
            match r {
                Ok(()) => break,
                Err(e) if e.is_transient() && attempt < client.retries() => {
                    let delay = client.retry_delay(attempt);
                    self.progress.event(&Event::Retrying {
                        descriptor: Some(desc),
                        attempt: attempt + 1,
                        delay,
                        error: &e,
                    });
                    std::thread::sleep(delay);
                    attempt += 1;
                    if !chunked {
                        // A failed PUT may leave its session unusable: start a new one.
                        session = match self.start(desc, None)? {
                            Started::Session(url) => url,
                            Started::Mounted => break,
                        };
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.progress.event(&Event::BlobDone { descriptor: desc });
        Ok(Outcome::Uploaded(sent))
    }

    /// `POST /v2/<repo>/blobs/uploads/`, with `?mount=&from=` when mounting.
    fn start(&self, desc: &Descriptor, mount_from: Option<&str>) -> Result<Started> {
        let client = self.client;
        let mut url = client.url(&format!("/v2/{}/blobs/uploads/", self.repo))?;
        if let Some(from) = mount_from {
            url.push_str(&format!("?mount={}&from={}", query_escape(desc.digest.as_str()), query_escape(from)));
        }
        client.with_retries(Some(desc), self.progress, |_| {
            let resp = client.send(Request::new(Method::Post, url.clone()), self.scope)?;
            match resp.status().as_u16() {
                201 if mount_from.is_some() => {
                    drain(resp);
                    Ok(Started::Mounted)
                }
                202 => {
                    let location = self.location(&url, &resp)?;
                    drain(resp);
                    Ok(Started::Session(location))
                }
                _ => Err(client.fail(Method::Post, &url, resp, self.scope)),
            }
        })
    }

    fn location(&self, url: &str, resp: &crate::client::HttpResponse) -> Result<String> {
        let loc = header(resp, "location").ok_or_else(|| Error::InvalidResponse {
            url: crate::client::strip_query(url),
            reason: format!("HTTP {} without a Location header", resp.status().as_u16()),
        })?;
        self.client.resolve_location(url, loc)
    }

    fn open(&self, desc: &Descriptor) -> Result<BlobReader> {
        self.store.open_descriptor(desc).map_err(|e| Error::from_store(e, || format!("local blob {}", desc.digest)))
    }

    /// One `PUT <session>?digest=<digest>` with the whole blob.
    fn monolithic(&self, desc: &Descriptor, session: &str, sent: &mut u64) -> Result<()> {
        let client = self.client;
        let url = with_query(session, "digest", desc.digest.as_str());
        let mut blob = self.open(desc)?;
        let mut body = UploadReader::new(&mut blob, desc, 0, desc.size, self.progress, self.cancel);
        let req = Request::new(Method::Put, url.clone())
            .header("Content-Type", "application/octet-stream")
            .body(Body::Reader(&mut body, desc.size));
        let result = client.send(req, self.scope);
        *sent += body.count;
        if let Some(e) = body.failure.take() {
            return Err(e);
        }
        let resp = client.check(Method::Put, &url, result?, &[201, 204], self.scope)?;
        drain(resp);
        Ok(())
    }

    /// `PATCH` chunks with `Content-Range`, then `PUT ?digest=`. With `resume`, ask the
    /// registry how much it has (`GET <session>`) and continue from there.
    fn chunked(&self, desc: &Descriptor, session: &mut String, resume: bool, sent: &mut u64) -> Result<()> {
        let client = self.client;
        let mut offset = 0;
        if resume {
            match self.uploaded_so_far(session)? {
                Some(n) if n <= desc.size => offset = n,
                _ => {
                    *session = match self.start(desc, None)? {
                        Started::Session(url) => url,
                        Started::Mounted => return Ok(()),
                    }
                }
            }
        }
        let mut blob = self.open(desc)?;
        if offset > 0 {
            // The store reads verified, from the start: skip what the registry has.
            std::io::copy(&mut (&mut blob).take(offset), &mut std::io::sink()).map_err(|e| {
                Error::from_store(strata_store::Error::from_io(e, "read", "local blob"), || {
                    format!("local blob {}", desc.digest)
                })
            })?;
        }
        let chunk = self.options.chunk_size.max(1);
        while offset < desc.size {
            let n = chunk.min(desc.size - offset);
            let mut body = UploadReader::new(&mut blob, desc, offset, n, self.progress, self.cancel);
            let req = Request::new(Method::Patch, session.clone())
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{}-{}", offset, offset + n - 1))
                .body(Body::Reader(&mut body, n));
            let result = client.send(req, self.scope);
            *sent += body.count;
            if let Some(e) = body.failure.take() {
                return Err(e);
            }
            let resp = client.check(Method::Patch, session, result?, &[202, 204], self.scope)?;
            let next = self.location(session, &resp)?;
            drain(resp);
            *session = next;
            offset += n;
        }
        let url = with_query(session, "digest", desc.digest.as_str());
        let resp = client.send(Request::new(Method::Put, url.clone()), self.scope)?;
        drain(client.check(Method::Put, &url, resp, &[201, 204], self.scope)?);
        Ok(())
    }

    /// `GET <session>`: how many bytes the registry has (`Range: 0-<last>`), or `None`
    /// if the session is gone.
    fn uploaded_so_far(&self, session: &str) -> Result<Option<u64>> {
        let client = self.client;
        let resp = client.send(Request::new(Method::Get, session.to_owned()), self.scope)?;
        match resp.status().as_u16() {
            204 | 200 => {
                let range = header(&resp, "range").unwrap_or("0-0").to_owned();
                drain(resp);
                // distribution reports "0-0" for an empty upload as for a 1-byte one;
                // take it as empty (a 1-byte resume is then refused and restarted).
                let end = range.trim().strip_prefix("bytes=").unwrap_or(range.trim());
                let last = end.split_once('-').and_then(|(_, e)| e.trim().parse::<u64>().ok());
                Ok(Some(match last {
                    Some(0) | None => 0,
                    Some(n) => n + 1,
                }))
            }
            404 => {
                drain(resp);
                Ok(None)
            }
            _ => Err(client.fail(Method::Get, session, resp, self.scope)),
        }
    }
}

/// `url` with `key=value` added to its query string.
fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", query_escape(value))
}

/// A request body: the next `len` bytes of a store blob. At the blob's end it makes
/// the store's reader verify the digest before the last bytes go out, so a corrupt
/// local blob fails the request instead of completing it.
struct UploadReader<'a> {
    blob: &'a mut BlobReader,
    desc: &'a Descriptor,
    /// Position in the blob.
    position: u64,
    /// Bytes left for this request.
    remaining: u64,
    /// Bytes handed out.
    count: u64,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
    /// A local failure (verification, cancellation), reported instead of the
    /// transport error it causes.
    failure: Option<Error>,
}

impl<'a> UploadReader<'a> {
    fn new(
        blob: &'a mut BlobReader,
        desc: &'a Descriptor,
        position: u64,
        len: u64,
        progress: &'a dyn Progress,
        cancel: &'a AtomicBool,
    ) -> Self {
        UploadReader { blob, desc, position, remaining: len, count: 0, progress, cancel, failure: None }
    }

    fn fail(&mut self, e: Error) -> std::io::Error {
        let io = std::io::Error::other(e.to_string());
        self.failure = Some(e);
        io
    }
}

impl Read for UploadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(self.fail(Error::Cancelled));
        }
        let max = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = match self.blob.read(&mut buf[..max]) {
            Ok(n) => n,
            Err(e) => {
                let what = format!("local blob {}", self.desc.digest);
                let err = Error::from_store(strata_store::Error::from_io(e, "read", "local blob"), || what);
                return Err(self.fail(err));
            }
        };
        if n == 0 {
            let err = Error::SizeMismatch {
                what: format!("local blob {}", self.desc.digest),
                expected: self.desc.size,
                actual: self.position,
            };
            return Err(self.fail(err));
        }
        self.remaining -= n as u64;
        self.position += n as u64;
        self.count += n as u64;
        if self.position == self.desc.size {
            // Reach the reader's end now, so it checks the digest.
            let mut probe = [0u8; 1];
            match self.blob.read(&mut probe) {
                Ok(0) => {}
                Ok(_) => {
                    let err = Error::SizeMismatch {
                        what: format!("local blob {}", self.desc.digest),
                        expected: self.desc.size,
                        actual: self.position + 1,
                    };
                    return Err(self.fail(err));
                }
                Err(e) => {
                    let what = format!("local blob {}", self.desc.digest);
                    let err = Error::from_store(strata_store::Error::from_io(e, "read", "local blob"), || what);
                    return Err(self.fail(err));
                }
            }
        }
        self.progress.event(&Event::BlobProgress { descriptor: self.desc, bytes: self.position });
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_only_within_one_registry() {
        let r = |s: &str| Reference::parse(s).unwrap();
        assert_eq!(mount_source(&r("127.0.0.1:5000/base:1"), &r("127.0.0.1:5000/copy:1")), Some("base".into()));
        assert_eq!(mount_source(&r("127.0.0.1:5000/base:1"), &r("127.0.0.1:5000/base:2")), None);
        assert_eq!(mount_source(&r("127.0.0.1:5000/base:1"), &r("127.0.0.1:5001/copy:1")), None);
        assert_eq!(mount_source(&r("ubuntu"), &r("me/ubuntu")), Some("library/ubuntu".into()));
        assert_eq!(with_query("/u/1?_state=x", "digest", "sha256:ab"), "/u/1?_state=x&digest=sha256%3Aab");
        assert_eq!(with_query("/u/1", "digest", "d"), "/u/1?digest=d");
    }
}
