//! `strata dive`: the layer analysis as dive shows it (an explorer on a terminal, a
//! report elsewhere), and dive's CI rules (`lowestEfficiency`, `highestWastedBytes`,
//! `highestUserWastedPercent`) checked against it. The numbers are
//! [`strata_image::Image::analyze`]'s, the ones `strata layers` prints.

mod tree;
mod ui;
mod view;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use strata_image::{Image, ImageAnalysis, Store, human_size};

use crate::ctx::Ctx;
use crate::outfile::OutputFile;
use crate::output::truncate;

/// Where the image comes from.
pub enum Source {
    /// A reference in the store; one naming a registry (`host[:port]/repo:tag`) that
    /// the store does not have is pulled.
    Store(String),
    /// A docker-archive or OCI archive, read in place ([`strata_image::ArchiveView`]); a
    /// compressed one (or a pipe) is loaded into a temporary store.
    Archive(PathBuf),
}

/// The rules' values as given (a number, a size, or `disabled`); `None` when not given.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
pub struct RuleValues {
    #[serde(rename = "lowestEfficiency", default, deserialize_with = "scalar")]
    pub lowest_efficiency: Option<String>,
    #[serde(rename = "highestWastedBytes", default, deserialize_with = "scalar")]
    pub highest_wasted_bytes: Option<String>,
    #[serde(rename = "highestUserWastedPercent", default, deserialize_with = "scalar")]
    pub highest_user_wasted_percent: Option<String>,
}

/// A `.dive-ci` file: `rules:` and the rules under it.
#[derive(Debug, Default, serde::Deserialize)]
struct CiFile {
    #[serde(default)]
    rules: RuleValues,
}

/// A YAML scalar (`0.9`, `20MB`, `disabled`) as its text.
fn scalar<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    use serde::Deserialize;
    use serde::de::Error;
    Ok(match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::Null => None,
        serde_yaml::Value::String(s) => Some(s),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => return Err(D::Error::custom("a rule's value is a number, a size or \"disabled\"")),
    })
}

// dive's defaults, for rules neither the flags nor the file name.
const DEFAULT_LOWEST_EFFICIENCY: &str = "0.9";
const DEFAULT_HIGHEST_WASTED_BYTES: &str = "disabled";
const DEFAULT_HIGHEST_USER_WASTED_PERCENT: &str = "0.1";

impl RuleValues {
    /// Parse a `.dive-ci` file's text.
    pub fn from_yaml(text: &str) -> Result<RuleValues> {
        if text.trim().is_empty() {
            return Ok(RuleValues::default());
        }
        let f: CiFile = serde_yaml::from_str(text)?;
        Ok(f.rules)
    }

    /// These values, with `lower`'s where these have none.
    fn over(self, lower: RuleValues) -> RuleValues {
        RuleValues {
            lowest_efficiency: self.lowest_efficiency.or(lower.lowest_efficiency),
            highest_wasted_bytes: self.highest_wasted_bytes.or(lower.highest_wasted_bytes),
            highest_user_wasted_percent: self.highest_user_wasted_percent.or(lower.highest_user_wasted_percent),
        }
    }
}

/// The verdict of one rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Pass,
    Fail(String),
    Skip(String),
}

/// Check the three rules (in dive's order of report: by name) against `a`.
pub fn check(a: &ImageAnalysis, rules: &RuleValues) -> Vec<(&'static str, Status)> {
    let value = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.to_owned());
    let mut out = vec![
        (
            "highestUserWastedPercent",
            rule(&value(&rules.highest_user_wasted_percent, DEFAULT_HIGHEST_USER_WASTED_PERCENT), |v| {
                let t = ratio(v)?;
                Ok((a.user_wasted_percent > t).then(|| {
                    format!(
                        "too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes={} > threshold={t})",
                        a.user_wasted_percent
                    )
                }))
            }),
        ),
        (
            "highestWastedBytes",
            rule(&value(&rules.highest_wasted_bytes, DEFAULT_HIGHEST_WASTED_BYTES), |v| {
                let t = parse_bytes(v)?;
                Ok((a.bytes_wasted > t)
                    .then(|| format!("too many bytes wasted (wasted-bytes={} > threshold={t})", a.bytes_wasted)))
            }),
        ),
        (
            "lowestEfficiency",
            rule(&value(&rules.lowest_efficiency, DEFAULT_LOWEST_EFFICIENCY), |v| {
                let t = ratio(v)?;
                Ok((a.efficiency < t)
                    .then(|| format!("image efficiency is too low (efficiency={} < threshold={t})", a.efficiency)))
            }),
        ),
    ];
    out.sort_by_key(|(name, _)| *name);
    out
}

