#![doc = include_str!("../README.md")]

mod ast;
mod error;
mod exec;
mod fmt;
mod funcs;
mod json;
mod lex;
mod parse;
mod tabwriter;
mod value;

use serde_json::Value;

pub use error::{Error, Location, Result};
pub use exec::Options;
pub use funcs::Functions;
pub use json::to_go_json;
pub use tabwriter::TabWriter;
pub use value::{MissingKey, Root, Schema};

/// A parsed template: Go's text/template syntax with docker's functions.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    tree: parse::Tree,
}

impl Template {
    /// Parse `text`. Errors say where and what, as Go does:
    /// `template: :1: function "nope" not defined`.
    pub fn parse(text: &str) -> Result<Template> {
        let tree = parse::parse(text, &funcs::exists)?;
        Ok(Template { text: text.to_owned(), tree })
    }

    /// Run the template on `data` and return what it printed.
    pub fn execute(&self, data: &Value, schema: &Schema, options: Options) -> Result<String> {
        let mut out = String::new();
        self.execute_into(&mut out, data, schema, options)?;
        Ok(out)
    }

    /// Run the template on `data`, appending to `out`. On an error, `out` keeps what was
    /// printed before it (docker's table headers print that much).
    pub fn execute_into(&self, out: &mut String, data: &Value, schema: &Schema, options: Options) -> Result<()> {
        exec::execute(&self.text, &self.tree, data, schema, options, out)
    }

    /// The text the template was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }
}
