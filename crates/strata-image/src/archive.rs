//! Image archives, both directions: docker-archive (the `docker save` format) and OCI
//! archive (a tar of an image layout).
//!
//! `save` writes deterministic archives: fixed entry order, mtime 0, owner 0:0, mode
//! 0644. A docker-archive holds `manifest.json` and `repositories` first (so a reader can
//! stream it), then each config as `<hex>.json` and each layer uncompressed as
//! `<diff_id hex>.tar`, the layout skopeo writes and docker, podman and skopeo load.
//!
//! `load` reads a docker-archive in either form docker writes (per-layer directories
//! `<id>/layer.tar`, and the `blobs/sha256/<hex>` form of Docker 25+, with symlinked
//! duplicates) and OCI archives, plain or gzip/zstd-compressed as `docker load` takes
//! them, in any entry order, streaming every file straight into
//! the store's verified blob writer. It checks every blob against its name and every
//! layer against the config's `diff_id`, tags only once everything is verified, and on
//! any error deletes the blobs it added: the store is left as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_layer::read::{EntryKind, Limits, TarReader};
use strata_layer::{Decoder, HashOn, LayerStream, StreamOptions, path::normalize};
use strata_spec::{ANNOTATION_IMAGE_NAME, Compression, Descriptor, Digest, ImageConfig, Index, Manifest, MediaType};
use strata_store::{Expected, MAX_DOCUMENT_SIZE};

use crate::error::{ArchiveProblem, Error, MemberProblem, Result};
use crate::image::Image;
use crate::progress::{Event, ProgressHook};
use crate::referrers::referrer_parts;
use crate::resolve::{self, Match};
use crate::store::Store;
use strata_spec::progress::ByteCount;

/// The two archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchiveFormat {
    /// `docker save` / `docker load`: `manifest.json`, `repositories`, configs, layer tars.
    #[default]
    DockerArchive,
    /// A tar of an OCI image layout (`oci-layout`, `index.json`, `blobs/`), as
    /// `skopeo copy ... oci-archive:` and `podman save --format oci-archive` write.
    OciArchive,
}

impl std::str::FromStr for ArchiveFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "docker-archive" | "docker" => Ok(ArchiveFormat::DockerArchive),
            "oci-archive" | "oci" => Ok(ArchiveFormat::OciArchive),
            _ => Err(format!("unknown archive format {s:?} (expected docker-archive or oci-archive)")),
        }
    }
}

/// One entry of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveManifestEntry {
    /// Path of the config file in the archive.
    pub config: String,
    /// Tags, `null` for an image saved by id.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, base first.
    pub layers: Vec<String>,
    /// The image id of the parent image, when the archive holds it too (docker writes
    /// it then, and `docker load` restores the parent link from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Other fields (Docker 25+ writes `LayerSources`), kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image added to the store by [`Store::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The tags it was given (normalised, as stored); empty when the archive had none.
    pub names: Vec<String>,
    /// Image id (config digest).
    pub id: Digest,
    /// The manifest in the store.
    pub manifest: Descriptor,
}

/// Where an archive member ended up.
#[derive(Debug, Clone)]
enum Member {
    /// Stored as a blob.
    Blob { digest: Digest, size: u64, head: Vec<u8> },
    /// A small metadata file read into memory.
    Small(Vec<u8>),
    /// A symlink or hard link to another member (archive-relative path).
    Link(PathBuf),
}

/// Files a loader reads into memory instead of the store.
const METADATA_FILES: &[&str] = &["manifest.json", "repositories", "index.json", "oci-layout"];
/// Largest metadata file read into memory.
const MAX_METADATA: u64 = 64 << 20;

/// Saving and loading archives.
impl Store {
    /// Write the images `names` to `out` as an archive. A name that is a tag is recorded
    /// as the image's tag; an id or digest saves the image untagged.
    ///
    /// A docker-archive holds layers uncompressed, and a tar header needs a size first:
    /// each compressed layer is decompressed into a temp file (in parallel, one layer per
    /// core) before it is copied. [`Store::save_seekable`] writes the same bytes faster
    /// when `out` can seek, as a file can.
    pub fn save<W: Write>(&self, names: &[&str], format: ArchiveFormat, out: W) -> Result<W> {
        self.save_with(names, format, out, &ProgressHook::default())
    }

    /// [`Store::save`], reporting the archive bytes written to `progress`
    /// (`ArchiveProgress`, then `ArchiveDone`).
    pub fn save_with<W: Write>(
        &self,
        names: &[&str],
        format: ArchiveFormat,
        out: W,
        progress: &ProgressHook,
    ) -> Result<W> {
        self.save_to(names, format, Counted::new(out, progress), Plain, |p| p.0)
    }

    /// [`Store::save`] into a writer that can seek (a file): the same bytes, written
    /// faster. Compressed layers stream straight into `out`, their tar header patched
    /// once the size is known, while other cores decompress the next layers.
    pub fn save_seekable<W: Write + Seek>(&self, names: &[&str], format: ArchiveFormat, out: W) -> Result<W> {
        self.save_seekable_with(names, format, out, &ProgressHook::default())
    }

