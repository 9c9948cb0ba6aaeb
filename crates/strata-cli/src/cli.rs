//! The command line: every command, its arguments and its help text.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::deferred::Deferred;
use crate::filter::parse_filter;

/// strata: OCI container images without a daemon.
///
/// Images live in a store, an OCI image layout directory (any layout works, including
/// ones umoci, skopeo and podman wrote). References are local tags (`tomcat02:1.0`),
/// digests (`sha256:…`), unique prefixes of image ids (`3f2a9c1d`) or full references.
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true, max_term_width = 100, args_override_self = true)]
#[command(after_help = "\
Examples:
  strata import ./rootfs tomcat:latest
  strata unpack tomcat:latest ./c
  strata commit ./c tomcat02:1.0 -m \"edit webapps dir\" -a xiao
  strata images")]
pub struct Cli {
    /// The store: an OCI image layout directory [default: $XDG_DATA_HOME/strata or
    /// ~/.local/share/strata, created on first write]
    #[arg(long, global = true, env = "STRATA_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Print only what is essential (ids); no progress, no status lines
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print data as JSON (Docker's field names where docker has the command)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
///
/// A command's arguments are a struct behind [`Deferred`], added only when clap builds
/// that command (the one run, its help, completions), not on every run. The variant keeps
/// the doc comment and `#[command]` attributes (about, after_help); the struct the fields.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List images: repository, tag, image id, created, size
    #[command(after_help = "\
Examples:
  strata images
  strata images tomcat                     # the tags of one repository
  strata images --filter dangling=true --filter 'reference=tom*'
  strata images --format 'table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}'
  strata images --format json | jq -r .ID  # one JSON object per line
  strata images -q          # image ids only")]
    Images(Deferred<ImagesArgs>),

    /// Show images' configuration and metadata as Docker-compatible JSON (an array)
    #[command(after_help = "\
Examples:
  strata inspect tomcat02:1.0
  strata inspect tomcat02:1.0 | jq '.[0].RootFS.Layers'
  strata inspect -f '{{.Id}} {{json .Config.Env}}' tomcat02:1.0")]
    Inspect(Deferred<InspectArgs>),

    /// Show the history of an image, newest step first
    #[command(after_help = "\
Examples:
  strata history tomcat02:1.0
  strata history --no-trunc --json tomcat02:1.0
  strata history -H=false --format '{{.CreatedAt}} {{.Size}}' tomcat02:1.0")]
    History(Deferred<HistoryArgs>),

    /// Give an image another tag
    #[command(after_help = "\
Example:
  strata tag tomcat02:1.0 127.0.0.1:5000/tomcat02:1.0")]
    Tag(Deferred<TagArgs>),

    /// Remove images, like `docker rmi`: untag them, delete the images no tag names any
    /// more, then remove the blobs nothing else uses
    #[command(after_help = "\
Examples:
  strata rmi tomcat02:1.0   # the tag; the image too when it was its last tag
  strata rmi 3f2a9c1d       # the image with that id (-f when several tags name it)
  strata rmi -f 3f2a9c1d    # every tag of it, and the image

An image other images were made on (a commit or build on top of it) is not deleted, even
with -f: removing its last tag leaves it untagged until its children are gone.")]
    Rmi(Deferred<RmiArgs>),

    /// Remove blobs no tag reaches, and stale temp files
    #[command(after_help = "\
Examples:
  strata gc --dry-run
  strata gc")]
    Gc(Deferred<GcArgs>),

    /// Check every blob (re-hash) and every reference of the store; exit 1 on problems,
    /// which are printed on stderr (and in --json)
    #[command(after_help = "\
Always checked: every descriptor from the index, every manifest, index and config parsed,
each manifest's layer count against its config's diff_ids, each layer's compression (its
first bytes) against its media type, strata's records.

Examples:
  strata fsck --json
  strata fsck --deep            # also decompress every layer and compare its diff_id
  strata fsck --quick           # structure only: no blob re-hashed (big stores)")]
    Fsck(Deferred<FsckArgs>),

