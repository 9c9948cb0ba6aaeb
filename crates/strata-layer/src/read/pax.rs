//! PAX extended headers: records, the values that override the header's fields, and
//! the `GNU.sparse.*` records of sparse files.

use super::{Limits, Mtime};

/// Values a PAX extended header overrides in the entry that follows it.
#[derive(Default)]
pub(super) struct Pax {
    pub(super) present: bool,
    pub(super) path: Option<(usize, usize)>,
    pub(super) link: Option<(usize, usize)>,
    pub(super) size: Option<u64>,
    pub(super) uid: Option<u64>,
    pub(super) gid: Option<u64>,
    pub(super) mtime: Option<Mtime>,
    /// GNU sparse records (PAX formats 0.0, 0.1, 1.0).
    pub(super) sparse: Option<Box<SparsePax>>,
}

/// The `GNU.sparse.*` records of a PAX header.
#[derive(Default)]
pub(super) struct SparsePax {
    pub(super) major: Option<u64>,
    pub(super) minor: Option<u64>,
    pub(super) name: Option<(usize, usize)>,
    pub(super) size: Option<u64>,
    pub(super) realsize: Option<u64>,
    pub(super) numblocks: Option<u64>,
    /// `GNU.sparse.map` (0.1), or 0.0's offset and numbytes records joined by commas.
    pub(super) map: Option<Vec<u8>>,
    /// 0.0's records seen so far (they must alternate offset, numbytes).
    pub(super) pairs: usize,
}

pub(super) enum PaxProblem {
    Invalid(String),
    Limit { what: &'static str, actual: u64, limit: u64 },
}

/// Iterator over `"<len> <key>=<value>\n"` records.
pub(super) struct PaxRecords<'a> {
    rest: &'a [u8],
}

impl<'a> PaxRecords<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        PaxRecords { rest: bytes }
    }
}

impl<'a> Iterator for PaxRecords<'a> {
    type Item = std::result::Result<(&'a [u8], &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        // Trailing NULs pad some writers' PAX data.
        if self.rest.is_empty() || self.rest.iter().all(|&b| b == 0) {
            return None;
        }
        let rec = (|| {
            let sp = self.rest.iter().position(|&b| b == b' ').ok_or("record without a length")?;
            let len_str = &self.rest[..sp];
            if len_str.is_empty() || len_str.len() > 20 || !len_str.iter().all(u8::is_ascii_digit) {
                return Err("bad record length".to_string());
            }
            let len: usize = std::str::from_utf8(len_str)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "bad record length".to_string())?;
            if len <= sp + 1 || len > self.rest.len() {
                return Err(format!("record length {len} out of bounds"));
            }
            let rec = &self.rest[sp + 1..len];
            let Some((&b'\n', kv)) = rec.split_last() else {
                return Err("record does not end with a newline".to_string());
            };
            let eq = kv.iter().position(|&b| b == b'=').ok_or("record without '='")?;
            let (k, v) = (&kv[..eq], &kv[eq + 1..]);
            if k.is_empty() {
                return Err("record with an empty key".to_string());
            }
            self.rest = &self.rest[len..];
            Ok((k, v))
        })();
        if rec.is_err() {
            self.rest = &[];
        }
        Some(rec)
    }
}

pub(super) fn parse_pax(bytes: &[u8], limits: &Limits) -> std::result::Result<Pax, PaxProblem> {
    let mut pax = Pax { present: true, ..Pax::default() };
    let base = bytes.as_ptr() as usize;
    let num = |k: &[u8], v: &[u8]| -> std::result::Result<u64, PaxProblem> {
        std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                PaxProblem::Invalid(format!(
                    "{} is not a number: {:?}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                ))
            })
    };
    for rec in PaxRecords::new(bytes) {
        let (k, v) = rec.map_err(PaxProblem::Invalid)?;
        let span = (v.as_ptr() as usize - base, v.len());
        // An empty value deletes the record: the header field applies.
        let empty = v.is_empty();
        match k {
            b"path" if !empty => pax.path = Some(span),
            b"linkpath" if !empty => pax.link = Some(span),
            b"size" if !empty => pax.size = Some(num(k, v)?),
            b"uid" if !empty => pax.uid = Some(num(k, v)?),
            b"gid" if !empty => pax.gid = Some(num(k, v)?),
            b"mtime" if !empty => {
                pax.mtime = Some(parse_pax_time(v).ok_or_else(|| {
                    PaxProblem::Invalid(format!("mtime is not a time: {:?}", String::from_utf8_lossy(v)))
                })?)
            }
            _ if k.starts_with(b"GNU.sparse.") => sparse_record(&mut pax, k, v, span)?,
            _ => {
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    if name.is_empty() || name.contains(&0) {
                        return Err(PaxProblem::Invalid("xattr with an empty name or a NUL in it".into()));
                    }
                    if v.len() > limits.max_xattr_value {
                        return Err(PaxProblem::Limit {
                            what: "xattr value",
                            actual: v.len() as u64,
                            limit: limits.max_xattr_value as u64,
                        });
                    }
                }
            }
        }
    }
    Ok(pax)
}