    /// [`Store::save_seekable`], reporting the archive bytes written to `progress`
    /// (tar headers patched in place count again).
    pub fn save_seekable_with<W: Write + Seek>(
        &self,
        names: &[&str],
        format: ArchiveFormat,
        out: W,
        progress: &ProgressHook,
    ) -> Result<W> {
        self.save_to(names, format, Counted::new(out, progress), Patchable, |p| p.0)
    }

    /// The save both forms share: `sink` says whether a docker-archive's layer headers
    /// can be patched in place (`Patchable`) or not (`Plain`).
    fn save_to<W: Write, S: Sink>(
        &self,
        names: &[&str],
        format: ArchiveFormat,
        out: Counted<W>,
        sink: fn(Counted<W>) -> S,
        inner: fn(S) -> Counted<W>,
    ) -> Result<W> {
        let images = self.images_to_save(names)?;
        let out = match format {
            ArchiveFormat::DockerArchive => inner(save_docker(self, &images, sink(out))?),
            ArchiveFormat::OciArchive => save_oci(self, &images, out)?,
        };
        Ok(out.finish())
    }

    fn images_to_save(&self, names: &[&str]) -> Result<Vec<(Image, Vec<String>)>> {
        let mut images: Vec<(Image, Vec<String>)> = Vec::new();
        for name in names {
            let img = self.image(name)?;
            let tag = match resolve::classify_in(self.backend(), name)? {
                Match::Ref(stored, _) => Some(stored),
                _ => None,
            };
            match images.iter_mut().find(|(i, _)| i.digest() == img.digest()) {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((img, tag.into_iter().collect())),
            }
        }
        Ok(images)
    }

    /// Load every image of a docker-archive or OCI archive read from `input` (plain, or
    /// gzip- or zstd-compressed as `docker load` accepts).
    pub fn load<R: Read>(&self, input: R) -> Result<Vec<Loaded>> {
        self.load_with(input, &ProgressHook::default())
    }

    /// [`Store::load`], reporting the archive bytes read to `progress`
    /// (`ArchiveProgress`, then `ArchiveDone` once everything is loaded).
    pub fn load_with<R: Read>(&self, input: R, progress: &ProgressHook) -> Result<Vec<Loaded>> {
        let mut input = Counted::new(input, progress);
        let loaded = self.load_counted(&mut input)?;
        input.finish();
        Ok(loaded)
    }

    fn load_counted<R: Read>(&self, input: R) -> Result<Vec<Loaded>> {
        let backend = self.backend();
        let _lease = backend.lease()?;
        let mut created = Vec::new();
        let result = load_inner(self, input, &mut created);
        let keep: BTreeSet<Digest> = match &result {
            Ok((_, keep)) => keep.clone(),
            Err(_) => BTreeSet::new(),
        };
        // Blobs this load added and nothing loaded uses (or everything, on error).
        for d in created.iter().filter(|d| !keep.contains(*d)) {
            let _ = backend.delete(d);
        }
        result.map(|(loaded, _)| loaded)
    }
}

/// An archive stream (written by save, read by load) that reports its bytes as
/// `Archive*` progress events.
struct Counted<T> {
    inner: T,
    progress: ProgressHook,
    counted: ByteCount,
}

impl<T> Counted<T> {
    fn new(inner: T, progress: &ProgressHook) -> Self {
        Counted { inner, progress: progress.clone(), counted: ByteCount::default() }
    }

    fn count(&mut self, n: usize) {
        if let Some(bytes) = self.counted.add(n) {
            self.progress.event(&Event::ArchiveProgress { bytes });
        }
    }

