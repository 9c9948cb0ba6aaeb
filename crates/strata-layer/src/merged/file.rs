//! Reading one file of the merged tree from its layer.

use std::io::{self, Read};
use std::path::Path;

use rustix::io::Errno;

use super::{MergedTree, kind_name, not_found};
use crate::decompress::Decoder;
use crate::error::{Error, Result};
use crate::memtree::Kind;
use crate::read::TarReader;
use crate::sparse::Expand;
use crate::stream::{LayerStream, StreamOptions};

/// The stored bytes of one entry, `left` of them still to read.
struct Stored<'a> {
    stream: LayerStream<'a>,
    left: u64,
    layer: String,
}

impl Read for Stored<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.stream.read(buf.get_mut(..want).unwrap_or_default())?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("layer {}: file content ends {} bytes short", self.layer, self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

enum Content<'a> {
    Plain(Stored<'a>),
    /// A sparse file: its holes read as zeros.
    Sparse(Expand<Stored<'a>>),
}

/// The content of one file of the merged tree, read from its layer. Returned by
/// [`MergedTree::read_file`].
pub struct FileReader<'a> {
    content: Content<'a>,
    layer: String,
}

impl std::fmt::Debug for FileReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader").field("layer", &self.layer).finish()
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.content {
            Content::Plain(s) => s.read(buf),
            Content::Sparse(s) => s.read(buf),
        }
    }
}

/// Reading contents.
impl MergedTree {
    /// A reader of the content of the regular file at `path` (symlinks followed inside
    /// the root, as `open` would; a hard link reads its inode's content, wherever it came
    /// from; a sparse file's holes read as zeros). `open_layer(i)` opens layer `i`'s
    /// blob as stored again; the layer is decompressed up to the file's entry, whose
    /// header is checked against the one folded ([`Error::LayerChanged`] if it is not
    /// the same layer). The `diff_id` is not checked again: that needs the whole layer
    /// (use a verifying blob reader, or [`MergedTree::export_to`], which checks it).
    pub fn read_file<'a, R, F>(&self, path: impl AsRef<Path>, open_layer: F) -> Result<FileReader<'a>>
    where
        R: Read + 'a,
        F: FnOnce(usize) -> io::Result<R>,
    {
        let path = path.as_ref();
        let k = self.lookup(path, true)?;
        let (ino, n) = self.tree.get(k).ok_or_else(|| not_found(path, Errno::NOENT))?;
        let (Kind::File, Some(src)) = (n.kind(), n.source()) else {
            return Err(Error::WrongKind { path: path.to_path_buf(), expected: "file", found: kind_name(n.kind()) });
        };
        let stats = self.layers.get(src.layer).ok_or_else(|| not_found(path, Errno::NOENT))?;
        let name = stats.name.clone();
        let reader = open_layer(src.layer).map_err(|source| Error::OpenLayer { layer: name.clone(), source })?;
        let dec = Decoder::new(reader, Some(stats.compression), &name)?;
        let opts = StreamOptions::default().digest(None).max_size(self.limits.max_layer_size);
        let mut tar = TarReader::new(LayerStream::inline(dec, &opts), self.limits.clone(), &name);
        let changed = |reason: String| Error::LayerChanged { layer: name.clone(), reason };
        let mut ordinal = 0u64;
        loop {
            let (size, stored) = match tar.next_entry() {
                Ok(Some(e)) => (e.size, e.sparse.as_ref().map_or(e.size, |m| m.stored())),
                Ok(None) => return Err(changed(format!("it ends before entry {}", src.entry))),
                Err(e) => return Err(tar.into_inner().explain(e)),
            };
            if ordinal == src.entry {
                let at = tar.get_mut().position();
                let sparse = tar.entry().sparse.clone();
                if size != n.size
                    || at != src.offset
                    || sparse.as_ref() != self.tree.extra(ino).and_then(|e| e.sparse.as_ref())
                {
                    return Err(changed(format!(
                        "entry {} has {size} bytes at offset {at}, not {} at {}",
                        src.entry, n.size, src.offset
                    )));
                }
                let stored = Stored { stream: tar.into_inner(), left: stored, layer: name.clone() };
                let content = match sparse {
                    Some(map) => Content::Sparse(Expand::new(stored, map, size)),
                    None => Content::Plain(stored),
                };
                return Ok(FileReader { content, layer: name });
            }
            ordinal += 1;
        }
    }
}
