//! Body of the `corefile` fuzz target, shared with `tests/fuzz_regressions.rs`: arbitrary text
//! through the Corefile parser must never panic.

use std::path::Path;
use std::sync::OnceLock;

/// An empty directory for relative imports to resolve against (nothing to find there).
fn base_dir() -> &'static Path {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().ok())
        .as_ref()
        .map_or(Path::new("/nonexistent-clusterdns-fuzz"), |d| d.path())
}

/// One execution.
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = clusterdns::corefile::parse_str(text, "Corefile", base_dir());
    }
}
