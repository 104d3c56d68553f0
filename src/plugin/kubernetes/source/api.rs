//! The Kubernetes API source: list+watch of Services, EndpointSlices, Namespaces (metadata only)
//! and, for `pods verified`, Pods, converted into the model and applied to the index per event.
//! Tracks the sync state of every watched kind, keeps the last good index through API outages,
//! and logs each connection transition once.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use prometheus::HistogramVec;
use tracing::{debug, info, warn};

use super::convert;
use crate::metrics;
use crate::plugin::kubernetes::index::{Index, Store, unix_now};
use crate::plugin::kubernetes::model::{Object, ServiceKind, Str};

const PLUGIN: &str = "kubernetes";

/// CoreDNS's pod field selector: pods that can never answer are not even listed.
const POD_FIELD_SELECTOR: &str =
    "status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown";

/// The EndpointSlice annotation the controller sets to the time of the change it reflects.
const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// How often start-up logs that it is still waiting (CoreDNS: every 0.5 s).
const WAIT_LOG_INTERVAL: Duration = Duration::from_millis(500);

/// Longest silence on an API response before the request fails (and is retried with backoff).
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Events applied before a snapshot is published, at most (coalescing of bursts).
const MAX_BATCH: usize = 4096;

/// `coredns_kubernetes_dns_programming_duration_seconds{service_kind}`.
static DNS_PROGRAMMING: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "kubernetes",
        "dns_programming_duration_seconds",
        "Histogram of the time (in seconds) it took to program a dns instance.",
        &["service_kind"],
        metrics::exponential_buckets(0.001, 2.0, 20),
    )
});

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
    fn client(&self) -> Result<Client, ClientError> {
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

/// What to watch and how.
#[derive(Clone, Debug)]
pub(crate) struct ApiSettings {
    pub(crate) client: ClientSource,
    /// `labels`: applied to Services, EndpointSlices and Pods.
    pub(crate) labels: Option<String>,
    /// `namespace_labels`: applied to Namespaces.
    pub(crate) namespace_labels: Option<String>,
    /// EndpointSlices are watched (not `noendpoints`).
    pub(crate) endpoints: bool,
    /// Pods are watched (`pods verified`).
    pub(crate) pods: bool,
    pub(crate) startup_timeout: Duration,
}

/// The kinds this source watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Service = 0,
    EndpointSlice = 1,
    Namespace = 2,
    Pod = 3,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Namespace,
        Kind::Pod,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::EndpointSlice => "endpointslices",
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
        }
    }
}

/// `(namespace, name)`, lower-case; the namespace is empty for Namespaces.
type Key = (Str, Str);

/// One watch event, already converted to the model.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A (re)list starts.
    Init(Kind),
    /// An object of the list (`init`) or a change: its model, `None` when DNS does not index it
    /// (a terminating pod, a pod without IP): then it counts as absent.
    Object {
        kind: Kind,
        init: bool,
        key: Key,
        object: Option<Object>,
        /// The slice's last-change-trigger-time, for the programming-duration metric.
        trigger: Option<SystemTime>,
    },
    Delete {
        kind: Kind,
        key: Key,
    },
    /// The (re)list is complete.
    InitDone(Kind),
    /// The watch or list failed; the watcher retries with backoff.
    Error {
        kind: Kind,
        error: String,
    },
    /// An object that cannot be converted (no name): ignored.
    Skip,
}

#[derive(Debug, Default)]
struct KindState {
    used: bool,
    synced: bool,
    /// `Some(false)` after an error until the next good event: transitions log once.
    healthy: Option<bool>,
    /// Objects of a (re)list in progress.
    buffer: Option<Vec<(Key, Option<Object>)>>,
}

/// The state the events build: the working index, which objects of each kind are in it, and the
/// sync state per kind. Pure (no I/O, clock passed in), so it is unit-tested with events.
#[derive(Debug)]
pub(crate) struct Tracker {
    index: Index,
    services: HashSet<Key>,
    /// Slice -> the service label it was indexed under.
    slices: HashMap<Key, Str>,
    /// Pod -> its indexed primary IP.
    pods: HashMap<Key, IpAddr>,
    namespaces: HashSet<Str>,
    kinds: [KindState; 4],
    /// The working index has changes not yet published.
    dirty: bool,
    /// Which API server, for logs (its URL, or `in-cluster`).
    api: Arc<str>,
}