    /// Unpack an image into a container bundle (DIR/rootfs, DIR/config.json for runc or
    /// crun, and strata's state), or with --raw the merged rootfs alone into DIR
    #[command(after_help = "\
Examples:
  strata unpack tomcat:latest ./c          # ./c/rootfs, ./c/config.json; then: strata diff ./c
  runc run -b ./c mycontainer              # run the bundle (or: crun run -b ./c ...)
  strata unpack --raw --rootless ubuntu ./rootfs
  strata unpack --platform linux/arm64 ubuntu ./c")]
    Unpack(Deferred<UnpackArgs>),

    /// Show what changed in a container's or a bundle's rootfs since it was made (A added,
    /// C changed, D deleted)
    #[command(after_help = "\
Examples:
  strata diff web
  strata diff ./c
  strata diff --format '{{if eq .Kind \"A\"}}{{.Path}}{{end}}' ./c")]
    Diff(Deferred<DiffArgs>),

    /// Make a new image from a container's or a bundle's changes
    #[command(after_help = "\
Examples:
  strata commit -m \"edit webapps dir\" -a xiao web tomcat02:1.0
  strata commit ./c tomcat02:1.0 -m \"edit webapps dir\" -a xiao
  strata commit ./c web:2 -c 'CMD [\"catalina.sh\", \"run\"]' -c 'EXPOSE 8080'")]
    Commit(Deferred<CommitArgs>),

    /// Write images to a docker-archive (`docker load` reads it) or an OCI archive
    #[command(after_help = "\
Examples:
  strata save tomcat02:1.0 -o tomcat02.tar
  strata save tomcat:latest tomcat02:1.0 --format oci-archive -o both.tar
  strata save tomcat02:1.0 -o - | ssh host docker load")]
    Save(Deferred<SaveArgs>),

    /// Load images from a docker-archive or OCI archive
    #[command(after_help = "\
Examples:
  strata load -i tomcat02.tar
  docker save ubuntu | strata load")]
    Load(Deferred<LoadArgs>),

    /// Make a one-layer image from a directory or a tar (`-`: a tar on stdin)
    #[command(after_help = "\
Examples:
  strata import ./rootfs tomcat:latest
  tar -C rootfs -c . | strata import - base:1 -c 'CMD [\"/bin/sh\"]' -m imported")]
    Import(Deferred<ImportArgs>),

    /// Write an image's merged rootfs as one tar
    #[command(after_help = "\
Example:
  strata export tomcat02:1.0 -o rootfs.tar")]
    Export(Deferred<ExportArgs>),

    /// List a directory of an image's merged tree, without unpacking
    #[command(after_help = "\
Examples:
  strata ls tomcat02:1.0
  strata ls tomcat02:1.0 /webapps
  strata ls --format '{{.Path}} {{.Uid}}' tomcat02:1.0 /bin")]
    Ls(Deferred<LsArgs>),

    /// Print a file of an image's merged tree, without unpacking
    #[command(after_help = "\
Example:
  strata cat tomcat02:1.0 /webapps/ROOT/index.html")]
    Cat(Deferred<CatArgs>),

    /// Per-layer size, files, wasted bytes and the image's efficiency
    #[command(after_help = "\
Examples:
  strata layers tomcat02:1.0
  strata layers --format '{{.Digest}} {{.Wasted}}' tomcat02:1.0")]
    Layers(Deferred<LayersArgs>),

