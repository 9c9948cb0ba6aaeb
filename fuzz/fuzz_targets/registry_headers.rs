//! The registry client's parsers of what a server sends (`WWW-Authenticate`,
//! `Content-Range`) and of docker's stored `auth` field: no panic, no hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_registry::Credentials;
use strata_registry::fuzzing::{parse_challenges, parse_content_range};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let challenges = parse_challenges(&s);
    assert!(challenges.len() <= s.len());
    if let Some((start, _)) = parse_content_range(&s) {
        assert!(s.contains(&start.to_string()));
    }
    if let Some(c) = Credentials::from_base64(&s) {
        assert!(Credentials::from_base64(&c.to_base64()).is_some());
    }
});