impl Tracker {
    pub(crate) fn new(used: &[Kind], serial: u32, api: Arc<str>) -> Tracker {
        let mut index = Index::default();
        index.set_serial(serial);
        let mut kinds: [KindState; 4] = Default::default();
        for kind in used {
            kinds[*kind as usize].used = true;
        }
        Tracker {
            index,
            services: HashSet::new(),
            slices: HashMap::new(),
            pods: HashMap::new(),
            namespaces: HashSet::new(),
            kinds,
            dirty: false,
            api,
        }
    }

    /// Every watched kind has completed its first list.
    pub(crate) fn all_synced(&self) -> bool {
        self.kinds.iter().all(|k| !k.used || k.synced)
    }

    #[cfg(test)]
    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Apply one event; `now` is the serial clock (unix seconds), `wall` the metric clock.
    pub(crate) fn handle(&mut self, msg: Msg, now: u32, wall: SystemTime) {
        match msg {
            Msg::Skip => {}
            Msg::Error { kind, error } => {
                let state = &mut self.kinds[kind as usize];
                if state.healthy != Some(false) {
                    warn!(
                        plugin = PLUGIN,
                        api = %self.api,
                        kind = kind.as_str(),
                        %error,
                        "Kubernetes API watch failed; answering from the last good data and retrying with backoff"
                    );
                    state.healthy = Some(false);
                }
            }
            Msg::Init(kind) => {
                debug!(plugin = PLUGIN, kind = kind.as_str(), "listing");
                self.kinds[kind as usize].buffer = Some(Vec::new());
            }
            Msg::Object {
                kind,
                init: true,
                key,
                object,
                ..
            } => {
                self.good(kind);
                if let Some(buffer) = &mut self.kinds[kind as usize].buffer {
                    buffer.push((key, object));
                }
            }
            Msg::InitDone(kind) => {
                self.good(kind);
                let items = self.kinds[kind as usize].buffer.take().unwrap_or_default();
                let count = items.len();
                self.relist(kind, items, now);
                let state = &mut self.kinds[kind as usize];
                if state.synced {
                    info!(plugin = PLUGIN, api = %self.api, kind = kind.as_str(), objects = count, "Kubernetes API relisted");
                } else {
                    state.synced = true;
                    info!(plugin = PLUGIN, api = %self.api, kind = kind.as_str(), objects = count, "Kubernetes API synced");
                }
            }
            Msg::Object {
                kind,
                init: false,
                key,
                object,
                trigger,
            } => {
                self.good(kind);
                let service = match &object {
                    Some(Object::EndpointSlice(slice)) => {
                        Some((slice.namespace.clone(), slice.service.clone()))
                    }
                    _ => None,
                };
                if self.apply(kind, key, object) {
                    self.index.set_serial(now);
                }
                if let (Some(trigger), Some((ns, svc))) = (trigger, service)
                    && self.kinds[kind as usize].synced
                {
                    self.record_programming(&ns, &svc, trigger, wall);
                }
            }
            Msg::Delete { kind, key } => {
                self.good(kind);
                if self.apply(kind, key, None) {
                    self.index.set_serial(now);
                }
            }
        }
    }

    /// An event arrived: the kind's watch works (again).
    fn good(&mut self, kind: Kind) {
        let state = &mut self.kinds[kind as usize];
        if state.healthy == Some(false) {
            info!(plugin = PLUGIN, api = %self.api, kind = kind.as_str(), "Kubernetes API watch restored");
        }
        state.healthy = Some(true);
    }

    /// `coredns_kubernetes_dns_programming_duration_seconds`: only slices the controller stamped,
    /// of a Service we know (CoreDNS: cluster_ip, or headless_with_selector).
    fn record_programming(
        &self,
        namespace: &str,
        service: &str,
        trigger: SystemTime,
        wall: SystemTime,
    ) {
        let Some(data) = self
            .index
            .group(namespace, service)
            .and_then(|g| g.service.as_ref())
        else {
            return;
        };
        let kind = match data.kind {
            ServiceKind::Headless => "headless_with_selector",
            ServiceKind::ClusterIp(_) => "cluster_ip",
            ServiceKind::ExternalName(_) => return,
        };
        let seconds = wall
            .duration_since(trigger)
            .unwrap_or_default()
            .as_secs_f64();
        DNS_PROGRAMMING.with_label_values(&[kind]).observe(seconds);
    }

