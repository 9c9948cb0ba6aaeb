//! Licenses as SBOMs state them: SPDX license expressions. Debian's machine-readable
//! copyright files (DEP-5) name licenses by their own short names (`GPL-2+`, `Expat`,
//! `BSD-3-clause`, `public-domain`); these are mapped to SPDX identifiers, and a name
//! with no SPDX identifier becomes a `LicenseRef-` of its own, which an SPDX document
//! defines beside its packages.

use crate::package::Kind;

/// A license as an SPDX license expression.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpdxLicense {
    /// The expression (`GPL-2.0-or-later AND (LGPL-2.1-or-later OR MIT)`).
    pub expression: String,
    /// The `LicenseRef-` identifiers it uses, each with the name it stands for, in
    /// order of first use.
    pub refs: Vec<(String, String)>,
}

/// The SPDX expression of a package's license as its database states it: DEP-5 names
/// mapped for Debian packages; for the other kinds, the license when it already reads
/// as an SPDX expression. `None` when there is no SPDX way to say it (a free-form
/// license string of a Python or npm package).
pub fn spdx_license(kind: Kind, stated: &str) -> Option<SpdxLicense> {
    match kind {
        Kind::Deb => dep5_to_spdx(stated),
        _ => crate::sbom::is_spdx_expression(stated)
            .then(|| SpdxLicense { expression: stated.to_owned(), refs: Vec::new() }),
    }
}

