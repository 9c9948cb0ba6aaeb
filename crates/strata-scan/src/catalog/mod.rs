//! The catalogers: each reads one kind of package database from a [`Root`].

pub(crate) mod apk;
pub(crate) mod control;
pub(crate) mod dpkg;
pub(crate) mod npm;
pub(crate) mod python;
pub(crate) mod rpm;

use crate::Warning;
use crate::error::Result;
use crate::package::{Distro, Package};
use crate::root::Root;

/// What the catalogers found so far.
pub(crate) struct Found {
    /// The regular files of the root that the catalogers look for by name ([`listed`]:
    /// listed once, shared by them).
    pub files: Vec<String>,
    pub packages: Vec<Package>,
    pub warnings: Vec<Warning>,
}

/// Where os-release may be, in the order systemd reads them.
const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// The distribution of a root.
/// A database's bytes as text, bad UTF-8 replaced (`String::from_utf8_lossy`), checked
/// by `str::from_utf8` first: it goes through ASCII a word at a time, the lossy decoder a
/// byte at a time, and the databases are mostly ASCII (a Debian image's `.list` and
/// copyright files are megabytes).
pub(crate) fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

pub(crate) fn distro(root: &dyn Root) -> Result<Option<Distro>> {
    for p in OS_RELEASE {
        if let Some(b) = root.read(p)? {
            return Ok(Distro::parse(&text(&b)));
        }
    }
    Ok(None)
}

/// Whether a cataloger may read the regular file at `path` (normalised): what a scan
/// keeps of each layer in its cache record. A file it misses is still found, read from
/// its layer.
pub(crate) fn wanted(path: &str) -> bool {
    if OS_RELEASE.contains(&path)
        || path == dpkg::STATUS
        || path == apk::INSTALLED
        || rpm::SQLITE_PATHS.iter().any(|p| path.strip_prefix(p).is_some_and(|r| r.is_empty() || r == "-wal"))
    {
        return true;
    }
    let in_dir = |dir: &str| path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')).filter(|r| !r.contains('/'));
    if in_dir(dpkg::STATUS_D).is_some() || in_dir(dpkg::INFO).is_some_and(|n| n.ends_with(".list")) {
        return true;
    }
    if path
        .strip_prefix(dpkg::DOC)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|r| r.strip_suffix("/copyright").is_some_and(|name| !name.is_empty() && !name.contains('/')))
    {
        return true;
    }
    path.ends_with(".dist-info/METADATA") || path.ends_with(".dist-info/RECORD") || npm::is_package_json(path)
}

/// Whether a cataloger looks for the regular file at `path` by its name (rather than
/// reading a known path): what [`Found::files`] lists. Only paths [`wanted`] accepts
/// (a scan record's list of them answers).
fn listed(path: &str) -> bool {
    let in_status_d =
        path.strip_prefix(dpkg::STATUS_D).and_then(|r| r.strip_prefix('/')).is_some_and(|r| !r.contains('/'));
    (in_status_d || path.ends_with(".dist-info/METADATA") || npm::is_package_json(path)) && wanted(path)
}

/// Run every cataloger.
pub(crate) fn all(root: &dyn Root, distro: Option<&Distro>) -> Result<Found> {
    let mut found = Found { files: root.database_files_where(&listed), packages: Vec::new(), warnings: Vec::new() };
    dpkg::catalog(root, distro, &mut found)?;
    apk::catalog(root, distro, &mut found)?;
    rpm::catalog(root, distro, &mut found)?;
    python::catalog(root, &mut found)?;
    npm::catalog(root, &mut found)?;
    Ok(found)
}
