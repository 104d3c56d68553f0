//! Sources of cluster objects for the kubernetes plugin: each one produces model objects
//! (`convert` turns API objects into them); the index consumes them. No DNS here.
// Until setup.rs wires the manifests source in, only the tests use it.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod convert;
pub(crate) mod manifests;
