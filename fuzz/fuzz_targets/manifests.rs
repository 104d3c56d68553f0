//! Fuzz target `manifests`: arbitrary bytes as a `manifests` file through the loader (YAML/JSON
//! documents, `List`s, conversion into the DNS model) and into the cluster index: must never
//! panic, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = clusterdns::kubernetes_manifests_fuzz::load(data);
});
