//! Execution: walking the tree over the data, with Go's rules for fields, variables,
//! pipelines, truth, `range` and `with`, and Go's error messages and positions.

use std::borrow::Cow;

use serde_json::Value;

use crate::ast::{Arg, Branch, Command, List, Node, Number, Pipe};
use crate::error::{Error, Location};
use crate::funcs::{self, Functions, Param};
use crate::parse::Tree;
use crate::value::{Kind, MissingKey, Root, Schema, Val, element_kind, write_v};

/// How deeply `{{template}}` calls may nest (Go allows 100,000; a recursion this deep in
/// a format string is a mistake, and each level costs stack here).
const MAX_TEMPLATE_DEPTH: usize = 100;

/// How a template runs: what a missing map key gives, and which functions exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// What naming a key a map lacks gives.
    pub missing_key: MissingKey,
    /// The functions.
    pub functions: Functions,
}

/// The node the evaluator is at, for the location and context of an error.
#[derive(Clone, Copy)]
enum At<'t> {
    Arg(&'t Arg),
    Command(&'t Command),
    Pipe(&'t Pipe),
    Node(&'t Node),
}

impl At<'_> {
    fn pos(self) -> usize {
        match self {
            At::Arg(a) => a.pos(),
            At::Command(c) => c.pos,
            At::Pipe(p) => p.pos,
            At::Node(Node::Template { pos, .. } | Node::Break { pos } | Node::Continue { pos }) => *pos,
            At::Node(Node::If(b) | Node::With(b) | Node::Range(b)) => b.pos,
            At::Node(Node::Action(p)) => p.pos,
            At::Node(Node::Text(_)) => 0,
        }
    }

    fn context(self) -> String {
        match self {
            At::Arg(a) => a.to_string(),
            At::Command(c) => c.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Node(n) => n.to_string(),
        }
    }
}

/// What walking a list ended with.
#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, Error>;

pub(crate) struct Exec<'t, 'd> {
    text: &'t str,
    tree: &'t Tree,
    schema: &'t Schema,
    opts: Options,
    template: &'t str,
    vars: Vec<(String, Val<'d>)>,
    at: Option<At<'t>>,
    depth: usize,
    pub out: &'t mut String,
}

/// Run the main template of `tree` (parsed from `text`) on `data`, appending to `out`.
pub(crate) fn execute<'t>(
    text: &'t str,
    tree: &'t Tree,
    data: &Value,
    schema: &'t Schema,
    opts: Options,
    out: &'t mut String,
) -> R<()> {
    let root_kind = match (&schema.root, data) {
        (Root::Row { .. }, Value::Object(_)) => Kind::Row,
        (Root::Struct, Value::Object(_)) => Kind::Struct,
        _ => element_kind(data, schema),
    };
    let dot = Val { v: Cow::Borrowed(data), kind: root_kind };
    let mut e =
        Exec { text, tree, schema, opts, template: "", vars: vec![("$".into(), dot.clone())], at: None, depth: 0, out };
    e.walk_list(&dot, &tree.root).map(|_| ())
}

impl<'t, 'd> Exec<'t, 'd> {
    fn error(&self, message: impl Into<String>) -> Error {
        let at = self.at.map(|a| {
            let pos = a.pos().min(self.text.len());
            let before = self.text.get(..pos).unwrap_or("");
            let line = 1 + before.matches('\n').count();
            let column = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
            Location { line, column, context: a.context() }
        });
        Error::Exec { template: self.template.to_owned(), at, message: message.into() }
    }

    fn at(&mut self, at: At<'t>) {
        self.at = Some(at);
    }

    fn walk_list(&mut self, dot: &Val<'d>, list: &'t List) -> R<Flow> {
        for node in list {
            let flow = self.walk(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Val<'d>, node: &'t Node) -> R<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at(At::Node(node));
                    write_v(self.out, &v);
                }
            }
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template { name, pipe, .. } => self.walk_template(dot, node, name, pipe.as_ref())?,
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Val<'d>, b: &'t Branch) -> R<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if v.is_true() {
            if with { self.walk_list(&v, &b.list)? } else { self.walk_list(dot, &b.list)? }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Val<'d>, node: &'t Node, b: &'t Branch) -> R<Flow> {
        self.at(At::Node(node));
        let outer = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.vars.len();
        let mut ran = false;
        let items: Vec<(Val<'d>, Val<'d>)> = match (&*v.v, v.kind) {
            (_, Kind::Missing) | (Value::Null, _) => Vec::new(),
            (Value::Array(a), _) => (0..a.len())
                .filter_map(|i| {
                    let e = v.project(|p| p.as_array().and_then(|a| a.get(i)))?;
                    let kind = element_kind(&e, self.schema);
                    Some((Val::int(i as i64), Val { v: e, kind }))
                })
                .collect(),
            (Value::Object(o), Kind::Map) => o
                .keys()
                .filter_map(|k| {
                    let e = v.project(|p| p.as_object().and_then(|o| o.get(k)))?;
                    let kind = element_kind(&e, self.schema);
                    Some((Val::str(k.clone()), Val { v: e, kind }))
                })
                .collect(),
            (Value::Number(n), _) if n.is_i64() || n.is_u64() => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.error(format!(
                        "can't use {} to iterate over more than one variable",
                        crate::value::sprint_v(&v)
                    )));
                }
                let count = n.as_i64().unwrap_or(i64::MAX).max(0);
                (0..count).map(|i| (Val::int(i), Val::int(i))).collect()
            }
            _ => return Err(self.error(format!("range can't iterate over {}", crate::value::sprint_v(&v)))),
        };
        for (index, elem) in items {
            ran = true;
            let decl = &b.pipe.decl;
            if let Some(first) = decl.first() {
                if b.pipe.is_assign {
                    let v = if decl.len() > 1 { index.clone() } else { elem.clone() };
                    self.set_var(first, v)?;
                } else {
                    self.set_top_var(1, elem.clone());
                }
            }
            if let Some(second) = decl.get(1) {
                if b.pipe.is_assign {
                    self.set_var(second, elem.clone())?;
                } else {
                    self.set_top_var(2, index);
                }
            }
            let flow = self.walk_list(&elem, &b.list)?;
            self.vars.truncate(mark);
            if flow == Flow::Break {
                break;
            }
        }
        if !ran && let Some(e) = &b.else_list {
            self.walk_list(dot, e)?;
        }
        self.vars.truncate(outer);
        Ok(Flow::Normal)
    }

    fn walk_template(&mut self, dot: &Val<'d>, node: &'t Node, name: &'t str, pipe: Option<&'t Pipe>) -> R<()> {
        self.at(At::Node(node));
        let Some(list) = self.tree.defines.get(name) else {
            return Err(self.error(format!("template {} not defined", crate::fmt::quote(name))));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.error(format!("exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Val::missing(),
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.template, name);
        self.depth += 1;
        let r = self.walk_list(&new_dot, list);
        self.depth -= 1;
        self.template = saved_name;
        self.vars = saved_vars;
        r.map(|_| ())
    }

    fn set_top_var(&mut self, n: usize, v: Val<'d>) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = v;
        }
    }

    fn set_var(&mut self, name: &str, v: Val<'d>) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, name: &str) -> R<Val<'d>> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Val<'d>, pipe: &'t Pipe) -> R<Val<'d>> {
        self.at(At::Pipe(pipe));
        let mut value: Option<Val<'d>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_else(Val::missing);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(var, value.clone())?;
            } else {
                self.vars.push((var.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &'t [Arg], fin: Option<&Val<'d>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(ToString::to_string).unwrap_or_default();
            return Err(self.error(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Val<'d>, cmd: &'t Command, fin: Option<Val<'d>>) -> R<Val<'d>> {
        let Some(first) = cmd.args.first() else {
            return Err(self.error("empty command"));
        };
        match first {
            Arg::Field { names, .. } => {
                self.at(At::Arg(first));
                return self.eval_field_chain(dot, dot.clone(), names, &cmd.args, fin);
            }
            Arg::Chain { .. } => return self.eval_chain(dot, first, &cmd.args, fin),
            Arg::Identifier { name, .. } => {
                let args = cmd.args.get(1..).unwrap_or_default();
                return self.eval_function(dot, first, name, args, At::Command(cmd), fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, fin.as_ref())?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { names, .. } => return self.eval_variable(dot, first, names, &cmd.args, fin),
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(&cmd.args, fin.as_ref())?;
        match first {
            Arg::Bool { value, .. } => Ok(Val::bool(*value)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.error("nil is not a command")),
            Arg::Number(n) => self.ideal_constant(n),
            Arg::String { text, .. } => Ok(Val::str(text.clone())),
            _ => Err(self.error(format!("can't evaluate command {}", crate::fmt::quote(&first.to_string())))),
        }
    }

    fn eval_chain(&mut self, dot: &Val<'d>, chain: &'t Arg, args: &'t [Arg], fin: Option<Val<'d>>) -> R<Val<'d>> {
        self.at(At::Arg(chain));
        let Arg::Chain { node, fields, .. } = chain else { return Err(self.error("internal error: not a chain")) };
        if let Arg::Nil { .. } = **node {
            return Err(self.error(format!("indirection through explicit nil in {chain}")));
        }
        let receiver = self.eval_arg_value(dot, node)?;
        self.eval_field_chain(dot, receiver, fields, args, fin)
    }

    fn eval_variable(
        &mut self,
        dot: &Val<'d>,
        var: &'t Arg,
        names: &'t [String],
        args: &'t [Arg],
        fin: Option<Val<'d>>,
    ) -> R<Val<'d>> {
        self.at(At::Arg(var));
        let value = self.var_value(names.first().map_or("$", String::as_str))?;
        if names.len() == 1 {
            self.not_a_function(args, fin.as_ref())?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, &names[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        _dot: &Val<'d>,
        mut receiver: Val<'d>,
        names: &'t [String],
        args: &'t [Arg],
        fin: Option<Val<'d>>,
    ) -> R<Val<'d>> {
        let Some((last, init)) = names.split_last() else { return Ok(receiver) };
        for name in init {
            receiver = self.eval_field(name, &[], None, receiver)?;
        }
        self.eval_field(last, args, fin.as_ref(), receiver)
    }

    fn eval_field(&mut self, name: &str, args: &'t [Arg], fin: Option<&Val<'d>>, receiver: Val<'d>) -> R<Val<'d>> {
        let has_args = args.len() > 1 || fin.is_some();
        if receiver.is_missing() {
            if self.opts.missing_key == MissingKey::Error {
                return Err(self.error(format!("nil data; no entry for key {}", crate::fmt::quote(name))));
            }
            return Ok(Val::missing());
        }
        let found = receiver.project(|p| p.as_object().and_then(|o| o.get(name)));
        match (&*receiver.v, receiver.kind) {
            (Value::Object(_), Kind::Row) => match found {
                Some(v) if has_args => {
                    let _ = v;
                    let got = args.len().saturating_sub(1) + usize::from(fin.is_some());
                    Err(self.error(format!("wrong number of args for {name}: want 0 got {got}")))
                }
                Some(v) => {
                    let kind = receiver.child_kind(name, &v, self.schema);
                    Ok(Val { v, kind })
                }
                None => {
                    Err(self.error(format!("can't evaluate field {name} in type {}", receiver.type_name(self.schema))))
                }
            },
            (Value::Object(_), Kind::Struct) => match found {
                Some(_) if has_args => {
                    Err(self.error(format!("{name} has arguments but cannot be invoked as function")))
                }
                Some(v) => {
                    let kind = receiver.child_kind(name, &v, self.schema);
                    Ok(Val { v, kind })
                }
                None => Err(self.error(format!("can't evaluate field {name} in type struct"))),
            },
            (Value::Object(_) | Value::Null, Kind::Map) => {
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                match found {
                    Some(v) => {
                        let kind = receiver.child_kind(name, &v, self.schema);
                        Ok(Val { v, kind })
                    }
                    None if self.opts.missing_key == MissingKey::Error => {
                        Err(self.error(format!("map has no entry for key {}", crate::fmt::quote(name))))
                    }
                    None => Ok(Val::missing()),
                }
            }
            (Value::Null, Kind::Plain | Kind::Struct | Kind::Row) => {
                Err(self.error(format!("nil pointer evaluating interface {{}}.{name}")))
            }
            _ => Err(self.error(format!("can't evaluate field {name} in type {}", receiver.type_name(self.schema)))),
        }
    }

    fn ideal_constant(&mut self, n: &'t Number) -> R<Val<'d>> {
        let text = n.text.as_str();
        let hex_int =
            text.trim_start_matches(['+', '-']).to_ascii_lowercase().starts_with("0x") && !text.contains(['p', 'P']);
        let float_syntax = !n.is_char && !hex_int && text.contains(['.', 'e', 'E', 'p', 'P']);
        if float_syntax && let Some(f) = n.float {
            return Val::float(f).ok_or_else(|| self.error(format!("{text} is not a finite number")));
        }
        if let Some(i) = n.int {
            return Ok(Val::int(i));
        }
        if n.uint.is_some() {
            return Err(self.error(format!("{text} overflows int")));
        }
        Err(self.error(format!("can't evaluate number {text}")))
    }

    /// An operand used as a value (a chain's receiver): Go's `evalArg` without a type.
    fn eval_arg_value(&mut self, dot: &Val<'d>, arg: &'t Arg) -> R<Val<'d>> {
        self.at(At::Arg(arg));
        match arg {
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Ok(Val::nil()),
            Arg::Field { names, .. } => self.eval_field_chain(dot, dot.clone(), names, std::slice::from_ref(arg), None),
            Arg::Variable { names, .. } => self.eval_variable(dot, arg, names, std::slice::from_ref(arg), None),
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Identifier { name, .. } => self.eval_function(dot, arg, name, &[], At::Arg(arg), None),
            Arg::Chain { .. } => self.eval_chain(dot, arg, std::slice::from_ref(arg), None),
            Arg::Bool { value, .. } => Ok(Val::bool(*value)),
            Arg::Number(n) => self.ideal_constant(n),
            Arg::String { text, .. } => Ok(Val::str(text.clone())),
        }
    }

    /// An argument for a parameter of type `param`.
    fn eval_arg(&mut self, dot: &Val<'d>, param: Param, arg: &'t Arg) -> R<Val<'d>> {
        self.at(At::Arg(arg));
        match (param, arg) {
            (Param::Str, Arg::String { text, .. }) => return Ok(Val::str(text.clone())),
            (Param::Str, Arg::Bool { .. } | Arg::Number(_) | Arg::Nil { .. }) => {
                return Err(self.error(format!("expected string; found {arg}")));
            }
            (Param::Int, Arg::Number(n)) => {
                return match n.int {
                    Some(i) if n.float.is_none_or(|f| f.fract() == 0.0) => Ok(Val::int(i)),
                    _ => Err(self.error(format!("expected integer; found {arg}"))),
                };
            }
            (Param::Int, Arg::String { .. } | Arg::Bool { .. } | Arg::Nil { .. }) => {
                return Err(self.error(format!("expected integer; found {arg}")));
            }
            (Param::Any | Param::Value, Arg::Nil { .. }) => return Ok(Val::nil()),
            _ => {}
        }
        let v = self.eval_arg_value(dot, arg)?;
        self.validate(v, param)
    }

    /// Check a value against a parameter type, as Go's `validateType` does.
    fn validate(&self, v: Val<'d>, param: Param) -> R<Val<'d>> {
        let ok = match param {
            Param::Value => return Ok(v),
            Param::Any => return Ok(if v.is_missing() { Val::nil() } else { v }),
            Param::Str => v.v.is_string(),
            Param::Int => matches!(&*v.v, Value::Number(n) if n.is_i64()),
        };
        if ok {
            return Ok(v);
        }
        if v.is_missing() {
            return Err(self.error(format!("invalid value; expected {}", param.go_type())));
        }
        Err(self.error(format!("wrong type for value; expected {}; got {}", param.go_type(), v.type_name(self.schema))))
    }

    fn eval_function(
        &mut self,
        dot: &Val<'d>,
        ident: &'t Arg,
        name: &str,
        args: &'t [Arg],
        call_site: At<'t>,
        fin: Option<Val<'d>>,
    ) -> R<Val<'d>> {
        self.at(At::Arg(ident));
        let Some(sig) = funcs::signature(name, self.opts.functions) else {
            return Err(self.error(format!("{} is not a defined function", crate::fmt::quote(name))));
        };
        let given = args.len() + usize::from(fin.is_some());
        let fixed = sig.fixed.len();
        if sig.variadic.is_some() {
            if given < fixed {
                return Err(self.error(format!("wrong number of args for {name}: want at least {fixed} got {given}")));
            }
        } else if given != fixed {
            return Err(self.error(format!("wrong number of args for {name}: want {fixed} got {given}")));
        }
        let param_at = |i: usize| sig.fixed.get(i).copied().or(sig.variadic).unwrap_or(Param::Any);
        // and, or: evaluate left to right, stop at the first operand that decides.
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut last = Val::missing();
            for a in args {
                last = self.eval_arg(dot, Param::Value, a)?;
                if last.is_true() == want {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut values = Vec::with_capacity(given);
        for (i, a) in args.iter().enumerate() {
            values.push(self.eval_arg(dot, param_at(i), a)?);
        }
        if let Some(f) = fin {
            let p = param_at(args.len());
            values.push(self.validate(f, p)?);
        }
        funcs::call(name, values, self.opts.functions, self.schema).map_err(|m| {
            self.at = Some(call_site);
            self.error(format!("error calling {name}: {m}"))
        })
    }
}
