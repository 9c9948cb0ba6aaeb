//! `strata`: the command-line image tool over the strata libraries, for people who know
//! docker, podman, umoci, crane and skopeo.
//!
//! Every command is a few lines over `strata-image` (and `strata-registry` for pull,
//! push and login); what it prints is the library's data as a table, or as JSON with
//! `--json`. Errors print one line on stderr, in docker's words where docker has them
//! (`strata: error: No such image: x:latest`), and exit 1; usage errors exit 2. See
//! `strata --help`, or `crates/strata-cli/README.md` for a session.

mod cli;
mod cmd;
mod ctx;
mod deferred;
mod filter;
mod format;
mod outfile;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::ctx::Ctx;

fn main() -> ExitCode {
    // Bad input never reaches a panic; should a bug do so, say it in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("strata: error: internal error (a bug in strata): {msg}{at}");
    }));
    let cli = Cli::parse_from(dive_json_args(std::env::args_os()));
    let ctx = Ctx::new(&cli);
    match cmd::run(&ctx, cli.command) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                // `strata images | head -1`: the reader has what it wanted.
                return ExitCode::SUCCESS;
            }
            eprintln!("strata: error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// dive spells its analysis file `--json FILE` (`-j FILE`), where strata's global `--json`
/// is a switch: after the `dive` command, `--json` takes a file, as `--json-file`.
fn dive_json_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut in_dive = false;
    let mut after_store = false;
    args.into_iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if !in_dive {
                in_dive = s == "dive" && !after_store;
                after_store = s == "--store";
                return a;
            }
            match s.strip_prefix("--json") {
                Some("") => "--json-file".into(),
                Some(rest) if rest.starts_with('=') => format!("--json-file{rest}").into(),
                _ => a,
            }
        })
        .collect()
}

/// The error and its causes on one line: `what failed: caused by why`. A cause whose
/// text the line already contains (library errors often print their source) is skipped;
/// one that contains the whole line replaces it.
pub(crate) fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if text.contains(&line) {
            // The cause says it all, and more (a context that repeats its source's words).
            line = text;
        } else if !text.is_empty() && !line.contains(&text) {
            // An OS or parser error is the reason for what the line says (strata's
            // errors leave it to their source, as `open x` + `No such file`): read as one
            // sentence. Any other cause is a context's underlying failure.
            let reason = cause.is::<std::io::Error>() || cause.is::<serde_json::Error>();
            line.push_str(if reason { ": " } else { ": caused by " });
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == pipe)
            || c.downcast_ref::<serde_json::Error>().is_some_and(|j| j.io_error_kind() == Some(pipe))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dive_takes_json_as_a_file() {
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let cases: [(&[&str], &[&str]); 4] = [
            (&["strata", "dive", "--json", "a.json", "x"], &["strata", "dive", "--json-file", "a.json", "x"]),
            (&["strata", "dive", "--json=a.json", "x"], &["strata", "dive", "--json-file=a.json", "x"]),
            (&["strata", "--json", "layers", "x"], &["strata", "--json", "layers", "x"]),
            (&["strata", "--store", "dive", "--json", "layers"], &["strata", "--store", "dive", "--json", "layers"]),
        ];
        for (given, want) in cases {
            assert_eq!(dive_json_args(args(given)), args(want));
        }
    }
    use anyhow::Context;

    fn io(msg: &str) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, msg.to_owned())
    }

    #[test]
    fn error_lines_are_compact() {
        // context + source: joined with "caused by"
        let e = Err::<(), _>(io("No such file or directory")).context("open t.tar").unwrap_err();
        assert_eq!(error_line(&e), "open t.tar: No such file or directory");
        // a strata error whose Display leaves the OS error to its source: said once
        let e = anyhow::Error::new(strata_image::Error::from(strata_spec::IoError::new(
            "open",
            "/x/t.tar",
            std::io::ErrorKind::NotFound.into(),
        )));
        assert_eq!(error_line(&e), "open /x/t.tar: entity not found");
        // a cause that is not an OS error is introduced as one
        let e = Err::<(), _>(anyhow::anyhow!("bad layer")).context("load t.tar").unwrap_err();
        assert_eq!(error_line(&e), "load t.tar: caused by bad layer");
        // a source the message already shows is not repeated
        let e = Err::<(), _>(io("boom")).context("read x: boom").unwrap_err();
        assert_eq!(error_line(&e), "read x: boom");
        // a source that says more than its context replaces it
        let e = Err::<(), _>(io("invalid reference \"A\": must be lowercase"))
            .context("invalid reference \"A\"")
            .unwrap_err();
        assert_eq!(error_line(&e), "invalid reference \"A\": must be lowercase");
        // always one line
        assert_eq!(error_line(&anyhow::anyhow!("a\nb")), "a b");
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let e = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("write").unwrap_err();
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
        let json = serde_json::to_writer(Pipe, &[1]).unwrap_err();
        assert!(is_broken_pipe(&json.into()));
    }

    struct Pipe;

    impl std::io::Write for Pipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
