//! A blocking client for one registry: scheme choice, TLS, authentication, retries.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::{Response, StatusCode};

use crate::agent::{classify, http_agent};
use crate::auth::{AuthFile, Challenge, Credentials, TokenResponse, parse_challenges};
use crate::error::{Error, RegistryError, Result};
use crate::progress::{Event, Progress};

/// How to reach and authenticate to a registry; shared by [`pull`](crate::pull),
/// [`push`](crate::push) and [`login`](crate::login).
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Accept plain HTTP and unverified TLS certificates for this registry, like
    /// docker's `insecure-registries`. Loopback registries (`localhost`, `127.0.0.0/8`,
    /// `::1`) may use plain HTTP without it, but their certificates are verified when
    /// they speak TLS.
    pub insecure: bool,
    /// PEM files of extra CA certificates to trust, in addition to Mozilla's roots.
    pub tls_ca_files: Vec<PathBuf>,
    /// Credentials to use. When `None`, they come from `auth_file`.
    pub credentials: Option<Credentials>,
    /// Docker's credentials file. `None` means [`AuthFile::default_location`].
    pub auth_file: Option<PathBuf>,
    /// How many times to retry a request that failed transiently (network errors,
    /// HTTP 408, 429, 5xx). Interrupted blob downloads resume where they stopped.
    pub retries: u32,
    /// Delay before the first retry; it doubles with every retry, up to 10 s.
    pub retry_delay: Duration,
    /// Timeout for opening a connection.
    pub connect_timeout: Duration,
    /// Timeout for each read or write on a connection (not for a whole transfer).
    pub io_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: false,
            tls_ca_files: Vec::new(),
            credentials: None,
            auth_file: None,
            retries: 4,
            retry_delay: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
            user_agent: concat!("strata/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The longest delay between retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);
/// How much of an error body is read to find the registry's error codes: 64 KiB, far
/// above any real `{"errors":[...]}` body.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// The largest token server response read: 1 MiB (real tokens are a few KiB).
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;
/// A token is renewed this long before the expiry the token server gave.
const TOKEN_MARGIN: Duration = Duration::from_secs(5);
/// The lifetime of a token whose server gave none (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;
/// Tokens are renewed after a day at most, whatever the server says (and an absurd
/// `expires_in` cannot overflow the clock arithmetic).
const MAX_TOKEN_LIFETIME: u64 = 24 * 3600;

/// The access a request needs, as token scopes (`repository:NAME:pull,push`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    scopes: Vec<String>,
    /// The repository named in errors.
    repository: String,
}

impl Scope {
    /// Pull access to `repository`.
    pub(crate) fn pull(repository: &str) -> Self {
        Scope { scopes: vec![format!("repository:{repository}:pull")], repository: repository.to_owned() }
    }

    /// Push access to `repository`, and pull access to `mount_from` if given.
    pub(crate) fn push(repository: &str, mount_from: Option<&str>) -> Self {
        let mut scopes = vec![format!("repository:{repository}:pull,push")];
        if let Some(from) = mount_from.filter(|f| *f != repository) {
            scopes.push(format!("repository:{from}:pull"));
        }
        Scope { scopes, repository: repository.to_owned() }
    }

    /// No repository: the `/v2/` check of login.
    pub(crate) fn base() -> Self {
        Scope { scopes: Vec::new(), repository: "/v2/".to_owned() }
    }

    fn key(&self) -> String {
        self.scopes.join(" ")
    }
}

