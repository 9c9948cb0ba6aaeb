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

fn inventory(ctx: &Ctx, img: &strata_image::Image, opts: &ScanOptions) -> Result<Inventory> {
    let spinner = Bars::new(ctx).spinner("reading packages");
    let inv = Inventory::of_image(img, opts)?;
    spinner.finish_and_clear();
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    Ok(inv)
}

pub fn sbom(
    ctx: &Ctx,
    reference: &str,
    format: &str,
    output: Option<&Path>,
    scan: &ScanOptions,
    attach: bool,
) -> Result<ExitCode> {
    let mut format: SbomFormat = format.parse().map_err(|e: String| anyhow!(e))?;
    if attach && format == SbomFormat::Table {
        format = SbomFormat::SpdxJson;
    }
    let store = if attach { ctx.write_store()? } else { ctx.read_store()? };
    let img = store.image(reference)?;
    // One creation time for the file written and the artifact stored.
    let opts = SbomOptions::from_env().pinned();
    if !attach && !ctx.json {
        // Straight from the image's scan record when it has one.
        let spinner = Bars::new(ctx).spinner("reading packages");
        let sbom = strata_scan::render_image(&img, scan, format, &opts)?;
        spinner.finish_and_clear();
        for w in &sbom.warnings {
            eprintln!("warning: {w}");
        }
        write_out(output, &sbom.document)?;
        return Ok(ExitCode::SUCCESS);
    }
    let inv = inventory(ctx, &img, scan)?;
    if attach {
        let desc = strata_scan::attach(&img, &inv, format, &opts)?;
        if let Some(p) = output {
            std::fs::write(p, strata_scan::render(&inv, format, &opts))
                .with_context(|| format!("write {}", p.display()))?;
        }
        if ctx.json {
            print_json(&desc)?;
        } else {
            println!("{}", desc.digest);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut bytes = serde_json::to_vec_pretty(&inv)?;
    bytes.push(b'\n');
    write_out(output, &bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// `bytes` to the file `output`, or in one write to stdout.
fn write_out(output: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match output {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("write {}", p.display()))?,
        None => std::io::stdout().lock().write_all(bytes)?,
    }
    Ok(())
}

pub fn referrers(ctx: &Ctx, reference: &str, artifact_type: Option<&str>) -> Result<ExitCode> {
    let img = ctx.read_store()?.image(reference)?;
    let kind = artifact_type.map(strata_spec::MediaType::new);
    let index = img.referrers(kind.as_ref())?;
    if ctx.json {
        print_json(&index)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<73} {:<34} {:>8}  CREATED", "DIGEST", "ARTIFACT TYPE", "SIZE")?;
    for d in &index.manifests {
        let kind = d.artifact_type.as_ref().map_or("-", |t| t.as_str());
        let created = d.annotation(strata_scan::ANNOTATION_CREATED).unwrap_or("-");
        writeln!(out, "{:<73} {kind:<34} {:>8}  {created}", d.digest.as_str(), d.size)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn scan(
    ctx: &Ctx,
    reference: &str,
    db: &Path,
    format: &str,
    severity: &str,
    exit_code: u8,
    opts: &ScanOptions,
) -> Result<ExitCode> {
    let min: Severity = severity.parse().map_err(|e: String| anyhow!(e))?;
    if !matches!(format, "table" | "json" | "sarif") {
        return Err(anyhow!("unknown format {format:?} (table, json, sarif)"));
    }
    let advisories = AdvisoryDb::open(db).with_context(|| format!("advisory database {}", db.display()))?;
    let img = ctx.read_store()?.image(reference)?;
    let inv = inventory(ctx, &img, opts)?;
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
