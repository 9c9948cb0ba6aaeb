//! What a step reads before it runs: the sources of `COPY`/`ADD` (context, here-documents,
//! downloads, archives, other images) and the mounts of `RUN`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use strata_commit::CommitOptions;
use strata_image::{Image, UnpackOptions};
use strata_layer::{ApplyOptions, LayerSource, Timestamp};
use strata_spec::{Descriptor, Digest, Platform};

use super::exec::{CopyItems, State, step_time};
use super::plan::{CopyPlan, MountPlan};
use super::{Builder, Event, lock};
use crate::copy::{self, HashMemo, SourceItem, SourceRoot};
use crate::dockerfile::MountKind;
use crate::error::{Error, Result, StageProblem};
use crate::fetch;
use crate::mounts::{self, Origin, Prepared};

impl Builder<'_> {
    /// The sources of a planned `COPY`/`ADD`: matched and hashed (context files,
    /// here-documents, downloads, archives `ADD` extracts), or the image of `--from`.
    /// Returns them and the hash its history text has.
    pub(super) fn copy_sources(
        &self,
        st: &mut State,
        plan: &CopyPlan,
        observe: &mut dyn FnMut(&Event<'_>),
    ) -> Result<(CopyItems, String)> {
        if let Some(f) = &plan.from {
            let image = self.image_for_copy_from(f, &st.platform)?;
            let hash = plan.image_hash(image.id());
            return Ok((CopyItems::FromImage(image), hash));
        }
        let src = SourceRoot {
            root: self.context.to_path_buf(),
            ignore: Some(self.ignore),
            exclude: plan.exclude.as_ref(),
            keep_owners: false,
            recorded: BTreeMap::new(),
        };
        let mut memo = lock(&self.memo).clone();
        let mut items = Vec::new();
        if !plan.heredocs.is_empty() {
            let dir = self.tempdir()?;
            let now = self.now()?;
            for (i, (name, text)) in plan.heredocs.iter().enumerate() {
                let d = dir.path().join(i.to_string());
                std::fs::create_dir(&d).map_err(Error::io("mkdir", &d))?;
                items.push(copy::heredoc_item(&d, name, text, now)?);
            }
            st.temps.push(dir);
        }
        for s in &plan.sources {
            if fetch::is_url(s) {
                // Downloaded every time, as docker does: the key is over the content.
                items.push(self.download(st, s, plan.checksum.as_ref())?);
                continue;
            }
            items.extend(copy::expand(&src, std::slice::from_ref(s), plan.parents, &mut memo, &mut |n| {
                let total = self.hashed.fetch_add(n, Ordering::Relaxed) + n;
                observe(&Event::ContextHashed(total));
            })?);
        }
        lock(&self.memo).extend(memo);
        let hash = copy::source_hash(&items);
        let mut out = Vec::new();
        for item in items {
            // A downloaded archive is saved as it is, never extracted (docker's rule).
            if plan.is_add()
                && !item.is_dir
                && item.url.is_none()
                && let Some(extracted) = self.extract_if_archive(st, &item)?
            {
                out.push((extracted, true));
                continue;
            }
            out.push((item, false));
        }
        Ok((CopyItems::Ready(out), hash))
    }

    /// The items of `COPY --from`: the image unpacked into a directory kept until the
    /// layer is written.
    pub(super) fn items_of_image(
        &self,
        st: &mut State,
        image: &Image,
        plan: &CopyPlan,
    ) -> Result<Vec<(SourceItem, bool)>> {
        self.complete(image)?;
        let dir = self.tempdir()?;
        let root = dir.path().join("rootfs");
        image.unpack_raw(&root, &UnpackOptions::default())?;
        st.temps.push(dir);
        let src = SourceRoot {
            root,
            ignore: None,
            exclude: plan.exclude.as_ref(),
            keep_owners: false,
            recorded: BTreeMap::new(),
        };
        let mut memo = HashMemo::new();
        let items = copy::expand(&src, &plan.sources, plan.parents, &mut memo, &mut |_| {})?;
        Ok(items.into_iter().map(|i| (i, false)).collect())
    }

    /// Bring the layers of `img` into the store when it came from an imported cache.
    pub(super) fn complete(&self, img: &Image) -> Result<()> {
        lock(&self.imported).complete(self.store, &img.descriptor().digest, img.layers())
    }

    /// Whether the store has every layer of the manifest `desc`.
    pub(super) fn has_layers(&self, desc: &Descriptor) -> Result<bool> {
        let m = strata_spec::Manifest::from_slice(
            &self.store.backend().read_descriptor(desc, strata_store::MAX_DOCUMENT_SIZE)?,
        )?;
        for l in &m.layers {
            if self.store.backend().stat(&l.digest)? != Some(l.size) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Where `RUN --mount=type=cache` directories live: beside the store's blobs, so
    /// that they outlive the build (a temporary directory for a store in memory).
    pub(super) fn cache_mount_root(&self) -> PathBuf {
        match (self.store.path(), &self.mount_tmp) {
            (Some(p), _) => p.join("strata-build").join("mounts"),
            (None, Some(t)) => t.path().to_path_buf(),
            (None, None) => std::env::temp_dir(),
        }
    }

    /// The time of what a step makes before its commit (here-document files).
    pub(super) fn now(&self) -> Result<Timestamp> {
        step_time(&CommitOptions { created: self.epoch, ..Default::default() })
    }

    pub(super) fn tempdir(&self) -> Result<tempfile::TempDir> {
        let base = self.opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        tempfile::Builder::new()
            .prefix("strata-build-")
            .tempdir_in(&base)
            .map_err(Error::io("create a directory in", base))
    }

    /// `ADD <url>`: the file downloaded into a directory kept until the layer is written.
    pub(super) fn download(&self, st: &mut State, url: &str, checksum: Option<&Digest>) -> Result<SourceItem> {
        let dir = self.tempdir()?;
        let path = dir.path().join("download");
        st.temps.push(dir);
        let fetched = fetch::fetch(url, &path, &self.opts.fetch, checksum)?;
        Ok(copy::url_item(url, &fetched))
    }

    /// `COPY --from`: an earlier stage (by name or index), else an image.
    pub(super) fn image_for_copy_from(&self, name: &str, platform: &Platform) -> Result<Image> {
        if let Some(i) = self.df.stage_index(name) {
            return match lock(&self.stages).get(i).cloned() {
                Some(Some(Some(img))) => Ok(img),
                Some(Some(None)) => {
                    Err(Error::StageUnusable { name: name.to_owned(), problem: StageProblem::EmptyScratch })
                }
                _ => Err(Error::StageUnusable { name: name.to_owned(), problem: StageProblem::NotBuiltYet }),
            };
        }
        self.base_image(name, Some(platform))
    }

    /// `ADD` of a local archive: extracted (with the applier's rules) into a directory
    /// whose contents are then copied, owners kept.
    pub(super) fn extract_if_archive(&self, st: &mut State, item: &SourceItem) -> Result<Option<SourceItem>> {
        let Some(e) = item.entries.first() else { return Ok(None) };
        if e.kind != strata_layer::EntryKind::File {
            return Ok(None);
        }
        let mut head = [0u8; 6];
        let n = {
            let mut f = std::fs::File::open(&e.abs).map_err(Error::io("open", &e.abs))?;
            std::io::Read::read(&mut f, &mut head).map_err(Error::io("read", &e.abs))?
        };
        let format = if head[..n].starts_with(b"BZh") {
            Some("bzip2")
        } else if head[..n].starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some("xz")
        } else {
            None
        };
        if let Some(format) = format {
            return Err(Error::UnsupportedArchive { path: item.name.clone(), format });
        }
        if !is_tar(&e.abs) {
            return Ok(None);
        }
        let dir = self.tempdir()?;
        let root = dir.path().join("x");
        let f = std::fs::File::open(&e.abs).map_err(Error::io("open", &e.abs))?;
        let report = strata_layer::apply_layer(
            &root,
            LayerSource::new(item.name.display().to_string(), f),
            &ApplyOptions::default(),
        )?;
        let recorded = report.recorded.iter().map(|(p, r)| (p.clone(), (r.uid, r.gid))).collect();
        let src = SourceRoot { root: root.clone(), ignore: None, exclude: None, keep_owners: true, recorded };
        let mut memo = HashMemo::new();
        let mut items = copy::expand_sources(&src, &[".".into()], &mut memo, &mut |_| {})?;
        st.temps.push(dir);
        Ok(items.pop().map(|mut i| {
            i.name = item.name.clone();
            i
        }))
    }

    /// What each planned `RUN --mount` binds, found (it is part of the step's key):
    /// a stage or image for `from=`, else the build context's files.
    pub(super) fn prepare_mounts(&self, st: &State, mounts: &[MountPlan]) -> Result<Vec<Prepared>> {
        let mut out = Vec::new();
        for m in mounts {
            let origin = match (m.mount.kind, &m.from) {
                (MountKind::Bind, Some(from)) => {
                    let image = self.image_for_copy_from(from, &st.platform)?;
                    self.complete(&image)?;
                    Origin::Image(image)
                }
                (MountKind::Bind, None) => {
                    let source = m.mount.source.clone().unwrap_or_else(|| ".".into());
                    let mut memo = lock(&self.memo).clone();
                    let origin = mounts::context_origin(self.context, self.ignore, &source, &mut memo)?;
                    lock(&self.memo).extend(memo);
                    origin
                }
                _ => Origin::None,
            };
            out.push(Prepared { mount: m.mount.clone(), origin });
        }
        Ok(out)
    }
}

/// Whether the file is a tar archive, plain or gzip/zstd-compressed.
pub(super) fn is_tar(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else { return false };
    let Ok(mut d) = strata_layer::Decoder::new(f, None, "archive") else { return false };
    let mut block = vec![0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match std::io::Read::read(&mut d, &mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    if got < 512 {
        return false;
    }
    // ustar magic, or a v7 header whose checksum adds up.
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u32 =
        block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u32::from(*b) }).sum();
    stored == Some(sum) && block[0] != 0
}
