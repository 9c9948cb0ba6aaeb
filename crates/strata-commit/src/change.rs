//! Config changes with `docker commit --change` semantics.
//!
//! A change is one Dockerfile instruction that only touches the image config: `CMD`,
//! `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`, `ONBUILD`, `STOPSIGNAL`,
//! `USER`, `VOLUME`, `WORKDIR` (docker's list; engines before 23.0 refuse `STOPSIGNAL`).
//! It is parsed by the Dockerfile parser ([`crate::dockerfile`]), and applied as docker
//! applies it ([`apply_changes`]): variables in `ENV`, `EXPOSE`, `LABEL`, `STOPSIGNAL`,
//! `USER`, `VOLUME` and `WORKDIR` expand against the config's environment as it stands
//! (`ENV PATH=$PATH:/x`), an `ENTRYPOINT` clears `Cmd` unless a `CMD` came before it in
//! the same list, and a relative `WORKDIR` joins the current one. Errors are docker's
//! (`run is not a valid change command`, `Invalid containerPort: 99999`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use strata_spec::ContainerConfig;

use crate::dockerfile::{CommandForm, HealthcheckArgs, Instruction, Lexer, Lookup, parse_instruction};

/// The instructions a change may use: docker's list (`validCommitCommands`).
pub const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A change that does not parse or apply, with docker's reason as its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ChangeError {
    /// The change as given.
    pub input: String,
    /// What is wrong, in docker's words.
    pub reason: String,
}

