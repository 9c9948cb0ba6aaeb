//! The Dockerfile: parsed into stages of typed instructions, with no I/O.
//!
//! [`Dockerfile::parse`] follows docker's parser: parser directives (`# escape=`,
//! `# syntax=`) at the top, comments, line continuations with the escape character
//! (comment lines and empty lines inside a continuation are skipped), instruction
//! keywords in any case, `--flag=value` options, and the JSON (exec) and shell forms.
//! Variables are not substituted here: which instructions substitute, and with which
//! values, is decided while building or committing ([`Lexer`] does the substitution).
//!
//! `strata-build` builds Dockerfiles with it; `docker commit --change` instructions
//! ([`Change`](crate::Change)) are parsed and expanded with it too, so both read an
//! instruction the same way. (`strata_build::dockerfile` re-exports this module.)
//!
//! ```
//! use strata_commit::dockerfile::{Dockerfile, Instruction};
//!
//! let df = Dockerfile::parse("Dockerfile", "FROM alpine AS base\nRUN apk add \\\n    curl\nCMD [\"sh\"]\n")?;
//! assert_eq!(df.stages[0].name.as_deref(), Some("base"));
//! let run = &df.stages[0].instructions[0];
//! assert_eq!(run.line, 2);
//! assert!(matches!(&run.instruction, Instruction::Run(_)));
//! # Ok::<(), strata_commit::dockerfile::ParseError>(())
//! ```

mod lex;
mod parse;

pub use lex::{Lexer, Lookup};
mod mount;

pub use mount::{Mount, MountKind, Sharing};
pub use parse::{ParseError, format_duration, parse_duration, parse_instruction};

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    /// `["executable", "arg"]`, used as is.
    Exec(Vec<String>),
    /// `executable arg`, run through the shell.
    Shell(String),
}

/// The shell of shell-form instructions when the image sets none (docker's, on Linux).
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

impl CommandForm {
    /// The command line: the exec form as it is, the shell form after `shell` (the
    /// image's `SHELL`; [`DEFAULT_SHELL`] when it has none).
    pub fn resolve(&self, shell: Option<&[String]>) -> Vec<String> {
        match self {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut v: Vec<String> = match shell {
                    Some(sh) if !sh.is_empty() => sh.to_vec(),
                    _ => DEFAULT_SHELL.iter().map(|s| (*s).to_owned()).collect(),
                };
                // An empty shell form (`CMD` alone) is the shell with nothing after it.
                if !s.is_empty() {
                    v.push(s.clone());
                }
                v
            }
        }
    }

    /// Whether there is no command at all (`CMD []`, or `CMD` alone).
    pub fn is_empty(&self) -> bool {
        match self {
            CommandForm::Exec(v) => v.is_empty(),
            CommandForm::Shell(s) => s.is_empty(),
        }
    }
}

/// A here-document of `RUN`, `COPY` or `ADD` (BuildKit's Dockerfile syntax 1.4): the
/// lines after the instruction up to the delimiter alone on a line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The word as written on the instruction line (`<<-"EOF"`, `3<<EOF`).
    pub word: String,
    /// The delimiter, quotes removed (`EOF`).
    pub name: String,
    /// The lines between, each ending with a newline, as written (tabs kept).
    pub content: String,
    /// `<<-`: leading tabs are stripped from each line (and the delimiter line).
    pub chomp: bool,
    /// The delimiter was unquoted: variables in the content are expanded (`COPY`,
    /// `ADD`; for `RUN` the shell decides).
    pub expand: bool,
    /// A file descriptor before `<<` (`3<<EOF`), for the shell of a `RUN`.
    pub fd: Option<u32>,
}

impl Heredoc {
    /// The content as it is used: with `<<-`, leading tabs stripped from every line.
    pub fn text(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
    }
}

