//! `RUN --mount=...` options, parsed as BuildKit's Dockerfile frontend reads them: a
//! comma-separated list of `key=value` (or bare boolean `key`) fields, `type=` first or
//! anywhere, `bind` when it is left out.

/// What a `RUN --mount` mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A directory or file of the build context or another stage (read-only unless `rw`).
    Bind,
    /// A cache directory that persists between builds and never goes into a layer.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret file (or variable) given to the build, never stored in the image.
    Secret,
    /// An SSH agent socket forwarded from the builder's environment.
    Ssh,
}

impl MountKind {
    /// The name used in `type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
            MountKind::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share one cache mount (`sharing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Every user writes the same directory at once (the default).
    #[default]
    Shared,
    /// A user that finds the directory in use gets a fresh one of its own.
    Private,
    /// A user waits until the one before it is done.
    Locked,
}

/// One `RUN --mount`, parsed and checked (variables already substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=`.
    pub kind: MountKind,
    /// `target=` (`dst=`, `destination=`): where it appears in the container; secrets
    /// and ssh sockets have defaults (`/run/secrets/<id>`, `/run/buildkit/ssh_agent.0`).
    pub target: Option<String>,
    /// `source=` (`src=`): a path in `from` (bind, cache).
    pub source: Option<String>,
    /// `from=`: a stage or image to bind from (default: the build context).
    pub from: Option<String>,
    /// `id=`: the cache's, secret's or ssh agent's id.
    pub id: Option<String>,
    /// `readonly`/`ro` (or `rw`/`readwrite` off): bind mounts default to read-only.
    pub readonly: bool,
    /// `sharing=` (cache).
    pub sharing: Sharing,
    /// `mode=` (octal) of the cache directory or secret file.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `required` (secret, ssh): a missing secret is an error rather than no file.
    pub required: bool,
    /// `env=` (secret): expose the secret as this environment variable.
    pub env: Option<String>,
    /// `size=` (tmpfs), bytes.
    pub size: Option<u64>,
}

impl Mount {
    /// Parse one `--mount` value (`type=cache,target=/root/.cache,sharing=locked`).
    pub fn parse(spec: &str) -> Result<Mount, String> {
        let mut kind = MountKind::Bind;
        let fields: Vec<(String, Option<String>)> = spec
            .split(',')
            .filter(|f| !f.trim().is_empty())
            .map(|f| match f.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
                None => (f.trim().to_ascii_lowercase(), None),
            })
            .collect();
        for (k, v) in &fields {
            if k == "type" {
                kind = match v.as_deref().unwrap_or("") {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => MountKind::Ssh,
                    other => return Err(format!("unsupported mount type {other:?}")),
                };
            }
        }
        let mut m = Mount {
            kind,
            target: None,
            source: None,
            from: None,
            id: None,
            readonly: kind == MountKind::Bind,
            sharing: Sharing::Shared,
            mode: None,
            uid: None,
            gid: None,
            required: false,
            env: None,
            size: None,
        };
        let boolean = |k: &str, v: &Option<String>| -> Result<bool, String> {
            match v.as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(other) => Err(format!("invalid value for {k}: {other:?} (true or false)")),
            }
        };
        let number = |k: &str, v: &Option<String>| -> Result<u32, String> {
            let v = v.as_deref().ok_or_else(|| format!("{k} needs a value"))?;
            v.parse().map_err(|_| format!("invalid value for {k}: {v:?}"))
        };
        for (k, v) in &fields {
            let value = || v.clone().ok_or_else(|| format!("{k} needs a value"));
            match k.as_str() {
                "type" => {}
                "target" | "dst" | "destination" => m.target = Some(value()?),
                "source" | "src" => m.source = Some(value()?),
                "from" => m.from = Some(value()?),
                "id" => m.id = Some(value()?),
                "readonly" | "ro" => m.readonly = boolean(k, v)?,
                "rw" | "readwrite" => m.readonly = !boolean(k, v)?,
                "required" => m.required = boolean(k, v)?,
                "sharing" => {
                    m.sharing = match value()?.as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        other => return Err(format!("unsupported sharing value {other:?}")),
                    }
                }
                "mode" => {
                    let v = value()?;
                    m.mode = Some(
                        u32::from_str_radix(&v, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| format!("invalid value for mode: {v:?} (octal)"))?,
                    );
                }
                "uid" => m.uid = Some(number(k, v)?),
                "gid" => m.gid = Some(number(k, v)?),
                "env" => m.env = Some(value()?),
                "size" => m.size = Some(parse_size(&value()?)?),
                other => return Err(format!("unexpected key {other:?} in {spec:?}")),
            }
        }
        // Which fields go with which type, and what each type needs.
        let allowed: &[&str] = match kind {
            MountKind::Bind => &["target", "source", "from", "readonly"],
            MountKind::Cache => &["target", "source", "from", "id", "readonly", "sharing", "mode", "uid", "gid"],
            MountKind::Tmpfs => &["target", "size"],
            MountKind::Secret => &["target", "id", "required", "mode", "uid", "gid", "env"],
            MountKind::Ssh => &["target", "id", "required", "mode", "uid", "gid"],
        };
        for (k, _) in &fields {
            let canon = match k.as_str() {
                "dst" | "destination" => "target",
                "src" => "source",
                "ro" | "rw" | "readwrite" => "readonly",
                other => other,
            };
            if canon != "type" && !allowed.contains(&canon) {
                return Err(format!("{k} is not an option of a {} mount", kind.as_str()));
            }
        }
        match kind {
            MountKind::Bind | MountKind::Cache | MountKind::Tmpfs if m.target.is_none() => {
                return Err(format!("a {} mount needs a target", kind.as_str()));
            }
            MountKind::Secret if m.id.is_none() && m.target.is_none() && m.env.is_none() => {
                return Err("a secret mount needs an id or a target".into());
            }
            _ => {}
        }
        if let Some(t) = &m.target
            && !t.starts_with('/')
        {
            return Err(format!("mount target {t:?} must be an absolute path"));
        }
        Ok(m)
    }

    /// The id of a cache (its `id`, else its target), secret (its `id`, else the target's
    /// file name) or ssh agent (`default`).
    pub fn effective_id(&self) -> String {
        match (&self.id, self.kind) {
            (Some(id), _) => id.clone(),
            (None, MountKind::Ssh) => "default".into(),
            (None, MountKind::Secret) => self
                .target
                .as_deref()
                .and_then(|t| t.rsplit('/').find(|s| !s.is_empty()))
                .unwrap_or_default()
                .to_owned(),
            (None, _) => self.target.clone().unwrap_or_default(),
        }
    }

    /// Where it appears: the target, or the default for secrets and ssh sockets; `None`
    /// for a secret given only as a variable (`env=` without `target=`).
    pub fn effective_target(&self) -> Option<String> {
        match (&self.target, self.kind) {
            (Some(t), _) => Some(t.clone()),
            (None, MountKind::Secret) if self.env.is_some() => None,
            (None, MountKind::Secret) => Some(format!("/run/secrets/{}", self.effective_id())),
            (None, MountKind::Ssh) => Some("/run/buildkit/ssh_agent.0".into()),
            (None, _) => None,
        }
    }
}

