//! Offline vulnerability matching: an [`Inventory`] against OSV advisories, each
//! ecosystem's versions in its own order ([`crate::version`]).

mod cvss;
mod osv;

use serde::Serialize;
use serde_json::{Value, json};

pub use cvss::base_score;
pub use osv::{Advisory, AdvisoryDb, Affected, AffectedPackage, Event, MAX_ADVISORY_SIZE, Range, SeverityScore};

use crate::inventory::Inventory;
use crate::package::{Distro, Kind, Package};
use crate::sbom::{TOOL_NAME, TOOL_VERSION, format_table};
use crate::version;

/// How bad a finding is, by CVSS rating (v3.1 specification, table 14) or the word an
/// advisory gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// No score and no word.
    Unknown,
    /// CVSS 0.1-3.9.
    Low,
    /// CVSS 4.0-6.9 (`moderate` in some databases).
    Medium,
    /// CVSS 7.0-8.9 (`important` in some).
    High,
    /// CVSS 9.0-10.0.
    Critical,
}

impl Severity {
    /// The rating of a CVSS base score (0.0, "none", rates as [`Severity::Low`]).
    pub fn from_score(s: f64) -> Severity {
        if s >= 9.0 {
            Severity::Critical
        } else if s >= 7.0 {
            Severity::High
        } else if s >= 4.0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// A severity word as databases spell it (case ignored): `low`, `medium`,
    /// `moderate`, `high`, `important`, `critical`; anything else is unknown.
    pub fn from_word(w: &str) -> Severity {
        match w.to_ascii_lowercase().as_str() {
            "low" | "negligible" | "unimportant" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" | "important" => Severity::High,
            "critical" => Severity::Critical,
            _ => Severity::Unknown,
        }
    }

    /// The name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "unknown" => Ok(Severity::Unknown),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!("unknown severity {s:?} (unknown, low, medium, high, critical)")),
        }
    }
}

/// One package affected by one advisory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The advisory's id.
    pub id: String,
    /// Its aliases (CVE ids...).
    pub aliases: Vec<String>,
    /// Its summary.
    pub summary: Option<String>,
    /// Its severity.
    pub severity: Severity,
    /// The CVSS v3 base score it came from, when it has one.
    pub score: Option<f64>,
    /// The package's name.
    pub package: String,
    /// The installed version.
    pub version: String,
    /// The kind of package.
    pub kind: Kind,
    /// Its package URL.
    pub purl: String,
    /// Where it was read from, inside the image.
    pub location: String,
    /// The first version that fixes it, when the advisory gives one above the
    /// installed version.
    pub fixed: Option<String>,
    /// The layer that introduced the package.
    pub layer: Option<usize>,
}

/// The OSV ecosystem and release a package's advisories are filed under.
fn ecosystem(p: &Package, distro: Option<&Distro>) -> Option<(&'static str, Option<String>)> {
    let major = |d: &Distro| d.version_id.as_deref().map(|v| v.split('.').next().unwrap_or(v).to_owned());
    let major_minor = |d: &Distro| d.version_id.as_deref().map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."));
    Some(match p.kind {
        Kind::Python => ("PyPI", None),
        Kind::Npm => ("npm", None),
        Kind::Deb => match distro.map(|d| d.id.as_str()) {
            Some("ubuntu") => ("Ubuntu", distro.and_then(|d| d.version_id.clone())),
            _ => ("Debian", distro.and_then(major)),
        },
        Kind::Apk => ("Alpine", distro.and_then(major_minor).map(|v| format!("v{v}"))),
        Kind::Rpm => {
            let d = distro?;
            let eco = match d.id.as_str() {
                "rhel" | "centos" => "Red Hat",
                "rocky" => "Rocky Linux",
                "almalinux" => "AlmaLinux",
                "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => "openSUSE",
                "sles" => "SUSE",
                "mariner" | "azurelinux" => "Azure Linux",
                _ => return None,
            };
            (eco, major(d))
        }
    })
}

/// Whether advisory ecosystem `adv` (`Debian:12`, `Ubuntu:22.04:LTS`, `PyPI`) covers a
/// package of `base` and `release`.
fn same_release(adv: &str, release: Option<&str>) -> bool {
    match adv.split_once(':') {
        None => true,
        Some((_, r)) => release.is_some_and(|rel| r.split(':').next() == Some(rel)),
    }
}

