//! The Kubernetes API source: list+watch of Services, EndpointSlices, Namespaces (metadata only)
//! and, for `pods verified`, Pods, converted into the model and applied to the index per event.
//! Tracks the sync state of every watched kind, keeps the last good index through API outages,
//! and logs each connection transition once.

#[cfg(feature = "bench-internals")]
pub mod bench;
mod client;
mod events;
mod metrics;
mod tracker;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use kube::Client;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use tracing::{info, warn};

pub(crate) use self::client::ClientSource;
use self::events::{
    convert_namespace, convert_pod, convert_service, convert_slice, to_msg, watch_config,
};
#[cfg(test)]
use self::metrics::DNS_PROGRAMMING;
#[cfg(test)]
use self::tracker::Key;
pub(crate) use self::tracker::Kind;
use self::tracker::PLUGIN;
use self::tracker::{Msg, Tracker};
use crate::plugin::kubernetes::index::{Store, unix_now};

/// CoreDNS's pod field selector: pods that can never answer are not even listed.
const POD_FIELD_SELECTOR: &str =
    "status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown";

/// How often start-up logs that it is still waiting (CoreDNS: every 0.5 s).
const WAIT_LOG_INTERVAL: Duration = Duration::from_millis(500);

/// Events applied before a snapshot is published, at most (coalescing of bursts).
const MAX_BATCH: usize = 4096;

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
