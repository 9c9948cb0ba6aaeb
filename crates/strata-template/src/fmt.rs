//! Go's `fmt` as templates use it: `print`, `println`, `printf` with Go's verbs and
//! flags (`%s %d %v %q %x %-10s %5.2f`), Go's bad-verb notes (`%!d(string=x)`), and
//! `strconv.Quote`.

use serde_json::Value;

use crate::value::{Basic, Kind, Schema, Val, sprint_v};

/// Go's `strconv.Quote`: double quotes, Go escapes, printable Unicode kept.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

fn is_print(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace() || ('\u{fff9}'..='\u{fffb}').contains(&c))
}

fn quote_with(s: &str, q: char, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        push_escaped(&mut out, c, q, ascii);
    }
    out.push(q);
    out
}

fn push_escaped(out: &mut String, c: char, q: char, ascii: bool) {
    if c == q || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) && (!ascii || c.is_ascii()) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `strconv.QuoteRune`: `'a'`.
fn quote_rune(c: char, ascii: bool) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'', ascii);
    out.push('\'');
    out
}

/// Go's `%#U`: `U+0041 'A'`.
pub(crate) fn unicode_name(c: char) -> String {
    if is_print(c) { format!("U+{:04X} '{c}'", c as u32) } else { format!("U+{:04X}", c as u32) }
}

/// The decimal digits of `|f|` (no leading zeros, at least one digit) and the position
/// of the decimal point: `f = 0.DIGITS × 10^dp`. `significant`: round to that many digits
/// (trailing zeros dropped); `None`: the shortest digits that read back as `f`.
fn digits(f: f64, significant: Option<usize>) -> (Vec<u8>, i32) {
    let s = match significant {
        Some(n) => format!("{:.*e}", n.saturating_sub(1), f.abs()),
        None => format!("{:e}", f.abs()),
    };
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    if d == [b'0'] {
        return (d, 1);
    }
    (d, exp + 1)
}

/// `d.ddde±XX` with `prec` digits after the point.
fn fmt_e(d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut s = String::new();
    s.push(char::from(*d.first().unwrap_or(&b'0')));
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(char::from(*d.get(i).unwrap_or(&b'0')));
        }
    }
    let exp = if d == [b'0'] { 0 } else { dp - 1 };
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.abs()));
    s
}

/// `ddd.ddd` with `prec` digits after the point.
fn fmt_f(d: &[u8], dp: i32, prec: usize) -> String {
    let mut s = String::new();
    if dp > 0 {
        for i in 0..dp as usize {
            s.push(char::from(*d.get(i).unwrap_or(&b'0')));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 1..=prec as i32 {
            let j = dp + i - 1;
            let c = if j >= 0 { *d.get(j as usize).unwrap_or(&b'0') } else { b'0' };
            s.push(char::from(c));
        }
    }
    s
}

/// Go's `%g` of `|f|` (`%v` when `prec` is `None`): shortest digits, `%e` form for
/// exponents below -4 or from the precision (6 when shortest) up.
pub(crate) fn float_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let (d, dp) = match prec {
        Some(p) => digits(f, Some(p.max(1))),
        None => digits(f, None),
    };
    let nd = d.len() as i32;
    let mut p = prec.map_or(nd, |p| p.max(1) as i32);
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    let exp = dp - 1;
    let body = if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        fmt_e(&d, dp, (p - 1).max(0) as usize, upper)
    } else {
        if p > dp {
            p = nd;
        }
        fmt_f(&d, dp, (p - dp).max(0) as usize)
    };
    format!("{sign}{body}")
}

/// The flags of one `%` directive.
#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Flags {
    /// Pad to the width with spaces (or zeros with `0`), on the left unless `-`.
    fn pad(&self, s: &str) -> String {
        let n = s.chars().count();
        let Some(w) = self.width.filter(|&w| w > n) else { return s.to_owned() };
        let fill = w - n;
        if self.minus {
            format!("{s}{}", " ".repeat(fill))
        } else {
            let c = if self.zero { "0" } else { " " };
            format!("{}{s}", c.repeat(fill))
        }
    }
}

