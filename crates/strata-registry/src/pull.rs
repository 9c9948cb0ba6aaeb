//! Pull: registry -> store.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use strata_spec::{
    Descriptor, Digest, Digester, Index, ManifestOrIndex, MediaType, Platform, Reference, select_platform,
};
use strata_store::{Backend, BlobWriter, Expected, MAX_DOCUMENT_SIZE};

use crate::client::{Client, Method, RegistryOptions, Request, Scope, content_length, header, read_limited};
use crate::error::{Error, Result};
use crate::pool;
use crate::progress::{Event, Progress, SkipReason};

/// Buffer for reading blob bodies off the network: 256 KiB, the store's own I/O buffer
/// size (strata-store `IO_BUFFER`), so one read fills one hashing-and-writing step.
const READ_BUFFER: usize = 256 * 1024;

/// The manifest media types strata asks for, in the `Accept` header.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// How deep indexes may nest when pulling every platform (an index of indexes is
/// already unusual).
const MAX_INDEX_DEPTH: usize = 4;

/// Options of [`pull`].
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// How to reach the registry.
    pub registry: RegistryOptions,
    /// The platform to pick from an index; `None` means the host's ([`Platform::host`]).
    pub platform: Option<Platform>,
    /// Keep the whole index and fetch every manifest it lists, instead of picking one.
    pub all_platforms: bool,
    /// The local ref (tag) to set; `None` means the reference in its familiar form
    /// ([`Reference::familiar`]: `127.0.0.1:5000/base:latest`, `ubuntu:latest`).
    pub ref_name: Option<String>,
    /// How many blobs to download at once.
    pub concurrency: usize,
    /// Also fetch the artifacts attached to the pulled manifests (their referrers, and
    /// theirs: SBOMs, signatures), listed by the registry's referrers API or else its
    /// referrers tag schema, and keep them in the store as untagged referrer entries.
    pub referrers: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            registry: RegistryOptions::default(),
            platform: None,
            all_platforms: false,
            ref_name: None,
            concurrency: DEFAULT_CONCURRENCY,
            referrers: false,
        }
    }
}

/// Default number of concurrent blob transfers: 3, as docker (`max-concurrent-downloads`
/// is 3) — enough to overlap one transfer's latency with another's hashing and writing.
pub const DEFAULT_CONCURRENCY: usize = 3;

/// What [`pull`] stored.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The reference pulled, pinned to the digest of the manifest or index it resolved to.
    pub reference: Reference,
    /// The local ref that was set.
    pub ref_name: String,
    /// What the ref points to: the image manifest (the platform's, if the reference
    /// named an index), or the index with `all_platforms`.
    pub descriptor: Descriptor,
    /// The config of the tagged manifest (its digest is the image id); `None` when an
    /// index was tagged.
    pub config: Option<Descriptor>,
    /// Every image manifest stored.
    pub manifests: Vec<Descriptor>,
    /// Blobs (configs and layers) downloaded.
    pub blobs_fetched: usize,
    /// Blobs the store already had.
    pub blobs_skipped: usize,
    /// Bytes downloaded for blobs (a resumed download counts only what it fetched).
    pub bytes_fetched: u64,
    /// Artifacts attached to the pulled manifests that were fetched
    /// ([`PullOptions::referrers`]).
    pub referrers: Vec<Descriptor>,
}