/// One `GNU.sparse.*` record into `pax` (see [`crate::sparse`]).
fn sparse_record(pax: &mut Pax, k: &[u8], v: &[u8], span: (usize, usize)) -> std::result::Result<(), PaxProblem> {
    let sp = pax.sparse.get_or_insert_with(Box::default);
    let bad = || {
        PaxProblem::Invalid(format!("{} is not a number: {:?}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
    };
    let num = || -> std::result::Result<u64, PaxProblem> {
        std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    match k {
        b"GNU.sparse.major" => sp.major = Some(num()?),
        b"GNU.sparse.minor" => sp.minor = Some(num()?),
        b"GNU.sparse.name" if !v.is_empty() => sp.name = Some(span),
        b"GNU.sparse.size" => sp.size = Some(num()?),
        b"GNU.sparse.realsize" => sp.realsize = Some(num()?),
        b"GNU.sparse.numblocks" => sp.numblocks = Some(num()?),
        b"GNU.sparse.map" => sp.map = Some(v.to_vec()),
        // Format 0.0: offset and numbytes records in turn, joined into a 0.1 map.
        b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
            let want: &[u8] = if sp.pairs.is_multiple_of(2) { b"GNU.sparse.offset" } else { b"GNU.sparse.numbytes" };
            if k != want {
                return Err(PaxProblem::Invalid("GNU.sparse.offset and numbytes records out of turn".into()));
            }
            num()?;
            let map = sp.map.get_or_insert_with(Vec::new);
            if !map.is_empty() {
                map.push(b',');
            }
            map.extend_from_slice(v);
            sp.pairs += 1;
        }
        _ => {}
    }
    Ok(())
}

/// Parse a PAX time: `[-]secs[.frac]`.
pub(super) fn parse_pax_time(v: &[u8]) -> Option<Mtime> {
    let (neg, v) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &[][..]),
    };
    if int.is_empty() || int.len() > 18 || !int.iter().all(u8::is_ascii_digit) || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs: i64 = std::str::from_utf8(int).ok()?.parse().ok()?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Some(if !neg {
        Mtime { secs, nanos }
    } else if nanos == 0 {
        Mtime { secs: -secs, nanos: 0 }
    } else {
        Mtime { secs: -secs - 1, nanos: 1_000_000_000 - nanos }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000.5"), Some(Mtime { secs: 1_700_000_000, nanos: 500_000_000 }));
        assert_eq!(parse_pax_time(b"12"), Some(Mtime { secs: 12, nanos: 0 }));
        assert_eq!(parse_pax_time(b"1.0000000019"), Some(Mtime { secs: 1, nanos: 1 }));
        assert_eq!(parse_pax_time(b"-1.25"), Some(Mtime { secs: -2, nanos: 750_000_000 }));
        assert_eq!(parse_pax_time(b""), None);
        assert_eq!(parse_pax_time(b"1e9"), None);
        assert_eq!(parse_pax_time(b"99999999999999999999"), None);
    }

    #[test]
    fn pax_records() {
        let recs: Vec<_> = PaxRecords::new(b"11 path=ab\n8 uid=7\n").collect();
        assert_eq!(recs, vec![Ok((&b"path"[..], &b"ab"[..])), Ok((&b"uid"[..], &b"7"[..]))]);
        for bad in [&b"x path=ab\n"[..], b"99 path=ab\n", b"10 path=ab", b"6 ab\n", b"3 =\n"] {
            assert!(PaxRecords::new(bad).next().unwrap().is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
