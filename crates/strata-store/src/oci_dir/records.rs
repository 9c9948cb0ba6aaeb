//! strata's records in a layout (`.strata/records/<kind>/<alg>/<hex>`, see
//! [`crate::record`]): where each lives, listing them, removing those whose blob is
//! gone, and checking them for fsck.

use std::fs;
use std::io;
use std::path::PathBuf;

use strata_spec::{Algorithm, Digest};

use super::OciDir;
use crate::error::{Error, Result};
use crate::fsck::{FsckReport, Problem};
use crate::record::RecordKind;
use crate::store::{Backend, BlobStore};

impl OciDir {
    fn records_dir(&self) -> PathBuf {
        self.private_dir().join("records")
    }

    /// Where a record lives: `.strata/records/<kind>/<alg>/<hex>` (safe for the same
    /// reason as [`OciDir::blob_path`]).
    pub(super) fn record_path(&self, kind: RecordKind, digest: &Digest) -> PathBuf {
        self.records_dir().join(kind.name()).join(digest.algorithm().name()).join(digest.hex())
    }

    /// Every file under `.strata/records/<kind>/`: the digest it names, or why it names
    /// none (a stray).
    fn scan_records(&self, kind: RecordKind) -> Result<Vec<(PathBuf, std::result::Result<Digest, &'static str>)>> {
        let dir = self.records_dir().join(kind.name());
        let mut out = Vec::new();
        let algs = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("read directory", dir)(e)),
        };
        for alg in algs {
            let alg = alg.map_err(Error::io("read directory", &dir))?;
            let path = alg.path();
            let name = alg.file_name().to_string_lossy().into_owned();
            let known = [Algorithm::Sha256, Algorithm::Sha512].into_iter().find(|a| a.name() == name);
            let is_dir = alg.file_type().map_err(Error::io("stat", &path))?.is_dir();
            let Some(known) = known.filter(|_| is_dir) else {
                out.push((path, Err("not a directory of a known digest algorithm")));
                continue;
            };
            for rec in fs::read_dir(&path).map_err(Error::io("read directory", &path))? {
                let rec = rec.map_err(Error::io("read directory", &path))?;
                let rpath = rec.path();
                let is_file = rec.file_type().map_err(Error::io("stat", &rpath))?.is_file();
                let digest = rec.file_name().to_str().and_then(|hex| Digest::parse(&format!("{known}:{hex}")).ok());
                out.push(match digest {
                    Some(d) if is_file => (rpath, Ok(d)),
                    Some(_) => (rpath, Err("not a regular file (symlinks are not followed)")),
                    None => (rpath, Err("name is not a digest")),
                });
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Remove records whose blob is gone, and files that are not records. Returns how
    /// many were removed.
    pub(super) fn sweep_records(&self) -> Result<usize> {
        let mut removed = 0;
        for kind in RecordKind::ALL {
            for (path, named) in self.scan_records(kind)? {
                let keep = match &named {
                    Ok(d) => self.stat(d)?.is_some(),
                    Err(_) => false,
                };
                if keep {
                    continue;
                }
                let r = if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                match r {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", path)(e)),
                }
            }
        }
        Ok(removed)
    }

    /// fsck of the records: strays and records that do not parse. A record whose blob is
    /// gone is not a problem (a crash between GC's two steps leaves one).
    pub(super) fn check_records(&self, report: &mut FsckReport) -> Result<()> {
        for kind in RecordKind::ALL {
            for (path, named) in self.scan_records(kind)? {
                let digest = match named {
                    Ok(d) => d,
                    Err(reason) => {
                        report.problems.push(Problem::Stray { path, reason });
                        continue;
                    }
                };
                report.records_checked += 1;
                match self.record(kind, &digest) {
                    Ok(Some(bytes)) => {
                        if let Err(reason) = kind.check(&bytes) {
                            report.problems.push(Problem::BadRecord { path, reason });
                        }
                    }
                    Ok(None) => {}
                    Err(e) => report.problems.push(Problem::BadRecord { path, reason: e.to_string() }),
                }
            }
        }
        Ok(())
    }
}
