//! Fuzz target `request_index`: a fuzzed cluster (manifests) and a fuzzed request through the request path.
//! The body is in `common/request_index.rs`, which `tests/fuzz_regressions.rs` replays too.
#![no_main]

// The seed generator in it is for the regression tests.
#[allow(dead_code)]
#[path = "../common/request_index.rs"]
mod request_index;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = request_index::run(data);
});
