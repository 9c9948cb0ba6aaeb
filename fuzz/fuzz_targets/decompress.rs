//! Compression sniffing and decoding of any bytes: no panic, bounded memory; and the
//! gzip reader that skips the CRC (`Decoder::without_gzip_crc`) agrees with the checking
//! one: whatever the checking decoder accepts, it decodes to the same bytes.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use strata_layer::Decoder;
use strata_spec::Compression;

/// Decode up to a cap (a bomb is allowed to be big, not to take forever here): the bytes,
/// and whether the stream ended cleanly.
fn decode<R: Read>(mut d: Decoder<R>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < 16 << 20 {
        match d.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    for declared in [None, Some(Compression::Gzip), Some(Compression::Zstd), Some(Compression::None)] {
        let checked = Decoder::new(data, declared, "fuzz").ok().map(decode);
        let unchecked = Decoder::without_gzip_crc(data, declared, "fuzz").ok().map(decode);
        assert_eq!(checked.is_some(), unchecked.is_some(), "the two decoders disagree on the header");
        if let (Some((a, true)), Some((b, ok))) = (&checked, &unchecked) {
            assert!(ok, "the checking decoder accepts what the CRC-less one refuses");
            assert!(a == b, "the two decoders decode to different bytes");
        }
    }
});
