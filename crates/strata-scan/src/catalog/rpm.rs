//! RPM: the SQLite database (`rpmdb.sqlite`) of rpm 4.16 and later, whose `Packages`
//! table holds one header blob per package. A Berkeley DB (`Packages`) or NDB
//! (`Packages.db`) database is not read: the inventory says so in a
//! [`crate::Warning`].

use rusqlite::{Connection, OpenFlags};

use super::Found;
use crate::Warning;
use crate::error::{Error, Result};
use crate::package::{Distro, Kind, Package, purl};
use crate::root::Root;

/// Where distributions keep the SQLite database, newest layout first.
pub const SQLITE_PATHS: [&str; 2] = ["usr/lib/sysimage/rpm/rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite"];
/// Berkeley DB and NDB databases, which strata does not read.
pub const OTHER_PATHS: [&str; 4] = [
    "var/lib/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages.db",
];

pub(crate) fn catalog(root: &dyn Root, distro: Option<&Distro>, found: &mut Found) -> Result<()> {
    for path in SQLITE_PATHS {
        let Some(bytes) = root.read(path)? else { continue };
        let wal = root.read(&format!("{path}-wal"))?;
        for h in read_sqlite(path, &bytes, wal.as_deref())? {
            found.packages.push(h.into_package(path, distro));
        }
        return Ok(());
    }
    for path in OTHER_PATHS {
        if root.is_file(path) {
            found.warnings.push(Warning::UnreadableRpmDb { path: path.to_owned() });
        }
    }
    Ok(())
}

/// The header blobs of a database's `Packages` table, parsed.
fn read_sqlite(path: &str, db: &[u8], wal: Option<&[u8]>) -> Result<Vec<Header>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create temporary directory for", path, e))?;
    let file = dir.path().join("rpmdb.sqlite");
    std::fs::write(&file, db).map_err(|e| Error::io("write", &file, e))?;
    if let Some(w) = wal {
        let f = dir.path().join("rpmdb.sqlite-wal");
        std::fs::write(&f, w).map_err(|e| Error::io("write", &f, e))?;
    }
    let sql = |source| Error::Sqlite { path: path.to_owned(), source };
    let conn = Connection::open_with_flags(&file, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sql)?;
    let mut stmt = conn.prepare("SELECT hnum, blob FROM Packages ORDER BY hnum").map_err(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(sql)?;
        let h = Header::parse(&blob).map_err(|r| Error::db(path, format!("package header {hnum}: {r}")))?;
        if h.name == "gpg-pubkey" {
            // Imported signing keys are stored as pseudo-packages; `rpm -qa` lists them,
            // but they are not software.
            continue;
        }
        out.push(h);
    }
    Ok(out)
}

/// The fields of a package header the inventory uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: Option<String>,
    pub license: Option<String>,
    pub source_rpm: Option<String>,
    pub files: Vec<String>,
}

