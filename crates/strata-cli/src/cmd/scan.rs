//! `sbom` and `scan`: an image's packages (strata-scan), as an SBOM or matched against
//! OSV advisories.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use strata_scan::{AdvisoryDb, Inventory, SbomFormat, SbomOptions, ScanOptions, Severity, match_inventory, vuln};

use crate::ctx::Ctx;
use crate::output::print_json;
use crate::progress::Bars;

fn inventory(ctx: &Ctx, reference: &str, layer_history: bool) -> Result<Inventory> {
    let img = ctx.read_store()?.image(reference)?;
    let spinner = Bars::new(ctx).spinner("reading packages");
    let inv = Inventory::of_image(&img, &ScanOptions::default().layer_history(layer_history))?;
    spinner.finish_and_clear();
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    Ok(inv)
}

pub fn sbom(ctx: &Ctx, reference: &str, format: &str, output: Option<&Path>, layer_history: bool) -> Result<ExitCode> {
    let format: SbomFormat = format.parse().map_err(|e: String| anyhow!(e))?;
    let inv = inventory(ctx, reference, layer_history)?;
    let bytes = if ctx.json {
        let mut v = serde_json::to_vec_pretty(&inv)?;
        v.push(b'\n');
        v
    } else {
        strata_scan::render(&inv, format, &SbomOptions::from_env())
    };
    match output {
        Some(p) => std::fs::write(p, &bytes).with_context(|| format!("write {}", p.display()))?,
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn scan(ctx: &Ctx, reference: &str, db: &Path, format: &str, severity: &str, exit_code: u8) -> Result<ExitCode> {
    let min: Severity = severity.parse().map_err(|e: String| anyhow!(e))?;
    if !matches!(format, "table" | "json" | "sarif") {
        return Err(anyhow!("unknown format {format:?} (table, json, sarif)"));
    }
    let advisories = AdvisoryDb::open(db).with_context(|| format!("advisory database {}", db.display()))?;
    let inv = inventory(ctx, reference, true)?;
    let mut findings = match_inventory(&inv, &advisories);
    findings.retain(|f| f.severity >= min);
    match (format, ctx.json) {
        ("json", _) | (_, true) => print_json(&findings)?,
        ("sarif", _) => print_json(&vuln::sarif(&inv, &findings))?,
        _ => {
            let mut out = std::io::stdout().lock();
            out.write_all(vuln::findings_table(&findings).as_bytes())?;
            writeln!(
                out,
                "\n{} packages, {} advisories read, {} findings at or above {}",
                inv.packages.len(),
                advisories.len(),
                findings.len(),
                min.as_str()
            )?;
        }
    }
    Ok(if findings.is_empty() || exit_code == 0 { ExitCode::SUCCESS } else { ExitCode::from(exit_code) })
}
