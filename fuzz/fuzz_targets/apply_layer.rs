//! Apply any bytes as a layer (plain or gzip, as sniffed): no panic, nothing outside
//! the root changes.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use strata_layer::{ApplyOptions, LayerSource, apply_layer};

fuzz_target!(|data: &[u8]| {
    let sb = common::Sandbox::new();
    let opts = ApplyOptions::default().single_thread(true);
    let _ = apply_layer(&sb.root, LayerSource::new("fuzz", data), &opts);
    sb.check();
});
