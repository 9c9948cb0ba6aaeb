//! Compression sniffing and decoding of any bytes: no panic, bounded memory.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use strata_layer::Decoder;
use strata_spec::Compression;

fuzz_target!(|data: &[u8]| {
    for declared in [None, Some(Compression::Gzip), Some(Compression::Zstd), Some(Compression::None)] {
        if let Ok(mut d) = Decoder::new(data, declared, "fuzz") {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            // Cap the output: a bomb is allowed to be big, not to take forever here.
            while total < 64 << 20 {
                match d.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        }
    }
});
