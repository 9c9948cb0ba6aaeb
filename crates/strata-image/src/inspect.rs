//! What `docker inspect` and `docker history` show for an image, with Docker's field names.

use serde::Serialize;
use serde_json::Value;
use strata_spec::{ContainerConfig, Digest, ImageConfig, Manifest};

/// `docker inspect` of an image. Serializes with Docker's field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    /// The image id: the digest of the config blob.
    pub id: Digest,
    /// Tags that point at this image (`tomcat02:1.0`).
    pub repo_tags: Vec<String>,
    /// `name@manifest-digest` for each repository the image is tagged in.
    pub repo_digests: Vec<String>,
    /// The parent image id, where the store knows it (an image whose layers and history
    /// are a strict prefix of this one's); empty otherwise, as docker shows for pulled images.
    pub parent: String,
    /// Comment of the last commit (`docker commit -m`).
    pub comment: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Docker version that built it, when recorded.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// Runtime defaults.
    pub config: Value,
    /// CPU architecture.
    pub architecture: String,
    /// CPU variant.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Operating system.
    pub os: String,
    /// OS version (Windows images).
    #[serde(rename = "OsVersion", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Bytes of the image's layer blobs as stored (compressed), plus the config.
    pub size: u64,
    /// Layers by diff_id.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFsView,
    /// Store metadata.
    pub metadata: Metadata,
    /// The manifest's digest and media type, which docker does not show but a layout needs.
    #[serde(rename = "Descriptor")]
    pub descriptor: DescriptorView,
}

/// `RootFS` of `docker inspect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsView {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// diff_ids, base first.
    pub layers: Vec<Digest>,
}

/// `Metadata` of `docker inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// When the image was last tagged, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

/// The manifest an inspected image was reached through.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescriptorView {
    /// Manifest media type.
    pub media_type: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest size.
    pub size: u64,
}

impl Inspect {
    /// Build the view from an image's parts.
    pub fn new(
        config_digest: Digest,
        config: &ImageConfig,
        manifest_descriptor: DescriptorView,
        manifest: &Manifest,
        repo_tags: Vec<String>,
        repo_digests: Vec<String>,
    ) -> Self {
        let size = manifest.layers.iter().map(|l| l.size).sum::<u64>() + manifest.config.size;
        Inspect {
            id: config_digest,
            repo_tags,
            repo_digests,
            parent: String::new(),
            comment: config.comment.clone().unwrap_or_default(),
            created: config.created.clone().unwrap_or_default(),
            docker_version: config.extra.get("docker_version").and_then(Value::as_str).unwrap_or_default().to_owned(),
            author: config.author.clone().unwrap_or_default(),
            config: docker_config_value(config.config.as_ref()),
            architecture: config.architecture.clone(),
            variant: config.variant.clone().unwrap_or_default(),
            os: config.os.clone(),
            os_version: config.os_version.clone().unwrap_or_default(),
            size,
            root_fs: RootFsView { kind: config.rootfs.kind.clone(), layers: config.rootfs.diff_ids.clone() },
            metadata: Metadata::default(),
            descriptor: manifest_descriptor,
        }
    }
}

/// The runtime config as docker prints it: Docker's field names, `null` for absent
/// lists (docker prints `"Cmd": null`, `"Entrypoint": null`...).
fn docker_config_value(c: Option<&ContainerConfig>) -> Value {
    let mut v = c.map(|c| serde_json::to_value(c).unwrap_or(Value::Null)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        for (key, default) in [
            ("Hostname", Value::from("")),
            ("Domainname", Value::from("")),
            ("User", Value::from("")),
            ("AttachStdin", Value::from(false)),
            ("AttachStdout", Value::from(false)),
            ("AttachStderr", Value::from(false)),
            ("Tty", Value::from(false)),
            ("OpenStdin", Value::from(false)),
            ("StdinOnce", Value::from(false)),
            ("Env", Value::Null),
            ("Cmd", Value::Null),
            ("Image", Value::from("")),
            ("Volumes", Value::Null),
            ("WorkingDir", Value::from("")),
            ("Entrypoint", Value::Null),
            ("OnBuild", Value::Null),
            ("Labels", Value::Null),
        ] {
            map.entry(key).or_insert(default);
        }
    }
    v
}