/// HTTP methods the distribution API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// A request body.
pub(crate) enum Body<'a> {
    /// No body.
    None,
    /// Bytes in memory (replayable, so a 401 can be answered and the request resent).
    Bytes(&'a [u8]),
    /// A stream of exactly this many bytes (not replayable).
    Reader(&'a mut dyn Read, u64),
}

/// A request to the registry.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: Method, url: String) -> Self {
        Request { method, url, headers: Vec::new(), body: Body::None }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

/// A response, body unread.
pub(crate) type HttpResponse = Response<ureq::Body>;

#[derive(Debug)]
struct Token {
    value: String,
    renew_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// `https://host` or `http://host`, once the registry has answered.
    base: Option<String>,
    /// What the registry asked for on `/v2/` (or later): `None` if nothing.
    challenge: Option<Challenge>,
    /// Bearer tokens by scope.
    tokens: HashMap<String, Token>,
}

/// A blocking client for one registry.
///
/// It finds the scheme (HTTPS, or plain HTTP where allowed) and the authentication the
/// registry wants from `GET /v2/`, fetches and caches bearer tokens per scope, and
/// retries transient failures. [`pull`](crate::pull) and [`push`](crate::push) make
/// one for each operation; it is cheap to create (no request until first use) and can
/// be shared between threads.
#[derive(Debug)]
pub(crate) struct Client {
    registry: String,
    host: String,
    options: RegistryOptions,
    credentials: Option<Credentials>,
    agent: ureq::Agent,
    state: Mutex<State>,
    /// Held while fetching a token, so that concurrent transfers wait for one token
    /// instead of each fetching their own.
    token_fetch: Mutex<()>,
}

impl Client {
    /// A client for `registry` (`host[:port]` as in a reference; `docker.io` means
    /// Docker Hub). Credentials come from the options, else from the credentials file.
    pub(crate) fn new(registry: &str, options: &RegistryOptions) -> Result<Client> {
        let reference =
            strata_spec::Reference::from_parts(registry, "x", None, None).map_err(Error::InvalidReference)?;
        let host = reference.api_host().to_owned();
        let credentials = match &options.credentials {
            Some(c) => Some(c.clone()),
            None => {
                let file = options.auth_file.clone().map(AuthFile::at).or_else(AuthFile::default_location);
                match file {
                    Some(f) => f.get(reference.registry())?,
                    None => None,
                }
            }
        };
        let agent = build_agent(options, &host)?;
        Ok(Client {
            registry: reference.registry().to_owned(),
            host,
            options: options.clone(),
            credentials,
            agent,
            state: Mutex::new(State::default()),
            token_fetch: Mutex::new(()),
        })
    }

    /// The registry, as named in references (`docker.io`, `127.0.0.1:5000`).
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (plain inserts).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether plain HTTP may be used for this registry.
    fn allows_http(&self) -> bool {
        self.options.insecure || is_loopback(&self.host)
    }

    /// The registry's base URL (`https://host`), contacting it on first use.
    pub(crate) fn base(&self) -> Result<String> {
        if let Some(b) = &self.state().base {
            return Ok(b.clone());
        }
        self.ping()?;
        self.state().base.clone().ok_or_else(|| Error::InvalidResponse {
            url: format!("https://{}/v2/", self.host),
            reason: "no answer to the API version check".into(),
        })
    }

    /// `GET /v2/`: choose the scheme and learn the authentication challenge.
    pub(crate) fn ping(&self) -> Result<()> {
        self.with_retries(None, &crate::progress::NoProgress, |_| self.ping_once())
    }

    fn ping_once(&self) -> Result<()> {
        let err = match self.ping_at(&format!("https://{}", self.host)) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !matches!(err, Error::Tls { .. } | Error::Transport { .. }) || !self.allows_http() {
            return Err(err);
        }
        // The registry may speak plain HTTP. Take the answer if it is a registry's (200,
        // or 401 with or without a usable challenge); otherwise (a TLS server's 400 to
        // plain HTTP, no answer) report the HTTPS failure.
        match self.ping_at(&format!("http://{}", self.host)) {
            Ok(()) => Ok(()),
            Err(e @ (Error::Unauthorized { .. } | Error::InvalidResponse { .. })) => Err(e),
            Err(_) => Err(err),
        }
    }

    fn ping_at(&self, base: &str) -> Result<()> {
        let url = format!("{base}/v2/");
        let resp = self.raw(&mut Request::new(Method::Get, url.clone()), None)?;
        let status = resp.status().as_u16();
        if status != 200 && status != 401 {
            return Err(self.status_error(Method::Get, &url, resp, &Scope::base(), false));
        }
        let challenge = if status == 401 { pick_challenge(&resp) } else { None };
        if status == 401 && challenge.is_none() {
            return Err(Error::InvalidResponse {
                url,
                reason: "HTTP 401 without a Basic or Bearer WWW-Authenticate challenge".into(),
            });
        }
        drain(resp);
        let mut st = self.state();
        st.base = Some(base.to_owned());
        st.challenge = challenge;
        Ok(())
    }

    /// An absolute URL for `path` (which starts with `/v2/`).
    pub(crate) fn url(&self, path: &str) -> Result<String> {
        Ok(format!("{}{path}", self.base()?))
    }

    /// Resolve a `Location` header against the registry.
    pub(crate) fn resolve_location(&self, url: &str, location: &str) -> Result<String> {
        if location.starts_with("https://") || location.starts_with("http://") {
            Ok(location.to_owned())
        } else if location.starts_with('/') {
            Ok(format!("{}{location}", self.base()?))
        } else {
            Err(Error::InvalidResponse { url: url.to_owned(), reason: format!("unusable Location {location:?}") })
        }
    }

    /// Send a request with the authentication `scope` needs. A 401 is answered once
    /// (new token, or credentials) when the body can be resent. The status is not
    /// checked: see [`Client::check`].
    pub(crate) fn send(&self, mut req: Request<'_>, scope: &Scope) -> Result<HttpResponse> {
        self.base()?;
        let auth = self.authorization(scope, false)?;
        let resp = self.raw(&mut req, auth.as_deref())?;
        if resp.status() != StatusCode::UNAUTHORIZED || matches!(req.body, Body::Reader(..)) {
            return Ok(resp);
        }
        // The registry wants something else: learn its challenge and try once more.
        let challenge = pick_challenge(&resp);
        drain(resp);
        {
            let mut st = self.state();
            st.tokens.remove(&scope.key());
            if challenge.is_some() {
                st.challenge = challenge;
            }
        }
        let retry_auth = self.authorization(scope, true)?;
        let basic_refused = retry_auth == auth && retry_auth.as_deref().is_some_and(|a| a.starts_with("Basic "));
        if retry_auth.is_none() || basic_refused {
            return Err(Error::Unauthorized {
                registry: self.registry.clone(),
                repository: scope.repository.clone(),
                status: 401,
                credentials_sent: retry_auth.is_some(),
                errors: Vec::new(),
            });
        }
        self.raw(&mut req, retry_auth.as_deref())
    }

    /// Fail unless `resp` has one of the `ok` statuses: 401 and 403 become
    /// [`Error::Unauthorized`], anything else [`Error::Http`] with the registry's codes.
    pub(crate) fn check(
        &self,
        method: Method,
        url: &str,
        resp: HttpResponse,
        ok: &[u16],
        scope: &Scope,
    ) -> Result<HttpResponse> {
        if ok.contains(&resp.status().as_u16()) {
            return Ok(resp);
        }
        Err(self.status_error(method, url, resp, scope, true))
    }

    /// The error for an unexpected status (see [`Client::check`]).
    pub(crate) fn fail(&self, method: Method, url: &str, resp: HttpResponse, scope: &Scope) -> Error {
        self.status_error(method, url, resp, scope, true)
    }

    fn status_error(&self, method: Method, url: &str, resp: HttpResponse, scope: &Scope, authed: bool) -> Error {
        let status = resp.status().as_u16();
        let errors = read_errors(resp);
        if status == 401 || status == 403 {
            return Error::Unauthorized {
                registry: self.registry.clone(),
                repository: scope.repository.clone(),
                status,
                credentials_sent: authed && self.credentials.is_some() && self.state().challenge.is_some(),
                errors,
            };
        }
        Error::Http { method: method.as_str(), url: url.to_owned(), status, errors }
    }

    /// The `Authorization` header for `scope`: basic credentials, or a bearer token
    /// (cached, or fetched from the token server).
    fn authorization(&self, scope: &Scope, renew: bool) -> Result<Option<String>> {
        let cached = || {
            let st = self.state();
            let cached = st.tokens.get(&scope.key()).filter(|t| Instant::now() < t.renew_at).map(|t| t.value.clone());
            (st.challenge.clone(), cached)
        };
        let (challenge, token) = cached();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let (Some(t), false) = (token, renew) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let _fetching = self.token_fetch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // Another thread may have fetched it while this one waited.
                if !renew && let (_, Some(t)) = cached() {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                let header = format!("Bearer {}", token.value);
                self.state().tokens.insert(scope.key(), token);
                Ok(Some(header))
            }
        }
    }

    /// The Docker token flow: `GET realm?service=..&scope=..` with basic credentials
    /// if we have them; the answer's `token` (or `access_token`) is the bearer token.
    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &Scope) -> Result<Token> {
        let realm_is_plain = realm.starts_with("http://");
        if !(realm.starts_with("https://") || realm_is_plain) {
            return Err(Error::InvalidResponse {
                url: format!("https://{}/v2/", self.host),
                reason: format!("token realm {realm:?} is not an http(s) URL"),
            });
        }
        if realm_is_plain && !self.options.insecure && !is_loopback(url_host(realm)) {
            return Err(Error::InvalidResponse {
                url: realm.to_owned(),
                reason: "the token realm is plain HTTP to a non-loopback host (allowed only with the insecure option)"
                    .into(),
            });
        }
        let mut url = realm.to_owned();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        let mut add = |k: &str, v: &str| {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&query_escape(v));
            sep = '&';
        };
        if let Some(s) = service {
            add("service", s);
        }
        for s in &scope.scopes {
            add("scope", s);
        }
        if let Some(c) = &self.credentials {
            add("account", &c.username);
        }
        let mut req = Request::new(Method::Get, url.clone());
        if let Some(c) = &self.credentials {
            req = req.header("Authorization", c.basic_header());
        }
        let resp = self.with_retries(None, &crate::progress::NoProgress, |_| {
            let mut req =
                Request { method: req.method, url: req.url.clone(), headers: req.headers.clone(), body: Body::None };
            let resp = self.raw_unauthenticated(&mut req)?;
            let status = resp.status().as_u16();
            if status == 200 {
                return Ok(resp);
            }
            let errors = read_errors(resp);
            if status == 401 || status == 403 {
                return Err(Error::Unauthorized {
                    registry: self.registry.clone(),
                    repository: scope.repository.clone(),
                    status,
                    credentials_sent: self.credentials.is_some(),
                    errors,
                });
            }
            Err(Error::Http { method: "GET", url: strip_query(&url), status, errors })
        })?;
        let body = read_limited(resp, MAX_TOKEN_RESPONSE, &url)?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::InvalidResponse {
            url: strip_query(&url),
            reason: format!("token response is not JSON: {e}"),
        })?;
        let value = parsed.token.filter(|t| !t.is_empty()).or(parsed.access_token.filter(|t| !t.is_empty()));
        let value = value.ok_or_else(|| Error::InvalidResponse {
            url: strip_query(&url),
            reason: "token response has neither `token` nor `access_token`".into(),
        })?;
        if value.bytes().any(|c| c.is_ascii_control() || c == b' ') {
            return Err(Error::InvalidResponse {
                url: strip_query(&url),
                reason: "token contains spaces or control characters".into(),
            });
        }
        let seconds = parsed.expires_in.filter(|s| *s > 0).unwrap_or(DEFAULT_TOKEN_LIFETIME).min(MAX_TOKEN_LIFETIME);
        let lifetime = Duration::from_secs(seconds);
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN).max(Duration::from_secs(1));
        Ok(Token { value, renew_at })
    }

    /// Send without adding authentication.
    fn raw_unauthenticated(&self, req: &mut Request<'_>) -> Result<HttpResponse> {
        self.raw(req, None)
    }

    /// Send one request; `auth` is added only for URLs on this registry.
    fn raw(&self, req: &mut Request<'_>, auth: Option<&str>) -> Result<HttpResponse> {
        let url = req.url.clone();
        let ours = self.state().base.as_deref().is_some_and(|b| url.starts_with(b) && url[b.len()..].starts_with('/'));
        let mut headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let (Some(a), true) = (auth, ours) {
            headers.push(("Authorization", a));
        }
        let len_header;
        let result = match req.method {
            Method::Get => with_headers(self.agent.get(&url), &headers).call(),
            Method::Head => with_headers(self.agent.head(&url), &headers).call(),
            m => {
                let b = match m {
                    Method::Post => self.agent.post(&url),
                    Method::Put => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                let b = with_headers(b, &headers);
                match &mut req.body {
                    Body::None => b.header("Content-Length", "0").send_empty(),
                    Body::Bytes(bytes) => b.send(*bytes),
                    Body::Reader(r, len) => {
                        len_header = len.to_string();
                        b.header("Content-Length", &len_header).send(ureq::SendBody::from_reader(*r))
                    }
                }
            }
        };
        result.map_err(|e| classify(&url, e))
    }

    /// Run `f` until it succeeds, fails for good, or has failed transiently
    /// `retries + 1` times, sleeping with exponential backoff in between.
    pub(crate) fn with_retries<T>(
        &self,
        descriptor: Option<&strata_spec::Descriptor>,
        progress: &dyn Progress,
        mut f: impl FnMut(u32) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f(attempt) {
                Err(e) if e.is_transient() && attempt < self.options.retries => {
                    let delay = self.retry_delay(attempt);
                    progress.event(&Event::Retrying { descriptor, attempt: attempt + 1, delay, error: &e });
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    pub(crate) fn retry_delay(&self, attempt: u32) -> Duration {
        self.options.retry_delay.saturating_mul(1u32 << attempt.min(16)).min(MAX_RETRY_DELAY)
    }

    pub(crate) fn retries(&self) -> u32 {
        self.options.retries
    }
}

fn with_headers<B>(mut b: ureq::RequestBuilder<B>, headers: &[(&str, &str)]) -> ureq::RequestBuilder<B> {
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b
}

/// The HTTP agent: TLS roots, timeouts, and the proxy from the environment
/// (`HTTPS_PROXY`, `NO_PROXY`...) except for loopback registries, as Go's clients do.
fn build_agent(options: &RegistryOptions, host: &str) -> Result<ureq::Agent> {
    http_agent(options, &format!("https://{host}/"), 10)
}

/// Pick the challenge to answer: bearer if offered, else basic.
fn pick_challenge(resp: &HttpResponse) -> Option<Challenge> {
    let mut all = Vec::new();
    for v in resp.headers().get_all("www-authenticate") {
        if let Ok(s) = v.to_str() {
            all.extend(parse_challenges(s));
        }
    }
    let bearer = all.iter().position(|c| matches!(c, Challenge::Bearer { .. }));
    match bearer {
        Some(i) => Some(all.swap_remove(i)),
        None => all.into_iter().next(),
    }
}

/// Read a response body of at most `limit` bytes into memory.
pub(crate) fn read_limited(resp: HttpResponse, limit: u64, url: &str) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge { what: strip_query(url), limit };
    if content_length(&resp).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let reader = resp.into_body().into_reader();
    reader.take(limit + 1).read_to_end(&mut out).map_err(|e| Error::transport(&strip_query(url), e))?;
    if out.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(out)
}

/// The registry's error codes from an error response's JSON body (bounded read).
fn read_errors(resp: HttpResponse) -> Vec<RegistryError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<RegistryError>,
    }
    let mut bytes = Vec::new();
    if resp.into_body().into_reader().take(MAX_ERROR_BODY).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    match serde_json::from_slice::<Body>(&bytes) {
        Ok(b) => b.errors,
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim();
            if text.is_empty() {
                Vec::new()
            } else {
                let mut end = text.len().min(200);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                vec![RegistryError { code: String::new(), message: text[..end].to_owned() }]
            }
        }
    }
}