/// Pull `reference` (by tag or digest) into `store` and set a local ref to it.
///
/// The manifest is verified against the digest asked for (or the registry's
/// `Docker-Content-Digest`) and stored byte for byte; from an index, the manifest for
/// the platform is picked (or all of them, with `all_platforms`). Config and layers
/// stream into the store's verifying writer, several at once; blobs the store already
/// has are skipped; an interrupted download resumes with a `Range` request; transient
/// failures are retried with backoff. A blob whose digest or size does not match is
/// refused and nothing of it is stored. A [`Lease`](strata_store::Lease) keeps GC away
/// from the new blobs until the ref is set.
pub fn pull(
    store: &dyn Backend,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    // A bad local name fails before anything is downloaded.
    let ref_name = options.ref_name.clone().unwrap_or_else(|| reference.familiar());
    strata_store::validate_ref_name(&ref_name)?;
    let client = Client::new(reference.registry(), &options.registry)?;
    let repo = reference.repository();
    let scope = Scope::pull(repo);
    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => strata_spec::DEFAULT_TAG.to_owned(),
    };
    let top = fetch_manifest(&client, repo, &target, reference.digest(), None, &scope, progress)?;
    let pinned = reference.with_digest(top.descriptor.digest.clone());

    // Image manifests to store, then indexes (children before the index that lists them).
    let mut manifests: Vec<Fetched> = Vec::new();
    let mut indexes: Vec<Fetched> = Vec::new();
    let tagged = match &top.document {
        ManifestOrIndex::Manifest(_) => {
            let d = top.descriptor.clone();
            manifests.push(top);
            d
        }
        ManifestOrIndex::Index(index) if options.all_platforms => {
            collect_children(&client, repo, index, &scope, progress, 1, &mut manifests, &mut indexes)?;
            let d = top.descriptor.clone();
            indexes.push(top);
            d
        }
        ManifestOrIndex::Index(index) => {
            let want = options.platform.clone().unwrap_or_else(Platform::host);
            let child = pick_platform(index, &want, &pinned)?;
            let fetched = fetch_manifest(
                &client,
                repo,
                child.digest.as_str(),
                Some(&child.digest),
                Some(&child),
                &scope,
                progress,
            )?;
            let mut d = fetched.descriptor.clone();
            d.platform = child.platform.clone();
            manifests.push(fetched);
            d
        }
    };

    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen = HashSet::new();
    for m in &manifests {
        if let ManifestOrIndex::Manifest(m) = &m.document {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if seen.insert(d.digest.clone()) {
                    blobs.push(d.clone());
                }
            }
        }
    }

    // Largest first: the longest transfer starts at once and the small ones fill in.
    blobs.sort_by_key(|d| std::cmp::Reverse(d.size));
    let lease = store.lease()?;
    let cancel = AtomicBool::new(false);
    let mut outcomes = pool::run(&blobs, options.concurrency, &cancel, |d| {
        fetch_blob(&client, store, repo, d, &scope, progress, &cancel)
    })?;
    for m in manifests.iter().chain(&indexes) {
        store
            .put_blob_expected(&m.bytes, Expected::descriptor(&m.descriptor))
            .map_err(|e| Error::from_store(e, || format!("manifest {}", m.descriptor.digest)))?;
        progress.event(&Event::ManifestDone { descriptor: &m.descriptor });
    }
    store.set_ref(&ref_name, &tagged)?;
    // What docker lists as the image's RepoDigests: the repository and the digest pulled.
    let repo_digest = format!("{}@{}", reference.familiar_name(), pinned.digest().unwrap_or(&tagged.digest));
    store.update_image_record(&tagged.digest, &mut |r| r.add_repo_digest(&repo_digest))?;
    let referrers = if options.referrers {
        let subjects: Vec<Digest> = manifests.iter().chain(&indexes).map(|m| m.descriptor.digest.clone()).collect();
        let fetcher = Fetcher { client: &client, store, repo, scope: &scope, options, progress, cancel: &cancel };
        fetcher.referrers(subjects, &mut outcomes)?
    } else {
        Vec::new()
    };
    drop(lease);

    let config = match manifests.iter().find(|m| m.descriptor.digest == tagged.digest).map(|m| &m.document) {
        Some(ManifestOrIndex::Manifest(m)) => Some(m.config.clone()),
        _ => None,
    };
    let mut pulled = Pulled {
        reference: pinned,
        ref_name,
        descriptor: tagged,
        config,
        manifests: manifests.iter().map(|m| m.descriptor.clone()).collect(),
        blobs_fetched: 0,
        blobs_skipped: 0,
        bytes_fetched: 0,
        referrers,
    };
    for o in outcomes {
        match o {
            Some(bytes) => {
                pulled.blobs_fetched += 1;
                pulled.bytes_fetched += bytes;
            }
            None => pulled.blobs_skipped += 1,
        }
    }
    Ok(pulled)
}

/// What a pull fetches with, for the referrers after the image.
struct Fetcher<'a> {
    client: &'a Client,
    store: &'a dyn Backend,
    repo: &'a str,
    scope: &'a Scope,
    options: &'a PullOptions,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
}

