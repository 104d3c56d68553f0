//! Fuzz target `manifests`: arbitrary bytes as a manifests file through the loader and into the index.
//! The body is in `common/manifests.rs`, which `tests/fuzz_regressions.rs` replays too.
#![no_main]

// The seed generator in it is for the regression tests.
#[allow(dead_code)]
#[path = "../common/manifests.rs"]
mod manifests;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = manifests::run(data);
});
