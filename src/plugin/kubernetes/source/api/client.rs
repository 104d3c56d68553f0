//! The API client: where it comes from (kubeconfig, endpoint + TLS files, in-cluster service
//! account) and why it cannot be configured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Client;

/// Longest silence on an API response before the request fails (and is retried with backoff).
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the API client cannot be configured.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("endpoint {url:?}: {message}")]
    Endpoint { url: String, message: String },
    #[error("tls: cannot read {path}: {source}")]
    TlsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no in-cluster configuration (set `endpoint` or `kubeconfig` when running outside a cluster): {0}"
    )]
    InCluster(String),
    #[error("cannot build the Kubernetes API client: {0}")]
    Client(String),
}

/// Where the API client comes from.
#[derive(Clone, Debug)]
pub(crate) enum ClientSource {
    /// Service-account token and `KUBERNETES_SERVICE_HOST/PORT`, resolved at start.
    InCluster,
    /// A configuration resolved at setup (`kubeconfig`, or `endpoint` with `tls`).
    Config(Box<kube::Config>),
}

impl ClientSource {
    /// From `kubeconfig PATH [CONTEXT]`: read and resolved now, so errors surface at setup.
    pub(crate) fn kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, ClientError> {
        let fail = |message: String| ClientError::Kubeconfig {
            path: path.to_path_buf(),
            message,
        };
        let kubeconfig =
            kube::config::Kubeconfig::read_from(path).map_err(|e| fail(e.to_string()))?;
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_owned),
            ..Default::default()
        };
        // `from_custom_kubeconfig` is async (exec/OIDC plugins); resolve it on a private
        // single-threaded runtime in its own thread, so setup works inside or outside tokio.
        let resolved = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime
                        .block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &options))
                        .map_err(|e| e.to_string())
                })
                .join()
                .unwrap_or_else(|_| Err("kubeconfig resolution panicked".to_owned()))
        });
        resolved
            .map(|config| ClientSource::Config(Box::new(config)))
            .map_err(fail)
    }

    /// From `endpoint URL` and optionally `tls CERT KEY CACERT` (files must be readable).
    pub(crate) fn endpoint(
        url: &str,
        tls: Option<(&Path, &Path, &Path)>,
    ) -> Result<Self, ClientError> {
        let uri: hyper::http::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| ClientError::Endpoint {
                    url: url.to_owned(),
                    message: e.to_string(),
                })?;
        if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(ClientError::Endpoint {
                url: url.to_owned(),
                message: "expected http://HOST[:PORT] or https://HOST[:PORT]".to_owned(),
            });
        }
        let mut config = kube::Config::new(uri);
        if let Some((cert, key, ca)) = tls {
            for path in [cert, key, ca] {
                std::fs::metadata(path).map_err(|source| ClientError::TlsFile {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
            config.auth_info.client_certificate = Some(cert.display().to_string());
            config.auth_info.client_key = Some(key.display().to_string());
            config.root_cert_file = Some(ca.to_path_buf());
        }
        Ok(ClientSource::Config(Box::new(config)))
    }

    /// The API server for logs: its URL, or `in-cluster`.
    pub(crate) fn label(&self) -> String {
        match self {
            ClientSource::InCluster => "in-cluster".to_owned(),
            ClientSource::Config(config) => config.cluster_url.to_string(),
        }
    }

    /// The client (inside the tokio runtime: the client spawns its buffer task).
    pub(super) fn client(&self) -> Result<Client, ClientError> {
        let mut config = match self {
            ClientSource::InCluster => {
                kube::Config::incluster().map_err(|e| ClientError::InCluster(e.to_string()))?
            }
            ClientSource::Config(config) => config.as_ref().clone(),
        };
        // A response that stalls (a list that never completes) is cut after this much silence;
        // watches are never silent that long (the server ends them after 290 s).
        config.read_timeout.get_or_insert(READ_TIMEOUT);
        Client::try_from(config).map_err(|e| ClientError::Client(e.to_string()))
    }
}
