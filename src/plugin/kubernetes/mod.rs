//! The `kubernetes` plugin: answers cluster.local-style names from the cluster index.
pub(crate) mod model;
pub(crate) mod source;
