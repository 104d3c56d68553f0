//! Fuzz target `forward_reply`: fuzzed bytes as an upstream's reply to forward (behind cache).
//! The body is in `common/forward_reply.rs`, which `tests/fuzz_regressions.rs` replays too.
#![no_main]

// The seed generator in it is for the regression tests.
#[allow(dead_code)]
#[path = "../common/forward_reply.rs"]
mod forward_reply;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = forward_reply::run(data);
});