/// One parsed config change. What [`Change::parse`] gives holds the words as written
/// (variables and quotes still in them); [`Change::expand`] substitutes them, and
/// [`Change::apply`] sets what a change holds as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `CMD`: not expanded.
    Cmd(CommandForm),
    /// `ENTRYPOINT`: not expanded; clears `Cmd` (see [`apply_changes`]).
    Entrypoint(CommandForm),
    /// `ENV k=v ...` (or the legacy `ENV k v w`).
    Env(Vec<(String, String)>),
    /// `EXPOSE 80 443/tcp 53/udp 8000-8002`: each word a `port[-port][/proto]` once
    /// expanded; the config gets one `port/proto` per port.
    Expose(Vec<String>),
    /// `HEALTHCHECK [options] CMD ...` or `HEALTHCHECK NONE`.
    Healthcheck(HealthcheckArgs),
    /// `LABEL k=v ...`.
    Label(Vec<(String, String)>),
    /// `ONBUILD <instruction>`: the trigger as written.
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
    /// Parse one change, as docker reads the `--change` of `docker commit`.
    pub fn parse(input: &str) -> Result<Change, ChangeError> {
        let bad = |reason: String| ChangeError { input: input.to_owned(), reason };
        let text = input.trim();
        // Docker checks the instruction before its arguments.
        let word = text.split_whitespace().next().unwrap_or_default();
        if word.is_empty() || word.starts_with('#') {
            return Err(bad("file with no instructions".into()));
        }
        if !ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(word)) {
            return Err(bad(format!("{} is not a valid change command", word.to_ascii_lowercase())));
        }
        // One instruction, its continuation lines joined.
        let joined = join_continuations(text);
        let spanned = parse_instruction("--change", 1, &joined, '\\').map_err(|e| bad(e.message))?;
        let change = match spanned.instruction {
            Instruction::Cmd(f) => Change::Cmd(f),
            Instruction::Entrypoint(f) => Change::Entrypoint(f),
            Instruction::Env(p) => Change::Env(p),
            Instruction::Label(p) => Change::Label(p),
            Instruction::Expose(w) => Change::Expose(w),
            Instruction::Healthcheck(h) => Change::Healthcheck(h),
            Instruction::OnBuild(t) => Change::OnBuild(t),
            Instruction::StopSignal(s) => Change::StopSignal(s),
            Instruction::User(u) => Change::User(u),
            Instruction::Volume(v) => Change::Volume(v),
            Instruction::Workdir(w) => Change::Workdir(w),
            other => return Err(bad(format!("{} is not a valid change command", other.keyword().to_lowercase()))),
        };
        // What can be checked before the environment is known: words without variables.
        match &change {
            Change::Expose(words) => {
                for w in words.iter().filter(|w| !w.contains('$')) {
                    port_spec(w).map_err(bad)?;
                }
            }
            Change::StopSignal(s) if !s.contains('$') => check_signal(s).map_err(bad)?,
            _ => {}
        }
        Ok(change)
    }

    /// This change with its variables substituted (values from `env`) and quotes
    /// removed by `lexer` (a Dockerfile's escape character; `Lexer::default()` for
    /// `--change`), in the words docker expands for its instruction; `EXPOSE` words are
    /// split as a shell splits them and checked. `CMD`, `ENTRYPOINT`, `HEALTHCHECK` and
    /// `ONBUILD` come back as they are.
    pub fn expand(&self, lexer: Lexer, env: Lookup<'_>) -> Result<Change, ChangeError> {
        let bad = |reason: String| ChangeError { input: self.to_string(), reason };
        let word =
            |w: &str| lexer.process_word(w, env).map_err(|reason| bad(format!("failed to process {w:?}: {reason}")));
        let pairs = |p: &[(String, String)]| -> Result<Vec<(String, String)>, ChangeError> {
            p.iter().map(|(k, v)| Ok((word(k)?, word(v)?))).collect()
        };
        Ok(match self {
            Change::Env(p) => Change::Env(pairs(p)?),
            Change::Label(p) => Change::Label(pairs(p)?),
            Change::Expose(words) => {
                let mut ports = Vec::new();
                for w in words {
                    let split = lexer
                        .process_words(w, env)
                        .map_err(|reason| bad(format!("failed to process {w:?}: {reason}")))?;
                    for spec in split {
                        port_spec(&spec).map_err(bad)?;
                        ports.push(spec);
                    }
                }
                Change::Expose(ports)
            }
            Change::StopSignal(s) => {
                let s = word(s)?;
                check_signal(&s).map_err(bad)?;
                Change::StopSignal(s)
            }
            Change::User(u) => Change::User(word(u)?),
            Change::Volume(v) => {
                let v = v.iter().map(|p| word(p)).collect::<Result<Vec<_>, _>>()?;
                if v.iter().any(String::is_empty) {
                    return Err(bad("VOLUME specified can not be an empty string".into()));
                }
                Change::Volume(v)
            }
            Change::Workdir(w) => {
                let w = word(w)?;
                if w.is_empty() {
                    return Err(bad("cannot normalize nothing".into()));
                }
                Change::Workdir(w)
            }
            Change::Cmd(_) | Change::Entrypoint(_) | Change::Healthcheck(_) | Change::OnBuild(_) => self.clone(),
        })
    }

    /// Set what this change holds on `c`, as it is (see [`Change::expand`]).
    pub fn apply(&self, c: &mut ContainerConfig) {
        // An empty command (`CMD []`) is no command, as docker stores it.
        let command =
            |f: &CommandForm, c: &ContainerConfig| Some(f.resolve(c.shell.as_deref())).filter(|v| !v.is_empty());
        match self {
            Change::Cmd(f) => c.cmd = command(f, c),
            Change::Entrypoint(f) => c.entrypoint = command(f, c),
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
            Change::Expose(words) => {
                let map = c.exposed_ports.get_or_insert_with(BTreeMap::new);
                // Words that are not ports were refused by `parse` or `expand`.
                for p in words.iter().filter_map(|w| port_spec(w).ok()).flatten() {
                    map.insert(p, serde_json::json!({}));
                }
            }
            Change::Healthcheck(h) => c.healthcheck = Some(h.to_config()),
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
                // docker's normalizeWorkdir: an absolute path as given, a relative one
                // joined to the current directory (and cleaned).
                c.working_dir = Some(if w.starts_with('/') {
                    w.clone()
                } else {
                    clean_abs(&format!("{}/{w}", c.working_dir.as_deref().unwrap_or_default()))
                });
            }
        }
    }
}

/// Apply `changes` to `config` as `docker commit --change` does: each expanded against
/// the environment the config has at that point, in order; an `ENTRYPOINT` clears `Cmd`
/// unless a `CMD` with a command came before it in the list; and, as docker then merges
/// the result with the container's config, a config left with neither entrypoint nor
/// command gets the original's back.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[Change]) -> Result<(), ChangeError> {
    apply_all(config, changes.iter().map(|c| (c, true)))
}