impl Fetcher<'_> {
    /// Fetch the referrers of `subjects` and theirs, each with its blobs, and list them
    /// untagged in the store's index. Blob outcomes go to `outcomes`.
    fn referrers(&self, subjects: Vec<Digest>, outcomes: &mut Vec<Option<u64>>) -> Result<Vec<Descriptor>> {
        let mut done: Vec<Descriptor> = Vec::new();
        let mut work = subjects;
        while let Some(subject) = work.pop() {
            for listed in crate::referrers::list(self.client, self.repo, &subject, self.scope)? {
                if done.iter().any(|d| d.digest == listed.digest) {
                    continue;
                }
                let pointer = Descriptor::new(listed.media_type.clone(), listed.digest.clone(), listed.size);
                let top = fetch_manifest(
                    self.client,
                    self.repo,
                    listed.digest.as_str(),
                    Some(&listed.digest),
                    Some(&pointer),
                    self.scope,
                    self.progress,
                )?;
                let (mut manifests, mut indexes) = (Vec::new(), Vec::new());
                if let ManifestOrIndex::Index(i) = &top.document {
                    let i = i.clone();
                    collect_children(
                        self.client,
                        self.repo,
                        &i,
                        self.scope,
                        self.progress,
                        1,
                        &mut manifests,
                        &mut indexes,
                    )?;
                }
                let entry = strata_spec::referrer_descriptor(&top.descriptor, &top.document);
                if top.document.subject().map(|s| &s.digest) != Some(&subject) {
                    return Err(Error::InvalidResponse {
                        url: format!("{}/{}@{}", self.client.registry(), self.repo, listed.digest),
                        reason: format!("listed as a referrer of {subject}, but its subject is not that"),
                    });
                }
                manifests.push(top);
                let mut blobs: Vec<Descriptor> = Vec::new();
                for m in &manifests {
                    if let ManifestOrIndex::Manifest(m) = &m.document {
                        for d in std::iter::once(&m.config).chain(&m.layers) {
                            if !blobs.iter().any(|b| b.digest == d.digest) {
                                blobs.push(d.clone());
                            }
                        }
                    }
                }
                outcomes.extend(pool::run(&blobs, self.options.concurrency, self.cancel, |d| {
                    fetch_blob(self.client, self.store, self.repo, d, self.scope, self.progress, self.cancel)
                })?);
                for m in indexes.iter().chain(&manifests) {
                    self.store
                        .put_blob_expected(&m.bytes, Expected::descriptor(&m.descriptor))
                        .map_err(|e| Error::from_store(e, || format!("manifest {}", m.descriptor.digest)))?;
                }
                self.store.update_index(&mut |idx| {
                    if !idx.manifests.iter().any(|d| d.digest == entry.digest && d.ref_name().is_none()) {
                        idx.manifests.push(entry.clone());
                    }
                    Ok(())
                })?;
                work.push(entry.digest.clone());
                done.push(entry);
            }
        }
        done.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(done)
    }
}

/// Fetch one manifest or index (`reference` by tag or digest) without storing it: its
/// descriptor and the exact bytes the registry served, verified as [`pull`] verifies
/// them. For documents strata reads itself (a build cache's index).
pub fn fetch_document(reference: &Reference, options: &RegistryOptions) -> Result<(Descriptor, Vec<u8>)> {
    let client = Client::new(reference.registry(), options)?;
    let repo = reference.repository();
    let scope = Scope::pull(repo);
    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => strata_spec::DEFAULT_TAG.to_owned(),
    };
    let fetched = fetch_manifest(&client, repo, &target, reference.digest(), None, &scope, &crate::NoProgress)?;
    Ok((fetched.descriptor, fetched.bytes))
}

/// Download `blobs` of `reference`'s repository into `store`, several at once, each
/// verified; those the store has are skipped. Returns how many were downloaded. For
/// callers that fetch only the parts of an image they need (a build cache).
pub fn fetch_blobs(
    store: &dyn Backend,
    reference: &Reference,
    blobs: &[Descriptor],
    options: &PullOptions,
) -> Result<usize> {
    let client = Client::new(reference.registry(), &options.registry)?;
    let repo = reference.repository();
    let scope = Scope::pull(repo);
    let _lease = store.lease()?;
    let cancel = AtomicBool::new(false);
    let outcomes = pool::run(blobs, options.concurrency, &cancel, |d| {
        fetch_blob(&client, store, repo, d, &scope, &crate::NoProgress, &cancel)
    })?;
    Ok(outcomes.iter().filter(|o| o.is_some()).count())
}