/// One rule: skipped when `disabled`, failed on a bad value or when `judge` says why.
fn rule(value: &str, judge: impl Fn(&str) -> Result<Option<String>, String>) -> Status {
    if value.trim().eq_ignore_ascii_case("disabled") {
        return Status::Skip("rule disabled".into());
    }
    match judge(value.trim()) {
        Ok(None) => Status::Pass,
        Ok(Some(why)) => Status::Fail(why),
        Err(e) => Status::Fail(format!("invalid config value ('{value}'): {e}")),
    }
}

fn ratio(v: &str) -> Result<f64, String> {
    v.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(|| "not a number".to_owned())
}

/// A size as dive (go-humanize) reads it: `512`, `20MB` and `20M` (powers of 1000),
/// `20MiB` (powers of 1024), case and a space between number and unit ignored.
pub fn parse_bytes(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().map_err(|_| format!("not a size: {v}"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let (si, unit) = match unit.strip_suffix("ib") {
        Some(u) => (false, u.to_owned()),
        None => (true, unit.strip_suffix('b').unwrap_or(&unit).to_owned()),
    };
    let power = match unit.as_str() {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        "e" => 6,
        _ => return Err(format!("unknown unit in {v}")),
    };
    if !si && power == 0 {
        return Err(format!("unknown unit in {v}"));
    }
    let base: f64 = if si { 1000.0 } else { 1024.0 };
    let bytes = num * base.powi(power);
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("too large: {v}"));
    }
    Ok(bytes as u64)
}

/// The `.dive-ci` to read: the one named, else `.dive-ci` here when there.
fn ci_file(named: Option<&Path>) -> Result<(Option<PathBuf>, RuleValues)> {
    let path = match named {
        Some(p) => p.to_path_buf(),
        None if Path::new(".dive-ci").is_file() => PathBuf::from(".dive-ci"),
        None => return Ok((None, RuleValues::default())),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("read CI config {}", path.display()))?;
    let rules = RuleValues::from_yaml(&text).with_context(|| format!("parse CI config {}", path.display()))?;
    Ok((Some(path), rules))
}

/// How to pull an image the store does not have.
pub struct Pull {
    /// Into the user's store, kept there (else a temporary store, deleted after).
    pub keep: bool,
    pub registry: strata_registry::RegistryOptions,
}

