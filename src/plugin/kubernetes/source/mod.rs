//! Sources of cluster objects for the kubernetes plugin: each one produces model objects
//! (`convert` turns API objects into them); the index consumes them. No DNS here.

pub(crate) mod api;
pub(crate) mod convert;
pub(crate) mod manifests;