    /// What each layer adds and where the wasted bytes are, as dive shows it; `--ci`
    /// checks the image against dive's rules
    #[command(after_help = "\
Examples:
  strata dive tomcat02:1.0
  strata dive --ci tomcat02:1.0                       # dive's default rules, or ./.dive-ci
  strata dive --ci --lowestEfficiency=0.95 --highestWastedBytes=20MB tomcat02:1.0
  strata dive --ci --ci-config ci/dive.yaml --json analysis.json tomcat02:1.0
  strata dive --ci --archive image.tar
  strata dive registry.example:5000/team/app:2       # pulled into a temporary store
  strata dive --keep registry.example:5000/team/app:2  # pulled into the store, kept

A .dive-ci file (dive's format; a rule set to \"disabled\" is skipped):
  rules:
    lowestEfficiency: 0.95          # fail below this share of bytes the final tree uses
    highestWastedBytes: 20MB        # fail above this many wasted bytes (B, kB, MB, MiB...)
    highestUserWastedPercent: 0.20  # fail above wasted / bytes added above the base

Flags override the file; rules neither names take dive's defaults (0.9, disabled, 0.1).
With --ci (or CI=true, as dive) the exit code is 1 when a rule fails.

On a terminal (and without --ci or --json), an explorer: the layers, the image's
efficiency and wasted files, and the file tree of the selected layer with what it added
(+, green), modified (~, yellow) and removed (-, red). Keys as in dive: Tab switches
panes; arrows or j/k move; ^L/^A show the layer's changes or all since the base; Space
folds a directory; ^A ^R ^M ^U show or hide added, removed, modified, unchanged paths;
/ filters by path; ? shows the keys; q quits. NO_COLOR turns colours off. Elsewhere
the analysis is printed.")]
    Dive(Deferred<DiveArgs>),

    /// List the packages of an image as an SBOM (SPDX 2.3 or CycloneDX 1.5 JSON, or a
    /// table), read from its merged view without unpacking
    #[command(after_help = "\
Examples:
  strata sbom debian:12
  strata sbom --format spdx-json -o sbom.spdx.json debian:12
  strata sbom --attach --format cyclonedx-json debian:12
  SOURCE_DATE_EPOCH=0 strata sbom --format cyclonedx-json debian:12

The creation time is SOURCE_DATE_EPOCH when set; everything else is the same bytes for
the same image.")]
    Sbom(Deferred<SbomArgs>),

    /// List the artifacts attached to an image (SBOMs, signatures: manifests whose
    /// subject is the image's manifest), as the registry referrers API lists them
    #[command(after_help = "\
Examples:
  strata sbom --attach debian:12
  strata referrers debian:12
  strata referrers --artifact-type application/spdx+json --json debian:12

--json prints the OCI image index the referrers API returns.")]
    Referrers(Deferred<ReferrersArgs>),

    /// Match an image's packages against OSV advisories, offline
    #[command(after_help = "\
Examples:
  strata scan debian:12 --db ./osv
  strata scan debian:12 --db ./osv --severity high --exit-code 1
  strata scan debian:12 --db ./osv --format sarif > scan.sarif

--db is a directory of OSV records: .json files and OSV's per-ecosystem .zip files
(Debian, Alpine, PyPI, npm...), read recursively.")]
    Scan(Deferred<ScanArgs>),

    /// Make a one-layer copy of an image (its merged tree)
    #[command(after_help = "\
Example:
  strata flatten tomcat02:1.0 tomcat02:flat")]
    Flatten(Deferred<FlattenArgs>),

    /// Make a new image: an image plus a layer from a directory or a tar
    #[command(after_help = "\
Examples:
  strata append tomcat:latest ./extra tomcat:extra
  strata append tomcat:latest layer.tar.gz tomcat:patched -m \"security fix\"")]
    Append(Deferred<AppendArgs>),

    /// Make a new image with config changes only (no new layer)
    #[command(after_help = "\
Example:
  strata config tomcat02:1.0 tomcat02:1.1 -c 'ENV JAVA_OPTS=-Xmx512m' -c 'USER tomcat'")]
    Config(Deferred<ConfigArgs>),

    /// Download an image from a registry; it is tagged with the reference as given
    #[command(after_help = "\
Examples:
  strata pull 127.0.0.1:5000/base:latest
  strata pull --platform linux/arm64 registry.example.com/team/app:1.2
  strata pull --all-platforms docker.io/library/alpine:3.20")]
    Pull(Deferred<PullArgs>),

    /// Upload an image to a registry
    #[command(after_help = "\
Examples:
  strata push 127.0.0.1:5000/tomcat02:1.0
  strata push tomcat02:1.0 registry.example.com/team/tomcat02:1.0")]
    Push(Deferred<PushArgs>),

    /// Check credentials against a registry and save them in docker's credentials file
    #[command(after_help = "\
Example:
  echo \"$PASSWORD\" | strata login registry.example.com -u me --password-stdin")]
    Login(Deferred<LoginArgs>),

    /// Build an image from a Dockerfile and a context directory, like `docker build`
    #[command(after_help = "\
Examples:
  strata build -t web:1 .
  strata build -t web:1 -f docker/Dockerfile --build-arg VERSION=1.2 --target runtime .
  strata build -q --no-cache .        # prints the image id only
  strata build --allow-url-fetch -t tools:1 .   # ADD https://... downloads
  strata build --secret id=npm,src=$HOME/.npmrc --ssh default -t app:1 .
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) strata build -t app:1 .   # reproducible
  strata build --cache-to type=registry,ref=reg.example/app:cache --cache-from type=registry,ref=reg.example/app:cache .
