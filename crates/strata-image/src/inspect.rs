//! What `docker inspect` and `docker history` show for an image, with Docker's field names.

use serde::Serialize;
use serde_json::Value;
use strata_spec::time::{format_rfc3339, parse_rfc3339};
use strata_spec::{ContainerConfig, Digest, ImageConfig};

/// Go's zero time (`0001-01-01T00:00:00Z`) in Unix seconds: what docker shows for a time
/// it does not have, and sorts as the oldest.
pub const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Go's zero time as docker prints it (`Created` of an image without one,
/// `LastTagTime` of an image never tagged).
pub const GO_ZERO_TIME_TEXT: &str = "0001-01-01T00:00:00Z";

/// `docker image inspect` of an image: every key of current docker's image inspect, with
/// the same types and meanings (see `docs/docker-compat.md`), then `Descriptor` and
/// strata's own keys under [`Inspect::strata`]. Serializes with docker's field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    /// The image id: the digest of the config blob.
    pub id: Digest,
    /// The references (`REPOSITORY:TAG`) that point at this image; bare layout tags are
    /// not references and are listed under [`StrataView::ref_names`] only.
    pub repo_tags: Vec<String>,
    /// `repository@digest` for each registry repository the image was pulled from or
    /// pushed to (empty for an image that never met a registry, as in docker).
    pub repo_digests: Vec<String>,
    /// The parent image id, when the store has one whose layers and history are a strict
    /// prefix of this one's; empty otherwise, as docker shows for pulled images.
    pub parent: String,
    /// The config's `comment`, else the comment of the last history entry (as docker).
    pub comment: String,
    /// Creation time, RFC 3339 with nanoseconds as Go prints it; Go's zero time when the
    /// config has none.
    pub created: String,
    /// Docker version that built it, when recorded.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// Runtime defaults, as docker's `container.Config` (`null` when the config has none).
    pub config: Value,
    /// CPU architecture.
    pub architecture: String,
    /// CPU variant (omitted when empty, as docker does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Operating system.
    pub os: String,
    /// OS version (Windows images; omitted when empty, as docker does).
    #[serde(rename = "OsVersion", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// The image's size as docker reports it: the bytes of content of its layers
    /// ([`crate::Image::size`]).
    pub size: u64,
    /// Where the image's files live: for strata, the store (no graph driver mounts them).
    pub graph_driver: GraphDriver,
    /// Layers by diff_id.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFsView,
    /// Store metadata.
    pub metadata: Metadata,
    /// The manifest the image was reached through (docker 25+ prints this key, with the
    /// containerd image store).
    #[serde(rename = "Descriptor")]
    pub descriptor: DescriptorView,
    /// What strata knows that docker's keys have no place for.
    pub strata: StrataView,
}

/// `GraphDriver` of `docker image inspect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// Driver data: `null`, as docker's vfs driver shows (no mount directories).
    pub data: Option<std::collections::BTreeMap<String, String>>,
    /// `oci-layout` for a layout directory, `memory` for an in-memory store.
    pub name: String,
}

/// `RootFS` of `docker inspect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsView {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// diff_ids, base first (omitted when there are none, as docker does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Digest>,
}

/// `Metadata` of `docker inspect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// When a tag was last set on the image in this store, RFC 3339; Go's zero time
    /// ([`GO_ZERO_TIME_TEXT`]) when never, as docker prints it.
    pub last_tag_time: String,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata { last_tag_time: GO_ZERO_TIME_TEXT.to_owned() }
    }
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

/// strata's keys of `inspect` (under `"Strata"`), which docker has no place for.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StrataView {
    /// Every ref name of the store that points at the image, as stored: references and
    /// bare layout tags (umoci's `latest`) alike.
    pub ref_names: Vec<String>,
    /// Bytes of the layer blobs and config as stored (compressed or not), which is what
    /// the image costs this store.
    pub stored_size: u64,
}