#[allow(clippy::too_many_arguments)]
pub fn dive(
    ctx: &Ctx,
    source: &Source,
    pull: &Pull,
    ci: bool,
    ci_config: Option<&Path>,
    json_file: Option<&Path>,
    flags: RuleValues,
) -> Result<ExitCode> {
    // The rules file first: a bad one is an error before any work.
    let (config_path, file_rules) = if ci { ci_file(ci_config)? } else { (None, RuleValues::default()) };
    let rules = flags.over(file_rules);
    let opened = open(ctx, source, pull)?;
    // The explorer when on a terminal and nothing else is asked for.
    if !ci && json_file.is_none() && !ctx.json && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        let (a, changes) = opened.image.analyze_changes()?;
        ui::run(view::App::new(opened.name, a, changes))?;
        return Ok(ExitCode::SUCCESS);
    }
    let a = opened.image.analyze()?;
    let name = opened.name;
    if let Some(path) = json_file {
        let target = OutputFile::create(path, ".strata-dive-")?;
        let mut out = std::io::BufWriter::new(target.file());
        serde_json::to_writer_pretty(&mut out, &a).with_context(|| format!("write {}", path.display()))?;
        writeln!(out).and_then(|()| out.flush()).with_context(|| format!("write {}", path.display()))?;
        drop(out);
        target.commit()?;
    }
    if ctx.json && !ci {
        crate::output::print_json(&a)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if let Some(p) = &config_path {
        writeln!(out, "  Using CI config: {}", p.display())?;
    }
    writeln!(out, "Image: {name}")?;
    if !ci {
        print_layers(&mut out, &a)?;
    }
    print_details(&mut out, &a)?;
    if !ci {
        return Ok(ExitCode::SUCCESS);
    }
    let results = check(&a, &rules);
    writeln!(out, "Results:")?;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (rule, status) in &results {
        match status {
            Status::Pass => {
                passed += 1;
                writeln!(out, "  PASS: {rule}")?;
            }
            Status::Fail(why) => {
                failed += 1;
                writeln!(out, "  FAIL: {rule}: {why}")?;
            }
            Status::Skip(why) => {
                skipped += 1;
                writeln!(out, "  SKIP: {rule}: {why}")?;
            }
        }
    }
    let verdict = if failed > 0 { "FAIL" } else { "PASS" };
    writeln!(
        out,
        "Result:{verdict} [Total:{}] [Passed:{passed}] [Failed:{failed}] [Warn:0] [Skipped:{skipped}]",
        results.len()
    )?;
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The image to look at, its name to show, and the temporary store it may be in.
struct Opened {
    image: Image,
    name: String,
    _tmp: Option<tempfile::TempDir>,
}

fn open(ctx: &Ctx, source: &Source, pull: &Pull) -> Result<Opened> {
    match source {
        Source::Store(r) if pull.keep => {
            let store = ctx.write_store()?;
            let image = pulled(ctx, &store, r, pull)?;
            Ok(Opened { image, name: r.clone(), _tmp: None })
        }
        Source::Store(r) => {
            let store = ctx.read_store()?;
            match store.image(r) {
                Ok(image) => Ok(Opened { image, name: r.clone(), _tmp: None }),
                Err(strata_image::Error::ImageNotFound(_)) if names_registry(r) => {
                    let tmp = temp_dir()?;
                    let store = Store::create(tmp.path().join("store")).context("create a temporary store")?;
                    let image = pulled(ctx, &store, r, pull)?;
                    Ok(Opened { image, name: r.clone(), _tmp: Some(tmp) })
                }
                Err(e) => Err(e.into()),
            }
        }
        Source::Archive(path) => match strata_image::ArchiveView::open(path) {
            Ok(view) => {
                let (image, name) = only_image(path, view.images(), |l| view.image(l))?;
                Ok(Opened { image, name, _tmp: None })
            }
            // Compressed, or not a file: loaded into a temporary store instead.
            Err(strata_image::Error::NotInPlace { .. }) => {
                let tmp = temp_dir()?;
                let store = Store::create(tmp.path().join("store")).context("create a temporary store")?;
                let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
                let loaded =
                    store.load(std::io::BufReader::new(file)).with_context(|| format!("load {}", path.display()))?;
                let (image, name) = only_image(path, &loaded, |l| store.image(l.id.as_ref()))?;
                Ok(Opened { image, name, _tmp: Some(tmp) })
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("read {}", path.display()))),
        },
    }
}

/// The one image of an archive, opened with `open`, and its name to show.
fn only_image(
    path: &Path,
    images: &[strata_image::Loaded],
    open: impl Fn(&strata_image::Loaded) -> strata_image::Result<Image>,
) -> Result<(Image, String)> {
    let first = match images {
        [one] => one,
        [] => bail!("{} holds no image", path.display()),
        _ => bail!("{} holds {} images; strata dive reads archives of one image", path.display(), images.len()),
    };
    let image = open(first).with_context(|| format!("read {}", path.display()))?;
    let name = first.names.first().cloned().unwrap_or_else(|| first.id.to_string());
    Ok((image, name))
}

/// A directory for a temporary store.
fn temp_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("strata-dive-").tempdir().context("create a temporary store")
}

/// Whether `r` names a registry as docker reads it: a first component with a `.` or a
/// `:`, or `localhost`, before a `/`.
fn names_registry(r: &str) -> bool {
    r.split_once('/').is_some_and(|(host, _)| host.contains(['.', ':']) || host == "localhost")
}

