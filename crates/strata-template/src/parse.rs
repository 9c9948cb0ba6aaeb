//! The parser: tokens to a tree, with Go's grammar and Go's parse errors
//! (`template: :1: unexpected "}" in operand`, `function "nope" not defined`).

use std::collections::BTreeMap;

use crate::ast::{Arg, Branch, Command, List, Node, Number, Pipe};
use crate::error::Error;
use crate::lex::{Item, ItemType, lex};

/// How deeply parentheses and control structures may nest; deeper input is refused
/// rather than risking the stack (Go allows 10,000 expression levels; no format comes near).
const MAX_DEPTH: usize = 100;

/// A parsed template: its body and the templates it defines (`define`, `block`).
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub root: List,
    pub defines: BTreeMap<String, List>,
}

enum End {
    End,
    Else { pos: usize },
}

struct Parser<'f> {
    items: Vec<Item>,
    next: usize,
    /// The line of the token read last (parse errors report it).
    line: usize,
    /// The line the current action started on.
    action_line: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    has_function: &'f dyn Fn(&str) -> bool,
    defines: BTreeMap<String, List>,
}

type PResult<T> = Result<T, Error>;

/// Parse `text`; `has_function` says which function names exist.
pub(crate) fn parse(text: &str, has_function: &dyn Fn(&str) -> bool) -> PResult<Tree> {
    let mut p = Parser {
        items: lex(text),
        next: 0,
        line: 1,
        action_line: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        has_function,
        defines: BTreeMap::new(),
    };
    let mut root = Vec::new();
    while p.peek().typ != ItemType::Eof {
        if p.peek().typ == ItemType::LeftDelim {
            let mark = p.next;
            p.next_item();
            if p.next_non_space().typ == ItemType::Define {
                p.parse_definition()?;
                continue;
            }
            p.next = mark;
        }
        match p.text_or_action()? {
            Parsed::Node(n) => root.push(n),
            Parsed::End => return Err(p.error("unexpected {{end}}")),
            Parsed::Else(_) => return Err(p.error("unexpected {{else}}")),
        }
    }
    let mut defines = p.defines;
    // The body of a template made only of definitions is empty; it does not replace one.
    defines.entry(String::new()).or_default();
    Ok(Tree { root, defines })
}

enum Parsed {
    Node(Node),
    End,
    Else(usize),
}