/// One row of `docker history`, newest first when listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryRow {
    /// The layer's diff_id, or `None` for an empty layer (docker shows `<missing>` or the
    /// image id for the top row).
    #[serde(rename = "ID")]
    pub id: Option<Digest>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The command that created the step.
    pub created_by: String,
    /// Bytes of the layer blob as stored; 0 for empty layers.
    pub size: u64,
    /// Commit message.
    pub comment: String,
    /// Author.
    pub author: String,
    /// Whether the step added no layer.
    pub empty_layer: bool,
}

/// History rows, oldest first, each matched with its layer (empty layers have none).
/// Images without history get one synthetic row per layer.
pub fn history_rows(config: &ImageConfig, manifest: &Manifest) -> Vec<HistoryRow> {
    let mut rows = Vec::new();
    let mut layers = config.rootfs.diff_ids.iter().zip(manifest.layers.iter().map(|l| l.size));
    for h in config.history() {
        let (id, size) = if h.is_empty_layer() {
            (None, 0)
        } else {
            match layers.next() {
                Some((d, s)) => (Some(d.clone()), s),
                None => (None, 0),
            }
        };
        rows.push(HistoryRow {
            id,
            created_at: h.created.clone().unwrap_or_default(),
            created_by: h.created_by.clone().unwrap_or_default(),
            size,
            comment: h.comment.clone().unwrap_or_default(),
            author: h.author.clone().unwrap_or_default(),
            empty_layer: h.is_empty_layer(),
        });
    }
    for (d, size) in layers {
        rows.push(HistoryRow {
            id: Some(d.clone()),
            created_at: String::new(),
            created_by: String::new(),
            size,
            comment: String::new(),
            author: String::new(),
            empty_layer: false,
        });
    }
    rows
}

/// A size the way docker prints it (`121MB`, `4.1kB`, `0B`): decimal units, three
/// significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes}B");
    }
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    // Three significant digits, trailing zeros trimmed, like Go's %.4g in docker's units.
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    format!("{s}{}", UNITS[i])
}

/// How long `secs` seconds is, as docker says it in `ps` (go-units' `HumanDuration`):
/// `Less than a second`, `5 seconds`, `About a minute`, `3 hours`, `2 weeks`...
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    // Hours round to the nearest, as docker's do.
    let hours = (s + 1800) / 3600;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// "2 hours ago", like docker's `CreatedSince`; `now` and `then` in Unix seconds.
pub fn time_ago(then: i64, now: i64) -> String {
    let d = (now - then).max(0);
    let (n, unit) = match d {
        0..=59 => return "Less than a minute ago".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        86_400..=1_209_599 => (d / 86_400, "day"),
        1_209_600..=5_183_999 => (d / 604_800, "week"),
        5_184_000..=31_535_999 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_docker() {
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 86_400, "2 weeks"),
            (60 * 86_400, "2 months"),
            (800 * 86_400, "2 years"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn sizes_print_like_docker() {
        for (b, s) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (4096, "4.1kB"),
            (121_000_000, "121MB"),
            (51_234_567, "51.2MB"),
            (1_234_567_890, "1.23GB"),
        ] {
            assert_eq!(human_size(b), s, "{b}");
        }
    }

    #[test]
    fn times_print_like_docker() {
        assert_eq!(time_ago(0, 30), "Less than a minute ago");
        assert_eq!(time_ago(0, 3600), "An hour ago");
        assert_eq!(time_ago(0, 7200), "2 hours ago");
        assert_eq!(time_ago(0, 86_400 * 3), "3 days ago");
        assert_eq!(time_ago(0, 86_400 * 30), "4 weeks ago");
        assert_eq!(time_ago(0, 86_400 * 400), "A year ago");
    }
}