/// `64m`, `1g`, `4096`: bytes.
fn parse_size(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| format!("invalid size {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_like_buildkit() {
        let m = Mount::parse("type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000").unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!((m.sharing, m.mode, m.uid, m.readonly), (Sharing::Locked, Some(0o700), Some(1000), false));
        assert_eq!(m.effective_id(), "/root/.cache");
        let b = Mount::parse("target=/src,from=build,source=/out").unwrap();
        assert_eq!((b.kind, b.readonly, b.from.as_deref()), (MountKind::Bind, true, Some("build")));
        assert!(!Mount::parse("type=bind,target=/src,rw").unwrap().readonly);
        let s = Mount::parse("type=secret,id=token").unwrap();
        assert_eq!(s.effective_target().as_deref(), Some("/run/secrets/token"));
        let s = Mount::parse("type=secret,target=/etc/key,required").unwrap();
        assert_eq!((s.effective_id().as_str(), s.required), ("key", true));
        assert_eq!(Mount::parse("type=secret,id=t,env=TOKEN").unwrap().effective_target(), None);
        assert_eq!(Mount::parse("type=tmpfs,target=/t,size=64m").unwrap().size, Some(64 << 20));
        assert_eq!(Mount::parse("type=ssh").unwrap().effective_target().as_deref(), Some("/run/buildkit/ssh_agent.0"));
        for (bad, needle) in [
            ("type=nfs,target=/x", "unsupported mount type"),
            ("type=cache", "needs a target"),
            ("type=cache,target=rel", "absolute"),
            ("type=cache,target=/x,sharing=often", "sharing"),
            ("type=tmpfs,target=/x,from=a", "not an option"),
            ("type=bind,target=/x,bogus=1", "unexpected key"),
            ("type=secret", "id or a target"),
            ("type=cache,target=/x,mode=9", "octal"),
        ] {
            let e = Mount::parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