/// The entry of `index` for `want`, among image manifests.
fn pick_platform(index: &Index, want: &Platform, reference: &Reference) -> Result<Descriptor> {
    let candidates =
        index.manifests.iter().map(|d| if d.media_type.is_manifest() { d.platform.as_ref() } else { None });
    match select_platform(candidates, want).and_then(|i| index.manifests.get(i)) {
        Some(d) => Ok(d.clone()),
        None => Err(Error::PlatformNotFound {
            reference: reference.to_string(),
            platform: want.to_string(),
            available: index
                .manifests
                .iter()
                .filter(|d| d.media_type.is_manifest())
                .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                .collect(),
        }),
    }
}

/// Fetch every manifest (and nested index) an index lists.
#[allow(clippy::too_many_arguments)]
fn collect_children(
    client: &Client,
    repo: &str,
    index: &Index,
    scope: &Scope,
    progress: &dyn Progress,
    depth: usize,
    manifests: &mut Vec<Fetched>,
    indexes: &mut Vec<Fetched>,
) -> Result<()> {
    for child in &index.manifests {
        if manifests.iter().chain(indexes.iter()).any(|m| m.descriptor.digest == child.digest) {
            continue;
        }
        let fetched =
            fetch_manifest(client, repo, child.digest.as_str(), Some(&child.digest), Some(child), scope, progress)?;
        match &fetched.document {
            ManifestOrIndex::Manifest(_) => manifests.push(fetched),
            ManifestOrIndex::Index(nested) => {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(Error::InvalidResponse {
                        url: format!("{repo}@{}", child.digest),
                        reason: format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
                    });
                }
                let nested = nested.clone();
                collect_children(client, repo, &nested, scope, progress, depth + 1, manifests, indexes)?;
                indexes.push(fetched);
            }
        }
    }
    Ok(())
}

/// A manifest or index as fetched and verified.
pub(crate) struct Fetched {
    /// Media type, digest and size of `bytes`.
    pub descriptor: Descriptor,
    /// The exact bytes the registry served.
    pub bytes: Vec<u8>,
    /// The parsed document.
    pub document: ManifestOrIndex,
}

/// `GET /v2/<repo>/manifests/<target>`, verified: against `digest` when known, else
/// against the registry's `Docker-Content-Digest`; against `pointer`'s size and media
/// type when an index pointed to it.
pub(crate) fn fetch_manifest(
    client: &Client,
    repo: &str,
    target: &str,
    digest: Option<&Digest>,
    pointer: Option<&Descriptor>,
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<Fetched> {
    let sep = if target.contains(':') { '@' } else { ':' };
    let what = format!("{}/{repo}{sep}{target}", client.registry());
    if let Some(p) = pointer
        && p.size > MAX_DOCUMENT_SIZE
    {
        return Err(Error::TooLarge { what, limit: MAX_DOCUMENT_SIZE });
    }
    let url = client.url(&format!("/v2/{repo}/manifests/{target}"))?;
    let (bytes, content_type, reported) = client.with_retries(pointer, progress, |_| {
        let resp = client.send(Request::new(Method::Get, url.clone()).header("Accept", ACCEPT), scope)?;
        let resp = client.check(Method::Get, &url, resp, &[200], scope)?;
        let content_type = header(&resp, "content-type").unwrap_or("").to_owned();
        let reported = header(&resp, "docker-content-digest").map(str::to_owned);
        Ok((read_limited(resp, MAX_DOCUMENT_SIZE, &url)?, content_type, reported))
    })?;

    // The digest: what was asked for, else what the registry says (if it says).
    let expected = match (digest, reported.as_deref().map(Digest::parse)) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(Ok(d))) => Some(d),
        (None, Some(Err(_))) => {
            return Err(Error::InvalidResponse {
                url,
                reason: format!("Docker-Content-Digest {:?} is not a digest", reported.unwrap_or_default()),
            });
        }
        (None, None) => None,
    };
    let actual = {
        let mut h = Digester::new(expected.as_ref().map_or(strata_spec::Algorithm::Sha256, Digest::algorithm));
        h.update(&bytes);
        h.finish()
    };
    if let Some(expected) = expected
        && expected != actual
    {
        return Err(Error::DigestMismatch { what: format!("manifest {what}"), expected, actual });
    }
    if let Some(p) = pointer
        && p.size != bytes.len() as u64
    {
        return Err(Error::SizeMismatch {
            what: format!("manifest {what}"),
            expected: p.size,
            actual: bytes.len() as u64,
        });
    }

    let media_type = match pointer {
        Some(p) => p.media_type.clone(),
        None => media_type_of(&content_type, &bytes, &what)?,
    };
    if !media_type.is_manifest() && !media_type.is_index() {
        return Err(Error::UnsupportedMediaType { reference: what, media_type: media_type.to_string() });
    }
    let document = ManifestOrIndex::from_slice_as(&bytes, &media_type)
        .map_err(|source| Error::BadDocument { reference: what.clone(), source })?;
    let descriptor = Descriptor::new(media_type, actual, bytes.len() as u64);
    Ok(Fetched { descriptor, bytes, document })
}

