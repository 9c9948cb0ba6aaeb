//! Deterministic tar header encoding: ustar headers, with a PAX extended header in front
//! when a value does not fit ustar.
//!
//! Written by hand rather than through the `tar` crate's builder so that every byte is
//! decided here: the same entry always encodes to the same bytes, whatever crate versions
//! are in use.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use crate::entry::Timestamp;

/// Size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// Largest value of an octal field of `digits` digits.
const fn octal_max(digits: u32) -> u64 {
    (1u64 << (3 * digits)) - 1
}

/// One header to encode. Names and link names are raw bytes.
pub(crate) struct Header<'a> {
    /// Entry name, with the trailing `/` of a directory already added.
    pub name: &'a [u8],
    /// ustar type flag (`b'0'`, `b'5'`...).
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: Timestamp,
    pub linkname: &'a [u8],
    pub uname: &'a [u8],
    pub gname: &'a [u8],
    pub devmajor: u32,
    pub devminor: u32,
    pub xattrs: Option<&'a BTreeMap<OsString, Vec<u8>>>,
}

/// Split a name into ustar `prefix` and `name` fields, if it fits.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    if name.len() > 100 + 1 + 155 {
        return None;
    }
    // The prefix is everything before some '/', at most 155 bytes; the rest at most 100
    // and not empty. Take the first '/' that leaves the rest short enough.
    let lo = name.len().saturating_sub(101);
    (lo..name.len().min(156)).filter(|&i| name.get(i) == Some(&b'/')).find_map(|i| {
        let (prefix, rest) = (name.get(..i)?, name.get(i + 1..)?);
        (!rest.is_empty() && rest.len() <= 100 && !prefix.is_empty()).then_some((prefix, rest))
    })
}

/// Write `v` as zero-padded octal into `field` (all but the last byte; the last is NUL).
/// The caller has checked that it fits.
fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len().saturating_sub(1);
    let mut v = v;
    for i in (0..digits).rev() {
        if let Some(b) = field.get_mut(i) {
            *b = b'0' + (v & 7) as u8;
        }
        v >>= 3;
    }
    if let Some(last) = field.last_mut() {
        *last = 0;
    }
}

fn put_bytes(field: &mut [u8], v: &[u8]) {
    let n = v.len().min(field.len());
    if let (Some(dst), Some(src)) = (field.get_mut(..n), v.get(..n)) {
        dst.copy_from_slice(src);
    }
}

