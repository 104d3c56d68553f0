//! TEMPORARY STAND-IN (wt-k8s) for the manifests source, with the agreed seam only: the real
//! loader lives on the manifests helper's branch and replaces this file at merge. This stand-in
//! loads nothing and says so: `load` always fails, so `manifests` is a start-up error here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::plugin::kubernetes::model::Object;

/// Label filters the source applies to what it reads (`labels`, `namespace_labels`).
#[allow(clippy::type_complexity, dead_code)]
pub(crate) struct Filter {
    pub(crate) labels: Option<Box<dyn Fn(&BTreeMap<String, String>) -> bool + Send + Sync>>,
    pub(crate) namespace_labels:
        Option<Box<dyn Fn(&BTreeMap<String, String>) -> bool + Send + Sync>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("the manifests source is not in this build yet (stand-in)")]
    Unavailable,
}

pub(crate) struct ManifestSource {
    paths: Vec<PathBuf>,
    _filter: Filter,
    _sink: Box<dyn Fn(Vec<Object>) + Send + Sync>,
}

impl ManifestSource {
    pub(crate) fn new(
        paths: Vec<PathBuf>,
        filter: Filter,
        sink: Box<dyn Fn(Vec<Object>) + Send + Sync>,
    ) -> Self {
        ManifestSource {
            paths,
            _filter: filter,
            _sink: sink,
        }
    }

    /// One full read. The stand-in has no loader.
    pub(crate) fn load(&self) -> Result<Vec<Object>, ManifestError> {
        let _ = &self.paths;
        Err(ManifestError::Unavailable)
    }

    /// Poll for changes. The stand-in has nothing to poll.
    pub(crate) fn spawn_watch(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let _ = interval;
        tokio::spawn(async {})
    }
}