/// Apply `settings` to `config` as [`apply_changes`] does, but each as it is, without
/// expanding variables: the typed setters of `CommitOptions` (`.env("PATH", "$PATH")`
/// stores `$PATH` literally, as a value given in code means).
pub fn apply_settings(config: &mut ContainerConfig, settings: &[Change]) {
    // Without expansion nothing can fail.
    let _ = apply_all(config, settings.iter().map(|c| (c, false)));
}

/// `changes` (expanded) then `settings` (as given) as one sequence: a command set by
/// either keeps a later entrypoint from dropping it.
pub(crate) fn apply_changes_then_settings(
    config: &mut ContainerConfig,
    changes: &[Change],
    settings: &[Change],
) -> Result<(), ChangeError> {
    apply_all(config, changes.iter().map(|c| (c, true)).chain(settings.iter().map(|c| (c, false))))
}

fn apply_all<'a>(
    config: &mut ContainerConfig,
    changes: impl Iterator<Item = (&'a Change, bool)>,
) -> Result<(), ChangeError> {
    let before = config.clone();
    let mut cmd_set = false;
    for (change, expand) in changes {
        let expanded = if expand {
            let env = config.env.clone().unwrap_or_default();
            let lookup = |name: &str| {
                env.iter().rev().find_map(|e| e.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
            };
            change.expand(Lexer::default(), &lookup)?
        } else {
            change.clone()
        };
        expanded.apply(config);
        match &expanded {
            Change::Cmd(f) if !f.is_empty() => cmd_set = true,
            Change::Entrypoint(_) if !cmd_set => config.cmd = None,
            _ => {}
        }
    }
    if config.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            config.cmd.clone_from(&before.cmd);
        }
        if config.entrypoint.is_none() {
            config.entrypoint.clone_from(&before.entrypoint);
        }
    }
    Ok(())
}

impl FromStr for Change {
    type Err = ChangeError;
    fn from_str(s: &str) -> Result<Self, ChangeError> {
        Change::parse(s)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cmd = |c: &CommandForm| match c {
            CommandForm::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
            CommandForm::Shell(s) => s.clone(),
        };
        let pairs = |p: &[(String, String)]| p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        match self {
            Change::Cmd(c) => write!(f, "CMD {}", cmd(c)),
            Change::Entrypoint(c) => write!(f, "ENTRYPOINT {}", cmd(c)),
            Change::Env(p) => write!(f, "ENV {}", pairs(p)),
            Change::Expose(p) => write!(f, "EXPOSE {}", p.join(" ")),
            Change::Healthcheck(h) => write!(f, "HEALTHCHECK {h}"),
            Change::Label(p) => write!(f, "LABEL {}", pairs(p)),
            Change::OnBuild(t) => write!(f, "ONBUILD {t}"),
            Change::StopSignal(s) => write!(f, "STOPSIGNAL {s}"),
            Change::User(u) => write!(f, "USER {u}"),
            Change::Volume(v) => write!(f, "VOLUME {}", serde_json::to_string(v).unwrap_or_default()),
            Change::Workdir(w) => write!(f, "WORKDIR {w}"),
        }
    }
}

/// The lines of `text` joined where one ends with the escape character, as the
/// Dockerfile parser joins an instruction's continuation lines.
fn join_continuations(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.trim_end().strip_suffix('\\') {
            Some(head) => out.push_str(head),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.trim().to_owned()
}

/// One `EXPOSE` word as docker's `nat.ParsePortSpecs` reads it: `port[-port][/proto]`,
/// one `port/proto` per port, or docker's reason.
fn port_spec(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (spec, "tcp"),
    };
    let lower = proto.to_ascii_lowercase();
    if !matches!(lower.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    let invalid = || format!("Invalid containerPort: {ports}");
    let num = |s: &str| s.parse::<u16>().map_err(|_| invalid());
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(invalid());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{lower}")).collect())
}

/// A stop signal as docker's `signal.ParseSignal` takes it: a number (not 0) or a name,
/// with or without `SIG`, in any case.
fn check_signal(s: &str) -> Result<(), String> {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
        "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED",
        "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    let ok = match s.parse::<u32>() {
        Ok(n) => n != 0,
        Err(_) => {
            let upper = s.to_ascii_uppercase();
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            NAMES.contains(&name) || realtime(name)
        }
    };
    if ok { Ok(()) } else { Err(format!("Invalid signal: {s}")) }
}

