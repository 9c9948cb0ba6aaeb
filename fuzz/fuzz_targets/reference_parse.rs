//! The string parsers of strata-spec (reference, digest, platform, media type,
//! compression) and the manifest-or-index sniffing: no panic, and what parses prints as
//! text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_spec::{Compression, Digest, ManifestOrIndex, MediaType, Platform, Reference};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        // `parse` adds the default tag, `parse_exact` does not: each re-parses its own output.
        for parse in [Reference::parse, Reference::parse_exact] {
            if let Ok(r) = parse(s) {
                let shown = r.to_string();
                let again = parse(&shown).unwrap_or_else(|e| panic!("{shown:?} (from {s:?}): {e}"));
                assert_eq!(again, r, "{s:?} -> {shown:?}");
                let _ = (r.name(), r.familiar(), r.familiar_name(), r.api_host());
                let fam = r.familiar();
                let again = parse(&fam).unwrap_or_else(|e| panic!("familiar {fam:?} (from {s:?}): {e}"));
                assert_eq!(again, r, "{s:?} -> familiar {fam:?}");
                let _ = r.with_tag("latest");
            }
        }
        if let Ok(d) = Digest::parse(s) {
            assert_eq!(d.to_string(), s);
            assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
            let _ = d.short();
        }
        if let Ok(p) = Platform::parse(s) {
            let shown = p.to_string();
            let again = Platform::parse(&shown).unwrap_or_else(|e| panic!("{shown:?} (from {s:?}): {e}"));
            assert_eq!(again, p, "{s:?} -> {shown:?}");
            let _ = p.normalized().match_score(&Platform::host());
        }
        if let Ok(m) = MediaType::parse_known(s) {
            assert_eq!(MediaType::parse_known(m.as_str()).unwrap(), m);
            let _ = (m.family(), m.is_manifest(), m.is_index(), m.layer_compression());
        }
        if let Ok(c) = s.parse::<Compression>() {
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        }
    }
    let _ = ManifestOrIndex::from_slice(data);
    for mt in [MediaType::OciManifest, MediaType::OciIndex, MediaType::new("application/json")] {
        let _ = ManifestOrIndex::from_slice_as(data, &mt);
    }
});
