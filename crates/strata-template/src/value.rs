//! Values during execution: JSON values, each with the Go kind docker's types give it,
//! and how Go's `fmt` prints them (`%v`).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// How the JSON data stands for the Go values docker executes its templates on.
///
/// Docker runs `images` and `history` templates on formatter rows (Go structs whose
/// fields are methods), and `inspect` templates on API structs, falling back to the raw
/// JSON decoded into maps when that fails. The JSON alone cannot say which object was a
/// struct and which a map, nor whether a `null` was an empty slice or a nil pointer; the
/// schema says it.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// What the data itself is.
    pub root: Root,
    /// Field names whose objects are Go maps (`Labels`): a missing key prints
    /// `<no value>` rather than failing, unless [`MissingKey::Error`].
    pub maps: Vec<String>,
    /// Field names whose `null` is an empty Go slice (`Env`, `Cmd`): it prints `[]`.
    pub slices: Vec<String>,
}

/// What the data of a template is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Root {
    /// A docker formatter row: naming a field it lacks is an error (`can't evaluate
    /// field Nope in type TYPE_NAME`), and `{{json .}}` escapes `<`, `>` and `&`, as the
    /// row's `MarshalJSON` does.
    Row {
        /// The Go type docker names in errors (`*formatter.imageContext`).
        type_name: String,
    },
    /// A Go struct: its objects are structs too, except the fields [`Schema::maps`]
    /// lists. A missing field is an error.
    Struct,
    /// JSON decoded into Go maps: every object is a map.
    #[default]
    Map,
}

/// What a missing map key gives (Go's `missingkey` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `<no value>` (Go's default).
    #[default]
    NoValue,
    /// An error: `map has no entry for key "Nope"` (docker's inspect fallback).
    Error,
}

/// The Go kind of a value, as far as the JSON cannot tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A scalar (or an untyped nil).
    Plain,
    /// A docker formatter row.
    Row,
    Struct,
    Map,
    Slice,
    /// Go's invalid value: what a missing map key gives; prints `<no value>`.
    Missing,
}

/// A value: JSON, borrowed from the data or made by the template, and its kind.
#[derive(Debug, Clone)]
pub(crate) struct Val<'a> {
    pub v: Cow<'a, Value>,
    pub kind: Kind,
}

/// Go's basic kinds, for comparisons and type checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basic {
    Bool,
    Int,
    Uint,
    Float,
    String,
    Nil,
    Other,
}

