//! Building layer tars in code (hostile ones included) and sandboxes with a canary.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_layer::{ApplyOptions, ApplyReport, LayerSource, Resolver, Result, apply_layers};
use strata_testkit::{Compare, Tree};

/// One tar entry, every field settable, names as raw bytes (the tar builder refuses
/// hostile names, so headers are filled in by hand).
#[derive(Clone, Debug)]
pub struct E {
    pub name: Vec<u8>,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    pub dev: (u32, u32),
    /// PAX records written in an `x` header before this entry.
    pub pax: Vec<(String, Vec<u8>)>,
    /// Write a long name as a GNU `L` entry rather than PAX `path`.
    pub gnu_long: bool,
    /// Size field of the ustar header, when it must lie.
    pub header_size: Option<u64>,
    /// Bytes written over the header block at these offsets (before the checksum).
    pub patch: Vec<(usize, Vec<u8>)>,
    /// Whole blocks written right after the header (old GNU sparse extension blocks).
    pub extra_blocks: Vec<[u8; 512]>,
}

pub const MTIME: u64 = 1_600_000_000;

fn e(name: &str, typeflag: u8, mode: u32) -> E {
    E {
        name: name.as_bytes().to_vec(),
        typeflag,
        mode,
        uid: 0,
        gid: 0,
        mtime: MTIME,
        link: Vec::new(),
        data: Vec::new(),
        dev: (0, 0),
        pax: Vec::new(),
        gnu_long: false,
        header_size: None,
        patch: Vec::new(),
        extra_blocks: Vec::new(),
    }
}

pub fn file(name: &str, data: &[u8]) -> E {
    E { data: data.to_vec(), ..e(name, b'0', 0o644) }
}
pub fn dir(name: &str) -> E {
    e(name, b'5', 0o755)
}
pub fn sym(name: &str, target: &str) -> E {
    E { link: target.as_bytes().to_vec(), ..e(name, b'2', 0o777) }
}
pub fn link(name: &str, target: &str) -> E {
    E { link: target.as_bytes().to_vec(), ..e(name, b'1', 0o644) }
}
pub fn fifo(name: &str) -> E {
    e(name, b'6', 0o600)
}
pub fn chr(name: &str, major: u32, minor: u32) -> E {
    E { dev: (major, minor), ..e(name, b'3', 0o666) }
}
pub fn blk(name: &str, major: u32, minor: u32) -> E {
    E { dev: (major, minor), ..e(name, b'4', 0o660) }
}
/// A sparse file (PAX 0.1 map) of `hole + data.len() + hole` bytes... precisely: the
/// first half of `data` after a hole of `hole` bytes, the second half after another
/// hole, and a hole of `hole` bytes at the end.
pub fn sparse_file(name: &str, data: &[u8], hole: u64) -> E {
    let half = data.len() as u64 / 2;
    let rest = data.len() as u64 - half;
    let second = hole + half + hole;
    let size = second + rest + hole;
    file(name, data)
        .pax("GNU.sparse.size", size.to_string().as_bytes())
        .pax("GNU.sparse.numblocks", b"2")
        .pax("GNU.sparse.map", format!("{hole},{half},{second},{rest}").as_bytes())
}
/// A whiteout of `path` (`dir/.wh.name`).
pub fn wh(path: &str) -> E {
    let (d, n) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
    let name = if d.is_empty() { format!(".wh.{n}") } else { format!("{d}/.wh.{n}") };
    file(&name, b"")
}
/// An opaque marker in `dir` ("" for the root).
pub fn opq(dir: &str) -> E {
    let name = if dir.is_empty() { ".wh..wh..opq".to_string() } else { format!("{dir}/.wh..wh..opq") };
    file(&name, b"")
}