/// The arguments of `RUN` (unsubstituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// The command as written on the instruction line.
    pub command: CommandForm,
    /// `--mount=...` options, as written (parsed with [`Mount::parse`] once substituted).
    pub mounts: Vec<String>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=sandbox|insecure`.
    pub security: Option<String>,
    /// Here-documents, in the order of their words on the line.
    pub heredocs: Vec<Heredoc>,
}

impl RunArgs {
    /// A plain `RUN` of `command`, no options.
    pub fn new(command: CommandForm) -> Self {
        RunArgs { command, mounts: Vec::new(), network: None, security: None, heredocs: Vec::new() }
    }

    /// What runs, as BuildKit's frontend decides: without heredocs, the command; with one
    /// heredoc that is the whole command (`RUN <<EOF`), its text run by the shell, or
    /// [`RunCommand::Script`] when it starts with `#!`; otherwise the line and the
    /// here-documents joined back together, for the shell to read as heredocs.
    pub fn resolve(&self) -> RunCommand {
        let CommandForm::Shell(line) = &self.command else { return RunCommand::Form(self.command.clone()) };
        match self.heredocs.as_slice() {
            [] => RunCommand::Form(self.command.clone()),
            [one] if line.trim() == one.word && one.fd.is_none() => {
                let text = one.text();
                if text.starts_with("#!") {
                    RunCommand::Script { name: one.name.clone(), content: text }
                } else {
                    RunCommand::Form(CommandForm::Shell(text))
                }
            }
            docs => {
                let mut full = line.clone();
                for d in docs {
                    full.push('\n');
                    full.push_str(&d.content);
                    full.push_str(&d.name);
                }
                RunCommand::Form(CommandForm::Shell(full))
            }
        }
    }
}

/// What a `RUN` runs ([`RunArgs::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// A command, in exec or shell form.
    Form(CommandForm),
    /// A here-document starting with `#!`: written to a file and executed.
    Script {
        /// The file name (the delimiter).
        name: String,
        /// The script.
        content: String,
    },
}

/// The arguments of `COPY` and `ADD` (unsubstituted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Sources (context paths, wildcards, URLs for `ADD`).
    pub sources: Vec<String>,
    /// Destination (absolute, or relative to the working directory).
    pub dest: String,
    /// `--from=stage|index|image` (`COPY` only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=octal`.
    pub chmod: Option<String>,
    /// `--checksum=algorithm:hex` (`ADD` of a URL only, as in BuildKit).
    pub checksum: Option<String>,
    /// `--link`: the layer is independent of what is below it.
    pub link: bool,
    /// `--parents` (`COPY` only): source paths keep their parent directories.
    pub parents: bool,
    /// `--exclude=pattern` (repeatable): paths left out of the sources.
    pub exclude: Vec<String>,
    /// Here-documents among the sources (`COPY <<EOF /path`), matched to the source
    /// words by [`Heredoc::word`].
    pub heredocs: Vec<Heredoc>,
}

impl CopyArgs {
    /// The here-document a source word stands for, if it is one.
    pub fn heredoc(&self, source: &str) -> Option<&Heredoc> {
        self.heredocs.iter().find(|h| h.word == source)
    }
}

/// `HEALTHCHECK` options and command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthcheckArgs {
    /// The test: `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    /// `--interval`, nanoseconds.
    pub interval: Option<u64>,
    /// `--timeout`, nanoseconds.
    pub timeout: Option<u64>,
    /// `--start-period`, nanoseconds.
    pub start_period: Option<u64>,
    /// `--start-interval`, nanoseconds.
    pub start_interval: Option<u64>,
    /// `--retries`.
    pub retries: Option<u64>,
}

impl HealthcheckArgs {
    /// The `Healthcheck` of an image config (docker's field names; durations in
    /// nanoseconds, zero ones left out).
    pub fn to_config(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("Test".into(), serde_json::json!(self.test));
        for (k, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ] {
            if let Some(v) = v.filter(|v| *v != 0) {
                m.insert(k.into(), serde_json::json!(v));
            }
        }
        serde_json::Value::Object(m)
    }
}

