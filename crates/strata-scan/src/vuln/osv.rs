//! Advisories in the OSV format (<https://ossf.github.io/osv-schema/>), read from a
//! directory of `.json` files and `.zip` archives of them, as OSV publishes them per
//! ecosystem.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Severity;
use super::cvss;
use crate::error::{Error, Result};

/// The largest advisory file read (OSV records are a few KiB; some list thousands of
/// versions, still far below this).
pub const MAX_ADVISORY_SIZE: u64 = 16 << 20;

/// One OSV record, with the fields matching uses.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Advisory {
    /// `DSA-5678-1`, `GHSA-xxxx`, `CVE-2024-1234`...
    pub id: String,
    /// A one-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Longer text.
    #[serde(default)]
    pub details: Option<String>,
    /// Other ids of the same vulnerability.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Scores (`CVSS_V3` vectors are scored).
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// The packages and versions affected.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Database-specific fields (GitHub's `severity: "HIGH"` among them).
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    /// Set when the advisory was withdrawn: it then matches nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
}

/// A `severity` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SeverityScore {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector (or, for some types, a word).
    pub score: String,
}

/// An `affected` entry: one package, its ranges and versions.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Affected {
    /// The package.
    pub package: AffectedPackage,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Versions affected, listed.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Ecosystem-specific fields (a `severity` word among them, for some sources).
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Database-specific fields.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// The package of an [`Affected`] entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AffectedPackage {
    /// `Debian:12`, `Alpine:v3.19`, `PyPI`, `npm`...
    pub ecosystem: String,
    /// The package name as the ecosystem spells it (a source package for distributions).
    pub name: String,
}

/// A version range: events in order.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT` (not matched: versions of installed packages are
    /// not commits).
    #[serde(rename = "type")]
    pub kind: String,
    /// The events.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a [`Range`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Affected from this version on (`"0"`: from the start).
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Not affected from this version on (a range's upper limit).
    Limit(String),
}

impl Advisory {
    /// The advisory's severity: the highest CVSS v3 base score it gives, else a
    /// severity word from its database- or ecosystem-specific fields.
    pub fn severity(&self) -> (Severity, Option<f64>) {
        let score = self
            .severity
            .iter()
            .filter(|s| s.kind == "CVSS_V3")
            .filter_map(|s| cvss::base_score(&s.score))
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
        if let Some(s) = score {
            return (Severity::from_score(s), Some(s));
        }
        let word =
            |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| v["severity"].as_str()).map(Severity::from_word);
        let from_affected =
            self.affected.iter().filter_map(|a| word(&a.ecosystem_specific).or(word(&a.database_specific))).max();
        (word(&self.database_specific).into_iter().chain(from_affected).max().unwrap_or(Severity::Unknown), None)
    }
}

/// Advisories indexed by (ecosystem without its release, package name).
#[derive(Debug, Default)]
pub struct AdvisoryDb {
    advisories: Vec<Advisory>,
    index: HashMap<(String, String), Vec<usize>>,
}

/// The ecosystem's name before any `:release` (`Debian:12` -> `Debian`).
pub(crate) fn ecosystem_base(e: &str) -> &str {
    e.split_once(':').map_or(e, |(b, _)| b)
}

impl AdvisoryDb {
    /// Read every `.json` file and every `.json` member of every `.zip` under `dir`
    /// (recursively, in sorted order). A file that is not an OSV record fails with
    /// [`Error::Advisory`] naming it.
    pub fn open(dir: impl AsRef<Path>) -> Result<AdvisoryDb> {
        let dir = dir.as_ref();
        let mut db = AdvisoryDb::default();
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        for f in files {
            let name = f.display().to_string();
            match f.extension().and_then(|e| e.to_str()) {
                Some("json") => {
                    let file = std::fs::File::open(&f).map_err(|e| Error::io("open", &f, e))?;
                    let bytes = read_limited(file, &name)?;
                    db.add_bytes(&bytes, &name)?;
                }
                Some("zip") => {
                    let file = std::fs::File::open(&f).map_err(|e| Error::io("open", &f, e))?;
                    let mut z = zip::ZipArchive::new(file).map_err(|e| Error::Advisory {
                        file: name.clone(),
                        reason: format!("not a zip archive: {e}"),
                    })?;
                    for i in 0..z.len() {
                        let m =
                            z.by_index(i).map_err(|e| Error::Advisory { file: name.clone(), reason: e.to_string() })?;
                        if !m.is_file() || !m.name().ends_with(".json") {
                            continue;
                        }
                        let member = format!("{name}:{}", m.name());
                        let bytes = read_limited(m, &member)?;
                        db.add_bytes(&bytes, &member)?;
                    }
                }
                _ => {}
            }
        }
        Ok(db)
    }

    /// Add one record's JSON.
    pub fn add_bytes(&mut self, bytes: &[u8], file: &str) -> Result<()> {
        let a: Advisory = serde_json::from_slice(bytes)
            .map_err(|e| Error::Advisory { file: file.to_owned(), reason: format!("not an OSV record: {e}") })?;
        self.add(a);
        Ok(())
    }

    /// Add one record.
    pub fn add(&mut self, a: Advisory) {
        let i = self.advisories.len();
        for af in &a.affected {
            let key = (ecosystem_base(&af.package.ecosystem).to_owned(), af.package.name.clone());
            let v = self.index.entry(key).or_default();
            if v.last() != Some(&i) {
                v.push(i);
            }
        }
        self.advisories.push(a);
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// The records naming `name` in ecosystem `base` (no release suffix).
    pub(crate) fn candidates(&self, base: &str, name: &str) -> impl Iterator<Item = &Advisory> {
        self.index
            .get(&(base.to_owned(), name.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|&i| self.advisories.get(i))
    }
}

fn read_limited(r: impl Read, name: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(MAX_ADVISORY_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Advisory { file: name.to_owned(), reason: e.to_string() })?;
    if buf.len() as u64 > MAX_ADVISORY_SIZE {
        return Err(Error::Advisory {
            file: name.to_owned(),
            reason: format!("larger than {MAX_ADVISORY_SIZE} bytes"),
        });
    }
    Ok(buf)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("read advisory directory", dir, e))?;
    for e in rd {
        let e = e.map_err(|e| Error::io("read advisory directory", dir, e))?;
        let t = e.file_type().map_err(|err| Error::io("stat", e.path(), err))?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}