RUN needs root (namespaces and chroot); every other instruction works without.")]
    Build(Deferred<BuildArgs>),

    /// Manage the build cache
    #[command(after_help = "\
Examples:
  strata builder prune            # drop every build cache entry, then GC
  strata builder prune --keep 100")]
    Builder {
        #[command(subcommand)]
        command: BuilderCommand,
    },

    /// Create a container from an image and run it, like `docker run` (through runc,
    /// crun or youki; root only)
    #[command(after_help = "\
Examples:
  strata run --rm tomcat02:1.0 cat webapps/ROOT/index.html
  strata run -d --name web -p 8080:80 web:1 httpd -f -p 80
  strata run -it --rm tomcat:latest sh
  strata run -e JAVA_OPTS=-Xmx1g -v /srv/data:/data:ro -w /data tomcat:latest ls

The exit code is the container's; 125 when strata could not run it, 126 when its command
cannot be executed, 127 when it is not found. The network is a namespace with loopback
only (docker's none); -p forwards a host port into it. --network host shares the host's.")]
    Run(Deferred<RunArgs>),

    /// Create a container from an image without starting it, like `docker create`
    #[command(after_help = "\
Examples:
  strata create --name web -p 8080:80 web:1
  strata start -a web")]
    Create(Deferred<CreateArgs>),

    /// Start containers; -a attaches to one (its exit code is strata's)
    #[command(after_help = "\
Examples:
  strata start web
  strata start -a job")]
    Start(Deferred<StartArgs>),

    /// List containers (running ones; -a: all), like `docker ps`
    #[command(after_help = "\
Examples:
  strata ps -a
  strata ps -q
  strata ps -a --format '{{.Names}}\\t{{.Status}}'
  strata ps --format json")]
    Ps(Deferred<PsArgs>),

    /// Run a command in a running container, like `docker exec`
    #[command(after_help = "\
Examples:
  strata exec web ls /webapps
  strata exec -it web sh
  strata exec -u nobody -w /tmp -e A=1 web env")]
    Exec(Deferred<ExecArgs>),

    /// Stop running containers: the stop signal (SIGTERM), then SIGKILL after -t seconds
    #[command(after_help = "\
Example:
  strata stop -t 2 web")]
    Stop(Deferred<StopArgs>),

    /// Send a signal to running containers (default SIGKILL)
    #[command(after_help = "\
Example:
  strata kill -s HUP web")]
    Kill(Deferred<KillArgs>),

    /// Remove containers (their rootfs, logs and record), like `docker rm`
    #[command(after_help = "\
Examples:
  strata rm job
  strata rm -f web          # a running one: killed first")]
    Rm(Deferred<RmArgs>),

    /// Print what a container wrote to stdout and stderr
    #[command(after_help = "\
Example:
  strata logs web")]
    Logs(Deferred<LogsArgs>),

    /// Wait for containers to stop; print each one's exit code
    #[command(after_help = "\
Example:
  strata wait job")]
    Wait(Deferred<WaitArgs>),

    /// The process that runs one container (started by run and start; not for people)
    #[command(hide = true)]
    ContainerMonitor(Deferred<ContainerMonitorArgs>),

    /// Print a shell completion script
    #[command(after_help = "\
Examples:
  strata completions bash > /etc/bash_completion.d/strata
  strata completions zsh > \"${fpath[1]}/_strata\"
  strata completions fish > ~/.config/fish/completions/strata.fish")]
    Completions(Deferred<CompletionsArgs>),
}

/// The arguments of `strata images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only rows whose reference matches, as a glob (`tomcat`, `tomcat:9*`)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Show all images (by default untagged images other images are built on are hidden)
    #[arg(short, long)]
    pub all: bool,
    /// dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY,
    /// label=KEY=VALUE (repeatable; every name must hold)
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = parse_filter)]
    pub filters: Vec<(String, String)>,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Show full image ids
    #[arg(long)]
    pub no_trunc: bool,
    #[command(flatten)]
    pub format: FormatArg,
}

