//! Fuzz target `request`: arbitrary bytes as a DNS request through the whole request path.
//! The body is in `common/request.rs`, which `tests/fuzz_regressions.rs` replays too.
#![no_main]

#[path = "../common/request.rs"]
mod request;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    request::run(data);
});