    fn finish(self) -> T {
        self.progress.event(&Event::ArchiveDone { bytes: self.counted.bytes() });
        self.inner
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(n);
        Ok(n)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<S: Seek> Seek for Counted<S> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn header(path: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(if path.ends_with('/') { tar::EntryType::Directory } else { tar::EntryType::Regular });
    h
}

fn append<W: Write>(b: &mut tar::Builder<W>, path: &str, size: u64, data: impl Read) -> Result<()> {
    let mut h = header(path, size, if path.ends_with('/') { 0o755 } else { 0o644 });
    b.append_data(&mut h, path, data).map_err(Error::io("write archive entry", path))
}

fn save_docker<S: Sink>(store: &Store, images: &[(Image, Vec<String>)], out: S) -> Result<S> {
    let saved: BTreeSet<&Digest> = images.iter().map(|(img, _)| img.id()).collect();
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut layers: Vec<(Descriptor, Digest)> = Vec::new();
    let mut configs: Vec<Descriptor> = Vec::new();
    for (img, names) in images {
        let diff_ids = &img.config().rootfs.diff_ids;
        let mut paths = Vec::new();
        for (desc, diff_id) in img.layers().iter().zip(diff_ids) {
            paths.push(format!("{}.tar", diff_id.hex()));
            if !layers.iter().any(|(_, d)| d == diff_id) {
                layers.push((desc.clone(), diff_id.clone()));
            }
        }
        let mut tags = Vec::new();
        // A bare layout tag (umoci's `latest`) names no repository: the image is saved
        // untagged, as `RepoTags` holds references (see `resolve::layout_reference`).
        for r in names.iter().filter_map(|n| resolve::layout_reference(n)) {
            let Some(t) = r.tag() else { continue };
            if let Some(last) = diff_ids.last() {
                repositories.entry(r.familiar_name()).or_default().insert(t.to_owned(), last.hex().to_owned());
            }
            tags.push(r.familiar());
        }
        if !configs.iter().any(|c| c.digest == img.manifest().config.digest) {
            configs.push(img.manifest().config.clone());
        }
        // Like docker save: the parent link, when the parent is saved too.
        let parent = img.parent()?.filter(|p| saved.contains(p)).map(|p| p.to_string());
        entries.push(ArchiveManifestEntry {
            config: format!("{}.json", img.id().hex()),
            repo_tags: if tags.is_empty() { None } else { Some(tags) },
            layers: paths,
            parent,
            extra: BTreeMap::new(),
        });
    }
    let mut b = tar::Builder::new(out);
    let manifest_json = serde_json::to_vec(&entries).map_err(|e| Error::io("write", "manifest.json")(e.into()))?;
    append(&mut b, "manifest.json", manifest_json.len() as u64, &manifest_json[..])?;
    let repos_json = serde_json::to_vec(&repositories).map_err(|e| Error::io("write", "repositories")(e.into()))?;
    append(&mut b, "repositories", repos_json.len() as u64, &repos_json[..])?;
    for c in &configs {
        let r = store.backend().open_descriptor(c)?;
        append(&mut b, &format!("{}.json", c.digest.hex()), c.size, r)?;
    }
    write_layers_uncompressed(store, &layers, &mut b)?;
    b.into_inner().map_err(Error::io("finish archive", "archive"))
}

/// Where a docker-archive goes: any writer, or one that can seek back to patch a header.
trait Sink: Write {
    /// The writer as seekable, when it is.
    fn patchable(&mut self) -> Option<&mut dyn WriteSeek>;
}

/// A writer that can seek.
trait WriteSeek: Write + Seek {}
impl<T: Write + Seek> WriteSeek for T {}

/// A writer that cannot seek.
struct Plain<W>(W);

/// A writer that can seek.
struct Patchable<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Seek> Write for Patchable<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Sink for Plain<W> {
    fn patchable(&mut self) -> Option<&mut dyn WriteSeek> {
        None
    }
}

impl<W: Write + Seek> Sink for Patchable<W> {
    fn patchable(&mut self) -> Option<&mut dyn WriteSeek> {
        Some(&mut self.0)
    }
}

/// Bytes per buffer when decompressing a layer for a docker-archive: at 1 MiB the
/// syscalls and channel hand-offs per byte are negligible, and the few buffers in flight
/// are all the memory a layer takes.
const COPY_CHUNK: usize = 1 << 20;

/// Write each layer as an uncompressed `<diff_id hex>.tar`, in order.
///
/// A tar header needs the size first. Compressed layers are decompressed (and their
/// diff_id checked) into temp files by worker threads, one layer per core, each layer
/// claimed in order; the calling thread copies the temp files into the archive in order.
/// When the sink can seek, the calling thread also claims the next layer no worker has
/// taken yet and streams it straight into the archive, patching its header afterwards.
/// The bytes are the same either way.
fn write_layers_uncompressed<S: Sink>(
    store: &Store,
    layers: &[(Descriptor, Digest)],
    b: &mut tar::Builder<S>,
) -> Result<()> {
    let compressed: Vec<usize> =
        (0..layers.len()).filter(|&i| layers[i].0.media_type.layer_compression() != Some(Compression::None)).collect();
    let can_stream = b.get_mut().patchable().is_some();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let workers = if can_stream { cores.saturating_sub(1) } else { cores.max(1) }.min(compressed.len());
    // Index into `compressed` of the next layer nobody has claimed.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let claim = |k: usize| {
        next.compare_exchange(k, k + 1, std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst)
            .is_ok()
    };
    std::thread::scope(|s| -> Result<()> {
        // Bounded, so that at most a few decompressed layers wait in temp files.
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<(std::fs::File, u64)>)>(workers);
        for _ in 0..workers {
            let (tx, next, compressed) = (tx.clone(), &next, &compressed);
            s.spawn(move || {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&i) = compressed.get(k) else { return };
                    let (desc, diff_id) = &layers[i];
                    let r = decompress_to_temp(store, desc, diff_id);
                    let failed = r.is_err();
                    if tx.send((i, r)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut ready: BTreeMap<usize, Result<(std::fs::File, u64)>> = BTreeMap::new();
        for (i, (desc, diff_id)) in layers.iter().enumerate() {
            let path = format!("{}.tar", diff_id.hex());
            let Some(k) = compressed.iter().position(|&c| c == i) else {
                if desc.digest != *diff_id {
                    return Err(Error::Inconsistent {
                        manifest: desc.digest.clone(),
                        reason: format!("uncompressed layer's digest is not its diff_id {diff_id}"),
                    });
                }
                let r = store.backend().open_descriptor(desc)?;
                append(b, &path, desc.size, r)?;
                continue;
            };
            if can_stream
                && claim(k)
                && let Some(out) = b.get_mut().patchable()
            {
                stream_layer(store, desc, diff_id, &path, out)?;
                continue;
            }
            let (mut file, size) = loop {
                if let Some(r) = ready.remove(&i) {
                    break r?;
                }
                match rx.recv() {
                    Ok((j, r)) => {
                        ready.insert(j, r);
                    }
                    Err(_) => return Err(Error::InvalidArchive(ArchiveProblem::Interrupted)),
                }
            };
            file.seek(io::SeekFrom::Start(0)).map_err(Error::io("rewind", "temp file"))?;
            // Through a large buffer: io::copy then moves 1 MiB per syscall, not 8 KiB.
            append(b, &path, size, BufReader::with_capacity(COPY_CHUNK, file))?;
        }
        Ok(())
    })
}

/// Decompress a layer into a fresh temp file, checking its diff_id; returns the file and
/// the uncompressed size.
fn decompress_to_temp(store: &Store, desc: &Descriptor, diff_id: &Digest) -> Result<(std::fs::File, u64)> {
    let mut file = tempfile::tempfile().map_err(Error::io("create temp file", std::env::temp_dir()))?;
    let size = decompress_into(store, desc, diff_id, &mut file, "temp file")?;
    Ok((file, size))
}

/// Buffers in flight between a layer's decompressing thread and its writer.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Decompress the layer `desc` into `out`, checking its diff_id; returns the
/// uncompressed size. Two threads: a [`strata_layer::LayerStream`] reads the blob (the
/// store checks its size) and inflates it into [`COPY_CHUNK`] buffers; the calling
/// thread hashes them (the diff_id) and writes them. Memory stays at
/// [`CHUNKS_IN_FLIGHT`] + 2 buffers.
fn decompress_into(store: &Store, desc: &Descriptor, diff_id: &Digest, out: &mut dyn Write, to: &str) -> Result<u64> {
    // Every decompressed byte is checked against the diff_id below, and only those bytes
    // go into the archive: that covers the compressed blob too (a blob that differs from
    // its name fails to decompress or fails the diff_id), so it is not hashed twice.
    let reader = store.backend().open_descriptor(desc)?.without_digest_check();
    let name = desc.digest.to_string();
    let decoder = Decoder::without_gzip_crc(reader, desc.media_type.layer_compression(), &name)?;
    let opts = StreamOptions::default()
        .chunk(COPY_CHUNK)
        .depth(CHUNKS_IN_FLIGHT)
        .digest(Some(diff_id.algorithm()))
        .hash_on(HashOn::Reader);
    std::thread::scope(|s| -> Result<u64> {
        let mut stream = LayerStream::spawn(s, decoder, &opts)?;
        loop {
            let chunk = match stream.fill_buf() {
                Ok(c) => c,
                Err(e) => {
                    let fallback =
                        strata_layer::Error::Io(strata_spec::IoError::new("read layer", PathBuf::from(&name), e));
                    return Err(layer_error(&name, stream.explain(fallback)));
                }
            };
            if chunk.is_empty() {
                break;
            }
            out.write_all(chunk).map_err(Error::io("write layer", to))?;
            let n = chunk.len();
            stream.consume(n);
        }
        let end = stream.finish().map_err(|e| layer_error(&name, e))?;
        let actual = end.digest.unwrap_or_else(|| Digest::sha256_of(b""));
        if actual != *diff_id {
            return Err(Error::Layer(strata_layer::Error::DiffIdMismatch {
                layer: name.clone(),
                expected: diff_id.clone(),
                actual,
            }));
        }
        Ok(end.size)
    })
}

/// A failure of a layer's stream: the store's own error when the blob reader found the
/// blob damaged (a verification error under the decoder), else the layer's.
fn layer_error(layer: &str, e: strata_layer::Error) -> Error {
    match e {
        strata_layer::Error::Decompress { source, .. }
        | strata_layer::Error::Io(strata_spec::IoError { source, .. })
            if strata_store::Error::as_verification(&source).is_some() =>
        {
            layer_read_error(layer, source)
        }
        other => Error::Layer(other),
    }
}

/// Stream a compressed layer into the archive as `path`: a placeholder header, the data,
/// the padding, then the real header written over the placeholder. The bytes are those
/// `tar::Builder::append_data` writes.
fn stream_layer(store: &Store, desc: &Descriptor, diff_id: &Digest, path: &str, out: &mut dyn WriteSeek) -> Result<()> {
    let err = |op| Error::io(op, "archive");
    let start = out.stream_position().map_err(err("seek"))?;
    out.write_all(&[0u8; 512]).map_err(err("write"))?;
    let size = decompress_into(store, desc, diff_id, out, "archive")?;
    let pad = (512 - size % 512) % 512;
    out.write_all(&[0u8; 512][..pad as usize]).map_err(err("write"))?;
    let end = out.stream_position().map_err(err("seek"))?;
    let mut h = header(path, size, 0o644);
    h.set_path(path).map_err(err("set path"))?;
    h.set_cksum();
    out.seek(io::SeekFrom::Start(start)).map_err(err("seek"))?;
    out.write_all(h.as_bytes()).map_err(err("write"))?;
    out.seek(io::SeekFrom::Start(end)).map_err(err("seek"))?;
    Ok(())
}

/// An error from reading a layer through the store's verifying reader and a decoder.
fn layer_read_error(layer: &str, e: io::Error) -> Error {
    match strata_store::Error::as_verification(&e) {
        Some(_) => Error::Store(strata_store::Error::from_io(e, "read", layer)),
        None => Error::Io(strata_spec::IoError::new("read layer", PathBuf::from(layer), e)),
    }
}

fn save_oci<W: Write>(store: &Store, images: &[(Image, Vec<String>)], out: W) -> Result<W> {
    let mut index = Index::new(Some(MediaType::OciIndex));
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut add = |d: &Descriptor| {
        if !blobs.iter().any(|b| b.digest == d.digest) {
            blobs.push(d.clone());
        }
    };
    for (img, names) in images {
        add(img.descriptor());
        add(&img.manifest().config);
        for l in img.layers() {
            add(l);
        }
        let mut desc =
            Descriptor::new(img.descriptor().media_type.clone(), img.digest().clone(), img.descriptor().size);
        desc.platform = Some(img.config().platform());
        if names.is_empty() {
            index.manifests.push(desc.clone());
        }
        for n in names {
            let mut d = desc.clone();
            d.set_annotation(strata_spec::ANNOTATION_REF_NAME, n.clone());
            if let Some(r) = resolve::layout_reference(n) {
                d.set_annotation(ANNOTATION_IMAGE_NAME, r.to_string());
            }
            index.manifests.push(d);
        }
    }
    // The artifacts attached to the saved images (and to those artifacts), untagged.
    let referrers = strata_store::Referrers::scan(store.backend())?;
    let subjects: Vec<&Digest> = images.iter().flat_map(|(img, _)| [img.digest(), &img.tag_target().digest]).collect();
    for r in referrers.closure(subjects) {
        let Some((entry, parts)) = referrer_parts(store, &r)? else { continue };
        add(&r);
        for p in &parts {
            add(p);
        }
        index.manifests.push(entry);
    }
    let mut b = tar::Builder::new(out);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append(&mut b, "oci-layout", layout.len() as u64, &layout[..])?;
    let index_json = index.to_canonical_json();
    append(&mut b, "index.json", index_json.len() as u64, &index_json[..])?;
    append(&mut b, "blobs/", 0, io::empty())?;
    let mut algos: Vec<&str> = blobs.iter().map(|d| d.digest.algorithm().name()).collect();
    algos.dedup();
    for a in algos {
        append(&mut b, &format!("blobs/{a}/"), 0, io::empty())?;
    }
    for d in &blobs {
        let r = store.backend().open_descriptor(d)?;
        append(&mut b, &format!("blobs/{}/{}", d.digest.algorithm(), d.digest.hex()), d.size, r)?;
    }
    b.into_inner().map_err(Error::io("finish archive", "archive"))
}

/// Resolve `target` relative to the directory of `link` inside the archive, lexically;
/// `None` if it leaves the archive.
pub(crate) fn join_in_archive(base_dir: &Path, target: &[u8]) -> Option<PathBuf> {
    let target = Path::new(OsStr::from_bytes(target));
    let mut parts: Vec<&OsStr> =
        if target.is_absolute() { Vec::new() } else { base_dir.components().map(|c| c.as_os_str()).collect() };
    for c in target.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.iter().collect())
}

fn resolve_member<'a>(members: &'a BTreeMap<PathBuf, Member>, path: &str) -> Result<&'a Member> {
    let link = |m: &Member| match m {
        Member::Link(t) => Some(t.clone()),
        _ => None,
    };
    follow_links(members, path, link).map_err(|p| Error::InvalidArchive(ArchiveProblem::member(path, p)))
}