/// The arguments of `strata inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images to inspect
    #[arg(required = true, value_name = "REF")]
    pub refs: Vec<String>,
    /// A Go template run on each image (`{{.Config.Env}}`), or json: the array on one line
    #[arg(short = 'f', long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// The arguments of `strata history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Do not truncate ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Sizes and dates for people (`-H=false`: bytes and RFC 3339 times)
    #[arg(short = 'H', long, value_name = "BOOL", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    #[command(flatten)]
    pub format: FormatArg,
}

/// The arguments of `strata tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image to tag
    #[arg(value_name = "SRC")]
    pub source: String,
    /// The new tag (`name` means `name:latest`)
    #[arg(value_name = "DST")]
    pub target: String,
}

/// The arguments of `strata rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove an image named by id even when several tags name it (every tag goes)
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    /// Tags, digests or image ids
    #[arg(required = true, value_name = "REF")]
    pub refs: Vec<String>,
}

/// The arguments of `strata gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Report what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Collect even when an image the index lists has lost its manifest: its config
    /// and layers go too (without it, gc removes nothing then)
    #[arg(long)]
    pub force: bool,
}

/// The arguments of `strata fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Decompress every layer and compare it with its diff_id, as unpack does
    #[arg(long)]
    pub deep: bool,
    /// Do not re-hash blobs (documents and layer headers are still read)
    #[arg(long)]
    pub quick: bool,
}

/// The arguments of `strata unpack`.
#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The target directory (must not exist, or be empty)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Do not chown; record owners and devices instead [default: when not root]
    #[arg(long)]
    pub rootless: bool,
    /// The merged rootfs alone straight into DIR: no config.json, no bundle state
    /// (cannot be committed)
    #[arg(long)]
    pub raw: bool,
    /// Do not write DIR/config.json (the OCI runtime configuration made from the image
    /// config; its user is looked up in the image's /etc/passwd and /etc/group)
    #[arg(long, conflicts_with = "raw")]
    pub no_runtime_config: bool,
    /// The platform to pick from a multi-platform image (os/arch[/variant])
    #[arg(long, value_name = "P")]
    pub platform: Option<String>,
    /// Read the layers' headers first and skip writing the files a later layer
    /// deletes or replaces
    #[arg(long, value_enum, default_value_t = Plan::Auto)]
    pub plan: Plan,
}

/// The arguments of `strata diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A container (name or id), or a bundle directory made by `strata unpack`
    #[arg(value_name = "CONTAINER|DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub format: FormatArg,
}

/// The arguments of `strata commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// A container (name or id), or a bundle directory made by `strata unpack` (a
    /// path that exists is a bundle)
    #[arg(value_name = "CONTAINER|DIR")]
    pub dir: PathBuf,
    /// The tag of the new image
    #[arg(value_name = "NEW_REF")]
    pub new_ref: String,
    /// Pause a running container while committing (`--pause=false`: do not)
    #[arg(short, long, value_name = "BOOL", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    #[command(flatten)]
    pub meta: CommitMeta,
}

/// The arguments of `strata save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save
    #[arg(required = true, value_name = "REF")]
    pub refs: Vec<String>,
    /// The archive to write (`-` for stdout; the default when stdout is not a terminal)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value_t = Format::DockerArchive)]
    pub format: Format,
}

/// The arguments of `strata load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The archive (`-` or absent: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// The arguments of `strata import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A directory, a tar file (plain, gzip or zstd), or `-` for a tar on stdin
    #[arg(value_name = "TAR|DIR")]
    pub source: PathBuf,
    /// The tag of the new image
    #[arg(value_name = "NEW_REF")]
    pub new_ref: String,
    #[command(flatten)]
    pub meta: CommitMeta,
}

/// The arguments of `strata export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The tar to write (`-` for stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The arguments of `strata ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The directory [default: /]
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
    #[command(flatten)]
    pub format: FormatArg,
}

/// The arguments of `strata cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The file
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// The arguments of `strata layers`.
#[derive(Debug, Args)]
pub struct LayersArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub format: FormatArg,
}