/// Format a PAX time value: seconds, then `.` and the nanoseconds with trailing zeros
/// dropped when there are any.
fn pax_time(t: Timestamp) -> String {
    if t.nsec == 0 {
        return t.sec.to_string();
    }
    // A negative time with a fraction: -1.5 is sec = -2, nsec = 5e8.
    let (sign, whole, frac) = if t.sec < 0 { ("-", -(t.sec + 1), 1_000_000_000 - t.nsec) } else { ("", t.sec, t.nsec) };
    let frac = format!("{frac:09}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

/// Append one PAX record (`<len> <key>=<value>\n`, the length counting itself).
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Encode `h` (a PAX header first when needed) and append it to `out`.
///
/// Errors (a message) for what tar cannot carry at all: NUL bytes in a name, and
/// xattr names that are empty or hold `=` or NUL.
pub(crate) fn encode(h: &Header<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    if h.name.contains(&0) || h.linkname.contains(&0) {
        return Err("name or link target contains a NUL byte".into());
    }
    let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let split = split_ustar(h.name);
    if split.is_none() {
        pax.push((b"path".to_vec(), h.name.to_vec()));
    }
    if h.linkname.len() > 100 {
        pax.push((b"linkpath".to_vec(), h.linkname.to_vec()));
    }
    if h.uid > octal_max(7) {
        pax.push((b"uid".to_vec(), h.uid.to_string().into_bytes()));
    }
    if h.gid > octal_max(7) {
        pax.push((b"gid".to_vec(), h.gid.to_string().into_bytes()));
    }
    if h.size > octal_max(11) {
        pax.push((b"size".to_vec(), h.size.to_string().into_bytes()));
    }
    let mtime_fits = h.mtime.sec >= 0 && h.mtime.sec.unsigned_abs() <= octal_max(11) && h.mtime.nsec == 0;
    if !mtime_fits {
        pax.push((b"mtime".to_vec(), pax_time(h.mtime).into_bytes()));
    }
    if h.uname.len() > 32 {
        pax.push((b"uname".to_vec(), h.uname.to_vec()));
    }
    if h.gname.len() > 32 {
        pax.push((b"gname".to_vec(), h.gname.to_vec()));
    }
    if let Some(xattrs) = h.xattrs {
        for (k, v) in xattrs {
            let k = k.as_bytes();
            if k.is_empty() || k.contains(&b'=') || k.contains(&0) {
                return Err(format!("xattr name {:?} cannot be written as a PAX record", String::from_utf8_lossy(k)));
            }
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax.push((key, v.clone()));
        }
    }
    if u64::from(h.devmajor) > octal_max(7) || u64::from(h.devminor) > octal_max(7) {
        // Device numbers are at most 12 and 20 bits on Linux: never more than 7 octal
        // digits hold. Refuse rather than write a header readers would misparse.
        return Err(format!("device number {}:{} too large for a tar header", h.devmajor, h.devminor));
    }

    if !pax.is_empty() {
        pax.sort();
        let mut body = Vec::new();
        for (k, v) in &pax {
            pax_record(&mut body, k, v);
        }
        // The PAX header's own name is informative only; keep it short and stable.
        let base = h.name.rsplit(|&c| c == b'/').find(|c| !c.is_empty()).unwrap_or(b"");
        let mut pax_name = b"PaxHeaders.0/".to_vec();
        pax_name.extend_from_slice(base.get(..base.len().min(100 - 13)).unwrap_or(b""));
        let pax_header = Header {
            name: &pax_name,
            typeflag: b'x',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: body.len() as u64,
            mtime: Timestamp::default(),
            linkname: b"",
            uname: b"",
            gname: b"",
            devmajor: 0,
            devminor: 0,
            xattrs: None,
        };
        ustar_block(&pax_header, split_ustar(&pax_name).unwrap_or((&[], b"PaxHeaders.0")), out);
        out.extend_from_slice(&body);
        pad(out);
    }
    // Fields that did not fit went to PAX; the ustar copy gets what fits (truncated
    // names, zeroed numbers), as GNU tar and Go do.
    let (prefix, name) = split.unwrap_or((&[], h.name.get(..100).unwrap_or(h.name)));
    let fitted = Header {
        name,
        uid: if h.uid > octal_max(7) { 0 } else { h.uid },
        gid: if h.gid > octal_max(7) { 0 } else { h.gid },
        size: if h.size > octal_max(11) { 0 } else { h.size },
        mtime: Timestamp {
            sec: if mtime_fits || h.mtime.sec >= 0 { h.mtime.sec.min(octal_max(11) as i64) } else { 0 },
            nsec: 0,
        },
        linkname: h.linkname.get(..100).unwrap_or(h.linkname),
        uname: h.uname.get(..32).unwrap_or(h.uname),
        gname: h.gname.get(..32).unwrap_or(h.gname),
        ..*h
    };
    ustar_block(&fitted, (prefix, name), out);
    Ok(())
}

/// Pad `out` with zeros to a multiple of the block size.
pub(crate) fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

/// Append one 512-byte ustar header block. All values must already fit.
fn ustar_block(h: &Header<'_>, (prefix, name): (&[u8], &[u8]), out: &mut Vec<u8>) {
    let mut b = [0u8; BLOCK];
    put_bytes(&mut b[0..100], name);
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    put_octal(&mut b[108..116], h.uid);
    put_octal(&mut b[116..124], h.gid);
    put_octal(&mut b[124..136], h.size);
    put_octal(&mut b[136..148], u64::try_from(h.mtime.sec).unwrap_or(0));
    b[148..156].fill(b' ');
    b[156] = h.typeflag;
    put_bytes(&mut b[157..257], h.linkname);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_bytes(&mut b[265..297], h.uname);
    put_bytes(&mut b[297..329], h.gname);
    put_octal(&mut b[329..337], u64::from(h.devmajor));
    put_octal(&mut b[337..345], u64::from(h.devminor));
    put_bytes(&mut b[345..500], prefix);
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    // Six octal digits, NUL, space: the form GNU tar and Go write.
    put_octal(&mut b[148..155], sum);
    b[155] = b' ';
    out.extend_from_slice(&b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn hdr<'a>(name: &'a [u8], xattrs: Option<&'a BTreeMap<OsString, Vec<u8>>>) -> Header<'a> {
        Header {
            name,
            typeflag: b'0',
            mode: 0o4755,
            uid: 1000,
            gid: 1000,
            size: 3,
            mtime: Timestamp { sec: 1_700_000_000, nsec: 0 },
            linkname: b"",
            uname: b"",
            gname: b"",
            devmajor: 0,
            devminor: 0,
            xattrs,
        }
    }

    /// Name, uid, size, PAX mtime, xattrs.
    type Parsed = (Vec<u8>, u64, u64, Option<(u64, u32)>, Vec<(String, Vec<u8>)>);

    /// Parse what we wrote with the `tar` crate: an independent reader.
    fn parse(bytes: &[u8]) -> Vec<Parsed> {
        let mut a = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let mut pax_mtime = None;
            let mut x = Vec::new();
            if let Some(exts) = e.pax_extensions().unwrap() {
                for ext in exts {
                    let ext = ext.unwrap();
                    let k = ext.key().unwrap().to_string();
                    if k == "mtime" {
                        let v = ext.value().unwrap();
                        let (s, n) = v.split_once('.').unwrap_or((v, "0"));
                        let n = format!("{n:0<9}");
                        pax_mtime = Some((s.parse().unwrap(), n.parse().unwrap()));
                    }
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        x.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
            let name = e.path_bytes().to_vec();
            let uid = e.header().uid().unwrap();
            let size = e.header().size().unwrap();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            assert_eq!(content.len() as u64, size);
            out.push((name, uid, size, pax_mtime, x));
        }
        out
    }

    fn encode_one(h: &Header<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode(h, &mut out).unwrap();
        out.extend_from_slice(&b"abc"[..h.size as usize]);
        pad(&mut out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn short_names_need_no_pax() {
        let out = encode_one(&hdr(b"usr/bin/x", None));
        assert_eq!(out.len(), 512 + 512 + 1024);
        let parsed = parse(&out);
        assert_eq!(parsed[0].0, b"usr/bin/x");
        assert_eq!(parsed[0].1, 1000);
        // Checksum field: 6 octal digits, NUL, space.
        assert_eq!(out[154], 0);
        assert_eq!(out[155], b' ');
    }

    #[test]
    fn names_split_into_prefix_or_go_to_pax() {
        let mid = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let out = encode_one(&hdr(mid.as_bytes(), None));
        assert_eq!(out.len(), 512 + 512 + 1024, "fits prefix+name without PAX");
        assert_eq!(parse(&out)[0].0, mid.as_bytes());

        let long = format!("{}/{}", "d".repeat(200), "f".repeat(150));
        let out = encode_one(&hdr(long.as_bytes(), None));
        assert!(out.len() > 2048);
        assert_eq!(parse(&out)[0].0, long.as_bytes());
    }

    #[test]
    fn large_values_nanoseconds_and_xattrs_use_pax() {
        let mut x = BTreeMap::new();
        x.insert(OsString::from("user.b"), vec![0, 1, 2, 0xff]);
        x.insert(OsString::from("security.capability"), b"cap".to_vec());
        let mut h = hdr(b"f", Some(&x));
        h.uid = 1 << 40;
        h.mtime = Timestamp { sec: 1_700_000_000, nsec: 120_000_000 };
        let out = encode_one(&h);
        let p = parse(&out);
        assert_eq!(p[0].1, 1 << 40);
        assert_eq!(p[0].3, Some((1_700_000_000, 120_000_000)));
        assert_eq!(
            p[0].4,
            vec![("security.capability".to_string(), b"cap".to_vec()), ("user.b".to_string(), vec![0, 1, 2, 0xff])]
        );
    }

    #[test]
    fn pax_times_and_records() {
        assert_eq!(pax_time(Timestamp { sec: 5, nsec: 0 }), "5");
        assert_eq!(pax_time(Timestamp { sec: 5, nsec: 500_000_000 }), "5.5");
        assert_eq!(pax_time(Timestamp { sec: -2, nsec: 500_000_000 }), "-1.5");
        assert_eq!(pax_time(Timestamp { sec: 1, nsec: 1 }), "1.000000001");
        let mut r = Vec::new();
        pax_record(&mut r, b"path", &[b'a'; 3]);
        assert_eq!(r, b"12 path=aaa\n");
        // A length that crosses a digit boundary counts its own extra digit.
        let mut r = Vec::new();
        pax_record(&mut r, b"path", &[b'a'; 92]);
        assert_eq!(r.len(), 102);
        assert!(r.starts_with(b"102 "));
    }

    #[test]
    fn binary_xattr_values_are_length_delimited() {
        // tar-rs splits PAX records at newlines and cannot read this back; Go and GNU
        // tar use the length prefix, as POSIX says. Check the bytes directly.
        let mut x = BTreeMap::new();
        x.insert(OsString::from("security.capability"), vec![1, b'\n', 2]);
        let mut out = Vec::new();
        encode(&hdr(b"f", Some(&x)), &mut out).unwrap();
        let body = &out[512..];
        assert!(body.starts_with(b"40 SCHILY.xattr.security.capability=\x01\n\x02\n"));
    }

    #[test]
    fn refuses_what_tar_cannot_hold() {
        let mut x = BTreeMap::new();
        x.insert(OsString::from("user.a=b"), vec![]);
        assert!(encode(&hdr(b"f", Some(&x)), &mut Vec::new()).is_err());
        assert!(encode(&hdr(b"f\0g", None), &mut Vec::new()).is_err());
    }
}
