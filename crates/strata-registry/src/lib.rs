#![doc = include_str!("../README.md")]

#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
compile_error!(
    "strata-registry needs a TLS backend: enable its `rustls` feature (the default) or `native-tls` \
     (with the facade: `strata` features `rustls` or `native-tls` beside `registry`)"
);

mod agent;
mod auth;
mod client;
mod error;
mod pool;
mod progress;
mod pull;
mod push;
mod referrers;

pub use agent::{TLS_BACKEND, http_agent};
pub use auth::{AuthFile, Credentials};
pub use client::RegistryOptions;
pub use error::{Error, RegistryError, Result};
pub use progress::{Event, NoProgress, Progress, SkipReason};
pub use pull::{DEFAULT_CONCURRENCY, PullOptions, Pulled, fetch_blobs, fetch_document, pull};
pub use push::{DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKED_THRESHOLD, PushOptions, Pushed, mount_source, push};

/// The spec crate, re-exported so callers use the same `Reference` and `Descriptor`.
pub use strata_spec as spec;
/// The store crate, re-exported so callers use the same `Backend`.
pub use strata_store as store;

use client::{Client, Method, Request, Scope};

/// The header parsers, reachable from outside the crate for the fuzz targets in
/// `fuzz/` only (feature `fuzzing`; not part of the API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parse a `WWW-Authenticate` header; each challenge as its `Debug` text.
    pub fn parse_challenges(header: &str) -> Vec<String> {
        crate::auth::parse_challenges(header).iter().map(|c| format!("{c:?}")).collect()
    }

    /// Parse a `Content-Range` header: `(start, total)`.
    pub fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
        crate::pull::parse_content_range(v)
    }
}

/// Check `credentials` against `registry` (`host[:port]`, or `docker.io`) and store
/// them in docker's credentials file, as `docker login` does.
///
/// The check is `GET /v2/` answered with the registry's challenge: basic
/// credentials, or a bearer token obtained with them from the token server. The file
/// is [`RegistryOptions::auth_file`], else [`AuthFile::default_location`]; other
/// entries in it are kept, and it is written with mode 0600. Returns the file.
pub fn login(registry: &str, credentials: &Credentials, options: &RegistryOptions) -> Result<AuthFile> {
    let registry = registry_name(registry)?;
    let options = RegistryOptions { credentials: Some(credentials.clone()), ..options.clone() };
    let client = Client::new(&registry, &options)?;
    let scope = Scope::base();
    let url = client.url("/v2/")?;
    let resp = client.send(Request::new(Method::Get, url.clone()), &scope)?;
    client::drain(client.check(Method::Get, &url, resp, &[200], &scope)?);
    let file = auth_file(&options)?;
    file.set(&registry, credentials)?;
    Ok(file)
}

/// Remove the credentials for `registry` from the credentials file (no network).
/// Returns whether there were any.
pub fn logout(registry: &str, options: &RegistryOptions) -> Result<bool> {
    let registry = registry_name(registry)?;
    auth_file(options)?.remove(&registry)
}

fn auth_file(options: &RegistryOptions) -> Result<AuthFile> {
    options.auth_file.clone().map(AuthFile::at).or_else(AuthFile::default_location).ok_or_else(|| Error::Config {
        path: "~/.docker/config.json".into(),
        reason: "no credentials file: set HOME, DOCKER_CONFIG or REGISTRY_AUTH_FILE".into(),
    })
}

/// `https://host:port/v1/` -> `host:port`, validated as a registry name.
fn registry_name(input: &str) -> Result<String> {
    let s = input.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    let r = spec::Reference::from_parts(host, "x", None, None).map_err(Error::InvalidReference)?;
    let name = r.registry();
    Ok(if name == "index.docker.io" || name == "registry-1.docker.io" { spec::DOCKER_HUB } else { name }.to_owned())
}
