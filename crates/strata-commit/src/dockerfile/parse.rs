//! Text -> stages of instructions, with docker's parser rules.

use std::fmt;

use super::{CommandForm, CopyArgs, Dockerfile, HealthcheckArgs, Heredoc, Instruction, RunArgs, Spanned, Stage};

/// A Dockerfile that does not parse: the file, the line and the instruction, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file name given to the parser.
    pub file: String,
    /// The line (1-based) of the instruction or directive at fault.
    pub line: usize,
    /// The instruction keyword, when the fault is in one.
    pub instruction: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.instruction {
            Some(i) => write!(f, "{}:{}: {}: {}", self.file, self.line, i, self.message),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

/// One logical line: continuation lines joined.
struct Logical {
    line: usize,
    text: String,
    /// Here-documents read after the line (`RUN`, `COPY`, `ADD`).
    heredocs: Vec<Heredoc>,
}

pub(super) fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
    let err = |line: usize, instruction: Option<&str>, message: String| ParseError {
        file: file.to_owned(),
        line,
        instruction: instruction.map(str::to_owned),
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();

    // Parser directives: only at the very top, before any comment, blank line or
    // instruction.
    let mut escape = '\\';
    let mut syntax = None;
    let mut check = None;
    let mut seen = Vec::new();
    let mut first = 0;
    for (i, raw) in lines.iter().enumerate() {
        let Some((name, value)) = directive(raw) else { break };
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "escape" | "syntax" | "check" => {}
            // Unknown directives are comments, and end the directive section.
            _ => break,
        }
        if seen.contains(&lower) {
            return Err(err(i + 1, None, format!("only one {lower} parser directive can be used")));
        }
        seen.push(lower.clone());
        match lower.as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(err(i + 1, None, format!("invalid escape token '{other}' does not match ` or \\")));
                    }
                }
            }
            "syntax" => {
                if !standard_frontend(value) {
                    return Err(err(
                        i + 1,
                        None,
                        format!(
                            "syntax {value:?}: strata builds with its own implementation of the standard Dockerfile \
                             frontend (docker/dockerfile:1); other frontend images are not supported"
                        ),
                    ));
                }
                syntax = Some(value.to_owned())
            }
            _ => check = Some(value.to_owned()),
        }
        first = i + 1;
    }

    // Logical lines.
    let mut logical = Vec::new();
    let mut warnings = Vec::new();
    let mut i = first;
    while i < lines.len() {
        let raw = lines[i];
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut acc = String::new();
        let mut current = raw;
        let mut empty_continuations = 0;
        loop {
            match strip_continuation(current, escape) {
                Some(head) => {
                    acc.push_str(head);
                    i += 1;
                    // The next line that is neither a comment nor empty continues it.
                    let mut next = None;
                    while i < lines.len() {
                        let t = lines[i].trim_start();
                        if t.starts_with('#') {
                            i += 1;
                        } else if t.trim().is_empty() {
                            empty_continuations += 1;
                            i += 1;
                        } else {
                            next = Some(lines[i]);
                            break;
                        }
                    }
                    match next {
                        Some(n) => current = n,
                        None => break,
                    }
                }
                None => {
                    acc.push_str(current);
                    i += 1;
                    break;
                }
            }
        }
        if empty_continuations > 0 {
            warnings.push(format!("{file}:{start}: empty continuation line(s) found (docker will make them an error)"));
        }
        let text = acc.trim().to_owned();
        if text.is_empty() {
            continue;
        }
        // Here-documents: the lines after the instruction, raw, up to each delimiter.
        let mut heredocs = heredoc_words(&text, escape);
        for h in &mut heredocs {
            let mut content = String::new();
            loop {
                let Some(raw) = lines.get(i) else {
                    // `split('\n')` leaves one empty string after a final newline.
                    return Err(err(start, None, format!("unterminated heredoc: no line {:?} after it", h.name)));
                };
                i += 1;
                let candidate = if h.chomp { raw.trim_start_matches('\t') } else { raw };
                if candidate == h.name {
                    break;
                }
                content.push_str(raw);
                content.push('\n');
            }
            h.content = content;
        }
        logical.push(Logical { line: start, text, heredocs });
    }

    // Instructions into stages.
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for l in logical {
        let spanned = instruction(&l, escape).map_err(|(kw, m)| err(l.line, kw.as_deref(), m))?;
        match (&spanned.instruction, stages.last_mut()) {
            (Instruction::From { name, .. }, _) => {
                if let Some(n) = name
                    && stages.iter().any(|s| s.name.as_deref() == Some(n.as_str()))
                {
                    return Err(err(l.line, Some("FROM"), format!("duplicate stage name {n:?}")));
                }
                let name = name.clone();
                stages.push(Stage { from: spanned, name, instructions: Vec::new() });
            }
            (Instruction::Arg(_), None) => global_args.push(spanned),
            (_, None) => {
                return Err(err(
                    l.line,
                    Some(spanned.instruction.keyword()),
                    "no build stage in current context: the first instruction must be FROM (ARG may come before it)"
                        .into(),
                ));
            }
            (_, Some(stage)) => stage.instructions.push(spanned),
        }
    }
    if stages.is_empty() {
        return Err(err(lines.len().max(1), None, "the Dockerfile has no FROM instruction".into()));
    }
    Ok(Dockerfile { file: file.to_owned(), escape, syntax, check, global_args, stages, warnings })
}