impl E {
    pub fn mode(mut self, mode: u32) -> E {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> E {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, t: u64) -> E {
        self.mtime = t;
        self
    }
    pub fn pax(mut self, k: &str, v: &[u8]) -> E {
        self.pax.push((k.to_string(), v.to_vec()));
        self
    }
    pub fn xattr(self, k: &str, v: &[u8]) -> E {
        self.pax(&format!("SCHILY.xattr.{k}"), v)
    }
    pub fn gnu(mut self) -> E {
        self.gnu_long = true;
        self
    }
    /// Write `bytes` over the header block at `offset`.
    pub fn patch(mut self, offset: usize, bytes: &[u8]) -> E {
        self.patch.push((offset, bytes.to_vec()));
        self
    }
    /// An old GNU sparse file (type `S`): `segments` of `(offset, length)` in the header
    /// (more than four go to extension blocks), the real size `size`; `data` is what is
    /// stored.
    pub fn old_gnu_sparse(mut self, segments: &[(u64, u64)], size: u64) -> E {
        self.typeflag = b'S';
        let num = |v: u64| format!("{v:011o}\0").into_bytes();
        for (i, &(off, len)) in segments.iter().take(4).enumerate() {
            self = self.patch(386 + i * 24, &num(off)).patch(398 + i * 24, &num(len));
        }
        self = self.patch(483, &num(size));
        let rest: Vec<_> = segments.iter().skip(4).collect();
        if !rest.is_empty() {
            self = self.patch(482, &[1]);
        }
        for (b, chunk) in rest.chunks(21).enumerate() {
            let mut block = [0u8; 512];
            for (i, &&(off, len)) in chunk.iter().enumerate() {
                block[i * 24..i * 24 + 12].copy_from_slice(&num(off));
                block[i * 24 + 12..i * 24 + 24].copy_from_slice(&num(len));
            }
            if (b + 1) * 21 < rest.len() {
                block[504] = 1;
            }
            self.extra_blocks.push(block);
        }
        self
    }
}

fn pax_record(k: &str, v: &[u8]) -> Vec<u8> {
    let body = k.len() + v.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = len.to_string().len() + body;
    }
    let mut r = format!("{len} {k}=").into_bytes();
    r.extend_from_slice(v);
    r.push(b'\n');
    r
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

/// A raw ustar header block.
pub fn header(name: &[u8], typeflag: u8, size: u64, mode: u32, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let u = h.as_ustar_mut().unwrap();
        let n = name.len().min(100);
        u.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        u.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(MTIME);
    h.as_mut_bytes()[156] = typeflag;
    h.set_cksum();
    h
}

/// Append one entry (with its extension headers) to `out`.
pub fn append(out: &mut Vec<u8>, e: &E) {
    let mut pax = Vec::new();
    for (k, v) in &e.pax {
        pax.extend(pax_record(k, v));
    }
    if e.name.len() > 100 && !e.gnu_long && !e.pax.iter().any(|(k, _)| k == "path") {
        pax.extend(pax_record("path", &e.name));
    }
    if e.link.len() > 100 && !e.gnu_long {
        pax.extend(pax_record("linkpath", &e.link));
    }
    if e.gnu_long {
        for (flag, v) in [(b'L', &e.name), (b'K', &e.link)] {
            if v.len() > 100 {
                let mut data = v.clone();
                data.push(0);
                let h = header(b"././@LongLink", flag, data.len() as u64, 0o644, b"");
                out.extend_from_slice(h.as_bytes());
                out.extend_from_slice(&data);
                pad(out);
            }
        }
    }
    if !pax.is_empty() {
        let h = header(b"PaxHeaders/x", b'x', pax.len() as u64, 0o644, b"");
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&pax);
        pad(out);
    }
    let size = e.header_size.unwrap_or(e.data.len() as u64);
    let mut h = header(&e.name, e.typeflag, size, e.mode, &e.link);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    if matches!(e.typeflag, b'3' | b'4') {
        h.set_device_major(e.dev.0).unwrap();
        h.set_device_minor(e.dev.1).unwrap();
    }
    for (offset, bytes) in &e.patch {
        h.as_mut_bytes()[*offset..*offset + bytes.len()].copy_from_slice(bytes);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    for block in &e.extra_blocks {
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&e.data);
    pad(out);
}

/// A layer tar of `entries`, with the two zero blocks at the end.
pub fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        append(&mut out, e);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

/// Apply raw layer blobs onto `root`.
pub fn apply_blobs(root: &Path, blobs: &[Vec<u8>], opts: &ApplyOptions) -> Result<ApplyReport> {
    let layers: Vec<_> =
        blobs.iter().enumerate().map(|(i, b)| LayerSource::new(format!("layer {i}"), &b[..])).collect();
    apply_layers(root, layers, opts)
}

/// Apply layers given as entry lists.
pub fn apply(root: &Path, layers: &[Vec<E>], opts: &ApplyOptions) -> Result<ApplyReport> {
    let blobs: Vec<Vec<u8>> = layers.iter().map(|l| tar(l)).collect();
    apply_blobs(root, &blobs, opts)
}

/// Both resolvers (the kernel's and the fallback walk).
pub const RESOLVERS: [Resolver; 2] = [Resolver::Openat2, Resolver::Fallback];

/// A temporary directory holding `root` (where layers go) and `canary` beside it, plus a
/// snapshot of everything outside `root` to check that nothing there changed.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    /// A second root beside the first, for differential runs.
    pub root2: PathBuf,
    pub canary: PathBuf,
    before: Tree,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let canary = dir.path().join("canary");
        let root2 = dir.path().join("root2");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&root2).unwrap();
        std::fs::create_dir_all(canary.join("dir")).unwrap();
        std::fs::write(canary.join("secret"), b"do not touch").unwrap();
        std::fs::write(canary.join("dir/f"), b"nor this").unwrap();
        std::os::unix::fs::symlink("secret", canary.join("link")).unwrap();
        let mut s = Sandbox { dir, root, root2, canary, before: Tree::default() };
        s.before = s.outside();
        s
    }

    /// Absolute path of the canary (for hostile link targets and names).
    pub fn canary_str(&self) -> String {
        self.canary.to_str().unwrap().to_string()
    }

    /// Everything in the sandbox but the roots (their own entries too: their metadata
    /// is the layers' to set).
    fn outside(&self) -> Tree {
        let mut t = Tree::capture(self.dir.path()).unwrap();
        t.entries.retain(|p, _| !p.starts_with("root") && !p.starts_with("root2"));
        t
    }

    /// Panic if anything outside `root` changed (contents, modes, owners, mtimes of
    /// files and directories, xattrs, links).
    pub fn assert_outside_unchanged(&self, case: &str) {
        let cmp = Compare { dir_mtime: true, root: true, ..Compare::default() };
        let d = self.before.diff(&self.outside(), &cmp);
        assert!(d.is_empty(), "{case}: something outside the root changed: {d:#?}");
    }
}