/// The member `path` names in `members`, following links (`link` says where a member
/// links to): at most 16, as a guard against loops.
pub(crate) fn follow_links<'a, M>(
    members: &'a BTreeMap<PathBuf, M>,
    path: &str,
    link: impl Fn(&M) -> Option<PathBuf>,
) -> std::result::Result<&'a M, MemberProblem> {
    let mut p = normalize(path.as_bytes()).map_err(|e| MemberProblem::UnsafePath(e.to_string()))?;
    for _ in 0..16 {
        let m = members.get(&p).ok_or(MemberProblem::Missing)?;
        match link(m) {
            Some(t) => p = t,
            None => return Ok(m),
        }
    }
    Err(MemberProblem::UnsafePath("too many links".into()))
}

/// Whether the first bytes of a member are those of a tar: a ustar (or GNU) header,
/// or, when it has no entries at all, the zero blocks that end it (docker's empty layer,
/// sha256:5f70bf18..., is 1024 zero bytes).
pub(crate) fn is_tar_head(head: &[u8]) -> bool {
    (head.len() >= 262 && &head[257..262] == b"ustar") || (head.len() == 512 && head.iter().all(|&b| b == 0))
}

/// The descriptor of a docker-archive layer member `path` (which a docker-archive gives
/// none): an OCI layer of the compression its first bytes show. A member that is
/// neither compressed nor a tar is refused.
pub(crate) fn docker_layer(path: &str, digest: &Digest, size: u64, head: &[u8]) -> Result<Descriptor> {
    let compression = Compression::sniff(head);
    if compression == Compression::None && !is_tar_head(head) && size > 0 {
        return Err(Error::InvalidArchive(ArchiveProblem::member(path, MemberProblem::NotATar)));
    }
    Ok(Descriptor::new(MediaType::layer(strata_spec::Family::Oci, compression), digest.clone(), size))
}