/// Whether a `# syntax=` image is the standard Dockerfile frontend (any 1.x tag, the
/// labs and upstream variants included), whose syntax strata implements.
fn standard_frontend(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or(image);
    let repo = match name.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => name,
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    matches!(repo, "docker/dockerfile" | "docker/dockerfile-upstream")
}

/// The here-document words of a `RUN`, `COPY` or `ADD` line (`<<EOF`, `<<-'EOF'`,
/// `3<<EOF`), in order, content not read yet. Words in quotes and the JSON form are not
/// here-documents.
fn heredoc_words(text: &str, escape: char) -> Vec<Heredoc> {
    let (word, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    if !["RUN", "COPY", "ADD"].contains(&word.to_ascii_uppercase().as_str()) {
        return Vec::new();
    }
    let (_, rest) = split_flags(rest);
    if matches!(json_strings(rest), Ok(Some(_))) {
        return Vec::new();
    }
    split_words(rest, escape).into_iter().filter_map(|w| heredoc_word(&w, escape)).collect()
}

/// One word as a here-document start: digits, `<<`, an optional `-`, and a delimiter
/// with no `<` in it.
fn heredoc_word(word: &str, escape: char) -> Option<Heredoc> {
    let digits = word.find(|c: char| !c.is_ascii_digit())?;
    let after = word[digits..].strip_prefix("<<")?;
    let (chomp, raw) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if raw.is_empty() || raw.contains('<') {
        return None;
    }
    let name = super::Lexer::new(escape).process_word(raw, &|_| None).ok()?;
    if name.is_empty() {
        return None;
    }
    let fd = if digits == 0 { None } else { word[..digits].parse().ok() };
    Some(Heredoc { word: word.to_owned(), expand: name == raw, name, content: String::new(), chomp, fd })
}

/// One instruction on its own (an `ONBUILD` trigger, a `docker commit --change`), as
/// line `line` of `file` (for errors), with `escape` as the escape character.
pub fn parse_instruction(file: &str, line: usize, text: &str, escape: char) -> Result<Spanned, ParseError> {
    let l = Logical { line, text: text.trim().to_owned(), heredocs: Vec::new() };
    instruction(&l, escape).map_err(|(kw, message)| ParseError {
        file: file.to_owned(),
        line,
        instruction: kw,
        message,
    })
}

/// `# name = value` at the top of the file.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let name_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let (name, after) = rest.split_at(name_len);
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = after.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// The line without its trailing escape character (and the blanks after it), when it
/// ends with one.
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    t.strip_suffix(escape)
}

type Fail = (Option<String>, String);

