//! Version ordering of each ecosystem, as its own tools order versions.

pub mod apk;
pub mod dpkg;
pub mod pep440;
pub mod rpm;
pub mod semver;

use std::cmp::Ordering;

use crate::package::Kind;

/// Compare two versions of packages of `kind` by that ecosystem's rules.
pub fn compare(kind: Kind, a: &str, b: &str) -> Ordering {
    match kind {
        Kind::Deb => dpkg::compare(a, b),
        Kind::Apk => apk::compare(a, b),
        Kind::Rpm => rpm::compare(a, b),
        Kind::Python => pep440::compare(a, b),
        Kind::Npm => semver::compare(a, b),
    }
}
