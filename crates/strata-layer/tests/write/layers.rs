//! Reading back what the writer produced, with independent readers (flate2, zstd, the
//! `tar` crate), and building OCI image layouts for peers.

use std::fs;
use std::io::Read;
use std::path::Path;

use strata_layer::LayerInfo;
use strata_spec::{
    Compression, Descriptor, Digest, Family, History, ImageConfig, Index, Manifest, MediaType, Platform,
};

/// One entry as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub pax_mtime: Option<String>,
    pub link: Option<String>,
    pub uname: Option<String>,
    pub data: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// The uncompressed tar of a blob.
pub fn decompress(blob: &[u8], c: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    match c {
        Compression::None => out.extend_from_slice(blob),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut out).unwrap();
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => out = zstd::stream::decode_all(blob).unwrap(),
        #[cfg(not(feature = "zstd"))]
        Compression::Zstd => panic!("zstd is not compiled in"),
    }
    out
}

/// Check the digests and sizes a writer reported against the bytes, and list entries.
pub fn check_and_list(blob: &[u8], info: &LayerInfo) -> Vec<Seen> {
    assert_eq!(info.size, blob.len() as u64, "size");
    assert_eq!(info.digest, Digest::sha256_of(blob), "digest");
    let tar = decompress(blob, info.compression);
    assert_eq!(info.diff_id, Digest::sha256_of(&tar), "diff_id");
    assert_eq!(info.uncompressed_size, tar.len() as u64, "uncompressed size");
    let seen = list(&tar);
    assert_eq!(info.entries, seen.len() as u64, "entry count");
    seen
}

/// The entries of a tar.
pub fn list(tar: &[u8]) -> Vec<Seen> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut pax_mtime = None;
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                let k = ext.key().unwrap();
                if k == "mtime" {
                    pax_mtime = Some(ext.value().unwrap().to_string());
                }
                if let Some(n) = k.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((n.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let h = e.header().clone();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Seen {
            name,
            typeflag: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            pax_mtime,
            link,
            uname: h.username().ok().flatten().filter(|s| !s.is_empty()).map(str::to_string),
            data,
            xattrs,
        });
    }
    out
}

/// Write an OCI image layout at `dir` with the given layers (blob bytes and info), tagged
/// `tag`, as a peer tool expects to find it.
pub fn oci_layout(dir: &Path, layers: &[(Vec<u8>, LayerInfo)], tag: &str) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> Digest {
        let d = Digest::sha256_of(bytes);
        fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let mut config = ImageConfig::new(&Platform::new("linux", "amd64", None));
    let mut descs = Vec::new();
    for (blob, info) in layers {
        put(blob);
        config.push_layer(info.diff_id.clone(), History::default());
        descs.push(info.descriptor(Family::Oci));
    }
    let cbytes = config.to_canonical_json();
    let cd = put(&cbytes);
    let manifest =
        Manifest::new(MediaType::OciManifest, Descriptor::new(MediaType::OciConfig, cd, cbytes.len() as u64), descs);
    let mbytes = manifest.to_canonical_json();
    let md = put(&mbytes);
    let mut mdesc = Descriptor::new(MediaType::OciManifest, md, mbytes.len() as u64);
    mdesc.set_annotation(strata_spec::ANNOTATION_REF_NAME, tag);
    let mut index = Index::new(None);
    index.manifests.push(mdesc);
    fs::write(dir.join("index.json"), index.to_canonical_json()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}
