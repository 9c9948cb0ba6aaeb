//! Containers through an OCI runtime: run, create, start, ps, exec, stop, kill, rm,
//! logs, wait. Each is a few lines over `strata_image::containers`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use strata_image::containers::{
    BindMount, ContainerRecord, Containers, CreateOptions, ExecOptions, Network, PortMapping, Status, parse_env,
};
use strata_image::{ProcessOverrides, human_duration, time_ago};
use strata_spec::time::parse_rfc3339;

use crate::cli::ContainerArgs;
use crate::ctx::Ctx;
use crate::format::{Format, Listing};
use crate::output::{docker_time, now, print_json, truncate};

/// docker's exit code when `run` itself fails.
const RUN_FAILED: u8 = 125;

/// The store's containers, monitored by this program (`strata container-monitor`).
fn containers(ctx: &Ctx) -> Result<Containers> {
    let store = ctx.write_store()?;
    let exe = std::env::current_exe().context("find the strata program (for the container monitor)")?;
    Ok(store.containers()?.monitor(vec![exe.into(), "container-monitor".into()]))
}

/// The containers for a command that only reads: none when the store does not exist.
fn read_containers(ctx: &Ctx) -> Result<Option<Containers>> {
    let store = ctx.read_store()?;
    if store.path().is_none() {
        return Ok(None);
    }
    Ok(Some(store.containers()?))
}

/// Print an error as main does, and exit with `code`.
fn fail(e: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("strata: error: {}", crate::error_line(e));
    ExitCode::from(code)
}

/// docker's exit code for a failed run: 126 or 127 when the command could not be
/// executed, 125 otherwise.
fn run_failure(e: &anyhow::Error) -> ExitCode {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<strata_image::Error>())
        .map_or(i32::from(RUN_FAILED), strata_image::Error::exit_code);
    fail(e, u8::try_from(code).unwrap_or(RUN_FAILED))
}

fn create_options(args: &ContainerArgs, rm: bool) -> Result<CreateOptions> {
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("open env file {}", file.display()))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            env.extend(parse_env(line, |k| std::env::var(k).ok())?);
        }
    }
    for e in &args.env {
        env.extend(parse_env(e, |k| std::env::var(k).ok())?);
    }
    let mut process = ProcessOverrides::default();
    process.user = args.user.clone();
    process.env = env;
    process.cwd = args.workdir.clone();
    process.entrypoint = args.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] });
    process.cmd = args.command.clone();
    process.hostname = args.hostname.clone();
    process.terminal = args.tty;
    let mut opts = CreateOptions::default();
    opts.name = args.name.clone();
    opts.process = process;
    opts.interactive = args.interactive;
    opts.auto_remove = rm;
    opts.network = Network::parse(&args.network)?;
    opts.ports = args.publish.iter().map(|p| PortMapping::parse(p)).collect::<Result<_, _>>()?;
    opts.mounts = args.volumes.iter().map(|v| BindMount::parse(v)).collect::<Result<_, _>>()?;
    opts.runtime = args.runtime.clone();
    if opts.network == Network::Host && !opts.ports.is_empty() {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
        opts.ports.clear();
    }
    Ok(opts)
}

fn create_container(ctx: &Ctx, args: &ContainerArgs, rm: bool) -> Result<(Containers, ContainerRecord)> {
    let opts = create_options(args, rm)?;
    let containers = containers(ctx)?;
    let image = containers.store().image(&args.image)?;
    let rec = containers.create(&image, &args.image, &opts)?;
    Ok((containers, rec))
}

pub fn create(ctx: &Ctx, args: &ContainerArgs, rm: bool) -> Result<ExitCode> {
    match create_container(ctx, args, rm) {
        Ok((_, rec)) => {
            writeln!(std::io::stdout().lock(), "{}", rec.id)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(run_failure(&e)),
    }
}

pub fn run(ctx: &Ctx, args: &ContainerArgs, detach: bool, rm: bool) -> Result<ExitCode> {
    let started = (|| -> Result<Result<ContainerRecord, strata_image::containers::Attached>> {
        let (containers, rec) = create_container(ctx, args, rm)?;
        let result =
            if detach { containers.start(&rec.id).map(Ok) } else { containers.start_attached(&rec.id).map(Err) };
        if result.is_err() && rm {
            // docker removes a --rm container that could not start.
            let _ = containers.remove(&rec.id, true);
        }
        Ok(result?)
    })();
    match started {
        Ok(Ok(rec)) => {
            writeln!(std::io::stdout().lock(), "{}", rec.id)?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(attached)) => match attached.relay() {
            Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(255))),
            Err(e) => Ok(run_failure(&e.into())),
        },
        Err(e) => Ok(run_failure(&e)),
    }
}

pub fn start(ctx: &Ctx, names: &[String], attach: bool) -> Result<ExitCode> {
    let containers = containers(ctx)?;
    if attach {
        // docker attaches to one container only.
        let [name] = names else { anyhow::bail!("you cannot start and attach multiple containers at once") };
        let attached = containers.start_attached(name)?;
        let code = attached.relay()?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)));
    }
    each(names, |n| {
        containers.start(n)?;
        Ok(n.to_owned())
    })
}

