//! [`ArchiveView`]: a docker-archive or OCI archive read in place, as a read-only store.
//!
//! Opening reads the tar's headers once, seeking past every member's data, and records
//! where each member's bytes lie; only the small documents (`manifest.json`,
//! `index.json`, `oci-layout`, `repositories`, and each docker-archive image's config)
//! are read. Blobs are then read straight from those ranges of the file
//! ([`strata_store::RangeStore`]), verified against their digests as they are read;
//! nothing is copied. The images are those [`Store::load`] would load from the same
//! archive, with the same names, ids and manifest digests (a docker-archive has no
//! manifest: the one strata makes for it is the one loading makes).
//!
//! A compressed archive (`.tar.gz`, `.tar.zst`) or one that is not a regular file (a
//! pipe) cannot be read in place: [`Error::NotInPlace`]. Hostile archives get
//! [`Error::ArchiveMember`] naming the member (a path leaving the archive, two members
//! of one path, data past the end of the file, a member `manifest.json` names that is
//! not there); a blob whose bytes do not hash to its name fails the read that meets it
//! with [`strata_store::Error::DigestMismatch`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_layer::path::normalize;
use strata_layer::read::{EntryKind, Limits, TarReader};
use strata_spec::{
    ANNOTATION_REF_NAME, Compression, Descriptor, Digest, Digester, ImageConfig, Index, MediaType, Platform,
};
use strata_store::{ByteRange, MAX_DOCUMENT_SIZE, RangeStore};

use crate::archive::{
    blob_name, check_layer_count, check_layout_version, docker_entries, docker_layer, docker_manifest, follow_links,
    join_in_archive, oci_entry_name,
};
use crate::error::{ArchiveProblem, Error, MemberProblem, Result};
use crate::image::Image;
use crate::referrers::referrer_parts;
use crate::{Loaded, Store};

/// Files read into memory while scanning (the others are only located).
const METADATA_FILES: &[&str] = &["manifest.json", "repositories", "index.json", "oci-layout"];

/// Read buffer for the header scan: headers are 512 bytes and the data between them is
/// seeked over, so a small buffer wastes nothing (each seek drops it).
const SCAN_BUFFER: usize = 64 * 1024;

/// Bytes of a member read to tell a tar from a compressed layer (one tar header).
const HEAD: u64 = 512;

/// A member of the archive as scanned.
#[derive(Debug)]
enum Member {
    /// A file, where its bytes lie.
    Range(ByteRange),
    /// A metadata file, read.
    Small(Vec<u8>),
    /// A symlink or hard link to another member (archive-relative path).
    Link(PathBuf),
}

/// A docker-archive or OCI archive opened in place (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct ArchiveView {
    store: Store,
    ranges: RangeStore,
    images: Vec<Loaded>,
}

impl ArchiveView {
    /// Open the archive at `path`: scan its headers and find its images.
    pub fn open(path: impl AsRef<Path>) -> Result<ArchiveView> {
        let path = path.as_ref();
        let scan = Scan::of(path)?;
        let (ranges, images) = if let Some(json) = scan.small("manifest.json") {
            scan.docker(json)?
        } else if let Some(json) = scan.small("index.json") {
            scan.oci(json)?
        } else {
            return Err(Error::InvalidArchive(ArchiveProblem::UnknownFormat));
        };
        let store = Store::from_backend(Arc::new(ranges.clone()), None);
        Ok(ArchiveView { store, ranges, images })
    }

    /// The read-only store over the archive: its index lists the images by the names
    /// loading would give them.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The images of the archive, in its order, as [`Store::load`] would report them.
    pub fn images(&self) -> &[Loaded] {
        &self.images
    }

    /// Open one of [`ArchiveView::images`] (for the host's platform when it is an index
    /// of several, else whatever the index has).
    pub fn image(&self, loaded: &Loaded) -> Result<Image> {
        open_image(&self.store, &loaded.manifest)
    }

