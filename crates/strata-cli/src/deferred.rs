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
