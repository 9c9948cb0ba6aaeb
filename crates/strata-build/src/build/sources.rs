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
use super::{Builder, Event, lock};
use crate::copy::{self, HashMemo, SourceItem, SourceRoot};
use crate::dockerfile::{CopyArgs, Ignore, Mount, MountKind, RunArgs};
use crate::error::{Error, Result};
use crate::fetch;
use crate::mounts::{self, Origin, Prepared};
use crate::run::Network;

impl Builder<'_> {
    /// Sources of a `COPY`/`ADD`: substituted, matched, hashed. Returns the items, the
    /// destination, `--chown`, `--chmod`, and the hash for `created_by`.
    #[allow(clippy::type_complexity)]
    pub(super) fn copy_sources(
        &self,
        st: &mut State,
        args: &CopyArgs,
        is_add: bool,
        observe: &mut dyn FnMut(&Event<'_>),
    ) -> Result<(CopyItems, String, Option<String>, Option<u32>, String)> {
        let mut sources = Vec::new();
        let mut heredocs = Vec::new();
        for s in &args.sources {
            match args.heredoc(s) {
                Some(h) => {
                    let text = if h.expand {
                        self.lexer()
                            .process_heredoc(&h.text(), &|n| st.lookup(n))
                            .map_err(|reason| Error::Substitution { word: h.word.clone(), reason })?
                    } else {
                        h.text()
                    };
                    heredocs.push((h.name.clone(), text));
                }
                None => sources.push(self.subst(st, s)?),
            }
        }
        let exclude = if args.exclude.is_empty() {
            None
        } else {
            let mut patterns = Vec::new();
            for e in &args.exclude {
                patterns.push(self.subst(st, e)?);
            }
            Some(Ignore::parse(&patterns.join("\n"))?)
        };
        let dest = self.subst(st, &args.dest)?;
        let chown = args.chown.as_ref().map(|c| self.subst(st, c)).transpose()?;
        let chmod = match &args.chmod {
            Some(m) => {
                let m = self.subst(st, m)?;
                Some(u32::from_str_radix(&m, 8).ok().filter(|v| *v <= 0o7777).ok_or_else(|| {
                    Error::Instruction(format!("--chmod={m}: not an octal mode (symbolic modes are not supported)"))
                })?)
            }
            None => None,
        };
        for s in sources.iter().filter(|s| fetch::is_url(s)) {
            if !is_add {
                return Err(Error::Instruction(format!("{s}: COPY sources can't be URLs")));
            }
            if !self.opts.fetch.enabled {
                return Err(Error::UrlSource { url: s.clone() });
            }
            if !fetch::is_http(s) {
                return Err(Error::UrlScheme { url: s.clone() });
            }
        }
        let checksum = match &args.checksum {
            Some(c) => {
                let c = self.subst(st, c)?;
                if !matches!(sources.as_slice(), [one] if fetch::is_http(one)) {
                    return Err(Error::Instruction(format!(
                        "--checksum={c}: needs exactly one source, an http:// or https:// URL"
                    )));
                }
                Some(Digest::parse(&c).map_err(|e| Error::Instruction(format!("--checksum={c}: {e}")))?)
            }
            None => None,
        };
        if let Some(f) = &args.from {
            if !heredocs.is_empty() {
                return Err(Error::Instruction("COPY --from cannot copy a here-document".into()));
            }
            let f = self.subst(st, f)?;
            let image = self.image_for_copy_from(&f, &st.platform)?;
            // The image id stands for its content: no need to read it for the key.
            let spec = serde_json::to_string(&sources).unwrap_or_default();
            let hash = format!("from:{}:{}", image.id().hex(), Digest::sha256_of(spec.as_bytes()).hex());
            let items = CopyItems::FromImage { image, sources, parents: args.parents, exclude };
            return Ok((items, dest, chown, chmod, hash));
        }
        let src = SourceRoot {
            root: self.context.to_path_buf(),
            ignore: Some(self.ignore),
            exclude: exclude.as_ref(),
            keep_owners: false,
            recorded: BTreeMap::new(),
        };
        let mut memo = lock(&self.memo).clone();
        let mut items = Vec::new();
        if !heredocs.is_empty() {
            let dir = self.tempdir()?;
            let now = self.now()?;
            for (i, (name, text)) in heredocs.iter().enumerate() {
                let d = dir.path().join(i.to_string());
                std::fs::create_dir(&d).map_err(Error::io("mkdir", &d))?;
                items.push(copy::heredoc_item(&d, name, text, now)?);
            }
            st.temps.push(dir);
        }
        for s in &sources {
            if fetch::is_url(s) {
                // Downloaded every time, as docker does: the key is over the content.
                items.push(self.download(st, s, checksum.as_ref())?);
                continue;
            }
            items.extend(copy::expand(&src, std::slice::from_ref(s), args.parents, &mut memo, &mut |n| {
                let total = self.hashed.fetch_add(n, Ordering::Relaxed) + n;
                observe(&Event::ContextHashed(total));
            })?);
        }
        lock(&self.memo).extend(memo);
        let hash = copy::source_hash(&items);
        let mut out = Vec::new();
        for item in items {
            // A downloaded archive is saved as it is, never extracted (docker's rule).
            if is_add
                && !item.is_dir
                && item.url.is_none()
                && let Some(extracted) = self.extract_if_archive(st, &item)?
            {
                out.push((extracted, true));
                continue;
            }
            out.push((item, false));
        }
        Ok((CopyItems::Ready(out), dest, chown, chmod, hash))
    }

    /// The items of `COPY --from`: the image unpacked into a directory kept until the
    /// layer is written.
    pub(super) fn items_of_image(
        &self,
        st: &mut State,
        image: &Image,
        sources: &[String],
        parents: bool,
        exclude: Option<&Ignore>,
    ) -> Result<Vec<(SourceItem, bool)>> {
        self.complete(image)?;
        let dir = self.tempdir()?;
        let root = dir.path().join("rootfs");
        image.unpack_raw(&root, &UnpackOptions::default())?;
        st.temps.push(dir);
        let src = SourceRoot { root, ignore: None, exclude, keep_owners: false, recorded: BTreeMap::new() };
        let mut memo = HashMemo::new();
        let items = copy::expand(&src, sources, parents, &mut memo, &mut |_| {})?;
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
                Some(Some(None)) => Err(Error::Instruction(format!("stage {name:?} is an empty scratch stage"))),
                _ => Err(Error::Instruction(format!("stage {name:?} is not built yet (it comes later)"))),
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
        if head[..n].starts_with(b"BZh") || head[..n].starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            return Err(Error::Instruction(format!(
                "{}: bzip2 and xz archives are not supported by ADD (use gzip, zstd or plain tar)",
                item.name.display()
            )));
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

    /// `RUN --network`, `--security` and `--mount`: checked, and each mount's sources
    /// found (they are part of the step's key).
    pub(super) fn run_options(&self, st: &State, run: &RunArgs) -> Result<(Vec<Prepared>, Network)> {
        let entitled = |e: &str, what: &str| -> Result<()> {
            if self.opts.allow.contains(e) {
                Ok(())
            } else {
                Err(Error::Entitlement { entitlement: e.to_owned(), what: what.to_owned() })
            }
        };
        let network = match run.network.as_deref() {
            None | Some("default") => self.opts.network,
            Some("none") => Network::None,
            Some("host") => {
                entitled("network.host", "RUN --network=host")?;
                Network::Host
            }
            Some(other) => {
                return Err(Error::Instruction(format!("--network={other}: expected default, none or host")));
            }
        };
        if run.security.as_deref() == Some("insecure") {
            entitled("security.insecure", "RUN --security=insecure")?;
        }
        let mut out = Vec::new();
        for raw in &run.mounts {
            let spec = self.subst(st, raw)?;
            let mount = Mount::parse(&spec).map_err(|e| Error::Instruction(format!("--mount={spec}: {e}")))?;
            let origin = match (mount.kind, &mount.from) {
                (MountKind::Bind, Some(from)) => {
                    let from = self.subst(st, from)?;
                    let image = self.image_for_copy_from(&from, &st.platform)?;
                    self.complete(&image)?;
                    Origin::Image(image)
                }
                (MountKind::Bind, None) => {
                    let source = mount.source.clone().unwrap_or_else(|| ".".into());
                    let mut memo = lock(&self.memo).clone();
                    let origin = mounts::context_origin(self.context, self.ignore, &source, &mut memo)?;
                    lock(&self.memo).extend(memo);
                    origin
                }
                (MountKind::Cache, Some(_)) => {
                    return Err(Error::Instruction(format!(
                        "--mount={spec}: a cache mount seeded from a stage (from=) is not supported"
                    )));
                }
                _ => Origin::None,
            };
            out.push(Prepared { mount, origin });
        }
        Ok((out, network))
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
