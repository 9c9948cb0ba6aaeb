//! Progress of long operations, for progress bars: an optional observer in the options
//! of an operation, told how many bytes of each stored layer blob have been read.

use std::io::{self, Read};
use std::sync::Arc;

use strata_spec::Descriptor;

/// How far one layer of an operation has got.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LayerProgress<'a> {
    /// Position of the layer in the image, base first (0-based).
    pub index: usize,
    /// How many layers the operation works through.
    pub count: usize,
    /// The layer (its `size` is the total of `bytes`).
    pub descriptor: &'a Descriptor,
    /// Bytes of the stored (compressed) blob read so far.
    pub bytes: u64,
    /// The blob has been read to its end.
    pub done: bool,
}

/// An observer of [`LayerProgress`], called from whichever thread reads the layer (the
/// decompression thread of an unpack): keep it quick.
#[derive(Clone)]
pub struct ProgressHook(Arc<dyn Fn(&LayerProgress<'_>) + Send + Sync>);

impl ProgressHook {
    /// Wrap a closure.
    pub fn new(f: impl Fn(&LayerProgress<'_>) + Send + Sync + 'static) -> Self {
        ProgressHook(Arc::new(f))
    }

    fn call(&self, p: &LayerProgress<'_>) {
        (self.0)(p)
    }
}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// Report at most every this many bytes (plus at the end): often enough for a smooth
/// bar, rare enough that the observer costs nothing next to hashing and inflating.
const REPORT_EVERY: u64 = 256 << 10;

/// A reader that tells a [`ProgressHook`] how much of a layer blob it has read.
pub(crate) struct CountingReader<R> {
    inner: R,
    hook: Option<ProgressHook>,
    descriptor: Descriptor,
    index: usize,
    count: usize,
    bytes: u64,
    reported: u64,
    done: bool,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(
        inner: R,
        hook: Option<ProgressHook>,
        descriptor: &Descriptor,
        index: usize,
        count: usize,
    ) -> Self {
        CountingReader { inner, hook, descriptor: descriptor.clone(), index, count, bytes: 0, reported: 0, done: false }
    }

    fn report(&self) {
        if let Some(h) = &self.hook {
            h.call(&LayerProgress {
                index: self.index,
                count: self.count,
                descriptor: &self.descriptor,
                bytes: self.bytes,
                done: self.done,
            });
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hook.is_none() {
            return Ok(n);
        }
        self.bytes += n as u64;
        if n == 0 && !buf.is_empty() && !self.done {
            self.done = true;
            self.report();
        } else if self.bytes - self.reported >= REPORT_EVERY {
            self.reported = self.bytes;
            self.report();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use strata_spec::{Digest, MediaType};

    #[test]
    fn reports_bytes_and_the_end_once() {
        let data = vec![7u8; (REPORT_EVERY as usize) * 2 + 10];
        let desc = Descriptor::new(MediaType::OciLayer, Digest::sha256_of(&data), data.len() as u64);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let hook = ProgressHook::new(move |p| s.lock().unwrap().push((p.index, p.count, p.bytes, p.done)));
        let mut r = CountingReader::new(&data[..], Some(hook), &desc, 1, 3);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        let seen = seen.lock().unwrap();
        let last = *seen.last().unwrap();
        assert_eq!(last, (1, 3, data.len() as u64, true));
        assert_eq!(seen.iter().filter(|s| s.3).count(), 1, "{seen:?}");
        assert!(seen.len() >= 3, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0].2 <= w[1].2));
    }

    #[test]
    fn unpack_reports_every_layer_to_its_end() {
        use crate::{CommitOptions, LayerInput, Store, UnpackOptions};
        let work = tempfile::tempdir().unwrap();
        let store = Store::in_memory();
        let root = work.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/a"), vec![1u8; 300_000]).unwrap();
        let base = store.import(LayerInput::Dir(&root), &CommitOptions::default()).unwrap();
        std::fs::write(root.join("etc/b"), b"b").unwrap();
        let img = base.append(LayerInput::Dir(&root), &CommitOptions::default()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let hook =
            ProgressHook::new(move |p| s.lock().unwrap().push((p.index, p.count, p.bytes, p.descriptor.size, p.done)));
        img.unpack_with(work.path().join("c"), &UnpackOptions::default().progress(hook)).unwrap();
        let seen = seen.lock().unwrap();
        // Layers may finish out of order (the last read of a blob can come late).
        let mut done: Vec<_> = seen.iter().filter(|s| s.4).collect();
        done.sort();
        assert_eq!(done.len(), 2, "{seen:?}");
        for (i, d) in done.iter().enumerate() {
            assert_eq!((d.0, d.1), (i, 2));
            assert_eq!(d.2, d.3, "a finished layer read its whole blob");
            assert_eq!(d.3, img.layers()[i].size);
        }
    }
}