/// Whether `v` is in `range` (OSV's evaluation: events sorted by version, an
/// `introduced` at or below `v` makes it affected, a `fixed` or `limit` at or below it
/// or a `last_affected` below it makes it not), and the first fixed version above `v`.
fn in_range(kind: Kind, v: &str, range: &Range) -> (bool, Option<String>) {
    let cmp = |a: &str, b: &str| if a == "0" { std::cmp::Ordering::Less } else { version::compare(kind, a, b) };
    let mut events: Vec<&Event> = range.events.iter().collect();
    let key = |e: &Event| match e {
        Event::Introduced(x) | Event::Fixed(x) | Event::LastAffected(x) | Event::Limit(x) => x.clone(),
    };
    events.sort_by(|a, b| {
        let (x, y) = (key(a), key(b));
        match (x.as_str(), y.as_str()) {
            ("0", "0") => std::cmp::Ordering::Equal,
            ("0", _) => std::cmp::Ordering::Less,
            (_, "0") => std::cmp::Ordering::Greater,
            _ => version::compare(kind, &x, &y),
        }
    });
    let mut affected = false;
    for e in &events {
        match e {
            Event::Introduced(x) if cmp(x, v).is_le() => affected = true,
            Event::Fixed(x) | Event::Limit(x) if cmp(x, v).is_le() => affected = false,
            Event::LastAffected(x) if cmp(x, v).is_lt() => affected = false,
            _ => {}
        }
    }
    let fixed = events.iter().find_map(|e| match e {
        Event::Fixed(x) if cmp(x, v).is_gt() => Some(x.clone()),
        _ => None,
    });
    (affected, fixed)
}

/// Match every package of `inv` against `db`: findings sorted by severity (worst
/// first), advisory id, package and version.
pub fn match_inventory(inv: &Inventory, db: &AdvisoryDb) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &inv.packages {
        let Some((base, release)) = ecosystem(p, inv.distro.as_ref()) else { continue };
        let name = match p.kind {
            Kind::Python => crate::catalog::python::normalize(p.advisory_name()),
            _ => p.advisory_name().to_owned(),
        };
        let v = p.advisory_version();
        let mut names = vec![name.clone()];
        if p.kind == Kind::Python && p.name != name {
            names.push(p.name.clone());
        }
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            for adv in db.candidates(base, n) {
                if adv.withdrawn.is_some() || !seen.insert(adv.id.clone()) {
                    continue;
                }
                let mut hit = false;
                let mut fixed = None;
                for af in &adv.affected {
                    let an = match p.kind {
                        Kind::Python => crate::catalog::python::normalize(&af.package.name),
                        _ => af.package.name.clone(),
                    };
                    if osv::ecosystem_base(&af.package.ecosystem) != base
                        || an != name
                        || !same_release(&af.package.ecosystem, release.as_deref())
                    {
                        continue;
                    }
                    if af.versions.iter().any(|x| x == v) {
                        hit = true;
                    }
                    for r in af.ranges.iter().filter(|r| r.kind != "GIT") {
                        let (a, f) = in_range(p.kind, v, r);
                        if a {
                            hit = true;
                            fixed = fixed.or(f);
                        }
                    }
                }
                if hit {
                    let (severity, score) = adv.severity();
                    out.push(Finding {
                        id: adv.id.clone(),
                        aliases: adv.aliases.clone(),
                        summary: adv.summary.clone(),
                        severity,
                        score,
                        package: p.name.clone(),
                        version: p.version.clone(),
                        kind: p.kind,
                        purl: p.purl.clone(),
                        location: p.location.clone(),
                        fixed,
                        layer: p.layer,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| (&a.id, &a.package, &a.version).cmp(&(&b.id, &b.package, &b.version)))
    });
    out
}

/// The findings as a table.
pub fn findings_table(findings: &[Finding]) -> String {
    let mut rows = vec![["SEVERITY", "ID", "PACKAGE", "VERSION", "FIXED", "LAYER"].map(str::to_owned)];
    for f in findings {
        rows.push([
            f.severity.as_str().to_owned(),
            f.id.clone(),
            f.package.clone(),
            f.version.clone(),
            f.fixed.clone().unwrap_or_else(|| "-".into()),
            f.layer.map_or_else(|| "-".into(), |l| l.to_string()),
        ]);
    }
    format_table(&rows)
}

/// The findings as SARIF 2.1.0 (what CI systems' code scanning reads): one rule per
/// advisory, one result per affected package, located at the package database.
pub fn sarif(inv: &Inventory, findings: &[Finding]) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<&str> = Vec::new();
    for f in findings {
        if rule_ids.contains(&f.id.as_str()) {
            continue;
        }
        rule_ids.push(&f.id);
        let mut props = json!({ "tags": ["security", "vulnerability"] });
        if let Some(s) = f.score {
            props["security-severity"] = json!(format!("{s:.1}"));
        }
        rules.push(json!({
            "id": f.id,
            "shortDescription": { "text": f.summary.clone().unwrap_or_else(|| f.id.clone()) },
            "properties": props,
        }));
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let level = match f.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::Unknown => "note",
            };
            let fixed = f.fixed.as_deref().map(|v| format!(", fixed in {v}")).unwrap_or_default();
            json!({
                "ruleId": f.id,
                "ruleIndex": rule_ids.iter().position(|r| *r == f.id).unwrap_or(0),
                "level": level,
                "message": { "text": format!("{} {} is affected by {} ({}){fixed}", f.package, f.version, f.id, f.severity.as_str()) },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": f.location } } }],
                "properties": { "purl": f.purl },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": TOOL_NAME, "version": TOOL_VERSION, "rules": rules } },
            "properties": { "image": inv.image, "digest": inv.digest },
            "results": results,
        }],
    })
}
