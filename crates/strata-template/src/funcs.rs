//! The functions templates can call: Go's builtins (`and`, `or`, `not`, `len`,
//! `index`, `slice`, `print`, `printf`, `println`, `eq`...`ge`, `html`, `js`,
//! `urlquery`, `call`) and docker's (`json`, `split`, `join`, `title`, `lower`,
//! `upper`, `pad`, `truncate`), with docker's stand-ins for table headers.

use std::borrow::Cow;

use serde_json::Value;

use crate::value::{Basic, Kind, Root, Schema, Val, element_kind, sprint_v};

/// Which set of functions a template runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Functions {
    /// Go's builtins and docker's functions (what `--format` templates get).
    #[default]
    Docker,
    /// As [`Functions::Docker`], but `json`, `split`, `join`, `title`, `lower`,
    /// `upper` and `truncate` return their (string) argument unchanged: docker renders a
    /// table's header row with these, so that `{{upper .Repository}}` heads its column
    /// with `REPOSITORY`.
    DockerHeader,
}

/// What a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    /// `interface{}`: anything; a missing value arrives as nil.
    Any,
    /// `reflect.Value` (Go's builtins): anything, a missing value as it is.
    Value,
    /// `string`
    Str,
    /// `int`
    Int,
}

impl Param {
    pub fn go_type(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Value => "reflect.Value",
            Param::Str => "string",
            Param::Int => "int",
        }
    }
}

/// A function's parameters: fixed ones, then maybe a variadic one.
pub(crate) struct Signature {
    pub fixed: &'static [Param],
    pub variadic: Option<Param>,
}

/// Every function name a template may use (checked when parsing, as Go does).
pub(crate) fn exists(name: &str) -> bool {
    signature(name, Functions::Docker).is_some()
}

pub(crate) fn signature(name: &str, set: Functions) -> Option<Signature> {
    use Param::{Any, Int, Str, Value};
    let sig = |fixed: &'static [Param], variadic| Some(Signature { fixed, variadic });
    let header = set == Functions::DockerHeader;
    match name {
        "and" | "or" => sig(&[Value], Some(Value)),
        "not" | "len" => sig(&[Value], None),
        "index" | "slice" => sig(&[Value], Some(Value)),
        "eq" => sig(&[Value], Some(Value)),
        "ne" | "lt" | "le" | "gt" | "ge" => sig(&[Value, Value], None),
        "print" | "println" | "html" | "js" | "urlquery" => sig(&[], Some(Any)),
        "printf" => sig(&[Str], Some(Any)),
        "call" => sig(&[Value], Some(Value)),
        "json" if header => sig(&[Str], None),
        "json" => sig(&[Any], None),
        "split" | "join" if header => sig(&[Str, Str], None),
        "split" => sig(&[Str, Str], None),
        "join" => sig(&[Any, Str], None),
        "title" | "lower" | "upper" => sig(&[Str], None),
        "pad" => sig(&[Str, Int, Int], None),
        "truncate" => sig(&[Str, Int], None),
        _ => None,
    }
}