    /// A full list of `kind` replaces what the index holds of that kind: objects missing from it
    /// are deleted, the others upserted (unchanged ones cost a comparison, not a copy).
    fn relist(&mut self, kind: Kind, items: Vec<(Key, Option<Object>)>, now: u32) {
        let fresh: HashSet<&Key> = items.iter().map(|(k, _)| k).collect();
        let gone: Vec<Key> = match kind {
            Kind::Service => self
                .services
                .iter()
                .filter(|k| !fresh.contains(k))
                .cloned()
                .collect(),
            Kind::EndpointSlice => self
                .slices
                .keys()
                .filter(|k| !fresh.contains(k))
                .cloned()
                .collect(),
            Kind::Pod => self
                .pods
                .keys()
                .filter(|k| !fresh.contains(k))
                .cloned()
                .collect(),
            Kind::Namespace => self
                .namespaces
                .iter()
                .map(|n| (Str::from(""), n.clone()))
                .filter(|k| !fresh.contains(k))
                .collect(),
        };
        let mut changed = false;
        for key in gone {
            changed |= self.apply(kind, key, None);
        }
        for (key, object) in items {
            changed |= self.apply(kind, key, object);
        }
        if changed {
            self.index.set_serial(now);
        }
    }

    /// Upsert (`Some`) or remove (`None`) one object. Returns whether answers may have changed
    /// (namespace events never do, as for CoreDNS's serial).
    fn apply(&mut self, kind: Kind, key: Key, object: Option<Object>) -> bool {
        let (namespace, name) = (&key.0, &key.1);
        let changed = match (kind, object) {
            (Kind::Service, Some(Object::Service(svc))) => {
                self.services.insert(key.clone());
                self.index.upsert_service(svc)
            }
            (Kind::Service, _) => {
                self.services.remove(&key) && self.index.remove_service(namespace, name)
            }
            (Kind::EndpointSlice, Some(Object::EndpointSlice(slice))) => {
                let mut changed = false;
                if let Some(old) = self.slices.insert(key.clone(), slice.service.clone())
                    && old != slice.service
                {
                    changed |= self.index.remove_slice(namespace, &old, name);
                }
                changed | self.index.upsert_slice(slice)
            }
            (Kind::EndpointSlice, _) => match self.slices.remove(&key) {
                Some(service) => self.index.remove_slice(namespace, &service, name),
                None => false,
            },
            (Kind::Pod, Some(Object::Pod(pod))) => match self.pods.insert(key.clone(), pod.ip) {
                Some(old) if old == pod.ip => false,
                Some(old) => {
                    self.index.remove_pod(namespace, old);
                    self.index.add_pod(namespace, pod.ip);
                    true
                }
                None => {
                    self.index.add_pod(namespace, pod.ip);
                    true
                }
            },
            (Kind::Pod, _) => match self.pods.remove(&key) {
                Some(ip) => {
                    self.index.remove_pod(namespace, ip);
                    true
                }
                None => false,
            },
            (Kind::Namespace, object) => {
                let exists = object.is_some();
                let known = self.namespaces.contains(name);
                if exists != known {
                    if exists {
                        self.namespaces.insert(name.clone());
                    } else {
                        self.namespaces.remove(name);
                    }
                    self.index.set_namespace(name, exists);
                    self.dirty = true;
                }
                false
            }
        };
        self.dirty |= changed;
        changed
    }
}

/// `(namespace, name)` of an object, lower-case; `None` without a name.
fn key_of(meta: &ObjectMeta) -> Option<Key> {
    let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    Some((
        namespace.to_ascii_lowercase().into(),
        name.to_ascii_lowercase().into(),
    ))
}

/// Converts one object: its key and model (`None` = not indexed), or `None` to skip it.
type Converter<K> = fn(&K) -> Option<(Option<Object>, Option<SystemTime>)>;

fn convert_service(svc: &core::Service) -> Option<(Option<Object>, Option<SystemTime>)> {
    match convert::service(svc) {
        Ok(s) => Some((Some(Object::Service(s)), None)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "service ignored");
            None
        }
    }
}

fn convert_slice(slice: &discovery::EndpointSlice) -> Option<(Option<Object>, Option<SystemTime>)> {
    let trigger = slice
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LAST_CHANGE_TRIGGER_TIME))
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(SystemTime::from);
    match convert::endpoint_slice(slice) {
        Ok(s) => Some((Some(Object::EndpointSlice(s)), trigger)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "endpointslice ignored");
            None
        }
    }
}