/// Pull `r` into `store`; the image pulled.
fn pulled(ctx: &Ctx, store: &Store, r: &str, pull: &Pull) -> Result<Image> {
    let reference = strata_spec::Reference::parse(r).with_context(|| format!("pull {r}"))?;
    let options = strata_registry::PullOptions { registry: pull.registry.clone(), ..Default::default() };
    let done =
        crate::cmd::registry::pull_into(ctx, store, &reference, &options).with_context(|| format!("pull {r}"))?;
    Ok(store.image(&done.ref_name)?)
}

/// The layers pane, as text.
fn print_layers(out: &mut impl Write, a: &ImageAnalysis) -> Result<()> {
    writeln!(out, "Layers:")?;
    writeln!(out, "  {:>9}  {:>6}  {:>6}  {:>6}  Command", "Size", "Added", "Modif", "Remov")?;
    for l in &a.layers {
        let created_by = if l.empty { format!("{} (empty layer)", l.created_by) } else { l.created_by.clone() };
        writeln!(
            out,
            "  {:>9}  {:>6}  {:>6}  {:>6}  {}",
            human_size(l.bytes_added),
            l.paths_added,
            l.paths_modified,
            l.paths_removed,
            truncate(created_by.trim(), 80)
        )?;
    }
    Ok(())
}

/// Image details and the wasted files, in dive's words.
fn print_details(out: &mut impl Write, a: &ImageAnalysis) -> Result<()> {
    writeln!(out, "  efficiency: {:.4} %", a.efficiency * 100.0)?;
    writeln!(out, "  wastedBytes: {} bytes ({})", a.bytes_wasted, human_size(a.bytes_wasted))?;
    writeln!(out, "  userWastedPercent: {:.4} %", a.user_wasted_percent * 100.0)?;
    writeln!(out, "  totalSize: {} stored, {} of content", human_size(a.size), human_size(a.bytes_added))?;
    writeln!(out, "Inefficient Files:")?;
    writeln!(out, "Count  Wasted Space  File Path")?;
    for w in a.wasted_files.iter().take(MAX_WASTED_SHOWN) {
        writeln!(out, "{:>5}  {:>12}  {}", w.writes, human_size(w.bytes_wasted), w.path)?;
    }
    if a.wasted_files.len() > MAX_WASTED_SHOWN {
        writeln!(out, "  … {} more (--json FILE has them all)", a.wasted_files.len() - MAX_WASTED_SHOWN)?;
    }
    Ok(())
}

/// Wasted files listed in the text report (dive lists them all; a long tail helps no one).
const MAX_WASTED_SHOWN: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references_are_told_from_store_ones() {
        for (r, yes) in [
            ("localhost/x:1", true),
            ("127.0.0.1:5000/x:1", true),
            ("registry.example/team/app:2", true),
            ("debian:12", false),
            ("library/debian:12", false),
            ("tomcat02:1.0", false),
        ] {
            assert_eq!(names_registry(r), yes, "{r}");
        }
    }

    #[test]
    fn sizes_read_as_dive_reads_them() {
        for (text, bytes) in [
            ("512", Ok(512)),
            ("20MB", Ok(20_000_000)),
            ("20 mb", Ok(20_000_000)),
            ("20M", Ok(20_000_000)),
            ("1.5kB", Ok(1500)),
            ("2MiB", Ok(2 << 20)),
            ("1GiB", Ok(1 << 30)),
            ("5B", Ok(5)),
        ] {
            assert_eq!(parse_bytes(text), bytes, "{text}");
        }
        for bad in ["", "MB", "12 parsecs", "1iB", "-3"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ci_files_read_as_dive_writes_them() {
        let r = RuleValues::from_yaml(
            "rules:\n  # comment\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n",
        )
        .unwrap();
        assert_eq!(r.lowest_efficiency.as_deref(), Some("0.95"));
        assert_eq!(r.highest_wasted_bytes.as_deref(), Some("20MB"));
        assert_eq!(r.highest_user_wasted_percent.as_deref(), Some("disabled"));
        assert_eq!(RuleValues::from_yaml("").unwrap(), RuleValues::default());
        assert_eq!(RuleValues::from_yaml("rules:\n").unwrap(), RuleValues::default());
        assert!(RuleValues::from_yaml("rules:\n  lowestEfficiency: [1, 2]\n").is_err());
        assert!(RuleValues::from_yaml("rules: [").is_err());
    }
}