// Tags of rpm's header format (rpmtag.h).
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_OLDFILENAMES: u32 = 1027;
const TAG_SOURCERPM: u32 = 1044;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
const TAG_FILEMODES: u32 = 1030;
// Types.
const TYPE_INT16: u32 = 3;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;
/// An index entry: tag, type, offset, count, each a big-endian u32.
const ENTRY_SIZE: usize = 16;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl Header {
    /// Parse a header blob as stored in the database (no lead, no magic): entry count,
    /// data size, the index, the data.
    pub(crate) fn parse(blob: &[u8]) -> std::result::Result<Header, String> {
        let il = be32(blob, 0).ok_or("shorter than 8 bytes")? as usize;
        let dl = be32(blob, 4).ok_or("shorter than 8 bytes")? as usize;
        let data_at = il.checked_mul(ENTRY_SIZE).and_then(|n| n.checked_add(8)).ok_or("index too large")?;
        let data = blob
            .get(data_at..data_at.checked_add(dl).ok_or("data too large")?)
            .ok_or_else(|| format!("{} bytes, but the header says {il} entries and {dl} data bytes", blob.len()))?;
        let mut h = Header::default();
        let mut dirnames = Vec::new();
        let mut basenames = Vec::new();
        let mut dirindexes = Vec::new();
        let mut modes = Vec::new();
        let mut old = Vec::new();
        for i in 0..il {
            let e = 8 + i * ENTRY_SIZE;
            let (Some(tag), Some(ty), Some(off), Some(count)) =
                (be32(blob, e), be32(blob, e + 4), be32(blob, e + 8), be32(blob, e + 12))
            else {
                return Err(format!("index entry {i} is cut short"));
            };
            let (off, count) = (off as usize, count as usize);
            let strings = |n: usize| -> std::result::Result<Vec<String>, String> {
                let mut out = Vec::with_capacity(n.min(4096));
                let mut at = off;
                for _ in 0..n {
                    let rest = data.get(at..).ok_or_else(|| format!("tag {tag}: offset {at} outside the data"))?;
                    let end =
                        rest.iter().position(|&b| b == 0).ok_or_else(|| format!("tag {tag}: unterminated string"))?;
                    out.push(super::text(&rest[..end]).into_owned());
                    at += end + 1;
                }
                Ok(out)
            };
            let ints = |size: usize| -> std::result::Result<Vec<u32>, String> {
                let bytes = data
                    .get(off..count.checked_mul(size).and_then(|n| n.checked_add(off)).unwrap_or(usize::MAX))
                    .ok_or_else(|| format!("tag {tag}: {count} integers outside the data"))?;
                Ok(bytes
                    .chunks_exact(size)
                    .map(|c| {
                        if size == 4 {
                            u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                        } else {
                            u32::from(u16::from_be_bytes([c[0], c[1]]))
                        }
                    })
                    .collect())
            };
            let one = || strings(1).map(|mut v| v.pop().unwrap_or_default());
            match (tag, ty) {
                (TAG_NAME, TYPE_STRING) => h.name = one()?,
                (TAG_VERSION, TYPE_STRING) => h.version = one()?,
                (TAG_RELEASE, TYPE_STRING) => h.release = one()?,
                (TAG_EPOCH, TYPE_INT32) => h.epoch = ints(4)?.first().copied(),
                (TAG_LICENSE, TYPE_STRING | TYPE_I18NSTRING) => h.license = Some(one()?),
                (TAG_ARCH, TYPE_STRING) => h.arch = Some(one()?),
                (TAG_SOURCERPM, TYPE_STRING) => h.source_rpm = Some(one()?),
                (TAG_DIRNAMES, TYPE_STRING_ARRAY) => dirnames = strings(count)?,
                (TAG_BASENAMES, TYPE_STRING_ARRAY) => basenames = strings(count)?,
                (TAG_OLDFILENAMES, TYPE_STRING_ARRAY) => old = strings(count)?,
                (TAG_DIRINDEXES, TYPE_INT32) => dirindexes = ints(4)?,
                (TAG_FILEMODES, TYPE_INT16) => modes = ints(2)?,
                _ => {}
            }
        }
        if h.name.is_empty() {
            return Err("no name".into());
        }
        let is_dir = |i: usize| modes.get(i).is_some_and(|m| m & 0o170000 == 0o040000);
        for (i, b) in basenames.iter().enumerate() {
            let d = dirindexes.get(i).and_then(|&d| dirnames.get(d as usize)).ok_or("file with no directory")?;
            if !is_dir(i) {
                h.files.push(format!("{d}{b}").trim_start_matches('/').to_owned());
            }
        }
        for (i, f) in old.iter().enumerate() {
            if !is_dir(i) {
                h.files.push(f.trim_start_matches('/').to_owned());
            }
        }
        h.files.sort();
        h.files.dedup();
        Ok(h)
    }

    fn into_package(self, location: &str, distro: Option<&Distro>) -> Package {
        let evr = match self.epoch {
            Some(e) => format!("{e}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        };
        let ns = distro.map_or("redhat", |d| d.id.as_str());
        let dq = distro.map(Distro::qualifier).unwrap_or_default();
        let epoch = self.epoch.map(|e| e.to_string()).unwrap_or_default();
        let upstream = self.source_rpm.clone().unwrap_or_default();
        let q =
            [("arch", self.arch.as_deref().unwrap_or("")), ("epoch", &epoch), ("distro", &dq), ("upstream", &upstream)];
        let purl = purl(Kind::Rpm, Some(ns), &self.name, &format!("{}-{}", self.version, self.release), &q);
        // `foo-1.2-3.src.rpm` -> `foo`.
        let source = self.source_rpm.as_deref().and_then(|s| {
            let s = s.strip_suffix(".src.rpm").or_else(|| s.strip_suffix(".nosrc.rpm"))?;
            let (s, _release) = s.rsplit_once('-')?;
            Some(s.rsplit_once('-')?.0.to_owned())
        });
        Package {
            kind: Kind::Rpm,
            name: self.name,
            version: evr,
            arch: self.arch,
            source,
            source_version: None,
            license: self.license,
            purl,
            location: location.to_owned(),
            record: None,
            files: crate::Files::from(self.files),
            layer: None,
            changed_in: Vec::new(),
        }
    }
}