fn convert_pod(pod: &core::Pod) -> Option<(Option<Object>, Option<SystemTime>)> {
    match convert::pod(pod) {
        Ok(p) => Some((p.map(Object::Pod), None)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "pod ignored");
            None
        }
    }
}

fn convert_namespace(
    ns: &PartialObjectMeta<core::Namespace>,
) -> Option<(Option<Object>, Option<SystemTime>)> {
    match convert::namespace_meta(&ns.metadata) {
        Ok(n) => Some((Some(Object::Namespace(n)), None)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "namespace ignored");
            None
        }
    }
}

/// A watcher event of `kind` as a `Msg`.
fn to_msg<K: Resource<DynamicType = ()>>(
    kind: Kind,
    event: Result<Event<K>, watcher::Error>,
    convert: Converter<K>,
) -> Msg {
    let object = |obj: &K, init: bool| match (key_of(obj.meta()), convert(obj)) {
        (Some(key), Some((object, trigger))) => Msg::Object {
            kind,
            init,
            key,
            object,
            trigger,
        },
        _ => Msg::Skip,
    };
    match event {
        Ok(Event::Init) => Msg::Init(kind),
        Ok(Event::InitApply(obj)) => object(&obj, true),
        Ok(Event::InitDone) => Msg::InitDone(kind),
        Ok(Event::Apply(obj)) => object(&obj, false),
        Ok(Event::Delete(obj)) => match key_of(obj.meta()) {
            Some(key) => Msg::Delete { kind, key },
            None => Msg::Skip,
        },
        Err(error) => Msg::Error {
            kind,
            error: error.to_string(),
        },
    }
}

fn watch_config(labels: Option<&str>) -> watcher::Config {
    let config = watcher::Config::default();
    match labels {
        Some(selector) => config.labels(selector),
        None => config,
    }
}

/// The API source of one kubernetes plugin instance.
#[derive(Debug)]
pub(crate) struct ApiSource {
    settings: ApiSettings,
    store: Arc<Store>,
    /// A client that could not be built at start; reported by `wait_started`.
    failure: Mutex<Option<String>>,
}

impl ApiSource {
    pub(crate) fn new(settings: ApiSettings, store: Arc<Store>) -> ApiSource {
        ApiSource {
            settings,
            store,
            failure: Mutex::new(None),
        }
    }

