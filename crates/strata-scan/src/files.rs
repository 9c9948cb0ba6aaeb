//! [`Files`]: the paths a package owns, in one buffer.

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The files a package owns ([`crate::Package::files`]): paths without the leading
/// `/`, kept in one buffer rather than one string each (a Debian image's packages own
/// tens of thousands of files, and an allocation each cost a scan more than finding
/// their layers). As JSON, an array of strings.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Files {
    buf: String,
    /// Where each path ends in `buf`.
    ends: Vec<usize>,
}

impl Files {
    /// No files.
    pub fn new() -> Files {
        Files::default()
    }

    /// No files yet, with room for `paths` paths of `bytes` bytes in all.
    pub fn with_capacity(paths: usize, bytes: usize) -> Files {
        Files { buf: String::with_capacity(bytes), ends: Vec::with_capacity(paths) }
    }

    /// How many paths.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The path at `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        self.buf.get(start..end)
    }

    /// The paths, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + '_ {
        (0..self.ends.len()).map(|i| self.get(i).unwrap_or_default())
    }

    /// Whether `path` is one of them.
    pub fn contains(&self, path: &str) -> bool {
        self.iter().any(|p| p == path)
    }

    /// Add `path` at the end.
    pub fn push(&mut self, path: &str) {
        self.buf.push_str(path);
        self.ends.push(self.buf.len());
    }

    /// `paths` sorted, each once, in a buffer of their exact size: what a catalog
    /// gathers from a database in its own order (a dpkg list is nearly sorted already)
    /// is copied once, into the result, rather than into a [`Files`] first and sorted
    /// from there.
    pub fn sorted<'a>(paths: impl IntoIterator<Item = &'a str>) -> Files {
        let mut v: Vec<&str> = paths.into_iter().collect();
        // Each path out of place moved to where it goes in the sorted ones before it
        // (a binary search and one move): a dpkg list has a few, a sort would allocate
        // its scratch for each package. Past a budget of moves, a sort.
        let mut budget = 4 * v.len() + 4096;
        for i in 1..v.len() {
            if v[i - 1] < v[i] {
                continue;
            }
            let at = v[..i].partition_point(|p| *p < v[i]);
            if i - at > budget {
                v.sort();
                break;
            }
            budget -= i - at;
            v[at..=i].rotate_right(1);
        }
        v.dedup();
        let mut out = Files::with_capacity(v.len(), v.iter().map(|p| p.len()).sum());
        for p in v {
            out.push(p);
        }
        out
    }

    /// Sort the paths and keep each once (nothing moves when they are so already, as a
    /// package database lists them mostly).
    pub fn sort_dedup(&mut self) {
        if self.iter().zip(self.iter().skip(1)).all(|(a, b)| a < b) {
            return;
        }
        *self = Files::sorted(self.iter());
    }
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Files {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Files {
        let mut out = Files::new();
        for p in iter {
            out.push(p.as_ref());
        }
        out
    }
}

impl From<Vec<String>> for Files {
    fn from(v: Vec<String>) -> Files {
        v.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Files {
    type Item = &'a str;
    type IntoIter = Box<dyn Iterator<Item = &'a str> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Files {
    fn eq(&self, other: &[S; N]) -> bool {
        self.len() == N && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for Files {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl Serialize for Files {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for p in self.iter() {
            seq.serialize_element(p)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Files {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Files, D::Error> {
        struct Paths;
        impl<'de> Visitor<'de> for Paths {
            type Value = Files;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of paths")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Files, A::Error> {
                let mut out = Files::new();
                while let Some(p) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    out.push(&p);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(strata_testkit::proptest_config(256))]

        /// Whatever the order (sorted runs with a few paths out of place, as a package
        /// database lists them, or none at all): what a sort and a dedup give.
        #[test]
        fn sorted_is_a_sort_and_a_dedup(
            runs in prop::collection::vec(prop::collection::vec("[ab/]{0,4}", 0..40), 0..6),
            stray in prop::collection::vec("[ab/]{0,4}", 0..8),
        ) {
            let mut paths: Vec<String> = Vec::new();
            for mut r in runs {
                r.sort();
                paths.extend(r);
            }
            for (i, p) in stray.into_iter().enumerate() {
                paths.insert((i * 7) % (paths.len() + 1), p);
            }
            let mut want = paths.clone();
            want.sort();
            want.dedup();
            let got = Files::sorted(paths.iter().map(String::as_str));
            prop_assert_eq!(got.iter().collect::<Vec<_>>(), want.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    #[test]
    fn paths_in_one_buffer() {
        let mut f = Files::new();
        assert!(f.is_empty() && f.get(0).is_none());
        for p in ["usr/bin/b", "usr/bin/a", "usr/bin/b", "", "é/x"] {
            f.push(p);
        }
        assert_eq!(f, ["usr/bin/b", "usr/bin/a", "usr/bin/b", "", "é/x"]);
        assert!(f.contains("usr/bin/a") && !f.contains("usr/bin"));
        f.sort_dedup();
        assert_eq!(f, ["", "usr/bin/a", "usr/bin/b", "é/x"]);
        assert_eq!(f.iter().next_back(), Some("é/x"));
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"["","usr/bin/a","usr/bin/b","é/x"]"#);
        assert_eq!(serde_json::from_str::<Files>(&json).unwrap(), f);
        assert!(serde_json::from_str::<Files>(r#"["a", 1]"#).is_err());
        assert_eq!(Files::from(vec!["a".to_owned()]), ["a"]);
        assert_eq!(format!("{f:?}"), r#"["", "usr/bin/a", "usr/bin/b", "é/x"]"#);
        // Sorted and deduplicated from borrowed paths, in one buffer of their size.
        let s = Files::sorted(["b/c", "a", "b/c", "b", "a"]);
        assert_eq!(s, ["a", "b", "b/c"]);
        assert_eq!(s.buf.len(), 5);
        assert_eq!(Files::sorted(["a", "b"]), ["a", "b"]);
        assert!(Files::sorted([]).is_empty());
        // Out of place far and often: past the budget of moves, the same answer.
        let many: Vec<String> = (0..20_000).rev().map(|i| format!("p/{i:05}")).collect();
        let s = Files::sorted(many.iter().map(String::as_str).chain(["p/00007", "a"]));
        assert_eq!(s.len(), 20_001);
        assert_eq!((s.get(0), s.get(1), s.get(20_000)), (Some("a"), Some("p/00000"), Some("p/19999")));
        assert!(s.iter().zip(s.iter().skip(1)).all(|(a, b)| a < b));
    }
}