fn instruction(l: &Logical, escape: char) -> Result<Spanned, Fail> {
    let text = l.text.as_str();
    let (word, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    let kw = word.to_ascii_uppercase();
    let fail = |m: String| (Some(kw.clone()), m);
    let (flags, rest) = split_flags(rest);
    let allowed: &[&str] = match kw.as_str() {
        "FROM" => &["platform"],
        "RUN" => &["mount", "network", "security"],
        "COPY" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "ADD" => &["chown", "chmod", "checksum", "link", "exclude"],
        "HEALTHCHECK" => &["interval", "timeout", "start-period", "start-interval", "retries"],
        _ => &[],
    };
    for (name, _) in &flags {
        if !allowed.contains(&name.as_str()) {
            return Err(fail(format!("unknown flag: --{name}")));
        }
    }
    let flag = |name: &str| -> Result<Option<String>, Fail> {
        match flags.iter().find(|(n, _)| n == name) {
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((_, None)) => Err(fail(format!("missing a value on flag: --{name}"))),
            None => Ok(None),
        }
    };
    let flags_all = |name: &str| -> Result<Vec<String>, Fail> {
        flags
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone().ok_or_else(|| fail(format!("missing a value on flag: --{name}"))))
            .collect()
    };
    let bool_flag = |name: &str| -> Result<bool, Fail> {
        match flags.iter().rev().find(|(n, _)| n == name) {
            None => Ok(false),
            Some((_, None)) => Ok(true),
            Some((_, Some(v))) => match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(fail(format!("--{name}={other}: expected true or false"))),
            },
        }
    };
    if !l.heredocs.is_empty() && !matches!(kw.as_str(), "RUN" | "COPY" | "ADD") {
        return Err(fail("heredocs are only allowed in RUN, COPY and ADD".into()));
    }
    let need_args = |min: usize| -> Result<(), Fail> {
        if rest.is_empty() {
            let what = if min > 1 { "at least two arguments" } else { "at least one argument" };
            return Err(fail(format!("{kw} requires {what}")));
        }
        Ok(())
    };
    let instruction = match kw.as_str() {
        "FROM" => {
            need_args(1)?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let name = match words.as_slice() {
                [_] => None,
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let n = name.to_ascii_lowercase();
                    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
                        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                    if !ok {
                        return Err(fail(format!(
                            "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                        )));
                    }
                    Some(n)
                }
                _ => return Err(fail("FROM requires either one or three arguments (image [AS name])".into())),
            };
            Instruction::From { image: words[0].to_owned(), name, platform: flag("platform")? }
        }
        "ARG" => {
            need_args(1)?;
            let mut args = Vec::new();
            for w in split_words(rest, escape) {
                let (k, v) = match w.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (w.clone(), None),
                };
                if k.is_empty() {
                    return Err(fail(format!("ARG names can not be blank: {w:?}")));
                }
                args.push((k, v));
            }
            Instruction::Arg(args)
        }
        "ENV" | "LABEL" => {
            need_args(1)?;
            let pairs = name_values(&kw, rest, escape).map_err(fail)?;
            if kw == "ENV" { Instruction::Env(pairs) } else { Instruction::Label(pairs) }
        }
        "RUN" | "CMD" | "ENTRYPOINT" => {
            if kw != "CMD" || !rest.is_empty() {
                need_args(1)?;
            }
            let form = match json_strings(rest).map_err(fail)? {
                Some(v) => CommandForm::Exec(v),
                None => CommandForm::Shell(rest.to_owned()),
            };
            if kw != "RUN" || l.heredocs.is_empty() {
                let words =
                    if matches!(form, CommandForm::Shell(_)) { heredoc_words(text, escape) } else { Vec::new() };
                if !words.is_empty() {
                    return Err(fail("heredocs are only allowed in RUN, COPY and ADD of a Dockerfile".into()));
                }
            }
            match kw.as_str() {
                "RUN" => {
                    let network = flag("network")?;
                    if let Some(n) = &network
                        && !matches!(n.as_str(), "default" | "none" | "host")
                    {
                        return Err(fail(format!("--network={n}: expected default, none or host")));
                    }
                    let security = flag("security")?;
                    if let Some(s) = &security
                        && !matches!(s.as_str(), "sandbox" | "insecure")
                    {
                        return Err(fail(format!("--security={s}: expected sandbox or insecure")));
                    }
                    Instruction::Run(RunArgs {
                        command: form,
                        mounts: flags_all("mount")?,
                        network,
                        security,
                        heredocs: l.heredocs.clone(),
                    })
                }
                "CMD" => Instruction::Cmd(form),
                _ => Instruction::Entrypoint(form),
            }
        }
        "COPY" | "ADD" => {
            need_args(2)?;
            let mut words = match json_strings(rest).map_err(fail)? {
                Some(v) => v,
                None => rest.split_whitespace().map(str::to_owned).collect(),
            };
            let unread = heredoc_words(text, escape).len();
            if unread != l.heredocs.len() {
                return Err(fail("heredocs are only allowed in RUN, COPY and ADD of a Dockerfile".into()));
            }
            if let Some(h) = l.heredocs.iter().find(|h| h.fd.is_some()) {
                return Err(fail(format!("{}: a file descriptor is not allowed in {kw} heredocs", h.word)));
            }
            if words.len() < 2 {
                return Err(fail(format!("{kw} requires at least two arguments, but only one was provided")));
            }
            let dest = words.pop().unwrap_or_default();
            let args = CopyArgs {
                sources: words,
                dest,
                from: flag("from")?,
                chown: flag("chown")?,
                chmod: flag("chmod")?,
                checksum: flag("checksum")?,
                link: bool_flag("link")?,
                parents: bool_flag("parents")?,
                exclude: flags_all("exclude")?,
                heredocs: l.heredocs.clone(),
            };
            if kw == "COPY" { Instruction::Copy(args) } else { Instruction::Add(args) }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            // One argument: the rest of the line, spaces and all (docker's parseString:
            // `USER a b` is the user "a b").
            if rest.is_empty() {
                return Err(fail(format!("{kw} requires exactly one argument")));
            }
            match kw.as_str() {
                "WORKDIR" => Instruction::Workdir(rest.to_owned()),
                "USER" => Instruction::User(rest.to_owned()),
                "STOPSIGNAL" => Instruction::StopSignal(rest.to_owned()),
                _ => Instruction::Maintainer(rest.to_owned()),
            }
        }
        "EXPOSE" => {
            need_args(1)?;
            Instruction::Expose(rest.split_whitespace().map(str::to_owned).collect())
        }
        "VOLUME" => {
            need_args(1)?;
            let v = match json_strings(rest).map_err(fail)? {
                Some(v) => v,
                None => rest.split_whitespace().map(str::to_owned).collect(),
            };
            if v.iter().any(|p| p.trim().is_empty()) {
                return Err(fail("VOLUME specified can not be an empty string".into()));
            }
            Instruction::Volume(v)
        }
        "SHELL" => {
            need_args(1)?;
            match json_strings(rest).map_err(fail)? {
                Some(v) if !v.is_empty() => Instruction::Shell(v),
                _ => return Err(fail("SHELL requires the arguments to be in JSON form".into())),
            }
        }
        "HEALTHCHECK" => {
            need_args(1)?;
            let (typ, args) = match rest.find(char::is_whitespace) {
                Some(i) => (rest[..i].to_ascii_uppercase(), rest[i..].trim_start()),
                None => (rest.to_ascii_uppercase(), ""),
            };
            let mut h = HealthcheckArgs::default();
            match typ.as_str() {
                "NONE" => {
                    if !args.is_empty() {
                        return Err(fail("HEALTHCHECK NONE takes no arguments".into()));
                    }
                    if !flags.is_empty() {
                        return Err(fail("HEALTHCHECK NONE takes no options".into()));
                    }
                    h.test = vec!["NONE".into()];
                }
                "CMD" => {
                    if args.is_empty() {
                        return Err(fail("Missing command after HEALTHCHECK CMD".into()));
                    }
                    h.test = match json_strings(args).map_err(fail)? {
                        Some(v) => std::iter::once("CMD".to_owned()).chain(v).collect(),
                        None => vec!["CMD-SHELL".into(), args.to_owned()],
                    };
                    let dur = |name: &str| -> Result<Option<u64>, Fail> {
                        let Some(v) = flag(name)? else { return Ok(None) };
                        let ns = parse_duration(&v).map_err(|e| fail(format!("--{name}={v}: {e}")))?;
                        // Docker's minimum for these durations is 1ms (0 means the default).
                        if ns != 0 && ns < 1_000_000 {
                            return Err(fail(format!("Interval \"{name}\" cannot be less than 1ms")));
                        }
                        Ok(Some(ns))
                    };
                    h.interval = dur("interval")?;
                    h.timeout = dur("timeout")?;
                    h.start_period = dur("start-period")?;
                    h.start_interval = dur("start-interval")?;
                    if let Some(r) = flag("retries")? {
                        let n: i64 = r.parse().map_err(|_| fail(format!("--retries={r}: not a number")))?;
                        if n < 1 {
                            return Err(fail(format!("--retries must be at least 1 (not {n})")));
                        }
                        h.retries = Some(n as u64);
                    }
                }
                other => return Err(fail(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"))),
            }
            Instruction::Healthcheck(h)
        }
        "ONBUILD" => {
            need_args(1)?;
            let trigger = rest.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => return Err(fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())),
                "FROM" | "MAINTAINER" => return Err(fail(format!("{trigger} isn't allowed as an ONBUILD trigger"))),
                _ => {}
            }
            // The trigger must itself parse.
            instruction(&Logical { line: l.line, text: rest.to_owned(), heredocs: Vec::new() }, escape)
                .map_err(|(k, m)| fail(format!("trigger {}: {m}", k.unwrap_or_default())))?;
            Instruction::OnBuild(rest.to_owned())
        }
        _ => return Err((None, format!("unknown instruction: {word}"))),
    };
    Ok(Spanned { line: l.line, text: l.text.clone(), instruction })
}

