//! The HTTP agent every request of strata goes through: the TLS backend (rustls or
//! native-tls, by feature) with its roots and extra CAs, timeouts, proxy rules, and the
//! mapping of ureq's errors to ours.

#[cfg(feature = "native-tls")]
use std::path::PathBuf;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::client::{RegistryOptions, is_loopback, strip_query, url_host};
use crate::error::{Error, Result};

/// The TLS backend this build of strata-registry uses: `"native-tls"` (the system's
/// library and roots) when its `native-tls` feature is enabled, else `"rustls"` (ring,
/// Mozilla's roots compiled in).
pub const TLS_BACKEND: &str = if cfg!(feature = "native-tls") { "native-tls" } else { "rustls" };

/// An HTTP agent set up as the registry client's: the backend's roots (Mozilla's with
/// rustls, the system's with native-tls) plus `options.tls_ca_files` (or no verification
/// with `options.insecure`), `options`' timeouts and user agent, HTTP statuses as
/// responses, and the proxy from the environment unless `url`'s host is a loopback one
/// (Go's clients never proxy those). Other crates' downloads (`ADD <url>` in strata-build)
/// use it so that every HTTPS request strata makes trusts the same roots.
pub fn http_agent(options: &RegistryOptions, url: &str, max_redirects: u32) -> Result<ureq::Agent> {
    let mut tls = tls_config();
    if options.insecure {
        tls = tls.disable_verification(true);
    } else {
        let mut extra = Vec::new();
        for path in &options.tls_ca_files {
            let pem = std::fs::read(path).map_err(Error::io("read", path))?;
            let certs = pem_certificates(&pem).map_err(|reason| Error::Config { path: path.clone(), reason })?;
            if certs.is_empty() {
                return Err(Error::Config { path: path.clone(), reason: "no PEM certificate in the file".into() });
            }
            extra.extend(certs);
        }
        tls = tls.root_certs(root_certs(extra));
    }
    let mut config = ureq::Agent::config_builder();
    if is_loopback(url_host(url)) {
        config = config.proxy(None);
    }
    let config = config
        .http_status_as_error(false)
        .tls_config(tls.build())
        .user_agent(options.user_agent.as_str())
        .timeout_connect(Some(options.connect_timeout))
        .timeout_per_read(Some(options.io_timeout))
        .timeout_per_write(Some(options.io_timeout))
        .max_redirects(max_redirects)
        // Enough idle connections for every concurrent transfer to keep its own.
        .max_idle_connections_per_host(16)
        .build();
    Ok(config.into())
}

/// The certificates of a PEM file (other items skipped).
fn pem_certificates(pem: &[u8]) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("bad PEM: {e}")),
        }
    }
    Ok(out)
}

/// The backend: native-tls, its connector built by ureq from the roots given.
#[cfg(feature = "native-tls")]
fn tls_config() -> ureq::tls::TlsConfigBuilder {
    TlsConfig::builder().provider(ureq::tls::TlsProvider::NativeTls)
}

/// The backend: rustls with ring as its crypto provider.
#[cfg(not(feature = "native-tls"))]
fn tls_config() -> ureq::tls::TlsConfigBuilder {
    TlsConfig::builder()
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
}

/// The roots with native-tls: the system's, as OpenSSL loads them; with extra CAs, the
/// system's bundle read here (ureq's native-tls connector takes either the built-in
/// roots or a list, not both) followed by the extras, as docker adds a registry's
/// `certs.d` CA to the system pool.
#[cfg(feature = "native-tls")]
fn root_certs(extra: Vec<Certificate<'static>>) -> RootCerts {
    if extra.is_empty() {
        return RootCerts::PlatformVerifier;
    }
    let mut roots = system_bundle()
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|pem| pem_certificates(&pem).ok())
        .unwrap_or_default();
    roots.extend(extra);
    RootCerts::new_with_certs(&roots)
}

/// The system's CA bundle: `SSL_CERT_FILE`, else the first of the distributions' usual
/// places that exists (Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine).
#[cfg(feature = "native-tls")]
fn system_bundle() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// The roots with rustls: one store, always given explicitly (ureq's own default would
/// compile a second copy of Mozilla's roots, webpki-roots, beside this one), then the
/// extra CAs.
#[cfg(not(feature = "native-tls"))]
fn root_certs(extra: Vec<Certificate<'static>>) -> RootCerts {
    let mut roots: Vec<Certificate<'static>> =
        webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect();
    roots.extend(extra);
    RootCerts::new_with_certs(&roots)
}

/// Map a ureq error to ours: TLS failures, protocol errors, and network errors (transient).
pub(crate) fn classify(url: &str, e: ureq::Error) -> Error {
    let url = strip_query(url);
    match e {
        ureq::Error::Tls(m) => Error::Tls { url, message: m.to_owned() },
        #[cfg(feature = "rustls")]
        ureq::Error::Rustls(e) => Error::Tls { url, message: e.to_string() },
        #[cfg(feature = "native-tls")]
        ureq::Error::NativeTls(e) => Error::Tls { url, message: e.to_string() },
        ureq::Error::Pem(e) => Error::Tls { url, message: e.to_string() },
        ureq::Error::BadUri(m) => Error::InvalidResponse { url, reason: format!("bad URL: {m}") },
        ureq::Error::Http(e) => Error::InvalidResponse { url, reason: e.to_string() },
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
            Error::InvalidResponse { url, reason: e.to_string() }
        }
        ureq::Error::LargeResponseHeader(..) | ureq::Error::Protocol(_) => {
            Error::InvalidResponse { url, reason: e.to_string() }
        }
        ureq::Error::Io(io) => {
            if is_tls_io(&io) {
                Error::Tls { url, message: io.to_string() }
            } else {
                Error::transport(&url, io)
            }
        }
        e => Error::transport(&url, e),
    }
}

/// Whether an I/O error is a TLS failure: rustls reports handshake failures as I/O errors
/// wrapping its own error.
#[cfg(feature = "rustls")]
fn is_tls_io(io: &std::io::Error) -> bool {
    io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// Whether an I/O error is a TLS failure: never with native-tls alone, whose failures come
/// as `ureq::Error::NativeTls`.
#[cfg(not(feature = "rustls"))]
fn is_tls_io(_: &std::io::Error) -> bool {
    false
}