/// `RTMIN`, `RTMIN+n` (n up to 15), `RTMAX`, `RTMAX-n`: Linux's real-time signals as
/// docker names them.
fn realtime(name: &str) -> bool {
    let offset = |rest: &str, sign: char| {
        rest.is_empty()
            || rest.strip_prefix(sign).and_then(|n| n.parse::<u8>().ok()).is_some_and(|n| (1..=15).contains(&n))
    };
    name.strip_prefix("RTMIN").is_some_and(|r| offset(r, '+'))
        || name.strip_prefix("RTMAX").is_some_and(|r| offset(r, '-'))
}

/// `/` joined with the components of `p`, `.` and `..` resolved (`filepath.Join`).
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

/// Whether `s` is a stop signal docker takes ([`Change::expand`] checks `STOPSIGNAL`
/// with it; builders use it for theirs).
pub fn valid_signal(s: &str) -> bool {
    check_signal(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied_to(base: ContainerConfig, changes: &[&str]) -> ContainerConfig {
        let parsed: Vec<Change> =
            changes.iter().map(|s| Change::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))).collect();
        let mut c = base;
        apply_changes(&mut c, &parsed).unwrap_or_else(|e| panic!("{changes:?}: {e}"));
        c
    }

    fn applied(changes: &[&str]) -> ContainerConfig {
        applied_to(ContainerConfig::default(), changes)
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    /// A base like `docker import -c 'ENV PATH=...' -c 'CMD ["true"]' -c 'WORKDIR /srv'`.
    fn base() -> ContainerConfig {
        ContainerConfig {
            env: Some(v(&["PATH=/usr/bin:/bin"])),
            cmd: Some(v(&["true"])),
            working_dir: Some("/srv".into()),
            ..Default::default()
        }
    }

    #[test]
    fn each_instruction_in_each_form() {
        let c = applied(&[
            r#"CMD ["catalina.sh", "run"]"#,
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV LEGACY some value",
            "ENV A=3",
            "EXPOSE 8080 53/udp 9000-9002/tcp 80/TCP",
            r#"LABEL version="1.0" org.example.name=tomcat "a b"=c"#,
            "ONBUILD RUN echo hi",
            "STOPSIGNAL SIGQUIT",
            "USER app:app",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
            "WORKDIR /usr/local",
            "workdir tomcat/../tomcat",
            "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/",
        ]);
        assert_eq!(c.cmd, Some(v(&["catalina.sh", "run"])));
        assert_eq!(c.env, Some(v(&["A=3", "B=two words", "C=x y", "LEGACY=some value"])));
        let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8080/tcp", "9000/tcp", "9001/tcp", "9002/tcp"]);
        let labels = c.labels.as_ref().unwrap();
        assert_eq!((labels["version"].as_str(), labels["a b"].as_str()), ("1.0", "c"));
        assert_eq!(c.on_build, Some(v(&["RUN echo hi"])));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.user.as_deref(), Some("app:app"));
        assert_eq!(c.volumes.as_ref().unwrap().len(), 3);
        assert_eq!(c.working_dir.as_deref(), Some("/usr/local/tomcat"));
        assert_eq!(
            c.healthcheck,
            Some(
                serde_json::json!({"Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 5_000_000_000u64, "Retries": 3})
            )
        );
    }

    /// What `docker commit --change` gave on engine 20.10 for each change, on [`base`].
    #[test]
    fn expands_and_resets_as_docker_does() {
        type Check = fn(&ContainerConfig) -> bool;
        let table: &[(&[&str], Check)] = &[
            (&["ENV A=$PATH:/x"], |c| c.env == Some(v(&["PATH=/usr/bin:/bin", "A=/usr/bin:/bin:/x"]))),
            (&["ENV PATH=$PATH:/x"], |c| c.env == Some(v(&["PATH=/usr/bin:/bin:/x"]))),
            // Each change sees the ones before it; one instruction expands before it sets.
            (&["ENV A=1", "ENV B=$A C=${PATH}:x"], |c| {
                c.env == Some(v(&["PATH=/usr/bin:/bin", "A=1", "B=1", "C=/usr/bin:/bin:x"]))
            }),
            (&["ENV A=1 B=$A"], |c| c.env == Some(v(&["PATH=/usr/bin:/bin", "A=1", "B="]))),
            (&["ENV X='a $PATH'"], |c| c.env.as_ref().unwrap()[1] == "X=a $PATH"),
            (&["ENV ${X:-a}=1"], |c| c.env.as_ref().unwrap()[1] == "a=1"),
            (&["ENV X a b"], |c| c.env.as_ref().unwrap()[1] == "X=a b"),
            // ENTRYPOINT clears Cmd unless a CMD came first.
            (&[r#"ENTRYPOINT ["/bin/sh"]"#], |c| c.entrypoint == Some(v(&["/bin/sh"])) && c.cmd.is_none()),
            (&[r#"CMD ["a"]"#, r#"ENTRYPOINT ["/bin/sh"]"#], |c| c.cmd == Some(v(&["a"]))),
            (&[r#"ENTRYPOINT ["/bin/sh"]"#, r#"CMD ["a"]"#], |c| c.cmd == Some(v(&["a"]))),
            (&["ENTRYPOINT /bin/sh -c x"], |c| {
                c.entrypoint == Some(v(&["/bin/sh", "-c", "/bin/sh -c x"])) && c.cmd.is_none()
            }),
            // Emptied: the container's command comes back (docker merges with it).
            (&["ENTRYPOINT []"], |c| c.entrypoint.is_none() && c.cmd == Some(v(&["true"]))),
            (&["CMD []"], |c| c.cmd == Some(v(&["true"]))),
            (&["CMD"], |c| c.cmd == Some(v(&["/bin/sh", "-c"]))),
            (&["CMD echo hi"], |c| c.cmd == Some(v(&["/bin/sh", "-c", "echo hi"]))),
            (&[r#"CMD ["echo", "$PATH"]"#], |c| c.cmd == Some(v(&["echo", "$PATH"]))),
            (&["WORKDIR rel", "WORKDIR ../x/./y"], |c| c.working_dir.as_deref() == Some("/srv/x/y")),
            (&["WORKDIR /a/../b/"], |c| c.working_dir.as_deref() == Some("/a/../b/")),
            (&["WORKDIR a b"], |c| c.working_dir.as_deref() == Some("/srv/a b")),
            (&["WORKDIR $PATH"], |c| c.working_dir.as_deref() == Some("/usr/bin:/bin")),
            (&["USER $PATH"], |c| c.user.as_deref() == Some("/usr/bin:/bin")),
            (&["USER a b"], |c| c.user.as_deref() == Some("a b")),
            (&["LABEL a=$PATH \"b c\"=\"d e\" f=g\\ h"], |c| {
                let l = c.labels.as_ref().unwrap();
                (l["a"].as_str(), l["b c"].as_str(), l["f"].as_str()) == ("/usr/bin:/bin", "d e", "g h")
            }),
            (&["VOLUME $PATH /v"], |c| c.volumes.as_ref().unwrap().contains_key("/usr/bin:/bin")),
            (&[r#"VOLUME ["/a", "$PATH"]"#], |c| c.volumes.as_ref().unwrap().contains_key("/usr/bin:/bin")),
            (&["EXPOSE $NOPE"], |c| c.exposed_ports.as_ref().is_none_or(BTreeMap::is_empty)),
            (&["EXPOSE 0"], |c| c.exposed_ports.as_ref().unwrap().contains_key("0/tcp")),
            (&["ONBUILD RUN $PATH"], |c| c.on_build == Some(v(&["RUN $PATH"]))),
            (&["HEALTHCHECK NONE"], |c| c.healthcheck == Some(serde_json::json!({"Test": ["NONE"]}))),
            (&["ENV A=1 \\\n B=2"], |c| c.env.as_ref().unwrap()[1..] == v(&["A=1", "B=2"])),
        ];
        for (changes, ok) in table {
            let c = applied_to(base(), changes);
            assert!(ok(&c), "{changes:?}: {c:?}");
        }
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

    /// docker's messages (engine 20.10, and current moby for what 20.10 lacks).
    #[test]
    fn bad_changes_fail_with_dockers_words() {
        for (input, message) in [
            ("RUN apt-get update", "run is not a valid change command"),
            ("run true", "run is not a valid change command"),
            ("FROM scratch", "from is not a valid change command"),
            ("ADD a b", "add is not a valid change command"),
            ("COPY a b", "copy is not a valid change command"),
            ("SHELL [\"/bin/bash\", \"-c\"]", "shell is not a valid change command"),
            ("ARG X=1", "arg is not a valid change command"),
            ("MAINTAINER me", "maintainer is not a valid change command"),
            ("FOO bar", "foo is not a valid change command"),
            ("", "file with no instructions"),
            ("# comment", "file with no instructions"),
            ("USER", "USER requires exactly one argument"),
            ("WORKDIR", "WORKDIR requires exactly one argument"),
            ("ENV", "ENV requires at least one argument"),
            ("LABEL", "LABEL requires at least one argument"),
            ("VOLUME", "VOLUME requires at least one argument"),
            ("EXPOSE", "EXPOSE requires at least one argument"),
            ("ONBUILD", "ONBUILD requires at least one argument"),
            ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
            ("ENV A", "ENV must have two arguments"),
            ("LABEL novalue", "LABEL must have two arguments"),
            ("ENV =x", "ENV names can not be blank"),
            ("VOLUME [\"\"]", "VOLUME specified can not be an empty string"),
            ("EXPOSE 99999", "Invalid containerPort: 99999"),
            ("EXPOSE 90-80", "Invalid containerPort: 90-80"),
            ("EXPOSE abc", "Invalid containerPort: abc"),
            ("EXPOSE 80/xyz", "Invalid proto: xyz"),
            ("ENTRYPOINT [\"a\",1]", "when using JSON array syntax, arrays must be comprised of strings only"),
            ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
            ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
            ("HEALTHCHECK --interval=1s CMD", "Missing command after HEALTHCHECK CMD"),
            ("HEALTHCHECK --retries=0 CMD x", "--retries must be at least 1 (not 0)"),
            ("STOPSIGNAL FOO", "Invalid signal: FOO"),
            ("STOPSIGNAL 0", "Invalid signal: 0"),
        ] {
            let e = Change::parse(input).unwrap_err();
            assert_eq!(e.to_string(), message, "{input:?}");
            assert_eq!(e.input, input);
        }
        // Errors that need the environment come when the change applies.
        for (input, message) in [
            (
                "ENV A=\"unterminated",
                "failed to process \"\\\"unterminated\": unexpected end of statement while looking for matching double-quote",
            ),
            ("USER ${NOPE:?must}", "failed to process \"${NOPE:?must}\": NOPE: must"),
            ("WORKDIR $NOPE", "cannot normalize nothing"),
            ("EXPOSE $P", "Invalid containerPort: 99999"),
        ] {
            let change = Change::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let mut c = ContainerConfig { env: Some(v(&["P=99999"])), ..Default::default() };
            let e = apply_changes(&mut c, &[change]).unwrap_err();
            assert_eq!(e.to_string(), message, "{input:?}");
        }
    }

    #[test]
    fn display_parses_back_to_the_same_change() {
        for s in [
            r#"CMD ["a","b c"]"#,
            "ENV A=1 B=\"x y\"",
            "EXPOSE 80/tcp",
            "WORKDIR /x",
            "VOLUME [\"/v\"]",
            "HEALTHCHECK --interval=5s --retries=2 CMD [\"true\"]",
            "HEALTHCHECK CMD curl -f x",
            "HEALTHCHECK NONE",
        ] {
            let c = Change::parse(s).unwrap();
            assert_eq!(Change::parse(&c.to_string()).unwrap(), c, "{s}");
        }
    }
}