    /// The kinds this configuration watches.
    pub(crate) fn kinds(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| match k {
                Kind::EndpointSlice => self.settings.endpoints,
                Kind::Pod => self.settings.pods,
                Kind::Service | Kind::Namespace => true,
            })
            .collect()
    }

    /// Build the client and start the watches (inside the tokio runtime).
    pub(crate) fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        match self.settings.client.client() {
            Ok(client) => {
                let this = Arc::clone(self);
                vec![tokio::spawn(async move { this.run(client).await })]
            }
            Err(error) => {
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(error.to_string());
                Vec::new()
            }
        }
    }

    fn streams(&self, client: Client) -> BoxStream<'static, Msg> {
        let labels = self.settings.labels.as_deref();
        let mut all: Vec<BoxStream<'static, Msg>> = Vec::new();
        let services: Api<core::Service> = Api::all(client.clone());
        all.push(
            watcher::watcher(services, watch_config(labels))
                .default_backoff()
                .map(|e| to_msg(Kind::Service, e, convert_service))
                .boxed(),
        );
        if self.settings.endpoints {
            let slices: Api<discovery::EndpointSlice> = Api::all(client.clone());
            all.push(
                watcher::watcher(slices, watch_config(labels))
                    .default_backoff()
                    .map(|e| to_msg(Kind::EndpointSlice, e, convert_slice))
                    .boxed(),
            );
        }
        let namespaces: Api<PartialObjectMeta<core::Namespace>> = Api::all(client.clone());
        all.push(
            watcher::watcher(
                namespaces,
                watch_config(self.settings.namespace_labels.as_deref()),
            )
            .default_backoff()
            .map(|e| to_msg(Kind::Namespace, e, convert_namespace))
            .boxed(),
        );
        if self.settings.pods {
            let pods: Api<core::Pod> = Api::all(client);
            all.push(
                watcher::watcher(pods, watch_config(labels).fields(POD_FIELD_SELECTOR))
                    .default_backoff()
                    .map(|e| to_msg(Kind::Pod, e, convert_pod))
                    .boxed(),
            );
        }
        stream::select_all(all).boxed()
    }

    /// Consume the watches for ever: apply events in batches, publish a snapshot per batch.
    async fn run(self: Arc<Self>, client: Client) {
        let mut events = self.streams(client);
        let mut tracker = Tracker::new(
            &self.kinds(),
            self.store.guard().serial(),
            self.settings.client.label().into(),
        );
        // The first snapshot waits for every kind (or the start-up timeout), so a store that
        // already serves (one kept across a reload) never shows a half-listed cluster.
        let deadline = tokio::time::Instant::now() + self.settings.startup_timeout;
        let mut first_published = false;
        loop {
            let next = if first_published || !tracker.dirty {
                events.next().await
            } else {
                match tokio::time::timeout_at(deadline, events.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        // Start-up timeout: serve what has been listed so far.
                        self.store.publish(tracker.index.clone());
                        tracker.dirty = false;
                        first_published = true;
                        continue;
                    }
                }
            };
            let Some(msg) = next else { break };
            tracker.handle(msg, unix_now(), SystemTime::now());
            // Coalesce what is already waiting into the same snapshot.
            for _ in 0..MAX_BATCH {
                match events.next().now_or_never() {
                    Some(Some(msg)) => tracker.handle(msg, unix_now(), SystemTime::now()),
                    _ => break,
                }
            }
            let may_publish =
                first_published || tracker.all_synced() || tokio::time::Instant::now() >= deadline;
            if tracker.dirty && may_publish {
                self.store.publish(tracker.index.clone());
                tracker.dirty = false;
                first_published = true;
            }
            if !self.store.synced() && tracker.all_synced() {
                self.store.set_synced(true);
                let stats = tracker.index.stats();
                info!(
                    plugin = PLUGIN,
                    api = %self.settings.client.label(),
                    services = stats.groups,
                    endpoint_ips = stats.endpoint_ips,
                    cluster_ips = stats.cluster_ips,
                    pod_ips = stats.pod_ips,
                    namespaces = stats.namespaces,
                    "Kubernetes API synced: serving cluster data"
                );
            }
        }
    }

    /// Block start-up until every watched kind has listed once or `startup_timeout` passes
    /// (CoreDNS). Fails only when the client could not be built.
    pub(crate) async fn wait_started(&self) -> Result<(), String> {
        if let Some(error) = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Err(error);
        }
        let start = Instant::now();
        let mut last_log: Option<Instant> = None;
        loop {
            if self.store.synced() {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= self.settings.startup_timeout {
                warn!(
                    plugin = PLUGIN,
                    api = %self.settings.client.label(),
                    timeout = ?self.settings.startup_timeout,
                    "starting server with unsynced Kubernetes API"
                );
                return Ok(());
            }
            if last_log.is_none_or(|t| t.elapsed() >= WAIT_LOG_INTERVAL) {
                info!(plugin = PLUGIN, api = %self.settings.client.label(), "waiting for Kubernetes API before starting server");
                last_log = Some(Instant::now());
            }
            let left = self.settings.startup_timeout.saturating_sub(waited);
            tokio::time::sleep(left.min(Duration::from_millis(20))).await;
        }
    }
}

#[cfg(test)]
mod tests;

/// Figures for `benches/index_update.rs`: the tracker fed a generated full list, then single
/// EndpointSlice updates each published as a snapshot, as the source does. Not a stable API.
#[doc(hidden)]
pub mod bench {
    use std::time::{Duration, Instant, SystemTime};

    use super::{Key, Kind, Msg, Tracker};
    use crate::plugin::kubernetes::index::Store;
    use crate::plugin::kubernetes::model::{
        Endpoint, EndpointSlice, Namespace, Object, Pod, Port, Service, ServiceKind,
    };

    /// What one run measured.
    #[derive(Debug)]
    pub struct Figures {
        /// Services, endpoints and pods listed.
        pub services: usize,
        pub endpoints: usize,
        pub pods: usize,
        /// Applying the full lists (InitDone of every kind) to an empty index.
        pub list: Duration,
        /// Mean time of one EndpointSlice update plus the snapshot publication.
        pub event: Duration,
        /// Mean time of one Service update plus the snapshot publication.
        pub service_event: Duration,
        pub events: usize,
    }

    fn ip(i: usize) -> std::net::IpAddr {
        std::net::IpAddr::from([10, 100 + ((i >> 16) % 100) as u8, (i >> 8) as u8, i as u8])
    }

    fn key(ns: &str, name: &str) -> Key {
        (ns.into(), name.into())
    }