/// Leading `--name[=value]` words, and the rest.
fn split_flags(rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    let mut rest = rest;
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let word = &after[..end];
        if word.is_empty() {
            // A lone `--` ends the options.
            rest = after[end..].trim_start();
            break;
        }
        match word.split_once('=') {
            Some((n, v)) => flags.push((n.to_ascii_lowercase(), Some(v.to_owned()))),
            None => flags.push((word.to_ascii_lowercase(), None)),
        }
        rest = after[end..].trim_start();
    }
    (flags, rest)
}

/// A JSON array of strings (exec form), `None` for anything that is not a JSON array
/// (shell form), and docker's error for a JSON array of other things.
fn json_strings(rest: &str) -> Result<Option<Vec<String>>, String> {
    let t = rest.trim();
    if !t.starts_with('[') || !t.ends_with(']') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err("when using JSON array syntax, arrays must be comprised of strings only".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Err(_) => Ok(None),
    }
}

/// Words split on white space, quotes and escapes respected and kept (docker's
/// `parseWords`).
fn split_words(rest: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            _ if c == escape && quote != Some('\'') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `ENV`/`LABEL` arguments: `k=v ...` pairs, or the legacy `key value with spaces`;
/// docker's messages when they are neither.
fn name_values(kw: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else { return Err(format!("{kw} requires at least one argument")) };
    if !first.contains('=') {
        // Legacy form: the first word is the key, the rest of the line the value.
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
        if value.is_empty() {
            return Err(format!("{kw} must have two arguments"));
        }
        return Ok(vec![(first.clone(), value.to_owned())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"));
        };
        if k.is_empty() {
            return Err(format!("{kw} names can not be blank"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// A Go duration (`1h30m`, `1.5s`, `300ms`, `0`) in nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: f64 = 0.0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let num: f64 = s[start..i].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let ustart = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit = match &s[ustart..i] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {s:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += num * unit;
    }
    if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(total.round() as u64)
}

/// Go's `time.Duration.String()` of `ns` nanoseconds (`1m30s`, `500ms`, `0s`).
pub fn format_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(ns, div));
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s = ns % 60_000_000_000;
    let secs = format!("{}s", fraction(s, 1_000_000_000));
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// `n / div` as a decimal without trailing zeros.
fn fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let rem = n % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let frac = format!("{rem:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_go_syntax() {
        for (s, ns) in [
            ("30s", 30_000_000_000u64),
            ("1m30s", 90_000_000_000),
            ("1.5s", 1_500_000_000),
            ("300ms", 300_000_000),
            ("1h", 3_600_000_000_000),
            ("0", 0),
        ] {
            assert_eq!(parse_duration(s), Ok(ns), "{s}");
        }
        for (ns, s) in [
            (30_000_000_000u64, "30s"),
            (90_000_000_000, "1m30s"),
            (300_000_000, "300ms"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500_000_000, "1.5s"),
            (0, "0s"),
        ] {
            assert_eq!(format_duration(ns), s);
        }
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
