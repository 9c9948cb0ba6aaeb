//! `ADD <url>`: the file downloaded over HTTP(S) into a temporary file, hashed while it
//! streams, bounded in size and time. Off unless [`FetchOptions::enabled`].
//!
//! What docker does, and so what this does: `http://` and `https://` only; redirects
//! followed; a non-2xx answer is an error; the file is saved as served, never
//! extracted; its time is the `Last-Modified` header's, else the Unix epoch (BuildKit's
//! choice, which keeps the layer reproducible); `--checksum=sha256:<hex>` is checked.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_layer::Timestamp;
use strata_spec::{Algorithm, Digest, Digester};

use crate::error::{Error, Result};

/// Largest file an `ADD <url>` downloads unless told otherwise: 1 GiB, above any
/// release tarball or binary one would reasonably add, far below a full disk.
pub const DEFAULT_FETCH_LIMIT: u64 = 1 << 30;
/// Redirects followed, as Go's HTTP client (and so docker) does.
const MAX_REDIRECTS: u32 = 10;
/// Read buffer: 256 KiB, the size the context hasher reads with.
const BUF: usize = 256 << 10;

/// How `ADD <url>` downloads ([`BuildOptions::fetch`](crate::BuildOptions::fetch)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Whether `ADD` may download URLs at all (`strata build --allow-url-fetch`). Off by
    /// default: a build then reads nothing but its context, its base images and their
    /// registry, and an `ADD <url>` is an error that says how to turn this on.
    pub enabled: bool,
    /// Largest body accepted, in bytes ([`DEFAULT_FETCH_LIMIT`]); a bigger one fails the
    /// step and leaves nothing behind.
    pub max_bytes: u64,
    /// Longest wait to connect.
    pub connect_timeout: Duration,
    /// Longest wait for each read or write on the connection (a stalled server fails,
    /// a slow but steady one does not).
    pub io_timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: u32,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            enabled: false,
            max_bytes: DEFAULT_FETCH_LIMIT,
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
            max_redirects: MAX_REDIRECTS,
        }
    }
}

/// A downloaded file.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// Where it was saved.
    pub path: PathBuf,
    /// SHA-256 of its content.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// `Last-Modified`, else the epoch.
    pub mtime: Timestamp,
    /// Its name: the URL path's last segment, else `Content-Disposition`'s file name.
    pub name: Option<String>,
}

/// Whether a source of `ADD` is a URL (any `scheme://`, or git's `git@host:`), as
/// opposed to a path in the context.
pub(crate) fn is_url(s: &str) -> bool {
    if s.starts_with("git@") {
        return true;
    }
    match s.split_once("://") {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// Whether the URL is one this module fetches (`http://` or `https://`).
pub(crate) fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Download `url` into the new file `path`, hashing it as it goes; `checksum`, when
/// given, must match.
pub(crate) fn fetch(url: &str, path: &Path, opts: &FetchOptions, checksum: Option<&Digest>) -> Result<Fetched> {
    if !is_http(url) {
        return Err(Error::UrlScheme { url: url.to_owned() });
    }
    let fail = |reason: String| Error::Fetch { url: url.to_owned(), reason };
    // The registry client's agent: the same TLS roots and proxy rules for every
    // HTTPS request strata makes.
    let http = strata_registry::RegistryOptions {
        connect_timeout: opts.connect_timeout,
        io_timeout: opts.io_timeout,
        user_agent: concat!("strata-build/", env!("CARGO_PKG_VERSION")).to_owned(),
        ..Default::default()
    };
    let agent = strata_registry::http_agent(&http, url, opts.max_redirects).map_err(|e| fail(e.to_string()))?;
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::TooManyRedirects => fail(format!("more than {} redirects", opts.max_redirects)),
        e => fail(e.to_string()),
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::HttpStatus {
            url: url.to_owned(),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
        });
    }
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let too_large = || Error::FetchTooLarge { url: url.to_owned(), limit: opts.max_bytes };
    if header("content-length").and_then(|l| l.trim().parse::<u64>().ok()).is_some_and(|l| l > opts.max_bytes) {
        return Err(too_large());
    }
    let mtime = header("last-modified").and_then(|t| parse_http_date(&t)).unwrap_or(0);
    let name = url_file_name(url).or_else(|| header("content-disposition").and_then(|c| disposition_file_name(&c)));

    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(Error::io("create", path))?;
    let mut sha256 = Digester::new(Algorithm::Sha256);
    let mut other = checksum.filter(|c| c.algorithm() != Algorithm::Sha256).map(|c| Digester::new(c.algorithm()));
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; BUF];
    let mut size: u64 = 0;
    loop {
        let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > opts.max_bytes {
            return Err(too_large());
        }
        let chunk = buf.get(..n).unwrap_or_default();
        sha256.update(chunk);
        if let Some(d) = &mut other {
            d.update(chunk);
        }
        file.write_all(chunk).map_err(Error::io("write", path))?;
    }
    file.flush().map_err(Error::io("write", path))?;
    let digest = sha256.finish();
    if let Some(expected) = checksum {
        let actual = match other {
            Some(d) => d.finish(),
            None => digest.clone(),
        };
        if &actual != expected {
            return Err(Error::ChecksumMismatch { url: url.to_owned(), expected: expected.clone(), actual });
        }
    }
    Ok(Fetched { path: path.to_path_buf(), digest, size, mtime: Timestamp::new(mtime, 0), name })
}