    fn item(kind: Kind, key: Key, object: Object, init: bool) -> Msg {
        Msg::Object {
            kind,
            init,
            key,
            object: Some(object),
            trigger: None,
        }
    }

    fn service(i: usize, version: usize) -> (Key, Object) {
        let ns = format!("ns{}", i % 100);
        let name = format!("svc{i}");
        let kind = if i % 10 == 0 {
            ServiceKind::Headless
        } else {
            ServiceKind::ClusterIp(vec![std::net::IpAddr::from([
                10,
                96,
                (i / 250) as u8,
                (i % 250) as u8 + version as u8 % 2,
            ])])
        };
        let svc = Service {
            namespace: ns.as_str().into(),
            name: name.as_str().into(),
            kind,
            ports: vec![Port {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 80,
            }],
        };
        (key(&ns, &name), Object::Service(svc))
    }

    fn slice(i: usize, per: usize, shift: usize) -> (Key, Object) {
        let ns = format!("ns{}", i % 100);
        let name = format!("svc{i}-x");
        let slice = EndpointSlice {
            namespace: ns.as_str().into(),
            name: name.as_str().into(),
            service: format!("svc{i}").into(),
            ports: vec![Port {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 8080,
            }],
            endpoints: (0..per)
                .map(|k| Endpoint {
                    addresses: vec![ip(i * per + k + shift)],
                    hostname: None,
                    target_ref_name: Some(format!("svc{i}-{k}").into()),
                })
                .collect(),
        };
        (key(&ns, &name), Object::EndpointSlice(slice))
    }

    /// `services` services (100 namespaces, every tenth headless) with `per` endpoints each, and
    /// `pods` pods; then `events` slice updates and `events` service updates.
    pub fn run(services: usize, per: usize, pods: usize, events: usize) -> Figures {
        let all = [
            Kind::Service,
            Kind::EndpointSlice,
            Kind::Namespace,
            Kind::Pod,
        ];
        let mut msgs = Vec::new();
        for kind in all {
            msgs.push(Msg::Init(kind));
        }
        for n in 0..100 {
            let name = format!("ns{n}");
            let ns = Object::Namespace(Namespace {
                name: name.as_str().into(),
            });
            msgs.push(item(Kind::Namespace, key("", &name), ns, true));
        }
        let mut pods_left = pods;
        for i in 0..services {
            let (k, o) = service(i, 0);
            msgs.push(item(Kind::Service, k, o, true));
            let (k, o) = slice(i, per, 0);
            msgs.push(item(Kind::EndpointSlice, k, o, true));
            for p in 0..per.div_ceil(2) {
                if pods_left == 0 {
                    break;
                }
                pods_left -= 1;
                let ns = format!("ns{}", i % 100);
                let name = format!("svc{i}-{p}");
                let pod = Object::Pod(Pod {
                    namespace: ns.as_str().into(),
                    name: name.as_str().into(),
                    ip: ip(i * per + p),
                });
                msgs.push(item(Kind::Pod, key(&ns, &name), pod, true));
            }
        }
        for kind in all {
            msgs.push(Msg::InitDone(kind));
        }
        let mut tracker = Tracker::new(&all, 1, "bench".into());
        let store = Store::new();
        let start = Instant::now();
        for msg in msgs {
            tracker.handle(msg, 2, SystemTime::now());
        }
        store.publish(tracker.index.clone());
        let list = start.elapsed();

        let mut slice_updates = Vec::with_capacity(events);
        let mut service_updates = Vec::with_capacity(events);
        for e in 0..events {
            let i = (e * 7919) % services.max(1);
            let (k, o) = slice(i, per, 1_000_000 + e);
            slice_updates.push(item(Kind::EndpointSlice, k, o, false));
            let (k, o) = service(i, e + 1);
            service_updates.push(item(Kind::Service, k, o, false));
        }
        let timed = |updates: Vec<Msg>, tracker: &mut Tracker| {
            let start = Instant::now();
            for msg in updates {
                tracker.handle(msg, 3, SystemTime::now());
                store.publish(tracker.index.clone());
            }
            start.elapsed() / u32::try_from(events.max(1)).unwrap_or(u32::MAX)
        };
        let event = timed(slice_updates, &mut tracker);
        let service_event = timed(service_updates, &mut tracker);
        Figures {
            services,
            endpoints: services * per,
            pods: pods - pods_left,
            list,
            event,
            service_event,
            events,
        }
    }
}