/// The manifest strata makes for an image of a docker-archive (which has none): an OCI
/// manifest of its config and layers. Loading and reading in place make the same one,
/// so an image has one digest either way.
pub(crate) fn docker_manifest(config: &Descriptor, layers: Vec<Descriptor>) -> Manifest {
    let config = Descriptor::new(MediaType::OciConfig, config.digest.clone(), config.size);
    Manifest::new(MediaType::OciManifest, config, layers)
}

/// Check that a docker-archive image lists as many layers as its config has diff_ids.
pub(crate) fn check_layer_count(e: &ArchiveManifestEntry, config: &ImageConfig) -> Result<()> {
    if config.rootfs.diff_ids.len() != e.layers.len() {
        return Err(Error::InvalidArchive(ArchiveProblem::LayerCount {
            config: e.config.clone(),
            layers: e.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        }));
    }
    Ok(())
}

/// Parse a docker-archive's `manifest.json`.
pub(crate) fn docker_entries(json: &[u8]) -> Result<Vec<ArchiveManifestEntry>> {
    let entries: Vec<ArchiveManifestEntry> =
        serde_json::from_slice(json).map_err(|e| bad_metadata("manifest.json", e))?;
    if entries.is_empty() {
        return Err(Error::InvalidArchive(ArchiveProblem::NoImages));
    }
    Ok(entries)
}