/// The arguments of `strata dive`.
#[derive(Debug, Args)]
pub struct DiveArgs {
    /// The image: a reference in the store, or one naming a registry
    /// (`host[:port]/repo:tag`), pulled when the store does not have it; not with
    /// --archive
    #[arg(value_name = "REF", required_unless_present = "archive")]
    pub reference: Option<String>,
    /// Read the image from a docker-archive or OCI archive, in place (nothing is
    /// copied); a compressed archive (.tar.gz, .tar.zst) or a pipe is loaded into a
    /// temporary store first
    #[arg(long, value_name = "FILE", conflicts_with = "reference")]
    pub archive: Option<PathBuf>,
    /// No UI: check the rules, print a pass/fail report, exit 1 on failure (also
    /// when the environment has CI=true)
    #[arg(long)]
    pub ci: bool,
    /// The rules file [default: .dive-ci in the current directory, when there]
    #[arg(long, value_name = "FILE")]
    pub ci_config: Option<PathBuf>,
    /// Write the analysis as JSON to this file (also spelled --json FILE, -j FILE,
    /// as dive does)
    #[arg(short = 'j', long, value_name = "FILE")]
    pub json_file: Option<PathBuf>,
    /// Rule: fail when the efficiency is below this ratio (0-1), or "disabled"
    #[arg(long = "lowestEfficiency", alias = "lowest-efficiency", value_name = "RATIO")]
    pub lowest_efficiency: Option<String>,
    /// Rule: fail when more bytes than this are wasted (20MB, 1GiB, 512), or "disabled"
    #[arg(long = "highestWastedBytes", alias = "highest-wasted-bytes", value_name = "SIZE")]
    pub highest_wasted_bytes: Option<String>,
    /// Rule: fail when wasted bytes / bytes the layers above the base add is above
    /// this ratio (0-1), or "disabled"
    #[arg(long = "highestUserWastedPercent", alias = "highest-user-wasted-percent", value_name = "RATIO")]
    pub highest_user_wasted_percent: Option<String>,
    /// Pull REF into the store and keep it there (else a registry reference the
    /// store does not have goes to a temporary store, deleted after)
    #[arg(long, conflicts_with = "archive")]
    pub keep: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The arguments of `strata sbom`.
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// table, spdx-json or cyclonedx-json (--json: the inventory as strata sees it)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Layers from the final tree only (do not go through every layer's entries to
    /// find where each package was introduced and changed)
    #[arg(long)]
    pub no_layer_history: bool,
    /// Read every layer, neither using nor writing the store's per-layer scan cache
    #[arg(long)]
    pub no_cache: bool,
    /// Make the inventory from the layers' scan records, neither using nor writing
    /// the image's own (the whole inventory, kept by the last scan of the image)
    #[arg(long)]
    pub no_image_cache: bool,
    /// Also store the SBOM in the store as an artifact of the image (image-spec 1.1
    /// referrers: its subject is the image's manifest), in --format spdx-json (the
    /// default here) or cyclonedx-json; prints the artifact's digest
    #[arg(long)]
    pub attach: bool,
}

/// The arguments of `strata referrers`.
#[derive(Debug, Args)]
pub struct ReferrersArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Only artifacts of this type (application/spdx+json, application/vnd.cyclonedx+json)
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: Option<String>,
}

/// The arguments of `strata scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The advisory directory
    #[arg(long, value_name = "DIR")]
    pub db: std::path::PathBuf,
    /// table, json or sarif
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Report only findings at or above this severity (unknown, low, medium, high,
    /// critical)
    #[arg(long, default_value = "unknown")]
    pub severity: String,
    /// Exit with this code when any finding is reported
    #[arg(long, value_name = "CODE", default_value_t = 0)]
    pub exit_code: u8,
    /// Read every layer, neither using nor writing the store's per-layer scan cache
    #[arg(long)]
    pub no_cache: bool,
}

/// The arguments of `strata flatten`.
#[derive(Debug, Args)]
pub struct FlattenArgs {
    /// The image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The tag of the new image
    #[arg(value_name = "NEW_REF")]
    pub new_ref: String,
}

/// The arguments of `strata append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The base image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// A directory, a tar file (plain, gzip or zstd), or `-` for a tar on stdin
    #[arg(value_name = "TAR|DIR")]
    pub source: PathBuf,
    /// The tag of the new image
    #[arg(value_name = "NEW_REF")]
    pub new_ref: String,
    #[command(flatten)]
    pub meta: CommitMeta,
}