struct Printer<'s> {
    out: String,
    schema: &'s Schema,
}

impl Printer<'_> {
    fn bad_verb(&mut self, verb: char, arg: &Val<'_>, f: Flags) {
        self.out.push_str("%!");
        self.out.push(verb);
        self.out.push('(');
        if arg.basic() == Basic::Nil {
            self.out.push_str("<nil>");
        } else {
            self.out.push_str(&arg.type_name(self.schema));
            self.out.push('=');
            self.arg(arg, 'v', f);
        }
        self.out.push(')');
    }

    fn arg(&mut self, arg: &Val<'_>, verb: char, f: Flags) {
        if verb == 'T' {
            let t = arg.type_name(self.schema);
            self.out.push_str(&f.pad(&t));
            return;
        }
        match (&*arg.v, arg.kind) {
            (_, Kind::Missing) | (Value::Null, Kind::Plain) => match verb {
                'v' => self.out.push_str(&f.pad("<nil>")),
                _ => self.bad_verb(verb, &Val::nil(), f),
            },
            (Value::Null, Kind::Slice) => self.out.push_str(&f.pad("[]")),
            (Value::Null, _) => self.out.push_str(&f.pad("map[]")),
            (Value::Bool(b), _) => match verb {
                't' | 'v' => self.out.push_str(&f.pad(if *b { "true" } else { "false" })),
                _ => self.bad_verb(verb, arg, f),
            },
            (Value::Number(n), _) => {
                if let Some(i) = n.as_i64() {
                    self.integer(i < 0, i.unsigned_abs(), verb, f, arg);
                } else if let Some(u) = n.as_u64() {
                    self.integer(false, u, verb, f, arg);
                } else {
                    self.float(n.as_f64().unwrap_or(0.0), verb, f, arg);
                }
            }
            (Value::String(s), _) => self.string(s, verb, f, arg),
            (Value::Array(a), _) => {
                self.out.push('[');
                for (i, e) in a.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    let kind = crate::value::element_kind(e, self.schema);
                    self.arg(&Val { v: std::borrow::Cow::Borrowed(e), kind }, verb, f);
                }
                self.out.push(']');
            }
            (Value::Object(o), _) => {
                self.out.push_str("map[");
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    self.string(k, verb, f, &Val::str(k.clone()));
                    self.out.push(':');
                    let kind = crate::value::element_kind(v, self.schema);
                    self.arg(&Val { v: std::borrow::Cow::Borrowed(v), kind }, verb, f);
                }
                self.out.push(']');
            }
        }
    }

    fn string(&mut self, s: &str, verb: char, f: Flags, arg: &Val<'_>) {
        let cut = |s: &str| match f.prec {
            Some(p) => s.chars().take(p).collect::<String>(),
            None => s.to_owned(),
        };
        match verb {
            'v' | 's' => self.out.push_str(&f.pad(&cut(s))),
            'q' => {
                let s = cut(s);
                let q = if f.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || !c.is_control()) {
                    format!("`{s}`")
                } else {
                    quote_with(&s, '"', f.plus)
                };
                self.out.push_str(&f.pad(&q));
            }
            'x' | 'X' => {
                let bytes = s.as_bytes();
                let bytes = match f.prec {
                    Some(p) => &bytes[..p.min(bytes.len())],
                    None => bytes,
                };
                let mut h = String::new();
                for (i, b) in bytes.iter().enumerate() {
                    if f.space && i > 0 {
                        h.push(' ');
                    }
                    if f.sharp && (f.space || i == 0) {
                        h.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    h.push_str(&if verb == 'x' { format!("{b:02x}") } else { format!("{b:02X}") });
                }
                self.out.push_str(&f.pad(&h));
            }
            _ => self.bad_verb(verb, arg, f),
        }
    }

    fn integer(&mut self, negative: bool, u: u64, verb: char, f: Flags, arg: &Val<'_>) {
        let (base, upper) = match verb {
            'v' | 'd' => (10, false),
            'b' => (2, false),
            'o' | 'O' => (8, false),
            'x' => (16, false),
            'X' => (16, true),
            'c' => {
                let c = u32::try_from(u).ok().and_then(char::from_u32).filter(|_| !negative).unwrap_or('\u{fffd}');
                self.out.push_str(&f.pad(&c.to_string()));
                return;
            }
            'q' => {
                let c = u32::try_from(u).ok().and_then(char::from_u32).filter(|_| !negative).unwrap_or('\u{fffd}');
                self.out.push_str(&f.pad(&quote_rune(c, f.plus)));
                return;
            }
            'U' => {
                let mut s = format!("U+{u:04X}");
                if f.sharp
                    && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32).filter(|c| is_print(*c))
                {
                    s.push_str(&format!(" '{c}'"));
                }
                self.out.push_str(&f.pad(&s));
                return;
            }
            _ => return self.bad_verb(verb, arg, f),
        };
        let mut digits = match base {
            2 => format!("{u:b}"),
            8 => format!("{u:o}"),
            16 if upper => format!("{u:X}"),
            16 => format!("{u:x}"),
            _ => u.to_string(),
        };
        let mut prec = 0;
        if let Some(p) = f.prec {
            prec = p;
            if p == 0 && u == 0 {
                // Precision 0 and value 0: nothing but padding.
                self.out.push_str(&" ".repeat(f.width.unwrap_or(0)));
                return;
            }
        } else if f.zero && !f.minus && f.width.is_some() {
            prec = f.width.unwrap_or(0);
            if negative || f.plus || f.space {
                prec = prec.saturating_sub(1);
            }
        }
        if digits.len() < prec {
            digits = format!("{}{digits}", "0".repeat(prec - digits.len()));
        }
        let mut prefix = String::new();
        if negative {
            prefix.push('-');
        } else if f.plus {
            prefix.push('+');
        } else if f.space {
            prefix.push(' ');
        }
        if f.sharp {
            match base {
                2 => prefix.push_str("0b"),
                8 if !digits.starts_with('0') => prefix.push('0'),
                16 => prefix.push_str(if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            prefix.push_str("0o");
        }
        let no_zero = Flags { zero: false, ..f };
        self.out.push_str(&no_zero.pad(&format!("{prefix}{digits}")));
    }

    fn float(&mut self, v: f64, verb: char, f: Flags, arg: &Val<'_>) {
        let abs = v.abs();
        let num = match verb {
            'v' => float_g(abs, f.prec, false),
            'g' | 'G' => float_g(abs, f.prec, verb == 'G'),
            'e' | 'E' => {
                let p = f.prec.unwrap_or(6);
                let (d, dp) = digits(abs, Some(p + 1));
                fmt_e(&d, dp, p, verb == 'E')
            }
            'f' | 'F' => format!("{abs:.*}", f.prec.unwrap_or(6)),
            _ => return self.bad_verb(verb, arg, f),
        };
        let sign = if v.is_sign_negative() {
            "-"
        } else if f.plus {
            "+"
        } else if f.space {
            " "
        } else {
            ""
        };
        if !sign.is_empty() && f.zero && !f.minus && f.width.is_some_and(|w| w > num.len() + 1) {
            let w = f.width.unwrap_or(0);
            self.out.push_str(sign);
            self.out.push_str(&"0".repeat(w - num.len() - 1));
            self.out.push_str(&num);
            return;
        }
        self.out.push_str(&f.pad(&format!("{sign}{num}")));
    }
}

