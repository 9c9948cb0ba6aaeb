//! The JSON parsers of strata-spec (manifest, index, config, digest, reference): no
//! panic, and what parses re-serialises to JSON that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_spec::{Digest, ImageConfig, Index, Manifest, Reference};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_slice(data) {
        let again = Manifest::from_slice(&m.to_canonical_json()).expect("canonical manifest parses");
        assert_eq!(again.to_canonical_json(), m.to_canonical_json());
    }
    if let Ok(i) = Index::from_slice(data) {
        let again = Index::from_slice(&i.to_canonical_json()).expect("canonical index parses");
        assert_eq!(again.to_canonical_json(), i.to_canonical_json());
    }
    if let Ok(c) = ImageConfig::from_slice(data) {
        let again = ImageConfig::from_slice(&c.to_canonical_json()).expect("canonical config parses");
        assert_eq!(again.to_canonical_json(), c.to_canonical_json());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(d) = Digest::parse(s) {
            assert_eq!(d.as_str(), s);
        }
        let _ = s.parse::<Reference>();
    }
});
