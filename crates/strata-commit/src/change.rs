//! Config changes with `docker commit --change` semantics.
//!
//! Each change is one Dockerfile instruction line that only touches the image config:
//! `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `ONBUILD`, `STOPSIGNAL`, `USER`,
//! `VOLUME`, `WORKDIR`. `CMD`, `ENTRYPOINT` and `VOLUME` take the JSON (exec) form or the
//! shell form; `ENV` and `LABEL` take `key=value` pairs (quoted values allowed) or
//! the legacy `ENV key value` form. Variables are not expanded.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use strata_spec::ContainerConfig;

/// The instructions a change may use, as docker lists them.
pub const ALLOWED: &[&str] =
    &["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"];

/// A change that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid change {input:?}: {reason}")]
pub struct ChangeError {
    /// The change as given.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

/// A command in exec (JSON) form or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["executable", "arg"]`, used as is.
    Exec(Vec<String>),
    /// `executable arg`, run through the image's shell (`/bin/sh -c` by default).
    Shell(String),
}

impl Command {
    fn resolve(&self, shell: Option<&[String]>) -> Vec<String> {
        match self {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v: Vec<String> = match shell {
                    Some(sh) if !sh.is_empty() => sh.to_vec(),
                    _ => vec!["/bin/sh".into(), "-c".into()],
                };
                v.push(s.clone());
                v
            }
        }
    }
}

/// One parsed config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT` (also clears `Cmd` when it came from the base image, as docker does).
    Entrypoint(Command),
    /// `ENV k=v ...`.
    Env(Vec<(String, String)>),
    /// `EXPOSE 80 443/tcp 53/udp 8000-8002`.
    Expose(Vec<String>),
    /// `LABEL k=v ...`.
    Label(Vec<(String, String)>),
    /// `ONBUILD <instruction>`.
    OnBuild(String),
    /// `STOPSIGNAL SIGTERM`.
    StopSignal(String),
    /// `USER name[:group]`.
    User(String),
    /// `VOLUME /a /b` or `VOLUME ["/a"]`.
    Volume(Vec<String>),
    /// `WORKDIR /path` (relative paths join the current working directory).
    Workdir(String),
}

impl Change {
    /// Parse one change line.
    pub fn parse(input: &str) -> Result<Change, ChangeError> {
        let bad = |reason: String| ChangeError { input: input.to_owned(), reason };
        let line = input.trim();
        let (word, rest) = match line.find(char::is_whitespace) {
            Some(i) => (&line[..i], line[i..].trim()),
            None => (line, ""),
        };
        let instr = word.to_ascii_uppercase();
        if !ALLOWED.contains(&instr.as_str()) {
            return Err(bad(format!(
                "{} is not allowed in a commit change; allowed: {}",
                if word.is_empty() { "an empty instruction" } else { word },
                ALLOWED.join(", ")
            )));
        }
        if rest.is_empty() {
            return Err(bad(format!("{instr} needs an argument")));
        }
        Ok(match instr.as_str() {
            "CMD" => Change::Cmd(parse_command(rest).map_err(bad)?),
            "ENTRYPOINT" => Change::Entrypoint(parse_command(rest).map_err(bad)?),
            "ENV" => Change::Env(parse_pairs(rest, true).map_err(bad)?),
            "LABEL" => Change::Label(parse_pairs(rest, false).map_err(bad)?),
            "EXPOSE" => Change::Expose(parse_ports(rest).map_err(bad)?),
            "ONBUILD" => {
                let trigger = rest.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                if matches!(trigger.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(bad(format!("{trigger} is not allowed as an ONBUILD trigger")));
                }
                Change::OnBuild(rest.to_owned())
            }
            "STOPSIGNAL" => Change::StopSignal(single(rest).map_err(bad)?),
            "USER" => Change::User(single(rest).map_err(bad)?),
            "VOLUME" => {
                let v = match json_array(rest).map_err(bad)? {
                    Some(v) => v,
                    None => rest.split_whitespace().map(str::to_owned).collect(),
                };
                if v.iter().any(String::is_empty) {
                    return Err(bad("VOLUME with an empty path".into()));
                }
                Change::Volume(v)
            }
            "WORKDIR" => Change::Workdir(rest.to_owned()),
            _ => return Err(bad(format!("{instr} is not handled"))),
        })
    }