/// The file name an URL gives: its path's last segment, percent-decoded, when the path
/// does not end with `/` (what docker's classic builder takes).
pub(crate) fn url_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.split(['?', '#']).next()?;
    let path = rest.find('/').map(|i| &rest[i..])?;
    if path.ends_with('/') {
        return None;
    }
    let last = path.rsplit('/').next()?;
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8().ok()?;
    base_name(&decoded)
}

/// `filename=` of a `Content-Disposition` header, its last path component.
fn disposition_file_name(header: &str) -> Option<String> {
    for param in header.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else { continue };
        if k.trim().eq_ignore_ascii_case("filename") {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            if v.ends_with('/') {
                return None;
            }
            return base_name(v);
        }
    }
    None
}

/// The last `/`-separated component of `s`, unless it names no file.
fn base_name(s: &str) -> Option<String> {
    let last = s.rsplit('/').next()?;
    (!matches!(last, "" | "." | "..") && !last.contains('\0')).then(|| last.to_owned())
}

/// An HTTP date (`Last-Modified`) as Unix seconds: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) or
/// asctime (`Sun Nov  6 08:49:37 1994`), the three forms RFC 9110 says to accept.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (day, month, year, time) = match s.split_once(',') {
        Some((_, rest)) => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                [d, m, y, t, zone] if is_gmt(zone) => (*d, *m, parse_num(y)?, *t),
                [dmy, t, zone] if is_gmt(zone) => {
                    let mut parts = dmy.split('-');
                    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
                    if parts.next().is_some() || y.len() != 2 {
                        return None;
                    }
                    // Go's two-digit years: 69-99 are 19xx, 00-68 are 20xx.
                    let y = parse_num(y)?;
                    (d, m, if y >= 69 { 1900 + y } else { 2000 + y }, *t)
                }
                _ => return None,
            }
        }
        None => match s.split_whitespace().collect::<Vec<_>>().as_slice() {
            [_, m, d, t, y] => (*d, *m, parse_num(y)?, *t),
            _ => return None,
        },
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day = parse_num(day)?;
    let mut hms = time.split(':');
    let (h, mi, sec) = (parse_num(hms.next()?)?, parse_num(hms.next()?)?, parse_num(hms.next()?)?);
    if hms.next().is_some() || sec > 59 {
        return None;
    }
    strata_spec::time::unix_seconds(year, month, day, h, mi, sec)
}

fn is_gmt(zone: &str) -> bool {
    zone == "GMT" || zone == "UTC"
}

fn parse_num(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_in_the_three_forms() {
        for s in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_http_date(s), Some(784_111_777), "{s}");
        }
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 23:59:59 GMT"), Some(951_868_799));
        assert_eq!(parse_http_date("Wed, 01 Mar 2023 00:00:00 GMT"), Some(1_677_628_800));
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, -6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn file_names_from_urls() {
        for (url, name) in [
            ("https://example.com/a/b/tool.tar.gz", Some("tool.tar.gz")),
            ("http://example.com/x?y=/z#frag", Some("x")),
            ("http://example.com/my%20file", Some("my file")),
            ("http://example.com/a%2Fb", Some("b")),
            ("http://example.com/dir/", None),
            ("http://example.com", None),
            ("http://example.com?x=/y", None),
            ("http://example.com/..", None),
            ("http://example.com/%2E%2E", None),
        ] {
            assert_eq!(url_file_name(url).as_deref(), name, "{url}");
        }
        assert_eq!(disposition_file_name("attachment; filename=\"../r.bin\"").as_deref(), Some("r.bin"));
        assert_eq!(disposition_file_name("inline; FileName=r.txt").as_deref(), Some("r.txt"));
        assert_eq!(disposition_file_name("attachment").as_deref(), None);
    }

    #[test]
    fn urls_and_schemes() {
        assert!(is_url("https://x/y") && is_url("ftp://x/y") && is_url("git@github.com:a/b.git"));
        assert!(!is_url("dir/file") && !is_url("a:b") && !is_url("://x") && !is_url("1a://x"));
        assert!(is_http("HTTP://X/y") && is_http("https://x") && !is_http("ftp://x/y") && !is_http("http:/x"));
    }
}
