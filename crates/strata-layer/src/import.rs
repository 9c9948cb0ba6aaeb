//! Taking a tar as a layer, byte for byte (`docker import TAR`, `crane append`): the
//! tar is hashed and compressed as it passes, and read on the way with exactly the rules
//! unpacking applies (the tar reader's framing and limits, then the union rules on a
//! tree in memory, on top of the layers below when there are some). What unpack would
//! refuse is refused here, with the same error, before anything is kept.

use std::io::{self, Read, Write};

use strata_spec::Compression;

use crate::error::{Error, Result};
use crate::fold::check_layer;
use crate::merged::MergedTree;
use crate::read::Limits;
use crate::source::LayerSource;
use crate::write::{LayerInfo, LayerWriter, WriteOptions};

/// The name the input layer has in errors.
const INPUT: &str = "input";

/// Hash and compress an existing tar stream into a layer (`import TAR`), bytes exactly as
/// given: the `diff_id` is the digest of the input. The stream is read as it passes with
/// the applier's rules (see the module documentation), as a layer of its own: a hard
/// link must name an entry of the same tar. Compressed input is refused: decompress it
/// first.
///
/// ```
/// let mut b = tar::Builder::new(Vec::new());
/// let mut h = tar::Header::new_gnu();
/// h.set_size(2);
/// h.set_mode(0o644);
/// h.set_cksum();
/// b.append_data(&mut h, "etc/motd", &b"hi"[..]).unwrap();
/// let tar = b.into_inner().unwrap();
/// let info = strata_layer::reencode_tar(&tar[..], Vec::new(), &Default::default())?;
/// assert_eq!(info.diff_id, strata_spec::Digest::sha256_of(&tar));
///
/// // A name no layer may hold is refused, as unpack refuses it.
/// let mut evil = tar.clone();
/// evil[..8].copy_from_slice(b"../motd\0");
/// let mut h = tar::Header::from_byte_slice(&evil[..512]).clone();
/// h.set_cksum();
/// evil[..512].copy_from_slice(h.as_bytes());
/// assert!(strata_layer::reencode_tar(&evil[..], Vec::new(), &Default::default()).is_err());
/// # Ok::<(), strata_layer::Error>(())
/// ```
pub fn reencode_tar<R: Read, W: Write>(input: R, sink: W, opts: &WriteOptions) -> Result<LayerInfo> {
    reencode(input, sink, opts, None)
}

/// [`reencode_tar`] for a layer going on top of the layers `lower` was folded from (an
/// image's merged view): a hard link may name a file of those layers, and every path
/// resolves as it will when the whole stack is unpacked.
pub fn reencode_tar_onto<R: Read, W: Write>(
    input: R,
    sink: W,
    opts: &WriteOptions,
    lower: &MergedTree,
) -> Result<LayerInfo> {
    reencode(input, sink, opts, Some(lower))
}

fn reencode<R: Read, W: Write>(
    input: R,
    sink: W,
    opts: &WriteOptions,
    lower: Option<&MergedTree>,
) -> Result<LayerInfo> {
    let invalid = |reason: String| Error::InvalidTar { layer: INPUT.into(), entry: None, reason };
    let mut w = LayerWriter::new(sink, opts)?;
    let mut input = input;
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(invalid(format!("reading input: {e}"))),
        }
    }
    if got == 0 {
        return Err(invalid("empty input is not a tar archive".into()));
    }
    match Compression::sniff(&head[..got]) {
        Compression::None => {}
        c => return Err(invalid(format!("input is {c}-compressed: decompress it first"))),
    }
    let mut tee = Tee { inner: io::Cursor::new(head[..got].to_vec()).chain(input), w: &mut w, err: None };
    let source = LayerSource::new(INPUT, &mut tee).compression(Compression::None);
    // The writer hashes every byte for the diff_id: the check need not hash them again.
    let checked = check_layer(source, &Limits::default(), lower.map(|m| (m.tree(), m.layers().len())), false);
    if let Some(e) = tee.err.take() {
        return Err(e);
    }
    let stats = checked?;
    let (mut info, _) = w.finish_raw()?;
    info.entries = stats.entries;
    info.content_size = stats.content_size;
    Ok(info)
}

/// Passes every byte read through to the layer writer.
struct Tee<'a, R, W: Write> {
    inner: R,
    w: &'a mut LayerWriter<W>,
    err: Option<Error>,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.w.put(buf.get(..n).unwrap_or_default()) {
            self.err = Some(e);
            return Err(io::Error::other("layer sink failed"));
        }
        Ok(n)
    }
}