    /// Apply this change to a container config.
    pub fn apply(&self, c: &mut ContainerConfig) {
        match self {
            Change::Cmd(cmd) => c.cmd = Some(cmd.resolve(c.shell.as_deref())),
            Change::Entrypoint(cmd) => {
                c.entrypoint = Some(cmd.resolve(c.shell.as_deref()));
            }
            Change::Env(pairs) => {
                let env = c.env.get_or_insert_with(Vec::new);
                for (k, v) in pairs {
                    let entry = format!("{k}={v}");
                    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
            }
            Change::Expose(ports) => {
                let map = c.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in ports {
                    map.insert(p.clone(), serde_json::json!({}));
                }
            }
            Change::Label(pairs) => {
                let map = c.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs {
                    map.insert(k.clone(), v.clone());
                }
            }
            Change::OnBuild(t) => c.on_build.get_or_insert_with(Vec::new).push(t.clone()),
            Change::StopSignal(s) => c.stop_signal = Some(s.clone()),
            Change::User(u) => c.user = Some(u.clone()),
            Change::Volume(v) => {
                let map = c.volumes.get_or_insert_with(BTreeMap::new);
                for p in v {
                    map.insert(p.clone(), serde_json::json!({}));
                }
            }
            Change::Workdir(w) => {
                let base = c.working_dir.as_deref().unwrap_or("/");
                c.working_dir = Some(if w.starts_with('/') {
                    clean_abs(w)
                } else {
                    clean_abs(&format!("{}/{w}", if base.is_empty() { "/" } else { base }))
                });
            }
        }
    }
}

impl FromStr for Change {
    type Err = ChangeError;
    fn from_str(s: &str) -> Result<Self, ChangeError> {
        Change::parse(s)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cmd = |c: &Command| match c {
            Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
            Command::Shell(s) => s.clone(),
        };
        let pairs = |p: &[(String, String)]| {
            p.iter().map(|(k, v)| format!("{k}={}", quote_if_needed(v))).collect::<Vec<_>>().join(" ")
        };
        match self {
            Change::Cmd(c) => write!(f, "CMD {}", cmd(c)),
            Change::Entrypoint(c) => write!(f, "ENTRYPOINT {}", cmd(c)),
            Change::Env(p) => write!(f, "ENV {}", pairs(p)),
            Change::Expose(p) => write!(f, "EXPOSE {}", p.join(" ")),
            Change::Label(p) => write!(f, "LABEL {}", pairs(p)),
            Change::OnBuild(t) => write!(f, "ONBUILD {t}"),
            Change::StopSignal(s) => write!(f, "STOPSIGNAL {s}"),
            Change::User(u) => write!(f, "USER {u}"),
            Change::Volume(v) => write!(f, "VOLUME {}", serde_json::to_string(v).unwrap_or_default()),
            Change::Workdir(w) => write!(f, "WORKDIR {w}"),
        }
    }
}

fn quote_if_needed(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        v.to_owned()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

fn single(rest: &str) -> Result<String, String> {
    let mut it = rest.split_whitespace();
    match (it.next(), it.next()) {
        (Some(one), None) => Ok(one.to_owned()),
        _ => Err(format!("expected one argument, got {rest:?}")),
    }
}

/// `Some(array)` when `rest` is a JSON array of strings; `None` when it is not JSON at
/// all (shell form); an error when it starts like JSON but is not an array of strings.
fn json_array(rest: &str) -> Result<Option<Vec<String>>, String> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => Ok(Some(v)),
        // Docker falls back to shell form for anything that is not a valid JSON array.
        Err(_) if serde_json::from_str::<serde_json::Value>(rest).is_err() => Ok(None),
        Err(e) => Err(format!("JSON form must be an array of strings: {e}")),
    }
}

fn parse_command(rest: &str) -> Result<Command, String> {
    Ok(match json_array(rest)? {
        Some(v) => Command::Exec(v),
        None => Command::Shell(rest.to_owned()),
    })
}

/// Split a `k=v k2="v 2"` list, honouring double and single quotes and backslash escapes.
fn words(rest: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("unterminated escape".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => cur.push(e),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn parse_pairs(rest: &str, legacy_allowed: bool) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        // Legacy form: `ENV key value with spaces`.
        if !legacy_allowed {
            return Err("expected key=value".into());
        }
        let (k, v) = rest.split_once(char::is_whitespace).ok_or("ENV needs a value: ENV key=value")?;
        check_key(k)?;
        return Ok(vec![(k.to_owned(), v.trim_start().to_owned())]);
    }
    let mut out = Vec::new();
    for w in words(rest)? {
        let (k, v) = w.split_once('=').ok_or_else(|| format!("{w:?} is not key=value"))?;
        check_key(k)?;
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

fn check_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("empty key".into());
    }
    if k.contains(|c: char| c.is_control()) {
        return Err(format!("key {k:?} has a control character"));
    }
    Ok(())
}

