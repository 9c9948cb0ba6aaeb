//! `Store::load` on any bytes (docker-archive, OCI archive, compressed or not): no panic,
//! bounded memory, and a failed load leaves the store as it was (no blobs, no refs, no
//! images); a successful one leaves a store whose every loaded image opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_image::Store;

fuzz_target!(|data: &[u8]| {
    let store = Store::in_memory();
    let result = store.load(data);
    // `STRATA_FUZZ_DEBUG=1 .../archive_load FILE...` shows what each input does.
    if std::env::var_os("STRATA_FUZZ_DEBUG").is_some() {
        eprintln!("load: {:?}", result.as_ref().map(|l| l.iter().map(|l| l.names.clone()).collect::<Vec<_>>()));
    }
    match result {
        Err(e) => {
            let _ = e.to_string();
            let blobs = store.backend().list().unwrap();
            assert!(blobs.is_empty(), "a failed load ({e}) left blobs: {blobs:?}");
            let refs = store.backend().refs().unwrap();
            assert!(refs.is_empty(), "a failed load ({e}) left refs: {refs:?}");
            assert!(store.images().unwrap().is_empty(), "a failed load ({e}) left images");
        }
        Ok(loaded) => {
            for l in &loaded {
                for n in &l.names {
                    store.image(n).unwrap_or_else(|e| panic!("loaded {n} does not open: {e}"));
                }
            }
        }
    }
});