/// A creation time as docker prints it: Go's `time.RFC3339Nano` of the parsed time
/// (fraction without trailing zeros, `Z` for UTC, the offset kept otherwise), Go's zero
/// time when there is none or it does not parse.
pub fn docker_created(created: Option<&str>) -> String {
    let Some(text) = created else { return GO_ZERO_TIME_TEXT.to_owned() };
    let Some((secs, nanos)) = parse_rfc3339(text) else { return GO_ZERO_TIME_TEXT.to_owned() };
    // The offset as written: `Z`, or `±hh:mm` after the seconds and fraction.
    let zone = text.rfind(['+', '-']).filter(|&i| i >= 19).map(|i| &text[i..]);
    match zone {
        Some(z) if z != "+00:00" && z != "-00:00" => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hours: i64 = z[1..3].parse().unwrap_or(0);
            let minutes: i64 = z[4..6].parse().unwrap_or(0);
            let local = secs + sign * (hours * 3600 + minutes * 60);
            let s = format_rfc3339(local, nanos);
            format!("{}{z}", s.trim_end_matches('Z'))
        }
        _ => format_rfc3339(secs, nanos),
    }
}

/// The runtime config as docker prints it: Docker's field names, `null` for absent
/// lists (docker prints `"Cmd": null`, `"Entrypoint": null`...).
pub(crate) fn docker_config_value(c: Option<&ContainerConfig>) -> Value {
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
        // Keys docker's `container.Config` omits when empty.
        map.retain(|k, v| match k.as_str() {
            "ExposedPorts" | "Healthcheck" | "Shell" | "StopTimeout" => !is_empty_value(v),
            "ArgsEscaped" | "NetworkDisabled" => v != &Value::Bool(false) && !v.is_null(),
            "StopSignal" | "MacAddress" => !is_empty_value(v),
            _ => true,
        });
    }
    v
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// One row of `docker history`, newest first when listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryRow {
    /// The layer's diff_id, or `None` for an empty layer.
    #[serde(rename = "ID")]
    pub id: Option<Digest>,
    /// The id of the local image this step made: the image itself on the top row, and on
    /// lower rows an image of the store built by exactly the steps up to that row (a
    /// base, or an intermediate image). `None` where the store has none (docker shows
    /// `<missing>`).
    pub image: Option<Digest>,
    /// Creation time, RFC 3339 (empty when the entry has none).
    pub created_at: String,
    /// The command that created the step.
    pub created_by: String,
    /// The layer's size as docker reports it ([`crate::Image::layer_sizes`]); 0 for
    /// empty layers.
    pub size: u64,
    /// Commit message.
    pub comment: String,
    /// Author.
    pub author: String,
    /// Whether the step added no layer.
    pub empty_layer: bool,
}

/// History rows, oldest first, each matched with its layer and that layer's size
/// (`sizes`, base first; empty layers have none). Images without history get one
/// synthetic row per layer.
pub fn history_rows(config: &ImageConfig, sizes: &[u64]) -> Vec<HistoryRow> {
    let mut rows = Vec::new();
    let mut layers = config.rootfs.diff_ids.iter().zip(sizes.iter().copied().chain(std::iter::repeat(0)));
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
            image: None,
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
            image: None,
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

/// A size the way docker prints it in `images` and `history` (`121MB`, `4.1kB`, `0B`,
/// `1e+03kB`): go-units' `HumanSizeWithPrecision(size, 3)`, decimal units and Go's
/// `%.3g`, quirks included.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(v, 3), UNITS[i])
}

/// Go's `%.{precision}g` of a finite, non-negative number: `precision` significant
/// digits, trailing zeros dropped, in exponent form (`1e+03`) when the exponent is below
/// -4 or not below the precision.
fn go_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    // Round to `precision` significant digits first: the exponent is the rounded one's.
    let sci = format!("{:.*e}", precision.saturating_sub(1), v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s.to_owned() }
    };
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(precision as i32 - 1 - exp).unwrap_or(0);
        trim(&format!("{v:.decimals$}"))
    }
}

/// go-units' `HumanDuration` of a Go `time.Duration` (nanoseconds): `Less than a
/// second`, `1 second`, `15 seconds`, `About a minute`, `3 minutes`, `About an hour`,
/// `2 hours` (rounded), then days, weeks, months and years (truncated).
pub fn human_duration(nanos: i64) -> String {
    let d = nanos as f64;
    let seconds = (d / 1e9) as i64;
    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (d / 6e10) as i64;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d / 3.6e12 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (d / 3.6e12) as i64 / 24 / 365)
}