fn parse_ports(rest: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for spec in rest.split_whitespace() {
        let (ports, proto) = match spec.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (spec, "tcp".to_owned()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("unknown protocol {proto:?} in {spec:?}"));
        }
        let num = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0).ok_or(format!("invalid port {s:?} in {spec:?}"));
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let p = num(ports)?;
                (p, p)
            }
        };
        if hi < lo {
            return Err(format!("invalid port range {spec:?}"));
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for s in changes {
            Change::parse(s).unwrap_or_else(|e| panic!("{e}")).apply(&mut c);
        }
        c
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn each_instruction_in_each_form() {
        let c = applied(&[
            r#"CMD ["catalina.sh", "run"]"#,
            "ENTRYPOINT /docker-entrypoint.sh --verbose",
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV LEGACY some value",
            "ENV A=3",
            "EXPOSE 8080 53/udp 9000-9002/tcp",
            r#"LABEL version="1.0" org.example.name=tomcat"#,
            "ONBUILD RUN echo hi",
            "STOPSIGNAL SIGQUIT",
            "USER app:app",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
            "WORKDIR /usr/local",
            "workdir tomcat/../tomcat",
        ]);
        assert_eq!(c.cmd, Some(v(&["catalina.sh", "run"])));
        assert_eq!(c.entrypoint, Some(v(&["/bin/sh", "-c", "/docker-entrypoint.sh --verbose"])));
        assert_eq!(c.env, Some(v(&["A=3", "B=two words", "C=x y", "LEGACY=some value"])));
        let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["53/udp", "8080/tcp", "9000/tcp", "9001/tcp", "9002/tcp"]);
        assert_eq!(c.labels.as_ref().unwrap()["version"], "1.0");
        assert_eq!(c.labels.as_ref().unwrap()["org.example.name"], "tomcat");
        assert_eq!(c.on_build, Some(v(&["RUN echo hi"])));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.user.as_deref(), Some("app:app"));
        assert_eq!(c.volumes.as_ref().unwrap().len(), 3);
        assert_eq!(c.working_dir.as_deref(), Some("/usr/local/tomcat"));
    }

    #[test]
    fn shell_form_uses_the_image_shell() {
        let mut c = ContainerConfig { shell: Some(v(&["/bin/bash", "-o", "pipefail", "-c"])), ..Default::default() };
        Change::parse("CMD echo $HOME").unwrap().apply(&mut c);
        assert_eq!(c.cmd, Some(v(&["/bin/bash", "-o", "pipefail", "-c", "echo $HOME"])));
        // Not-quite-JSON falls back to shell form, as in docker.
        Change::parse("CMD [echo, hi]").unwrap().apply(&mut c);
        assert_eq!(c.cmd.as_ref().unwrap().last().map(String::as_str), Some("[echo, hi]"));
    }

    #[test]
    fn bad_changes_are_clear_errors() {
        for (input, needle) in [
            ("RUN apt-get update", "allowed: CMD, ENTRYPOINT, ENV"),
            ("FROM scratch", "not allowed"),
            ("", "empty instruction"),
            ("CMD", "needs an argument"),
            (r#"CMD ["a", 1]"#, "array of strings"),
            ("EXPOSE 99999", "invalid port"),
            ("EXPOSE 80/xyz", "protocol"),
            ("EXPOSE 90-80", "range"),
            ("LABEL novalue", "key=value"),
            (r#"ENV A="unterminated"#, "quote"),
            ("ENV =x", "empty key"),
            ("USER a b", "one argument"),
            ("ONBUILD ONBUILD RUN x", "ONBUILD trigger"),
        ] {
            let e = Change::parse(input).unwrap_err();
            assert!(e.to_string().contains(needle), "{input}: {e}");
        }
    }

    #[test]
    fn display_parses_back_to_the_same_change() {
        for s in [r#"CMD ["a","b c"]"#, "ENV A=1 B=\"x y\"", "EXPOSE 80/tcp", "WORKDIR /x", "VOLUME [\"/v\"]"] {
            let c = Change::parse(s).unwrap();
            assert_eq!(Change::parse(&c.to_string()).unwrap(), c, "{s}");
        }
    }
}
