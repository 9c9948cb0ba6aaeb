//! The commands, each a few lines over the library.

mod archive;
mod build;
mod container;
mod dive;
mod images;
mod merged;
mod registry;
mod run;
mod scan;

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{
    AppendArgs, BuildArgs, CatArgs, Cli, Command, CommitArgs, CommitMeta, CompletionsArgs, ConfigArgs,
    ContainerMonitorArgs, CreateArgs, DiffArgs, DiveArgs, ExecArgs, ExportArgs, FlattenArgs, FsckArgs, GcArgs,
    HistoryArgs, ImagesArgs, ImportArgs, InspectArgs, KillArgs, LayersArgs, LoadArgs, LoginArgs, LogsArgs, LsArgs,
    PsArgs, PullArgs, PushArgs, ReferrersArgs, RmArgs, RmiArgs, RunArgs, SaveArgs, SbomArgs, ScanArgs, Shell,
    StartArgs, StopArgs, TagArgs, UnpackArgs, WaitArgs,
};
use crate::ctx::Ctx;
use crate::deferred::Deferred;

/// Run one command. `Ok` carries the exit code of a command that ran to the end but has
/// a verdict to report (`fsck` with problems, `inspect` with a missing image).
pub fn run(ctx: &Ctx, command: Command) -> Result<ExitCode> {
    match command {
        Command::Images(Deferred(ImagesArgs { reference, all, filters, digests, no_trunc, format })) => {
            let filters = crate::filter::ImageFilters::new(&filters, reference.as_deref())?;
            let how = images::ListImages { filters, all, digests, no_trunc, format: format_of(ctx, format) };
            images::images(ctx, &how)
        }
        Command::Inspect(Deferred(InspectArgs { refs, format })) => {
            images::inspect(ctx, &refs, format_of(ctx, crate::cli::FormatArg { format }))
        }
        Command::History(Deferred(HistoryArgs { reference, no_trunc, human, format })) => {
            images::history(ctx, &reference, no_trunc, human, format_of(ctx, format).as_deref())
        }
        Command::Tag(Deferred(TagArgs { source, target })) => images::tag(ctx, &source, &target),
        Command::Rmi(Deferred(RmiArgs { refs, force, no_prune })) => images::rmi(ctx, &refs, force, no_prune),
        Command::Gc(Deferred(GcArgs { dry_run, force })) => images::gc(ctx, dry_run, force),
        Command::Fsck(Deferred(FsckArgs { deep, quick })) => images::fsck(ctx, deep, quick),
        Command::Unpack(Deferred(UnpackArgs { reference, dir, rootless, raw, no_runtime_config, platform, plan })) => {
            let plan = match plan {
                crate::cli::Plan::Auto => strata_image::PlanMode::Auto,
                crate::cli::Plan::Always => strata_image::PlanMode::Always,
                crate::cli::Plan::Never => strata_image::PlanMode::Never,
            };
            let what = container::UnpackWhat { rootless, raw, runtime_config: !no_runtime_config, plan };
            container::unpack(ctx, &reference, &dir, what, platform.as_deref())
        }
        Command::Diff(Deferred(DiffArgs { dir, format })) => {
            container::diff(ctx, &dir, format_of(ctx, format).as_deref())
        }
        Command::Commit(Deferred(CommitArgs { dir, new_ref, meta, pause })) => {
            container::commit(ctx, &dir, &new_ref, &meta, pause)
        }
        Command::Run(Deferred(RunArgs { detach, rm, create })) => run::run(ctx, &create, detach, rm),
        Command::Create(Deferred(CreateArgs { rm, create })) => run::create(ctx, &create, rm),
        Command::Start(Deferred(StartArgs { attach, interactive: _, containers })) => {
            run::start(ctx, &containers, attach)
        }
        Command::Ps(Deferred(PsArgs { all, no_trunc, format })) => {
            run::ps(ctx, all, ctx.quiet, no_trunc, format_of(ctx, format).as_deref())
        }
        Command::Exec(Deferred(ExecArgs { interactive: _, tty, env, user, workdir, container, command })) => {
            let opts = run::exec_options(command, tty, env, user, workdir);
            run::exec(ctx, &container, &opts)
        }
        Command::Stop(Deferred(StopArgs { time, containers })) => run::stop(ctx, &containers, time),
        Command::Kill(Deferred(KillArgs { signal, containers })) => run::kill(ctx, &containers, &signal),
        Command::Rm(Deferred(RmArgs { force, containers })) => run::rm(ctx, &containers, force),
        Command::Logs(Deferred(LogsArgs { follow, container })) => run::logs(ctx, &container, follow),
        Command::Wait(Deferred(WaitArgs { containers })) => run::wait(ctx, &containers),
        Command::ContainerMonitor(Deferred(ContainerMonitorArgs { args })) => {
            let code = strata_image::containers::monitor_main(args);
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
        }
        Command::Save(Deferred(SaveArgs { refs, output, format })) => {
            archive::save(ctx, &refs, output.as_deref(), format)
        }
        Command::Load(Deferred(LoadArgs { input })) => archive::load(ctx, input.as_deref()),
        Command::Import(Deferred(ImportArgs { source, new_ref, meta })) => {
            archive::import(ctx, &source, &new_ref, &meta)
        }
        Command::Append(Deferred(AppendArgs { reference, source, new_ref, meta })) => {
            archive::append(ctx, &reference, &source, &new_ref, &meta)
        }
        Command::Config(Deferred(ConfigArgs { reference, new_ref, meta })) => {
            archive::config(ctx, &reference, &new_ref, &meta)
        }
        Command::Export(Deferred(ExportArgs { reference, output })) => {
            merged::export(ctx, &reference, output.as_deref())
        }
        Command::Ls(Deferred(LsArgs { reference, path, format })) => {
            merged::ls(ctx, &reference, path.as_deref(), format_of(ctx, format).as_deref())
        }
        Command::Cat(Deferred(CatArgs { reference, path })) => merged::cat(ctx, &reference, &path),
        Command::Layers(Deferred(LayersArgs { reference, format })) => {
            merged::layers(ctx, &reference, format_of(ctx, format).as_deref())
        }
        Command::Dive(Deferred(DiveArgs {
            reference,
            archive,
            ci,
            ci_config,
            json_file,
            lowest_efficiency,
            highest_wasted_bytes,
            highest_user_wasted_percent,
            keep,
            registry,
        })) => {
            let flags = dive::RuleValues { lowest_efficiency, highest_wasted_bytes, highest_user_wasted_percent };
            let source = match (reference, archive) {
                (_, Some(a)) => dive::Source::Archive(a),
                (Some(r), None) => dive::Source::Store(r),
                (None, None) => anyhow::bail!("strata dive needs an image reference or --archive FILE"),
            };
            let ci = ci || std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
            let pull = dive::Pull { keep, registry: registry::registry_options(&registry) };
            dive::dive(ctx, &source, &pull, ci, ci_config.as_deref(), json_file.as_deref(), flags)
        }
        Command::Flatten(Deferred(FlattenArgs { reference, new_ref })) => merged::flatten(ctx, &reference, &new_ref),
        Command::Sbom(Deferred(SbomArgs {
            reference,
            format,
            output,
            no_layer_history,
            no_cache,
            no_image_cache,
            attach,
        })) => {
            let opts = strata_scan::ScanOptions::default()
                .layer_history(!no_layer_history)
                .cache(!no_cache)
                .image_cache(!no_image_cache);
            scan::sbom(ctx, &reference, &format, output.as_deref(), &opts, attach)
        }
        Command::Referrers(Deferred(ReferrersArgs { reference, artifact_type })) => {
            scan::referrers(ctx, &reference, artifact_type.as_deref())
        }
        Command::Scan(Deferred(ScanArgs { reference, db, format, severity, exit_code, no_cache })) => {
            let opts = strata_scan::ScanOptions::default().cache(!no_cache);
            scan::scan(ctx, &reference, &db, &format, &severity, exit_code, &opts)
        }
        Command::Pull(Deferred(PullArgs { reference, platform, all_platforms, referrers, registry })) => {
            registry::pull(ctx, &reference, platform.as_deref(), all_platforms, referrers, &registry)
        }
        Command::Push(Deferred(PushArgs { local, dest, no_referrers, registry })) => {
            registry::push(ctx, &local, dest.as_deref(), !no_referrers, &registry)
        }
        Command::Login(Deferred(LoginArgs { registry, username, password_stdin, registry_args })) => {
            registry::login(ctx, &registry, &username, password_stdin, &registry_args)
        }
        Command::Build(Deferred(BuildArgs {
            context,
            tags,
            file,
            build_args,
            target,
            no_cache,
            network,
            allow_url_fetch,
            buildkit,
            registry,
        })) => {
            let flags = build::Flags { no_cache, network, allow_url_fetch, features: buildkit };
            build::build(ctx, &context, &tags, file, &build_args, target, flags, &registry)
        }
        Command::Builder { command: crate::cli::BuilderCommand::Prune { keep } } => build::prune(ctx, keep),
        Command::Completions(Deferred(CompletionsArgs { shell })) => completions(shell),
    }
}