impl<'a> Val<'a> {
    pub fn owned(v: Value) -> Val<'a> {
        let kind = match &v {
            Value::Array(_) => Kind::Slice,
            Value::Object(_) => Kind::Map,
            _ => Kind::Plain,
        };
        Val { v: Cow::Owned(v), kind }
    }

    pub fn str(s: impl Into<String>) -> Val<'a> {
        Val::owned(Value::String(s.into()))
    }

    pub fn bool(b: bool) -> Val<'a> {
        Val::owned(Value::Bool(b))
    }

    pub fn int(i: i64) -> Val<'a> {
        Val::owned(Value::Number(i.into()))
    }

    pub fn uint(u: u64) -> Val<'a> {
        Val::owned(Value::Number(u.into()))
    }

    /// A float; `None` for NaN and infinities, which JSON cannot hold.
    pub fn float(f: f64) -> Option<Val<'a>> {
        Number::from_f64(f).map(|n| Val::owned(Value::Number(n)))
    }

    pub fn nil() -> Val<'a> {
        Val { v: Cow::Owned(Value::Null), kind: Kind::Plain }
    }

    pub fn missing() -> Val<'a> {
        Val { v: Cow::Owned(Value::Null), kind: Kind::Missing }
    }

    /// A value inside this one (`pick` chooses it), borrowed from the data when this
    /// value is.
    pub fn project(&self, pick: impl Fn(&Value) -> Option<&Value>) -> Option<Cow<'a, Value>> {
        match &self.v {
            Cow::Borrowed(p) => pick(p).map(Cow::Borrowed),
            Cow::Owned(p) => pick(p).map(|v| Cow::Owned(v.clone())),
        }
    }

    pub fn is_missing(&self) -> bool {
        self.kind == Kind::Missing
    }

    pub fn basic(&self) -> Basic {
        if self.is_missing() {
            return Basic::Nil;
        }
        match &*self.v {
            Value::Bool(_) => Basic::Bool,
            Value::Number(n) if n.is_i64() => Basic::Int,
            Value::Number(n) if n.is_u64() => Basic::Uint,
            Value::Number(_) => Basic::Float,
            Value::String(_) => Basic::String,
            Value::Null if matches!(self.kind, Kind::Plain) => Basic::Nil,
            _ => Basic::Other,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.v.as_str()
    }

    pub fn as_i64(&self) -> Option<i64> {
        match &*self.v {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match &*self.v {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match &*self.v {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// Go's truth: empty strings, arrays, maps, zero numbers, false and nil are false;
    /// structs are always true.
    pub fn is_true(&self) -> bool {
        if matches!(self.kind, Kind::Row | Kind::Struct) && self.v.is_object() {
            return true;
        }
        match &*self.v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        }
    }

    /// The kind of this object's field `name`, whose value is `value`.
    pub fn child_kind(&self, name: &str, value: &Value, schema: &Schema) -> Kind {
        if matches!(self.kind, Kind::Row | Kind::Struct) && !matches!(schema.root, Root::Map) {
            if schema.maps.iter().any(|m| m == name) {
                return Kind::Map;
            }
            if schema.slices.iter().any(|m| m == name) {
                return Kind::Slice;
            }
        }
        element_kind(value, schema)
    }

    /// The Go type name, as errors and `%T` show it.
    pub fn type_name(&self, schema: &Schema) -> String {
        match (&*self.v, self.kind) {
            (_, Kind::Missing) | (Value::Null, Kind::Plain) => "<nil>".into(),
            (Value::Object(_), Kind::Row) => match &schema.root {
                Root::Row { type_name } => type_name.clone(),
                _ => "struct".into(),
            },
            (_, Kind::Struct) => "struct".into(),
            (_, Kind::Map) => "map[string]interface {}".into(),
            (Value::Array(a), _) if !a.is_empty() && a.iter().all(Value::is_string) => "[]string".into(),
            (_, Kind::Slice) | (Value::Array(_), _) => "[]interface {}".into(),
            (Value::Bool(_), _) => "bool".into(),
            (Value::Number(n), _) if n.is_i64() => "int".into(),
            (Value::Number(n), _) if n.is_u64() => "uint".into(),
            (Value::Number(_), _) => "float64".into(),
            (Value::String(_), _) => "string".into(),
            (Value::Object(_), _) => "map[string]interface {}".into(),
            (Value::Null, _) => "<nil>".into(),
        }
    }
}

/// The kind of an element of an array or map, or of a field the schema does not list.
pub(crate) fn element_kind(value: &Value, schema: &Schema) -> Kind {
    match (value, &schema.root) {
        // Raw JSON: a null is a nil interface, which Go unwraps to an invalid value.
        (Value::Null, Root::Map) => Kind::Missing,
        (Value::Array(_), _) => Kind::Slice,
        (Value::Object(_), Root::Struct) => Kind::Struct,
        (Value::Object(_), _) => Kind::Map,
        _ => Kind::Plain,
    }
}

/// Go's `fmt.Sprint` of one value (`%v`): `[a b]`, `map[k:v]`, `<nil>`, `1e+06`.
pub(crate) fn write_v(out: &mut String, val: &Val<'_>) {
    match (&*val.v, val.kind) {
        (_, Kind::Missing) => out.push_str("<no value>"),
        (Value::Null, Kind::Slice) => out.push_str("[]"),
        (Value::Null, Kind::Map) => out.push_str("map[]"),
        (v, _) => write_json_v(out, v),
    }
}

fn write_json_v(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number_v(out, n),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_json_v(out, e);
            }
            out.push(']');
        }
        Value::Object(o) => write_map_v(out, o),
    }
}

fn write_map_v(out: &mut String, o: &Map<String, Value>) {
    out.push_str("map[");
    for (i, (k, v)) in o.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push(':');
        write_json_v(out, v);
    }
    out.push(']');
}

fn write_number_v(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push_str(&crate::fmt::float_g(f, None, false));
    }
}

/// `%v` of a value, as a string.
pub(crate) fn sprint_v(val: &Val<'_>) -> String {
    let mut s = String::new();
    write_v(&mut s, val);
    s
}
