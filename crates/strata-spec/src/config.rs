//! The image configuration (OCI `application/vnd.oci.image.config.v1+json` and Docker's
//! `application/vnd.docker.container.image.v1+json`), read and written losslessly.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::error::{Document, Error};
use crate::json::json_object;
use crate::manifest::canonical;
use crate::platform::Platform;

json_object! {
    /// An image configuration: platform, runtime defaults, layer diff_ids and history.
    ///
    /// Docker-only fields that strata does not change (`container`, `docker_version`,
    /// `id`, `parent`...) live in [`ImageConfig::extra`] and survive a round trip.
    pub struct ImageConfig {
        /// Creation time, RFC 3339.
        opt created: String = "created",
        /// Author.
        opt author: String = "author",
        /// CPU architecture.
        req architecture: String = "architecture",
        /// Operating system.
        req os: String = "os",
        /// OS version.
        opt os_version: String = "os.version",
        /// OS features.
        opt os_features: Vec<String> = "os.features",
        /// CPU variant.
        opt variant: String = "variant",
        /// Defaults for containers run from the image.
        opt config: ContainerConfig = "config",
        /// Layer diff_ids.
        req rootfs: RootFs = "rootfs",
        /// One entry per build step, empty layers included.
        opt history: Vec<History> = "history",
        /// Docker: the commit message of the last `docker commit`.
        opt comment: String = "comment",
        /// Docker: the config of the container the image was committed from.
        opt container_config: ContainerConfig = "container_config",
    }
}

json_object! {
    /// Runtime defaults (`config` in the image config); Docker's field names.
    pub struct ContainerConfig {
        /// User (`name`, `uid`, `uid:gid`...).
        opt user: String = "User",
        /// Ports, as keys (`80/tcp`) of empty objects.
        opt exposed_ports: BTreeMap<String, serde_json::Value> = "ExposedPorts",
        /// Environment, `KEY=value`.
        opt env: Vec<String> = "Env",
        /// Entrypoint.
        opt entrypoint: Vec<String> = "Entrypoint",
        /// Default command (arguments to the entrypoint).
        opt cmd: Vec<String> = "Cmd",
        /// Volumes, as keys of empty objects.
        opt volumes: BTreeMap<String, serde_json::Value> = "Volumes",
        /// Working directory.
        opt working_dir: String = "WorkingDir",
        /// Labels.
        opt labels: BTreeMap<String, String> = "Labels",
        /// Stop signal.
        opt stop_signal: String = "StopSignal",
        /// Windows: whether `Cmd` is already escaped.
        opt args_escaped: bool = "ArgsEscaped",
        /// Docker: build triggers run when the image is used as a base.
        opt on_build: Vec<String> = "OnBuild",
        /// Docker: the shell of shell-form instructions.
        opt shell: Vec<String> = "Shell",
        /// Docker: the health check, kept as JSON.
        opt healthcheck: serde_json::Value = "Healthcheck",
    }
}

json_object! {
    /// The layers of the image by uncompressed digest.
    pub struct RootFs {
        /// Always `layers`.
        req kind: String = "type",
        /// diff_ids, base layer first.
        req diff_ids: Vec<Digest> = "diff_ids",
    }
}

json_object! {
    /// One step of the image's history.
    pub struct History {
        /// When, RFC 3339.
        opt created: String = "created",
        /// The command that made it.
        opt created_by: String = "created_by",
        /// Who.
        opt author: String = "author",
        /// Commit message.
        opt comment: String = "comment",
        /// True when the step added no layer.
        opt empty_layer: bool = "empty_layer",
    }
}

impl RootFs {
    /// A `layers` rootfs with the given diff_ids.
    pub fn layers(diff_ids: Vec<Digest>) -> Self {
        RootFs { kind: "layers".into(), diff_ids, ..Default::default() }
    }

    /// The chain id of each layer, bottom first: the identity of a layer together with
    /// everything under it, as docker's layer store names layers (`ChainID(L0) =
    /// DiffID(L0)`, `ChainID(Ln) = SHA256(ChainID(Ln-1) + " " + DiffID(Ln))`, from the
    /// OCI image spec).
    pub fn chain_ids(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::with_capacity(self.diff_ids.len());
        for d in &self.diff_ids {
            let next = match out.last() {
                None => d.clone(),
                Some(below) => Digest::sha256_of(format!("{below} {d}").as_bytes()),
            };
            out.push(next);
        }
        out
    }
}

impl History {
    /// Whether this entry has no layer.
    pub fn is_empty_layer(&self) -> bool {
        self.empty_layer == Some(true)
    }
}

impl ImageConfig {
    /// An empty config for `platform` with no layers (`FROM scratch`).
    pub fn new(platform: &Platform) -> Self {
        ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            os_version: platform.os_version.clone(),
            rootfs: RootFs::layers(Vec::new()),
            ..Default::default()
        }
    }

    /// Parse a config from JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let c: ImageConfig =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { document: Document::Config, source })?;
        if c.rootfs.kind != "layers" {
            return Err(Error::Invalid {
                document: Document::Config,
                reason: format!("rootfs.type {:?} (expected \"layers\")", c.rootfs.kind),
            });
        }
        Ok(c)
    }

    /// Canonical JSON bytes (sorted keys, no whitespace).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        canonical(self)
    }

    /// The platform this config describes.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            os_version: self.os_version.clone(),
            ..Default::default()
        }
    }

    /// The history entries, empty when absent.
    pub fn history(&self) -> &[History] {
        self.history.as_deref().unwrap_or_default()
    }

    /// Append a layer: its diff_id and its history entry.
    pub fn push_layer(&mut self, diff_id: Digest, mut history: History) {
        history.empty_layer = None;
        self.rootfs.diff_ids.push(diff_id);
        self.history.get_or_insert_with(Vec::new).push(history);
    }

    /// Append a history entry that added no layer.
    pub fn push_empty_layer(&mut self, mut history: History) {
        history.empty_layer = Some(true);
        self.history.get_or_insert_with(Vec::new).push(history);
    }

    /// The runtime config, created empty if absent.
    pub fn config_mut(&mut self) -> &mut ContainerConfig {
        self.config.get_or_insert_with(ContainerConfig::default)
    }

    /// Whether this image was made on top of `parent`, as a commit or a build step
    /// makes an image: its history starts with all of `parent`'s (non-empty) history and
    /// goes on, and its layers start with all of `parent`'s layers. Docker records this
    /// relation for images it commits or builds; an OCI layout has no place for it, so
    /// strata reads it from the configs (see docs/docker-compat.md).
    pub fn is_child_of(&self, parent: &ImageConfig) -> bool {
        let (mine, theirs) = (self.history(), parent.history());
        !theirs.is_empty()
            && theirs.len() < mine.len()
            && mine.starts_with(theirs)
            && self.rootfs.diff_ids.starts_with(&parent.rootfs.diff_ids)
    }

    /// Check that history and diff_ids agree: as many non-empty history entries as
    /// layers (when there is a history at all).
    pub fn check_history(&self) -> Result<(), Error> {
        let Some(history) = &self.history else { return Ok(()) };
        let non_empty = history.iter().filter(|h| !h.is_empty_layer()).count();
        if non_empty != self.rootfs.diff_ids.len() {
            return Err(Error::Invalid {
                document: Document::Config,
                reason: format!(
                    "{} history entries with a layer but {} diff_ids",
                    non_empty,
                    self.rootfs.diff_ids.len()
                ),
            });
        }
        Ok(())
    }
}