/// Check an OCI archive's `oci-layout` file.
pub(crate) fn check_layout_version(layout: &[u8]) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(layout).map_err(|e| bad_metadata("oci-layout", e))?;
    let version = v.get("imageLayoutVersion").and_then(|v| v.as_str()).unwrap_or_default();
    if !version.starts_with("1.") {
        return Err(Error::InvalidArchive(ArchiveProblem::LayoutVersion(version.to_owned())));
    }
    Ok(())
}

/// The name an OCI archive's index entry gives its image in a store: containerd's full
/// name is a reference (docker's rules for a new tag); a layout's own tag is kept as
/// other layout tools wrote it, a bare tag as it is (see `resolve::layout_reference`).
pub(crate) fn oci_entry_name(desc: &Descriptor) -> Result<Option<String>> {
    Ok(match (desc.annotation(ANNOTATION_IMAGE_NAME), desc.ref_name()) {
        (Some(full), _) => Some(resolve::new_tag(full)?),
        (None, Some(r)) if resolve::layout_reference(r).is_none() => Some(r.to_owned()),
        (None, r) => r.map(resolve::normalize_tag),
    })
}

/// The digest a `blobs/<alg>/<hex>` member path names, if it is one.
pub(crate) fn blob_name(path: &Path) -> Option<std::result::Result<Digest, String>> {
    match path.iter().collect::<Vec<_>>().as_slice() {
        [b, alg, hex] if b.as_bytes() == b"blobs" => {
            let s = format!("{}:{}", alg.to_string_lossy(), hex.to_string_lossy());
            Some(Digest::parse(&s).map_err(|e| e.to_string()))
        }
        _ => None,
    }
}

