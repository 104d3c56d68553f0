//! TEMPORARY STAND-IN (wt-k8s): cluster data sources. The manifests helper owns this directory;
//! the lead replaces it with the real one at merge.

pub(crate) mod manifests;