/// Go's `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Val<'_>], schema: &Schema) -> String {
    let mut p = Printer { out: String::new(), schema };
    let mut arg_num = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            p.out.push(c);
            continue;
        }
        let mut f = Flags::default();
        while let Some(&c) = chars.peek() {
            match c {
                '#' => f.sharp = true,
                '0' => f.zero = !f.minus,
                '+' => f.plus = true,
                '-' => {
                    f.minus = true;
                    f.zero = false;
                }
                ' ' => f.space = true,
                _ => break,
            }
            chars.next();
        }
        // Width: digits or `*`.
        if chars.peek() == Some(&'*') {
            chars.next();
            match args.get(arg_num).and_then(Val::as_i64) {
                Some(w) => {
                    if w < 0 {
                        f.minus = true;
                        f.zero = false;
                    }
                    f.width = usize::try_from(w.unsigned_abs()).ok().filter(|w| *w <= MAX_WIDTH);
                    if f.width.is_none() {
                        p.out.push_str("%!(BADWIDTH)");
                    }
                }
                None => p.out.push_str("%!(BADWIDTH)"),
            }
            arg_num += 1;
        } else if let Some(w) = number(&mut chars) {
            if w > MAX_WIDTH {
                p.out.push_str("%!(BADWIDTH)");
            } else {
                f.width = Some(w);
            }
        }
        // Precision: `.` then digits or `*`.
        if chars.peek() == Some(&'.') {
            chars.next();
            if chars.peek() == Some(&'*') {
                chars.next();
                match args.get(arg_num).and_then(Val::as_i64) {
                    Some(pr) if pr >= 0 => f.prec = usize::try_from(pr).ok().filter(|p| *p <= MAX_WIDTH),
                    Some(_) => {}
                    None => p.out.push_str("%!(BADPREC)"),
                }
                arg_num += 1;
            } else {
                f.prec = Some(number(&mut chars).unwrap_or(0).min(MAX_WIDTH));
            }
        }
        let Some(verb) = chars.next() else {
            p.out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            p.out.push('%');
            continue;
        }
        match args.get(arg_num) {
            None => {
                p.out.push_str("%!");
                p.out.push(verb);
                p.out.push_str("(MISSING)");
            }
            Some(a) => {
                p.arg(a, verb, f);
                arg_num += 1;
            }
        }
    }
    if arg_num < args.len() {
        p.out.push_str("%!(EXTRA ");
        for (i, a) in args.iter().skip(arg_num).enumerate() {
            if i > 0 {
                p.out.push_str(", ");
            }
            if a.basic() == Basic::Nil {
                p.out.push_str("<nil>");
            } else {
                p.out.push_str(&a.type_name(schema));
                p.out.push('=');
                p.arg(a, 'v', Flags::default());
            }
        }
        p.out.push(')');
    }
    p.out
}