/// `--format`, refused next to `--json` (which keeps its own shape for scripts). An
/// empty one is no format, as in docker.
fn format_of(ctx: &Ctx, arg: crate::cli::FormatArg) -> Option<String> {
    let arg = crate::cli::FormatArg { format: arg.format.filter(|f| !f.is_empty()) };
    if ctx.json && arg.format.is_some() {
        let mut cmd = Cli::command();
        cmd.error(clap::error::ErrorKind::ArgumentConflict, "--format and --json cannot be used together").exit();
    }
    arg.format
}

fn completions(shell: Shell) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Into a buffer first: clap_complete panics on a write error (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "strata", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
    Ok(ExitCode::SUCCESS)
}

/// Commit options from `-m`, `-a`, `-c` and the new tag; a bad `-c` names the
/// instructions allowed.
pub fn commit_options(meta: &CommitMeta, new_ref: &str) -> Result<strata_image::CommitOptions> {
    // The new tag first, before any work (docker's message when it is not one).
    strata_image::new_tag(new_ref)?;
    let mut opts = strata_image::CommitOptions::default().tag(new_ref);
    if let Some(m) = &meta.message {
        opts = opts.message(m.clone());
    }
    if let Some(a) = &meta.author {
        opts = opts.author(a.clone());
    }
    for c in &meta.changes {
        let change = strata_image::Change::parse(c)?;
        opts.changes.push(change);
    }
    Ok(opts)
}