impl Parser<'_> {
    fn error(&self, msg: impl Into<String>) -> Error {
        Error::Parse { line: self.line, message: msg.into() }
    }

    fn peek(&self) -> &Item {
        // lex always ends with Eof or Error, and nothing reads past either.
        let i = self.next.min(self.items.len().saturating_sub(1));
        &self.items[i]
    }

    fn next_item(&mut self) -> Item {
        let item = self.peek().clone();
        if self.next < self.items.len() {
            self.next += 1;
        }
        self.line = item.line;
        item
    }

    fn backup(&mut self) {
        self.next = self.next.saturating_sub(1);
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let item = self.next_item();
            if item.typ != ItemType::Space {
                return item;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let item = self.next_non_space();
        self.backup();
        item
    }

    fn unexpected(&self, item: &Item, context: &str) -> Error {
        if item.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != item.line {
                extra = format!(" in action started at :{}", self.action_line);
                if item.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_owned();
                }
            }
            return self.error(format!("{item}{extra}"));
        }
        self.error(format!("unexpected {item} in {context}"))
    }

    fn expect(&mut self, typ: ItemType, context: &str) -> PResult<Item> {
        let item = self.next_non_space();
        if item.typ != typ {
            return Err(self.unexpected(&item, context));
        }
        Ok(item)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let name = self.next_non_space();
        if !matches!(name.typ, ItemType::String | ItemType::RawString) {
            return Err(self.unexpected(&name, context));
        }
        let name = unquote(&name.val).map_err(|e| self.error(e))?;
        self.expect(ItemType::RightDelim, context)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        if let End::Else { .. } = end {
            return Err(self.error(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add_define(name, list)
    }

    fn add_define(&mut self, name: String, list: List) -> PResult<()> {
        match self.defines.get(&name) {
            Some(old) if !is_empty(old) && !is_empty(&list) => {
                Err(self.error(format!("template: multiple definition of template {}", crate::fmt::quote(&name))))
            }
            Some(old) if !is_empty(old) => Ok(()),
            _ => {
                self.defines.insert(name, list);
                Ok(())
            }
        }
    }

    /// Nodes up to `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> PResult<(List, End)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                Parsed::End => return Ok((list, End::End)),
                Parsed::Else(pos) => return Ok((list, End::Else { pos })),
            }
        }
        Err(self.error("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let item = self.next_non_space();
        match item.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text(item.val))),
            ItemType::LeftDelim => {
                self.action_line = item.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&item, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let item = self.next_non_space();
        match item.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Break | ItemType::Continue => {
                let word = if item.typ == ItemType::Break { "break" } else { "continue" };
                let t = self.next_non_space();
                if t.typ != ItemType::RightDelim {
                    return Err(self.unexpected(&t, &format!("{{{{{word}}}}}")));
                }
                if self.range_depth == 0 {
                    return Err(self.error(format!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                let pos = item.pos;
                return Ok(Parsed::Node(if word == "break" { Node::Break { pos } } else { Node::Continue { pos } }));
            }
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.control("if").map(|b| Parsed::Node(Node::If(b))),
            ItemType::Range => return self.control("range").map(|b| Parsed::Node(Node::Range(b))),
            ItemType::With => return self.control("with").map(|b| Parsed::Node(Node::With(b))),
            ItemType::Template => return self.template_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        // Variables declared here live until the enclosing `end`.
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action(pipe)))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if matches!(peek.typ, ItemType::If | ItemType::With) {
            // `{{else if ...}}` is `{{else}}{{if ...}}...{{end}}`; the `if` stays pending.
            return Ok(Parsed::Else(peek.pos));
        }
        let item = self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else(item.pos))
    }

    fn control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let saved_vars = self.vars.len();
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let End::Else { pos } = end {
            let chained = match self.peek().typ {
                ItemType::If if context == "if" => Some("if"),
                ItemType::With if context == "with" => Some("with"),
                _ => None,
            };
            if let Some(word) = chained {
                self.next_item();
                let inner = self.control(word)?;
                let node = if word == "if" { Node::If(inner) } else { Node::With(inner) };
                else_list = Some(vec![node]);
                let _ = pos;
            } else {
                let (list, end) = self.item_list()?;
                if let End::Else { .. } = end {
                    return Err(self.error("expected end; found {{else}}"));
                }
                else_list = Some(list);
            }
        }
        self.vars.truncate(saved_vars);
        self.depth -= 1;
        Ok(Branch { pos: pipe.pos, pipe, list, else_list })
    }

    fn template_name(&mut self, item: &Item, context: &str) -> PResult<String> {
        match item.typ {
            ItemType::String | ItemType::RawString => unquote(&item.val).map_err(|e| self.error(e)),
            _ => Err(self.unexpected(item, context)),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let item = self.next_non_space();
        let name = self.template_name(&item, context)?;
        let pipe = if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            Some(self.pipeline(context, ItemType::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template { pos: item.pos, name, pipe })
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let item = self.next_non_space();
        let name = self.template_name(&item, context)?;
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        self.enter()?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        self.range_depth = saved_range;
        self.depth -= 1;
        if let End::Else { .. } = end {
            return Err(self.error(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add_define(name.clone(), list)?;
        Ok(Node::Template { pos: item.pos, name, pipe: Some(pipe) })
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let first = self.peek_non_space();
        let mut pipe = Pipe { pos: first.pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        // Declarations: `$x :=`, `$x =`, `$i, $e :=` (range only).
        loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            let mark = self.next;
            self.next_non_space();
            let after = self.peek().clone();
            let next = self.peek_non_space();
            match next.typ {
                ItemType::Assign | ItemType::Declare => {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    break;
                }
                ItemType::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => continue,
                            _ => return Err(self.error("range can only initialize variables")),
                        }
                    }
                    return Err(self.error(format!("too many declarations in {context}")));
                }
                _ => {
                    let _ = after;
                    self.next = mark;
                    break;
                }
            }
        }
        loop {
            let item = self.next_non_space();
            if item.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match item.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    pipe.cmds.push(self.command()?);
                }
                _ => return Err(self.unexpected(&item, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.error(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool { .. } | Arg::Dot { .. } | Arg::Nil { .. } | Arg::Number(_) | Arg::String { .. })
            ) {
                return Err(self.error(format!("non executable command in pipeline stage {}", i + 1)));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let item = self.next_item();
            match item.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&item, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.error("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else { return Ok(None) };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next_item();
            fields.push(f.val.trim_start_matches('.').to_owned());
        }
        Ok(Some(match node {
            Arg::Field { mut names, .. } => {
                names.extend(fields);
                Arg::Field { pos, names }
            }
            Arg::Variable { mut names, .. } => {
                names.extend(fields);
                Arg::Variable { pos, names }
            }
            Arg::Bool { .. } | Arg::String { .. } | Arg::Number(_) | Arg::Nil { .. } | Arg::Dot { .. } => {
                return Err(self.error(format!("unexpected . after term {}", crate::fmt::quote(&node.to_string()))));
            }
            node => Arg::Chain { pos, node: Box::new(node), fields },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let item = self.next_non_space();
        let pos = item.pos;
        Ok(Some(match item.typ {
            ItemType::Identifier => {
                if !(self.has_function)(&item.val) {
                    return Err(self.error(format!("function {} not defined", crate::fmt::quote(&item.val))));
                }
                Arg::Identifier { pos, name: item.val }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                let names: Vec<String> = item.val.split('.').map(str::to_owned).collect();
                if !self.vars.iter().any(|v| Some(v) == names.first()) {
                    return Err(self.error(format!("undefined variable {}", crate::fmt::quote(&names[0]))));
                }
                Arg::Variable { pos, names }
            }
            ItemType::Field => Arg::Field { pos, names: vec![item.val.trim_start_matches('.').to_owned()] },
            ItemType::Bool => Arg::Bool { pos, value: item.val == "true" },
            ItemType::CharConstant | ItemType::Number => Arg::Number(self.number(&item)?),
            ItemType::Complex => return Err(self.error("complex numbers are not supported")),
            ItemType::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", ItemType::RightParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            ItemType::String | ItemType::RawString => {
                let text = unquote(&item.val).map_err(|e| self.error(e))?;
                Arg::String { pos, quoted: item.val, text }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn number(&self, item: &Item) -> PResult<Number> {
        let mut n =
            Number { pos: item.pos, text: item.val.clone(), int: None, uint: None, float: None, is_char: false };
        if item.typ == ItemType::CharConstant {
            let c = unquote_char(&item.val).ok_or_else(|| self.error("invalid syntax"))?;
            n.is_char = true;
            n.int = Some(i64::from(u32::from(c)));
            n.uint = n.int.and_then(|i| u64::try_from(i).ok());
            n.float = n.int.map(|i| i as f64);
            return Ok(n);
        }
        let text = item.val.as_str();
        n.uint = parse_uint(text);
        n.int = parse_int(text);
        if let Some(i) = n.int {
            n.float = Some(i as f64);
        } else if let Some(u) = n.uint {
            n.float = Some(u as f64);
        } else {
            let f = parse_float(text)
                .ok_or_else(|| self.error(format!("illegal number syntax: {}", crate::fmt::quote(text))))?;
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(self.error(format!("integer overflow: {}", crate::fmt::quote(text))));
            }
            n.float = Some(f);
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                n.int = Some(f as i64);
                n.uint = u64::try_from(f as i64).ok();
            }
        }
        if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
            return Err(self.error(format!("illegal number syntax: {}", crate::fmt::quote(text))));
        }
        Ok(n)
    }
}

fn is_empty(list: &List) -> bool {
    list.iter().all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}

/// Digits with Go's base prefixes (`0x`, `0o`, `0b`, a leading `0` for octal) and `_`.
fn split_base(text: &str) -> Option<(bool, u32, String)> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    // Underscores only between digits (or after a base prefix), as Go's ParseInt allows.
    if digits.is_empty() || digits.ends_with('_') || digits.contains("__") || (radix == 10 && digits.starts_with('_')) {
        return None;
    }
    Some((neg, radix, digits.replace('_', "")))
}

fn parse_uint(text: &str) -> Option<u64> {
    let (neg, radix, digits) = split_base(text)?;
    if neg {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

fn parse_int(text: &str) -> Option<i64> {
    let (neg, radix, digits) = split_base(text)?;
    let v = i128::from(u64::from_str_radix(&digits, radix).ok()?);
    i64::try_from(if neg { -v } else { v }).ok()
}

fn parse_float(text: &str) -> Option<f64> {
    if text.contains(['x', 'X', 'p', 'P']) || text.contains("__") || text.ends_with('_') {
        return None;
    }
    text.replace('_', "").parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Go's strconv.Unquote for "..." and `...` literals.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_owned();
    if let Some(raw) = s.strip_prefix('`') {
        let raw = raw.strip_suffix('`').ok_or_else(bad)?;
        return Ok(raw.replace('\r', ""));
    }
    let body = s.strip_prefix('"').and_then(|b| b.strip_suffix('"')).ok_or_else(bad)?;
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match unescape(&mut chars, '"') {
            Some(Unescaped::Char(c)) => out.push(c),
            Some(Unescaped::Byte(b)) => out.push(char::from(b)),
            None => return Err(bad()),
        }
    }
    Ok(out)
}

enum Unescaped {
    Char(char),
    /// `\xNN` and octal escapes are bytes in Go; bytes above 0x7f become U+0080..U+00FF here.
    Byte(u8),
}

fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, quote: char) -> Option<Unescaped> {
    let c = chars.next()?;
    let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        Some(v)
    };
    Some(match c {
        'a' => Unescaped::Char('\x07'),
        'b' => Unescaped::Char('\x08'),
        'f' => Unescaped::Char('\x0c'),
        'n' => Unescaped::Char('\n'),
        'r' => Unescaped::Char('\r'),
        't' => Unescaped::Char('\t'),
        'v' => Unescaped::Char('\x0b'),
        '\\' => Unescaped::Char('\\'),
        c if c == quote => Unescaped::Char(c),
        'x' => Unescaped::Byte(u8::try_from(hex(chars, 2)?).ok()?),
        'u' => Unescaped::Char(char::from_u32(hex(chars, 4)?)?),
        'U' => Unescaped::Char(char::from_u32(hex(chars, 8)?)?),
        '0'..='7' => {
            let mut v = c.to_digit(8)?;
            for _ in 0..2 {
                v = v * 8 + chars.next()?.to_digit(8)?;
            }
            Unescaped::Byte(u8::try_from(v).ok()?)
        }
        _ => return None,
    })
}

fn unquote_char(s: &str) -> Option<char> {
    let body = s.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut chars = body.chars().peekable();
    let c = match chars.next()? {
        '\\' => match unescape(&mut chars, '\'')? {
            Unescaped::Char(c) => c,
            Unescaped::Byte(b) => char::from(b),
        },
        c => c,
    };
    chars.next().is_none().then_some(c)
}
