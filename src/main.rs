//! The `clusterdns` binary: command line, tracing, signals; calls `clusterdns::run`.
fn main() {}