    /// Where blob `digest` lies in the archive file (`None` for a manifest strata made
    /// for a docker-archive, held in memory).
    pub fn range(&self, digest: &Digest) -> Option<ByteRange> {
        self.ranges.range(digest)
    }
}

fn open_image(store: &Store, desc: &Descriptor) -> Result<Image> {
    let host = Platform::host();
    Image::open(store.clone(), desc.clone(), None, &host).or_else(|_| {
        // An index entry for another platform only: open whatever it has.
        Image::open(store.clone(), desc.clone(), None, &desc.platform.clone().unwrap_or(host))
    })
}

/// The scanned archive.
struct Scan {
    path: PathBuf,
    file: File,
    members: BTreeMap<PathBuf, Member>,
}

impl Scan {
    fn of(path: &Path) -> Result<Scan> {
        let file =
            File::open(path).map_err(|source| Error::Io(strata_spec::IoError::new("open", path.to_owned(), source)))?;
        let meta =
            file.metadata().map_err(|source| Error::Io(strata_spec::IoError::new("stat", path.to_owned(), source)))?;
        let not_in_place = |reason: String| Error::NotInPlace { path: path.to_owned(), reason };
        if !meta.is_file() {
            return Err(not_in_place("not a regular file".into()));
        }
        let mut head = [0u8; 6];
        let n = file
            .read_at(&mut head, 0)
            .map_err(|source| Error::Io(strata_spec::IoError::new("read", path.to_owned(), source)))?;
        let compression = Compression::sniff(&head[..n]);
        if compression != Compression::None {
            return Err(not_in_place(format!("{compression}-compressed")));
        }
        let len = meta.len();
        let shown = path.display().to_string();
        let reader = BufReader::with_capacity(SCAN_BUFFER, &file);
        let mut tar = TarReader::new(reader, Limits::default(), &shown);
        let mut members = BTreeMap::new();
        let member_error = |member: &str, problem| Error::ArchiveMember {
            archive: path.to_owned(),
            member: member.to_owned(),
            problem,
        };
        while let Some(entry) = tar.next_entry()? {
            let entry = entry.clone();
            let name = entry.display_name();
            let bad = |problem| member_error(&name, problem);
            let p = normalize(&entry.path).map_err(|e| bad(MemberProblem::UnsafePath(e.to_string())))?;
            let parent = p.parent().unwrap_or(Path::new("")).to_path_buf();
            let member = match entry.kind {
                EntryKind::Dir | EntryKind::Fifo | EntryKind::Char | EntryKind::Block => continue,
                EntryKind::Symlink => Member::Link(
                    join_in_archive(&parent, &entry.link)
                        .ok_or_else(|| bad(MemberProblem::UnsafePath("symlink leaves the archive".into())))?,
                ),
                EntryKind::Hardlink => Member::Link(
                    join_in_archive(Path::new(""), &entry.link)
                        .ok_or_else(|| bad(MemberProblem::UnsafePath("hard link leaves the archive".into())))?,
                ),
                EntryKind::File if entry.sparse.is_some() => return Err(bad(MemberProblem::Sparse)),
                EntryKind::File if METADATA_FILES.contains(&p.to_string_lossy().as_ref()) => {
                    if entry.size > MAX_DOCUMENT_SIZE {
                        return Err(bad(MemberProblem::TooLarge(entry.size)));
                    }
                    let mut buf = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
                    tar.read_data(|c| -> Result<()> {
                        buf.extend_from_slice(c);
                        Ok(())
                    })?;
                    Member::Small(buf)
                }
                EntryKind::File => {
                    let r = ByteRange { offset: tar.position(), size: entry.size };
                    let end = r.offset.saturating_add(r.size);
                    if end > len {
                        return Err(bad(MemberProblem::Truncated { end, len }));
                    }
                    tar.seek_past_data()?;
                    Member::Range(r)
                }
            };
            if members.insert(p, member).is_some() {
                return Err(member_error(&name, MemberProblem::Duplicate));
            }
        }
        Ok(Scan { path: path.to_owned(), file, members })
    }