/// `15 seconds ago`, `About an hour ago`, like docker's `CreatedSince`: the time from
/// `then` (Unix seconds, the whole seconds docker's API carries) to `now` (Unix seconds)
/// as [`human_duration`] says it. Go's durations saturate at about 292 years, and so does
/// this.
pub fn time_ago(then: i64, now: i64) -> String {
    let secs = i128::from(now) - i128::from(then);
    let nanos = (secs * 1_000_000_000).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    format!("{} ago", human_duration(i64::try_from(nanos).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_docker() {
        // Each figure as go-units' HumanSizeWithPrecision(size, 3) prints it (checked
        // against docker 20.10 where an image of that size was at hand).
        for (b, s) in [
            (0, "0B"),
            (4, "4B"),
            (999, "999B"),
            (1000, "1kB"),
            (4000, "4kB"),
            (4096, "4.1kB"),
            (10_240, "10.2kB"),
            (999_499, "999kB"),
            (999_500, "1e+03kB"),
            (999_600, "1e+03kB"),
            (121_000_000, "121MB"),
            (51_234_567, "51.2MB"),
            (72_800_000, "72.8MB"),
            (1_234_567_890, "1.23GB"),
            (u64::MAX, "18.4EB"),
        ] {
            assert_eq!(human_size(b), s, "{b}");
        }
    }

    #[test]
    fn go_g_matches_go() {
        for (v, p, s) in [(0.5, 3, "0.5"), (0.000_12, 3, "0.00012"), (0.000_012_3, 3, "1.23e-05"), (123.4, 3, "123")] {
            assert_eq!(go_g(v, p), s, "{v}");
        }
    }

    #[test]
    fn durations_print_like_go_units() {
        let s = 1_000_000_000i64;
        for (d, text) in [
            (-5 * s, "Less than a second"),
            (s / 2, "Less than a second"),
            (s, "1 second"),
            (15 * s, "15 seconds"),
            (59 * s, "59 seconds"),
            (60 * s, "About a minute"),
            (119 * s, "About a minute"),
            (120 * s, "2 minutes"),
            (59 * 60 * s, "59 minutes"),
            (60 * 60 * s, "About an hour"),
            (89 * 60 * s, "About an hour"),
            (90 * 60 * s, "2 hours"),
            (47 * 3600 * s, "47 hours"),
            (48 * 3600 * s, "2 days"),
            (13 * 86_400 * s, "13 days"),
            (14 * 86_400 * s, "2 weeks"),
            (59 * 86_400 * s, "8 weeks"),
            (60 * 86_400 * s, "2 months"),
            (729 * 86_400 * s, "24 months"),
            (730 * 86_400 * s, "2 years"),
            (i64::MAX, "292 years"),
        ] {
            assert_eq!(human_duration(d), text, "{d}");
        }
        assert_eq!(time_ago(0, 15), "15 seconds ago");
        assert_eq!(time_ago(GO_ZERO_TIME, 1_800_000_000), "292 years ago");
        assert_eq!(time_ago(100, 10), "Less than a second ago");
    }

    #[test]
    fn created_prints_like_go() {
        for (input, shown) in [
            (Some("2024-01-15T10:30:00.120Z"), "2024-01-15T10:30:00.12Z"),
            (Some("2024-01-15T10:30:00.000Z"), "2024-01-15T10:30:00Z"),
            (Some("2024-01-15T10:30:00+00:00"), "2024-01-15T10:30:00Z"),
            (Some("2026-12-01T03:00:00+01:00"), "2026-12-01T03:00:00+01:00"),
            (Some("2026-12-01T03:00:00.5-05:30"), "2026-12-01T03:00:00.5-05:30"),
            (Some("not a time"), GO_ZERO_TIME_TEXT),
            (None, GO_ZERO_TIME_TEXT),
        ] {
            assert_eq!(docker_created(input), shown, "{input:?}");
        }
    }

    #[test]
    fn config_keys_docker_omits_when_empty() {
        let c: ContainerConfig = serde_json::from_str(
            r#"{"Cmd":["sh"],"ExposedPorts":{},"Shell":[],"ArgsEscaped":false,"StopSignal":"","Volumes":{}}"#,
        )
        .unwrap();
        let v = docker_config_value(Some(&c));
        for gone in ["ExposedPorts", "Shell", "ArgsEscaped", "StopSignal"] {
            assert!(v.get(gone).is_none(), "{gone} in {v}");
        }
        assert_eq!(v["Volumes"], serde_json::json!({}));
        assert_eq!(v["Hostname"], "");
        assert_eq!(v["Env"], Value::Null);
        assert_eq!(docker_config_value(None), Value::Null);
    }
}
