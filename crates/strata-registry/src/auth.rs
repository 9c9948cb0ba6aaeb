//! Credentials, docker's credentials file, and `WWW-Authenticate` challenges.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::{Error, Result};

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: password.into() }
    }

    /// `base64(user:password)`, as in the `auth` field of docker's config and in a
    /// `Basic` authorization header.
    pub fn to_base64(&self) -> String {
        BASE64.encode(format!("{}:{}", self.username, self.password))
    }

    /// Decode the `auth` field of docker's config (`base64(user:password)`).
    pub fn from_base64(encoded: &str) -> Option<Self> {
        let bytes = BASE64.decode(encoded.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (user, password) = text.split_once(':')?;
        Some(Credentials::new(user, password))
    }

    pub(crate) fn basic_header(&self) -> String {
        format!("Basic {}", self.to_base64())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// The key docker uses for Docker Hub in `auths`.
const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The largest credentials file strata reads: 4 MiB (real ones are a few KiB).
const MAX_AUTH_FILE: u64 = 4 << 20;

/// Docker's credentials file (`~/.docker/config.json`), as read by docker, podman,
/// skopeo and buildah: `{"auths": {"host:port": {"auth": "base64(user:pass)"}}}`.
///
/// Only plain `auths` entries are supported (with `auth`, or `username` and
/// `password`); credential helpers (`credsStore`, `credHelpers`) are not run.
#[derive(Clone, Debug)]
pub struct AuthFile {
    path: PathBuf,
}

impl AuthFile {
    /// The file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        AuthFile { path: path.into() }
    }

    /// The file docker and skopeo use: `$REGISTRY_AUTH_FILE`, else
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`. `None` when none
    /// of these variables is set.
    pub fn default_location() -> Option<Self> {
        Self::location_from(|name| std::env::var_os(name))
    }

    fn location_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<Self> {
        let var = |name| env(name).filter(|v| !v.is_empty());
        if let Some(p) = var("REGISTRY_AUTH_FILE") {
            return Some(AuthFile::at(p));
        }
        if let Some(dir) = var("DOCKER_CONFIG") {
            return Some(AuthFile::at(Path::new(&dir).join("config.json")));
        }
        var("HOME").map(|home| AuthFile::at(Path::new(&home).join(".docker").join("config.json")))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Option<serde_json::Value>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &self.path)(e)),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_AUTH_FILE + 1), &mut bytes)
            .map_err(Error::io("read", &self.path))?;
        if bytes.len() as u64 > MAX_AUTH_FILE {
            return Err(self.bad(format!("larger than {MAX_AUTH_FILE} bytes")));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| self.bad(format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(self.bad("not a JSON object".into()));
        }
        Ok(Some(value))
    }

    fn bad(&self, reason: String) -> Error {
        Error::Config { path: self.path.clone(), reason }
    }

    /// The credentials stored for `registry` (`host[:port]`, or `docker.io`), if any.
    /// A missing file has none.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let Some(value) = self.read()? else { return Ok(None) };
        let Some(auths) = value.get("auths").and_then(|a| a.as_object()) else { return Ok(None) };
        let want = normalize_registry(registry);
        // An exact key wins over one that only normalises to the same registry.
        let entry =
            auths.get(registry).or_else(|| auths.iter().find(|(k, _)| normalize_registry(k) == want).map(|(_, v)| v));
        let Some(entry) = entry else { return Ok(None) };
        let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        if let Some(auth) = field("auth") {
            return Credentials::from_base64(auth)
                .map(Some)
                .ok_or_else(|| self.bad(format!("auths.{registry:?}.auth is not base64 of user:password")));
        }
        match (field("username"), field("password")) {
            (Some(u), Some(p)) => Ok(Some(Credentials::new(u, p))),
            _ => Ok(None),
        }
    }

    /// Store `credentials` for `registry` as `auths."host:port".auth`, keeping every
    /// other entry and setting, in a file of mode 0600 replaced atomically.
    pub fn set(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let mut value = self.read()?.unwrap_or_else(|| serde_json::json!({}));
        let key = auth_key(registry);
        let root = value.as_object_mut().ok_or_else(|| self.bad("not a JSON object".into()))?;
        let auths = root.entry("auths").or_insert_with(|| serde_json::json!({}));
        let auths = auths.as_object_mut().ok_or_else(|| self.bad("`auths` is not a JSON object".into()))?;
        // Drop entries that name the same registry under another spelling, so that
        // the new credentials are the ones every tool finds.
        let want = normalize_registry(registry);
        auths.retain(|k, _| k == &key || normalize_registry(k) != want);
        let entry = auths.entry(key).or_insert_with(|| serde_json::json!({}));
        if !entry.is_object() {
            *entry = serde_json::json!({});
        }
        if let Some(entry) = entry.as_object_mut() {
            entry.remove("username");
            entry.remove("password");
            entry.insert("auth".into(), serde_json::Value::String(credentials.to_base64()));
        }
        self.write(&value)
    }

    /// Remove the credentials for `registry`. Returns whether there were any.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let Some(mut value) = self.read()? else { return Ok(false) };
        let want = normalize_registry(registry);
        let Some(auths) = value.get_mut("auths").and_then(|a| a.as_object_mut()) else { return Ok(false) };
        let before = auths.len();
        auths.retain(|k, _| normalize_registry(k) != want);
        if auths.len() == before {
            return Ok(false);
        }
        self.write(&value)?;
        Ok(true)
    }

    fn write(&self, value: &serde_json::Value) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(Error::io("create", dir))?;
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| self.bad(e.to_string()))?;
        bytes.push(b'\n');
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(Error::io("create", &tmp))?;
            f.write_all(&bytes).map_err(Error::io("write", &tmp))?;
            f.sync_all().map_err(Error::io("fsync", &tmp))?;
            std::fs::rename(&tmp, &self.path).map_err(Error::io("rename", &self.path))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// The `auths` key docker writes for a registry.
fn auth_key(registry: &str) -> String {
    if normalize_registry(registry) == strata_spec::DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// `https://index.docker.io/v1/` -> `docker.io`; `http://host:5000/v2` -> `host:5000`.
fn normalize_registry(key: &str) -> String {
    let key = key.trim();
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => strata_spec::DOCKER_HUB.to_owned(),
        _ => host,
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`: the Docker token flow.
    Bearer {
        /// The token server URL.
        realm: String,
        /// The service to ask a token for.
        service: Option<String>,
        /// The scope the registry wanted (informative; strata asks for its own).
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header (RFC 7235: one or more challenges, each a scheme
/// and comma-separated `name=value` or `name="quoted value"` parameters). Unknown
/// schemes and malformed parts are skipped.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut p = Parser { s: header.as_bytes(), i: 0 };
    loop {
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        let Some(scheme) = p.token() else { break };
        let mut params: Vec<(String, String)> = Vec::new();
        loop {
            p.skip(|c| c == b' ' || c == b'\t');
            let start = p.i;
            let Some(name) = p.token() else {
                // token68 or garbage: skip to the next comma.
                p.skip(|c| c != b',');
                if p.peek() == Some(b',') {
                    p.i += 1;
                    continue;
                }
                break;
            };
            p.skip(|c| c == b' ' || c == b'\t');
            if p.peek() != Some(b'=') {
                // A new challenge starts here.
                p.i = start;
                break;
            }
            p.i += 1;
            p.skip(|c| c == b' ' || c == b'\t');
            let value = if p.peek() == Some(b'"') { p.quoted() } else { p.token().unwrap_or_default() };
            params.push((name.to_ascii_lowercase(), value));
            p.skip(|c| c == b' ' || c == b'\t');
            match p.peek() {
                Some(b',') => p.i += 1,
                None => break,
                // A token68 ("Basic abc==") or garbage: let the outer loop resync.
                Some(_) => {}
            }
            if p.peek().is_none() {
                break;
            }
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = get("realm") {
                    out.push(Challenge::Bearer { realm, service: get("service"), scope: get("scope") });
                }
            }
            _ => {}
        }
        if p.i >= p.s.len() {
            break;
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    /// An RFC 7230 token.
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        if self.i == start {
            return None;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string starting at `"`, with backslash escapes; an unterminated one
    /// runs to the end.
    fn quoted(&mut self) -> String {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A token server's answer (Docker token spec: `token`, or OAuth2's `access_token`).
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let bearer = |realm: &str, service: Option<&str>, scope: Option<&str>| Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        };
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            ("Basic realm=\"Registry Realm\"", vec![Challenge::Basic]),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
                vec![bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/ubuntu:pull"),
                )],
            ),
            (
                r#"bearer  realm = "http://127.0.0.1:1/t" , service=reg"#,
                vec![bearer("http://127.0.0.1:1/t", Some("reg"), None)],
            ),
            (
                r#"Bearer realm="r\"q", error="insufficient_scope", Basic realm="x""#,
                vec![bearer("r\"q", None, None), Challenge::Basic],
            ),
            (r#"Negotiate abc==, Basic realm="x""#, vec![Challenge::Basic]),
            ("Bearer service=\"x\"", vec![]),
            ("", vec![]),
            ("\"\"\"===,,,", vec![]),
            ("Bearer realm=\"unterminated", vec![bearer("unterminated", None, None)]),
        ];
        for (header, want) in cases {
            assert_eq!(parse_challenges(header), want, "{header}");
        }
    }

    #[test]
    fn normalises_registry_keys() {
        for (key, want) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
            ("Quay.IO", "quay.io"),
            ("[::1]:5000", "[::1]:5000"),
        ] {
            assert_eq!(normalize_registry(key), want, "{key}");
        }
        assert_eq!(auth_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn finds_the_file_docker_and_skopeo_use() {
        let at = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            AuthFile::location_from(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.into()))
                .map(|f| f.path().to_owned())
        };
        let all = [("REGISTRY_AUTH_FILE", "/a/auth.json"), ("DOCKER_CONFIG", "/d"), ("HOME", "/h")];
        assert_eq!(at(&all), Some("/a/auth.json".into()));
        assert_eq!(at(&all[1..]), Some("/d/config.json".into()));
        assert_eq!(at(&all[2..]), Some("/h/.docker/config.json".into()));
        assert_eq!(at(&[("REGISTRY_AUTH_FILE", ""), ("HOME", "/h")]), Some("/h/.docker/config.json".into()));
        assert_eq!(at(&[]), None);
    }

    #[test]
    fn reads_plain_auths_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"aHViOnB3"},
                "127.0.0.1:5000":{"username":"u","password":"p"},
                "http://quay.io":{"auth":"cTpx"},
                "broken.example":{"auth":"***"},
                "helper.example":{}
            },"credHelpers":{"x":"y"}}"#,
        )
        .unwrap();
        let f = AuthFile::at(&path);
        assert_eq!(f.get("docker.io").unwrap(), Some(Credentials::new("hub", "pw")));
        assert_eq!(f.get("127.0.0.1:5000").unwrap(), Some(Credentials::new("u", "p")));
        assert_eq!(f.get("quay.io").unwrap(), Some(Credentials::new("q", "q")));
        assert_eq!(f.get("helper.example").unwrap(), None);
        assert_eq!(f.get("elsewhere.example").unwrap(), None);
        assert!(matches!(f.get("broken.example"), Err(Error::Config { .. })));
        assert_eq!(AuthFile::at(dir.path().join("missing.json")).get("docker.io").unwrap(), None);
        std::fs::write(&path, "[1]").unwrap();
        assert!(matches!(f.get("docker.io"), Err(Error::Config { .. })));

        // Writing replaces other spellings of the same registry and keeps the rest.
        std::fs::write(&path, r#"{"auths":{"http://127.0.0.1:5000/v2/":{"auth":"eDp5"},"b.example":{"auth":"eDp5"}}}"#)
            .unwrap();
        f.set("127.0.0.1:5000", &Credentials::new("new", "pw")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let keys: Vec<&String> = v["auths"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["127.0.0.1:5000", "b.example"]);
        f.set("docker.io", &Credentials::new("hub", "pw")).unwrap();
        assert_eq!(f.get("registry-1.docker.io").unwrap(), Some(Credentials::new("hub", "pw")));
    }

    #[test]
    fn credentials_round_trip_base64() {
        let c = Credentials::new("user", "pa:ss");
        assert_eq!(Credentials::from_base64(&c.to_base64()), Some(c.clone()));
        assert_eq!(Credentials::from_base64("!!"), None);
        assert_eq!(Credentials::from_base64(&BASE64.encode("nocolon")), None);
        assert!(!format!("{c:?}").contains("pa:ss"));
    }
}
