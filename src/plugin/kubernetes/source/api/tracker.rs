//! Watch events to index state: per kind, which objects are indexed and whether the kind is
//! synced. Pure (no I/O, clocks passed in), so it is unit-tested with events.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{debug, info, warn};

use super::metrics::DNS_PROGRAMMING;
use crate::plugin::kubernetes::index::Index;
use crate::plugin::kubernetes::model::{Object, ServiceKind, Str};

pub(super) const PLUGIN: &str = "kubernetes";

/// The kinds this source watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Service = 0,
    EndpointSlice = 1,
    Namespace = 2,
    Pod = 3,
}

impl Kind {
    pub(super) const ALL: [Kind; 4] = [
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Namespace,
        Kind::Pod,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::EndpointSlice => "endpointslices",
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
        }
    }
}

/// `(namespace, name)`, lower-case; the namespace is empty for Namespaces.
pub(crate) type Key = (Str, Str);

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
    pub(super) index: Index,
    services: HashSet<Key>,
    /// Slice -> the service label it was indexed under.
    slices: HashMap<Key, Str>,
    /// Pod -> its indexed primary IP.
    pods: HashMap<Key, IpAddr>,
    namespaces: HashSet<Str>,
    kinds: [KindState; 4],
    /// The working index has changes not yet published.
    pub(super) dirty: bool,
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

    /// Whether `kind`'s watch is healthy (`None` before its first event).
    #[cfg(test)]
    pub(super) fn healthy(&self, kind: Kind) -> Option<bool> {
        self.kinds[kind as usize].healthy
    }

    /// Every watched kind has completed its first list.
    pub(crate) fn all_synced(&self) -> bool {
        self.kinds.iter().all(|k| !k.used || k.synced)
    }

    #[cfg(any(test, feature = "bench-internals"))]
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