/// Call `name` (not `and`/`or`, which the evaluator runs lazily) on evaluated arguments.
/// `Err` is the message after `error calling NAME: `.
pub(crate) fn call<'d>(name: &str, args: Vec<Val<'d>>, set: Functions, schema: &Schema) -> Result<Val<'d>, String> {
    let header = set == Functions::DockerHeader;
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(Val::missing);
    let s = |i: usize| arg(i).as_str().unwrap_or_default().to_owned();
    let n = |i: usize| arg(i).as_i64().unwrap_or(0);
    match name {
        "not" => Ok(Val::bool(!arg(0).is_true())),
        "len" => length(&arg(0), schema).map(|n| Val::int(n as i64)),
        "index" => {
            let mut item = arg(0);
            if item.is_missing() {
                return Err("index of untyped nil".into());
            }
            for index in args.iter().skip(1) {
                item = index_one(item, index, schema)?;
            }
            Ok(item)
        }
        "slice" => slice(arg(0), args.get(1..).unwrap_or_default(), schema),
        "eq" => eq(&arg(0), args.get(1..).unwrap_or_default()).map(Val::bool),
        "ne" => eq(&arg(0), &[arg(1)]).map(|t| Val::bool(!t)),
        "lt" => lt(&arg(0), &arg(1)).map(Val::bool),
        "le" => le(&arg(0), &arg(1)).map(Val::bool),
        "gt" => le(&arg(0), &arg(1)).map(|t| Val::bool(!t)),
        "ge" => lt(&arg(0), &arg(1)).map(|t| Val::bool(!t)),
        "print" => Ok(Val::str(crate::fmt::sprint(&args))),
        "println" => Ok(Val::str(crate::fmt::sprintln(&args))),
        "printf" => Ok(Val::str(crate::fmt::sprintf(&s(0), args.get(1..).unwrap_or_default(), schema))),
        "html" => Ok(Val::str(html_escape(&escaper_arg(&args)))),
        "js" => Ok(Val::str(js_escape(&escaper_arg(&args)))),
        "urlquery" => Ok(Val::str(query_escape(&escaper_arg(&args)))),
        "call" => match arg(0).basic() {
            Basic::Nil => Err("call of nil".into()),
            _ => Err(format!("non-function of type {}", arg(0).type_name(schema))),
        },
        "json" if header => Ok(arg(0)),
        "json" => {
            let v = arg(0);
            let html = v.kind == Kind::Row;
            Ok(Val::str(crate::json::to_go_json(&v.v, html)))
        }
        "split" if header => Ok(arg(0)),
        "split" => {
            let (text, sep) = (s(0), s(1));
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep.as_str()).map(|p| Value::String(p.to_owned())).collect()
            };
            Ok(Val { v: Cow::Owned(Value::Array(parts)), kind: Kind::Slice })
        }
        "join" if header => Ok(arg(0)),
        "join" => join(&arg(0), &s(1), schema).map(Val::str),
        "title" | "lower" | "upper" if header => Ok(arg(0)),
        "title" => Ok(Val::str(title(&s(0)))),
        "lower" => Ok(Val::str(s(0).chars().map(|c| single(c.to_lowercase(), c)).collect::<String>())),
        "upper" => Ok(Val::str(s(0).chars().map(|c| single(c.to_uppercase(), c)).collect::<String>())),
        "pad" => {
            let text = s(0);
            if text.is_empty() {
                return Ok(Val::str(text));
            }
            let (before, after) = (n(1), n(2));
            if before < 0 || after < 0 {
                return Err("strings: negative Repeat count".into());
            }
            let (before, after) = (usize::try_from(before).unwrap_or(0), usize::try_from(after).unwrap_or(0));
            if before.saturating_add(after) > MAX_PAD {
                return Err(format!("padding of more than {MAX_PAD} spaces"));
            }
            Ok(Val::str(format!("{}{text}{}", " ".repeat(before), " ".repeat(after))))
        }
        "truncate" if header => Ok(arg(0)),
        "truncate" => {
            let (text, len) = (s(0), n(1));
            if len < 0 {
                return Err(format!("runtime error: slice bounds out of range [:{len}]"));
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if text.len() < len {
                return Ok(Val::str(text));
            }
            // Docker cuts bytes; cut at the character boundary at or before.
            let mut cut = len;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            Ok(Val::str(&text[..cut]))
        }
        other => Err(format!("function {} not defined", crate::fmt::quote(other))),
    }
}

/// More padding than any terminal shows is refused rather than allocated.
const MAX_PAD: usize = 1_000_000;