/// Do `f` for each name, printing what it returns; the failures are printed and make
/// the exit code 1 (docker goes on with the next name).
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<String>) -> Result<ExitCode> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(line) => writeln!(std::io::stdout().lock(), "{line}")?,
            Err(e) => {
                eprintln!("strata: error: {}", crate::error_line(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn stop(ctx: &Ctx, names: &[String], time: u64) -> Result<ExitCode> {
    let containers = containers(ctx)?;
    each(names, |n| {
        containers.stop(n, Duration::from_secs(time))?;
        Ok(n.to_owned())
    })
}

pub fn kill(ctx: &Ctx, names: &[String], signal: &str) -> Result<ExitCode> {
    let containers = containers(ctx)?;
    each(names, |n| {
        containers.kill(n, signal).map_err(|e| anyhow::anyhow!("Cannot kill container: {n}: {e}"))?;
        Ok(n.to_owned())
    })
}

pub fn rm(ctx: &Ctx, names: &[String], force: bool) -> Result<ExitCode> {
    let containers = containers(ctx)?;
    each(names, |n| {
        containers.remove(n, force)?;
        Ok(n.to_owned())
    })
}

pub fn wait(ctx: &Ctx, names: &[String]) -> Result<ExitCode> {
    let containers = containers(ctx)?;
    each(names, |n| Ok(containers.wait(n)?.to_string()))
}

pub fn exec_options(
    command: Vec<String>,
    tty: bool,
    env: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
) -> ExecOptions {
    let mut o = ExecOptions::default();
    o.args = command;
    o.tty = tty;
    o.env = env;
    o.user = user;
    o.workdir = workdir;
    o
}

pub fn exec(ctx: &Ctx, name: &str, opts: &ExecOptions) -> Result<ExitCode> {
    let containers = containers(ctx)?;
    match containers.exec(name, opts) {
        Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(255))),
        // docker: 126 when the runtime could not run the command.
        Err(e @ strata_image::Error::Runtime { .. }) => Ok(fail(&e.into(), 126)),
        Err(e) => Err(e.into()),
    }
}

pub fn logs(ctx: &Ctx, name: &str, follow: bool) -> Result<ExitCode> {
    let Some(containers) = read_containers(ctx)? else {
        anyhow::bail!(strata_image::Error::ContainerNotFound(name.to_owned()));
    };
    let (out, err) = containers.logs(name)?;
    let mut offsets = (0u64, 0u64);
    loop {
        let running = follow && containers.get(name).is_ok_and(|r| r.state.status == Status::Running);
        offsets.0 = copy_from(&out, offsets.0, &mut std::io::stdout().lock())?;
        offsets.1 = copy_from(&err, offsets.1, &mut std::io::stderr().lock())?;
        if !running {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Copy what `path` has past `offset` to `out`; the new offset.
fn copy_from(path: &std::path::Path, offset: u64, out: &mut impl Write) -> Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    out.write_all(&buf)?;
    out.flush()?;
    Ok(offset + buf.len() as u64)
}

/// `ps` rows: docker's fields, in the order `table` shows them.
const PS: Listing = Listing {
    row_type: "*formatter.ContainerContext",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
        ("State", "STATE"),
        ("Networks", "NETWORKS"),
        ("Mounts", "MOUNTS"),
        ("Labels", "LABELS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Size", "SIZE"),
    ],
};

const PS_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn ps(ctx: &Ctx, all: bool, ids_only: bool, no_trunc: bool, format: Option<&str>) -> Result<ExitCode> {
    let list = match read_containers(ctx)? {
        Some(c) => c.list()?,
        None => Vec::new(),
    };
    let shown: Vec<&ContainerRecord> = list.iter().filter(|r| all || r.state.status == Status::Running).collect();
    let now = now();
    let rows: Vec<Value> = shown.iter().map(|r| ps_row(r, now, !no_trunc)).collect();
    let mut out = std::io::stdout().lock();
    if ids_only {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    Format::parse(format.unwrap_or("table"), PS_TABLE)?.print(&PS, &rows, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// One `ps` row, as docker's formatter gives it (`trunc`: short id, command cut at 20).
fn ps_row(r: &ContainerRecord, now: i64, trunc: bool) -> Value {
    let secs = |t: &Option<String>| t.as_deref().and_then(parse_rfc3339).map(|(s, _)| s);
    let created = parse_rfc3339(&r.created).map_or(now, |(s, _)| s);
    // go-units' durations are Go's, in nanoseconds.
    let since = |t: &Option<String>| human_duration((now - secs(t).unwrap_or(now)).saturating_mul(1_000_000_000));
    let status = match r.state.status {
        Status::Running => format!("Up {}", since(&r.state.started)),
        Status::Exited => format!("Exited ({}) {} ago", r.state.exit_code.unwrap_or(0), since(&r.state.finished)),
        _ => "Created".to_owned(),
    };
    // docker quotes the arguments that have spaces, then the whole command.
    let command: Vec<String> =
        r.command.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
    let command = command.join(" ");
    let command = if trunc { truncate(&command, 20) } else { command };
    // Published while it runs only, as in docker.
    let ports: Vec<String> = match (r.config.network, r.state.status) {
        (Network::None, Status::Running) => r.config.ports.iter().map(PortMapping::display).collect(),
        _ => Vec::new(),
    };
    json!({
        "ID": if trunc { &r.id[..12] } else { r.id.as_str() },
        "Image": r.image,
        "Command": format!("{command:?}"),
        "CreatedAt": docker_time(&r.created),
        "RunningFor": time_ago(created, now),
        "Status": status,
        "Ports": ports.join(", "),
        "Names": r.name,
        "State": r.state.status.as_str(),
        "Networks": r.config.network.as_str(),
        "Mounts": r.config.mounts.iter().map(|m| m.source.display().to_string()).collect::<Vec<_>>().join(","),
        "Labels": "",
        "LocalVolumes": "0",
        "Size": "0B",
    })
}