/// The arguments of `strata config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The base image
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The tag of the new image
    #[arg(value_name = "NEW_REF")]
    pub new_ref: String,
    #[command(flatten)]
    pub meta: CommitMeta,
}

/// The arguments of `strata pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The reference (tag or digest)
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The platform to pick from a multi-platform image [default: this machine's]
    #[arg(long, value_name = "P", conflicts_with = "all_platforms")]
    pub platform: Option<String>,
    /// Keep the whole multi-platform index and fetch every image it lists
    #[arg(long)]
    pub all_platforms: bool,
    /// Also fetch the artifacts attached to the image (SBOMs, signatures), from the
    /// registry's referrers API or its referrers tag schema (`sha256-<hex>` tags)
    #[arg(long)]
    pub referrers: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The arguments of `strata push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The local image
    #[arg(value_name = "LOCAL_REF")]
    pub local: String,
    /// Where to push it [default: LOCAL_REF]
    #[arg(value_name = "DEST_REF")]
    pub dest: Option<String>,
    /// Leave out the artifacts attached to the image (SBOMs from `strata sbom
    /// --attach`), which are pushed with it by default: to the referrers API, or as
    /// the referrers tag schema's `sha256-<hex>` index where the registry has none
    #[arg(long)]
    pub no_referrers: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The arguments of `strata login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (`host[:port]`)
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// User name
    #[arg(short, long, value_name = "USER")]
    pub username: String,
    /// Read the password from stdin
    #[arg(long, required = true)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// The arguments of `strata build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context: the directory COPY and ADD read from
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
    /// Tag the result (repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME:TAG", value_parser = parse_tag)]
    pub tags: Vec<String>,
    /// The Dockerfile [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build argument (`K=V`, or `K` to take it from the environment; repeatable)
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// Build up to this stage
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Run every step; do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// The network of RUN steps: none (the default) or host
    #[arg(long, value_enum, default_value_t = NetworkMode::None)]
    pub network: NetworkMode,
    /// Let ADD download http(s) URLs (off: ADD of a URL is an error)
    #[arg(long)]
    pub allow_url_fetch: bool,
    #[command(flatten)]
    pub buildkit: BuildFeatureArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The arguments of `strata run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub create: ContainerArgs,
}

/// The arguments of `strata create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub create: ContainerArgs,
}

/// The arguments of `strata start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach stdout and stderr (and stdin with -i) and wait for the container
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin (with -a)
    #[arg(short, long)]
    pub interactive: bool,
    /// Containers (names or ids)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The arguments of `strata ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show every container (by default only running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Do not truncate ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    #[command(flatten)]
    pub format: FormatArg,
}

/// The arguments of `strata exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// A terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (repeatable)
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// User (name or uid, [:group])
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// Working directory in the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The arguments of `strata stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL
    #[arg(short = 't', long = "time", default_value_t = 10, value_name = "SECONDS")]
    pub time: u64,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The arguments of `strata kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal (name or number)
    #[arg(short, long, default_value = "KILL", value_name = "SIGNAL")]
    pub signal: String,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The arguments of `strata rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The arguments of `strata logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing what it writes until it exits
    #[arg(short, long)]
    pub follow: bool,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// The arguments of `strata wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The arguments of `strata container-monitor`.
#[derive(Debug, Args)]
pub struct ContainerMonitorArgs {
    /// STORE ID [--attached] [--console-socket PATH]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

/// The arguments of `strata completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: Shell,
}

