//! `--format`, as docker reads it: `table` (the command's default table), `table
//! TEMPLATE` (a header row and aligned columns), `json` (one JSON object per row), or a
//! Go template run once per row. Rows are JSON objects with docker's field names; the
//! header of a column is docker's name for the field (`{{.ID}}` is headed `IMAGE ID`).

use std::io::Write;

use anyhow::{Result, anyhow};
use serde_json::{Map, Value};
use strata_template::{Functions, MissingKey, Options, Root, Schema, TabWriter, Template};

/// docker's table layout: cells at least 10 wide, 3 spaces between columns.
const TABLE_MIN_WIDTH: usize = 10;
const TABLE_PADDING: usize = 3;

/// What a listing's rows are: the Go type docker names in errors, and each field's header.
pub struct Listing {
    /// The row's Go type in docker (`*formatter.imageContext`), or strata's name for a
    /// listing docker does not have.
    pub row_type: &'static str,
    /// Field name and column header, in the order `table` shows them.
    pub headers: &'static [(&'static str, &'static str)],
}

/// A parsed `--format`.
pub struct Format {
    table: bool,
    template: Template,
}

/// docker's wording for every template error (parse or execution).
pub fn template_error(e: &strata_template::Error) -> anyhow::Error {
    anyhow!("template parsing error: {e}")
}

impl Format {
    /// Read a `--format` value; `table` alone means `default_table` (itself `table ...`).
    pub fn parse(spec: &str, default_table: &str) -> Result<Format> {
        let spec = if spec == "table" { default_table } else { spec };
        let (table, text) = match spec {
            "json" => (false, "{{json .}}".to_owned()),
            s => {
                let (table, rest) = match s.strip_prefix("table") {
                    Some(rest) => (true, rest),
                    None => (false, s),
                };
                // docker trims spaces (only) and reads `\t` and `\n` typed as two characters.
                (table, rest.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n"))
            }
        };
        let template = Template::parse(&text).map_err(|e| template_error(&e))?;
        Ok(Format { table, template })
    }

    /// Whether the template names `field` as `{{.field}}` (docker fills the `Digest` of
    /// `images` only then, or with `--digests`).
    pub fn mentions(&self, field: &str) -> bool {
        self.template.text().contains(&format!("{{{{.{field}}}}}"))
    }

    /// Print `rows`: each through the template, followed by a newline; for a table, a
    /// header row first and the columns aligned. Nothing is printed when a row fails.
    pub fn print(&self, listing: &Listing, rows: &[Value], out: &mut impl Write) -> Result<()> {
        let schema = Schema { root: Root::Row { type_name: listing.row_type.to_owned() }, ..Schema::default() };
        let mut body = String::new();
        for row in rows {
            self.template.execute_into(&mut body, row, &schema, Options::default()).map_err(|e| template_error(&e))?;
            body.push('\n');
        }
        if !self.table {
            out.write_all(body.as_bytes())?;
            return Ok(());
        }
        // The header: the same template over the header names, with docker's stand-ins for
        // the string functions. docker ignores a header that fails, keeping what it printed.
        let names: Map<String, Value> =
            listing.headers.iter().map(|(field, header)| ((*field).to_owned(), Value::from(*header))).collect();
        let mut header = String::new();
        let options = Options { missing_key: MissingKey::NoValue, functions: Functions::DockerHeader };
        let _ = self.template.execute_into(&mut header, &Value::Object(names), &Schema::default(), options);
        write_table(&header, &body, out)
    }
}

/// A table as docker lays it out: `header` (one line, no newline) and `body` (lines
/// ending in newlines), tab-separated cells aligned in columns.
pub fn write_table(header: &str, body: &str, out: &mut impl Write) -> Result<()> {
    let mut table = TabWriter::new(TABLE_MIN_WIDTH, TABLE_PADDING);
    table.write(header);
    table.write("\n");
    table.write(body);
    out.write_all(table.finish().as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LISTING: Listing = Listing {
        row_type: "*formatter.imageContext",
        headers: &[("ID", "IMAGE ID"), ("Tag", "TAG"), ("Size", "SIZE")],
    };

    fn print(spec: &str, rows: &[Value]) -> Result<String> {
        let mut out = Vec::new();
        Format::parse(spec, "table {{.ID}}\\t{{.Tag}}")?.print(&LISTING, rows, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn formats_as_docker_reads_them() {
        let rows = [json!({"ID": "abc", "Tag": "1", "Size": "3B"}), json!({"ID": "d", "Tag": "<none>", "Size": "1kB"})];
        assert_eq!(print("table", &rows).unwrap(), "IMAGE ID   TAG\nabc        1\nd          <none>\n");
        assert_eq!(print("table {{.ID}}: {{.Size}}", &rows).unwrap(), "IMAGE ID: SIZE\nabc: 3B\nd: 1kB\n");
        assert_eq!(print("{{.Tag}}\\t{{.Size}}", &rows).unwrap(), "1\t3B\n<none>\t1kB\n");
        assert_eq!(
            print("json", &rows).unwrap(),
            "{\"ID\":\"abc\",\"Size\":\"3B\",\"Tag\":\"1\"}\n{\"ID\":\"d\",\"Size\":\"1kB\",\"Tag\":\"\\u003cnone\\u003e\"}\n"
        );
        // A header that fails keeps what it printed; the rows still print.
        assert_eq!(
            print("table {{json .}}", &rows[..1]).unwrap(),
            "\n{\"ID\":\"abc\",\"Size\":\"3B\",\"Tag\":\"1\"}\n"
        );
        assert_eq!(
            print("{{.Nope}}", &rows).unwrap_err().to_string(),
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.imageContext"
        );
        assert!(Format::parse("{{.ID}} {{.Digest}}", "").unwrap().mentions("Digest"));
        assert!(!Format::parse("{{ .Digest }}", "").unwrap().mentions("Digest"));
    }
}
