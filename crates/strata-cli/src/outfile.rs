//! Files the CLI writes with `-o`: written beside the target and renamed into place, so
//! a failure leaves no half file, unless the target exists and is not a regular file (a
//! device such as `/dev/null`, a FIFO): that is written into as it is, as docker does,
//! never replaced.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// An output being written.
pub enum OutputFile {
    /// A temporary file beside the target, renamed over it by [`OutputFile::commit`].
    Replace { tmp: tempfile::NamedTempFile, path: PathBuf },
    /// The target itself (a device or a FIFO).
    Into { file: File },
}

impl OutputFile {
    /// Start writing `path`; `prefix` names the temporary file.
    pub fn create(path: &Path, prefix: &str) -> Result<OutputFile> {
        match std::fs::metadata(path) {
            Ok(md) if md.is_dir() => bail!("write {}: is a directory", path.display()),
            Ok(md) if !md.is_file() => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("open {}", path.display()))?;
                return Ok(OutputFile::Into { file });
            }
            _ => {}
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(dir)
            .with_context(|| format!("create a file in {}", dir.display()))?;
        Ok(OutputFile::Replace { tmp, path: path.to_path_buf() })
    }

    /// The file to write.
    pub fn file(&self) -> &File {
        match self {
            OutputFile::Replace { tmp, .. } => tmp.as_file(),
            OutputFile::Into { file } => file,
        }
    }

    /// Whether the output can seek (a regular file; not a device or a FIFO).
    pub fn seekable(&self) -> bool {
        matches!(self, OutputFile::Replace { .. })
    }

    /// Finish: a new file is synced, made `0644` and renamed over the target.
    pub fn commit(self) -> Result<()> {
        match self {
            OutputFile::Replace { tmp, path } => {
                use std::os::unix::fs::PermissionsExt;
                tmp.as_file().sync_all().with_context(|| format!("sync {}", path.display()))?;
                // Temporary files are created 0600.
                let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
                tmp.persist(&path).with_context(|| format!("write {}", path.display()))?;
                Ok(())
            }
            OutputFile::Into { .. } => Ok(()),
        }
    }
}
