//! The Dockerfile: the parser and the word expansion live in
//! [`strata_commit::dockerfile`] (which `docker commit --change` shares), re-exported
//! here; `.dockerignore` patterns ([`Ignore`]) are the build's own.
//!
//! ```
//! use strata_build::dockerfile::{Dockerfile, Instruction};
//!
//! let df = Dockerfile::parse("Dockerfile", "FROM alpine AS base\nRUN apk add \\\n    curl\nCMD [\"sh\"]\n")?;
//! assert!(matches!(&df.stages[0].instructions[0].instruction, Instruction::Run(_)));
//! # Ok::<(), strata_build::dockerfile::ParseError>(())
//! ```

pub(crate) mod ignore;

pub use ignore::{Ignore, IgnoreError};
pub use strata_commit::dockerfile::*;