    fn small(&self, name: &str) -> Option<&[u8]> {
        match self.members.get(Path::new(name)) {
            Some(Member::Small(b)) => Some(b),
            _ => None,
        }
    }

    fn member_error(&self, member: &str, problem: MemberProblem) -> Error {
        Error::ArchiveMember { archive: self.path.clone(), member: member.to_owned(), problem }
    }

    /// The file member `name` (links followed) and its path in the archive.
    fn range(&self, name: &str) -> Result<(PathBuf, ByteRange)> {
        let link = |m: &Member| match m {
            Member::Link(t) => Some(t.clone()),
            _ => None,
        };
        match follow_links(&self.members, name, link).map_err(|p| self.member_error(name, p))? {
            Member::Range(r) => {
                // The path the member was found under, for a `blobs/...` name.
                let at = self
                    .members
                    .iter()
                    .find(|(_, m)| matches!(m, Member::Range(x) if x == r))
                    .map(|(p, _)| p.clone())
                    .unwrap_or_default();
                Ok((at, *r))
            }
            _ => Err(self.member_error(name, MemberProblem::NotAFile)),
        }
    }

    /// `len` bytes of the file from `offset`.
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|source| Error::Io(strata_spec::IoError::new("read", self.path.clone(), source)))?;
        Ok(buf)
    }

    /// The digest of `r`'s bytes, read once (a compressed layer whose name is no digest).
    fn hash(&self, r: ByteRange) -> Result<Digest> {
        let mut d = Digester::new(strata_spec::Algorithm::Sha256);
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = r.offset;
        let end = r.offset + r.size;
        while at < end {
            let want = usize::try_from(end - at).unwrap_or(usize::MAX).min(buf.len());
            let n = self
                .file
                .read_at(&mut buf[..want], at)
                .map_err(|source| Error::Io(strata_spec::IoError::new("read", self.path.clone(), source)))?;
            if n == 0 {
                return Err(self.member_error("", MemberProblem::Truncated { end, len: at }));
            }
            d.update(&buf[..n]);
            at += n as u64;
        }
        Ok(d.finish())
    }

    /// The store over this file, its blobs `ranges`, the `documents` made for it, and
    /// `loaded` as its index.
    fn store(&self, ranges: BTreeMap<Digest, ByteRange>, documents: Vec<Vec<u8>>, index: Index) -> Result<RangeStore> {
        let file = self
            .file
            .try_clone()
            .map_err(|source| Error::Io(strata_spec::IoError::new("open", self.path.clone(), source)))?;
        Ok(RangeStore::new(file, &self.path, ranges, documents, index)?)
    }

    /// A docker-archive: each image's config read, its manifest made as loading makes it.
    fn docker(&self, json: &[u8]) -> Result<(RangeStore, Vec<Loaded>)> {
        let entries = docker_entries(json)?;
        let mut ranges = BTreeMap::new();
        let mut documents = Vec::new();
        let mut loaded = Vec::new();
        for e in &entries {
            let (at, r) = self.range(&e.config)?;
            if r.size > MAX_DOCUMENT_SIZE {
                return Err(self.member_error(&e.config, MemberProblem::TooLarge(r.size)));
            }
            let bytes = self.read(r.offset, r.size)?;
            let digest = Digest::sha256_of(&bytes);
            // A `blobs/sha256/<hex>` config is held to its name, as loading holds it.
            if let Some(named) = blob_name(&at) {
                let named = named.map_err(|why| self.member_error(&e.config, MemberProblem::BadDigestName(why)))?;
                if named != digest {
                    return Err(strata_store::Error::DigestMismatch { expected: named, actual: digest }.into());
                }
            }
            let config = ImageConfig::from_slice(&bytes)?;
            check_layer_count(e, &config)?;
            ranges.insert(digest.clone(), r);
            let mut layers = Vec::new();
            for (p, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
                let (at, r) = self.range(p)?;
                let head = self.read(r.offset, r.size.min(HEAD))?;
                // The digest of the layer as stored: its name when it has one, else the
                // diff_id when it is a plain tar (checked as it is read), else hashed now.
                let digest = match blob_name(&at) {
                    Some(named) => named.map_err(|why| self.member_error(p, MemberProblem::BadDigestName(why)))?,
                    None if Compression::sniff(&head) == Compression::None => diff_id.clone(),
                    None => self.hash(r)?,
                };
                layers.push(docker_layer(p, &digest, r.size, &head)?);
                ranges.insert(digest, r);
            }
            let config_desc = Descriptor::new(MediaType::OciConfig, digest.clone(), r.size);
            let manifest = docker_manifest(&config_desc, layers).to_canonical_json();
            let mdesc = Descriptor::new(MediaType::OciManifest, Digest::sha256_of(&manifest), manifest.len() as u64);
            documents.push(manifest);
            let names = e
                .repo_tags
                .iter()
                .flatten()
                .map(|t| crate::resolve::new_tag(t))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            loaded.push(Loaded { names, id: digest, manifest: mdesc });
        }
        let store = self.store(ranges, documents, index_of(&loaded))?;
        Ok((store, loaded))
    }

    /// An OCI archive: every `blobs/<alg>/<hex>` member is a blob.
    fn oci(&self, json: &[u8]) -> Result<(RangeStore, Vec<Loaded>)> {
        if let Some(layout) = self.small("oci-layout") {
            check_layout_version(layout)?;
        }
        let index = Index::from_slice(json).map_err(|e| crate::archive::bad_metadata("index.json", e))?;
        let mut ranges = BTreeMap::new();
        for (p, m) in &self.members {
            if let (Some(named), Member::Range(r)) = (blob_name(p), m) {
                let shown = p.to_string_lossy();
                let digest = named.map_err(|why| self.member_error(&shown, MemberProblem::BadDigestName(why)))?;
                ranges.insert(digest, *r);
            }
        }
        // The archive's own index first, to open its images; then the names loading gives.
        let raw = Store::from_backend(Arc::new(self.store(ranges.clone(), Vec::new(), index.clone())?), None);
        let mut loaded = Vec::new();
        for desc in &index.manifests {
            // An artifact attached to an image (an SBOM) is no image.
            if desc.ref_name().is_none()
                && raw.backend().contains(&desc.digest)?
                && referrer_parts(&raw, desc)?.is_some()
            {
                continue;
            }
            let img = open_image(&raw, desc)?;
            for l in img.layers() {
                if !raw.backend().contains(&l.digest)? {
                    return Err(self.member_error(
                        &format!("blobs/{}", l.digest.as_str().replace(':', "/")),
                        MemberProblem::Missing,
                    ));
                }
            }
            let mut target = desc.clone();
            target.annotations = None;
            loaded.push(Loaded {
                names: oci_entry_name(desc)?.into_iter().collect(),
                id: img.id().clone(),
                manifest: target,
            });
        }
        let store = self.store(ranges, Vec::new(), index_of(&loaded))?;
        Ok((store, loaded))
    }
}

/// The index a store would have after loading `loaded`: one entry per name, an unnamed
/// entry for an image without one.
fn index_of(loaded: &[Loaded]) -> Index {
    let mut index = Index::new(Some(MediaType::OciIndex));
    for l in loaded {
        if l.names.is_empty() {
            index.manifests.push(l.manifest.clone());
        }
        for n in &l.names {
            let mut d = l.manifest.clone();
            d.set_annotation(ANNOTATION_REF_NAME, n);
            index.manifests.push(d);
        }
    }
    index
}
