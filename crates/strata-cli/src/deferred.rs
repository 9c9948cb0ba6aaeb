//! A subcommand's arguments, added to its `clap::Command` only when that subcommand is
//! built.
//!
//! clap builds the whole command tree before parsing: every subcommand with every
//! argument, although one runs. [`Deferred`] hands a subcommand's arguments to
//! [`clap::Command::defer`], which adds them when clap builds that subcommand: when it
//! is the one invoked, for its help, and for completions (`Command::build` builds them
//! all). What a user sees is the same; a run pays for one subcommand's arguments.

use std::ops::{Deref, DerefMut};

use clap::builder::Resettable;
use clap::{ArgMatches, Args, Command, FromArgMatches};

/// The arguments `T` of a subcommand, added to it only when clap builds it.
///
/// The variant `Images(Deferred<ImagesArgs>)` parses as `Images(ImagesArgs)` would;
/// match it as `Command::Images(Deferred(ImagesArgs { .. }))`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deferred<T>(pub T);

impl<T> Deref for Deferred<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Deferred<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }

    fn augment_args(cmd: Command) -> Command {
        cmd.defer(add_args::<T>)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(add_args_for_update::<T>)
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

fn add_args<T: Args>(cmd: Command) -> Command {
    as_if_added_first(cmd, T::augment_args)
}

fn add_args_for_update<T: Args>(cmd: Command) -> Command {
    as_if_added_first(cmd, T::augment_args_for_update)
}

/// `augment(cmd)`, with `cmd` as it would be had the arguments been added when it was
/// made rather than when it is built:
/// - the arguments come before the ones `cmd` has by now: the parent's global arguments
///   (`--store`, `--quiet`, `--json`), which clap copies into each subcommand before it
///   builds it. Completion scripts list arguments in this order.
/// - the about text stays the variant's: a derived `Args` struct's doc comment is an
///   about text too, which clap would otherwise apply after the variant's.
fn as_if_added_first(cmd: Command, augment: fn(Command) -> Command) -> Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let before = cmd.get_arguments().count();
    let cmd = augment(cmd).about(Resettable::from(about)).long_about(Resettable::from(long_about));
    let mut args: Vec<clap::Arg> = cmd.get_arguments().cloned().collect();
    args.rotate_left(before);
    let mut args = args.into_iter();
    // Same count in and out: each argument is replaced by the one due at its place.
    cmd.mut_args(|a| args.next().unwrap_or(a))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser, Subcommand};

    use super::*;

    /// The arguments of `app show` (this doc comment must not become its about).
    #[derive(Debug, Args, PartialEq)]
    struct ShowArgs {
        /// The thing
        #[arg(value_name = "THING")]
        thing: String,
        /// Say more
        #[arg(short, long)]
        verbose: bool,
        /// How many
        #[arg(long, default_value_t = 3)]
        count: u32,
    }

    #[derive(Debug, Parser)]
    #[command(name = "app", version)]
    struct Inline {
        /// Where
        #[arg(long, global = true)]
        store: Option<String>,
        #[command(subcommand)]
        command: InlineCommand,
    }

    #[derive(Debug, Subcommand)]
    enum InlineCommand {
        /// Show a thing
        ///
        /// At length.
        #[command(after_help = "Example: app show x")]
        Show {
            /// The thing
            #[arg(value_name = "THING")]
            thing: String,
            /// Say more
            #[arg(short, long)]
            verbose: bool,
            /// How many
            #[arg(long, default_value_t = 3)]
            count: u32,
        },
    }

    #[derive(Debug, Parser)]
    #[command(name = "app", version)]
    struct WithDefer {
        /// Where
        #[arg(long, global = true)]
        store: Option<String>,
        #[command(subcommand)]
        command: DeferredCommand,
    }

    #[derive(Debug, Subcommand)]
    enum DeferredCommand {
        /// Show a thing
        ///
        /// At length.
        #[command(after_help = "Example: app show x")]
        Show(Deferred<ShowArgs>),
    }

    /// What parsed, as `(store, thing, verbose, count)`.
    type Parsed = (Option<String>, String, bool, u32);

    /// What a user sees for `argv`: what parsed, or the help or error clap prints.
    fn seen<P: Parser>(argv: &[&str], parsed: fn(P) -> Parsed) -> Result<Parsed, String> {
        P::try_parse_from(argv)
            .map(parsed)
            .map_err(|e| format!("{:?} exit {}\n{}", e.kind(), e.exit_code(), e.render()))
    }

    fn inline(argv: &[&str]) -> Result<Parsed, String> {
        seen(argv, |p: Inline| {
            let InlineCommand::Show { thing, verbose, count } = p.command;
            (p.store, thing, verbose, count)
        })
    }

    fn deferred(argv: &[&str]) -> Result<Parsed, String> {
        seen(argv, |p: WithDefer| {
            let DeferredCommand::Show(Deferred(ShowArgs { thing, verbose, count })) = p.command;
            (p.store, thing, verbose, count)
        })
    }

    fn completions(mut cmd: Command, shell: clap_complete::Shell) -> String {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "app", &mut script);
        String::from_utf8(script).unwrap_or_default()
    }

    #[test]
    fn a_deferred_subcommand_looks_and_parses_as_an_inline_one() {
        let cases: &[&[&str]] = &[
            &["app", "--help"],
            &["app", "show", "--help"],
            &["app", "show", "-h"],
            &["app", "help", "show"],
            &["app", "show"],
            &["app", "show", "--bogus"],
            &["app", "show", "x", "--count", "many"],
            &["app", "show", "--version"],
            &["app", "--store", "s", "show", "x", "-v", "--count", "5"],
            &["app", "show", "x"],
        ];
        for argv in cases {
            assert_eq!(inline(argv), deferred(argv), "{argv:?}");
        }
        // The deferred arguments did parse (not only the same error twice), and the
        // help is the variant's.
        assert_eq!(deferred(&["app", "show", "x", "-v"]), Ok((None, "x".into(), true, 3)));
        let help = deferred(&["app", "show", "--help"]).unwrap_err();
        assert!(help.contains("At length.") && help.contains("Say more"), "{help}");
    }

    #[test]
    fn completion_scripts_are_the_same_with_deferred_arguments() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let (inline, deferred) = (completions(Inline::command(), shell), completions(WithDefer::command(), shell));
            assert!(deferred.contains("verbose"), "{shell}");
            assert_eq!(inline, deferred, "{shell}");
        }
    }

    #[test]
    fn strata_command_tree_is_consistent() {
        // Builds every subcommand (running the deferred parts) and checks clap's rules.
        crate::cli::Cli::command().debug_assert();
    }
}