fn load_inner<R: Read>(store: &Store, input: R, created: &mut Vec<Digest>) -> Result<(Vec<Loaded>, BTreeSet<Digest>)> {
    let backend = store.backend();
    // Like `docker load`: the archive may itself be gzip- or zstd-compressed.
    let input = Decoder::new(input, None, "archive")?;
    let mut tar = TarReader::new(BufReader::with_capacity(1 << 20, input), Limits::default(), "archive");
    let mut members: BTreeMap<PathBuf, Member> = BTreeMap::new();
    while let Some(entry) = tar.next_entry()? {
        let entry = entry.clone();
        let shown = entry.display_name();
        let bad = |why: String| Error::InvalidArchive(ArchiveProblem::member(&shown, MemberProblem::UnsafePath(why)));
        let path = normalize(&entry.path).map_err(|e| bad(e.to_string()))?;
        let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
        match entry.kind {
            EntryKind::Dir | EntryKind::Fifo | EntryKind::Char | EntryKind::Block => continue,
            EntryKind::Symlink => {
                let t =
                    join_in_archive(&parent, &entry.link).ok_or_else(|| bad("symlink leaves the archive".into()))?;
                members.insert(path, Member::Link(t));
            }
            EntryKind::Hardlink => {
                let t = join_in_archive(Path::new(""), &entry.link)
                    .ok_or_else(|| bad("hard link leaves the archive".into()))?;
                members.insert(path, Member::Link(t));
            }
            EntryKind::File => {
                let name = path.to_string_lossy();
                if METADATA_FILES.contains(&name.as_ref()) {
                    if entry.size > MAX_METADATA {
                        return Err(bad(format!("{} bytes is too large for a metadata file", entry.size)));
                    }
                    let mut buf = Vec::with_capacity(entry.size as usize);
                    tar.read_data(|c| -> Result<()> {
                        buf.extend_from_slice(c);
                        Ok(())
                    })?;
                    members.insert(path, Member::Small(buf));
                    continue;
                }
                // `blobs/<alg>/<hex>` is named by its digest: hold it to that.
                let expected = blob_name(&path).transpose().map_err(bad)?;
                let mut w = backend.begin_write()?;
                let mut head: Vec<u8> = Vec::with_capacity(512);
                let mut werr: Option<io::Error> = None;
                tar.read_data(|c| -> Result<()> {
                    if head.len() < 512 {
                        let n = (512 - head.len()).min(c.len());
                        head.extend_from_slice(&c[..n]);
                    }
                    if let Err(e) = w.write_all(c) {
                        werr = Some(e);
                        return Err(Error::InvalidArchive(ArchiveProblem::Interrupted));
                    }
                    Ok(())
                })
                .map_err(|e| match werr.take() {
                    Some(io) => Error::Io(strata_spec::IoError::new("store archive entry", path.clone(), io)),
                    None => e,
                })?;
                let exp = Expected { digest: expected, size: Some(entry.size) };
                let info = w.commit(exp)?;
                if !info.existed {
                    created.push(info.digest.clone());
                }
                members.insert(path, Member::Blob { digest: info.digest, size: info.size, head });
            }
        }
    }
    if let Some(Member::Small(m)) = members.get(Path::new("manifest.json")) {
        load_docker(store, &members, m, created)
    } else if let Some(Member::Small(i)) = members.get(Path::new("index.json")) {
        load_oci(store, &members, i)
    } else {
        Err(Error::InvalidArchive(ArchiveProblem::UnknownFormat))
    }
}

/// Check that the stored layer `desc` is the layer `want` names (its diff_id), and record
/// its size: decompressed and hashed once, or not at all when an earlier write already
/// recorded it (see [`Store::layer_size`]). A mismatch names the layer as `shown`.
fn check_layer(store: &Store, desc: &Descriptor, want: &Digest, shown: &str) -> Result<()> {
    match store.layer_size(desc, want) {
        Ok(_) => Ok(()),
        Err(Error::Layer(strata_layer::Error::DiffIdMismatch { expected, actual, .. })) => {
            Err(Error::Layer(strata_layer::Error::DiffIdMismatch { layer: shown.to_owned(), expected, actual }))
        }
        Err(e) => Err(e),
    }
}

fn tag_all(store: &Store, loaded: &[Loaded]) -> Result<()> {
    let backend = store.backend();
    for l in loaded {
        if l.names.is_empty() {
            let desc = l.manifest.clone();
            backend.update_index(&mut |idx| {
                if !idx.manifests.iter().any(|d| d.digest == desc.digest && d.ref_name().is_none()) {
                    idx.manifests.push(desc.clone());
                }
                Ok(())
            })?;
        }
        for n in &l.names {
            backend.set_ref(n, &l.manifest)?;
        }
    }
    Ok(())
}

/// Load a docker-archive's images; `created` gets every blob this adds (the manifests it
/// writes), for the caller to delete on error.
fn load_docker(
    store: &Store,
    members: &BTreeMap<PathBuf, Member>,
    json: &[u8],
    created: &mut Vec<Digest>,
) -> Result<(Vec<Loaded>, BTreeSet<Digest>)> {
    let backend = store.backend();
    let entries = docker_entries(json)?;
    let mut loaded = Vec::new();
    let mut keep = BTreeSet::new();
    for e in &entries {
        let Member::Blob { digest: cfg_digest, size: cfg_size, .. } = resolve_member(members, &e.config)? else {
            return Err(Error::InvalidArchive(ArchiveProblem::member(&e.config, MemberProblem::NotAFile)));
        };
        let bytes = backend.read_blob(cfg_digest, MAX_DOCUMENT_SIZE)?;
        let config = ImageConfig::from_slice(&bytes)?;
        check_layer_count(e, &config)?;
        let mut layer_descs = Vec::new();
        for (p, want) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            let Member::Blob { digest, size, head } = resolve_member(members, p)? else {
                return Err(Error::InvalidArchive(ArchiveProblem::member(p, MemberProblem::NotAFile)));
            };
            let desc = docker_layer(p, digest, *size, head)?;
            check_layer(store, &desc, want, p)?;
            layer_descs.push(desc);
            keep.insert(digest.clone());
        }
        keep.insert(cfg_digest.clone());
        let config_desc = Descriptor::new(MediaType::OciConfig, cfg_digest.clone(), *cfg_size);
        let manifest = docker_manifest(&config_desc, layer_descs);
        let mbytes = manifest.to_canonical_json();
        let info = backend.put_blob(&mbytes)?;
        // A later image may still fail: then this manifest must go too.
        if !info.existed {
            created.push(info.digest.clone());
        }
        keep.insert(info.digest.clone());
        let mut names = Vec::new();
        for t in e.repo_tags.iter().flatten() {
            // docker's rules for a new tag, and docker's reason when one breaks them.
            names.push(resolve::new_tag(t)?);
        }
        loaded.push(Loaded {
            names,
            id: cfg_digest.clone(),
            manifest: Descriptor::new(MediaType::OciManifest, info.digest, info.size),
        });
    }
    tag_all(store, &loaded)?;
    Ok((loaded, keep))
}

