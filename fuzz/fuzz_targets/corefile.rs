//! Fuzz target `corefile`: arbitrary text through the Corefile parser.
//! The body is in `common/corefile.rs`, which `tests/fuzz_regressions.rs` replays too.
#![no_main]

#[path = "../common/corefile.rs"]
mod corefile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    corefile::run(data);
});