fn length(v: &Val<'_>, schema: &Schema) -> Result<usize, String> {
    match (&*v.v, v.kind) {
        (_, Kind::Missing) => Err("len of nil pointer".into()),
        (Value::String(s), _) => Ok(s.len()),
        (Value::Array(a), _) => Ok(a.len()),
        (Value::Object(o), Kind::Map) => Ok(o.len()),
        (Value::Null, Kind::Slice | Kind::Map) => Ok(0),
        (Value::Null, _) => Err("len of nil pointer".into()),
        _ => Err(format!("len of type {}", v.type_name(schema))),
    }
}

fn index_arg(index: &Val<'_>, cap: usize, schema: &Schema) -> Result<usize, String> {
    let x: i128 = match index.basic() {
        Basic::Int => i128::from(index.as_i64().unwrap_or(0)),
        Basic::Uint => i128::from(index.as_u64().unwrap_or(0)),
        Basic::Nil => return Err("cannot index slice/array with nil".into()),
        _ => return Err(format!("cannot index slice/array with type {}", index.type_name(schema))),
    };
    match usize::try_from(x) {
        Ok(x) if x <= cap => Ok(x),
        _ => Err(format!("index out of range: {x}")),
    }
}

fn index_one<'d>(item: Val<'d>, index: &Val<'_>, schema: &Schema) -> Result<Val<'d>, String> {
    match (&*item.v, item.kind) {
        (_, Kind::Missing) | (Value::Null, Kind::Plain) => Err("index of nil pointer".into()),
        (Value::Array(a), _) => {
            let x = index_arg(index, a.len(), schema)?;
            let v = item.project(|p| p.as_array().and_then(|a| a.get(x))).ok_or("reflect: slice index out of range")?;
            let kind = element_kind(&v, schema);
            Ok(Val { v, kind })
        }
        (Value::Null, Kind::Slice) => {
            index_arg(index, 0, schema)?;
            Err("reflect: slice index out of range".into())
        }
        (Value::String(s), _) => {
            let x = index_arg(index, s.len(), schema)?;
            let b = s.as_bytes().get(x).ok_or("reflect: string index out of range")?;
            Ok(Val::uint(u64::from(*b)))
        }
        (Value::Object(_) | Value::Null, Kind::Map) => {
            let key = match index.basic() {
                Basic::String => index.as_str().unwrap_or_default().to_owned(),
                Basic::Nil => return Err("value is nil; should be of type string".into()),
                _ => return Err(format!("value has type {}; should be string", index.type_name(schema))),
            };
            match item.project(|p| p.as_object().and_then(|o| o.get(&key))) {
                Some(v) => {
                    let kind = element_kind(&v, schema);
                    Ok(Val { v, kind })
                }
                // The zero value of the map's elements: nil in raw JSON, "" in docker's string maps.
                None if schema.root == Root::Map => Ok(Val::missing()),
                None => Ok(Val::str("")),
            }
        }
        _ => Err(format!("can't index item of type {}", item.type_name(schema))),
    }
}