/// The media type of a fetched manifest: its `Content-Type` when that is a manifest or
/// index type; when the registry sent a generic one, the document's own `mediaType`
/// (or, without one, its shape).
fn media_type_of(content_type: &str, bytes: &[u8], what: &str) -> Result<MediaType> {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let mt = MediaType::new(&ct);
    if mt.is_manifest() || mt.is_index() {
        return Ok(mt);
    }
    let generic = matches!(ct.as_str(), "" | "application/json" | "text/plain" | "application/octet-stream");
    if !generic {
        return Err(Error::UnsupportedMediaType { reference: what.to_owned(), media_type: ct });
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| Error::BadDocument {
        reference: what.to_owned(),
        source: strata_spec::Error::Json { document: strata_spec::Document::Manifest, source: e },
    })?;
    match probe.media_type {
        Some(own) => Ok(MediaType::new(&own)),
        None => match ManifestOrIndex::from_slice(bytes) {
            Ok(ManifestOrIndex::Manifest(_)) => Ok(MediaType::OciManifest),
            Ok(ManifestOrIndex::Index(_)) => Ok(MediaType::OciIndex),
            Err(source) => Err(Error::BadDocument { reference: what.to_owned(), source }),
        },
    }
}

/// Download one blob into the store (unless present). Returns the bytes downloaded,
/// or `None` if the blob was skipped.
fn fetch_blob(
    client: &Client,
    store: &dyn Backend,
    repo: &str,
    desc: &Descriptor,
    scope: &Scope,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Option<u64>> {
    if store.stat(&desc.digest)? == Some(desc.size) {
        progress.event(&Event::BlobSkipped { descriptor: desc, reason: SkipReason::Present });
        return Ok(None);
    }
    if desc.media_type.is_foreign_layer() && desc.urls.as_ref().is_some_and(|u| !u.is_empty()) {
        // Non-distributable layers live at their URLs, not in the registry (docker
        // does not pull them either).
        progress.event(&Event::BlobSkipped { descriptor: desc, reason: SkipReason::Foreign });
        return Ok(None);
    }
    let url = client.url(&format!("/v2/{repo}/blobs/{}", desc.digest))?;
    let what = || format!("blob {} from {}", desc.digest, url);
    let algorithm = desc.digest.algorithm();
    let mut writer = store.begin_write_with(algorithm)?;
    let mut buf = vec![0u8; READ_BUFFER];
    let mut received = 0u64;
    let mut attempt = 0;
    progress.event(&Event::BlobStarted { descriptor: desc });
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let before = received;
        let step = if writer.bytes_written() == desc.size {
            Ok(())
        } else {
            let mut dl = Download { client, store, desc, url: &url, scope, progress, cancel, buf: &mut buf };
            dl.run(&mut writer, &mut received)
        };
        match step {
            Ok(()) => break,
            Err(e) if e.is_transient() && attempt < client.retries() => {
                // A retry that made progress starts the count again: a long download
                // over a flaky link may be cut many times and still finish.
                if received > before {
                    attempt = 0;
                }
                let delay = client.retry_delay(attempt);
                progress.event(&Event::Retrying { descriptor: Some(desc), attempt: attempt + 1, delay, error: &e });
                std::thread::sleep(delay);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
    writer.commit(Expected::descriptor(desc)).map_err(|e| Error::from_store(e, what))?;
    progress.event(&Event::BlobDone { descriptor: desc });
    Ok(Some(received))
}

/// One attempt at downloading (the rest of) a blob.
struct Download<'a> {
    client: &'a Client,
    store: &'a dyn Backend,
    desc: &'a Descriptor,
    url: &'a str,
    scope: &'a Scope,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
    buf: &'a mut [u8],
}

impl Download<'_> {
    fn what(&self) -> String {
        format!("blob {} from {}", self.desc.digest, self.url)
    }

    /// Start over: a new, empty writer.
    fn restart(&self, writer: &mut BlobWriter) -> Result<()> {
        *writer = self.store.begin_write_with(self.desc.digest.algorithm())?;
        self.progress.event(&Event::BlobProgress { descriptor: self.desc, bytes: 0 });
        Ok(())
    }

    fn run(&mut self, writer: &mut BlobWriter, received: &mut u64) -> Result<()> {
        let desc = self.desc;
        let offset = writer.bytes_written();
        let mut req = Request::new(Method::Get, self.url.to_owned());
        if offset > 0 {
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let resp = self.client.send(req, self.scope)?;
        match resp.status().as_u16() {
            200 => {
                if offset > 0 {
                    // The registry ignored the range: take the whole blob again.
                    self.restart(writer)?;
                }
                if let Some(len) = content_length(&resp)
                    && len != desc.size
                {
                    return Err(Error::SizeMismatch { what: self.what(), expected: desc.size, actual: len });
                }
            }
            206 if offset > 0 => {
                let range = header(&resp, "content-range").unwrap_or("");
                let (start, total) = parse_content_range(range).ok_or_else(|| Error::InvalidResponse {
                    url: self.url.to_owned(),
                    reason: format!("bad Content-Range {range:?} in a 206 response"),
                })?;
                if start != offset {
                    return Err(Error::InvalidResponse {
                        url: self.url.to_owned(),
                        reason: format!("asked for bytes from {offset}, the registry sent from {start}"),
                    });
                }
                if let Some(total) = total
                    && total != desc.size
                {
                    return Err(Error::SizeMismatch { what: self.what(), expected: desc.size, actual: total });
                }
            }
            416 if offset > 0 => {
                crate::client::drain(resp);
                self.restart(writer)?;
                return Err(Error::Transport {
                    url: self.url.to_owned(),
                    message: "the registry cannot resume this download; starting over".into(),
                    source: Box::new(std::io::Error::other("HTTP 416")),
                });
            }
            _ => {
                return Err(self.client.fail(Method::Get, self.url, resp, self.scope));
            }
        }
        let mut body = resp.into_body().into_reader();
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let n = match body.read(self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::transport(self.url, e)),
            };
            let done = writer.bytes_written() + n as u64;
            if done > desc.size {
                return Err(Error::SizeMismatch { what: self.what(), expected: desc.size, actual: done });
            }
            writer
                .write_all(&self.buf[..n])
                .map_err(|e| Error::Store(strata_store::Error::from_io(e, "write", format!("blob {}", desc.digest))))?;
            *received += n as u64;
            self.progress.event(&Event::BlobProgress { descriptor: desc, bytes: done });
        }
        let done = writer.bytes_written();
        if done < desc.size {
            return Err(Error::Transport {
                url: self.url.to_owned(),
                message: format!("connection closed after {done} of {} bytes", desc.size),
                source: Box::new(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            });
        }
        Ok(())
    }
}

/// Parse `bytes START-END/TOTAL` (TOTAL may be `*`): returns START and TOTAL.
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        for bad in ["", "bytes", "bytes 9-5/10", "items 0-1/2", "bytes a-b/c", "bytes 0-1"] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn media_type_from_header_or_document() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;
        assert_eq!(
            media_type_of("application/vnd.oci.image.manifest.v1+json; charset=utf-8", m, "x").unwrap(),
            MediaType::OciManifest
        );
        assert_eq!(media_type_of("application/json", m, "x").unwrap(), MediaType::DockerManifest);
        let bare = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(media_type_of("", bare, "x").unwrap(), MediaType::OciIndex);
        assert!(matches!(
            media_type_of("application/vnd.example+json", m, "x"),
            Err(Error::UnsupportedMediaType { .. })
        ));
        assert!(matches!(media_type_of("text/plain", b"not json", "x"), Err(Error::BadDocument { .. })));
    }
}