/// Read and drop a (small) body so that the connection can be reused.
pub(crate) fn drain(resp: HttpResponse) {
    let _ = std::io::copy(&mut resp.into_body().into_reader().take(MAX_ERROR_BODY), &mut std::io::sink());
}

/// The `Content-Length` of a response, if it has a valid one.
pub(crate) fn content_length(resp: &HttpResponse) -> Option<u64> {
    header(resp, "content-length")?.trim().parse().ok()
}

/// A header as a string (`None` if absent or not visible ASCII).
pub(crate) fn header<'a>(resp: &'a HttpResponse, name: &str) -> Option<&'a str> {
    resp.headers().get(name)?.to_str().ok()
}

/// Percent-encode a query string value.
pub(crate) fn query_escape(v: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(v, SET).to_string()
}

/// A URL without its query string (which may carry upload state), for messages.
pub(crate) fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// The host of an `http(s)://host[:port]/...` URL, port included.
/// The `host[:port]` of a URL (without user info).
pub(crate) fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// Whether `host[:port]` is a loopback name or address.
pub(crate) fn is_loopback(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (h, want) in [
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("[::1]", true),
            ("10.0.0.1:5000", false),
            ("registry.example.com", false),
            ("localhost.example.com", false),
            ("[2001:db8::1]:443", false),
        ] {
            assert_eq!(is_loopback(h), want, "{h}");
        }
        assert_eq!(url_host("http://127.0.0.1:9/token?x"), "127.0.0.1:9");
        assert_eq!(url_host("http://u:p@127.0.0.1:8080/x#f"), "127.0.0.1:8080");
        assert!(is_loopback(url_host("http://[::1]:80/x")) && is_loopback(url_host("https://LOCALHOST/")));
    }

    #[test]
    fn escapes_query_values() {
        assert_eq!(query_escape("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
        assert_eq!(query_escape("sha256:ab"), "sha256%3Aab");
    }

    #[test]
    fn scopes() {
        assert_eq!(Scope::pull("a/b").key(), "repository:a/b:pull");
        assert_eq!(Scope::push("a", Some("b")).key(), "repository:a:pull,push repository:b:pull");
        assert_eq!(Scope::push("a", Some("a")).key(), "repository:a:pull,push");
    }
}