/// DEP-5 short names (copyright-format 1.0, "License specification"), lower case, and
/// the SPDX expression each stands for. A trailing `+` ("or any later version") is
/// handled by [`dep5_name`].
const DEP5: &[(&str, &str)] = &[
    ("agpl-3", "AGPL-3.0"),
    ("apache-1.0", "Apache-1.0"),
    ("apache-1.1", "Apache-1.1"),
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    // Debian's common-licenses/Artistic is Perl's Artistic License 1.0.
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1.0", "Artistic-1.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("cc-by-3.0", "CC-BY-3.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("cc-by-sa-3.0", "CC-BY-SA-3.0"),
    ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("cddl-1.0", "CDDL-1.0"),
    ("cpl-1.0", "CPL-1.0"),
    ("curl", "curl"),
    ("efl-1", "EFL-1.0"),
    ("efl-2", "EFL-2.0"),
    ("epl-1.0", "EPL-1.0"),
    ("epl-2.0", "EPL-2.0"),
    ("expat", "MIT"),
    ("gfdl-1.1", "GFDL-1.1"),
    ("gfdl-1.2", "GFDL-1.2"),
    ("gfdl-1.3", "GFDL-1.3"),
    ("gpl", "GPL-1.0"),
    ("gpl-1", "GPL-1.0"),
    ("gpl-2", "GPL-2.0"),
    ("gpl-2.0", "GPL-2.0"),
    ("gpl-3", "GPL-3.0"),
    ("gpl-3.0", "GPL-3.0"),
    ("isc", "ISC"),
    ("lgpl", "LGPL-2.0"),
    ("lgpl-2", "LGPL-2.0"),
    ("lgpl-2.0", "LGPL-2.0"),
    ("lgpl-2.1", "LGPL-2.1"),
    ("lgpl-3", "LGPL-3.0"),
    ("lgpl-3.0", "LGPL-3.0"),
    ("lppl-1.3c", "LPPL-1.3c"),
    ("mit", "MIT"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("openssl", "OpenSSL"),
    // "Same terms as Perl itself".
    ("perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("qpl-1.0", "QPL-1.0"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("unlicense", "Unlicense"),
    ("w3c", "W3C"),
    ("x11", "X11"),
    ("zlib", "Zlib"),
    ("zope-2.1", "ZPL-2.1"),
];

/// The GNU licenses, whose SPDX identifiers say `-only` or `-or-later`.
const GNU: [&str; 4] = ["GPL-", "LGPL-", "AGPL-", "GFDL-"];

/// DEP-5 exception names (`GPL-2+ with Autoconf exception`) and their SPDX exception
/// identifiers.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("autoconf-2", "Autoconf-exception-2.0"),
    ("autoconf-3", "Autoconf-exception-3.0"),
    ("bison", "Bison-exception-2.2"),
    ("classpath", "Classpath-exception-2.0"),
    ("font", "Font-exception-2.0"),
    ("gcc", "GCC-exception-3.1"),
    ("libtool", "Libtool-exception"),
];

/// The SPDX expression of one DEP-5 short name, or `None` when it has none.
fn dep5_name(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let (base, later) = match lower.strip_suffix('+') {
        Some(b) => (b, true),
        None => (lower.as_str(), false),
    };
    let &(_, spdx) = DEP5.iter().find(|(k, _)| *k == base)?;
    if GNU.iter().any(|g| spdx.starts_with(g)) {
        // GPL (no version) means any version: 1.0 or later.
        let later = later || base == "gpl" || base == "lgpl";
        return Some(format!("{spdx}-{}", if later { "or-later" } else { "only" }));
    }
    if later {
        // `Apache-2.0+`: SPDX's `+` operator ("or later").
        return (!spdx.contains(' ')).then(|| format!("{spdx}+"));
    }
    Some(spdx.to_owned())
}

/// `LicenseRef-` and the name, each character outside SPDX's idstring (`[A-Za-z0-9.-]`)
/// spelled out or replaced by `-`.
fn license_ref(name: &str) -> String {
    let mut id = String::from("LicenseRef-");
    for c in name.chars() {
        match c {
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => id.push(c),
            '+' => id.push_str("-or-later"),
            _ if id.ends_with('-') => {}
            _ => id.push('-'),
        }
    }
    id.trim_end_matches('-').to_owned()
}

/// A DEP-5 license line (`GPL-2+ AND (LGPL-2.1+ OR MIT)`, `GPL-2+ with OpenSSL
/// exception`, operators in either case) as an SPDX expression.
fn dep5_to_spdx(stated: &str) -> Option<SpdxLicense> {
    let spaced = stated.replace('(', " ( ").replace(')', " ) ").replace(',', " ");
    let words: Vec<&str> = spaced.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        i += 1;
        match w {
            "(" | ")" => out.push(w.to_owned()),
            _ if w.eq_ignore_ascii_case("and") => out.push("AND".into()),
            _ if w.eq_ignore_ascii_case("or") => out.push("OR".into()),
            name => {
                // `NAME with WORDS exception`: the exception belongs to the name.
                let mut exception = Vec::new();
                if words.get(i).is_some_and(|n| n.eq_ignore_ascii_case("with")) {
                    let mut j = i + 1;
                    while let Some(&x) = words.get(j) {
                        j += 1;
                        if x.eq_ignore_ascii_case("exception") {
                            break;
                        }
                        exception.push(x);
                    }
                    i = j;
                }
                let spdx_exception = match exception.as_slice() {
                    [] => None,
                    [e] => {
                        let e = e.to_ascii_lowercase();
                        let major = name.trim_start_matches(|c: char| !c.is_ascii_digit()).chars().next();
                        let keyed = major.map(|m| format!("{e}-{m}"));
                        EXCEPTIONS
                            .iter()
                            .find(|(k, _)| *k == e || Some(*k) == keyed.as_deref())
                            .map(|(_, v)| (*v).to_owned())
                    }
                    _ => None,
                };
                let known = dep5_name(name).filter(|n| !n.contains(' ') || exception.is_empty());
                let full = if exception.is_empty() {
                    name.to_owned()
                } else {
                    format!("{name} with {} exception", exception.join(" "))
                };
                let term = match (known, exception.is_empty(), spdx_exception) {
                    (Some(n), true, _) if n.contains(' ') => format!("({n})"),
                    (Some(n), true, _) => n,
                    (Some(n), false, Some(e)) => format!("{n} WITH {e}"),
                    _ => {
                        let id = license_ref(&full);
                        if !refs.iter().any(|(r, _)| *r == id) {
                            refs.push((id.clone(), full));
                        }
                        id
                    }
                };
                out.push(term);
            }
        }
    }
    let expression = out.join(" ").replace("( ", "(").replace(" )", ")");
    crate::sbom::is_spdx_expression(&expression).then_some(SpdxLicense { expression, refs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep5_names_to_spdx() {
        let table = [
            ("GPL-2+", "GPL-2.0-or-later"),
            ("GPL-2", "GPL-2.0-only"),
            ("GPL-3+", "GPL-3.0-or-later"),
            ("GPL", "GPL-1.0-or-later"),
            ("LGPL-2.1+", "LGPL-2.1-or-later"),
            ("LGPL-2.1", "LGPL-2.1-only"),
            ("LGPL-3+", "LGPL-3.0-or-later"),
            ("AGPL-3", "AGPL-3.0-only"),
            ("GFDL-1.3+", "GFDL-1.3-or-later"),
            ("BSD-3-clause", "BSD-3-Clause"),
            ("BSD-2-Clause", "BSD-2-Clause"),
            ("Expat", "MIT"),
            ("Apache-2.0", "Apache-2.0"),
            ("Apache-2.0+", "Apache-2.0+"),
            ("Artistic", "Artistic-1.0-Perl"),
            ("Perl", "(Artistic-1.0-Perl OR GPL-1.0-or-later)"),
            ("zlib", "Zlib"),
            ("ISC", "ISC"),
            ("CC0-1.0", "CC0-1.0"),
            ("MPL-2.0", "MPL-2.0"),
            ("GPL-2+ AND (LGPL-2.1+ OR MIT)", "GPL-2.0-or-later AND (LGPL-2.1-or-later OR MIT)"),
            ("GPL-2+ or Artistic", "GPL-2.0-or-later OR Artistic-1.0-Perl"),
            ("GPL-3+ with Autoconf exception", "GPL-3.0-or-later WITH Autoconf-exception-3.0"),
            ("GPL-2+ with Autoconf exception", "GPL-2.0-or-later WITH Autoconf-exception-2.0"),
            ("GPL-3+ with GCC exception", "GPL-3.0-or-later WITH GCC-exception-3.1"),
        ];
        for (dep5, want) in table {
            let got = spdx_license(Kind::Deb, dep5).unwrap_or_else(|| panic!("{dep5}: none"));
            assert_eq!(got.expression, want, "{dep5}");
            assert!(got.refs.is_empty(), "{dep5}: {:?}", got.refs);
        }
    }

    #[test]
    fn unknown_names_become_license_refs() {
        let l = spdx_license(Kind::Deb, "public-domain").unwrap();
        assert_eq!(l.expression, "LicenseRef-public-domain");
        assert_eq!(l.refs, [("LicenseRef-public-domain".to_owned(), "public-domain".to_owned())]);
        let l = spdx_license(Kind::Deb, "GPL-2+ with OpenSSL exception AND public-domain AND Expat").unwrap();
        assert_eq!(
            l.expression,
            "LicenseRef-GPL-2-or-later-with-OpenSSL-exception AND LicenseRef-public-domain AND MIT"
        );
        assert_eq!(l.refs.len(), 2);
        assert_eq!(l.refs[0].1, "GPL-2+ with OpenSSL exception");
        let l = spdx_license(Kind::Deb, "SIL-OFL_1.1 or other/thing").unwrap();
        assert_eq!(l.expression, "LicenseRef-SIL-OFL-1.1 OR LicenseRef-other-thing");
        // Other kinds: SPDX already, or nothing.
        assert_eq!(spdx_license(Kind::Npm, "MIT").unwrap().expression, "MIT");
        assert_eq!(spdx_license(Kind::Python, "MIT License"), None);
        assert_eq!(spdx_license(Kind::Deb, ""), None);
    }
}