/// Widths and precisions above this are refused (`%!(BADWIDTH)`), as Go refuses a million.
const MAX_WIDTH: usize = 1_000_000;

fn number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
    }
    n
}

fn is_string(v: &Val<'_>) -> bool {
    v.basic() == Basic::String
}

/// Go's `fmt.Sprint`: operands with `%v`, a space between two that are not strings.
pub(crate) fn sprint(args: &[Val<'_>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !is_string(a) && !is_string(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&sprint_arg(a));
    }
    out
}

/// Go's `fmt.Sprintln`: operands with `%v`, spaces between, a newline after.
pub(crate) fn sprintln(args: &[Val<'_>]) -> String {
    let mut out = args.iter().map(sprint_arg).collect::<Vec<_>>().join(" ");
    out.push('\n');
    out
}

/// An argument of a function prints `<nil>` where a missing value would print `<no value>`.
fn sprint_arg(v: &Val<'_>) -> String {
    if v.is_missing() { "<nil>".into() } else { sprint_v(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        for (f, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(float_g(f, None, false), want, "{f}");
        }
        assert_eq!(float_g(2.34567, Some(3), false), "2.35");
        assert_eq!(float_g(1234.5, Some(2), false), "1.2e+03");
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c\n\té\u{1}"), "\"a\\\"b\\\\c\\n\\té\\x01\"");
        assert_eq!(unicode_name('A'), "U+0041 'A'");
    }
}