fn slice<'d>(item: Val<'d>, indexes: &[Val<'_>], schema: &Schema) -> Result<Val<'d>, String> {
    if item.is_missing() || item.basic() == Basic::Nil {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match (&*item.v, item.kind) {
        (Value::String(s), _) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        (Value::Array(a), _) => a.len(),
        (Value::Null, Kind::Slice) => 0,
        _ => return Err(format!("can't slice item of type {}", item.type_name(schema))),
    };
    let mut idx = [0, len, len];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, len, schema)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    let (from, to) = (idx[0], idx[1]);
    Ok(match &*item.v {
        Value::String(s) => Val::str(String::from_utf8_lossy(s.as_bytes().get(from..to).unwrap_or_default())),
        Value::Array(a) => Val { v: Cow::Owned(Value::Array(a[from..to].to_vec())), kind: Kind::Slice },
        _ => Val { v: Cow::Owned(Value::Array(Vec::new())), kind: Kind::Slice },
    })
}

const BAD_COMPARISON: &str = "incompatible types for comparison";

fn eq(a: &Val<'_>, others: &[Val<'_>]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = a.basic();
    for b in others {
        let k2 = b.basic();
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Basic::Int, Basic::Uint) => a.as_i64().and_then(|i| u64::try_from(i).ok()) == b.as_u64(),
                (Basic::Uint, Basic::Int) => b.as_i64().and_then(|i| u64::try_from(i).ok()) == a.as_u64(),
                _ if k1 != Basic::Nil && k2 != Basic::Nil => return Err(BAD_COMPARISON.into()),
                _ => false,
            }
        } else {
            match k1 {
                Basic::Bool | Basic::String | Basic::Int | Basic::Uint => a.v == b.v,
                Basic::Float => a.as_f64() == b.as_f64(),
                Basic::Nil => true,
                Basic::Other => {
                    let a_nil = a.v.is_null();
                    let b_nil = b.v.is_null();
                    if a_nil || b_nil {
                        a_nil == b_nil
                    } else {
                        return Err(format!("non-comparable type {}", sprint_v(b)));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    let (k1, k2) = (a.basic(), b.basic());
    if k1 != k2 {
        return match (k1, k2) {
            (Basic::Int, Basic::Uint) => Ok(a.as_i64().unwrap_or(0) < 0
                || a.as_i64().and_then(|i| u64::try_from(i).ok()).unwrap_or(0) < b.as_u64().unwrap_or(0)),
            (Basic::Uint, Basic::Int) => Ok(b.as_i64().unwrap_or(0) >= 0
                && a.as_u64().unwrap_or(0) < b.as_i64().and_then(|i| u64::try_from(i).ok()).unwrap_or(0)),
            _ => Err(BAD_COMPARISON.into()),
        };
    }
    match k1 {
        Basic::Int => Ok(a.as_i64() < b.as_i64()),
        Basic::Uint => Ok(a.as_u64() < b.as_u64()),
        Basic::Float => Ok(a.as_f64().unwrap_or(0.0) < b.as_f64().unwrap_or(0.0)),
        Basic::String => Ok(a.as_str() < b.as_str()),
        _ => Err("invalid type for comparison".into()),
    }
}

fn le(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    Ok(lt(a, b)? || eq(a, std::slice::from_ref(b))?)
}

fn join(elems: &Val<'_>, sep: &str, _schema: &Schema) -> Result<String, String> {
    match (&*elems.v, elems.kind) {
        (_, Kind::Missing) | (Value::Null, _) => Ok(String::new()),
        (Value::Array(a), _) => {
            let parts: Vec<String> =
                a.iter().map(|e| sprint_v(&Val { v: Cow::Borrowed(e), kind: Kind::Plain })).collect();
            Ok(parts.join(sep))
        }
        (Value::Object(o), _) => {
            let mut parts: Vec<String> =
                o.values().map(|e| sprint_v(&Val { v: Cow::Borrowed(e), kind: Kind::Plain })).collect();
            parts.sort();
            Ok(parts.join(sep))
        }
        _ => Err(format!("expected slice, got {}", elems.type_name(_schema))),
    }
}

/// Go's `strings.Title`: the first letter of each word in title case.
fn title(s: &str) -> String {
    let separator = |c: char| {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if separator(prev) { single(c.to_uppercase(), c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// Go maps case one character to one character; a mapping to several keeps the original.
fn single(mut it: impl Iterator<Item = char>, orig: char) -> char {
    match (it.next(), it.next()) {
        (Some(c), None) => c,
        _ => orig,
    }
}

/// `html`, `js` and `urlquery` take one string as it is, anything else as `print` shows it.
fn escaper_arg(args: &[Val<'_>]) -> String {
    match args {
        [one] if one.basic() == Basic::String => one.as_str().unwrap_or_default().to_owned(),
        _ => crate::fmt::sprint(args),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || !(c.is_control() || c.is_whitespace()) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