/// What `run` and `create` take: docker's flags, the image, the command.
#[derive(Debug, Args)]
pub struct ContainerArgs {
    /// Keep stdin open (attached: what strata reads goes to the container)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// The container's name [default: a generated one]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (`K=V`, or `K` to take it from here; repeatable)
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file (`K=V` lines; repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory in the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User (name or uid, [:group]), looked up in the image
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// Bind mount a host path: `/host:/ctr[:ro]` (repeatable)
    #[arg(short, long = "volume", value_name = "HOST:CTR[:ro]")]
    pub volumes: Vec<String>,
    /// Publish a container port on the host: `[IP:]HOST:CTR[/tcp]` (repeatable)
    #[arg(short, long = "publish", value_name = "[IP:]HOST:CTR")]
    pub publish: Vec<String>,
    /// none (a namespace with loopback only; the default) or host
    #[arg(long, alias = "net", default_value = "none", value_name = "NETWORK")]
    pub network: String,
    /// Replace the image's entrypoint (`""` clears it)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// The container's host name
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// The OCI runtime program [default: $STRATA_RUNTIME, else runc, crun or youki on PATH]
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<PathBuf>,
    /// The image
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments [default: the image's]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// What a commit-like command records: message, author, config changes.
#[derive(Debug, Args)]
pub struct CommitMeta {
    /// Commit message (the history entry's comment)
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
    /// Author (`Name <email>`)
    #[arg(short, long, value_name = "AUTHOR")]
    pub author: Option<String>,
    /// A Dockerfile instruction applied to the config, as `docker commit --change`: CMD,
    /// ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
    /// WORKDIR; `$VAR` expands from the image's environment (repeatable)
    #[arg(short = 'c', long = "change", value_name = "CHANGE")]
    pub changes: Vec<String>,
}

/// `--format` of a listing.
#[derive(Debug, Args)]
pub struct FormatArg {
    /// table (the default), table TEMPLATE (a header row and aligned columns), json (one
    /// object per line), or a Go template run on each row (`{{.ID}}\t{{.Size}}`)
    #[arg(long = "format", value_name = "FORMAT")]
    pub format: Option<String>,
}

/// How to reach a registry.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP and accept any certificate (plain HTTP to a loopback registry works without it)
    #[arg(long)]
    pub insecure: bool,
    /// Trust this CA certificate (PEM) in addition to the system's (repeatable)
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Vec<PathBuf>,
}

/// `strata build` options of BuildKit's era: secrets, ssh, entitlements, platform,
/// reproducible dates, shared caches, parallel stages.
#[derive(Debug, Args)]
pub struct BuildFeatureArgs {
    /// A secret for RUN --mount=type=secret: `id=ID,src=FILE`, `id=ID,env=VAR`, or `id=ID`
    /// (the variable ID) (repeatable)
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// An SSH agent socket for RUN --mount=type=ssh: `ID=SOCKET`, or `ID` (or `default`)
    /// for $SSH_AUTH_SOCK (repeatable)
    #[arg(long = "ssh", value_name = "ID=SOCKET")]
    pub ssh: Vec<String>,
    /// Allow an entitlement: network.host (RUN --network=host), security.insecure
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// The platform to build for (`linux/arm64`): picked from multi-platform bases
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Date every step at this time (seconds since 1970) and clamp new files' mtimes to
    /// it: a reproducible image [default: $SOURCE_DATE_EPOCH]
    #[arg(long, value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,
    /// Take cached steps from `type=registry,ref=REF` or `type=local,src=DIR` (repeatable)
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Export this build's cache to `type=registry,ref=REF` or `type=local,dest=DIR`
    /// (repeatable)
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Stages that need nothing of each other build at once, this many at most (0: one
    /// per core, 1: one after the other)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub jobs: usize,
}

/// `strata builder` commands.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Drop build cache entries (least recently used first), then remove blobs nothing uses
    Prune {
        /// Keep this many of the most recently used entries
        #[arg(long, default_value_t = 0, value_name = "N")]
        keep: usize,
    },
}

/// The network of `RUN` steps.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum NetworkMode {
    /// A network namespace with nothing in it
    None,
    /// The host's network
    Host,
}

/// When `unpack` plans from the layers' headers.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Plan {
    /// When every layer is an uncompressed tar (a seek per entry)
    Auto,
    /// Always, decompressing compressed layers twice (for slow disks)
    Always,
    /// Never
    Never,
}

/// Archive formats of `save`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// `docker save` format: docker, podman and skopeo load it
    DockerArchive,
    /// A tar of an OCI image layout
    OciArchive,
}

/// Shells for `completions`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// Bash
    Bash,
    /// Zsh
    Zsh,
    /// Fish
    Fish,
}

/// A `-t` value: a reference by docker's rules for a new tag, or a usage error with
/// docker's reason (`invalid reference format: ...`).
fn parse_tag(s: &str) -> Result<String, String> {
    strata_image::new_tag(s).map(|_| s.to_owned()).map_err(|e| e.to_string())
}