fn load_oci(
    store: &Store,
    members: &BTreeMap<PathBuf, Member>,
    json: &[u8],
) -> Result<(Vec<Loaded>, BTreeSet<Digest>)> {
    if let Some(Member::Small(layout)) = members.get(Path::new("oci-layout")) {
        check_layout_version(layout)?;
    }
    let index = Index::from_slice(json).map_err(|e| bad_metadata("index.json", e))?;
    let mut loaded = Vec::new();
    let mut keep = BTreeSet::new();
    let host = strata_spec::Platform::host();
    let mut referrers = Vec::new();
    for desc in &index.manifests {
        // An artifact attached to an image (an SBOM): kept as a referrer, not an image.
        if desc.ref_name().is_none()
            && store.backend().contains(&desc.digest)?
            && let Some((entry, parts)) = referrer_parts(store, desc)?
        {
            for p in &parts {
                if !store.backend().contains(&p.digest)? {
                    return Err(Error::InvalidArchive(ArchiveProblem::member(
                        p.digest.to_string(),
                        MemberProblem::Missing,
                    )));
                }
                keep.insert(p.digest.clone());
            }
            keep.insert(desc.digest.clone());
            referrers.push(entry);
            continue;
        }
        let img = Image::open(store.clone(), desc.clone(), None, &host).or_else(|_| {
            // An index entry for another platform only: open whatever it has.
            Image::open(store.clone(), desc.clone(), None, &desc.platform.clone().unwrap_or_else(|| host.clone()))
        })?;
        for (l, want) in img.layers().iter().zip(&img.config().rootfs.diff_ids) {
            if !store.backend().contains(&l.digest)? {
                return Err(Error::InvalidArchive(ArchiveProblem::member(
                    l.digest.to_string(),
                    MemberProblem::Missing,
                )));
            }
            check_layer(store, l, want, l.digest.as_str())?;
            keep.insert(l.digest.clone());
        }
        keep.insert(img.manifest().config.digest.clone());
        keep.insert(img.digest().clone());
        keep.insert(desc.digest.clone());
        let name = oci_entry_name(desc)?;
        let mut target = desc.clone();
        target.annotations = None;
        loaded.push(Loaded { names: name.into_iter().collect(), id: img.id().clone(), manifest: target });
    }
    // Everything else the index reaches (other platforms of a multi-platform index) stays too.
    for desc in &index.manifests {
        closure(store, desc, &mut keep, 0);
    }
    tag_all(store, &loaded)?;
    for r in &referrers {
        store.add_referrer_entry(r)?;
    }
    Ok((loaded, keep))
}

/// Add to `keep` every blob reachable from `desc` that the store has.
fn closure(store: &Store, desc: &Descriptor, keep: &mut BTreeSet<Digest>, depth: usize) {
    if depth > 4 || !store.backend().contains(&desc.digest).unwrap_or(false) {
        return;
    }
    keep.insert(desc.digest.clone());
    if !(desc.media_type.is_manifest() || desc.media_type.is_index()) {
        return;
    }
    let Ok(bytes) = store.backend().read_descriptor(desc, MAX_DOCUMENT_SIZE) else { return };
    match strata_spec::ManifestOrIndex::from_slice_as(&bytes, &desc.media_type) {
        Ok(strata_spec::ManifestOrIndex::Manifest(m)) => {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if store.backend().contains(&d.digest).unwrap_or(false) {
                    keep.insert(d.digest.clone());
                }
            }
        }
        Ok(strata_spec::ManifestOrIndex::Index(i)) => {
            for d in &i.manifests {
                closure(store, d, keep, depth + 1);
            }
        }
        Err(_) => {}
    }
}

/// A metadata file of an archive that does not parse: the parser's whole message.
pub(crate) fn bad_metadata(file: &'static str, e: impl std::error::Error) -> Error {
    Error::InvalidArchive(ArchiveProblem::BadMetadata { file, reason: strata_spec::ErrorChain(&e).to_string() })
}