impl std::fmt::Display for HealthcheckArgs {
    /// As an instruction's arguments: `--interval=5s CMD ["true"]`, `NONE`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, v) in [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("start-period", self.start_period),
            ("start-interval", self.start_interval),
        ] {
            if let Some(v) = v {
                write!(f, "--{name}={} ", format_duration(v))?;
            }
        }
        if let Some(r) = self.retries {
            write!(f, "--retries={r} ")?;
        }
        match self.test.split_first() {
            Some((kind, [cmd])) if kind == "CMD-SHELL" => write!(f, "CMD {cmd}"),
            Some((kind, args)) if kind == "CMD" => write!(f, "CMD {}", serde_json::to_string(args).unwrap_or_default()),
            _ => f.write_str(&self.test.join(" ")),
        }
    }
}

/// One instruction, as written (variables not substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM [--platform=P] image [AS name]`.
    From {
        /// The image (or stage name, or `scratch`).
        image: String,
        /// `AS name`, lower-cased.
        name: Option<String>,
        /// `--platform`.
        platform: Option<String>,
    },
    /// `ARG name[=default] ...`.
    Arg(Vec<(String, Option<String>)>),
    /// `ENV key=value ...` (raw words, quotes kept for substitution).
    Env(Vec<(String, String)>),
    /// `LABEL key=value ...` (raw words).
    Label(Vec<(String, String)>),
    /// `RUN`.
    Run(RunArgs),
    /// `CMD`.
    Cmd(CommandForm),
    /// `ENTRYPOINT`.
    Entrypoint(CommandForm),
    /// `COPY`.
    Copy(CopyArgs),
    /// `ADD`.
    Add(CopyArgs),
    /// `WORKDIR path`.
    Workdir(String),
    /// `USER user[:group]`.
    User(String),
    /// `EXPOSE port[/proto] ...` (raw words).
    Expose(Vec<String>),
    /// `VOLUME path ...` or `VOLUME ["path"]`.
    Volume(Vec<String>),
    /// `STOPSIGNAL signal`.
    StopSignal(String),
    /// `SHELL ["executable", "arg"]`.
    Shell(Vec<String>),
    /// `HEALTHCHECK [options] CMD ...` or `HEALTHCHECK NONE`.
    Healthcheck(HealthcheckArgs),
    /// `ONBUILD instruction`: the trigger as written.
    OnBuild(String),
    /// `MAINTAINER name` (deprecated): the image's author.
    Maintainer(String),
}

impl Instruction {
    /// The keyword (`COPY`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Arg(_) => "ARG",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Shell(_) => "SHELL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::OnBuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// An instruction with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned {
    /// Line of the instruction's keyword (1-based).
    pub line: usize,
    /// The instruction as written, continuation lines joined (what `Step n/m :` shows).
    pub text: String,
    /// The parsed instruction.
    pub instruction: Instruction,
}

/// A build stage: a `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The `FROM` instruction.
    pub from: Spanned,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The instructions after `FROM`.
    pub instructions: Vec<Spanned>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The file name used in errors.
    pub file: String,
    /// The escape character (`\` unless `# escape=` said otherwise).
    pub escape: char,
    /// The `# syntax=` directive, if any: the standard Dockerfile frontend
    /// (`docker/dockerfile:1`...), whose syntax strata implements; any other is an error.
    pub syntax: Option<String>,
    /// The `# check=` directive, if any (accepted and recorded; strata runs no checks).
    pub check: Option<String>,
    /// `ARG` instructions before the first `FROM` (usable in `FROM` lines).
    pub global_args: Vec<Spanned>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Things docker warns about (empty continuation lines).
    pub warnings: Vec<String>,
}

impl Dockerfile {
    /// Parse `text`; `file` names it in errors (`Dockerfile:7: ...`).
    pub fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
        parse::parse(file, text)
    }

    /// The lexer for this file's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// The index of the stage `name` (a stage name, case-insensitive, or an index).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < self.stages.len()))
    }
}
