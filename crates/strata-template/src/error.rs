//! Errors, worded as Go's text/template words them (docker prints these after
//! `template parsing error: `).

use std::fmt::{self, Display, Formatter};

/// A template that does not parse, or that failed while executing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The text does not parse: `template: :1: unexpected "}" in operand`.
    Parse {
        /// Line (from 1) of the token where parsing stopped.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Executing failed: `template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"`.
    Exec {
        /// The template executing (`""` for the main one, or a `define`d name).
        template: String,
        /// Where: line (from 1), byte column (from 0, as Go counts), and the node as written.
        at: Option<Location>,
        /// What went wrong.
        message: String,
    },
}

/// Where in the template text an execution error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Byte offset in the line, from 0 (Go's column).
    pub column: usize,
    /// The node as the template spells it (`.Config.Nope`, `index .RepoTags 5`).
    pub context: String,
}

impl Display for Error {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse { line, message } => write!(f, "template: :{line}: {message}"),
            Error::Exec { template, at: Some(at), message } => write!(
                f,
                "template: :{}:{}: executing {} at <{}>: {message}",
                at.line,
                at.column,
                crate::fmt::quote(template),
                at.context
            ),
            Error::Exec { template, at: None, message } => {
                write!(f, "template: {template}: {message}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
