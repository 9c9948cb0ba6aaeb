//! The tar framing alone: any bytes, every entry and its data read, no panic, and no
//! allocation beyond the limits (libFuzzer's -rss_limit_mb catches that).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_layer::read::{Limits, TarReader};

fuzz_target!(|data: &[u8]| {
    let mut r = TarReader::new(data, Limits::default(), "fuzz");
    let mut total = 0u64;
    while let Ok(Some(e)) = r.next_entry() {
        let _ = strata_layer::path::normalize(&e.path).map(|p| strata_layer::path::classify(&p));
        if r.read_data(|chunk| -> strata_layer::Result<()> {
            total += chunk.len() as u64;
            Ok(())
        })
        .is_err()
        {
            break;
        }
    }
    assert!(total <= data.len() as u64);
});
